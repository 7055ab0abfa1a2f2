//! Planning the rewrite: per global, the marker it needs against the one it
//! has, and the edit that makes them agree (or why none can); then the
//! files' new texts, with the include wherever a marker is.

use super::text::{
    add_include, after_declarator, declaration, find_marker, find_token, has_include,
    replaceable_section, replaceable_token, with_space, Decl,
};
use super::{Edit, Error, FileEdit, Marker, Rewrite};
use crate::{Analysis, GlobalAnalysis};
use modswap_ir::class::Class;
use modswap_ir::sections::Names;
use modswap_ir::{Global, Module, Program, Type};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Plans the rewrite. `root` is the directory IR paths are relative to
/// ([`modswap_source::names_root`]).
pub fn plan(root: &Path, program: &Program, analysis: &Analysis) -> Result<Rewrite, Error> {
    let mut p = Planner::new(root, program);
    for m in &program.modules {
        let ma = analysis.module(&m.name);
        for u in &m.units {
            for g in &u.globals {
                let Some(ga) = ma.and_then(|ma| ma.globals.iter().find(|x| x.key == g.key)) else {
                    continue;
                };
                p.global(m, g, ga)?;
            }
        }
    }
    p.finish()
}

/// The marker a global wants and the static section it is in.
struct Want {
    /// `__static_old(key)`, when it needs one.
    marker: Option<String>,
    /// The static section it is in now, if any.
    existing: Option<String>,
}

struct Planner<'p> {
    root: &'p Path,
    program: &'p Program,
    names: &'static Names,
    texts: BTreeMap<String, String>,
    edits: BTreeMap<String, Vec<Edit>>,
    markers: BTreeMap<(String, String), Marker>,
    /// Globals declared at the same place: by several units (a header)...
    units_at: BTreeMap<(String, u32), BTreeSet<(&'p str, &'p str)>>,
    /// ... or by one macro invocation (several objects).
    keys_at: BTreeMap<(String, u32), BTreeSet<&'p str>>,
    /// Declarations already edited (one edit per place).
    done: BTreeSet<(String, u32, u32)>,
}

impl<'p> Planner<'p> {
    fn new(root: &'p Path, program: &'p Program) -> Self {
        let mut units_at: BTreeMap<_, BTreeSet<_>> = BTreeMap::new();
        let mut keys_at: BTreeMap<_, BTreeSet<_>> = BTreeMap::new();
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
        Planner {
            root,
            program,
            names: modswap_ir::sections::names(),
            texts: BTreeMap::new(),
            edits: BTreeMap::new(),
            markers: BTreeMap::new(),
            units_at,
            keys_at,
            done: BTreeSet::new(),
        }
    }

    fn want(&self, g: &Global, class: Class) -> (Want, Option<String>) {
        let names = self.names;
        let want = match class {
            Class::StaticOld => Some(("__static_old", &names.static_old)),
            Class::StaticNew => Some(("__static_new", &names.static_new)),
            _ => None,
        };
        let marker = want.map(|(mac, _)| format!("{mac}({})", g.key));
        let section = want.map(|(_, pre)| format!("{pre}{}", g.key));
        let existing = g
            .section
            .as_deref()
            .filter(|s| names.is_static(s))
            .map(str::to_string);
        (Want { marker, existing }, section)
    }

    /// Decides global `g` of module `m`: its marker, and its edit if any.
    fn global(&mut self, m: &Module, g: &Global, ga: &GlobalAnalysis) -> Result<(), Error> {
        let (want, want_section) = self.want(g, ga.class);
        let key = (m.name.clone(), g.key.clone());
        // Nothing to do?
        if want_section.is_none() && want.existing.is_none() {
            self.markers.insert(key, Marker::NotNeeded);
            return Ok(());
        }
        if want_section.is_some() && want_section == want.existing {
            let marker = want.marker.unwrap_or_default();
            self.markers.insert(key, Marker::Present { marker });
            return Ok(());
        }
        let cannot = |why: String| Marker::Cannot {
            marker: want.marker.clone().unwrap_or_default(),
            why,
            consequence: consequence(self.program, g, ga.class),
        };
        // Markable at all?
        if want.marker.is_some() && want.existing.is_none() {
            if let Some(why) = self.unmarkable(g) {
                self.markers.insert(key, cannot(why));
                return Ok(());
            }
        }
        let place = (g.loc.file.clone(), g.span.start, g.span.name);
        if !self.done.insert(place) {
            return Ok(());
        }
        let path = self.root.join(&g.loc.file);
        let text = match self.texts.get(&g.loc.file) {
            Some(t) => t,
            None => {
                let t = std::fs::read_to_string(&path).map_err(|source| Error::Io {
                    path: path.clone(),
                    source,
                })?;
                self.texts.entry(g.loc.file.clone()).or_insert(t)
            }
        };
        let decl = declaration(text, g, &path)?;
        let (edit, marker) = match (&want.marker, &want.existing) {
            (Some(mk), Some(_)) => replace_marker(text, &decl, g, mk, &cannot),
            (None, Some(sec)) => remove_marker(text, &decl, sec),
            (Some(mk), None) => add_marker(text, &decl, g, mk, &cannot),
            (None, None) => unreachable!("handled above"),
        };
        self.edits
            .entry(g.loc.file.clone())
            .or_default()
            .extend(edit);
        self.markers.insert(key, marker);
        Ok(())
    }

