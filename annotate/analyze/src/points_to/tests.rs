//! The solver on hand-built IR: a small program per rule, solved, and the
//! escapes it finds (or not), with their evidence.

use super::*;
use crate::Limits;
use modswap_ir::{
    Arg, Body, Fact, Function, Global, GlobalRef, Linkage, Loc, Module, Program, Span, Type,
    TypeTable, Unit,
};

fn loc(line: u32) -> Loc {
    Loc {
        file: "m/m.c".into(),
        line,
        column: 1,
    }
}

/// A program of one module with one unit: the globals (all `int`, file
/// scope, internal linkage) and the function bodies given.
fn program(globals: &[&str], bodies: Vec<Body>) -> Program {
    let mut types = TypeTable::default();
    let int = types.intern(
        "int:int".into(),
        Type::Int {
            name: "int".into(),
            size: 4,
            signed: true,
        },
    );
    let globals = globals
        .iter()
        .enumerate()
        .map(|(i, n)| Global {
            name: n.to_string(),
            key: n.to_string(),
            function: None,
            linkage: Linkage::Internal,
            loc: loc(i as u32 + 1),
            span: Span::default(),
            ty: int,
            is_const: false,
            is_definition: true,
            section: None,
            macro_origin: None,
            size: Some(4),
            align: Some(4),
            init: None,
        })
        .collect();
    let functions = bodies
        .iter()
        .map(|b| Function {
            name: b.name.clone(),
            linkage: b.linkage,
            defined: true,
            loc: b.loc.clone(),
            in_module_dir: true,
        })
        .collect();
    Program {
        dir: "m".into(),
        modules: vec![Module {
            name: "m".into(),
            modname: "m".into(),
            units: vec![Unit {
                file: "m/m.c".into(),
                globals,
                functions,
                bodies,
            }],
        }],
        types,
    }
}

/// A body named `name` with `params` parameters (locals 0..params) and
/// these facts.
fn body(name: &str, linkage: Linkage, params: u32, facts: Vec<FactKind>) -> Body {
    Body {
        name: name.into(),
        linkage,
        loc: loc(10),
        params,
        locals: (0..params).map(|i| format!("p{i}")).collect(),
        facts: facts
            .into_iter()
            .enumerate()
            .map(|(i, kind)| Fact {
                loc: loc(20 + i as u32),
                text: format!("fact {i}"),
                kind,
            })
            .collect(),
    }
}

fn addr(g: &str) -> Val {
    Val::GlobalAddr {
        global: GlobalRef {
            name: g.into(),
            key: None,
        },
        path: String::new(),
    }
}

fn call(name: &str, args: Vec<Vec<Val>>) -> FactKind {
    FactKind::Call {
        callee: Callee::Direct { name: name.into() },
        args: args
            .into_iter()
            .map(|value| Arg {
                value,
                writable: true,
            })
            .collect(),
    }
}

/// The globals (by name) the solver finds escaping to the kernel.
fn escaping(p: &Program) -> Vec<String> {
    let ix = Index::new(p);
    let fl = Flows::solve(&ix, Limits::default()).expect("within budget");
    let mut out: Vec<String> = fl
        .escape_kernel
        .keys()
        .filter_map(|o| match o {
            Obj::Global(g, None) => Some(ix.global(*g).name.clone()),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

#[test]
fn an_address_passed_to_the_kernel_escapes_and_says_where() {
    let p = program(
        &["reg", "quiet"],
        vec![body(
            "init",
            Linkage::Internal,
            0,
            vec![call("register_thing", vec![vec![addr("reg")]])],
        )],
    );
    assert_eq!(escaping(&p), ["reg"]);
    let ix = Index::new(&p);
    let fl = Flows::solve(&ix, Limits::default()).unwrap();
    let o = Obj::Global(0, None);
    let chain = fl.chain(o, &fl.escape_kernel[&o]);
    assert!(
        chain.iter().any(|(file, line, text)| file == "m/m.c"
            && *line == 20
            && text.contains("register_thing")),
        "{chain:?}"
    );
}

#[test]
fn flows_through_a_helper_of_the_module_are_followed() {
    // helper(p) passes its parameter on to the kernel; helper2(p) keeps it.
    let to_kernel = body(
        "helper",
        Linkage::Internal,
        1,
        vec![call(
            "kernel_fn",
            vec![vec![Val::Load {
                place: Box::new(Place::Local { local: 0 }),
            }]],
        )],
    );
    let keeps = body("helper2", Linkage::Internal, 1, vec![]);
    let user = body(
        "init",
        Linkage::Internal,
        0,
        vec![
            call("helper", vec![vec![addr("a")]]),
            call("helper2", vec![vec![addr("b")]]),
        ],
    );
    let p = program(&["a", "b"], vec![to_kernel, keeps, user]);
    assert_eq!(escaping(&p), ["a"]);
}

#[test]
fn builtins_that_keep_no_pointer_are_not_an_escape() {
    let p = program(
        &["x"],
        vec![body(
            "f",
            Linkage::Internal,
            0,
            vec![call("__builtin_prefetch", vec![vec![addr("x")]])],
        )],
    );
    assert!(modswap_ir::kernel::BUILTIN_NO_ESCAPE.contains(&"__builtin_prefetch"));
    assert_eq!(escaping(&p), Vec::<String>::new());
}

#[test]
fn a_store_into_an_escaping_global_makes_the_value_escape() {
    // holder is handed to the kernel; &held is stored into it at run time.
    let p = program(
        &["holder", "held"],
        vec![body(
            "init",
            Linkage::Internal,
            0,
            vec![
                FactKind::Assign {
                    to: Place::Global {
                        global: GlobalRef {
                            name: "holder".into(),
                            key: None,
                        },
                        path: String::new(),
                    },
                    from: vec![addr("held")],
                    update: false,
                    writable: true,
                },
                call("register_thing", vec![vec![addr("holder")]]),
            ],
        )],
    );
    assert_eq!(escaping(&p), ["held", "holder"]);
}

#[test]
fn the_budget_stops_the_solver_cleanly() {
    let p = program(
        &["x"],
        vec![body(
            "f",
            Linkage::Internal,
            0,
            vec![call("kernel_fn", vec![vec![addr("x")]])],
        )],
    );
    let ix = Index::new(&p);
    let tight = Limits {
        widen_at: WIDEN_AT,
        budget: 0,
    };
    assert!(Flows::solve(&ix, tight).is_err());
}
