//! Folding header function bodies, as text: guessing the bodies in the
//! kernel's layout, checking a declarator's tail, and replacing a body's
//! two braces so that the compiler drops it.

/// Whether `gap`, between the end of a function declaration and a
/// guessed body, can only be the rest of that declaration: blanks,
/// comments, attribute macros that expand to nothing (`__releases(x)`).
/// Nothing that ends a declaration or starts another declarator: no `;`,
/// `{`, `}`, directive, fold, and no `,` or `=` outside parentheses.
pub(super) fn declarator_tail(gap: &[u8]) -> bool {
    let mut depth = 0i64;
    for &b in gap {
        match b {
            b';' | b'{' | b'}' | b'#' | b'$' => return false,
            b'(' => depth += 1,
            b')' => depth -= 1,
            b',' | b'=' if depth <= 0 => return false,
            _ => {}
        }
    }
    true
}

/// Function bodies guessed from a header's text in the kernel's layout:
/// `(start, end)` where the line before `start` ends in `)`, the line at
/// `start` is exactly `{`, and the first later line that is exactly `}`
/// ends at `end`; neither line of the head is a preprocessor directive or
/// part of one, and the braces between balance.
pub(super) fn guesses(text: &[u8]) -> Vec<(usize, usize)> {
    let mut lines: Vec<(usize, &[u8])> = Vec::new();
    let mut off = 0;
    for l in text.split(|&b| b == b'\n') {
        lines.push((off, l));
        off += l.len() + 1;
    }
    let trim = |l: &[u8]| -> usize {
        l.iter()
            .rposition(|b| !b" \t\r\x0b\x0c".contains(b))
            .map_or(0, |i| i + 1)
    };
    // Whether each line is ordinary C: not a directive, not continuing a
    // line that ends with a backslash.
    let mut plain = Vec::with_capacity(lines.len());
    let mut continued = false;
    for &(_, l) in &lines {
        let directive = l.iter().find(|b| !b" \t\x0c\x0b\r".contains(b)) == Some(&b'#');
        plain.push(!continued && !directive);
        continued = l[..trim(l)].ends_with(b"\\");
    }
    let mut out = Vec::new();
    let mut i = 1;
    while i < lines.len() {
        let (start, l) = lines[i];
        let prev = lines[i - 1].1;
        if !(plain[i]
            && plain[i - 1]
            && &l[..trim(l)] == b"{"
            && prev[..trim(prev)].ends_with(b")"))
        {
            i += 1;
            continue;
        }
        let Some(j) = (i + 1..lines.len()).find(|&j| &lines[j].1[..trim(lines[j].1)] == b"}")
        else {
            break;
        };
        let end = lines[j].0 + 1;
        let body = &text[start..end];
        if runs(&body[1..body.len() - 1]).is_some_and(|r| balanced(&r, b'{', b'}')) {
            out.push((start, end));
        }
        i = j + 1;
    }
    out
}

/// The command-line definitions that make a folded body go away. A body
/// `{ ... }` is folded into `$ ... )`: the same text with its braces
/// replaced. `$` expands to `;` (which ends the definition, now a
/// declaration) and the start of a call of `__msw_eat`, whose arguments
/// are the body's tokens up to the `)` that took the closing brace's
/// place. `__msw_eat` expands its arguments (so `__COUNTER__` and every
/// other macro in the body is expanded exactly as when the body is
/// compiled, and `__UNIQUE_ID` names stay the same) and hands them to
/// `__msw_none`, which drops them. Directives inside the body work as in
/// the body (clang processes them while it collects macro arguments). `$`
/// is an identifier character for GCC and clang; the kernel's C never
/// names anything `$` (only its assembly does). They are passed only to
/// parses that read folded headers.
pub(crate) const DEFINES: [&str; 3] = [
    "-D$=;__msw_eat(",
    "-D__msw_eat(...)=__msw_none(__VA_ARGS__)",
    "-D__msw_none(...)=",
];

