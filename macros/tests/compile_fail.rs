//! The macros' misuse errors, checked against the macros' own messages and
//! spans only, never against the compiler's wording.
//!
//! Every `tests/compile-fail/*.rs` and `tests/compile-pass/*.rs` becomes a
//! `[[bin]]` of ONE scratch cargo project (in `target/tmp/`) that depends on
//! the `baton` facade by path, and the project is checked once with
//! `cargo check --message-format=json --keep-going --bins --tests` (each bin
//! as a program and as a test harness). The scratch project keeps its own
//! target directory next to it, so the dependencies are built once, by the
//! first run; later runs re-check the bins (and the macros, if they
//! changed) only.
//!
//! A compile-fail case marks each expected error on the line its primary
//! span must start on:
//!
//! ```text
//! #[baton::main(worker_threads = 0)] //~ ERROR `worker_threads` must be at least 1
//! //~^ ERROR another error, on the line above
//! ```
//!
//! The text after `ERROR` must occur in the error's message (nothing after
//! `ERROR`: any error on that line). Each marked error must be reported, and
//! every error reported must be marked, so that a misuse gives the macro's
//! message and no noise around it. A compile-pass case must give no error
//! and no warning.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::Value;

/// An expected error: the line its primary span starts on, and a substring
/// of its message.
#[derive(Debug)]
struct Expected {
    line: u64,
    text: String,
}

/// A diagnostic of one case.
#[derive(Debug)]
struct Diagnostic {
    level: String,
    message: String,
    /// The line of the primary span in the case's own file, if there.
    line: Option<u64>,
    rendered: String,
}

/// Each bin's diagnostics.
type Diagnostics = BTreeMap<String, Vec<Diagnostic>>;

/// One case: a file of `tests/compile-fail/` or `tests/compile-pass/`.
struct Case {
    bin: String,
    path: PathBuf,
    expected: Vec<Expected>,
}

/// The `//~ ERROR` and `//~^ ERROR` marks of a compile-fail case.
fn marks(source: &str) -> Vec<Expected> {
    let mut expected = Vec::new();
    for (index, line) in source.lines().enumerate() {
        let Some((_, mark)) = line.split_once("//~") else {
            continue;
        };
        let up = mark.chars().take_while(|&c| c == '^').count();
        let Some(text) = mark[up..].trim_start().strip_prefix("ERROR") else {
            panic!("bad mark on line {}: {line}", index + 1);
        };
        expected.push(Expected {
            line: (index + 1 - up) as u64,
            text: text.trim().to_string(),
        });
    }
    expected
}

/// The cases of `dir` (`compile-fail` or `compile-pass`), sorted.
fn cases(dir: &str) -> Vec<Case> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(dir);
    let mut cases: Vec<Case> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "rs"))
        .map(|path| {
            let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
            let source = std::fs::read_to_string(&path).unwrap();
            let expected = marks(&source);
            let kind = dir.trim_start_matches("compile-");
            Case {
                bin: format!("{kind}-{stem}"),
                path,
                expected,
            }
        })
        .collect();
    cases.sort_by(|a, b| a.bin.cmp(&b.bin));
    assert!(!cases.is_empty(), "no cases in {}", root.display());
    cases
}

