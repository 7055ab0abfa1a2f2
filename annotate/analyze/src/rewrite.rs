//! The source rewrite: a `__static_old(key)` / `__static_new(key)` marker on
//! every declaration that needs a static address section, and
//! `#include <linux/modswap.h>` in every file that has a marker.
//!
//! Placement (kernel style, checked by compiling with Kbuild):
//! - written-out declarations: after the declarator, before `=`, `;` or `,`
//!   (`static struct file_system_type vfat_fs_type __static_old(vfat_fs_type) = {`);
//! - declarations a macro makes at file scope (`static DEFINE_MUTEX(x);`):
//!   before the declaration, where GNU C takes attributes for the whole
//!   declaration (`__static_old(x) static DEFINE_MUTEX(x);`), when the
//!   macro makes only that one object;
//! - `__read_mostly` and `__ro_after_init` only choose a data section for
//!   speed or hardening: the marker replaces them (a declaration never gets
//!   two section attributes).
//!
//! What cannot be marked is reported with the reason and what it means for
//! a swap: objects a macro declares inside a function (lock class keys,
//! `__already_done`, printk rate-limit states), objects already in another
//! section (`__param`, per-CPU data), objects declared by a macro together
//! with others, objects of a header included by several units.
//!
//! The rewrite is idempotent: markers that are already right are left
//! alone, stale ones (class or key changed) are replaced or removed. Files
//! are written atomically (a temporary file next to each, renamed over it
//! once all are written), so a failure never leaves a half-written file.

use crate::Analysis;
use modswap_ir::class::Class;
use modswap_ir::{Global, Program, Type};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What can go wrong while rewriting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file no longer matches what was parsed.
    #[error("{path}:{line}: expected the declaration of `{name}` here; the file changed since it was parsed")]
    Changed {
        path: PathBuf,
        line: u32,
        name: String,
    },
}

/// The include line the rewrite adds.
pub const INCLUDE: &str = "#include <linux/modswap.h>";

/// The rewrite of one file.
#[derive(Debug, Clone)]
pub struct FileEdit {
    /// As in the IR (`fs/fat/inode.c`).
    pub file: String,
    /// Where it is on disk.
    pub path: PathBuf,
    pub old: String,
    pub new: String,
}

/// What happens to one global's marker.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Marker {
    /// The class needs no static section and there is no marker.
    NotNeeded,
    /// The right marker is already there.
    Present { marker: String },
    /// The rewrite adds (or corrects) it.
    Added { marker: String },
    /// The rewrite removes a stale marker (the class needs none any more).
    Removed { marker: String },
    /// It needs a marker that cannot be placed in the source.
    Cannot {
        marker: String,
        why: String,
        /// What that means for a swap.
        consequence: String,
    },
}

/// The whole rewrite of a module directory.
#[derive(Debug, Clone, Default)]
pub struct Rewrite {
    /// Files whose text changes, sorted by file.
    pub edits: Vec<FileEdit>,
    /// (module, key) -> marker status, for every global.
    pub markers: BTreeMap<(String, String), Marker>,
}

impl Rewrite {
    /// Does the source differ from what the rewrite would make it?
    pub fn is_stale(&self) -> bool {
        !self.edits.is_empty()
    }

    pub fn marker(&self, module: &str, key: &str) -> Option<&Marker> {
        self.markers.get(&(module.to_string(), key.to_string()))
    }

    /// A unified diff of every edit (paths as in the IR, `a/` and `b/`
    /// prefixed, as `patch -p1` from the IR root expects).
    pub fn diff(&self) -> String {
        let mut out = String::new();
        for e in &self.edits {
            let d = similar::TextDiff::from_lines(&e.old, &e.new);
            out.push_str(
                &d.unified_diff()
                    .context_radius(3)
                    .header(&format!("a/{}", e.file), &format!("b/{}", e.file))
                    .to_string(),
            );
        }
        out
    }

