//! The IR: what the front ends learned about a module directory.
//!
//! The source front end (`modswap-source`) fills it from libclang; the
//! analysis (`modswap-analyze`) and code generation (`modswap-codegen`)
//! read only this. It holds no libclang objects, is deterministic (every
//! list sorted or in source order) and serializes to JSON for snapshots.
//!
//! **Owns**: the program model ([`Program`], [`Unit`], the type table and
//! its interning, [`table`]), the classes a global can get ([`class`]) and
//! the section names shared with the loader ([`sections`]).
//!
//! **Must not import**: any other modswap crate, libclang or `object`. It
//! is plain data that every stage reads.
//!
//! Paths in the IR are relative: to the kernel tree for an in-tree module
//! directory (`fs/fat/inode.c`), to the module directory's parent for an
//! external one (`counterdev/main.c`); files outside both (kernel headers of
//! an external build) keep their absolute path.

pub mod class;
pub mod sections;
pub mod table;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A source position.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
pub struct Loc {
    pub file: String,
    pub line: u32,
    pub column: u32,
}

impl std::fmt::Display for Loc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// Byte offsets of a declaration in its file (for rewriting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Span {
    /// Start of the declaration (its first declaration specifier).
    pub start: u32,
    /// Start of the declared name.
    pub name: u32,
    /// End of the declaration (end of the initializer, or of the declarator).
    pub end: u32,
}

/// Everything parsed from one module directory.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Program {
    /// The module directory, as in [`Loc::file`] paths (e.g. `fs/fat`).
    pub dir: String,
    pub modules: Vec<Module>,
    /// Every type the globals and functions refer to.
    pub types: TypeTable,
}

/// One `.ko`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Module {
    /// The Makefile stem (`nls_euc-jp`).
    pub name: String,
    /// KBUILD_MODNAME (`nls_euc_jp`).
    pub modname: String,
    pub units: Vec<Unit>,
}

/// One translation unit (a .c file of a module).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Unit {
    /// The .c file.
    pub file: String,
    /// Globals defined in this unit (in files of the module directory), in
    /// source order: file-scope variables and function-scope statics.
    pub globals: Vec<Global>,
    /// Functions declared or defined in files of the module directory, and
    /// external functions this unit refers to, sorted by name.
    pub functions: Vec<Function>,
    /// The bodies of the functions this unit defines in files of the module
    /// directory (static functions of the directory's headers included when
    /// the unit refers to them, directly or not), in source order: what they do with addresses and
    /// globals (see [`Body`]).
    #[serde(default)]
    pub bodies: Vec<Body>,
}

impl Program {
    /// Every global of every module, with its module.
    pub fn globals(&self) -> impl Iterator<Item = (&Module, &Unit, &Global)> {
        self.modules.iter().flat_map(|m| {
            m.units
                .iter()
                .flat_map(move |u| u.globals.iter().map(move |g| (m, u, g)))
        })
    }

    pub fn module(&self, name: &str) -> Option<&Module> {
        self.modules
            .iter()
            .find(|m| m.name == name || m.modname == name)
    }
}

impl Module {
    /// The module's globals, in unit then source order.
    pub fn globals(&self) -> impl Iterator<Item = &Global> {
        self.units.iter().flat_map(|u| u.globals.iter())
    }

    /// Does some unit of this module define function `name`?
    pub fn defines_function(&self, name: &str) -> bool {
        self.units
            .iter()
            .any(|u| u.functions.iter().any(|f| f.name == name && f.defined))
    }

    pub fn global(&self, key: &str) -> Option<&Global> {
        self.globals().find(|g| g.key == key)
    }
}

/// C linkage of a declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Linkage {
    /// `static` at file scope, or a function-scope static.
    Internal,
    External,
}

