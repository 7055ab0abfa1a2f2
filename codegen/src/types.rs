//! Comparing the types of two versions.
//!
//! Each version has its own [`TypeTable`]; types are compared by layout:
//! typedefs and qualifiers are looked through, records match by kind and
//! tag and then member by member (name, offset, bit width, type), pointers
//! are pointers whatever they point to (what they point to is checked
//! separately: [`Types::changed_pointee`]). Two types are *the same* when
//! an object of the old one can be copied into the new one as a whole.

use modswap_ir::{Field, RecordKind, Type, TypeId, TypeTable};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

/// A member, with anonymous struct/union members looked through: its name
/// is what C code writes after the dot.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub name: String,
    pub ty: TypeId,
    /// From the start of the outermost record.
    pub offset_bits: u64,
    pub bit_width: Option<u32>,
}

/// The two type tables and what is known about them.
pub struct Types<'a> {
    pub old: &'a TypeTable,
    pub new: &'a TypeTable,
    memo: RefCell<HashMap<(TypeId, TypeId), bool>>,
    new_records: BTreeMap<(bool, String), TypeId>,
    old_records: BTreeMap<(bool, String), TypeId>,
    new_typedefs: BTreeMap<String, TypeId>,
    new_enums: BTreeMap<String, TypeId>,
}

fn record_index(t: &TypeTable) -> BTreeMap<(bool, String), TypeId> {
    let mut m: BTreeMap<(bool, String), TypeId> = BTreeMap::new();
    for (i, ty) in t.types.iter().enumerate() {
        if let Type::Record {
            kind,
            tag: Some(tag),
            fields,
            ..
        } = ty
        {
            let k = (*kind == RecordKind::Union, tag.clone());
            let id = TypeId(i as u32);
            // Prefer a definition with members over a declaration.
            match m.get(&k) {
                Some(prev)
                    if matches!(
                        t.get(*prev),
                        Type::Record {
                            fields: Some(_),
                            ..
                        }
                    ) => {}
                _ if fields.is_some() || !m.contains_key(&k) => {
                    m.insert(k, id);
                }
                _ => {}
            }
        }
    }
    m
}

impl<'a> Types<'a> {
    pub fn new(old: &'a TypeTable, new: &'a TypeTable) -> Self {
        let mut new_typedefs = BTreeMap::new();
        let mut new_enums = BTreeMap::new();
        for (i, ty) in new.types.iter().enumerate() {
            match ty {
                Type::Typedef { name, .. } => {
                    new_typedefs.entry(name.clone()).or_insert(TypeId(i as u32));
                }
                Type::Enum { tag: Some(t), .. } => {
                    new_enums.entry(t.clone()).or_insert(TypeId(i as u32));
                }
                _ => {}
            }
        }
        Types {
            old,
            new,
            memo: RefCell::new(HashMap::new()),
            new_records: record_index(new),
            old_records: record_index(old),
            new_typedefs,
            new_enums,
        }
    }

    /// Can an object of old type `o` be copied as a whole into new type `n`?
    pub fn same(&self, o: TypeId, n: TypeId) -> bool {
        let (o, n) = (self.old.resolve(o), self.new.resolve(n));
        if let Some(r) = self.memo.borrow().get(&(o, n)) {
            return *r;
        }
        let r = match (self.old.get(o), self.new.get(n)) {
            (Type::Void, Type::Void) | (Type::Bool, Type::Bool) => true,
            (
                Type::Int {
                    size: a, signed: x, ..
                },
                Type::Int {
                    size: b, signed: y, ..
                },
            ) => a == b && x == y,
            (Type::Float { size: a, .. }, Type::Float { size: b, .. }) => a == b,
            (Type::Enum { size: a, .. }, Type::Enum { size: b, .. }) => a == b,
            (Type::Enum { size: a, .. }, Type::Int { size: b, .. })
            | (Type::Int { size: a, .. }, Type::Enum { size: b, .. }) => a == b,
            (Type::Pointer { .. }, Type::Pointer { .. }) => true,
            (Type::Function { .. }, Type::Function { .. }) => true,
            (Type::Array { elem: a, len: la }, Type::Array { elem: b, len: lb }) => {
                la == lb && self.same(*a, *b)
            }
            (
                Type::Record {
                    kind: k1,
                    tag: t1,
                    size: s1,
                    align: a1,
                    packed: p1,
                    fields: f1,
                    ..
                },
                Type::Record {
                    kind: k2,
                    tag: t2,
                    size: s2,
                    align: a2,
                    packed: p2,
                    fields: f2,
                    ..
                },
            ) => {
                k1 == k2
                    && t1 == t2
                    && s1 == s2
                    && a1 == a2
                    && p1 == p2
                    && match (f1, f2) {
                        (Some(f1), Some(f2)) => self.fields_same(f1, f2),
                        (None, None) => true,
                        _ => false,
                    }
            }
            (
                Type::Opaque {
                    spelling: a,
                    size: x,
                },
                Type::Opaque {
                    spelling: b,
                    size: y,
                },
            ) => a == b && x == y,
            _ => false,
        };
        self.memo.borrow_mut().insert((o, n), r);
        r
    }

