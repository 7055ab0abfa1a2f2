//! The report for code review: every global with its class, the reason, the
//! members to re-assign, its marker and the evidence chain. Text for
//! people, JSON (stable: fixed field order, sorted lists) for tools:
//!
//! ```json
//! {"dir":"fs/fat","modules":[{"name":"vfat","globals":[{"name":"vfat_fs_type",
//!   "file":"fs/fat/namei_vfat.c","line":1238,"class":"static_old",
//!   "reason":"...","escapes":true,"mutated_by_module":false,
//!   "mutated_by_kernel":true,"reassign":["name","init_fs_context"],
//!   "marker":{"status":"added","marker":"__static_old(vfat_fs_type)"},
//!   "evidence":[{"file":"fs/fat/namei_vfat.c","line":1250,"text":"..."}]}]}],
//!  "notes":[]}
//! ```
//!
//! Function-scope statics are named `function.variable` (their key).

use crate::rewrite::{Marker, Rewrite};
use crate::Analysis;
use modswap_ir::class::{Class, Evidence};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Report {
    pub dir: String,
    pub modules: Vec<ModuleReport>,
    pub notes: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct ModuleReport {
    pub name: String,
    pub globals: Vec<GlobalReport>,
}

#[derive(Debug, Serialize)]
pub struct GlobalReport {
    /// The key: `name`, or `function.name` for a function-scope static.
    pub name: String,
    pub file: String,
    pub line: u32,
    pub class: Class,
    pub reason: String,
    pub escapes: bool,
    pub mutated_by_module: bool,
    pub mutated_by_kernel: bool,
    pub reassign: Vec<String>,
    pub marker: Marker,
    pub evidence: Vec<Evidence>,
    /// ELF cross-check warnings: the built object uses the address of a
    /// global the source analysis found private.
    pub elf_warnings: Vec<String>,
}

/// Builds the report from the analysis and the rewrite plan.
pub fn build(analysis: &Analysis, plan: &Rewrite) -> Report {
    Report {
        dir: analysis.dir.clone(),
        modules: analysis
            .modules
            .iter()
            .map(|m| ModuleReport {
                name: m.name.clone(),
                globals: m
                    .globals
                    .iter()
                    .map(|g| GlobalReport {
                        name: g.key.clone(),
                        file: g.file.clone(),
                        line: g.line,
                        class: g.class,
                        reason: g.reason.clone(),
                        escapes: g.escapes,
                        mutated_by_module: g.mutated_by_module,
                        mutated_by_kernel: g.mutated_by_kernel,
                        reassign: g.reassign.clone(),
                        marker: plan
                            .marker(&m.name, &g.key)
                            .cloned()
                            .unwrap_or(Marker::NotNeeded),
                        evidence: g.evidence.clone(),
                        elf_warnings: Vec::new(),
                    })
                    .collect(),
            })
            .collect(),
        notes: analysis.notes.clone(),
    }
}

impl Report {
    /// Adds the ELF cross-check: warnings to their globals, notes to the
    /// report's notes.
    pub fn add_elf_check(&mut self, check: &crate::elf_check::ElfCheck) {
        for w in &check.warnings {
            if let Some(g) = self
                .modules
                .iter_mut()
                .filter(|m| m.name == w.module)
                .flat_map(|m| m.globals.iter_mut())
                .find(|g| g.name == w.key)
            {
                g.elf_warnings.push(w.text.clone());
            }
        }
        self.notes.extend(check.notes.iter().cloned());
        if !check.checked.is_empty() {
            self.notes.push(format!(
                "ELF cross-check: {} warning(s) on {}",
                check.warnings.len(),
                check.checked.join(", ")
            ));
        }
        self.notes.sort();
    }

    /// Pretty-printed JSON, one stable layout.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the report serializes") + "\n"
    }

    /// The text for people. `applied`: the rewrite was written (else the
    /// markers are what a rewrite would do).
    pub fn text(&self, applied: bool) -> String {
        let mut s = String::new();
        let mut counts = [0usize; 4];
        let mut total = 0;
        for m in &self.modules {
            for g in &m.globals {
                counts[class_index(g.class)] += 1;
                total += 1;
            }
        }
        s.push_str(&format!(
            "{}: {} module(s), {total} globals: {} static_old, {} static_new, {} transfer, {} none\n",
            self.dir,
            self.modules.len(),
            counts[0],
            counts[1],
            counts[2],
            counts[3]
        ));
        let mut cannot = Vec::new();
        for m in &self.modules {
            s.push_str(&format!("\nmodule {}\n", m.name));
            for g in &m.globals {
                s.push_str(&format!(
                    "  {}: {} ({}:{})\n    {}\n",
                    g.name, g.class, g.file, g.line, g.reason
                ));
                if !g.reassign.is_empty() {
                    s.push_str(&format!(
                        "    re-assign after a swap: {}\n",
                        g.reassign.join(", ")
                    ));
                }
                let marker = match &g.marker {
                    Marker::NotNeeded => None,
                    Marker::Present { marker } => Some(format!("{marker} (present)")),
                    Marker::Added { marker } => Some(if applied {
                        format!("{marker} (added)")
                    } else {
                        format!("{marker} (missing: a rewrite adds it)")
                    }),
                    Marker::Removed { marker } => Some(if applied {
                        format!("{marker} (removed: not needed any more)")
                    } else {
                        format!("{marker} (stale: a rewrite removes it)")
                    }),
                    Marker::Cannot {
                        marker,
                        why,
                        consequence,
                    } => {
                        cannot.push((m.name.as_str(), g, why, consequence));
                        Some(format!("{marker} cannot be placed: {why}"))
                    }
                };
                if let Some(mk) = marker {
                    s.push_str(&format!("    marker: {mk}\n"));
                }
                for e in &g.evidence {
                    s.push_str(&format!("    - {}:{}: {}\n", e.file, e.line, e.text));
                }
                for w in &g.elf_warnings {
                    s.push_str(&format!("    warning: {w}\n"));
                }
            }
        }
        if !cannot.is_empty() {
            s.push_str(
                "\nglobals that need a static section but cannot be marked in the source:\n",
            );
            for (m, g, why, consequence) in cannot {
                s.push_str(&format!(
                    "  {m} {} ({}, {}:{}): {why}\n    for a swap: {consequence}\n",
                    g.name, g.class, g.file, g.line
                ));
            }
        }
        if !self.notes.is_empty() {
            s.push_str("\nnotes:\n");
            for n in &self.notes {
                s.push_str(&format!("  {n}\n"));
            }
        }
        s
    }
}

fn class_index(c: Class) -> usize {
    match c {
        Class::StaticOld => 0,
        Class::StaticNew => 1,
        Class::Transfer => 2,
        Class::None => 3,
    }
}
