//! The Python programs behind the Rust tests print what those tests assert.
//!
//! Every scenario of `tests/generator_semantics.rs` and `tests/runtime_*.rs`
//! was written in Python first and run with CPython 3.11. Each program is a
//! file, `tests/cpython/<test file>/<test name>.py`, and the comment above
//! the Rust test names it on a line of its own:
//!
//! ```text
//! // Python: tests/cpython/runtime_scheduling/fifo_order_of_new_tasks.py
//! ```
//!
//! The expected output is written once, in the Rust test's own assertion.
//! This file reads it from the test's source and runs the program with
//! `python3`, whose standard output must be exactly that expectation:
//!
//! * `assert_trace(&log, "<text>")` or
//!   `assert_eq!(result.as_deref(), Ok("<text>"))`: the one line `<text>`
//!   (the generator programs `print(trace)`, Python's `repr` of a list);
//! * `assert_eq!(trace, ["<line>", ...])` or
//!   `assert_eq!(*log.borrow(), ["<line>", ...])`: one line per element.
//!
//! The test's body must hold exactly one such assertion. Where the Rust test
//! deliberately differs from CPython, a sibling `<test name>.expected` holds
//! what CPython prints, the program is compared with that file instead, and
//! its opening comment says why.
//!
//! The runtime programs start with `from prelude import *`
//! (`tests/cpython/prelude.py`, a virtual clock for asyncio). Each program
//! runs in a process of its own, forked by `tests/cpython/run_programs.py`
//! from one that has already imported asyncio, which saves starting CPython
//! 131 times. The checks need CPython 3.11; `tests/cpython/python3.rs` says
//! when a missing `python3` is skipped and when it fails.

#[path = "cpython/python3.rs"]
mod python3;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The first arguments of an `assert_eq!` that compares a test's trace.
const TRACE_EXPRESSIONS: &[&str] = &["trace", "*log.borrow()", "result.as_deref()"];

fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

fn programs_dir() -> PathBuf {
    tests_dir().join("cpython")
}

/// The comment line that links a Rust test to its program.
fn reference_line(stem: &str, name: &str) -> String {
    format!("// Python: tests/cpython/{stem}/{name}.py")
}

/// Where a program's expected output comes from.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Source {
    /// The Rust test's assertion.
    RustTest,
    /// A recorded `.expected` file: the Rust test deliberately differs.
    Recorded,
}

/// A program and what it must print.
struct Program {
    /// `<test file>/<test name>`.
    id: String,
    path: PathBuf,
    expected: String,
    source: Source,
}

/// Parses the Rust string literal at the start of `s` (plain or raw);
/// returns its value and the text after it.
fn string_literal(s: &str) -> Option<(String, &str)> {
    if let Some(raw) = s.strip_prefix('r') {
        let hashes = raw.len() - raw.trim_start_matches('#').len();
        let body = raw[hashes..].strip_prefix('"')?;
        let end = format!("\"{}", "#".repeat(hashes));
        let at = body.find(&end)?;
        return Some((body[..at].to_owned(), &body[at + end.len()..]));
    }
    let body = s.strip_prefix('"')?;
    let mut value = String::new();
    let mut i = 0;
    while let Some(c) = body[i..].chars().next() {
        i += c.len_utf8();
        match c {
            '"' => return Some((value, &body[i..])),
            '\\' => {
                let e = body[i..].chars().next()?;
                i += e.len_utf8();
                match e {
                    'n' => value.push('\n'),
                    't' => value.push('\t'),
                    'r' => value.push('\r'),
                    '0' => value.push('\0'),
                    '\\' | '"' | '\'' => value.push(e),
                    'u' => {
                        let hex = body[i..].strip_prefix('{')?;
                        let close = hex.find('}')?;
                        value.push(char::from_u32(u32::from_str_radix(&hex[..close], 16).ok()?)?);
                        i += close + 2;
                    }
                    // A line continuation: the newline and the next line's
                    // leading whitespace are not part of the string.
                    '\n' => i = body.len() - body[i..].trim_start().len(),
                    _ => return None,
                }
            }
            c => value.push(c),
        }
    }
    None
}

