//! The layering ARCHITECTURE.md documents, checked against the source.
//!
//! Every `crate::` and `super::` path in `src/` (outside the test modules at the end of each
//! file) is resolved to the module file it names. Between top-level modules, a path may only
//! point to a module listed earlier in ARCHITECTURE.md's module map, so the map stays true,
//! the modules form no circle, and `runner` never reaches up into `cli`. Inside one top-level
//! module, the files may form no circle either.
//!
//! The resolution is by path, not by name: a path through a parent's re-export (`super::Type`
//! where `Type` is defined in a sibling) counts as pointing to the parent and is not followed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type ModPath = Vec<String>;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/a/b.rs` -> `a::b`, `src/a/mod.rs` -> `a`.
fn module_of(src: &Path, file: &Path) -> ModPath {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: ModPath = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The code of a file without its comments and its trailing test module.
fn code_of(text: &str) -> String {
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    code.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident_len(s: &str) -> usize {
    s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len())
}

/// The leading path segments of each path written after `crate::` or `super::`, with a
/// `{ .. }` group opened into its items.
fn paths_after(rest: &str) -> Vec<Vec<String>> {
    let mut segments = Vec::new();
    let mut s = rest;
    loop {
        if let Some(group) = s.strip_prefix('{') {
            let mut depth = 1;
            let end = group
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '{' => 1,
                        '}' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .map_or(group.len(), |(i, _)| i);
            let mut items = Vec::new();
            let mut depth = 0;
            let mut start = 0;
            for (i, c) in group[..end].char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        items.push(&group[start..i]);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            items.push(&group[start..end]);
            return items
                .into_iter()
                .flat_map(|item| paths_after(item.trim()))
                .map(|tail| segments.iter().cloned().chain(tail).collect())
                .collect();
        }
        let n = ident_len(s);
        if n == 0 {
            break;
        }
        segments.push(s[..n].to_string());
        match s[n..].strip_prefix("::") {
            Some(next) => s = next,
            None => break,
        }
    }
    vec![segments]
}

/// The module paths a file's code names: each `crate::` path from the crate root, each
/// `super::` path from the file module's parent.
fn named_paths(module: &ModPath, code: &str) -> Vec<ModPath> {
    let mut out = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        out.extend(paths_after(&code[at + "crate::".len()..]));
    }
    let mut at = 0;
    while let Some(found) = code[at..].find("super::") {
        let start = at + found;
        let before = code[..start].chars().next_back();
        let mut rest = &code[start..];
        let mut ups = 0;
        while let Some(r) = rest.strip_prefix("super::") {
            ups += 1;
            rest = r;
        }
        at = code.len() - rest.len();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let base = &module[..module.len().saturating_sub(ups)];
        out.extend(
            paths_after(rest)
                .into_iter()
                .map(|tail| base.iter().cloned().chain(tail).collect()),
        );
    }
    out
}

/// The longest prefix of `path` that is a module file.
fn resolve(path: &ModPath, modules: &BTreeSet<ModPath>) -> Option<ModPath> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| modules.contains(p))
}

struct Source {
    /// Module file -> module files it names (itself excluded).
    edges: BTreeMap<ModPath, BTreeSet<ModPath>>,
}

fn read_source() -> Source {
    let src = root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<ModPath> = files.iter().map(|f| module_of(&src, f)).collect();
    let mut edges = BTreeMap::new();
    for file in &files {
        let module = module_of(&src, file);
        if matches!(module.as_slice(), [m] if m == "lib" || m == "main") {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(file).unwrap());
        let targets: BTreeSet<ModPath> = named_paths(&module, &code)
            .iter()
            .filter_map(|p| resolve(p, &modules))
            .filter(|t| *t != module)
            .collect();
        edges.insert(module, targets);
    }
    Source { edges }
}

