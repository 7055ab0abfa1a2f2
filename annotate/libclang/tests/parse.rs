//! The wrappers against the real libclang.

use modswap_clang::{Index, Kind, ParseOptions, Severity, TypeKind, Visit};
use std::path::PathBuf;

fn write(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

const SRC: &str = r#"
struct ops { int (*open)(int); unsigned flags : 3; unsigned mode : 5; long pad; };
static int my_open(int x) { return x + 1; }
static struct ops the_ops = { .open = my_open, .flags = 1 };
int counter;
static int *take(void) { static int inner; counter += 2; inner = 1; return &inner; }
void reg(struct ops *o);
int init(void) { reg(&the_ops); counter = -counter; return 0; }
"#;

#[test]
fn globals_types_and_fields() {
    let (_d, path) = write("a.c", SRC);
    let index = Index::new().unwrap();
    let tu = index.parse(&path, &[], ParseOptions::default()).unwrap();
    assert!(tu
        .diagnostics()
        .iter()
        .all(|d| d.severity < Severity::Warning));
    let mut vars = Vec::new();
    tu.cursor().visit(|c, _| {
        if c.kind() == Kind::VarDecl && c.has_global_storage() {
            vars.push((
                c.spelling(),
                c.location().line,
                c.var_initializer().is_some(),
            ));
        }
        Visit::Recurse
    });
    vars.sort();
    assert_eq!(
        vars,
        vec![
            ("counter".to_string(), 5, false),
            ("inner".to_string(), 6, false),
            ("the_ops".to_string(), 4, true),
        ]
    );

    let ops = tu
        .cursor()
        .children()
        .into_iter()
        .find(|c| c.kind() == Kind::StructDecl)
        .unwrap();
    let ty = ops.ty();
    assert_eq!(ty.kind(), TypeKind::Record);
    assert_eq!(ty.size_of(), Some(24));
    let fields: Vec<_> = ty
        .fields()
        .iter()
        .map(|f| (f.spelling(), f.field_offset_bits(), f.bitfield_width()))
        .collect();
    assert_eq!(
        fields,
        vec![
            ("open".to_string(), Some(0), None),
            ("flags".to_string(), Some(64), Some(3)),
            ("mode".to_string(), Some(67), Some(5)),
            ("pad".to_string(), Some(128), None),
        ]
    );
}

#[test]
fn operators_come_from_tokens() {
    let (_d, path) = write("b.c", SRC);
    let index = Index::new().unwrap();
    let tu = index.parse(&path, &[], ParseOptions::default()).unwrap();
    let mut ops = Vec::new();
    tu.cursor().visit(|c, _| {
        if matches!(
            c.kind(),
            Kind::BinaryOperator | Kind::CompoundAssignOperator | Kind::UnaryOperator
        ) {
            ops.push((c.location().line, c.operator().unwrap_or_default()));
        }
        Visit::Recurse
    });
    ops.sort();
    assert_eq!(
        ops,
        vec![
            (3, "+".to_string()),
            (6, "&".to_string()),
            (6, "+=".to_string()),
            (6, "=".to_string()),
            (8, "&".to_string()),
            (8, "-".to_string()),
            (8, "=".to_string()),
        ]
    );
}

#[test]
fn errors_are_diagnostics_with_locations() {
    let (_d, path) = write("c.c", "int f(void) { return undeclared_thing; }\n");
    let index = Index::new().unwrap();
    let tu = index.parse(&path, &[], ParseOptions::default()).unwrap();
    let errs: Vec<_> = tu
        .diagnostics()
        .into_iter()
        .filter(|d| d.is_error())
        .collect();
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].location.line, 1);
    assert!(errs[0].message.contains("undeclared_thing"), "{}", errs[0]);
}

#[test]
fn threads_share_the_library() {
    let (_d, path) = write("d.c", SRC);
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || {
                let index = Index::new().unwrap();
                let tu = index.parse(&path, &[], ParseOptions::default()).unwrap();
                tu.cursor().children().len()
            })
        })
        .collect();
    let counts: Vec<usize> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(counts[0], counts[1]);
    assert!(counts[0] >= 7);
}

#[test]
fn operators_inside_macros() {
    let src =
        "struct m { int x; };\nstruct m the_m;\n#define THIS (&the_m)\n#define SET(a, b) a = b\n\
               struct m *get(void) { int y; SET(y, 3); y++; return THIS; }\n";
    let (_d, path) = write("e.c", src);
    let index = Index::new().unwrap();
    let tu = index.parse(&path, &[], ParseOptions::default()).unwrap();
    let mut ops = Vec::new();
    tu.cursor().visit(|c, _| {
        if matches!(c.kind(), Kind::BinaryOperator | Kind::UnaryOperator) {
            ops.push(c.operator().unwrap_or_default());
        }
        Visit::Recurse
    });
    ops.sort();
    assert_eq!(ops, ["&", "++", "="]);
}

#[test]
fn inclusions_list_every_file_read_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/b.h"), "#pragma once\nint b;\n").unwrap();
    std::fs::write(
        dir.path().join("a.h"),
        "#pragma once\n#include \"sub/b.h\"\nint a;\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("main.c"),
        "#include \"a.h\"\n#include \"sub/b.h\"\n#include \"a.h\"\nint m;\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("unused.h"), "int u;\n").unwrap();
    let index = Index::new().unwrap();
    let tu = index
        .parse(&dir.path().join("main.c"), &[], ParseOptions::default())
        .unwrap();
    let got: Vec<PathBuf> = tu
        .inclusions()
        .into_iter()
        .map(|p| std::fs::canonicalize(p).unwrap())
        .collect();
    let root = std::fs::canonicalize(dir.path()).unwrap();
    assert_eq!(
        got,
        vec![root.join("a.h"), root.join("main.c"), root.join("sub/b.h")]
    );
}

#[test]
fn skipped_ranges_cover_the_inactive_branches() {
    let (_d, path) = write(
        "s.c",
        "#if 0\nint a;\n#else\nint b;\n#endif\n#ifdef NOPE\nint c;\n#endif\nint d;\n",
    );
    let index = Index::new().unwrap();
    let opts = ParseOptions {
        detailed_preprocessing_record: true,
        skip_function_bodies: false,
    };
    let tu = index.parse(&path, &[], opts).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let skipped: Vec<&str> = tu
        .skipped_ranges()
        .iter()
        .map(|r| {
            assert_eq!(r.path(), path);
            &text[r.start as usize..r.end as usize]
        })
        .collect();
    assert_eq!(
        skipped,
        ["#if 0\nint a;\n#else", "#ifdef NOPE\nint c;\n#endif"]
    );
    // The end of a declaration's extent, by file identity.
    let d = tu
        .cursor()
        .children()
        .into_iter()
        .find(|c| c.spelling() == "d")
        .unwrap();
    let (file, end) = d.extent_end().unwrap();
    assert_eq!(file, d.file_id().unwrap());
    assert!(text[..end as usize].ends_with("\nint d"), "{end}");
}
