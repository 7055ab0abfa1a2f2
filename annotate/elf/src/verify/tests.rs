//! verify's unit tests: one image pair per problem, built by a small helper.

use super::*;
use crate::{Binding, Export, ExportEncoding, Module, Symbol};

/// A module image with the given sections (name, size, align) and
/// symbols (name, section name, offset, size).
fn image(sections: &[(&str, u64, u64)], symbols: &[(&str, &str, u64, u64)]) -> Object {
    let sections: Vec<Section> = sections
        .iter()
        .enumerate()
        .map(|(i, &(name, size, align))| Section {
            index: i as u32 + 1,
            name: name.into(),
            kind: "PROGBITS".into(),
            flags: "WA".into(),
            size,
            align,
            relocates: None,
        })
        .collect();
    let symbols = symbols
        .iter()
        .enumerate()
        .map(|(i, &(name, sec, value, size))| {
            let s = sections.iter().find(|s| s.name == sec);
            Symbol {
                index: i as u32 + 1,
                name: name.into(),
                kind: SymbolKind::Object,
                binding: Binding::Local,
                place: s.map_or(Place::Undefined, |s| Place::Section(s.index)),
                section: s.map(|s| s.name.clone()),
                value,
                size,
            }
        })
        .collect();
    Object {
        module: Module {
            name: Some("m".into()),
            modinfo_name: Some("m".into()),
            this_module_name: Some("m".into()),
            hotswappable: true,
            modswap_abi: Some(names().abi_version),
        },
        modinfo: vec![],
        sections,
        symbols,
        relocations: vec![],
        imports: vec![],
        exports: vec![],
        data: vec![],
        warnings: vec![],
    }
}

const THIS: (&str, u64, u64) = (".gnu.linkonce.this_module", 1280, 64);

#[test]
fn identical_layouts_are_compatible() {
    let a = image(
        &[THIS, (".static_old.pair", 16, 8)],
        &[
            ("__this_module", THIS.0, 0, 1280),
            ("a", ".static_old.pair", 0, 8),
            ("b", ".static_old.pair", 8, 8),
        ],
    );
    assert_eq!(verify(&a, &a), vec![]);
}

#[test]
fn different_vermagic_is_reported_with_what_to_do() {
    let mut old = image(&[THIS], &[("__this_module", THIS.0, 0, 1280)]);
    let mut new = old.clone();
    let vm = |v: &str| ("vermagic".to_string(), v.to_string());
    old.modinfo = vec![vm(
        "6.12.117+deb12-amd64 SMP preempt mod_unload modversions ",
    )];
    new.modinfo = vec![vm("6.12.117 SMP mod_unload ")];
    let p = verify(&old, &new);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(matches!(&p[0], Problem::Vermagic { .. }));
    assert!(p[0].to_string().contains("the same KDIR"), "{}", p[0]);
    new.modinfo = old.modinfo.clone();
    assert_eq!(verify(&old, &new), vec![]);
    // An image without vermagic (not a linked .ko) is not compared.
    new.modinfo.clear();
    assert_eq!(verify(&old, &new), vec![]);
}

#[test]
fn moved_added_dropped_and_resized_symbols_are_all_reported() {
    let old = image(
        &[THIS, (".static_old.pair", 16, 8)],
        &[
            ("a", ".static_old.pair", 0, 8),
            ("b", ".static_old.pair", 8, 8),
            ("c", ".static_old.pair", 8, 0),
        ],
    );
    let new = image(
        &[THIS, (".static_old.pair", 16, 16)],
        &[
            ("b", ".static_old.pair", 0, 4),
            ("a", ".static_old.pair", 8, 8),
            ("d", ".static_old.pair", 12, 4),
        ],
    );
    let p = verify(&old, &new);
    let sec = ".static_old.pair".to_string();
    assert_eq!(
        p,
        vec![
            Problem::StaticSectionAlign {
                section: sec.clone(),
                old: 8,
                new: 16
            },
            Problem::StaticSymbolDropped {
                section: sec.clone(),
                symbol: "c".into(),
                offset: 8
            },
            Problem::StaticSymbolAdded {
                section: sec.clone(),
                symbol: "d".into(),
                offset: 12
            },
            Problem::StaticSymbolMoved {
                section: sec.clone(),
                symbol: "a".into(),
                old: 0,
                new: 8
            },
            Problem::StaticSymbolMoved {
                section: sec.clone(),
                symbol: "b".into(),
                old: 8,
                new: 0
            },
            Problem::StaticSymbolSize {
                section: sec,
                symbol: "b".into(),
                old: 8,
                new: 4
            },
        ]
    );
    // Every problem reads as a sentence that names what is wrong.
    assert!(p.iter().all(|p| p.to_string().contains(".static_old.pair")));
}

