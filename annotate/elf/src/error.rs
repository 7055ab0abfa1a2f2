//! The crate's typed errors. Every variant names the file it is about, so a
//! caller can print it as is.

use std::path::PathBuf;

/// Everything that can go wrong reading an object.
///
/// Other passes add their own variants; match with a wildcard arm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be read at all.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The file is not an ELF file (no ELF magic, or shorter than an ELF header).
    #[error("{}: not an ELF file: {reason}", path.display())]
    NotElf { path: PathBuf, reason: String },

    /// A well-formed ELF file that modswap does not handle: 32-bit,
    /// big-endian, another machine than x86_64, or not relocatable.
    #[error("{}: unsupported ELF file: {reason}", path.display())]
    UnsupportedElf { path: PathBuf, reason: String },

    /// An ELF file whose tables are inconsistent or truncated.
    #[error("{}: malformed ELF file: {reason}", path.display())]
    MalformedElf { path: PathBuf, reason: String },
}

/// `Result` with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
