//! Whether the CPython checks run: shared by `tests/seed_examples.rs` and
//! `tests/cpython_programs.rs` (included with `#[path]`).
//!
//! The checks need `python3` to be CPython 3.11. Where it is missing or
//! another version, a check is skipped, and says so on stderr, unless the
//! check is required: with `CI` set (CI sets `CI=true`) or `GENCORO_PY_CHECK`
//! set (to `1`, or any value but `0`), a missing or wrong `python3` fails the
//! test instead. `.ci/run` sets `GENCORO_PY_CHECK=1`.

#![allow(dead_code)]

use std::process::Command;

/// The variable that makes the CPython checks required outside CI.
pub const PY_CHECK_ENV: &str = "GENCORO_PY_CHECK";

/// Whether a missing or wrong `python3` is a failure rather than a skip.
pub fn required() -> bool {
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    let asked = std::env::var_os(PY_CHECK_ENV).is_some_and(|v| !v.is_empty() && v != "0");
    ci || asked
}

/// Why `python3` cannot serve as CPython 3.11, or `None` if it can.
pub fn problem() -> Option<String> {
    let probe =
        "import platform; print(platform.python_implementation(), platform.python_version())";
    match Command::new("python3").args(["-c", probe]).output() {
        Err(e) => Some(format!("python3 cannot be run ({e})")),
        Ok(out) if !out.status.success() => Some(format!(
            "python3 failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Ok(out) => {
            let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if version.starts_with("CPython 3.11.") {
                None
            } else {
                Some(format!("python3 is {version:?}, not CPython 3.11"))
            }
        }
    }
}

/// Returns whether `check` can run. If `python3` is not CPython 3.11, it
/// panics when the check is [`required`], and otherwise reports on stderr
/// that `check` was skipped and why, and returns false.
#[track_caller]
pub fn available(check: &str) -> bool {
    let Some(problem) = problem() else {
        return true;
    };
    assert!(
        !required(),
        "{check}: {problem}; the check is required because CI or {PY_CHECK_ENV} is set"
    );
    eprintln!("{check}: SKIPPED: {problem} (with {PY_CHECK_ENV}=1 this is a failure)");
    false
}
