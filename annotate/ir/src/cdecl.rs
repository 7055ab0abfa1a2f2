//! C declarators: a type spelled around a name, e.g. `int
//! (*open)(struct inode *, struct file *)` or `u8 buf[16]`. This is the one
//! walk over pointers, arrays and functions in the project; what the base
//! type at the end is called is the caller's [`Spell`]: the IR's own names
//! ([`TypeTable::declare`]), or code generation's names for the old
//! version's types (`modswap_codegen::cdecl`).

use crate::{Type, TypeId, TypeTable};

/// What ends a declarator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// This spelling.
    Done(String),
    /// Go on with this type (e.g. through a typedef or a qualifier).
    Through(TypeId),
}

/// How a declarator spells what is not a pointer, an array or a function.
pub trait Spell {
    /// The base at `id` (a qualified type, typedef, record, enum, number
    /// or `void`). `behind_ptr`: a pointer or function is on the way to it.
    fn base(&mut self, types: &TypeTable, id: TypeId, behind_ptr: bool) -> Base;
    /// A function parameter of type `id`, spelled alone.
    fn param(&mut self, types: &TypeTable, id: TypeId) -> String;
}

/// The IR's own names: [`TypeTable::base_name`].
struct Names;

impl Spell for Names {
    fn base(&mut self, types: &TypeTable, id: TypeId, _: bool) -> Base {
        Base::Done(types.base_name(id))
    }

    fn param(&mut self, types: &TypeTable, id: TypeId) -> String {
        types.declare(id, "")
    }
}

impl TypeTable {
    /// The C spelling of a type followed by `name` (a declarator), e.g.
    /// `int (*open)(struct inode *, struct file *)` or `u8 buf[16]`.
    pub fn declare(&self, id: TypeId, name: &str) -> String {
        self.declarator(id, name, false, &mut Names)
    }

    /// [`TypeTable::declare`], with the base types spelled by `spell`.
    pub fn declarator(
        &self,
        id: TypeId,
        name: &str,
        behind_ptr: bool,
        spell: &mut dyn Spell,
    ) -> String {
        let mut decl = name.to_string();
        let mut cur = id;
        let mut ptr = behind_ptr;
        loop {
            match self.get(cur) {
                Type::Pointer { pointee } => {
                    decl = format!("*{decl}");
                    cur = *pointee;
                    ptr = true;
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
                    decl = match len {
                        Some(n) => format!("{decl}[{n}]"),
                        None => format!("{decl}[]"),
                    };
                    cur = *elem;
                }
                Type::Function {
                    ret,
                    params,
                    variadic,
                } => {
                    let mut ps: Vec<String> =
                        params.iter().map(|p| spell.param(self, *p)).collect();
                    if *variadic {
                        ps.push("...".into());
                    }
                    if ps.is_empty() {
                        ps.push("void".into());
                    }
                    decl = format!("{decl}({})", ps.join(", "));
                    cur = *ret;
                    ptr = true;
                }
                _ => match spell.base(self, cur, ptr) {
                    Base::Done(base) if decl.is_empty() => return base,
                    Base::Done(base) => return format!("{base} {decl}"),
                    Base::Through(next) => cur = next,
                },
            }
        }
    }
}
