//! Can NEW replace OLD in place? The swap-compatibility check of two
//! module images, with the rule the loader applies (`loader/include/linux/modswap.h`):
//!
//! 1. Same module name.
//! 2. NEW is marked hotswappable (`.modswap.info`) with the ABI version this
//!    toolkit speaks.
//! 3. Static sections (`.static_old.*`, `.static_new.*` and
//!    `.gnu.linkonce.this_module`): NEW has the same set as OLD, each with
//!    the same size, holding the same symbols at the same offsets with the
//!    same sizes, and aligned no more strictly than OLD's (the memory is
//!    OLD's; the paper, 3.4.3: a static variable cannot grow).
//! 4. Every undefined `_old_<name>` of NEW names a symbol OLD defines
//!    (locals included), exactly one, of a compatible size where both are
//!    known, and NEW does not reach past its end.
//! 5. Every export of OLD is still exported by NEW, and not narrowed to
//!    GPL-only (dependents would break).
//! 6. Both were built for the same kernel (`.modinfo` `vermagic=`, where
//!    both have one).
//!
//! [`verify`] returns every problem it finds, in a stable order.

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

use crate::{Object, Place, Section, SymbolKind};
use modswap_ir::sections::{names, SectionChange};

/// One reason NEW cannot replace OLD.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Problem {
    /// The two images are different modules.
    ModuleName { old: String, new: String },
    /// An image has no module name (not a linked `.ko`?).
    NoModuleName { image: Image },
    /// NEW lacks `.modswap.info`.
    NotHotswappable,
    /// NEW's `struct modswap_info` has another ABI version.
    Abi { found: Option<u32>, expected: u32 },
    /// The images were built for different kernels (`.modinfo` vermagic):
    /// the kernel refuses to load one of them.
    Vermagic { old: String, new: String },
    /// A static section of OLD is missing from NEW.
    StaticSectionDropped { section: String },
    /// NEW has a static section OLD does not.
    StaticSectionAdded { section: String },
    /// A static section changed size.
    StaticSectionSize { section: String, old: u64, new: u64 },
    /// NEW's static section needs stricter alignment than OLD's memory has.
    StaticSectionAlign { section: String, old: u64, new: u64 },
    /// A symbol of OLD's static section is missing from NEW's.
    StaticSymbolDropped {
        section: String,
        symbol: String,
        offset: u64,
    },
    /// NEW's static section has a symbol OLD's does not.
    StaticSymbolAdded {
        section: String,
        symbol: String,
        offset: u64,
    },
    /// A symbol moved within its static section.
    StaticSymbolMoved {
        section: String,
        symbol: String,
        old: u64,
        new: u64,
    },
    /// A symbol in a static section changed size.
    StaticSymbolSize {
        section: String,
        symbol: String,
        old: u64,
        new: u64,
    },
    /// NEW refers to `_old_<target>`, which OLD does not define.
    OldSymbolUndefined { symbol: String, target: String },
    /// OLD defines `<target>` more than once (locals of several files).
    OldSymbolAmbiguous {
        symbol: String,
        target: String,
        count: usize,
    },
    /// NEW's `_old_<target>` has a known size that differs from OLD's.
    OldSymbolSize {
        symbol: String,
        target: String,
        old: u64,
        new: u64,
    },
    /// NEW accesses `_old_<target>` at an offset past the end of OLD's object.
    OldSymbolBeyond {
        symbol: String,
        target: String,
        offset: u64,
        old: u64,
    },
    /// OLD exports a symbol NEW does not.
    ExportDropped { symbol: String },
    /// OLD exports a symbol to everyone, NEW only to GPL modules.
    ExportNowGpl { symbol: String },
}

/// Which of the two images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Image {
    Old,
    New,
}

