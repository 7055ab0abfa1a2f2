//! The example modules, built for real against Debian's 6.12 headers:
//! `modswap inspect` lists every global, `modswap verify` accepts each
//! v1 -> v2 pair.

use modswap_tests::cli::run;
use modswap_tests::kbuild::{build, Built};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

fn counterdev(v: &str) -> &'static Built {
    static V1: OnceLock<Built> = OnceLock::new();
    static V2: OnceLock<Built> = OnceLock::new();
    let cell = if v == "v1" { &V1 } else { &V2 };
    cell.get_or_init(|| build(&format!("examples/counterdev/{v}"), "counterdev"))
}

fn ramfs_mini(v: &str) -> &'static Built {
    static V1: OnceLock<Built> = OnceLock::new();
    static V2: OnceLock<Built> = OnceLock::new();
    let cell = if v == "v1" { &V1 } else { &V2 };
    cell.get_or_init(|| build(&format!("examples/ramfs_mini/{v}"), "ramfs_mini"))
}

fn inspect_json(ko: &Path) -> Value {
    let r = run([
        Path::new("inspect"),
        ko,
        Path::new("--format"),
        Path::new("json"),
    ]);
    assert_eq!(r.code, Some(0), "{r:?}");
    serde_json::from_str(&r.stdout).expect("inspect prints JSON")
}

/// `readelf -sW`'s defined OBJECT symbols: name -> (section name, size).
fn readelf_objects(ko: &Path) -> BTreeMap<(String, String), u64> {
    let sections = Command::new("readelf").arg("-SW").arg(ko).output().unwrap();
    let sections = String::from_utf8_lossy(&sections.stdout);
    let mut names = BTreeMap::new();
    for l in sections.lines() {
        let l = l.trim_start();
        let Some(rest) = l.strip_prefix('[') else {
            continue;
        };
        let Some((nr, rest)) = rest.split_once(']') else {
            continue;
        };
        let Ok(nr) = nr.trim().parse::<u32>() else {
            continue;
        };
        if let Some(name) = rest.split_whitespace().next() {
            names.insert(nr.to_string(), name.to_string());
        }
    }
    let syms = Command::new("readelf").arg("-sW").arg(ko).output().unwrap();
    let syms = String::from_utf8_lossy(&syms.stdout);
    let mut out = BTreeMap::new();
    for l in syms.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        // Num: Value Size Type Bind Vis Ndx Name
        if f.len() == 8 && f[3] == "OBJECT" && f[6] != "UND" {
            let size = f[2].parse::<u64>().unwrap();
            let section = names.get(f[6]).cloned().unwrap_or_default();
            out.insert((f[7].to_string(), section), size);
        }
    }
    out
}

fn data<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("inspect does not list {name}"))
}

