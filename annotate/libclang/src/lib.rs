//! Safe wrappers over libclang (through clang-sys, loaded at run time).
//!
//! This is the one crate of modswap that makes `unsafe` libclang calls. Its
//! rules follow rust-bindgen's:
//! - every libclang resource is a newtype that is freed in `Drop`
//!   ([`Index`], [`TranslationUnit`], strings, tokens, evaluation results);
//! - [`Cursor`]s and [`Type`]s borrow their translation unit, so none can
//!   outlive the AST it points into;
//! - nothing here is `Send`: libclang objects stay on the thread that made
//!   them. Several threads may each hold their own [`Index`]; the loaded
//!   library is shared between them.
//!
//! libclang is loaded at run time (clang-sys `runtime`), so a machine
//! without it gets [`Error::LibclangMissing`] with an install hint instead of
//! a link failure.

// clang-sys names its C constants in C style.
#![allow(non_upper_case_globals)]

mod cursor;
mod index;
mod location;
mod token;
mod types;

pub use cursor::{Cursor, EvalResult, FileId, Kind, Linkage, StorageClass, Visit};
pub use index::{
    Diagnostic, Index, ParseOptions, Severity, SkippedRange, TranslationUnit, Unsaved,
};
pub use location::{Extent, Location};
pub use token::{Token, TokenKind};
pub use types::{Type, TypeKind};

use clang_sys::{CXString, SharedLibrary};
use std::ffi::CStr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// What can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// libclang could not be found or opened.
    #[error(
        "libclang is not available ({reason}); install it with `apt-get install libclang-dev` \
         (or run `cargo xtask setup`), or point LIBCLANG_PATH at the directory holding libclang.so"
    )]
    LibclangMissing { reason: String },
    /// The loaded libclang is older than the version modswap needs.
    #[error("the libclang at {path} is too old: modswap needs libclang 14 or newer ({missing} is missing)")]
    LibclangTooOld {
        path: PathBuf,
        missing: &'static str,
    },
    /// libclang could not create an index.
    #[error("libclang could not create an index")]
    Index,
    /// libclang failed to parse a file at all (not a diagnostic in the file).
    #[error("libclang could not parse {file}: {reason}")]
    Parse { file: PathBuf, reason: String },
    /// An argument contains a NUL byte.
    #[error("argument for {file} contains a NUL byte: {arg:?}")]
    NulInArgument { file: PathBuf, arg: String },
    /// A thread to run libclang on could not be started.
    #[error("cannot start a libclang thread: {reason}")]
    Thread { reason: String },
}

/// The library, loaded once per process and shared by every thread.
fn shared_library() -> Result<Arc<SharedLibrary>, Error> {
    static LIBRARY: OnceLock<Result<Arc<SharedLibrary>, String>> = OnceLock::new();
    LIBRARY
        .get_or_init(|| clang_sys::load_manually().map(Arc::new))
        .clone()
        .map_err(|reason| Error::LibclangMissing { reason })
}

/// Makes libclang usable on the calling thread (clang-sys keeps the loaded
/// library in a thread-local).
pub(crate) fn ensure_loaded() -> Result<(), Error> {
    if clang_sys::is_loaded() {
        return Ok(());
    }
    let lib = shared_library()?;
    // The functions modswap calls that appeared latest (libclang 12-14).
    let needed: [(&'static str, bool); 3] = [
        (
            "clang_Cursor_getVarDeclInitializer",
            lib.functions.clang_Cursor_getVarDeclInitializer.is_some(),
        ),
        (
            "clang_Cursor_isAnonymousRecordDecl",
            lib.functions.clang_Cursor_isAnonymousRecordDecl.is_some(),
        ),
        (
            "clang_Cursor_hasVarDeclGlobalStorage",
            lib.functions.clang_Cursor_hasVarDeclGlobalStorage.is_some(),
        ),
    ];
    if let Some((missing, _)) = needed.iter().find(|(_, present)| !present) {
        return Err(Error::LibclangTooOld {
            path: lib.path().to_path_buf(),
            missing,
        });
    }
    clang_sys::set_library(Some(lib));
    Ok(())
}

/// Converts and disposes a libclang string.
///
/// # Safety
/// `s` must be a string returned by libclang that nobody else disposes.
pub(crate) unsafe fn take_string(s: CXString) -> String {
    let ptr = clang_sys::clang_getCString(s);
    let out = if ptr.is_null() {
        String::new()
    } else {
        CStr::from_ptr(ptr).to_string_lossy().into_owned()
    };
    clang_sys::clang_disposeString(s);
    out
}
