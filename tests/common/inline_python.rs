//! Runs a Python program written inline in a test (it starts with
//! `from prelude import *`, the prelude of `tests/cpython/prelude.py`) with
//! CPython 3.11, and compares its output with gencoro's trace of the same
//! program. Used as `#[path = "common/inline_python.rs"] mod inline_python;`.

#![allow(dead_code)]

#[path = "../cpython/python3.rs"]
mod python3;

use std::path::Path;
use std::process::Command;

/// Runs `program` with CPython 3.11 and returns its output lines, or `None`
/// if the check is skipped (no CPython 3.11, and neither CI nor
/// `GENCORO_PY_CHECK` set).
#[track_caller]
pub fn cpython(program: &str) -> Option<Vec<String>> {
    let python = python3::available(env!("CARGO_CRATE_NAME"))?;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("cpython");
    let out = Command::new(python)
        .arg("-c")
        .arg(program)
        .env("PYTHONPATH", dir)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "python3 failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect())
}

/// Checks that gencoro's trace is CPython's for the same program.
#[track_caller]
pub fn same_as_cpython(trace: &[String], program: &str) {
    if let Some(expected) = cpython(program) {
        assert_eq!(trace, expected, "gencoro (left) and CPython (right) differ");
    }
}