#[test]
fn inspect_lists_every_global_of_every_example_like_readelf() {
    for built in [
        counterdev("v1"),
        counterdev("v2"),
        ramfs_mini("v1"),
        ramfs_mini("v2"),
    ] {
        let v = inspect_json(&built.ko);
        let want = readelf_objects(&built.ko);
        let have: BTreeMap<(String, String), u64> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                assert!(d["address_taken"].is_boolean());
                (
                    (
                        d["name"].as_str().unwrap().to_string(),
                        d["section"].as_str().unwrap().to_string(),
                    ),
                    d["size"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(have, want, "{}", built.ko.display());
        assert!(want.len() > 10);
    }
}

#[test]
fn counterdev_globals_have_their_section_size_and_escape() {
    let v = inspect_json(&counterdev("v1").ko);
    assert_eq!(v["module"]["name"], "counterdev");
    assert_eq!(v["module"]["hotswappable"], false);

    let misc = data(&v, "counterdev_misc");
    assert_eq!(misc["section"], ".static_old.counterdev_misc");
    assert_eq!(misc["placement"], "static_old");
    assert_eq!(misc["size"], 80); // struct miscdevice
    assert_eq!(misc["address_taken"], true); // misc_register(&counterdev_misc)

    let fops = data(&v, "counterdev_fops");
    assert_eq!(fops["section"], ".static_new.counterdev_fops");
    assert_eq!(fops["size"], 264); // struct file_operations
    assert_eq!(fops["address_taken"], true);
    assert_eq!(fops["held_by"], serde_json::json!(["counterdev_misc"]));

    // Only loaded and stored: its address never leaves an instruction.
    let state = data(&v, "counterdev_state");
    assert_eq!(state["section"], ".bss");
    assert_eq!(state["size"], 32);
    assert_eq!(state["binding"], "local");
    assert_eq!(state["address_taken"], false);
    let refs = state["references"].as_array().unwrap();
    assert!(refs.len() >= 4);
    assert!(refs
        .iter()
        .all(|r| r["from"] == "code" && r["use"] == "memory"));
    // Each access lands on a u64 member.
    assert!(
        refs.iter()
            .all(|r| r["target_offset"].as_i64().unwrap() % 8 == 0),
        "{refs:?}"
    );
    assert!(refs.iter().any(|r| r["within"] == "counterdev_write"));

    // spin_lock(&counterdev_lock) passes the address on.
    let lock = data(&v, "counterdev_lock");
    assert_eq!(lock["address_taken"], true);
    assert_eq!(lock["size"], 4);

    // The module descriptor is what `.owner = THIS_MODULE` points to.
    let this = data(&v, "__this_module");
    assert_eq!(this["placement"], "this_module");
    assert_eq!(this["held_by"], serde_json::json!(["counterdev_fops"]));
}

#[test]
fn ramfs_mini_globals_have_their_section_size_and_escape() {
    let v = inspect_json(&ramfs_mini("v2").ko);
    assert_eq!(v["module"]["name"], "ramfs_mini");
    assert_eq!(v["module"]["hotswappable"], true);
    assert_eq!(v["module"]["modswap_abi"], 1);
    let fs = data(&v, "ramfs_mini_fs_type");
    assert_eq!(fs["section"], ".static_old.ramfs_mini_fs_type");
    assert_eq!(fs["address_taken"], true); // register_filesystem(&...)
    assert_eq!(fs["binding"], "local"); // static, as in v1
                                        // tree_descr entries point at both file_operations tables.
    for fops in ["ramfs_mini_stats_fops", "ramfs_mini_note_fops"] {
        let d = data(&v, fops);
        assert_eq!(d["placement"], "static_new");
        assert_eq!(
            d["held_by"],
            serde_json::json!(["ramfs_mini_files"]),
            "{fops}"
        );
    }
    let state = data(&v, "ramfs_mini_state");
    assert_eq!(state["size"], 8 * 4 + 512);
    // The replace handler reads v1's copy through _old_ramfs_mini_state.
    assert!(v["imports"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["name"] == "_old_ramfs_mini_state" && i["weak"] == true));
}

#[test]
fn verify_accepts_each_v1_to_v2_pair() {
    for (old, new) in [
        (counterdev("v1"), counterdev("v2")),
        (ramfs_mini("v1"), ramfs_mini("v2")),
    ] {
        let r = run(["verify".as_ref(), old.ko.as_os_str(), new.ko.as_os_str()]);
        assert_eq!(r.code, Some(0), "{r:?}");
        assert!(r.stdout.starts_with("compatible: "), "{}", r.stdout);
        let j = run([
            "verify".as_ref(),
            old.ko.as_os_str(),
            new.ko.as_os_str(),
            "--format".as_ref(),
            "json".as_ref(),
        ]);
        assert_eq!(j.code, Some(0));
        let j: Value = serde_json::from_str(&j.stdout).unwrap();
        assert_eq!(j["compatible"], true);
        assert_eq!(j["problems"], serde_json::json!([]));
    }
}

#[test]
fn verify_rejects_going_back_to_an_unmarked_v1() {
    let r = run([
        "verify".as_ref(),
        counterdev("v2").ko.as_os_str(),
        counterdev("v1").ko.as_os_str(),
    ]);
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(r.stdout.contains("NEW is not hotswappable"), "{}", r.stdout);
}

/// The data-symbol table and references of `inspect`'s text output.
fn data_report(ko: &Path) -> String {
    let r = run([Path::new("inspect"), ko]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let start = r.stdout.find("Data symbols").unwrap();
    let end = r.stdout.find("\nExports").unwrap();
    r.stdout[start..end].to_string()
}

#[test]
fn inspect_text_of_the_v2_examples() {
    insta::assert_snapshot!("counterdev_v2_data", data_report(&counterdev("v2").ko));
    insta::assert_snapshot!("ramfs_mini_v2_data", data_report(&ramfs_mini("v2").ko));
}

/// The JSON shape of `inspect` (module and data symbols), locked down.
#[test]
fn inspect_json_of_counterdev_v1() {
    let v = inspect_json(&counterdev("v1").ko);
    assert_eq!(v["schema"], "modswap-inspect/1");
    let shape =
        serde_json::json!({ "module": v["module"], "data": v["data"], "exports": v["exports"] });
    insta::assert_snapshot!(
        "counterdev_v1_json",
        serde_json::to_string_pretty(&shape).unwrap()
    );
}
