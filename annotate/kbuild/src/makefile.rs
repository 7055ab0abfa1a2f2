//! Just enough of make to read a module directory's Kbuild/Makefile: which
//! objects make which module.
//!
//! Handles assignments (`:=`, `=`, `+=`, `?=`), `$(VAR)` / `${VAR}`
//! references (including `obj-$(CONFIG_X)` and `<mod>-$(CONFIG_Y)` forms),
//! `ifeq`/`ifneq`/`ifdef`/`ifndef`/`else`/`endif`, line continuations and
//! comments, and a few functions (`addprefix`, `addsuffix`, `patsubst`,
//! `subst`, `filter`, `filter-out`, `if`, `strip`). Rules and recipes are
//! skipped. Anything it cannot evaluate is reported as a note, not guessed.

use std::collections::BTreeMap;

/// The file name of modswap's Kbuild fragment (`templates/kbuild/modswap.mk`),
/// which module Kbuild files include; it defines no objects, so reading a
/// Makefile skips it without a note.
pub const MODSWAP_FRAGMENT: &str = "modswap.mk";

/// The evaluated variables of one Makefile.
#[derive(Debug, Default, Clone)]
pub struct Evaluated {
    vars: BTreeMap<String, String>,
    /// Things the evaluator skipped (e.g. an unknown function), with line numbers.
    pub notes: Vec<(usize, String)>,
}

impl Evaluated {
    /// The words of a variable, expanded.
    pub fn words(&self, name: &str) -> Vec<String> {
        self.vars
            .get(name)
            .map(|v| v.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// Every variable whose name starts with `prefix`, with its words.
    pub fn with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, Vec<String>)> + 'a {
        self.vars
            .range(prefix.to_string()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(k, v)| {
                (
                    k.as_str(),
                    v.split_whitespace().map(str::to_string).collect(),
                )
            })
    }
}

/// Evaluates `text` with `env` as the initial variables (the kernel config:
/// `CONFIG_X` -> `y`/`m`/value, plus `KERNELRELEASE`, `src`, `obj`, ...).
pub fn evaluate(text: &str, env: &BTreeMap<String, String>) -> Evaluated {
    let mut ev = Evaluated {
        vars: env.clone(),
        notes: Vec::new(),
    };
    // Which conditional branches are active; an inactive outer branch
    // makes every inner one inactive.
    let mut conds: Vec<Cond> = Vec::new();
    for (lineno, line) in logical_lines(text) {
        let active = conds.iter().all(|c| c.active);
        // Recipe lines start with a tab.
        if line.starts_with('\t') {
            continue;
        }
        let line = strip_comment(&line);
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        let (word, rest) = split_first_word(trimmed);
        match word {
            "ifeq" | "ifneq" | "ifdef" | "ifndef" => {
                let taken = active && ev.condition(word, rest, lineno).unwrap_or(true);
                conds.push(Cond {
                    active: taken,
                    any_taken: taken,
                    outer_active: active,
                });
                continue;
            }
            "else" => {
                if let Some(c) = conds.last_mut() {
                    let (w2, rest2) = split_first_word(rest.trim());
                    // `else ifeq (...)` chains.
                    let taken = ev.condition(w2, rest2, lineno).unwrap_or(true);
                    let now = c.outer_active && !c.any_taken && taken;
                    c.active = now;
                    c.any_taken |= now;
                } else {
                    ev.notes
                        .push((lineno, "`else` without a conditional".into()));
                }
                continue;
            }
            "endif" => {
                if conds.pop().is_none() {
                    ev.notes
                        .push((lineno, "`endif` without a conditional".into()));
                }
                continue;
            }
            _ => {}
        }
        if !active {
            continue;
        }
        if matches!(word, "include" | "-include" | "sinclude") {
            // modswap's own Kbuild fragment defines no objects.
            if !rest.trim_end().ends_with(MODSWAP_FRAGMENT) {
                ev.notes.push((lineno, format!("skipped `{trimmed}`")));
            }
            continue;
        }
        if matches!(
            word,
            "export" | "unexport" | "override" | "define" | "endef"
        ) {
            continue;
        }
        ev.assign(trimmed, lineno);
        // Anything else (rules, bare words) says nothing about objects.
    }
    if !conds.is_empty() {
        ev.notes.push((0, "conditional without `endif`".into()));
    }
    ev
}