    /// Writes every edit. Each file is written to a temporary file next to
    /// it first; only when all are written are they renamed into place.
    pub fn apply(&self) -> Result<(), Error> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { path, source }
        };
        let mut staged = Vec::new();
        for e in &self.edits {
            // The file must still be there (its permissions carry over).
            std::fs::metadata(&e.path).map_err(io(&e.path))?;
            let s = modswap_util::Staged::new(&e.path, e.new.as_bytes()).map_err(io(&e.path))?;
            staged.push(s);
        }
        // A failed rename drops (and so removes) the temporaries left.
        for s in staged {
            let path = s.path().to_path_buf();
            s.commit().map_err(io(&path))?;
        }
        Ok(())
    }
}

/// One text edit: replace `len` bytes at `at` with `text`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Edit {
    at: usize,
    len: usize,
    text: String,
}

/// Plans the rewrite. `root` is the directory IR paths are relative to
/// ([`modswap_source::names_root`]).
pub fn plan(root: &Path, program: &Program, analysis: &Analysis) -> Result<Rewrite, Error> {
    let names = modswap_ir::sections::names();
    let mut texts: BTreeMap<String, String> = BTreeMap::new();
    let mut edits: BTreeMap<String, Vec<Edit>> = BTreeMap::new();
    let mut markers = BTreeMap::new();
    // Globals declared at the same place: by several units (a header) or
    // by one macro invocation (several objects).
    let mut units_at: BTreeMap<(String, u32), std::collections::BTreeSet<(&str, &str)>> =
        BTreeMap::new();
    let mut keys_at: BTreeMap<(String, u32), std::collections::BTreeSet<&str>> = BTreeMap::new();
    for m in &program.modules {
        for u in &m.units {
            for g in &u.globals {
                let place = (g.loc.file.clone(), g.span.start);
                units_at
                    .entry(place.clone())
                    .or_default()
                    .insert((m.name.as_str(), u.file.as_str()));
                keys_at.entry(place).or_default().insert(g.key.as_str());
            }
        }
    }
    let mut done: std::collections::BTreeSet<(String, u32, u32)> = Default::default();

    for m in &program.modules {
        let ma = analysis.module(&m.name);
        for u in &m.units {
            for g in &u.globals {
                let Some(ga) = ma.and_then(|ma| ma.globals.iter().find(|x| x.key == g.key)) else {
                    continue;
                };
                let want = match ga.class {
                    Class::StaticOld => Some(("__static_old", &names.static_old)),
                    Class::StaticNew => Some(("__static_new", &names.static_new)),
                    _ => None,
                };
                let want_marker = want.map(|(mac, _)| format!("{mac}({})", g.key));
                let want_section = want.map(|(_, pre)| format!("{pre}{}", g.key));
                let existing = g.section.as_deref().filter(|s| names.is_static(s));
                let place = (g.loc.file.clone(), g.span.start, g.span.name);
                let key = (m.name.clone(), g.key.clone());

                // Nothing to do?
                if want_section.is_none() && existing.is_none() {
                    markers.insert(key, Marker::NotNeeded);
                    continue;
                }
                if want_section.as_deref().is_some() && want_section.as_deref() == existing {
                    markers.insert(
                        key,
                        Marker::Present {
                            marker: want_marker.unwrap_or_default(),
                        },
                    );
                    continue;
                }
                let cannot = |why: String| Marker::Cannot {
                    marker: want_marker.clone().unwrap_or_default(),
                    why,
                    consequence: consequence(program, g, ga.class),
                };
                // Markable at all?
                if want_marker.is_some() && existing.is_none() {
                    if let (Some(f), Some(mac)) = (&g.function, &g.macro_origin) {
                        markers.insert(
                            key,
                            cannot(format!(
                                "declared inside the expansion of {mac}() in function {f}(); the source has no declaration to mark"
                            )),
                        );
                        continue;
                    }
                    if let Some(sec) = &g.section {
                        if !replaceable_section(sec) {
                            let how = match &g.macro_origin {
                                Some(mac) => format!(" (by {mac}())"),
                                None => String::new(),
                            };
                            markers.insert(
                                key,
                                cannot(format!(
                                    "already placed in section {sec}{how}; a declaration takes one section"
                                )),
                            );
                            continue;
                        }
                    }
                    let at = (g.loc.file.clone(), g.span.start);
                    let users = units_at.get(&at).map(|v| v.len()).unwrap_or(0);
                    if users > 1 {
                        markers.insert(
                            key,
                            cannot(format!(
                                "defined in {} which {users} units include: each has its own copy, and one section per key cannot hold them",
                                g.loc.file
                            )),
                        );
                        continue;
                    }
                    let objects = keys_at.get(&at).map(|v| v.len()).unwrap_or(0);
                    if g.macro_origin.is_some() && objects > 1 {
                        markers.insert(
                            key,
                            cannot(format!(
                                "declared by {}() together with other objects; a marker before it would not name this one",
                                g.macro_origin.as_deref().unwrap_or("a macro")
                            )),
                        );
                        continue;
                    }
                }
                if !done.insert(place.clone()) {
                    continue;
                }
                let path = root.join(&g.loc.file);
                let text = match texts.get(&g.loc.file) {
                    Some(t) => t,
                    None => {
                        let t = std::fs::read_to_string(&path).map_err(|source| Error::Io {
                            path: path.clone(),
                            source,
                        })?;
                        texts.entry(g.loc.file.clone()).or_insert(t)
                    }
                };
                let decl = declaration(text, g, &path)?;
                let file_edits = edits.entry(g.loc.file.clone()).or_default();
                match (&want_marker, existing) {
                    (Some(mk), Some(_)) => {
                        // A stale marker of ours: replace it.
                        match find_marker(text, &decl) {
                            Some((at, len)) => {
                                file_edits.push(Edit {
                                    at,
                                    len,
                                    text: mk.clone(),
                                });
                                markers.insert(key, Marker::Added { marker: mk.clone() });
                            }
                            None => {
                                markers.insert(
                                    key,
                                    cannot(format!(
                                        "its section {} comes from a macro, not from a marker in the source",
                                        g.section.as_deref().unwrap_or_default()
                                    )),
                                );
                            }
                        }
                    }
                    (None, Some(sec)) => match find_marker(text, &decl) {
                        Some((at, len)) => {
                            let (at, len) = with_space(text, at, len);
                            let old = text[at..at + len].trim().to_string();
                            file_edits.push(Edit {
                                at,
                                len,
                                text: String::new(),
                            });
                            markers.insert(key, Marker::Removed { marker: old });
                        }
                        None => {
                            markers.insert(
                                key,
                                Marker::Cannot {
                                    marker: String::new(),
                                    why: format!(
                                        "it is in {sec} but needs no static section, and the section comes from a macro"
                                    ),
                                    consequence: "it keeps a static section it does not need; harmless".into(),
                                },
                            );
                        }
                    },
                    (Some(mk), None) => {
                        let edit = match &g.section {
                            Some(sec) => {
                                // __read_mostly / __ro_after_init: replace the token.
                                let token = replaceable_token(sec);
                                match token.and_then(|t| find_token(text, &decl, t)) {
                                    Some(at) => Some(Edit {
                                        at,
                                        len: token.unwrap_or_default().len(),
                                        text: mk.clone(),
                                    }),
                                    None => {
                                        markers.insert(
                                            key,
                                            cannot(format!(
                                                "already placed in section {sec} by a macro the rewrite cannot see"
                                            )),
                                        );
                                        continue;
                                    }
                                }
                            }
                            None if g.macro_origin.is_some() => Some(Edit {
                                at: decl.start,
                                len: 0,
                                text: format!("{mk} "),
                            }),
                            None => after_declarator(text, &decl).map(|at| {
                                let space_before = text[..at].ends_with(char::is_whitespace);
                                Edit {
                                    at,
                                    len: 0,
                                    text: if space_before {
                                        format!("{mk} ")
                                    } else {
                                        format!(" {mk}")
                                    },
                                }
                            }),
                        };
                        match edit {
                            Some(e) => {
                                file_edits.push(e);
                                markers.insert(key, Marker::Added { marker: mk.clone() });
                            }
                            None => {
                                markers.insert(
                                    key,
                                    cannot("the end of its declarator was not found".into()),
                                );
                            }
                        }
                    }
                    (None, None) => unreachable!("handled above"),
                }
            }
        }
    }

    // Apply the edits; add the include where markers remain.
    let mut out = Vec::new();
    for (file, mut es) in edits {
        let old = texts.remove(&file).unwrap_or_default();
        if es.is_empty() {
            continue;
        }
        es.sort();
        es.dedup();
        let mut new = old.clone();
        for e in es.iter().rev() {
            new.replace_range(e.at..e.at + e.len, &e.text);
        }
        let has_marker = new.contains("__static_old(") || new.contains("__static_new(");
        if has_marker && !has_include(&new) {
            new = add_include(&new);
        }
        if new != old {
            out.push(FileEdit {
                path: root.join(&file),
                file,
                old,
                new,
            });
        }
    }
    // Files whose markers are all right but that lack the include.
    let mut marked_files: std::collections::BTreeSet<String> = Default::default();
    for m in &program.modules {
        for u in &m.units {
            for g in &u.globals {
                if matches!(
                    markers.get(&(m.name.clone(), g.key.clone())),
                    Some(Marker::Present { .. })
                ) {
                    marked_files.insert(g.loc.file.clone());
                }
            }
        }
    }
    for file in marked_files {
        if out.iter().any(|e| e.file == file) {
            continue;
        }
        let path = root.join(&file);
        let old = std::fs::read_to_string(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        if !has_include(&old) {
            let new = add_include(&old);
            out.push(FileEdit {
                file,
                path,
                old,
                new,
            });
        }
    }
    out.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(Rewrite {
        edits: out,
        markers,
    })
}

/// Sections a marker may replace: they only pick a data section.
fn replaceable_section(sec: &str) -> bool {
    replaceable_token(sec).is_some()
}

fn replaceable_token(sec: &str) -> Option<&'static str> {
    match sec {
        ".data..read_mostly" => Some("__read_mostly"),
        ".data..ro_after_init" => Some("__ro_after_init"),
        _ => None,
    }
}