    /// Why `g`'s declaration cannot take a marker, if it cannot.
    fn unmarkable(&self, g: &Global) -> Option<String> {
        if let (Some(f), Some(mac)) = (&g.function, &g.macro_origin) {
            return Some(format!(
                "declared inside the expansion of {mac}() in function {f}(); the source has no declaration to mark"
            ));
        }
        if let Some(sec) = &g.section {
            if !replaceable_section(sec) {
                let how = match &g.macro_origin {
                    Some(mac) => format!(" (by {mac}())"),
                    None => String::new(),
                };
                return Some(format!(
                    "already placed in section {sec}{how}; a declaration takes one section"
                ));
            }
        }
        let at = (g.loc.file.clone(), g.span.start);
        let users = self.units_at.get(&at).map(|v| v.len()).unwrap_or(0);
        if users > 1 {
            return Some(format!(
                "defined in {} which {users} units include: each has its own copy, and one section per key cannot hold them",
                g.loc.file
            ));
        }
        let objects = self.keys_at.get(&at).map(|v| v.len()).unwrap_or(0);
        if g.macro_origin.is_some() && objects > 1 {
            return Some(format!(
                "declared by {}() together with other objects; a marker before it would not name this one",
                g.macro_origin.as_deref().unwrap_or("a macro")
            ));
        }
        None
    }

    /// Applies the edits; adds the include where markers remain.
    fn finish(mut self) -> Result<Rewrite, Error> {
        let mut out = Vec::new();
        for (file, mut es) in std::mem::take(&mut self.edits) {
            let old = self.texts.remove(&file).unwrap_or_default();
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
                    path: self.root.join(&file),
                    file,
                    old,
                    new,
                });
            }
        }
        self.include_only(&mut out)?;
        out.sort_by(|a, b| a.file.cmp(&b.file));
        Ok(Rewrite {
            edits: out,
            markers: self.markers,
        })
    }

    /// Files whose markers are all right but that lack the include.
    fn include_only(&self, out: &mut Vec<FileEdit>) -> Result<(), Error> {
        let mut marked_files: BTreeSet<String> = BTreeSet::new();
        for m in &self.program.modules {
            for u in &m.units {
                for g in &u.globals {
                    if matches!(
                        self.markers.get(&(m.name.clone(), g.key.clone())),
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
            let path = self.root.join(&file);
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
        Ok(())
    }
}

/// A stale marker of ours: replace it.
fn replace_marker(
    text: &str,
    decl: &Decl,
    g: &Global,
    mk: &str,
    cannot: &dyn Fn(String) -> Marker,
) -> (Option<Edit>, Marker) {
    match find_marker(text, decl) {
        Some((at, len)) => (
            Some(Edit {
                at,
                len,
                text: mk.to_string(),
            }),
            Marker::Added {
                marker: mk.to_string(),
            },
        ),
        None => (
            None,
            cannot(format!(
                "its section {} comes from a macro, not from a marker in the source",
                g.section.as_deref().unwrap_or_default()
            )),
        ),
    }
}

/// A marker the global no longer needs: remove it.
fn remove_marker(text: &str, decl: &Decl, sec: &str) -> (Option<Edit>, Marker) {
    match find_marker(text, decl) {
        Some((at, len)) => {
            let (at, len) = with_space(text, at, len);
            let old = text[at..at + len].trim().to_string();
            let edit = Edit {
                at,
                len,
                text: String::new(),
            };
            (Some(edit), Marker::Removed { marker: old })
        }
        None => (
            None,
            Marker::Cannot {
                marker: String::new(),
                why: format!(
                    "it is in {sec} but needs no static section, and the section comes from a macro"
                ),
                consequence: "it keeps a static section it does not need; harmless".into(),
            },
        ),
    }
}

/// A marker the global needs and lacks: add it.
fn add_marker(
    text: &str,
    decl: &Decl,
    g: &Global,
    mk: &str,
    cannot: &dyn Fn(String) -> Marker,
) -> (Option<Edit>, Marker) {
    let edit = match &g.section {
        Some(sec) => {
            // __read_mostly / __ro_after_init: replace the token.
            let token = replaceable_token(sec);
            match token.and_then(|t| find_token(text, decl, t)) {
                Some(at) => Some(Edit {
                    at,
                    len: token.unwrap_or_default().len(),
                    text: mk.to_string(),
                }),
                None => {
                    return (
                        None,
                        cannot(format!(
                            "already placed in section {sec} by a macro the rewrite cannot see"
                        )),
                    )
                }
            }
        }
        None if g.macro_origin.is_some() => Some(Edit {
            at: decl.start,
            len: 0,
            text: format!("{mk} "),
        }),
        None => after_declarator(text, decl).map(|at| {
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
        Some(e) => (
            Some(e),
            Marker::Added {
                marker: mk.to_string(),
            },
        ),
        None => (
            None,
            cannot("the end of its declarator was not found".into()),
        ),
    }
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
