//! `modswap verify` on fixture modules built for real with Kbuild: each
//! incompatible pair is rejected with every reason listed.

use modswap_tests::cli::run;
use modswap_tests::kbuild::{build, Built};
use serde_json::Value;
use std::collections::BTreeSet;

fn pair(fixture: &str, module: &str) -> (Built, Built) {
    let dir = format!("tests/fixtures/modules/{fixture}");
    std::thread::scope(|s| {
        let old = s.spawn(|| build(&format!("{dir}/v1"), module));
        let new = build(&format!("{dir}/v2"), module);
        (old.join().unwrap(), new)
    })
}

/// Runs verify in both formats; returns (text with the paths replaced, JSON).
fn verify(old: &Built, new: &Built) -> (String, Value) {
    let r = run(["verify".as_ref(), old.ko.as_os_str(), new.ko.as_os_str()]);
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    let text = r
        .stdout
        .replace(&old.ko.display().to_string(), "OLD.ko")
        .replace(&new.ko.display().to_string(), "NEW.ko");
    let j = run([
        "verify".as_ref(),
        old.ko.as_os_str(),
        new.ko.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ]);
    assert_eq!(j.code, Some(1), "{j:?}");
    (text, serde_json::from_str(&j.stdout).unwrap())
}

fn kinds(j: &Value) -> BTreeSet<String> {
    j["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_changed_static_section_layout_is_rejected_with_every_reason() {
    let (old, new) = pair("static_layout", "layoutfix");
    let (text, j) = verify(&old, &new);
    assert_eq!(j["compatible"], false);
    let want: BTreeSet<String> = [
        "static_section_dropped",
        "static_section_added",
        "static_section_size",
        "static_section_align",
        "static_symbol_size",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(kinds(&j), want, "{text}");
    let p = j["problems"].as_array().unwrap();
    assert!(p.iter().any(|p| p["kind"] == "static_section_size"
        && p["section"] == ".static_old.layoutfix_config"
        && p["old"] == 8
        && p["new"] == 12));
    assert!(p.iter().any(|p| p["kind"] == "static_section_align"
        && p["section"] == ".static_new.layoutfix_table"
        && p["new"] == 128));
    assert!(p.iter().all(|p| p["message"].is_string()));
    insta::assert_snapshot!("static_layout", text);
}

#[test]
fn unresolvable_old_symbols_are_rejected_with_every_reason() {
    let (old, new) = pair("old_symbols", "oldsym");
    let (text, j) = verify(&old, &new);
    let want: BTreeSet<String> = [
        "old_symbol_undefined",
        "old_symbol_ambiguous",
        "old_symbol_beyond",
        "export_dropped",
        "export_now_gpl",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(kinds(&j), want, "{text}");
    let p = j["problems"].as_array().unwrap();
    assert!(p
        .iter()
        .any(|p| p["kind"] == "old_symbol_undefined" && p["symbol"] == "_old_oldsym_missing"));
    assert!(p
        .iter()
        .any(|p| p["kind"] == "old_symbol_ambiguous" && p["count"] == 2));
    // _old_oldsym_small.c is at offset 16; v1's object has 8 bytes.
    assert!(p
        .iter()
        .any(|p| p["kind"] == "old_symbol_beyond" && p["offset"] == 16 && p["old"] == 8));
    // _old_oldsym_total resolves: v1 defines exactly one, 8 bytes.
    assert!(!text.contains("_old_oldsym_total"), "{text}");
    insta::assert_snapshot!("old_symbols", text);
}

#[test]
fn a_module_does_not_replace_another_module() {
    let counterdev = build("examples/counterdev/v2", "counterdev");
    let (_, new) = pair("static_layout", "layoutfix");
    let r = run([
        "verify".as_ref(),
        counterdev.ko.as_os_str(),
        new.ko.as_os_str(),
    ]);
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(
        r.stdout
            .contains("module name differs: OLD is \"counterdev\", NEW is \"layoutfix\""),
        "{}",
        r.stdout
    );
    // ...and everything else that differs is listed too.
    assert!(r
        .stdout
        .contains("static section .static_old.counterdev_misc of OLD is missing from NEW"));
}

/// 6.12 encodes EXPORT_SYMBOL three ways: `.export_symbol` in the compiled
/// file, `___ksymtab*+NAME` sections in the `.mod.o` modpost generates, and
/// the merged `__ksymtab*` of the `.ko`. All three give the same exports.
#[test]
fn exports_are_read_in_all_three_encodings() {
    use modswap_elf::{ExportEncoding, Object};
    let built = build("tests/fixtures/modules/old_symbols/v1", "oldsym");
    let want = |enc: ExportEncoding| {
        vec![
            ("oldsym_helper".to_string(), true, String::new(), enc),
            (
                "oldsym_ns_value".to_string(),
                true,
                "MODSWAP_TEST".to_string(),
                enc,
            ),
            ("oldsym_total".to_string(), false, String::new(), enc),
        ]
    };
    for (file, enc) in [
        ("oldsym_main.o", ExportEncoding::ExportSymbol),
        ("oldsym.mod.o", ExportEncoding::KsymtabSection),
        ("oldsym.ko", ExportEncoding::Ksymtab),
    ] {
        let obj = Object::read(&built.dir.path().join(file)).unwrap();
        let have: Vec<_> = obj
            .exports
            .iter()
            .map(|e| (e.name.clone(), e.gpl, e.namespace.clone(), e.encoding))
            .collect();
        assert_eq!(have, want(enc), "{file}");
    }
}
