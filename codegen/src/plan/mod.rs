//! The plan: what the handler does for each global, decided from the two
//! versions' IRs, types and classes. Rendering (`render`) only lays it out.
//!
//! Per global of the new version (paired with the old one by key: the C
//! name, or `function.name` for a function-scope static):
//! - `transfer`: `x = _old_x;` (arrays and records with `const` members by
//!   `memcpy`); when the type changed, a renamed copy of the old definition
//!   and a member-by-member copy, with a TODO for every member that cannot
//!   be copied (new members, shrinking arrays, changed unions, narrowing or
//!   incompatible types);
//! - `static_old`: the members that point into the module (its functions,
//!   string literals, its objects outside static sections; not
//!   `THIS_MODULE`, not the kernel's functions) are re-assigned from the new
//!   version's initializer; members the analysis says are set at run time
//!   become TODOs. A changed size or layout is an error;
//! - `static_new`: nothing (the loader installs the new contents); a changed
//!   size or layout is an error;
//! - `none`: nothing.
//!
//! Objects reached through pointers whose record type changed keep the old
//! layout: each such pointer in transferred or kept state is a TODO.
//! Function-scope statics cannot be named outside their function, so those
//! that need code are TODOs explaining the options. Every TODO is a
//! `static_assert(0, "TODO(modswap): ...")` in a marked region, so the file
//! does not compile until someone decides.

use crate::cdecl::{Def, OldDecls};
use crate::classes::{is_bookkeeping, Classes};
use crate::error::{Error, Result};
use crate::types::{has_const_member, is_const, members, Types};
use crate::util::{c_ident, rel_to};
use crate::version::{Pair, VersionId};
use modswap_ir::class::Class;
use modswap_ir::sections::{self, SectionChange};
use modswap_ir::{Global, Init, Module, Ref, Type, TypeId, TypeTable, Unit};
use std::collections::{BTreeMap, BTreeSet};

pub use compat::Incompatible;

mod compat;
mod static_old;
mod todos;
mod transfer;

/// A decision left to the reviewer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Todo {
    /// Stable and unique in the file: `init:a.x`, `convert:a.u`, ...
    pub id: String,
    /// The one-line message of the `static_assert`.
    pub message: String,
    /// Comment lines above the region: why, and the options.
    pub explain: Vec<String>,
}

/// One line (or region) of a handler function body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Code { indent: usize, text: String },
    Comment { indent: usize, lines: Vec<String> },
    Blank,
    Todo { indent: usize, todo: Todo },
}

/// The part of the handler compiled in one translation unit.
#[derive(Debug, Clone)]
pub struct UnitPlan {
    /// The C file, relative to the module directory.
    pub file: String,
    /// Its name as a C identifier fragment (`namei_vfat`).
    pub stem: String,
    pub forward: Vec<String>,
    pub defs: Vec<Def>,
    pub externs: Vec<String>,
    pub body: Vec<Item>,
}

/// One line of the review summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalLine {
    pub key: String,
    pub class: Class,
    /// `file.c:12`.
    pub at: String,
    pub action: String,
}

/// Everything the handler says and does.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The module's Makefile stem.
    pub module: String,
    /// KBUILD_MODNAME.
    pub modname: String,
    pub old: VersionId,
    pub new: VersionId,
    /// The units that get a part of the handler, in the module's order;
    /// the first holds `replace_module()`.
    pub units: Vec<UnitPlan>,
    pub globals: Vec<GlobalLine>,
    pub counts: Vec<(Class, usize)>,
    /// Objects in special sections (`.modinfo`, `__param`, ...) left out.
    pub skipped: usize,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub type_changes: Vec<String>,
    pub notes: Vec<String>,
    pub todos: Vec<Todo>,
}

