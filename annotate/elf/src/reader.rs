//! The one place that reads ELF through the `object` crate.
//!
//! It checks that the input is a relocatable x86_64 ELF64 little-endian
//! object, validates every table it reads (section data inside the file,
//! symbol and section indices in range), and turns the raw tables into the
//! model's [`Section`], [`Symbol`] and [`Relocation`] lists. The passes in
//! the sibling modules then work on those lists plus the section contents.

use object::elf;
use object::read::elf::{FileHeader, Rela, SectionHeader, Sym};
use object::LittleEndian as LE;
use std::path::Path;

use super::parts::Parts;
use super::{
    exports, modinfo, refs, Binding, Import, Object, Place, Relocation, Section, Symbol, SymbolKind,
};
use crate::error::{Error, Result};

/// The size of `Elf64_Ehdr`.
const EHDR_SIZE: usize = 64;

fn check_ident(path: &Path, bytes: &[u8]) -> Result<()> {
    let not_elf = |reason: String| Error::NotElf {
        path: path.to_path_buf(),
        reason,
    };
    let unsupported = |reason: String| Error::UnsupportedElf {
        path: path.to_path_buf(),
        reason,
    };
    if bytes.len() < 4 || bytes[..4] != elf::ELFMAG {
        return Err(not_elf(if bytes.len() < 4 {
            format!("file is {} bytes, too short for the ELF magic", bytes.len())
        } else {
            "no ELF magic (\\x7fELF) at the start".to_string()
        }));
    }
    if bytes.len() < 16 {
        return Err(Error::MalformedElf {
            path: path.to_path_buf(),
            reason: format!(
                "truncated: {} bytes, shorter than the ELF identification",
                bytes.len()
            ),
        });
    }
    // e_ident[EI_CLASS]
    match bytes[4] {
        elf::ELFCLASS64 => {}
        elf::ELFCLASS32 => {
            return Err(unsupported(
                "32-bit (ELFCLASS32); modswap reads x86_64 objects".into(),
            ))
        }
        c => return Err(not_elf(format!("unknown ELF class {c}"))),
    }
    // e_ident[EI_DATA]
    match bytes[5] {
        elf::ELFDATA2LSB => {}
        elf::ELFDATA2MSB => {
            return Err(unsupported(
                "big-endian; modswap reads x86_64 objects".into(),
            ))
        }
        d => return Err(not_elf(format!("unknown ELF data encoding {d}"))),
    }
    // e_ident[EI_VERSION]
    if bytes[6] != elf::EV_CURRENT {
        return Err(unsupported(format!(
            "ELF identification version {} (only version 1 exists)",
            bytes[6]
        )));
    }
    if bytes.len() < EHDR_SIZE {
        return Err(Error::MalformedElf {
            path: path.to_path_buf(),
            reason: format!(
                "truncated: {} bytes, shorter than the {EHDR_SIZE}-byte ELF header",
                bytes.len()
            ),
        });
    }
    Ok(())
}

fn section_type_name(t: u32) -> String {
    let name = match t {
        elf::SHT_NULL => "NULL",
        elf::SHT_PROGBITS => "PROGBITS",
        elf::SHT_SYMTAB => "SYMTAB",
        elf::SHT_STRTAB => "STRTAB",
        elf::SHT_RELA => "RELA",
        elf::SHT_HASH => "HASH",
        elf::SHT_DYNAMIC => "DYNAMIC",
        elf::SHT_NOTE => "NOTE",
        elf::SHT_NOBITS => "NOBITS",
        elf::SHT_REL => "REL",
        elf::SHT_SHLIB => "SHLIB",
        elf::SHT_DYNSYM => "DYNSYM",
        elf::SHT_INIT_ARRAY => "INIT_ARRAY",
        elf::SHT_FINI_ARRAY => "FINI_ARRAY",
        elf::SHT_PREINIT_ARRAY => "PREINIT_ARRAY",
        elf::SHT_GROUP => "GROUP",
        elf::SHT_SYMTAB_SHNDX => "SYMTAB_SHNDX",
        _ => return format!("{t:#x}"),
    };
    name.to_string()
}

fn section_flags(f: u64) -> String {
    const LETTERS: [(u64, char); 12] = [
        (elf::SHF_WRITE as u64, 'W'),
        (elf::SHF_ALLOC as u64, 'A'),
        (elf::SHF_EXECINSTR as u64, 'X'),
        (elf::SHF_MERGE as u64, 'M'),
        (elf::SHF_STRINGS as u64, 'S'),
        (elf::SHF_INFO_LINK as u64, 'I'),
        (elf::SHF_LINK_ORDER as u64, 'L'),
        (elf::SHF_OS_NONCONFORMING as u64, 'O'),
        (elf::SHF_GROUP as u64, 'G'),
        (elf::SHF_TLS as u64, 'T'),
        (elf::SHF_COMPRESSED as u64, 'C'),
        (elf::SHF_EXCLUDE as u64, 'E'),
    ];
    LETTERS
        .iter()
        .filter(|(bit, _)| f & bit != 0)
        .map(|(_, c)| *c)
        .collect()
}

