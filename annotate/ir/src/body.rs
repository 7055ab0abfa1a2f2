//! Function bodies, reduced to where values that may be addresses go.

use crate::{Linkage, Loc};
use serde::{Deserialize, Serialize};

/// A function body, reduced to the facts that escape and mutation analysis
/// needs: where values that may be addresses go. The facts are a bag
/// (flow-insensitive): their order is source order, but control flow is
/// not kept. Written by `modswap-source` (body.rs), read by `modswap-analyze`.
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
