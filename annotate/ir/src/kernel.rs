//! What modswap knows about the kernel, as tables: the rules the C front
//! end and the analysis apply to code they cannot see (compiler builtins,
//! printf-like functions), the sections the module loader hands to the
//! kernel, and the kernel types whose objects hold run-time state the
//! kernel updates in place. A new kernel rule is a new row here (in the
//! style of kpatch's tables of special sections); the code that applies
//! it (`modswap-source`'s bodies, `modswap-analyze`'s points-to and state
//! passes) does not change.

use crate::sections;

/// Compiler builtins that pass their first argument through (a call's
/// value may be that pointer).
pub const BUILTIN_PASS: &[&str] = &["__builtin_expect", "__builtin_assume_aligned"];
/// Compiler builtins that neither keep nor write through their pointer
/// arguments.
pub const BUILTIN_NO_ESCAPE: &[&str] = &[
    "__builtin_expect",
    "__builtin_expect_with_probability",
    "__builtin_assume_aligned",
    "__builtin_constant_p",
    "__builtin_object_size",
    "__builtin_dynamic_object_size",
    "__builtin_prefetch",
    "__builtin_unreachable",
    "__builtin_trap",
    "__builtin_return_address",
    "__builtin_frame_address",
    "__builtin_choose_expr",
    "__builtin_types_compatible_p",
    "__builtin_offsetof",
];

/// How clang prints a printf format attribute (`__printf(a, b)`,
/// `__attribute__((format(printf, a, b)))`) in a declaration: a function
/// that has one only reads its variadic arguments.
pub const PRINTF_ATTRIBUTES: &[&str] = &["format(printf", "__format__(printf"];

/// Does clang's printed declaration `decl` carry a printf format attribute?
pub fn printf_like(decl: &str) -> bool {
    PRINTF_ATTRIBUTES.iter().any(|a| decl.contains(a))
}

/// Kernel types that hold run-time state the kernel updates in place.
pub const STATE_RECORDS: &[&str] = &[
    "list_head",
    "hlist_head",
    "hlist_node",
    "hlist_bl_head",
    "hlist_bl_node",
    "hlist_nulls_head",
    "hlist_nulls_node",
    "llist_head",
    "llist_node",
    "rb_node",
    "rb_root",
    "rb_root_cached",
    "callback_head",
    "spinlock",
    "raw_spinlock",
    "qspinlock",
    "qrwlock",
    "mutex",
    "rw_semaphore",
    "semaphore",
    "percpu_rw_semaphore",
    "seqcount",
    "seqcount_spinlock",
    "wait_queue_head",
    "swait_queue_head",
    "completion",
    "kref",
    "refcount_struct",
    "kobject",
    "kset",
    "work_struct",
    "delayed_work",
    "timer_list",
    "hrtimer",
    "xarray",
    "idr",
    "ida",
    "percpu_ref",
    "static_key",
    "static_key_true",
    "static_key_false",
    "ratelimit_state",
    "notifier_block",
    "atomic_notifier_head",
    "blocking_notifier_head",
    "srcu_struct",
];

/// Typedef'd state types whose record is anonymous.
pub const STATE_TYPEDEFS: &[&str] = &[
    "atomic_t",
    "atomic64_t",
    "atomic_long_t",
    "refcount_t",
    "spinlock_t",
    "raw_spinlock_t",
    "rwlock_t",
    "arch_spinlock_t",
    "seqlock_t",
    "seqcount_t",
    "wait_queue_head_t",
];

/// Sections that hold plain data of the module: the loader hands their
/// objects to no one.
pub const PLAIN_SECTIONS: &[&str] = &[
    ".data",
    ".bss",
    ".rodata",
    ".data..read_mostly",
    ".data..ro_after_init",
    ".data.once",
    ".data..once",
    ".data..cacheline_aligned",
    ".data..page_aligned",
    ".bss..page_aligned",
    ".data..percpu",
    ".modinfo",
];

/// Prefixes of the same: per-object data sections, init and exit code and
/// data (gone by the time of a swap), discarded sections, code.
pub const PLAIN_SECTION_PREFIXES: &[&str] = &[
    ".init.", ".exit.", ".discard", ".data.", ".bss.", ".rodata.", ".text",
];

/// Sections whose objects the module loader hands to the kernel (parameter
/// tables, export tables, dynamic debug descriptors, ...). Plain data
/// sections, init/exit sections, discarded and info sections are not.
pub fn kernel_section(sec: &str) -> bool {
    let names = sections::names();
    if names.is_static(sec) {
        return false;
    }
    if PLAIN_SECTIONS.contains(&sec) {
        return false;
    }
    if PLAIN_SECTION_PREFIXES.iter().any(|p| sec.starts_with(p)) {
        return false;
    }
    true
}

/// Sections whose objects are gone by the time of a swap, by prefix (or
/// name, for `.modinfo`), with why.
pub const GONE_SECTIONS: &[(&str, &str)] = &[
    (
        ".init.",
        "init-only data: freed after the module's init, before any swap",
    ),
    (
        ".exit.",
        "exit-only data: used when the module is removed, never across a swap",
    ),
    (
        ".discard",
        "discarded at link time: not in the loaded module",
    ),
    (
        ".modinfo",
        "module information: read by the loader at load time, not kept in memory",
    ),
];

/// Why an object in section `sec` is gone by the time of a swap, if it is.
pub fn gone_before_swap(sec: &str) -> Option<&'static str> {
    GONE_SECTIONS
        .iter()
        .find(|(p, _)| {
            if *p == ".modinfo" {
                sec == *p
            } else {
                sec.starts_with(p)
            }
        })
        .map(|(_, why)| *why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_the_loader_hands_to_the_kernel() {
        for s in ["__param", "__ksymtab", "__dyndbg", ".altinstructions"] {
            assert!(kernel_section(s), "{s}");
        }
        for s in [
            ".data",
            ".bss.counter",
            ".init.data",
            ".rodata.str1.1",
            ".static_old.x",
            ".modinfo",
        ] {
            assert!(!kernel_section(s), "{s}");
        }
    }

    #[test]
    fn objects_gone_before_a_swap() {
        assert!(gone_before_swap(".init.data").is_some());
        assert!(gone_before_swap(".exit.data").is_some());
        assert!(gone_before_swap(".modinfo").is_some());
        assert!(gone_before_swap(".modinfo.x").is_none());
        assert!(gone_before_swap(".data").is_none());
    }

    #[test]
    fn printf_attribute_spellings() {
        assert!(printf_like(
            "int printk(const char *, ...) __attribute__((format(printf, 1, 2)))"
        ));
        assert!(!printf_like(
            "int kstrtoint(const char *, unsigned int, int *)"
        ));
    }
}
