//! The Kbuild fragment (`templates/kbuild/modswap.mk`) and `modswap kbuild`
//! on real modules, with make -j: out of tree against Debian's 6.12
//! headers, and in-tree sources (a copy of fs/fat) against the built 6.12
//! hotswap tree. Every module is a copy in a temporary directory, set up
//! the documented way: `modswap kbuild <dir> >> <its Kbuild file>`.
//!
//! Checked: `modswap-check` fails on stale markers and passes after
//! `modswap-annotate`; an edit re-parses only the units that depend on the
//! edited file (the facts files of the others keep their modification
//! time); the markers compile into static sections named as modswap.h
//! says; every error the issue lists says what to do.

use modswap_ir::sections::names;
use modswap_tests::{cli, kernel_tree, repo_root, DEBIAN_HEADERS};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// What a make run did.
#[derive(Debug)]
struct Made {
    ok: bool,
    out: String,
}

/// Copies the module sources (C files, headers, Kbuild, Makefile) of
/// `from` into `<tmp>/<name>`.
fn copy_module(from: &Path, tmp: &Path, name: &str) -> PathBuf {
    let dir = tmp.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let n = e.file_name().to_string_lossy().into_owned();
        let source = (n.ends_with(".c") && !n.ends_with(".mod.c"))
            || n.ends_with(".h")
            || n == "Kbuild"
            || n == "Makefile";
        if source && e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), dir.join(&n)).unwrap();
        }
    }
    dir
}

/// `modswap kbuild <dir> >> <dir>/<file>`.
fn hook(dir: &Path, file: &str) {
    let r = cli::run([Path::new("kbuild"), dir]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let mut text = std::fs::read_to_string(dir.join(file)).unwrap();
    text.push_str(&r.stdout);
    std::fs::write(dir.join(file), text).unwrap();
}

/// `make -C <dir> [-f <file>] -j2 KDIR=<kdir> <args>`.
fn make(dir: &Path, file: &str, kdir: &Path, args: &[&str]) -> Made {
    make_env(dir, file, kdir, args, &[])
}

fn make_env(dir: &Path, file: &str, kdir: &Path, args: &[&str], env: &[(&str, &str)]) -> Made {
    let mut c = Command::new("make");
    c.arg("-C").arg(dir);
    if file != "Makefile" {
        c.args(["-f", file]);
    }
    c.arg("-j2")
        .arg(format!("KDIR={}", kdir.display()))
        .args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().expect("make runs");
    Made {
        ok: o.status.success(),
        out: format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    }
}

/// The usual build, `make -C <kdir> M=<dir>`; returns `dir`.
fn build<'a>(dir: &'a Path, kdir: &Path) -> &'a Path {
    let o = Command::new("make")
        .arg("-C")
        .arg(kdir)
        .arg(format!("M={}", dir.display()))
        .arg("-j2")
        .output()
        .expect("make runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    dir
}

/// The facts files of a directory and their modification times.
fn facts(dir: &Path) -> BTreeMap<String, SystemTime> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".o.modswap"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().modified().unwrap(),
            )
        })
        .collect()
}

/// The facts files whose modification time differs.
fn reparsed(
    before: &BTreeMap<String, SystemTime>,
    after: &BTreeMap<String, SystemTime>,
) -> Vec<String> {
    after
        .iter()
        .filter(|(k, t)| before.get(*k) != Some(t))
        .map(|(k, _)| k.clone())
        .collect()
}

fn append(path: &Path, text: &str) {
    let mut t = std::fs::read_to_string(path).unwrap();
    t.push_str(text);
    std::fs::write(path, t).unwrap();
}

/// A global whose address escapes (to spin_lock()) and that the kernel
/// writes: static_old. (The function is global so that the compiler keeps
/// it, and the lock.)
const ESCAPING: &str = "
static DEFINE_SPINLOCK(modswap_test_lock);
int modswap_test_touch(void);
int modswap_test_touch(void)
{
	spin_lock(&modswap_test_lock);
	spin_unlock(&modswap_test_lock);
	return 0;
}
";

