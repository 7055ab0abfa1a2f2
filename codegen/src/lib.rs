//! Generates `replace_module()` handlers for review: the code that hands a
//! module's state from the loaded version to the new one (Lee & Chang,
//! "Hotswapping Linux kernel modules", 3.2.2 and 4.1).
//!
//! The stages, each a module:
//! 1. [`version`]: find and parse both versions (a directory or a git
//!    revision for the old one, with the new version's Kbuild flags);
//! 2. [`classes`]: the class of every global (markers, then annotate's
//!    analysis);
//! 3. [`types`]: compare the versions' types by layout;
//! 4. [`plan`]: decide, per global, what the handler does (copies,
//!    re-assignments, renamed old definitions via [`cdecl`], TODOs,
//!    errors);
//! 5. [`render`]: lay the plan out as C with the handlebars template;
//! 6. [`regions`] and [`write_handler`]: carry a reviewer's filled-in
//!    TODOs over, refuse to lose work, write atomically.
//!
//! ## Where the handler is compiled
//!
//! The handler must name the new version's globals, most of which are
//! `static` (internal linkage), and their types, often defined in the .c
//! file itself. C offers no way to reach those from another translation
//! unit, and the loader binds only `_old_<name>` symbols (to the old
//! version, locals included), nothing of the new version. So the generated
//! file is compiled *inside* the unit whose state it carries over: the unit
//! ends with `#include "<module>_modswap.c"`. When the state lives in
//! several units, each includes the file after `#define
//! MODSWAP_UNIT_<unit>` and gets its own part (`<modname>_modswap_<unit>()`),
//! which the first unit's `replace_module()` calls in order. The whole file
//! is inside `#ifndef MODSWAP_NO_HANDLER`; `modswap handler` defines that
//! macro when it parses the versions, so the IR is the module's own code.
//!
//! ## Function-scope statics
//!
//! A static inside a function has the symbol `name.N` (N chosen by the
//! compiler) and no C name outside its function, in either version. Such a
//! static is fine as `static_old`/`static_new` (the loader handles its
//! section); when it needs code (transfer, re-pointing), the handler gets a
//! TODO that explains the options: mark it `__static_old(func.name)` in
//! both versions, or move it to file scope in the new version and bind the
//! old one with an asm label (`extern T _old_x __asm__("_old_x.N")
//! __modswap_old;`, the loader resolves `_old_` + any symtab name).

#![forbid(unsafe_code)]

pub mod cdecl;
pub mod classes;
pub mod error;
pub mod plan;
pub mod regions;
pub mod render;
pub mod types;
mod util;
pub mod version;

pub use error::{Error, Result, Side};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Generated handlers are named `<module>` + this.
pub const HANDLER_SUFFIX: &str = "_modswap.c";
/// Defined when modswap parses a module: hides the handler from the IR.
pub const NO_HANDLER_MACRO: &str = "MODSWAP_NO_HANDLER";

/// The classes of the new version's globals: its markers, then annotate's
/// analysis of its IR for the rest.
pub fn classify(pair: &version::Pair) -> Result<classes::Classes> {
    let analysis =
        modswap_analyze::analyze(&pair.new.program).map_err(|cause| Error::Analysis {
            side: Side::New,
            cause,
        })?;
    let module = pair
        .new
        .program
        .module(&pair.module)
        .expect("version::load keeps the chosen module");
    Ok(classes::Classes::new(module, Some(&analysis)))
}

/// The default output file: `<new dir>/<module>_modswap.c`.
pub fn default_output(pair: &version::Pair) -> PathBuf {
    pair.new
        .dir
        .dir
        .join(format!("{}{HANDLER_SUFFIX}", pair.module))
}

/// What [`write_handler`] did.
#[derive(Debug, Clone)]
pub struct Written {
    pub path: PathBuf,
    /// The file's text.
    pub text: String,
    /// TODOs still open.
    pub open: usize,
    /// Their ids, in the file's order.
    pub open_ids: Vec<String>,
    /// TODOs decided in a reviewed handler and carried over.
    pub decided: usize,
    /// The file already had exactly this text (left untouched).
    pub unchanged: bool,
    /// The units the handler is compiled inside, and how.
    pub includes: Vec<render::Include>,
}

