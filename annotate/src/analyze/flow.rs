//! Where addresses go: a flow-insensitive, field-insensitive points-to
//! analysis (Andersen style) over the whole module directory, solved to a
//! fixed point.
//!
//! Memory is abstracted into cells: each global, each local (parameters
//! included) of each body, each body's return value, and one cell per
//! member of each record type defined in the module directory (heap objects
//! of the module's own types, e.g. fat's per-mount `struct msdos_sb_info`).
//! Objects are globals, locals, functions of the directory, and `Unknown`
//! (anything the kernel hands in).
//!
//! A value escapes when it reaches memory that outlives the module version
//! being replaced or that the kernel reads:
//! - kernel memory: stored through a pointer into a kernel type, passed to
//!   a function outside the directory or through an unknown function
//!   pointer, returned from a function the kernel calls, used by inline
//!   assembly, held by an escaping global or local (transitively);
//! - heap memory of the module's own types (`MSDOS_SB(sb)->dir_ops = &x`):
//!   heap objects survive a swap, so the addresses in them must stay valid.
//!   The flow is still followed (fat copies `sbi->dir_ops` into
//!   `inode->i_op`), so the evidence shows the kernel sink when there is one.
//!
//! Every fact that moves an object into a cell is remembered (first one
//! wins), so each escape comes with the chain of steps that led to it.

use super::index::{FId, GId, Index};
use crate::ir::{Callee, Expr, FactKind, Init, Place, Ref, Type, TypeId, TypeTable, Val};
use std::collections::{BTreeMap, HashMap, HashSet};

/// An abstract object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Obj {
    /// A pointer to a global; with a member when it points into that
    /// top-level member (`&g.nb`), else to the object (or an element).
    Global(GId, Option<Sym>),
    Local(FId, u32),
    Func(FId),
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum CellKey {
    /// What a global holds in one top-level member (its first field name
    /// after array indices), or outside any known member.
    Global(GId, Option<Sym>),
    Local(FId, u32),
    Ret(FId),
    /// A member of a record type of the module directory: (record, member).
    Field(String, String),
}

type Cell = usize;

/// An interned member name.
pub(crate) type Sym = u32;

/// The top-level member a path starts with, skipping array indices:
/// `nb.notifier_call` -> `nb`, `[3].procname` -> `procname`, `[]` -> none.
fn first_member(path: &str) -> Option<&str> {
    let mut p = path;
    while let Some(rest) = p.strip_prefix('[') {
        p = &rest[rest.find(']')? + 1..];
        p = p.strip_prefix('.').unwrap_or(p);
    }
    let end = p.find(['.', '[']).unwrap_or(p.len());
    (end > 0).then(|| &p[..end])
}

/// One step of an evidence chain.
#[derive(Debug, Clone)]
pub(crate) struct Step {
    pub file: String,
    pub line: u32,
    pub text: String,
    /// The cell the object came from (None: its address is taken here).
    from: Option<Cell>,
    /// The object escapes because it is held by this escaping object; its
    /// chain continues with the holder's.
    holder: Option<Obj>,
    /// Stored as a pointer to non-const.
    writable: bool,
}

impl Step {
    pub fn new(file: &str, line: u32, text: String) -> Step {
        Step {
            file: file.to_string(),
            line,
            text,
            from: None,
            holder: None,
            writable: false,
        }
    }
}

/// The step of fact `i` of body `f`: `what: source text`.
fn mk(ix: &Index<'_>, f: FId, i: usize, what: &str) -> Step {
    let fact = &ix.body(f).facts[i];
    Step::new(
        &fact.loc.file,
        fact.loc.line,
        format!("{what}: {}", fact.text),
    )
}

/// Where an escape ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sink {
    Kernel,
    Heap,
}

