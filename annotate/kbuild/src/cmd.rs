//! Kbuild's saved compile commands (`.<obj>.cmd`) and the libclang
//! arguments derived from them.

use std::path::{Path, PathBuf};

/// One compile command as Kbuild ran it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileCommand {
    /// The `.cmd` file it came from.
    pub cmd_file: PathBuf,
    /// The directory the command ran in (relative paths resolve against it).
    pub cwd: PathBuf,
    /// The compiler program (`gcc`, `x86_64-linux-gnu-gcc-12`, ...).
    pub compiler: String,
    /// The compiler's arguments, shell-unquoted.
    pub args: Vec<String>,
    /// The files the dependency list of the `.cmd` file (`deps_<object> :=`,
    /// written by fixdep) names, absolute and normalized, in its order;
    /// empty when the file has none. A hint only: parsing never relies on it.
    pub deps: Vec<PathBuf>,
}

/// Reads the `savedcmd_...` line of a `.cmd` file; `cwd` is the directory
/// Kbuild ran in (the kernel tree, or the `-C` directory of an external
/// build).
pub fn read_cmd_file(path: &Path, cwd: &Path) -> Result<CompileCommand, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    parse_cmd_text(&text, path, cwd)
}

pub(crate) fn parse_cmd_text(
    text: &str,
    path: &Path,
    cwd: &Path,
) -> Result<CompileCommand, String> {
    let line = text
        .lines()
        .find(|l| l.starts_with("savedcmd_") || l.starts_with("cmd_"))
        .ok_or("no `savedcmd_...` line")?;
    let (_, command) = line
        .split_once(":=")
        .ok_or("no `:=` in the saved command")?;
    // Make escapes `$` as `$$` in .cmd files.
    let command = command.replace("$$", "$");
    let words = shell_words_first_command(&command)?;
    let mut it = words.into_iter();
    let compiler = it.next().ok_or("the saved command is empty")?;
    Ok(CompileCommand {
        cmd_file: path.to_path_buf(),
        cwd: cwd.to_path_buf(),
        compiler,
        args: it.collect(),
        deps: deps(text, cwd),
    })
}

/// The files of the `deps_<object> := \` block, skipping the
/// `$(wildcard include/config/...)` entries.
fn deps(text: &str, cwd: &Path) -> Vec<PathBuf> {
    let mut lines = text.lines().skip_while(|l| !l.starts_with("deps_"));
    let Some(first) = lines.next() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut more = first.trim_end().ends_with('\\');
    for l in lines {
        if !more {
            break;
        }
        let l = l.trim();
        more = l.ends_with('\\');
        let entry = l.trim_end_matches('\\').trim();
        if entry.is_empty() || entry.starts_with("$(") {
            continue;
        }
        let p = Path::new(entry);
        out.push(if p.is_absolute() {
            normalize(p)
        } else {
            normalize(&cwd.join(p))
        });
    }
    out
}

/// Splits the first command of a shell line (up to an unquoted `;`, `&&`,
/// `||` or `|`) into words, undoing quoting.
pub(crate) fn shell_words_first_command(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(d) => cur.push(d),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(d @ ('"' | '\\' | '$' | '`')) => cur.push(d),
                            Some(d) => {
                                cur.push('\\');
                                cur.push(d);
                            }
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(d) => cur.push(d),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(d) = chars.next() {
                    cur.push(d);
                }
            }
            ';' | '|' => break,
            '&' if chars.peek() == Some(&'&') => break,
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// Options that take their value as the next argument.
const PATH_OPTS: &[&str] = &[
    "-I",
    "-isystem",
    "-iquote",
    "-idirafter",
    "-include",
    "-imacros",
];

/// Flags that change how C is parsed or preprocessed and that clang knows.
/// Everything else (warnings, code generation, GCC-only tuning such as
/// -falign-jumps, -mskip-rax-setup, -fconserve-stack, -mrecord-mcount,
/// -ftrivial-auto-var-init, -fmacro-prefix-map, -Wp,-MMD, ...) is dropped.
fn keeps(flag: &str) -> bool {
    const EXACT: &[&str] = &[
        "-nostdinc",
        "-fshort-wchar",
        "-funsigned-char",
        "-fsigned-char",
        "-fms-extensions",
        "-fno-common",
        "-fno-PIE",
        "-fno-pie",
        "-m64",
        "-m32",
        "-mno-sse",
        "-mno-mmx",
        "-mno-sse2",
        "-mno-3dnow",
        "-mno-avx",
        "-mno-red-zone",
        "-mcmodel=kernel",
        "-fno-strict-aliasing",
        "-fno-delete-null-pointer-checks",
    ];
    EXACT.contains(&flag)
        || flag.starts_with("-std=")
        || flag.starts_with("-O")
        || flag.starts_with("-fcf-protection")
}

