//! Initializers -> [`Init`], resolved against the declared type.
//!
//! libclang 14 shows the *syntactic* form of an initializer list: positional
//! entries are plain expressions, and a designated entry (`.a.b = x`,
//! `[3] = y`) is an unexposed expression whose children are the designators
//! (`MemberRef` for a member, an index expression for an element) followed by
//! the value. Positional entries continue after the last designated one, as
//! in C.

use super::Ctx;
use modswap_clang::{Cursor, EvalResult, Kind, TokenKind, Type as CType, TypeKind, Visit};
use modswap_ir::{ElementInit, Expr, FieldInit, Init, Ref};

/// One step of a designator.
enum Step {
    Field(String),
    Index(u64),
}

pub(crate) fn convert(ctx: &Ctx, value: Cursor<'_>, ty: CType<'_>) -> Init {
    let value = strip_implicit(value);
    if value.kind() != Kind::InitListExpr {
        return Init::Expr(expr(ctx, value));
    }
    let ty = peel(ty);
    match ty.kind() {
        TypeKind::Record => record(ctx, value, ty),
        TypeKind::ConstantArray | TypeKind::IncompleteArray => array(ctx, value, ty),
        _ => {
            // Braces around a scalar: `int x = { 3 };`.
            match value.children().into_iter().next() {
                Some(v) => convert(ctx, v, ty),
                None => Init::Expr(expr(ctx, value)),
            }
        }
    }
}

/// Looks through typedefs, `struct` keywords and attributes.
fn peel(mut t: CType<'_>) -> CType<'_> {
    loop {
        t = match t.kind() {
            TypeKind::Elaborated => t.named(),
            TypeKind::Typedef | TypeKind::Attributed => t.canonical(),
            _ => return t,
        }
    }
}

/// Skips the implicit-cast wrappers libclang exposes as unexposed expressions.
fn strip_implicit(c: Cursor<'_>) -> Cursor<'_> {
    let mut c = c;
    while c.kind() == Kind::UnexposedExpr && !is_designated(c) {
        let kids = c.children();
        if kids.len() != 1 {
            break;
        }
        c = kids[0];
    }
    c
}

fn is_designated(c: Cursor<'_>) -> bool {
    if c.kind() != Kind::UnexposedExpr {
        return false;
    }
    let toks = c.tokens();
    matches!(toks.first(), Some(t) if t.kind == TokenKind::Punctuation && (t.spelling == "." || t.spelling == "["))
        && c.children().len() >= 2
}

/// Splits a designated entry into its steps and its value.
fn designation<'tu>(c: Cursor<'tu>) -> (Vec<Step>, Cursor<'tu>) {
    let kids = c.children();
    let (value, designators) = kids.split_last().expect("designated entry has a value");
    let mut steps = Vec::new();
    for d in designators {
        if d.kind() == Kind::MemberRef {
            steps.push(Step::Field(d.spelling()));
        } else {
            let idx = match d.evaluate() {
                Some(EvalResult::Int(i)) => u64::try_from(i).unwrap_or(0),
                Some(EvalResult::Unsigned(u)) => u,
                _ => 0,
            };
            steps.push(Step::Index(idx));
        }
    }
    (steps, *value)
}

/// Named members of a record in order; anonymous members included with an
/// empty name.
fn members<'tu>(ty: CType<'tu>) -> Vec<(String, CType<'tu>)> {
    ty.canonical()
        .fields()
        .into_iter()
        .map(|f| {
            let name = if f.is_anonymous_record_decl() || f.spelling().is_empty() {
                String::new()
            } else {
                f.spelling()
            };
            (name, f.ty())
        })
        .collect()
}

/// The path to member `name`, looking into anonymous members: indices into
/// successive member lists.
fn find_member(ty: CType<'_>, name: &str) -> Option<Vec<usize>> {
    for (i, (n, fty)) in members(ty).iter().enumerate() {
        if n == name {
            return Some(vec![i]);
        }
        if n.is_empty() {
            if let Some(mut rest) = find_member(peel(*fty), name) {
                rest.insert(0, i);
                return Some(rest);
            }
        }
    }
    None
}

fn record(ctx: &Ctx, list: Cursor<'_>, ty: CType<'_>) -> Init {
    let mems = members(ty);
    let mut out: Vec<FieldInit> = Vec::new();
    let mut next = 0usize;
    let is_union = ty
        .declaration()
        .is_some_and(|d| d.kind() == Kind::UnionDecl);
    for entry in list.children() {
        if is_designated(entry) {
            let (steps, value) = designation(entry);
            let Some(Step::Field(first)) = steps.first() else {
                continue;
            };
            let Some(path) = find_member(ty, first) else {
                continue;
            };
            next = path[0] + 1;
            let init = nested(ctx, ty, &path, &steps[1..], value);
            push_field(&mut out, init);
        } else {
            if next >= mems.len() || (is_union && next > 0) {
                continue;
            }
            let (name, fty) = &mems[next];
            next += 1;
            push_field(
                &mut out,
                FieldInit {
                    field: name.clone(),
                    value: convert(ctx, entry, *fty),
                },
            );
        }
    }
    Init::Record { fields: out }
}

/// Builds the FieldInit for a designator path: `path` indexes members
/// (through anonymous ones) for the first step; `rest` are further steps.
fn nested(ctx: &Ctx, ty: CType<'_>, path: &[usize], rest: &[Step], value: Cursor<'_>) -> FieldInit {
    let mems = members(ty);
    let (name, fty) = &mems[path[0]];
    let inner = if path.len() > 1 {
        Init::Record {
            fields: vec![nested(ctx, peel(*fty), &path[1..], rest, value)],
        }
    } else {
        designated_value(ctx, *fty, rest, value)
    };
    FieldInit {
        field: name.clone(),
        value: inner,
    }
}

