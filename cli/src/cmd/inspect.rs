//! `modswap inspect FILE [--format text|json]`.
//!
//! Text: readable tables (module, data symbols with their references,
//! exports, imports, sections, symbols, relocations, warnings); `--brief`
//! stops after the imports.
//!
//! JSON: one object, keys sorted, arrays in the order documented on
//! `modswap_elf::Object` (index order for sections, symbols and
//! relocations; by name for data symbols, imports and exports):
//!
//! ```text
//! { "schema": "modswap-inspect/1", "file": "<path as given>",
//!   "module": { "name", "modinfo_name", "this_module_name", "hotswappable", "modswap_abi" },
//!   "modinfo": [[key, value], ...],
//!   "sections": [{ "index", "name", "type", "flags", "size", "align", "relocates" }],
//!   "symbols": [{ "index", "name", "kind", "binding", "place": {"kind", "index"?},
//!                 "section", "value", "size" }],
//!   "relocations": [{ "section", "offset", "type", "symbol", "symbol_name", "addend" }],
//!   "imports": [{ "name", "weak" }],
//!   "exports": [{ "name", "gpl", "namespace", "encoding" }],
//!   "data": [{ "name", "symbol", "section", "placement", "offset", "size", "binding",
//!              "address_taken", "held_by": [name],
//!              "references": [{ "from": "code"|"data", "section", "offset", "within",
//!                               "use": "address"|"memory", "type", "target_offset" }] }],
//!   "warnings": [string] }
//! ```

use anyhow::Result;
use modswap_elf::{Object, Origin, Place, Use};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use super::table::Table;
use super::Format;

/// Version of the JSON shape; bumped when a field changes meaning or goes away.
pub const SCHEMA: &str = "modswap-inspect/1";