/// `R_X86_64_*` names, by type number.
pub(super) fn reloc_type_name(t: u32) -> String {
    let name = match t {
        elf::R_X86_64_NONE => "NONE",
        elf::R_X86_64_64 => "64",
        elf::R_X86_64_PC32 => "PC32",
        elf::R_X86_64_GOT32 => "GOT32",
        elf::R_X86_64_PLT32 => "PLT32",
        elf::R_X86_64_COPY => "COPY",
        elf::R_X86_64_GLOB_DAT => "GLOB_DAT",
        elf::R_X86_64_JUMP_SLOT => "JUMP_SLOT",
        elf::R_X86_64_RELATIVE => "RELATIVE",
        elf::R_X86_64_GOTPCREL => "GOTPCREL",
        elf::R_X86_64_32 => "32",
        elf::R_X86_64_32S => "32S",
        elf::R_X86_64_16 => "16",
        elf::R_X86_64_PC16 => "PC16",
        elf::R_X86_64_8 => "8",
        elf::R_X86_64_PC8 => "PC8",
        elf::R_X86_64_DTPMOD64 => "DTPMOD64",
        elf::R_X86_64_DTPOFF64 => "DTPOFF64",
        elf::R_X86_64_TPOFF64 => "TPOFF64",
        elf::R_X86_64_TLSGD => "TLSGD",
        elf::R_X86_64_TLSLD => "TLSLD",
        elf::R_X86_64_DTPOFF32 => "DTPOFF32",
        elf::R_X86_64_GOTTPOFF => "GOTTPOFF",
        elf::R_X86_64_TPOFF32 => "TPOFF32",
        elf::R_X86_64_PC64 => "PC64",
        elf::R_X86_64_GOTOFF64 => "GOTOFF64",
        elf::R_X86_64_GOTPC32 => "GOTPC32",
        elf::R_X86_64_GOT64 => "GOT64",
        elf::R_X86_64_GOTPCREL64 => "GOTPCREL64",
        elf::R_X86_64_GOTPC64 => "GOTPC64",
        elf::R_X86_64_GOTPLT64 => "GOTPLT64",
        elf::R_X86_64_PLTOFF64 => "PLTOFF64",
        elf::R_X86_64_SIZE32 => "SIZE32",
        elf::R_X86_64_SIZE64 => "SIZE64",
        elf::R_X86_64_GOTPC32_TLSDESC => "GOTPC32_TLSDESC",
        elf::R_X86_64_TLSDESC_CALL => "TLSDESC_CALL",
        elf::R_X86_64_TLSDESC => "TLSDESC",
        elf::R_X86_64_IRELATIVE => "IRELATIVE",
        elf::R_X86_64_RELATIVE64 => "RELATIVE64",
        elf::R_X86_64_GOTPCRELX => "GOTPCRELX",
        elf::R_X86_64_REX_GOTPCRELX => "REX_GOTPCRELX",
        _ => return format!("R_X86_64_{t:#x}"),
    };
    format!("R_X86_64_{name}")
}

fn symbol_kind(t: u8) -> SymbolKind {
    match t {
        elf::STT_NOTYPE => SymbolKind::NoType,
        elf::STT_OBJECT => SymbolKind::Object,
        elf::STT_FUNC => SymbolKind::Func,
        elf::STT_SECTION => SymbolKind::Section,
        elf::STT_FILE => SymbolKind::File,
        elf::STT_COMMON => SymbolKind::Common,
        elf::STT_TLS => SymbolKind::Tls,
        _ => SymbolKind::Other,
    }
}