/// The declaration's extent in its file, checked against the IR.
struct Decl {
    start: usize,
    name: usize,
    name_len: usize,
    end: usize,
}

fn declaration(text: &str, g: &Global, path: &Path) -> Result<Decl, Error> {
    let changed = || Error::Changed {
        path: path.to_path_buf(),
        line: g.loc.line,
        name: g.name.clone(),
    };
    let (start, name, end) = (
        g.span.start as usize,
        g.span.name as usize,
        g.span.end as usize,
    );
    if start > name
        || name > end
        || end > text.len()
        || !text.is_char_boundary(start)
        || !text.is_char_boundary(end)
    {
        return Err(changed());
    }
    // The name is at `name` (written out), or the declaration is a macro
    // invocation naming it.
    let at_name = text[name..].starts_with(&g.name);
    if !at_name && !text[start..end].contains(&g.name) && g.macro_origin.is_none() {
        return Err(changed());
    }
    Ok(Decl {
        start,
        name,
        name_len: if at_name { g.name.len() } else { 0 },
        end,
    })
}

/// Where the declarator ends: the first `=`, `;` or `,` after the name
/// outside brackets.
fn after_declarator(text: &str, d: &Decl) -> Option<usize> {
    let b = text.as_bytes();
    let mut i = d.name + d.name_len;
    let mut depth = 0i32;
    let limit = (d.end + 1).min(b.len());
    while i < limit {
        match b[i] {
            b'(' | b'[' => depth += 1,
            b')' | b']' => depth -= 1,
            b'=' | b';' | b',' if depth == 0 => return Some(i),
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += text[i..].find("*/")? + 1;
            }
            _ => {}
        }
        i += 1;
    }
    // A declaration without initializer ends at its extent; the `;` (or
    // `,`) follows.
    let rest = &text[d.end..];
    let skip = rest.len() - rest.trim_start().len();
    match rest.trim_start().chars().next() {
        Some(';' | ',' | '=') => Some(d.end + skip),
        _ => None,
    }
}

