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

mod compile;
mod evidence;
mod graph;
#[cfg(test)]
mod tests;

use super::index::{FId, GId, Index};
use modswap_ir::kernel::{kernel_section, BUILTIN_NO_ESCAPE, BUILTIN_PASS};
use modswap_ir::{Callee, FactKind, Place, Ref, Val};
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
