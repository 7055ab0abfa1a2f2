//! Regenerating over a handler a reviewer has worked on: decided regions
//! are merged into the new handler; anything that would be lost is
//! refused, and nothing is written.

#[path = "support/handler.rs"]
mod support;

use modswap_codegen::Error;
use support::*;

#[test]
fn filled_in_todos_survive_regeneration() {
    let fx = fixture("members");
    let first = generate(&fx, false).unwrap();
    assert!(first.open > 0);
    let again = generate(&fx, false).unwrap();
    assert!(
        again.unchanged,
        "regenerating an untouched handler changes nothing"
    );

    let filled = fill(&first.text, &fills("members"));
    std::fs::write(&first.path, &filled).unwrap();
    let merged = generate(&fx, false).unwrap();
    assert_eq!((merged.open, merged.decided), (0, first.open));
    // The reviewer's code is still there, verbatim, and the header says so.
    for body in fills("members").values() {
        for line in body {
            assert!(merged.text.contains(line.as_str()), "lost {line:?}");
        }
    }
    assert!(merged.text.contains("[decided] init:conf.flags"));
    assert!(!merged.text.contains("\tstatic_assert(0, \"TODO(modswap)"));
    // Running it again over the merged file is a no-op.
    assert!(generate(&fx, false).unwrap().unchanged);
}

#[test]
fn edits_outside_the_regions_are_refused() {
    let fx = fixture("members");
    let w = generate(&fx, false).unwrap();
    let edited = w.text.replace(
        "conf.mode = _old_conf.mode;",
        "conf.mode = _old_conf.mode + 1;",
    );
    assert_ne!(edited, w.text);
    std::fs::write(&w.path, &edited).unwrap();
    let err = generate(&fx, false).unwrap_err();
    assert!(matches!(err, Error::EditedOutsideRegions { .. }), "{err}");
    assert_eq!(
        std::fs::read_to_string(&w.path).unwrap(),
        edited,
        "untouched"
    );
    // --force discards the edit.
    let forced = generate(&fx, true).unwrap();
    assert_eq!(forced.text, w.text);
}

#[test]
fn filled_in_todos_that_lose_their_place_are_refused() {
    let fx = fixture("members");
    let w = generate(&fx, false).unwrap();
    let filled = fill(&w.text, &fills("members"));
    std::fs::write(&w.path, &filled).unwrap();
    // The new version drops conf.flags: its filled-in TODO has no place.
    let src = fx.new.join("members.c");
    let text = std::fs::read_to_string(&src)
        .unwrap()
        .replace("\tunsigned int flags;\n", "")
        .replace("\tconf.flags |= conf.mode;\n", "")
        .replace(" %u\\n\", a.x", "\\n\", a.x")
        .replace(",\n\t\tconf.tag[0], conf.flags);", ",\n\t\tconf.tag[0]);");
    std::fs::write(&src, text).unwrap();
    make(&fx.new).expect("the changed new version builds");
    let err = generate(&fx, false).unwrap_err();
    match &err {
        Error::WouldLoseWork { ids, .. } => assert_eq!(ids, &["init:conf.flags"]),
        other => panic!("{other}"),
    }
    assert_eq!(
        std::fs::read_to_string(&w.path).unwrap(),
        filled,
        "untouched"
    );
    let forced = generate(&fx, true).unwrap();
    assert!(!forced.text.contains("conf.flags"));
    assert!(
        forced.text.contains("a.x = 100;"),
        "the other region is kept"
    );
}

#[test]
fn a_file_not_written_by_modswap_is_not_overwritten() {
    let fx = fixture("members");
    let path = fx.new.join("members_modswap.c");
    let hand = "// SPDX-License-Identifier: GPL-2.0\n/* hand-written */\n";
    std::fs::write(&path, hand).unwrap();
    let err = generate(&fx, false).unwrap_err();
    assert!(matches!(err, Error::NotGenerated { .. }), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), hand);
    assert!(generate(&fx, true)
        .unwrap()
        .text
        .contains("modswap-checksum"));
}
