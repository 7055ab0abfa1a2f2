//! Where the project keeps what it builds outside the checkout.
//!
//! Kernel trees live at a fixed path outside the checkout so that ccache hits
//! across runs and across clones (ccache misses when absolute source paths
//! change).

use std::path::{Path, PathBuf};

/// The kernel release the project targets (Debian's linux-source-6.12).
pub const KERNEL_VERSION: &str = "6.12.117";
/// The Debian package version of linux-source-6.12 that holds it.
#[cfg(test)]
pub const KERNEL_SOURCE_DEB: &str = "6.12.117-1~deb12u1";
/// Debian's stock header tree for out-of-tree module builds.
pub const DEBIAN_HEADERS: &str = "/usr/src/linux-headers-6.12.117+deb12-amd64";
/// The tarball installed by linux-source-6.12.
pub const SOURCE_TARBALL: &str = "/usr/src/linux-source-6.12.tar.xz";

/// `$MODSWAP_CACHE`, else `$XDG_CACHE_HOME/modswap`, else `~/.cache/modswap`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MODSWAP_CACHE") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("modswap");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".cache").join("modswap")
}

/// The checkout's root (xtask lives one level below it).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask has a parent directory")
        .to_path_buf()
}

pub fn ccache_dir() -> PathBuf {
    cache_dir().join("ccache")
}
