//! Cursors: positions in the AST, borrowed from their translation unit.

use crate::location::{Extent, Location};
use crate::token::Token;
use crate::types::Type;
use crate::{take_string, TranslationUnit};
use clang_sys::*;
use std::ffi::CStr;
use std::os::raw::c_void;

macro_rules! kinds {
    ($($name:ident = $raw:ident,)*) => {
        /// The cursor kinds modswap looks at; everything else is `Other`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Kind {
            $($name,)*
            Other(i32),
        }
        impl Kind {
            fn from_raw(k: CXCursorKind) -> Kind {
                $(if k == $raw { return Kind::$name; })*
                Kind::Other(k)
            }
        }
    };
}

kinds! {
    TranslationUnit = CXCursor_TranslationUnit,
    StructDecl = CXCursor_StructDecl,
    UnionDecl = CXCursor_UnionDecl,
    EnumDecl = CXCursor_EnumDecl,
    FieldDecl = CXCursor_FieldDecl,
    EnumConstantDecl = CXCursor_EnumConstantDecl,
    FunctionDecl = CXCursor_FunctionDecl,
    VarDecl = CXCursor_VarDecl,
    ParmDecl = CXCursor_ParmDecl,
    TypedefDecl = CXCursor_TypedefDecl,
    TypeRef = CXCursor_TypeRef,
    MemberRef = CXCursor_MemberRef,
    LabelRef = CXCursor_LabelRef,
    UnexposedExpr = CXCursor_UnexposedExpr,
    DeclRefExpr = CXCursor_DeclRefExpr,
    MemberRefExpr = CXCursor_MemberRefExpr,
    CallExpr = CXCursor_CallExpr,
    BlockExpr = CXCursor_BlockExpr,
    IntegerLiteral = CXCursor_IntegerLiteral,
    FloatingLiteral = CXCursor_FloatingLiteral,
    StringLiteral = CXCursor_StringLiteral,
    CharacterLiteral = CXCursor_CharacterLiteral,
    ParenExpr = CXCursor_ParenExpr,
    UnaryOperator = CXCursor_UnaryOperator,
    ArraySubscriptExpr = CXCursor_ArraySubscriptExpr,
    BinaryOperator = CXCursor_BinaryOperator,
    CompoundAssignOperator = CXCursor_CompoundAssignOperator,
    ConditionalOperator = CXCursor_ConditionalOperator,
    CStyleCastExpr = CXCursor_CStyleCastExpr,
    CompoundLiteralExpr = CXCursor_CompoundLiteralExpr,
    InitListExpr = CXCursor_InitListExpr,
    StmtExpr = CXCursor_StmtExpr,
    GenericSelectionExpr = CXCursor_GenericSelectionExpr,
    UnaryExpr = CXCursor_UnaryExpr,
    UnexposedStmt = CXCursor_UnexposedStmt,
    CompoundStmt = CXCursor_CompoundStmt,
    IfStmt = CXCursor_IfStmt,
    ForStmt = CXCursor_ForStmt,
    ReturnStmt = CXCursor_ReturnStmt,
    AsmStmt = CXCursor_AsmStmt,
    DeclStmt = CXCursor_DeclStmt,
    NullStmt = CXCursor_NullStmt,
    UnexposedAttr = CXCursor_UnexposedAttr,
    AlignedAttr = CXCursor_AlignedAttr,
    PackedAttr = CXCursor_PackedAttr,
    VisibilityAttr = CXCursor_VisibilityAttr,
    InclusionDirective = CXCursor_InclusionDirective,
    MacroDefinition = CXCursor_MacroDefinition,
    MacroExpansion = CXCursor_MacroExpansion,
    StaticAssert = CXCursor_StaticAssert,
    UnexposedDecl = CXCursor_UnexposedDecl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StorageClass {
    None,
    Extern,
    Static,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Linkage {
    Invalid,
    NoLinkage,
    Internal,
    External,
}

/// The value of a constant expression.
#[derive(Debug, Clone, PartialEq)]
pub enum EvalResult {
    Int(i64),
    Unsigned(u64),
    Float(f64),
    Str(String),
}

/// A position in the AST of one translation unit.
#[derive(Clone, Copy)]
pub struct Cursor<'tu> {
    raw: CXCursor,
    tu: &'tu TranslationUnit<'tu>,
}

impl std::fmt::Debug for Cursor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Cursor({:?} {:?} @ {})",
            self.kind(),
            self.spelling(),
            self.location()
        )
    }
}

