//! The folder tree is the architecture, read from the source itself with a Rust parser
//! (`syn`), so every form of import counts: `use crate::...`, `super::`, `self::`, a child
//! module named bare (`pub use app::App`), groups nested in braces, and paths written in code
//! without a `use`. Test modules (`#[cfg(test)]`) do not count.
//!
//! - Each top-level module imports only from its own layer and those before it ([`LAYERS`]).
//! - Inside `model/`, `front/` and `front/tui/` the child modules are layered the same way
//!   ([`ORDERS`]); a module's own file (its `mod.rs`) holds what all its children share, so
//!   they may use it, and it may use them.
//! - No two source files import each other, directly or round a loop (apart from a child's
//!   use of its parent module's own file, as above).
//! - The front ends know nothing of dfdx: no path in `front/` names it.
//! - The front ends drive a session and read its feed: they import none of the data, the
//!   checkpoint, the training, the models, nor the run folder's writer ([`KEPT_FROM_FRONT`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// Lowest first; a module may import from its own layer and the ones before it.
const LAYERS: &[&[&str]] = &[
    &["util"],
    &["config"],
    &["checkpoint"],
    &["event"],
    &["data"],
    &["model"],
    &["quality"],
    &["train"],
    &["experiments", "run"],
    &["front"],
    &["cli"],
    &["cmd"],
    &["lib", "main"],
];

/// The same, for the child modules of a module.
const ORDERS: &[(&[&str], &[&[&str]])] = &[
    (
        &["model"],
        &[
            &["kernels"],
            &["ops"],
            &["params"],
            &["device"],
            &["toy"],
            &["deep"],
            &["mnist"],
            &["classifier", "cifar"],
            &["dcgan64"],
        ],
    ),
    (&["front"], &[&["headless", "tui"]]),
    (
        &["front", "tui"],
        &[
            &["view"],
            &["halfblock", "history", "keys"],
            &["app"],
            &["charts", "health", "samples"],
            &["ui"],
            &["loading"],
        ],
    ),
];

/// Modules `front/` may not import, though they are below it: a session hides them.
const KEPT_FROM_FRONT: &[&[&str]] = &[
    &["data"],
    &["checkpoint"],
    &["model"],
    &["train"],
    &["run", "writer"],
];

fn position(levels: &[&[&str]], module: &str) -> Option<usize> {
    levels.iter().position(|l| l.contains(&module))
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

/// The module path of a file: `src/run/server.rs` -> [run, server], `src/run/mod.rs` -> [run],
/// `src/lib.rs` -> [lib].
fn module_of(file: &Path) -> Vec<String> {
    let rel = file.strip_prefix("src").unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into()).collect();
    if parts.len() > 1 && parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The file of module `parts` itself, if it has one.
fn module_file(parts: &[String]) -> Option<PathBuf> {
    let base = PathBuf::from("src").join(parts.join("/"));
    [base.with_extension("rs"), base.join("mod.rs")]
        .into_iter()
        .find(|p| p.is_file())
}

/// The file that defines the longest prefix of a path.
fn file_of(parts: &[String]) -> Option<PathBuf> {
    (1..=parts.len())
        .rev()
        .find_map(|n| module_file(&parts[..n]))
}

/// The paths a file's code names, each as written (segments), from `use` trees and from code.
#[derive(Default)]
struct Paths {
    found: Vec<Vec<String>>,
}

impl Paths {
    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => self.found.push(with(prefix, &n.ident)),
            syn::UseTree::Rename(r) => self.found.push(with(prefix, &r.ident)),
            syn::UseTree::Glob(_) => self.found.push(prefix.clone()),
            syn::UseTree::Group(g) => g.items.iter().for_each(|t| self.use_tree(prefix, t)),
        }
    }
}

fn with(prefix: &[String], ident: &syn::Ident) -> Vec<String> {
    let mut path = prefix.to_vec();
    if ident != "self" {
        path.push(ident.to_string());
    }
    path
}

fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg") && a.parse_args::<syn::Ident>().is_ok_and(|i| i == "test")
    })
}

impl<'a> Visit<'a> for Paths {
    fn visit_item_use(&mut self, u: &'a syn::ItemUse) {
        let mut prefix = Vec::new();
        if u.leading_colon.is_some() {
            prefix.push("::".to_string());
        }
        self.use_tree(&mut prefix, &u.tree);
    }

    fn visit_item_mod(&mut self, m: &'a syn::ItemMod) {
        if !is_test_only(&m.attrs) {
            syn::visit::visit_item_mod(self, m);
        }
    }

    fn visit_item_fn(&mut self, f: &'a syn::ItemFn) {
        if !is_test_only(&f.attrs) {
            syn::visit::visit_item_fn(self, f);
        }
    }