fn designated_value(ctx: &Ctx, ty: CType<'_>, rest: &[Step], value: Cursor<'_>) -> Init {
    match rest.first() {
        None => convert(ctx, value, ty),
        Some(Step::Field(f)) => {
            let t = peel(ty);
            match find_member(t, f) {
                Some(path) => Init::Record {
                    fields: vec![nested(ctx, t, &path, &rest[1..], value)],
                },
                None => convert(ctx, value, ty),
            }
        }
        Some(Step::Index(i)) => {
            let t = peel(ty);
            let elem = t.element().unwrap_or(t);
            Init::Array {
                elements: vec![ElementInit {
                    index: *i,
                    value: designated_value(ctx, elem, &rest[1..], value),
                }],
            }
        }
    }
}

/// Appends, merging `.a.b = 1, .a.c = 2` into one entry for `a`.
fn push_field(out: &mut Vec<FieldInit>, f: FieldInit) {
    if let Some(last) = out.iter_mut().rev().find(|x| x.field == f.field) {
        match (&mut last.value, f.value) {
            (Init::Record { fields: a }, Init::Record { fields: b }) => {
                for x in b {
                    push_field(a, x);
                }
                return;
            }
            (Init::Array { elements: a }, Init::Array { elements: b }) => {
                a.extend(b);
                a.sort_by_key(|e| e.index);
                return;
            }
            (slot, v) => {
                *slot = v;
                return;
            }
        }
    }
    out.push(f);
}

fn array(ctx: &Ctx, list: Cursor<'_>, ty: CType<'_>) -> Init {
    let elem = ty.element().unwrap_or(ty);
    let mut out: Vec<ElementInit> = Vec::new();
    let mut next = 0u64;
    for entry in list.children() {
        if is_designated(entry) {
            let (steps, value) = designation(entry);
            let Some(Step::Index(i)) = steps.first() else {
                continue;
            };
            next = i + 1;
            out.push(ElementInit {
                index: *i,
                value: designated_value(ctx, elem, &steps[1..], value),
            });
        } else {
            out.push(ElementInit {
                index: next,
                value: convert(ctx, entry, elem),
            });
            next += 1;
        }
    }
    out.sort_by_key(|e| e.index);
    Init::Array { elements: out }
}

/// An expression: its text as written, what it names, whether it holds a
/// string literal, and its constant value.
pub(crate) fn expr(ctx: &Ctx, c: Cursor<'_>) -> Expr {
    let extent = c.extent();
    let text = ctx
        .text(&extent)
        .filter(|t| balanced(t))
        .or_else(|| {
            // Part of a macro expansion: quote the line instead.
            ctx.line_text(&ctx.loc(&c.location()))
        })
        .unwrap_or_else(|| {
            c.tokens()
                .iter()
                .map(|t| t.spelling.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        });
    let mut refs = Vec::new();
    collect_refs(c, false, &mut refs);
    let mut has_string_literal = c.kind() == Kind::StringLiteral;
    c.visit(|k, _| {
        if k.kind() == Kind::StringLiteral {
            has_string_literal = true;
            return Visit::Break;
        }
        Visit::Recurse
    });
    let constant = match c.evaluate() {
        Some(EvalResult::Int(i)) => Some(i128::from(i)),
        Some(EvalResult::Unsigned(u)) => Some(i128::from(u)),
        _ => None,
    };
    Expr {
        text,
        loc: ctx.loc(&c.location()),
        refs,
        has_string_literal,
        constant,
    }
}

/// Collects declarations named under `c`. `addr`: the value's address is
/// what is used (under `&`, member/element access of an addressed object).
pub(crate) fn collect_refs(c: Cursor<'_>, addr: bool, out: &mut Vec<Ref>) {
    match c.kind() {
        Kind::DeclRefExpr => {
            if let Some(d) = c.referenced() {
                match d.kind() {
                    Kind::FunctionDecl => out.push(Ref::Function { name: d.spelling() }),
                    Kind::VarDecl if d.has_global_storage() => {
                        let decays = matches!(
                            peel(d.ty()).kind(),
                            TypeKind::ConstantArray | TypeKind::IncompleteArray
                        );
                        out.push(Ref::Global {
                            name: d.spelling(),
                            address: addr || decays,
                        })
                    }
                    _ => {}
                }
            }
        }
        Kind::UnaryOperator => {
            let op = c.operator();
            let a = op.as_deref() == Some("&");
            for k in c.children() {
                collect_refs(k, a, out);
            }
        }
        Kind::MemberRefExpr | Kind::ArraySubscriptExpr | Kind::ParenExpr => {
            let kids = c.children();
            for (i, k) in kids.iter().enumerate() {
                // The index of `a[i]` is a value, not an address.
                let keep = addr && !(c.kind() == Kind::ArraySubscriptExpr && i == 1);
                collect_refs(*k, keep, out);
            }
        }
        Kind::UnaryExpr => {
            // sizeof / alignof / __builtin_offsetof: nothing is used at run time.
        }
        Kind::UnexposedExpr | Kind::CStyleCastExpr => {
            for k in c.children() {
                collect_refs(k, addr, out);
            }
        }
        _ => {
            for k in c.children() {
                collect_refs(k, false, out);
            }
        }
    }
}

/// Are the brackets of `t` balanced (a whole expression, not a piece of a
/// macro invocation)?
fn balanced(t: &str) -> bool {
    let mut depth = 0i32;
    for ch in t.chars() {
        match ch {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => {}
        }
    }
    depth == 0 && !t.is_empty()
}
