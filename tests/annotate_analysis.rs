//! `analyze` on fixture modules (tests/fixtures/annotate/*), built with
//! Kbuild against Debian's 6.12 headers so that the analysis sees the exact
//! flags and the real kernel headers.

use modswap_analyze::{self as analyze, Analysis};
use modswap_ir::class::Class;
use modswap_tests::DEBIAN_HEADERS;
use std::path::Path;

#[path = "annotate_support.rs"]
mod support;
use support::build_fixture;

fn analyse(dir: &Path) -> Analysis {
    analyze::run(dir, &external()).unwrap().analysis
}

/// The pipeline's options for an external module built against Debian's
/// headers.
fn external() -> analyze::pipeline::Options {
    analyze::pipeline::Options {
        kdir: Some(Path::new(DEBIAN_HEADERS).to_path_buf()),
        ..Default::default()
    }
}

/// One block per global: decision, then the evidence chain.
fn table(a: &Analysis) -> String {
    let mut s = String::new();
    for m in &a.modules {
        for g in &m.globals {
            s.push_str(&format!(
                "{} {} {} escapes={} mutated_by_module={} mutated_by_kernel={} reassign={:?}\n  reason: {}\n",
                m.name,
                g.key,
                g.class,
                g.escapes,
                g.mutated_by_module,
                g.mutated_by_kernel,
                g.reassign,
                g.reason
            ));
            for e in &g.evidence {
                s.push_str(&format!("  {}:{}: {}\n", e.file, e.line, e.text));
            }
        }
    }
    for n in &a.notes {
        s.push_str(&format!("note: {n}\n"));
    }
    s
}

fn class(a: &Analysis, module: &str, key: &str) -> Class {
    a.global(module, key)
        .unwrap_or_else(|| panic!("{module} has no global {key}"))
        .class
}

#[test]
fn every_rule_on_its_own_global() {
    let (_tmp, dir) = build_fixture("escape");
    let a = analyse(&dir);
    // Escape through a kernel function; the kernel links it: static_old,
    // with the members that point into the module re-assigned. Not
    // `owner` (THIS_MODULE) nor `kill_sb` (a kernel function).
    let fs = a.global("esc", "esc_fs_type").unwrap();
    assert_eq!(fs.class, Class::StaticOld);
    assert_eq!(fs.reassign, ["name", "init_fs_context"]);
    assert!(fs.evidence[0].text.contains("register_filesystem"));
    // Stored into kernel memory; const.
    assert_eq!(class(&a, "esc", "esc_context_ops"), Class::StaticNew);
    // In the initializer of an escaping global; `fops` points to a static
    // object, so it stays valid and is not re-assigned.
    assert_eq!(class(&a, "esc", "esc_fops"), Class::StaticNew);
    assert_eq!(a.global("esc", "esc_misc").unwrap().reassign, ["name"]);
    // Returned from a function the kernel calls.
    assert_eq!(class(&a, "esc", "esc_token"), Class::StaticNew);
    // Exported.
    assert_eq!(class(&a, "esc", "esc_exported_names"), Class::StaticNew);
    // Handed out through a member; the module writes it through the
    // pointer the kernel hands back.
    let w = a.global("esc", "esc_watch").unwrap();
    assert_eq!(w.class, Class::StaticOld);
    assert!(w.mutated_by_module && w.mutated_by_kernel);
    assert_eq!(w.reassign, ["nb.notifier_call"]);
    // An array decaying to a pointer.
    assert_eq!(class(&a, "esc", "esc_banner"), Class::StaticNew);
    // Across files, through a parameter.
    let iops = a.global("esc", "esc_iops").unwrap();
    assert_eq!(iops.class, Class::StaticNew);
    assert!(iops.evidence[0].file.ends_with("escape/main.c"));
    assert!(iops.evidence[1].file.ends_with("escape/helpers.c"));
    // Into heap memory of the module's own type.
    assert_eq!(class(&a, "esc", "esc_heap_iops"), Class::StaticNew);
    // Macro-made globals.
    assert_eq!(class(&a, "esc", "esc_lock"), Class::StaticOld);
    let items = a.global("esc", "esc_items").unwrap();
    assert_eq!(items.class, Class::StaticOld);
    assert!(items.reassign.is_empty(), "a list head points to itself");
    assert_eq!(class(&a, "esc", "esc_debug"), Class::StaticOld);
    assert_eq!(class(&a, "esc", "__param_esc_debug"), Class::StaticNew);
    assert_eq!(class(&a, "esc", "esc_add._rs"), Class::StaticOld);
    // Private run-time state.
    assert_eq!(class(&a, "esc", "esc_cache"), Class::Transfer);
    assert_eq!(class(&a, "esc", "esc_reads"), Class::Transfer);
    assert_eq!(class(&a, "esc", "esc_read.calls"), Class::Transfer);
    assert_eq!(class(&a, "esc", "esc_stats"), Class::Transfer);
    // Private and unchanged.
    assert_eq!(class(&a, "esc", "esc_weights"), Class::None);
    assert_eq!(class(&a, "esc", "esc_limit"), Class::None);
    insta::assert_snapshot!("analysis_escape", table(&a));
}

#[test]
fn flows_cross_the_modules_of_a_directory() {
    let (_tmp, dir) = build_fixture("pair");
    let a = analyse(&dir);
    let g = a.global("puser", "puser_dir_iops").unwrap();
    assert_eq!(g.class, Class::StaticNew);
    let steps: Vec<String> = g
        .evidence
        .iter()
        .map(|e| format!("{}:{}", e.file, e.line))
        .collect();
    assert_eq!(steps, ["pair/user.c:12", "pair/core.c:15"]);
    insta::assert_snapshot!("analysis_pair", table(&a));
}

#[test]
fn analysis_is_deterministic() {
    let (_tmp, dir) = build_fixture("escape");
    let a = serde_json::to_string(&analyse(&dir)).unwrap();
    let b = serde_json::to_string(&analyse(&dir)).unwrap();
    assert_eq!(a, b);
}

#[test]
fn elf_cross_check_reports_address_uses_of_private_globals() {
    use modswap_analyze::elf_check;
    let (_tmp, dir) = build_fixture("escape");
    let run = analyze::run(&dir, &external()).unwrap();
    let mut a = run.analysis;
    let built = elf_check::built(&run.dir);
    let check = elf_check::cross_check(&a, &built);
    assert_eq!(check.checked, ["esc"]);
    // Pretend the source analysis had missed esc_fs_type's escape: the
    // object's `register_filesystem(&esc_fs_type)` gives it away.
    let g = a.modules[0]
        .globals
        .iter_mut()
        .find(|g| g.key == "esc_fs_type")
        .unwrap();
    g.escapes = false;
    g.class = Class::None;
    let check = elf_check::cross_check(&a, &built);
    let w: Vec<_> = check
        .warnings
        .iter()
        .filter(|w| w.key == "esc_fs_type")
        .collect();
    assert!(!w.is_empty(), "{:#?}", check.warnings);
    // esc_init() is `init_module` in the object (module_init makes the alias).
    assert!(w.iter().any(|w| w.text.contains("init_module()")), "{w:#?}");
    assert_eq!(w[0].file, "escape/main.c");
    // A module whose sources are newer than its .ko is not checked.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let main = dir.join("main.c");
    let text = std::fs::read_to_string(&main).unwrap();
    std::fs::write(&main, text).unwrap();
    let check = elf_check::cross_check(&a, &built);
    assert!(check.checked.is_empty());
    assert!(
        check.notes[0].contains("older than its sources"),
        "{:?}",
        check.notes
    );
}
