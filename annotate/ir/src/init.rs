//! Initializers: what a global starts with, resolved against its type.

use crate::Loc;
use serde::{Deserialize, Serialize};

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
