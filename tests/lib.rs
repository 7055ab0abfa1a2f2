//! Shared helpers for modswap's integration tests.
//!
//! Tests that need a Linux 6.12 tree read `MODSWAP_KERNEL_TREE`, which
//! `cargo xtask test` sets after it has built the tree. They fail (never
//! skip) when it is missing, and say how to get one.

use std::path::PathBuf;

#[path = "support/cli.rs"]
pub mod cli;
#[path = "support/kbuild.rs"]
pub mod kbuild;

/// The built Linux 6.12 tree (`cargo xtask kernel` prints its path).
pub fn kernel_tree() -> PathBuf {
    match std::env::var_os("MODSWAP_KERNEL_TREE") {
        Some(p) => PathBuf::from(p),
        None => panic!(
            "MODSWAP_KERNEL_TREE is not set: run the tests with `cargo xtask test`, \
             or set it to the tree `cargo xtask kernel` prints"
        ),
    }
}

/// Debian's stock header tree for out-of-tree module builds.
pub const DEBIAN_HEADERS: &str = "/usr/src/linux-headers-6.12.117+deb12-amd64";

/// The checkout's root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The static address sections (`.static_old.*`, `.static_new.*`) of a
/// built module, sorted.
pub fn static_sections(ko: &std::path::Path) -> Vec<String> {
    let obj = modswap_elf::Object::read(ko).expect("a module modswap can read");
    let names = modswap_ir::sections::names();
    let mut v: Vec<String> = obj
        .sections
        .iter()
        .map(|s| s.name.clone())
        .filter(|n| names.is_static(n))
        .collect();
    v.sort();
    v
}