/// An existing `__static_old(...)`/`__static_new(...)` in the declaration.
fn find_marker(text: &str, d: &Decl) -> Option<(usize, usize)> {
    let lo = d.start;
    let hi = text[d.end..]
        .find(';')
        .map(|x| d.end + x)
        .unwrap_or(text.len());
    // A marker before the declaration (macro-made ones) is on the same line.
    let line_start = text[..lo].rfind('\n').map(|x| x + 1).unwrap_or(0);
    for mac in ["__static_old(", "__static_new("] {
        if let Some(x) = text[line_start..hi].find(mac) {
            let at = line_start + x;
            let close = text[at..].find(')')? + 1;
            return Some((at, close));
        }
    }
    None
}

/// Extends a removal to one adjacent space.
fn with_space(text: &str, at: usize, len: usize) -> (usize, usize) {
    if text[at + len..].starts_with(' ') {
        (at, len + 1)
    } else if text[..at].ends_with(' ') {
        (at - 1, len + 1)
    } else {
        (at, len)
    }
}

/// The offset of identifier `token` in the declaration.
fn find_token(text: &str, d: &Decl, token: &str) -> Option<usize> {
    let hi = text[d.end..]
        .find(';')
        .map(|x| d.end + x)
        .unwrap_or(text.len());
    let s = &text[d.start..hi];
    let mut from = 0;
    while let Some(x) = s[from..].find(token) {
        let at = from + x;
        let before = s[..at].chars().next_back();
        let after = s[at + token.len()..].chars().next();
        let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        if !ident(before) && !ident(after) {
            return Some(d.start + at);
        }
        from = at + token.len();
    }
    None
}