    fn fields_same(&self, a: &[Field], b: &[Field]) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| {
                x.name == y.name
                    && x.offset_bits == y.offset_bits
                    && x.bit_width == y.bit_width
                    && self.same(x.ty, y.ty)
            })
    }

    /// The new version's record with the same kind and tag as old record `o`.
    pub fn new_record_like(&self, o: TypeId) -> Option<TypeId> {
        match self.old.get(self.old.resolve(o)) {
            Type::Record {
                kind,
                tag: Some(tag),
                ..
            } => self
                .new_records
                .get(&(*kind == RecordKind::Union, tag.clone()))
                .copied(),
            _ => None,
        }
    }

    /// Old record `o` exists unchanged in the new version (same tag, same
    /// layout), so the new definition can stand for it.
    pub fn record_reusable(&self, o: TypeId) -> bool {
        self.new_record_like(o).is_some_and(|n| self.same(o, n))
    }

    /// The new version has a typedef of this name whose type has the same
    /// layout as old type `o`.
    pub fn typedef_reusable(&self, name: &str, o: TypeId) -> bool {
        self.new_typedefs
            .get(name)
            .is_some_and(|n| self.same(o, *n))
    }

    /// The new version has a typedef of this name (for types behind pointers).
    pub fn typedef_exists(&self, name: &str) -> bool {
        self.new_typedefs.contains_key(name)
    }

    /// The new version has an enum with this tag.
    pub fn enum_exists(&self, tag: &str) -> bool {
        self.new_enums.contains_key(tag)
    }

    /// The new version has a struct or union with this tag.
    pub fn new_has_record(&self, union: bool, tag: &str) -> bool {
        self.new_records.contains_key(&(union, tag.to_string()))
    }

    /// When new pointer type `n` points to a record of the module directory
    /// whose layout differs in the old version: that record's name and what
    /// changed. Objects reached through such a pointer keep the old layout.
    pub fn changed_pointee(&self, n: TypeId) -> Option<(String, Vec<String>)> {
        let Type::Pointer { pointee } = self.new.get(self.new.resolve(n)) else {
            return None;
        };
        let p = self.new.resolve(*pointee);
        let Type::Record {
            kind,
            tag: Some(tag),
            in_module_dir: true,
            ..
        } = self.new.get(p)
        else {
            return None;
        };
        let o = *self
            .old_records
            .get(&(*kind == RecordKind::Union, tag.clone()))?;
        if !matches!(
            (self.old.get(o), self.new.get(p)),
            (
                Type::Record {
                    fields: Some(_),
                    ..
                },
                Type::Record {
                    fields: Some(_),
                    ..
                }
            )
        ) || self.same(o, p)
        {
            return None;
        }
        Some((format!("{} {tag}", kind.keyword()), self.diff(o, p)))
    }

    /// What differs between old type `o` and new type `n`, in words.
    pub fn diff(&self, o: TypeId, n: TypeId) -> Vec<String> {
        let (ro, rn) = (self.old.resolve(o), self.new.resolve(n));
        let mut out = Vec::new();
        match (self.old.get(ro), self.new.get(rn)) {
            (
                Type::Record {
                    kind: k1,
                    size: s1,
                    align: a1,
                    packed: p1,
                    ..
                },
                Type::Record {
                    kind: k2,
                    size: s2,
                    align: a2,
                    packed: p2,
                    ..
                },
            ) if k1 == k2 => {
                let om = members(self.old, ro);
                let nm = members(self.new, rn);
                for m in &nm {
                    match om.iter().find(|x| x.name == m.name) {
                        None => out.push(format!(
                            "member {} added at byte {}",
                            m.name,
                            m.offset_bits / 8
                        )),
                        Some(x) => {
                            let (os, ns) = (self.old.declare(x.ty, ""), self.new.declare(m.ty, ""));
                            if !self.same(x.ty, m.ty) && os == ns {
                                out.push(format!("member {}: {ns} changed", m.name));
                            } else if !self.same(x.ty, m.ty) {
                                out.push(format!("member {}: type {os} -> {ns}", m.name));
                            } else if x.bit_width != m.bit_width {
                                out.push(format!(
                                    "member {}: width {} -> {}",
                                    m.name,
                                    width(x.bit_width),
                                    width(m.bit_width)
                                ));
                            } else if x.offset_bits != m.offset_bits {
                                out.push(format!(
                                    "member {} moved from byte {} to byte {}",
                                    m.name,
                                    x.offset_bits / 8,
                                    m.offset_bits / 8
                                ));
                            }
                        }
                    }
                }
                for x in &om {
                    if !nm.iter().any(|m| m.name == x.name) {
                        out.push(format!("member {} removed", x.name));
                    }
                }
                if s1 != s2 {
                    out.push(format!("size {} -> {} bytes", opt(*s1), opt(*s2)));
                }
                if a1 != a2 {
                    out.push(format!("alignment {} -> {}", opt(*a1), opt(*a2)));
                }
                if p1 != p2 {
                    out.push(if *p2 {
                        "now packed".into()
                    } else {
                        "no longer packed".into()
                    });
                }
                if out.is_empty() {
                    out.push("member types changed".into());
                }
            }
            (Type::Array { elem: a, len: la }, Type::Array { elem: b, len: lb }) => {
                if la != lb {
                    out.push(format!("length {} -> {}", opt(*la), opt(*lb)));
                }
                if !self.same(*a, *b) {
                    out.push(format!(
                        "element {}: {}",
                        self.new.declare(*b, ""),
                        self.diff(*a, *b).join("; ")
                    ));
                }
            }
            _ => out.push(format!(
                "type {} -> {}",
                self.old.declare(o, ""),
                self.new.declare(n, "")
            )),
        }
        out
    }
}

