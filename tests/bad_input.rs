//! Bad input: `inspect` and `verify` name the file and the reason, exit 2,
//! and never panic, whatever the bytes.

use modswap_elf::Error;
use modswap_elf::Object;
use modswap_tests::cli::run;
use modswap_tests::kbuild::{build, Built};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn module() -> &'static Built {
    static M: OnceLock<Built> = OnceLock::new();
    M.get_or_init(|| build("examples/counterdev/v2", "counterdev"))
}

fn ko_bytes() -> Vec<u8> {
    std::fs::read(&module().ko).unwrap()
}

/// Writes `bytes` to a file in a fresh directory kept alive by the caller.
fn file(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn assert_exit_2(path: &Path, reason: &str) {
    for args in [vec!["inspect"], vec!["inspect", "--format", "json"]] {
        let mut a: Vec<&std::ffi::OsStr> = args.iter().map(|s| s.as_ref()).collect();
        a.push(path.as_os_str());
        let r = run(a);
        assert_eq!(r.code, Some(2), "{r:?}");
        assert!(r.stdout.is_empty(), "{r:?}");
        let want = format!("modswap: error: {}: ", path.display());
        assert!(r.stderr.starts_with(&want), "{}", r.stderr);
        assert!(r.stderr.contains(reason), "want {reason:?} in {}", r.stderr);
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    }
}

#[test]
fn each_kind_of_bad_input_gets_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let good = ko_bytes();

    assert_exit_2(&dir.path().join("missing.ko"), "cannot read");
    assert_exit_2(&file(&dir, "empty.ko", b""), "not an ELF file");
    assert_exit_2(&file(&dir, "text.ko", b"obj-m := x.o\n"), "not an ELF file");
    assert_exit_2(&file(&dir, "ident.ko", &good[..12]), "truncated");
    assert_exit_2(&file(&dir, "header.ko", &good[..40]), "truncated");
    assert_exit_2(
        &file(&dir, "cut.ko", &good[..good.len() / 2]),
        "malformed ELF file",
    );

    let mut b = good.clone();
    b[4] = 1; // ELFCLASS32
    assert_exit_2(&file(&dir, "class32.ko", &b), "32-bit");
    let mut b = good.clone();
    b[5] = 2; // ELFDATA2MSB
    assert_exit_2(&file(&dir, "msb.ko", &b), "big-endian");
    let mut b = good.clone();
    b[18..20].copy_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
    assert_exit_2(
        &file(&dir, "arm64.ko", &b),
        "machine is aarch64, not x86_64",
    );
    let mut b = good.clone();
    b[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    assert_exit_2(&file(&dir, "exec.ko", &b), "not a relocatable object");
}

#[test]
fn verify_lists_every_bad_input_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let a = file(&dir, "a.ko", b"not elf");
    let b = dir.path().join("b.ko");
    let r = run(["verify".as_ref(), a.as_os_str(), b.as_os_str()]);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(
        r.stderr
            .contains(&format!("{}: not an ELF file", a.display())),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&format!("{}: cannot read", b.display())),
        "{}",
        r.stderr
    );
    // One good, one bad: still 2, and the bad one is named.
    let r = run(["verify".as_ref(), module().ko.as_os_str(), a.as_os_str()]);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stderr.contains(&a.display().to_string()));
}

/// Every prefix of a real module, and single-byte corruptions all over
/// its headers and tables: the parser returns a model or an error naming
/// the file, and never panics.
#[test]
fn truncated_and_corrupted_modules_never_panic() {
    let good = ko_bytes();
    let path = Path::new("sweep.ko");
    let check = |bytes: &[u8]| match Object::parse(path, bytes) {
        Ok(obj) => {
            let _ = modswap_elf::verify::verify(&obj, &obj);
        }
        Err(e) => assert!(e.to_string().starts_with("sweep.ko: "), "{e}"),
    };
    let step = (good.len() / 200).max(1);
    for len in (0..good.len()).step_by(step) {
        check(&good[..len]);
    }
    // The ELF header, then the section header table, byte by byte.
    let shoff = u64::from_le_bytes(good[40..48].try_into().unwrap()) as usize;
    let headers = (shoff..good.len().min(shoff + 64 * 40)).step_by(3);
    for i in (0..64).chain(headers) {
        for v in [0x00, 0xff, 0x80] {
            let mut b = good.clone();
            b[i] = v;
            check(&b);
        }
    }
}

/// Inputs from the fuzzer's corpus (annotate/fuzz), one per outcome; the
/// file name's prefix says which (tests/fixtures/fuzz/README.md).
#[test]
fn fuzz_regressions() {
    let dir = modswap_tests::repo_root().join("tests/fixtures/fuzz");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "bin") {
            continue;
        }
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let (want, _) = name
            .split_once("--")
            .expect("name is <outcome>--<what>.bin");
        let bytes = std::fs::read(&p).unwrap();
        let got = match Object::parse(&p, &bytes) {
            Ok(_) => "ok",
            Err(Error::NotElf { .. }) => "not-elf",
            Err(Error::UnsupportedElf { .. }) => "unsupported",
            Err(Error::MalformedElf { .. }) => "malformed",
            Err(e) => panic!("{name}: unexpected error {e}"),
        };
        assert_eq!(got, want, "{name}");
        if let Err(e) = Object::parse(&p, &bytes) {
            assert!(
                e.to_string().starts_with(&format!("{}: ", p.display())),
                "{e}"
            );
        }
        n += 1;
    }
    assert!(n >= 10, "only {n} inputs in {}", dir.display());
}
