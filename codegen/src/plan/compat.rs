//! Compatibility: what keeps two versions from being swapped in place. Each
//! problem is an [`Incompatible`]; [`plan`](super::plan) collects every one
//! and fails with the list. The static-section rule is the loader's, shared
//! with `modswap verify`: [`SectionChange`].

use modswap_ir::class::Class;
use modswap_ir::sections::SectionChange;
use std::fmt;

/// One reason the two versions cannot be swapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incompatible {
    /// A global's static section changes between the versions.
    Section {
        key: String,
        /// `file.c:12`.
        at: String,
        change: SectionChange,
        /// The global is new in this version.
        new_global: bool,
    },
    /// A global of the old version that is in a static section is gone.
    Removed {
        key: String,
        at: String,
        section: String,
    },
    /// A static_new or static_old object changed its layout.
    Layout {
        key: String,
        at: String,
        class: Class,
        /// What changed, `; `-separated.
        diff: String,
    },
}

impl fmt::Display for Incompatible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Incompatible::Section {
                key,
                at,
                change,
                new_global,
            } => section(f, key, at, change, *new_global),
            Incompatible::Removed { key, at, section } => write!(
                f,
                "{key} ({at}, old version) is in static section {section}, and the new version no \
                 longer has it: a swap cannot drop a static section (the kernel may still \
                 hold its address; the loader refuses the swap). Keep the object in the new \
                 version, marked the same way, even if unused."
            ),
            Incompatible::Layout {
                key,
                at,
                class: Class::StaticNew,
                diff,
            } => write!(
                f,
                "{key} ({at}) is static_new, but its layout changed: {diff}. Its section keeps \
                 its address and size across a swap (the kernel holds pointers to it; \
                 the new contents are copied over the old ones), so its layout cannot \
                 change. Options: keep the old layout, or leave this object as it is \
                 and put what changed in a new object."
            ),
            Incompatible::Layout { key, at, diff, .. } => write!(
                f,
                "{key} ({at}) is static_old, but its layout changed: {diff}. A static_old \
                 object keeps its address and its old contents across a swap (the \
                 kernel holds pointers to it), and its section's size and layout are \
                 fixed, so it cannot grow or be re-laid out in place. Options: keep the \
                 old layout in the new version, or keep the object as it was and move \
                 the new state elsewhere (a new global, transferred or initialized by \
                 the handler)."
            ),
        }
    }
}

fn section(
    f: &mut fmt::Formatter<'_>,
    key: &str,
    at: &str,
    change: &SectionChange,
    new_global: bool,
) -> fmt::Result {
    match change {
        SectionChange::Added { new: s } if !new_global => write!(
            f,
            "{key} ({at}) is in static section {s} in the new version but in none in the \
             old one: a swap cannot add a static section (the old object is an ordinary \
             global that moves; the loader refuses the swap). Mark it the same way in \
             both versions, or leave it unmarked in the new one."
        ),
        SectionChange::Added { new: s } => write!(
            f,
            "{key} ({at}) is new and in static section {s}: a swap cannot add a static \
             section (the loader refuses it). Leave the new global unmarked (it keeps \
             its initializer), or add it to the old version first."
        ),
        SectionChange::Dropped { old: o } => write!(
            f,
            "{key} ({at}) is in static section {o} in the old version but in none in the \
             new one: a swap cannot drop a static section (the kernel still holds the \
             object's address; the loader refuses the swap). Keep the marker."
        ),
        SectionChange::Moved { old: o, new: s } => write!(
            f,
            "{key} ({at}) moved from static section {o} to {s}: a swap cannot change an \
             object's static section. Keep the old marker."
        ),
    }
}
