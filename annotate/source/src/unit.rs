//! One translation unit -> [`Unit`]: its globals, functions and their types.

use super::types::TypeBuilder;
use super::{body, init, Ctx};
use modswap_clang::{Cursor, Kind, Linkage as CLinkage, StorageClass, TypeKind, Visit};
use modswap_ir::{Function, Global, Linkage, Span, Unit};
use std::collections::BTreeMap;

/// A macro expansion in a file of the module directory: where it is and its name.
struct Expansion {
    file: std::path::PathBuf,
    start: u32,
    end: u32,
    name: String,
}

pub(crate) fn extract(top: &[Cursor<'_>], ctx: &Ctx, file: &str) -> (Unit, modswap_ir::TypeTable) {
    let mut types = TypeBuilder::new(ctx);
    let mut globals: Vec<Global> = Vec::new();
    // The declaration each global was read from (same order as `globals`).
    let mut decls: Vec<Cursor<'_>> = Vec::new();
    let mut functions: BTreeMap<String, Function> = BTreeMap::new();

    let mut definitions: Vec<Definition<'_>> = Vec::new();
    let mut file_scope: BTreeMap<String, usize> = BTreeMap::new();
    let expansions = expansions(top, ctx);

    for c in top {
        match c.kind() {
            // Definitions, including tentative ones (`static int x;`),
            // which libclang does not count as definitions.
            Kind::VarDecl
                if ctx.file_in_module_dir(c.file_id(), || c.location())
                    && (c.is_definition() || c.storage_class() != StorageClass::Extern) =>
            {
                let name = c.spelling();
                match file_scope.get(&name) {
                    // A tentative definition followed by the definition:
                    // the one with the initializer wins.
                    Some(&i) if globals[i].init.is_none() && c.var_initializer().is_some() => {
                        globals[i] = global(ctx, &mut types, *c, None, &expansions);
                        decls[i] = *c;
                    }
                    Some(_) => {}
                    None => {
                        file_scope.insert(name, globals.len());
                        globals.push(global(ctx, &mut types, *c, None, &expansions));
                        decls.push(*c);
                    }
                }
            }
            Kind::FunctionDecl => {
                let in_dir = ctx.file_in_module_dir(c.file_id(), || c.location());
                if in_dir {
                    note_function(&mut functions, ctx, *c, true);
                }
                if in_dir && c.is_definition() {
                    let fname = c.spelling();
                    let mut refs = std::collections::BTreeSet::new();
                    c.visit(|k, _| {
                        match k.kind() {
                            Kind::VarDecl if k.has_global_storage() && k.is_definition() => {
                                globals.push(global(
                                    ctx,
                                    &mut types,
                                    k,
                                    Some(fname.clone()),
                                    &expansions,
                                ));
                                decls.push(k);
                            }
                            Kind::DeclRefExpr => {
                                if let Some(d) = k.referenced() {
                                    if d.kind() == Kind::FunctionDecl {
                                        note_function(&mut functions, ctx, d, false);
                                        refs.insert(d.spelling());
                                    }
                                }
                            }
                            _ => {}
                        }
                        Visit::Recurse
                    });
                    definitions.push(Definition {
                        cursor: *c,
                        root: ctx.in_main_unit(&c.location()) || c.linkage() != CLinkage::Internal,
                        name: fname,
                        refs,
                    });
                }
            }
            _ => {}
        }
    }
    // Functions named by initializers of globals.
    note_initializer_functions(&globals, &mut functions);
    // A static function of a module header that this unit never refers to
    // (most of a header's inline functions, in most units) is not in the
    // unit's object: its body, and the statics in it, are left out.
    let live = live_definitions(&definitions, &globals);
    let (kept, dead): (Vec<_>, Vec<_>) = definitions
        .into_iter()
        .partition(|d| live.contains(d.name.as_str()));
    let dead: std::collections::BTreeSet<String> = dead.into_iter().map(|d| d.name).collect();
    let definitions = kept;
    let (mut globals, decls): (Vec<Global>, Vec<Cursor<'_>>) = globals
        .into_iter()
        .zip(decls)
        .filter(|(g, _)| g.function.as_ref().is_none_or(|f| !dead.contains(f)))
        .unzip();
    assign_function_static_keys(&mut globals);
    // By declaration (canonical cursor), not by place: the statics that one
    // macro invocation makes (two WARN_ONCE()s) share their place.
    let index: body::GlobalIndex = decls
        .iter()
        .zip(&globals)
        .map(|(d, g)| (d.canonical(), g.key.clone()))
        .collect();
    let bodies = definitions
        .iter()
        .map(|d| body::extract(ctx, &index, d.cursor))
        .collect();
    let unit = Unit {
        file: file.to_string(),
        globals,
        functions: functions.into_values().collect(),
        bodies,
    };
    (unit, types.table)
}

/// The macro expansions in files of the module directory.
fn expansions(top: &[Cursor<'_>], ctx: &Ctx) -> Vec<Expansion> {
    let mut expansions = Vec::new();
    for c in top {
        // A macro expansion's location is where its extent starts (and is
        // cheaper to read).
        if c.kind() == Kind::MacroExpansion
            && ctx.file_in_module_dir(c.file_id(), || c.extent().start)
        {
            let e = c.extent();
            if let Some(f) = &e.start.file {
                if ctx.in_module_dir(&e.start) {
                    expansions.push(Expansion {
                        file: f.clone(),
                        start: e.start.offset,
                        end: e.end.offset,
                        name: c.spelling(),
                    });
                }
            }
        }
    }

    expansions
}

/// Notes the functions that initializers of `globals` name.
fn note_initializer_functions(globals: &[Global], functions: &mut BTreeMap<String, Function>) {
    for g in globals {
        if let Some(i) = &g.init {
            for_each_ref(i, &mut |r| {
                if let modswap_ir::Ref::Function { name } = r {
                    functions.entry(name.clone()).or_insert_with(|| Function {
                        name: name.clone(),
                        linkage: Linkage::External,
                        defined: false,
                        loc: Default::default(),
                        in_module_dir: false,
                    });
                }
            });
        }
    }
}

/// A function defined in the module directory, in this unit.
struct Definition<'tu> {
    cursor: Cursor<'tu>,
    name: String,
    /// Defined in the unit's own file, or not static: kept whether or not
    /// the unit refers to it.
    root: bool,
    /// The functions its body names (calls and addresses).
    refs: std::collections::BTreeSet<String>,
}

/// The definitions reachable from the roots and from the initializers of
/// file-scope globals and of the statics of reachable functions.
fn live_definitions(
    definitions: &[Definition<'_>],
    globals: &[Global],
) -> std::collections::BTreeSet<String> {
    let by_name: BTreeMap<&str, &Definition<'_>> =
        definitions.iter().map(|d| (d.name.as_str(), d)).collect();
    let mut live: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
    let mut todo: Vec<&str> = definitions
        .iter()
        .filter(|d| d.root)
        .map(|d| d.name.as_str())
        .collect();
    let mut seeded_globals = vec![false; globals.len()];
    loop {
        while let Some(n) = todo.pop() {
            if let Some(d) = by_name.get(n) {
                if live.insert(d.name.as_str()) {
                    todo.extend(d.refs.iter().map(String::as_str));
                }
            }
        }
        // Initializers of file-scope globals, and of the statics of the
        // functions found live so far.
        let mut more = false;
        for (i, g) in globals.iter().enumerate() {
            let seed = g.function.as_deref().is_none_or(|f| live.contains(f));
            if seeded_globals[i] || !seed {
                continue;
            }
            seeded_globals[i] = true;
            if let Some(init) = &g.init {
                for_each_ref(init, &mut |r| {
                    if let modswap_ir::Ref::Function { name } = r {
                        if let Some(d) = by_name.get(name.as_str()) {
                            if !live.contains(d.name.as_str()) {
                                todo.push(d.name.as_str());
                                more = true;
                            }
                        }
                    }
                });
            }
        }
        if !more {
            return live.into_iter().map(str::to_string).collect();
        }
    }
}

fn for_each_ref(i: &modswap_ir::Init, f: &mut impl FnMut(&modswap_ir::Ref)) {
    match i {
        modswap_ir::Init::Record { fields } => {
            fields.iter().for_each(|x| for_each_ref(&x.value, f))
        }
        modswap_ir::Init::Array { elements } => {
            elements.iter().for_each(|x| for_each_ref(&x.value, f))
        }
        modswap_ir::Init::Expr(e) => e.refs.iter().for_each(f),
    }
}

fn note_function(
    functions: &mut BTreeMap<String, Function>,
    ctx: &Ctx,
    c: Cursor<'_>,
    from_decl: bool,
) {
    let name = c.spelling();
    let def = c.definition();
    let defined = def.is_some_and(|d| ctx.in_main_unit(&d.location()));
    let at = def.unwrap_or(c);
    let loc = at.location();
    // A compiler builtin is declared where it is first used, which says
    // nothing about it (and moves when header bodies are folded): it has no
    // place and is never the module's.
    let builtin = def.is_none() && is_builtin(&name);
    let f = Function {
        name: name.clone(),
        linkage: if c.linkage() == CLinkage::Internal {
            Linkage::Internal
        } else {
            Linkage::External
        },
        defined,
        loc: if builtin {
            Default::default()
        } else {
            ctx.loc(&loc)
        },
        in_module_dir: !builtin && ctx.in_module_dir(&loc),
    };
    match functions.get(&name) {
        Some(old) if old.defined || (!from_decl && old.in_module_dir) => {}
        _ => {
            functions.insert(name, f);
        }
    }
}

/// GCC's and clang's builtin functions, which no header declares.
fn is_builtin(name: &str) -> bool {
    ["__builtin_", "__atomic_", "__sync_", "__c11_atomic_"]
        .iter()
        .any(|p| name.starts_with(p))
}

fn global(
    ctx: &Ctx,
    types: &mut TypeBuilder<'_>,
    c: Cursor<'_>,
    function: Option<String>,
    expansions: &[Expansion],
) -> Global {
    let name = c.spelling();
    let loc = c.location();
    let extent = c.extent();
    let cty = c.ty();
    let ty = types.convert(cty, true);
    let is_const = {
        let mut t = cty;
        loop {
            if t.is_const() {
                break true;
            }
            t = match t.kind() {
                TypeKind::Elaborated => t.named(),
                TypeKind::Typedef | TypeKind::Attributed => t.canonical(),
                TypeKind::ConstantArray | TypeKind::IncompleteArray => match t.element() {
                    Some(e) => e,
                    None => break false,
                },
                _ => break false,
            };
        }
    };
    let linkage = if function.is_none() && c.linkage() == CLinkage::External {
        Linkage::External
    } else {
        Linkage::Internal
    };
    let macro_origin = loc.file.as_ref().and_then(|f| {
        expansions
            .iter()
            .filter(|e| {
                &e.file == f && e.start <= loc.offset && loc.offset < e.end.max(e.start + 1)
            })
            .max_by_key(|e| e.end - e.start)
            .map(|e| e.name.clone())
    });
    let init = c.var_initializer().map(|i| init::convert(ctx, i, cty));
    Global {
        key: match &function {
            Some(f) => format!("{f}.{name}"),
            None => name.clone(),
        },
        name,
        function,
        linkage,
        loc: ctx.loc(&loc),
        span: Span {
            start: extent.start.offset,
            name: loc.offset,
            end: extent.end.offset,
        },
        ty,
        is_const,
        is_definition: true,
        section: section_of(&c.pretty_printed()),
        macro_origin,
        size: cty.size_of(),
        align: cty.align_of(),
        init,
    }
}

/// The section named by `__attribute__((section("...")))` in a declaration
/// as clang prints it.
pub(crate) fn section_of(pretty: &str) -> Option<String> {
    let at = pretty.find("section(\"")?;
    let rest = &pretty[at + "section(\"".len()..];
    let end = rest.find("\")")?;
    Some(rest[..end].to_string())
}

/// Function statics that share a name inside one function (macros make
/// them) get `.1`, `.2`, ... in source order.
fn assign_function_static_keys(globals: &mut [Global]) {
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for g in globals.iter().filter(|g| g.function.is_some()) {
        *count.entry(g.key.clone()).or_default() += 1;
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for g in globals.iter_mut().filter(|g| g.function.is_some()) {
        if count[&g.key] > 1 {
            let n = seen.entry(g.key.clone()).or_default();
            *n += 1;
            g.key = format!("{}.{}", g.key, n);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn section_from_pretty_print() {
        assert_eq!(
            super::section_of("static int x __attribute__((section(\".data..read_mostly\"))) = 1")
                .as_deref(),
            Some(".data..read_mostly")
        );
        assert_eq!(super::section_of("static int x = 1"), None);
    }
}
