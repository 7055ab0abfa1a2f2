//! `cargo xtask bench coverage`: how much of Debian's kernel the loader can
//! take. It reads every module of Debian's
//! `linux-image-6.12.117+deb12-amd64` package (fetched with `apt-get
//! download`, not installed), and the loader's refused-section table
//! (`hotswap_refused[]` in the patched tree's `kernel/module/hotswap.c`,
//! each entry's condition evaluated against Debian's configuration). It
//! prints, per refusal that the loader still has, how many modules hit it,
//! and ends with one line: `coverage: N of M Debian modules carry no
//! section the loader refuses`.

use crate::kernel::{self, Variant};
use crate::paths;
use crate::util::{output, run, Cmd};
use anyhow::{bail, Context, Result};
use object::{Object, ObjectSection};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Debian's image package and the version that matches the project's tree.
const IMAGE_PACKAGE: &str = "linux-image-6.12.117+deb12-amd64";
const IMAGE_VERSION: &str = "6.12.117-1~deb12u1";

/// One entry of the loader's `hotswap_refused[]`: a section name and the
/// config option that makes the loader refuse it (None: always).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub section: String,
    pub option: Option<String>,
}

/// Parses `hotswap_refused[]` out of hotswap.c: entries `{ "name", COND }`
/// where COND is `IS_ENABLED(CONFIG_X)` or `true`. Anything else is an
/// error naming the entry, so that the bench never guesses.
pub fn parse_refused(source: &str) -> Result<Vec<Refusal>> {
    let start = source
        .find("hotswap_refused[] = {")
        .context("hotswap.c has no hotswap_refused[] table")?;
    let body = &source[start + "hotswap_refused[] = {".len()..];
    let end = body
        .find("\n};")
        .context("hotswap_refused[] is not closed")?;
    let body = strip_comments(&body[..end]);
    let mut out = Vec::new();
    let mut rest = body.as_str();
    while let Some(open) = rest.find('{') {
        let close = rest[open..]
            .find('}')
            .map(|i| open + i)
            .context("an entry of hotswap_refused[] is not closed")?;
        let entry = rest[open + 1..close].trim();
        let (name, cond) = entry
            .split_once(',')
            .with_context(|| format!("hotswap_refused[] entry `{entry}` has no condition"))?;
        let name = name.trim().trim_matches('"').to_string();
        let cond = cond.split_whitespace().collect::<String>();
        let option = if cond == "true" {
            None
        } else if let Some(o) = cond
            .strip_prefix("IS_ENABLED(CONFIG_")
            .and_then(|c| c.strip_suffix(')'))
        {
            Some(o.to_string())
        } else {
            bail!("hotswap_refused[] entry `{entry}`: condition `{cond}` is neither IS_ENABLED(CONFIG_..) nor true");
        };
        out.push(Refusal {
            section: name,
            option,
        });
        rest = &rest[close + 1..];
    }
    if out.is_empty() {
        bail!("hotswap_refused[] has no entries");
    }
    Ok(out)
}

fn strip_comments(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("/*") {
        out.push_str(&rest[..i]);
        match rest[i..].find("*/") {
            Some(j) => rest = &rest[i + j + 2..],
            None => return out,
        }
    }
    out.push_str(rest);
    out
}

/// The refusals that apply under `config` (Debian's): `y` or `m`.
pub fn active(refused: &[Refusal], config: &BTreeMap<String, String>) -> Vec<String> {
    refused
        .iter()
        .filter(|r| match &r.option {
            None => true,
            Some(o) => matches!(config.get(o).map(String::as_str), Some("y" | "m")),
        })
        .map(|r| r.section.clone())
        .collect()
}

/// The names of the non-empty sections of an ELF object.
fn sections(path: &Path, bytes: &[u8]) -> Result<BTreeSet<String>> {
    let file = object::File::parse(bytes)
        .with_context(|| format!("{}: not an ELF object", path.display()))?;
    let mut out = BTreeSet::new();
    for s in file.sections() {
        if s.size() > 0 {
            if let Ok(name) = s.name() {
                out.insert(name.to_string());
            }
        }
    }
    Ok(out)
}

fn read_module(path: &Path) -> Result<Vec<u8>> {
    let name = path.to_string_lossy();
    if name.ends_with(".ko.xz") {
        Ok(output(Cmd::new("xz").arg("-dc").arg(path))?.stdout)
    } else if name.ends_with(".ko") {
        Ok(std::fs::read(path)?)
    } else {
        bail!("{}: not a module", path.display())
    }
}

/// Downloads and unpacks Debian's image package (once) into the cache;
/// returns the unpacked root.
fn image_root() -> Result<PathBuf> {
    let dir = paths::cache_dir().join("coverage");
    let root = dir.join(format!("{IMAGE_PACKAGE}_{IMAGE_VERSION}"));
    if root.join(".complete").exists() {
        return Ok(root);
    }
    std::fs::create_dir_all(&dir)?;
    run(Cmd::new("apt-get")
        .arg("download")
        .arg(format!("{IMAGE_PACKAGE}={IMAGE_VERSION}"))
        .current_dir(&dir))?;
    let deb = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.extension().is_some_and(|e| e == "deb")
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(IMAGE_PACKAGE))
        })
        .context("apt-get download left no .deb")?;
    if root.exists() {
        std::fs::remove_dir_all(&root)?;
    }
    run(Cmd::new("dpkg-deb").arg("-x").arg(&deb).arg(&root))?;
    std::fs::write(root.join(".complete"), b"")?;
    Ok(root)
}