/// The value compared with a trace: `"<text>"`, `Ok("<text>")` or an array
/// of string literals, as output lines.
fn expected_lines(s: &str) -> Result<Vec<String>, String> {
    let s = s.trim_start();
    let unreadable = |at: &str| format!("not a string literal: {:.60}", at.trim_start());
    if let Some(mut rest) = s.strip_prefix('[') {
        let mut lines = Vec::new();
        loop {
            rest = rest.trim_start();
            if rest.starts_with(']') {
                return Ok(lines);
            }
            let (line, after) = string_literal(rest).ok_or_else(|| unreadable(rest))?;
            lines.push(line);
            rest = after.trim_start();
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
    }
    let s = s.strip_prefix("Ok(").map_or(s, str::trim_start);
    let (text, _) = string_literal(s).ok_or_else(|| unreadable(s))?;
    Ok(vec![text])
}

/// The output a test body asserts: the lines of its one trace assertion.
fn asserted_lines(body: &str) -> Result<Vec<String>, String> {
    let mut found = Vec::new();
    for (at, call) in body.match_indices("assert_trace(") {
        let args = &body[at + call.len()..];
        let Some((_log, text)) = args.split_once(',') else { continue };
        found.push(expected_lines(text)?);
    }
    for (at, call) in body.match_indices("assert_eq!(") {
        let args = &body[at + call.len()..];
        let Some((left, right)) = args.split_once(',') else { continue };
        if TRACE_EXPRESSIONS.contains(&left.trim()) {
            found.push(expected_lines(right)?);
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err("no trace assertion (`assert_trace` or `assert_eq!(trace, ...)`)".to_owned()),
        n => Err(format!("{n} trace assertions; exactly one is compared with the program")),
    }
}

/// Output lines as a program prints them.
fn as_output(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// Finds `#[test] fn <name>()` in `source`, checks that the comment above it
/// names `reference`, and returns the function, up to its closing brace.
fn test_body(source: &str, name: &str, reference: &str) -> Result<String, String> {
    let lines: Vec<&str> = source.lines().collect();
    let header = format!("fn {name}() {{");
    let at = lines
        .iter()
        .position(|l| l.trim_end() == header)
        .ok_or_else(|| format!("no `{header}`"))?;
    let attributes = lines[..at].iter().rev().take_while(|l| l.starts_with("#[")).count();
    if !lines[at - attributes..at].contains(&"#[test]") {
        return Err(format!("`fn {name}` is not a #[test]"));
    }
    let mut comment = lines[..at - attributes].iter().rev().take_while(|l| l.starts_with("//"));
    if !comment.any(|l| *l == reference) {
        return Err(format!("the comment above `fn {name}` lacks the line `{reference}`"));
    }
    let end = lines[at..]
        .iter()
        .position(|l| *l == "}")
        .ok_or_else(|| format!("`fn {name}` has no closing brace"))?;
    Ok(lines[at..=at + end].join("\n"))
}

fn read(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()));
    let mut paths: Vec<PathBuf> = entries.map(|e| e.expect("a directory entry").path()).collect();
    paths.sort();
    paths
}

fn file_stem(path: &Path) -> String {
    path.file_stem().and_then(|s| s.to_str()).expect("a UTF-8 file name").to_owned()
}

/// Every program under `tests/cpython/<test file>/`, linked to its Rust
/// test, with the output it must print. Panics listing every broken link:
/// a program without its test or reference line, a reference line without
/// its program, a test whose assertion cannot be read, or a Python program
/// still quoted in a comment.
fn programs() -> Vec<Program> {
    let mut programs = Vec::new();
    let mut problems = Vec::new();
    for dir in sorted_entries(&programs_dir()).into_iter().filter(|p| p.is_dir()) {
        let stem = file_stem(&dir);
        let source = match read(&tests_dir().join(format!("{stem}.rs"))) {
            Ok(source) => source,
            Err(e) => {
                problems.push(format!("tests/cpython/{stem}/: {e}"));
                continue;
            }
        };
        for path in sorted_entries(&dir) {
            let name = file_stem(&path);
            let id = format!("{stem}/{name}");
            let extension = path.extension().and_then(|e| e.to_str());
            if extension == Some("expected") {
                if !path.with_extension("py").exists() {
                    problems.push(format!("{id}.expected: no {name}.py beside it"));
                }
                continue;
            }
            if extension != Some("py") {
                problems.push(format!("{id}: only .py and .expected files belong here"));
                continue;
            }
            let body = match test_body(&source, &name, &reference_line(&stem, &name)) {
                Ok(body) => body,
                Err(e) => {
                    problems.push(format!("{id}.py: in tests/{stem}.rs, {e}"));
                    continue;
                }
            };
            let recorded = path.with_extension("expected");
            let expected = if recorded.exists() {
                read(&recorded).map(|text| (text, Source::Recorded))
            } else {
                asserted_lines(&body).map(|lines| (as_output(&lines), Source::RustTest))
            };
            match expected {
                Ok((expected, source)) => programs.push(Program { id, path, expected, source }),
                Err(e) => problems.push(format!("{id}.py: `fn {name}`: {e}")),
            }
        }
    }
    for path in sorted_entries(&tests_dir()) {
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let file = path.file_name().and_then(|f| f.to_str()).expect("a UTF-8 name").to_owned();
        let source = read(&path).expect("a test file is readable");
        let lines: Vec<&str> = source.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let quoted = line.strip_prefix("//").map(|l| l.trim_start_matches(['/', '!']).trim());
            if line.starts_with("// Python (")
                || quoted == Some("from prelude import *")
                || quoted == Some("```python")
                || quoted.is_some_and(|q| q.starts_with("asyncio.run("))
            {
                problems.push(format!(
                    "tests/{file}:{}: a Python program in a comment; move it to tests/cpython/",
                    i + 1
                ));
            }
            let Some(target) = line.strip_prefix("// Python: tests/cpython/") else { continue };
            if !programs_dir().join(target).exists() {
                problems.push(format!("tests/{file}:{}: no tests/cpython/{target}", i + 1));
                continue;
            }
            let stem = file.strip_suffix(".rs").expect("an .rs file");
            let named = lines[i + 1..]
                .iter()
                .find(|l| !l.starts_with("//") && !l.starts_with("#["))
                .and_then(|l| l.strip_prefix("fn "))
                .and_then(|l| l.split_once('('))
                .map(|(name, _)| format!("{stem}/{name}.py"));
            if named.as_deref() != Some(target) {
                problems.push(format!(
                    "tests/{file}:{}: `{line}` is not above the test it names",
                    i + 1
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
    programs
}

/// Compares what `program` printed with what it must print; returns a
/// description of the mismatch, if any.
fn compare(program: &Program, status: i32, stdout: &str, stderr: &str) -> Option<String> {
    if status != 0 {
        return Some(format!("{}: python3 exited with {status}:\n{stderr}", program.id));
    }
    if stdout == program.expected {
        return None;
    }
    let against = match program.source {
        Source::RustTest => "the Rust test asserts",
        Source::Recorded => "the .expected file holds",
    };
    Some(format!(
        "{}: CPython prints\n{stdout}-- but {against}\n{}--",
        program.id, program.expected
    ))
}

/// Runs `programs` with `python` through `tests/cpython/run_programs.py`
/// (each in a process of its own, forked from one that has imported
/// asyncio) and returns the mismatches.
fn run(python: &Path, programs: &[Program], out_dir: &Path) -> Vec<String> {
    fs::create_dir_all(out_dir).expect("a directory for the outputs");
    let out = Command::new(python)
        .arg(programs_dir().join("run_programs.py"))
        .arg(out_dir)
        .args(programs.iter().map(|p| &p.path))
        .current_dir(programs_dir())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONHASHSEED", "0")
        .output()
        .expect("python3 runs");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "run_programs.py failed ({}):\n{report}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let statuses: Vec<(usize, i32)> = report
        .lines()
        .map(|line| {
            let (n, status) = line.split_once(' ').expect("`<n> <status>`");
            (n.parse().expect("a program number"), status.parse().expect("an exit status"))
        })
        .collect();
    let numbers: Vec<usize> = statuses.iter().map(|&(n, _)| n).collect();
    assert_eq!(numbers, (0..programs.len()).collect::<Vec<_>>(), "every program ran once");
    let output = |n: usize, suffix: &str| {
        let bytes = fs::read(out_dir.join(format!("{n}.{suffix}"))).expect("the program's output");
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let failures = statuses
        .into_iter()
        .filter_map(|(n, status)| {
            compare(&programs[n], status, &output(n, "out"), &output(n, "err"))
        })
        .collect();
    fs::remove_dir_all(out_dir).expect("removing the outputs");
    failures
}

#[test]
fn every_python_program_is_linked_to_its_rust_test() {
    let programs = programs();
    for stem in [
        "generator_semantics",
        "runtime_cancellation",
        "runtime_combinators",
        "runtime_scheduling",
        "runtime_timeout_taskgroup",
        "sync_locks",
        "sync_queue",
    ] {
        let prefix = format!("{stem}/");
        assert!(
            programs.iter().any(|p| p.id.starts_with(&prefix)),
            "no programs for tests/{stem}.rs"
        );
    }
}

#[test]
fn python_programs_print_what_their_rust_tests_assert() {
    let programs = programs();
    let Some(python) = python3::available("python_programs_print_what_their_rust_tests_assert")
    else {
        return;
    };
    // One runner per core, each with its share of the programs.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let share = programs.len().div_ceil(workers).max(1);
    let base =
        std::env::temp_dir().join(format!("gencoro-cpython-programs-{}", std::process::id()));
    let mut failures: Vec<String> = std::thread::scope(|scope| {
        let runners: Vec<_> = programs
            .chunks(share)
            .enumerate()
            .map(|(i, chunk)| {
                let (python, out_dir) = (&python, base.join(i.to_string()));
                scope.spawn(move || run(python, chunk, &out_dir))
            })
            .collect();
        runners.into_iter().flat_map(|r| r.join().expect("a runner thread")).collect()
    });
    let _ = fs::remove_dir(&base);
    failures.sort();
    let recorded = programs.iter().filter(|p| p.source == Source::Recorded).count();
    eprintln!(
        "ran {} Python programs: {} against their Rust test's assertion, {recorded} against a recorded .expected file",
        programs.len(),
        programs.len() - recorded
    );
    assert!(
        failures.is_empty(),
        "{} of {} programs disagree:\n\n{}",
        failures.len(),
        programs.len(),
        failures.join("\n\n")
    );
}

#[test]
fn assertions_are_read_from_the_rust_source() {
    let body = r#"fn t() {
    let trace = go(|| Ok(()));
    assert_eq!(drops.count("x"), 1);
    assert_eq!(
        trace,
        ["0.0 a \"quoted\" \\ back", "0.0 b \u{e9}", "end \
            0.0",]
    );
}"#;
    assert_eq!(
        asserted_lines(body).unwrap(),
        ["0.0 a \"quoted\" \\ back", "0.0 b \u{e9}", "end 0.0"]
    );
    let body = "fn t() {\n    assert_trace(&log, \"['it''s', 'b']\");\n}";
    assert_eq!(asserted_lines(body).unwrap(), ["['it''s', 'b']"]);
    let body = "fn t() {\n    assert_eq!(result.as_deref(), Ok(r#\"['a \"b\"']\"#));\n}";
    assert_eq!(asserted_lines(body).unwrap(), ["['a \"b\"']"]);
    let body = "fn t() {\n    assert_eq!(*log.borrow(), []);\n}";
    assert_eq!(asserted_lines(body).unwrap(), Vec::<String>::new());
    let two = "fn t() {\n    assert_eq!(trace, [\"a\"]);\n    assert_trace(&log, \"[]\");\n}";
    assert!(asserted_lines(two).unwrap_err().contains("2 trace assertions"));
    let none = "fn t() {\n    assert_eq!(lines, [\"a\"]);\n}";
    assert!(asserted_lines(none).unwrap_err().contains("no trace assertion"));
    let computed = "fn t() {\n    assert_eq!(trace, expected());\n}";
    assert!(asserted_lines(computed).unwrap_err().contains("not a string literal"));
}
