//! Where each global must live across a hotswap: the classes annotate
//! assigns and code generation reads.

use serde::{Deserialize, Serialize};

/// The class of a global (spelled in reports and JSON as `static_old`,
/// `static_new`, `transfer`, `none`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// The address is fixed and the old content is kept (e.g. a
    /// `file_system_type` the kernel links into its lists).
    StaticOld,
    /// The address is fixed and the new version's content replaces the old
    /// (e.g. an ops table of function pointers).
    StaticNew,
    /// The address stays private, but the value is run-time state that the
    /// replace handler must copy (e.g. a `kmem_cache *` set in init).
    Transfer,
    /// Nothing to do.
    None,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::StaticOld => "static_old",
            Class::StaticNew => "static_new",
            Class::Transfer => "transfer",
            Class::None => "none",
        }
    }
}

impl std::fmt::Display for Class {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One step of the evidence chain behind a decision.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Evidence {
    pub file: String,
    pub line: u32,
    /// What happens there, e.g. `&vfat_fs_type passed to register_filesystem()`.
    pub text: String,
}
