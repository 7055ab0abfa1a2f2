//! Function bodies -> [`Body`]: where values that may be addresses go.
//!
//! Every expression of a body is reduced to the set of [`Val`]s it may
//! evaluate to (addresses of globals, locals and functions, string literals,
//! loads from places, call results), and every statement that moves such
//! values is a [`Fact`]: assignments (incl. `op=`, `++`, local
//! initializers), calls with their arguments, returns, inline assembly
//! operands. Nothing is interpreted here: the analysis (`crate::analyze`)
//! resolves names across units and modules and solves the flows.
//!
//! Macros are no obstacle: the AST is the expanded program, and operators
//! hidden in macro bodies are recognised by the AST's structure
//! (`Cursor::operator`).

mod ctype;
mod place;

use super::Ctx;
use ctype::*;
use modswap_clang::{Cursor, Kind, Linkage as CLinkage, Type as CType, TypeKind};
use modswap_ir::{Arg, Body, Callee, Fact, FactKind, GlobalRef, Linkage, Place, RecordRef, Val};
use std::collections::HashMap;

/// Globals this unit defines, by their canonical declaration, to their key.
pub(crate) type GlobalIndex<'tu> = HashMap<Cursor<'tu>, String>;

/// Reads the body of the function definition `f`.
pub(crate) fn extract<'tu>(ctx: &Ctx, globals: &GlobalIndex<'tu>, f: Cursor<'tu>) -> Body {
    let mut b = Builder {
        ctx,
        globals,
        locals: HashMap::new(),
        names: Vec::new(),
        facts: Vec::new(),
        printf: HashMap::new(),
    };
    let kids = f.children();
    let mut params = 0;
    for k in &kids {
        if k.kind() == Kind::ParmDecl {
            b.local(*k);
            params += 1;
        }
    }
    for k in &kids {
        if k.kind() == Kind::CompoundStmt {
            b.stmt(*k);
        }
    }
    Body {
        name: f.spelling(),
        linkage: if f.linkage() == CLinkage::Internal {
            Linkage::Internal
        } else {
            Linkage::External
        },
        loc: ctx.loc(&f.location()),
        params,
        locals: b.names,
        facts: b.facts,
    }
}

pub(super) struct Builder<'a, 'tu> {
    ctx: &'a Ctx,
    globals: &'a GlobalIndex<'tu>,
    locals: HashMap<Cursor<'tu>, u32>,
    names: Vec<String>,
    facts: Vec<Fact>,
    /// Callees known to be printf-like or not.
    printf: HashMap<Cursor<'tu>, bool>,
}

/// What a name refers to.
pub(super) enum Named {
    Global(GlobalRef),
    Local(u32),
    Function(String),
    Nothing,
}

