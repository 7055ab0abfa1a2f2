//! One file per command; `main.rs` only dispatches.

pub mod handler;
