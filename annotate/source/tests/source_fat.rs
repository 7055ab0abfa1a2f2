//! The source front end on the real fs/fat of the built Linux 6.12 tree.

use modswap_ir::{Init, Ref, Type};
use modswap_kbuild as kbuild;
use modswap_source as source;
use std::path::PathBuf;

fn tree() -> PathBuf {
    PathBuf::from(std::env::var_os("MODSWAP_KERNEL_TREE").expect(
        "MODSWAP_KERNEL_TREE is not set: run via `cargo xtask test` or point it at `cargo xtask kernel`'s tree",
    ))
}

fn fat_program() -> &'static modswap_ir::Program {
    static P: std::sync::OnceLock<modswap_ir::Program> = std::sync::OnceLock::new();
    P.get_or_init(|| {
        let mut md = kbuild::discover(&tree().join("fs/fat"), None).unwrap();
        md.load_commands().unwrap();
        source::parse(&md, source::Options::default()).unwrap()
    })
}

fn expr(i: &Init) -> &modswap_ir::Expr {
    match i {
        Init::Expr(e) => e,
        other => panic!("not an expression: {other:?}"),
    }
}

fn field<'a>(i: &'a Init, name: &str) -> &'a Init {
    match i {
        Init::Record { fields } => {
            &fields
                .iter()
                .find(|f| f.field == name)
                .unwrap_or_else(|| panic!("no .{name}"))
                .value
        }
        other => panic!("not a record: {other:?}"),
    }
}

#[test]
fn vfat_fs_type_initializer_names_what_it_points_to() {
    let p = fat_program();
    let vfat = p.module("vfat").unwrap();
    let g = vfat.global("vfat_fs_type").unwrap();
    assert_eq!(g.loc.file, "fs/fat/namei_vfat.c");
    assert_eq!(
        p.types.declare(g.ty, &g.name),
        "struct file_system_type vfat_fs_type"
    );
    assert!(!g.is_const && g.is_definition && g.section.is_none() && g.macro_origin.is_none());
    let init = g.init.as_ref().unwrap();
    let owner = expr(field(init, "owner"));
    assert_eq!(owner.text, "THIS_MODULE");
    assert_eq!(
        owner.refs,
        [Ref::Global {
            name: "__this_module".into(),
            address: true
        }]
    );
    let name = expr(field(init, "name"));
    assert!(name.has_string_literal && name.refs.is_empty());
    assert_eq!(
        expr(field(init, "init_fs_context")).refs,
        [Ref::Function {
            name: "vfat_init_fs_context".into()
        }]
    );
    assert_eq!(
        expr(field(init, "parameters")).refs,
        [Ref::Global {
            name: "fat_param_spec".into(),
            address: true
        }]
    );
    let flags = expr(field(init, "fs_flags"));
    assert_eq!(flags.text, "FS_REQUIRES_DEV | FS_ALLOW_IDMAP");
    assert_eq!(flags.constant, Some(1 | 32));
}

#[test]
fn types_print_as_c_declarations() {
    let p = fat_program();
    let g = p.module("vfat").unwrap().global("vfat_fs_type").unwrap();
    let rec = p.types.resolve(g.ty);
    let Type::Record {
        fields: Some(fields),
        in_module_dir,
        ..
    } = p.types.get(rec)
    else {
        panic!("file_system_type has members");
    };
    assert!(!in_module_dir);
    let f = fields.iter().find(|f| f.name == "init_fs_context").unwrap();
    assert_eq!(
        p.types.declare(f.ty, &f.name),
        "int (*init_fs_context)(struct fs_context *)"
    );
    let f = fields.iter().find(|f| f.name == "fs_supers").unwrap();
    assert_eq!(
        p.types.declare(f.ty, &f.name),
        "struct hlist_head fs_supers"
    );
    let f = fields.iter().find(|f| f.name == "name").unwrap();
    assert_eq!(p.types.declare(f.ty, &f.name), "const char *name");
    // A module-defined type keeps its members and where it is defined.
    let nohit = p
        .module("fat")
        .unwrap()
        .global("fat_cache_lookup.nohit")
        .unwrap();
    let rec = p.types.get(p.types.resolve(nohit.ty));
    let Type::Record {
        fields: Some(fields),
        in_module_dir: true,
        defined_at: Some(at),
        ..
    } = rec
    else {
        panic!("struct fat_cache is defined in fs/fat/cache.c: {rec:?}");
    };
    assert_eq!(at.file, "fs/fat/cache.c");
    let names: Vec<_> = fields
        .iter()
        .map(|f| p.types.declare(f.ty, &f.name))
        .collect();
    assert_eq!(
        names,
        [
            "struct list_head cache_list",
            "int nr_contig",
            "int fcluster",
            "int dcluster"
        ]
    );
}

