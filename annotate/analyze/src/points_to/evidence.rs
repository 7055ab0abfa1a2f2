//! Evidence: the chain of steps that took an object where it is, rendered
//! as text (file:line and what happens there) only when a report asks.

use super::*;
use crate::inits::{collect_refs, init_items};

impl<'p> Flows<'p> {
    /// The text of a step.
    pub(super) fn render(&self, from: Option<Node>, label: Label) -> Step {
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

    pub(super) fn what(&self, f: FId, i: u32, what: What) -> String {
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

    pub(super) fn chain_into(
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
