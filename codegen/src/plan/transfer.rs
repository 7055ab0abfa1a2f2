//! Transfer: copying the old version's value into the new global, as a
//! whole when the type is the same, member by member (or element by
//! element, or converted) when it changed.

use super::static_old::find_field;
use super::*;

impl<'t, 'a> Builder<'t, 'a> {
    /// A transferred global: copied from the old version, as a whole or
    /// member by member, or a TODO when the handler cannot reach it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn transfer(
        &mut self,
        part: &mut Part<'t, 'a>,
        g: &Global,
        old: Option<&Global>,
        c: &crate::classes::Classified,
        at: &str,
        type_same: Option<bool>,
        (old_ambiguous, old_files): (bool, &[String]),
    ) {
        let (new_t, old_t) = (self.types.new, self.types.old);
        let Some(og) = old else {
            self.line(g, c.class, at, "new: keeps its initializer");
            return;
        };
        let mut body = Vec::new();
        if g.function.is_some() {
            let f = g.function.as_deref().unwrap_or_default();
            self.todo(
                &mut body,
                1,
                Todo {
                    id: format!("reach:{}", g.key),
                    message: format!(
                        "transfer {}, a function-scope static the handler cannot name",
                        g.key
                    ),
                    explain: vec![
                        format!(
                            "{} ({at}) is a static inside {f}(): C names it only \
                             there, and its symbol is `{}.<N>` with a number the \
                             compiler picks.",
                            g.key, g.name
                        ),
                        format!(
                            "Options: mark it __static_old({key}) in both versions (its \
                             value then stays in place); or move it to file scope in the \
                             new version and copy it from the old one, declared in the \
                             decls: region as `extern <type> _old_{name} \
                             __asm__(\"_old_{name}.<N>\") __modswap_old;` (N: the \
                             `{name}.<N>` object that `modswap inspect` of the old .ko \
                             shows referenced from {f}()); or accept that it restarts \
                             (empty region).",
                            key = g.key,
                            name = g.name
                        ),
                    ],
                },
            );
            self.push_global(
                part,
                g,
                og,
                at,
                "not reachable from the handler (TODO)",
                body,
            );
            return;
        }
        if old_ambiguous {
            self.todo(
                &mut body,
                1,
                Todo {
                    id: format!("old:{}", g.key),
                    message: format!(
                        "transfer {}: _old_{} is ambiguous in the old version",
                        g.key, og.name
                    ),
                    explain: vec![format!(
                        "The old version defines {} globals named {} ({}); the loader \
                         refuses an ambiguous _old_{} symbol. Copy the state some other \
                         way, or accept that it restarts (empty region).",
                        old_files.len(),
                        og.name,
                        old_files.join(", "),
                        og.name
                    )],
                },
            );
            self.push_global(part, g, og, at, "old symbol ambiguous (TODO)", body);
            return;
        }
        let old_name = format!("{}{}", sections::names().old_prefix, og.name);
        if type_same == Some(true) {
            let decl = new_t.declare(g.ty, &old_name);
            let decl = if decl.contains("<anonymous>") {
                format!("typeof({}) {old_name}", g.name)
            } else {
                decl
            };
            part.externs.push(format!("extern {decl} __modswap_old;"));
            self.assign_whole(&mut body, 1, &g.name, &old_name, g.ty, &g.key);
            let seen = self.repoint_todos(&mut body, g);
            self.pointer_todos(&mut body, &g.name, g.ty, 0, &seen);
            self.push_global(part, g, og, at, "copied", body);
        } else {
            let decl = part.decls.declare(og.ty, &old_name, &g.name);
            part.externs.push(format!("extern {decl} __modswap_old;"));
            self.copy(
                &mut part.decls,
                &mut body,
                1,
                (&g.name, &old_name, &g.name),
                (og.ty, g.ty),
                (None, None),
            );
            let seen = self.repoint_todos(&mut body, g);
            self.pointer_todos(&mut body, &g.name, g.ty, 0, &seen);
            let (os, ns) = (old_t.declare(og.ty, ""), new_t.declare(g.ty, ""));
            let what = match new_t.get(new_t.resolve(g.ty)) {
                Type::Record { .. } => format!("copied member by member ({os} changed)"),
                Type::Array { .. } => format!("copied element by element ({os} -> {ns})"),
                _ => format!("converted ({os} -> {ns})"),
            };
            self.push_global(part, g, og, at, &what, body);
        }
    }

    /// `dst = src;` for types that are the same in both versions.
    pub(super) fn assign_whole(
        &mut self,
        out: &mut Vec<Item>,
        indent: usize,
        dst: &str,
        src: &str,
        n: TypeId,
        label: &str,
    ) {
        let t = self.types.new;
        let text = match t.get(t.resolve(n)) {
            Type::Array { .. } => format!("memcpy({dst}, {src}, sizeof({dst}));"),
            Type::Record { tag: None, .. } => format!("memcpy(&{dst}, &{src}, sizeof({dst}));"),
            Type::Record { .. } if has_const_member(t, n) => {
                format!("memcpy(&{dst}, &{src}, sizeof({dst}));")
            }
            _ if is_const(t, n) => {
                self.todo(
                    out,
                    indent,
                    Todo {
                        id: format!("const:{label}"),
                        message: format!("{label} is const: decide how to carry it over"),
                        explain: vec![format!(
                            "{label} is declared const in the new version, so it cannot be \
                             assigned; it keeps the new version's value unless you copy it \
                             another way."
                        )],
                    },
                );
                return;
            }
            _ => format!("{dst} = {src};"),
        };
        out.push(Item::Code { indent, text });
    }

    /// Copies old type `o` at `src` into new type `n` at `dst`, member by
    /// member where the types differ. `label` is the C path without loop
    /// indices (for messages and TODO ids).
    pub(super) fn copy(
        &mut self,
        decls: &mut OldDecls<'t, 'a>,
        out: &mut Vec<Item>,
        indent: usize,
        (dst, src, label): (&str, &str, &str),
        (o, n): (TypeId, TypeId),
        (ow, nw): (Option<u32>, Option<u32>),
    ) {
        let ot = self.types.old;
        let nt = self.types.new;
        let (ro, rn) = (ot.resolve(o), nt.resolve(n));
        if self.types.same(o, n) && ow == nw {
            self.copy_same(decls, out, indent, (dst, src, label), (o, n));
            return;
        }
        let todo_convert = |why: String| convert_todo((dst, src, label), why);
        match (ot.get(ro).clone(), nt.get(rn).clone()) {
            (
                Type::Record {
                    kind: k1,
                    fields: Some(_),
                    ..
                },
                Type::Record {
                    kind: k2,
                    fields: Some(_),
                    ..
                },
            ) if k1 == k2 && k1 == modswap_ir::RecordKind::Struct => {
                self.copy_struct(decls, out, indent, (dst, src, label), (ro, rn));
            }
            (Type::Record { kind: k1, .. }, Type::Record { kind: k2, .. }) => {
                let why = if k1 != k2 {
                    format!("changed from a {} to a {}", k1.keyword(), k2.keyword())
                } else {
                    format!(
                        "{} changed ({}); copy the member that is in use",
                        ot.declare(o, ""),
                        self.types.diff(o, n).join("; ")
                    )
                };
                self.todo(out, indent, todo_convert(why));
            }
            (Type::Array { elem: eo, len: lo }, Type::Array { elem: en, len: ln }) => {
                self.copy_array(decls, out, indent, (dst, src, label), (eo, lo), (en, ln));
            }
            (a, b) if is_number(&a) && is_number(&b) => {
                let (osz, osigned) = number(&a);
                let (nsz, nsigned) = number(&b);
                let obits = ow.map(u64::from).unwrap_or(osz * 8);
                let nbits = nw.map(u64::from).unwrap_or(nsz * 8);
                let widening = (nbits > obits && (osigned == nsigned || !osigned))
                    || (nbits == obits && osigned == nsigned);
                if widening {
                    out.push(Item::Code {
                        indent,
                        text: format!("{dst} = {src};"),
                    });
                } else {
                    let why = format!(
                        "{} ({} bits) -> {} ({} bits) may not hold every old value",
                        ot.declare(o, ""),
                        obits,
                        nt.declare(n, ""),
                        nbits
                    );
                    self.todo(out, indent, todo_convert(why));
                }
            }
            _ => {
                let why = format!(
                    "type {} -> {}",
                    ot.declare(o, "").trim(),
                    nt.declare(n, "").trim()
                );
                self.todo(out, indent, todo_convert(why));
            }
        }
    }

    /// [`Self::copy`] of a type that is the same in both versions.
    fn copy_same(
        &mut self,
        decls: &mut OldDecls<'t, 'a>,
        out: &mut Vec<Item>,
        indent: usize,
        (dst, src, label): (&str, &str, &str),
        (o, n): (TypeId, TypeId),
    ) {
        let (ot, nt) = (self.types.old, self.types.new);
        let (ro, rn) = (ot.resolve(o), nt.resolve(n));
        match (ot.get(ro), nt.get(rn)) {
            (Type::Pointer { pointee: op }, Type::Pointer { pointee: np }) => {
                let os = decls.spell(o);
                let ns = nt.declare(n, "");
                if os == ns {
                    out.push(Item::Code {
                        indent,
                        text: format!("{dst} = {src};"),
                    });
                } else if matches!(ot.get(ot.resolve(*op)), Type::Function { .. })
                    || matches!(nt.get(nt.resolve(*np)), Type::Function { .. })
                {
                    self.todo(
                        out,
                        indent,
                        Todo {
                            id: format!("convert:{label}"),
                            message: format!("{label}: function pointer type changed"),
                            explain: vec![format!(
                                "{label} was `{os}` and is `{ns}`: a function of the old \
                                 type cannot be called as the new one. Set it to this \
                                 version's function, or leave the new value (empty region)."
                            )],
                        },
                    );
                } else {
                    out.push(Item::Code {
                        indent,
                        text: format!("{dst} = (void *){src};"),
                    });
                }
            }
            _ => self.assign_whole(out, indent, dst, src, n, label),
        }
    }

    /// [`Self::copy`] of a struct whose type changed: member by member,
    /// new members TODOs, removed ones listed.
    fn copy_struct(
        &mut self,
        decls: &mut OldDecls<'t, 'a>,
        out: &mut Vec<Item>,
        indent: usize,
        (dst, src, label): (&str, &str, &str),
        (ro, rn): (TypeId, TypeId),
    ) {
        let (ot, nt) = (self.types.old, self.types.new);
        let om = members(ot, ro);
        let nmembers = members(nt, rn);
        for m in &nmembers {
            let d = format!("{dst}.{}", m.name);
            let l = format!("{label}.{}", m.name);
            match om.iter().find(|x| x.name == m.name) {
                Some(x) => {
                    let s = format!("{src}.{}", m.name);
                    self.copy(
                        decls,
                        out,
                        indent,
                        (&d, &s, &l),
                        (x.ty, m.ty),
                        (x.bit_width, m.bit_width),
                    );
                }
                None => {
                    let init = self.new_init_text(&l);
                    let keep = match &init {
                        Some(v) => format!(
                            "The new version's initializer sets it to `{v}`, which it \
                             keeps if this region is left empty."
                        ),
                        None => "It is 0 unless set here.".into(),
                    };
                    self.todo(
                        out,
                        indent,
                        Todo {
                            id: format!("init:{l}"),
                            message: format!("initial value for {l}"),
                            explain: vec![format!(
                                "{l} is new: the old version has no value for it. {keep}"
                            )],
                        },
                    );
                }
            }
        }
        let gone: Vec<String> = om
            .iter()
            .filter(|x| !nmembers.iter().any(|m| m.name == x.name))
            .map(|x| x.name.clone())
            .collect();
        if !gone.is_empty() {
            out.push(Item::Comment {
                indent,
                lines: vec![format!(
                    "Removed from {label}, not copied: {}.",
                    gone.join(", ")
                )],
            });
        }
    }

    /// [`Self::copy`] of an array whose type changed: the common elements,
    /// then a TODO for the elements it gained or lost.
    fn copy_array(
        &mut self,
        decls: &mut OldDecls<'t, 'a>,
        out: &mut Vec<Item>,
        indent: usize,
        (dst, src, label): (&str, &str, &str),
        (eo, lo): (TypeId, Option<u64>),
        (en, ln): (TypeId, Option<u64>),
    ) {
        let (Some(lo), Some(ln)) = (lo, ln) else {
            self.todo(
                out,
                indent,
                convert_todo((dst, src, label), "array of unknown length".into()),
            );
            return;
        };
        let k = lo.min(ln);
        if self.types.same(eo, en) {
            if k > 0 {
                let text = if lo <= ln {
                    format!("memcpy({dst}, {src}, sizeof({src}));")
                } else {
                    format!("memcpy({dst}, {src}, sizeof({dst}));")
                };
                out.push(Item::Code { indent, text });
            }
        } else if k > 0 {
            let i = format!("i{}", self.loop_depth);
            self.loop_depth += 1;
            out.push(Item::Code {
                indent,
                text: format!("for (int {i} = 0; {i} < {k}; {i}++) {{"),
            });
            self.copy(
                decls,
                out,
                indent + 1,
                (
                    &format!("{dst}[{i}]"),
                    &format!("{src}[{i}]"),
                    &format!("{label}[]"),
                ),
                (eo, en),
                (None, None),
            );
            out.push(Item::Code {
                indent,
                text: "}".into(),
            });
            self.loop_depth -= 1;
        }
        if ln > lo {
            self.todo(
                out,
                indent,
                Todo {
                    id: format!("init:{label}[{lo}..{ln}]"),
                    message: format!("initial values for {label}[{lo}..{ln}]"),
                    explain: vec![format!(
                        "{label} grew from {lo} to {ln} elements: the old version has \
                         no values for the new ones, which keep the new version's \
                         initializer if this region is left empty."
                    )],
                },
            );
        } else if ln < lo {
            self.todo(
                out,
                indent,
                Todo {
                    id: format!("shrink:{label}"),
                    message: format!(
                        "{label} shrank from {lo} to {ln} elements: decide what happens \
                         to the old {label}[{ln}..{lo}]"
                    ),
                    explain: vec![format!(
                        "The first {ln} elements are copied; the old version's elements \
                         {ln}..{lo} have no place in the new array. Release or move what \
                         they hold, or accept that they are dropped (empty region)."
                    )],
                },
            );
        }
    }

    /// The text of the new initializer of member path `label` (`a.x`).
    pub(super) fn new_init_text(&self, label: &str) -> Option<String> {
        let mut parts = label.split('.');
        let name = parts.next()?;
        let g = self
            .nm
            .globals()
            .find(|g| g.name == name && g.function.is_none())?;
        let mut cur = g.init.as_ref()?;
        for p in parts {
            cur = find_field(cur, p)?;
        }
        match cur {
            Init::Expr(e) => Some(e.text.clone()),
            _ => Some("{ ... }".into()),
        }
    }
}

fn is_number(t: &Type) -> bool {
    matches!(t, Type::Int { .. } | Type::Enum { .. } | Type::Bool)
}

fn number(t: &Type) -> (u64, bool) {
    match t {
        Type::Int { size, signed, .. } => (*size, *signed),
        Type::Enum { size, .. } => (*size, false),
        _ => (1, false),
    }
}

/// The TODO for a value that cannot be copied member by member.
fn convert_todo((dst, src, label): (&str, &str, &str), why: String) -> Todo {
    Todo {
        id: format!("convert:{label}"),
        message: format!("{label}: {why}"),
        explain: vec![format!(
            "{label} cannot be copied member by member ({why}). Convert the old value \
             (in {src}) into {dst}, or leave the new version's value (empty region)."
        )],
    }
}
