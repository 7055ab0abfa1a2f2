//! Saved parses of single translation units ("facts"), so that make can
//! re-parse only the units whose object Kbuild rebuilt.
//!
//! The Kbuild fragment (`templates/kbuild/modswap.mk`) makes one facts
//! file per object, `.<object>.modswap` next to Kbuild's `.<object>.cmd`,
//! with a rule that depends on the object: Kbuild rebuilds the object when
//! its source, a header it includes or its flags change, and only then is
//! the unit parsed again ([`write_unit`]). The module-wide steps
//! (`annotate --check`, the rewrite) then read every unit from its facts
//! ([`super::parse_using_facts`]) instead of parsing it.
//!
//! A facts file is used only when it still describes the unit: same
//! format, same IR-producing code, same source, same compiler arguments, same
//! names root, and every file of the module directory the unit read (the
//! main file and its headers there) unchanged. Otherwise the unit is parsed
//! again, so stale facts can cost time but never change a result.

use super::{parse_one, Diag, Error, Job, JobResult};
use modswap_clang::Index;
use modswap_ir::{TypeTable, Unit};
use modswap_kbuild::{ModuleDir, Source};
use modswap_util::Fnv64;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Bumped whenever the layout of [`Facts`] changes.
const FORMAT: u32 = 1;

/// The facts file of a source: `.<object>.modswap` next to its object.
pub fn facts_file(source: &Source) -> PathBuf {
    let name = source
        .object
        .file_name()
        .unwrap_or_default()
        .to_string_lossy();
    source.object.with_file_name(format!(".{name}.modswap"))
}

/// What one facts file holds.
#[derive(Debug, Serialize, Deserialize)]
struct Facts {
    format: u32,
    /// The code that wrote it ([`toolkit_id`]).
    toolkit: String,
    source: PathBuf,
    /// The libclang arguments the unit was parsed with.
    args: Vec<String>,
    names_root: PathBuf,
    /// Files of the module directory the unit read, with a digest of each.
    files: BTreeMap<PathBuf, String>,
    /// The unit, or libclang's errors in it.
    result: Result<SavedUnit, Vec<Diag>>,
}

/// A unit with its own type table (ids local to the unit).
#[derive(Debug, Serialize, Deserialize)]
struct SavedUnit {
    unit: Unit,
    types: Vec<modswap_ir::Type>,
    /// The interning key of each type, by id.
    keys: Vec<String>,
}

/// Identifies the code that produces the IR: the crate version and a
/// digest of this crate's and the libclang wrapper's sources (computed by
/// build.rs). Facts written by other code are not trusted: its IR may mean
/// something else.
fn toolkit_id() -> String {
    format!(
        "modswap {} ir-sources {}",
        env!("CARGO_PKG_VERSION"),
        env!("MODSWAP_IR_SOURCES")
    )
}

fn digest_file(path: &Path) -> Option<String> {
    std::fs::read(path).ok().map(|b| Fnv64::hex(&b))
}

/// Parses the one C file `source` of `md` (its Kbuild command must exist;
/// the other files' need not) and writes its facts file atomically.
/// libclang's errors in the file are saved too (they are reported, with
/// every other unit's, by the step that reads the facts).
pub fn write_unit(md: &ModuleDir, source: &Path) -> Result<PathBuf, Error> {
    let want = modswap_kbuild::cmd::normalize(&std::path::absolute(source).map_err(|e| {
        modswap_kbuild::Error::Io {
            path: source.to_path_buf(),
            source: e,
        }
    })?);
    let (mi, src) = md
        .modules
        .iter()
        .enumerate()
        .find_map(|(mi, m)| m.sources.iter().find(|s| s.path == want).map(|s| (mi, s)))
        .ok_or_else(|| modswap_kbuild::Error::NotASource {
            dir: md.dir.clone(),
            file: want.clone(),
        })?;
    let command = match &src.command {
        Some(c) => c.clone(),
        None => md.load_command(src)?,
    };
    let job = Job {
        module: mi,
        source: src.path.clone(),
        args: command.clang_args(),
    };
    let names_root = super::names_root(md);
    let index = Index::new()?;
    let (result, read) = parse_one(
        &index,
        &job,
        &names_root,
        &md.dir,
        &super::fold::HeaderBodies::new(false),
    )?;
    let files = read
        .into_iter()
        .filter(|f| f.starts_with(&md.dir))
        .filter_map(|f| digest_file(&f).map(|d| (f, d)))
        .collect();
    let facts = Facts {
        format: FORMAT,
        toolkit: toolkit_id(),
        source: job.source.clone(),
        args: job.args.clone(),
        names_root,
        files,
        result: result.map(|(unit, table)| SavedUnit {
            unit,
            keys: table.keys(),
            types: table.types,
        }),
    };
    let path = facts_file(src);
    let text = serde_json::to_string(&facts).expect("facts serialize");
    modswap_util::write_atomic(&path, text.as_bytes()).map_err(|e| modswap_kbuild::Error::Io {
        path: path.clone(),
        source: e,
    })?;
    Ok(path)
}

/// The saved parse of `job`, if its facts file still describes it.
pub(super) fn load(source: &Source, job: &Job, names_root: &Path) -> Option<JobResult> {
    let text = std::fs::read(facts_file(source)).ok()?;
    let facts: Facts = serde_json::from_slice(&text).ok()?;
    let current = facts.format == FORMAT
        && facts.toolkit == toolkit_id()
        && facts.source == job.source
        && facts.args == job.args
        && facts.names_root == names_root
        && facts.files.contains_key(&job.source)
        && facts
            .result
            .as_ref()
            .map_or(true, |s| s.keys.len() == s.types.len())
        && facts
            .files
            .iter()
            .all(|(f, d)| digest_file(f).as_deref() == Some(d.as_str()));
    if !current {
        return None;
    }
    Some(facts.result.map(|s| {
        let table = TypeTable::with_keys(s.types, s.keys);
        (s.unit, table)
    }))
}