/// Plans the handler of `pair`'s module. Fails, listing every problem,
/// when the versions cannot be swapped (static objects that change layout,
/// static sections added or dropped, globals that must be marked but are
/// not).
pub fn plan(pair: &Pair, new_classes: &Classes) -> Result<Plan> {
    let old_p = &pair.old.program;
    let new_p = &pair.new.program;
    let om = old_p.module(&pair.module).ok_or_else(|| Error::Unrelated {
        reason: format!("the old version has no module {}", pair.module),
    })?;
    let nm = new_p.module(&pair.module).ok_or_else(|| Error::Unrelated {
        reason: format!("the new version has no module {}", pair.module),
    })?;
    let types = Types::new(&old_p.types, &new_p.types);
    let mut b = Builder {
        types: &types,
        old_dir: &old_p.dir,
        nm,
        problems: Vec::new(),
        notes: pair.notes.clone(),
        todos: Vec::new(),
        globals: Vec::new(),
        added: Vec::new(),
        removed: Vec::new(),
        type_changes: Vec::new(),
        counts: BTreeMap::new(),
        skipped: 0,
        loop_depth: 0,
        not_analysed: 0,
    };
    let old = OldGlobals::new(om, &old_p.dir);
    let mut paired: BTreeSet<(String, String)> = BTreeSet::new();
    let mut units = Vec::new();
    for u in &nm.units {
        units.push(b.unit(u, &new_p.dir, &old, new_classes, &mut paired));
    }
    b.removed_globals(om, &old_p.dir, &paired);
    if !b.problems.is_empty() {
        return Err(Error::Plan {
            module: pair.module.clone(),
            problems: b.problems.iter().map(ToString::to_string).collect(),
        });
    }
    Ok(b.finish(pair, units))
}

/// The old version's globals by key, for pairing, and by name, for
/// `_old_` ambiguity.
struct OldGlobals<'a> {
    dir: &'a str,
    by_key: BTreeMap<&'a str, Vec<(&'a Unit, &'a Global)>>,
    names: BTreeMap<&'a str, Vec<String>>,
}

impl<'a> OldGlobals<'a> {
    fn new(om: &'a Module, dir: &'a str) -> Self {
        let mut by_key: BTreeMap<&str, Vec<(&Unit, &Global)>> = BTreeMap::new();
        let mut names: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for u in &om.units {
            for g in &u.globals {
                by_key.entry(&g.key).or_default().push((u, g));
                if g.function.is_none() {
                    names.entry(&g.name).or_default().push(rel_to(&u.file, dir));
                }
            }
        }
        OldGlobals { dir, by_key, names }
    }

    /// The old global paired with new global `g` of unit `file`.
    fn pair(&self, g: &Global, file: &str) -> Option<(&'a Unit, &'a Global)> {
        match self.by_key.get(g.key.as_str()).map(Vec::as_slice) {
            Some([one]) => Some(*one),
            Some(many) => many
                .iter()
                .find(|(ou, _)| rel_to(&ou.file, self.dir) == file)
                .copied(),
            None => None,
        }
    }
}

impl<'t, 'a> Builder<'t, 'a> {
    /// The part of the handler for new unit `u`.
    fn unit(
        &mut self,
        u: &Unit,
        new_dir: &str,
        old: &OldGlobals<'_>,
        new_classes: &Classes,
        paired: &mut BTreeSet<(String, String)>,
    ) -> UnitPlan {
        let types = self.types;
        let b = self;
        let old_names = &old.names;
        let file = rel_to(&u.file, new_dir);
        let mut part = Part {
            decls: OldDecls::new(types),
            externs: Vec::new(),
            body: Vec::new(),
        };
        for g in &u.globals {
            if is_bookkeeping(g) {
                b.skipped += 1;
                continue;
            }
            let old = old.pair(g, &file);
            if let Some((ou, og)) = old {
                paired.insert((ou.file.clone(), og.key.clone()));
            }
            let Some(c) = new_classes.get(&g.key) else {
                continue;
            };
            let old_ambiguous = old
                .map(|(_, og)| old_names.get(og.name.as_str()).map_or(0, Vec::len) > 1)
                .unwrap_or(false);
            let old_files = old
                .and_then(|(_, og)| old_names.get(og.name.as_str()))
                .cloned()
                .unwrap_or_default();
            b.global(
                &mut part,
                &file,
                g,
                old.map(|(_, og)| og),
                c,
                (old_ambiguous, &old_files),
            );
        }
        let Part {
            decls,
            externs,
            body,
        } = part;
        UnitPlan {
            file: file.clone(),
            stem: c_ident(
                std::path::Path::new(&file)
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default()
                    .as_str(),
            ),
            forward: decls.forward.iter().map(|f| format!("{f};")).collect(),
            defs: decls.defs,
            externs,
            body,
        }
    }