impl Evaluated {
    /// The test of a conditional directive (`ifeq`, `ifneq`, `ifdef`,
    /// `ifndef` and its arguments `rest`); `None` for another word.
    fn condition(&mut self, word: &str, rest: &str, lineno: usize) -> Option<bool> {
        match word {
            "ifeq" | "ifneq" => {
                let (a, b) = parse_ifeq_args(rest);
                let eq = self.expand(&a, lineno).trim() == self.expand(&b, lineno).trim();
                Some(eq == (word == "ifeq"))
            }
            "ifdef" | "ifndef" => {
                let name = self.expand(rest.trim(), lineno);
                let defined = self.vars.get(name.trim()).is_some_and(|v| !v.is_empty());
                Some(defined == (word == "ifdef"))
            }
            _ => None,
        }
    }

    /// A variable assignment (`=`, `:=`, `+=`, `?=`), if `line` is one.
    fn assign(&mut self, line: &str, lineno: usize) {
        let Some((name, op, value)) = split_assignment(line) else {
            return;
        };
        let name = self.expand(name.trim(), lineno).trim().to_string();
        if name.is_empty() {
            return;
        }
        let value = value.trim();
        match op {
            Op::Append => {
                let v = self.expand(value, lineno);
                let entry = self.vars.entry(name).or_default();
                if !entry.is_empty() && !v.is_empty() {
                    entry.push(' ');
                }
                entry.push_str(&v);
            }
            Op::Set => {
                let v = self.expand(value, lineno);
                self.vars.insert(name, v);
            }
            Op::SetIfUnset => {
                if !self.vars.contains_key(&name) {
                    let v = self.expand(value, lineno);
                    self.vars.insert(name, v);
                }
            }
        }
    }
}

struct Cond {
    active: bool,
    any_taken: bool,
    outer_active: bool,
}

enum Op {
    Set,
    Append,
    SetIfUnset,
}

/// Joins continuation lines; yields (1-based first line number, text).
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut start = 0;
    for (i, line) in text.lines().enumerate() {
        if cur.is_empty() {
            start = i + 1;
        }
        if let Some(stripped) = line.strip_suffix('\\') {
            cur.push_str(stripped);
            cur.push(' ');
            continue;
        }
        cur.push_str(line);
        out.push((start, std::mem::take(&mut cur)));
    }
    if !cur.is_empty() {
        out.push((start, cur));
    }
    out
}

fn strip_comment(line: &str) -> String {
    let mut out = String::new();
    let mut prev_backslash = false;
    for ch in line.chars() {
        if ch == '#' && !prev_backslash {
            break;
        }
        prev_backslash = ch == '\\';
        out.push(ch);
    }
    out
}

fn split_first_word(s: &str) -> (&str, &str) {
    match s.find(|c: char| c.is_whitespace() || c == '(') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

/// `(a,b)` or `"a" "b"` / `'a' 'b'`.
fn parse_ifeq_args(rest: &str) -> (String, String) {
    let r = rest.trim();
    if let Some(inner) = r.strip_prefix('(').and_then(|x| x.strip_suffix(')')) {
        // Split at the top-level comma.
        let mut depth = 0i32;
        for (i, c) in inner.char_indices() {
            match c {
                '(' | '{' => depth += 1,
                ')' | '}' => depth -= 1,
                ',' if depth == 0 => {
                    return (inner[..i].to_string(), inner[i + 1..].to_string());
                }
                _ => {}
            }
        }
        return (inner.to_string(), String::new());
    }
    let mut parts = Vec::new();
    let mut chars = r.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' || c == '\'' {
            let mut s = String::new();
            for d in chars.by_ref() {
                if d == c {
                    break;
                }
                s.push(d);
            }
            parts.push(s);
        }
    }
    let b = parts.get(1).cloned().unwrap_or_default();
    (parts.first().cloned().unwrap_or_default(), b)
}

/// Finds the assignment operator outside `$(...)`.
fn split_assignment(line: &str) -> Option<(&str, Op, &str)> {
    let bytes = line.as_bytes();
    let mut depth = 0i32;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'(' | b'{' => depth += 1,
            b')' | b'}' => depth -= 1,
            b':' if depth == 0 => {
                if bytes.get(i + 1) == Some(&b'=') {
                    return Some((&line[..i], Op::Set, &line[i + 2..]));
                }
                if bytes.get(i + 1..i + 3) == Some(b":=") {
                    return Some((&line[..i], Op::Set, &line[i + 3..]));
                }
                // A rule `target: deps`.
                return None;
            }
            b'+' if depth == 0 && bytes.get(i + 1) == Some(&b'=') => {
                return Some((&line[..i], Op::Append, &line[i + 2..]));
            }
            b'?' if depth == 0 && bytes.get(i + 1) == Some(&b'=') => {
                return Some((&line[..i], Op::SetIfUnset, &line[i + 2..]));
            }
            b'=' if depth == 0 => return Some((&line[..i], Op::Set, &line[i + 1..])),
            _ => {}
        }
        i += 1;
    }
    None
}