impl PartialEq for Cursor<'_> {
    fn eq(&self, other: &Self) -> bool {
        // SAFETY: both cursors are alive (borrowed TUs).
        unsafe { clang_equalCursors(self.raw, other.raw) != 0 }
    }
}

impl Eq for Cursor<'_> {}

impl std::hash::Hash for Cursor<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // SAFETY: the cursor is alive.
        unsafe { clang_hashCursor(self.raw) }.hash(state)
    }
}

/// What a visitor returns.
pub enum Visit {
    Break,
    Continue,
    Recurse,
}

impl<'tu> Cursor<'tu> {
    pub(crate) fn from_raw(raw: CXCursor, tu: &'tu TranslationUnit<'tu>) -> Cursor<'tu> {
        Cursor { raw, tu }
    }

    fn wrap(&self, raw: CXCursor) -> Option<Cursor<'tu>> {
        // SAFETY: checks on a cursor value.
        let null = unsafe { clang_Cursor_isNull(raw) != 0 || clang_isInvalid(raw.kind) != 0 };
        (!null).then_some(Cursor { raw, tu: self.tu })
    }

    pub fn kind(&self) -> Kind {
        Kind::from_raw(self.raw.kind)
    }

    pub fn is_expression(&self) -> bool {
        // SAFETY: a check on the kind value.
        unsafe { clang_isExpression(self.raw.kind) != 0 }
    }

    pub fn spelling(&self) -> String {
        // SAFETY: the cursor is alive; the string is disposed.
        unsafe { take_string(clang_getCursorSpelling(self.raw)) }
    }

    /// The unified symbol resolution: a name that identifies a declaration
    /// across translation units (e.g. `c:@S@file_system_type`).
    pub fn usr(&self) -> String {
        // SAFETY: as above.
        unsafe { take_string(clang_getCursorUSR(self.raw)) }
    }

    /// Where the cursor is in the file, with macro expansions traced to the
    /// place the macro was invoked.
    pub fn location(&self) -> Location {
        // SAFETY: the cursor is alive.
        Location::from_raw(unsafe { clang_getCursorLocation(self.raw) })
    }

    /// The file of [`Cursor::location`], as an identity only: cheaper than
    /// the location (no file name is read), for filtering cursors by file.
    pub fn file_id(&self) -> Option<FileId> {
        // SAFETY: the cursor is alive.
        file_id_of(unsafe { clang_getCursorLocation(self.raw) })
    }

    /// The file and byte offset where [`Cursor::extent`] ends (just past
    /// its last character), without reading the file's name.
    pub fn extent_end(&self) -> Option<(FileId, u32)> {
        let mut file: CXFile = std::ptr::null_mut();
        let (mut line, mut column, mut offset) = (0u32, 0u32, 0u32);
        // SAFETY: the cursor is alive; plain out-parameters.
        unsafe {
            let end = clang_getRangeEnd(clang_getCursorExtent(self.raw));
            clang_getFileLocation(end, &mut file, &mut line, &mut column, &mut offset);
        }
        (!file.is_null()).then_some((FileId(file as usize), offset))
    }

    pub fn extent(&self) -> Extent {
        // SAFETY: the cursor is alive.
        Extent::from_raw(unsafe { clang_getCursorExtent(self.raw) })
    }

    /// Whether both ends of [`Cursor::extent`] are text of a file, neither
    /// from a macro's body nor inside a macro invocation's arguments.
    pub fn extent_is_literal(&self) -> bool {
        // SAFETY: the cursor is alive; locations are plain values.
        unsafe {
            let range = clang_getCursorExtent(self.raw);
            literal(clang_getRangeStart(range)) && literal(clang_getRangeEnd(range))
        }
    }

    /// The tokens of this cursor's extent.
    pub fn tokens(&self) -> Vec<Token> {
        self.tu.tokenize(&self.extent())
    }

    /// Visits descendants depth-first; `f` decides whether to recurse.
    pub fn visit<F>(&self, mut f: F)
    where
        F: FnMut(Cursor<'tu>, Cursor<'tu>) -> Visit,
    {
        struct State<'a, 'tu, F> {
            f: &'a mut F,
            tu: &'tu TranslationUnit<'tu>,
        }
        extern "C" fn trampoline<'tu, F>(
            c: CXCursor,
            p: CXCursor,
            data: CXClientData,
        ) -> CXChildVisitResult
        where
            F: FnMut(Cursor<'tu>, Cursor<'tu>) -> Visit,
        {
            // SAFETY: `data` is the &mut State passed below, alive for the
            // duration of clang_visitChildren.
            let state = unsafe { &mut *(data as *mut State<'_, 'tu, F>) };
            let c = Cursor {
                raw: c,
                tu: state.tu,
            };
            let p = Cursor {
                raw: p,
                tu: state.tu,
            };
            match (state.f)(c, p) {
                Visit::Break => CXChildVisit_Break,
                Visit::Continue => CXChildVisit_Continue,
                Visit::Recurse => CXChildVisit_Recurse,
            }
        }
        let mut state = State {
            f: &mut f,
            tu: self.tu,
        };
        // SAFETY: the trampoline only runs during this call and casts the
        // client data back to the State it was made from.
        unsafe {
            clang_visitChildren(
                self.raw,
                trampoline::<F>,
                &mut state as *mut State<'_, 'tu, F> as *mut c_void,
            );
        }
    }

    /// The direct children.
    pub fn children(&self) -> Vec<Cursor<'tu>> {
        let mut out = Vec::new();
        self.visit(|c, _| {
            out.push(c);
            Visit::Continue
        });
        out
    }

    /// The declaration a reference or expression refers to.
    pub fn referenced(&self) -> Option<Cursor<'tu>> {
        // SAFETY: the cursor is alive.
        self.wrap(unsafe { clang_getCursorReferenced(self.raw) })
    }

    /// The defining declaration, if this TU has it.
    pub fn definition(&self) -> Option<Cursor<'tu>> {
        // SAFETY: the cursor is alive.
        self.wrap(unsafe { clang_getCursorDefinition(self.raw) })
    }

    pub fn canonical(&self) -> Cursor<'tu> {
        // SAFETY: the cursor is alive; a canonical cursor always exists.
        let raw = unsafe { clang_getCanonicalCursor(self.raw) };
        Cursor { raw, tu: self.tu }
    }

    pub fn is_definition(&self) -> bool {
        // SAFETY: the cursor is alive.
        unsafe { clang_isCursorDefinition(self.raw) != 0 }
    }

    pub fn ty(&self) -> Type<'tu> {
        // SAFETY: the cursor is alive.
        Type::from_raw(unsafe { clang_getCursorType(self.raw) }, self.tu)
    }

    /// The underlying type of a typedef declaration.
    pub fn typedef_underlying(&self) -> Type<'tu> {
        // SAFETY: the cursor is alive.
        Type::from_raw(
            unsafe { clang_getTypedefDeclUnderlyingType(self.raw) },
            self.tu,
        )
    }

    pub fn storage_class(&self) -> StorageClass {
        // SAFETY: the cursor is alive.
        match unsafe { clang_Cursor_getStorageClass(self.raw) } {
            CX_SC_None => StorageClass::None,
            CX_SC_Extern => StorageClass::Extern,
            CX_SC_Static => StorageClass::Static,
            _ => StorageClass::Other,
        }
    }

    pub fn linkage(&self) -> Linkage {
        // SAFETY: the cursor is alive.
        match unsafe { clang_getCursorLinkage(self.raw) } {
            CXLinkage_NoLinkage => Linkage::NoLinkage,
            CXLinkage_Internal => Linkage::Internal,
            CXLinkage_UniqueExternal | CXLinkage_External => Linkage::External,
            _ => Linkage::Invalid,
        }
    }

    /// Does this variable have static storage duration (file scope or
    /// function-scope `static`)?
    pub fn has_global_storage(&self) -> bool {
        // SAFETY: the cursor is alive.
        unsafe { clang_Cursor_hasVarDeclGlobalStorage(self.raw) == 1 }
    }

    /// The initializer of a variable declaration.
    pub fn var_initializer(&self) -> Option<Cursor<'tu>> {
        // SAFETY: the cursor is alive.
        self.wrap(unsafe { clang_Cursor_getVarDeclInitializer(self.raw) })
    }

    pub fn is_bitfield(&self) -> bool {
        // SAFETY: the cursor is alive.
        unsafe { clang_Cursor_isBitField(self.raw) != 0 }
    }

    /// The width of a bit-field member.
    pub fn bitfield_width(&self) -> Option<u32> {
        if !self.is_bitfield() {
            return None;
        }
        // SAFETY: the cursor is alive.
        let w = unsafe { clang_getFieldDeclBitWidth(self.raw) };
        u32::try_from(w).ok()
    }

    /// The offset of a field in bits from the start of its record.
    pub fn field_offset_bits(&self) -> Option<u64> {
        // SAFETY: the cursor is alive.
        let off = unsafe { clang_Cursor_getOffsetOfField(self.raw) };
        u64::try_from(off).ok()
    }

    /// A record or namespace without a name (an anonymous member record).
    pub fn is_anonymous(&self) -> bool {
        // SAFETY: the cursor is alive.
        unsafe { clang_Cursor_isAnonymous(self.raw) != 0 }
    }

    /// An unnamed struct/union member whose fields belong to the parent.
    pub fn is_anonymous_record_decl(&self) -> bool {
        // SAFETY: the cursor is alive.
        unsafe { clang_Cursor_isAnonymousRecordDecl(self.raw) != 0 }
    }

    pub fn argument(&self, i: u32) -> Option<Cursor<'tu>> {
        // SAFETY: the cursor is alive.
        self.wrap(unsafe { clang_Cursor_getArgument(self.raw, i) })
    }

    /// The value of a constant expression, if libclang can compute it.
    pub fn evaluate(&self) -> Option<EvalResult> {
        // SAFETY: the result is disposed after reading; a string result is
        // copied out before that.
        unsafe {
            let r = clang_Cursor_Evaluate(self.raw);
            if r.is_null() {
                return None;
            }
            let out = match clang_EvalResult_getKind(r) {
                CXEval_Int => {
                    if clang_EvalResult_isUnsignedInt(r) != 0 {
                        Some(EvalResult::Unsigned(clang_EvalResult_getAsUnsigned(r)))
                    } else {
                        Some(EvalResult::Int(clang_EvalResult_getAsLongLong(r)))
                    }
                }
                CXEval_Float => Some(EvalResult::Float(clang_EvalResult_getAsDouble(r))),
                CXEval_StrLiteral | CXEval_CFStr | CXEval_ObjCStrLiteral => {
                    let p = clang_EvalResult_getAsStr(r);
                    (!p.is_null())
                        .then(|| EvalResult::Str(CStr::from_ptr(p).to_string_lossy().into_owned()))
                }
                _ => None,
            };
            clang_EvalResult_dispose(r);
            out
        }
    }

    /// The declaration as clang would print it.
    pub fn pretty_printed(&self) -> String {
        // SAFETY: the policy is made from this cursor and disposed after use.
        unsafe {
            let policy = clang_getCursorPrintingPolicy(self.raw);
            let s = take_string(clang_getCursorPrettyPrinted(self.raw, policy));
            clang_PrintingPolicy_dispose(policy);
            s
        }
    }

    /// For an operator expression, the operator (`=`, `+=`, `&`, `*`, `++`,
    /// `-`, ...).
    ///
    /// libclang 14 has no operator-kind query, prints no expressions, and
    /// tokens do not show operators that come from macro bodies. So the
    /// kind of operator comes from the AST's structure, which macros do not
    /// hide, and tokens only supply the exact spelling when they agree:
    /// - an assignment's left operand is an lvalue used as such (not under
    ///   an implicit lvalue-to-rvalue conversion); other binary operators
    ///   convert their operands;
    /// - `&x` has type pointer-to-(type of x); `*p` has the pointee type;
    /// - `++`/`--` take an unconverted lvalue; `-x`, `!x`, `~x` do not.
    ///
    /// Returns `Some("=")` for every simple assignment, `Some("op=")` for a
    /// compound assignment whose spelling is hidden by a macro, and `None`
    /// for a binary or unary operator that is not an assignment, `&`, `*`
    /// or an increment and whose spelling is hidden by a macro.
    pub fn operator(&self) -> Option<String> {
        let kids = self.children();
        // Tokenizing is the costly part: only when the structure leaves
        // the spelling open.
        let tokens = || self.tokens();
        match self.kind() {
            Kind::CompoundAssignOperator => {
                let op = between(&tokens(), kids.first()?, kids.get(1)?);
                Some(match op {
                    Some(o) if o.len() >= 2 && o.ends_with('=') && o != "==" => o,
                    _ => "op=".to_string(),
                })
            }
            Kind::BinaryOperator => {
                let [lhs, rhs] = kids.as_slice() else {
                    return None;
                };
                if is_lvalue_use(*lhs) {
                    return Some("=".to_string());
                }
                between(&tokens(), lhs, rhs).filter(|o| o != "=")
            }
            Kind::UnaryOperator => {
                let [operand] = kids.as_slice() else {
                    return None;
                };
                let (me, of) = (self.ty().canonical(), operand.ty().canonical());
                if me.kind() == crate::TypeKind::Pointer
                    && me.pointee().map(|p| p.canonical().spelling()) == Some(of.spelling())
                {
                    return Some("&".to_string());
                }
                if of.kind() == crate::TypeKind::Pointer
                    && of.pointee().map(|p| p.canonical().spelling()) == Some(me.spelling())
                    && !is_lvalue_use(*operand)
                {
                    return Some("*".to_string());
                }
                let tokens = tokens();
                let first = tokens.first().map(|t| t.spelling.as_str());
                let last = tokens.last().map(|t| t.spelling.as_str());
                if is_lvalue_use(*operand) {
                    return Some(match (first, last) {
                        (Some(o @ ("++" | "--")), _) | (_, Some(o @ ("++" | "--"))) => {
                            o.to_string()
                        }
                        _ => "++".to_string(),
                    });
                }
                match first {
                    Some(o @ ("-" | "+" | "!" | "~")) => Some(o.to_string()),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

/// Is `c` an lvalue used as an lvalue: a name, member, element or
/// dereference not wrapped in an implicit conversion?
fn is_lvalue_use(c: Cursor<'_>) -> bool {
    match c.kind() {
        Kind::DeclRefExpr => c
            .referenced()
            .is_some_and(|d| matches!(d.kind(), Kind::VarDecl | Kind::ParmDecl | Kind::FieldDecl)),
        Kind::MemberRefExpr | Kind::ArraySubscriptExpr => true,
        Kind::ParenExpr => c.children().first().is_some_and(|k| is_lvalue_use(*k)),
        Kind::UnaryOperator => {
            // `*p` is an lvalue; `-x` is not.
            let kids = c.children();
            let [operand] = kids.as_slice() else {
                return false;
            };
            let of = operand.ty().canonical();
            of.kind() == crate::TypeKind::Pointer
                && of.pointee().map(|p| p.canonical().spelling())
                    == Some(c.ty().canonical().spelling())
        }
        _ => false,
    }
}

/// The one punctuation token strictly between two operands' extents, if
/// the tokens show it (they do not when the operator comes from a macro).
fn between(tokens: &[Token], lhs: &Cursor<'_>, rhs: &Cursor<'_>) -> Option<String> {
    let (l, r) = (lhs.extent().end.offset, rhs.extent().start.offset);
    if r <= l {
        return None;
    }
    let mid: Vec<&Token> = tokens
        .iter()
        .filter(|t| t.start.offset >= l && t.end.offset <= r)
        .collect();
    match mid.as_slice() {
        [t] if t.kind == crate::TokenKind::Punctuation => Some(t.spelling.clone()),
        _ => None,
    }
}

/// A file of a translation unit, as an identity: equal ids are the same
/// file of the same translation unit (ids of different units are not
/// comparable). Read its name through a [`crate::Location`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId(usize);

impl FileId {
    pub(crate) fn from_raw(file: CXFile) -> FileId {
        FileId(file as usize)
    }
}

fn file_id_of(loc: CXSourceLocation) -> Option<FileId> {
    let mut file: CXFile = std::ptr::null_mut();
    let (mut line, mut column, mut offset) = (0u32, 0u32, 0u32);
    // SAFETY: plain out-parameters.
    unsafe { clang_getFileLocation(loc, &mut file, &mut line, &mut column, &mut offset) };
    (!file.is_null()).then_some(FileId(file as usize))
}

/// Whether a location is spelled where it is expanded (no macro involved).
///
/// # Safety
/// `loc` must belong to a live translation unit.
unsafe fn literal(loc: CXSourceLocation) -> bool {
    let (mut f1, mut f2): (CXFile, CXFile) = (std::ptr::null_mut(), std::ptr::null_mut());
    let (mut o1, mut o2) = (0u32, 0u32);
    let mut unused = 0u32;
    clang_getExpansionLocation(loc, &mut f1, &mut unused, &mut unused, &mut o1);
    clang_getSpellingLocation(loc, &mut f2, &mut unused, &mut unused, &mut o2);
    !f1.is_null() && clang_File_isEqual(f1, f2) != 0 && o1 == o2
}
