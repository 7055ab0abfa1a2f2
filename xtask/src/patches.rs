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

/// The files that `patch` (a `git format-patch` file) creates.
fn created_files(patch: &str) -> Vec<&str> {
    patch
        .split("\ndiff --git a/")
        .skip(1)
        .filter(|d| {
            d.lines()
                .nth(1)
                .is_some_and(|l| l.starts_with("new file mode "))
        })
        .filter_map(|d| d.split(' ').next())
        .collect()
}

/// Whether an `F:` pattern of MAINTAINERS covers `path` (a directory
/// pattern ends in `/`; `*` matches within one path component).
fn maintained(patterns: &[&str], path: &str) -> bool {
    patterns.iter().any(|p| match p.split_once('*') {
        Some((head, tail)) => {
            path.starts_with(head)
                && path.ends_with(tail)
                && !path[head.len()..path.len() - tail.len()].contains('/')
        }
        None if p.ends_with('/') => path.starts_with(p),
        None => path == *p,
    })
}

/// checkpatch asks "does MAINTAINERS need updating?" of every patch that
/// adds a file. The question is answered when the tree's MAINTAINERS
/// already covers each file the patch adds.
fn new_files_are_maintained(tree: &Path, patch: &str) -> bool {
    let Ok(maintainers) = std::fs::read_to_string(tree.join("MAINTAINERS")) else {
        return false;
    };
    let patterns: Vec<&str> = maintainers
        .lines()
        .filter_map(|l| l.strip_prefix("F:"))
        .map(str::trim)
        .collect();
    created_files(patch)
        .iter()
        .all(|f| maintained(&patterns, f))
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
    let maintained = new_files_are_maintained(tree, &std::fs::read_to_string(patch)?);
    let mut found: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("ERROR") || l.starts_with("WARNING") || l.starts_with("CHECK"))
        .filter(|l| !(maintained && l.starts_with("WARNING:FILE_PATH_CHANGES:")))
        .map(str::to_string)
        .collect();
    let answered = maintained && text.contains("WARNING:FILE_PATH_CHANGES:");
    if !out.status.success() && found.is_empty() && !answered {
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
    fn maintainers_patterns_cover_new_files() {
        let patterns = [
            "kernel/module/",
            "include/linux/module*.h",
            "lib/test_kmod.c",
        ];
        assert!(maintained(&patterns, "kernel/module/hotswap_refs.c"));
        assert!(maintained(&patterns, "include/linux/modules.h"));
        assert!(maintained(&patterns, "lib/test_kmod.c"));
        assert!(!maintained(&patterns, "kernel/modulex.c"));
        assert!(!maintained(&patterns, "include/linux/module/x.h"));
        assert!(!maintained(&patterns, "lib/test_kmod.h"));
        let patch = "x\ndiff --git a/a/new.c b/a/new.c\nnew file mode 100644\n\
                     diff --git a/a/old.c b/a/old.c\nindex 1..2 100644\n";
        assert_eq!(created_files(patch), ["a/new.c"]);
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
