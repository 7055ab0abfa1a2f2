//! Review regions, the checksum, and regenerating over a reviewed handler.
//!
//! Every TODO sits in a region:
//!
//! ```c
//! /* modswap: begin init:a.x */
//! static_assert(0, "TODO(modswap): initial value for a.x");
//! /* modswap: end init:a.x */
//! ```
//!
//! Each unit's part has two free-form regions, empty when generated:
//! `decls:<unit>` at file scope before its function (declarations, helper
//! functions) and `extra:<unit>` at the end of the function; the `register`
//! region holds the `MODSWAP_REPLACE()` line. A region is *decided* once it
//! holds no TODO `static_assert` (a reviewer replaced it with code, or
//! emptied the region to keep the new version's value); it *has content*
//! when it holds anything but blank lines and TODO `static_assert`s.
//!
//! The header's `modswap-checksum:` line holds a digest of the file with
//! the region bodies left out. Regenerating (the policy: **merge, else
//! refuse**):
//! - keeps the body of every decided region whose id the new handler still
//!   has, verbatim (an undecided one gets the new TODO);
//! - refuses (writes nothing) when a region with content has no place in
//!   the new handler (its TODO is gone), when the
//!   file was edited outside the regions (the digest differs, or the
//!   markers are broken), or when the file was not generated at all;
//!   `--force` overrides each refusal.

use modswap_util::Fnv64;
use std::collections::BTreeMap;

pub const CHECKSUM_TAG: &str = "modswap-checksum:";
const BEGIN: &str = "/* modswap: begin ";
const END: &str = "/* modswap: end ";
const CLOSE: &str = " */";
/// What starts the line of an unfilled TODO.
pub const TODO_ASSERT: &str = "static_assert(0, \"TODO(modswap): ";

/// The begin marker of region `id`.
pub fn begin_marker(id: &str) -> String {
    format!("{BEGIN}{id}{CLOSE}")
}

/// The end marker of region `id`.
pub fn end_marker(id: &str) -> String {
    format!("{END}{id}{CLOSE}")
}

fn marker<'l>(line: &'l str, prefix: &str) -> Option<&'l str> {
    line.trim()
        .strip_prefix(prefix)?
        .strip_suffix(CLOSE)
        .filter(|id| !id.is_empty() && !id.contains(char::is_whitespace))
}

/// A region of a handler file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub id: String,
    /// The lines between the markers, verbatim.
    pub body: Vec<String>,
}

impl Region {
    /// Holds a reviewer's decision: no TODO is left in it.
    pub fn is_decided(&self) -> bool {
        !self.body.iter().any(|l| l.trim().starts_with(TODO_ASSERT))
    }
}

/// A region body holds something besides blank lines and TODOs.
pub fn has_content(body: &[String]) -> bool {
    body.iter().any(|l| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with(TODO_ASSERT)
    })
}

/// Splits a handler into its regions. Errors say what is broken (a marker
/// without its pair, nesting, a duplicate id).
pub fn regions(text: &str) -> Result<Vec<Region>, String> {
    let mut out: Vec<Region> = Vec::new();
    let mut open: Option<(usize, Region)> = None;
    for (i, line) in text.lines().enumerate() {
        if let Some(id) = marker(line, BEGIN) {
            if let Some((at, r)) = &open {
                return Err(format!(
                    "line {}: region {id} begins inside region {} (line {})",
                    i + 1,
                    r.id,
                    at + 1
                ));
            }
            if out.iter().any(|r| r.id == id) {
                return Err(format!("line {}: region {id} appears twice", i + 1));
            }
            open = Some((
                i,
                Region {
                    id: id.to_string(),
                    body: Vec::new(),
                },
            ));
        } else if let Some(id) = marker(line, END) {
            match open.take() {
                Some((_, r)) if r.id == id => out.push(r),
                Some((at, r)) => {
                    return Err(format!(
                        "line {}: end of region {id}, but region {} (line {}) is open",
                        i + 1,
                        r.id,
                        at + 1
                    ))
                }
                None => {
                    return Err(format!(
                        "line {}: end of region {id} without its beginning",
                        i + 1
                    ))
                }
            }
        } else if let Some((_, r)) = &mut open {
            r.body.push(line.to_string());
        }
    }
    if let Some((at, r)) = open {
        return Err(format!("line {}: region {} never ends", at + 1, r.id));
    }
    Ok(out)
}

/// `text` with the bodies of the regions `bodies` names replaced, as a
/// reviewer would fill them in; every other line stays as it is (and ids
/// `text` has no region for are left out). Errors as [`regions`].
pub fn fill(text: &str, bodies: &BTreeMap<String, Vec<String>>) -> Result<String, String> {
    regions(text)?;
    let mut out = Vec::new();
    let mut skipping = false;
    for line in text.lines() {
        if skipping {
            if marker(line, END).is_some() {
                skipping = false;
                out.push(line.to_string());
            }
            continue;
        }
        out.push(line.to_string());
        if let Some(body) = marker(line, BEGIN).and_then(|id| bodies.get(id)) {
            out.extend(body.iter().cloned());
            skipping = true;
        }
    }
    Ok(out.join("\n") + "\n")
}

