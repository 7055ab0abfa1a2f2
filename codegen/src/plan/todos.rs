//! The TODOs that follow a transfer or a kept object: pointers that may
//! still point into the old version.

use super::static_old::c_path;
use super::*;

impl<'t, 'a> Builder<'t, 'a> {
    /// TODOs for the members of a transferred object that its new
    /// initializer points into the module: after the copy they hold the old
    /// version's value, which may point into the old version. Returns their
    /// C paths.
    pub(super) fn repoint_todos(&mut self, out: &mut Vec<Item>, g: &Global) -> BTreeSet<String> {
        let mut found = Vec::new();
        if let Some(init) = &g.init {
            self.init_reassigns(init, g.ty, String::new(), &mut found);
        }
        let mut seen = BTreeSet::new();
        for (p, text) in found {
            let cp = c_path(&g.name, &p);
            self.todo(
                out,
                1,
                Todo {
                    id: format!("repoint:{cp}"),
                    message: format!("{cp} may point into the old version"),
                    explain: vec![format!(
                        "The new version initializes {cp} to `{text}`, into this module. \
                         After the copy it holds the old version's value, which may point \
                         into the old version (freed after the swap; the loader refuses a \
                         swap that leaves such a pointer): re-point it, e.g. `{cp} = {text};`, \
                         or leave it (empty region) if it never points into the module."
                    )],
                },
            );
            seen.insert(cp);
        }
        seen
    }

    /// TODOs for pointers (in the object, by value) to records of the
    /// module whose layout changed; `seen`: paths that already have a TODO.
    pub(super) fn pointer_todos(
        &mut self,
        out: &mut Vec<Item>,
        path: &str,
        ty: TypeId,
        depth: u32,
        seen: &BTreeSet<String>,
    ) {
        if depth > 8 || seen.contains(path) {
            return;
        }
        let t = self.types.new;
        let r = t.resolve(ty);
        match t.get(r) {
            Type::Pointer { .. } => {
                if let Some((rec, diffs)) = self.types.changed_pointee(ty) {
                    self.todo(
                        out,
                        1,
                        Todo {
                            id: format!("pointer:{path}"),
                            message: format!(
                                "{path} points to {rec}, whose layout changed: convert what it \
                                 points to"
                            ),
                            explain: vec![format!(
                                "{path} points to objects the old version made with the old \
                                 layout of {rec} ({}). The new code would read them with the new \
                                 layout. Convert them (allocate new ones, with GFP_ATOMIC here or \
                                 beforehand in a prepare() hook, see the register region; copy \
                                 member by member; re-link), or keep {rec}'s layout.",
                                diffs.join("; ")
                            )],
                        },
                    );
                }
            }
            Type::Array { elem, .. } => {
                let e = *elem;
                self.pointer_todos(out, &format!("{path}[]"), e, depth + 1, seen);
            }
            Type::Record {
                fields: Some(_), ..
            } => {
                for m in members(t, r) {
                    self.pointer_todos(out, &format!("{path}.{}", m.name), m.ty, depth + 1, seen);
                }
            }
            _ => {}
        }
    }

    /// A global the analysis wants in a static section that neither
    /// version marks: it moves in this swap, whatever the analysis says.
    /// Returns whether that decides the global.
    pub(super) fn unmarked(
        &mut self,
        part: &mut Part<'t, 'a>,
        g: &Global,
        c: &crate::classes::Classified,
        w: Class,
        at: &str,
    ) -> bool {
        // The analysis wants a static section, neither version has one:
        // the object moves in this swap, whatever the analysis says.
        if g.function.is_some() && g.macro_origin.is_some() {
            self.notes.push(format!(
                "{} ({at}) should be {w} ({}), but a macro declares it inside a function, so \
                 it cannot be marked; it moves in a swap",
                g.key, c.reason
            ));
            self.line(g, c.class, at, "cannot be marked (declared by a macro)");
            return true;
        }
        let kernel_object = crate::types::kernel_object(self.types.new, g.ty);
        match (w, kernel_object) {
            (Class::StaticOld, None) => {
                self.notes.push(format!(
                    "{} ({at}): annotate says static_old ({}), but neither version marks \
                     it, so it moves and is transferred; if the kernel keeps its address, \
                     mark it __static_old({}) in both versions",
                    g.key, c.reason, g.key
                ));
            }
            (Class::StaticOld, Some(obj)) => {
                let mut body = Vec::new();
                self.todo(
                    &mut body,
                    1,
                    Todo {
                        id: format!("unmarked:{}", g.key),
                        message: format!(
                            "{} is not marked static_old: decide what happens to the old one",
                            g.key
                        ),
                        explain: vec![format!(
                            "annotate says {} must keep its address ({}), but neither \
                             version marks it, so it moves: the new version's own {}, as \
                             its initializer sets it, replaces the old one, and nothing is \
                             copied, because it holds a kernel object tied to its address \
                             ({obj}). Leave this region empty if the old one is idle when \
                             the swap runs (e.g. an unlocked lock, an empty list); else \
                             carry over what it holds here. Mark it __static_old({}) in both \
                             versions for later swaps.",
                            g.key, c.reason, g.key, g.key
                        )],
                    },
                );
                // Nothing is transferred: count it as `none`.
                *self.counts.entry(c.class).or_default() -= 1;
                *self.counts.entry(Class::None).or_default() += 1;
                self.line(
                    g,
                    Class::None,
                    at,
                    "not marked static_old: the new one replaces it (TODO)",
                );
                part.push_block(format!("{} ({at}): not marked static_old", g.key), body);
                return true;
            }
            (_, _) => {
                self.notes.push(format!(
                    "{} ({at}): annotate says {w} ({}), but neither version marks it, so it \
                     moves; the new version's contents are used",
                    g.key, c.reason
                ));
                self.line(g, c.class, at, "not marked: the new contents are used");
                return true;
            }
        }
        false
    }
}
