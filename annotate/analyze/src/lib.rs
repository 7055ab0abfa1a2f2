//! Escape, mutation and classification of every global of a module
//! directory: where each must live across a hotswap, why, and what must be
//! re-assigned after a swap; the rewrite that marks the declarations
//! ([`rewrite`]); the report ([`report`]); and annotate's whole pipeline,
//! Kbuild to rewrite, as one call ([`run`]).
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let run = modswap_analyze::run("fs/fat".as_ref(), &Default::default())?;
//! let g = run.analysis.global("vfat", "vfat_fs_type").unwrap();
//! println!("{} {}: {}", g.key, g.class, g.reason);
//! # Ok(()) }
//! ```
//!
//! **Owns**: the analysis (reading only the IR), the source rewrite, the
//! report, the cross-check with built objects ([`elf_check`]).
//!
//! **Must not import**: libclang (`modswap-clang`) or code generation. It
//! reaches C only through the IR that `modswap-source` makes, and ELF only
//! through `modswap-elf`'s model.
//!
//! The rules:
//! - **Escape**: a global's address leaves the module when it is passed to a
//!   function the directory does not define (or through a function pointer
//!   that may point outside it), stored through a pointer into memory the
//!   module does not own (kernel objects, and heap objects, which outlive a
//!   module version), held by another escaping global (its initializer or
//!   run-time stores; transitively), returned from a function the kernel
//!   calls, exported with `EXPORT_SYMBOL*`, placed in a section the module
//!   loader hands to the kernel (`__param`, ...), or handed out through one
//!   of its members (`&drv.driver`). Flows are followed through locals,
//!   parameters and return values of the directory's functions, and
//!   through members of the directory's own record types, across the files
//!   of a module and the modules of the directory.
//! - **Mutation**: the module writes the object at run time (directly or
//!   through a pointer), or, for an escaping non-const object, the kernel
//!   does: the object holds kernel state (list links, locks, reference
//!   counts, ...), the module leaves data members zero for the kernel to
//!   fill, the kernel got it as a pointer to non-const, or the module writes
//!   objects of its type through pointers it got from the kernel.
//! - **Class**: escaping and mutated: `static_old`; escaping and not
//!   mutated: `static_new`; private but written at run time: `transfer`;
//!   otherwise `none`. Objects that are gone by the time of a swap (init
//!   and exit sections, discarded sections, `.modinfo`) are `none`.
//! - **Re-assignment** (`static_old` only): the members that point into
//!   the module's own code or data (its functions, string literals, its
//!   globals), from the initializer and from run-time stores. Not
//!   `THIS_MODULE` (the module descriptor keeps its address across swaps),
//!   not the kernel's or other modules' functions and data.

pub mod elf_check;
mod index;
mod inits;
pub mod pipeline;
mod points_to;
pub mod report;
pub mod rewrite;
mod state;

pub use pipeline::{run, Run};

use index::{GId, Index};
use modswap_ir::class::{Class, Evidence};
use modswap_ir::{Program, Type};
use points_to::{Flows, Obj, Step};
use serde::{Deserialize, Serialize};

/// The result for one module directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Analysis {
    /// The module directory (as in [`modswap_ir::Program::dir`]).
    pub dir: String,
    /// The modules, in the program's order (sorted by name).
    pub modules: Vec<ModuleAnalysis>,
    /// Things the analysis could not decide or that need attention
    /// (duplicate keys, ...), sorted.
    pub notes: Vec<String>,
}

/// One `.ko`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModuleAnalysis {
    pub name: String,
    pub modname: String,
    /// Every global the module defines, in unit then source order.
    pub globals: Vec<GlobalAnalysis>,
}

