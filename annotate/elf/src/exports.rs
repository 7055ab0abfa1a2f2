//! `EXPORT_SYMBOL*` in its three 6.12 encodings.
//!
//! - A compiled source file has `.export_symbol`: per export a symbol
//!   `__export_symbol_NAME` pointing at `"<license>\0<namespace>\0"` and,
//!   8-aligned, a pointer to the exported symbol. modpost reads it.
//! - modpost writes `KSYMTAB_*()` into `NAME.mod.c`, so `NAME.mod.o` has one
//!   section per export, `___ksymtab+NAME` or `___ksymtab_gpl+NAME`.
//! - The module linker script merges those into `__ksymtab` and
//!   `__ksymtab_gpl` of the `.ko`.
//!
//! A ksymtab entry is three `PREL32` fields (x86_64 has
//! `HAVE_ARCH_PREL32_RELOCATIONS`): value, name and namespace, each a
//! relocation to the symbol or to a string in `__ksymtab_strings`. The name
//! is read from the string the name relocation points at, so the result
//! does not depend on the `__ksymtab_NAME` label symbols (which are used as
//! a fallback only).

use std::collections::BTreeMap;

use super::parts::Parts;
use super::{Export, ExportEncoding, Place, Relocation};

/// Size of one `struct kernel_symbol` with PREL32 fields.
const ENTRY: u64 = 12;

/// The NUL-terminated string at `offset` of section `index`.
fn c_string(parts: &Parts<'_>, index: u32, offset: u64) -> Option<String> {
    let bytes = parts.bytes(index);
    let start = usize::try_from(offset).ok()?;
    let tail = bytes.get(start..)?;
    let end = tail.iter().position(|&b| b == 0)?;
    Some(String::from_utf8_lossy(&tail[..end]).into_owned())
}

/// The string a relocation (symbol + addend) points at.
fn target_string(parts: &Parts<'_>, symbol: u32, addend: i64) -> Option<String> {
    let sym = parts.symbol(symbol)?;
    let Place::Section(sec) = sym.place else {
        return None;
    };
    let offset = sym.value.checked_add_signed(addend)?;
    c_string(parts, sec, offset)
}

#[derive(Default)]
struct Entry {
    name: Option<String>,
    namespace: Option<String>,
}

fn ksymtab_entries(
    parts: &Parts<'_>,
    section: u32,
    relocs: &[&Relocation],
) -> BTreeMap<u64, Entry> {
    let mut entries: BTreeMap<u64, Entry> = BTreeMap::new();
    for r in relocs {
        let field = r.offset % ENTRY;
        let entry = entries.entry(r.offset - field).or_default();
        match field {
            4 => entry.name = target_string(parts, r.symbol, r.addend),
            8 => entry.namespace = target_string(parts, r.symbol, r.addend),
            _ => {}
        }
    }
    // Label symbols `__ksymtab_NAME` name entries whose relocations did not.
    for s in &parts.symbols {
        if s.place != Place::Section(section) {
            continue;
        }
        if let Some(name) = s.name.strip_prefix("__ksymtab_") {
            let e = entries.entry(s.value).or_default();
            if e.name.is_none() {
                e.name = Some(name.to_string());
            }
        }
    }
    entries
}

pub(super) fn find(parts: &Parts<'_>, warnings: &mut Vec<String>) -> Vec<Export> {
    let mut by_section: BTreeMap<u32, Vec<&Relocation>> = BTreeMap::new();
    for r in &parts.relocations {
        by_section.entry(r.section).or_default().push(r);
    }
    let mut out = Vec::new();
    for sec in &parts.sections {
        let (gpl, encoding, fallback) = if sec.name == "__ksymtab" {
            (false, ExportEncoding::Ksymtab, None)
        } else if sec.name == "__ksymtab_gpl" {
            (true, ExportEncoding::Ksymtab, None)
        } else if let Some(n) = sec.name.strip_prefix("___ksymtab+") {
            (false, ExportEncoding::KsymtabSection, Some(n))
        } else if let Some(n) = sec.name.strip_prefix("___ksymtab_gpl+") {
            (true, ExportEncoding::KsymtabSection, Some(n))
        } else {
            continue;
        };
        let relocs = by_section.get(&sec.index).map_or(&[][..], Vec::as_slice);
        let entries = ksymtab_entries(parts, sec.index, relocs);
        let expected = sec.size / ENTRY;
        if entries.len() as u64 != expected && fallback.is_none() {
            warnings.push(format!(
                "{}: {} bytes hold {expected} entries, {} of them are described by relocations or labels",
                sec.name,
                sec.size,
                entries.len()
            ));
        }
        if entries.is_empty() {
            if let Some(n) = fallback {
                out.push(Export {
                    name: n.to_string(),
                    gpl,
                    namespace: String::new(),
                    encoding,
                });
            }
        }
        for (offset, e) in entries {
            let Some(name) = e.name.or_else(|| fallback.map(str::to_string)) else {
                warnings.push(format!("{} entry at {offset:#x} has no name", sec.name));
                continue;
            };
            out.push(Export {
                name,
                gpl,
                namespace: e.namespace.unwrap_or_default(),
                encoding,
            });
        }
    }

    // `.export_symbol` of a compiled source file.
    if let Some(sec) = parts.section_by_name(".export_symbol") {
        for s in &parts.symbols {
            if s.place != Place::Section(sec.index) {
                continue;
            }
            let Some(name) = s.name.strip_prefix("__export_symbol_") else {
                continue;
            };
            let license = c_string(parts, sec.index, s.value);
            let namespace = license
                .as_ref()
                .and_then(|l| c_string(parts, sec.index, s.value + l.len() as u64 + 1));
            out.push(Export {
                name: name.to_string(),
                gpl: license.as_deref() == Some("GPL"),
                namespace: namespace.unwrap_or_default(),
                encoding: ExportEncoding::ExportSymbol,
            });
        }
    }
    out.sort();
    out.dedup();
    out
}
