//! The README's workflow, run exactly as written: every shell block of its
//! "Workflow" section, in order, in one bash session started at the root of
//! the checkout (so `cd` and variables carry over), with `set -euo
//! pipefail`. The blocks meant for the machine that runs the hotswap kernel
//! (step 4, load; step 10, swap with modswap swap) are not run here: the loader's
//! QEMU harness runs the swap. Everything else is, up to building and
//! verifying v2, so the README and this test cannot drift apart.

use modswap_tests::{cli, kernel_tree, repo_root};
use std::path::Path;
use std::process::Command;

/// The steps the issue lists, in order; the README's step headings must
/// start with these.
const STEPS: [&str; 10] = [
    "1. Annotate",
    "2. Review the report",
    "3. Build v1",
    "4. Load",
    "5. Change the code",
    "6. Generate the handler",
    "7. Review and fill in the TODOs",
    "8. Build v2",
    "9. Verify",
    "10. Swap with modswap swap",
];

/// Marks a shell block the test runs.
const RUN: &str = "<!-- workflow: run -->";
/// Marks a shell block for the machine running the hotswap kernel.
const ON_KERNEL: &str = "<!-- workflow: on the hotswap kernel -->";

#[derive(Debug)]
struct Block {
    /// The step heading it belongs to (`""` before the first step).
    step: String,
    run: bool,
    text: String,
}

/// The marked shell blocks of the README's workflow section, in order.
fn blocks(readme: &str) -> Vec<Block> {
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("Workflow"))
        .expect("README.md has a `## Workflow` section");
    let mut out = Vec::new();
    let mut step = String::new();
    let mut pending: Option<bool> = None;
    let mut lines = section.lines();
    while let Some(l) = lines.next() {
        if let Some(h) = l.strip_prefix("### ") {
            step = h.trim().to_string();
        } else if l.trim() == RUN {
            pending = Some(true);
        } else if l.trim() == ON_KERNEL {
            pending = Some(false);
        } else if l.starts_with("```") {
            let run = pending
                .take()
                .unwrap_or_else(|| panic!("README workflow: unmarked code block in {step:?}"));
            assert_eq!(l, "```sh", "README workflow: a marked block must be ```sh");
            let mut text = String::new();
            for b in lines.by_ref() {
                if b.starts_with("```") {
                    break;
                }
                text.push_str(b);
                text.push('\n');
            }
            out.push(Block {
                step: step.clone(),
                run,
                text,
            });
        }
    }
    assert!(
        pending.is_none(),
        "README workflow: a marker without a block"
    );
    out
}

