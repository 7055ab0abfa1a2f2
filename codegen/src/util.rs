//! Small helpers.

/// FNV-1a, 64 bits: a stable, dependency-free digest for version ids and
/// the handler's checksum (not for security).
pub struct Fnv64(u64);

impl Fnv64 {
    pub fn new() -> Self {
        Fnv64(0xcbf2_9ce4_8422_2325)
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
}

/// `inode-cache` -> `inode_cache`: a C identifier fragment.
pub fn c_ident(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// `fs/fat/inode.c` relative to `fs/fat` -> `inode.c`.
pub fn rel_to(file: &str, dir: &str) -> String {
    file.strip_prefix(dir)
        .and_then(|r| r.strip_prefix('/'))
        .unwrap_or(file)
        .to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn fnv_known_value() {
        let mut h = super::Fnv64::new();
        h.write(b"a");
        assert_eq!(h.finish(), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn identifiers() {
        assert_eq!(super::c_ident("nls_euc-jp"), "nls_euc_jp");
        assert_eq!(super::c_ident("9p"), "_9p");
        assert_eq!(super::rel_to("fs/fat/inode.c", "fs/fat"), "inode.c");
    }
}
