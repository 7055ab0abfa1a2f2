//! The source front end: parses a module directory's C files with libclang,
//! using the exact flags Kbuild compiled them with, into the IR.
//!
//! Files are parsed on several threads (each with its own libclang index;
//! each thread holds one translation unit at a time), then merged in a fixed
//! order, so the result does not depend on scheduling.
//!
//! **Owns**: turning C (libclang cursors, through `modswap-clang`, which
//! holds every `unsafe` call) into the IR; the header-body folding
//! (`fold`); the saved per-unit parses ([`saved`]).
//!
//! **Must not import**: the analysis (`modswap-analyze`), the ELF reader or
//! code generation. It records what the code does and interprets nothing;
//! deciding what a flow means is the analysis's job.

mod body;
mod fold;
mod init;
mod parse;
pub mod saved;
mod types;
mod unit;

use fold::HeaderBodies;
use modswap_clang::{Index, ParseOptions};
use modswap_ir::{Loc, Module, Program, TypeTable};
use modswap_kbuild::ModuleDir;
use parse::parse_impl;
pub(crate) use parse::{parse_one, Job, JobResult};
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// What can go wrong while parsing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Clang(#[from] modswap_clang::Error),
    /// The directory has not been built, so there are no Kbuild commands.
    #[error(transparent)]
    Kbuild(#[from] modswap_kbuild::Error),
    /// libclang reported errors; analysis of the module stops.
    #[error("{}", format_diagnostics(.module, .errors))]
    Diagnostics { module: String, errors: Vec<Diag> },
}

/// A libclang error at a place in a file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Diag {
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub message: String,
}

fn format_diagnostics(module: &str, errors: &[Diag]) -> String {
    let mut s = format!(
        "libclang found {} error(s) in module {module}; its analysis stops here:",
        errors.len()
    );
    for e in errors {
        s.push_str(&format!(
            "\n  {}:{}:{}: {}",
            e.file, e.line, e.column, e.message
        ));
    }
    s
}

/// How to parse.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Parser threads (at least 1).
    pub jobs: usize,
    /// Read the kernel headers' function bodies that earlier units of the
    /// directory showed folded away (see `fold.rs`; on by default). The IR is
    /// the same either way; off parses every unit in full.
    pub fold_header_bodies: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            jobs: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            fold_header_bodies: true,
        }
    }
}

/// Paths and file contents for one translation unit.
pub(crate) struct Ctx {
    /// Paths under it are shown relative to it.
    names_root: PathBuf,
    module_dir: PathBuf,
    main_file: PathBuf,
    texts: RefCell<HashMap<PathBuf, Option<String>>>,
    /// Files of the unit: in the module directory or not.
    in_dir: RefCell<HashMap<modswap_clang::FileId, bool>>,
}

impl Ctx {
    pub(crate) fn rel(&self, p: &Path) -> String {
        match p.strip_prefix(&self.names_root) {
            Ok(r) => r.display().to_string(),
            Err(_) => p.display().to_string(),
        }
    }

    pub(crate) fn loc(&self, l: &modswap_clang::Location) -> Loc {
        Loc {
            file: l
                .file
                .as_deref()
                .map(|f| self.rel(&abs(f)))
                .unwrap_or_default(),
            line: l.line,
            column: l.column,
        }
    }

    pub(crate) fn in_module_dir(&self, l: &modswap_clang::Location) -> bool {
        l.file
            .as_deref()
            .is_some_and(|f| abs(f).starts_with(&self.module_dir))
    }

    /// [`Ctx::in_module_dir`] of a location in file `id`, asked once per
    /// file (`loc` makes the location when it is not known yet).
    pub(crate) fn file_in_module_dir(
        &self,
        id: Option<modswap_clang::FileId>,
        loc: impl FnOnce() -> modswap_clang::Location,
    ) -> bool {
        let Some(id) = id else { return false };
        if let Some(known) = self.in_dir.borrow().get(&id) {
            return *known;
        }
        let inside = self.in_module_dir(&loc());
        self.in_dir.borrow_mut().insert(id, inside);
        inside
    }

