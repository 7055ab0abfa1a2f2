//! The source front end: parses a module directory's C files with libclang,
//! using the exact flags Kbuild compiled them with, into the IR.
//!
//! Files are parsed on several threads (each with its own libclang index;
//! each thread holds one translation unit at a time), then merged in a fixed
//! order, so the result does not depend on scheduling.

pub mod facts;
mod flows;
mod init;
mod types;
mod unit;

use crate::ir::{Loc, Module, Program, TypeTable};
use crate::kbuild::ModuleDir;
use modswap_clang::{Index, ParseOptions};
use std::cell::RefCell;
use std::collections::HashMap;
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
    Kbuild(#[from] crate::kbuild::Error),
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

/// The stack of each parser thread.
const PARSER_STACK: usize = 512 << 20;

/// How to parse.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Parser threads (at least 1).
    pub jobs: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            jobs: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
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
    crate::kbuild::cmd::normalize(&std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()))
}

/// The root that IR paths are relative to.
pub fn names_root(md: &ModuleDir) -> PathBuf {
    if md.in_tree {
        md.root.clone()
    } else {
        md.dir.parent().unwrap_or(&md.dir).to_path_buf()
    }
}

pub(crate) struct Job {
    module: usize,
    source: PathBuf,
    args: Vec<String>,
}

pub(crate) type JobResult = Result<(crate::ir::Unit, TypeTable), Vec<Diag>>;

/// Parses every C file of every module in `md` (whose Kbuild commands must
/// be loaded) into the IR. All libclang errors of all files are collected;
/// if there are any, the result is [`Error::Diagnostics`] for the first
/// module that has them.
pub fn parse(md: &ModuleDir, opts: Options) -> Result<Program, Error> {
    parse_impl(md, opts, false)
}

/// [`parse`], but each unit whose facts file ([`facts`]) still describes
/// it is read from that file instead of parsed.
pub fn parse_using_facts(md: &ModuleDir, opts: Options) -> Result<Program, Error> {
    parse_impl(md, opts, true)
}

fn parse_impl(md: &ModuleDir, opts: Options, use_facts: bool) -> Result<Program, Error> {
    let names_root = names_root(md);
    let mut jobs = Vec::new();
    let mut saved = Vec::new();
    for (mi, m) in md.modules.iter().enumerate() {
        for s in &m.sources {
            let Some(cmd) = &s.command else {
                return Err(crate::kbuild::Error::NotBuilt {
                    dir: md.dir.clone(),
                    missing: s.object.display().to_string(),
                    make: md.make_command(),
                }
                .into());
            };
            let job = Job {
                module: mi,
                source: s.path.clone(),
                args: cmd.clang_args(),
            };
            saved.push(if use_facts {
                facts::load(s, &job, &names_root)
            } else {
                None
            });
            jobs.push(job);
        }
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<JobResult>>> = Mutex::new(saved);
    let todo: Vec<usize> = {
        let r = results.lock().expect("not shared yet");
        (0..jobs.len()).filter(|&i| r[i].is_none()).collect()
    };
    let fatal: Mutex<Option<modswap_clang::Error>> = Mutex::new(None);
    let threads = opts.jobs.clamp(1, todo.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..if todo.is_empty() { 0 } else { threads } {
            // Type conversion and expression walks recurse as deep as the
            // kernel's types and macros nest (thousands of frames in fs/xfs,
            // fs/btrfs): a generous stack, committed only as used.
            let builder = std::thread::Builder::new().stack_size(PARSER_STACK);
            let spawned = builder.spawn_scoped(s, || {
                let index = match Index::new() {
                    Ok(i) => i,
                    Err(e) => {
                        fatal
                            .lock()
                            .expect("no panics while locked")
                            .get_or_insert(e);
                        return;
                    }
                };
                loop {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&i) = todo.get(n) else { break };
                    let r = parse_one(&index, &jobs[i], &names_root, &md.dir);
                    match r {
                        Ok((r, _)) => results.lock().expect("no panics while locked")[i] = Some(r),
                        Err(e) => {
                            fatal
                                .lock()
                                .expect("no panics while locked")
                                .get_or_insert(e);
                            break;
                        }
                    }
                }
            });
            if let Err(e) = spawned {
                fatal.lock().expect("no panics while locked").get_or_insert(
                    modswap_clang::Error::Thread {
                        reason: e.to_string(),
                    },
                );
            }
        }
    });
    if let Some(e) = fatal.into_inner().expect("threads joined") {
        return Err(e.into());
    }
    let results = results.into_inner().expect("threads joined");

    let mut program = Program {
        dir: if md.in_tree {
            md.dir
                .strip_prefix(&names_root)
                .unwrap_or(&md.dir)
                .display()
                .to_string()
        } else {
            md.dir
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        },
        modules: md
            .modules
            .iter()
            .map(|m| Module {
                name: m.name.clone(),
                modname: m.modname.clone(),
                units: Vec::new(),
            })
            .collect(),
        types: TypeTable::default(),
    };
    let mut failed: Option<(String, Vec<Diag>)> = None;
    for (job, r) in jobs.iter().zip(results) {
        match r.expect("every job ran") {
            Ok((mut unit, table)) => {
                let map = program.types.merge(&table);
                for g in &mut unit.globals {
                    g.ty = map[g.ty.0 as usize];
                }
                program.modules[job.module].units.push(unit);
            }
            Err(diags) => {
                let name = md.modules[job.module].name.clone();
                match &mut failed {
                    Some((m, all)) if *m == name => all.extend(diags),
                    Some(_) => {}
                    None => failed = Some((name, diags)),
                }
            }
        }
    }
    if let Some((module, errors)) = failed {
        return Err(Error::Diagnostics { module, errors });
    }
    Ok(program)
}

/// Parses one unit; also returns every file it read (absolute, normalized).
pub(crate) fn parse_one(
    index: &Index,
    job: &Job,
    names_root: &Path,
    module_dir: &Path,
) -> Result<(JobResult, Vec<PathBuf>), modswap_clang::Error> {
    let tu = index.parse(
        &job.source,
        &job.args,
        ParseOptions {
            detailed_preprocessing_record: true,
            skip_function_bodies: false,
        },
    )?;
    let ctx = Ctx {
        names_root: names_root.to_path_buf(),
        module_dir: module_dir.to_path_buf(),
        main_file: job.source.clone(),
        texts: RefCell::new(HashMap::new()),
        in_dir: RefCell::new(HashMap::new()),
    };
    let errors: Vec<Diag> = tu
        .diagnostics()
        .into_iter()
        .filter(|d| d.is_error())
        .map(|d| Diag {
            file: d
                .location
                .file
                .as_deref()
                .map(|f| ctx.rel(&abs(f)))
                .unwrap_or_else(|| ctx.rel(&job.source)),
            line: d.location.line,
            column: d.location.column,
            message: d.message,
        })
        .collect();
    let read: Vec<PathBuf> = tu.inclusions().iter().map(|f| abs(f)).collect();
    if !errors.is_empty() {
        return Ok((Err(errors), read));
    }
    let file = ctx.rel(&job.source);
    Ok((Ok(unit::extract(&tu, &ctx, &file)), read))
}