/// The check/annotate cycle of the issue on one module directory:
/// stale at first, fixed by modswap-annotate; an escaping global added to
/// `edit` makes it stale again and re-parses only `edit`'s unit; annotate
/// fixes it. Returns the directory's facts after the cycle.
fn check_cycle(dir: &Path, file: &str, kdir: &Path, edit: &str, module: &str) {
    let m = make(dir, file, kdir, &["modswap-check"]);
    assert!(!m.ok, "unannotated sources pass modswap-check:\n{}", m.out);
    assert!(m.out.contains("modswap markers are stale"), "{}", m.out);
    assert!(m.out.contains("modswap-annotate"), "{}", m.out);

    let m = make(dir, file, kdir, &["modswap-annotate"]);
    assert!(m.ok, "{}", m.out);
    // The built object was cross-checked before the rewrite made it older
    // than its sources.
    assert!(
        m.out.contains("ELF cross-check: ") && !m.out.contains("not cross-checked"),
        "{}",
        m.out
    );
    let m = make(dir, file, kdir, &["modswap-check"]);
    assert!(m.ok, "annotated sources fail modswap-check:\n{}", m.out);
    assert!(m.out.contains("the markers are up to date"), "{}", m.out);

    // Nothing changed: nothing is parsed again.
    let before = facts(dir);
    assert!(!before.is_empty());
    let m = make(dir, file, kdir, &["modswap-check"]);
    assert!(m.ok, "{}", m.out);
    assert_eq!(reparsed(&before, &facts(dir)), Vec::<String>::new());

    // An escaping global in one file: stale, and only that unit re-parsed.
    append(&dir.join(edit), ESCAPING);
    let m = make(dir, file, kdir, &["modswap-check"]);
    assert!(
        !m.ok,
        "a new escaping global passes modswap-check:\n{}",
        m.out
    );
    assert!(
        m.out.contains(&format!(
            "modswap_test_lock needs __static_old(modswap_test_lock) (module {module}: static_old)"
        )),
        "{}",
        m.out
    );
    let unit = format!(".{}.o.modswap", edit.trim_end_matches(".c"));
    assert_eq!(reparsed(&before, &facts(dir)), vec![unit.clone()]);

    let m = make(dir, file, kdir, &["modswap-annotate"]);
    assert!(m.ok, "{}", m.out);
    assert!(
        std::fs::read_to_string(dir.join(edit))
            .unwrap()
            .contains("__static_old(modswap_test_lock)"),
        "modswap-annotate did not mark the new global"
    );
    let before = facts(dir);
    let m = make(dir, file, kdir, &["modswap-check"]);
    assert!(m.ok, "{}", m.out);
    assert_eq!(reparsed(&before, &facts(dir)), vec![unit]);

    // The marker compiled into a static section named as modswap.h says.
    let ko = dir.join(format!("{module}.ko"));
    let r = cli::run([
        Path::new("inspect"),
        &ko,
        Path::new("--format"),
        Path::new("json"),
    ]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let section = format!("{}modswap_test_lock", names().static_old);
    assert!(
        r.stdout.contains(&format!("\"{section}\"")),
        "{} has no section {section}",
        ko.display()
    );
}

#[test]
fn out_of_tree_check_annotate_and_what_each_edit_reparses() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_module(
        &repo_root().join("tests/fixtures/annotate/escape"),
        tmp.path(),
        "escape",
    );
    // This module's Kbuild file is its Makefile: `make <target>` works.
    hook(&dir, "Makefile");
    let kdir = Path::new(DEBIAN_HEADERS);
    check_cycle(&dir, "Makefile", kdir, "helpers.c", "esc");

    // A header both units include: both are parsed again.
    let before = facts(&dir);
    append(&dir.join("esc.h"), "/* edited */\n");
    let m = make(&dir, "Makefile", kdir, &["modswap-check"]);
    assert!(m.ok, "{}", m.out);
    assert_eq!(
        reparsed(&before, &facts(&dir)),
        vec![
            ".helpers.o.modswap".to_string(),
            ".main.o.modswap".to_string()
        ]
    );
}

