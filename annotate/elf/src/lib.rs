//! The ELF front end: what a relocatable x86_64 object (`.o`, `.ko`) holds.
//!
//! [`Object::read`] parses a file into an [`Object`], a plain model that
//! later passes read without touching ELF again: its sections, symbols
//! (including function-scope statics such as `count.3`), RELA relocations,
//! the module name, imports (undefined symbols), exports, and for every data
//! symbol who points at it.
//!
//! This crate is the only place in the project that uses the `object`
//! crate (in `reader.rs`); everything it returns is our own types.
//!
//! **Owns**: reading objects ([`Object`]) and deciding whether one image
//! can replace another in place ([`verify`]); its typed [`Error`]s.
//!
//! **Must not import**: libclang, the C front end, Kbuild or the analysis.
//! It needs only the section names of `modswap-ir`.
//!
//! # The model
//!
//! - [`Object::sections`]: every section header but the null one, in
//!   section-index order.
//! - [`Object::symbols`]: every `.symtab` entry but the null one, in
//!   symbol-index order (so `index` matches `readelf -s`).
//! - [`Object::relocations`]: every RELA entry, grouped by relocation
//!   section in section order, in file order within a section.
//! - [`Object::imports`], [`Object::exports`], [`Object::data`]: sorted by
//!   name (then index), for stable output.
//!
//! All of it serialises to JSON with serde; `modswap inspect --format json`
//! prints exactly this (see `Object`'s fields for the shape).

pub mod error;
mod exports;
mod modinfo;
mod parts;
mod reader;
mod refs;
pub mod verify;
mod x86;

use serde::Serialize;
use std::path::Path;

pub use error::{Error, Result};

pub use modinfo::{MODULE_NAME_LEN, MODULE_NAME_OFFSET, THIS_MODULE_SECTION};

/// One relocatable x86_64 ELF object, as modswap sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Object {
    /// The module's identity and modswap markers.
    pub module: Module,
    /// `.modinfo` as `(key, value)` pairs in file order (keys repeat, e.g. `alias`).
    pub modinfo: Vec<(String, String)>,
    /// Section headers, without the null section, in index order.
    pub sections: Vec<Section>,
    /// `.symtab`, without the null symbol, in index order.
    pub symbols: Vec<Symbol>,
    /// Every RELA relocation of every relocation section.
    pub relocations: Vec<Relocation>,
    /// Undefined symbols: what the object needs from the kernel, other
    /// modules, or (for `_old_` names) the version it replaces.
    pub imports: Vec<Import>,
    /// Symbols the object exports with `EXPORT_SYMBOL*`.
    pub exports: Vec<Export>,
    /// Every defined data object (`STT_OBJECT`), with who refers to it.
    pub data: Vec<DataSymbol>,
    /// Things that look wrong but do not stop the analysis (e.g. the two
    /// module names disagree). Sorted.
    pub warnings: Vec<String>,
}

/// The module's identity, from `.modinfo` and `.gnu.linkonce.this_module`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Module {
    /// The module name: `.gnu.linkonce.this_module`'s name field if there
    /// is one, else `.modinfo`'s `name=`.
    pub name: Option<String>,
    /// `name=` from `.modinfo` (modpost adds it to every `.ko`).
    pub modinfo_name: Option<String>,
    /// The name field of the `struct module` in `.gnu.linkonce.this_module`
    /// (at [`MODULE_NAME_OFFSET`]).
    pub this_module_name: Option<String>,
    /// The image has `.modswap.info`, i.e. it was marked with
    /// `MODSWAP_REPLACE()` or `MODSWAP_HOTSWAPPABLE()`.
    pub hotswappable: bool,
    /// `struct modswap_info.abi`, when `.modswap.info` is there and holds one.
    pub modswap_abi: Option<u32>,
}

/// One section header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Section {
    /// The section header index (as `readelf -S` numbers them).
    pub index: u32,
    pub name: String,
    /// `PROGBITS`, `NOBITS`, `RELA`, ... (readelf's spelling; `0x...` if unknown).
    #[serde(rename = "type")]
    pub kind: String,
    /// readelf-style flag letters: `W` write, `A` alloc, `X` exec, `M`
    /// merge, `S` strings, `I` info link, `G` group.
    pub flags: String,
    pub size: u64,
    pub align: u64,
    /// For a `RELA` section: the index of the section it relocates.
    pub relocates: Option<u32>,
}

impl Section {
    pub fn is_alloc(&self) -> bool {
        self.flags.contains('A')
    }
    pub fn is_exec(&self) -> bool {
        self.flags.contains('X')
    }
}

/// `STT_*`, lower-case readelf names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SymbolKind {
    NoType,
    Object,
    Func,
    Section,
    File,
    Common,
    Tls,
    Other,
}

/// `STB_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Binding {
    Local,
    Global,
    Weak,
    Other,
}

/// Where a symbol is defined.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "index")]
pub enum Place {
    /// `SHN_UNDEF`: an import.
    Undefined,
    /// `SHN_ABS`.
    Absolute,
    /// `SHN_COMMON`.
    Common,
    /// Defined in the section with this index.
    Section(u32),
    /// Another reserved index (`SHN_LOPROC` and up), kept as is.
    Reserved(u32),
}

