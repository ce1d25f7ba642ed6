//! The folder tree is the architecture: each top-level module imports only from those before it
//! in [`LAYERS`], and no two source files import each other, directly or round a loop. Read
//! from the source itself (`use crate::...` and `super::...` paths outside the test modules).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Lowest first; a module may import from its own layer and the ones before it.
const LAYERS: &[&[&str]] = &[
    &["util"],
    &["config"],
    &["checkpoint"],
    &["event"],
    &["data"],
    &["model"],
    &["train"],
    &["run"],
    &["front"],
    &["cli"],
    &["cmd"],
    &["lib", "main"],
];

fn layer_of(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|l| l.contains(&module))
        .unwrap_or_else(|| panic!("src/{module} is in no layer of tests/architecture.rs"))
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file: `src/run/server.rs` -> [run, server], `src/run/mod.rs` -> [run].
fn module_of(file: &Path) -> Vec<String> {
    let rel = file.strip_prefix("src").unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into()).collect();
    if parts.len() > 1 && parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The file that defines the longest prefix of a module path.
fn file_of(parts: &[String]) -> Option<PathBuf> {
    (1..=parts.len()).rev().find_map(|n| {
        let base = PathBuf::from("src").join(parts[..n].join("/"));
        [base.with_extension("rs"), base.join("mod.rs")]
            .into_iter()
            .find(|p| p.is_file())
    })
}

/// The module paths a file's code refers to through `crate::` or `super::`, braces expanded.
fn references(file: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(file).unwrap();
    let code = text.split("#[cfg(test)]").next().unwrap();
    let me = module_of(file);
    let mut found = Vec::new();
    for (at, _) in code
        .match_indices("crate::")
        .chain(code.match_indices("super::"))
    {
        let before = code[..at].chars().last();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let rest = &code[at..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let mut path: Vec<String> = rest[..end]
            .split("::")
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        let mut items = vec![Vec::new()];
        if rest[end..].starts_with('{') {
            let inner = &rest[end + 1..rest[end..].find('}').map_or(end + 1, |i| end + i)];
            items = inner
                .split(',')
                .map(|i| i.split(" as ").next().unwrap().trim())
                .filter(|i| !i.is_empty() && *i != "self")
                .map(|i| i.split("::").map(String::from).collect())
                .collect();
        }
        let base = if path[0] == "crate" {
            path.remove(0);
            Vec::new()
        } else {
            let mut base = me[..me.len() - 1].to_vec();
            while path.first().is_some_and(|p| p == "super") {
                path.remove(0);
                if path.first().is_some_and(|p| p == "super") {
                    base.pop();
                }
            }
            base
        };
        for item in items {
            found.push([base.clone(), path.clone(), item].concat());
        }
    }
    found
}

#[test]
fn modules_import_only_from_lower_layers_and_files_form_no_loop() {
    let mut files = Vec::new();
    sources(Path::new("src"), &mut files);
    let mut graph: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    let mut upward = Vec::new();
    for file in &files {
        let me = module_of(file);
        let top = me.first().map_or("lib", String::as_str);
        for path in references(file) {
            let Some(target) = file_of(&path) else {
                continue;
            };
            if &target == file {
                continue;
            }
            let theirs = module_of(&target);
            let their_top = theirs.first().map_or("lib", String::as_str);
            if layer_of(their_top) > layer_of(top) {
                upward.push(format!("{} uses {}", file.display(), path.join("::")));
            }
            graph.entry(file.clone()).or_default().insert(target);
        }
    }
    assert!(
        upward.is_empty(),
        "imports from a higher layer:\n{}",
        upward.join("\n")
    );

    // A loop: depth-first search finds a file on its own path.
    fn visit(
        f: &PathBuf,
        graph: &BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        path: &mut Vec<PathBuf>,
        done: &mut BTreeSet<PathBuf>,
    ) {
        if let Some(i) = path.iter().position(|p| p == f) {
            let cycle: Vec<String> = path[i..].iter().map(|p| p.display().to_string()).collect();
            panic!("files import each other: {}", cycle.join(" -> "));
        }
        if !done.insert(f.clone()) {
            return;
        }
        path.push(f.clone());
        for next in graph.get(f).into_iter().flatten() {
            visit(next, graph, path, done);
        }
        path.pop();
    }
    let mut done = BTreeSet::new();
    for file in &files {
        visit(file, &graph, &mut Vec::new(), &mut done);
    }
    assert!(
        graph.len() > 40,
        "only {} files import others: the reader is off",
        graph.len()
    );
}
