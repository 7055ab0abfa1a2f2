//! Helpers for the handler tests: fixture pairs copied to temporary
//! directories and built for real with Kbuild against Debian's 6.12 headers
//! (`ccflags-y += -Werror`), handlers generated through the library, TODOs
//! filled in, checkpatch.

#![allow(dead_code)]

use modswap_codegen::classes::Analysed;
use modswap_codegen::{plan, version, Written};
use modswap_ir::class::Class;
use modswap_tests::{repo_root, DEBIAN_HEADERS};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A fixture pair in a temporary directory: `<tmp>/old`, `<tmp>/new`.
pub struct Fixture {
    pub case: String,
    pub tmp: tempfile::TempDir,
    pub old: PathBuf,
    pub new: PathBuf,
}

pub fn fixtures_dir() -> PathBuf {
    repo_root().join("tests/fixtures/handler")
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// Adds the test flags to a copied Kbuild file. The include directory is
/// a make variable that [`make_with`] sets: the Kbuild file's text (which
/// the handler's version id digests) does not depend on where the
/// checkout is.
pub fn add_flags(dir: &Path) {
    let kbuild = dir.join("Kbuild");
    let mut text = std::fs::read_to_string(&kbuild).unwrap();
    text.push_str("ccflags-y += -Werror -I$(MODSWAP_INCLUDE)\n");
    std::fs::write(&kbuild, text).unwrap();
}

/// Copies fixture `case` and builds its new version.
pub fn fixture(case: &str) -> Fixture {
    let tmp = tempfile::Builder::new()
        .prefix("modswap-handler-")
        .tempdir()
        .unwrap();
    let src = fixtures_dir().join(case);
    let old = tmp.path().join("old");
    let new = tmp.path().join("new");
    copy_dir(&src.join("old"), &old);
    copy_dir(&src.join("new"), &new);
    add_flags(&old);
    add_flags(&new);
    make(&new).expect("the fixture's new version builds");
    Fixture {
        case: case.to_string(),
        tmp,
        old,
        new,
    }
}

/// `make -C <Debian headers> M=<dir>`; Err(output) on failure.
pub fn make(dir: &Path) -> Result<(), String> {
    make_with(dir, &[])
}

/// [`make`] with extra make arguments (`KCFLAGS=-Werror`, ...).
pub fn make_with(dir: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new("make")
        .arg("-s")
        .arg("-C")
        .arg(DEBIAN_HEADERS)
        .arg(format!("M={}", dir.display()))
        .arg(format!(
            "MODSWAP_INCLUDE={}",
            repo_root().join("loader/include").display()
        ))
        .args(args)
        .env("KBUILD_BUILD_TIMESTAMP", "0")
        .output()
        .expect("make runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(())
    } else {
        Err(text)
    }
}

/// The classes a fixture expects annotate's analysis to give
/// (`classes.txt`: `key class` per line).
pub fn expected_classes(case: &str) -> BTreeMap<String, Analysed> {
    let text =
        std::fs::read_to_string(fixtures_dir().join(case).join("classes.txt")).unwrap_or_default();
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut w = line.split_whitespace();
        let key = w.next().unwrap().to_string();
        let class = match w.next().unwrap() {
            "static_old" => Class::StaticOld,
            "static_new" => Class::StaticNew,
            "transfer" => Class::Transfer,
            "none" => Class::None,
            other => panic!("bad class {other}"),
        };
        let reassign = w
            .map(|p| {
                if p == "-" {
                    String::new()
                } else {
                    p.to_string()
                }
            })
            .collect();
        m.insert(
            key,
            Analysed {
                class,
                reason: "fixture".into(),
                reassign,
            },
        );
    }
    m
}

pub fn request(old: &str, new: &Path) -> version::Request {
    version::Request {
        old: old.to_string(),
        new: new.to_path_buf(),
        kdir: Some(PathBuf::from(DEBIAN_HEADERS)),
        module: None,
        jobs: 1,
    }
}

