//! Places: where an assignment writes and what an address points into
//! (globals, locals, members and elements, memory behind pointers), with
//! the member paths and record types the analysis needs.

use super::ctype::*;
use super::*;

impl<'tu> Builder<'_, 'tu> {
    /// The address of the lvalue `c` (`&c`).
    pub(super) fn addr_of(&mut self, c: Cursor<'tu>) -> Vec<Val> {
        let c = strip_parens(c);
        match c.kind() {
            Kind::DeclRefExpr => match self.named(c) {
                Named::Global(global) => vec![Val::GlobalAddr {
                    global,
                    path: String::new(),
                }],
                Named::Local(local) => vec![Val::LocalAddr { local }],
                Named::Function(name) => vec![Val::Function { name }],
                Named::Nothing => Vec::new(),
            },
            Kind::MemberRefExpr => {
                let Some(base) = c.children().into_iter().next() else {
                    return Vec::new();
                };
                let field = c.spelling();
                if is_pointer(base.ty()) {
                    extend_paths(self.eval(base), &field)
                } else {
                    extend_paths(self.addr_of(base), &field)
                }
            }
            Kind::ArraySubscriptExpr => {
                let kids = c.children();
                let [base, index] = kids.as_slice() else {
                    return self.union_children(c);
                };
                let (arr, idx) = if is_pointer(index.ty()) && !is_pointer(base.ty()) {
                    (*index, *base)
                } else {
                    (*base, *index)
                };
                self.eval(idx);
                let inner = strip(arr);
                if is_array(inner.ty()) {
                    extend_paths(self.addr_of(inner), "[]")
                } else {
                    self.eval(arr)
                }
            }
            Kind::UnaryOperator if c.operator().as_deref() == Some("*") => {
                match c.children().first() {
                    Some(o) => self.eval(*o),
                    None => Vec::new(),
                }
            }
            Kind::CompoundLiteralExpr => {
                let t = self.temporary("compound literal");
                let init = c.children().into_iter().rfind(|k| k.is_expression());
                if let Some(i) = init {
                    let vals = self.eval(i);
                    if !vals.is_empty() {
                        self.fact(
                            c,
                            FactKind::Assign {
                                to: Place::Local { local: t },
                                from: vals,
                                update: false,
                                writable: false,
                            },
                        );
                    }
                }
                vec![Val::LocalAddr { local: t }]
            }
            Kind::StringLiteral => vec![Val::Str],
            _ => self.eval(c),
        }
    }

    /// The place the lvalue `c` designates.
    pub(super) fn place(&mut self, c: Cursor<'tu>) -> Place {
        let c = strip_parens(c);
        match c.kind() {
            Kind::DeclRefExpr => match self.named(c) {
                Named::Global(global) => Place::Global {
                    global,
                    path: String::new(),
                },
                Named::Local(local) => Place::Local { local },
                _ => unknown_place(),
            },
            Kind::MemberRefExpr => {
                let Some(base) = c.children().into_iter().next() else {
                    return unknown_place();
                };
                let field = c.spelling();
                let bt = base.ty();
                if is_pointer(bt) {
                    let record = bt.canonical().pointee().and_then(|p| self.record(p));
                    Place::Deref {
                        pointer: self.eval(base),
                        path: field.clone(),
                        target: record.clone(),
                        member_of: record.map(|r| (r, field)),
                    }
                } else {
                    let record = self.record(bt);
                    match self.place(base) {
                        Place::Global { global, path } => Place::Global {
                            global,
                            path: join(&path, &field),
                        },
                        Place::Local { local } => Place::Local { local },
                        Place::Deref {
                            pointer,
                            path,
                            target,
                            ..
                        } => Place::Deref {
                            pointer,
                            path: join(&path, &field),
                            target,
                            member_of: record.map(|r| (r, field)),
                        },
                    }
                }
            }
            Kind::ArraySubscriptExpr => {
                let kids = c.children();
                let [base, index] = kids.as_slice() else {
                    return unknown_place();
                };
                let (arr, idx) = if is_pointer(index.ty()) && !is_pointer(base.ty()) {
                    (*index, *base)
                } else {
                    (*base, *index)
                };
                self.eval(idx);
                let inner = strip(arr);
                if is_array(inner.ty()) {
                    match self.place(inner) {
                        Place::Global { global, path } => Place::Global {
                            global,
                            path: join(&path, "[]"),
                        },
                        Place::Deref {
                            pointer,
                            path,
                            target,
                            member_of,
                        } => Place::Deref {
                            pointer,
                            path: join(&path, "[]"),
                            target,
                            member_of,
                        },
                        other => other,
                    }
                } else {
                    let target = arr.ty().canonical().pointee().and_then(|p| self.record(p));
                    Place::Deref {
                        pointer: self.eval(arr),
                        path: "[]".into(),
                        target,
                        member_of: None,
                    }
                }
            }
            Kind::UnaryOperator if c.operator().as_deref() == Some("*") => {
                let Some(o) = c.children().into_iter().next() else {
                    return unknown_place();
                };
                let target = o.ty().canonical().pointee().and_then(|p| self.record(p));
                Place::Deref {
                    pointer: self.eval(o),
                    path: String::new(),
                    target,
                    member_of: None,
                }
            }
            Kind::CStyleCastExpr | Kind::UnexposedExpr => {
                // GNU lvalue casts and implicit wrappers.
                match c.children().into_iter().rfind(|k| k.is_expression()) {
                    Some(e) => self.place(e),
                    None => unknown_place(),
                }
            }
            Kind::CompoundLiteralExpr => {
                let t = self.temporary("compound literal");
                Place::Local { local: t }
            }
            _ => {
                let pointer = self.eval(c);
                Place::Deref {
                    pointer,
                    path: String::new(),
                    target: None,
                    member_of: None,
                }
            }
        }
    }
}
