//! The class of every global of a version.
//!
//! `static_old` and `static_new` are what the loader sees: section
//! attributes written into the sources (`__static_old(key)` puts a global in
//! section `.static_old.<key>`). `transfer` and `none`, and the member paths
//! of a `static_old` global that must be re-pointed after a swap, come from
//! annotate's analysis ([`ClassSource`]). When the analysis says a global
//! must live in a static section but the source does not mark it, the
//! handler cannot help: that is reported (see `plan`).

use modswap_ir::class::Class;
use modswap_ir::sections;
use modswap_ir::{Global, Module};
use std::collections::BTreeMap;

/// What annotate's analysis decided for one global.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysed {
    pub class: Class,
    /// One sentence: why.
    pub reason: String,
    /// For `static_old`: member paths (`name`, `ops.open`, `[2].procname`,
    /// `[]`; empty for the global itself) pointing into the module's own code or data,
    /// which must be re-assigned after a swap.
    pub reassign: Vec<String>,
}

/// Where analysis results come from (annotate's `analyze`, or a table in
/// tests).
pub trait ClassSource {
    /// The decision for global `key` of `module`, if the source has one.
    fn lookup(&self, module: &str, key: &str) -> Option<Analysed>;
}

/// annotate's analysis of the new version.
impl ClassSource for modswap_analyze::Analysis {
    fn lookup(&self, module: &str, key: &str) -> Option<Analysed> {
        let g = self.global(module, key)?;
        Some(Analysed {
            class: g.class,
            reason: g.reason.clone(),
            reassign: g.reassign.clone(),
        })
    }
}

impl ClassSource for BTreeMap<String, Analysed> {
    fn lookup(&self, _module: &str, key: &str) -> Option<Analysed> {
        self.get(key).cloned()
    }
}

/// The reason given to unmarked globals when there is no analysis.
pub const NOT_ANALYSED: &str = "not analysed";

/// The class the handler works with, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    pub class: Class,
    pub reason: String,
    /// Placed in a static address section by the source (the marker).
    pub marked: bool,
    /// The analysis's class when it differs from the marker's.
    pub analysis_class: Option<Class>,
    /// The analysis's re-assignment paths (`None`: no analysis).
    pub reassign: Option<Vec<String>>,
    /// The static class the analysis wants for a global the source does
    /// not mark. The handler follows the markers (they are what the loader
    /// sees): such a global moves in the swap, so a `static_old` one is
    /// handled as `transfer` (its contents are mutable state) and a
    /// `static_new` one as `none`; the plan flags both.
    pub wanted: Option<Class>,
}

/// The classes of one module's globals, by key.
#[derive(Debug, Clone, Default)]
pub struct Classes {
    by_key: BTreeMap<String, Classified>,
}

impl Classes {
    /// Classifies the globals of `module`: the markers first, then the
    /// analysis (when given) for the rest.
    pub fn new(module: &Module, analysis: Option<&dyn ClassSource>) -> Classes {
        let names = sections::names();
        let mut by_key = BTreeMap::new();
        for g in module.globals() {
            let marker = g.section.as_deref().and_then(|s| {
                if s.starts_with(&names.static_old) {
                    Some(Class::StaticOld)
                } else if s.starts_with(&names.static_new) {
                    Some(Class::StaticNew)
                } else {
                    None
                }
            });
            let analysed = analysis.and_then(|a| a.lookup(&module.name, &g.key));
            let c = match (marker, analysed) {
                (Some(m), a) => Classified {
                    class: m,
                    reason: format!(
                        "marked __{}({})",
                        m.as_str(),
                        section_key(g).unwrap_or_default()
                    ),
                    marked: true,
                    analysis_class: a.as_ref().map(|a| a.class).filter(|c| *c != m),
                    reassign: a.map(|a| a.reassign),
                    wanted: None,
                },
                (None, _) if is_bookkeeping(g) => Classified {
                    class: Class::None,
                    reason: format!(
                        "in section {}: not state",
                        g.section.as_deref().unwrap_or_default()
                    ),
                    marked: false,
                    analysis_class: None,
                    reassign: None,
                    wanted: None,
                },
                (None, Some(a)) => {
                    let (class, wanted) = match a.class {
                        Class::StaticOld => (Class::Transfer, Some(a.class)),
                        Class::StaticNew => (Class::None, Some(a.class)),
                        c => (c, None),
                    };
                    Classified {
                        class,
                        reason: a.reason,
                        marked: false,
                        analysis_class: None,
                        reassign: Some(a.reassign),
                        wanted,
                    }
                }
                (None, None) => Classified {
                    class: Class::None,
                    reason: NOT_ANALYSED.into(),
                    marked: false,
                    analysis_class: None,
                    reassign: None,
                    wanted: None,
                },
            };
            by_key.insert(g.key.clone(), c);
        }
        Classes { by_key }
    }