impl CompileCommand {
    /// The source file the command compiles (absolute).
    pub fn source(&self) -> Option<PathBuf> {
        // The source is the last argument that is not an option or an option's value.
        let mut skip = false;
        let mut found = None;
        for a in &self.args {
            if skip {
                skip = false;
                continue;
            }
            if a == "-o" || PATH_OPTS.contains(&a.as_str()) || a == "-D" || a == "-U" {
                skip = true;
                continue;
            }
            if !a.starts_with('-') && (a.ends_with(".c") || a.ends_with(".S")) {
                found = Some(self.absolute(a));
            }
        }
        found
    }

    fn absolute(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            normalize(&self.cwd.join(p))
        }
    }

    /// The same command for another copy of the module directory: every
    /// path argument (include directories, forced includes, the source and
    /// the object) that lies under `from` is moved under `to`, made
    /// absolute. Everything else (the kernel's include paths, defines,
    /// flags) is kept as is. Used to parse an older version of a module with
    /// the flags Kbuild used for the current one.
    pub fn retarget(&self, from: &Path, to: &Path) -> CompileCommand {
        let move_path = |v: &str| -> Option<String> {
            let abs = self.absolute(v);
            let rest = abs.strip_prefix(from).ok()?;
            Some(to.join(rest).display().to_string())
        };
        let mut args = Vec::with_capacity(self.args.len());
        let mut i = 0;
        while i < self.args.len() {
            let a = &self.args[i];
            if PATH_OPTS.contains(&a.as_str()) || a == "-o" {
                args.push(a.clone());
                if let Some(v) = self.args.get(i + 1) {
                    args.push(move_path(v).unwrap_or_else(|| v.clone()));
                }
                i += 2;
                continue;
            }
            let moved = match a.strip_prefix("-I").filter(|v| !v.is_empty()) {
                Some(v) => move_path(v).map(|p| format!("-I{p}")),
                None if !a.starts_with('-') => move_path(a),
                None => None,
            };
            args.push(moved.unwrap_or_else(|| a.clone()));
            i += 1;
        }
        CompileCommand {
            cmd_file: self.cmd_file.clone(),
            cwd: self.cwd.clone(),
            compiler: self.compiler.clone(),
            args,
            deps: self
                .deps
                .iter()
                .map(|d| match d.strip_prefix(from) {
                    Ok(rest) => to.join(rest),
                    Err(_) => d.clone(),
                })
                .collect(),
        }
    }

    /// The same command with `-D<name>=<value>` replacing any definition of
    /// `name` (or added when there is none), e.g. `KBUILD_BASENAME` for a
    /// file of another name.
    pub fn with_define(&self, name: &str, value: &str) -> CompileCommand {
        let prefix = format!("-D{name}=");
        let def = format!("{prefix}{value}");
        let mut c = self.clone();
        match c.args.iter_mut().find(|a| a.starts_with(&prefix)) {
            Some(a) => *a = def,
            None => c.args.push(def),
        }
        c
    }

    /// The value of `-DKBUILD_MODNAME='"fat"'`, if present.
    pub fn modname(&self) -> Option<String> {
        self.args.iter().find_map(|a| {
            a.strip_prefix("-DKBUILD_MODNAME=")
                .map(|v| v.trim_matches('"').to_string())
        })
    }

    /// The arguments for libclang: the preprocessor and language flags of
    /// this command with relative paths made absolute, GCC-only and
    /// code-generation flags dropped, warnings off (`-w`).
    pub fn clang_args(&self) -> Vec<String> {
        let mut out = vec!["-x".to_string(), "c".to_string()];
        let mut i = 0;
        while i < self.args.len() {
            let a = &self.args[i];
            if PATH_OPTS.contains(&a.as_str()) {
                if let Some(v) = self.args.get(i + 1) {
                    out.push(a.clone());
                    out.push(self.absolute(v).display().to_string());
                }
                i += 2;
                continue;
            }
            if let Some(v) = a.strip_prefix("-I").filter(|v| !v.is_empty()) {
                out.push(format!("-I{}", self.absolute(v).display()));
            } else if a == "-D" || a == "-U" {
                if let Some(v) = self.args.get(i + 1) {
                    out.push(format!("{a}{v}"));
                }
                i += 2;
                continue;
            } else if a.starts_with("-D") || a.starts_with("-U") || keeps(a) {
                out.push(a.clone());
            }
            i += 1;
        }
        out.push("-w".to_string());
        out.push("-ferror-limit=0".to_string());
        out
    }
}

