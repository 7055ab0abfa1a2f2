//! What the kernel changes in an object it was given: list links, locks,
//! reference counts and other run-time state it keeps inside the object,
//! and the fields the module leaves zero for the kernel to fill in
//! (`file_system_type.next`, `nls_table.owner`, ...).

use modswap_ir::kernel::{STATE_RECORDS, STATE_TYPEDEFS};
use modswap_ir::{Init, Type, TypeId, TypeTable};

/// The first kernel-state member of type `t`, as `member: type` (or the
/// type itself), looking through nested records and arrays.
pub(crate) fn kernel_state(types: &TypeTable, t: TypeId) -> Option<String> {
    kernel_state_at(types, t, "", 0)
}

fn kernel_state_at(types: &TypeTable, t: TypeId, path: &str, depth: u32) -> Option<String> {
    if depth > 12 {
        return None;
    }
    match types.get(t) {
        Type::Typedef {
            name, underlying, ..
        } => {
            if STATE_TYPEDEFS.contains(&name.as_str()) {
                return Some(describe(path, name));
            }
            kernel_state_at(types, *underlying, path, depth + 1)
        }
        Type::Qualified { base, .. } => kernel_state_at(types, *base, path, depth + 1),
        Type::Array { elem, len } => {
            if *len == Some(0) {
                return None;
            }
            kernel_state_at(types, *elem, &format!("{path}[]"), depth + 1)
        }
        Type::Record {
            kind,
            tag,
            fields,
            size,
            ..
        } => {
            if *size == Some(0) {
                return None;
            }
            if let Some(tg) = tag {
                if STATE_RECORDS.contains(&tg.as_str()) {
                    return Some(describe(path, &format!("{} {tg}", kind.keyword())));
                }
            }
            for f in fields.as_deref().unwrap_or_default() {
                let p = match (path.is_empty(), f.name.is_empty()) {
                    (_, true) => path.to_string(),
                    (true, false) => f.name.clone(),
                    (false, false) => format!("{path}.{}", f.name),
                };
                if let Some(s) = kernel_state_at(types, f.ty, &p, depth + 1) {
                    return Some(s);
                }
            }
            None
        }
        _ => None,
    }
}

fn describe(path: &str, ty: &str) -> String {
    if path.is_empty() {
        ty.to_string()
    } else {
        format!("{path} ({ty})")
    }
}

/// The first data member that the initializer leaves zero (not a function
/// pointer, not const, not of size 0), e.g. `next`. `None` when every data
/// member is initialized. An object without initializer leaves everything
/// zero.
pub(crate) fn zero_member(types: &TypeTable, t: TypeId, init: Option<&Init>) -> Option<String> {
    zero_at(types, t, init, "", 0)
}

fn zero_at(
    types: &TypeTable,
    t: TypeId,
    init: Option<&Init>,
    path: &str,
    depth: u32,
) -> Option<String> {
    if depth > 12 {
        return None;
    }
    let here = || {
        if path.is_empty() {
            "the whole object".to_string()
        } else {
            path.to_string()
        }
    };
    match types.get(t) {
        Type::Typedef { underlying, .. } => zero_at(types, *underlying, init, path, depth + 1),
        Type::Qualified { base, is_const, .. } => {
            if *is_const {
                None
            } else {
                zero_at(types, *base, init, path, depth + 1)
            }
        }
        Type::Pointer { pointee } => {
            if matches!(types.get(types.resolve(*pointee)), Type::Function { .. }) {
                return None;
            }
            init.is_none().then(here)
        }
        Type::Int { .. } | Type::Float { .. } | Type::Bool | Type::Enum { .. } => {
            init.is_none().then(here)
        }
        Type::Array { elem, len } => {
            if *len == Some(0) {
                return None;
            }
            match init {
                None => {
                    // An array of function pointers left zero is not state.
                    zero_at(types, *elem, None, &format!("{path}[]"), depth + 1)
                }
                Some(Init::Array { elements }) => {
                    for e in elements {
                        if let Some(z) = zero_at(
                            types,
                            *elem,
                            Some(&e.value),
                            &format!("{path}[{}]", e.index),
                            depth + 1,
                        ) {
                            return Some(z);
                        }
                    }
                    // Elements after the last initialized one are zero.
                    let n = elements.len() as u64;
                    match len {
                        Some(l) if n < *l => {
                            zero_at(types, *elem, None, &format!("{path}[{n}]"), depth + 1)
                        }
                        _ => None,
                    }
                }
                Some(_) => None, // a string literal or another expression fills it
            }
        }
        Type::Record {
            kind, fields, size, ..
        } => {
            if *size == Some(0) {
                return None;
            }
            let fields = fields.as_deref()?;
            let inits = match init {
                Some(Init::Record { fields }) => Some(fields),
                Some(_) => return None, // a whole-record expression
                None => None,
            };
            if *kind == modswap_ir::RecordKind::Union && inits.is_some_and(|f| !f.is_empty()) {
                return None; // one member fills the union
            }
            for f in fields {
                if f.name.is_empty() && f.bit_width.is_some() {
                    continue; // unnamed bit-field padding
                }
                // Anonymous members are initialized through an entry with an
                // empty name (designators through them are merged there).
                let sub =
                    inits.and_then(|fs| fs.iter().find(|x| x.field == f.name).map(|x| &x.value));
                let p = match (path.is_empty(), f.name.is_empty()) {
                    (_, true) => path.to_string(),
                    (true, false) => f.name.clone(),
                    (false, false) => format!("{path}.{}", f.name),
                };
                if let Some(z) = zero_at(types, f.ty, sub, &p, depth + 1) {
                    return Some(z);
                }
            }
            None
        }
        _ => None,
    }
}