#[test]
fn the_readme_workflow_runs_as_written() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let blocks = blocks(&readme);

    // Every step of the issue, in order, each with its command.
    let headings: Vec<&str> = blocks
        .iter()
        .map(|b| b.step.as_str())
        .filter(|s| !s.is_empty())
        .fold(Vec::new(), |mut v, s| {
            if v.last() != Some(&s) {
                v.push(s);
            }
            v
        });
    assert_eq!(
        headings.len(),
        STEPS.len(),
        "README workflow steps: {headings:?}"
    );
    for (h, want) in headings.iter().zip(STEPS) {
        assert!(
            h.starts_with(want),
            "README workflow: {h:?} should be {want:?}"
        );
    }
    for b in &blocks {
        let on_kernel = b.step.starts_with("4.") || b.step.starts_with("10.");
        assert_eq!(
            !b.run, on_kernel,
            "README workflow: only steps 4 and 10 run on the hotswap kernel ({})",
            b.step
        );
        if on_kernel {
            let cmd = if b.step.starts_with("4.") {
                "insmod"
            } else {
                "modswap swap"
            };
            assert!(b.text.contains(cmd), "{}: {}", b.step, b.text);
        }
    }

    // The README's own set-up puts target/debug on PATH; the binary the
    // tests built goes first in case the target directory is elsewhere.
    let bin_dir = cli::bin().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // mktemp -d in the README makes its directory under TMPDIR: this one
    // is removed when the test ends, pass or fail.
    let tmp = tempfile::tempdir().unwrap();
    let mut script = String::from("set -euo pipefail\n");
    for b in blocks.iter().filter(|b| b.run) {
        script.push_str(&format!("echo '+++ {}'\n", b.step.replace('\'', "")));
        script.push_str(&b.text);
    }
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(repo_root())
        .env("PATH", path)
        .env("TMPDIR", tmp.path())
        .env("MODSWAP_KERNEL_TREE", kernel_tree())
        .output()
        .expect("bash runs");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the README workflow failed:\n{log}");

    // It went all the way: both versions built, v2 verified against v1.
    let work = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("v1").is_dir())
        .unwrap_or_else(|| {
            panic!(
                "no work directory with v1 in {}:\n{log}",
                tmp.path().display()
            )
        });
    for v in ["v1", "v2"] {
        assert!(
            work.join(v).join("counterdev.ko").exists(),
            "{v} was not built:\n{log}"
        );
    }
    assert!(log.contains("compatible: "), "{log}");
    // Step 1 annotated v1 (the lock's marker), step 7 decided every TODO.
    let v1_main = std::fs::read_to_string(work.join("v1/counterdev_main.c")).unwrap();
    assert!(
        v1_main.contains("__static_old(counterdev_lock)"),
        "{v1_main}"
    );
    let handler = std::fs::read_to_string(work.join("v2/counterdev_modswap.c")).unwrap();
    assert!(handler.contains("TODO: 0 open, 2 decided."), "{handler}");
    assert!(
        handler.contains("\tcounterdev_state.resets = 0;\n"),
        "{handler}"
    );
    // The built v2 holds the handler: marked hotswappable.
    let r = cli::run([
        Path::new("inspect"),
        &work.join("v2/counterdev.ko"),
        Path::new("--format"),
        Path::new("json"),
    ]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(
        r.stdout
            .contains(&format!("\"{}\"", modswap_ir::sections::names().info)),
        "v2 is not marked hotswappable"
    );

    // modswap-check with OLD gates the handler too: a member added to the
    // state after the review makes it stale; regenerating it (which keeps
    // the decided TODOs and opens one for the new member) is what the
    // check asks for.
    let v2 = work.join("v2");
    let check = |what: &str| make_in(&v2, &[what, "OLD=../v1"]);
    let h = v2.join("counterdev.h");
    let text = std::fs::read_to_string(&h).unwrap();
    std::fs::write(
        &h,
        text.replace("\ts64 last;\n", "\ts64 last;\n\tu64 extra;\n"),
    )
    .unwrap();
    let (ok, out) = check("modswap-check");
    assert!(!ok, "a stale handler passes modswap-check:\n{out}");
    assert!(
        out.contains("counterdev_modswap.c are stale") && out.contains("modswap-handler OLD=../v1"),
        "{out}"
    );
    let (ok, out) = check("modswap-handler");
    assert!(ok, "{out}");
    assert!(out.contains("1 TODO(s) open, 2 decided"), "{out}");
    assert!(out.contains("TODO init:counterdev_state.extra"), "{out}");
    // The open TODO keeps v2 from building, so the check still fails ...
    let (ok, _) = check("modswap-check");
    assert!(!ok, "a handler with an open TODO passes modswap-check");
    // ... until it is decided; then the handler is up to date again.
    let text = std::fs::read_to_string(v2.join("counterdev_modswap.c")).unwrap();
    let fills = std::collections::BTreeMap::from([(
        "init:counterdev_state.extra".to_string(),
        vec!["\tcounterdev_state.extra = 7;".to_string()],
    )]);
    let decided = modswap_codegen::regions::fill(&text, &fills).unwrap();
    assert_ne!(text, decided);
    std::fs::write(v2.join("counterdev_modswap.c"), decided).unwrap();
    let (ok, out) = check("modswap-handler");
    assert!(ok && out.contains("0 TODO(s) open, 3 decided"), "{out}");
    let (ok, out) = check("modswap-check");
    assert!(ok, "{out}");
    assert!(out.contains("are up to date against ../v1"), "{out}");
    // A handler that is missing is stale too.
    std::fs::remove_file(v2.join("counterdev_modswap.c")).unwrap();
    let main = v2.join("counterdev_main.c");
    let text = std::fs::read_to_string(&main).unwrap();
    std::fs::write(
        &main,
        text.replace("#include \"counterdev_modswap.c\"\n", ""),
    )
    .unwrap();
    let (ok, out) = make_in(&v2, &["modswap-check", "OLD=../v1", "MODULE=counterdev"]);
    assert!(!ok, "a missing handler passes modswap-check:\n{out}");
    assert!(out.contains("counterdev_modswap.c is missing"), "{out}");
}

/// `make -f Kbuild KDIR=<the kernel tree> <args>` in a module directory
/// of the workflow, with the modswap under test first on PATH.
fn make_in(dir: &Path, args: &[&str]) -> (bool, String) {
    let bin_dir = cli::bin().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let o = Command::new("make")
        .args(["-f", "Kbuild", "-j2"])
        .arg(format!("KDIR={}", kernel_tree().display()))
        .args(args)
        .current_dir(dir)
        .env("PATH", path)
        .output()
        .expect("make runs");
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}