    fn visit_path(&mut self, p: &'a syn::Path) {
        let mut path: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
        if p.leading_colon.is_some() {
            path.insert(0, "::".to_string());
        }
        self.found.push(path);
        syn::visit::visit_path(self, p);
    }
}

/// A file's code: every path it names, and those that resolve to a module of this crate as
/// absolute module paths (`crate` dropped).
struct Names {
    all: Vec<Vec<String>>,
    modules: Vec<Vec<String>>,
}

fn names(file: &Path) -> Names {
    let text = std::fs::read_to_string(file).unwrap();
    let ast = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let mut paths = Paths::default();
    paths.visit_file(&ast);
    // The module that bare names and `self` start from: the crate root for lib.rs and main.rs.
    let me = match module_of(file) {
        m if m == ["lib"] || m == ["main"] => Vec::new(),
        m => m,
    };
    let mut modules = Vec::new();
    for path in &paths.found {
        let Some(first) = path.first() else { continue };
        let resolved = match first.as_str() {
            // main.rs names the library by the crate's name.
            "crate" | "wgangp_tui" => Some(path[1..].to_vec()),
            "self" => Some([me.clone(), path[1..].to_vec()].concat()),
            "super" => {
                let mut base = me.clone();
                let mut rest = &path[..];
                while rest.first().is_some_and(|p| p == "super") {
                    base.pop();
                    rest = &rest[1..];
                }
                Some([base, rest.to_vec()].concat())
            }
            // A bare name: a child module of this one, if there is such a file.
            _ => {
                let child = [me.clone(), vec![first.clone()]].concat();
                module_file(&child).map(|_| child.into_iter().chain(path[1..].to_vec()).collect())
            }
        };
        modules.extend(resolved);
    }
    Names {
        all: paths.found,
        modules,
    }
}

/// Whether `target` is the file of a module that holds `file` (its parent, or higher).
fn is_ancestor_file(target: &Path, file: &Path) -> bool {
    let (t, f) = (module_of(target), module_of(file));
    target.ends_with("mod.rs") && t.len() < f.len() && f.starts_with(&t)
}

/// What is wrong with the import of `target` (module path `theirs`) by `file` (`me`).
fn misplaced(me: &[String], theirs: &[String]) -> Option<String> {
    let top = |m: &[String]| m.first().cloned().unwrap_or_else(|| "lib".into());
    let layer =
        |m: &str| position(LAYERS, m).unwrap_or_else(|| panic!("src/{m} is in no layer of LAYERS"));
    let (mine, their) = (top(me), top(theirs));
    if mine != their {
        return (layer(&their) > layer(&mine)).then(|| format!("{their} is above {mine}"));
    }
    for (parent, levels) in ORDERS {
        let n = parent.len();
        let inside = |m: &[String]| m.len() > n && m[..n].iter().zip(*parent).all(|(a, b)| a == b);
        if !(inside(me) && inside(theirs)) || me[n] == theirs[n] {
            continue;
        }
        let place = |m: &str| {
            position(levels, m)
                .unwrap_or_else(|| panic!("{}/{m} is in no level of ORDERS", parent.join("/")))
        };
        if place(&theirs[n]) > place(&me[n]) {
            return Some(format!(
                "{}/{} is above {}",
                parent.join("/"),
                theirs[n],
                me[n]
            ));
        }
    }
    None
}

#[test]
fn modules_import_only_from_lower_layers_and_files_form_no_loop() {
    let mut files = Vec::new();
    sources(Path::new("src"), &mut files);
    let mut graph: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    let mut wrong = Vec::new();
    for file in &files {
        let me = module_of(file);
        let names = names(file);
        if me.first().is_some_and(|m| m == "front") {
            for path in names.all.iter().filter(|p| p.iter().any(|s| s == "dfdx")) {
                wrong.push(format!("{} names {}", file.display(), path.join("::")));
            }
        }
        for path in names.modules {
            let Some(target) = file_of(&path) else {
                continue;
            };
            if &target == file {
                continue;
            }
            let theirs = module_of(&target);
            let kept = KEPT_FROM_FRONT
                .iter()
                .find(|k| theirs.len() >= k.len() && k.iter().zip(&theirs).all(|(a, b)| a == b));
            if let Some(kept) = kept.filter(|_| me.first().is_some_and(|m| m == "front")) {
                wrong.push(format!(
                    "{} uses {}: the front ends know nothing of {}",
                    file.display(),
                    path.join("::"),
                    kept.join("::")
                ));
            }
            if let Some(why) = misplaced(&me, &theirs) {
                wrong.push(format!(
                    "{} uses {}: {why}",
                    file.display(),
                    path.join("::")
                ));
            }
            if !is_ancestor_file(&target, file) {
                graph.entry(file.clone()).or_default().insert(target);
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the architecture:\n{}",
        wrong.join("\n")
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
        graph.len() > 60,
        "only {} files import others: the reader is off",
        graph.len()
    );
}
