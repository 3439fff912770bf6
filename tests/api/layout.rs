//! The source tree keeps the shape its README paragraph describes: each top-level part of `src/`
//! uses only the parts below it (no cycles), every file opens with a `//!` line saying what it is
//! for, and no file grows past what one reads in a sitting.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The parts of `src/`, top down; a part may use only parts in later groups.
const LAYERS: &[&[&str]] = &[
    &["app", "agent"],
    &["http"],
    &["jobs"],
    &["actions"],
    &["registry"],
    &["state"],
    &["cache"],
    &["auth"],
    &["pubsub", "notify", "nodeconf"],
    &["db"],
    &["config"],
    &["validate"],
    &["error"],
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
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

/// The top-level part a file belongs to (`src/db/mail.rs` -> `db`, `src/state.rs` -> `state`).
fn part_of(file: &Path) -> String {
    let rel = file.strip_prefix(src()).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

fn layer_of(part: &str) -> Option<usize> {
    LAYERS.iter().position(|group| group.contains(&part))
}

/// The parts of the crate a line names: `crate::db::...` and `crate::{db, error::X}`.
fn parts_named(line: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                found.push(name);
            }
        } else {
            found.push(
                rest.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect(),
            );
        }
    }
    found
}

#[test]
fn every_part_of_the_tree_uses_only_the_parts_below_it() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut upward: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut unplaced = Vec::new();
    for file in &files {
        let part = part_of(file);
        if part == "lib" || part == "main" {
            continue;
        }
        let Some(layer) = layer_of(&part) else {
            unplaced.push(part);
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for named in parts_named(code) {
                if named == part || named.is_empty() {
                    continue;
                }
                // Items at the crate root (`crate::VERSION`) are constants of the whole crate.
                if named.chars().next().is_some_and(|c| c.is_ascii_uppercase()) {
                    continue;
                }
                let ok = layer_of(&named).is_some_and(|l| l > layer);
                if !ok {
                    let rel = file.strip_prefix(src()).unwrap().display().to_string();
                    upward
                        .entry(format!("{part} -> {named}"))
                        .or_default()
                        .push(format!("src/{rel}:{}", n + 1));
                }
            }
        }
    }
    unplaced.sort();
    unplaced.dedup();
    assert!(
        unplaced.is_empty(),
        "parts of src/ missing from LAYERS: {unplaced:?}"
    );
    assert!(
        upward.is_empty(),
        "imports that point up or sideways: {upward:#?}"
    );
}

/// Every file's first line says what it is for, alone: one complete sentence of at most 100
/// characters, with the details (if any) in their own paragraph after it.
#[test]
fn every_source_file_opens_with_one_line_saying_what_it_is_for() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut wrong = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let mut lines = text.lines();
        let first = lines.next().unwrap_or("");
        let second = lines.next().unwrap_or("");
        let head = first.strip_prefix("//! ").unwrap_or("");
        // The line after it is code, blank, or a blank `//!` before the details.
        let alone =
            !second.starts_with("//!") || second.trim_start_matches("//!").trim().is_empty();
        let one_line =
            !head.trim().is_empty() && head.ends_with('.') && first.chars().count() <= 100 && alone;
        if !one_line {
            wrong.push(format!("{}: {first:?} / {second:?}", file.display()));
        }
    }
    assert!(
        wrong.is_empty(),
        "files whose first line is not one sentence saying what they are for:\n{}",
        wrong.join("\n")
    );
}

/// No file passes what one reads in a sitting, the console's scripts included: split it by what
/// its parts are for.
#[test]
fn no_source_file_passes_400_lines() {
    const MAX_LINES: usize = 400;
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    for entry in std::fs::read_dir(web).unwrap() {
        let path = entry.unwrap().path();
        if path
            .extension()
            .is_some_and(|e| e == "js" || e == "css" || e == "html")
        {
            files.push(path);
        }
    }
    let long: Vec<String> = files
        .iter()
        .filter_map(|file| {
            let n = std::fs::read_to_string(file).unwrap().lines().count();
            (n > MAX_LINES).then(|| format!("{}: {n} lines", file.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "files over {MAX_LINES} lines:\n{}",
        long.join("\n")
    );
}