    pub fn get(&self, key: &str) -> Option<&Classified> {
        self.by_key.get(key)
    }
}

/// The key in a global's static-section name.
pub fn section_key(g: &Global) -> Option<&str> {
    let names = sections::names();
    let s = g.section.as_deref()?;
    s.strip_prefix(names.static_old.as_str())
        .or_else(|| s.strip_prefix(names.static_new.as_str()))
}

/// Objects that are not module state: what macros put in special sections
/// (`.modinfo`, `__param`, `.discard.*`, init and exit data, export
/// tables, the hotswap marker itself). They are left out of the handler.
pub fn is_bookkeeping(g: &Global) -> bool {
    let Some(s) = g.section.as_deref() else {
        return g.name.starts_with("__UNIQUE_ID_");
    };
    if sections::names().is_static(s) {
        return false;
    }
    !(s.starts_with(".data") || s.starts_with(".bss") || s.starts_with(".rodata"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global(name: &str, section: Option<&str>) -> Global {
        Global {
            name: name.into(),
            key: name.into(),
            function: None,
            linkage: modswap_ir::Linkage::Internal,
            loc: Default::default(),
            span: Default::default(),
            ty: modswap_ir::TypeId(0),
            is_const: false,
            is_definition: true,
            section: section.map(Into::into),
            macro_origin: None,
            size: Some(4),
            align: Some(4),
            init: None,
        }
    }

    #[test]
    fn markers_win_and_bookkeeping_is_not_state() {
        let m = Module {
            name: "m".into(),
            modname: "m".into(),
            units: vec![modswap_ir::Unit {
                file: "m/m.c".into(),
                globals: vec![
                    global("a", Some(".static_old.a")),
                    global("b", Some(".static_new.b")),
                    global("c", None),
                    global("__UNIQUE_ID_license1", Some(".modinfo")),
                    global("d", Some(".data..read_mostly")),
                ],
                functions: vec![],
                bodies: vec![],
            }],
        };
        let mut t = BTreeMap::new();
        for (k, c) in [
            ("a", Class::Transfer),
            ("c", Class::Transfer),
            ("d", Class::None),
        ] {
            t.insert(
                k.to_string(),
                Analysed {
                    class: c,
                    reason: "r".into(),
                    reassign: vec![],
                },
            );
        }
        let cl = Classes::new(&m, Some(&t));
        let a = cl.get("a").unwrap();
        assert_eq!(
            (a.class, a.marked, a.analysis_class),
            (Class::StaticOld, true, Some(Class::Transfer))
        );
        assert_eq!(a.reason, "marked __static_old(a)");
        assert_eq!(cl.get("b").unwrap().class, Class::StaticNew);
        assert_eq!(cl.get("c").unwrap().class, Class::Transfer);
        assert_eq!(cl.get("__UNIQUE_ID_license1").unwrap().class, Class::None);
        assert!(is_bookkeeping(&global("x", Some("__param"))));
        assert!(!is_bookkeeping(&global("d", Some(".data..read_mostly"))));
        let none = Classes::new(&m, None);
        assert_eq!(none.get("c").unwrap().reason, "not analysed");
    }
}
