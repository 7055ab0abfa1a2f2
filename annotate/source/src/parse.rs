//! Parsing a module directory's units on several threads (each with its
//! own libclang index), largest first, then assembling the program in a
//! fixed order, so that the result does not depend on scheduling.

use super::*;

/// The stack of each parser thread.
const PARSER_STACK: usize = 512 << 20;

/// One job per C file of `md`, and the saved parse of each where
/// `use_facts` and it is still current.
pub(super) fn jobs(
    md: &ModuleDir,
    use_facts: bool,
    names_root: &Path,
) -> Result<(Vec<Job>, Vec<Option<JobResult>>), Error> {
    let mut jobs = Vec::new();
    let mut saved = Vec::new();
    for (mi, m) in md.modules.iter().enumerate() {
        for s in &m.sources {
            let Some(cmd) = &s.command else {
                return Err(modswap_kbuild::Error::NotBuilt {
                    dir: md.dir.clone(),
                    missing: s.object.display().to_string(),
                    make: md.make_command(),
                }
                .into());
            };
            let job = Job {
                module: mi,
                source: s.path.clone(),
                args: cmd.clang_args(),
            };
            saved.push(if use_facts {
                saved::load(s, &job, names_root)
            } else {
                None
            });
            jobs.push(job);
        }
    }
    Ok((jobs, saved))
}

/// The program: every unit in the jobs' order, the types merged into one
/// table; the first module whose units libclang rejected fails it.
pub(super) fn assemble(
    md: &ModuleDir,
    names_root: &Path,
    jobs: &[Job],
    results: Vec<Option<JobResult>>,
) -> Result<Program, Error> {
    let mut program = Program {
        dir: if md.in_tree {
            md.dir
                .strip_prefix(names_root)
                .unwrap_or(&md.dir)
                .display()
                .to_string()
        } else {
            md.dir
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        },
        modules: md
            .modules
            .iter()
            .map(|m| Module {
                name: m.name.clone(),
                modname: m.modname.clone(),
                units: Vec::new(),
            })
            .collect(),
        types: TypeTable::default(),
    };
    let mut failed: Option<(String, Vec<Diag>)> = None;
    for (job, r) in jobs.iter().zip(results) {
        match r.expect("every job ran") {
            Ok((mut unit, table)) => {
                let map = program.types.merge(&table);
                for g in &mut unit.globals {
                    g.ty = map[g.ty.0 as usize];
                }
                program.modules[job.module].units.push(unit);
            }
            Err(diags) => {
                let name = md.modules[job.module].name.clone();
                match &mut failed {
                    Some((m, all)) if *m == name => all.extend(diags),
                    Some(_) => {}
                    None => failed = Some((name, diags)),
                }
            }
        }
    }
    if let Some((module, errors)) = failed {
        return Err(Error::Diagnostics { module, errors });
    }
    Ok(program)
}

pub(crate) struct Job {
    pub(crate) module: usize,
    pub(crate) source: PathBuf,
    pub(crate) args: Vec<String>,
}

pub(crate) type JobResult = Result<(modswap_ir::Unit, TypeTable), Vec<Diag>>;

