//! The ELF cross-check: compares the source analysis with the built
//! modules. A global the source analysis calls private (`transfer` or
//! `none`) whose address the object file uses anyway (a relocation that
//! takes its address: stored in data, loaded as an immediate, computed with
//! `lea`, or an instruction the ELF analyser does not decode) gets a
//! warning with that relocation as evidence, so a reviewer can confirm the
//! address really stays in the module. An address stored in another global
//! the source analysis also finds private is consistent and not reported.
//!
//! Loads and stores through a memory operand do not count: they use the
//! object, not its address. A module whose `.ko` is missing or older than
//! its sources is not checked (a note says so).

use super::Analysis;
use modswap_elf::{DataSymbol, Object, Origin, Use};
use modswap_ir::class::Class;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One global whose address the object uses although the source analysis
/// found it private.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ElfWarning {
    pub module: String,
    pub key: String,
    /// Where the global is declared.
    pub file: String,
    pub line: u32,
    /// The relocation, e.g. `address taken in fat_read_static_bpb() at
    /// .text+0x1a3 (R_X86_64_32S)`.
    pub text: String,
}

/// What the cross-check found.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ElfCheck {
    /// Sorted.
    pub warnings: Vec<ElfWarning>,
    /// Modules that could not be checked, and why. Sorted.
    pub notes: Vec<String>,
    /// Modules whose object was compared.
    pub checked: Vec<String>,
}

/// A module's built object and the sources it was built from.
#[derive(Debug, Clone)]
pub struct Built {
    pub module: String,
    pub ko: PathBuf,
    pub sources: Vec<PathBuf>,
}

fn mtime(p: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Cross-checks every module of `analysis` whose object is in `built`.
pub fn cross_check(analysis: &Analysis, built: &[Built]) -> ElfCheck {
    let mut out = ElfCheck::default();
    for m in &analysis.modules {
        let Some(b) = built.iter().find(|b| b.module == m.name) else {
            continue;
        };
        let Some(ko_time) = mtime(&b.ko) else {
            out.notes.push(format!(
                "{}: {} is not built; not cross-checked with ELF",
                m.name,
                b.ko.display()
            ));
            continue;
        };
        if b.sources
            .iter()
            .any(|s| mtime(s).is_some_and(|t| t > ko_time))
        {
            out.notes.push(format!(
                "{}: {} is older than its sources; not cross-checked with ELF",
                m.name,
                b.ko.display()
            ));
            continue;
        }
        let obj = match Object::read(&b.ko) {
            Ok(o) => o,
            Err(e) => {
                out.notes
                    .push(format!("{}: not cross-checked with ELF: {e}", m.name));
                continue;
            }
        };
        out.checked.push(m.name.clone());
        for g in &m.globals {
            if g.escapes || !matches!(g.class, Class::Transfer | Class::None) {
                continue;
            }
            if g.section.as_deref().is_some_and(|s| {
                s == ".modinfo"
                    || s.starts_with(".discard")
                    || s.starts_with(".init.")
                    || s.starts_with(".exit.")
            }) {
                continue;
            }
            let Some(sym) = find(&obj, &g.name, g.function.is_some()) else {
                continue; // optimized away, or ambiguous
            };
            // Zero-size objects (lock class keys without lockdep) share
            // their address with the next object: a relocation there may
            // be theirs.
            let shared = obj.data.iter().any(|d| {
                d.name != sym.name
                    && d.section == sym.section
                    && d.offset == sym.offset
                    && d.size == 0
            });
            for r in &sym.references {
                if r.usage != Use::Address || (shared && r.target_offset == 0) {
                    continue;
                }
                // Held by another global the source analysis also finds
                // private: consistent.
                if r.from == Origin::Data {
                    let holder = r.within.as_deref().map(|w| {
                        w.split_once('.')
                            .filter(|(_, n)| n.bytes().all(|c| c.is_ascii_digit()))
                            .map_or(w, |(base, _)| base)
                    });
                    let private_holder = holder.is_some_and(|h| {
                        m.globals.iter().filter(|x| x.name == h).all(|x| !x.escapes)
                            && m.globals.iter().any(|x| x.name == h)
                    });
                    if private_holder {
                        continue;
                    }
                }
                let place = format!("{}+{:#x} ({})", r.section, r.offset, r.kind);
                let text = match (r.from, &r.within) {
                    (Origin::Code, Some(f)) => {
                        format!("an instruction in {f}() at {place} may take its address (not decoded as a plain load or store)")
                    }
                    (Origin::Code, None) => {
                        format!("an instruction at {place} may take its address (not decoded as a plain load or store)")
                    }
                    (Origin::Data, Some(d)) => format!("its address is stored in {d} at {place}"),
                    (Origin::Data, None) => format!("its address is stored in data at {place}"),
                };
                out.warnings.push(ElfWarning {
                    module: m.name.clone(),
                    key: g.key.clone(),
                    file: g.file.clone(),
                    line: g.line,
                    text: format!(
                        "the source analysis finds {} private ({}), but the object uses its address: {text}",
                        g.key, g.class
                    ),
                });
            }
        }
    }
    out.warnings.sort();
    out.warnings.dedup();
    out.notes.sort();
    out
}

/// The data symbol of a global: by name at file scope (GCC keeps the C
/// name), as `name.N` for a function-scope static. `None` when absent or
/// when several symbols could be it.
fn find<'a>(obj: &'a Object, name: &str, function_static: bool) -> Option<&'a DataSymbol> {
    let matches: Vec<&DataSymbol> = obj
        .data
        .iter()
        .filter(|d| {
            if function_static {
                d.name
                    .strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix('.'))
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
            } else {
                d.name == name
            }
        })
        .collect();
    match matches.as_slice() {
        [one] => Some(one),
        _ => None,
    }
}

/// The modules of a module directory with their `.ko` and sources.
pub fn built(md: &modswap_kbuild::ModuleDir) -> Vec<Built> {
    md.modules
        .iter()
        .map(|m| Built {
            module: m.name.clone(),
            ko: m.ko(&md.dir),
            sources: m.sources.iter().map(|s| s.path.clone()).collect(),
        })
        .collect()
}
