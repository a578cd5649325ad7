//! The seed examples print what CPython 3.11 prints.
//!
//! `tests/seeds/<name>.py` are the Python programs from the seed notes, and
//! `tests/seeds/<name>[-<mode>].expected` is what CPython 3.11 printed for
//! them, run on virtual time by `tests/seeds/virtual_clock.py` (CPython's own
//! event loop with a selector that advances a virtual clock instead of
//! blocking). Each example runs on gencoro's virtual clock and must print
//! exactly the same lines, the final `elapsed: <s>s` included.
//!
//! When `python3` 3.11 is installed, one more test reruns the programs and
//! checks that the recorded files are still what CPython prints.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// (example, mode) pairs: every program of the seed examples table.
const CASES: &[(&str, Option<&str>)] = &[
    ("crawl", Some("sequential")),
    ("crawl", Some("tasks")),
    ("crawl", Some("gather")),
    ("workers_cancel", None),
    ("await_flow", Some("sequential")),
    ("await_flow", Some("tasks")),
    ("welcome", Some("tasks")),
    ("welcome", Some("gather")),
    ("done_callbacks", None),
    ("nested_run", None),
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

/// Builds the examples once with the test's own profile and returns the
/// binary's path.
fn example(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let profile_dir = BUILT.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test binary has a path");
        let profile_dir =
            exe.parent().and_then(Path::parent).expect("target/<profile>/deps").to_owned();
        let profile = match profile_dir.file_name().and_then(OsStr::to_str) {
            Some("debug") => "dev".to_owned(),
            Some(other) => other.to_owned(),
            None => panic!("unexpected profile directory {profile_dir:?}"),
        };
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .args(["build", "--quiet", "--profile", &profile, "--manifest-path"])
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
            .arg("--target-dir")
            .arg(profile_dir.parent().expect("target/"));
        let mut names: Vec<&str> = CASES.iter().map(|(e, _)| *e).collect();
        names.dedup();
        for name in names {
            build.args(["--example", name]);
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "building the examples failed: {status}");
        profile_dir
    });
    profile_dir.join("examples").join(name)
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
    for &(name, mode) in CASES {
        let expected_file = expected_path(name, mode);
        let expected = std::fs::read_to_string(&expected_file)
            .unwrap_or_else(|e| panic!("reading {expected_file:?}: {e}"));
        let mut run = Command::new(example(name));
        if let Some(mode) = mode {
            run.args(["--mode", mode]);
        }
        let out = run.arg("--virtual").output().expect("the example runs");
        let stdout = String::from_utf8(out.stdout).expect("utf-8 output");
        assert!(
            out.status.success(),
            "{name} {mode:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_elapsed_last(&stdout, name);
        assert_eq!(stdout, expected, "{name} {mode:?}: output differs from CPython's");
    }
}

#[test]
fn recorded_outputs_are_what_cpython_3_11_prints() {
    let version = Command::new("python3").arg("--version").output();
    let Ok(version) = version else {
        eprintln!("python3 is not installed: the recorded outputs are not re-checked");
        return;
    };
    let version = String::from_utf8_lossy(&version.stdout).into_owned();
    if !version.starts_with("Python 3.11") {
        eprintln!("{version:?} is not CPython 3.11: the recorded outputs are not re-checked");
        return;
    }
    for &(name, mode) in CASES {
        let mut run = Command::new("python3");
        run.arg(seeds_dir().join("virtual_clock.py")).arg(seeds_dir().join(format!("{name}.py")));
        if let Some(mode) = mode {
            run.arg(mode);
        }
        let out = run.output().expect("python3 runs");
        assert!(out.status.success(), "{name}.py failed: {}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8(out.stdout).expect("utf-8 output");
        let expected = std::fs::read_to_string(expected_path(name, mode)).expect("recorded output");
        assert_eq!(stdout, expected, "{name} {mode:?}");
    }
}
