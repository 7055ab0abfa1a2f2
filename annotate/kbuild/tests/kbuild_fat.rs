//! Kbuild discovery and libclang parsing on the real fs/fat, fs/bfs and
//! fs/nls of the built Linux 6.12 tree (`MODSWAP_KERNEL_TREE`).

use modswap_clang::{Index, ParseOptions};
use modswap_kbuild as kbuild;
use std::path::PathBuf;

fn tree() -> PathBuf {
    PathBuf::from(std::env::var_os("MODSWAP_KERNEL_TREE").expect(
        "MODSWAP_KERNEL_TREE is not set: run via `cargo xtask test` or point it at `cargo xtask kernel`'s tree",
    ))
}

#[test]
fn fat_directory_makes_three_modules_from_kbuild_commands() {
    let mut md = kbuild::discover(&tree().join("fs/fat"), None).unwrap();
    assert!(md.in_tree);
    md.load_commands().unwrap();
    let names: Vec<_> = md.modules.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["fat", "msdos", "vfat"]);
    let fat = &md.modules[0];
    let files: Vec<_> = fat
        .sources
        .iter()
        .map(|s| s.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        files,
        ["cache.c", "dir.c", "fatent.c", "file.c", "inode.c", "misc.c", "nfs.c"]
    );
    for m in &md.modules {
        for s in &m.sources {
            let c = s.command.as_ref().unwrap();
            assert_eq!(c.source().as_deref(), Some(s.path.as_path()));
            assert_eq!(c.modname().as_deref(), Some(m.modname.as_str()));
        }
    }
    // fat_test.o is named in the Makefile but not configured.
    assert!(md.skipped.iter().any(|(m, _)| m == "fat_test"));
}

#[test]
fn every_fat_source_parses_without_errors() {
    let mut md = kbuild::discover(&tree().join("fs/fat"), None).unwrap();
    md.load_commands().unwrap();
    let index = Index::new().unwrap();
    for m in &md.modules {
        for s in &m.sources {
            let args = s.command.as_ref().unwrap().clang_args();
            let tu = index
                .parse(&s.path, &args, ParseOptions::default())
                .unwrap();
            let errors: Vec<String> = tu
                .diagnostics()
                .into_iter()
                .filter(|d| d.is_error())
                .map(|d| d.to_string())
                .collect();
            assert!(errors.is_empty(), "{}: {errors:#?}", s.path.display());
        }
    }
}

#[test]
fn nls_directory_lists_only_configured_codepages() {
    let mut md = kbuild::discover(&tree().join("fs/nls"), None).unwrap();
    md.load_commands().unwrap();
    let names: Vec<_> = md.modules.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["nls_cp437", "nls_iso8859-1"]);
    assert_eq!(md.modules[1].modname, "nls_iso8859_1");
    assert!(md.skipped.iter().any(|(m, _)| m == "nls_cp850"));
}

#[test]
fn unbuilt_external_module_names_the_make_command() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Kbuild"),
        "obj-m += demo.o\ndemo-y := a.o b.o\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("a.c"), "").unwrap();
    std::fs::write(dir.path().join("b.c"), "").unwrap();
    let mut md = kbuild::discover(dir.path(), Some(&tree())).unwrap();
    assert!(!md.in_tree);
    let err = md.load_commands().unwrap_err().to_string();
    assert!(err.contains("a.o, b.o"), "{err}");
    assert!(
        err.contains(&format!("M={}", dir.path().display())),
        "{err}"
    );
}
