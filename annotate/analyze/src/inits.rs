//! Initializers, flattened: every expression of a global's initializer
//! with its member path and type, and the references it makes.

use modswap_ir::{Expr, Init, Ref, Type, TypeId, TypeTable};

pub(crate) fn collect_refs<'a>(i: &'a Init, out: &mut Vec<&'a Ref>) {
    match i {
        Init::Record { fields } => fields.iter().for_each(|x| collect_refs(&x.value, out)),
        Init::Array { elements } => elements.iter().for_each(|x| collect_refs(&x.value, out)),
        Init::Expr(e) => out.extend(e.refs.iter()),
    }
}

/// One expression of an initializer, with its member path and type.
pub(crate) struct InitItem<'a> {
    /// `name`, `ops.open`, `[3]`, `[3].procname` (anonymous members skipped).
    pub path: String,
    pub expr: &'a Expr,
    /// The member's type, when known.
    pub ty: Option<TypeId>,
    /// The member is a pointer to non-const data.
    pub writable: bool,
}

/// Flattens an initializer into its expressions.
pub(crate) fn init_items<'a>(
    types: &TypeTable,
    ty: Option<TypeId>,
    init: &'a Init,
    path: String,
    out: &mut Vec<InitItem<'a>>,
) {
    match init {
        Init::Expr(e) => {
            let writable = ty.is_some_and(|t| types.is_writable_pointer(t));
            out.push(InitItem {
                path,
                expr: e,
                ty,
                writable,
            });
        }
        Init::Record { fields } => {
            for fi in fields {
                let fty = ty.and_then(|t| types.find_field(t, &fi.field));
                let p = if fi.field.is_empty() {
                    path.clone()
                } else if path.is_empty() {
                    fi.field.clone()
                } else {
                    format!("{path}.{}", fi.field)
                };
                // An anonymous member keeps the record type: its members
                // are found by name through it.
                let next = if fi.field.is_empty() { ty } else { fty };
                init_items(types, next, &fi.value, p, out);
            }
        }
        Init::Array { elements } => {
            let elem = ty.and_then(|t| match types.get(types.resolve(t)) {
                Type::Array { elem, .. } => Some(*elem),
                _ => None,
            });
            for e in elements {
                init_items(types, elem, &e.value, format!("{path}[{}]", e.index), out);
            }
        }
    }
}
