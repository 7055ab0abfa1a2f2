//! The rewrite on fixture modules: markers and the include, the annotated
//! module still builds with Kbuild without warnings and gets one section
//! per marked object, a second run changes nothing, stale markers are
//! found and fixed, and the report is stable.

use modswap_analyze as analyze;
use modswap_analyze::report;
use modswap_analyze::rewrite::{Marker, Rewrite};
use modswap_tests::static_sections as sections;
use std::path::Path;

#[path = "annotate_support.rs"]
mod support;
use support::{build_fixture, kdir, make};

fn plan(dir: &Path) -> (Rewrite, analyze::Analysis) {
    let opts = analyze::pipeline::Options {
        kdir: Some(kdir().to_path_buf()),
        ..Default::default()
    };
    let run = analyze::run(dir, &opts).unwrap();
    (run.rewrite, run.analysis)
}

#[test]
fn annotated_fixture_builds_and_second_run_changes_nothing() {
    let (_tmp, dir) = build_fixture("escape");
    let (p, analysis) = plan(&dir);
    assert!(p.is_stale());
    insta::assert_snapshot!("rewrite_escape_patch", p.diff());
    // The report a first run prints (markers as a rewrite makes them).
    let rep = report::build(&analysis, &p);
    insta::assert_snapshot!("rewrite_escape_report_json", rep.json());
    insta::assert_snapshot!("rewrite_escape_report_text", rep.text(true));
    p.apply().unwrap();
    // No temporary files left behind.
    for e in std::fs::read_dir(&dir).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!n.ends_with(".modswap-tmp"), "{n} left behind");
    }
    make(&dir);
    assert_eq!(
        sections(&dir.join("esc.ko")),
        [
            ".static_new.esc_banner",
            ".static_new.esc_context_ops",
            ".static_new.esc_exported_names",
            ".static_new.esc_fops",
            ".static_new.esc_heap_iops",
            ".static_new.esc_iops",
            ".static_new.esc_seq_ops",
            ".static_new.esc_token",
            ".static_old.esc_debug",
            ".static_old.esc_fs_type",
            ".static_old.esc_items",
            ".static_old.esc_left",
            ".static_old.esc_lock",
            ".static_old.esc_misc",
            ".static_old.esc_root",
            ".static_old.esc_seed",
            ".static_old.esc_watch",
        ]
    );
    // Idempotent: the rebuilt, annotated source needs nothing more.
    let (again, analysis2) = plan(&dir);
    assert!(
        !again.is_stale(),
        "second run would change:\n{}",
        again.diff()
    );
    assert_eq!(
        again.marker("esc", "esc_fs_type"),
        Some(&Marker::Present {
            marker: "__static_old(esc_fs_type)".into()
        })
    );
    // The classification does not depend on the markers.
    for (a, b) in analysis.modules[0]
        .globals
        .iter()
        .zip(&analysis2.modules[0].globals)
    {
        assert_eq!((&a.key, a.class), (&b.key, b.class));
    }
}

#[test]
fn what_cannot_be_marked_is_reported_with_its_consequence() {
    let (_tmp, dir) = build_fixture("escape");
    let (p, _) = plan(&dir);
    let Some(Marker::Cannot {
        why, consequence, ..
    }) = p.marker("esc", "esc_add._rs")
    else {
        panic!("esc_add._rs: {:?}", p.marker("esc", "esc_add._rs"));
    };
    assert!(why.contains("pr_info_ratelimited"), "{why}");
    assert!(consequence.contains("rate limiting"), "{consequence}");
    let Some(Marker::Cannot { why, .. }) = p.marker("esc", "__param_esc_debug") else {
        panic!("__param_esc_debug is in __param");
    };
    assert!(why.contains("__param"), "{why}");
}

#[test]
fn stale_markers_are_found_and_fixed() {
    let (_tmp, dir) = build_fixture("escape");
    let (p, _) = plan(&dir);
    p.apply().unwrap();
    // Make three markers wrong: a wrong class, a missing one, a needless one.
    let main = dir.join("main.c");
    let text = std::fs::read_to_string(&main).unwrap();
    let broken = text
        .replace("__static_old(esc_misc)", "__static_new(esc_misc)")
        .replace(" __static_new(esc_token)", "")
        .replace(
            "static int esc_limit = 10;",
            "static int esc_limit __static_new(esc_limit) = 10;",
        );
    assert_ne!(broken, text);
    std::fs::write(&main, &broken).unwrap();
    make(&dir);
    let (p, _) = plan(&dir);
    assert!(p.is_stale());
    assert_eq!(p.edits.len(), 1);
    assert_eq!(
        p.marker("esc", "esc_limit"),
        Some(&Marker::Removed {
            marker: "__static_new(esc_limit)".into()
        })
    );
    p.apply().unwrap();
    assert_eq!(std::fs::read_to_string(&main).unwrap(), text);
}

#[test]
fn cross_module_fixture_is_marked_in_the_right_file() {
    let (_tmp, dir) = build_fixture("pair");
    let (p, _) = plan(&dir);
    let files: Vec<&str> = p.edits.iter().map(|e| e.file.as_str()).collect();
    assert_eq!(files, ["pair/user.c"]);
    p.apply().unwrap();
    make(&dir);
    assert_eq!(
        sections(&dir.join("puser.ko")),
        [".static_new.puser_dir_iops"]
    );
    assert!(sections(&dir.join("pcore.ko")).is_empty());
}
