//! Who points at each data symbol.
//!
//! Every relocation in an allocated section is resolved to the data symbol
//! it lands in. A relocation may name the data symbol itself (`counter - 4`)
//! or, for objects local to a translation unit, a section symbol plus an
//! offset (`.bss + 0x1c`); the second kind is resolved to the data symbol
//! covering that offset. In code, PC-relative fields are biased by their
//! own size plus the size of any immediate after them (the CPU adds the
//! address of the next instruction), so the offset is `addend + 4 + imm`;
//! when the instruction is not recognised, imm = 0, 1, 2 and 4 are tried.
//!
//! Relocations in non-allocated sections (debug information) are not
//! references: they do not exist at run time.

use std::collections::{BTreeMap, BTreeSet};

use object::elf;

use super::parts::Parts;
use super::{x86, DataSymbol, Origin, Placement, Reference, Section, SymbolKind, Use};
use super::{Place, Symbol, THIS_MODULE_SECTION};
use modswap_ir::sections::names;

/// Size of the field a PC-relative relocation patches, if it is one.
fn pc_relative_size(r_type: u32) -> Option<i64> {
    match r_type {
        elf::R_X86_64_PC32
        | elf::R_X86_64_PLT32
        | elf::R_X86_64_GOTPCREL
        | elf::R_X86_64_GOTPCRELX
        | elf::R_X86_64_REX_GOTPCRELX => Some(4),
        elf::R_X86_64_PC64 => Some(8),
        elf::R_X86_64_PC16 => Some(2),
        elf::R_X86_64_PC8 => Some(1),
        _ => None,
    }
}

fn placement(section: &str) -> Placement {
    let n = names();
    if section.starts_with(&n.static_old) {
        Placement::StaticOld
    } else if section.starts_with(&n.static_new) {
        Placement::StaticNew
    } else if section == THIS_MODULE_SECTION {
        Placement::ThisModule
    } else {
        Placement::Normal
    }
}

/// Symbols of one section sorted by start offset, for "what covers offset X".
#[derive(Default)]
struct Intervals {
    /// (start, end, symbol index), sorted; `end == start` for a zero-size symbol.
    spans: Vec<(u64, u64, u32)>,
    /// `reach[i]`: the greatest end among `spans[..=i]`, so a backward
    /// search stops as soon as no earlier span can reach the offset.
    reach: Vec<u64>,
}

impl Intervals {
    fn push(&mut self, start: u64, size: u64, index: u32) {
        self.spans.push((start, start.saturating_add(size), index));
    }

    fn finish(&mut self) {
        self.spans.sort();
        let mut max = 0;
        self.reach = self
            .spans
            .iter()
            .map(|&(_, e, _)| {
                max = max.max(e);
                max
            })
            .collect();
    }

    /// The symbol covering `offset`: among sized symbols whose span holds
    /// it, the one starting last (the innermost); failing that, a
    /// zero-size symbol at exactly `offset`.
    fn covering(&self, offset: i64) -> Option<u32> {
        let offset = u64::try_from(offset).ok()?;
        let end = self.spans.partition_point(|&(s, _, _)| s <= offset);
        let mut exact = None;
        for i in (0..end).rev() {
            let (s, e, index) = self.spans[i];
            if offset < e {
                return Some(index);
            }
            // Here s <= offset and e <= offset: s == offset means zero-size.
            if s == offset && exact.is_none() {
                exact = Some(index);
            }
            if s < offset && self.reach[i] <= offset {
                break;
            }
        }
        exact
    }
}

fn index_by_section(
    parts: &Parts<'_>,
    keep: impl Fn(SymbolKind) -> bool,
) -> BTreeMap<u32, Intervals> {
    let mut map: BTreeMap<u32, Intervals> = BTreeMap::new();
    for s in &parts.symbols {
        if let Place::Section(sec) = s.place {
            if keep(s.kind) {
                map.entry(sec).or_default().push(s.value, s.size, s.index);
            }
        }
    }
    for v in map.values_mut() {
        v.finish();
    }
    map
}

fn is_data_kind(k: SymbolKind) -> bool {
    matches!(k, SymbolKind::Object | SymbolKind::Tls | SymbolKind::Common)
}

