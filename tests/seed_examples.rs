//! The seed examples print what CPython 3.11 prints.
//!
//! `tests/seeds/<name>.py` are the Python programs from the seed notes, and
//! `tests/seeds/<name>[-<mode>].expected` is what CPython 3.11 printed for
//! them. The event-loop programs ran on virtual time, through
//! `tests/seeds/virtual_clock.py` (CPython's own event loop with a selector
//! that advances a virtual clock instead of blocking); each example runs on
//! gencoro's virtual clock and must print exactly the same lines, the final
//! `elapsed: <s>s` included. `generators.py` is the Python twin of the
//! `generators` example (the program its doc comment quotes) and runs as it
//! is.
//!
//! One more test reruns the programs with `python3` and checks that the
//! recorded files are still what CPython 3.11 prints. Without CPython 3.11
//! it is skipped, and says so, unless `CI` or `GENCORO_PY_CHECK=1` is set:
//! then it fails (`tests/cpython/python3.rs`).

#[path = "cpython/python3.rs"]
mod python3;

#[path = "common/examples.rs"]
mod examples;

use std::path::{Path, PathBuf};
use std::process::Command;

/// How a seed example runs.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// On the event loop: the example takes `--virtual` and ends with an
    /// `elapsed:` line; the Python program runs under `virtual_clock.py`.
    Loop,
    /// Plain generators: no loop, no clock, no options.
    Plain,
}

/// (example, mode, kind): every program of the seed examples table.
const CASES: &[(&str, Option<&str>, Kind)] = &[
    ("crawl", Some("sequential"), Kind::Loop),
    ("crawl", Some("tasks"), Kind::Loop),
    ("crawl", Some("gather"), Kind::Loop),
    ("workers_cancel", None, Kind::Loop),
    ("await_flow", Some("sequential"), Kind::Loop),
    ("await_flow", Some("tasks"), Kind::Loop),
    ("welcome", Some("tasks"), Kind::Loop),
    ("welcome", Some("gather"), Kind::Loop),
    ("done_callbacks", None, Kind::Loop),
    ("hello_loop", None, Kind::Loop),
    ("start_end", None, Kind::Loop),
    ("cancel_all", None, Kind::Loop),
    ("nested_run", None, Kind::Loop),
    ("producer_consumer", Some("000"), Kind::Loop),
    ("producer_consumer", Some("001"), Kind::Loop),
    ("producer_consumer", Some("003"), Kind::Loop),
    ("producer_consumer", Some("000-maxsize1"), Kind::Loop),
    ("producer_consumer", Some("003-seed7"), Kind::Loop),
    ("producer_consumer", Some("001-seed3-maxsize2"), Kind::Loop),
    ("generators", None, Kind::Plain),
];

fn seeds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("seeds")
}

fn expected_path(example: &str, mode: Option<&str>) -> PathBuf {
    let file = match mode {
        Some(mode) => format!("{example}-{mode}.expected"),
        None => format!("{example}.expected"),
    };
    seeds_dir().join(file)
}

/// The binary of example `name`, built with the others the cases name.
fn example(name: &str) -> PathBuf {
    let mut names: Vec<&str> = CASES.iter().map(|(e, _, _)| *e).collect();
    names.dedup();
    examples::example(&names, &[], name)
}

/// Checks the last line is `elapsed: <seconds with 3 decimals>s`.
fn assert_elapsed_last(output: &str, what: &str) {
    let last = output.lines().last().unwrap_or_default();
    let seconds = last.strip_prefix("elapsed: ").and_then(|s| s.strip_suffix('s'));
    let ok = seconds.is_some_and(|s| {
        s.split_once('.').is_some_and(|(int, frac)| {
            !int.is_empty() && int.bytes().all(|b| b.is_ascii_digit()) && frac.len() == 3
        })
    });
    assert!(ok, "{what}: the last line is not `elapsed: <s.sss>s`: {last:?}");
}

#[test]
fn seed_examples_print_what_cpython_prints() {
    for &(name, mode, kind) in CASES {
        let expected_file = expected_path(name, mode);
        let expected = std::fs::read_to_string(&expected_file)
            .unwrap_or_else(|e| panic!("reading {expected_file:?}: {e}"));
        let mut run = Command::new(example(name));
        if let Some(mode) = mode {
            run.args(["--mode", mode]);
        }
        if kind == Kind::Loop {
            run.arg("--virtual");
        }
        let out = run.output().expect("the example runs");
        let stdout = String::from_utf8(out.stdout).expect("utf-8 output");
        assert!(
            out.status.success(),
            "{name} {mode:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if kind == Kind::Loop {
            assert_elapsed_last(&stdout, name);
        }
        assert_eq!(stdout, expected, "{name} {mode:?}: output differs from CPython's");
    }
}

#[test]
fn recorded_outputs_are_what_cpython_3_11_prints() {
    let Some(python) = python3::available("recorded_outputs_are_what_cpython_3_11_prints") else {
        return;
    };
    for &(name, mode, kind) in CASES {
        let mut run = Command::new(&python);
        if kind == Kind::Loop {
            run.arg(seeds_dir().join("virtual_clock.py"));
        }
        run.arg(seeds_dir().join(format!("{name}.py")));
        if let Some(mode) = mode {
            run.arg(mode);
        }
        let out = run.env("PYTHONDONTWRITEBYTECODE", "1").output().expect("python3 runs");
        assert!(out.status.success(), "{name}.py failed: {}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8(out.stdout).expect("utf-8 output");
        let expected = std::fs::read_to_string(expected_path(name, mode)).expect("recorded output");
        assert_eq!(stdout, expected, "{name} {mode:?}");
    }
}

/// The `generators` example quotes its Python twin in its doc comment; the
/// quote must be `tests/seeds/generators.py`, the program re-checked above.
#[test]
fn generators_example_quotes_its_seed_program() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join("generators.rs");
    let source = std::fs::read_to_string(&example).expect("examples/generators.rs");
    let doc: Vec<&str> = source
        .lines()
        .map_while(|l| l.strip_prefix("//!"))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect();
    let start = doc.iter().position(|l| *l == "```python").expect("a ```python block") + 1;
    let len = doc[start..].iter().position(|l| *l == "```").expect("the block's end");
    let quoted: String = doc[start..start + len].iter().map(|l| format!("{l}\n")).collect();
    let seed = std::fs::read_to_string(seeds_dir().join("generators.py")).expect("generators.py");
    assert_eq!(quoted, seed, "examples/generators.rs quotes a different program");
}
