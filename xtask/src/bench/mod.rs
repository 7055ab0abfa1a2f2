//! `cargo xtask bench ...`: speed and memory figures (never part of the tests).

pub mod annotate;