#[test]
fn in_tree_fat_against_the_hotswap_tree() {
    let tree = kernel_tree();
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_module(&tree.join("fs/fat"), tmp.path(), "fat");
    hook(&dir, "Makefile");
    check_cycle(&dir, "Makefile", &tree, "namei_vfat.c", "vfat");
}

#[test]
fn kbuild_prints_the_lines_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_module(
        &repo_root().join("examples/counterdev/v1"),
        tmp.path(),
        "counterdev",
    );
    let r = cli::run([Path::new("kbuild"), &dir]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let fragment = repo_root().join("templates/kbuild/modswap.mk");
    assert!(
        r.stdout
            .lines()
            .any(|l| l == format!("include {}", fragment.display())),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.lines().any(|l| l
            == format!(
                "MODSWAP ?= {}",
                cli::bin().canonicalize().unwrap().display()
            )),
        "{}",
        r.stdout
    );
    assert!(r.stderr.contains("Kbuild"), "{}", r.stderr);
    hook(&dir, "Kbuild");
    // Already there: nothing more to add.
    let r = cli::run([Path::new("kbuild"), &dir]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(r.stdout, "");
    assert!(r.stderr.contains("already includes"), "{}", r.stderr);
    // Not a module directory.
    let r = cli::run([Path::new("kbuild"), tmp.path()]);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(
        r.stderr.contains("neither Kbuild nor Makefile"),
        "{}",
        r.stderr
    );
    let r = cli::run([Path::new("kbuild"), &tmp.path().join("missing")]);
    assert_eq!(r.code, Some(2), "{r:?}");
}

/// A counterdev v1 copy hooked up with the fragment.
fn counterdev() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_module(
        &repo_root().join("examples/counterdev/v1"),
        tmp.path(),
        "counterdev",
    );
    hook(&dir, "Kbuild");
    (tmp, dir)
}

