//! The loader's QEMU tests and benchmark (`cargo xtask loader-test`, part of
//! `cargo xtask test`, and `cargo xtask bench loader`).
//!
//! The selftest modules in `loader/selftests/` are built against a kernel
//! tree (each build a separate `M=` directory, since every version of a
//! module has the same name), packed into a busybox initramfs with the
//! guest helper `msw` and `loader/selftests/run.sh`, and the tree's kernel
//! is booted under QEMU. `run.sh` prints one `MSW-TEST <name> PASS|FAIL`
//! line per test and `MSW-BENCH` lines for the benchmark.

use crate::kernel::{Tree, Variant};
use crate::paths;
use crate::qemu::{kernel_problems, Boot, BootLog, Initramfs};
use crate::util::{run, work_dir, Cmd};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One build of a selftest module.
struct Build {
    /// Directory under `modules/` in the guest, and the build's name.
    dir: &'static str,
    /// Module name (every version of a module has the same).
    module: &'static str,
    /// Source, relative to `loader/selftests/`.
    source: &'static str,
    /// Extra compiler flags (the failure injections).
    cflags: &'static str,
}

const fn b(
    dir: &'static str,
    module: &'static str,
    source: &'static str,
    cflags: &'static str,
) -> Build {
    Build {
        dir,
        module,
        source,
        cflags,
    }
}

const DEV_V1: &str = "msw_dev/msw_dev_v1.c";
const DEV_V2: &str = "msw_dev/msw_dev_v2.c";
const DEV_V3: &str = "msw_dev/msw_dev_v3.c";
const CB: &str = "msw_cb/msw_cb.c";

/// msw_dev builds first: the users link against v1's Module.symvers;
/// msw_block before msw_cb and v2_key, which import from it.
const BUILDS: &[Build] = &[
    b("v1", "msw_dev", DEV_V1, ""),
    b("v2", "msw_dev", DEV_V2, ""),
    b("v3", "msw_dev", DEV_V3, ""),
    b("v1_noexit", "msw_dev", DEV_V1, "-DMSW_NO_EXIT"),
    b("v2_fail_layout", "msw_dev", DEV_V2, "-DMSW_FAIL_LAYOUT"),
    b("v2_fail_old", "msw_dev", DEV_V2, "-DMSW_FAIL_OLD"),
    b("v2_fail_reloc", "msw_dev", DEV_V2, "-DMSW_FAIL_RELOC"),
    b("v2_fail_replace", "msw_dev", DEV_V2, "-DMSW_FAIL_REPLACE"),
    b("v2_fail_dangling", "msw_dev", DEV_V2, "-DMSW_FAIL_DANGLING"),
    b("v2_nohotswap", "msw_dev", DEV_V2, "-DMSW_NO_HOTSWAP"),
    b("v2_fail_abi", "msw_dev", DEV_V2, "-DMSW_FAIL_ABI"),
    b("v2_fail_ctor", "msw_dev", DEV_V2, "-DMSW_FAIL_CTOR"),
    b("v2_fail_positive", "msw_dev", DEV_V2, "-DMSW_FAIL_POSITIVE"),
    b("v2_fail_percpu", "msw_dev", DEV_V2, "-DMSW_FAIL_PERCPU"),
    b("v2_export_ns", "msw_dev", DEV_V2, "-DMSW_EXPORT_NS"),
    b("v2_drop_export", "msw_dev", DEV_V2, "-DMSW_DROP_EXPORT"),
    b("v2_fail_clash", "msw_dev", DEV_V2, "-DMSW_FAIL_CLASH"),
    b("v3_fail_prepare", "msw_dev", DEV_V3, "-DMSW_FAIL_PREPARE"),
    b("v2_static_call", "msw_dev", DEV_V2, "-DMSW_STATIC_CALL"),
    b("v3_fail_cancel", "msw_dev", DEV_V3, "-DMSW_FAIL_CANCEL"),
    b("msw_user_v1", "msw_user", "msw_user/msw_user_v1.c", ""),
    b(
        "msw_user_v1_hs",
        "msw_user",
        "msw_user/msw_user_v1.c",
        "-DMSW_USER_HOTSWAP",
    ),
    b("msw_user_v2", "msw_user", "msw_user/msw_user_v2.c", ""),
    b(
        "msw_user_sc",
        "msw_user",
        "msw_user/msw_user_v1.c",
        "-DMSW_USER_STATIC_CALL",
    ),
    b("block", "msw_block", "msw_cb/msw_block.c", ""),
    b("v2_key", "msw_dev", DEV_V2, "-DMSW_KEY"),
    b("kprobe", "msw_kprobe", "msw_kprobe/msw_kprobe.c", ""),
    b("cb_v1", "msw_cb", CB, "-DMSW_CB_VERSION=1"),
    b("cb_v2", "msw_cb", CB, "-DMSW_CB_VERSION=2"),
    b(
        "cb_v2_timers",
        "msw_cb",
        CB,
        "-DMSW_CB_VERSION=2 -DMSW_CB_REPOINT=1",
    ),
    b(
        "cb_v2_repoint",
        "msw_cb",
        CB,
        "-DMSW_CB_VERSION=2 -DMSW_CB_REPOINT=2",
    ),
];

