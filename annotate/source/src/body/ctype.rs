//! Small helpers over libclang types and cursors, and over value lists,
//! for the body reader.

use modswap_clang::{Cursor, Kind, Type as CType, TypeKind};
use modswap_ir::{Place, Val};

pub(super) fn unknown_place() -> Place {
    Place::Deref {
        pointer: Vec::new(),
        path: String::new(),
        target: None,
        member_of: None,
    }
}

pub(super) fn join(path: &str, part: &str) -> String {
    if path.is_empty() {
        part.to_string()
    } else if part.starts_with('[') {
        format!("{path}{part}")
    } else {
        format!("{path}.{part}")
    }
}

/// `&(x.f)` from the address of `x`: global addresses get `.f` on their path.
pub(super) fn extend_paths(vals: Vec<Val>, part: &str) -> Vec<Val> {
    vals.into_iter()
        .map(|v| match v {
            Val::GlobalAddr { global, path } => Val::GlobalAddr {
                global,
                path: join(&path, part),
            },
            other => other,
        })
        .collect()
}

pub(super) fn dedup(mut v: Vec<Val>) -> Vec<Val> {
    let mut out: Vec<Val> = Vec::with_capacity(v.len());
    for x in v.drain(..) {
        if !out.contains(&x) {
            out.push(x);
        }
    }
    out
}

/// Looks through parentheses and implicit conversions.
pub(super) fn strip(mut c: Cursor<'_>) -> Cursor<'_> {
    loop {
        match c.kind() {
            Kind::ParenExpr | Kind::UnexposedExpr => {
                let kids = c.children();
                if kids.len() != 1 || !kids[0].is_expression() {
                    return c;
                }
                c = kids[0];
            }
            _ => return c,
        }
    }
}

pub(super) fn strip_parens(mut c: Cursor<'_>) -> Cursor<'_> {
    while c.kind() == Kind::ParenExpr {
        match c.children().first() {
            Some(k) => c = *k,
            None => break,
        }
    }
    c
}

pub(super) fn unqualified(s: &str) -> String {
    s.split_whitespace()
        .filter(|w| !matches!(*w, "const" | "volatile" | "restrict"))
        .collect::<Vec<_>>()
        .join(" ")
}

pub(super) fn is_array(t: CType<'_>) -> bool {
    matches!(
        t.canonical().kind(),
        TypeKind::ConstantArray | TypeKind::IncompleteArray | TypeKind::VariableArray
    )
}

pub(super) fn is_pointer(t: CType<'_>) -> bool {
    t.canonical().kind() == TypeKind::Pointer
}

pub(super) fn is_function(t: CType<'_>) -> bool {
    matches!(
        t.canonical().kind(),
        TypeKind::FunctionProto | TypeKind::FunctionNoProto
    )
}

/// Does the function declaration carry a printf format attribute
/// (`__printf(a, b)`, `__attribute__((format(printf, a, b)))`)?
pub(super) fn printf_like(d: Cursor<'_>) -> bool {
    // The attribute's tokens span two files when it comes from a macro, so
    // read it from clang's printed declaration.
    modswap_ir::kernel::printf_like(&d.pretty_printed())
}

/// A pointer to non-const data (`void *` included).
pub(super) fn writable_pointer(t: CType<'_>) -> bool {
    let t = t.canonical();
    if t.kind() != TypeKind::Pointer {
        return false;
    }
    match t.pointee() {
        Some(p) => !p.is_const() && !is_function(p),
        None => true,
    }
}
