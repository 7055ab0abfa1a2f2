//! Renders a [`Plan`] as C with the handlebars template
//! `templates/handler.c.hbs` (strict mode, no HTML escaping) from a typed
//! context. The plan decides what the C says; this module only formats
//! pieces (indentation, comment wrapping, column alignment) and the
//! template lays out the file.

use crate::error::{Error, Result};
use crate::plan::{Item, Plan, Todo};
use crate::regions::{begin_marker, end_marker, seal, CHECKSUM_TAG};
use serde::Serialize;
use std::collections::BTreeMap;

const TEMPLATE: &str = include_str!("../../templates/handler.c.hbs");
const NAME: &str = "handler.c";

#[derive(Serialize)]
struct Ctx {
    file_name: String,
    module: String,
    old: VersionCtx,
    new: VersionCtx,
    multi_unit: bool,
    main_file: String,
    counts: Vec<CountCtx>,
    skipped: usize,
    globals: Vec<String>,
    type_changes: Vec<String>,
    added: Vec<String>,
    removed: Vec<String>,
    notes: Vec<String>,
    todo_open: usize,
    todo_decided: usize,
    todos: Vec<TodoLine>,
    checksum_line: String,
    units: Vec<UnitCtx>,
    register: RegionCtx,
}

#[derive(Serialize)]
struct VersionCtx {
    label: String,
    detail: String,
}

#[derive(Serialize)]
struct CountCtx {
    class: String,
    count: usize,
}

#[derive(Serialize)]
struct TodoLine {
    state: &'static str,
    id: String,
    message: String,
}

#[derive(Serialize)]
struct UnitCtx {
    file: String,
    guard: String,
    function: String,
    main: bool,
    forward: Vec<String>,
    defs: Vec<DefCtx>,
    externs: Vec<String>,
    body: Vec<ItemCtx>,
    decls: RegionCtx,
    extra: RegionCtx,
}

#[derive(Serialize)]
struct DefCtx {
    text: String,
    asserts: Vec<String>,
}

#[derive(Serialize)]
struct ItemCtx {
    lines: Vec<String>,
    todo: Option<TodoCtx>,
}

#[derive(Serialize)]
struct TodoCtx {
    explain: Vec<String>,
    begin: String,
    body: Vec<String>,
    end: String,
}

#[derive(Serialize)]
struct RegionCtx {
    begin: String,
    body: Vec<String>,
    end: String,
}

/// The id of a unit's free-form region at the end of its handler function.
pub fn extra_id(stem: &str) -> String {
    format!("extra:{stem}")
}

/// The id of a unit's free-form region for declarations, before its
/// handler function.
pub fn decls_id(stem: &str) -> String {
    format!("decls:{stem}")
}

/// The id of the region that registers the handler with the loader.
pub const REGISTER_ID: &str = "register";

/// The registration as generated; a reviewer may turn it into
/// `MODSWAP_REPLACE_PREPARED(prepare, replace_module, cancel)`.
const REGISTER: &str = "MODSWAP_REPLACE(replace_module);";

/// Every region id the plan's handler has.
pub fn region_ids(plan: &Plan) -> Vec<String> {
    let mut ids: Vec<String> = plan.todos.iter().map(|t| t.id.clone()).collect();
    ids.extend(plan.units.iter().map(|u| extra_id(&u.stem)));
    ids.extend(plan.units.iter().map(|u| decls_id(&u.stem)));
    ids.push(REGISTER_ID.to_string());
    ids
}