/// Every test `run.sh test` must report as passed.
const TESTS: &[&str] = &[
    "fresh_load",
    "eexist",
    "idle_swap",
    "slab_ctor",
    "users",
    "refuse_layout",
    "refuse_old_symbol",
    "refuse_relocation",
    "refuse_replace_error",
    "refuse_dangling",
    "refuse_positive_replace",
    "refuse_cancel",
    "refuse_unexported",
    "refuse_export_clash",
    "refuse_prepare",
    "refuse_namespace",
    "refuse_percpu",
    "refuse_ctor",
    "refuse_abi",
    "refuse_malformed",
    "refuse_unprivileged",
    "after_refusals",
    "static_call_sites",
    "sleeping",
    "hammer",
    "chain",
    "user_swap",
    "rmmod_after_swap",
    "user_during_backoff",
    "refuse_user_sorted",
    "refuse_kprobe",
    "refuse_kprobe_user",
    "cli_swap",
    "cpu_hotplug",
    "cb_load",
    "refuse_timer",
    "refuse_delayed_work",
    "refuse_hrtimer",
    "refuse_queued_work",
    "refuse_heap_pointer",
    "callbacks_repointed",
    "deep_stack",
    "leaks",
    "permanent",
    "modules_disabled",
];

/// The tests that only the distro profile's kernel runs (its facilities:
/// ftrace, BTF), besides [`TESTS`].
const DISTRO_TESTS: &[&str] = &[
    "ftrace_traced",
    "btf_moves",
    "btf_busy",
    "static_call_kernel",
    "jump_labels",
    "dyndbg_sites",
    "sig_refused",
    "xz_swap",
];

/// What `run.sh test` must report on `variant`'s kernel.
fn expected_tests(variant: Variant) -> Vec<&'static str> {
    let mut v = TESTS.to_vec();
    if variant == Variant::Distro {
        v.extend_from_slice(DISTRO_TESTS);
    }
    v
}

fn selftests_dir() -> PathBuf {
    paths::repo_root().join("loader/selftests")
}

