//! The `panic = "abort"` build. Closing a suspended generator then cannot
//! unwind its stack: `close` skips the destructors still on it and leaks the
//! stack (`#[cfg(panic = "abort")] fn close_suspended` in
//! `src/generator/mod.rs`), while created and finished generators are
//! unaffected. The test suite itself needs unwinding, so this test builds
//! `examples/panic_abort_close.rs` with `panic = "abort"` in a scratch
//! package under the target directory (`CARGO_TARGET_TMPDIR`), with a
//! target directory of its own (the outer `cargo test` holds the lock on
//! the main one), and checks what it prints.
//!
//! The scratch package depends on gencoro by path and copies the repository's
//! `Cargo.lock`, so it builds offline from the registry cache the outer build
//! filled. It has no dev-dependencies: it compiles gencoro and its four
//! small dependencies only, a few seconds from cold (then the build is
//! cached).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The scratch package's manifest: the example as its binary, gencoro by
/// path, `panic = "abort"`, no debug info (faster), its own workspace.
fn manifest(repo: &Path) -> String {
    let example = repo.join("examples").join("panic_abort_close.rs");
    format!(
        r#"[package]
name = "gencoro-panic-abort-check"
version = "0.0.0"
edition = "2024"
publish = false

[[bin]]
name = "panic_abort_close"
path = {example:?}

[dependencies]
gencoro = {{ path = {repo:?} }}

[profile.dev]
panic = "abort"
debug = false

[workspace]
"#
    )
}

/// Whether this run is under AddressSanitizer (`.ci/sanitize` sets
/// `GENCORO_UNDER_ASAN`); if so, says, past libtest's output capture, that
/// `test` is skipped and why.
fn under_asan(test: &str, why: &str) -> bool {
    use std::io::Write;
    let asan = std::env::var_os("GENCORO_UNDER_ASAN").is_some_and(|v| v == "1");
    if asan {
        let _ = writeln!(std::io::stderr(), "test {test}: skipped: under AddressSanitizer: {why}");
    }
    asan
}

fn cargo() -> PathBuf {
    std::env::var_os("CARGO").map_or_else(|| PathBuf::from(env!("CARGO")), PathBuf::from)
}

/// What the example prints when built with `panic = "abort"`. Built with
/// unwinding, the suspended generator, the dropped one and the abandoned
/// task report `drops 1` and no stack still lent out.
const EXPECTED: &[&str] = &[
    "panic strategy: abort",
    // Created and finished generators: as with unwinding.
    "created: close -> Ok(()), drops 1",
    "finished: (Ok(Yielded(1)), Ok(Returned(7))), drops 1",
    "finished: close -> Ok(()), drops 1",
    // Closing a suspended generator succeeds, skips the guard on its stack
    // and leaks the stack; it is closed for good.
    "suspended: Ok(Yielded(1))",
    "suspended: close -> Ok(()), state Closed, drops 0",
    "suspended: resume after close -> Err(Closed)",
    "suspended: stacks still lent out 1",
    // Dropping one is the same.
    "dropped suspended: drops 0, stacks still lent out 1",
    "afterwards: a new generator yields [0, 1, 2]",
    // A task left pending when its loop is dropped is closed: skipped too.
    "task: pending true, run -> Ok(())",
    "task: loop dropped, drops 0",
    // A task cancelled by `run`'s shutdown gets an error from its wait, no
    // unwinding: its guard is dropped.
    "run: Ok(\"main\"), the cancelled task's drops 1",
    "done",
];

/// Closing or dropping a suspended generator under `panic = "abort"` skips
/// its destructors and leaks its stack, without crashing; generators that
/// were never started or have finished are closed as usual.
#[test]
fn closing_a_suspended_generator_under_panic_abort_skips_its_destructors() {
    if under_asan(
        "closing_a_suspended_generator_under_panic_abort_skips_its_destructors",
        "it builds a nested cargo package without the sanitizer flags, so the program \
         it checks would run uninstrumented (the normal test run covers it)",
    ) {
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("panic-abort");
    std::fs::create_dir_all(&dir).expect("create the scratch package");
    std::fs::write(dir.join("Cargo.toml"), manifest(repo)).expect("write its manifest");
    std::fs::copy(repo.join("Cargo.lock"), dir.join("Cargo.lock")).expect("copy Cargo.lock");
    let started = Instant::now();
    let out = Command::new(cargo())
        .args(["run", "--quiet", "--offline", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .expect("cargo runs");
    eprintln!("panic = \"abort\" build and run: {:.1} s", started.elapsed().as_secs_f64());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the example built with panic = \"abort\" failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines, EXPECTED, "stderr:\n{stderr}");
}
