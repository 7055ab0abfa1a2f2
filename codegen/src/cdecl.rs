//! C declarations of the old version's types, for the new version's
//! translation unit.
//!
//! A type the new version still has unchanged is written by its name
//! (`struct sub`, `u32`, a typedef): the new definition stands for it. A
//! record whose layout changed gets a renamed copy of its old definition
//! (`struct old_struct_a`, paper Fig. 2), recursively for records it holds by
//! value; anonymous records are written inline. Records reached only
//! through pointers are just named (forward-declared when the new version
//! lacks them). Every renamed copy comes with `static_assert`s of its size
//! and member offsets as the old version's compiler laid them out, so a
//! copy that does not reproduce the old layout (e.g. a member attribute
//! the IR does not record) fails the build instead of corrupting state.

use crate::types::{align_of, members, size_of, Types};
use modswap_ir::cdecl::{Base, Spell};
use modswap_ir::{RecordKind, Type, TypeId, TypeTable};
use std::collections::{BTreeMap, BTreeSet};

/// A renamed copy of an old record definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Def {
    /// `struct old_struct_a`.
    pub name: String,
    /// The definition, ending with `;`, tab-indented, no trailing newline.
    pub text: String,
    /// `static_assert(...)` lines checking its layout.
    pub asserts: Vec<String>,
}

/// Writes declarations with the old version's types.
pub struct OldDecls<'t, 'a> {
    types: &'t Types<'a>,
    names: BTreeMap<TypeId, String>,
    used: BTreeSet<String>,
    /// Renamed definitions, each after the ones it needs.
    pub defs: Vec<Def>,
    /// `struct foo` tags named behind pointers that the new version lacks.
    pub forward: BTreeSet<String>,
}

/// How the old version's base types are spelled in a declarator: a
/// typedef by name when the new version has it the same, qualifiers kept,
/// records by [`OldDecls::leaf`].
struct OldSpell<'d, 't, 'a> {
    decls: &'d mut OldDecls<'t, 'a>,
    quals: String,
    /// The name a renamed anonymous record is called after.
    hint: Option<String>,
    indent: usize,
}

impl Spell for OldSpell<'_, '_, '_> {
    fn base(&mut self, t: &TypeTable, id: TypeId, ptr: bool) -> Base {
        match t.get(id) {
            Type::Qualified {
                base,
                is_const,
                is_volatile,
            } => {
                if *is_const && !self.quals.contains("const ") {
                    self.quals.push_str("const ");
                }
                if *is_volatile && !self.quals.contains("volatile ") {
                    self.quals.push_str("volatile ");
                }
                Base::Through(*base)
            }
            Type::Typedef {
                name: tn,
                underlying,
                ..
            } => {
                let usable = if ptr {
                    self.decls.types.typedef_exists(tn)
                } else {
                    self.decls.types.typedef_reusable(tn, id)
                };
                if usable {
                    return Base::Done(format!("{}{tn}", self.quals));
                }
                if self.hint.is_none() || !ptr {
                    self.hint = Some(tn.clone());
                }
                Base::Through(*underlying)
            }
            _ => {
                let leaf = self.decls.leaf(id, ptr, self.hint.as_deref(), self.indent);
                Base::Done(format!("{}{leaf}", self.quals))
            }
        }
    }

    fn param(&mut self, _: &TypeTable, id: TypeId) -> String {
        self.decls.declare_in(id, "", true, None, self.indent)
    }
}

fn align_up(v: u64, a: u64) -> u64 {
    if a <= 1 {
        v
    } else {
        v.div_ceil(a) * a
    }
}

impl<'t, 'a> OldDecls<'t, 'a> {
    pub fn new(types: &'t Types<'a>) -> Self {
        OldDecls {
            types,
            names: BTreeMap::new(),
            used: BTreeSet::new(),
            defs: Vec::new(),
            forward: BTreeSet::new(),
        }
    }

    /// The declaration of an object of old type `ty` named `name`, e.g.
    /// `struct old_struct_a _old_a` or `u32 _old_n[4]`. `hint` names a
    /// renamed copy of an anonymous record (`old_<hint>`).
    pub fn declare(&mut self, ty: TypeId, name: &str, hint: &str) -> String {
        self.declare_in(ty, name, false, Some(hint), 0)
    }

    /// The spelling of old type `ty` (for casts and messages).
    pub fn spell(&mut self, ty: TypeId) -> String {
        self.declare_in(ty, "", false, None, 0)
    }

