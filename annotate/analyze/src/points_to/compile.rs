//! Compiling the program into constraints: the facts of every body and
//! every initializer become base facts, copy edges and constraints on
//! pointer nodes; the kernel's roots (what it calls, what it is handed)
//! become edges into the escape nodes.

use super::*;
use crate::inits::{collect_refs, init_items};

impl<'p> Flows<'p> {
    /// Functions whose address is taken anywhere may be called by the kernel.
    pub(super) fn callable(&mut self) {
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
    pub(super) fn roots(&mut self) {
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
    pub(super) fn initializers(&mut self) {
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
    pub(super) fn value(&mut self, f: FId, vals: &[Val]) -> Node {
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

    pub(super) fn value_into(&mut self, f: FId, v: &Val, t: Node) {
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
    pub(super) fn load(&mut self, f: FId, place: &Place) -> Node {
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
    pub(super) fn pointer(&mut self, f: FId, vals: &[Val]) -> Node {
        if vals.is_empty() {
            let t = self.temp();
            self.add(t, Obj::Unknown, None, Label::Copy);
            return t;
        }
        self.value(f, vals)
    }

    pub(super) fn compile(&mut self, f: FId, i: u32) {
        let ix = self.ix;
        let fact = &ix.body(f).facts[i as usize];
        match &fact.kind {
            FactKind::Assign {
                to,
                from,
                writable,
                update,
            } => {
                self.compile_assign(f, i, to, from, *writable, *update);
            }
            FactKind::Call { callee, args } => self.compile_call(f, i, callee, args),
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

    /// An assignment: the values flow into the place (a global, a local, or
    /// memory behind a pointer).
    #[allow(clippy::too_many_arguments)]
    fn compile_assign(
        &mut self,
        f: FId,
        i: u32,
        to: &Place,
        from: &[Val],
        writable: bool,
        update: bool,
    ) {
        let ix = self.ix;
        let at = ix.bodies[f as usize];
        let src = self.value(f, from);
        match to {
            Place::Global { global, path } => match ix.resolve_global(at.module, at.unit, global) {
                Some(g) => {
                    let m = self.member(path);
                    self.store_global(f, i, g, m, path, src, writable, update);
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
            },
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
                    update,
                });
                let held = self.nodes[p as usize].pts.clone();
                for o in held {
                    self.store_through(o, f, i, member, src, writable, update);
                }
            }
        }
    }

    /// A call: the arguments flow into the callee's parameters (a function
    /// of the directory), to the kernel (any other), or through a function
    /// pointer; builtins from the kernel table keep no pointer.
    fn compile_call(&mut self, f: FId, i: u32, callee: &Callee, args: &[modswap_ir::Arg]) {
        let ix = self.ix;
        let at = ix.bodies[f as usize];
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
            Callee::Direct { name } => match ix.resolve_function(at.module, at.unit, name) {
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
            },
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
