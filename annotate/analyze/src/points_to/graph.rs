//! The constraint graph and its solver: nodes, objects, copy edges and the
//! load, store and call constraints on pointer nodes, propagated with a
//! worklist; then the results the analysis reads.

use super::*;

impl<'p> Flows<'p> {
    pub fn solve(ix: &'p Index<'p>, limits: crate::Limits) -> Result<Flows<'p>, Budget> {
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

    pub(super) fn temp(&mut self) -> Node {
        self.nodes.push(NodeData::default());
        (self.nodes.len() - 1) as Node
    }

    pub(super) fn node(&mut self, k: Key) -> Node {
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

    pub(super) fn sym(&mut self, name: &str) -> Sym {
        if let Some(s) = self.syms.get(name) {
            return *s;
        }
        let s = self.syms.len() as Sym;
        self.syms.insert(name.to_string(), s);
        s
    }

    pub(super) fn member(&mut self, path: &str) -> Option<Sym> {
        first_member(path).map(|m| self.sym(m))
    }

    /// Adds `o` to `n` (the first way it arrives is remembered).
    pub(super) fn add(&mut self, n: Node, o: Obj, from: Option<Node>, label: Label) {
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
    pub(super) fn widen(&mut self, n: Node, o: Obj) {
        self.widened.insert(whole(o));
        let ek = self.escape_kernel_node;
        self.send(n, o, ek, Label::Widened);
    }

    /// Adds the edge `src -> dst` and sends what `src` already holds.
    pub(super) fn edge(&mut self, src: Node, dst: Node, label: Label) {
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
    pub(super) fn send(&mut self, src: Node, o: Obj, dst: Node, label: Label) {
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
    pub(super) fn stored_writable(&self, n: Node, o: Obj) -> bool {
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

    pub(super) fn sink(&mut self, src: Node, kind: Sink, label: Label) {
        let dst = match kind {
            Sink::Kernel => self.escape_kernel_node,
            Sink::Heap => self.escape_heap_node,
        };
        self.edge(src, dst, label);
    }

    pub(super) fn run(&mut self) {
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

    pub(super) fn load_through(
        &mut self,
        o: Obj,
        member: Option<Sym>,
        field: Option<Node>,
        dst: Node,
    ) {
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
    pub(super) fn store_through(
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
    pub(super) fn store_global(
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

    pub(super) fn call_through(
        &mut self,
        o: Obj,
        f: FId,
        i: u32,
        args: &[(Node, bool)],
        dst: Node,
    ) {
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
    pub(super) fn bind(&mut self, f: FId, i: u32, t: FId, args: &[(Node, bool)]) {
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

    /// Renders the results the analysis reads.
    pub(super) fn finish(&mut self) {
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
}