pub(super) fn parse_impl(
    md: &ModuleDir,
    opts: Options,
    use_facts: bool,
) -> Result<(Program, ParseStats), Error> {
    let names_root = names_root(md);
    let (jobs, saved) = jobs(md, use_facts, &names_root)?;
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<JobResult>>> = Mutex::new(saved);
    let mut todo: Vec<usize> = {
        let r = results.lock().expect("not shared yet");
        (0..jobs.len()).filter(|&i| r[i].is_none()).collect()
    };
    // Largest C file first, so that the threads run out of work at about
    // the same time (the units share most of their headers; what differs
    // is the file's own code). The results keep the jobs' order.
    let size = |i: usize| std::fs::metadata(&jobs[i].source).map_or(0, |m| m.len());
    todo.sort_by_cached_key(|&i| (std::cmp::Reverse(size(i)), i));
    let fatal: Mutex<Option<modswap_clang::Error>> = Mutex::new(None);
    let bodies = HeaderBodies::new(opts.fold_header_bodies);
    // The headers the units read when Kbuild last compiled them: their
    // bodies can be folded from the first parse on.
    let deps: BTreeSet<PathBuf> = md
        .modules
        .iter()
        .flat_map(|m| &m.sources)
        .filter_map(|s| s.command.as_ref())
        .flat_map(|c| c.deps.iter().cloned())
        .collect();
    let threads = opts.jobs.clamp(1, todo.len().max(1));
    // The threads load libclang (tens of milliseconds) while this thread
    // guesses; they start parsing once it is done.
    let gate = std::sync::RwLock::new(());
    let guessing = gate.write().expect("not shared yet");
    std::thread::scope(|s| {
        for _ in 0..if todo.is_empty() { 0 } else { threads } {
            // Type conversion and expression walks recurse as deep as the
            // kernel's types and macros nest (thousands of frames in fs/xfs,
            // fs/btrfs): a generous stack, committed only as used.
            let builder = std::thread::Builder::new().stack_size(PARSER_STACK);
            let spawned = builder.spawn_scoped(s, || {
                let index = match Index::new() {
                    Ok(i) => i,
                    Err(e) => {
                        fatal
                            .lock()
                            .expect("no panics while locked")
                            .get_or_insert(e);
                        return;
                    }
                };
                drop(gate.read());
                loop {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&i) = todo.get(n) else { break };
                    let r = parse_one(&index, &jobs[i], &names_root, &md.dir, &bodies);
                    match r {
                        Ok((r, _)) => results.lock().expect("no panics while locked")[i] = Some(r),
                        Err(e) => {
                            fatal
                                .lock()
                                .expect("no panics while locked")
                                .get_or_insert(e);
                            break;
                        }
                    }
                }
            });
            if let Err(e) = spawned {
                fatal.lock().expect("no panics while locked").get_or_insert(
                    modswap_clang::Error::Thread {
                        reason: e.to_string(),
                    },
                );
            }
        }
        bodies.guess(deps, &md.dir);
        drop(guessing);
    });
    if let Some(e) = fatal.into_inner().expect("threads joined") {
        return Err(e.into());
    }
    let results = results.into_inner().expect("threads joined");

    let program = assemble(md, &names_root, &jobs, results)?;
    let stats = ParseStats {
        units: todo.len(),
        ..bodies.stats()
    };
    Ok((program, stats))
}

/// Parses one unit; also returns every file it read (absolute, normalized).
/// Headers whose function bodies `bodies` knows are read without them; what
/// this unit shows of other headers is added to `bodies`.
pub(crate) fn parse_one(
    index: &Index,
    job: &Job,
    names_root: &Path,
    module_dir: &Path,
    bodies: &HeaderBodies,
) -> Result<(JobResult, Vec<PathBuf>), modswap_clang::Error> {
    let mut folding = job.args.clone();
    folding.extend(fold::DEFINES.iter().map(|d| d.to_string()));
    let parse = |unsaved: &[modswap_clang::Unsaved]| {
        index.parse_with(
            &job.source,
            if unsaved.is_empty() {
                &job.args
            } else {
                &folding
            },
            ParseOptions {
                detailed_preprocessing_record: true,
                skip_function_bodies: false,
            },
            unsaved,
        )
    };
    let ctx = Ctx {
        names_root: names_root.to_path_buf(),
        module_dir: module_dir.to_path_buf(),
        main_file: job.source.clone(),
        texts: RefCell::new(HashMap::new()),
        in_dir: RefCell::new(HashMap::new()),
    };
    let errors_of = |tu: &modswap_clang::TranslationUnit<'_>| -> Vec<Diag> {
        tu.diagnostics()
            .into_iter()
            .filter(|d| d.is_error())
            .map(|d| Diag {
                file: d
                    .location
                    .file
                    .as_deref()
                    .map(|f| ctx.rel(&abs(f)))
                    .unwrap_or_else(|| ctx.rel(&job.source)),
                line: d.location.line,
                column: d.location.column,
                message: d.message,
            })
            .collect()
    };
    // Parse with folded headers; a guess shown wrong is dropped and the
    // unit parsed again (twice at most), and on errors with folds, in full,
    // so that folding can never be the cause of an error (its errors, if
    // any, are then the unit's own).
    let mut tries = 0;
    let mut in_full = false;
    loop {
        let snap = if in_full {
            fold::Snapshot::default()
        } else {
            bodies.snapshot()
        };
        let tu = parse(&snap.unsaved)?;
        let errors = errors_of(&tu);
        let read: Vec<PathBuf> = tu.inclusions().iter().map(|f| abs(f)).collect();
        let top = tu.cursor().children();
        if !snap.unsaved.is_empty() {
            let held = bodies.check(&snap, &tu, &top, &read);
            if !held && tries < 2 {
                tries += 1;
                continue;
            }
            if !held || !errors.is_empty() {
                in_full = true;
                bodies.note_reparsed_unit();
                continue;
            }
            bodies.note_folded_unit();
        }
        if !errors.is_empty() {
            return Ok((Err(errors), read));
        }
        bodies.learn(&top, &ctx);
        let file = ctx.rel(&job.source);
        return Ok((Ok(unit::extract(&top, &ctx, &file)), read));
    }
}