#[test]
fn function_statics_match_across_gcc_numbering() {
    let old = image(
        &[(".static_old.f.count", 4, 4)],
        &[("count.3", ".static_old.f.count", 0, 4)],
    );
    let new = image(
        &[(".static_old.f.count", 4, 4)],
        &[("count.7", ".static_old.f.count", 0, 4)],
    );
    assert_eq!(verify(&old, &new), vec![]);
}

#[test]
fn identity_and_marking_are_checked() {
    let old = image(&[], &[]);
    let mut new = image(&[], &[]);
    new.module.name = Some("other".into());
    new.module.hotswappable = false;
    assert_eq!(
        verify(&old, &new),
        vec![
            Problem::ModuleName {
                old: "m".into(),
                new: "other".into()
            },
            Problem::NotHotswappable,
        ]
    );
    new.module.hotswappable = true;
    new.module.modswap_abi = Some(names().abi_version + 1);
    new.module.name = None;
    let p = verify(&old, &new);
    assert!(p.contains(&Problem::NoModuleName { image: Image::New }));
    let p = verify(&new, &new);
    assert!(p.contains(&Problem::NoModuleName { image: Image::Old }));
    assert!(p.contains(&Problem::NoModuleName { image: Image::New }));
    assert!(p.contains(&Problem::Abi {
        found: Some(names().abi_version + 1),
        expected: names().abi_version
    }));
}

#[test]
fn old_symbols_resolve_to_exactly_one_definition() {
    let old = image(
        &[(".bss", 64, 8)],
        &[
            ("state", ".bss", 0, 32),
            ("dup", ".bss", 32, 4),
            ("dup", ".bss", 36, 4),
        ],
    );
    let mut new = image(
        &[],
        &[
            ("_old_state", "UND", 0, 0),
            ("_old_dup", "UND", 0, 0),
            ("_old_gone", "UND", 0, 0),
        ],
    );
    assert_eq!(
        verify(&old, &new),
        vec![
            Problem::OldSymbolUndefined {
                symbol: "_old_gone".into(),
                target: "gone".into()
            },
            Problem::OldSymbolAmbiguous {
                symbol: "_old_dup".into(),
                target: "dup".into(),
                count: 2
            },
        ]
    );
    // A known size that differs is a problem too.
    new.symbols[0].size = 16;
    assert!(verify(&old, &new).contains(&Problem::OldSymbolSize {
        symbol: "_old_state".into(),
        target: "state".into(),
        old: 32,
        new: 16
    }));
}

#[test]
fn exports_must_survive_with_their_license() {
    let export = |name: &str, gpl: bool| Export {
        name: name.into(),
        gpl,
        namespace: String::new(),
        encoding: ExportEncoding::Ksymtab,
    };
    let mut old = image(&[], &[]);
    old.exports = vec![export("a", false), export("b", false), export("c", true)];
    let mut new = image(&[], &[]);
    new.exports = vec![export("b", true), export("c", false)];
    assert_eq!(
        verify(&old, &new),
        vec![
            Problem::ExportDropped { symbol: "a".into() },
            Problem::ExportNowGpl { symbol: "b".into() },
        ]
    );
}

#[test]
fn gcc_suffixes_are_stripped() {
    assert_eq!(stable_name("count.3"), "count");
    assert_eq!(stable_name("count.12"), "count");
    assert_eq!(stable_name("count"), "count");
    assert_eq!(stable_name(".3"), ".3");
    assert_eq!(stable_name("a.b"), "a.b");
    assert_eq!(stable_name("x."), "x.");
}