/// `text` with each body range `{ ... }` folded into `$ ... )` (see
/// [`DEFINES`]): every other byte stays, so lines and columns do. A range
/// is folded only if it still starts with `{` and ends with `}` (the file
/// is the one that was parsed and a macro made neither brace), no
/// identifier character touches the `{` (it would merge with `$`), its
/// comments and literals end inside it, and its parentheses balance (the
/// `)` must close the call; a function body's tokens balance unless a
/// macro opens or closes one, which this refuses). Ranges must not
/// overlap; `folded` gets the ones folded. `None` when none is.
pub(super) fn fold(
    text: &[u8],
    bodies: &[(usize, usize)],
    folded: &mut Vec<(usize, usize)>,
) -> Option<Vec<u8>> {
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'$';
    let mut out = text.to_vec();
    let mut last_end = 0;
    let mut any = false;
    for &(s, e) in bodies {
        if s < last_end || e < s + 2 || e > text.len() {
            continue;
        }
        let body = &text[s..e];
        if body[0] != b'{' || body[body.len() - 1] != b'}' {
            continue;
        }
        // Nor through a backslash-newline.
        let spliced = body[1] == b'\\' || (s >= 2 && matches!(&text[s - 2..s], b"\\\n" | b"\\\r"));
        if ident(body[1]) || (s > 0 && ident(text[s - 1])) || spliced {
            continue;
        }
        if !runs(&body[1..body.len() - 1]).is_some_and(|r| balanced(&r, b'(', b')')) {
            continue;
        }
        out[s] = b'$';
        out[e - 1] = b')';
        last_end = e;
        any = true;
        folded.push((s, e));
    }
    any.then_some(out)
}

/// The body's text as runs of non-blank characters, comments dropped,
/// string and character literals kept whole. `None` on an unterminated
/// comment or literal.
pub(super) fn runs(body: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut start: Option<usize> = None;
    let is_blank = |b: u8| b" \t\n\r\x0b\x0c".contains(&b);
    while i < body.len() {
        let b = body[i];
        let comment = b == b'/' && matches!(body.get(i + 1), Some(b'/') | Some(b'*'));
        if is_blank(b) || comment {
            if let Some(st) = start.take() {
                out.push(&body[st..i]);
            }
            if comment && body[i + 1] == b'/' {
                while i < body.len() && body[i] != b'\n' {
                    i += 1;
                }
            } else if comment {
                let end = body[i + 2..].windows(2).position(|w| w == b"*/")?;
                i += 2 + end + 2;
            } else {
                i += 1;
            }
            continue;
        }
        start.get_or_insert(i);
        if b == b'"' || b == b'\'' {
            i += 1;
            loop {
                match body.get(i)? {
                    b'\\' => i += 2,
                    b'\n' => return None,
                    &c if c == b => break,
                    _ => i += 1,
                }
            }
        }
        i += 1;
    }
    if let Some(st) = start {
        out.push(&body[st..]);
    }
    Some(out)
}

