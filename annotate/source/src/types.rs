//! libclang types -> IR types.

use super::Ctx;
use modswap_clang::{Kind, Type as CType, TypeKind};
use modswap_ir::table::structural_key;
use modswap_ir::{Field, RecordKind, Type, TypeId, TypeTable};

/// Converts libclang types of one translation unit into `table`.
pub(crate) struct TypeBuilder<'a> {
    pub table: TypeTable,
    pub ctx: &'a Ctx,
    /// Records whose members are being converted (a record reached again
    /// through its own members, e.g. mutually pointing module structs).
    filling: std::collections::HashSet<TypeId>,
}

impl<'a> TypeBuilder<'a> {
    pub fn new(ctx: &'a Ctx) -> Self {
        TypeBuilder {
            table: TypeTable::default(),
            ctx,
            filling: Default::default(),
        }
    }

    /// Converts `t`. `expand`: give records reached by value their members.
    /// Records reached through a pointer are only named, unless they are
    /// defined in the module directory.
    pub fn convert(&mut self, t: CType<'_>, expand: bool) -> TypeId {
        let base = self.convert_unqualified(t, expand);
        let (c, v) = (t.is_const(), t.is_volatile());
        if !c && !v {
            return base;
        }
        let q = Type::Qualified {
            base,
            is_const: c,
            is_volatile: v,
        };
        self.table.intern(structural_key(&q), q)
    }

    fn convert_unqualified(&mut self, t: CType<'_>, expand: bool) -> TypeId {
        match t.kind() {
            TypeKind::Elaborated => self.convert(t.named(), expand),
            TypeKind::Attributed => {
                let m = t.modified();
                if m.kind() == TypeKind::Attributed {
                    self.opaque(t)
                } else {
                    self.convert(m, expand)
                }
            }
            TypeKind::Void => self.table.intern("void".into(), Type::Void),
            TypeKind::Bool => self.table.intern("bool".into(), Type::Bool),
            TypeKind::Integer => {
                let name = unqualified_spelling(&t.canonical().spelling());
                let ty = Type::Int {
                    name: name.clone(),
                    size: t.size_of().unwrap_or(0),
                    signed: t.is_signed_integer(),
                };
                self.table.intern(format!("int:{name}"), ty)
            }
            TypeKind::Floating => {
                let name = unqualified_spelling(&t.canonical().spelling());
                let ty = Type::Float {
                    name: name.clone(),
                    size: t.size_of().unwrap_or(0),
                };
                self.table.intern(format!("float:{name}"), ty)
            }
            TypeKind::Pointer => {
                let Some(p) = t.pointee() else {
                    return self.opaque(t);
                };
                let pointee = self.convert(p, false);
                let ty = Type::Pointer { pointee };
                self.table.intern(structural_key(&ty), ty)
            }
            TypeKind::ConstantArray | TypeKind::IncompleteArray | TypeKind::VariableArray => {
                let Some(e) = t.element() else {
                    return self.opaque(t);
                };
                let elem = self.convert(e, expand);
                let len = if t.kind() == TypeKind::ConstantArray {
                    t.array_len()
                } else {
                    None
                };
                let ty = Type::Array { elem, len };
                self.table.intern(structural_key(&ty), ty)
            }
            TypeKind::FunctionProto | TypeKind::FunctionNoProto => self.function(t),
            TypeKind::Typedef => self.typedef(t, expand),
            TypeKind::Record => self.record(t, expand),
            TypeKind::Enum => self.enumeration(t),
            _ => self.opaque(t),
        }
    }

    /// A function type: its return and parameter types (behind pointers, so
    /// not expanded).
    fn function(&mut self, t: CType<'_>) -> TypeId {
        let ret = match t.result() {
            Some(r) => self.convert(r, false),
            None => self.table.intern("void".into(), Type::Void),
        };
        let params: Vec<TypeId> = t
            .arguments()
            .into_iter()
            .map(|a| self.convert(a, false))
            .collect();
        let ty = Type::Function {
            ret,
            params,
            variadic: t.is_variadic() || t.kind() == TypeKind::FunctionNoProto,
        };
        self.table.intern(structural_key(&ty), ty)
    }

    /// A typedef, by name and place (its underlying type converted once).
    fn typedef(&mut self, t: CType<'_>, expand: bool) -> TypeId {
        let Some(decl) = t.declaration() else {
            return self.opaque(t);
        };
        let name = decl.spelling();
        let at = self.ctx.loc(&decl.location());
        let key = format!("typedef {name}@{at}");
        let (id, fresh) = self.table.reserve(key);
        if fresh {
            let underlying = self.convert(decl.typedef_underlying(), expand);
            self.table.set(
                id,
                Type::Typedef {
                    name,
                    underlying,
                    defined_at: at,
                },
            );
        } else if expand {
            // Make sure a record under it gets its members.
            self.convert(decl.typedef_underlying(), true);
        }
        id
    }