/// The module map's order, bottom-up, from ARCHITECTURE.md.
fn documented_order() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let map = text
        .split("## Module map")
        .nth(1)
        .expect("ARCHITECTURE.md has a module map")
        .split("\n## ")
        .next()
        .unwrap();
    map.lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`'))
        .map(|(name, _)| name.to_string())
        .collect()
}

fn joined(m: &ModPath) -> String {
    m.join("::")
}

#[test]
fn top_level_modules_only_use_modules_below_them_in_the_architecture_map() {
    let order = documented_order();
    let source = read_source();
    let tops: BTreeSet<String> = source.edges.keys().map(|m| m[0].clone()).collect();
    let listed: BTreeSet<String> = order.iter().cloned().collect();
    assert_eq!(
        tops, listed,
        "ARCHITECTURE.md's module map lists exactly the top-level modules of src/"
    );
    let rank = |m: &str| order.iter().position(|o| o == m).unwrap();
    let mut upward = Vec::new();
    for (from, targets) in &source.edges {
        for to in targets {
            if from[0] != to[0] && rank(&to[0]) > rank(&from[0]) {
                upward.push(format!("{} -> {}", joined(from), joined(to)));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "these paths point to a module listed later in ARCHITECTURE.md's module map (an \
         import circle or an arrow running back up); move the shared type down or the module \
         up:\n{}",
        upward.join("\n")
    );
    let runner_to_cli: Vec<_> = source
        .edges
        .iter()
        .filter(|(from, targets)| from[0] == "runner" && targets.iter().any(|t| t[0] == "cli"))
        .collect();
    assert!(runner_to_cli.is_empty(), "runner imports cli");
}

/// Strongly connected components with more than one member.
fn circles(graph: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Vec<BTreeSet<String>> {
    struct Walk<'a> {
        graph: &'a BTreeMap<ModPath, BTreeSet<ModPath>>,
        index: BTreeMap<&'a ModPath, usize>,
        low: BTreeMap<&'a ModPath, usize>,
        stack: Vec<&'a ModPath>,
        found: Vec<BTreeSet<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a ModPath) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            for w in self.graph.get(v).into_iter().flatten() {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if self.stack.contains(&w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut members = BTreeSet::new();
                while let Some(w) = self.stack.pop() {
                    members.insert(joined(w));
                    if w == v {
                        break;
                    }
                }
                if members.len() > 1 {
                    self.found.push(members);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v) {
            walk.visit(v);
        }
    }
    walk.found
}

#[test]
fn files_inside_a_module_form_no_circles() {
    let source = read_source();
    // Edges between files of one top-level module, not counting its root (`mod.rs`), whose
    // re-exports every child may name.
    let inner: BTreeMap<ModPath, BTreeSet<ModPath>> = source
        .edges
        .iter()
        .map(|(from, targets)| {
            let same: BTreeSet<ModPath> = targets
                .iter()
                .filter(|t| t[0] == from[0] && t.len() > 1)
                .cloned()
                .collect();
            (from.clone(), same)
        })
        .collect();
    let found = circles(&inner);
    assert!(
        found.is_empty(),
        "import circles between files of one module (move the shared plain type into a file \
         both can use): {found:?}"
    );
}

#[test]
fn paths_are_read_through_groups_and_parents() {
    let module: ModPath = vec!["gate".into(), "decide".into()];
    let code = "use super::{checks::{contract_checks, CheckResult}, config::GateConfig};\n\
                use crate::bench::row::BenchRow;\nlet x = super::super::exit::EXIT_OK;";
    let paths: Vec<String> = named_paths(&module, code).iter().map(joined).collect();
    assert_eq!(
        paths,
        [
            "bench::row::BenchRow",
            "gate::checks::contract_checks",
            "gate::checks::CheckResult",
            "gate::config::GateConfig",
            "exit::EXIT_OK",
        ]
    );
    assert_eq!(
        code_of("use a;\n// crate::cli::x\n#[cfg(test)]\nuse crate::cli::y;"),
        "use a;"
    );
}
