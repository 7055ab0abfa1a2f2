//! `analyze` on the real Linux 6.12 sources (fs/fat: fat, vfat, msdos;
//! fs/bfs; fs/nls: nls_cp437, nls_iso8859-1) of the built tree, against
//! the hand-audited tables in tests/expected/annotate/*.table.
//!
//! Checked: every global of the modules has a row (generated ones by rule),
//! each row's class is the tool's (a row records where the tool is less
//! precise than the audit as "audited (tool: other)"), the re-assign lists
//! of static_old rows, every quoted kernel line matches the installed
//! source, and recall of escaping globals is 100%.

use modswap_analyze::{self as analyze, Analysis};
use modswap_ir::class::Class;
use modswap_tests::{kernel_tree, repo_root};
use std::collections::BTreeMap;

struct Row {
    module: String,
    key: String,
    audited: Class,
    tool: Class,
    reassign: Option<Vec<String>>,
    justification: String,
    line: usize,
}

fn class(s: &str) -> Class {
    match s {
        "static_old" => Class::StaticOld,
        "static_new" => Class::StaticNew,
        "transfer" => Class::Transfer,
        "none" => Class::None,
        other => panic!("unknown class {other:?}"),
    }
}

fn table(name: &str) -> Vec<Row> {
    let path = repo_root().join("tests/expected/annotate").join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut rows = Vec::new();
    for (i, l) in text.lines().enumerate() {
        if l.trim().is_empty() || l.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = l.splitn(4, " | ").collect();
        assert_eq!(
            f.len(),
            4,
            "{}:{}: not `module | key | class | why`",
            path.display(),
            i + 1
        );
        let c = f[2].trim();
        let (c, reassign) = match c.split_once(" [") {
            Some((c, r)) => {
                let r = r.trim_end_matches(']');
                let list = if r.is_empty() {
                    Vec::new()
                } else {
                    r.split(", ").map(str::to_string).collect()
                };
                (c, Some(list))
            }
            None => (c, None),
        };
        let (audited, tool) = match c.split_once(" (tool: ") {
            Some((a, t)) => (class(a), class(t.trim_end_matches(')'))),
            None => (class(c), class(c)),
        };
        rows.push(Row {
            module: f[0].trim().to_string(),
            key: f[1].trim().to_string(),
            audited,
            tool,
            reassign,
            justification: f[3].to_string(),
            line: i + 1,
        });
    }
    rows
}

fn analyse(dir: &str) -> Analysis {
    analyze::run(&kernel_tree().join(dir), &Default::default())
        .unwrap()
        .analysis
}

