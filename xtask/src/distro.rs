//! The distro profile: Debian's own 6.12 configuration with the loader
//! series, reduced in what it builds but not in what it is.
//!
//! `cargo xtask kernel --profile distro` configures the tree in three steps:
//!
//! 1. Debian's `.config` (from `linux-headers-6.12.117+deb12-amd64`) plus
//!    `xtask/kernel/distro.config`, then `make olddefconfig`: Debian's full
//!    configuration with the series. It is kept as `.modswap/full.config`,
//!    where a test checks that `CONFIG_MODULE_HOTSWAP=y` survived (what a
//!    user's `make bindeb-pkg` of Debian's configuration builds).
//! 2. `make localmodconfig` with `xtask/kernel/distro.lsmod`: every module
//!    that the tests do not load is dropped, which is what makes the build
//!    fit in about 25 minutes on 2 cores. `kvm` is on the list although no
//!    test loads it: options that depend on it or that it selects
//!    (`MITIGATION_VMSCAPE`, `PREEMPT_NOTIFIERS`) are loader-relevant.
//! 3. Every loader-relevant option ([`LOADER_OPTIONS`]) that step 2 changed
//!    gets Debian's value back, the fragment is merged again, and
//!    `xtask/kernel/distro-qemu.config` builds in the QEMU guest's disks.
//!
//! [`differences`] then lists every option where the profile differs from
//! Debian's configuration; [`check`] prints them all and fails when one is
//! loader-relevant and not one of the documented [`EXCEPTIONS`].

use crate::kernel::Tree;
use crate::paths;
use crate::util::{run, write_atomic};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Debian's own configuration of linux-image-6.12.117+deb12-amd64.
pub fn debian_config() -> PathBuf {
    Path::new(paths::DEBIAN_HEADERS).join(".config")
}

/// The modules the distro profile builds (lsmod format, for localmodconfig).
pub fn lsmod_file() -> PathBuf {
    paths::repo_root().join("xtask/kernel/distro.lsmod")
}

/// What a user sets on top of Debian's configuration (step 1).
pub fn fragment() -> PathBuf {
    paths::repo_root().join("xtask/kernel/distro.config")
}

/// What the QEMU guest needs built in (step 3).
pub fn qemu_fragment() -> PathBuf {
    paths::repo_root().join("xtask/kernel/distro-qemu.config")
}

/// Options (without `CONFIG_`) whose values decide what the loader meets in
/// a module or in the kernel: a trailing `*` matches any suffix. The profile
/// must have Debian's value for each of them.
pub const LOADER_OPTIONS: &[&str] = &[
    // module loading, signing, compression, versions
    "MODULE*",
    "MODVERSIONS",
    "TRIM_UNUSED_KSYMS",
    "KALLSYMS*",
    "STRICT_MODULE_RWX",
    "SECURITY_LOCKDOWN_LSM*",
    "LOCK_DOWN_*",
    // tracing, ftrace, kprobes, BPF, live patching
    "FTRACE*",
    "FUNCTION_TRACER",
    "FUNCTION_GRAPH_TRACER",
    "DYNAMIC_FTRACE*",
    "FPROBE",
    "TRACEPOINTS",
    "EVENT_TRACING",
    "BPF*",
    "KPROBES*",
    "KRETPROBES",
    "FUNCTION_ERROR_INJECTION",
    "LIVEPATCH",
    "PRINTK_INDEX",
    // sections the loader has to move
    "JUMP_LABEL",
    "HAVE_STATIC_CALL*",
    "DYNAMIC_DEBUG*",
    "DEBUG_INFO_BTF*",
    "TREE_SRCU",
    "MEM_ALLOC_PROFILING*",
    "KMEMLEAK",
    "CONSTRUCTORS",
    "KUNIT",
    // preemption, unwinding, code patching and mitigations
    "PREEMPT*",
    "UNWINDER_*",
    "X86_KERNEL_IBT",
    "CALL_PADDING",
    "CALL_THUNKS",
    "FINEIBT",
    "CFI_CLANG",
    "MITIGATION_*",
];

/// Loader-relevant options where the profile differs from Debian on
/// purpose, with the reason (printed by the check).
pub const EXCEPTIONS: &[(&str, &str)] = &[
    (
        "MODULE_HOTSWAP",
        "the loader series' own option, which Debian's configuration cannot have",
    ),
    (
        "MODULE_SIG_KEY",
        "Debian's signing key is Debian's own; the build generates the profile's key",
    ),
];

