//! The old version as a git revision of the repository holding the new one.

#[path = "support/handler.rs"]
mod support;

use modswap_codegen::{version, Error};
use std::path::Path;
use std::process::Command;
use support::*;

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=modswap",
            "-c",
            "user.email=modswap@invalid",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

#[test]
fn old_version_from_a_git_revision() {
    // A repository whose module directory `drivers/members` holds version 1
    // in its first commit and version 2 in its second.
    let fx = fixture("members");
    let repo = fx.tmp.path().join("repo");
    let dir = repo.join("drivers/members");
    copy_dir(&fixtures_dir().join("members/old"), &dir);
    add_flags(&dir);
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "v1"]);
    std::fs::remove_dir_all(&dir).unwrap();
    copy_dir(&fixtures_dir().join("members/new"), &dir);
    add_flags(&dir);
    git(&repo, &["add", "-A", "."]);
    git(&repo, &["commit", "-q", "-m", "v2"]);
    make(&dir).unwrap();

    let pair = version::load(&request("HEAD~1", &dir)).unwrap();
    assert_eq!(pair.old.id.label, "HEAD~1");
    assert!(
        pair.old.id.detail.starts_with("git commit "),
        "{:?}",
        pair.old.id
    );
    // The same sources as the fixture's directory pair: the same IR.
    let from_dir = version::load(&request(fx.old.to_str().unwrap(), &fx.new)).unwrap();
    let keys = |p: &modswap_ir::Program| {
        p.globals()
            .map(|(_, _, g)| (g.key.clone(), p.types.declare(g.ty, "")))
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&pair.old.program), keys(&from_dir.old.program));
    assert_eq!(
        pair.old.id.detail.split("sources ").nth(1),
        from_dir.old.id.detail.split("sources ").nth(1),
        "the same digest"
    );

    // A revision that does not exist, and one without the directory.
    let err = version::load(&request("nosuchrev", &dir)).unwrap_err();
    assert!(matches!(err, Error::OldMissing { .. }), "{err}");
    assert!(err.to_string().contains("not a revision"), "{err}");
    git(&repo, &["mv", "drivers/members", "drivers/renamed"]);
    git(&repo, &["commit", "-q", "-m", "move"]);
    let moved = repo.join("drivers/renamed");
    let err = version::load(&request("HEAD~2", &moved)).unwrap_err();
    assert!(
        err.to_string().contains("does not exist at revision"),
        "{err}"
    );
}
