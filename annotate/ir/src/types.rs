//! The types: one table per program, each distinct type once.

use crate::Loc;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Index into [`TypeTable::types`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TypeId(pub u32);

/// The types, interned: each distinct type once, ids stable for one run.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct TypeTable {
    pub types: Vec<Type>,
    #[serde(skip)]
    pub(crate) by_key: BTreeMap<String, TypeId>,
}

impl TypeTable {
    pub fn get(&self, id: TypeId) -> &Type {
        &self.types[id.0 as usize]
    }

    /// The type with typedefs, qualifiers and attributes looked through.
    pub fn resolve(&self, mut id: TypeId) -> TypeId {
        loop {
            match self.get(id) {
                Type::Typedef { underlying, .. } => id = *underlying,
                Type::Qualified { base, .. } => id = *base,
                _ => return id,
            }
        }
    }

    /// The type of member `name` of record type `t`, looking into anonymous members.
    pub fn find_field(&self, t: TypeId, name: &str) -> Option<TypeId> {
        if name.is_empty() {
            return None;
        }
        let Type::Record {
            fields: Some(fields),
            ..
        } = self.get(self.resolve(t))
        else {
            return None;
        };
        for f in fields {
            if f.name == name {
                return Some(f.ty);
            }
        }
        fields
            .iter()
            .filter(|f| f.name.is_empty())
            .find_map(|f| self.find_field(f.ty, name))
    }

    /// Is `t` a pointer to non-const data?
    pub fn is_writable_pointer(&self, t: TypeId) -> bool {
        match self.get(self.resolve(t)) {
            Type::Pointer { pointee } => {
                let mut p = *pointee;
                loop {
                    match self.get(p) {
                        Type::Qualified { is_const: true, .. } => return false,
                        Type::Qualified { base, .. } => p = *base,
                        Type::Typedef { underlying, .. } => p = *underlying,
                        Type::Function { .. } => return false,
                        _ => return true,
                    }
                }
            }
            _ => false,
        }
    }

    /// Is `t` a pointer (to data or code)?
    pub fn is_pointer(&self, t: TypeId) -> bool {
        matches!(self.get(self.resolve(t)), Type::Pointer { .. })
    }

    /// Interns a type by its key; returns the existing id when the key is known.
    pub fn intern(&mut self, key: String, ty: Type) -> TypeId {
        if let Some(id) = self.by_key.get(&key) {
            return *id;
        }
        let id = TypeId(self.types.len() as u32);
        self.types.push(ty);
        self.by_key.insert(key, id);
        id
    }

    /// Reserves an id for a key (for recursive records), filled with `set`.
    pub fn reserve(&mut self, key: String) -> (TypeId, bool) {
        if let Some(id) = self.by_key.get(&key) {
            return (*id, false);
        }
        let id = TypeId(self.types.len() as u32);
        self.types.push(Type::Void);
        self.by_key.insert(key, id);
        (id, true)
    }

    pub fn set(&mut self, id: TypeId, ty: Type) {
        self.types[id.0 as usize] = ty;
    }

    /// The name of a non-derived type: `int`, `struct foo`, `u32`, `const struct foo`.
    pub fn base_name(&self, id: TypeId) -> String {
        match self.get(id) {
            Type::Void => "void".into(),
            Type::Bool => "_Bool".into(),
            Type::Int { name, .. } | Type::Float { name, .. } => name.clone(),
            Type::Record { kind, tag, .. } => match tag {
                Some(t) => format!("{} {t}", kind.keyword()),
                None => format!("{} <anonymous>", kind.keyword()),
            },
            Type::Enum { tag, .. } => match tag {
                Some(t) => format!("enum {t}"),
                None => "enum <anonymous>".into(),
            },
            Type::Typedef { name, .. } => name.clone(),
            Type::Qualified {
                base,
                is_const,
                is_volatile,
            } => {
                let mut s = String::new();
                if *is_const {
                    s.push_str("const ");
                }
                if *is_volatile {
                    s.push_str("volatile ");
                }
                s + &self.base_name(*base)
            }
            Type::Pointer { .. } | Type::Array { .. } | Type::Function { .. } => {
                self.declare(id, "")
            }
            Type::Opaque { spelling, .. } => spelling.clone(),
        }
    }
}

/// `struct` or `union`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    Struct,
    Union,
}

impl RecordKind {
    pub fn keyword(self) -> &'static str {
        match self {
            RecordKind::Struct => "struct",
            RecordKind::Union => "union",
        }
    }
}

/// A type. Records are kept by identity (tag and place of definition);
/// everything else structurally.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Type {
    Void,
    Bool,
    Int {
        /// The builtin's spelling (`unsigned int`, `char`).
        name: String,
        size: u64,
        signed: bool,
    },
    Float {
        name: String,
        size: u64,
    },
    Pointer {
        pointee: TypeId,
    },
    Array {
        elem: TypeId,
        /// `None` for a flexible or incomplete array.
        len: Option<u64>,
    },
    Function {
        ret: TypeId,
        params: Vec<TypeId>,
        variadic: bool,
    },
    Record {
        kind: RecordKind,
        /// The tag; `None` for an anonymous record.
        tag: Option<String>,
        /// Where it is defined; `None` when incomplete here.
        defined_at: Option<Loc>,
        /// Defined in a file of the module directory.
        in_module_dir: bool,
        size: Option<u64>,
        align: Option<u64>,
        packed: bool,
        /// The members; `None` when the record is incomplete or was only
        /// reached through a pointer from outside the module directory.
        fields: Option<Vec<Field>>,
    },
    Enum {
        tag: Option<String>,
        underlying: TypeId,
        size: u64,
    },
    Typedef {
        name: String,
        underlying: TypeId,
        defined_at: Loc,
    },
    Qualified {
        base: TypeId,
        is_const: bool,
        is_volatile: bool,
    },
    /// A type the IR does not model (vector types, `_Atomic`, ...), by spelling.
    Opaque {
        spelling: String,
        size: Option<u64>,
    },
}

/// A struct or union member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Field {
    /// Empty for an anonymous struct/union member.
    pub name: String,
    pub ty: TypeId,
    pub offset_bits: u64,
    pub bit_width: Option<u32>,
}