impl fmt::Display for Image {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Image::Old => "OLD",
            Image::New => "NEW",
        })
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Problem::*;
        match self {
            ModuleName { old, new } => {
                write!(f, "module name differs: OLD is {old:?}, NEW is {new:?}")
            }
            NoModuleName { image } => write!(
                f,
                "{image} has no module name (neither .modinfo name= nor .gnu.linkonce.this_module): not a linked .ko?"
            ),
            NotHotswappable => write!(
                f,
                "NEW is not hotswappable: it has no {} section (MODSWAP_REPLACE() or MODSWAP_HOTSWAPPABLE())",
                names().info
            ),
            Abi { found: Some(v), expected } => write!(
                f,
                "NEW's {} has ABI version {v}, this modswap speaks {expected}",
                names().info
            ),
            Abi { found: None, expected } => write!(
                f,
                "NEW's {} is too short to hold an ABI version (expected {expected})",
                names().info
            ),
            Vermagic { old, new } => write!(
                f,
                "built for different kernels: OLD's vermagic is {old:?}, NEW's {new:?}; \
                 build NEW against the kernel OLD was built for (the same KDIR), which is the \
                 kernel that will load it"
            ),
            StaticSectionDropped { section } => {
                write!(f, "static section {section} of OLD is missing from NEW")
            }
            StaticSectionAdded { section } => {
                write!(f, "NEW adds static section {section}, which OLD does not have")
            }
            StaticSectionSize { section, old, new } => write!(
                f,
                "static section {section} changes size: {old} bytes in OLD, {new} in NEW"
            ),
            StaticSectionAlign { section, old, new } => write!(
                f,
                "static section {section} needs {new}-byte alignment in NEW, OLD's has {old}"
            ),
            StaticSymbolDropped { section, symbol, offset } => write!(
                f,
                "static section {section}: {symbol} (offset {offset:#x} in OLD) is missing from NEW"
            ),
            StaticSymbolAdded { section, symbol, offset } => write!(
                f,
                "static section {section}: NEW adds {symbol} at offset {offset:#x}"
            ),
            StaticSymbolMoved { section, symbol, old, new } => write!(
                f,
                "static section {section}: {symbol} moves from offset {old:#x} to {new:#x}"
            ),
            StaticSymbolSize { section, symbol, old, new } => write!(
                f,
                "static section {section}: {symbol} changes size: {old} bytes in OLD, {new} in NEW"
            ),
            OldSymbolUndefined { symbol, target } => write!(
                f,
                "NEW refers to {symbol}, but OLD defines no symbol {target}"
            ),
            OldSymbolAmbiguous { symbol, target, count } => write!(
                f,
                "NEW refers to {symbol}, but OLD defines {target} {count} times"
            ),
            OldSymbolSize { symbol, target, old, new } => write!(
                f,
                "NEW's {symbol} is {new} bytes, OLD's {target} is {old}"
            ),
            OldSymbolBeyond { symbol, target, offset, old } => write!(
                f,
                "NEW accesses {symbol} at offset {offset} or later, past the end of OLD's {target} ({old} bytes)"
            ),
            ExportDropped { symbol } => write!(
                f,
                "OLD exports {symbol}, NEW does not: modules using it would break"
            ),
            ExportNowGpl { symbol } => write!(
                f,
                "OLD exports {symbol} to all modules, NEW only to GPL ones"
            ),
        }
    }
}

/// Strips a GCC local-symbol suffix (`count.3` -> `count`): the number
/// changes between builds, the name of a function-scope static does not.
fn stable_name(name: &str) -> &str {
    match name.rsplit_once('.') {
        Some((base, n))
            if !base.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) =>
        {
            base
        }
        _ => name,
    }
}

/// The named symbols of a static section: stable name -> (offset, size, name).
fn section_symbols(obj: &Object, sec: &Section) -> BTreeMap<String, (u64, u64, String)> {
    obj.symbols_in(sec.index)
        .map(|s| {
            (
                stable_name(&s.name).to_string(),
                (s.value, s.size, s.name.clone()),
            )
        })
        .collect()
}

fn check_static_sections(old: &Object, new: &Object, out: &mut Vec<Problem>) {
    let olds: BTreeMap<&str, &Section> = old
        .static_sections()
        .map(|s| (s.name.as_str(), s))
        .collect();
    let news: BTreeMap<&str, &Section> = new
        .static_sections()
        .map(|s| (s.name.as_str(), s))
        .collect();
    for change in SectionChange::between_sets(olds.keys().copied(), news.keys().copied()) {
        out.push(match change {
            SectionChange::Added { new } => Problem::StaticSectionAdded { section: new },
            SectionChange::Dropped { old } => Problem::StaticSectionDropped { section: old },
            SectionChange::Moved { .. } => unreachable!("sets of sections only add or drop"),
        });
    }
    for (name, o) in &olds {
        let Some(n) = news.get(name) else {
            continue;
        };
        let section = name.to_string();
        if o.size != n.size {
            out.push(Problem::StaticSectionSize {
                section: section.clone(),
                old: o.size,
                new: n.size,
            });
        }
        if n.align > o.align {
            out.push(Problem::StaticSectionAlign {
                section: section.clone(),
                old: o.align,
                new: n.align,
            });
        }
        let osyms = section_symbols(old, o);
        let nsyms = section_symbols(new, n);
        for (key, (ooff, osize, oname)) in &osyms {
            match nsyms.get(key) {
                None => out.push(Problem::StaticSymbolDropped {
                    section: section.clone(),
                    symbol: oname.clone(),
                    offset: *ooff,
                }),
                Some((noff, nsize, _)) => {
                    if noff != ooff {
                        out.push(Problem::StaticSymbolMoved {
                            section: section.clone(),
                            symbol: oname.clone(),
                            old: *ooff,
                            new: *noff,
                        });
                    }
                    if nsize != osize {
                        out.push(Problem::StaticSymbolSize {
                            section: section.clone(),
                            symbol: oname.clone(),
                            old: *osize,
                            new: *nsize,
                        });
                    }
                }
            }
        }
        for (key, (noff, _, nname)) in &nsyms {
            if !osyms.contains_key(key) {
                out.push(Problem::StaticSymbolAdded {
                    section: section.clone(),
                    symbol: nname.clone(),
                    offset: *noff,
                });
            }
        }
    }
}