/// A variable with static storage duration defined by the module.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Global {
    /// The C name (`vfat_fs_type`, `__key` for a macro's function static).
    pub name: String,
    /// The name that is stable across versions and unique in the module:
    /// the C name, or `function.name` for a function-scope static (with a
    /// `.N` suffix, N counting from 1 in source order, when one function has
    /// several statics of that name, as macros make).
    pub key: String,
    /// The enclosing function of a function-scope static.
    pub function: Option<String>,
    pub linkage: Linkage,
    pub loc: Loc,
    pub span: Span,
    pub ty: TypeId,
    /// The object is `const` (after typedefs; arrays by their elements).
    pub is_const: bool,
    /// A definition (incl. tentative), not an `extern` declaration.
    pub is_definition: bool,
    /// The section from an existing `__attribute__((section(...)))`
    /// (`.data..read_mostly`, `__param`, `.static_old.x`, ...).
    pub section: Option<String>,
    /// The macro whose expansion declares it (`DEFINE_MUTEX`,
    /// `module_param`...), when the declaration is not written out in the
    /// module's source.
    pub macro_origin: Option<String>,
    /// Size and alignment in bytes, when complete.
    pub size: Option<u64>,
    pub align: Option<u64>,
    pub init: Option<Init>,
}

/// A function the unit declares, defines or refers to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Function {
    pub name: String,
    pub linkage: Linkage,
    /// This unit has the body.
    pub defined: bool,
    /// Where it is declared or defined (the definition when there is one).
    pub loc: Loc,
    /// Declared in a file of the module directory (vs a kernel header).
    pub in_module_dir: bool,
}

/// An initializer, resolved against the declared type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Init {
    /// A brace list for a struct or union: members in initialization order,
    /// by name (positional entries resolved to member names).
    Record { fields: Vec<FieldInit> },
    /// A brace list for an array: elements by index.
    Array { elements: Vec<ElementInit> },
    /// Any other expression.
    Expr(Expr),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldInit {
    /// The member's name; empty for an anonymous struct/union member.
    pub field: String,
    pub value: Init,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ElementInit {
    pub index: u64,
    pub value: Init,
}

/// An initializer expression: its text and what it refers to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expr {
    /// The source text as written (macros unexpanded), whitespace collapsed.
    pub text: String,
    pub loc: Loc,
    /// Declarations the expression names, in source order.
    pub refs: Vec<Ref>,
    /// Contains a string literal (text that lives in the module's .rodata).
    pub has_string_literal: bool,
    /// The value, when it is a constant integer.
    #[serde(default, deserialize_with = "de_constant")]
    pub constant: Option<i128>,
}

/// Reads [`Expr::constant`] back. serde's derive cannot read an `i128`
/// inside an internally tagged enum (such as [`Init`]): it buffers the
/// value, and its buffer has no 128-bit integers. C constants fit in 64
/// bits, signed or not, which the buffer does hold.
fn de_constant<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i128>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Option<i128>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an integer or null")
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: serde::Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(V)
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.into()))
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.into()))
        }
        fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<Self::Value, E> {
            i128::try_from(v)
                .map(Some)
                .map_err(|_| E::custom("integer constant out of range"))
        }
    }
    d.deserialize_option(V)
}

/// A declaration named in an expression.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Ref {
    /// A function (its address, or a call in a constant expression).
    Function { name: String },
    /// A variable with static storage; `address` when `&x` is taken or the
    /// array decays to a pointer, rather than its value read.
    Global { name: String, address: bool },
}

/// A function body, reduced to the facts that escape and mutation analysis
/// needs: where values that may be addresses go. The facts are a bag
/// (flow-insensitive): their order is source order, but control flow is
/// not kept. Written by `source::flows`, read by `analyze`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Body {
    pub name: String,
    pub linkage: Linkage,
    /// The definition.
    pub loc: Loc,
    /// The first `params` entries of `locals` are the parameters.
    pub params: u32,
    /// Parameters, then local variables (and temporaries such as compound
    /// literals) by [`Place::Local`] / [`Val::LocalAddr`] index. Function-scope
    /// statics are globals, not locals.
    pub locals: Vec<String>,
    pub facts: Vec<Fact>,
}

