//! The example modules' v2 handlers (examples/*/v2/*_modswap.c) are what
//! `modswap handler` generates from v1 and v2, with every TODO decided by
//! the example's author: regenerating changes nothing, v2 builds with the
//! handler under -Werror, checkpatch reports no error, and `modswap verify`
//! accepts v1 -> v2.

#[path = "support/handler.rs"]
mod support;

use modswap_codegen::{plan, version, write_handler};
use modswap_elf::Object;
use modswap_tests::repo_root;
use std::path::Path;
use support::*;

fn example(name: &str) {
    let tmp = tempfile::Builder::new()
        .prefix("modswap-example-")
        .tempdir()
        .unwrap();
    let src = repo_root().join("examples").join(name);
    let (v1, v2) = (tmp.path().join("v1"), tmp.path().join("v2"));
    copy_dir(&src.join("v1"), &v1);
    copy_dir(&src.join("v2"), &v2);
    // The sources stay as committed (they make the version ids); -Werror
    // and <linux/modswap.h> come from the command line.
    let include = format!(
        "MODSWAP_INCLUDE={}",
        repo_root().join("loader/include").display()
    );
    let args = [include.as_str(), "KCFLAGS=-Werror"];
    make_with(&v1, &args).unwrap_or_else(|e| panic!("{name} v1:\n{e}"));
    make_with(&v2, &args).unwrap_or_else(|e| panic!("{name} v2 with its handler, -Werror:\n{e}"));

    // The committed handler is the generator's, every TODO decided.
    let pair = version::load(&request(src.join("v1").to_str().unwrap(), &v2)).unwrap();
    let classes = modswap_codegen::classify(&pair).unwrap();
    let plan = plan::plan(&pair, &classes).unwrap();
    let handler = v2.join(format!("{name}_modswap.c"));
    let w = write_handler(&plan, &handler, false).unwrap();
    assert!(
        w.unchanged,
        "{name}: regenerating changes the committed handler"
    );
    assert_eq!(w.open, 0, "{name}: open TODOs");

    let (errors, report) = checkpatch(&handler);
    assert_eq!(errors, 0, "{name}: checkpatch:\n{report}");

    let ko = |dir: &Path| Object::read(&dir.join(format!("{name}.ko"))).unwrap();
    let problems = modswap_elf::verify::verify(&ko(&v1), &ko(&v2));
    assert!(problems.is_empty(), "{name}: verify: {problems:?}");
}

#[test]
fn counterdev_handler_is_generated_reviewed_and_verified() {
    example("counterdev");
}

#[test]
fn ramfs_mini_handler_is_generated_reviewed_and_verified() {
    example("ramfs_mini");
}
