//! Where addresses go: a flow-insensitive points-to analysis (Andersen
//! style) over the whole module directory, solved with a worklist.
//!
//! Memory is abstracted into nodes: each global (one node per top-level
//! member, plus one for the whole), each local (parameters included) of
//! each body, each body's return value, one node per member of each record
//! type defined in the module directory (heap objects of the module's own
//! types, e.g. fat's per-mount `struct msdos_sb_info`), temporaries for
//! expressions, and the escape nodes. Objects are globals, locals,
//! functions of the directory, and `Unknown` (anything the kernel hands in).
//!
//! The facts of the bodies and the initializers are compiled once into
//! constraints: base facts (`&g` flows into a node), copy edges, and
//! constraints on pointer nodes (loads, stores, indirect calls) that add
//! edges as the pointer's objects become known. Every (node, object) pair is
//! propagated once, so the cost follows the size of the solution.
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
//! The first way each object reaches each node is remembered as a compact
//! label, so every escape comes with the chain of steps that led to it,
//! rendered as text only when a report asks for it.

use super::index::{FId, GId, Index};
use modswap_ir::{Callee, Expr, FactKind, Init, Place, Ref, Type, TypeId, TypeTable, Val};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

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

/// An interned member name.
pub(crate) type Sym = u32;

type Node = u32;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    /// What a global holds in one top-level member (its first field name
    /// after array indices), or outside any known member.
    Global(GId, Option<Sym>),
    /// Everything a global holds.
    GlobalAll(GId),
    Local(FId, u32),
    Ret(FId),
    /// A member of a record type of the module directory: (record, member).
    Field(String, String),
}

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

/// What a fact does with a value, for evidence texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum What {
    PassedParam { t: FId, idx: u32 },
    PassedVariadic { t: FId },
    PassedExternal,
    PassedIndirect,
    Returned,
    Asm,
    StoredKernelGlobal,
    StoredLocal { f: FId, l: u32 },
    StoredHeap,
    StoredKernelField,
    StoredUnknown,
    StoredGlobal { g: GId },
}

/// How an object got into a node (compact; rendered on demand).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Label {
    /// A plain copy (temporaries, loads): not a step of its own.
    Copy,
    /// Fact `i` of body `f`.
    Fact {
        f: FId,
        i: u32,
        what: What,
        writable: bool,
    },
    /// Item `item` of the flattened initializer of `g`.
    Init { g: GId, item: u32, writable: bool },
    /// Exported by the `EXPORT_SYMBOL*` that made global `by`.
    Export { by: GId },
    /// In a section the module loader hands to the kernel.
    Section { g: GId },
    /// The kernel calls function `f` and gets what it returns.
    ReturnToKernel { f: FId },
    /// What escaping object `o` holds escapes with it.
    Holder { o: Obj },
    /// The kernel passes its own pointers to the functions it calls.
    KernelArgs,
    /// An object widened (see [`WIDEN_AT`]): too many nodes to follow.
    Widened,
}

impl Label {
    fn writable(self) -> bool {
        match self {
            Label::Fact { writable, .. } | Label::Init { writable, .. } => writable,
            // Where a widened pointer leads is not known: the kernel may
            // have it, and write through it.
            Label::Widened => true,
            _ => false,
        }
    }
}

/// One step of an evidence chain, rendered.
#[derive(Debug, Clone)]
pub(crate) struct Step {
    pub file: String,
    pub line: u32,
    pub text: String,
    /// Where the object came from (internal: the chain continues there).
    from: Option<Node>,
    label: Label,
}

/// Where an escape ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sink {
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

/// An object that reaches more than this many nodes is widened to the
/// conservative top: it is taken to escape to the kernel as a pointer to
/// non-const (so what it holds escapes with it, and it counts as written),
/// and from then on it travels as `Unknown`, which stores through, loads
/// from and calls through as the kernel's memory. Sound for escape; it keeps
/// a context-insensitive analysis of a large directory from propagating
/// every object to every node (fs/bcachefs: pointers to the locals of
/// hundreds of callers meet in the parameters of shared helpers and spread
/// from there to over a million nodes), since no object can be in more
/// than this many nodes. Small modules never get near it (in fs/fat no
/// object reaches more than a few hundred nodes).
pub(crate) const WIDEN_AT: u32 = 2000;

/// The most (node, object) pairs plus edges the solver may hold before it
/// gives up with [`Budget`] (roughly 100 bytes each).
pub(crate) const BUDGET: usize = 12_000_000;

/// The solver exceeded its budget.
#[derive(Debug, Clone)]
pub(crate) struct Budget {
    pub reason: String,
}

/// A load through a pointer node: `dst` gets what the pointed-to memory holds.
struct LoadC {
    member: Option<Sym>,
    /// The module record member cell, when the load reads one (then an
    /// unknown pointer reads that cell, not the kernel's memory).
    field: Option<Node>,
    dst: Node,
}