/// One thing a function body does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fact {
    pub loc: Loc,
    /// The source text of the statement or expression, whitespace collapsed
    /// (the macro invocation when it comes from a macro).
    pub text: String,
    pub kind: FactKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "fact")]
pub enum FactKind {
    /// `to = from`, a local's initializer, or (`update`) `op=`, `++`, `--`,
    /// which change the place and keep part of its value.
    Assign {
        to: Place,
        from: Vec<Val>,
        update: bool,
        /// The place has pointer-to-non-const type: whoever reads it may
        /// write through it.
        writable: bool,
    },
    /// A call. Its result is [`Val::Call`] with this fact's index.
    Call {
        callee: Callee,
        args: Vec<Arg>,
    },
    Return {
        value: Vec<Val>,
    },
    /// Operands of an inline assembly statement.
    Asm {
        operands: Vec<Vec<Val>>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Arg {
    pub value: Vec<Val>,
    /// Passed as a pointer to non-const (per the prototype; for variadic
    /// arguments, per the argument's type): the callee may write through it.
    pub writable: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "callee")]
pub enum Callee {
    /// A call of a named function (compiler builtins included: `__builtin_memcpy`).
    Direct { name: String },
    /// A call through a function pointer.
    Indirect { value: Vec<Val> },
}

/// A global named in a function body.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GlobalRef {
    pub name: String,
    /// Its [`Global::key`] when this unit defines it; `None` for a global
    /// only declared here (defined in another unit, another module of the
    /// directory, or the kernel).
    pub key: Option<String>,
}

/// What an expression may evaluate to, as far as addresses go. Integer
/// arithmetic and casts keep the values of their operands; comparisons,
/// `!` and `sizeof` yield none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "val")]
pub enum Val {
    /// The address of a global or of a part of it: `&g`, `&g.a.b`, an
    /// array `g` decaying. `path` is the part (`a.b`, `[]`), empty for all.
    GlobalAddr { global: GlobalRef, path: String },
    /// The address of a local (or temporary) of this function.
    LocalAddr { local: u32 },
    /// The address of a function.
    Function { name: String },
    /// A string literal (in the module's .rodata).
    Str,
    /// What a place holds.
    Load { place: Box<Place> },
    /// The result of the call at this body's fact index.
    Call { fact: u32 },
}

/// Memory that an expression designates (an lvalue).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "place")]
pub enum Place {
    /// A global or a part of it (`g`, `g.a[3].b` as path `a[].b`), reached
    /// without going through a pointer.
    Global { global: GlobalRef, path: String },
    /// A local, parameter or temporary (or a part of it).
    Local { local: u32 },
    /// Memory reached through a pointer: `*p`, `p->f`, `p[i]`, `p->a.b`.
    Deref {
        pointer: Vec<Val>,
        /// The part of the pointed-to object (`f`, `a.b`, `[]`), empty for all.
        path: String,
        /// The record type the pointer points to (`struct super_block`).
        target: Option<RecordRef>,
        /// The record whose member the place finally is (`p->a.b`: the type
        /// of `p->a`), with the member's name.
        member_of: Option<(RecordRef, String)>,
    },
}

