//! annotate's pipeline, as one call: discover the module directory
//! (Kbuild), read Kbuild's saved compile commands, parse every unit with
//! libclang (or take its saved parse), analyse, plan the rewrite. The CLI
//! and the tests both call [`run`]; what to do with the result (write the
//! rewrite, print it, report) is theirs.

use crate::elf_check;
use crate::report::{self, Report};
use crate::rewrite::{self, Rewrite};
use crate::{Analysis, Limits};
use modswap_ir::Program;
use modswap_kbuild::ModuleDir;
use std::path::{Path, PathBuf};

/// How to run the pipeline.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The kernel build or headers directory, for an external module.
    pub kdir: Option<PathBuf>,
    /// How to parse.
    pub parse: modswap_source::Options,
    /// Take every unit from its saved parse where that is still current.
    pub from_facts: bool,
    /// The analysis's limits.
    pub limits: Limits,
}

/// What can go wrong in the pipeline: the error of the stage that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Kbuild(#[from] modswap_kbuild::Error),
    #[error(transparent)]
    Source(#[from] modswap_source::Error),
    #[error(transparent)]
    Analysis(#[from] crate::Error),
    #[error("planning the rewrite of {}", dir.display())]
    Rewrite {
        dir: PathBuf,
        #[source]
        source: rewrite::Error,
    },
}

/// Everything one run found.
#[derive(Debug)]
pub struct Run {
    /// The module directory, with its compile commands.
    pub dir: ModuleDir,
    pub program: Program,
    pub analysis: Analysis,
    /// The rewrite that makes the markers right (empty when they are).
    pub rewrite: Rewrite,
}

/// Runs the pipeline on the module directory `dir`.
pub fn run(dir: &Path, opts: &Options) -> Result<Run, Error> {
    let dir = modswap_kbuild::load(dir, opts.kdir.as_deref())?;
    let program = if opts.from_facts {
        modswap_source::parse_using_facts(&dir, opts.parse)?
    } else {
        modswap_source::parse(&dir, opts.parse)?
    };
    let analysis = crate::analyze_with(&program, opts.limits)?;
    let root = modswap_source::names_root(&dir);
    let rewrite = rewrite::plan(&root, &program, &analysis).map_err(|source| Error::Rewrite {
        dir: dir.dir.clone(),
        source,
    })?;
    Ok(Run {
        dir,
        program,
        analysis,
        rewrite,
    })
}

impl Run {
    /// The report: every global with its class, evidence and marker, the
    /// cross-check with the built modules (when they are up to date with
    /// the sources), and Kbuild's notes.
    pub fn report(&self) -> Report {
        let mut rep = report::build(&self.analysis, &self.rewrite);
        let elf = elf_check::cross_check(&self.analysis, &elf_check::built(&self.dir));
        rep.add_elf_check(&elf);
        rep.notes.extend(self.dir.notes.iter().cloned());
        rep.notes.extend(
            self.dir
                .skipped
                .iter()
                .map(|(m, why)| format!("{m}: not analysed: {why}")),
        );
        rep
    }
}
