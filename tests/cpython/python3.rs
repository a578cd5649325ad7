//! Whether the CPython checks run: shared by `tests/seed_examples.rs` and
//! `tests/cpython_programs.rs` (included with `#[path]`).
//!
//! The checks need `python3` to be CPython 3.11. Where it is missing or
//! another version, a check is skipped, and says so on stderr, unless the
//! check is required: with `CI` set (CI sets `CI=true`) or `GENCORO_PY_CHECK`
//! set (to `1`, or any value but `0`), a missing or wrong `python3` fails the
//! test instead. `.ci/run` sets `GENCORO_PY_CHECK=1`.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// The variable that makes the CPython checks required outside CI.
pub const PY_CHECK_ENV: &str = "GENCORO_PY_CHECK";

/// Whether a missing or wrong `python3` is a failure rather than a skip.
pub fn required() -> bool {
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    let asked = std::env::var_os(PY_CHECK_ENV).is_some_and(|v| !v.is_empty() && v != "0");
    ci || asked
}

/// The interpreter `python3` runs (its `sys.executable`, which skips any
/// launcher shim on later runs) if it is CPython 3.11, or why it cannot serve.
pub fn probe() -> Result<PathBuf, String> {
    let probe = "import platform, sys; \
                 print(platform.python_implementation(), platform.python_version()); \
                 print(sys.executable)";
    let out = Command::new("python3")
        .args(["-c", probe])
        .output()
        .map_err(|e| format!("python3 cannot be run ({e})"))?;
    if !out.status.success() {
        return Err(format!(
            "python3 failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut lines = stdout.lines();
    let version = lines.next().unwrap_or_default();
    if !version.starts_with("CPython 3.11.") {
        return Err(format!("python3 is {version:?}, not CPython 3.11"));
    }
    match lines.next() {
        Some(executable) if !executable.is_empty() => Ok(PathBuf::from(executable)),
        _ => Ok(PathBuf::from("python3")),
    }
}

/// The CPython 3.11 interpreter to run `check` with. If `python3` is not
/// CPython 3.11, panics when the check is [`required`], and otherwise
/// reports on stderr that `check` was skipped and why, and returns `None`.
#[track_caller]
pub fn available(check: &str) -> Option<PathBuf> {
    let problem = match probe() {
        Ok(python) => return Some(python),
        Err(problem) => problem,
    };
    assert!(
        !required(),
        "{check}: {problem}; the check is required because CI or {PY_CHECK_ENV} is set"
    );
    eprintln!("{check}: SKIPPED: {problem} (with {PY_CHECK_ENV}=1 this is a failure)");
    None
}
