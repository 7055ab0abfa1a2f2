//! static_old re-assignment: the members of a kept object that point into
//! the module are set again from the new version's initializer; members set
//! at run time become TODOs.

use super::*;

impl<'t, 'a> Builder<'t, 'a> {
    /// Re-assignments of a static_old object from the new initializer.
    pub(super) fn static_old(
        &mut self,
        part: &mut Part<'t, 'a>,
        g: &Global,
        c: &crate::classes::Classified,
        at: &str,
    ) {
        let mut from_init: Vec<(String, String)> = Vec::new();
        if let Some(init) = &g.init {
            self.init_reassigns(init, g.ty, String::new(), &mut from_init);
        }
        let mut body = Vec::new();
        let runtime: Vec<String> = c
            .reassign
            .iter()
            .flatten()
            .filter(|p| !from_init.iter().any(|(q, _)| q == *p))
            .cloned()
            .collect();
        let mut count = 0;
        if g.function.is_some() && (!from_init.is_empty() || !runtime.is_empty()) {
            let mut paths: Vec<String> = from_init.iter().map(|(p, _)| p.clone()).collect();
            paths.extend(runtime.iter().cloned());
            self.todo(
                &mut body,
                1,
                Todo {
                    id: format!("reach:{}", g.key),
                    message: format!(
                        "re-point {} ({}), a function-scope static the handler cannot name",
                        g.key,
                        paths
                            .iter()
                            .map(|p| c_path(&g.name, p))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    explain: vec![format!(
                        "{} ({at}) keeps the old version's contents, which point into the old \
                         version; C names it only inside {}(). Move it to file scope (keeping \
                         __static_old({})), then regenerate.",
                        g.key,
                        g.function.as_deref().unwrap_or_default(),
                        g.key
                    )],
                },
            );
            count = usize::MAX;
        } else if g.is_const && (!from_init.is_empty() || !runtime.is_empty()) {
            self.todo(
                &mut body,
                1,
                Todo {
                    id: format!("const:{}", g.key),
                    message: format!("re-point the members of const object {}", g.key),
                    explain: vec![format!(
                        "{} is const and static_old: it keeps pointers into the old version \
                         that the handler cannot re-assign. Make it static_new (its contents \
                         are then the new version's) or drop const.",
                        g.key
                    )],
                },
            );
            count = usize::MAX;
        } else {
            for (p, text) in &from_init {
                body.push(Item::Code {
                    indent: 1,
                    text: format!("{} = {text};", c_path(&g.name, p)),
                });
                count += 1;
            }
            for p in &runtime {
                let cp = c_path(&g.name, p);
                self.todo(
                    &mut body,
                    1,
                    Todo {
                        id: format!("runtime:{}", if p.is_empty() { &g.name } else { &cp }),
                        message: format!("re-point {cp}, which is set at run time"),
                        explain: vec![format!(
                            "annotate found that {cp} is set at run time to something in this \
                             module (not in the initializer): after a swap it still points into \
                             the old version. Set it to this version's counterpart."
                        )],
                    },
                );
                count += 1;
            }
        }
        self.pointer_todos(&mut body, &g.name, g.ty, 0, &BTreeSet::new());
        if body.is_empty() {
            self.line(
                g,
                Class::StaticOld,
                at,
                "kept (nothing points into the module)",
            );
            return;
        }
        let action = match count {
            0 => "kept".to_string(),
            usize::MAX => "kept; its members cannot be re-pointed here (TODO)".to_string(),
            n => format!("kept; {n} member(s) re-pointed"),
        };
        self.globals.push(GlobalLine {
            key: g.key.clone(),
            class: Class::StaticOld,
            at: at.to_string(),
            action: action.clone(),
        });
        part.push_block(format!("{} ({at}): static_old, {action}", g.key), body);
    }

    /// Members of a new initializer that point into the module, as
    /// (path, expression text).
    pub(super) fn init_reassigns(
        &self,
        init: &Init,
        ty: TypeId,
        path: String,
        out: &mut Vec<(String, String)>,
    ) {
        let t = self.types.new;
        let r = t.resolve(ty);
        match init {
            Init::Record { fields } => {
                for f in fields {
                    if f.field.is_empty() {
                        if let Some(anon) = anonymous_holding(t, r, &f.value) {
                            self.init_reassigns(&f.value, anon, path.clone(), out);
                        }
                        continue;
                    }
                    let Some(m) = members(t, r).into_iter().find(|m| m.name == f.field) else {
                        continue;
                    };
                    let p = if path.is_empty() {
                        f.field.clone()
                    } else {
                        format!("{path}.{}", f.field)
                    };
                    self.init_reassigns(&f.value, m.ty, p, out);
                }
            }
            Init::Array { elements } => {
                let Type::Array { elem, .. } = t.get(r) else {
                    return;
                };
                for e in elements {
                    self.init_reassigns(&e.value, *elem, format!("{path}[{}]", e.index), out);
                }
            }
            Init::Expr(e) => {
                if e.constant.is_some() || matches!(t.get(r), Type::Array { .. }) {
                    return;
                }
                let into_module = e.has_string_literal
                    || e.refs.iter().any(|r| match r {
                        Ref::Function { name } => self.nm.defines_function(name),
                        Ref::Global {
                            name,
                            address: true,
                        } => {
                            name != "__this_module"
                                && self.nm.globals().any(|g| {
                                    g.function.is_none()
                                        && &g.name == name
                                        && static_section(g).is_none()
                                })
                        }
                        Ref::Global { .. } => false,
                    });
                if into_module {
                    out.push((path, e.text.clone()));
                }
            }
        }
    }
}

/// `vfat_fs_type` + `ops.open` -> `vfat_fs_type.ops.open`; `[2].x` -> `tbl[2].x`.
pub(super) fn c_path(name: &str, path: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else if path.starts_with('[') {
        format!("{name}{path}")
    } else {
        format!("{name}.{path}")
    }
}

pub(super) fn find_field<'i>(init: &'i Init, name: &str) -> Option<&'i Init> {
    let Init::Record { fields } = init else {
        return None;
    };
    for f in fields {
        if f.field == name {
            return Some(&f.value);
        }
        if f.field.is_empty() {
            if let Some(v) = find_field(&f.value, name) {
                return Some(v);
            }
        }
    }
    None
}

/// The anonymous member of record `r` that an anonymous-member initializer
/// `value` initializes (by the names it initializes).
fn anonymous_holding(t: &TypeTable, r: TypeId, value: &Init) -> Option<TypeId> {
    let Init::Record { fields: inner } = value else {
        return None;
    };
    let first = inner.iter().find(|f| !f.field.is_empty())?;
    let Type::Record {
        fields: Some(fields),
        ..
    } = t.get(r)
    else {
        return None;
    };
    fields
        .iter()
        .filter(|f| f.name.is_empty())
        .map(|f| t.resolve(f.ty))
        .find(|a| members(t, *a).iter().any(|m| m.name == first.field))
}