    /// An enum, by tag and place, with the integer type it is stored as.
    fn enumeration(&mut self, t: CType<'_>) -> TypeId {
        let Some(decl) = t.declaration() else {
            return self.opaque(t);
        };
        let decl = decl.definition().unwrap_or(decl);
        let tag = (!decl.is_anonymous()
            && !decl.spelling().is_empty()
            && !decl.spelling().contains("unnamed"))
        .then(|| decl.spelling());
        let at = self.ctx.loc(&decl.location());
        let key = format!("enum {}@{at}", tag.clone().unwrap_or_default());
        let (id, fresh) = self.table.reserve(key);
        if fresh {
            let size = t.size_of().unwrap_or(4);
            let name = if size == 8 {
                "unsigned long"
            } else {
                "unsigned int"
            };
            let underlying = self.table.intern(
                format!("int:{name}"),
                Type::Int {
                    name: name.into(),
                    size,
                    signed: false,
                },
            );
            self.table.set(
                id,
                Type::Enum {
                    tag,
                    underlying,
                    size,
                },
            );
        }
        id
    }

    fn opaque(&mut self, t: CType<'_>) -> TypeId {
        let spelling = t.spelling();
        let ty = Type::Opaque {
            spelling: spelling.clone(),
            size: t.size_of(),
        };
        self.table.intern(format!("opaque:{spelling}"), ty)
    }

    fn record(&mut self, t: CType<'_>, expand: bool) -> TypeId {
        let Some(decl) = t.declaration() else {
            return self.opaque(t);
        };
        let def = decl.definition();
        let kind = if decl.kind() == Kind::UnionDecl {
            RecordKind::Union
        } else {
            RecordKind::Struct
        };
        let named = def.unwrap_or(decl);
        let anonymous = named.is_anonymous() || named.spelling().is_empty();
        let tag = (!anonymous).then(|| named.spelling());
        let defined_at = def.map(|d| self.ctx.loc(&d.location()));
        let in_module_dir = def.is_some_and(|d| self.ctx.in_module_dir(&d.location()));
        let key = match (&tag, &defined_at) {
            (Some(tg), Some(at)) => format!("{} {tg}@{at}", kind.keyword()),
            (Some(tg), None) => format!("{} {tg}", kind.keyword()),
            (None, Some(at)) => format!("{} @{at}:{}", kind.keyword(), at.column),
            (None, None) => format!("{} <anonymous> {}", kind.keyword(), t.spelling()),
        };
        let (id, fresh) = self.table.reserve(key);
        let want_fields = def.is_some() && (expand || in_module_dir);
        let has_fields = matches!(
            self.table.get(id),
            Type::Record {
                fields: Some(_),
                ..
            }
        );
        if !fresh && (has_fields || !want_fields || self.filling.contains(&id)) {
            return id;
        }
        let packed = def.is_some_and(|d| d.children().iter().any(|c| c.kind() == Kind::PackedAttr));
        // Fill in the shell first so recursive references see a record.
        self.table.set(
            id,
            Type::Record {
                kind,
                tag: tag.clone(),
                defined_at: defined_at.clone(),
                in_module_dir,
                size: t.size_of(),
                align: t.align_of(),
                packed,
                fields: None,
            },
        );
        if want_fields {
            self.filling.insert(id);
            let mut fields = Vec::new();
            for f in t.canonical().fields() {
                let fty = self.convert(f.ty(), true);
                let name = if f.is_anonymous_record_decl() || f.spelling().is_empty() {
                    String::new()
                } else {
                    f.spelling()
                };
                fields.push(Field {
                    name,
                    ty: fty,
                    offset_bits: f.field_offset_bits().unwrap_or(0),
                    bit_width: f.bitfield_width(),
                });
            }
            if let Type::Record { fields: slot, .. } = &mut self.table.types[id.0 as usize] {
                *slot = Some(fields);
            }
            self.filling.remove(&id);
        }
        id
    }
}

/// `const volatile unsigned int` -> `unsigned int`.
fn unqualified_spelling(s: &str) -> String {
    s.split_whitespace()
        .filter(|w| *w != "const" && *w != "volatile" && *w != "restrict")
        .collect::<Vec<_>>()
        .join(" ")
}
