//! Small helpers.

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
    fn identifiers() {
        assert_eq!(super::c_ident("nls_euc-jp"), "nls_euc_jp");
        assert_eq!(super::c_ident("9p"), "_9p");
        assert_eq!(super::rel_to("fs/fat/inode.c", "fs/fat"), "inode.c");
    }
}
