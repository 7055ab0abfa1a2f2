//! Names -> definitions across the units and modules of one directory.
//!
//! C scoping as the linker sees it: a name used in a unit means, in order,
//! the unit's own definition (internal or external linkage), a definition
//! with external linkage in another unit of the same module, one in another
//! module of the directory (which the module imports, e.g. vfat uses fat's
//! `fat_fill_super`), or else something of the kernel's.

use modswap_ir::{Body, Global, GlobalRef, Linkage, Program};
use std::collections::HashMap;

/// A global of the program: index into [`Index::globals`].
pub(crate) type GId = u32;
/// A function body of the program: index into [`Index::bodies`].
pub(crate) type FId = u32;

/// Where a global or body lives.
#[derive(Debug, Clone, Copy)]
pub(crate) struct At {
    pub module: usize,
    pub unit: usize,
    pub item: usize,
}

pub(crate) struct Index<'p> {
    pub program: &'p Program,
    pub globals: Vec<At>,
    pub bodies: Vec<At>,
    /// (module, unit, key) -> global.
    unit_globals: HashMap<(usize, usize, &'p str), GId>,
    /// (module, unit, name) -> file-scope global (for initializers).
    unit_file_globals: HashMap<(usize, usize, &'p str), GId>,
    /// (module, name) -> external-linkage global.
    module_globals: HashMap<(usize, &'p str), GId>,
    /// (module, unit, name) -> body.
    unit_bodies: HashMap<(usize, usize, &'p str), FId>,
    /// (module, name) -> external-linkage body.
    module_bodies: HashMap<(usize, &'p str), FId>,
}

impl<'p> Index<'p> {
    pub fn new(program: &'p Program) -> Index<'p> {
        let mut ix = Index {
            program,
            globals: Vec::new(),
            bodies: Vec::new(),
            unit_globals: HashMap::new(),
            unit_file_globals: HashMap::new(),
            module_globals: HashMap::new(),
            unit_bodies: HashMap::new(),
            module_bodies: HashMap::new(),
        };
        for (mi, m) in program.modules.iter().enumerate() {
            for (ui, u) in m.units.iter().enumerate() {
                for (gi, g) in u.globals.iter().enumerate() {
                    let id = ix.globals.len() as GId;
                    ix.globals.push(At {
                        module: mi,
                        unit: ui,
                        item: gi,
                    });
                    ix.unit_globals
                        .entry((mi, ui, g.key.as_str()))
                        .or_insert(id);
                    if g.function.is_none() {
                        ix.unit_file_globals
                            .entry((mi, ui, g.name.as_str()))
                            .or_insert(id);
                        if g.linkage == Linkage::External {
                            ix.module_globals.entry((mi, g.name.as_str())).or_insert(id);
                        }
                    }
                }
                for (bi, b) in u.bodies.iter().enumerate() {
                    let id = ix.bodies.len() as FId;
                    ix.bodies.push(At {
                        module: mi,
                        unit: ui,
                        item: bi,
                    });
                    ix.unit_bodies
                        .entry((mi, ui, b.name.as_str()))
                        .or_insert(id);
                    if b.linkage == Linkage::External {
                        ix.module_bodies.entry((mi, b.name.as_str())).or_insert(id);
                    }
                }
            }
        }
        ix
    }

    pub fn global(&self, g: GId) -> &'p Global {
        let at = self.globals[g as usize];
        &self.program.modules[at.module].units[at.unit].globals[at.item]
    }

    pub fn body(&self, f: FId) -> &'p Body {
        let at = self.bodies[f as usize];
        &self.program.modules[at.module].units[at.unit].bodies[at.item]
    }

    pub fn module_of_global(&self, g: GId) -> usize {
        self.globals[g as usize].module
    }

    pub fn module_of_body(&self, f: FId) -> usize {
        self.bodies[f as usize].module
    }

    /// The global a body of (module, unit) names.
    pub fn resolve_global(&self, module: usize, unit: usize, r: &GlobalRef) -> Option<GId> {
        if let Some(k) = &r.key {
            return self.unit_globals.get(&(module, unit, k.as_str())).copied();
        }
        self.resolve_global_name(module, unit, &r.name)
    }

    /// A global by name as seen from file scope of (module, unit).
    pub fn resolve_global_name(&self, module: usize, unit: usize, name: &str) -> Option<GId> {
        self.scoped(
            &self.unit_file_globals,
            &self.module_globals,
            (module, unit),
            name,
        )
    }

    /// A global named in the initializer of `of`: a static of the same
    /// function first, then file scope.
    pub fn resolve_in_initializer(&self, of: GId, name: &str) -> Option<GId> {
        let at = self.globals[of as usize];
        let g = self.global(of);
        if let Some(f) = &g.function {
            let key = format!("{f}.{name}");
            if let Some(x) = self.unit_globals.get(&(at.module, at.unit, key.as_str())) {
                return Some(*x);
            }
        }
        self.resolve_global_name(at.module, at.unit, name)
    }

    /// The body of the function `name` as seen from (module, unit).
    pub fn resolve_function(&self, module: usize, unit: usize, name: &str) -> Option<FId> {
        self.scoped(&self.unit_bodies, &self.module_bodies, (module, unit), name)
    }

    /// `name` as the linker resolves it from (module, unit): the unit's own
    /// definition, then one with external linkage in the module, then one
    /// in another module of the directory.
    fn scoped<T: Copy>(
        &self,
        in_unit: &HashMap<(usize, usize, &'p str), T>,
        in_module: &HashMap<(usize, &'p str), T>,
        (module, unit): (usize, usize),
        name: &str,
    ) -> Option<T> {
        if let Some(x) = in_unit.get(&(module, unit, name)) {
            return Some(*x);
        }
        if let Some(x) = in_module.get(&(module, name)) {
            return Some(*x);
        }
        (0..self.program.modules.len())
            .filter(|m| *m != module)
            .find_map(|m| in_module.get(&(m, name)).copied())
    }
}