/// Writes the scratch project, one `[[bin]]` per case (pointing at the case
/// file itself), and returns its directory.
fn scratch_project(cases: &[&Case]) -> PathBuf {
    let macros = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = macros.parent().unwrap();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("baton-macros-ui");
    std::fs::create_dir_all(&dir).unwrap();
    let mut manifest = format!(
        "[package]\n\
         name = \"baton-macros-ui\"\n\
         version = \"0.0.0\"\n\
         edition = \"2024\"\n\
         publish = false\n\
         autobins = false\n\
         \n\
         # Not a member of the baton workspace around it.\n\
         [workspace]\n\
         \n\
         # `baton` alone: the expansions must not need baton-executor.\n\
         [dependencies]\n\
         baton = {{ path = {:?}, default-features = false, features = [\"macros\"] }}\n",
        workspace.display().to_string()
    );
    for case in cases {
        write!(
            manifest,
            "\n[[bin]]\nname = {:?}\npath = {:?}\n",
            case.bin,
            case.path.display().to_string()
        )
        .unwrap();
    }
    write_if_changed(&dir.join("Cargo.toml"), &manifest);
    // The workspace's versions of the dependencies: nothing to resolve anew.
    if !dir.join("Cargo.lock").exists() {
        std::fs::copy(workspace.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    }
    dir
}

/// Leaves the file (and its mtime) alone when its content is the same.
fn write_if_changed(path: &Path, content: &str) {
    if std::fs::read_to_string(path).ok().as_deref() != Some(content) {
        std::fs::write(path, content).unwrap();
    }
}

/// Checks the scratch project and returns, for each bin, how many of its
/// targets (program, test harness) were checked without error, and its
/// diagnostics; and cargo's standard error.
fn check(dir: &Path, cases: &[&Case]) -> (BTreeMap<String, usize>, Diagnostics, String) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let output = Command::new(cargo)
        .current_dir(dir)
        .args([
            "check",
            "--message-format=json",
            "--keep-going",
            "--bins",
            "--tests",
        ])
        .env("CARGO_TARGET_DIR", dir.join("target"))
        // Flags meant for the outer build (`--cfg baton_loom`) would change
        // what the cases see, and rebuild the scratch dependencies each time
        // they change.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .expect("cargo runs");
    let files: BTreeMap<&str, &Path> = cases
        .iter()
        .map(|case| (case.bin.as_str(), case.path.as_path()))
        .collect();
    let mut diagnostics: BTreeMap<String, Vec<Diagnostic>> = BTreeMap::new();
    let mut checked: BTreeMap<String, usize> = BTreeMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(json) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let bin = json["target"]["name"].as_str().unwrap_or_default();
        let Some(file) = files.get(bin) else {
            continue;
        };
        match json["reason"].as_str() {
            Some("compiler-artifact") => *checked.entry(bin.to_string()).or_default() += 1,
            Some("compiler-message") => {
                let message = &json["message"];
                let primary = message["spans"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|span| span["is_primary"].as_bool() == Some(true));
                let line = primary
                    .filter(|span| {
                        let name = span["file_name"].as_str().unwrap_or_default();
                        Path::new(name).file_name() == file.file_name()
                    })
                    .and_then(|span| span["line_start"].as_u64());
                // "aborting due to N previous errors" and the like.
                if primary.is_none() {
                    continue;
                }
                let rendered = message["rendered"].as_str().unwrap_or_default();
                let found = diagnostics.entry(bin.to_string()).or_default();
                // Once, though reported for the program and for the test.
                if found.iter().all(|d| d.rendered != rendered) {
                    found.push(Diagnostic {
                        level: message["level"].as_str().unwrap_or_default().to_string(),
                        message: message["message"].as_str().unwrap_or_default().to_string(),
                        line,
                        rendered: rendered.to_string(),
                    });
                }
            }
            _ => {}
        }
    }
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (checked, diagnostics, stderr)
}

#[test]
fn misuse_gives_the_macros_own_errors() {
    let fail = cases("compile-fail");
    let pass = cases("compile-pass");
    let all: Vec<&Case> = fail.iter().chain(&pass).collect();
    let dir = scratch_project(&all);
    let started = Instant::now();
    let (checked, diagnostics, stderr) = check(&dir, &all);
    eprintln!(
        "checked {} cases in {:.1?} (scratch project: {})",
        all.len(),
        started.elapsed(),
        dir.display()
    );

    let none = Vec::new();
    let mut problems = Vec::new();
    for case in &fail {
        let name = case.path.display();
        assert!(!case.expected.is_empty(), "{name}: no `//~ ERROR` mark");
        let mut own = Vec::new();
        let found = diagnostics.get(&case.bin).unwrap_or(&none);
        let errors: Vec<&Diagnostic> = found.iter().filter(|d| d.level == "error").collect();
        for expected in &case.expected {
            let hit = errors
                .iter()
                .any(|e| e.line == Some(expected.line) && e.message.contains(&expected.text));
            if !hit {
                own.push(format!(
                    "{name}:{}: expected an error containing {:?}",
                    expected.line, expected.text
                ));
            }
        }
        for error in &errors {
            let marked = case
                .expected
                .iter()
                .any(|x| error.line == Some(x.line) && error.message.contains(&x.text));
            if !marked {
                own.push(format!("{name}: an unexpected error:\n{}", error.rendered));
            }
        }
        if !own.is_empty() {
            let all: Vec<&str> = errors.iter().map(|e| e.rendered.as_str()).collect();
            own.push(format!("{name}: all its errors:\n{}", all.join("")));
            problems.append(&mut own);
        }
    }
    for case in &pass {
        // Both targets: the program and the test harness.
        if checked.get(&case.bin) != Some(&2) {
            problems.push(format!(
                "{}: not checked (as a program and as a test); cargo said:\n{stderr}",
                case.path.display()
            ));
        }
        for diagnostic in diagnostics.get(&case.bin).unwrap_or(&none) {
            problems.push(format!(
                "{}: expected no diagnostic, got:\n{}",
                case.path.display(),
                diagnostic.rendered
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn marks_are_read_with_their_lines() {
    let marks = marks("a //~ ERROR one\n\n//~^ ERROR two\nb //~ ERROR\n");
    let got: Vec<(u64, &str)> = marks.iter().map(|m| (m.line, m.text.as_str())).collect();
    assert_eq!(got, [(1, "one"), (2, "two"), (4, "")]);
}
