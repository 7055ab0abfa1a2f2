//! The fs/-wide run's tree: Debian's configuration, prepared once, and
//! the `.cmd` files (with dependency lists) Kbuild would have written,
//! synthesized from `make -n fs/` without compiling.

use super::*;

/// The tree configured with Debian's config, for the fs/-wide run.
pub(super) fn fsbench_tree() -> PathBuf {
    paths::cache_dir().join(format!("linux-{}-fsbench", paths::KERNEL_VERSION))
}

/// Unpacks and prepares the fs-bench tree once (stamped), then synthesizes
/// the .cmd files of every fs/ object from `make -n fs/`.
pub(super) fn prepare_fsbench() -> Result<PathBuf> {
    let tree = fsbench_tree();
    let stamps = tree.join(".modswap");
    if !stamps.join("prepared").exists() {
        eprintln!(
            "bench annotate: preparing {} (Debian's config, modules_prepare; once)",
            tree.display()
        );
        std::fs::create_dir_all(&tree)?;
        if !tree.join("Makefile").exists() {
            run(Cmd::new("tar")
                .args(["xf", paths::SOURCE_TARBALL, "--strip-components=1", "-C"])
                .arg(&tree))?;
        }
        let config = Path::new(paths::DEBIAN_HEADERS).join(".config");
        std::fs::copy(&config, tree.join(".config"))
            .with_context(|| format!("copying {}", config.display()))?;
        // No signing keys or BTF (pahole) are needed to get compile commands.
        run(Cmd::new(tree.join("scripts/config"))
            .arg("--file")
            .arg(tree.join(".config"))
            .args([
                "-d",
                "DEBUG_INFO_BTF",
                "-d",
                "MODULE_SIG",
                "-d",
                "MODULE_SIG_ALL",
                "--set-str",
                "MODULE_SIG_KEY",
                "",
                "--set-str",
                "SYSTEM_TRUSTED_KEYS",
                "",
                "--set-str",
                "SYSTEM_REVOCATION_KEYS",
                "",
            ]))?;
        let make = || {
            Cmd::new("nice")
                .args(["-n", "10", "make", "-C"])
                .arg(&tree)
                .arg("ARCH=x86_64")
        };
        run(make().arg("olddefconfig"))?;
        run(make()
            .arg(format!(
                "-j{}",
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(2)
            ))
            .arg("modules_prepare"))?;
        write_atomic(&stamps.join("prepared"), b"prepared\n")?;
    }
    if !stamps.join("cmd-files").exists() {
        eprintln!("bench annotate: asking Kbuild for the fs/ compile commands (make -n fs/)");
        let out = output(
            Cmd::new("make")
                .arg("-C")
                .arg(&tree)
                .args(["ARCH=x86_64", "-n", "fs/"]),
        )?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut n = 0;
        for line in text.lines() {
            for (target, cmd) in fixdep_calls(line) {
                if !target.starts_with("fs/") || !target.ends_with(".o") {
                    continue;
                }
                let t = Path::new(&target);
                let name = t.file_name().unwrap_or_default().to_string_lossy();
                let cmd_file = tree.join(t.with_file_name(format!(".{name}.cmd")));
                write_atomic(
                    &cmd_file,
                    format!("savedcmd_{target} := {cmd}\n").as_bytes(),
                )?;
                n += 1;
            }
        }
        if n == 0 {
            bail!(
                "`make -n fs/` in {} printed no compile commands",
                tree.display()
            );
        }
        write_atomic(&stamps.join("cmd-files"), format!("{n}\n").as_bytes())?;
    }
    if !stamps.join("dependency-lists").exists() {
        add_dependency_lists(&tree)?;
    }
    Ok(tree)
}

/// Adds to each synthesized `.cmd` file under fs/ the dependency list a
/// build would have left there (`deps_<object> := ...`, what fixdep makes
/// of the compiler's `-MMD` output): the command is run once as a
/// preprocessor (`-E`), which writes the `.d` file. A unit that does not
/// preprocess (a generated header that only a real build makes) keeps no
/// list. Runs on every CPU; done once (stamped).
pub(super) fn add_dependency_lists(tree: &Path) -> Result<()> {
    let mut cmd_files = Vec::new();
    let mut stack = vec![tree.join("fs")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)?.flatten() {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            } else if name.starts_with('.') && name.ends_with(".o.cmd") {
                cmd_files.push(path);
            }
        }
    }
    cmd_files.sort();
    eprintln!(
        "bench annotate: preprocessing {} fs/ units once for their dependency lists",
        cmd_files.len()
    );
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(cmd_file) = cmd_files.get(i) else {
                    break;
                };
                if dependency_list(tree, cmd_file).is_err() {
                    failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
    });
    let failed = failed.into_inner();
    eprintln!("bench annotate: {failed} unit(s) did not preprocess and have no dependency list");
    write_atomic(
        &tree.join(".modswap/dependency-lists"),
        format!("{} {failed}\n", cmd_files.len()).as_bytes(),
    )
}