/// Whether `name` (without `CONFIG_`) is one of [`LOADER_OPTIONS`].
pub fn loader_relevant(name: &str) -> bool {
    LOADER_OPTIONS.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == *p,
    })
}

fn exception(name: &str) -> Option<&'static str> {
    EXCEPTIONS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, why)| *why)
}

/// A `.config` as option name (without `CONFIG_`) -> value; `# ... is not
/// set` reads as `n`.
pub fn parse_config(text: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for l in text.lines() {
        let l = l.trim();
        if let Some(rest) = l.strip_prefix("# CONFIG_") {
            if let Some(name) = rest.strip_suffix(" is not set") {
                m.insert(name.to_string(), "n".to_string());
            }
        } else if let Some(rest) = l.strip_prefix("CONFIG_") {
            if let Some((k, v)) = rest.split_once('=') {
                m.insert(k.to_string(), v.to_string());
            }
        }
    }
    m
}

/// One option whose value differs; `None` means absent (a dependency is
/// off), which compares equal to `n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub name: String,
    pub debian: Option<String>,
    pub profile: Option<String>,
}

impl Difference {
    pub fn loader_relevant(&self) -> bool {
        loader_relevant(&self.name)
    }
}

fn shown(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("(absent)")
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CONFIG_{}: Debian {}, profile {}",
            self.name,
            shown(&self.debian),
            shown(&self.profile)
        )
    }
}

/// Every option where `profile` differs from `debian`, sorted by name.
pub fn differences(
    debian: &BTreeMap<String, String>,
    profile: &BTreeMap<String, String>,
) -> Vec<Difference> {
    let off = |v: Option<&String>| v.map(String::as_str).unwrap_or("n") == "n";
    let mut names: Vec<&String> = debian.keys().chain(profile.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| {
            let (d, p) = (debian.get(name), profile.get(name));
            let same = d == p || (off(d) && off(p));
            (!same).then(|| Difference {
                name: name.clone(),
                debian: d.cloned(),
                profile: p.cloned(),
            })
        })
        .collect()
}

/// Lines that give each loader-relevant option of `profile` that differs
/// from Debian (and is no exception) Debian's value, for `olddefconfig`.
pub fn restore_lines(
    debian: &BTreeMap<String, String>,
    profile: &BTreeMap<String, String>,
) -> String {
    let mut out = String::new();
    for d in differences(debian, profile) {
        if !d.loader_relevant() || exception(&d.name).is_some() {
            continue;
        }
        match d.debian.as_deref() {
            None | Some("n") => out.push_str(&format!("# CONFIG_{} is not set\n", d.name)),
            Some(v) => out.push_str(&format!("CONFIG_{}={v}\n", d.name)),
        }
    }
    out
}

/// Configures `tree` as the distro profile (the three steps above); a stamp
/// over the inputs skips it when nothing changed.
pub fn configure(tree: &Tree) -> Result<()> {
    let inputs = [debian_config(), lsmod_file(), fragment(), qemu_fragment()];
    let want = crate::kernel::fingerprint(&inputs)?;
    let stamp = tree.stamp("config");
    let config = tree.dir.join(".config");
    if config.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(want.as_str()) {
        return Ok(());
    }
    let debian_text = std::fs::read_to_string(debian_config()).with_context(|| {
        format!(
            "reading {} (run `cargo xtask setup`)",
            debian_config().display()
        )
    })?;
    let frag = std::fs::read_to_string(fragment())?;
    let qemu = std::fs::read_to_string(qemu_fragment())?;
    std::fs::create_dir_all(tree.dir.join(".modswap"))?;
    // 1. Debian's full configuration with the series.
    write_atomic(&config, format!("{debian_text}\n{frag}").as_bytes())?;
    run(tree.make().arg("olddefconfig"))?;
    std::fs::copy(&config, tree.dir.join(".modswap/full.config"))?;
    // 2. Only the modules the tests load.
    run(tree
        .make()
        .arg(format!("LSMOD={}", lsmod_file().display()))
        .arg("localmodconfig")
        .stdin_null())?;
    // 3. Debian's values back for every loader-relevant option.
    let reduced_text = std::fs::read_to_string(&config)?;
    let restore = restore_lines(&parse_config(&debian_text), &parse_config(&reduced_text));
    write_atomic(
        &config,
        format!("{reduced_text}\n{restore}\n{frag}\n{qemu}").as_bytes(),
    )?;
    run(tree.make().arg("olddefconfig"))?;
    write_atomic(&stamp, want.as_bytes())?;
    Ok(())
}

