//! `modswap handler` on fixture pairs (old/new C files built with Kbuild):
//! snapshots of the generated handler, then the quality gates: with its
//! TODOs filled in, the new version including the handler builds with the
//! kernel's flags and -Werror, and checkpatch reports no errors.

#[path = "support/handler.rs"]
mod support;

use support::*;

/// Generates, snapshots, fills in, builds and checkpatches fixture `case`.
fn check(case: &str) {
    let fx = fixture(case);
    let w = generate(&fx, false).unwrap_or_else(|e| panic!("{case}: {e}"));
    insta::assert_snapshot!(format!("{case}_modswap.c"), w.text);

    // Unfilled TODOs refuse to compile.
    let plan = plan_of(&fx).unwrap();
    let handler = w.path.file_name().unwrap().to_str().unwrap().to_string();
    let multi = plan.units.len() > 1;
    for u in &plan.units {
        let m = multi.then(|| format!("MODSWAP_UNIT_{}", u.stem));
        include_handler(&fx.new.join(&u.file), &handler, m.as_deref());
    }
    if !plan.todos.is_empty() {
        let err = make(&fx.new).expect_err("unfilled TODOs must not compile");
        assert!(err.contains("TODO(modswap)"), "{err}");
    }

    // Filled in, it compiles with -Werror and checkpatch finds no error.
    let fills = fills(case);
    for t in &plan.todos {
        assert!(fills.contains_key(&t.id), "{case}: fill.txt lacks {}", t.id);
    }
    std::fs::write(&w.path, fill(&w.text, &fills)).unwrap();
    if let Err(e) = make(&fx.new) {
        panic!("{case}: the filled-in handler does not build:\n{e}");
    }
    let (errors, report) = checkpatch(&w.path);
    assert_eq!(errors, 0, "{case}: checkpatch:\n{report}");
}

#[test]
fn members_added_removed_reordered() {
    check("members");
}

#[test]
fn unchanged_globals_added_and_removed() {
    check("unchanged");
}

#[test]
fn nested_struct_changes() {
    check("nested");
}

#[test]
fn arrays_unions_typedefs_bitfields() {
    check("kinds");
}

#[test]
fn function_scope_statics() {
    check("function_statics");
}

#[test]
fn static_old_object_with_code_pointers() {
    check("static_old_code");
}

#[test]
fn static_old_object_whose_size_changed_is_an_error() {
    let fx = fixture("static_old_resized");
    let err = generate(&fx, false).expect_err("a resized static_old object cannot be swapped");
    assert!(matches!(err, modswap_codegen::Error::Plan { .. }));
    insta::assert_snapshot!("static_old_resized_error", redact(&fx, &err.to_string()));
    assert!(
        !fx.new.join("resized_modswap.c").exists(),
        "nothing is written on error"
    );
}

#[test]
fn state_in_several_units() {
    check("multi_unit");
}

/// The documented way to carry a function-scope static over: the new
/// version moves it to file scope, and the reviewer binds the old one,
/// `calls.<N>` in the old .ko (found as `modswap inspect` shows it: the
/// `calls.*` object referenced from tick()), with an asm label in the
/// `decls:` region. The loader and `modswap verify` resolve `_old_` + any
/// symbol name.
#[test]
fn function_static_moved_to_file_scope_is_bound_by_asm_label() {
    use modswap_elf::Object;
    let mut fx = fixture("function_statics");
    // tick.calls is gone from this new version: no class expectations.
    fx.case = "function_statics (moved)".into();
    let src = fx.new.join("fstatics.c");
    let text = std::fs::read_to_string(&src).unwrap().replace(
        "static noinline int tick(void)\n{\n\tstatic int calls;\n\n\treturn ++calls;\n}",
        "static int tick_calls;\n\nstatic noinline int tick(void)\n{\n\treturn ++tick_calls;\n}",
    );
    assert!(text.contains("tick_calls"));
    std::fs::write(&src, text).unwrap();
    make(&fx.new).unwrap();
    make(&fx.old).unwrap();
    let old = Object::read(&fx.old.join("fstatics.ko")).unwrap();
    let sym = old
        .data
        .iter()
        .find(|d| {
            d.name.starts_with("calls.")
                && d.references
                    .iter()
                    .any(|r| r.within.as_deref() == Some("tick"))
        })
        .expect("tick's counter in the old .ko")
        .name
        .clone();

    let w = generate(&fx, false).unwrap();
    assert!(
        w.text.contains(" *\ttick.calls (old fstatics.c:"),
        "listed as removed"
    );
    assert!(!w.text.contains("reach:tick.calls"));
    let mut f = fills("function_statics");
    f.insert(
        "decls:fstatics".into(),
        vec![format!(
            "extern int _old_tick_calls __asm__(\"_old_{sym}\") __modswap_old;"
        )],
    );
    f.insert(
        "extra:fstatics".into(),
        vec!["\ttick_calls = _old_tick_calls;".into()],
    );
    std::fs::write(&w.path, fill(&w.text, &f)).unwrap();
    include_handler(&src, "fstatics_modswap.c", None);
    make(&fx.new).unwrap_or_else(|e| panic!("{e}"));
    let (errors, report) = checkpatch(&w.path);
    assert_eq!(errors, 0, "{report}");
    let new = Object::read(&fx.new.join("fstatics.ko")).unwrap();
    assert!(new.imports.iter().any(|i| i.name == format!("_old_{sym}")));
    let problems = modswap_elf::verify::verify(&old, &new);
    assert!(problems.is_empty(), "{problems:?}");
}
