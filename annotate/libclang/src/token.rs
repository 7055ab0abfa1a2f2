//! Tokens, copied out of libclang.

use crate::location::{Extent, Location};
use crate::{take_string, TranslationUnit};
use clang_sys::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Punctuation,
    Keyword,
    Identifier,
    Literal,
    Comment,
}

/// One token: its kind, text and position.
#[derive(Debug, Clone)]
pub struct Token {
    pub kind: TokenKind,
    pub spelling: String,
    pub start: Location,
    pub end: Location,
}

impl Token {
    pub(crate) fn from_raw(tu: &TranslationUnit<'_>, t: CXToken) -> Token {
        // SAFETY: `t` comes from clang_tokenize on this TU and is still alive.
        unsafe {
            let kind = match clang_getTokenKind(t) {
                CXToken_Punctuation => TokenKind::Punctuation,
                CXToken_Keyword => TokenKind::Keyword,
                CXToken_Identifier => TokenKind::Identifier,
                CXToken_Literal => TokenKind::Literal,
                _ => TokenKind::Comment,
            };
            let spelling = take_string(clang_getTokenSpelling(tu.raw, t));
            let ext = Extent::from_raw(clang_getTokenExtent(tu.raw, t));
            Token {
                kind,
                spelling,
                start: ext.start,
                end: ext.end,
            }
        }
    }
}