/// Builds every selftest module against `tree` into `out/modules/`.
fn build_modules(tree: &Tree, out: &Path) -> Result<()> {
    let src = selftests_dir();
    let modules = out.join("modules");
    if modules.exists() {
        std::fs::remove_dir_all(&modules)?;
    }
    let symvers = modules.join("v1/Module.symvers");
    for build in BUILDS {
        let dir = modules.join(build.dir);
        std::fs::create_dir_all(&dir)?;
        std::fs::copy(
            src.join(build.source),
            dir.join(format!("{}.c", build.module)),
        )
        .with_context(|| format!("copying {}", build.source))?;
        std::fs::copy(src.join("msw_dev/msw_dev.h"), dir.join("msw_dev.h"))?;
        let mut kbuild = format!("obj-m := {}.o\n", build.module);
        let mut cflags = build.cflags.to_string();
        if tree.variant == Variant::Stock {
            // The stock tree has no <linux/modswap.h>: the markers are
            // ordinary sections to it.
            cflags.push_str(&format!(
                " -I{}",
                paths::repo_root().join("loader/include").display()
            ));
        }
        if !cflags.trim().is_empty() {
            kbuild.push_str(&format!("ccflags-y += {}\n", cflags.trim()));
        }
        std::fs::write(dir.join("Kbuild"), kbuild)?;
        let mut make = tree
            .make()
            .arg(format!("M={}", dir.display()))
            .arg("modules");
        // Users link against the Module.symvers of what they import.
        let imports = match build.module {
            _ if build.dir == "v2_key" => Some(modules.join("block/Module.symvers")),
            "msw_dev" | "msw_block" | "msw_kprobe" => None,
            "msw_cb" => Some(modules.join("block/Module.symvers")),
            _ => Some(symvers.clone()),
        };
        if let Some(symvers) = imports {
            make = make.arg(format!("KBUILD_EXTRA_SYMBOLS={}", symvers.display()));
        }
        crate::util::output(make)
            .with_context(|| format!("building selftest module {}", build.dir))?;
        let ko = dir.join(format!("{}.ko", build.module));
        if !ko.exists() {
            bail!("{} was not built", ko.display());
        }
        if tree.variant == Variant::Distro {
            // The module's BTF, which /sys/kernel/btf/<module> must show.
            std::fs::write(
                dir.join(format!("{}.btf", build.module)),
                section_bytes(&ko, ".BTF")?,
            )?;
        }
    }
    if tree.variant == Variant::Distro {
        sign_modules(tree, &modules)?;
    }
    Ok(())
}

/// The contents of section `name` of the ELF object `path`.
fn section_bytes(path: &Path, name: &str) -> Result<Vec<u8>> {
    use object::{Object, ObjectSection};
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let file = object::File::parse(&*data)
        .with_context(|| format!("{}: not an ELF object", path.display()))?;
    let section = file
        .section_by_name(name)
        .with_context(|| format!("{} has no {name} section", path.display()))?;
    Ok(section
        .data()
        .with_context(|| format!("reading {name} of {}", path.display()))?
        .to_vec())
}

/// The distro profile boots with `module.sig_enforce=1`: every selftest
/// module is signed with the profile's key (the one its build generated),
/// and three kinds of v2 are made for `test_signing` in run.sh: unsigned
/// (`v2_unsigned`), signed with a key the kernel does not trust
/// (`v2_badsig`), and signed then xz-compressed as Debian ships modules
/// (`v1_xz`, `v2_xz`).
fn sign_modules(tree: &Tree, modules: &Path) -> Result<()> {
    let sign = |key: &Path, cert: &Path, ko: &Path| {
        run(Cmd::new(tree.dir.join("scripts/sign-file"))
            .arg("sha256")
            .arg(key)
            .arg(cert)
            .arg(ko))
    };
    let key = tree.dir.join("certs/signing_key.pem");
    let cert = tree.dir.join("certs/signing_key.x509");
    let v2 = modules.join("v2/msw_dev.ko");
    let unsigned = modules.join("v2_unsigned/msw_dev.ko");
    std::fs::create_dir_all(unsigned.parent().unwrap())?;
    std::fs::copy(&v2, &unsigned)?;
    for build in BUILDS {
        sign(
            &key,
            &cert,
            &modules.join(build.dir).join(format!("{}.ko", build.module)),
        )?;
    }
    // A key of nobody's: generated once per run, never trusted.
    let bad_key = modules.join("wrong_key.pem");
    let bad_cert = modules.join("wrong_key.x509");
    run(Cmd::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
        ])
        .args([
            "-subj",
            "/CN=modswap selftest: an untrusted key/",
            "-outform",
            "DER",
        ])
        .arg("-keyout")
        .arg(&bad_key)
        .arg("-out")
        .arg(&bad_cert))?;
    let badsig = modules.join("v2_badsig/msw_dev.ko");
    std::fs::create_dir_all(badsig.parent().unwrap())?;
    std::fs::copy(&unsigned, &badsig)?;
    sign(&bad_key, &bad_cert, &badsig)?;
    for v in ["v1", "v2"] {
        let dir = modules.join(format!("{v}_xz"));
        std::fs::create_dir_all(&dir)?;
        let xz = crate::util::output(
            Cmd::new("xz")
                .args(["--check=crc32", "--lzma2=dict=1MiB", "-c"])
                .arg(modules.join(v).join("msw_dev.ko")),
        )?;
        std::fs::write(dir.join("msw_dev.ko.xz"), xz.stdout)?;
    }
    Ok(())
}

