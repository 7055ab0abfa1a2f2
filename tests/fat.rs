//! The real fat.ko of Linux 6.12, built from the installed source by
//! `cargo xtask kernel`: `modswap inspect` agrees with readelf and with the
//! tree's Module.symvers; and the struct module layout modswap assumes is
//! the kernel's.

use modswap_elf::{ExportEncoding, Object, MODULE_NAME_LEN, MODULE_NAME_OFFSET};
use modswap_tests::cli::run;
use modswap_tests::kbuild::build_with;
use modswap_tests::{kernel_tree, DEBIAN_HEADERS};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fat_ko() -> PathBuf {
    let ko = kernel_tree().join("fs/fat/fat.ko");
    assert!(
        ko.exists(),
        "{} is missing: build the tree with `cargo xtask kernel`",
        ko.display()
    );
    ko
}

fn readelf(flag: &str, ko: &Path) -> String {
    let out = Command::new("readelf")
        .arg(flag)
        .arg(ko)
        .output()
        .expect("readelf runs");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// "... contains N entries:" after `prefix` and a quoted name: name -> N.
fn entry_counts(text: &str, prefix: &str) -> BTreeMap<String, usize> {
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(prefix)?;
            let (name, rest) = rest.strip_prefix('\'')?.split_once('\'')?;
            let n = rest.split("contains ").nth(1)?.split_whitespace().next()?;
            Some((name.to_string(), n.parse().ok()?))
        })
        .collect()
}

#[test]
fn inspect_agrees_with_readelf_on_fat_ko() {
    let ko = fat_ko();
    let r = run([
        Path::new("inspect"),
        &ko,
        Path::new("--format"),
        Path::new("json"),
    ]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let v: Value = serde_json::from_str(&r.stdout).unwrap();

    // Symbols: readelf counts the null entry, the model does not.
    let syms = readelf("-sW", &ko);
    let counts = entry_counts(&syms, "Symbol table ");
    assert_eq!(counts.len(), 1, "{counts:?}");
    let symbols = v["symbols"].as_array().unwrap();
    assert_eq!(symbols.len() + 1, counts[".symtab"]);
    // ...and every entry has readelf's index, value, size and name.
    let mut checked = 0;
    for l in syms.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        let Some(num) = f
            .first()
            .and_then(|n| n.strip_suffix(':'))
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        if num == 0 {
            continue;
        }
        let s = &symbols[num - 1];
        assert_eq!(s["index"], num);
        assert_eq!(s["value"], u64::from_str_radix(f[1], 16).unwrap(), "{l}");
        assert_eq!(s["size"], f[2].parse::<u64>().unwrap(), "{l}");
        if f[3] != "SECTION" {
            assert_eq!(
                s["name"].as_str().unwrap(),
                f.get(7).copied().unwrap_or(""),
                "{l}"
            );
        }
        checked += 1;
    }
    assert_eq!(checked, symbols.len());

    // Relocations: per relocation section, and in total.
    let relocs = entry_counts(&readelf("-rW", &ko), "Relocation section ");
    let sections = v["sections"].as_array().unwrap();
    let mut ours: BTreeMap<String, usize> = BTreeMap::new();
    for r in v["relocations"].as_array().unwrap() {
        let rela = sections
            .iter()
            .find(|s| s["type"] == "RELA" && s["relocates"] == r["section"])
            .unwrap();
        *ours
            .entry(rela["name"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(ours, relocs);
    assert!(relocs.values().sum::<usize>() > 1000);

    assert_eq!(v["module"]["name"], "fat");
    assert_eq!(v["module"]["modinfo_name"], "fat");
    assert_eq!(v["module"]["this_module_name"], "fat");
    assert_eq!(v["warnings"], serde_json::json!([]));
}

#[test]
fn fat_exports_match_module_symvers() {
    let obj = Object::read(&fat_ko()).unwrap();
    let symvers = std::fs::read_to_string(kernel_tree().join("Module.symvers")).unwrap();
    let mut want: Vec<(String, bool)> = symvers
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.get(2) == Some(&"fs/fat/fat"))
                .then(|| (f[1].to_string(), f[3] == "EXPORT_SYMBOL_GPL"))
        })
        .collect();
    want.sort();
    let have: Vec<(String, bool)> = obj
        .exports
        .iter()
        .map(|e| (e.name.clone(), e.gpl))
        .collect();
    assert_eq!(have, want);
    assert!(have.len() > 20);
    assert!(obj
        .exports
        .iter()
        .all(|e| e.encoding == ExportEncoding::Ksymtab));
    // Imports: everything undefined, e.g. what fat needs from the kernel.
    assert!(obj
        .imports
        .iter()
        .any(|i| i.name == "register_filesystem" || i.name == "__bread_gfp"));
}

/// A module that only compiles if `offsetof(struct module, name)` and the
/// name's size are the constants modswap reads `.gnu.linkonce.this_module`
/// with, built against Debian's headers and against the built tree.
#[test]
fn module_name_offset_is_the_kernels() {
    let args = [
        format!("MODSWAP_NAME_OFFSET={MODULE_NAME_OFFSET}"),
        format!("MODSWAP_NAME_LEN={MODULE_NAME_LEN}"),
    ];
    let src = "tests/fixtures/modules/module_layout";
    for headers in [PathBuf::from(DEBIAN_HEADERS), kernel_tree()] {
        let built = build_with(&headers, src, "layoutprobe", &args);
        let obj = Object::read(&built.ko).unwrap();
        assert_eq!(obj.module.this_module_name.as_deref(), Some("layoutprobe"));
        assert_eq!(obj.module.modinfo_name.as_deref(), Some("layoutprobe"));
    }
    // The probe can fail: a wrong offset does not compile.
    let wrong = [
        format!("MODSWAP_NAME_OFFSET={}", MODULE_NAME_OFFSET + 8),
        format!("MODSWAP_NAME_LEN={MODULE_NAME_LEN}"),
    ];
    let r = std::panic::catch_unwind(|| {
        build_with(Path::new(DEBIAN_HEADERS), src, "layoutprobe", &wrong)
    });
    assert!(r.is_err(), "the probe compiled with a wrong offset");
}
