//! The replace handlers: regenerated with `modswap handler` over the
//! reviewed ones under examples/ (which must stay current), and the units
//! that include them, from `modswap handler --format json`.

use super::*;

/// A unit a handler is compiled inside, as `modswap handler --format json`
/// lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Unit {
    /// The C file, relative to the module directory.
    pub unit: String,
    /// The macro to define before the include (handlers with several parts).
    pub define: Option<String>,
    /// The handler.
    pub include: String,
    /// The lines to append to the unit.
    pub append: String,
}

/// The units of `modswap handler --format json`'s output.
pub fn handler_units(json: &str) -> Result<Vec<Unit>> {
    #[derive(serde::Deserialize)]
    struct Summary {
        units: Vec<Unit>,
    }
    let s: Summary =
        serde_json::from_str(json).context("modswap handler --format json printed no summary")?;
    Ok(s.units)
}

/// The units each handler (by version and module) is compiled inside.
pub(crate) type Units = BTreeMap<(&'static str, String), Vec<Unit>>;

/// Regenerates the handlers of `d` in both directions over the reviewed
/// ones and checks that the reviewed ones are current.
pub(crate) fn handlers(modswap: &Path, tree: &Tree, work: &Path, d: &ModDir) -> Result<Units> {
    let mut problems = Vec::new();
    let mut units = Units::new();
    let parent = work.join(d.example);
    for new in VERSIONS {
        for m in d.modules {
            let name = format!("{m}_modswap.c");
            let reviewed = examples().join(d.example).join(new).join(&name);
            let target = parent.join(new).join(&name);
            let kept = std::fs::read(&reviewed).ok();
            if let Some(bytes) = &kept {
                std::fs::write(&target, bytes)?;
            }
            let out = Cmd::new(modswap)
                .arg("handler")
                .arg("--kdir")
                .arg(&tree.dir)
                .args(["--old", other(new), "--new", new, "--module", m])
                .args(["--format", "json"])
                .current_dir(&parent)
                .into_inner()
                .stdin(std::process::Stdio::null())
                .output()
                .context("cannot run modswap handler")?;
            if !out.status.success() {
                problems.push(format!(
                    "modswap handler --old {} --new {new} --module {m} refused (exit {}), \
                     regenerating over {}:\n{}",
                    other(new),
                    out.status.code().unwrap_or(-1),
                    reviewed.display(),
                    String::from_utf8_lossy(&out.stderr).trim_end()
                ));
                continue;
            }
            units.insert(
                (new, m.to_string()),
                handler_units(&String::from_utf8_lossy(&out.stdout))?,
            );
            let now = std::fs::read(&target)
                .with_context(|| format!("modswap handler wrote no {}", target.display()))?;
            match kept {
                None => problems.push(format!(
                    "{} is missing: review the generated {} and copy it there",
                    reviewed.display(),
                    target.display()
                )),
                Some(k) if k != now => {
                    let diff = Cmd::new("diff")
                        .arg("-u")
                        .arg(&reviewed)
                        .arg(&target)
                        .into_inner()
                        .output()
                        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                        .unwrap_or_default();
                    problems.push(format!(
                        "{} is stale: modswap handler generates {} from the current \
                         sources; review it and copy it over:\n{diff}",
                        reviewed.display(),
                        target.display()
                    ));
                }
                Some(_) => {}
            }
        }
    }
    if !problems.is_empty() {
        bail!(
            "the reviewed handlers of {} are not current:\n{}",
            d.example,
            problems.join("\n")
        );
    }
    Ok(units)
}

/// Ends the units of version `v`'s handlers with the lines that compile
/// them in.
pub(crate) fn include_handlers(
    dir: &Path,
    d: &ModDir,
    v: &'static str,
    units: &Units,
) -> Result<()> {
    for m in d.modules {
        let units = units
            .get(&(v, m.to_string()))
            .map_or(&[][..], Vec::as_slice);
        if units.is_empty() {
            bail!("modswap handler names no unit to compile {m}_modswap.c in");
        }
        for u in units {
            let unit = dir.join(&u.unit);
            let mut src = std::fs::read_to_string(&unit)
                .with_context(|| format!("reading {}", unit.display()))?;
            src.push_str(&u.append);
            std::fs::write(&unit, src)?;
        }
    }
    Ok(())
}