fn binding(b: u8) -> Binding {
    match b {
        elf::STB_LOCAL => Binding::Local,
        elf::STB_GLOBAL => Binding::Global,
        elf::STB_WEAK => Binding::Weak,
        _ => Binding::Other,
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub(super) fn parse(path: &Path, bytes: &[u8]) -> Result<Object> {
    check_ident(path, bytes)?;
    let malformed = |reason: String| Error::MalformedElf {
        path: path.to_path_buf(),
        reason,
    };
    let unsupported = |reason: String| Error::UnsupportedElf {
        path: path.to_path_buf(),
        reason,
    };
    let header =
        elf::FileHeader64::<LE>::parse(bytes).map_err(|e| malformed(format!("ELF header: {e}")))?;
    let endian = LE;
    check_target(
        header.e_machine(endian),
        header.e_type(endian),
        &unsupported,
    )?;
    let table = header
        .sections(endian, bytes)
        .map_err(|e| malformed(format!("section headers: {e}")))?;
    if table.is_empty() {
        return Err(malformed("no section headers".into()));
    }
    let (sections, contents) = read_sections(&table, bytes, &malformed)?;
    let symbols = read_symbols(&table, bytes, &sections, &malformed)?;
    let relocations =
        read_relocations(&table, bytes, &sections, &symbols, &malformed, &unsupported)?;
    Ok(derive(Parts {
        sections,
        symbols,
        relocations,
        contents,
    }))
}

type Table<'data> = object::read::elf::SectionTable<'data, elf::FileHeader64<LE>>;
type Fail<'f> = &'f dyn Fn(String) -> Error;

/// Only relocatable x86_64 objects.
fn check_target(machine: u16, etype: u16, unsupported: Fail<'_>) -> Result<()> {
    if machine != elf::EM_X86_64 {
        let what = match machine {
            elf::EM_386 => "i386".to_string(),
            elf::EM_AARCH64 => "aarch64".to_string(),
            elf::EM_ARM => "arm".to_string(),
            elf::EM_RISCV => "riscv".to_string(),
            elf::EM_PPC64 => "ppc64".to_string(),
            elf::EM_S390 => "s390".to_string(),
            m => format!("e_machine {m}"),
        };
        return Err(unsupported(format!("machine is {what}, not x86_64")));
    }
    if etype != elf::ET_REL {
        let what = match etype {
            elf::ET_EXEC => "an executable (ET_EXEC)".to_string(),
            elf::ET_DYN => "a shared object or PIE (ET_DYN)".to_string(),
            elf::ET_CORE => "a core dump (ET_CORE)".to_string(),
            t => format!("of type {t}"),
        };
        return Err(unsupported(format!(
            "{what}, not a relocatable object (.o or .ko)"
        )));
    }
    Ok(())
}

/// Sections: names, headers, and contents, each checked against the file.
fn read_sections<'data>(
    table: &Table<'data>,
    bytes: &'data [u8],
    malformed: Fail<'_>,
) -> Result<(Vec<Section>, Vec<&'data [u8]>)> {
    let endian = LE;
    let shnum = table.len();
    let mut sections = Vec::with_capacity(shnum.saturating_sub(1));
    let mut contents: Vec<&[u8]> = vec![&[]];
    for (index, sh) in table.enumerate().skip(1) {
        let i = index.0 as u32;
        let name = table
            .section_name(endian, sh)
            .map_err(|e| malformed(format!("section {i}: name: {e}")))?;
        let name = lossy(name);
        let sh_type = sh.sh_type(endian);
        let data = if sh_type == elf::SHT_NOBITS {
            &[][..]
        } else {
            sh.data(endian, bytes).map_err(|_| {
                malformed(format!(
                    "section {i} ({name}): its {} bytes at offset {:#x} lie outside the {}-byte file (truncated?)",
                    sh.sh_size(endian),
                    sh.sh_offset(endian),
                    bytes.len()
                ))
            })?
        };
        let relocates = if sh_type == elf::SHT_RELA || sh_type == elf::SHT_REL {
            let target = sh.sh_info(endian);
            if target == 0 || target as usize >= shnum {
                return Err(malformed(format!(
                    "relocation section {i} ({name}) applies to section {target}, which does not exist"
                )));
            }
            Some(target)
        } else {
            None
        };
        contents.push(data);
        sections.push(Section {
            index: i,
            name,
            kind: section_type_name(sh_type),
            flags: section_flags(sh.sh_flags(endian)),
            size: sh.sh_size(endian),
            align: sh.sh_addralign(endian),
            relocates,
        });
    }
    Ok((sections, contents))
}

/// The symbol table, each symbol's section checked.
fn read_symbols(
    table: &Table<'_>,
    bytes: &[u8],
    sections: &[Section],
    malformed: Fail<'_>,
) -> Result<Vec<Symbol>> {
    let endian = LE;
    let shnum = table.len();
    let section_name = |i: u32| -> Option<String> {
        sections
            .get((i as usize).wrapping_sub(1))
            .map(|s: &Section| s.name.clone())
    };
    let symtabs = table
        .iter()
        .filter(|s| s.sh_type(endian) == elf::SHT_SYMTAB)
        .count();
    if symtabs > 1 {
        return Err(malformed(format!(
            "{symtabs} symbol tables; a relocatable object has one"
        )));
    }
    let symtab = table
        .symbols(endian, bytes, elf::SHT_SYMTAB)
        .map_err(|e| malformed(format!("symbol table: {e}")))?;
    let mut symbols = Vec::with_capacity(symtab.len().saturating_sub(1));
    for (index, sym) in symtab.enumerate().skip(1) {
        let i = index.0 as u32;
        let raw_name = symtab
            .symbol_name(endian, sym)
            .map_err(|e| malformed(format!("symbol {i}: name: {e}")))?;
        let place = match sym.st_shndx(endian) {
            elf::SHN_UNDEF => Place::Undefined,
            elf::SHN_ABS => Place::Absolute,
            elf::SHN_COMMON => Place::Common,
            elf::SHN_XINDEX => {
                let s = symtab
                    .symbol_section(endian, sym, index)
                    .map_err(|e| malformed(format!("symbol {i}: {e}")))?;
                match s {
                    Some(s) => Place::Section(s.0 as u32),
                    None => Place::Undefined,
                }
            }
            n if n >= elf::SHN_LORESERVE => Place::Reserved(u32::from(n)),
            n => Place::Section(u32::from(n)),
        };
        let section = match place {
            Place::Section(s) => {
                if s as usize >= shnum {
                    return Err(malformed(format!(
                        "symbol {i} ({}) is in section {s}, which does not exist",
                        lossy(raw_name)
                    )));
                }
                section_name(s)
            }
            _ => None,
        };
        let kind = symbol_kind(sym.st_type());
        let name = if raw_name.is_empty() && kind == SymbolKind::Section {
            section.clone().unwrap_or_default()
        } else {
            lossy(raw_name)
        };
        symbols.push(Symbol {
            index: i,
            name,
            kind,
            binding: binding(sym.st_bind()),
            place,
            section,
            value: sym.st_value(endian),
            size: sym.st_size(endian),
        });
    }

    Ok(symbols)
}

/// The RELA relocations, each symbol checked.
fn read_relocations(
    table: &Table<'_>,
    bytes: &[u8],
    sections: &[Section],
    symbols: &[Symbol],
    malformed: Fail<'_>,
    unsupported: Fail<'_>,
) -> Result<Vec<Relocation>> {
    let endian = LE;
    let nsyms = symbols.len() as u32 + 1;
    let mut relocations = Vec::new();
    for (index, sh) in table.enumerate().skip(1) {
        let i = index.0 as u32;
        match sh.sh_type(endian) {
            elf::SHT_REL => {
                return Err(unsupported(format!(
                    "section {i} ({}) holds REL relocations; x86_64 objects use RELA",
                    sections[i as usize - 1].name
                )))
            }
            elf::SHT_RELA => {}
            _ => continue,
        }
        let target = sh.sh_info(endian);
        let entries = sh
            .data_as_array::<elf::Rela64<LE>, _>(endian, bytes)
            .map_err(|e| malformed(format!("relocation section {i}: {e}")))?;
        for r in entries {
            let sym = r.r_sym(endian, false);
            if sym != 0 && sym >= nsyms {
                return Err(malformed(format!(
                    "relocation section {i} ({}) refers to symbol {sym}; the symbol table has {nsyms}",
                    sections[i as usize - 1].name
                )));
            }
            let symbol_name = if sym == 0 {
                String::new()
            } else {
                symbols[sym as usize - 1].name.clone()
            };
            relocations.push(Relocation {
                section: target,
                offset: r.r_offset(endian),
                kind: reloc_type_name(r.r_type(endian, false)),
                r_type: r.r_type(endian, false),
                symbol: sym,
                symbol_name,
                addend: r.r_addend(endian),
            });
        }
    }
    Ok(relocations)
}

/// The model: the tables, and what the passes derive from them.
fn derive(parts: Parts<'_>) -> Object {
    let mut warnings = Vec::new();
    let (modinfo, module) = modinfo::read(&parts, &mut warnings);
    let exports = exports::find(&parts, &mut warnings);
    let data = refs::analyse(&parts);
    let mut imports: Vec<Import> = parts
        .symbols
        .iter()
        .filter(|s| s.place == Place::Undefined && !s.name.is_empty())
        .map(|s| Import {
            name: s.name.clone(),
            weak: s.binding == Binding::Weak,
        })
        .collect();
    imports.sort();
    imports.dedup();
    warnings.sort();
    warnings.dedup();

    Object {
        module,
        modinfo,
        sections: parts.sections,
        symbols: parts.symbols,
        relocations: parts.relocations,
        imports,
        exports,
        data,
        warnings,
    }
}