impl Evaluated {
    fn expand(&mut self, s: &str, lineno: usize) -> String {
        self.expand_depth(s, lineno, 0)
    }

    fn expand_depth(&mut self, s: &str, lineno: usize, depth: usize) -> String {
        if depth > 32 {
            self.notes
                .push((lineno, "variable expansion nests too deeply".into()));
            return String::new();
        }
        let mut out = String::new();
        let chars: Vec<char> = s.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c != '$' {
                out.push(c);
                i += 1;
                continue;
            }
            match chars.get(i + 1) {
                Some('$') => {
                    out.push('$');
                    i += 2;
                }
                Some(&open @ ('(' | '{')) => {
                    let close = if open == '(' { ')' } else { '}' };
                    let mut d = 1;
                    let mut j = i + 2;
                    while j < chars.len() {
                        if chars[j] == open {
                            d += 1;
                        } else if chars[j] == close {
                            d -= 1;
                            if d == 0 {
                                break;
                            }
                        }
                        j += 1;
                    }
                    let inner: String = chars[i + 2..j.min(chars.len())].iter().collect();
                    out.push_str(&self.reference(&inner, lineno, depth));
                    i = j + 1;
                }
                Some(&v) => {
                    let name = v.to_string();
                    let val = self.vars.get(&name).cloned().unwrap_or_default();
                    out.push_str(&self.expand_depth(&val, lineno, depth + 1));
                    i += 2;
                }
                None => {
                    i += 1;
                }
            }
        }
        out
    }

    fn reference(&mut self, inner: &str, lineno: usize, depth: usize) -> String {
        let (func, args) = match inner.find(char::is_whitespace) {
            Some(k) => (&inner[..k], inner[k..].trim_start()),
            None => (inner, ""),
        };
        let split_args = |ev: &mut Evaluated, n: usize| -> Vec<String> {
            let mut parts = Vec::new();
            let mut d = 0i32;
            let mut cur = String::new();
            for ch in args.chars() {
                match ch {
                    '(' | '{' => d += 1,
                    ')' | '}' => d -= 1,
                    ',' if d == 0 && parts.len() + 1 < n => {
                        parts.push(std::mem::take(&mut cur));
                        continue;
                    }
                    _ => {}
                }
                cur.push(ch);
            }
            parts.push(cur);
            parts
                .into_iter()
                .map(|p| ev.expand_depth(&p, lineno, depth + 1))
                .collect()
        };
        match func {
            "addprefix" | "addsuffix" if !args.is_empty() => {
                let a = split_args(self, 2);
                let (fix, list) = (a[0].trim(), a.get(1).map(String::as_str).unwrap_or(""));
                list.split_whitespace()
                    .map(|w| {
                        if func == "addprefix" {
                            format!("{fix}{w}")
                        } else {
                            format!("{w}{fix}")
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            }
            "patsubst" if !args.is_empty() => {
                let a = split_args(self, 3);
                let (pat, rep) = (a[0].trim(), a.get(1).map(|s| s.trim()).unwrap_or(""));
                let list = a.get(2).map(String::as_str).unwrap_or("");
                list.split_whitespace()
                    .map(|w| patsubst(pat, rep, w))
                    .collect::<Vec<_>>()
                    .join(" ")
            }
            "subst" if !args.is_empty() => {
                let a = split_args(self, 3);
                let text = a.get(2).map(String::as_str).unwrap_or("");
                if a[0].is_empty() {
                    text.to_string()
                } else {
                    text.replace(&a[0], a.get(1).map(String::as_str).unwrap_or(""))
                }
            }
            "filter" | "filter-out" if !args.is_empty() => {
                let a = split_args(self, 2);
                let pats: Vec<&str> = a[0].split_whitespace().collect();
                let keep = func == "filter";
                a.get(1)
                    .map(String::as_str)
                    .unwrap_or("")
                    .split_whitespace()
                    .filter(|w| pats.iter().any(|p| patsubst_match(p, w).is_some()) == keep)
                    .collect::<Vec<_>>()
                    .join(" ")
            }
            "if" if !args.is_empty() => {
                let a = split_args(self, 3);
                if !a[0].trim().is_empty() {
                    a.get(1).cloned().unwrap_or_default()
                } else {
                    a.get(2).cloned().unwrap_or_default()
                }
            }
            "strip" if !args.is_empty() => {
                let a = split_args(self, 1);
                a[0].split_whitespace().collect::<Vec<_>>().join(" ")
            }
            _ if !args.is_empty() => {
                self.notes.push((
                    lineno,
                    format!("make function `{func}` is not evaluated; treated as empty"),
                ));
                String::new()
            }
            _ => {
                // A variable reference, possibly with a computed name.
                let name = self.expand_depth(inner, lineno, depth + 1);
                let val = self.vars.get(name.trim()).cloned().unwrap_or_default();
                self.expand_depth(&val, lineno, depth + 1)
            }
        }
    }
}

fn patsubst_match<'a>(pat: &str, word: &'a str) -> Option<&'a str> {
    match pat.split_once('%') {
        Some((pre, suf)) => word
            .strip_prefix(pre)
            .and_then(|w| w.strip_suffix(suf))
            .filter(|_| word.len() >= pre.len() + suf.len()),
        None => (pat == word).then_some(""),
    }
}

