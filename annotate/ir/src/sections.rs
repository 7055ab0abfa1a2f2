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
}
