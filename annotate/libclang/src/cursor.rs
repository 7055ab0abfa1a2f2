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

    pub fn translation_unit(&self) -> &'tu TranslationUnit<'tu> {
        self.tu
    }

    pub fn kind(&self) -> Kind {
        Kind::from_raw(self.raw.kind)
    }

    /// libclang's name for this cursor's kind (for messages).
    pub fn kind_spelling(&self) -> String {
        // SAFETY: the string is disposed.
        unsafe { take_string(clang_getCursorKindSpelling(self.raw.kind)) }
    }

    pub fn is_declaration(&self) -> bool {
        // SAFETY: a check on the kind value.
        unsafe { clang_isDeclaration(self.raw.kind) != 0 }
    }

    pub fn is_expression(&self) -> bool {
        // SAFETY: a check on the kind value.
        unsafe { clang_isExpression(self.raw.kind) != 0 }
    }

    pub fn is_attribute(&self) -> bool {
        // SAFETY: a check on the kind value.
        unsafe { clang_isAttribute(self.raw.kind) != 0 }
    }

    pub fn spelling(&self) -> String {
        // SAFETY: the cursor is alive; the string is disposed.
        unsafe { take_string(clang_getCursorSpelling(self.raw)) }
    }

    pub fn display_name(&self) -> String {
        // SAFETY: as above.
        unsafe { take_string(clang_getCursorDisplayName(self.raw)) }
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

    /// Where the cursor's text was spelled (inside a macro body, for a
    /// declaration that a macro makes).
    pub fn spelling_location(&self) -> Location {
        // SAFETY: the cursor is alive.
        Location::spelling_from_raw(unsafe { clang_getCursorLocation(self.raw) })
    }

    pub fn is_in_main_file(&self) -> bool {
        // SAFETY: the cursor is alive.
        unsafe { clang_Location_isFromMainFile(clang_getCursorLocation(self.raw)) != 0 }
    }

    pub fn extent(&self) -> Extent {
        // SAFETY: the cursor is alive.
        Extent::from_raw(unsafe { clang_getCursorExtent(self.raw) })
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

    pub fn semantic_parent(&self) -> Option<Cursor<'tu>> {
        // SAFETY: the cursor is alive.
        self.wrap(unsafe { clang_getCursorSemanticParent(self.raw) })
    }

    pub fn lexical_parent(&self) -> Option<Cursor<'tu>> {
        // SAFETY: the cursor is alive.
        self.wrap(unsafe { clang_getCursorLexicalParent(self.raw) })
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

    pub fn result_type(&self) -> Type<'tu> {
        // SAFETY: the cursor is alive.
        Type::from_raw(unsafe { clang_getCursorResultType(self.raw) }, self.tu)
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

    pub fn enum_value(&self) -> i64 {
        // SAFETY: the cursor is alive.
        unsafe { clang_getEnumConstantDeclValue(self.raw) }
    }

    pub fn num_arguments(&self) -> Option<u32> {
        // SAFETY: the cursor is alive.
        let n = unsafe { clang_Cursor_getNumArguments(self.raw) };
        u32::try_from(n).ok()
    }

    pub fn argument(&self, i: u32) -> Option<Cursor<'tu>> {
        // SAFETY: the cursor is alive.
        self.wrap(unsafe { clang_Cursor_getArgument(self.raw, i) })
    }

    pub fn is_macro_function_like(&self) -> bool {
        // SAFETY: the cursor is alive.
        unsafe { clang_Cursor_isMacroFunctionLike(self.raw) != 0 }
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

    /// For an operator expression, the operator's spelling, read from the
    /// tokens (libclang 14 has no operator-kind query). For a binary or
    /// compound-assignment operator: the first token after the left
    /// operand's extent; for a unary operator: the first token, or the last
    /// for postfix `++`/`--`.
    pub fn operator(&self) -> Option<String> {
        let tokens = self.tokens();
        match self.kind() {
            Kind::BinaryOperator | Kind::CompoundAssignOperator => {
                let lhs = self.children().into_iter().next()?;
                let lhs_end = lhs.extent().end.offset;
                tokens
                    .iter()
                    .find(|t| {
                        t.start.offset >= lhs_end
                            && t.kind == crate::TokenKind::Punctuation
                            && t.spelling != ")"
                            && t.spelling != "]"
                    })
                    .map(|t| t.spelling.clone())
            }
            Kind::UnaryOperator => {
                let first = tokens.first()?;
                if first.kind == crate::TokenKind::Punctuation && first.spelling != "(" {
                    return Some(first.spelling.clone());
                }
                let last = tokens.last()?;
                (last.spelling == "++" || last.spelling == "--").then(|| last.spelling.clone())
            }
            _ => None,
        }
    }
}