#[derive(clap::Args)]
pub struct Args {
    /// The module (.ko) or object file (.o) to inspect.
    pub file: PathBuf,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Text only: leave out the full section, symbol and relocation tables.
    #[arg(long)]
    pub brief: bool,
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let obj = Object::read(&args.file)?;
    let out = match args.format {
        Format::Json => json(&args.file.display().to_string(), &obj)?,
        Format::Text => text(&args.file.display().to_string(), &obj, args.brief),
    };
    super::emit(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// The JSON report (keys sorted: serde_json's map is ordered).
pub fn json(file: &str, obj: &Object) -> Result<String> {
    let mut v = serde_json::to_value(obj)?;
    if let Some(map) = v.as_object_mut() {
        map.insert("schema".into(), SCHEMA.into());
        map.insert("file".into(), file.into());
    }
    let mut s = serde_json::to_string_pretty(&v)?;
    s.push('\n');
    Ok(s)
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("-")
}

fn place(obj: &Object, p: &Place) -> String {
    match p {
        Place::Undefined => "UND".into(),
        Place::Absolute => "ABS".into(),
        Place::Common => "COM".into(),
        Place::Reserved(n) => format!("{n:#x}"),
        Place::Section(i) => obj
            .section(*i)
            .map(|s| s.name.clone())
            .unwrap_or_else(|| i.to_string()),
    }
}

/// The readable report; `brief` leaves out the section, symbol and
/// relocation tables.
pub fn text(file: &str, obj: &Object, brief: bool) -> String {
    let mut o = String::new();
    header(&mut o, obj, file);
    data_symbols(&mut o, obj);
    references(&mut o, obj);
    exports(&mut o, obj);
    imports(&mut o, obj);
    if !brief {
        sections(&mut o, obj);
        symbols(&mut o, obj);
        relocations(&mut o, obj);
    }
    warnings(&mut o, obj);
    o
}

/// `inspect`'s text: the module, whether it is hotswappable, the counts.
fn header(o: &mut String, obj: &Object, file: &str) {
    let m = &obj.module;
    let _ = writeln!(o, "File:          {file}");
    let _ = writeln!(
        o,
        "Module:        {} (.modinfo name: {}, .gnu.linkonce.this_module name: {})",
        opt(&m.name),
        opt(&m.modinfo_name),
        opt(&m.this_module_name)
    );
    let _ = writeln!(
        o,
        "Hotswappable:  {}",
        match (m.hotswappable, m.modswap_abi) {
            (false, _) => "no".to_string(),
            (true, Some(abi)) => format!("yes (modswap ABI {abi})"),
            (true, None) => "yes (ABI unreadable)".to_string(),
        }
    );
    let _ = writeln!(
        o,
        "Counts:        {} sections, {} symbols, {} relocations, {} data symbols, {} imports, {} exports",
        obj.sections.len(),
        obj.symbols.len(),
        obj.relocations.len(),
        obj.data.len(),
        obj.imports.len(),
        obj.exports.len()
    );
}

/// `inspect`'s text: every data symbol: section, size, placement, who refers to it.
fn data_symbols(o: &mut String, obj: &Object) {
    let _ = writeln!(o, "\nData symbols ({}):", obj.data.len());
    let mut t = Table::new(&[
        "Name",
        "Section",
        ">Offset",
        ">Size",
        "Bind",
        "Placement",
        "Address taken",
        ">Code refs",
        ">Data refs",
        "Held by",
    ]);
    for d in &obj.data {
        let code = d
            .references
            .iter()
            .filter(|r| r.from == Origin::Code)
            .count();
        let data = d.references.len() - code;
        t.row(vec![
            d.name.clone(),
            d.section.clone(),
            format!("{:#x}", d.offset),
            d.size.to_string(),
            format!("{:?}", d.binding).to_lowercase(),
            serde_json::to_value(d.placement)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            yes_no(d.address_taken).to_string(),
            code.to_string(),
            data.to_string(),
            d.held_by.join(", "),
        ]);
    }
    o.push_str(&t.render("  "));
}

/// `inspect`'s text: the references to each data symbol.
fn references(o: &mut String, obj: &Object) {
    let referenced: Vec<_> = obj
        .data
        .iter()
        .filter(|d| !d.references.is_empty())
        .collect();
    let _ = writeln!(
        o,
        "\nReferences to data symbols ({} symbols):",
        referenced.len()
    );
    for d in referenced {
        let _ = writeln!(o, "  {}:", d.name);
        let mut t = Table::new(&["From", "Where", "Within", "Use", "Type", ">At"]);
        for r in &d.references {
            t.row(vec![
                format!("{:?}", r.from).to_lowercase(),
                format!("{}+{:#x}", r.section, r.offset),
                opt(&r.within).to_string(),
                match r.usage {
                    Use::Address => "address".into(),
                    Use::Memory => "memory".into(),
                },
                r.kind.clone(),
                format!("{:+}", r.target_offset),
            ]);
        }
        // Skip the header row for these small per-symbol tables.
        let rendered = t.render("    ");
        o.push_str(rendered.split_once('\n').map_or("", |x| x.1));
    }
}

/// `inspect`'s text: the exports.
fn exports(o: &mut String, obj: &Object) {
    let _ = writeln!(o, "\nExports ({}):", obj.exports.len());
    if obj.exports.is_empty() {
        let _ = writeln!(o, "  (none)");
    }
    let mut t = Table::new(&["Name", "License", "Namespace", "Encoding"]);
    for e in &obj.exports {
        t.row(vec![
            e.name.clone(),
            if e.gpl { "GPL" } else { "any" }.into(),
            if e.namespace.is_empty() {
                "-".into()
            } else {
                e.namespace.clone()
            },
            serde_json::to_value(e.encoding)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
        ]);
    }
    if !obj.exports.is_empty() {
        o.push_str(&t.render("  "));
    }
}

/// `inspect`'s text: the imports.
fn imports(o: &mut String, obj: &Object) {
    let _ = writeln!(o, "\nImports ({}):", obj.imports.len());
    for i in &obj.imports {
        let _ = writeln!(o, "  {}{}", i.name, if i.weak { " (weak)" } else { "" });
    }
}

/// `inspect`'s text: every section.
fn sections(o: &mut String, obj: &Object) {
    let _ = writeln!(o, "\nSections ({}):", obj.sections.len());
    let mut t = Table::new(&[
        ">Nr",
        "Name",
        "Type",
        "Flags",
        ">Size",
        ">Align",
        "Relocates",
    ]);
    for s in &obj.sections {
        t.row(vec![
            s.index.to_string(),
            s.name.clone(),
            s.kind.clone(),
            s.flags.clone(),
            format!("{:#x}", s.size),
            s.align.to_string(),
            s.relocates
                .and_then(|i| obj.section(i))
                .map(|s| s.name.clone())
                .unwrap_or_default(),
        ]);
    }
    o.push_str(&t.render("  "));
}

/// `inspect`'s text: every symbol.
fn symbols(o: &mut String, obj: &Object) {
    let _ = writeln!(o, "\nSymbols ({}):", obj.symbols.len());
    let mut t = Table::new(&[">Num", ">Value", ">Size", "Type", "Bind", "Section", "Name"]);
    for s in &obj.symbols {
        t.row(vec![
            s.index.to_string(),
            format!("{:#x}", s.value),
            s.size.to_string(),
            format!("{:?}", s.kind).to_lowercase(),
            format!("{:?}", s.binding).to_lowercase(),
            place(obj, &s.place),
            s.name.clone(),
        ]);
    }
    o.push_str(&t.render("  "));
}

/// `inspect`'s text: every relocation.
fn relocations(o: &mut String, obj: &Object) {
    let _ = writeln!(o, "\nRelocations ({}):", obj.relocations.len());
    let mut t = Table::new(&["Section", ">Offset", "Type", "Symbol", ">Addend"]);
    for r in &obj.relocations {
        t.row(vec![
            obj.section(r.section)
                .map(|s| s.name.clone())
                .unwrap_or_default(),
            format!("{:#x}", r.offset),
            r.kind.clone(),
            if r.symbol == 0 {
                "-".into()
            } else {
                r.symbol_name.clone()
            },
            r.addend.to_string(),
        ]);
    }
    o.push_str(&t.render("  "));
}

fn warnings(o: &mut String, obj: &Object) {
    if !obj.warnings.is_empty() {
        let _ = writeln!(o, "\nWarnings ({}):", obj.warnings.len());
        for w in &obj.warnings {
            let _ = writeln!(o, "  {w}");
        }
    }
}