/// The lowest offset into `_old_x` that NEW's relocations certainly reach:
/// the addend, plus the field size for PC-relative code fields (the CPU
/// adds the next instruction's address; a trailing immediate only makes
/// the real offset larger).
fn min_reach(new: &Object, symbol: u32) -> Option<u64> {
    new.relocations
        .iter()
        .filter(|r| r.symbol == symbol)
        .filter_map(|r| {
            let code = new.section(r.section).is_some_and(Section::is_exec);
            let bias = match r.kind.as_str() {
                "R_X86_64_PC32"
                | "R_X86_64_PLT32"
                | "R_X86_64_GOTPCREL"
                | "R_X86_64_GOTPCRELX"
                | "R_X86_64_REX_GOTPCRELX"
                    if code =>
                {
                    4
                }
                "R_X86_64_PC64" if code => 8,
                _ => 0,
            };
            u64::try_from(r.addend.saturating_add(bias)).ok()
        })
        .max()
}

fn check_old_symbols(old: &Object, new: &Object, out: &mut Vec<Problem>) {
    let prefix = &names().old_prefix;
    for s in &new.symbols {
        if s.place != Place::Undefined {
            continue;
        }
        let Some(target) = s.name.strip_prefix(prefix.as_str()) else {
            continue;
        };
        let defs: Vec<_> = old
            .defined(target)
            .filter(|d| d.kind != SymbolKind::File)
            .collect();
        let (symbol, target) = (s.name.clone(), target.to_string());
        match defs.as_slice() {
            [] => out.push(Problem::OldSymbolUndefined { symbol, target }),
            [d] => {
                if s.size != 0 && d.size != 0 && s.size != d.size {
                    out.push(Problem::OldSymbolSize {
                        symbol: symbol.clone(),
                        target: target.clone(),
                        old: d.size,
                        new: s.size,
                    });
                }
                if d.size != 0 && matches!(d.kind, SymbolKind::Object | SymbolKind::Tls) {
                    if let Some(reach) = min_reach(new, s.index) {
                        if reach >= d.size {
                            out.push(Problem::OldSymbolBeyond {
                                symbol,
                                target,
                                offset: reach,
                                old: d.size,
                            });
                        }
                    }
                }
            }
            many => out.push(Problem::OldSymbolAmbiguous {
                symbol,
                target,
                count: many.len(),
            }),
        }
    }
}

fn check_exports(old: &Object, new: &Object, out: &mut Vec<Problem>) {
    for e in &old.exports {
        match new.exports.iter().find(|n| n.name == e.name) {
            None => out.push(Problem::ExportDropped {
                symbol: e.name.clone(),
            }),
            Some(n) if n.gpl && !e.gpl => out.push(Problem::ExportNowGpl {
                symbol: e.name.clone(),
            }),
            Some(_) => {}
        }
    }
}

/// Every reason `new` cannot replace `old` in place; empty when it can.
pub fn verify(old: &Object, new: &Object) -> Vec<Problem> {
    let mut out = Vec::new();
    match (&old.module.name, &new.module.name) {
        (Some(o), Some(n)) if o != n => out.push(Problem::ModuleName {
            old: o.clone(),
            new: n.clone(),
        }),
        (o, n) => {
            if o.is_none() {
                out.push(Problem::NoModuleName { image: Image::Old });
            }
            if n.is_none() {
                out.push(Problem::NoModuleName { image: Image::New });
            }
        }
    }
    if !new.module.hotswappable {
        out.push(Problem::NotHotswappable);
    } else if new.module.modswap_abi != Some(names().abi_version) {
        out.push(Problem::Abi {
            found: new.module.modswap_abi,
            expected: names().abi_version,
        });
    }
    let vermagic = |o: &Object| {
        o.modinfo
            .iter()
            .find(|(k, _)| k == "vermagic")
            .map(|(_, v)| v.clone())
    };
    if let (Some(o), Some(n)) = (vermagic(old), vermagic(new)) {
        if o != n {
            out.push(Problem::Vermagic { old: o, new: n });
        }
    }
    check_static_sections(old, new, &mut out);
    check_old_symbols(old, new, &mut out);
    check_exports(old, new, &mut out);
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests;
