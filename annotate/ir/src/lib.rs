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

mod body;
pub mod cdecl;
pub mod class;
mod init;
pub mod kernel;
pub mod sections;
pub mod table;
mod types;

pub use body::*;
pub use init::*;
pub use types::*;

use serde::{Deserialize, Serialize};

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
