//! Source locations and extents, copied out of libclang.

use crate::take_string;
use clang_sys::*;
use std::path::PathBuf;

/// A point in a source file: file, 1-based line and column, 0-based byte offset.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Location {
    pub file: Option<PathBuf>,
    pub line: u32,
    pub column: u32,
    pub offset: u32,
}

impl Location {
    /// The *file* location: where the text is, after macro expansion is
    /// traced to the place the macro was invoked.
    pub(crate) fn from_raw(loc: CXSourceLocation) -> Location {
        let mut file: CXFile = std::ptr::null_mut();
        let (mut line, mut column, mut offset) = (0u32, 0u32, 0u32);
        // SAFETY: plain out-parameters; the file name string is disposed.
        unsafe {
            clang_getFileLocation(loc, &mut file, &mut line, &mut column, &mut offset);
            let file = if file.is_null() {
                None
            } else {
                Some(PathBuf::from(take_string(clang_getFileName(file))))
            };
            Location {
                file,
                line,
                column,
                offset,
            }
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.file {
            Some(p) => write!(f, "{}:{}:{}", p.display(), self.line, self.column),
            None => write!(f, "<unknown>:{}:{}", self.line, self.column),
        }
    }
}

/// A source range. Keeps libclang's raw range so the translation unit can
/// tokenize it; the raw range is only meaningful with the TU it came from,
/// which is why only [`crate::TranslationUnit::tokenize`] reads it.
#[derive(Debug, Clone)]
pub struct Extent {
    pub start: Location,
    pub end: Location,
    pub(crate) raw: CXSourceRange,
}

impl Extent {
    pub(crate) fn from_raw(raw: CXSourceRange) -> Extent {
        // SAFETY: reading the two ends of a range is side-effect free.
        let (s, e) = unsafe { (clang_getRangeStart(raw), clang_getRangeEnd(raw)) };
        Extent {
            start: Location::from_raw(s),
            end: Location::from_raw(e),
            raw,
        }
    }
}