/// The indentation of region `id`'s begin marker in `text`.
pub fn indent<'t>(text: &'t str, id: &str) -> Option<&'t str> {
    text.lines()
        .find(|l| marker(l, BEGIN) == Some(id))
        .map(|l| &l[..l.len() - l.trim_start().len()])
}

/// The digest of a handler: every line outside region bodies, the
/// checksum line up to its tag.
pub fn checksum(text: &str) -> u64 {
    let mut h = Fnv64::new();
    let mut inside = false;
    for line in text.lines() {
        if inside {
            if marker(line, END).is_some() {
                inside = false;
            } else {
                continue;
            }
        } else if marker(line, BEGIN).is_some() {
            inside = true;
        }
        let counted = match line.find(CHECKSUM_TAG) {
            Some(at) => &line[..at + CHECKSUM_TAG.len()],
            None => line,
        };
        h.write(counted.as_bytes());
        h.write(b"\n");
    }
    h.finish()
}

/// The checksum recorded in a handler's header.
pub fn recorded_checksum(text: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let at = l.find(CHECKSUM_TAG)?;
        let v = l[at + CHECKSUM_TAG.len()..].trim();
        u64::from_str_radix(v.split_whitespace().next()?, 16).ok()
    })
}

/// Replaces the checksum placeholder line's value with the real digest.
pub fn seal(text: &str) -> String {
    let sum = checksum(text);
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        match line.find(CHECKSUM_TAG) {
            Some(at) => {
                out.push_str(&line[..at + CHECKSUM_TAG.len()]);
                out.push_str(&format!(" {sum:016x}"));
                if line.ends_with('\n') {
                    out.push('\n');
                }
            }
            None => out.push_str(line),
        }
    }
    out
}

/// What an existing handler holds that a regeneration must keep.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reviewed {
    /// Decided regions' bodies by id.
    pub kept: BTreeMap<String, Vec<String>>,
}

/// Why an existing handler cannot be regenerated over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NotGenerated,
    Edited(String),
}

/// Reads what a reviewer put in an existing handler's text.
pub fn reviewed(text: &str) -> Result<Reviewed, Refusal> {
    let Some(recorded) = recorded_checksum(text) else {
        return Err(Refusal::NotGenerated);
    };
    let regions = regions(text).map_err(Refusal::Edited)?;
    if checksum(text) != recorded {
        return Err(Refusal::Edited(
            "its text outside the regions differs from what was generated".into(),
        ));
    }
    Ok(Reviewed {
        kept: regions
            .into_iter()
            .filter(Region::is_decided)
            .map(|r| (r.id, r.body))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GEN: &str = "/*\n * modswap-checksum: 0000000000000000\n */\nint f(void)\n{\n\
        \t/* modswap: begin init:a.x */\n\
        \tstatic_assert(0, \"TODO(modswap): initial value for a.x\");\n\
        \t/* modswap: end init:a.x */\n\
        \t/* modswap: begin extra:m */\n\
        \t/* modswap: end extra:m */\n\treturn 0;\n}\n";

    #[test]
    fn a_sealed_file_verifies_and_its_regions_are_read() {
        let sealed = seal(GEN);
        assert_ne!(sealed, GEN);
        let r = reviewed(&sealed).unwrap();
        // The empty extra region is decided (empty), without content.
        assert_eq!(r.kept.keys().collect::<Vec<_>>(), ["extra:m"]);
        assert!(!has_content(&r.kept["extra:m"]));
        let filled = sealed.replace(
            "\tstatic_assert(0, \"TODO(modswap): initial value for a.x\");\n",
            "\ta.x = 100;\n",
        );
        let r = reviewed(&filled).unwrap();
        assert_eq!(r.kept["init:a.x"], ["\ta.x = 100;"]);
        assert!(has_content(&r.kept["init:a.x"]));
    }

    #[test]
    fn edits_outside_regions_and_broken_markers_are_refused() {
        let sealed = seal(GEN);
        let edited = sealed.replace("return 0;", "return 1;");
        assert!(matches!(reviewed(&edited), Err(Refusal::Edited(_))));
        let broken = sealed.replace("\t/* modswap: end init:a.x */\n", "");
        match reviewed(&broken) {
            Err(Refusal::Edited(why)) => assert!(why.contains("begins inside"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(reviewed("int x;\n"), Err(Refusal::NotGenerated));
    }

    #[test]
    fn fill_replaces_the_named_bodies_only() {
        let bodies = BTreeMap::from([("init:a.x".to_string(), vec!["\ta.x = 7;".to_string()])]);
        let filled = fill(GEN, &bodies).unwrap();
        assert_eq!(
            filled,
            GEN.replace(
                "\tstatic_assert(0, \"TODO(modswap): initial value for a.x\");\n",
                "\ta.x = 7;\n"
            )
        );
        assert_eq!(indent(GEN, "init:a.x"), Some("\t"));
        assert_eq!(indent(GEN, "init:b"), None);
        let unknown = BTreeMap::from([("init:b".to_string(), vec![])]);
        assert_eq!(fill(GEN, &unknown).as_deref(), Ok(GEN));
        let broken = GEN.replace("\t/* modswap: end init:a.x */\n", "");
        assert!(fill(&broken, &bodies).is_err());
    }
}