fn opt(v: Option<u64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "?".into())
}

fn width(w: Option<u32>) -> String {
    match w {
        Some(w) => format!("{w} bits"),
        None => "full".into(),
    }
}

/// The members of record `id` (resolved), anonymous members looked through.
pub fn members(t: &TypeTable, id: TypeId) -> Vec<Member> {
    let mut out = Vec::new();
    flatten(t, t.resolve(id), 0, &mut out);
    out
}

fn flatten(t: &TypeTable, id: TypeId, base: u64, out: &mut Vec<Member>) {
    let Type::Record {
        fields: Some(fields),
        ..
    } = t.get(id)
    else {
        return;
    };
    for f in fields {
        if f.name.is_empty() {
            let inner = t.resolve(f.ty);
            if matches!(t.get(inner), Type::Record { .. }) {
                flatten(t, inner, base + f.offset_bits, out);
            }
            continue;
        }
        out.push(Member {
            name: f.name.clone(),
            ty: f.ty,
            offset_bits: base + f.offset_bits,
            bit_width: f.bit_width,
        });
    }
}

/// Size in bytes of a type, when known.
pub fn size_of(t: &TypeTable, id: TypeId) -> Option<u64> {
    match t.get(t.resolve(id)) {
        Type::Void => Some(1),
        Type::Bool => Some(1),
        Type::Int { size, .. } | Type::Float { size, .. } | Type::Enum { size, .. } => Some(*size),
        Type::Pointer { .. } => Some(8),
        Type::Array { elem, len } => Some(len.as_ref()? * size_of(t, *elem)?),
        Type::Record { size, .. } => *size,
        Type::Opaque { size, .. } => *size,
        Type::Function { .. } => None,
        Type::Typedef { .. } | Type::Qualified { .. } => unreachable!("resolved"),
    }
}