/// Compiler builtins that neither keep nor write through their pointer
/// arguments; the first ones pass their first argument through.
const BUILTIN_PASS: &[&str] = &["__builtin_expect", "__builtin_assume_aligned"];
const BUILTIN_NO_ESCAPE: &[&str] = &[
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

pub(crate) struct Flows<'p> {
    ix: &'p Index<'p>,
    cells: HashMap<CellKey, Cell>,
    /// The cells of each global.
    global_cells: HashMap<GId, Vec<Cell>>,
    syms: HashMap<String, Sym>,
    pts: Vec<Vec<Obj>>,
    members: HashSet<(Cell, Obj)>,
    prov: HashMap<(Cell, Obj), Step>,
    pub escape_kernel: BTreeMap<Obj, Step>,
    pub escape_heap: BTreeMap<Obj, Step>,
    /// Objects the kernel got as a pointer to non-const.
    pub writable_escape: BTreeMap<Obj, Step>,
    /// Globals the module writes at run time: the first write.
    pub module_writes: BTreeMap<GId, Step>,
    /// Runtime stores into a global, by global: (path, values, step) for
    /// re-assignment lists.
    pub stores: BTreeMap<GId, Vec<(String, Vec<Obj>, bool)>>,
    /// Record types the module writes through pointers it got from the
    /// kernel: the first such write.
    pub unknown_writes: BTreeMap<String, Step>,
    /// Functions the kernel may call: address taken or exported.
    pub kernel_callable: HashSet<FId>,
    changed: bool,
}

