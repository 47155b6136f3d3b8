//! The crate's module graph, read from its sources: which module names which (`crate::`,
//! `super::`, `self::` and child-module paths, outside comments, re-exports and tests),
//! and a check that no module cycle exists, between the top-level modules nor between
//! the files of one module folder. `scripts/module-edges.sh` prints the edges.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module's path inside the crate: `[]` for the root, `["cache", "store"]` for
/// `cache/store.rs`.
type Module = Vec<String>;

fn name(module: &[String]) -> String {
    if module.is_empty() {
        "crate".into()
    } else {
        module.join("::")
    }
}

/// Every source file under `dir` with its module path; test-only files left out.
fn modules(dir: &Path, prefix: &Module, out: &mut Vec<(Module, PathBuf)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("the crate's src/ is readable")
        .map(|entry| entry.expect("a readable directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        if path.is_dir() {
            let mut module = prefix.clone();
            module.push(stem.to_string());
            modules(&path, &module, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            if stem == "tests" || stem == "loom_tests" || stem == "module_graph" {
                continue;
            }
            let mut module = prefix.clone();
            if stem != "mod" && stem != "lib" {
                module.push(stem.to_string());
            }
            out.push((module, path));
        }
    }
}

/// The code of a file: comments, inline test modules and re-exports (`pub use`,
/// `pub(crate) use`: a module folder's facade) taken out.
fn code(source: &str) -> String {
    let mut kept = String::new();
    for line in source.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("mod tests {") {
            break; // inline unit tests close a file
        }
        let line = match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        };
        kept.push_str(line);
        kept.push('\n');
    }
    let mut out = String::new();
    let mut rest = kept.as_str();
    while let Some(at) = ["pub use ", "pub(crate) use ", "pub(super) use "]
        .iter()
        .filter_map(|start| rest.find(start))
        .min()
    {
        out.push_str(&rest[..at]);
        rest = rest[at..].split_once(';').map_or("", |(_, after)| after);
    }
    out.push_str(rest);
    // Visibility (`pub(super)`, `pub(crate)`) names no module it uses.
    out.replace("pub(super)", "pub")
        .replace("pub(crate)", "pub")
}

/// The child modules a file declares (`mod x;`).
fn children(source: &str) -> BTreeSet<String> {
    source
        .lines()
        .filter_map(|line| {
            let line = line.trim_start();
            let line = line.strip_prefix("pub ").unwrap_or(line);
            let name = line.strip_prefix("mod ")?.strip_suffix(';')?;
            Some(name.trim().to_string())
        })
        .collect()
}

/// The module paths that `code` names, as written (`crate::a::b::Item`, `super::X`).
fn paths(code: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut ident = String::new();
    let mut chars = code.chars().peekable();
    let mut after_separator = false;
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            ident.push(c);
            continue;
        }
        if !ident.is_empty() {
            if !after_separator && !current.is_empty() {
                found.push(std::mem::take(&mut current));
            }
            current.push(std::mem::take(&mut ident));
            after_separator = false;
        }
        if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            after_separator = true;
            continue;
        }
        if !current.is_empty() {
            if after_separator {
                current.push("{".into()); // `use a::{..}` or `a::*`: a path into `a`
            }
            found.push(std::mem::take(&mut current));
        }
        after_separator = false;
    }
    found
}

/// The edges of the graph: each module and the modules it names.
fn edges() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    modules(&src, &Vec::new(), &mut files);
    let known: BTreeSet<Module> = files.iter().map(|(module, _)| module.clone()).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, path) in &files {
        let source = std::fs::read_to_string(path).expect("a readable source file");
        let children = children(&source);
        let targets = graph.entry(name(module)).or_default();
        for path in paths(&code(&source)) {
            let (mut base, rest) = match path[0].as_str() {
                "crate" => (Vec::new(), &path[1..]),
                "self" => (module.clone(), &path[1..]),
                "super" => (
                    module[..module.len().saturating_sub(1)].to_vec(),
                    &path[1..],
                ),
                first if children.contains(first) && path.len() > 1 => (module.clone(), &path[..]),
                _ => continue,
            };
            // The longest prefix that is a module: `crate::slot::Served` names `slot`.
            let mut target = base.clone();
            for segment in rest {
                base.push(segment.clone());
                if known.contains(&base) {
                    target = base.clone();
                }
            }
            if !target.is_empty() && target != *module {
                targets.insert(name(&target));
            }
        }
    }
    graph
}

/// A cycle in `graph`, if there is one.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

/// The graph between top-level modules (`cache::store` counts as `cache`), and the
/// graph inside each module folder.
fn levels(
    graph: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<(String, BTreeMap<String, BTreeSet<String>>)> {
    let top = |module: &str| module.split("::").next().unwrap_or(module).to_string();
    let mut levels = Vec::new();
    let mut crate_level: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, targets) in graph {
        let node = crate_level.entry(top(from)).or_default();
        node.extend(targets.iter().map(|t| top(t)).filter(|t| *t != top(from)));
    }
    levels.push(("crate".to_string(), crate_level));
    let folders: BTreeSet<String> = graph
        .keys()
        .filter(|m| m.contains("::"))
        .map(|m| top(m))
        .collect();
    for folder in folders {
        let inside = |m: &str| top(m) == folder;
        let level = graph
            .iter()
            .filter(|(from, _)| inside(from))
            .map(|(from, targets)| {
                let targets = targets.iter().filter(|t| inside(t)).cloned().collect();
                (from.clone(), targets)
            })
            .collect();
        levels.push((folder, level));
    }
    levels
}

#[test]
fn the_modules_form_no_cycle() {
    let graph = edges();
    for (level, graph) in levels(&graph) {
        println!("{level}:");
        for (from, targets) in &graph {
            let targets: Vec<_> = targets.iter().map(String::as_str).collect();
            println!("  {from} -> {}", targets.join(", "));
        }
        if let Some(cycle) = cycle(&graph) {
            panic!("a module cycle in {level}: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn the_reader_finds_paths_and_cycles() {
    let code = code("use crate::slot::{self, Control};\n// crate::evict::X\nfn f() { super::a::b(); }\npub(crate) use drive::{x,\n y};\n");
    let found = paths(&code);
    let slot = ["crate".to_string(), "slot".to_string(), "{".to_string()];
    assert!(found.contains(&slot.to_vec()), "{found:?}");
    assert!(
        found.contains(&vec!["super".into(), "a".into(), "b".into()]),
        "{found:?}"
    );
    assert!(
        !found.iter().any(|p| p.contains(&"evict".to_string())),
        "comments are skipped"
    );
    assert!(
        !found.iter().any(|p| p[0] == "drive"),
        "re-exports are skipped"
    );
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_string(), BTreeSet::from(["b".to_string()])),
        ("b".to_string(), BTreeSet::from(["a".to_string()])),
    ]
    .into();
    assert_eq!(
        cycle(&graph),
        Some(vec!["a".into(), "b".into(), "a".into()])
    );
    let acyclic: BTreeMap<String, BTreeSet<String>> =
        [("a".to_string(), BTreeSet::from(["b".to_string()]))].into();
    assert_eq!(cycle(&acyclic), None);
}