/// Natural alignment in bytes of a type.
pub fn align_of(t: &TypeTable, id: TypeId) -> u64 {
    match t.get(t.resolve(id)) {
        Type::Void | Type::Bool | Type::Function { .. } => 1,
        Type::Int { size, .. } | Type::Float { size, .. } | Type::Enum { size, .. } => {
            (*size).clamp(1, 16)
        }
        Type::Pointer { .. } => 8,
        Type::Array { elem, .. } => align_of(t, *elem),
        Type::Record { align, .. } => align.unwrap_or(1),
        Type::Opaque { size, .. } => size.unwrap_or(1).clamp(1, 16),
        Type::Typedef { .. } | Type::Qualified { .. } => unreachable!("resolved"),
    }
}

/// Does a type (by value) hold a `const` member anywhere, so that it cannot
/// be assigned as a whole?
pub fn has_const_member(t: &TypeTable, id: TypeId) -> bool {
    fn walk(t: &TypeTable, id: TypeId, depth: u32) -> bool {
        if depth > 32 {
            return false;
        }
        let mut cur = id;
        loop {
            match t.get(cur) {
                Type::Qualified { is_const: true, .. } => return true,
                Type::Qualified { base, .. } => cur = *base,
                Type::Typedef { underlying, .. } => cur = *underlying,
                Type::Array { elem, .. } => cur = *elem,
                Type::Record {
                    fields: Some(fs), ..
                } => return fs.iter().any(|f| walk(t, f.ty, depth + 1)),
                _ => return false,
            }
        }
    }
    match t.get(t.resolve(id)) {
        Type::Record {
            fields: Some(fs), ..
        } => fs.iter().any(|f| walk(t, f.ty, 1)),
        Type::Array { elem, .. } => walk(t, *elem, 1),
        _ => false,
    }
}

/// Is the type (looking through typedefs, not pointers) qualified `const`?
pub fn is_const(t: &TypeTable, id: TypeId) -> bool {
    let mut cur = id;
    loop {
        match t.get(cur) {
            Type::Qualified { is_const: true, .. } => return true,
            Type::Qualified { base, .. } => cur = *base,
            Type::Typedef { underlying, .. } => cur = *underlying,
            _ => return false,
        }
    }
}

/// Kernel types whose contents are tied to their own address (linked
/// structures point back at themselves; locks and wait queues hold such
/// lists): a copy at another address is broken.
const KERNEL_OBJECTS: &[&str] = &[
    "list_head",
    "hlist_head",
    "hlist_node",
    "hlist_nulls_head",
    "hlist_nulls_node",
    "hlist_bl_head",
    "hlist_bl_node",
    "llist_head",
    "llist_node",
    "rb_node",
    "rb_root",
    "rb_root_cached",
    "mutex",
    "rw_semaphore",
    "semaphore",
    "spinlock",
    "raw_spinlock",
    "wait_queue_head",
    "swait_queue_head",
    "completion",
    "rwlock_t",
    "seqlock_t",
    "xarray",
    "idr",
    "kobject",
];

/// The first kernel object (by value) in type `id`, e.g. `struct mutex`.
pub fn kernel_object(t: &TypeTable, id: TypeId) -> Option<String> {
    fn walk(t: &TypeTable, id: TypeId, depth: u32) -> Option<String> {
        if depth > 16 {
            return None;
        }
        match t.get(id) {
            Type::Typedef {
                name, underlying, ..
            } => {
                if KERNEL_OBJECTS.contains(&name.as_str()) {
                    return Some(name.clone());
                }
                walk(t, *underlying, depth + 1)
            }
            Type::Qualified { base, .. } => walk(t, *base, depth + 1),
            Type::Array { elem, .. } => walk(t, *elem, depth + 1),
            Type::Record {
                kind, tag, fields, ..
            } => {
                if let Some(tag) = tag {
                    if KERNEL_OBJECTS.contains(&tag.as_str()) {
                        return Some(format!("{} {tag}", kind.keyword()));
                    }
                }
                fields
                    .iter()
                    .flatten()
                    .find_map(|f| walk(t, f.ty, depth + 1))
            }
            _ => None,
        }
    }
    walk(t, id, 0)
}