    pub(crate) fn in_main_unit(&self, l: &modswap_clang::Location) -> bool {
        l.file.as_deref().is_some_and(|f| abs(f) == self.main_file)
    }

    /// The source text of an extent inside one file of the module
    /// directory, whitespace collapsed.
    pub(crate) fn text(&self, e: &modswap_clang::Extent) -> Option<String> {
        let f = abs(e.start.file.as_deref()?);
        if e.end.file.as_deref().map(abs).as_deref() != Some(f.as_path())
            || !f.starts_with(&self.module_dir)
        {
            return None;
        }
        let mut texts = self.texts.borrow_mut();
        let text = texts
            .entry(f.clone())
            .or_insert_with(|| std::fs::read_to_string(&f).ok())
            .as_deref()?;
        let s = text.get(e.start.offset as usize..e.end.offset as usize)?;
        Some(s.split_whitespace().collect::<Vec<_>>().join(" "))
    }

    /// The text of the line at `loc` (an IR location), trimmed.
    pub(crate) fn line_text(&self, loc: &Loc) -> Option<String> {
        if loc.line == 0 || loc.file.is_empty() {
            return None;
        }
        let f = abs(&self.names_root.join(&loc.file));
        let mut texts = self.texts.borrow_mut();
        let text = texts
            .entry(f.clone())
            .or_insert_with(|| std::fs::read_to_string(&f).ok())
            .as_deref()?;
        let line = text.lines().nth(loc.line as usize - 1)?;
        Some(line.split_whitespace().collect::<Vec<_>>().join(" "))
    }
}

fn abs(p: &Path) -> PathBuf {
    modswap_kbuild::cmd::normalize(&std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()))
}

/// The root that IR paths are relative to.
pub fn names_root(md: &ModuleDir) -> PathBuf {
    if md.in_tree {
        md.root.clone()
    } else {
        md.dir.parent().unwrap_or(&md.dir).to_path_buf()
    }
}

/// Parses every C file of every module in `md` (whose Kbuild commands must
/// be loaded) into the IR. All libclang errors of all files are collected;
/// if there are any, the result is [`Error::Diagnostics`] for the first
/// module that has them.
pub fn parse(md: &ModuleDir, opts: Options) -> Result<Program, Error> {
    parse_impl(md, opts, false).map(|(p, _)| p)
}

/// [`parse`], also telling how much of the headers was folded away.
pub fn parse_with_stats(md: &ModuleDir, opts: Options) -> Result<(Program, ParseStats), Error> {
    parse_impl(md, opts, false)
}

/// What [`parse_with_stats`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParseStats {
    /// Units parsed by libclang.
    pub units: usize,
    /// Of those, units that read at least one header with folded bodies.
    pub units_with_folded_headers: usize,
    /// Header function bodies found, and how many of them were folded.
    pub header_bodies: usize,
    pub folded_bodies: usize,
    /// Of the folded bodies, those guessed from the text of the headers
    /// that Kbuild's dependency lists name, before any parse.
    pub guessed_bodies: usize,
    /// Guesses a parse showed were not function bodies (each costs its
    /// unit one more parse).
    pub rejected_guesses: usize,
    /// Units that had errors with folded headers and were parsed again in
    /// full (expected: none).
    pub reparsed_in_full: usize,
}

