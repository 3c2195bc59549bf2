//! `ARCHITECTURE.md` names, for each promise S1–S9, the tests that hold it.
//! This test fails if one of those names is not a test (or loom model) in
//! the file it cites, so the list cannot drift from the code.

use std::path::Path;

/// The `file.rs::name` citations of the S1–S9 section.
fn citations(doc: &str) -> Vec<(String, String)> {
    let section = doc
        .split("## S1–S9")
        .nth(1)
        .expect("ARCHITECTURE.md has an S1–S9 section");
    let mut cited = Vec::new();
    for quoted in section.split('`').skip(1).step_by(2) {
        if let Some((file, name)) = quoted.split_once(".rs::") {
            cited.push((format!("{file}.rs"), name.to_string()));
        }
    }
    cited
}

/// Whether `source` defines a test called `name`: a `fn name()` after a
/// `#[test]` (possibly with other attributes between), or an entry of an
/// `isolated_tests!` block (which makes each `fn` a test).
fn defines_test(source: &str, name: &str) -> bool {
    let needle = format!("fn {name}(");
    let Some(at) = source.find(&needle) else {
        return false;
    };
    let before = &source[..at];
    let last_fn = before.rfind("fn ").unwrap_or(0);
    let attributes = &before[last_fn..];
    attributes.contains("#[test]") || before.contains("isolated_tests! {")
}

#[test]
fn every_test_that_architecture_md_cites_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let cited = citations(&doc);
    assert!(cited.len() > 20, "too few citations found: {cited:?}");
    let missing: Vec<String> = cited
        .iter()
        .filter(|(file, name)| {
            let source = std::fs::read_to_string(root.join(file)).unwrap_or_default();
            !defines_test(&source, name)
        })
        .map(|(file, name)| format!("{file}::{name}"))
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md cites tests that do not exist: {missing:#?}"
    );
}

#[test]
fn a_misspelt_citation_is_caught() {
    let doc = "## S1–S9\n`context/tests/context.rs::a_new_thread_starts_emptyy`";
    let (file, name) = &citations(doc)[0];
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let source = std::fs::read_to_string(root.join(file)).unwrap();
    assert!(!defines_test(&source, name));
    assert!(defines_test(&source, "a_new_thread_starts_empty"));
}
