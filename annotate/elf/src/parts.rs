//! The tables of a file being read, before they become an [`Object`]: what
//! the passes that derive the rest of the model (`modinfo`, `exports`,
//! `refs`) read. The index lookups are the ones [`Object`] answers with.

#[cfg(doc)]
use super::Object;
use super::{Relocation, Section, Symbol};

/// Section `index` of `sections` (stored in index order from 1).
pub(crate) fn section_at(sections: &[Section], index: u32) -> Option<&Section> {
    sections
        .get((index as usize).wrapping_sub(1))
        .filter(|s| s.index == index)
}

/// Symbol `index` of `symbols` (stored in index order from 1).
pub(crate) fn symbol_at(symbols: &[Symbol], index: u32) -> Option<&Symbol> {
    symbols
        .get((index as usize).wrapping_sub(1))
        .filter(|s| s.index == index)
}

/// The tables of a parsed file plus the raw bytes of every section, indexed
/// by section index (empty for `SHT_NOBITS` and the null section).
pub(crate) struct Parts<'a> {
    pub sections: Vec<Section>,
    pub symbols: Vec<Symbol>,
    pub relocations: Vec<Relocation>,
    pub contents: Vec<&'a [u8]>,
}

impl<'a> Parts<'a> {
    pub fn section(&self, index: u32) -> Option<&Section> {
        section_at(&self.sections, index)
    }

    pub fn section_by_name(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// The bytes of section `index` (empty for NOBITS or an unknown index).
    pub fn bytes(&self, index: u32) -> &'a [u8] {
        self.contents.get(index as usize).copied().unwrap_or(&[])
    }

    pub fn symbol(&self, index: u32) -> Option<&Symbol> {
        symbol_at(&self.symbols, index)
    }
}