fn sources(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.ends_with(".c") || n.ends_with(".h")
        })
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read_to_string(e.path()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn errors_say_what_to_do() {
    let (_tmp, dir) = counterdev();
    let kdir = Path::new(DEBIAN_HEADERS);
    let untouched = sources(&dir);

    // Kernel headers of another version.
    let m = make(&dir, "Kbuild", kdir, &["modswap-check", "PATCHLEVEL=1"]);
    assert!(!m.ok);
    assert!(
        m.out.contains("modswap supports Linux 6.12 only"),
        "{}",
        m.out
    );
    assert!(
        m.out.contains("KDIR=/usr/src/linux-headers-6.12"),
        "{}",
        m.out
    );

    // Not a kernel directory at all.
    let m = make(
        &dir,
        "Kbuild",
        Path::new("/nonexistent"),
        &["modswap-annotate"],
    );
    assert!(!m.ok);
    assert!(
        m.out
            .contains("is not a configured kernel build or headers directory"),
        "{}",
        m.out
    );

    // No libclang.
    let empty = tempfile::tempdir().unwrap();
    let m = make_env(
        &dir,
        "Kbuild",
        kdir,
        &["modswap-annotate"],
        &[("LIBCLANG_PATH", empty.path().to_str().unwrap())],
    );
    assert!(!m.ok);
    assert!(m.out.contains("libclang is not available"), "{}", m.out);
    assert!(m.out.contains("apt-get install libclang-dev"), "{}", m.out);

    // A module that does not build: the compiler's error, then what to do.
    let main = dir.join("counterdev_main.c");
    let good = std::fs::read_to_string(&main).unwrap();
    std::fs::write(&main, format!("{good}\nstatic int broken = ;\n")).unwrap();
    let m = make(&dir, "Kbuild", kdir, &["modswap-annotate"]);
    assert!(!m.ok);
    assert!(m.out.contains("counterdev_main.c"), "{}", m.out);
    assert!(m.out.contains("error:"), "{}", m.out);
    assert!(
        m.out
            .contains("failed: fix what make reported above, then run"),
        "{}",
        m.out
    );
    std::fs::write(&main, &good).unwrap();
    assert_eq!(
        sources(&dir),
        untouched,
        "a failed target changed the sources"
    );

    // A modswap.h on the include path that is not the toolkit's.
    let other = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(other.path().join("linux")).unwrap();
    std::fs::write(
        other.path().join("linux/modswap.h"),
        modswap_ir::sections::MODSWAP_H.replace(".static_old.", ".static_kept."),
    )
    .unwrap();
    let m = make_env(
        &dir,
        "Kbuild",
        kdir,
        &["modswap-check"],
        &[("KCFLAGS", &format!("-I{}", other.path().display()))],
    );
    assert!(!m.ok);
    assert!(m.out.contains("differs from the toolkit's"), "{}", m.out);
    assert!(m.out.contains("Remove that include path"), "{}", m.out);

    // The modswap binary is missing.
    let m = make(
        &dir,
        "Kbuild",
        kdir,
        &["modswap-check", "MODSWAP=/nonexistent/modswap"],
    );
    assert!(!m.ok);
    assert!(
        m.out.contains("set MODSWAP=<path to the modswap binary>"),
        "{}",
        m.out
    );

    // modswap-handler and modswap-verify need OLD.
    for target in ["modswap-handler", "modswap-verify"] {
        let m = make(&dir, "Kbuild", kdir, &[target]);
        assert!(!m.ok);
        assert!(m.out.contains("needs OLD="), "{target}: {}", m.out);
    }
    assert_eq!(sources(&dir), untouched);
}

#[test]
fn a_handler_no_unit_includes_stops_the_build() {
    let (_tmp, dir) = counterdev();
    std::fs::write(
        dir.join("counterdev_modswap.c"),
        "// SPDX-License-Identifier: GPL-2.0\n",
    )
    .unwrap();
    let m = Command::new("make")
        .arg("-C")
        .arg(DEBIAN_HEADERS)
        .arg(format!("M={}", dir.display()))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&m.stderr);
    assert!(!m.status.success());
    assert!(out.contains("no C file of counterdev includes it"), "{out}");
    assert!(out.contains("#include \"counterdev_modswap.c\""), "{out}");
    // Included at the end of the unit: it builds.
    append(
        &dir.join("counterdev_main.c"),
        "#include \"counterdev_modswap.c\"\n",
    );
    build(&dir, Path::new(DEBIAN_HEADERS));
}

#[test]
fn verify_target_and_kernels_that_differ() {
    let tmp = tempfile::tempdir().unwrap();
    let v1 = copy_module(
        &repo_root().join("examples/counterdev/v1"),
        tmp.path(),
        "v1",
    );
    let v2 = copy_module(
        &repo_root().join("examples/counterdev/v2"),
        tmp.path(),
        "v2",
    );
    let v1_hotswap = copy_module(
        &repo_root().join("examples/counterdev/v1"),
        tmp.path(),
        "v1-hotswap",
    );
    for d in [&v1, &v2, &v1_hotswap] {
        hook(d, "Kbuild");
    }
    let kdir = Path::new(DEBIAN_HEADERS);
    let old = build(&v1, kdir).join("counterdev.ko");
    let old_arg = format!("OLD={}", old.display());
    let m = make(&v2, "Kbuild", kdir, &["modswap-verify", &old_arg]);
    assert!(m.ok, "v2 cannot replace v1:\n{}", m.out);

    // v1 built for the hotswap kernel, v2 for Debian's: refused, with why.
    let old = build(&v1_hotswap, &kernel_tree()).join("counterdev.ko");
    let old_arg = format!("OLD={}", old.display());
    let m = make(&v2, "Kbuild", kdir, &["modswap-verify", &old_arg]);
    assert!(!m.ok, "{}", m.out);
    assert!(m.out.contains("built for different kernels"), "{}", m.out);
    assert!(m.out.contains("the same KDIR"), "{}", m.out);
}