    fn declare_in(
        &mut self,
        id: TypeId,
        name: &str,
        behind_ptr: bool,
        hint: Option<&str>,
        indent: usize,
    ) -> String {
        let t = self.types.old;
        let mut spell = OldSpell {
            decls: self,
            quals: String::new(),
            hint: hint.map(str::to_string),
            indent,
        };
        t.declarator(id, name, behind_ptr, &mut spell)
    }

    fn leaf(&mut self, id: TypeId, ptr: bool, hint: Option<&str>, indent: usize) -> String {
        let t = self.types.old;
        match t.get(id) {
            Type::Record { kind, tag, .. } => {
                let kw = kind.keyword();
                if ptr {
                    return match tag {
                        Some(tag) => {
                            if !self.types.new_has_record(*kind == RecordKind::Union, tag) {
                                self.forward.insert(format!("{kw} {tag}"));
                            }
                            format!("{kw} {tag}")
                        }
                        // A pointer to an anonymous record: the address is
                        // what matters.
                        None => "void".into(),
                    };
                }
                if self.types.record_reusable(id) {
                    return format!("{kw} {}", tag.as_deref().unwrap_or_default());
                }
                match (tag, hint) {
                    (None, None) => {
                        let (body, _) = self.body(id, indent);
                        format!("{kw} {body}")
                    }
                    (tag, hint) => {
                        let base = tag.as_deref().or(hint).unwrap_or("anon");
                        self.renamed(id, base)
                    }
                }
            }
            Type::Enum {
                tag, underlying, ..
            } => match tag {
                Some(tag) if self.types.enum_exists(tag) => format!("enum {tag}"),
                _ => t.base_name(*underlying),
            },
            _ => t.base_name(id),
        }
    }

    /// The renamed copy of old record `id` (defined on first use).
    fn renamed(&mut self, id: TypeId, base: &str) -> String {
        if let Some(n) = self.names.get(&id) {
            return n.clone();
        }
        let Type::Record { kind, size, .. } = self.types.old.get(id) else {
            unreachable!("records only");
        };
        let (kind, size) = (*kind, *size);
        let mut tag = format!("old_{}", crate::util::c_ident(base));
        let mut n = 2;
        while !self.used.insert(tag.clone()) {
            tag = format!("old_{}_{n}", crate::util::c_ident(base));
            n += 1;
        }
        let full = format!("{} {tag}", kind.keyword());
        self.names.insert(id, full.clone());
        let (body, _) = self.body(id, 0);
        let mut asserts = Vec::new();
        if let Some(s) = size {
            asserts.push(format!("static_assert(sizeof({full}) == {s});"));
        }
        if kind == RecordKind::Struct {
            for m in members(self.types.old, id) {
                if m.bit_width.is_none() {
                    asserts.push(format!(
                        "static_assert(offsetof({full}, {}) == {});",
                        m.name,
                        m.offset_bits / 8
                    ));
                }
            }
        }
        self.defs.push(Def {
            name: full.clone(),
            text: format!("{full} {body};"),
            asserts,
        });
        full
    }