fn modules_under(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let p = e?.path();
        if p.is_dir() {
            modules_under(&p, out)?;
        } else {
            let n = p.to_string_lossy();
            if n.ends_with(".ko") || n.ends_with(".ko.xz") {
                out.push(p);
            }
        }
    }
    Ok(())
}

/// What one module hits: the active refusals among its sections.
fn hits(path: &Path, refused: &[String]) -> Result<Vec<String>> {
    let secs = sections(path, &read_module(path)?)?;
    Ok(refused
        .iter()
        .filter(|r| secs.contains(*r))
        .cloned()
        .collect())
}

pub fn bench() -> Result<()> {
    let tree = kernel::patched(Variant::Hotswap)?;
    let source_path = tree.dir.join("kernel/module/hotswap.c");
    let source = std::fs::read_to_string(&source_path)
        .with_context(|| format!("reading {}", source_path.display()))?;
    let refused = parse_refused(&source)
        .with_context(|| format!("reading the refused sections of {}", source_path.display()))?;
    let config =
        crate::distro::parse_config(&std::fs::read_to_string(crate::distro::debian_config())?);
    let active = active(&refused, &config);

    let root = image_root()?;
    let mut modules = Vec::new();
    modules_under(&root.join("lib/modules"), &mut modules)?;
    modules.sort();
    if modules.is_empty() {
        bail!("{} holds no module", root.display());
    }

    // Two workers: decompressing 4,000 modules is most of the time.
    let chunks: Vec<&[PathBuf]> = modules.chunks(modules.len().div_ceil(2)).collect();
    let results: Vec<Result<Vec<(PathBuf, Vec<String>)>>> = std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .iter()
            .map(|chunk| {
                let active = &active;
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|p| Ok((p.clone(), hits(p, active)?)))
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("worker"))
            .collect()
    });
    let mut per_module = Vec::new();
    for r in results {
        per_module.extend(r?);
    }

    let mut per_reason: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut clean, mut fs_total, mut fs_clean) = (0usize, 0usize, 0usize);
    for (path, hit) in &per_module {
        for h in hit {
            *per_reason.entry(h.as_str()).or_default() += 1;
        }
        let in_fs = path.to_string_lossy().contains("/kernel/fs/");
        fs_total += in_fs as usize;
        if hit.is_empty() {
            clean += 1;
            fs_clean += in_fs as usize;
        }
    }
    println!(
        "Debian {IMAGE_PACKAGE} {IMAGE_VERSION}: {} modules; the loader's refused sections from {}",
        per_module.len(),
        source_path.display()
    );
    println!(
        "({} entries, {} active under Debian's configuration)",
        refused.len(),
        active.len()
    );
    println!();
    println!("{:<32} {:>8}", "refused section", "modules");
    let mut rows: Vec<(&str, usize)> = active
        .iter()
        .map(|a| (a.as_str(), per_reason.get(a.as_str()).copied().unwrap_or(0)))
        .collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    for (name, n) in rows {
        println!("{name:<32} {n:>8}");
    }
    println!();
    println!("fs/: {fs_clean} of {fs_total} carry no refused section");
    println!(
        "coverage: {clean} of {} Debian modules carry no section the loader refuses",
        per_module.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = r#"
static const struct {
	const char *name;
	bool enabled;
} hotswap_refused[] = {
	{ "__jump_table", IS_ENABLED(CONFIG_JUMP_LABEL) },
	{ "__patchable_function_entries",
	  IS_ENABLED(CONFIG_FTRACE_MCOUNT_RECORD) },
	/* Per-CPU data: { "x", y } in a comment is no entry. */
	{ ".data..percpu", true },
};
"#;

    #[test]
    fn the_table_parses_across_lines_and_comments() {
        let r = parse_refused(TABLE).unwrap();
        assert_eq!(
            r,
            vec![
                Refusal {
                    section: "__jump_table".into(),
                    option: Some("JUMP_LABEL".into())
                },
                Refusal {
                    section: "__patchable_function_entries".into(),
                    option: Some("FTRACE_MCOUNT_RECORD".into())
                },
                Refusal {
                    section: ".data..percpu".into(),
                    option: None
                },
            ]
        );
    }

    #[test]
    fn conditions_are_evaluated_against_the_config() {
        let r = parse_refused(TABLE).unwrap();
        let cfg = crate::distro::parse_config(
            "CONFIG_JUMP_LABEL=y\n# CONFIG_FTRACE_MCOUNT_RECORD is not set\n",
        );
        assert_eq!(active(&r, &cfg), vec!["__jump_table", ".data..percpu"]);
    }

    #[test]
    fn an_unknown_condition_is_an_error() {
        let bad = "hotswap_refused[] = {\n\t{ \"x\", IS_BUILTIN(CONFIG_X) },\n};\n";
        let e = parse_refused(bad).unwrap_err().to_string();
        assert!(e.contains("IS_BUILTIN"), "{e}");
    }
}