fn has_include(text: &str) -> bool {
    text.lines().any(|l| {
        let l = l.trim();
        l.starts_with('#')
            && l.trim_start_matches('#')
                .trim_start()
                .starts_with("include")
            && l.contains("linux/modswap.h")
    })
}

/// Adds the include after the last `#include` at the outermost
/// preprocessor-conditional level that has includes (a header's include
/// guard counts as one level), or at the top after leading comments.
fn add_include(text: &str) -> String {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut depth = 0i32;
    let mut best: Option<(i32, usize)> = None;
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim_start();
        if !t.starts_with('#') {
            continue;
        }
        let d = t.trim_start_matches('#').trim_start();
        if d.starts_with("if") {
            depth += 1;
        } else if d.starts_with("endif") {
            depth -= 1;
        } else if d.starts_with("include") {
            match best {
                Some((bd, _)) if depth > bd => {}
                _ => best = Some((depth, i)),
            }
        }
    }
    let at = match best {
        Some((_, i)) => i + 1,
        None => {
            // After the leading comment block.
            let mut i = 0;
            let mut in_block = false;
            while i < lines.len() {
                let t = lines[i].trim();
                if in_block {
                    if t.contains("*/") {
                        in_block = false;
                    }
                    i += 1;
                    continue;
                }
                if t.starts_with("//") || t.is_empty() {
                    i += 1;
                } else if t.starts_with("/*") {
                    in_block = !t.contains("*/");
                    i += 1;
                } else {
                    break;
                }
            }
            i
        }
    };
    let mut out = String::with_capacity(text.len() + INCLUDE.len() + 1);
    for l in &lines[..at] {
        out.push_str(l);
    }
    if at > 0 && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(INCLUDE);
    out.push('\n');
    if best.is_none() && at < lines.len() && at > 0 {
        out.push('\n');
    }
    for l in &lines[at..] {
        out.push_str(l);
    }
    out
}

