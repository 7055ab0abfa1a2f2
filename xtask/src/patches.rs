//! Checks of the loader patch series (`loader/patches/`), run by
//! `cargo test --workspace`:
//!
//! - the series adds `include/linux/modswap.h` byte-identical to
//!   `loader/include/linux/modswap.h`, the copy the toolkit reads;
//! - `series` lists exactly the patch files, in order;
//! - every patch is `scripts/checkpatch.pl --strict` clean (with the kernel
//!   tree of `$MODSWAP_KERNEL_TREE`, else the cache's hotswap tree).

use std::path::{Path, PathBuf};

/// The content of `path` as created by `patch` (a `git format-patch`
/// file), or `None` if the patch does not create it.
pub fn created_file(patch: &str, path: &str) -> Option<String> {
    let header = format!("diff --git a/{path} b/{path}");
    let start = patch.find(&header)?;
    let rest = &patch[start + header.len()..];
    let end = rest.find("\ndiff --git ").unwrap_or(rest.len());
    let body = &rest[..end];
    if !body.contains("\nnew file mode ") {
        return None;
    }
    let hunk = body.find("\n@@ ")?;
    let mut out = String::new();
    for line in body[hunk + 1..].lines().skip(1) {
        if let Some(added) = line.strip_prefix('+') {
            out.push_str(added);
            out.push('\n');
        } else if line.starts_with("\\ No newline") {
            out.pop();
        } else if line == "-- " || line.starts_with("@@ ") {
            break;
        } else {
            // A new file's only hunk has nothing but added lines.
            return None;
        }
    }
    Some(out)
}

/// The kernel tree to borrow `scripts/checkpatch.pl` from.
pub fn checkpatch_tree() -> Option<PathBuf> {
    let tree = std::env::var_os("MODSWAP_KERNEL_TREE")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::kernel::Tree::new(crate::kernel::Variant::Hotswap).dir);
    tree.join("scripts/checkpatch.pl").exists().then_some(tree)
}

/// checkpatch's findings for `patch` (empty when clean).
pub fn checkpatch(tree: &Path, patch: &Path) -> anyhow::Result<Vec<String>> {
    let out = std::process::Command::new("perl")
        .arg(tree.join("scripts/checkpatch.pl"))
        .args(["--strict", "--quiet", "--no-color", "--show-types"])
        .arg(patch)
        .current_dir(tree)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut found: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("ERROR") || l.starts_with("WARNING") || l.starts_with("CHECK"))
        .map(str::to_string)
        .collect();
    if !out.status.success() && found.is_empty() {
        found.push(format!(
            "checkpatch failed: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths;

    fn patches() -> Vec<PathBuf> {
        crate::kernel::series().unwrap()
    }

    #[test]
    fn the_series_installs_the_shared_modswap_h_unchanged() {
        let shared =
            std::fs::read_to_string(paths::repo_root().join("loader/include/linux/modswap.h"))
                .unwrap();
        let created: Vec<String> = patches()
            .iter()
            .filter_map(|p| {
                created_file(
                    &std::fs::read_to_string(p).unwrap(),
                    "include/linux/modswap.h",
                )
            })
            .collect();
        assert_eq!(
            created.len(),
            1,
            "exactly one patch must create include/linux/modswap.h"
        );
        assert!(
            created[0] == shared,
            "include/linux/modswap.h in the series differs from loader/include/linux/modswap.h: \
             regenerate the series (see loader/README.md)"
        );
        for p in patches() {
            let text = std::fs::read_to_string(&p).unwrap();
            assert!(
                !text.contains("+++ b/include/linux/modswap.h")
                    || created_file(&text, "include/linux/modswap.h").is_some(),
                "{} modifies include/linux/modswap.h after creating it",
                p.display()
            );
        }
    }

    #[test]
    fn series_lists_every_patch_in_order() {
        let dir = paths::repo_root().join("loader/patches");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "patch"))
            .collect();
        files.sort();
        assert!(!files.is_empty());
        assert_eq!(patches(), files);
    }

    #[test]
    fn every_patch_is_checkpatch_strict_clean() {
        let tree = checkpatch_tree().expect(
            "no kernel tree with scripts/checkpatch.pl: set MODSWAP_KERNEL_TREE or run `cargo xtask kernel`",
        );
        let mut problems = Vec::new();
        for p in patches() {
            for f in checkpatch(&tree, &p).unwrap() {
                problems.push(format!("{}: {f}", p.file_name().unwrap().to_string_lossy()));
            }
        }
        assert!(
            problems.is_empty(),
            "checkpatch --strict:\n{}",
            problems.join("\n")
        );
    }

    #[test]
    fn created_files_are_read_back_exactly() {
        let patch = "diff --git a/x.h b/x.h\nnew file mode 100644\nindex 0..1\n--- /dev/null\n\
                     +++ b/x.h\n@@ -0,0 +1,2 @@\n+a\n+ b\ndiff --git a/y b/y\n";
        assert_eq!(created_file(patch, "x.h").as_deref(), Some("a\n b\n"));
        assert_eq!(created_file(patch, "z.h"), None);
        let modified =
            "diff --git a/x.h b/x.h\nindex 1..2\n--- a/x.h\n+++ b/x.h\n@@ -1 +1 @@\n-a\n+b\n";
        assert_eq!(created_file(modified, "x.h"), None);
    }
}