/// One `.symtab` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Symbol {
    /// The symbol table index (as `readelf -s` numbers them).
    pub index: u32,
    /// The name; for a section symbol, the section's name.
    pub name: String,
    pub kind: SymbolKind,
    pub binding: Binding,
    pub place: Place,
    /// The section's name, for a defined symbol.
    pub section: Option<String>,
    /// `st_value`: the offset in its section.
    pub value: u64,
    pub size: u64,
}

impl Symbol {
    pub fn is_defined(&self) -> bool {
        self.place != Place::Undefined
    }
}

/// One RELA relocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Relocation {
    /// The index of the section being patched.
    pub section: u32,
    /// Offset of the patched field in that section.
    pub offset: u64,
    /// `R_X86_64_*` name (or the number, for an unknown type).
    #[serde(rename = "type")]
    pub kind: String,
    /// The type number (`R_X86_64_*` constant).
    #[serde(skip)]
    pub r_type: u32,
    /// Index of the symbol the relocation refers to (0: none).
    pub symbol: u32,
    /// That symbol's name (the section's name for a section symbol).
    pub symbol_name: String,
    pub addend: i64,
}

/// An undefined symbol.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Import {
    pub name: String,
    /// Weak: may stay unresolved (modswap's `_old_` references are weak).
    pub weak: bool,
}

/// How an export is encoded in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportEncoding {
    /// A linked module: an entry of the merged `__ksymtab` / `__ksymtab_gpl`.
    Ksymtab,
    /// A `.mod.o`: a `___ksymtab+NAME` / `___ksymtab_gpl+NAME` section.
    KsymtabSection,
    /// A compiled source file (6.12): an entry of `.export_symbol`, which
    /// modpost turns into the two forms above.
    ExportSymbol,
}

/// One `EXPORT_SYMBOL*`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Export {
    pub name: String,
    /// `EXPORT_SYMBOL_GPL`.
    pub gpl: bool,
    /// The symbol namespace (`EXPORT_SYMBOL_NS*`), empty for none.
    pub namespace: String,
    pub encoding: ExportEncoding,
}

/// Where a relocation that points at a data symbol sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// An executable section.
    Code,
    /// An allocated, non-executable section.
    Data,
}

/// What the referencing instruction or datum does with the symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Use {
    /// The address itself is used: stored in data, loaded as an immediate,
    /// computed with `lea`, or anything not recognised as a plain access.
    Address,
    /// A load, store or read-modify-write through a memory operand (the
    /// object is accessed, its address does not leave the instruction).
    Memory,
}

/// One relocation that points at a data symbol.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Reference {
    pub from: Origin,
    /// The section holding the relocated field.
    pub section: String,
    pub offset: u64,
    /// For code: the function containing the field. For data: the data
    /// symbol holding the pointer. `None` if no symbol covers it.
    pub within: Option<String>,
    #[serde(rename = "use")]
    pub usage: Use,
    /// `R_X86_64_*`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Offset into the target symbol the relocation points at (after the
    /// instruction-relative bias of PC-relative code relocations).
    pub target_offset: i64,
}

/// Which modswap section a data symbol lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// An ordinary section (`.data`, `.bss`, `.rodata`, ...).
    Normal,
    /// `.static_old.<key>`.
    StaticOld,
    /// `.static_new.<key>`.
    StaticNew,
    /// `.gnu.linkonce.this_module`, the module descriptor.
    ThisModule,
}

/// A defined data object and everything that points at it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DataSymbol {
    pub name: String,
    /// Its symbol table index.
    pub symbol: u32,
    pub section: String,
    pub placement: Placement,
    pub offset: u64,
    pub size: u64,
    pub binding: Binding,
    /// Some reference uses the address itself ([`Use::Address`]).
    pub address_taken: bool,
    /// Relocations that point at it, sorted by section and offset.
    pub references: Vec<Reference>,
    /// Data symbols that hold a pointer to it, sorted, without duplicates.
    pub held_by: Vec<String>,
}

impl Object {
    /// Reads and analyses `path`.
    pub fn read(path: &Path) -> Result<Object> {
        let bytes = std::fs::read(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Object::parse(path, &bytes)
    }

    /// Analyses `bytes`; `path` names the file in errors only.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Object> {
        reader::parse(path, bytes)
    }

    pub fn section(&self, index: u32) -> Option<&Section> {
        parts::section_at(&self.sections, index)
    }

    pub fn section_by_name(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    pub fn symbol(&self, index: u32) -> Option<&Symbol> {
        parts::symbol_at(&self.symbols, index)
    }

    /// Defined symbols named `name` (locals can repeat across translation units).
    pub fn defined<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Symbol> {
        self.symbols
            .iter()
            .filter(move |s| s.is_defined() && s.name == name && s.kind != SymbolKind::Section)
    }

    /// Named symbols defined in section `index`, excluding section and file symbols.
    pub fn symbols_in(&self, index: u32) -> impl Iterator<Item = &Symbol> {
        self.symbols.iter().filter(move |s| {
            s.place == Place::Section(index)
                && !matches!(s.kind, SymbolKind::Section | SymbolKind::File)
                && !s.name.is_empty()
        })
    }

    /// The module's static sections: `.static_old.*`, `.static_new.*` and
    /// `.gnu.linkonce.this_module`, in index order.
    pub fn static_sections(&self) -> impl Iterator<Item = &Section> {
        let names = modswap_ir::sections::names();
        self.sections
            .iter()
            .filter(move |s| names.is_static(&s.name) || s.name == THIS_MODULE_SECTION)
    }
}