impl<'tu> Builder<'_, 'tu> {
    pub(super) fn local(&mut self, c: Cursor<'tu>) -> u32 {
        if let Some(i) = self.locals.get(&c) {
            return *i;
        }
        let i = self.names.len() as u32;
        self.names.push(c.spelling());
        self.locals.insert(c, i);
        i
    }

    pub(super) fn temporary(&mut self, what: &str) -> u32 {
        let i = self.names.len() as u32;
        self.names.push(format!("({what})"));
        i
    }

    pub(super) fn fact(&mut self, c: Cursor<'tu>, kind: FactKind) -> u32 {
        let loc = self.ctx.loc(&c.location());
        let text = self
            .ctx
            .text(&c.extent())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| self.ctx.line_text(&loc).unwrap_or_default());
        self.facts.push(Fact { loc, text, kind });
        (self.facts.len() - 1) as u32
    }

    pub(super) fn named(&mut self, c: Cursor<'tu>) -> Named {
        let Some(d) = c.referenced() else {
            return Named::Nothing;
        };
        match d.kind() {
            Kind::FunctionDecl => Named::Function(d.spelling()),
            Kind::VarDecl if d.has_global_storage() => {
                let name = d.spelling();
                let key = self.globals.get(&d.canonical()).cloned();
                Named::Global(GlobalRef { name, key })
            }
            Kind::VarDecl | Kind::ParmDecl => Named::Local(self.local(d)),
            _ => Named::Nothing,
        }
    }

    // ---- statements ----

    pub(super) fn stmt(&mut self, c: Cursor<'tu>) {
        if c.is_expression() {
            self.eval(c);
            return;
        }
        match c.kind() {
            Kind::ReturnStmt => {
                let value = match c.children().first() {
                    Some(e) => self.eval(*e),
                    None => Vec::new(),
                };
                self.fact(c, FactKind::Return { value });
            }
            Kind::DeclStmt => {
                for d in c.children() {
                    if d.kind() == Kind::VarDecl && !d.has_global_storage() {
                        self.local_decl(d);
                    }
                }
            }
            Kind::AsmStmt => {
                let operands: Vec<Vec<Val>> = c
                    .children()
                    .into_iter()
                    .filter(|k| k.is_expression())
                    .map(|k| self.eval(k))
                    .collect();
                if operands.iter().any(|o| !o.is_empty()) {
                    self.fact(c, FactKind::Asm { operands });
                }
            }
            _ => {
                for k in c.children() {
                    self.stmt(k);
                }
            }
        }
    }

    pub(super) fn local_decl(&mut self, d: Cursor<'tu>) {
        let id = self.local(d);
        let Some(init) = d.var_initializer() else {
            return;
        };
        let from = self.eval(init);
        if !from.is_empty() {
            let writable = writable_pointer(d.ty());
            self.fact(
                d,
                FactKind::Assign {
                    to: Place::Local { local: id },
                    from,
                    update: false,
                    writable,
                },
            );
        }
    }

    // ---- expressions ----

    /// The values `c` may evaluate to; records the facts of its side effects.
    pub(super) fn eval(&mut self, c: Cursor<'tu>) -> Vec<Val> {
        match c.kind() {
            Kind::IntegerLiteral | Kind::FloatingLiteral | Kind::CharacterLiteral => Vec::new(),
            Kind::StringLiteral => vec![Val::Str],
            Kind::UnaryExpr => Vec::new(), // sizeof, alignof: not evaluated
            Kind::DeclRefExpr => self.name_value(c),
            Kind::UnaryOperator => self.unary(c),
            Kind::BinaryOperator => self.binary(c),
            Kind::CompoundAssignOperator => self.compound_assign(c),
            Kind::CallExpr => self.call(c),
            Kind::MemberRefExpr | Kind::ArraySubscriptExpr => {
                if is_array(c.ty()) {
                    self.addr_of(c)
                } else {
                    let p = self.place(c);
                    vec![Val::Load { place: Box::new(p) }]
                }
            }
            Kind::ConditionalOperator => {
                let kids = c.children();
                let mut out = Vec::new();
                for (i, k) in kids.iter().enumerate() {
                    let v = self.eval(*k);
                    // `c ? a : b` yields a or b; `a ?: b` yields a or b.
                    if i > 0 || kids.len() == 2 {
                        out.extend(v);
                    }
                }
                dedup(out)
            }
            Kind::CStyleCastExpr => match c.children().into_iter().rfind(|k| k.is_expression()) {
                Some(e) => self.eval(e),
                None => Vec::new(),
            },
            Kind::CompoundLiteralExpr => self.compound_literal(c),
            Kind::StmtExpr => self.stmt_expr(c),
            _ => self.union_children(c),
        }
    }

    /// The value of a name: a function's address, or a load of a global or
    /// local (an array's address).
    pub(super) fn name_value(&mut self, c: Cursor<'tu>) -> Vec<Val> {
        match self.named(c) {
            Named::Function(name) => vec![Val::Function { name }],
            Named::Global(global) => {
                if is_array(c.ty()) {
                    vec![Val::GlobalAddr {
                        global,
                        path: String::new(),
                    }]
                } else {
                    vec![Val::Load {
                        place: Box::new(Place::Global {
                            global,
                            path: String::new(),
                        }),
                    }]
                }
            }
            Named::Local(local) => {
                if is_array(c.ty()) {
                    vec![Val::LocalAddr { local }]
                } else {
                    vec![Val::Load {
                        place: Box::new(Place::Local { local }),
                    }]
                }
            }
            Named::Nothing => Vec::new(),
        }
    }

    /// `x op= y`: an update of `x`; its value is the new `x`.
    pub(super) fn compound_assign(&mut self, c: Cursor<'tu>) -> Vec<Val> {
        let kids = c.children();
        let [lhs, rhs] = kids.as_slice() else {
            return self.union_children(c);
        };
        let from = self.eval(*rhs);
        let to = self.place(*lhs);
        let writable = writable_pointer(lhs.ty());
        self.fact(
            c,
            FactKind::Assign {
                to: to.clone(),
                from: from.clone(),
                update: true,
                writable,
            },
        );
        let mut v = vec![Val::Load {
            place: Box::new(to),
        }];
        v.extend(from);
        v
    }

    /// `(T){ ... }`: an array literal is a temporary whose address is the
    /// value; anything else is its initializer's value.
    pub(super) fn compound_literal(&mut self, c: Cursor<'tu>) -> Vec<Val> {
        let init = c.children().into_iter().rfind(|k| k.is_expression());
        let vals = match init {
            Some(i) => self.eval(i),
            None => Vec::new(),
        };
        if is_array(c.ty()) {
            let t = self.temporary("compound literal");
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
            vec![Val::LocalAddr { local: t }]
        } else {
            vals
        }
    }

    /// `({ ...; x; })`: the value of the last expression statement.
    pub(super) fn stmt_expr(&mut self, c: Cursor<'tu>) -> Vec<Val> {
        let Some(body) = c
            .children()
            .into_iter()
            .find(|k| k.kind() == Kind::CompoundStmt)
        else {
            return Vec::new();
        };
        let stmts = body.children();
        let Some((last, init)) = stmts.split_last() else {
            return Vec::new();
        };
        for s in init {
            self.stmt(*s);
        }
        if last.is_expression() {
            self.eval(*last)
        } else {
            self.stmt(*last);
            Vec::new()
        }
    }

    /// Evaluates every expression child; the union of their values.
    pub(super) fn union_children(&mut self, c: Cursor<'tu>) -> Vec<Val> {
        let mut out = Vec::new();
        for k in c.children() {
            if k.is_expression() {
                out.extend(self.eval(k));
            } else if k.kind() == Kind::CompoundStmt {
                self.stmt(k);
            }
        }
        dedup(out)
    }

    pub(super) fn unary(&mut self, c: Cursor<'tu>) -> Vec<Val> {
        let kids = c.children();
        let [operand] = kids.as_slice() else {
            return self.union_children(c);
        };
        match c.operator().as_deref() {
            Some("&") => self.addr_of(*operand),
            Some("*") => {
                if is_array(c.ty()) || is_function(c.ty()) {
                    // `*a` of a pointer to array designates the array,
                    // which decays: the pointer's value.
                    return self.eval(*operand);
                }
                let p = self.place(c);
                vec![Val::Load { place: Box::new(p) }]
            }
            Some("++") | Some("--") => {
                let to = self.place(*operand);
                let writable = writable_pointer(operand.ty());
                self.fact(
                    c,
                    FactKind::Assign {
                        to: to.clone(),
                        from: Vec::new(),
                        update: true,
                        writable,
                    },
                );
                vec![Val::Load {
                    place: Box::new(to),
                }]
            }
            Some("!") => {
                self.eval(*operand);
                Vec::new()
            }
            _ => self.eval(*operand),
        }
    }

    pub(super) fn binary(&mut self, c: Cursor<'tu>) -> Vec<Val> {
        let kids = c.children();
        let [lhs, rhs] = kids.as_slice() else {
            return self.union_children(c);
        };
        let op = c.operator();
        if op.as_deref() == Some("=") {
            let from = self.eval(*rhs);
            let to = self.place(*lhs);
            let writable = writable_pointer(lhs.ty());
            self.fact(
                c,
                FactKind::Assign {
                    to,
                    from: from.clone(),
                    update: false,
                    writable,
                },
            );
            return from;
        }
        let l = self.eval(*lhs);
        let r = self.eval(*rhs);
        match op.as_deref() {
            Some("==" | "!=" | "<" | ">" | "<=" | ">=" | "&&" | "||") => Vec::new(),
            // `a, b` yields b.
            Some(",") => r,
            _ => {
                let mut v = l;
                v.extend(r);
                dedup(v)
            }
        }
    }

    pub(super) fn call(&mut self, c: Cursor<'tu>) -> Vec<Val> {
        let kids = c.children();
        let Some((callee_c, arg_cs)) = kids.split_first() else {
            return Vec::new();
        };
        let direct = strip(*callee_c);
        let callee = match (direct.kind(), self.named(direct)) {
            (Kind::DeclRefExpr, Named::Function(name)) => Callee::Direct { name },
            _ => Callee::Indirect {
                value: self.eval(*callee_c),
            },
        };
        // The prototype: the callee's function type.
        let mut fty = callee_c.ty().canonical();
        if fty.kind() == TypeKind::Pointer {
            if let Some(p) = fty.pointee() {
                fty = p.canonical();
            }
        }
        let params: Vec<CType<'tu>> = if fty.kind() == TypeKind::FunctionProto {
            fty.arguments()
        } else {
            Vec::new()
        };
        // printf-like functions only read their variadic arguments.
        let printf_like = arg_cs.len() > params.len()
            && direct.kind() == Kind::DeclRefExpr
            && direct
                .referenced()
                .is_some_and(|d| d.kind() == Kind::FunctionDecl && self.printf_like(d));
        let mut args = Vec::with_capacity(arg_cs.len());
        for (i, a) in arg_cs.iter().enumerate() {
            let value = self.eval(*a);
            let writable = match params.get(i) {
                Some(p) => writable_pointer(*p),
                None => !printf_like && (writable_pointer(a.ty()) || is_array(strip(*a).ty())),
            };
            args.push(Arg { value, writable });
        }
        let id = self.fact(c, FactKind::Call { callee, args });
        vec![Val::Call { fact: id }]
    }

    pub(super) fn printf_like(&mut self, d: Cursor<'tu>) -> bool {
        let d = d.canonical();
        if let Some(v) = self.printf.get(&d) {
            return *v;
        }
        let v = printf_like(d);
        self.printf.insert(d, v);
        v
    }

    pub(super) fn record(&self, t: CType<'tu>) -> Option<RecordRef> {
        let t = t.canonical();
        if t.kind() != TypeKind::Record {
            return None;
        }
        let decl = t.declaration()?;
        let def = decl.definition().unwrap_or(decl);
        let name = unqualified(&t.spelling());
        Some(RecordRef {
            name,
            in_module_dir: self.ctx.in_module_dir(&def.location()),
        })
    }
}
