//! Types, borrowed from their translation unit.

use crate::cursor::Cursor;
use crate::{take_string, TranslationUnit};
use clang_sys::*;
use std::os::raw::c_void;

/// The type kinds modswap distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TypeKind {
    Invalid,
    Void,
    Bool,
    /// Any integer or character type, incl. enums' underlying types.
    Integer,
    Floating,
    Pointer,
    Record,
    Enum,
    Typedef,
    ConstantArray,
    IncompleteArray,
    VariableArray,
    FunctionProto,
    FunctionNoProto,
    Elaborated,
    /// `__attribute__((...))`-wrapped types, atomics and other sugar.
    Attributed,
    Other(i32),
}

#[derive(Clone, Copy)]
pub struct Type<'tu> {
    raw: CXType,
    tu: &'tu TranslationUnit<'tu>,
}

impl std::fmt::Debug for Type<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Type({:?} {:?})", self.kind(), self.spelling())
    }
}

impl<'tu> Type<'tu> {
    pub(crate) fn from_raw(raw: CXType, tu: &'tu TranslationUnit<'tu>) -> Type<'tu> {
        Type { raw, tu }
    }

    fn wrap(&self, raw: CXType) -> Option<Type<'tu>> {
        (raw.kind != CXType_Invalid).then_some(Type { raw, tu: self.tu })
    }

    pub fn kind(&self) -> TypeKind {
        match self.raw.kind {
            CXType_Invalid => TypeKind::Invalid,
            CXType_Void => TypeKind::Void,
            CXType_Bool => TypeKind::Bool,
            CXType_Char_U | CXType_UChar | CXType_Char16 | CXType_Char32 | CXType_UShort
            | CXType_UInt | CXType_ULong | CXType_ULongLong | CXType_UInt128 | CXType_Char_S
            | CXType_SChar | CXType_WChar | CXType_Short | CXType_Int | CXType_Long
            | CXType_LongLong | CXType_Int128 => TypeKind::Integer,
            CXType_Float | CXType_Double | CXType_LongDouble | CXType_Float128 | CXType_Half
            | CXType_Float16 => TypeKind::Floating,
            CXType_Pointer => TypeKind::Pointer,
            CXType_Record => TypeKind::Record,
            CXType_Enum => TypeKind::Enum,
            CXType_Typedef => TypeKind::Typedef,
            CXType_ConstantArray => TypeKind::ConstantArray,
            CXType_IncompleteArray => TypeKind::IncompleteArray,
            CXType_VariableArray | CXType_DependentSizedArray => TypeKind::VariableArray,
            CXType_FunctionProto => TypeKind::FunctionProto,
            CXType_FunctionNoProto => TypeKind::FunctionNoProto,
            CXType_Elaborated => TypeKind::Elaborated,
            CXType_Attributed | CXType_Atomic => TypeKind::Attributed,
            other => TypeKind::Other(other),
        }
    }

    /// Is this a signed integer type (after looking through sugar)?
    pub fn is_signed_integer(&self) -> bool {
        matches!(
            self.canonical().raw.kind,
            CXType_Char_S
                | CXType_SChar
                | CXType_WChar
                | CXType_Short
                | CXType_Int
                | CXType_Long
                | CXType_LongLong
                | CXType_Int128
        )
    }

    pub fn spelling(&self) -> String {
        // SAFETY: the type's TU is alive; the string is disposed.
        unsafe { take_string(clang_getTypeSpelling(self.raw)) }
    }

    /// The type with all typedefs and sugar removed.
    pub fn canonical(&self) -> Type<'tu> {
        // SAFETY: as above.
        Type::from_raw(unsafe { clang_getCanonicalType(self.raw) }, self.tu)
    }

    /// For `struct foo` written with the keyword: the type named.
    pub fn named(&self) -> Type<'tu> {
        // SAFETY: as above.
        let t = unsafe { clang_Type_getNamedType(self.raw) };
        self.wrap(t).unwrap_or(*self)
    }

    /// For an attributed type (`T __attribute__((...))`): the type under it.
    pub fn modified(&self) -> Type<'tu> {
        // SAFETY: as above.
        let t = unsafe { clang_Type_getModifiedType(self.raw) };
        self.wrap(t).unwrap_or(*self)
    }

    pub fn pointee(&self) -> Option<Type<'tu>> {
        // SAFETY: as above.
        self.wrap(unsafe { clang_getPointeeType(self.raw) })
    }

    /// The element type of an array.
    pub fn element(&self) -> Option<Type<'tu>> {
        // SAFETY: as above.
        self.wrap(unsafe { clang_getArrayElementType(self.raw) })
    }

    /// The number of elements of a constant array.
    pub fn array_len(&self) -> Option<u64> {
        // SAFETY: as above.
        let n = unsafe { clang_getArraySize(self.raw) };
        u64::try_from(n).ok()
    }

    pub fn size_of(&self) -> Option<u64> {
        // SAFETY: as above.
        let n = unsafe { clang_Type_getSizeOf(self.raw) };
        u64::try_from(n).ok()
    }

    pub fn align_of(&self) -> Option<u64> {
        // SAFETY: as above.
        let n = unsafe { clang_Type_getAlignOf(self.raw) };
        u64::try_from(n).ok()
    }

    pub fn is_const(&self) -> bool {
        // SAFETY: as above.
        unsafe { clang_isConstQualifiedType(self.raw) != 0 }
    }

    pub fn is_volatile(&self) -> bool {
        // SAFETY: as above.
        unsafe { clang_isVolatileQualifiedType(self.raw) != 0 }
    }

    /// The declaration of a record, enum or typedef type.
    pub fn declaration(&self) -> Option<Cursor<'tu>> {
        // SAFETY: as above.
        let c = unsafe { clang_getTypeDeclaration(self.raw) };
        // SAFETY: checks on a cursor value.
        let bad = unsafe { clang_Cursor_isNull(c) != 0 || clang_isInvalid(c.kind) != 0 };
        (!bad).then(|| Cursor::from_raw(c, self.tu))
    }

    /// The result type of a function type.
    pub fn result(&self) -> Option<Type<'tu>> {
        // SAFETY: as above.
        self.wrap(unsafe { clang_getResultType(self.raw) })
    }

    /// The parameter types of a function prototype.
    pub fn arguments(&self) -> Vec<Type<'tu>> {
        // SAFETY: as above.
        let n = unsafe { clang_getNumArgTypes(self.raw) };
        (0..u32::try_from(n).unwrap_or(0))
            // SAFETY: i < n.
            .filter_map(|i| self.wrap(unsafe { clang_getArgType(self.raw, i) }))
            .collect()
    }

    pub fn is_variadic(&self) -> bool {
        // SAFETY: as above.
        unsafe { clang_isFunctionTypeVariadic(self.raw) != 0 }
    }

    /// The fields of a record type, in declaration order (anonymous member
    /// records appear as one field each).
    pub fn fields(&self) -> Vec<Cursor<'tu>> {
        struct State<'tu> {
            out: Vec<Cursor<'tu>>,
            tu: &'tu TranslationUnit<'tu>,
        }
        extern "C" fn visit(c: CXCursor, data: CXClientData) -> CXVisitorResult {
            // SAFETY: `data` is the State below, alive during the call.
            let st = unsafe { &mut *(data as *mut State<'_>) };
            st.out.push(Cursor::from_raw(c, st.tu));
            CXVisit_Continue
        }
        let mut st = State {
            out: Vec::new(),
            tu: self.tu,
        };
        // SAFETY: the callback only runs during this call.
        unsafe {
            clang_Type_visitFields(self.raw, visit, &mut st as *mut State<'_> as *mut c_void);
        }
        st.out
    }
}