/// The decision for one global.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GlobalAnalysis {
    /// Stable key (`name`, or `function.name[.N]` for a function-scope static).
    pub key: String,
    /// The C name.
    pub name: String,
    /// Where it is declared (the macro invocation for macro-made ones).
    pub file: String,
    pub line: u32,
    pub class: Class,
    /// One sentence: why this class.
    pub reason: String,
    /// Its address leaves the module.
    pub escapes: bool,
    /// The module writes it at run time.
    pub mutated_by_module: bool,
    /// The kernel writes it (escaping, non-const objects only).
    pub mutated_by_kernel: bool,
    /// For `static_old`: member paths (`name`, `ops.open`, `[2].procname`,
    /// `[]` for a run-time index; the empty path for a global that is itself
    /// a pointer) that point into the module's own code or data and must be
    /// re-assigned after a swap: its functions, string literals, and its
    /// globals that move in a swap (pointers to objects in static address
    /// sections stay valid). Not `THIS_MODULE`, nor the kernel's or other
    /// modules' code and data. Empty for other classes.
    pub reassign: Vec<String>,
    /// The evidence chain: for an escape, each step from where the address
    /// is taken to where it leaves; then where it is written.
    pub evidence: Vec<Evidence>,
    /// Its section from an existing attribute (`__param`, `.data..read_mostly`, ...).
    pub section: Option<String>,
    /// The macro whose expansion declares it (`DEFINE_MUTEX`, `mutex_init`, ...).
    pub macro_origin: Option<String>,
    /// Declared inside a function (a function-scope static).
    pub function: Option<String>,
    pub is_const: bool,
}

impl GlobalAnalysis {
    /// Mutated at run time by the module or the kernel.
    pub fn mutated(&self) -> bool {
        self.mutated_by_module || self.mutated_by_kernel
    }
}

impl Analysis {
    pub fn module(&self, name: &str) -> Option<&ModuleAnalysis> {
        self.modules
            .iter()
            .find(|m| m.name == name || m.modname == name)
    }

    /// The decision for `key` in `module`.
    pub fn global(&self, module: &str, key: &str) -> Option<&GlobalAnalysis> {
        self.module(module)?.globals.iter().find(|g| g.key == key)
    }
}

/// What can go wrong in the analysis.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The directory is too large or too entangled for the analysis to
    /// finish within its resource budget; nothing is classified.
    #[error("{dir}: could not analyse: {reason}")]
    Budget { dir: String, reason: String },
}

/// Resource limits of the analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// An object that reaches more than this many nodes of the points-to
    /// graph is widened: taken to escape to the kernel, which may write it
    /// (sound: it can only make more globals escape).
    pub widen_at: u32,
    /// The most facts (node-object pairs plus edges) the points-to solver
    /// may hold before it gives up with [`Error::Budget`].
    pub budget: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            widen_at: points_to::WIDEN_AT,
            budget: points_to::BUDGET,
        }
    }
}

/// Analyses every global of `program`.
pub fn analyze(program: &Program) -> Result<Analysis, Error> {
    analyze_with(program, Limits::default())
}

/// [`analyze`] with other resource limits.
pub fn analyze_with(program: &Program, limits: Limits) -> Result<Analysis, Error> {
    let ix = Index::new(program);
    let flows = Flows::solve(&ix, limits).map_err(|b| Error::Budget {
        dir: program.dir.clone(),
        reason: b.reason,
    })?;
    let mut notes = Vec::new();
    let mut modules: Vec<ModuleAnalysis> = program
        .modules
        .iter()
        .map(|m| ModuleAnalysis {
            name: m.name.clone(),
            modname: m.modname.clone(),
            globals: Vec::new(),
        })
        .collect();
    let mut all: Vec<GlobalAnalysis> = (0..ix.globals.len() as GId)
        .map(|g| decide(&ix, &flows, g))
        .collect();
    let fixed: Vec<bool> = all
        .iter()
        .map(|g| matches!(g.class, Class::StaticOld | Class::StaticNew))
        .collect();
    for (g, ga) in all.iter_mut().enumerate() {
        if ga.class == Class::StaticOld {
            ga.reassign = reassign(&ix, &flows, g as GId, &fixed);
        }
    }
    for (g, ga) in all.into_iter().enumerate() {
        modules[ix.module_of_global(g as GId)].globals.push(ga);
    }
    for m in &modules {
        let mut seen = std::collections::BTreeMap::new();
        for g in &m.globals {
            if let Some(prev) = seen.insert(g.key.as_str(), g) {
                notes.push(format!(
                    "{}: key {} is used by two globals ({}:{} and {}:{}); their sections would collide",
                    m.name, g.key, prev.file, prev.line, g.file, g.line
                ));
            }
        }
    }
    notes.sort();
    notes.dedup();
    Ok(Analysis {
        dir: program.dir.clone(),
        modules,
        notes,
    })
}

fn ev(file: &str, line: u32, text: impl Into<String>) -> Evidence {
    Evidence {
        file: file.to_string(),
        line,
        text: text.into(),
    }
}

