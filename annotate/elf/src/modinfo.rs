//! The module's identity: `.modinfo`, `.gnu.linkonce.this_module`, and
//! modswap's `.modswap.info` marker.

use super::parts::Parts;
use super::Module;
use modswap_ir::sections::names;

/// The section holding the module descriptor, `struct module __this_module`.
pub const THIS_MODULE_SECTION: &str = ".gnu.linkonce.this_module";

/// Offset of `name` in Linux 6.12's `struct module`:
///
/// ```c
/// struct module {
///         enum module_state state;        /* 0, 4 bytes, then 4 of padding */
///         struct list_head list;          /* 8, two pointers */
///         char name[MODULE_NAME_LEN];     /* 24 */
///         ...
/// ```
///
/// The fields before `name` do not depend on the kernel configuration. A
/// test compiles `static_assert(offsetof(struct module, name) == ...)`
/// with this value against the real 6.12 headers, and every parse
/// cross-checks the name found here against `.modinfo`'s `name=`.
pub const MODULE_NAME_OFFSET: usize = 24;

/// `MODULE_NAME_LEN` on 64-bit: `64 - sizeof(unsigned long)`.
pub const MODULE_NAME_LEN: usize = 56;

/// Splits `.modinfo` into `key=value` pairs (NUL-separated, padding skipped).
fn pairs(bytes: &[u8]) -> Vec<(String, String)> {
    bytes
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let s = String::from_utf8_lossy(s);
            match s.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (s.into_owned(), String::new()),
            }
        })
        .collect()
}

/// The name field of the `struct module` in `bytes`, if it holds a
/// NUL-terminated, non-empty string.
fn this_module_name(bytes: &[u8], warnings: &mut Vec<String>) -> Option<String> {
    let field = bytes.get(MODULE_NAME_OFFSET..)?;
    let field = &field[..field.len().min(MODULE_NAME_LEN)];
    let Some(end) = field.iter().position(|&b| b == 0) else {
        warnings.push(format!(
            "{THIS_MODULE_SECTION}: the name field at offset {MODULE_NAME_OFFSET} is not NUL-terminated"
        ));
        return None;
    };
    if end == 0 {
        return None;
    }
    Some(String::from_utf8_lossy(&field[..end]).into_owned())
}

pub(super) fn read(
    parts: &Parts<'_>,
    warnings: &mut Vec<String>,
) -> (Vec<(String, String)>, Module) {
    let modinfo = parts
        .section_by_name(".modinfo")
        .map(|s| pairs(parts.bytes(s.index)))
        .unwrap_or_default();
    let modinfo_name = modinfo
        .iter()
        .find(|(k, _)| k == "name")
        .map(|(_, v)| v.clone());
    let this_module_name = parts
        .section_by_name(THIS_MODULE_SECTION)
        .and_then(|s| this_module_name(parts.bytes(s.index), warnings));
    if let (Some(a), Some(b)) = (&modinfo_name, &this_module_name) {
        if a != b {
            warnings.push(format!(
                "module name differs: .modinfo says {a:?}, {THIS_MODULE_SECTION} says {b:?}"
            ));
        }
    }
    let info = parts.section_by_name(&names().info);
    let modswap_abi = info.and_then(|s| {
        let b = parts.bytes(s.index);
        Some(u32::from_le_bytes(b.get(..4)?.try_into().ok()?))
    });
    let module = Module {
        name: this_module_name.clone().or_else(|| modinfo_name.clone()),
        modinfo_name,
        this_module_name,
        hotswappable: info.is_some(),
        modswap_abi,
    };
    (modinfo, module)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modinfo_pairs_skip_padding() {
        let p = pairs(b"license=GPL\0\0\0name=fat\0alias=fs-fat\0flag\0");
        assert_eq!(
            p,
            vec![
                ("license".into(), "GPL".into()),
                ("name".into(), "fat".into()),
                ("alias".into(), "fs-fat".into()),
                ("flag".into(), "".into()),
            ]
        );
    }

    #[test]
    fn name_field_needs_a_nul() {
        let mut w = Vec::new();
        let mut b = vec![0u8; 0x80];
        b[24..27].copy_from_slice(b"fat");
        assert_eq!(this_module_name(&b, &mut w).as_deref(), Some("fat"));
        assert!(w.is_empty());
        let b = vec![b'x'; 0x80];
        assert_eq!(this_module_name(&b, &mut w), None);
        assert_eq!(w.len(), 1);
        assert_eq!(this_module_name(&[0u8; 10], &mut w), None);
    }
}