/// Renders the handler. `kept`: bodies of decided regions to carry over,
/// by id (from a reviewed handler); the others get their TODO.
pub fn render(
    plan: &Plan,
    file_name: &str,
    kept: &BTreeMap<String, Vec<String>>,
) -> Result<String> {
    let multi = plan.units.len() > 1;
    let ctx = Ctx {
        file_name: file_name.to_string(),
        module: plan.module.clone(),
        old: VersionCtx {
            label: plan.old.label.clone(),
            detail: plan.old.detail.clone(),
        },
        new: VersionCtx {
            label: plan.new.label.clone(),
            detail: plan.new.detail.clone(),
        },
        multi_unit: multi,
        main_file: plan.units[0].file.clone(),
        counts: plan
            .counts
            .iter()
            .map(|(c, n)| CountCtx {
                class: c.as_str().into(),
                count: *n,
            })
            .collect(),
        skipped: plan.skipped,
        globals: table(
            &plan
                .globals
                .iter()
                .map(|g| {
                    [
                        g.key.clone(),
                        g.class.as_str().to_string(),
                        g.at.clone(),
                        g.action.clone(),
                    ]
                })
                .collect::<Vec<_>>(),
        ),
        type_changes: plan.type_changes.clone(),
        added: plan.added.clone(),
        removed: plan.removed.clone(),
        notes: plan.notes.clone(),
        todo_open: plan
            .todos
            .iter()
            .filter(|t| !kept.contains_key(&t.id))
            .count(),
        todo_decided: plan
            .todos
            .iter()
            .filter(|t| kept.contains_key(&t.id))
            .count(),
        todos: plan
            .todos
            .iter()
            .map(|t| TodoLine {
                state: if kept.contains_key(&t.id) {
                    "decided"
                } else {
                    "open"
                },
                id: t.id.clone(),
                message: t.message.clone(),
            })
            .collect(),
        checksum_line: format!("{CHECKSUM_TAG} 0000000000000000"),
        register: RegionCtx {
            begin: begin_marker(REGISTER_ID),
            body: kept
                .get(REGISTER_ID)
                .cloned()
                .unwrap_or_else(|| vec![REGISTER.to_string()]),
            end: end_marker(REGISTER_ID),
        },
        units: plan
            .units
            .iter()
            .enumerate()
            .map(|(i, u)| unit_ctx(plan, i, u, kept))
            .collect(),
    };
    let mut hb = handlebars::Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(handlebars::no_escape);
    hb.register_template_string(NAME, TEMPLATE)
        .map_err(|e| Error::Template {
            name: NAME.into(),
            reason: e.to_string(),
        })?;
    let text = hb.render(NAME, &ctx).map_err(|e| Error::Template {
        name: NAME.into(),
        reason: e.to_string(),
    })?;
    Ok(seal(&text))
}

/// The template's view of unit `u`, the `i`th part of the handler.
fn unit_ctx(
    plan: &Plan,
    i: usize,
    u: &crate::plan::UnitPlan,
    kept: &BTreeMap<String, Vec<String>>,
) -> UnitCtx {
    let multi = plan.units.len() > 1;
    let id = extra_id(&u.stem);
    let did = decls_id(&u.stem);
    UnitCtx {
        file: u.file.clone(),
        guard: unit_guard(u),
        function: if multi {
            format!("{}_modswap_{}", crate::util::c_ident(&plan.modname), u.stem)
        } else {
            "replace_module".into()
        },
        main: i == 0,
        forward: u.forward.clone(),
        defs: u
            .defs
            .iter()
            .map(|d| DefCtx {
                text: d.text.clone(),
                asserts: d.asserts.clone(),
            })
            .collect(),
        externs: u.externs.clone(),
        body: u.body.iter().map(|it| item(it, kept)).collect(),
        decls: RegionCtx {
            begin: begin_marker(&did),
            body: kept.get(&did).cloned().unwrap_or_default(),
            end: end_marker(&did),
        },
        extra: RegionCtx {
            begin: begin_marker(&id),
            body: kept.get(&id).cloned().unwrap_or_default(),
            end: end_marker(&id),
        },
    }
}

fn tabs(n: usize) -> String {
    "\t".repeat(n)
}

fn item(it: &Item, kept: &BTreeMap<String, Vec<String>>) -> ItemCtx {
    match it {
        Item::Code { indent, text } => ItemCtx {
            lines: vec![format!("{}{text}", tabs(*indent))],
            todo: None,
        },
        Item::Comment { indent, lines } => ItemCtx {
            lines: comment(*indent, lines),
            todo: None,
        },
        Item::Blank => ItemCtx {
            lines: vec![String::new()],
            todo: None,
        },
        Item::Todo { indent, todo } => ItemCtx {
            lines: Vec::new(),
            todo: Some(todo_ctx(*indent, todo, kept)),
        },
    }
}