/// A store through a pointer node: what `src` holds goes where it points.
struct StoreC {
    f: FId,
    i: u32,
    member: Option<Sym>,
    src: Node,
    writable: bool,
    update: bool,
}

/// A call through a pointer node.
struct CallC {
    f: FId,
    i: u32,
    args: Vec<(Node, bool)>,
    dst: Node,
}

#[derive(Default)]
struct NodeData {
    /// What the node holds, in arrival order (membership: `Flows::prov`).
    pts: Vec<Obj>,
    out: Vec<(Node, Label)>,
    loads: Vec<LoadC>,
    stores: Vec<StoreC>,
    calls: Vec<CallC>,
}

pub(crate) struct Flows<'p> {
    ix: &'p Index<'p>,
    keys: HashMap<Key, Node>,
    nodes: Vec<NodeData>,
    edges: HashSet<(Node, Node)>,
    prov: HashMap<(Node, Obj), (Option<Node>, Label)>,
    syms: HashMap<String, Sym>,
    work: VecDeque<(Node, Obj)>,
    escape_kernel_node: Node,
    escape_heap_node: Node,
    writable_node: Node,
    /// Set when the solver ran out of budget.
    over_budget: bool,
    limits: super::Limits,
    /// In how many nodes each object is (escape nodes aside).
    reach: HashMap<Obj, u32>,
    /// Objects widened (see [`WIDEN_AT`]).
    widened: HashSet<Obj>,
    /// Call results, by (body, fact).
    results: HashMap<(FId, u32), Node>,
    /// Escapes, rendered after solving.
    pub escape_kernel: BTreeMap<Obj, Step>,
    pub escape_heap: BTreeMap<Obj, Step>,
    /// Objects the kernel got as a pointer to non-const.
    pub writable_escape: BTreeMap<Obj, Step>,
    /// Globals the module writes at run time: the first write.
    pub module_writes: BTreeMap<GId, Step>,
    writes: BTreeMap<GId, (FId, u32, bool, String)>,
    /// Run-time stores into a global, by global: (path, objects, stores a
    /// string literal), for re-assignment lists.
    pub stores: BTreeMap<GId, Vec<(String, Vec<Obj>, bool)>>,
    store_nodes: Vec<(GId, String, Node, bool)>,
    /// Record types (of the module directory) the module writes through
    /// pointers it got from the kernel: the first such write.
    pub unknown_writes: BTreeMap<String, Step>,
    unknown_write_facts: BTreeMap<String, (FId, u32)>,
    /// Functions the kernel may call: address taken or exported.
    pub kernel_callable: HashSet<FId>,
}

