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
use modswap_ir::sections;
use modswap_ir::{Global, Init, Module, Ref, Type, TypeId, TypeTable, Unit};
use std::collections::{BTreeMap, BTreeSet};

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
    // Old globals by key, for pairing; names, for `_old_` ambiguity.
    let mut old_by_key: BTreeMap<&str, Vec<(&Unit, &Global)>> = BTreeMap::new();
    let mut old_names: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for u in &om.units {
        for g in &u.globals {
            old_by_key.entry(&g.key).or_default().push((u, g));
            if g.function.is_none() {
                old_names
                    .entry(&g.name)
                    .or_default()
                    .push(rel_to(&u.file, &old_p.dir));
            }
        }
    }
    let mut paired: BTreeSet<(String, String)> = BTreeSet::new();
    let mut units = Vec::new();
    for u in &nm.units {
        let file = rel_to(&u.file, &new_p.dir);
        let mut part = Part {
            decls: OldDecls::new(&types),
            externs: Vec::new(),
            body: Vec::new(),
        };
        for g in &u.globals {
            if is_bookkeeping(g) {
                b.skipped += 1;
                continue;
            }
            let old = match old_by_key.get(g.key.as_str()).map(Vec::as_slice) {
                Some([one]) => Some(*one),
                Some(many) => many
                    .iter()
                    .find(|(ou, _)| rel_to(&ou.file, &old_p.dir) == file)
                    .copied(),
                None => None,
            };
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
        units.push(UnitPlan {
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
        });
    }
    // Removed globals.
    for u in &om.units {
        for g in &u.globals {
            if is_bookkeeping(g) || paired.contains(&(u.file.clone(), g.key.clone())) {
                continue;
            }
            let at = format!("{}:{}", rel_to(&u.file, &old_p.dir), g.loc.line);
            b.removed.push(format!("{} (old {at})", g.key));
            if let Some(s) = static_section(g) {
                b.problems.push(format!(
                    "{} ({at}, old version) is in static section {s}, and the new version no \
                     longer has it: a swap cannot drop a static section (the kernel may still \
                     hold its address; the loader refuses the swap). Keep the object in the new \
                     version, marked the same way, even if unused.",
                    g.key
                ));
            }
        }
    }
    if !b.problems.is_empty() {
        return Err(Error::Plan {
            module: pair.module.clone(),
            problems: b.problems,
        });
    }
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
    Ok(Plan {
        module: pair.module.clone(),
        modname: nm.modname.clone(),
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
    })
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
    problems: Vec<String>,
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
        let old_t = self.types.old;
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
        let new_sec = static_section(g);
        let old_sec = old.and_then(static_section);
        if new_sec != old_sec {
            let msg = match (old_sec, new_sec) {
                (None, Some(s)) if old.is_some() => format!(
                    "{} ({at}) is in static section {s} in the new version but in none in the \
                     old one: a swap cannot add a static section (the old object is an ordinary \
                     global that moves; the loader refuses the swap). Mark it the same way in \
                     both versions, or leave it unmarked in the new one.",
                    g.key
                ),
                (None, Some(s)) => format!(
                    "{} ({at}) is new and in static section {s}: a swap cannot add a static \
                     section (the loader refuses it). Leave the new global unmarked (it keeps \
                     its initializer), or add it to the old version first.",
                    g.key
                ),
                (Some(o), None) => format!(
                    "{} ({at}) is in static section {o} in the old version but in none in the \
                     new one: a swap cannot drop a static section (the kernel still holds the \
                     object's address; the loader refuses the swap). Keep the marker.",
                    g.key
                ),
                (Some(o), Some(s)) => format!(
                    "{} ({at}) moved from static section {o} to {s}: a swap cannot change an \
                     object's static section. Keep the old marker.",
                    g.key
                ),
                (None, None) => unreachable!(),
            };
            self.problems.push(msg);
            return;
        }
        if let Some(w) = c.wanted {
            // The analysis wants a static section, neither version has one:
            // the object moves in this swap, whatever the analysis says.
            if g.function.is_some() && g.macro_origin.is_some() {
                self.notes.push(format!(
                    "{} ({at}) should be {w} ({}), but a macro declares it inside a function, so \
                     it cannot be marked; it moves in a swap",
                    g.key, c.reason
                ));
                self.line(g, c.class, &at, "cannot be marked (declared by a macro)");
                return;
            }
            let kernel_object = crate::types::kernel_object(self.types.new, g.ty);
            match (w, kernel_object) {
                (Class::StaticOld, None) => {
                    self.notes.push(format!(
                        "{} ({at}): annotate says static_old ({}), but neither version marks \
                         it, so it moves and is transferred; if the kernel keeps its address, \
                         mark it __static_old({}) in both versions",
                        g.key, c.reason, g.key
                    ));
                }
                (Class::StaticOld, Some(obj)) => {
                    let mut body = Vec::new();
                    self.todo(
                        &mut body,
                        1,
                        Todo {
                            id: format!("unmarked:{}", g.key),
                            message: format!(
                                "{} is not marked static_old: decide what happens to the old one",
                                g.key
                            ),
                            explain: vec![format!(
                                "annotate says {} must keep its address ({}), but neither \
                                 version marks it, so it moves: the new version's own {}, as \
                                 its initializer sets it, replaces the old one, and nothing is \
                                 copied, because it holds a kernel object tied to its address \
                                 ({obj}). Leave this region empty if the old one is idle when \
                                 the swap runs (e.g. an unlocked lock, an empty list); else \
                                 carry over what it holds here. Mark it __static_old({}) in both \
                                 versions for later swaps.",
                                g.key, c.reason, g.key, g.key
                            )],
                        },
                    );
                    // Nothing is transferred: count it as `none`.
                    *self.counts.entry(c.class).or_default() -= 1;
                    *self.counts.entry(Class::None).or_default() += 1;
                    self.line(
                        g,
                        Class::None,
                        &at,
                        "not marked static_old: the new one replaces it (TODO)",
                    );
                    part.push_block(format!("{} ({at}): not marked static_old", g.key), body);
                    return;
                }
                (_, _) => {
                    self.notes.push(format!(
                        "{} ({at}): annotate says {w} ({}), but neither version marks it, so it \
                         moves; the new version's contents are used",
                        g.key, c.reason
                    ));
                    self.line(g, c.class, &at, "not marked: the new contents are used");
                    return;
                }
            }
        }
        match c.class {
            Class::None => self.line(g, c.class, &at, "nothing to do"),
            Class::StaticNew => {
                if let (Some(og), Some(false)) = (old, type_same) {
                    self.problems.push(format!(
                        "{} ({at}) is static_new, but its layout changed: {}. Its section keeps \
                         its address and size across a swap (the kernel holds pointers to it; \
                         the new contents are copied over the old ones), so its layout cannot \
                         change. Options: keep the old layout, or leave this object as it is \
                         and put what changed in a new object.",
                        g.key,
                        self.types.diff(og.ty, g.ty).join("; ")
                    ));
                    return;
                }
                self.line(g, c.class, &at, "replaced by the new contents (loader)");
            }
            Class::StaticOld => {
                if let (Some(og), Some(false)) = (old, type_same) {
                    self.problems.push(format!(
                        "{} ({at}) is static_old, but its layout changed: {}. A static_old \
                         object keeps its address and its old contents across a swap (the \
                         kernel holds pointers to it), and its section's size and layout are \
                         fixed, so it cannot grow or be re-laid out in place. Options: keep the \
                         old layout in the new version, or keep the object as it was and move \
                         the new state elsewhere (a new global, transferred or initialized by \
                         the handler).",
                        g.key,
                        self.types.diff(og.ty, g.ty).join("; ")
                    ));
                    return;
                }
                self.static_old(part, g, c, &at);
            }
            Class::Transfer => {
                let Some(og) = old else {
                    self.line(g, c.class, &at, "new: keeps its initializer");
                    return;
                };
                let mut body = Vec::new();
                if g.function.is_some() {
                    let f = g.function.as_deref().unwrap_or_default();
                    self.todo(
                        &mut body,
                        1,
                        Todo {
                            id: format!("reach:{}", g.key),
                            message: format!(
                                "transfer {}, a function-scope static the handler cannot name",
                                g.key
                            ),
                            explain: vec![
                                format!(
                                    "{} ({at}) is a static inside {f}(): C names it only \
                                     there, and its symbol is `{}.<N>` with a number the \
                                     compiler picks.",
                                    g.key, g.name
                                ),
                                format!(
                                    "Options: mark it __static_old({key}) in both versions (its \
                                     value then stays in place); or move it to file scope in the \
                                     new version and copy it from the old one, declared in the \
                                     decls: region as `extern <type> _old_{name} \
                                     __asm__(\"_old_{name}.<N>\") __modswap_old;` (N: the \
                                     `{name}.<N>` object that `modswap inspect` of the old .ko \
                                     shows referenced from {f}()); or accept that it restarts \
                                     (empty region).",
                                    key = g.key,
                                    name = g.name
                                ),
                            ],
                        },
                    );
                    self.push_global(
                        part,
                        g,
                        og,
                        &at,
                        "not reachable from the handler (TODO)",
                        body,
                    );
                    return;
                }
                if old_ambiguous {
                    self.todo(
                        &mut body,
                        1,
                        Todo {
                            id: format!("old:{}", g.key),
                            message: format!(
                                "transfer {}: _old_{} is ambiguous in the old version",
                                g.key, og.name
                            ),
                            explain: vec![format!(
                                "The old version defines {} globals named {} ({}); the loader \
                                 refuses an ambiguous _old_{} symbol. Copy the state some other \
                                 way, or accept that it restarts (empty region).",
                                old_files.len(),
                                og.name,
                                old_files.join(", "),
                                og.name
                            )],
                        },
                    );
                    self.push_global(part, g, og, &at, "old symbol ambiguous (TODO)", body);
                    return;
                }
                let old_name = format!("{}{}", sections::names().old_prefix, og.name);
                if type_same == Some(true) {
                    let decl = new_t.declare(g.ty, &old_name);
                    let decl = if decl.contains("<anonymous>") {
                        format!("typeof({}) {old_name}", g.name)
                    } else {
                        decl
                    };
                    part.externs.push(format!("extern {decl} __modswap_old;"));
                    self.assign_whole(&mut body, 1, &g.name, &old_name, g.ty, &g.key);
                    let seen = self.repoint_todos(&mut body, g);
                    self.pointer_todos(&mut body, &g.name, g.ty, 0, &seen);
                    self.push_global(part, g, og, &at, "copied", body);
                } else {
                    let decl = part.decls.declare(og.ty, &old_name, &g.name);
                    part.externs.push(format!("extern {decl} __modswap_old;"));
                    self.copy(
                        &mut part.decls,
                        &mut body,
                        1,
                        (&g.name, &old_name, &g.name),
                        (og.ty, g.ty),
                        (None, None),
                    );
                    let seen = self.repoint_todos(&mut body, g);
                    self.pointer_todos(&mut body, &g.name, g.ty, 0, &seen);
                    let (os, ns) = (old_t.declare(og.ty, ""), new_t.declare(g.ty, ""));
                    let what = match new_t.get(new_t.resolve(g.ty)) {
                        Type::Record { .. } => format!("copied member by member ({os} changed)"),
                        Type::Array { .. } => format!("copied element by element ({os} -> {ns})"),
                        _ => format!("converted ({os} -> {ns})"),
                    };
                    self.push_global(part, g, og, &at, &what, body);
                }
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

    /// Re-assignments of a static_old object from the new initializer.
    fn static_old(
        &mut self,
        part: &mut Part<'t, 'a>,
        g: &Global,
        c: &crate::classes::Classified,
        at: &str,
    ) {
        let mut from_init: Vec<(String, String)> = Vec::new();
        if let Some(init) = &g.init {
            self.init_reassigns(init, g.ty, String::new(), &mut from_init);
        }
        let mut body = Vec::new();
        let runtime: Vec<String> = c
            .reassign
            .iter()
            .flatten()
            .filter(|p| !from_init.iter().any(|(q, _)| q == *p))
            .cloned()
            .collect();
        let mut count = 0;
        if g.function.is_some() && (!from_init.is_empty() || !runtime.is_empty()) {
            let mut paths: Vec<String> = from_init.iter().map(|(p, _)| p.clone()).collect();
            paths.extend(runtime.iter().cloned());
            self.todo(
                &mut body,
                1,
                Todo {
                    id: format!("reach:{}", g.key),
                    message: format!(
                        "re-point {} ({}), a function-scope static the handler cannot name",
                        g.key,
                        paths
                            .iter()
                            .map(|p| c_path(&g.name, p))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    explain: vec![format!(
                        "{} ({at}) keeps the old version's contents, which point into the old \
                         version; C names it only inside {}(). Move it to file scope (keeping \
                         __static_old({})), then regenerate.",
                        g.key,
                        g.function.as_deref().unwrap_or_default(),
                        g.key
                    )],
                },
            );
            count = usize::MAX;
        } else if g.is_const && (!from_init.is_empty() || !runtime.is_empty()) {
            self.todo(
                &mut body,
                1,
                Todo {
                    id: format!("const:{}", g.key),
                    message: format!("re-point the members of const object {}", g.key),
                    explain: vec![format!(
                        "{} is const and static_old: it keeps pointers into the old version \
                         that the handler cannot re-assign. Make it static_new (its contents \
                         are then the new version's) or drop const.",
                        g.key
                    )],
                },
            );
            count = usize::MAX;
        } else {
            for (p, text) in &from_init {
                body.push(Item::Code {
                    indent: 1,
                    text: format!("{} = {text};", c_path(&g.name, p)),
                });
                count += 1;
            }
            for p in &runtime {
                let cp = c_path(&g.name, p);
                self.todo(
                    &mut body,
                    1,
                    Todo {
                        id: format!("runtime:{}", if p.is_empty() { &g.name } else { &cp }),
                        message: format!("re-point {cp}, which is set at run time"),
                        explain: vec![format!(
                            "annotate found that {cp} is set at run time to something in this \
                             module (not in the initializer): after a swap it still points into \
                             the old version. Set it to this version's counterpart."
                        )],
                    },
                );
                count += 1;
            }
        }
        self.pointer_todos(&mut body, &g.name, g.ty, 0, &BTreeSet::new());
        if body.is_empty() {
            self.line(
                g,
                Class::StaticOld,
                at,
                "kept (nothing points into the module)",
            );
            return;
        }
        let action = match count {
            0 => "kept".to_string(),
            usize::MAX => "kept; its members cannot be re-pointed here (TODO)".to_string(),
            n => format!("kept; {n} member(s) re-pointed"),
        };
        self.globals.push(GlobalLine {
            key: g.key.clone(),
            class: Class::StaticOld,
            at: at.to_string(),
            action: action.clone(),
        });
        part.push_block(format!("{} ({at}): static_old, {action}", g.key), body);
    }

    /// Members of a new initializer that point into the module, as
    /// (path, expression text).
    fn init_reassigns(
        &self,
        init: &Init,
        ty: TypeId,
        path: String,
        out: &mut Vec<(String, String)>,
    ) {
        let t = self.types.new;
        let r = t.resolve(ty);
        match init {
            Init::Record { fields } => {
                for f in fields {
                    if f.field.is_empty() {
                        if let Some(anon) = anonymous_holding(t, r, &f.value) {
                            self.init_reassigns(&f.value, anon, path.clone(), out);
                        }
                        continue;
                    }
                    let Some(m) = members(t, r).into_iter().find(|m| m.name == f.field) else {
                        continue;
                    };
                    let p = if path.is_empty() {
                        f.field.clone()
                    } else {
                        format!("{path}.{}", f.field)
                    };
                    self.init_reassigns(&f.value, m.ty, p, out);
                }
            }
            Init::Array { elements } => {
                let Type::Array { elem, .. } = t.get(r) else {
                    return;
                };
                for e in elements {
                    self.init_reassigns(&e.value, *elem, format!("{path}[{}]", e.index), out);
                }
            }
            Init::Expr(e) => {
                if e.constant.is_some() || matches!(t.get(r), Type::Array { .. }) {
                    return;
                }
                let into_module = e.has_string_literal
                    || e.refs.iter().any(|r| match r {
                        Ref::Function { name } => self.nm.defines_function(name),
                        Ref::Global {
                            name,
                            address: true,
                        } => {
                            name != "__this_module"
                                && self.nm.globals().any(|g| {
                                    g.function.is_none()
                                        && &g.name == name
                                        && static_section(g).is_none()
                                })
                        }
                        Ref::Global { .. } => false,
                    });
                if into_module {
                    out.push((path, e.text.clone()));
                }
            }
        }
    }

    /// `dst = src;` for types that are the same in both versions.
    fn assign_whole(
        &mut self,
        out: &mut Vec<Item>,
        indent: usize,
        dst: &str,
        src: &str,
        n: TypeId,
        label: &str,
    ) {
        let t = self.types.new;
        let text = match t.get(t.resolve(n)) {
            Type::Array { .. } => format!("memcpy({dst}, {src}, sizeof({dst}));"),
            Type::Record { tag: None, .. } => format!("memcpy(&{dst}, &{src}, sizeof({dst}));"),
            Type::Record { .. } if has_const_member(t, n) => {
                format!("memcpy(&{dst}, &{src}, sizeof({dst}));")
            }
            _ if is_const(t, n) => {
                self.todo(
                    out,
                    indent,
                    Todo {
                        id: format!("const:{label}"),
                        message: format!("{label} is const: decide how to carry it over"),
                        explain: vec![format!(
                            "{label} is declared const in the new version, so it cannot be \
                             assigned; it keeps the new version's value unless you copy it \
                             another way."
                        )],
                    },
                );
                return;
            }
            _ => format!("{dst} = {src};"),
        };
        out.push(Item::Code { indent, text });
    }

    /// Copies old type `o` at `src` into new type `n` at `dst`, member by
    /// member where the types differ. `label` is the C path without loop
    /// indices (for messages and TODO ids).
    fn copy(
        &mut self,
        decls: &mut OldDecls<'t, 'a>,
        out: &mut Vec<Item>,
        indent: usize,
        (dst, src, label): (&str, &str, &str),
        (o, n): (TypeId, TypeId),
        (ow, nw): (Option<u32>, Option<u32>),
    ) {
        let ot = self.types.old;
        let nt = self.types.new;
        let (ro, rn) = (ot.resolve(o), nt.resolve(n));
        if self.types.same(o, n) && ow == nw {
            match (ot.get(ro), nt.get(rn)) {
                (Type::Pointer { pointee: op }, Type::Pointer { pointee: np }) => {
                    let os = decls.spell(o);
                    let ns = nt.declare(n, "");
                    if os == ns {
                        out.push(Item::Code {
                            indent,
                            text: format!("{dst} = {src};"),
                        });
                    } else if matches!(ot.get(ot.resolve(*op)), Type::Function { .. })
                        || matches!(nt.get(nt.resolve(*np)), Type::Function { .. })
                    {
                        self.todo(
                            out,
                            indent,
                            Todo {
                                id: format!("convert:{label}"),
                                message: format!("{label}: function pointer type changed"),
                                explain: vec![format!(
                                    "{label} was `{os}` and is `{ns}`: a function of the old \
                                     type cannot be called as the new one. Set it to this \
                                     version's function, or leave the new value (empty region)."
                                )],
                            },
                        );
                    } else {
                        out.push(Item::Code {
                            indent,
                            text: format!("{dst} = (void *){src};"),
                        });
                    }
                }
                _ => self.assign_whole(out, indent, dst, src, n, label),
            }
            return;
        }
        let todo_convert = |why: String| Todo {
            id: format!("convert:{label}"),
            message: format!("{label}: {why}"),
            explain: vec![format!(
                "{label} cannot be copied member by member ({why}). Convert the old value \
                 (in {src}) into {dst}, or leave the new version's value (empty region)."
            )],
        };
        match (ot.get(ro).clone(), nt.get(rn).clone()) {
            (
                Type::Record {
                    kind: k1,
                    fields: Some(_),
                    ..
                },
                Type::Record {
                    kind: k2,
                    fields: Some(_),
                    ..
                },
            ) if k1 == k2 && k1 == modswap_ir::RecordKind::Struct => {
                let om = members(ot, ro);
                let nmembers = members(nt, rn);
                for m in &nmembers {
                    let d = format!("{dst}.{}", m.name);
                    let l = format!("{label}.{}", m.name);
                    match om.iter().find(|x| x.name == m.name) {
                        Some(x) => {
                            let s = format!("{src}.{}", m.name);
                            self.copy(
                                decls,
                                out,
                                indent,
                                (&d, &s, &l),
                                (x.ty, m.ty),
                                (x.bit_width, m.bit_width),
                            );
                        }
                        None => {
                            let init = self.new_init_text(&l);
                            let keep = match &init {
                                Some(v) => format!(
                                    "The new version's initializer sets it to `{v}`, which it \
                                     keeps if this region is left empty."
                                ),
                                None => "It is 0 unless set here.".into(),
                            };
                            self.todo(
                                out,
                                indent,
                                Todo {
                                    id: format!("init:{l}"),
                                    message: format!("initial value for {l}"),
                                    explain: vec![format!(
                                        "{l} is new: the old version has no value for it. {keep}"
                                    )],
                                },
                            );
                        }
                    }
                }
                let gone: Vec<String> = om
                    .iter()
                    .filter(|x| !nmembers.iter().any(|m| m.name == x.name))
                    .map(|x| x.name.clone())
                    .collect();
                if !gone.is_empty() {
                    out.push(Item::Comment {
                        indent,
                        lines: vec![format!(
                            "Removed from {label}, not copied: {}.",
                            gone.join(", ")
                        )],
                    });
                }
            }
            (Type::Record { kind: k1, .. }, Type::Record { kind: k2, .. }) => {
                let why = if k1 != k2 {
                    format!("changed from a {} to a {}", k1.keyword(), k2.keyword())
                } else {
                    format!(
                        "{} changed ({}); copy the member that is in use",
                        ot.declare(o, ""),
                        self.types.diff(o, n).join("; ")
                    )
                };
                self.todo(out, indent, todo_convert(why));
            }
            (Type::Array { elem: eo, len: lo }, Type::Array { elem: en, len: ln }) => {
                let (Some(lo), Some(ln)) = (lo, ln) else {
                    self.todo(out, indent, todo_convert("array of unknown length".into()));
                    return;
                };
                let k = lo.min(ln);
                if self.types.same(eo, en) {
                    if k > 0 {
                        let text = if lo <= ln {
                            format!("memcpy({dst}, {src}, sizeof({src}));")
                        } else {
                            format!("memcpy({dst}, {src}, sizeof({dst}));")
                        };
                        out.push(Item::Code { indent, text });
                    }
                } else if k > 0 {
                    let i = format!("i{}", self.loop_depth);
                    self.loop_depth += 1;
                    out.push(Item::Code {
                        indent,
                        text: format!("for (int {i} = 0; {i} < {k}; {i}++) {{"),
                    });
                    self.copy(
                        decls,
                        out,
                        indent + 1,
                        (
                            &format!("{dst}[{i}]"),
                            &format!("{src}[{i}]"),
                            &format!("{label}[]"),
                        ),
                        (eo, en),
                        (None, None),
                    );
                    out.push(Item::Code {
                        indent,
                        text: "}".into(),
                    });
                    self.loop_depth -= 1;
                }
                if ln > lo {
                    self.todo(
                        out,
                        indent,
                        Todo {
                            id: format!("init:{label}[{lo}..{ln}]"),
                            message: format!("initial values for {label}[{lo}..{ln}]"),
                            explain: vec![format!(
                                "{label} grew from {lo} to {ln} elements: the old version has \
                                 no values for the new ones, which keep the new version's \
                                 initializer if this region is left empty."
                            )],
                        },
                    );
                } else if ln < lo {
                    self.todo(
                        out,
                        indent,
                        Todo {
                            id: format!("shrink:{label}"),
                            message: format!(
                                "{label} shrank from {lo} to {ln} elements: decide what happens \
                                 to the old {label}[{ln}..{lo}]"
                            ),
                            explain: vec![format!(
                                "The first {ln} elements are copied; the old version's elements \
                                 {ln}..{lo} have no place in the new array. Release or move what \
                                 they hold, or accept that they are dropped (empty region)."
                            )],
                        },
                    );
                }
            }
            (a, b) if is_number(&a) && is_number(&b) => {
                let (osz, osigned) = number(&a);
                let (nsz, nsigned) = number(&b);
                let obits = ow.map(u64::from).unwrap_or(osz * 8);
                let nbits = nw.map(u64::from).unwrap_or(nsz * 8);
                let widening = (nbits > obits && (osigned == nsigned || !osigned))
                    || (nbits == obits && osigned == nsigned);
                if widening {
                    out.push(Item::Code {
                        indent,
                        text: format!("{dst} = {src};"),
                    });
                } else {
                    let why = format!(
                        "{} ({} bits) -> {} ({} bits) may not hold every old value",
                        ot.declare(o, ""),
                        obits,
                        nt.declare(n, ""),
                        nbits
                    );
                    self.todo(out, indent, todo_convert(why));
                }
            }
            _ => {
                let why = format!(
                    "type {} -> {}",
                    ot.declare(o, "").trim(),
                    nt.declare(n, "").trim()
                );
                self.todo(out, indent, todo_convert(why));
            }
        }
    }

    /// The text of the new initializer of member path `label` (`a.x`).
    fn new_init_text(&self, label: &str) -> Option<String> {
        let mut parts = label.split('.');
        let name = parts.next()?;
        let g = self
            .nm
            .globals()
            .find(|g| g.name == name && g.function.is_none())?;
        let mut cur = g.init.as_ref()?;
        for p in parts {
            cur = find_field(cur, p)?;
        }
        match cur {
            Init::Expr(e) => Some(e.text.clone()),
            _ => Some("{ ... }".into()),
        }
    }

    /// TODOs for the members of a transferred object that its new
    /// initializer points into the module: after the copy they hold the old
    /// version's value, which may point into the old version. Returns their
    /// C paths.
    fn repoint_todos(&mut self, out: &mut Vec<Item>, g: &Global) -> BTreeSet<String> {
        let mut found = Vec::new();
        if let Some(init) = &g.init {
            self.init_reassigns(init, g.ty, String::new(), &mut found);
        }
        let mut seen = BTreeSet::new();
        for (p, text) in found {
            let cp = c_path(&g.name, &p);
            self.todo(
                out,
                1,
                Todo {
                    id: format!("repoint:{cp}"),
                    message: format!("{cp} may point into the old version"),
                    explain: vec![format!(
                        "The new version initializes {cp} to `{text}`, into this module. \
                         After the copy it holds the old version's value, which may point \
                         into the old version (freed after the swap; the loader refuses a \
                         swap that leaves such a pointer): re-point it, e.g. `{cp} = {text};`, \
                         or leave it (empty region) if it never points into the module."
                    )],
                },
            );
            seen.insert(cp);
        }
        seen
    }

    /// TODOs for pointers (in the object, by value) to records of the
    /// module whose layout changed; `seen`: paths that already have a TODO.
    fn pointer_todos(
        &mut self,
        out: &mut Vec<Item>,
        path: &str,
        ty: TypeId,
        depth: u32,
        seen: &BTreeSet<String>,
    ) {
        if depth > 8 || seen.contains(path) {
            return;
        }
        let t = self.types.new;
        let r = t.resolve(ty);
        match t.get(r) {
            Type::Pointer { .. } => {
                if let Some((rec, diffs)) = self.types.changed_pointee(ty) {
                    self.todo(
                        out,
                        1,
                        Todo {
                            id: format!("pointer:{path}"),
                            message: format!(
                                "{path} points to {rec}, whose layout changed: convert what it \
                                 points to"
                            ),
                            explain: vec![format!(
                                "{path} points to objects the old version made with the old \
                                 layout of {rec} ({}). The new code would read them with the new \
                                 layout. Convert them (allocate new ones, with GFP_ATOMIC here or \
                                 beforehand in a prepare() hook, see the register region; copy \
                                 member by member; re-link), or keep {rec}'s layout.",
                                diffs.join("; ")
                            )],
                        },
                    );
                }
            }
            Type::Array { elem, .. } => {
                let e = *elem;
                self.pointer_todos(out, &format!("{path}[]"), e, depth + 1, seen);
            }
            Type::Record {
                fields: Some(_), ..
            } => {
                for m in members(t, r) {
                    self.pointer_todos(out, &format!("{path}.{}", m.name), m.ty, depth + 1, seen);
                }
            }
            _ => {}
        }
    }
}

fn is_number(t: &Type) -> bool {
    matches!(t, Type::Int { .. } | Type::Enum { .. } | Type::Bool)
}

fn number(t: &Type) -> (u64, bool) {
    match t {
        Type::Int { size, signed, .. } => (*size, *signed),
        Type::Enum { size, .. } => (*size, false),
        _ => (1, false),
    }
}

/// `vfat_fs_type` + `ops.open` -> `vfat_fs_type.ops.open`; `[2].x` -> `tbl[2].x`.
fn c_path(name: &str, path: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else if path.starts_with('[') {
        format!("{name}{path}")
    } else {
        format!("{name}.{path}")
    }
}

fn find_field<'i>(init: &'i Init, name: &str) -> Option<&'i Init> {
    let Init::Record { fields } = init else {
        return None;
    };
    for f in fields {
        if f.field == name {
            return Some(&f.value);
        }
        if f.field.is_empty() {
            if let Some(v) = find_field(&f.value, name) {
                return Some(v);
            }
        }
    }
    None
}

/// The anonymous member of record `r` that an anonymous-member initializer
/// `value` initializes (by the names it initializes).
fn anonymous_holding(t: &TypeTable, r: TypeId, value: &Init) -> Option<TypeId> {
    let Init::Record { fields: inner } = value else {
        return None;
    };
    let first = inner.iter().find(|f| !f.field.is_empty())?;
    let Type::Record {
        fields: Some(fields),
        ..
    } = t.get(r)
    else {
        return None;
    };
    fields
        .iter()
        .filter(|f| f.name.is_empty())
        .map(|f| t.resolve(f.ty))
        .find(|a| members(t, *a).iter().any(|m| m.name == first.field))
}