fn todo_ctx(indent: usize, t: &Todo, kept: &BTreeMap<String, Vec<String>>) -> TodoCtx {
    let pad = tabs(indent);
    TodoCtx {
        explain: comment(indent, &t.explain),
        begin: format!("{pad}{}", begin_marker(&t.id)),
        body: kept.get(&t.id).cloned().unwrap_or_else(|| {
            vec![format!(
                "{pad}{}{}\");",
                crate::regions::TODO_ASSERT,
                c_string(&t.message)
            )]
        }),
        end: format!("{pad}{}", end_marker(&t.id)),
    }
}

/// The body of a C string literal.
fn c_string(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// A kernel-style comment, wrapped to 80 columns (tabs count 8).
fn comment(indent: usize, paragraphs: &[String]) -> Vec<String> {
    let pad = tabs(indent);
    let width = 80usize.saturating_sub(indent * 8 + 3).max(40);
    let mut lines = Vec::new();
    for p in paragraphs {
        lines.extend(wrap(&p.replace("*/", "* /"), width));
    }
    if lines.len() == 1 && indent * 8 + lines[0].len() + 6 <= 100 {
        return vec![format!("{pad}/* {} */", lines[0])];
    }
    let mut out = vec![format!("{pad}/*")];
    out.extend(lines.into_iter().map(|l| format!("{pad} * {l}")));
    out.push(format!("{pad} */"));
    out
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for w in text.split_whitespace() {
        if !cur.is_empty() && cur.len() + 1 + w.len() > width {
            out.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(w);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Rows as aligned columns (the last column unpadded).
fn table(rows: &[[String; 4]]) -> Vec<String> {
    let mut w = [0usize; 3];
    for r in rows {
        for (i, c) in r.iter().take(3).enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    rows.iter()
        .map(|r| {
            format!(
                "{:w0$}  {:w1$}  {:w2$}  {}",
                r[0],
                r[1],
                r[2],
                r[3],
                w0 = w[0],
                w1 = w[1],
                w2 = w[2]
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn comments_wrap_kernel_style() {
        assert_eq!(super::comment(1, &["short".into()]), ["\t/* short */"]);
        let long = "word ".repeat(30);
        let c = super::comment(1, &[long]);
        assert_eq!(c[0], "\t/*");
        assert!(c[1].starts_with("\t * word"));
        assert_eq!(c.last().unwrap(), "\t */");
        assert!(c.iter().all(|l| l.len() + 7 <= 80));
    }
}

/// The macro that selects unit `u`'s part of a handler with several parts.
fn unit_guard(u: &crate::plan::UnitPlan) -> String {
    format!("MODSWAP_UNIT_{}", u.stem)
}

/// Where a handler is compiled: a unit of the module, and what ends it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Include {
    /// The C file, relative to the module directory.
    pub unit: String,
    /// The macro to define before the `#include` (handlers with several
    /// parts), selecting the unit's part.
    pub define: Option<String>,
    /// The file to include: the handler.
    pub include: String,
    /// The lines to append to the unit: the `#define`, if any, and the
    /// `#include`.
    pub append: String,
}

/// The units `plan`'s handler, written as `file_name`, is compiled inside,
/// in the module's order: what its header tells a reader, as data.
pub fn includes(plan: &Plan, file_name: &str) -> Vec<Include> {
    let multi = plan.units.len() > 1;
    plan.units
        .iter()
        .map(|u| {
            let define = multi.then(|| unit_guard(u));
            let append = match &define {
                Some(d) => format!("\n#define {d}\n#include \"{file_name}\"\n"),
                None => format!("\n#include \"{file_name}\"\n"),
            };
            Include {
                unit: u.file.clone(),
                define,
                include: file_name.to_string(),
                append,
            }
        })
        .collect()
}