/// What it means for a swap that `g` of class `class` has no marker.
fn consequence(program: &Program, g: &Global, class: Class) -> String {
    let types = &program.types;
    let tag = match types.get(types.resolve(g.ty)) {
        Type::Record { tag, .. } => tag.clone(),
        _ => None,
    };
    let specific = match tag.as_deref() {
        Some("ratelimit_state") => Some(
            "the kernel uses it only during ___ratelimit() calls, so after a swap the new version's copy just starts rate limiting afresh",
        ),
        Some("lock_class_key") => Some(
            "a lockdep class key: locks initialized before the swap keep the old key, which is freed with the old version (with CONFIG_LOCKDEP, lockdep drops the classes of freed keys and the locks get new classes; without lockdep the key is empty and nothing is lost)",
        ),
        Some("kernel_param") => Some(
            "the kernel keeps pointers to module parameters (sysfs attributes): the loader must carry the __param section over to the new version or re-create the attributes",
        ),
        _ => None,
    };
    if let Some(s) = specific {
        return s.to_string();
    }
    if g.macro_origin
        .as_deref()
        .is_some_and(|m| m.starts_with("module_param"))
    {
        return "part of a module parameter: the kernel's sysfs attributes point at the __param entries, which point at this; the loader must carry the module's parameters over to the new version".into();
    }
    match class {
        Class::StaticOld => "after a swap the new version uses its own copy, at a new address and with its initial content; what the kernel holds points to the old copy, which is freed with the old version, and the old copy's run-time state is lost unless the replace handler copies it".into(),
        Class::StaticNew => "after a swap the new version uses its own copy at a new address; pointers the kernel holds to the old copy dangle once the old version is freed".into(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_goes_after_the_outermost_includes() {
        let c = "// SPDX\n#include <a.h>\n#ifdef X\n#include <x.h>\n#endif\n#include \"b.h\"\n\nint x;\n";
        assert_eq!(
            add_include(c),
            "// SPDX\n#include <a.h>\n#ifdef X\n#include <x.h>\n#endif\n#include \"b.h\"\n#include <linux/modswap.h>\n\nint x;\n"
        );
        let h = "/* guard */\n#ifndef A_H\n#define A_H\n#include <linux/fs.h>\nint y;\n#endif\n";
        assert_eq!(
            add_include(h),
            "/* guard */\n#ifndef A_H\n#define A_H\n#include <linux/fs.h>\n#include <linux/modswap.h>\nint y;\n#endif\n"
        );
        let bare = "/*\n * comment\n */\nint z;\n";
        assert_eq!(
            add_include(bare),
            "/*\n * comment\n */\n#include <linux/modswap.h>\n\nint z;\n"
        );
        assert!(has_include(&add_include(bare)));
    }

    #[test]
    fn declarator_end_skips_brackets_and_comments() {
        let t = "static const char *names[N(2)] /* = x */ = { \"a\" };";
        let d = Decl {
            start: 0,
            name: t.find("names").unwrap(),
            name_len: 5,
            end: t.len() - 1,
        };
        assert_eq!(after_declarator(t, &d), Some(t.rfind('=').unwrap()));
        let t = "static int x;";
        let d = Decl {
            start: 0,
            name: 11,
            name_len: 1,
            end: 12,
        };
        assert_eq!(after_declarator(t, &d), Some(12));
    }

    #[test]
    fn tokens_match_whole_identifiers() {
        let t = "static int x __read_mostly_not __read_mostly = 1;";
        let d = Decl {
            start: 0,
            name: 11,
            name_len: 1,
            end: t.len() - 1,
        };
        assert_eq!(
            find_token(t, &d, "__read_mostly"),
            t.rfind("__read_mostly ")
        );
    }
}
