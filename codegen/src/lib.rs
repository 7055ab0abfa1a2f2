//! Generates `replace_module()` handlers for review.

#![forbid(unsafe_code)]