    /// The old version's globals the new one lacks (a problem when they are in
    /// a static section).
    fn removed_globals(&mut self, om: &Module, old_dir: &str, paired: &BTreeSet<(String, String)>) {
        let b = self;
        for u in &om.units {
            for g in &u.globals {
                if is_bookkeeping(g) || paired.contains(&(u.file.clone(), g.key.clone())) {
                    continue;
                }
                let at = format!("{}:{}", rel_to(&u.file, old_dir), g.loc.line);
                b.removed.push(format!("{} (old {at})", g.key));
                if let Some(s) = static_section(g) {
                    b.problems.push(Incompatible::Removed {
                        key: g.key.clone(),
                        at,
                        section: s.to_string(),
                    });
                }
            }
        }
    }

    /// The plan, from the units' parts and what the globals added up to.
    fn finish(self, pair: &Pair, units: Vec<UnitPlan>) -> Plan {
        let mut b = self;
        if b.not_analysed > 0 {
            b.notes.push(format!(
                "{} unmarked global(s) were not classified (no analysis available): they are \
             treated as `none` and not transferred",
                b.not_analysed
            ));
        }
        // Keep the units that have something, and always the first.
        let mut kept: Vec<UnitPlan> = Vec::new();
        for (i, u) in units.into_iter().enumerate() {
            if i == 0 || !u.body.is_empty() || !u.externs.is_empty() || !u.defs.is_empty() {
                kept.push(u);
            }
        }
        if kept.len() > 1 && kept[0].body.is_empty() && kept[0].externs.is_empty() {
            kept.remove(0);
        }
        b.notes.sort();
        b.notes.dedup();
        let counts = [
            Class::StaticOld,
            Class::StaticNew,
            Class::Transfer,
            Class::None,
        ]
        .into_iter()
        .map(|c| (c, b.counts.get(&c).copied().unwrap_or(0)))
        .collect();
        Plan {
            module: pair.module.clone(),
            modname: b.nm.modname.clone(),
            old: pair.old.id.clone(),
            new: pair.new.id.clone(),
            units: kept,
            globals: b.globals,
            counts,
            skipped: b.skipped,
            added: b.added,
            removed: b.removed,
            type_changes: b.type_changes,
            notes: b.notes,
            todos: b.todos,
        }
    }
}

fn static_section(g: &Global) -> Option<&str> {
    g.section
        .as_deref()
        .filter(|s| sections::names().is_static(s))
}

struct Part<'t, 'a> {
    decls: OldDecls<'t, 'a>,
    externs: Vec<String>,
    body: Vec<Item>,
}

impl Part<'_, '_> {
    /// Appends one global's statements under a one-line comment, separated
    /// from the previous global's by a blank line.
    fn push_block(&mut self, comment: String, body: Vec<Item>) {
        if !self.body.is_empty() {
            self.body.push(Item::Blank);
        }
        self.body.push(Item::Comment {
            indent: 1,
            lines: vec![comment],
        });
        self.body.extend(body);
    }
}