/// Removes `.` and `..` components without touching the file system.
pub fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAT: &str = "savedcmd_fs/fat/inode.o := gcc -Wp,-MMD,fs/fat/.inode.o.d -nostdinc \
        -I./arch/x86/include -I./include -include ./include/linux/kconfig.h -D__KERNEL__ \
        -fmacro-prefix-map=./= -std=gnu11 -funsigned-char -falign-jumps=1 -mskip-rax-setup \
        -mcmodel=kernel -Os -Wall -Werror=implicit-int -DMODULE \
        -DKBUILD_BASENAME='\"inode\"' -DKBUILD_MODNAME='\"fat\"' -D__KBUILD_MODNAME=kmod_fat \
        -c -o fs/fat/inode.o fs/fat/inode.c   ; ./tools/objtool/objtool --orc --module fs/fat/inode.o\n\
        \nsource_fs/fat/inode.o := fs/fat/inode.c\n";

    #[test]
    fn reads_the_dependency_list() {
        let text = format!(
            "{FAT}\ndeps_fs/fat/inode.o := \\\n    $(wildcard include/config/FAT_DEFAULT_UTF8) \\\n  \
             include/linux/kconfig.h \\\n  fs/fat/../fat/fat.h \\\n  /usr/include/x.h \\\n\n\
             fs/fat/inode.o: $(deps_fs/fat/inode.o)\n"
        );
        let c =
            parse_cmd_text(&text, Path::new("/k/fs/fat/.inode.o.cmd"), Path::new("/k")).unwrap();
        assert_eq!(
            c.deps,
            [
                PathBuf::from("/k/include/linux/kconfig.h"),
                PathBuf::from("/k/fs/fat/fat.h"),
                PathBuf::from("/usr/include/x.h"),
            ]
        );
        let moved = c.retarget(Path::new("/k/fs/fat"), Path::new("/old/fat"));
        assert_eq!(moved.deps[1], PathBuf::from("/old/fat/fat.h"));
        assert!(parse_cmd_text(FAT, Path::new("/k/x"), Path::new("/k"))
            .unwrap()
            .deps
            .is_empty());
    }

    #[test]
    fn reads_kbuild_commands() {
        let c = parse_cmd_text(FAT, Path::new("/k/fs/fat/.inode.o.cmd"), Path::new("/k")).unwrap();
        assert_eq!(c.compiler, "gcc");
        assert_eq!(c.source(), Some(PathBuf::from("/k/fs/fat/inode.c")));
        assert_eq!(c.modname().as_deref(), Some("fat"));
        assert!(!c.args.iter().any(|a| a.contains("objtool")));
        let args = c.clang_args();
        assert_eq!(
            args,
            [
                "-x",
                "c",
                "-nostdinc",
                "-I/k/arch/x86/include",
                "-I/k/include",
                "-include",
                "/k/include/linux/kconfig.h",
                "-D__KERNEL__",
                "-std=gnu11",
                "-funsigned-char",
                "-mcmodel=kernel",
                "-Os",
                "-DMODULE",
                "-DKBUILD_BASENAME=\"inode\"",
                "-DKBUILD_MODNAME=\"fat\"",
                "-D__KBUILD_MODNAME=kmod_fat",
                "-w",
                "-ferror-limit=0",
            ]
        );
    }

    #[test]
    fn retarget_moves_only_paths_of_the_module_dir() {
        let text = "savedcmd_/m/new/a.o := gcc -nostdinc -I./include -I/m/new/inc \
            -include /m/new/cfg.h -I /k/other -DKBUILD_BASENAME='\"a\"' \
            -c -o /m/new/a.o /m/new/a.c\n";
        let c = parse_cmd_text(text, Path::new("/m/new/.a.o.cmd"), Path::new("/k")).unwrap();
        let r = c
            .retarget(Path::new("/m/new"), Path::new("/t/old"))
            .with_define("KBUILD_BASENAME", "\"b\"");
        assert_eq!(
            r.args,
            [
                "-nostdinc",
                "-I./include",
                "-I/t/old/inc",
                "-include",
                "/t/old/cfg.h",
                "-I",
                "/k/other",
                "-DKBUILD_BASENAME=\"b\"",
                "-c",
                "-o",
                "/t/old/a.o",
                "/t/old/a.c",
            ]
        );
        assert_eq!(r.source(), Some(PathBuf::from("/t/old/a.c")));
    }

    #[test]
    fn shell_quoting() {
        let w = shell_words_first_command(r#"cc -DX='"a b"' "-DY=\"q\"" a\ b && rm x"#).unwrap();
        assert_eq!(w, vec!["cc", "-DX=\"a b\"", "-DY=\"q\"", "a b"]);
        assert!(shell_words_first_command("cc 'oops").is_err());
    }
}