fn words(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Every `file:line: `text`` quote of a justification, checked against the
/// installed source.
fn check_quotes(row: &Row, table: &str, problems: &mut Vec<String>) {
    let parts: Vec<&str> = row.justification.split('`').collect();
    let mut quotes = 0;
    for i in (1..parts.len()).step_by(2) {
        let before = parts[i - 1].trim_end();
        let Some(at) = before.split_whitespace().last() else {
            continue;
        };
        let at = at.trim_start_matches('(').trim_end_matches(':');
        let Some((file, line)) = at.rsplit_once(':') else {
            problems.push(format!("{table}:{}: quote without file:line", row.line));
            continue;
        };
        let Ok(line) = line.parse::<usize>() else {
            problems.push(format!("{table}:{}: bad line in {at}", row.line));
            continue;
        };
        quotes += 1;
        let src = std::fs::read_to_string(kernel_tree().join(file)).unwrap_or_default();
        let actual = src.lines().nth(line - 1).unwrap_or_default();
        if !words(actual).contains(&words(parts[i])) {
            problems.push(format!(
                "{table}:{}: {file}:{line} is `{}`, not `{}`",
                row.line,
                actual.trim(),
                parts[i]
            ));
        }
    }
    if quotes == 0 {
        problems.push(format!(
            "{table}:{}: {} quotes no kernel line",
            row.line, row.key
        ));
    }
}

/// Generated globals that need no row: not in memory at swap time.
fn generated(g: &analyze::GlobalAnalysis) -> bool {
    g.key.starts_with("__UNIQUE_ID_")
        && g.class == Class::None
        && g.section.as_deref().is_some_and(|s| {
            s == ".modinfo"
                || s.starts_with(".discard")
                || s.starts_with(".init.")
                || s.starts_with(".exit.")
        })
}

fn compact(a: &Analysis) -> String {
    let mut s = String::new();
    for m in &a.modules {
        for g in m.globals.iter().filter(|g| !generated(g)) {
            s.push_str(&format!("{} {} {}", m.name, g.key, g.class));
            if !g.reassign.is_empty() {
                s.push_str(&format!(" {:?}", g.reassign));
            }
            s.push('\n');
            for e in &g.evidence {
                s.push_str(&format!("  {}:{}: {}\n", e.file, e.line, e.text));
            }
        }
    }
    s
}

/// Compares; returns (escaping in the audit, of them found escaping, tool
/// escapes the audit does not).
fn check(dir: &str, table_name: &str, modules: &[&str]) -> (usize, usize, usize) {
    let a = analyse(dir);
    let rows = table(table_name);
    let mut problems = Vec::new();
    let mut by_key: BTreeMap<(&str, &str), &Row> = BTreeMap::new();
    for r in &rows {
        if by_key.insert((&r.module, &r.key), r).is_some() {
            problems.push(format!("{table_name}:{}: duplicate row {}", r.line, r.key));
        }
        check_quotes(r, table_name, &mut problems);
    }
    let (mut escaping, mut found, mut extra) = (0, 0, 0);
    for m in modules {
        let Some(ma) = a.module(m) else {
            problems.push(format!("{dir}: no module {m}"));
            continue;
        };
        for g in &ma.globals {
            let Some(r) = by_key.remove(&(*m, g.key.as_str())) else {
                if !generated(g) {
                    problems.push(format!(
                        "{m} {} ({}:{}) is {} but has no row in {table_name}",
                        g.key, g.file, g.line, g.class
                    ));
                }
                continue;
            };
            let audited_escapes = matches!(r.audited, Class::StaticOld | Class::StaticNew);
            if audited_escapes {
                escaping += 1;
                if g.escapes {
                    found += 1;
                } else {
                    problems.push(format!(
                        "RECALL: {m} {} escapes ({table_name}:{}) but the tool says it does not: {}",
                        g.key, r.line, g.reason
                    ));
                }
            } else if g.escapes {
                extra += 1;
            }
            if g.class != r.tool {
                problems.push(format!(
                    "{m} {}: tool says {}, {table_name}:{} expects {}: {}",
                    g.key, g.class, r.line, r.tool, g.reason
                ));
            }
            if let Some(re) = &r.reassign {
                if &g.reassign != re {
                    problems.push(format!(
                        "{m} {}: re-assign {:?}, {table_name}:{} expects {:?}",
                        g.key, g.reassign, r.line, re
                    ));
                }
            }
        }
    }
    for ((m, k), r) in by_key {
        if modules.contains(&m) {
            problems.push(format!(
                "{table_name}:{}: {m} {k} is not a global of the module",
                r.line
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
    insta::assert_snapshot!(format!("kernel_{}", dir.replace('/', "_")), compact(&a));
    eprintln!(
        "{dir}: recall {found}/{escaping} escaping globals; {extra} more escape in the tool only"
    );
    (escaping, found, extra)
}

#[test]
fn fs_fat_fat_vfat_msdos() {
    let (e, f, extra) = check("fs/fat", "fs-fat.table", &["fat", "vfat", "msdos"]);
    assert_eq!(e, f);
    assert_eq!(extra, 1, "only fat_cache_lookup.nohit is a false escape");
}

#[test]
fn fs_bfs() {
    let (e, f, extra) = check("fs/bfs", "fs-bfs.table", &["bfs"]);
    assert_eq!((e, extra), (f, 0));
}

#[test]
fn fs_nls_cp437() {
    let (e, f, extra) = check("fs/nls", "fs-nls.table", &["nls_cp437", "nls_iso8859-1"]);
    assert_eq!((e, extra), (f, 0));
}

/// Copies the C sources, headers and Makefile of `dir` to `<tmp>/<name>`.
fn copy_sources(dir: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let name = dir.rsplit('/').next().unwrap();
    let to = tmp.path().join(name);
    std::fs::create_dir_all(&to).unwrap();
    for e in std::fs::read_dir(kernel_tree().join(dir)).unwrap() {
        let p = e.unwrap().path();
        let file = p.file_name().unwrap().to_string_lossy().into_owned();
        let keep = (file.ends_with(".c") && !file.ends_with(".mod.c"))
            || file.ends_with(".h")
            || file == "Makefile"
            || file == "Kconfig";
        if keep && p.is_file() {
            std::fs::copy(&p, to.join(&file)).unwrap();
        }
    }
    (tmp, to)
}

/// `make -C <tree> M=<dir> modules`; the warning lines it prints.
fn kbuild(dir: &std::path::Path) -> Vec<String> {
    let out = std::process::Command::new("make")
        .arg("-C")
        .arg(kernel_tree())
        .arg(format!("M={}", dir.display()))
        // The tree's own include/linux/modswap.h (from the loader series)
        // comes first; the checkout's is the fallback.
        .arg(format!(
            "KCFLAGS=-I{}",
            repo_root().join("loader/include").display()
        ))
        .args(["-s", "-j2", "modules"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "building {} failed:\n{stderr}",
        dir.display()
    );
    let mut w: Vec<String> = stderr
        .lines()
        .filter(|l| l.contains("warning:"))
        // Paths differ between runs only in the temporary directory.
        .map(|l| l.replace(&dir.display().to_string(), "<dir>"))
        .collect();
    w.sort();
    w
}

/// Annotates a copy of a kernel module directory, rebuilds it with Kbuild
/// against the tree: no new warnings, one section per marker, and a second
/// run changes nothing.
fn annotate_copy_and_build(dir: &str, modules: &[&str]) {
    use modswap_analyze::rewrite::Marker;
    let (_tmp, copy) = copy_sources(dir);
    let before = kbuild(&copy);
    let tree = kernel_tree();
    let opts = analyze::pipeline::Options {
        kdir: Some(tree.clone()),
        ..Default::default()
    };
    let run = analyze::run(&copy, &opts).unwrap();
    let (a, plan) = (run.analysis, run.rewrite);
    assert!(plan.is_stale());
    plan.apply().unwrap();
    let after = kbuild(&copy);
    let new: Vec<&String> = after.iter().filter(|w| !before.contains(w)).collect();
    assert!(
        new.is_empty(),
        "new warnings after annotating {dir}:\n{new:#?}"
    );
    for m in modules {
        let ma = a.module(m).unwrap();
        let mut want: Vec<String> = ma
            .globals
            .iter()
            .filter_map(|g| match plan.marker(m, &g.key) {
                Some(Marker::Added { .. }) => Some(format!(".{}.{}", g.class.as_str(), g.key)),
                _ => None,
            })
            .collect();
        want.sort();
        assert!(!want.is_empty(), "{m}: nothing marked");
        assert_eq!(
            modswap_tests::static_sections(&copy.join(format!("{m}.ko"))),
            want,
            "{m}"
        );
    }
    let again = analyze::run(&copy, &opts).unwrap().rewrite;
    assert!(!again.is_stale(), "second run changes:\n{}", again.diff());
}

#[test]
fn annotated_fs_fat_builds() {
    annotate_copy_and_build("fs/fat", &["fat", "vfat", "msdos"]);
}

#[test]
fn annotated_fs_bfs_and_nls_build() {
    annotate_copy_and_build("fs/bfs", &["bfs"]);
    annotate_copy_and_build("fs/nls", &["nls_cp437", "nls_iso8859-1"]);
}

/// The analysis's resource limits on the real fs/fat: widening (an object
/// that reaches too many places is taken to escape to the kernel, which may
/// write it) only ever adds escapes, so recall stays 100% however early it
/// starts; and a budget the directory does not fit in fails with a typed
/// error naming the directory, not a hang.
#[test]
fn limits_widen_soundly_and_budget_fails_cleanly() {
    use modswap_analyze::Limits;
    let run = analyze::run(&kernel_tree().join("fs/fat"), &Default::default()).unwrap();
    let (program, full) = (run.program, run.analysis);
    let narrow = analyze::analyze_with(
        &program,
        Limits {
            widen_at: 10,
            budget: usize::MAX,
        },
    )
    .unwrap();
    let mut widened = 0;
    for m in &full.modules {
        for g in &m.globals {
            let n = narrow.global(&m.name, &g.key).unwrap();
            assert!(
                !g.escapes || n.escapes,
                "{}: {} escapes, but not once widened",
                m.name,
                g.key
            );
            assert!(
                !(g.escapes && g.mutated()) || n.mutated(),
                "{}: {} is static_old, but not once widened",
                m.name,
                g.key
            );
            if n.evidence
                .iter()
                .any(|e| e.text.contains("too many to follow"))
            {
                assert!(n.escapes, "{}: {} widened but private", m.name, g.key);
                widened += 1;
            }
        }
    }
    assert!(
        widened > 0,
        "widening at 10 places widened nothing in fs/fat"
    );
    let err = analyze::analyze_with(
        &program,
        Limits {
            budget: 1000,
            ..Limits::default()
        },
    )
    .unwrap_err();
    assert!(matches!(err, analyze::Error::Budget { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("fs/fat") && msg.contains("could not analyse"),
        "{msg}"
    );
}
