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
    })
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
pub(crate) fn normalize(p: &Path) -> PathBuf {
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
    fn shell_quoting() {
        let w = shell_words_first_command(r#"cc -DX='"a b"' "-DY=\"q\"" a\ b && rm x"#).unwrap();
        assert_eq!(w, vec!["cc", "-DX=\"a b\"", "-DY=\"q\"", "a b"]);
        assert!(shell_words_first_command("cc 'oops").is_err());
    }
}