impl<'p> Flows<'p> {
    pub fn solve(ix: &'p Index<'p>) -> Flows<'p> {
        let mut fl = Flows {
            ix,
            cells: HashMap::new(),
            global_cells: HashMap::new(),
            syms: HashMap::new(),
            pts: Vec::new(),
            members: HashSet::new(),
            prov: HashMap::new(),
            escape_kernel: BTreeMap::new(),
            escape_heap: BTreeMap::new(),
            writable_escape: BTreeMap::new(),
            module_writes: BTreeMap::new(),
            stores: BTreeMap::new(),
            unknown_writes: BTreeMap::new(),
            kernel_callable: HashSet::new(),
            changed: false,
        };
        fl.roots();
        fl.initializers();
        for f in fl.kernel_callable.clone() {
            for i in 0..ix.body(f).params {
                let c = fl.cell(CellKey::Local(f, i));
                fl.add(c, Obj::Unknown, || {
                    Step::new("", 0, "the kernel passes its own pointers".into())
                });
            }
        }
        // The facts never shrink, so this terminates; the bound is a guard.
        for _round in 0..1000 {
            if std::env::var_os("MODSWAP_DEBUG_FLOWS").is_some() {
                eprintln!(
                    "round {_round}: {} cells, {} members",
                    fl.pts.len(),
                    fl.members.len()
                );
            }
            fl.changed = false;
            for f in 0..ix.bodies.len() as FId {
                let b = ix.body(f);
                for i in 0..b.facts.len() {
                    fl.apply(f, i);
                }
            }
            fl.returns();
            fl.closure();
            if !fl.changed {
                break;
            }
        }
        fl
    }

    fn cell(&mut self, k: CellKey) -> Cell {
        if let Some(c) = self.cells.get(&k) {
            return *c;
        }
        let c = self.pts.len();
        self.pts.push(Vec::new());
        if let CellKey::Global(g, _) = k {
            self.global_cells.entry(g).or_default().push(c);
        }
        self.cells.insert(k, c);
        c
    }

    fn sym(&mut self, name: &str) -> Sym {
        if let Some(s) = self.syms.get(name) {
            return *s;
        }
        let s = self.syms.len() as Sym;
        self.syms.insert(name.to_string(), s);
        s
    }

    fn member(&mut self, path: &str) -> Option<Sym> {
        first_member(path).map(|m| self.sym(m))
    }

    /// The cell a store into member `m` of `g` goes to.
    fn global_cell(&mut self, g: GId, m: Option<Sym>) -> Cell {
        self.cell(CellKey::Global(g, m))
    }

    /// What a load of member `m` of `g` may read: that member and what is
    /// held outside known members; every cell for a load of the whole.
    fn global_contents(&mut self, g: GId, m: Option<Sym>) -> Vec<(Obj, Option<Cell>)> {
        let cells: Vec<Cell> = match m {
            Some(_) => vec![self.global_cell(g, m), self.global_cell(g, None)],
            None => self.global_cells.get(&g).cloned().unwrap_or_default(),
        };
        let mut out = Vec::new();
        for c in cells {
            out.extend(self.contents(c));
        }
        out
    }

    fn add(&mut self, c: Cell, o: Obj, step: impl FnOnce() -> Step) {
        if self.members.insert((c, o)) {
            self.pts[c].push(o);
            self.prov.insert((c, o), step());
            self.changed = true;
        }
    }

    fn contents(&self, c: Cell) -> Vec<(Obj, Option<Cell>)> {
        self.pts[c].iter().map(|o| (*o, Some(c))).collect()
    }

    fn sink(
        &mut self,
        kind: Sink,
        vals: &[(Obj, Option<Cell>)],
        writable: bool,
        step: impl Fn() -> Step,
    ) {
        for (o, from) in vals {
            let o = match o {
                Obj::Global(g, _) => Obj::Global(*g, None),
                Obj::Local(..) => *o,
                _ => continue,
            };
            let map = match kind {
                Sink::Kernel => &mut self.escape_kernel,
                Sink::Heap => &mut self.escape_heap,
            };
            let new = !map.contains_key(&o);
            let new_w = writable && kind == Sink::Kernel && !self.writable_escape.contains_key(&o);
            if !new && !new_w {
                continue;
            }
            let mut s = step();
            s.from = *from;
            s.writable = writable;
            if new {
                let map = match kind {
                    Sink::Kernel => &mut self.escape_kernel,
                    Sink::Heap => &mut self.escape_heap,
                };
                map.insert(o, s.clone());
            }
            if new_w {
                self.writable_escape.insert(o, s);
            }
            self.changed = true;
        }
    }

    /// Exports and sections the kernel reads: escapes without a flow.
    fn roots(&mut self) {
        let ix = self.ix;
        for g in 0..ix.globals.len() as GId {
            let gl = ix.global(g);
            let at = ix.globals[g as usize];
            // EXPORT_SYMBOL*(x) leaves an `__addressable_x` pointing at x.
            if gl
                .macro_origin
                .as_deref()
                .is_some_and(|m| m.starts_with("EXPORT_SYMBOL"))
            {
                let mut refs = Vec::new();
                if let Some(i) = &gl.init {
                    collect_refs(i, &mut refs);
                }
                let how = gl.macro_origin.clone().unwrap_or_default();
                for r in refs {
                    match r {
                        Ref::Global {
                            name,
                            address: true,
                        } => {
                            if let Some(x) = ix.resolve_global_name(at.module, at.unit, name) {
                                let step = Step::new(
                                    &gl.loc.file,
                                    gl.loc.line,
                                    format!("exported with {how}({name}): other modules keep its address"),
                                );
                                self.sink(
                                    Sink::Kernel,
                                    &[(Obj::Global(x, None), None)],
                                    false,
                                    || step.clone(),
                                );
                            }
                        }
                        Ref::Function { name } => {
                            if let Some(f) = ix.resolve_function(at.module, at.unit, name) {
                                self.kernel_callable.insert(f);
                            }
                        }
                        _ => {}
                    }
                }
            }
            if let Some(sec) = &gl.section {
                if kernel_section(sec) {
                    let step = Step::new(
                        &gl.loc.file,
                        gl.loc.line,
                        format!(
                            "placed in section {sec}, which the module loader hands to the kernel"
                        ),
                    );
                    self.sink(Sink::Kernel, &[(Obj::Global(g, None), None)], false, || {
                        step.clone()
                    });
                }
            }
        }
        // Functions whose address is taken anywhere may be called by the kernel.
        for f in 0..ix.bodies.len() as FId {
            let at = ix.bodies[f as usize];
            for fact in &ix.body(f).facts {
                let mut names = Vec::new();
                match &fact.kind {
                    FactKind::Assign { to, from, .. } => {
                        vals_functions(from, &mut names);
                        place_functions(to, &mut names);
                    }
                    FactKind::Call { callee, args } => {
                        if let Callee::Indirect { value } = callee {
                            vals_functions(value, &mut names);
                        }
                        for a in args {
                            vals_functions(&a.value, &mut names);
                        }
                    }
                    FactKind::Return { value } => vals_functions(value, &mut names),
                    FactKind::Asm { operands } => {
                        for o in operands {
                            vals_functions(o, &mut names);
                        }
                    }
                }
                for n in names {
                    if let Some(t) = ix.resolve_function(at.module, at.unit, &n) {
                        self.kernel_callable.insert(t);
                    }
                }
            }
        }
        for g in 0..ix.globals.len() as GId {
            let at = ix.globals[g as usize];
            let mut refs = Vec::new();
            if let Some(i) = &ix.global(g).init {
                collect_refs(i, &mut refs);
            }
            for r in refs {
                if let Ref::Function { name } = r {
                    if let Some(t) = ix.resolve_function(at.module, at.unit, name) {
                        self.kernel_callable.insert(t);
                    }
                }
            }
        }
    }

    /// Initializers put addresses into their globals.
    fn initializers(&mut self) {
        let ix = self.ix;
        for g in 0..ix.globals.len() as GId {
            let gl = ix.global(g);
            let Some(init) = &gl.init else { continue };
            let mut items = Vec::new();
            init_items(
                &ix.program.types,
                Some(gl.ty),
                init,
                String::new(),
                &mut items,
            );
            for it in items {
                let m = self.member(&it.path);
                let c = self.global_cell(g, m);
                for r in &it.expr.refs {
                    let o = match r {
                        Ref::Global {
                            name,
                            address: true,
                        } => match ix.resolve_in_initializer(g, name) {
                            Some(x) => Obj::Global(x, None),
                            None => continue,
                        },
                        Ref::Function { name } => {
                            let at = ix.globals[g as usize];
                            match ix.resolve_function(at.module, at.unit, name) {
                                Some(f) => Obj::Func(f),
                                None => continue,
                            }
                        }
                        _ => continue,
                    };
                    let member = if it.path.is_empty() {
                        String::new()
                    } else {
                        format!(".{} = ", it.path)
                    };
                    let text = format!(
                        "in the initializer of {}: {member}{}",
                        gl.name, it.expr.text
                    );
                    let writable = it.writable;
                    let loc = it.expr.loc.clone();
                    self.add(c, o, || {
                        let mut s = Step::new(&loc.file, loc.line, text);
                        s.writable = writable;
                        s
                    });
                }
            }
        }
    }

    fn apply(&mut self, f: FId, i: usize) {
        let ix = self.ix;
        let at = ix.bodies[f as usize];
        let body = ix.body(f);
        match &body.facts[i].kind {
            FactKind::Assign {
                to,
                from,
                writable,
                update,
            } => {
                let vals = self.eval_all(f, from);
                self.store(f, i, to, &vals, *writable, *update);
            }
            FactKind::Call { callee, args } => {
                let targets: Vec<Option<FId>> = match callee {
                    Callee::Direct { name } => {
                        if BUILTIN_NO_ESCAPE.contains(&name.as_str()) {
                            return;
                        }
                        vec![ix.resolve_function(at.module, at.unit, name)]
                    }
                    Callee::Indirect { value } => {
                        let pts = self.eval_all(f, value);
                        let mut t: Vec<Option<FId>> = pts
                            .iter()
                            .map(|(o, _)| match o {
                                Obj::Func(x) => Some(*x),
                                _ => None,
                            })
                            // A function that takes fewer parameters than
                            // the call passes cannot be the callee.
                            .filter(|t| t.is_none_or(|x| ix.body(x).params as usize >= args.len()))
                            .collect();
                        if t.is_empty() {
                            t.push(None);
                        }
                        t.sort();
                        t.dedup();
                        t
                    }
                };
                for (ai, a) in args.iter().enumerate() {
                    let vals = self.eval_all(f, &a.value);
                    if vals.is_empty() {
                        continue;
                    }
                    for t in &targets {
                        match t {
                            Some(t) if (ai as u32) < ix.body(*t).params => {
                                let t = *t;
                                let c = self.cell(CellKey::Local(t, ai as u32));
                                for (o, from) in &vals {
                                    let from = *from;
                                    self.add(c, *o, || {
                                        let tb = ix.body(t);
                                        let mut s = mk(
                                            ix,
                                            f,
                                            i,
                                            &format!(
                                                "passed as `{}` to {}() ({})",
                                                tb.locals[ai], tb.name, tb.loc
                                            ),
                                        );
                                        s.from = from;
                                        s
                                    });
                                }
                            }
                            Some(t) => {
                                let t = *t;
                                self.sink(Sink::Kernel, &vals, a.writable, || {
                                    mk(
                                        ix,
                                        f,
                                        i,
                                        &format!(
                                            "passed through the `...` of {}() (not followed)",
                                            ix.body(t).name
                                        ),
                                    )
                                });
                            }
                            None => {
                                self.sink(Sink::Kernel, &vals, a.writable, || match callee {
                                    Callee::Direct { name } => mk(
                                        ix,
                                        f,
                                        i,
                                        &format!(
                                            "passed to {name}(), which the module does not define"
                                        ),
                                    ),
                                    Callee::Indirect { .. } => mk(
                                        ix,
                                        f,
                                        i,
                                        "passed through a function pointer that may lead out of the module",
                                    ),
                                });
                            }
                        }
                    }
                }
            }
            FactKind::Return { value } => {
                let vals = self.eval_all(f, value);
                let c = self.cell(CellKey::Ret(f));
                for (o, from) in vals {
                    self.add(c, o, || {
                        let mut s = mk(ix, f, i, &format!("returned by {}()", body.name));
                        s.from = from;
                        s
                    });
                }
            }
            FactKind::Asm { operands } => {
                let mut vals = Vec::new();
                for o in operands {
                    vals.extend(self.eval_all(f, o));
                }
                self.sink(Sink::Kernel, &vals, true, || {
                    mk(ix, f, i, "used by inline assembly")
                });
            }
        }
    }

    /// Puts `vals` into cell `c` as fact `i` of `f` does.
    fn put(
        &mut self,
        c: Cell,
        vals: &[(Obj, Option<Cell>)],
        writable: bool,
        f: FId,
        i: usize,
        what: impl Fn() -> String,
    ) {
        let ix = self.ix;
        for (o, from) in vals {
            let from = *from;
            self.add(c, *o, || {
                let mut s = mk(ix, f, i, &what());
                s.from = from;
                s.writable = writable;
                s
            });
        }
    }

    fn store(
        &mut self,
        f: FId,
        i: usize,
        to: &Place,
        vals: &[(Obj, Option<Cell>)],
        writable: bool,
        update: bool,
    ) {
        let ix = self.ix;
        let at = ix.bodies[f as usize];
        match to {
            Place::Global { global, path } => match ix.resolve_global(at.module, at.unit, global) {
                Some(g) => {
                    let m = self.member(path);
                    self.store_global(f, i, g, m, path, vals, writable, update)
                }
                None => {
                    self.sink(Sink::Kernel, vals, writable, || {
                        mk(
                            ix,
                            f,
                            i,
                            &format!("stored into the kernel's {}", global.name),
                        )
                    });
                }
            },
            Place::Local { local } => {
                let c = self.cell(CellKey::Local(f, *local));
                let local = *local;
                self.put(c, vals, writable, f, i, || {
                    format!("stored into `{}`", ix.body(f).locals[local as usize])
                });
            }
            Place::Deref {
                pointer,
                path,
                target,
                member_of,
            } => {
                let mut ptr = self.eval_all(f, pointer);
                if ptr.is_empty() {
                    ptr.push((Obj::Unknown, None));
                }
                let mut seen = HashSet::new();
                for (p, _) in ptr {
                    if !seen.insert(p) {
                        continue;
                    }
                    match p {
                        Obj::Global(g, at) => {
                            let m = match at {
                                Some(m) => Some(m),
                                None => self.member(path),
                            };
                            self.store_global(f, i, g, m, path, vals, writable, update)
                        }
                        Obj::Local(lf, l) => {
                            let c = self.cell(CellKey::Local(lf, l));
                            self.put(c, vals, writable, f, i, || {
                                format!("stored into `{}`", ix.body(lf).locals[l as usize])
                            });
                        }
                        Obj::Func(_) => {}
                        Obj::Unknown => {
                            if let Some(t) = target {
                                if t.in_module_dir && !self.unknown_writes.contains_key(&t.name) {
                                    let s = mk(ix, f, i, &format!("writes a {}", t.name));
                                    self.unknown_writes.insert(t.name.clone(), s);
                                }
                            }
                            match member_of {
                                Some((rec, field)) if rec.in_module_dir => {
                                    let c =
                                        self.cell(CellKey::Field(rec.name.clone(), field.clone()));
                                    let what = || {
                                        format!(
                                            "stored into {}.{field} (heap memory, which outlives the module version)",
                                            rec.name
                                        )
                                    };
                                    self.put(c, vals, writable, f, i, what);
                                    self.sink(Sink::Heap, vals, false, || mk(ix, f, i, &what()));
                                }
                                Some((rec, field)) => {
                                    self.sink(Sink::Kernel, vals, writable, || {
                                        mk(
                                            ix,
                                            f,
                                            i,
                                            &format!(
                                                "stored into {}.{field}, which the kernel owns",
                                                rec.name
                                            ),
                                        )
                                    });
                                }
                                None => {
                                    self.sink(Sink::Kernel, vals, writable, || {
                                        mk(
                                            ix,
                                            f,
                                            i,
                                            "stored through a pointer into memory the module does not own",
                                        )
                                    });
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn store_global(
        &mut self,
        f: FId,
        i: usize,
        g: GId,
        member: Option<Sym>,
        path: &str,
        vals: &[(Obj, Option<Cell>)],
        writable: bool,
        update: bool,
    ) {
        let ix = self.ix;
        let target = || {
            let name = &ix.global(g).name;
            if path.is_empty() {
                name.clone()
            } else {
                format!("{name}.{path}")
            }
        };
        if let std::collections::btree_map::Entry::Vacant(e) = self.module_writes.entry(g) {
            e.insert(mk(
                ix,
                f,
                i,
                &format!(
                    "the module {} {} at run time",
                    if update { "updates" } else { "writes" },
                    target()
                ),
            ));
            self.changed = true;
        }
        let objs: Vec<Obj> = vals.iter().map(|(o, _)| *o).collect();
        let has_str = ix.body(f).facts[i].kind_has_string();
        let entry = self.stores.entry(g).or_default();
        if !entry
            .iter()
            .any(|(p, o, s)| p == path && *o == objs && *s == has_str)
        {
            entry.push((path.to_string(), objs, has_str));
        }
        let c = self.global_cell(g, member);
        self.put(c, vals, writable, f, i, || {
            format!("stored into {}", target())
        });
    }

    fn eval_all(&mut self, f: FId, vals: &[Val]) -> Vec<(Obj, Option<Cell>)> {
        let mut out = Vec::new();
        for v in vals {
            self.eval(f, v, &mut out);
        }
        out
    }

    fn eval(&mut self, f: FId, v: &Val, out: &mut Vec<(Obj, Option<Cell>)>) {
        let ix = self.ix;
        let at = ix.bodies[f as usize];
        match v {
            Val::GlobalAddr { global, path } => match ix.resolve_global(at.module, at.unit, global)
            {
                Some(g) => {
                    let m = self.member(path);
                    out.push((Obj::Global(g, m), None))
                }
                None => out.push((Obj::Unknown, None)),
            },
            Val::LocalAddr { local } => out.push((Obj::Local(f, *local), None)),
            Val::Function { name } => match ix.resolve_function(at.module, at.unit, name) {
                Some(t) => out.push((Obj::Func(t), None)),
                None => out.push((Obj::Unknown, None)),
            },
            Val::Str => {}
            Val::Load { place } => self.load(f, place, out),
            Val::Call { fact } => {
                let Some(fact) = ix.body(f).facts.get(*fact as usize) else {
                    return;
                };
                let FactKind::Call { callee, args } = &fact.kind else {
                    return;
                };
                match callee {
                    Callee::Direct { name } => {
                        if BUILTIN_PASS.contains(&name.as_str()) {
                            if let Some(a) = args.first() {
                                for v in &a.value {
                                    self.eval(f, v, out);
                                }
                            }
                            return;
                        }
                        match ix.resolve_function(at.module, at.unit, name) {
                            Some(t) => {
                                let c = self.cell(CellKey::Ret(t));
                                out.extend(self.contents(c));
                            }
                            None => out.push((Obj::Unknown, None)),
                        }
                    }
                    Callee::Indirect { value } => {
                        let pts = self.eval_all(f, value);
                        let mut any = false;
                        for (o, _) in pts {
                            if let Obj::Func(t) = o {
                                let c = self.cell(CellKey::Ret(t));
                                out.extend(self.contents(c));
                            } else {
                                any = true;
                            }
                        }
                        if any {
                            out.push((Obj::Unknown, None));
                        }
                    }
                }
            }
        }
    }

    fn load(&mut self, f: FId, place: &Place, out: &mut Vec<(Obj, Option<Cell>)>) {
        let ix = self.ix;
        let at = ix.bodies[f as usize];
        match place {
            Place::Global { global, path } => match ix.resolve_global(at.module, at.unit, global) {
                Some(g) => {
                    let m = self.member(path);
                    out.extend(self.global_contents(g, m));
                }
                None => out.push((Obj::Unknown, None)),
            },
            Place::Local { local } => {
                let c = self.cell(CellKey::Local(f, *local));
                out.extend(self.contents(c));
            }
            Place::Deref {
                pointer,
                member_of,
                path,
                ..
            } => {
                let field_cell = match member_of {
                    Some((rec, field)) if rec.in_module_dir => {
                        Some(self.cell(CellKey::Field(rec.name.clone(), field.clone())))
                    }
                    _ => None,
                };
                let mut ptr = self.eval_all(f, pointer);
                if ptr.is_empty() {
                    ptr.push((Obj::Unknown, None));
                }
                let mut seen = HashSet::new();
                for (p, _) in ptr {
                    if !seen.insert(p) {
                        continue;
                    }
                    match p {
                        Obj::Global(g, at) => {
                            let m = match at {
                                Some(m) => Some(m),
                                None => self.member(path),
                            };
                            out.extend(self.global_contents(g, m));
                        }
                        Obj::Local(lf, l) => {
                            let c = self.cell(CellKey::Local(lf, l));
                            out.extend(self.contents(c));
                        }
                        Obj::Func(_) => {}
                        Obj::Unknown => {
                            if field_cell.is_none() {
                                out.push((Obj::Unknown, None));
                            }
                        }
                    }
                }
                if let Some(c) = field_cell {
                    out.extend(self.contents(c));
                }
            }
        }
    }

    /// What a function the kernel calls returns goes to the kernel.
    fn returns(&mut self) {
        let mut fs: Vec<FId> = self.kernel_callable.iter().copied().collect();
        fs.sort();
        for f in fs {
            let Some(c) = self.cells.get(&CellKey::Ret(f)).copied() else {
                continue;
            };
            let b = self.ix.body(f);
            let step = Step::new(
                &b.loc.file,
                b.loc.line,
                format!(
                    "returned to the kernel by {}(), which the kernel calls (its address is taken or it is exported)",
                    b.name
                ),
            );
            let vals = self.contents(c);
            self.sink(Sink::Kernel, &vals, false, || step.clone());
        }
    }

    /// What an escaping global or local holds escapes too.
    fn closure(&mut self) {
        let mut escaped: Vec<(Obj, Sink)> = self
            .escape_kernel
            .keys()
            .map(|o| (*o, Sink::Kernel))
            .collect();
        escaped.extend(
            self.escape_heap
                .keys()
                .filter(|o| !self.escape_kernel.contains_key(o))
                .map(|o| (*o, Sink::Heap)),
        );
        for (o, kind) in escaped {
            let cells: Vec<Cell> = match o {
                Obj::Global(g, _) => self.global_cells.get(&g).cloned().unwrap_or_default(),
                Obj::Local(f, l) => self
                    .cells
                    .get(&CellKey::Local(f, l))
                    .copied()
                    .into_iter()
                    .collect(),
                _ => continue,
            };
            for c in cells {
                for (x, _) in self.contents(c) {
                    if !matches!(x, Obj::Global(..) | Obj::Local(..)) || same(x, o) {
                        continue;
                    }
                    let writable = self.prov.get(&(c, x)).is_some_and(|s| s.writable);
                    self.sink(kind, &[(x, Some(c))], writable, || {
                        let mut s = Step::new("", 0, String::new());
                        s.holder = Some(o);
                        s
                    });
                }
            }
        }
    }

    /// The evidence chain of an escape step of `o`, origin first.
    pub fn chain(&self, o: Obj, step: &Step) -> Vec<(String, u32, String)> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        self.chain_into(o, step, &mut seen, &mut out);
        out
    }

    fn chain_into(
        &self,
        o: Obj,
        step: &Step,
        seen: &mut HashSet<Obj>,
        out: &mut Vec<(String, u32, String)>,
    ) {
        if !seen.insert(o) || out.len() > 40 {
            return;
        }
        let mut back = Vec::new();
        let mut cur = step.from;
        let mut guard = 0;
        while let Some(c) = cur {
            // The cell holds the object as it was stored (a global with
            // the member its pointer points into).
            let s = self.prov.get(&(c, o)).or_else(|| {
                self.pts[c]
                    .iter()
                    .find(|x| same(**x, o))
                    .and_then(|x| self.prov.get(&(c, *x)))
            });
            let Some(s) = s else {
                break;
            };
            back.push((s.file.clone(), s.line, s.text.clone()));
            cur = s.from;
            guard += 1;
            if guard > 40 {
                break;
            }
        }
        back.reverse();
        out.extend(back);
        match step.holder {
            Some(h) => {
                let hs = self
                    .escape_kernel
                    .get(&h)
                    .or_else(|| self.escape_heap.get(&h));
                if let Some(hs) = hs {
                    self.chain_into(h, hs, seen, out);
                }
            }
            None => out.push((step.file.clone(), step.line, step.text.clone())),
        }
    }
}

impl crate::ir::Fact {
    fn kind_has_string(&self) -> bool {
        match &self.kind {
            FactKind::Assign { from, .. } => from.iter().any(|v| matches!(v, Val::Str)),
            _ => false,
        }
    }
}

/// The same object, whatever member a pointer to it points into.
fn same(a: Obj, b: Obj) -> bool {
    match (a, b) {
        (Obj::Global(x, _), Obj::Global(y, _)) => x == y,
        _ => a == b,
    }
}

/// Sections whose objects the module loader hands to the kernel (parameter
/// tables, export tables, dynamic debug descriptors, ...). Plain data
/// sections, init/exit sections, discarded and info sections are not.
pub(crate) fn kernel_section(sec: &str) -> bool {
    let names = crate::sections::names();
    if names.is_static(sec) {
        return false;
    }
    let plain = [
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
    if plain.contains(&sec) {
        return false;
    }
    let plain_prefix = [
        ".init.", ".exit.", ".discard", ".data.", ".bss.", ".rodata.", ".text",
    ];
    if plain_prefix.iter().any(|p| sec.starts_with(p)) {
        return false;
    }
    true
}

pub(crate) fn collect_refs<'a>(i: &'a Init, out: &mut Vec<&'a Ref>) {
    match i {
        Init::Record { fields } => fields.iter().for_each(|x| collect_refs(&x.value, out)),
        Init::Array { elements } => elements.iter().for_each(|x| collect_refs(&x.value, out)),
        Init::Expr(e) => out.extend(e.refs.iter()),
    }
}

fn vals_functions(vals: &[Val], out: &mut Vec<String>) {
    for v in vals {
        match v {
            Val::Function { name } => out.push(name.clone()),
            Val::Load { place } => place_functions(place, out),
            _ => {}
        }
    }
}

fn place_functions(p: &Place, out: &mut Vec<String>) {
    if let Place::Deref { pointer, .. } = p {
        vals_functions(pointer, out);
    }
}

/// One expression of an initializer, with its member path and type.
pub(crate) struct InitItem<'a> {
    /// `name`, `ops.open`, `[3]`, `[3].procname` (anonymous members skipped).
    pub path: String,
    pub expr: &'a Expr,
    /// The member's type, when known.
    pub ty: Option<TypeId>,
    /// The member is a pointer to non-const data.
    pub writable: bool,
}

/// Flattens an initializer into its expressions.
pub(crate) fn init_items<'a>(
    types: &TypeTable,
    ty: Option<TypeId>,
    init: &'a Init,
    path: String,
    out: &mut Vec<InitItem<'a>>,
) {
    match init {
        Init::Expr(e) => {
            let writable = ty.is_some_and(|t| writable_pointer(types, t));
            out.push(InitItem {
                path,
                expr: e,
                ty,
                writable,
            });
        }
        Init::Record { fields } => {
            for fi in fields {
                let fty = ty.and_then(|t| find_field(types, t, &fi.field));
                let p = if fi.field.is_empty() {
                    path.clone()
                } else if path.is_empty() {
                    fi.field.clone()
                } else {
                    format!("{path}.{}", fi.field)
                };
                // An anonymous member keeps the record type: its members
                // are found by name through it.
                let next = if fi.field.is_empty() { ty } else { fty };
                init_items(types, next, &fi.value, p, out);
            }
        }
        Init::Array { elements } => {
            let elem = ty.and_then(|t| match types.get(types.resolve(t)) {
                Type::Array { elem, .. } => Some(*elem),
                _ => None,
            });
            for e in elements {
                init_items(types, elem, &e.value, format!("{path}[{}]", e.index), out);
            }
        }
    }
}

/// The type of member `name` of record type `t`, looking into anonymous members.
pub(crate) fn find_field(types: &TypeTable, t: TypeId, name: &str) -> Option<TypeId> {
    if name.is_empty() {
        return None;
    }
    let Type::Record {
        fields: Some(fields),
        ..
    } = types.get(types.resolve(t))
    else {
        return None;
    };
    for f in fields {
        if f.name == name {
            return Some(f.ty);
        }
    }
    fields
        .iter()
        .filter(|f| f.name.is_empty())
        .find_map(|f| find_field(types, f.ty, name))
}

/// Is `t` a pointer to non-const data?
pub(crate) fn writable_pointer(types: &TypeTable, t: TypeId) -> bool {
    match types.get(types.resolve(t)) {
        Type::Pointer { pointee } => {
            let mut p = *pointee;
            loop {
                match types.get(p) {
                    Type::Qualified { is_const: true, .. } => return false,
                    Type::Qualified { base, .. } => p = *base,
                    Type::Typedef { underlying, .. } => p = *underlying,
                    Type::Function { .. } => return false,
                    _ => return true,
                }
            }
        }
        _ => false,
    }
}

/// Is `t` a pointer (to data or code)?
pub(crate) fn is_pointer(types: &TypeTable, t: TypeId) -> bool {
    matches!(types.get(types.resolve(t)), Type::Pointer { .. })
}