fn decide(ix: &Index<'_>, fl: &Flows<'_>, g: GId) -> GlobalAnalysis {
    let gl = ix.global(g);
    let types = &ix.program.types;
    let mut out = GlobalAnalysis {
        key: gl.key.clone(),
        name: gl.name.clone(),
        file: gl.loc.file.clone(),
        line: gl.loc.line,
        class: Class::None,
        reason: String::new(),
        escapes: false,
        mutated_by_module: false,
        mutated_by_kernel: false,
        reassign: Vec::new(),
        evidence: Vec::new(),
        section: gl.section.clone(),
        macro_origin: gl.macro_origin.clone(),
        function: gl.function.clone(),
        is_const: gl.is_const,
    };
    // Objects that do not exist any more when a swap happens.
    if let Some(sec) = &gl.section {
        if let Some(why) = modswap_ir::kernel::gone_before_swap(sec) {
            out.reason = format!("in section {sec}, {why}");
            out.evidence
                .push(ev(&gl.loc.file, gl.loc.line, format!("placed in {sec}")));
            return out;
        }
    }

    let o = Obj::Global(g, None);
    let esc: Option<&Step> = fl.escape_kernel.get(&o).or_else(|| fl.escape_heap.get(&o));
    out.escapes = esc.is_some();
    let mut escape_ev = Vec::new();
    if let Some(step) = esc {
        for (file, line, text) in fl.chain(o, step) {
            escape_ev.push(ev(&file, line, text));
        }
    }

    // Mutation by the module: (summary, evidence).
    let mut mutation: Vec<(String, Evidence)> = Vec::new();
    if let Some(s) = fl.module_writes.get(&g) {
        if !gl.is_const && gl.size != Some(0) {
            out.mutated_by_module = true;
            mutation.push((strip_text(&s.text), ev(&s.file, s.line, s.text.clone())));
        }
    }
    // The module writes objects of its type through pointers the kernel
    // hands back (container_of in a callback).
    if out.escapes && !out.mutated_by_module && !gl.is_const && gl.size != Some(0) {
        if let Some((r, s)) =
            record_name(types, gl.ty).and_then(|r| fl.unknown_writes.get(&r).map(|s| (r, s)))
        {
            out.mutated_by_module = true;
            mutation.push((
                format!("the module writes {r} objects the kernel hands back"),
                ev(
                    &s.file,
                    s.line,
                    format!(
                        "the module writes {r} objects through pointers the kernel hands back ({})",
                        s.text
                    ),
                ),
            ));
        }
    }
    // Mutation by the kernel. An object of size 0 (a `lock_class_key`
    // without lockdep) has no content to change.
    if out.escapes && !gl.is_const && gl.size != Some(0) {
        if let Some(e) = kernel_mutation(gl, types, fl, o) {
            out.mutated_by_kernel = true;
            mutation.push(e);
        }
    }

    let escape_summary = escape_ev
        .last()
        .map(|e| strip_text(&e.text))
        .unwrap_or_default();
    let mutation_summary = mutation.first().map(|(s, _)| s.clone()).unwrap_or_default();
    let mutation_ev: Vec<Evidence> = mutation.into_iter().map(|(_, e)| e).collect();
    classify(&mut out, &escape_summary, &mutation_summary);
    out.evidence.extend(escape_ev);
    out.evidence.extend(mutation_ev);
    out
}

/// Why the kernel changes `gl`'s content in place, if it does: the kernel
/// state it holds, a pointer to non-const the kernel got, or members the
/// module leaves zero for the kernel to fill in.
fn kernel_mutation(
    gl: &modswap_ir::Global,
    types: &modswap_ir::TypeTable,
    fl: &Flows<'_>,
    o: Obj,
) -> Option<(String, Evidence)> {
    if let Some(st) = state::kernel_state(types, gl.ty) {
        Some((
            format!("it holds kernel state the kernel updates in place: {st}"),
            ev(
                &gl.loc.file,
                gl.loc.line,
                format!("holds kernel state the kernel updates in place: {st}"),
            ),
        ))
    } else if let Some(s) = fl.writable_escape.get(&o) {
        // Where the pointer leaves; for an object held by an escaping
        // one, where it is put there (the first step of its chain).
        let chain = fl.chain(o, s);
        let at = if s.text.is_empty() {
            chain.first().cloned()
        } else {
            Some((s.file.clone(), s.line, s.text.clone()))
        };
        at.map(|(file, line, text)| {
            (
                "the kernel gets it as a pointer to non-const and may write it".to_string(),
                ev(
                    &file,
                    line,
                    format!(
                        "the kernel gets it as a pointer to non-const and may write it ({text})"
                    ),
                ),
            )
        })
    } else {
        state::zero_member(types, gl.ty, gl.init.as_ref()).map(|z| {
            (
                format!("the module leaves {z} zero for the kernel to fill in"),
                ev(
                    &gl.loc.file,
                    gl.loc.line,
                    format!("the module leaves {z} zero for the kernel to fill in"),
                ),
            )
        })
    }
}

