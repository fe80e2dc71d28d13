//! The repository tests itself: a plain `git clone` has nothing beside it, so no test,
//! bench or script may read a path that climbs out of the checkout.

use std::path::{Path, PathBuf};

/// Places that name files the tests and benches read.
const SCANNED: &[&str] = &["src", "tests", "benches", "scripts", "tools", ".ci"];
const SOURCE_EXTENSIONS: &[&str] = &["rs", "sh", "py", "mjs", "js", "toml", "yaml", "yml"];

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        // Installed tools (npm packages, Python environments) are not the project's files.
        let installed = dir.ends_with("tools") && (name == "python" || name == "tokenizers");
        if name == "node_modules" || name == "target" || name == "fixtures" || installed {
            continue;
        }
        if path.is_dir() {
            files_under(&path, out);
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| SOURCE_EXTENSIONS.contains(&e))
        {
            out.push(path);
        }
    }
}

/// Lines that reach outside the checkout: a path starting at the manifest dir and climbing,
/// or the sibling `shared/` folder a developer checkout happens to have.
fn leaving_lines(text: &str) -> Vec<(usize, String)> {
    let climbing_literal = regex::Regex::new(r#""[^"\n]*\.\.(/|")"#).unwrap();
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            line.contains("../shared")
                || (line.contains("CARGO_MANIFEST_DIR") && climbing_literal.is_match(line))
        })
        .map(|(i, line)| (i + 1, line.trim().to_string()))
        .collect()
}

#[test]
fn no_test_path_leaves_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in SCANNED {
        files_under(&root.join(dir), &mut files);
    }
    assert!(files.len() > 50, "scanned too few files: {}", files.len());
    let this_file = root.join("tests/repo_self_contained.rs");
    let offenders: Vec<String> = files
        .iter()
        .filter(|f| **f != this_file)
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            leaving_lines(&text)
                .into_iter()
                .map(move |(n, line)| format!("{}:{n}: {line}", f.display()))
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "these lines read outside the repository; copy the data into tests/fixtures with its provenance:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_scan_catches_paths_that_climb_out() {
    let climbing = [
        r#"let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures");"#,
        r#"concat!(env!("CARGO_MANIFEST_DIR"), "/../data/x.json")"#,
        r#"format!("{}/../../other", env!("CARGO_MANIFEST_DIR"))"#,
    ];
    for line in climbing {
        assert_eq!(leaving_lines(line).len(), 1, "not caught: {line}");
    }
    let staying = [
        r#"concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/traces")"#,
        r#"let parent = path.join("..");"#,
    ];
    for line in staying {
        assert!(leaving_lines(line).is_empty(), "wrongly caught: {line}");
    }
}

#[test]
fn every_fixture_folder_says_where_its_files_came_from() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for entry in std::fs::read_dir(&fixtures).unwrap().flatten() {
        let dir = entry.path();
        if !dir.is_dir() {
            continue;
        }
        let has_provenance = ["README.md", "SOURCES.md"]
            .iter()
            .any(|f| dir.join(f).is_file());
        assert!(
            has_provenance,
            "{} has no README.md or SOURCES.md",
            dir.display()
        );
    }
}