fn read_config(path: &Path) -> Result<BTreeMap<String, String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(parse_config(&text))
}

/// The check: prints every difference between the profile's `.config` (in
/// `tree`) and Debian's, and fails when one is loader-relevant and not an
/// exception. Also checks that Debian's full configuration with the series
/// (`.modswap/full.config`, made by `olddefconfig`) kept
/// `CONFIG_MODULE_HOTSWAP=y`.
pub fn check(tree: &Path) -> Result<()> {
    let debian = read_config(&debian_config())?;
    let full = read_config(&tree.join(".modswap/full.config"))?;
    if full.get("MODULE_HOTSWAP").map(String::as_str) != Some("y") {
        bail!(
            "Debian's full configuration with the series ({}) lost CONFIG_MODULE_HOTSWAP=y in olddefconfig",
            tree.join(".modswap/full.config").display()
        );
    }
    let full_diff: Vec<Difference> = differences(&debian, &full)
        .into_iter()
        .filter(|d| d.loader_relevant() && exception(&d.name).is_none())
        .collect();
    let profile = read_config(&tree.join(".config"))?;
    let diff = differences(&debian, &profile);
    let mut bad = Vec::new();
    println!(
        "distro profile: {} options differ from Debian's configuration ({})",
        diff.len(),
        debian_config().display()
    );
    for d in &diff {
        let mark = if !d.loader_relevant() {
            String::new()
        } else if let Some(why) = exception(&d.name) {
            format!("  [loader-relevant, allowed: {why}]")
        } else {
            bad.push(d.to_string());
            "  [loader-relevant: NOT ALLOWED]".to_string()
        };
        println!("  {d}{mark}");
    }
    for d in &full_diff {
        bad.push(format!(
            "{d} (in Debian's full configuration with the series)"
        ));
    }
    if !bad.is_empty() {
        bail!(
            "the distro profile differs from Debian's configuration in {} loader-relevant option(s):\n  {}",
            bad.len(),
            bad.join("\n  ")
        );
    }
    println!("distro profile: every loader-relevant option has Debian's value; CONFIG_MODULE_HOTSWAP=y in Debian's full configuration");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(lines: &[&str]) -> BTreeMap<String, String> {
        parse_config(&lines.join("\n"))
    }

    #[test]
    fn patterns_match_prefixes_and_exact_names() {
        assert!(loader_relevant("FTRACE_MCOUNT_RECORD"));
        assert!(loader_relevant("MODULE_SIG_FORCE"));
        assert!(loader_relevant("JUMP_LABEL"));
        assert!(!loader_relevant("JUMP_LABEL_FEATURE_CHECK_DEBUG"));
        assert!(!loader_relevant("EXT4_FS"));
    }

    #[test]
    fn absent_and_not_set_compare_equal() {
        let d = cfg(&["# CONFIG_A is not set", "CONFIG_B=y", "CONFIG_C=\"x\""]);
        let p = cfg(&["CONFIG_B=m", "CONFIG_C=\"x\"", "# CONFIG_D is not set"]);
        let diff = differences(&d, &p);
        assert_eq!(diff.len(), 1);
        assert_eq!(diff[0].name, "B");
        assert_eq!(diff[0].to_string(), "CONFIG_B: Debian y, profile m");
    }

    #[test]
    fn restore_gives_loader_options_debians_value_only() {
        let d = cfg(&[
            "CONFIG_KPROBES=y",
            "CONFIG_EXT4_FS=m",
            "CONFIG_MODULE_SIG_KEY=\"output/k.pem\"",
            "CONFIG_BPF_JIT=y",
        ]);
        let p = cfg(&[
            "# CONFIG_KPROBES is not set",
            "# CONFIG_EXT4_FS is not set",
            "CONFIG_MODULE_SIG_KEY=\"certs/signing_key.pem\"",
            "CONFIG_BPF_JIT=y",
            "CONFIG_PREEMPT_NONE=y",
        ]);
        assert_eq!(
            restore_lines(&d, &p),
            "CONFIG_KPROBES=y\n# CONFIG_PREEMPT_NONE is not set\n"
        );
    }
}