struct Builder<'t, 'a> {
    types: &'t Types<'a>,
    old_dir: &'a str,
    nm: &'a Module,
    problems: Vec<Incompatible>,
    notes: Vec<String>,
    todos: Vec<Todo>,
    globals: Vec<GlobalLine>,
    added: Vec<String>,
    removed: Vec<String>,
    type_changes: Vec<String>,
    counts: BTreeMap<Class, usize>,
    skipped: usize,
    loop_depth: usize,
    not_analysed: usize,
}

impl<'t, 'a> Builder<'t, 'a> {
    fn todo(&mut self, out: &mut Vec<Item>, indent: usize, todo: Todo) {
        self.todos.push(todo.clone());
        out.push(Item::Todo { indent, todo });
    }

    #[allow(clippy::too_many_arguments)]
    fn global(
        &mut self,
        part: &mut Part<'t, 'a>,
        file: &str,
        g: &Global,
        old: Option<&Global>,
        c: &crate::classes::Classified,
        (old_ambiguous, old_files): (bool, &[String]),
    ) {
        let at = format!("{file}:{}", g.loc.line);
        *self.counts.entry(c.class).or_default() += 1;
        if c.reason == crate::classes::NOT_ANALYSED {
            self.not_analysed += 1;
        }
        let new_t = self.types.new;
        let type_same = old.map(|og| self.types.same(og.ty, g.ty));
        if let (Some(og), Some(false)) = (old, type_same) {
            self.type_changes.push(format!(
                "{} ({}): {}",
                g.key,
                new_t.declare(g.ty, ""),
                self.types.diff(og.ty, g.ty).join("; ")
            ));
        }
        if old.is_none() {
            self.added.push(format!("{} ({at}, {})", g.key, c.class));
        }
        if let Some(a) = c.analysis_class {
            self.notes.push(format!(
                "{} is marked {} but annotate's analysis says {a}; the marker decides",
                g.key, c.class
            ));
        }
        // Static sections must match one to one.
        let change = SectionChange::between(old.and_then(static_section), static_section(g));
        if let Some(change) = change {
            self.problems.push(Incompatible::Section {
                key: g.key.clone(),
                at,
                change,
                new_global: old.is_none(),
            });
            return;
        }
        if let Some(w) = c.wanted {
            if self.unmarked(part, g, c, w, &at) {
                return;
            }
        }
        // A static section keeps its size and layout across a swap.
        if let (Class::StaticNew | Class::StaticOld, Some(og), Some(false)) =
            (c.class, old, type_same)
        {
            self.problems.push(Incompatible::Layout {
                key: g.key.clone(),
                at,
                class: c.class,
                diff: self.types.diff(og.ty, g.ty).join("; "),
            });
            return;
        }
        match c.class {
            Class::None => self.line(g, c.class, &at, "nothing to do"),
            Class::StaticNew => self.line(g, c.class, &at, "replaced by the new contents (loader)"),
            Class::StaticOld => self.static_old(part, g, c, &at),
            Class::Transfer => {
                self.transfer(part, g, old, c, &at, type_same, (old_ambiguous, old_files))
            }
        }
    }

    fn line(&mut self, g: &Global, class: Class, at: &str, action: &str) {
        self.globals.push(GlobalLine {
            key: g.key.clone(),
            class,
            at: at.to_string(),
            action: action.to_string(),
        });
    }

    fn push_global(
        &mut self,
        part: &mut Part<'t, 'a>,
        g: &Global,
        og: &Global,
        at: &str,
        action: &str,
        body: Vec<Item>,
    ) {
        let old_at = if og.loc.file.is_empty() {
            String::new()
        } else {
            let f = rel_to(&og.loc.file, self.old_dir);
            format!(", old {f}:{}", og.loc.line)
        };
        let class = Class::Transfer;
        self.line(g, class, at, action);
        part.push_block(format!("{} ({at}{old_at}): {class}, {action}", g.key), body);
    }
}