/// Plans the fixture's handler with annotate's analysis, after checking
/// that the analysis gives the classes (and re-assignments) the fixture
/// expects (`classes.txt`).
pub fn plan_of(fx: &Fixture) -> Result<plan::Plan, modswap_codegen::Error> {
    let pair = version::load(&request(fx.old.to_str().unwrap(), &fx.new))?;
    let classes = modswap_codegen::classify(&pair).unwrap();
    for (key, want) in expected_classes(&fx.case) {
        let got = classes
            .get(&key)
            .unwrap_or_else(|| panic!("{}: no global {key}", fx.case));
        assert_eq!(
            got.class, want.class,
            "{}: class of {key}: {}",
            fx.case, got.reason
        );
        if !want.reassign.is_empty() {
            assert_eq!(
                got.reassign.as_deref(),
                Some(want.reassign.as_slice()),
                "{}: re-assignments of {key}",
                fx.case
            );
        }
    }
    plan::plan(&pair, &classes)
}

/// Generates the fixture's handler into its new version.
pub fn generate(fx: &Fixture, force: bool) -> Result<Written, modswap_codegen::Error> {
    let plan = plan_of(fx)?;
    let out = fx.new.join(format!("{}_modswap.c", plan.module));
    modswap_codegen::write_handler(&plan, &out, force)
}

/// The fixture's filled-in regions (`fill.txt`: `== <id>` then the body).
pub fn fills(case: &str) -> BTreeMap<String, Vec<String>> {
    let text =
        std::fs::read_to_string(fixtures_dir().join(case).join("fill.txt")).unwrap_or_default();
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut cur: Option<String> = None;
    for line in text.lines() {
        if let Some(id) = line.strip_prefix("== ") {
            cur = Some(id.trim().to_string());
            m.entry(id.trim().to_string()).or_default();
        } else if line.starts_with('#') && cur.is_none() {
        } else if let Some(id) = &cur {
            m.get_mut(id).unwrap().push(line.to_string());
        }
    }
    m
}

/// Replaces the bodies of regions `fills` names, as a reviewer would
/// (with codegen's own regions parser).
pub fn fill(text: &str, fills: &BTreeMap<String, Vec<String>>) -> String {
    modswap_codegen::regions::fill(text, fills).unwrap_or_else(|e| panic!("fill: {e}"))
}

/// Ends the unit with the include of the handler (and the unit macro when
/// the handler has several parts).
pub fn include_handler(unit: &Path, handler: &str, unit_macro: Option<&str>) {
    let mut text = std::fs::read_to_string(unit).unwrap();
    if let Some(m) = unit_macro {
        text.push_str(&format!("\n#define {m}\n"));
    }
    text.push_str(&format!("#include \"{handler}\"\n"));
    std::fs::write(unit, text).unwrap();
}

/// `checkpatch.pl --no-tree -f`: the number of ERRORs, and the report.
/// Panics when checkpatch did not check the file: its exit status is 1 for
/// warnings too, so the proof that it ran is its closing `total:` line.
pub fn checkpatch(file: &Path) -> (usize, String) {
    let script = modswap_tests::kernel_tree().join("scripts/checkpatch.pl");
    let out = Command::new("perl")
        .arg(&script)
        .args(["--no-tree", "--no-color", "-f"])
        .arg(file)
        .output()
        .expect("checkpatch runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.lines().any(|l| l.starts_with("total: ")),
        "checkpatch did not check {} (exit {:?}):\n{text}{}",
        file.display(),
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let errors = text.lines().filter(|l| l.starts_with("ERROR:")).count();
    (errors, text)
}

/// Replaces the fixture's temporary directory in messages.
pub fn redact(fx: &Fixture, text: &str) -> String {
    text.replace(&fx.tmp.path().display().to_string(), "<tmp>")
}