/// [`parse`], but each unit whose facts file ([`saved`]) still describes
/// it is read from that file instead of parsed.
pub fn parse_using_facts(md: &ModuleDir, opts: Options) -> Result<Program, Error> {
    parse_impl(md, opts, true).map(|(p, _)| p)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A module directory `m/` with one unit including `inc/h.h`.
    fn fixture() -> (tempfile::TempDir, Job) {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("m")).unwrap();
        std::fs::create_dir_all(t.path().join("inc")).unwrap();
        std::fs::write(
            t.path().join("inc/h.h"),
            "static inline int h(int x)\n{\n\treturn x + __COUNTER__;\n}\n",
        )
        .unwrap();
        std::fs::write(
            t.path().join("m/a.c"),
            "#include <h.h>\nint a_state;\nint *a(void) { return &a_state + h(__COUNTER__); }\n",
        )
        .unwrap();
        let job = Job {
            module: 0,
            source: t.path().join("m/a.c"),
            args: vec![
                "-xc".into(),
                format!("-I{}", t.path().join("inc").display()),
            ],
        };
        (t, job)
    }

    fn unit(r: JobResult) -> modswap_ir::Unit {
        r.unwrap_or_else(|e| panic!("errors: {e:?}")).0
    }

    /// Parses `m/a.c` of a module directory made of `files` (name, text),
    /// without folding.
    fn parse_module(files: &[(&str, &str)]) -> modswap_ir::Unit {
        let t = tempfile::tempdir().unwrap();
        let m = t.path().join("m");
        std::fs::create_dir_all(&m).unwrap();
        for (name, text) in files {
            std::fs::write(m.join(name), text).unwrap();
        }
        let job = Job {
            module: 0,
            source: m.join("a.c"),
            args: vec!["-xc".into()],
        };
        let index = Index::new().unwrap();
        let (r, _) = parse_one(&index, &job, t.path(), &m, &HeaderBodies::new(false)).unwrap();
        unit(r)
    }

    #[test]
    fn learns_folds_and_reads_them_back() {
        let (t, job) = fixture();
        let index = Index::new().unwrap();
        let bodies = HeaderBodies::new(true);
        let (first, _) = parse_one(&index, &job, t.path(), &t.path().join("m"), &bodies).unwrap();
        let learnt = bodies.snapshot().unsaved;
        assert_eq!(learnt.len(), 1);
        assert_eq!(
            std::str::from_utf8(&learnt[0].contents).unwrap(),
            "static inline int h(int x)\n$\n\treturn x + __COUNTER__;\n)\n"
        );
        let (second, _) = parse_one(&index, &job, t.path(), &t.path().join("m"), &bodies).unwrap();
        assert_eq!(bodies.stats().units_with_folded_headers, 1);
        let (a, b) = (unit(first), unit(second));
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&b).unwrap()
        );
        assert!(a.globals.iter().any(|g| g.name == "a_state"));
    }

    #[test]
    fn a_fold_that_breaks_the_unit_is_not_used() {
        let (t, job) = fixture();
        let index = Index::new().unwrap();
        let bodies = HeaderBodies::new(true);
        // Unbalanced: every declaration after it would be swallowed.
        bodies.insert(
            t.path().join("inc/h.h"),
            b"static inline int h(int x)\n$\n\treturn x + __COUNTER__;\n}\n",
        );
        // On its own, the fold makes errors...
        let mut args = job.args.clone();
        args.extend(fold::DEFINES.iter().map(|d| d.to_string()));
        let broken = index
            .parse_with(
                &job.source,
                &args,
                ParseOptions::default(),
                &bodies.snapshot().unsaved,
            )
            .unwrap();
        assert!(broken.diagnostics().iter().any(|d| d.is_error()));
        // ...so the unit is parsed as it is.
        let (r, _) = parse_one(&index, &job, t.path(), &t.path().join("m"), &bodies).unwrap();
        assert_eq!(bodies.stats().reparsed_in_full, 1);
        let u = unit(r);
        assert!(u.globals.iter().any(|g| g.name == "a_state"));
    }

    /// Bodies guessed from the text fold the first unit too; the parse
    /// confirms them, unfolds the ones in skipped ranges, and drops a wrong
    /// one (then parses again). The IR is the same as without folding.
    #[test]
    fn guessed_bodies_are_checked_by_the_parse() {
        let (t, job) = fixture();
        let header = t.path().join("inc/h.h");
        std::fs::write(
            &header,
            "#define __rel(x)\n\
             static inline int h(int x)\n{\n\treturn x + __COUNTER__;\n}\n\
             static inline void r(int *p)\n\t__rel(p)\n{\n\t*p = __COUNTER__;\n}\n\
             #ifdef NOPE\nstatic inline int n(int x)\n{\n\treturn x;\n}\n#endif\n\
             static struct __attribute__((packed))\n{\n\tint a;\n}\ns_var;\n",
        )
        .unwrap();
        std::fs::write(
            &job.source,
            "#include <h.h>\nint a_state;\n\
             int *a(void) { r(&s_var.a); return &a_state + h(__COUNTER__); }\n",
        )
        .unwrap();
        let index = Index::new().unwrap();
        let module_dir = t.path().join("m");
        let (plain, _) = parse_one(
            &index,
            &job,
            t.path(),
            &module_dir,
            &HeaderBodies::new(false),
        )
        .unwrap();
        let bodies = HeaderBodies::new(true);
        bodies.guess([header.clone()], &module_dir);
        assert_eq!(bodies.stats().guessed_bodies, 4);
        let (folded, _) = parse_one(&index, &job, t.path(), &module_dir, &bodies).unwrap();
        let stats = bodies.stats();
        assert_eq!(
            (
                stats.units_with_folded_headers,
                stats.rejected_guesses,
                stats.reparsed_in_full,
                stats.guessed_bodies
            ),
            (1, 1, 0, 2),
            "{stats:?}"
        );
        assert_eq!(
            serde_json::to_string(&unit(plain)).unwrap(),
            serde_json::to_string(&unit(folded)).unwrap()
        );
        // What later units read: h and r folded, n and the struct as they are.
        let snap = bodies.snapshot();
        let text = std::str::from_utf8(&snap.unsaved[0].contents).unwrap();
        assert!(text.contains("$\n\treturn x + __COUNTER__;\n)"), "{text}");
        assert!(text.contains("$\n\t*p = __COUNTER__;\n)"), "{text}");
        assert!(text.contains("{\n\treturn x;\n}"), "{text}");
        assert!(text.contains("{\n\tint a;\n}"), "{text}");
    }

    #[test]
    fn header_functions_the_unit_never_names_are_left_out() {
        let u = parse_module(&[
            (
                "h.h",
                "static inline int used(void) { static int count_used; return ++count_used; }\n\
                 static inline int unused(void) { static int count_unused; return ++count_unused; }\n\
                 static inline int chained(void) { return used(); }\n\
                 static inline int by_pointer(void) { static int count_ptr; return ++count_ptr; }\n\
                 static int (*const table[])(void) = { by_pointer };\n",
            ),
            (
                "a.c",
                "#include \"h.h\"\nint a(void) { return chained() + table[0](); }\n\
                 static int a_unused(void) { return 0; }\n",
            ),
        ]);
        let bodies: Vec<&str> = u.bodies.iter().map(|b| b.name.as_str()).collect();
        // The unit's own functions stay, used or not; of the header's, the
        // ones reached from them or from an initializer.
        assert_eq!(bodies, ["used", "chained", "by_pointer", "a", "a_unused"]);
        let globals: Vec<&str> = u.globals.iter().map(|g| g.key.as_str()).collect();
        assert_eq!(
            globals,
            ["used.count_used", "by_pointer.count_ptr", "table"]
        );
    }

    /// Two statics that one macro invocation makes share their place (file,
    /// line, column, name); each write still goes to its own.
    #[test]
    fn statics_of_one_macro_invocation_are_told_apart() {
        let u = parse_module(&[(
            "a.c",
            "#define ONCE(v) ({ static int done; int was = done; done = v; was; })\n\
             #define TWICE() (ONCE(1) + ONCE(2))\n\
             int f(void) { return TWICE(); }\n",
        )]);
        let keys: Vec<&str> = u.globals.iter().map(|g| g.key.as_str()).collect();
        assert_eq!(keys, ["f.done.1", "f.done.2"]);
        let facts = serde_json::to_string(&u.bodies[0].facts).unwrap();
        for k in keys {
            assert!(
                facts.contains(&format!("\"key\":\"{k}\"")),
                "no fact names {k}: {facts}"
            );
        }
    }
}