    /// `{ members }` of old record `id` plus trailing attributes, members
    /// indented one level deeper than `indent`. Also returns the alignment
    /// its members ask for.
    fn body(&mut self, id: TypeId, indent: usize) -> (String, u64) {
        let t = self.types.old;
        let Type::Record {
            kind,
            size,
            align,
            packed,
            fields,
            ..
        } = t.get(id).clone()
        else {
            unreachable!("records only");
        };
        let tabs = "\t".repeat(indent + 1);
        let mut lines = vec!["{".to_string()];
        let mut max_align = 1;
        match fields {
            None => {
                // Only its size is known: keep the bytes.
                lines.push(format!(
                    "{tabs}unsigned char bytes[{}];",
                    size.unwrap_or_default()
                ));
            }
            Some(fields) => {
                let mut cur_bits = 0u64;
                for f in &fields {
                    let natural = if packed { 1 } else { align_of(t, f.ty) };
                    let mut eff = natural;
                    let mut attr = String::new();
                    if kind == RecordKind::Struct && f.bit_width.is_none() {
                        let at = align_up(cur_bits, natural * 8);
                        if at != f.offset_bits {
                            let mut p = natural.max(1) * 2;
                            while p <= 4096 {
                                if align_up(cur_bits, p * 8) == f.offset_bits {
                                    attr = format!(" __aligned({p})");
                                    eff = p;
                                    break;
                                }
                                p *= 2;
                            }
                        }
                    }
                    let mut decl = self.declare_in(f.ty, &f.name, false, None, indent + 1);
                    if let Some(w) = f.bit_width {
                        decl = format!("{decl} : {w}");
                    }
                    lines.push(format!("{tabs}{decl}{attr};"));
                    cur_bits = match f.bit_width {
                        Some(w) => f.offset_bits + u64::from(w),
                        None => f.offset_bits + size_of(t, f.ty).unwrap_or(0) * 8,
                    };
                    max_align = max_align.max(eff);
                }
            }
        }
        lines.push(format!("{}}}", "\t".repeat(indent)));
        let mut text = lines.join("\n");
        if packed {
            text.push_str(" __packed");
        }
        if let Some(a) = align {
            if a > max_align || (packed && a > 1) {
                text.push_str(&format!(" __aligned({a})"));
            }
        }
        (text, max_align)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use modswap_ir::{Field, Loc, TypeTable};

    /// Builds a table from types, ids in order.
    fn table(types: Vec<Type>) -> TypeTable {
        let mut t = TypeTable::default();
        t.types = types;
        t
    }

    fn int() -> Type {
        Type::Int {
            name: "int".into(),
            size: 4,
            signed: true,
        }
    }

    fn rec(tag: &str, size: u64, fields: Vec<(&str, u32, u64)>) -> Type {
        Type::Record {
            kind: RecordKind::Struct,
            tag: Some(tag.into()),
            defined_at: Some(Loc::default()),
            in_module_dir: true,
            size: Some(size),
            align: Some(4),
            packed: false,
            fields: Some(
                fields
                    .into_iter()
                    .map(|(n, ty, off)| Field {
                        name: n.into(),
                        ty: TypeId(ty),
                        offset_bits: off * 8,
                        bit_width: None,
                    })
                    .collect(),
            ),
        }
    }

    #[test]
    fn renamed_copy_of_a_changed_record_reuses_unchanged_nested_ones() {
        // old: struct sub {int a;}; struct struct_a {int i; struct sub s; int *p;}
        // new: struct sub unchanged; struct struct_a {int x; int i; struct sub s; int *p;}
        let old = table(vec![
            int(),
            rec("sub", 4, vec![("a", 0, 0)]),
            Type::Pointer { pointee: TypeId(0) },
            rec("struct_a", 16, vec![("i", 0, 0), ("s", 1, 4), ("p", 2, 8)]),
        ]);
        let new = table(vec![
            int(),
            rec("sub", 4, vec![("a", 0, 0)]),
            Type::Pointer { pointee: TypeId(0) },
            rec(
                "struct_a",
                24,
                vec![("x", 0, 0), ("i", 0, 4), ("s", 1, 8), ("p", 2, 16)],
            ),
        ]);
        let types = Types::new(&old, &new);
        assert!(!types.same(TypeId(3), TypeId(3)));
        assert!(types.same(TypeId(1), TypeId(1)));
        let mut d = OldDecls::new(&types);
        assert_eq!(
            d.declare(TypeId(3), "_old_a", "a"),
            "struct old_struct_a _old_a"
        );
        assert_eq!(d.defs.len(), 1);
        assert_eq!(
            d.defs[0].text,
            "struct old_struct_a {\n\tint i;\n\tstruct sub s;\n\tint *p;\n};"
        );
        assert_eq!(
            d.defs[0].asserts,
            [
                "static_assert(sizeof(struct old_struct_a) == 16);",
                "static_assert(offsetof(struct old_struct_a, i) == 0);",
                "static_assert(offsetof(struct old_struct_a, s) == 4);",
                "static_assert(offsetof(struct old_struct_a, p) == 8);",
            ]
        );
        assert_eq!(
            types.diff(TypeId(3), TypeId(3)),
            [
                "member x added at byte 0",
                "member i moved from byte 0 to byte 4",
                "member s moved from byte 4 to byte 8",
                "member p moved from byte 8 to byte 16",
                "size 16 -> 24 bytes"
            ]
        );
    }

    #[test]
    fn alignment_gaps_become_attributes() {
        // struct t { int a; int b __aligned(16); } : b at 16, size 32, align 16
        let mut r = rec("t", 32, vec![("a", 0, 0), ("b", 0, 16)]);
        if let Type::Record { align, .. } = &mut r {
            *align = Some(16);
        }
        let old = table(vec![int(), r]);
        let new = table(vec![int()]);
        let types = Types::new(&old, &new);
        let mut d = OldDecls::new(&types);
        d.declare(TypeId(1), "x", "x");
        assert_eq!(
            d.defs[0].text,
            "struct old_t {\n\tint a;\n\tint b __aligned(16);\n};"
        );
    }
}