/// What `sign_modules` adds to the initramfs, beside the builds.
const SIGNING_FILES: &[&str] = &[
    "v2_unsigned/msw_dev.ko",
    "v2_badsig/msw_dev.ko",
    "v1_xz/msw_dev.ko.xz",
    "v2_xz/msw_dev.ko.xz",
];

/// The guest helper, linked statically.
fn build_helper(out: &Path) -> Result<PathBuf> {
    let bin = out.join("msw");
    run(Cmd::new("gcc")
        .args(["-static", "-O2", "-Wall", "-Werror", "-o"])
        .arg(&bin)
        .arg(selftests_dir().join("tools/msw.c")))?;
    Ok(bin)
}

const INIT: &str = r#"#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
suite=$(sed -n 's/.*msw\.suite=\([a-z]*\).*/\1/p' /proc/cmdline)
sh /selftests/run.sh "$suite"
echo MSW-DONE
poweroff -f
"#;

/// The `modswap` command, for `modswap swap` in the guest: the workspace's
/// debug build, without its debug information.
fn modswap_binary(out: &Path) -> Result<PathBuf> {
    run(Cmd::new(env!("CARGO"))
        .args(["build", "--locked", "-p", "modswap-cli"])
        .current_dir(paths::repo_root()))?;
    let bin = out.join("modswap");
    run(Cmd::new("objcopy")
        .arg("--strip-debug")
        .arg(paths::repo_root().join("target/debug/modswap"))
        .arg(&bin))?;
    Ok(bin)
}

fn initramfs(tree: &Tree, out: &Path, helper: &Path) -> Result<PathBuf> {
    let init = out.join("init");
    std::fs::write(&init, INIT)?;
    let mut fs = Initramfs::new();
    fs.busybox()?;
    fs.dynamic("/bin/modswap", &modswap_binary(out)?)?;
    fs.file("/init", &init, 0o755)
        .file("/bin/msw", helper, 0o755)
        .dir("/selftests")
        .file("/selftests/run.sh", &selftests_dir().join("run.sh"), 0o755)
        .dir("/modules");
    for build in BUILDS {
        let dir = format!("/modules/{}", build.dir);
        fs.dir(&dir);
        let ko = out
            .join("modules")
            .join(build.dir)
            .join(format!("{}.ko", build.module));
        fs.file(&format!("{dir}/{}.ko", build.module), &ko, 0o644);
        let btf = ko.with_extension("btf");
        if btf.exists() {
            fs.file(&format!("{dir}/{}.btf", build.module), &btf, 0o644);
        }
    }
    if tree.variant == Variant::Distro {
        for f in SIGNING_FILES {
            let (dir, _) = f.split_once('/').unwrap_or((f, ""));
            fs.dir(&format!("/modules/{dir}"));
            fs.file(
                &format!("/modules/{f}"),
                &out.join("modules").join(f),
                0o644,
            );
        }
    }
    // A real module of the tree that has nothing to do with hotswap, for
    // the load benchmark.
    fs.dir("/modules/fat").file(
        "/modules/fat/fat.ko",
        &tree.dir.join("fs/fat/fat.ko"),
        0o644,
    );
    let cpio = out.join("initramfs.cpio");
    fs.build(&tree.dir, &cpio)?;
    Ok(cpio)
}

