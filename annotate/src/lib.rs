//! modswap's analysis library.
//!
//! Two front ends feed one IR: `elf` reads built objects (`.o`, `.ko`) and
//! `source` parses C with libclang. Analysis and code generation read only
//! the IR.

#![forbid(unsafe_code)]

pub mod analyze;
pub mod class;
pub mod elf;
pub mod error;
pub mod ir;
pub mod kbuild;
pub mod report;
pub mod rewrite;
pub mod sections;
pub mod source;
pub mod verify;

pub use error::{Error, Result};