/// The class from escape and mutation, and the reason that says why.
fn classify(out: &mut GlobalAnalysis, escape_summary: &str, mutation_summary: &str) {
    out.class = match (out.escapes, out.mutated()) {
        (true, true) => Class::StaticOld,
        (true, false) => Class::StaticNew,
        (false, true) => Class::Transfer,
        (false, false) => Class::None,
    };
    out.reason = match out.class {
        Class::StaticOld => format!(
            "its address escapes ({escape_summary}) and its content changes at run time ({mutation_summary}): the old content must stay where it is"
        ),
        Class::StaticNew => format!(
            "its address escapes ({escape_summary}) and its content {}: the new version's content replaces it in place",
            if out.is_const { "is const" } else { "is never written at run time" }
        ),
        Class::Transfer => format!(
            "its address stays in the module, but it holds run-time state ({mutation_summary}): the replace handler must copy it"
        ),
        Class::None => {
            if out.is_const {
                "its address stays in the module and it is const".to_string()
            } else {
                "its address stays in the module and it is not written at run time".to_string()
            }
        }
    };
}

/// `what: source text` -> `what`.
fn strip_text(t: &str) -> String {
    match t.split_once(": ") {
        Some((a, _)) => a.to_string(),
        None => t.to_string(),
    }
}

/// The record type of a global (or of its array elements), as C names it.
fn record_name(types: &modswap_ir::TypeTable, t: modswap_ir::TypeId) -> Option<String> {
    let mut t = types.resolve(t);
    loop {
        match types.get(t) {
            Type::Array { elem, .. } => t = types.resolve(*elem),
            Type::Record { kind, tag, .. } => {
                return tag.as_ref().map(|tg| format!("{} {tg}", kind.keyword()))
            }
            _ => return None,
        }
    }
}

/// Members of a static_old global that point into its module's own code or
/// data. Pointers to objects in static address sections (`fixed`, the
/// object itself included, e.g. an empty list head) stay valid across a
/// swap and are left alone.
fn reassign(ix: &Index<'_>, fl: &Flows<'_>, g: GId, fixed: &[bool]) -> Vec<String> {
    let gl = ix.global(g);
    let module = ix.module_of_global(g);
    let at = ix.globals[g as usize];
    let types = &ix.program.types;
    let mut out: Vec<String> = Vec::new();
    let mut push = |p: String| {
        if !out.contains(&p) {
            out.push(p);
        }
    };
    if let Some(init) = &gl.init {
        let mut items = Vec::new();
        inits::init_items(types, Some(gl.ty), init, String::new(), &mut items);
        for it in items {
            // Only pointer members hold addresses (a char array member
            // initialized from a string holds characters).
            if !it.ty.is_some_and(|t| types.is_pointer(t)) {
                continue;
            }
            let own = it.expr.has_string_literal
                || it.expr.refs.iter().any(|r| match r {
                    modswap_ir::Ref::Function { name } => ix
                        .resolve_function(at.module, at.unit, name)
                        .is_some_and(|f| ix.module_of_body(f) == module),
                    modswap_ir::Ref::Global {
                        name,
                        address: true,
                    } => ix
                        .resolve_in_initializer(g, name)
                        .is_some_and(|x| ix.module_of_global(x) == module && !fixed[x as usize]),
                    _ => false,
                });
            if own {
                push(it.path.clone());
            }
        }
    }
    if let Some(stores) = fl.stores.get(&g) {
        for (path, objs, has_str) in stores {
            let own = *has_str
                || objs.iter().any(|o| match o {
                    Obj::Func(f) => ix.module_of_body(*f) == module,
                    Obj::Global(x, _) => ix.module_of_global(*x) == module && !fixed[*x as usize],
                    _ => false,
                });
            if own {
                push(path.clone());
            }
        }
    }
    out
}