/// Builds everything for `tree` and boots it with `run.sh <suite>`.
pub(crate) fn boot(tree: &Tree, suite: &str, timeout: Duration) -> Result<BootLog> {
    let out = work_dir("loader-tests", tree.variant);
    std::fs::create_dir_all(&out)?;
    build_modules(tree, &out)?;
    let helper = build_helper(&out)?;
    let cpio = initramfs(tree, &out, &helper)?;
    let log = out.join(format!("serial-{suite}.log"));
    let mut boot = Boot::new(tree.bzimage(), cpio, log.clone());
    // Benchmarks keep the kernel's messages off the (slow) serial console.
    let quiet = if suite == "bench" { " loglevel=4" } else { "" };
    boot.append = format!("msw.suite={suite}{quiet}");
    boot.timeout = timeout;
    // The tests run on 4 CPUs (one of them goes off and on line during
    // swaps); the benchmark keeps the 2 of the paper's set-up.
    if suite == "test" {
        boot.smp = 4;
    }
    // Debian's configuration needs more memory than the test kernel's;
    // its signatures are enforced (every selftest module is signed).
    if tree.variant == Variant::Distro {
        boot.mem_mb = 1024;
        boot.append.push_str(" module.sig_enforce=1");
    }
    let result = boot.run()?;
    eprintln!(
        "loader: {suite} run on the {:?} kernel took {:.1} s (log: {})",
        tree.variant,
        result.elapsed.as_secs_f64(),
        log.display()
    );
    Ok(result)
}

/// What `run.sh off` must report on a kernel with CONFIG_MODULE_HOTSWAP off.
const OFF_TESTS: &[&str] = &["off_load"];

/// Checks a test run's log: every test passed, nothing else went wrong.
fn check_test_log(log: &BootLog, variant: Variant) -> Vec<String> {
    check_log(log, &expected_tests(variant))
}

fn check_log(log: &BootLog, tests: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut results = BTreeMap::new();
    for line in log.text.lines() {
        if let Some(rest) = line.strip_prefix("MSW-TEST ") {
            let (name, verdict) = rest.split_once(' ').unwrap_or((rest, ""));
            results.insert(name.to_string(), verdict.to_string());
            if verdict != "PASS" {
                problems.push(format!("test {name}: {verdict}"));
            }
        }
    }
    for t in tests {
        if !results.contains_key(*t) {
            problems.push(format!("test {t} did not report"));
        }
    }
    if !log.text.lines().any(|l| l == "MSW-RESULT PASS") {
        problems.push("run.sh did not report MSW-RESULT PASS".into());
    }
    for p in kernel_problems(&log.text) {
        problems.push(format!("kernel log: {p}"));
    }
    if log.timed_out {
        problems.push("QEMU timed out".into());
    } else if !log.powered_off {
        problems.push("the guest did not power off (panic or crash?)".into());
    }
    problems
}

/// The QEMU loader tests on the hotswap kernel `tree`.
pub fn test(tree: &Tree) -> Result<()> {
    let log = boot(tree, "test", Duration::from_secs(600))?;
    let problems = check_test_log(&log, tree.variant);
    let passed = log
        .text
        .lines()
        .filter(|l| l.starts_with("MSW-TEST ") && l.ends_with(" PASS"))
        .count();
    if !problems.is_empty() {
        bail!(
            "loader QEMU tests failed ({passed} passed):\n  {}\n(full log: {})",
            problems.join("\n  "),
            work_dir("loader-tests", tree.variant)
                .join("serial-test.log")
                .display()
        );
    }
    eprintln!("loader: {passed} QEMU tests passed, no kernel warnings");
    Ok(())
}

/// On a tree built with the series and CONFIG_MODULE_HOTSWAP off: modules,
/// hotswappable images included, load and unload as without the series,
/// and a second load of a name still fails with -EEXIST.
pub fn test_off(tree: &Tree) -> Result<()> {
    let log = boot(tree, "off", Duration::from_secs(300))?;
    let problems = check_log(&log, OFF_TESTS);
    if !problems.is_empty() {
        bail!(
            "loader tests with CONFIG_MODULE_HOTSWAP off failed:\n  {}",
            problems.join("\n  ")
        );
    }
    eprintln!("loader: modules load normally with CONFIG_MODULE_HOTSWAP off");
    Ok(())
}

