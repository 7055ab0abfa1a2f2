//! Interning and merging type tables: each distinct type once per table,
//! nominal types (records, typedefs, enums) by name, the others by
//! structure. The front end interns while it parses; merging joins the
//! tables of several units into one.

use crate::{Field, Type, TypeId, TypeTable};

impl TypeTable {
    /// Merges `other` into `self`; returns the map from `other`'s ids to ours.
    pub fn merge(&mut self, other: &TypeTable) -> Vec<TypeId> {
        let mut keys: Vec<Option<&str>> = vec![None; other.types.len()];
        for (k, v) in &other.by_key {
            keys[v.0 as usize] = Some(k.as_str());
        }
        let mut map: Vec<Option<TypeId>> = vec![None; other.types.len()];
        for i in 0..other.types.len() {
            self.merge_one(other, &keys, &mut map, TypeId(i as u32));
        }
        map.into_iter()
            .map(|m| m.expect("every type mapped"))
            .collect()
    }

    fn merge_one(
        &mut self,
        other: &TypeTable,
        keys: &[Option<&str>],
        map: &mut Vec<Option<TypeId>>,
        id: TypeId,
    ) -> TypeId {
        if let Some(m) = map[id.0 as usize] {
            return m;
        }
        let key = keys[id.0 as usize]
            .expect("every type has a key")
            .to_string();
        let ty = other.get(id).clone();
        let nominal = matches!(
            ty,
            Type::Record { .. } | Type::Typedef { .. } | Type::Enum { .. }
        );
        if nominal {
            let (gid, fresh) = self.reserve(key);
            map[id.0 as usize] = Some(gid);
            let upgrade = matches!(
                (self.get(gid), &ty),
                (
                    Type::Record { fields: None, .. },
                    Type::Record {
                        fields: Some(_),
                        ..
                    }
                )
            );
            if fresh || upgrade {
                let t = remap(&ty, |c| self.merge_one(other, keys, map, c));
                self.set(gid, t);
            }
            gid
        } else {
            let t = remap(&ty, |c| self.merge_one(other, keys, map, c));
            let gid = self.intern(structural_key(&t), t);
            map[id.0 as usize] = Some(gid);
            gid
        }
    }
}

fn remap(ty: &Type, mut f: impl FnMut(TypeId) -> TypeId) -> Type {
    match ty.clone() {
        Type::Pointer { pointee } => Type::Pointer {
            pointee: f(pointee),
        },
        Type::Array { elem, len } => Type::Array { elem: f(elem), len },
        Type::Function {
            ret,
            params,
            variadic,
        } => Type::Function {
            ret: f(ret),
            params: params.into_iter().map(&mut f).collect(),
            variadic,
        },
        Type::Record {
            kind,
            tag,
            defined_at,
            in_module_dir,
            size,
            align,
            packed,
            fields,
        } => Type::Record {
            kind,
            tag,
            defined_at,
            in_module_dir,
            size,
            align,
            packed,
            fields: fields.map(|fs| {
                fs.into_iter()
                    .map(|fl| Field { ty: f(fl.ty), ..fl })
                    .collect()
            }),
        },
        Type::Enum {
            tag,
            underlying,
            size,
        } => Type::Enum {
            tag,
            underlying: f(underlying),
            size,
        },
        Type::Typedef {
            name,
            underlying,
            defined_at,
        } => Type::Typedef {
            name,
            underlying: f(underlying),
            defined_at,
        },
        Type::Qualified {
            base,
            is_const,
            is_volatile,
        } => Type::Qualified {
            base: f(base),
            is_const,
            is_volatile,
        },
        other => other,
    }
}

/// The interning key of a structural type (its children already interned).
pub fn structural_key(t: &Type) -> String {
    match t {
        Type::Void => "void".into(),
        Type::Bool => "bool".into(),
        Type::Int { name, .. } => format!("int:{name}"),
        Type::Float { name, .. } => format!("float:{name}"),
        Type::Pointer { pointee } => format!("ptr:{}", pointee.0),
        Type::Array { elem, len } => format!("arr:{}:{len:?}", elem.0),
        Type::Function {
            ret,
            params,
            variadic,
        } => format!(
            "fn:{}:{}:{variadic}",
            ret.0,
            params
                .iter()
                .map(|p| p.0.to_string())
                .collect::<Vec<_>>()
                .join(",")
        ),
        Type::Qualified {
            base,
            is_const,
            is_volatile,
        } => format!("q:{}:{is_const}:{is_volatile}", base.0),
        Type::Opaque { spelling, .. } => format!("opaque:{spelling}"),
        Type::Record { .. } | Type::Typedef { .. } | Type::Enum { .. } => {
            unreachable!("nominal types have nominal keys")
        }
    }
}

impl TypeTable {
    /// The interning key of every type, by id.
    pub fn keys(&self) -> Vec<String> {
        let mut keys = vec![String::new(); self.types.len()];
        for (k, id) in &self.by_key {
            keys[id.0 as usize] = k.clone();
        }
        keys
    }

    /// A table from its types and their interning keys ([`TypeTable::keys`]).
    pub fn with_keys(types: Vec<Type>, keys: Vec<String>) -> TypeTable {
        let by_key = keys
            .into_iter()
            .enumerate()
            .map(|(i, k)| (k, TypeId(i as u32)))
            .collect();
        TypeTable { types, by_key }
    }
}