/// One `.cmd` file: see [`add_dependency_lists`].
pub(super) fn dependency_list(tree: &Path, cmd_file: &Path) -> Result<()> {
    let text = std::fs::read_to_string(cmd_file)?;
    if text.contains("\ndeps_") {
        return Ok(());
    }
    let line = text
        .lines()
        .find(|l| l.starts_with("savedcmd_"))
        .context("no savedcmd line")?;
    let (target, cmd) = line["savedcmd_".len()..]
        .split_once(" := ")
        .context("no `:=`")?;
    let depfile = cmd
        .split_whitespace()
        .find_map(|w| w.strip_prefix("-Wp,-MMD,"))
        .context("no -Wp,-MMD")?;
    let first = first_command(cmd)
        .replace(&format!(" -o {target} "), " -o /dev/null ")
        .replace(" -c ", " -E ");
    let status = Command::new("sh")
        .arg("-c")
        .arg(first)
        .current_dir(tree)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    let dep_path = tree.join(depfile);
    if !status.success() {
        let _ = std::fs::remove_file(&dep_path);
        bail!("{target} does not preprocess");
    }
    let deps = std::fs::read_to_string(&dep_path)?;
    std::fs::remove_file(&dep_path)?;
    let joined = deps.replace("\\\n", " ");
    let (_, files) = joined.split_once(':').context("no `:` in the .d file")?;
    let mut out = format!("{line}\n\ndeps_{target} := \\\n");
    for f in files.split_whitespace().filter(|f| !f.ends_with(".c")) {
        out.push_str(&format!("  {f} \\\n"));
    }
    out.push('\n');
    write_atomic(cmd_file, out.as_bytes())
}

/// `cmd` up to its first `;` outside quotes (the compiler; objtool and
/// the like follow).
pub(super) fn first_command(cmd: &str) -> &str {
    let mut quote: Option<char> = None;
    for (i, c) in cmd.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (None, '\'' | '"') => quote = Some(c),
            (None, ';') => return &cmd[..i],
            _ => {}
        }
    }
    cmd
}

/// The `scripts/basic/fixdep <depfile> <target> '<command>'` calls of one
/// line of `make -n` output: (target, command as fixdep receives it).
pub(super) fn fixdep_calls(line: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("scripts/basic/fixdep ") {
        rest = &rest[at + "scripts/basic/fixdep ".len()..];
        let mut words = rest.splitn(3, ' ');
        let (Some(_dep), Some(target), Some(tail)) = (words.next(), words.next(), words.next())
        else {
            break;
        };
        let Some((cmd, used)) = shell_single_quoted(tail) else {
            break;
        };
        out.push((target.to_string(), cmd));
        rest = &tail[used..];
    }
    out
}

/// Reads one shell word made of '...' pieces and \' escapes (Kbuild writes
/// a single quote as '\''). Returns the word and the bytes consumed.
pub(super) fn shell_single_quoted(s: &str) -> Option<(String, usize)> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = String::new();
    if b.first() != Some(&b'\'') {
        return None;
    }
    while i < b.len() {
        match b[i] {
            b'\'' => {
                let end = s[i + 1..].find('\'')? + i + 1;
                out.push_str(&s[i + 1..end]);
                i = end + 1;
            }
            b'\\' if b.get(i + 1) == Some(&b'\'') => {
                out.push('\'');
                i += 2;
            }
            _ => break,
        }
    }
    Some((out, i))
}

/// Directories under fs/ with a Kbuild file or Makefile, sorted.
pub(super) fn module_dirs(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        if d.join("Makefile").exists() || d.join("Kbuild").exists() {
            out.push(d.clone());
        }
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(e.path());
                }
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_command_ends_at_an_unquoted_semicolon() {
        assert_eq!(
            first_command("gcc -DA='\"a;b\"' -c x.c ; objtool x.o"),
            "gcc -DA='\"a;b\"' -c x.c "
        );
        assert_eq!(first_command("gcc -c x.c"), "gcc -c x.c");
    }

    #[test]
    fn fixdep_commands_come_out_unquoted() {
        let line = "set -e; echo '  CC [M]  fs/a/b.o'; gcc -c -o fs/a/b.o fs/a/b.c; scripts/basic/fixdep fs/a/.b.o.d fs/a/b.o 'gcc -DKBUILD_MODNAME='\\''\"b\"'\\'' -c -o fs/a/b.o fs/a/b.c' > fs/a/.b.o.cmd; rm -f fs/a/.b.o.d";
        assert_eq!(
            fixdep_calls(line),
            [(
                "fs/a/b.o".to_string(),
                "gcc -DKBUILD_MODNAME='\"b\"' -c -o fs/a/b.o fs/a/b.c".to_string()
            )]
        );
    }
}
