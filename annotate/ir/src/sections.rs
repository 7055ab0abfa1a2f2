//! The names shared with the loader, read from the one definition:
//! `loader/include/linux/modswap.h`, which the loader patch series installs
//! unchanged as `include/linux/modswap.h`.

use std::sync::OnceLock;

/// The header's text, as compiled into the toolkit.
pub const MODSWAP_H: &str = include_str!("../../../loader/include/linux/modswap.h");

/// Section names and prefixes, parsed from [`MODSWAP_H`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// `.static_old.`: prefix of the sections whose content survives a swap.
    pub static_old: String,
    /// `.static_new.`: prefix of the sections whose content the new version replaces.
    pub static_new: String,
    /// `.modswap.info`: the section that marks an image as hotswappable.
    pub info: String,
    /// `_old_`: prefix of symbols bound to the old version's definitions.
    pub old_prefix: String,
    pub abi_version: u32,
}

impl Names {
    /// Is `section` a static address section (either kind)?
    pub fn is_static(&self, section: &str) -> bool {
        section.starts_with(&self.static_old) || section.starts_with(&self.static_new)
    }
}

/// The loader's rule for static address sections: a swap keeps each of
/// them where it is, with what it holds, so both versions have the same
/// static sections and every object stays in the one it was in. A
/// `SectionChange` is one way two versions break the rule; `modswap
/// verify` finds them in built images, `modswap handler` in the sources.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum SectionChange {
    /// The new version has a static section the old one does not.
    Added { new: String },
    /// The old version has a static section the new one does not.
    Dropped { old: String },
    /// An object is in another static section in the new version.
    Moved { old: String, new: String },
}

impl SectionChange {
    /// How one object's static section (`None`: it is in none) changes
    /// from `old` to `new`, if that breaks the rule.
    pub fn between(old: Option<&str>, new: Option<&str>) -> Option<SectionChange> {
        match (old, new) {
            (None, None) => None,
            (Some(o), Some(n)) if o == n => None,
            (None, Some(n)) => Some(SectionChange::Added { new: n.into() }),
            (Some(o), None) => Some(SectionChange::Dropped { old: o.into() }),
            (Some(o), Some(n)) => Some(SectionChange::Moved {
                old: o.into(),
                new: n.into(),
            }),
        }
    }

    /// How the set of static sections changes from `old` to `new`: every
    /// section added or dropped, sorted.
    pub fn between_sets<'s>(
        old: impl IntoIterator<Item = &'s str>,
        new: impl IntoIterator<Item = &'s str>,
    ) -> Vec<SectionChange> {
        let old: std::collections::BTreeSet<&str> = old.into_iter().collect();
        let new: std::collections::BTreeSet<&str> = new.into_iter().collect();
        let dropped = old
            .difference(&new)
            .map(|o| SectionChange::Dropped { old: o.to_string() });
        let added = new
            .difference(&old)
            .map(|n| SectionChange::Added { new: n.to_string() });
        let mut v: Vec<SectionChange> = dropped.chain(added).collect();
        v.sort();
        v
    }
}

fn define(name: &str) -> Option<&'static str> {
    MODSWAP_H.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("#define")?.trim_start();
        let value = rest.strip_prefix(name)?;
        if !value.starts_with([' ', '\t']) {
            return None;
        }
        Some(value.trim())
    })
}

fn string_define(name: &str) -> String {
    let v = define(name).unwrap_or_else(|| panic!("modswap.h lacks #define {name}"));
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or_else(|| panic!("modswap.h: {name} is not a string literal"))
        .to_string()
}

/// The names, parsed once. The header is compiled in, so a malformed one
/// fails the unit test below rather than a user's run.
pub fn names() -> &'static Names {
    static NAMES: OnceLock<Names> = OnceLock::new();
    NAMES.get_or_init(|| Names {
        static_old: string_define("MODSWAP_SECTION_OLD"),
        static_new: string_define("MODSWAP_SECTION_NEW"),
        info: string_define("MODSWAP_SECTION_INFO"),
        old_prefix: string_define("MODSWAP_OLD_PREFIX"),
        abi_version: define("MODSWAP_ABI_VERSION")
            .and_then(|v| v.parse().ok())
            .expect("modswap.h: MODSWAP_ABI_VERSION is not a number"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_defines_every_name() {
        let n = names();
        assert_eq!(n.static_old, ".static_old.");
        assert_eq!(n.static_new, ".static_new.");
        assert_eq!(n.info, ".modswap.info");
        assert_eq!(n.old_prefix, "_old_");
        assert!(n.abi_version >= 1);
        assert!(n.is_static(".static_old.vfat_fs_type"));
        assert!(!n.is_static(".data"));
    }

    #[test]
    fn section_changes_break_the_rule() {
        use SectionChange::*;
        let (a, b) = (".static_old.a", ".static_old.b");
        assert_eq!(SectionChange::between(None, None), None);
        assert_eq!(SectionChange::between(Some(a), Some(a)), None);
        assert_eq!(
            SectionChange::between(None, Some(a)),
            Some(Added { new: a.into() })
        );
        assert_eq!(
            SectionChange::between(Some(a), None),
            Some(Dropped { old: a.into() })
        );
        assert_eq!(
            SectionChange::between(Some(a), Some(b)),
            Some(Moved {
                old: a.into(),
                new: b.into()
            })
        );
        assert_eq!(
            SectionChange::between_sets([a, ".static_new.c"], [b, ".static_new.c"]),
            [Added { new: b.into() }, Dropped { old: a.into() }]
        );
    }
}