/// Whether `open` and `close` pair up in `runs` (outside literals).
pub(super) fn balanced(runs: &[&[u8]], open: u8, close: u8) -> bool {
    let mut depth: i64 = 0;
    for r in runs {
        let mut in_lit: Option<u8> = None;
        let mut i = 0;
        while i < r.len() {
            let c = r[i];
            match in_lit {
                Some(_) if c == b'\\' => i += 1,
                Some(q) if c == q => in_lit = None,
                Some(_) => {}
                None if c == b'"' || c == b'\'' => in_lit = Some(c),
                None if c == open => depth += 1,
                None if c == close => {
                    depth -= 1;
                    if depth < 0 {
                        return false;
                    }
                }
                None => {}
            }
            i += 1;
        }
    }
    depth == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(text: &[u8]) -> (usize, usize) {
        let s = text.iter().position(|&b| b == b'{').unwrap();
        let e = text.iter().rposition(|&b| b == b'}').unwrap() + 1;
        (s, e)
    }

    fn fold_one(text: &[u8]) -> Option<String> {
        fold(text, &[range(text)], &mut Vec::new()).map(|o| String::from_utf8(o).unwrap())
    }

    #[test]
    fn folds_bodies_by_replacing_their_braces() {
        let text = "static inline int f(int x)\n{\n\treturn x;\n} int g;\n";
        assert_eq!(
            fold_one(text.as_bytes()).unwrap(),
            "static inline int f(int x)\n$\n\treturn x;\n) int g;\n"
        );
        // Directives, backslash-newlines and empty bodies stay as they are.
        let text = "void f(void)\n{\n#ifdef X\n\ta(1, \\\n 2);\n#endif\n}\nvoid g(void) {}\n";
        let mut folded = Vec::new();
        let (g, e) = (text.find("{}").unwrap(), text.find("}\nvoid").unwrap() + 1);
        let ranges = [(13, e), (g, g + 2)];
        let out = fold(text.as_bytes(), &ranges, &mut folded).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "void f(void)\n$\n#ifdef X\n\ta(1, \\\n 2);\n#endif\n)\nvoid g(void) $)\n"
        );
        assert_eq!(folded, ranges);
    }

    /// The folded text goes through the preprocessor as the definitions
    /// say: the bodies are gone, their directives and `__COUNTER__`s
    /// counted.
    #[test]
    fn the_definitions_drop_folded_bodies_and_count_their_counters() {
        let text = "int f(int x)\n{\n#ifdef X\n\treturn __COUNTER__ + (x);\n#endif\n\
            \treturn 0;\n}\nvoid g(void) {}\nint after = __COUNTER__;\n";
        let s = text.find('{').unwrap();
        let e = text.find("}\nvoid").unwrap() + 1;
        let g = text.find("{}").unwrap();
        let out = fold(text.as_bytes(), &[(s, e), (g, g + 2)], &mut Vec::new()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.c");
        std::fs::write(&file, &out).unwrap();
        for (define, counted) in [(None, 0), (Some("-DX"), 1)] {
            let mut args: Vec<String> = DEFINES.iter().map(|d| d.to_string()).collect();
            args.extend(define.map(String::from));
            let index = modswap_clang::Index::new().unwrap();
            let tu = index
                .parse(&file, &args, modswap_clang::ParseOptions::default())
                .unwrap();
            assert!(tu.diagnostics().iter().all(|d| !d.is_error()));
            let top = tu.cursor().children();
            let f = top.iter().find(|c| c.spelling() == "f").unwrap();
            assert!(!f.is_definition());
            let after = top.iter().find(|c| c.spelling() == "after").unwrap();
            let init = after.var_initializer().unwrap();
            assert!(
                matches!(init.evaluate(), Some(modswap_clang::EvalResult::Int(n)) if n == counted),
                "{define:?}"
            );
        }
    }

    #[test]
    fn guesses_bodies_in_the_kernel_layout() {
        let text = "static inline int f(int x,\n\t\t\tint y)\n{\n\tif (x) {\n\t\treturn y;\n\t}\n\treturn 0;\n}\n\
            #define M(x) \\\n\tg(x)\n{\n}\n\
            struct a { int b; };\n{\n}\n\
            int g(void)\n{\n\tif (x) {\n}\n\t}\n}\n\
            int h(void)\n{\n\t/* } */ k();\n}\n";
        let found: Vec<&str> = guesses(text.as_bytes())
            .into_iter()
            .map(|(s, e)| &text[s..e])
            .collect();
        // f's body (nested braces balance); not after a directive or its
        // continuation, not after `;`; g's braces do not balance up to the
        // first `}` line; a brace in a comment does not count.
        assert_eq!(
            found,
            [
                "{\n\tif (x) {\n\t\treturn y;\n\t}\n\treturn 0;\n}",
                "{\n\t/* } */ k();\n}",
            ]
        );
    }

    #[test]
    fn a_declarator_tail_holds_attributes_only() {
        assert!(declarator_tail(b"\n"));
        assert!(declarator_tail(b" /* note */\n\t__releases(&a->lock)\n"));
        assert!(declarator_tail(b" __attribute__((nonnull(1, 2)))\n"));
        for gap in [
            &b";\n"[..],
            b"\n$()\n",
            b", x = 1\n",
            b"\n#endif\n",
            b"}\n",
            b" = {\n",
        ] {
            assert!(!declarator_tail(gap), "{:?}", std::str::from_utf8(gap));
        }
    }

    #[test]
    fn keeps_literals_whole_and_refuses_what_it_cannot_fold() {
        // Braces and parentheses in literals and comments do not count.
        let text = b"void f(void)\n{\n\t\tputs(\"a } ( // b\"); c(')'); /* ( */\n}\n";
        let out = fold_one(text).unwrap();
        assert!(out.starts_with("void f(void)\n$\n\t\tputs("), "{out}");
        // Unbalanced parentheses (a macro would close them).
        assert!(fold_one(b"void f(void)\n{\n\t\t\tOPEN a);\n}\n").is_none());
        // Braces a macro made: the text there is not `{ ... }`.
        assert!(fold(b"void f(void) BODY\n", &[(13, 17)], &mut Vec::new()).is_none());
        // An unterminated comment.
        assert!(fold_one(b"void f(void)\n{\n\t\t\t/* a\n\n}\n").is_none());
        // `$` would merge with an identifier next to the brace.
        assert!(fold_one(b"void f(void) {a();}\n").is_none());
        assert!(fold_one(b"void f(void) \\\n{\n\ta();\n}\n").is_none());
    }
}