#[test]
fn macro_made_and_function_scope_statics() {
    let p = fat_program();
    let fat = p.module("fat").unwrap();
    let lock = fat.global("fat12_entry_lock").unwrap();
    assert_eq!(lock.macro_origin.as_deref(), Some("DEFINE_SPINLOCK"));
    let k1 = fat.global("fat_fill_super.__key.1").unwrap();
    let k2 = fat.global("fat_fill_super.__key.2").unwrap();
    assert_eq!(k1.function.as_deref(), Some("fat_fill_super"));
    assert!(k1.loc.line < k2.loc.line);
    assert_eq!(k1.macro_origin.as_deref(), Some("mutex_init"));
    let nohit = fat.global("fat_cache_lookup.nohit").unwrap();
    assert_eq!(nohit.macro_origin, None);
    // EXPORT_SYMBOL_GPL makes an addressable in .discard.addressable.
    assert!(fat
        .globals()
        .any(|g| g.macro_origin.as_deref() == Some("EXPORT_SYMBOL_GPL")
            && g.section.as_deref() == Some(".discard.addressable")));
}

#[test]
fn functions_know_where_they_are_defined() {
    let p = fat_program();
    let vfat = p.module("vfat").unwrap();
    assert!(vfat.defines_function("vfat_init_fs_context"));
    assert!(!vfat.defines_function("fat_fill_super"));
    let u = &vfat.units[0];
    let ff = u
        .functions
        .iter()
        .find(|f| f.name == "fat_fill_super")
        .unwrap();
    assert!(!ff.defined && ff.in_module_dir);
    let kb = u
        .functions
        .iter()
        .find(|f| f.name == "kill_block_super")
        .unwrap();
    assert!(!kb.defined && !kb.in_module_dir);
    assert!(p.module("fat").unwrap().defines_function("fat_fill_super"));
}

#[test]
fn parsing_is_deterministic_across_thread_counts() {
    let mut md = kbuild::discover(&tree().join("fs/fat"), None).unwrap();
    md.load_commands().unwrap();
    let opts = |jobs| source::Options {
        jobs,
        ..source::Options::default()
    };
    let one = source::parse(&md, opts(1)).unwrap();
    let two = source::parse(&md, opts(2)).unwrap();
    assert_eq!(
        serde_json::to_string(&one).unwrap(),
        serde_json::to_string(&two).unwrap()
    );
}

/// Folding the headers' function bodies away (what makes the units of a
/// directory cheap to parse) changes nothing in the IR: not a declaration,
/// a type, a location, nor a `__COUNTER__`-made name (`__UNIQUE_ID_*`).
#[test]
fn folding_header_bodies_leaves_the_ir_unchanged() {
    for dir in ["fs/fat", "fs/bfs", "fs/nls"] {
        let mut md = kbuild::discover(&tree().join(dir), None).unwrap();
        md.load_commands().unwrap();
        let full = source::Options {
            jobs: 1,
            fold_header_bodies: false,
        };
        let (plain, none) = source::parse_with_stats(&md, full).unwrap();
        assert_eq!(none.units_with_folded_headers, 0, "{dir}");
        let folded = source::Options {
            jobs: 1,
            fold_header_bodies: true,
        };
        let (program, stats) = source::parse_with_stats(&md, folded).unwrap();
        let units = plain.modules.iter().map(|m| m.units.len()).sum::<usize>();
        assert_eq!(stats.units, units, "{dir}");
        // Every unit reads folded headers, the first too: its bodies are
        // guessed from the headers Kbuild's dependency lists name (no guess
        // is wrong on these directories). Most bodies fold, most of them
        // guessed (fs/fat: 5,174 of 5,703, 4,711 guessed).
        assert_eq!(stats.units_with_folded_headers, units, "{dir}: {stats:?}");
        assert_eq!(
            (stats.reparsed_in_full, stats.rejected_guesses),
            (0, 0),
            "{dir}: {stats:?}"
        );
        assert!(
            stats.guessed_bodies * 10 >= stats.folded_bodies * 8,
            "{dir}: {stats:?}"
        );
        assert!(
            stats.folded_bodies * 10 >= stats.header_bodies * 8 && stats.folded_bodies > 500,
            "{dir}: {stats:?}"
        );
        let (a, b) = (
            serde_json::to_string_pretty(&plain).unwrap(),
            serde_json::to_string_pretty(&program).unwrap(),
        );
        if a != b {
            let _ = std::fs::write("/tmp/ir-plain.json", &a);
            let _ = std::fs::write("/tmp/ir-folded.json", &b);
        }
        assert!(
            a == b,
            "{dir}: the IR differs (/tmp/ir-plain.json, /tmp/ir-folded.json)"
        );
        if dir == "fs/fat" {
            assert!(program
                .globals()
                .any(|(_, _, g)| g.name.starts_with("__UNIQUE_ID_")));
        }
    }
}