/// A struct or union type, by name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RecordRef {
    /// As C spells it: `struct msdos_sb_info`.
    pub name: String,
    /// Defined in a file of the module directory.
    pub in_module_dir: bool,
}

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

    /// The C spelling of a type followed by `name` (a declarator), e.g.
    /// `int (*open)(struct inode *, struct file *)` or `u8 buf[16]`.
    pub fn declare(&self, id: TypeId, name: &str) -> String {
        let mut decl = name.to_string();
        let mut cur = id;
        loop {
            match self.get(cur) {
                Type::Pointer { pointee } => {
                    decl = format!("*{decl}");
                    cur = *pointee;
                    if matches!(self.get(cur), Type::Array { .. } | Type::Function { .. }) {
                        decl = format!("({decl})");
                    }
                }
                Type::Qualified {
                    base,
                    is_const,
                    is_volatile,
                } if matches!(self.get(*base), Type::Pointer { .. }) => {
                    let mut q = Vec::new();
                    if *is_const {
                        q.push("const");
                    }
                    if *is_volatile {
                        q.push("volatile");
                    }
                    if !decl.is_empty() {
                        q.push(&decl);
                    }
                    decl = q.join(" ");
                    cur = *base;
                }
                Type::Array { elem, len } => {
                    match len {
                        Some(n) => decl = format!("{decl}[{n}]"),
                        None => decl = format!("{decl}[]"),
                    }
                    cur = *elem;
                }
                Type::Function {
                    ret,
                    params,
                    variadic,
                } => {
                    let mut ps: Vec<String> = params.iter().map(|p| self.declare(*p, "")).collect();
                    if *variadic {
                        ps.push("...".into());
                    }
                    if ps.is_empty() {
                        ps.push("void".into());
                    }
                    decl = format!("{decl}({})", ps.join(", "));
                    cur = *ret;
                }
                _ => {
                    let base = self.base_name(cur);
                    return if decl.is_empty() {
                        base
                    } else {
                        format!("{base} {decl}")
                    };
                }
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declarators() {
        let mut t = TypeTable::default();
        let int = t.intern(
            "int:int".into(),
            Type::Int {
                name: "int".into(),
                size: 4,
                signed: true,
            },
        );
        let ch = t.intern(
            "int:char".into(),
            Type::Int {
                name: "char".into(),
                size: 1,
                signed: false,
            },
        );
        let cch = t.intern(
            "q:c".into(),
            Type::Qualified {
                base: ch,
                is_const: true,
                is_volatile: false,
            },
        );
        let pcch = t.intern("p:cc".into(), Type::Pointer { pointee: cch });
        let cp = t.intern(
            "q:pcc".into(),
            Type::Qualified {
                base: pcch,
                is_const: true,
                is_volatile: false,
            },
        );
        let arr = t.intern(
            "a".into(),
            Type::Array {
                elem: cp,
                len: Some(4),
            },
        );
        let f = t.intern(
            "f".into(),
            Type::Function {
                ret: int,
                params: vec![pcch, int],
                variadic: true,
            },
        );
        let pf = t.intern("pf".into(), Type::Pointer { pointee: f });
        let apf = t.intern(
            "apf".into(),
            Type::Array {
                elem: pf,
                len: None,
            },
        );
        let parr = t.intern("parr".into(), Type::Pointer { pointee: arr });
        assert_eq!(t.declare(arr, "names"), "const char *const names[4]");
        assert_eq!(t.declare(pf, "cb"), "int (*cb)(const char *, int, ...)");
        assert_eq!(
            t.declare(apf, "tbl"),
            "int (*tbl[])(const char *, int, ...)"
        );
        assert_eq!(t.declare(parr, "p"), "const char *const (*p)[4]");
        assert_eq!(t.declare(pcch, ""), "const char *");
    }

    #[test]
    fn initializers_read_back_from_json() {
        let expr = |c: Option<i128>| {
            Init::Expr(Expr {
                text: "x".into(),
                loc: Loc::default(),
                refs: vec![],
                has_string_literal: false,
                constant: c,
            })
        };
        for c in [
            None,
            Some(0),
            Some(-1),
            Some(438),
            Some(i64::MIN.into()),
            Some(u64::MAX.into()),
        ] {
            let init = Init::Record {
                fields: vec![FieldInit {
                    field: "f".into(),
                    value: expr(c),
                }],
            };
            let json = serde_json::to_string(&init).unwrap();
            let back: Init = serde_json::from_str(&json).unwrap();
            assert_eq!(back, init, "{json}");
        }
    }
}