/// How [`write_handler_with`] writes.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// Overwrite what [`write_handler`] would refuse to.
    pub force: bool,
    /// Decisions, as a reviewer would write them: TODO id -> the code that
    /// replaces the TODO (its lines indented like the TODO).
    pub decide: BTreeMap<String, String>,
}

/// Renders `plan` to `path`. When `path` holds a reviewed handler, its
/// decided regions are carried over; it refuses (writing nothing) to
/// overwrite a file that `modswap handler` did not write, a handler edited
/// outside its regions, or one whose regions with content would have no
/// place in the new handler, unless `force`. The file is written atomically
/// (a temporary file in the same directory, renamed).
pub fn write_handler(plan: &plan::Plan, path: &Path, force: bool) -> Result<Written> {
    let opts = WriteOptions {
        force,
        ..WriteOptions::default()
    };
    write_handler_with(plan, path, &opts)
}

/// [`write_handler`], with [`WriteOptions`]: decisions are written into
/// their TODOs' regions (and kept, like a reviewer's, from then on).
pub fn write_handler_with(plan: &plan::Plan, path: &Path, opts: &WriteOptions) -> Result<Written> {
    let force = opts.force;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| format!("{}{HANDLER_SUFFIX}", plan.module));
    let existing = match std::fs::read_to_string(path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(cause) => {
            return Err(Error::Io {
                path: path.to_path_buf(),
                cause,
            })
        }
    };
    let mut kept = BTreeMap::new();
    if let Some(text) = &existing {
        match regions::reviewed(text) {
            Ok(r) => kept = r.kept,
            Err(_) if force => {}
            Err(regions::Refusal::NotGenerated) => {
                return Err(Error::NotGenerated {
                    path: path.to_path_buf(),
                })
            }
            Err(regions::Refusal::Edited(reason)) => {
                return Err(Error::EditedOutsideRegions {
                    path: path.to_path_buf(),
                    reason,
                })
            }
        }
    }
    let ids = render::region_ids(plan);
    let lost: Vec<String> = kept
        .iter()
        .filter(|(id, body)| !ids.contains(id) && regions::has_content(body))
        .map(|(id, _)| id.clone())
        .collect();
    if !lost.is_empty() && !force {
        return Err(Error::WouldLoseWork {
            path: path.to_path_buf(),
            ids: lost,
        });
    }
    kept.retain(|id, _| ids.contains(id));
    decide(plan, &name, &opts.decide, &mut kept)?;
    let text = render::render(plan, &name, &kept)?;
    let decided = plan
        .todos
        .iter()
        .filter(|t| kept.contains_key(&t.id))
        .count();
    let open_ids: Vec<String> = plan
        .todos
        .iter()
        .filter(|t| !kept.contains_key(&t.id))
        .map(|t| t.id.clone())
        .collect();
    let written = Written {
        path: path.to_path_buf(),
        open: plan.todos.len() - decided,
        open_ids,
        decided,
        unchanged: existing.as_deref() == Some(text.as_str()),
        includes: render::includes(plan, &name),
        text,
    };
    if !written.unchanged {
        modswap_util::write_atomic(path, written.text.as_bytes()).map_err(|cause| Error::Io {
            path: path.to_path_buf(),
            cause,
        })?;
    }
    Ok(written)
}

/// Puts each decision into `kept` as its region's body, indented like the
/// TODO it replaces.
fn decide(
    plan: &plan::Plan,
    name: &str,
    decisions: &BTreeMap<String, String>,
    kept: &mut BTreeMap<String, Vec<String>>,
) -> Result<()> {
    if decisions.is_empty() {
        return Ok(());
    }
    let text = render::render(plan, name, kept)?;
    for (id, code) in decisions {
        let Some(indent) = plan
            .todos
            .iter()
            .any(|t| &t.id == id)
            .then(|| regions::indent(&text, id))
            .flatten()
        else {
            return Err(Error::NoSuchTodo {
                id: id.clone(),
                todos: plan.todos.iter().map(|t| t.id.clone()).collect(),
            });
        };
        let body = code.lines().map(|l| format!("{indent}{l}")).collect();
        kept.insert(id.clone(), body);
    }
    Ok(())
}
