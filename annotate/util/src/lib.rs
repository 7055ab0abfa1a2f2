//! The small helpers every modswap crate shares, each defined once: the
//! FNV-1a digest ([`Fnv64`]) and the atomic file writer ([`write_atomic`],
//! [`Staged`]).
//!
//! **Owns**: nothing of modswap's model; plain functions over bytes and
//! files. **Must not import**: any other modswap crate (every crate, build
//! scripts and xtask included, may import this one).

#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// FNV-1a, 64 bits: a stable, dependency-free digest (for change
/// detection and checksums, not for security).
#[derive(Debug, Clone)]
pub struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Self {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv64 {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    pub fn finish(&self) -> u64 {
        self.0
    }

    /// The digest of `bytes`, as 16 hex digits.
    pub fn hex(bytes: &[u8]) -> String {
        let mut h = Fnv64::new();
        h.write(bytes);
        format!("{:016x}", h.finish())
    }
}

/// A file written to a temporary file next to it (synced, with the
/// permissions of the file it replaces, if any), not yet renamed into
/// place: [`Staged::commit`] does that, [`Staged::discard`] (or dropping
/// it) removes the temporary. Several staged files committed together
/// leave every file old or every file new unless a rename fails.
#[derive(Debug)]
pub struct Staged {
    tmp: PathBuf,
    path: PathBuf,
    done: bool,
}

impl Staged {
    /// Writes `bytes` to a temporary file beside `path`.
    pub fn new(path: &Path, bytes: &[u8]) -> io::Result<Staged> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let tmp = dir.join(format!(".{name}.{}.modswap-tmp", std::process::id()));
        let staged = Staged {
            tmp,
            path: path.to_path_buf(),
            done: false,
        };
        let mut f = File::create(&staged.tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        if let Ok(m) = std::fs::metadata(path) {
            std::fs::set_permissions(&staged.tmp, m.permissions())?;
        }
        Ok(staged)
    }

    /// The file it replaces.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the temporary file into place.
    pub fn commit(mut self) -> io::Result<()> {
        self.done = true;
        std::fs::rename(&self.tmp, &self.path).inspect_err(|_| {
            let _ = std::fs::remove_file(&self.tmp);
        })
    }

    /// Removes the temporary file.
    pub fn discard(self) {}
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory
/// and a rename, so that a reader never sees a half-written file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    Staged::new(path, bytes)?.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_known_values() {
        assert_eq!(Fnv64::new().finish(), 0xcbf2_9ce4_8422_2325);
        // FNV-1a 64 of "a" (the reference test vector).
        assert_eq!(Fnv64::hex(b"a"), "af63dc4c8601ec8c");
    }

    #[test]
    fn writes_atomically_and_keeps_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.c");
        write_atomic(&p, b"one").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
        let staged = Staged::new(&p, b"three").unwrap();
        staged.discard();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary left"
        );
    }
}