/// `MSW-BENCH <key> ...` lines of a bench run, by key.
pub(crate) fn bench_lines(log: &BootLog) -> Result<BTreeMap<String, Vec<String>>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in log.text.lines() {
        if let Some(rest) = line.strip_prefix("MSW-BENCH ") {
            let (key, value) = rest.split_once(' ').unwrap_or((rest, ""));
            map.entry(key.to_string())
                .or_default()
                .push(value.to_string());
        }
    }
    let problems = kernel_problems(&log.text);
    if !problems.is_empty() || !log.text.contains("MSW-RESULT PASS") {
        bail!("benchmark run failed:\n  {}", problems.join("\n  "));
    }
    Ok(map)
}

/// The number after `name=` or after the word `name` in `line`.
pub(crate) fn value(line: &str, name: &str) -> Option<f64> {
    let words: Vec<&str> = line.split_whitespace().collect();
    for (i, w) in words.iter().enumerate() {
        if let Some(v) = w.strip_prefix(&format!("{name}=")) {
            return v.parse().ok();
        }
        if *w == name {
            return words.get(i + 1)?.parse().ok();
        }
    }
    None
}

pub(crate) fn lookup(
    map: &BTreeMap<String, Vec<String>>,
    key: &str,
    prefix: &str,
    name: &str,
) -> Result<f64> {
    map.get(key)
        .and_then(|v| v.iter().find(|l| l.starts_with(prefix)))
        .and_then(|l| value(l, name))
        .with_context(|| format!("benchmark output has no {key} {prefix} {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(text: &str) -> BootLog {
        BootLog {
            text: text.to_string(),
            timed_out: false,
            powered_off: true,
            elapsed: Duration::ZERO,
        }
    }

    #[test]
    fn a_complete_passing_run_is_accepted() {
        let mut text: String = TESTS
            .iter()
            .map(|t| format!("MSW-TEST {t} PASS\n"))
            .collect();
        text.push_str("MSW-RESULT PASS\nreboot: Power down\n");
        assert!(check_test_log(&log(&text), Variant::Hotswap).is_empty());
    }

    #[test]
    fn failures_missing_tests_and_warnings_are_reported() {
        let text = "MSW-TEST fresh_load PASS\nMSW-TEST eexist FAIL: load: expected 'x'\n\
                    [ 1.0] WARNING: CPU: 1 PID: 9 at kernel/module/hotswap.c:10\nMSW-RESULT FAIL\n";
        let p = check_test_log(&log(text), Variant::Hotswap);
        assert!(p.iter().any(|p| p.contains("eexist: FAIL")));
        assert!(p.iter().any(|p| p.contains("test leaks did not report")));
        assert!(p.iter().any(|p| p.contains("WARNING")));
        assert!(p.iter().any(|p| p.contains("MSW-RESULT PASS")));
    }

    #[test]
    fn bench_values_parse() {
        assert_eq!(
            value("v1 load_ns 1234 min_ns 1000", "load_ns"),
            Some(1234.0)
        );
        assert_eq!(value("v1 load_ns 1234 min_ns 1000", "min_ns"), Some(1000.0));
        assert_eq!(value(" total_ns=5 tries=1", "tries"), Some(1.0));
        assert_eq!(value("msw_dev 1716", "msw_dev"), Some(1716.0));
        assert_eq!(crate::util::median(vec![3.0, 1.0, 2.0]), 2.0);
    }

    #[test]
    fn every_test_in_run_sh_is_expected_and_every_build_exists() {
        let script = std::fs::read_to_string(selftests_dir().join("run.sh")).unwrap();
        for t in TESTS.iter().chain(DISTRO_TESTS) {
            assert!(
                script.contains(&format!("start {t}")),
                "run.sh has no test {t}"
            );
        }
        let started = script
            .lines()
            .filter(|l| l.trim_start().starts_with("start "))
            .count();
        assert_eq!(
            started,
            TESTS.len() + DISTRO_TESTS.len() + OFF_TESTS.len(),
            "run.sh starts tests that TESTS does not list"
        );
        for build in BUILDS {
            assert!(
                selftests_dir().join(build.source).exists(),
                "{}",
                build.source
            );
        }
    }
}