#[test]
fn one_definition_of_the_markers() {
    // The hotswap tree the tests run against installs the toolkit's header.
    let kernel_h = kernel_tree().join("include/linux/modswap.h");
    let toolkit_h = repo_root().join("loader/include/linux/modswap.h");
    assert_eq!(
        std::fs::read_to_string(&kernel_h).unwrap(),
        std::fs::read_to_string(&toolkit_h).unwrap(),
        "{} differs from {}: rebuild the tree (cargo xtask kernel)",
        kernel_h.display(),
        toolkit_h.display()
    );
    // The binary was built with that header, and says when a file is not it.
    let r = cli::run([Path::new("sections"), Path::new("--check"), &toolkit_h]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let other = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(other.path(), "#define MODSWAP_SECTION_OLD \".kept.\"\n").unwrap();
    let r = cli::run([Path::new("sections"), Path::new("--check"), other.path()]);
    assert_eq!(r.code, Some(1), "{r:?}");
    // The fragment names no section itself: it only passes the header on.
    let fragment =
        std::fs::read_to_string(repo_root().join("templates/kbuild/modswap.mk")).unwrap();
    let n = names();
    for name in [&n.static_old, &n.static_new, &n.info, &n.old_prefix] {
        assert!(
            !fragment.contains(name.as_str()),
            "templates/kbuild/modswap.mk spells {name}, which only modswap.h may define"
        );
    }
}

/// Reading units from facts files gives exactly the parse; a facts file
/// that no longer describes its unit is not used.
#[test]
fn facts_are_the_parse_and_stale_ones_are_not_used() {
    use modswap_kbuild as kbuild;
    use modswap_source as source;
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_module(
        &repo_root().join("tests/fixtures/annotate/escape"),
        tmp.path(),
        "escape",
    );
    hook(&dir, "Makefile");
    let kdir = Path::new(DEBIAN_HEADERS);
    let o = Command::new("make")
        .arg("-C")
        .arg(kdir)
        .arg(format!("M={}", dir.display()))
        .args(["-j2", "MODSWAP_STEP=facts"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(facts(&dir).len(), 2);

    let load = || kbuild::load(&dir, Some(kdir)).unwrap();
    let opts = source::Options {
        jobs: 2,
        ..source::Options::default()
    };
    let json = |p: &modswap_ir::Program| serde_json::to_string(p).unwrap();
    let parsed = source::parse(&load(), opts).unwrap();
    let from_facts = source::parse_using_facts(&load(), opts).unwrap();
    assert_eq!(json(&from_facts), json(&parsed));

    // They are really read: a name changed inside a facts file (nothing
    // it is validated by) shows up in the program.
    let f = dir.join(".helpers.o.modswap");
    let saved = std::fs::read_to_string(&f).unwrap();
    assert!(saved.contains("\"esc_stats\""));
    std::fs::write(&f, saved.replace("\"esc_stats\"", "\"esc_tampered\"")).unwrap();
    let tampered = source::parse_using_facts(&load(), opts).unwrap();
    assert!(tampered.globals().any(|(_, _, g)| g.name == "esc_tampered"));
    std::fs::write(&f, &saved).unwrap();

    // A unit edited after its facts were written is parsed again.
    append(&dir.join("helpers.c"), "int esc_added_later;\n");
    let from_facts = source::parse_using_facts(&load(), opts).unwrap();
    assert!(from_facts
        .globals()
        .any(|(_, _, g)| g.name == "esc_added_later"));
    assert_eq!(
        json(&from_facts),
        json(&source::parse(&load(), opts).unwrap())
    );
}