fn patsubst(pat: &str, rep: &str, word: &str) -> String {
    match patsubst_match(pat, word) {
        Some(stem) if pat.contains('%') => rep.replacen('%', stem, 1),
        Some(_) => rep.to_string(),
        None => word.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn fat_makefile_shape() {
        let mk = "obj-$(CONFIG_FAT_FS) += fat.o\nobj-$(CONFIG_VFAT_FS) += vfat.o\n\
                  obj-$(CONFIG_MSDOS_FS) += msdos.o\n\
                  fat-y := cache.o dir.o \\\n   fatent.o\nvfat-y := namei_vfat.o\n\
                  obj-$(CONFIG_FAT_KUNIT_TEST) += fat_test.o # tests\n";
        let ev = evaluate(mk, &env(&[("CONFIG_FAT_FS", "m"), ("CONFIG_VFAT_FS", "m")]));
        assert_eq!(ev.words("obj-m"), vec!["fat.o", "vfat.o"]);
        assert_eq!(ev.words("obj-"), vec!["msdos.o", "fat_test.o"]);
        assert_eq!(ev.words("fat-y"), vec!["cache.o", "dir.o", "fatent.o"]);
    }

    #[test]
    fn conditionals_and_functions() {
        let mk = "ifneq ($(KERNELRELEASE),)\nobj-m := a.o\na-objs := $(addprefix sub/,x.o y.o)\n\
                  ifeq ($(CONFIG_B),y)\na-objs += b.o\nelse ifeq ($(CONFIG_C),y)\na-objs += c.o\n\
                  else\na-objs += d.o\nendif\nelse\nall:\n\t$(MAKE) -C x\nendif\n\
                  a-$(CONFIG_C) += $(patsubst %.c,%.o,e.c f.c)\n";
        let ev = evaluate(mk, &env(&[("KERNELRELEASE", "6.12"), ("CONFIG_C", "y")]));
        assert_eq!(ev.words("obj-m"), vec!["a.o"]);
        assert_eq!(ev.words("a-objs"), vec!["sub/x.o", "sub/y.o", "c.o"]);
        assert_eq!(ev.words("a-y"), vec!["e.o", "f.o"]);
        assert!(ev.notes.is_empty(), "{:?}", ev.notes);
    }

    #[test]
    fn unknown_functions_are_noted_not_guessed() {
        let ev = evaluate("obj-m += $(shell echo x.o)\n", &BTreeMap::new());
        assert!(ev.words("obj-m").is_empty());
        assert_eq!(ev.notes.len(), 1);
        assert!(ev.notes[0].1.contains("shell"));
    }

    #[test]
    fn the_modswap_fragment_is_skipped_quietly_other_includes_noted() {
        let mk = "obj-m := a.o\nMODSWAP ?= /opt/modswap\n\
                  include /opt/modswap-src/templates/kbuild/modswap.mk\n\
                  include $(src)/common.mk\n";
        let ev = evaluate(mk, &BTreeMap::new());
        assert_eq!(ev.words("obj-m"), vec!["a.o"]);
        assert_eq!(ev.notes.len(), 1, "{:?}", ev.notes);
        assert!(ev.notes[0].1.contains("common.mk"));
    }
}