impl<'p> Flows<'p> {
    pub fn solve(ix: &'p Index<'p>, limits: super::Limits) -> Result<Flows<'p>, Budget> {
        let mut fl = Flows {
            ix,
            keys: HashMap::new(),
            nodes: Vec::new(),
            edges: HashSet::new(),
            prov: HashMap::new(),
            syms: HashMap::new(),
            work: VecDeque::new(),
            escape_kernel_node: 0,
            escape_heap_node: 0,
            writable_node: 0,
            over_budget: false,
            limits,
            reach: HashMap::new(),
            widened: HashSet::new(),
            results: HashMap::new(),
            escape_kernel: BTreeMap::new(),
            escape_heap: BTreeMap::new(),
            writable_escape: BTreeMap::new(),
            module_writes: BTreeMap::new(),
            writes: BTreeMap::new(),
            stores: BTreeMap::new(),
            store_nodes: Vec::new(),
            unknown_writes: BTreeMap::new(),
            unknown_write_facts: BTreeMap::new(),
            kernel_callable: HashSet::new(),
        };
        let started = std::time::Instant::now();
        fl.escape_kernel_node = fl.temp();
        fl.escape_heap_node = fl.temp();
        fl.writable_node = fl.temp();
        fl.callable();
        fl.roots();
        fl.initializers();
        for f in 0..ix.bodies.len() as FId {
            for i in 0..ix.body(f).facts.len() {
                fl.compile(f, i as u32);
            }
        }
        let mut callable: Vec<FId> = fl.kernel_callable.iter().copied().collect();
        callable.sort();
        for f in callable {
            for i in 0..ix.body(f).params {
                let n = fl.node(Key::Local(f, i));
                fl.add(n, Obj::Unknown, None, Label::KernelArgs);
            }
            let r = fl.node(Key::Ret(f));
            let ek = fl.escape_kernel_node;
            fl.edge(r, ek, Label::ReturnToKernel { f });
        }
        fl.run();
        // Sizes of the solution, for tuning WIDEN_AT and BUDGET.
        if std::env::var_os("MODSWAP_FLOW_STATS").is_some() {
            let big = fl.nodes.iter().map(|x| x.pts.len()).max().unwrap_or(0);
            eprintln!(
                "flow: done in {:?}: nodes {} pairs {} edges {} widened {} biggest {big} widest {}",
                started.elapsed(),
                fl.nodes.len(),
                fl.prov.len(),
                fl.edges.len(),
                fl.widened.len(),
                fl.reach.values().max().copied().unwrap_or(0)
            );
        }
        if fl.over_budget {
            return Err(Budget {
                reason: format!(
                    "the points-to analysis needs more than {} million facts ({} nodes, {} objects widened)",
                    fl.limits.budget / 1_000_000,
                    fl.nodes.len(),
                    fl.widened.len()
                ),
            });
        }
        fl.finish();
        Ok(fl)
    }

    // ---- the graph ----

    fn temp(&mut self) -> Node {
        self.nodes.push(NodeData::default());
        (self.nodes.len() - 1) as Node
    }

    fn node(&mut self, k: Key) -> Node {
        if let Some(n) = self.keys.get(&k) {
            return *n;
        }
        let n = self.temp();
        if let Key::Global(g, _) = k {
            // Every member node feeds the global's whole-object node.
            let all = self.node(Key::GlobalAll(g));
            self.edge(n, all, Label::Copy);
        }
        self.keys.insert(k, n);
        n
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

    /// Adds `o` to `n` (the first way it arrives is remembered).
    fn add(&mut self, n: Node, o: Obj, from: Option<Node>, label: Label) {
        let o = if n == self.escape_kernel_node
            || n == self.escape_heap_node
            || n == self.writable_node
        {
            // Escape nodes hold objects, not pointers into them.
            match o {
                Obj::Global(g, _) => Obj::Global(g, None),
                Obj::Local(..) => o,
                _ => return,
            }
        } else {
            o
        };
        let special = n <= self.writable_node;
        let o = if !special && o != Obj::Unknown && self.widened.contains(&whole(o)) {
            Obj::Unknown
        } else {
            o
        };
        if let std::collections::hash_map::Entry::Vacant(e) = self.prov.entry((n, o)) {
            e.insert((from, label));
            self.nodes[n as usize].pts.push(o);
            self.work.push_back((n, o));
            if self.prov.len() + self.edges.len() > self.limits.budget {
                self.over_budget = true;
            }
            if !special && o != Obj::Unknown {
                let r = self.reach.entry(whole(o)).or_insert(0);
                *r += 1;
                if *r > self.limits.widen_at {
                    self.widen(n, o);
                }
            }
        }
    }

    /// Widens object `o`, just put into node `n` (see [`WIDEN_AT`]).
    fn widen(&mut self, n: Node, o: Obj) {
        self.widened.insert(whole(o));
        let ek = self.escape_kernel_node;
        self.send(n, o, ek, Label::Widened);
    }

    /// Adds the edge `src -> dst` and sends what `src` already holds.
    fn edge(&mut self, src: Node, dst: Node, label: Label) {
        if src == dst || !self.edges.insert((src, dst)) {
            return;
        }
        self.nodes[src as usize].out.push((dst, label));
        let held = self.nodes[src as usize].pts.clone();
        for o in held {
            self.send(src, o, dst, label);
        }
    }

    /// Propagates `o` along the edge `src -> dst`.
    fn send(&mut self, src: Node, o: Obj, dst: Node, label: Label) {
        self.add(dst, o, Some(src), label);
        if dst == self.escape_kernel_node {
            // The kernel may write what it gets as a pointer to non-const:
            // directly, or held by an escaping object through one.
            let writable = label.writable()
                || (matches!(label, Label::Holder { .. }) && self.stored_writable(src, o));
            if writable {
                let w = self.writable_node;
                self.add(w, o, Some(src), label);
            }
        }
    }

    /// Was `o` put into node `n` as a pointer to non-const (looking
    /// through plain copies)?
    fn stored_writable(&self, n: Node, o: Obj) -> bool {
        let mut cur = Some(n);
        for _ in 0..64 {
            let Some(c) = cur else { return false };
            match self.prov.get(&(c, o)) {
                Some((from, Label::Copy)) => cur = *from,
                Some((_, l)) => return l.writable(),
                None => return false,
            }
        }
        false
    }

    fn sink(&mut self, src: Node, kind: Sink, label: Label) {
        let dst = match kind {
            Sink::Kernel => self.escape_kernel_node,
            Sink::Heap => self.escape_heap_node,
        };
        self.edge(src, dst, label);
    }

    fn run(&mut self) {
        while let Some((n, o)) = self.work.pop_front() {
            if self.over_budget {
                return;
            }
            let out = self.nodes[n as usize].out.clone();
            for (dst, label) in out {
                self.send(n, o, dst, label);
            }
            if n == self.escape_kernel_node || n == self.escape_heap_node {
                // What an escaping object holds escapes with it.
                let holder = match o {
                    Obj::Global(g, _) => Some(self.node(Key::GlobalAll(g))),
                    Obj::Local(f, l) => Some(self.node(Key::Local(f, l))),
                    _ => None,
                };
                if let Some(h) = holder {
                    self.edge(h, n, Label::Holder { o });
                }
                continue;
            }
            if self.nodes[n as usize].loads.is_empty()
                && self.nodes[n as usize].stores.is_empty()
                && self.nodes[n as usize].calls.is_empty()
            {
                continue;
            }
            // Constraints only grow while `o` is handled; the ones added
            // meanwhile have already seen `o` (it is in the node's set).
            let n = n as usize;
            for k in 0..self.nodes[n].loads.len() {
                let l = &self.nodes[n].loads[k];
                let (member, field, dst) = (l.member, l.field, l.dst);
                self.load_through(o, member, field, dst);
            }
            for k in 0..self.nodes[n].stores.len() {
                let s = &self.nodes[n].stores[k];
                let (f, i, member, src, writable, update) =
                    (s.f, s.i, s.member, s.src, s.writable, s.update);
                self.store_through(o, f, i, member, src, writable, update);
            }
            for k in 0..self.nodes[n].calls.len() {
                let c = &self.nodes[n].calls[k];
                let (f, i, args, dst) = (c.f, c.i, c.args.clone(), c.dst);
                self.call_through(o, f, i, &args, dst);
            }
        }
    }

    fn load_through(&mut self, o: Obj, member: Option<Sym>, field: Option<Node>, dst: Node) {
        match o {
            Obj::Global(g, at) => {
                let m = at.or(member);
                match m {
                    Some(_) => {
                        let a = self.node(Key::Global(g, m));
                        let b = self.node(Key::Global(g, None));
                        self.edge(a, dst, Label::Copy);
                        self.edge(b, dst, Label::Copy);
                    }
                    None => {
                        let a = self.node(Key::GlobalAll(g));
                        self.edge(a, dst, Label::Copy);
                    }
                }
            }
            Obj::Local(f, l) => {
                let a = self.node(Key::Local(f, l));
                self.edge(a, dst, Label::Copy);
            }
            Obj::Func(_) => {}
            Obj::Unknown => {
                if field.is_none() {
                    self.add(dst, Obj::Unknown, None, Label::Copy);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn store_through(
        &mut self,
        o: Obj,
        f: FId,
        i: u32,
        member: Option<Sym>,
        src: Node,
        writable: bool,
        update: bool,
    ) {
        let ix = self.ix;
        let FactKind::Assign { to, .. } = &ix.body(f).facts[i as usize].kind else {
            return;
        };
        let Place::Deref {
            path,
            target,
            member_of,
            ..
        } = to
        else {
            return;
        };
        match o {
            Obj::Global(g, at) => {
                let m = at.or(member);
                self.store_global(f, i, g, m, path, src, writable, update);
            }
            Obj::Local(lf, l) => {
                let dst = self.node(Key::Local(lf, l));
                self.edge(
                    src,
                    dst,
                    Label::Fact {
                        f,
                        i,
                        what: What::StoredLocal { f: lf, l },
                        writable,
                    },
                );
            }
            Obj::Func(_) => {}
            Obj::Unknown => {
                if let Some(t) = target {
                    if t.in_module_dir && !self.unknown_write_facts.contains_key(&t.name) {
                        self.unknown_write_facts.insert(t.name.clone(), (f, i));
                    }
                }
                match member_of {
                    Some((rec, field)) if rec.in_module_dir => {
                        let cell = self.node(Key::Field(rec.name.clone(), field.clone()));
                        let label = Label::Fact {
                            f,
                            i,
                            what: What::StoredHeap,
                            writable,
                        };
                        self.edge(src, cell, label);
                        // Heap memory outlives the version, but the kernel
                        // gets no pointer to write through from it.
                        self.sink(
                            src,
                            Sink::Heap,
                            Label::Fact {
                                f,
                                i,
                                what: What::StoredHeap,
                                writable: false,
                            },
                        );
                    }
                    Some(_) => self.sink(
                        src,
                        Sink::Kernel,
                        Label::Fact {
                            f,
                            i,
                            what: What::StoredKernelField,
                            writable,
                        },
                    ),
                    None => self.sink(
                        src,
                        Sink::Kernel,
                        Label::Fact {
                            f,
                            i,
                            what: What::StoredUnknown,
                            writable,
                        },
                    ),
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn store_global(
        &mut self,
        f: FId,
        i: u32,
        g: GId,
        member: Option<Sym>,
        path: &str,
        src: Node,
        writable: bool,
        update: bool,
    ) {
        self.writes
            .entry(g)
            .or_insert_with(|| (f, i, update, path.to_string()));
        let has_str = match &self.ix.body(f).facts[i as usize].kind {
            FactKind::Assign { from, .. } => from.iter().any(|v| matches!(v, Val::Str)),
            _ => false,
        };
        if !self
            .store_nodes
            .iter()
            .any(|(x, p, n, _)| *x == g && p == path && *n == src)
        {
            self.store_nodes.push((g, path.to_string(), src, has_str));
        }
        let dst = self.node(Key::Global(g, member));
        self.edge(
            src,
            dst,
            Label::Fact {
                f,
                i,
                what: What::StoredGlobal { g },
                writable,
            },
        );
    }

    fn call_through(&mut self, o: Obj, f: FId, i: u32, args: &[(Node, bool)], dst: Node) {
        match o {
            Obj::Func(t) => {
                // A function that takes fewer parameters than the call
                // passes cannot be the callee.
                if (self.ix.body(t).params as usize) < args.len() {
                    return;
                }
                self.bind(f, i, t, args);
                let r = self.node(Key::Ret(t));
                self.edge(r, dst, Label::Copy);
            }
            Obj::Unknown => {
                for (a, writable) in args {
                    self.sink(
                        *a,
                        Sink::Kernel,
                        Label::Fact {
                            f,
                            i,
                            what: What::PassedIndirect,
                            writable: *writable,
                        },
                    );
                }
                self.add(dst, Obj::Unknown, None, Label::Copy);
            }
            _ => {}
        }
    }

    /// Arguments of a call to body `t` flow into its parameters.
    fn bind(&mut self, f: FId, i: u32, t: FId, args: &[(Node, bool)]) {
        let params = self.ix.body(t).params;
        for (ai, (a, writable)) in args.iter().enumerate() {
            if (ai as u32) < params {
                let p = self.node(Key::Local(t, ai as u32));
                self.edge(
                    *a,
                    p,
                    Label::Fact {
                        f,
                        i,
                        what: What::PassedParam { t, idx: ai as u32 },
                        writable: false,
                    },
                );
            } else {
                self.sink(
                    *a,
                    Sink::Kernel,
                    Label::Fact {
                        f,
                        i,
                        what: What::PassedVariadic { t },
                        writable: *writable,
                    },
                );
            }
        }
    }

    // ---- compiling the program into constraints ----

    /// Functions whose address is taken anywhere may be called by the kernel.
    fn callable(&mut self) {
        let ix = self.ix;
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

    /// Exports and sections the kernel reads: escapes without a flow.
    fn roots(&mut self) {
        let ix = self.ix;
        let ek = self.escape_kernel_node;
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
                for r in refs {
                    match r {
                        Ref::Global {
                            name,
                            address: true,
                        } => {
                            if let Some(x) = ix.resolve_global_name(at.module, at.unit, name) {
                                self.add(ek, Obj::Global(x, None), None, Label::Export { by: g });
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
            if gl.section.as_deref().is_some_and(kernel_section) {
                self.add(ek, Obj::Global(g, None), None, Label::Section { g });
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
            for (k, it) in items.iter().enumerate() {
                let m = self.member(&it.path);
                let n = self.node(Key::Global(g, m));
                let label = Label::Init {
                    g,
                    item: k as u32,
                    writable: it.writable,
                };
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
                    self.add(n, o, None, label);
                }
            }
        }
    }

    /// A node holding what `vals` may evaluate to in body `f`.
    fn value(&mut self, f: FId, vals: &[Val]) -> Node {
        // One load of a named cell: that cell itself.
        if let [Val::Load { place }] = vals {
            if let Place::Local { local } = place.as_ref() {
                return self.node(Key::Local(f, *local));
            }
        }
        let t = self.temp();
        for v in vals {
            self.value_into(f, v, t);
        }
        t
    }

    fn value_into(&mut self, f: FId, v: &Val, t: Node) {
        let ix = self.ix;
        let at = ix.bodies[f as usize];
        match v {
            Val::GlobalAddr { global, path } => match ix.resolve_global(at.module, at.unit, global)
            {
                Some(g) => {
                    let m = self.member(path);
                    self.add(t, Obj::Global(g, m), None, Label::Copy);
                }
                None => self.add(t, Obj::Unknown, None, Label::Copy),
            },
            Val::LocalAddr { local } => self.add(t, Obj::Local(f, *local), None, Label::Copy),
            Val::Function { name } => match ix.resolve_function(at.module, at.unit, name) {
                Some(x) => self.add(t, Obj::Func(x), None, Label::Copy),
                None => self.add(t, Obj::Unknown, None, Label::Copy),
            },
            Val::Str => {}
            Val::Load { place } => {
                let n = self.load(f, place);
                self.edge(n, t, Label::Copy);
            }
            Val::Call { fact } => {
                if let Some(r) = self.results.get(&(f, *fact)).copied() {
                    self.edge(r, t, Label::Copy);
                }
            }
        }
    }

    /// A node holding what `place` holds.
    fn load(&mut self, f: FId, place: &Place) -> Node {
        let ix = self.ix;
        let at = ix.bodies[f as usize];
        match place {
            Place::Global { global, path } => match ix.resolve_global(at.module, at.unit, global) {
                Some(g) => match self.member(path) {
                    Some(m) => {
                        let t = self.temp();
                        let a = self.node(Key::Global(g, Some(m)));
                        let b = self.node(Key::Global(g, None));
                        self.edge(a, t, Label::Copy);
                        self.edge(b, t, Label::Copy);
                        t
                    }
                    None => self.node(Key::GlobalAll(g)),
                },
                None => {
                    let t = self.temp();
                    self.add(t, Obj::Unknown, None, Label::Copy);
                    t
                }
            },
            Place::Local { local } => self.node(Key::Local(f, *local)),
            Place::Deref {
                pointer,
                path,
                member_of,
                ..
            } => {
                let p = self.pointer(f, pointer);
                let field = match member_of {
                    Some((rec, field)) if rec.in_module_dir => {
                        Some(self.node(Key::Field(rec.name.clone(), field.clone())))
                    }
                    _ => None,
                };
                let t = self.temp();
                if let Some(c) = field {
                    self.edge(c, t, Label::Copy);
                }
                let member = self.member(path);
                self.nodes[p as usize].loads.push(LoadC {
                    member,
                    field,
                    dst: t,
                });
                let held = self.nodes[p as usize].pts.clone();
                for o in held {
                    self.load_through(o, member, field, t);
                }
                t
            }
        }
    }

    /// A pointer's node; a pointer with no known values is the kernel's.
    fn pointer(&mut self, f: FId, vals: &[Val]) -> Node {
        if vals.is_empty() {
            let t = self.temp();
            self.add(t, Obj::Unknown, None, Label::Copy);
            return t;
        }
        self.value(f, vals)
    }

    fn compile(&mut self, f: FId, i: u32) {
        let ix = self.ix;
        let at = ix.bodies[f as usize];
        let fact = &ix.body(f).facts[i as usize];
        match &fact.kind {
            FactKind::Assign {
                to,
                from,
                writable,
                update,
            } => {
                let src = self.value(f, from);
                let writable = *writable;
                match to {
                    Place::Global { global, path } => {
                        match ix.resolve_global(at.module, at.unit, global) {
                            Some(g) => {
                                let m = self.member(path);
                                self.store_global(f, i, g, m, path, src, writable, *update);
                            }
                            None => self.sink(
                                src,
                                Sink::Kernel,
                                Label::Fact {
                                    f,
                                    i,
                                    what: What::StoredKernelGlobal,
                                    writable,
                                },
                            ),
                        }
                    }
                    Place::Local { local } => {
                        let dst = self.node(Key::Local(f, *local));
                        self.edge(
                            src,
                            dst,
                            Label::Fact {
                                f,
                                i,
                                what: What::StoredLocal { f, l: *local },
                                writable,
                            },
                        );
                    }
                    Place::Deref { pointer, path, .. } => {
                        let p = self.pointer(f, pointer);
                        let member = self.member(path);
                        self.nodes[p as usize].stores.push(StoreC {
                            f,
                            i,
                            member,
                            src,
                            writable,
                            update: *update,
                        });
                        let held = self.nodes[p as usize].pts.clone();
                        for o in held {
                            self.store_through(o, f, i, member, src, writable, *update);
                        }
                    }
                }
            }
            FactKind::Call { callee, args } => {
                let dst = self.temp();
                self.results.insert((f, i), dst);
                if let Callee::Direct { name } = callee {
                    if BUILTIN_PASS.contains(&name.as_str()) {
                        if let Some(a) = args.first() {
                            let n = self.value(f, &a.value);
                            self.edge(n, dst, Label::Copy);
                        }
                    }
                    if BUILTIN_NO_ESCAPE.contains(&name.as_str()) {
                        return;
                    }
                }
                let arg_nodes: Vec<(Node, bool)> = args
                    .iter()
                    .map(|a| (self.value(f, &a.value), a.writable))
                    .collect();
                match callee {
                    Callee::Direct { name } => {
                        match ix.resolve_function(at.module, at.unit, name) {
                            Some(t) => {
                                self.bind(f, i, t, &arg_nodes);
                                let r = self.node(Key::Ret(t));
                                self.edge(r, dst, Label::Copy);
                            }
                            None => {
                                for (a, writable) in &arg_nodes {
                                    self.sink(
                                        *a,
                                        Sink::Kernel,
                                        Label::Fact {
                                            f,
                                            i,
                                            what: What::PassedExternal,
                                            writable: *writable,
                                        },
                                    );
                                }
                                self.add(dst, Obj::Unknown, None, Label::Copy);
                            }
                        }
                    }
                    Callee::Indirect { value } => {
                        let c = self.pointer(f, value);
                        self.nodes[c as usize].calls.push(CallC {
                            f,
                            i,
                            args: arg_nodes.clone(),
                            dst,
                        });
                        let held = self.nodes[c as usize].pts.clone();
                        for o in held {
                            self.call_through(o, f, i, &arg_nodes, dst);
                        }
                    }
                }
            }
            FactKind::Return { value } => {
                let src = self.value(f, value);
                let r = self.node(Key::Ret(f));
                self.edge(
                    src,
                    r,
                    Label::Fact {
                        f,
                        i,
                        what: What::Returned,
                        writable: false,
                    },
                );
            }
            FactKind::Asm { operands } => {
                for o in operands {
                    let src = self.value(f, o);
                    self.sink(
                        src,
                        Sink::Kernel,
                        Label::Fact {
                            f,
                            i,
                            what: What::Asm,
                            writable: true,
                        },
                    );
                }
            }
        }
    }

    // ---- results ----

    /// Renders the results the analysis reads.
    fn finish(&mut self) {
        let ix = self.ix;
        for (node, map) in [
            (self.escape_kernel_node, 0),
            (self.escape_heap_node, 1),
            (self.writable_node, 2),
        ] {
            let objs = self.nodes[node as usize].pts.clone();
            for o in objs {
                let (from, label) = self.prov[&(node, o)];
                let step = self.render(from, label);
                let m = match map {
                    0 => &mut self.escape_kernel,
                    1 => &mut self.escape_heap,
                    _ => &mut self.writable_escape,
                };
                m.insert(o, step);
            }
        }
        for (g, (f, i, update, path)) in std::mem::take(&mut self.writes) {
            let name = &ix.global(g).name;
            let target = if path.is_empty() {
                name.clone()
            } else {
                format!("{name}.{path}")
            };
            let fact = &ix.body(f).facts[i as usize];
            self.module_writes.insert(
                g,
                Step {
                    file: fact.loc.file.clone(),
                    line: fact.loc.line,
                    text: format!(
                        "the module {} {target} at run time: {}",
                        if update { "updates" } else { "writes" },
                        fact.text
                    ),
                    from: None,
                    label: Label::Copy,
                },
            );
        }
        for (rec, (f, i)) in std::mem::take(&mut self.unknown_write_facts) {
            let fact = &ix.body(f).facts[i as usize];
            self.unknown_writes.insert(
                rec.clone(),
                Step {
                    file: fact.loc.file.clone(),
                    line: fact.loc.line,
                    text: format!("writes a {rec}: {}", fact.text),
                    from: None,
                    label: Label::Copy,
                },
            );
        }
        for (g, path, n, has_str) in std::mem::take(&mut self.store_nodes) {
            let objs = self.nodes[n as usize].pts.clone();
            self.stores
                .entry(g)
                .or_default()
                .push((path, objs, has_str));
        }
    }

    /// The text of a step.
    fn render(&self, from: Option<Node>, label: Label) -> Step {
        let ix = self.ix;
        let (file, line, text) = match label {
            Label::Copy | Label::KernelArgs => (String::new(), 0, String::new()),
            Label::Holder { .. } => (String::new(), 0, String::new()),
            Label::Widened => (
                String::new(),
                0,
                format!(
                    "its address reaches more than {} places in the module, too many to follow: assumed to reach the kernel, which may write it",
                    self.limits.widen_at
                ),
            ),
            Label::Fact { f, i, what, .. } => {
                let fact = &ix.body(f).facts[i as usize];
                let w = self.what(f, i, what);
                (
                    fact.loc.file.clone(),
                    fact.loc.line,
                    format!("{w}: {}", fact.text),
                )
            }
            Label::Init { g, item, .. } => {
                let gl = ix.global(g);
                let mut items = Vec::new();
                if let Some(init) = &gl.init {
                    init_items(
                        &ix.program.types,
                        Some(gl.ty),
                        init,
                        String::new(),
                        &mut items,
                    );
                }
                match items.get(item as usize) {
                    Some(it) => {
                        let member = if it.path.is_empty() {
                            String::new()
                        } else {
                            format!(".{} = ", it.path)
                        };
                        (
                            it.expr.loc.file.clone(),
                            it.expr.loc.line,
                            format!(
                                "in the initializer of {}: {member}{}",
                                gl.name, it.expr.text
                            ),
                        )
                    }
                    None => (gl.loc.file.clone(), gl.loc.line, String::new()),
                }
            }
            Label::Export { by } => {
                let gl = ix.global(by);
                let how = gl.macro_origin.clone().unwrap_or_default();
                let name = gl
                    .init
                    .as_ref()
                    .and_then(|i| {
                        let mut refs = Vec::new();
                        collect_refs(i, &mut refs);
                        refs.into_iter().find_map(|r| match r {
                            Ref::Global { name, .. } => Some(name.clone()),
                            _ => None,
                        })
                    })
                    .unwrap_or_default();
                (
                    gl.loc.file.clone(),
                    gl.loc.line,
                    format!("exported with {how}({name}): other modules keep its address"),
                )
            }
            Label::Section { g } => {
                let gl = ix.global(g);
                (
                    gl.loc.file.clone(),
                    gl.loc.line,
                    format!(
                        "placed in section {}, which the module loader hands to the kernel",
                        gl.section.as_deref().unwrap_or_default()
                    ),
                )
            }
            Label::ReturnToKernel { f } => {
                let b = ix.body(f);
                (
                    b.loc.file.clone(),
                    b.loc.line,
                    format!(
                        "returned to the kernel by {}(), which the kernel calls (its address is taken or it is exported)",
                        b.name
                    ),
                )
            }
        };
        Step {
            file,
            line,
            text,
            from,
            label,
        }
    }

    fn what(&self, f: FId, i: u32, what: What) -> String {
        let ix = self.ix;
        let fact = &ix.body(f).facts[i as usize];
        match what {
            What::PassedParam { t, idx } => {
                let tb = ix.body(t);
                format!(
                    "passed as `{}` to {}() ({})",
                    tb.locals[idx as usize], tb.name, tb.loc
                )
            }
            What::PassedVariadic { t } => format!(
                "passed through the `...` of {}() (not followed)",
                ix.body(t).name
            ),
            What::PassedExternal => match &fact.kind {
                FactKind::Call {
                    callee: Callee::Direct { name },
                    ..
                } => format!("passed to {name}(), which the module does not define"),
                _ => "passed to a function the module does not define".into(),
            },
            What::PassedIndirect => {
                "passed through a function pointer that may lead out of the module".into()
            }
            What::Returned => format!("returned by {}()", ix.body(f).name),
            What::Asm => "used by inline assembly".into(),
            What::StoredKernelGlobal => match &fact.kind {
                FactKind::Assign {
                    to: Place::Global { global, .. },
                    ..
                } => format!("stored into the kernel's {}", global.name),
                _ => "stored into a kernel global".into(),
            },
            What::StoredLocal { f: lf, l } => {
                format!("stored into `{}`", ix.body(lf).locals[l as usize])
            }
            What::StoredHeap | What::StoredKernelField => {
                let (rec, field) = match &fact.kind {
                    FactKind::Assign {
                        to:
                            Place::Deref {
                                member_of: Some((rec, field)),
                                ..
                            },
                        ..
                    } => (rec.name.clone(), field.clone()),
                    _ => (String::new(), String::new()),
                };
                if what == What::StoredHeap {
                    format!("stored into {rec}.{field} (heap memory, which outlives the module version)")
                } else {
                    format!("stored into {rec}.{field}, which the kernel owns")
                }
            }
            What::StoredUnknown => {
                "stored through a pointer into memory the module does not own".into()
            }
            What::StoredGlobal { g } => {
                let name = &ix.global(g).name;
                match &fact.kind {
                    FactKind::Assign {
                        to: Place::Global { path, .. } | Place::Deref { path, .. },
                        ..
                    } if !path.is_empty() => format!("stored into {name}.{path}"),
                    _ => format!("stored into {name}"),
                }
            }
        }
    }

    /// The evidence chain of an escape step of `o`, origin first.
    pub fn chain(&self, o: Obj, step: &Step) -> Vec<(String, u32, String)> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        self.chain_into(o, step.from, step.label, &mut seen, &mut out);
        out
    }

    fn chain_into(
        &self,
        o: Obj,
        from: Option<Node>,
        label: Label,
        seen: &mut HashSet<Obj>,
        out: &mut Vec<(String, u32, String)>,
    ) {
        if !seen.insert(o) || out.len() > 40 {
            return;
        }
        let mut back = Vec::new();
        let mut cur = from;
        let mut guard = 0;
        while let Some(n) = cur {
            // The node holds the object as it was stored (a global with
            // the member its pointer points into).
            let entry = self.prov.get(&(n, o)).or_else(|| {
                self.nodes[n as usize]
                    .pts
                    .iter()
                    .find(|x| same(**x, o))
                    .and_then(|x| self.prov.get(&(n, *x)))
            });
            let Some((prev, l)) = entry else {
                break;
            };
            let s = self.render(*prev, *l);
            if !s.text.is_empty() {
                back.push((s.file, s.line, s.text));
            }
            cur = *prev;
            guard += 1;
            if guard > 10_000 {
                break;
            }
        }
        back.reverse();
        // Steps repeat when a value goes round a loop: keep the first.
        let mut kept: Vec<(String, u32, String)> = Vec::new();
        for s in back {
            if !kept.contains(&s) {
                kept.push(s);
            }
        }
        out.extend(kept.into_iter().take(20));
        match label {
            Label::Holder { o: h } => {
                let hs = self
                    .escape_kernel
                    .get(&h)
                    .or_else(|| self.escape_heap.get(&h));
                if let Some(hs) = hs {
                    self.chain_into(h, hs.from, hs.label, seen, out);
                }
            }
            _ => {
                let s = self.render(from, label);
                if !s.text.is_empty() {
                    out.push((s.file, s.line, s.text));
                }
            }
        }
    }
}

/// The object a pointer points into, whatever the member.
fn whole(o: Obj) -> Obj {
    match o {
        Obj::Global(g, _) => Obj::Global(g, None),
        _ => o,
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
    let names = modswap_ir::sections::names();
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