pub(super) fn analyse(parts: &Parts<'_>) -> Vec<DataSymbol> {
    let data_by_section = index_by_section(parts, is_data_kind);
    let funcs_by_section = index_by_section(parts, |k| k == SymbolKind::Func);
    let name_of = |i: u32| parts.symbol(i).map(|s| s.name.clone());

    let mut refs: BTreeMap<u32, Vec<Reference>> = BTreeMap::new();
    for r in &parts.relocations {
        let Some(from_sec): Option<&Section> = parts.section(r.section) else {
            continue;
        };
        if !from_sec.is_alloc() || r.symbol == 0 {
            continue;
        }
        let Some(sym) = parts.symbol(r.symbol) else {
            continue;
        };
        let code = from_sec.is_exec();
        let field = if code {
            x86::classify(parts.bytes(r.section), r.offset, r.r_type)
        } else {
            x86::Field {
                usage: Use::Address,
                trailing: Some(0),
            }
        };
        // The CPU adds the address of the next instruction to a PC-relative
        // field in code: the field's own size plus any immediate after it.
        let pc = if code {
            pc_relative_size(r.r_type)
        } else {
            None
        };
        let bias = pc.map_or(0, |n| n + i64::from(field.trailing.unwrap_or(0)));
        let base = r.addend.saturating_add(bias);

        // Which data symbol, and where in it.
        let (target, target_offset) = if is_data_kind(sym.kind) && sym.is_defined() {
            (sym.index, base)
        } else if matches!(sym.kind, SymbolKind::Func | SymbolKind::File) {
            continue;
        } else if let Place::Section(sec) = sym.place {
            let Some(iv) = data_by_section.get(&sec) else {
                continue;
            };
            let start = i64::try_from(sym.value)
                .unwrap_or(i64::MAX)
                .saturating_add(base);
            // An unrecognised instruction may have an immediate after a
            // PC-relative field, which makes the bias larger.
            let extra: &[i64] = if pc.is_some() && field.trailing.is_none() {
                &[0, 1, 2, 4]
            } else {
                &[0]
            };
            let Some((t, off)) = extra.iter().find_map(|&x| {
                let off = start.saturating_add(x);
                iv.covering(off).map(|t| (t, off))
            }) else {
                continue;
            };
            let value = parts.symbol(t).map_or(0, |s| s.value);
            (
                t,
                off.saturating_sub(i64::try_from(value).unwrap_or(i64::MAX)),
            )
        } else {
            continue;
        };

        let (from, usage, within) = if code {
            let within = funcs_by_section
                .get(&r.section)
                .and_then(|iv| iv.covering(i64::try_from(r.offset).ok()?))
                .and_then(name_of);
            (Origin::Code, field.usage, within)
        } else {
            let within = data_by_section
                .get(&r.section)
                .and_then(|iv| iv.covering(i64::try_from(r.offset).ok()?))
                .and_then(name_of);
            (Origin::Data, Use::Address, within)
        };
        refs.entry(target).or_default().push(Reference {
            from,
            section: from_sec.name.clone(),
            offset: r.offset,
            within,
            usage,
            kind: r.kind.clone(),
            target_offset,
        });
    }

    let mut out: Vec<DataSymbol> = parts
        .symbols
        .iter()
        .filter(|s| is_data_kind(s.kind) && s.is_defined())
        .map(|s| data_symbol(s, refs.remove(&s.index).unwrap_or_default()))
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name).then(a.symbol.cmp(&b.symbol)));
    out
}

/// Data symbol `s` with the references to it.
fn data_symbol(s: &Symbol, mut references: Vec<Reference>) -> DataSymbol {
    references.sort();
    let held_by: BTreeSet<String> = references
        .iter()
        .filter(|r| r.from == Origin::Data)
        .filter_map(|r| r.within.clone())
        .collect();
    let section = s.section.clone().unwrap_or_else(|| match s.place {
        Place::Common => "COMMON".to_string(),
        _ => String::new(),
    });
    DataSymbol {
        name: s.name.clone(),
        symbol: s.index,
        placement: placement(&section),
        section,
        offset: s.value,
        size: s.size,
        binding: s.binding,
        address_taken: references.iter().any(|r| r.usage == Use::Address),
        references,
        held_by: held_by.into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covering_prefers_the_innermost_span() {
        let mut iv = Intervals::default();
        iv.push(0, 16, 1);
        iv.push(8, 4, 2);
        iv.push(32, 0, 3);
        iv.push(8, 0, 4);
        iv.finish();
        assert_eq!(iv.covering(0), Some(1));
        assert_eq!(iv.covering(9), Some(2));
        assert_eq!(iv.covering(12), Some(1));
        assert_eq!(iv.covering(16), None);
        assert_eq!(iv.covering(32), Some(3));
        assert_eq!(iv.covering(-4), None);
        assert_eq!(iv.covering(40), None);
        // A zero-size label only answers for its exact offset.
        let mut iv = Intervals::default();
        iv.push(0, 4, 1);
        iv.push(8, 0, 2);
        iv.push(100, 0, 3);
        iv.finish();
        assert_eq!(iv.covering(8), Some(2));
        assert_eq!(iv.covering(9), None);
        assert_eq!(iv.covering(2), Some(1));
    }
}
