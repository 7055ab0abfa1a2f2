//! Indexes, translation units and their diagnostics.

use crate::location::{Extent, Location};
use crate::token::Token;
use crate::{ensure_loaded, take_string, Cursor, Error, FileId};
use clang_sys::*;
use std::ffi::CString;
use std::marker::PhantomData;
use std::os::raw::c_char;
use std::path::{Path, PathBuf};

/// A libclang index: the owner of translation units. Freed on drop.
pub struct Index {
    raw: CXIndex,
    // libclang objects stay on the thread that made them.
    _not_send: PhantomData<*const ()>,
}

impl Index {
    /// Makes an index; loads libclang on this thread first if needed.
    pub fn new() -> Result<Index, Error> {
        ensure_loaded()?;
        // SAFETY: the library is loaded; arguments are plain flags.
        let raw = unsafe { clang_createIndex(0, 0) };
        if raw.is_null() {
            return Err(Error::Index);
        }
        Ok(Index {
            raw,
            _not_send: PhantomData,
        })
    }

    /// Parses `file` with the compiler arguments `args` (no file name in
    /// them). Diagnostics in the file do not fail the parse: read them with
    /// [`TranslationUnit::diagnostics`].
    pub fn parse(
        &self,
        file: &Path,
        args: &[String],
        options: ParseOptions,
    ) -> Result<TranslationUnit<'_>, Error> {
        self.parse_with(file, args, options, &[])
    }

    /// [`Index::parse`], with the contents of some files replaced: libclang
    /// reads each [`Unsaved`] file's `contents` instead of the file on disk
    /// (the file must exist; it is found by the normal include search).
    pub fn parse_with(
        &self,
        file: &Path,
        args: &[String],
        options: ParseOptions,
        unsaved: &[Unsaved],
    ) -> Result<TranslationUnit<'_>, Error> {
        let c_file = CString::new(file.as_os_str().as_encoded_bytes()).map_err(|_| {
            Error::NulInArgument {
                file: file.to_path_buf(),
                arg: file.display().to_string(),
            }
        })?;
        let c_args = args
            .iter()
            .map(|a| {
                CString::new(a.as_str()).map_err(|_| Error::NulInArgument {
                    file: file.to_path_buf(),
                    arg: a.clone(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let ptrs: Vec<*const c_char> = c_args.iter().map(|a| a.as_ptr()).collect();
        let c_names = unsaved
            .iter()
            .map(|u| {
                CString::new(u.path.as_os_str().as_encoded_bytes()).map_err(|_| {
                    Error::NulInArgument {
                        file: file.to_path_buf(),
                        arg: u.path.display().to_string(),
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut raw_unsaved: Vec<CXUnsavedFile> = unsaved
            .iter()
            .zip(&c_names)
            .map(|(u, name)| CXUnsavedFile {
                Filename: name.as_ptr(),
                Contents: u.contents.as_ptr() as *const c_char,
                Length: u.contents.len() as std::os::raw::c_ulong,
            })
            .collect();
        let mut flags = CXTranslationUnit_None;
        if options.detailed_preprocessing_record {
            flags |= CXTranslationUnit_DetailedPreprocessingRecord;
        }
        if options.skip_function_bodies {
            flags |= CXTranslationUnit_SkipFunctionBodies;
        }
        let mut tu: CXTranslationUnit = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the duration of the call; the
        // result is owned by the returned TranslationUnit.
        let code = unsafe {
            clang_parseTranslationUnit2(
                self.raw,
                c_file.as_ptr(),
                ptrs.as_ptr(),
                ptrs.len() as i32,
                if raw_unsaved.is_empty() {
                    std::ptr::null_mut()
                } else {
                    raw_unsaved.as_mut_ptr()
                },
                raw_unsaved.len() as u32,
                flags,
                &mut tu,
            )
        };
        if code != CXError_Success || tu.is_null() {
            let reason = match code {
                CXError_Crashed => "libclang crashed".to_string(),
                CXError_InvalidArguments => "invalid arguments".to_string(),
                CXError_ASTReadError => "AST read error".to_string(),
                _ => format!("libclang error code {code}"),
            };
            return Err(Error::Parse {
                file: file.to_path_buf(),
                reason,
            });
        }
        Ok(TranslationUnit {
            raw: tu,
            _index: PhantomData,
        })
    }
}

impl Drop for Index {
    fn drop(&mut self) {
        // SAFETY: created by clang_createIndex; every TU borrowed it and is gone.
        unsafe { clang_disposeIndex(self.raw) }
    }
}

/// A file whose contents libclang takes from memory instead of the disk
/// (see [`Index::parse_with`]). libclang copies the contents during the parse.
#[derive(Debug, Clone)]
pub struct Unsaved {
    pub path: PathBuf,
    pub contents: std::sync::Arc<[u8]>,
}

/// How to parse.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParseOptions {
    /// Keep macro expansions and definitions in the AST (MacroExpansion cursors).
    pub detailed_preprocessing_record: bool,
    /// Skip function bodies (declarations only: faster).
    pub skip_function_bodies: bool,
}

/// A parsed file. Cursors and types borrow it. Freed on drop.
pub struct TranslationUnit<'idx> {
    pub(crate) raw: CXTranslationUnit,
    _index: PhantomData<&'idx Index>,
}

impl<'idx> TranslationUnit<'idx> {
    /// The root cursor.
    pub fn cursor(&self) -> Cursor<'_> {
        // SAFETY: the TU is alive for the borrow.
        let raw = unsafe { clang_getTranslationUnitCursor(self.raw) };
        Cursor::from_raw(raw, self)
    }

    /// Every diagnostic, in libclang's order.
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        // SAFETY: the TU is alive; each diagnostic is disposed after reading.
        unsafe {
            let n = clang_getNumDiagnostics(self.raw);
            (0..n)
                .map(|i| {
                    let d = clang_getDiagnostic(self.raw, i);
                    let severity = match clang_getDiagnosticSeverity(d) {
                        CXDiagnostic_Ignored => Severity::Ignored,
                        CXDiagnostic_Note => Severity::Note,
                        CXDiagnostic_Warning => Severity::Warning,
                        CXDiagnostic_Error => Severity::Error,
                        _ => Severity::Fatal,
                    };
                    let location = Location::from_raw(clang_getDiagnosticLocation(d));
                    let message = take_string(clang_getDiagnosticSpelling(d));
                    clang_disposeDiagnostic(d);
                    Diagnostic {
                        severity,
                        location,
                        message,
                    }
                })
                .collect()
        }
    }

    /// The tokens in `extent` (which must come from this translation unit).
    pub fn tokenize(&self, extent: &Extent) -> Vec<Token> {
        let mut tokens: *mut CXToken = std::ptr::null_mut();
        let mut n: u32 = 0;
        // SAFETY: the extent's raw range belongs to this TU; the token array
        // is read and then freed with clang_disposeTokens.
        unsafe {
            clang_tokenize(self.raw, extent.raw, &mut tokens, &mut n);
            if tokens.is_null() {
                return Vec::new();
            }
            let slice = std::slice::from_raw_parts(tokens, n as usize);
            let out = slice.iter().map(|t| Token::from_raw(self, *t)).collect();
            clang_disposeTokens(self.raw, tokens, n);
            out
        }
    }

    /// Every file the translation unit read: the main file and each header
    /// it included (directly or not), once each, sorted, as libclang
    /// spelled the paths.
    pub fn inclusions(&self) -> Vec<PathBuf> {
        extern "C" fn visit(
            file: CXFile,
            _stack: *mut CXSourceLocation,
            _depth: std::os::raw::c_uint,
            data: CXClientData,
        ) {
            // SAFETY: `data` is the `Vec` passed below, alive and not
            // otherwise borrowed during clang_getInclusions; the file name
            // string is disposed by take_string.
            unsafe {
                let out = &mut *(data as *mut Vec<PathBuf>);
                if !file.is_null() {
                    out.push(PathBuf::from(take_string(clang_getFileName(file))));
                }
            }
        }
        let mut out: Vec<PathBuf> = Vec::new();
        // SAFETY: the TU is alive; the visitor only touches `out`.
        unsafe {
            clang_getInclusions(
                self.raw,
                visit,
                &mut out as *mut Vec<PathBuf> as CXClientData,
            );
        }
        out.sort();
        out.dedup();
        out
    }

    /// The ranges the preprocessor skipped (inactive `#if` branches) in
    /// every file, when the unit was parsed with a detailed preprocessing
    /// record. Each range runs from its `#if`/`#else` line to its `#endif`.
    pub fn skipped_ranges(&self) -> Vec<SkippedRange<'_>> {
        // SAFETY: the TU is alive; the list is copied out and then freed
        // with clang_disposeSourceRangeList.
        unsafe {
            let list = clang_getAllSkippedRanges(self.raw);
            if list.is_null() {
                return Vec::new();
            }
            let l = &*list;
            let out = if l.ranges.is_null() {
                Vec::new()
            } else {
                std::slice::from_raw_parts(l.ranges, l.count as usize)
                    .iter()
                    .filter_map(|r| {
                        let (file, start) = file_offset(clang_getRangeStart(*r))?;
                        let (_, end) = file_offset(clang_getRangeEnd(*r))?;
                        Some(SkippedRange {
                            file: FileId::from_raw(file),
                            start,
                            end,
                            raw_file: file,
                            _tu: PhantomData,
                        })
                    })
                    .collect()
            };
            clang_disposeSourceRangeList(list);
            out
        }
    }

    /// The main file's path as libclang spelled it.
    pub fn spelling(&self) -> PathBuf {
        // SAFETY: the TU is alive; the string is disposed.
        PathBuf::from(unsafe { take_string(clang_getTranslationUnitSpelling(self.raw)) })
    }
}

impl Drop for TranslationUnit<'_> {
    fn drop(&mut self) {
        // SAFETY: created by clang_parseTranslationUnit2; no cursor outlives it.
        unsafe { clang_disposeTranslationUnit(self.raw) }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Ignored,
    Note,
    Warning,
    Error,
    Fatal,
}

/// A range of one file that the preprocessor skipped: byte offsets.
pub struct SkippedRange<'tu> {
    pub file: FileId,
    pub start: u32,
    pub end: u32,
    raw_file: CXFile,
    _tu: PhantomData<&'tu TranslationUnit<'tu>>,
}

impl SkippedRange<'_> {
    /// The file's path as libclang spelled it.
    pub fn path(&self) -> PathBuf {
        // SAFETY: the file belongs to the TU, alive for 'tu; the string is
        // disposed.
        PathBuf::from(unsafe { take_string(clang_getFileName(self.raw_file)) })
    }
}

/// The file and byte offset of a location, or `None` outside any file.
///
/// # Safety
/// `loc` must belong to a live translation unit.
unsafe fn file_offset(loc: CXSourceLocation) -> Option<(CXFile, u32)> {
    let mut file: CXFile = std::ptr::null_mut();
    let (mut line, mut column, mut offset) = (0u32, 0u32, 0u32);
    clang_getFileLocation(loc, &mut file, &mut line, &mut column, &mut offset);
    (!file.is_null()).then_some((file, offset))
}

/// One diagnostic, copied out of libclang.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub severity: Severity,
    pub location: Location,
    pub message: String,
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.severity >= Severity::Error
    }
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sev = match self.severity {
            Severity::Ignored => "ignored",
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Fatal => "fatal error",
        };
        write!(f, "{}: {sev}: {}", self.location, self.message)
    }
}
