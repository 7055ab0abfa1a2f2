//! Bad input to `modswap handler`: a clear error, and no output file.

#[path = "support/handler.rs"]
mod support;

use modswap_codegen::{version, Error, Side};
use support::*;

fn no_output(fx: &Fixture) {
    let leftovers: Vec<_> = std::fs::read_dir(&fx.new)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("modswap"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn an_old_version_that_does_not_parse() {
    let fx = fixture("members");
    let src = fx.old.join("members.c");
    let text = std::fs::read_to_string(&src)
        .unwrap()
        .replace("\ta.j += a.i;", "\ta.j += a.nosuch;");
    std::fs::write(&src, text).unwrap();
    let err = generate(&fx, false).unwrap_err();
    match &err {
        Error::Parse {
            side: Side::Old, ..
        } => {}
        other => panic!("{other}"),
    }
    let msg = redact(&fx, &err.to_string());
    assert!(
        msg.contains("old/members.c:27:") && msg.contains("nosuch"),
        "names the file, line and reason: {msg}"
    );
    no_output(&fx);
}

#[test]
fn two_unrelated_modules() {
    // Another module altogether.
    let fx = fixture("members");
    let other = fixtures_dir().join("unchanged/old");
    let err = version::load(&request(other.to_str().unwrap(), &fx.new)).unwrap_err();
    assert!(matches!(err, Error::Unrelated { .. }), "{err}");
    assert!(err.to_string().contains("not module members"), "{err}");

    // Same module name, nothing in common.
    std::fs::write(
        fx.old.join("members.c"),
        "// SPDX-License-Identifier: GPL-2.0\n#include <linux/module.h>\n\
         static int something_else;\nint other_fn(void) { return something_else; }\n\
         MODULE_LICENSE(\"GPL\");\n",
    )
    .unwrap();
    let err = generate(&fx, false).unwrap_err();
    assert!(matches!(err, Error::Unrelated { .. }), "{err}");
    no_output(&fx);
}

#[test]
fn a_missing_old_version() {
    let fx = fixture("members");
    let missing = fx.tmp.path().join("nosuch");
    let err = version::load(&request(missing.to_str().unwrap(), &fx.new)).unwrap_err();
    let msg = redact(&fx, &err.to_string());
    assert!(matches!(err, Error::OldMissing { .. }), "{msg}");
    assert!(msg.contains("no such directory"), "{msg}");
    // Not a directory, and the new version is in no git repository.
    let err = version::load(&request("v1.0", &fx.new)).unwrap_err();
    assert!(matches!(err, Error::OldMissing { .. }), "{err}");
    no_output(&fx);
}

#[test]
fn a_new_version_that_was_not_built() {
    let fx = fixture("members");
    let unbuilt = fx.tmp.path().join("unbuilt");
    copy_dir(&fixtures_dir().join("members/new"), &unbuilt);
    let err = version::load(&request(fx.old.to_str().unwrap(), &unbuilt)).unwrap_err();
    let msg = redact(&fx, &err.to_string());
    assert!(
        matches!(
            err,
            Error::Kbuild {
                side: Side::New,
                ..
            }
        ),
        "{msg}"
    );
    assert!(
        msg.contains("not built yet") && msg.contains("make -C"),
        "{msg}"
    );
}
