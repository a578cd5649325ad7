//! Running one test of a test binary in a child process, for scenarios
//! that may abort the process (a panic in a destructor during an unwind, a
//! stack overflow): the parent re-runs its own binary for that one test,
//! with an environment variable naming it, and checks how the child ended.
//! Shared by `tests/robustness.rs` and `tests/attack.rs`.

#![allow(dead_code)]

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Whether this process is the child running scenario `name`, that is, the
/// environment variable `env` says `name`.
pub fn is_child(env: &str, name: &str) -> bool {
    std::env::var(env).is_ok_and(|v| v == name)
}

/// How a child process ended.
pub struct ChildRun {
    pub success: bool,
    pub status: String,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    pub timed_out: bool,
}

impl ChildRun {
    /// Whether the child printed `line` (at the end of a line: the test
    /// harness prints `test <name> ... ` in front of a test's first line).
    pub fn printed(&self, line: &str) -> bool {
        self.stdout.lines().any(|l| l.trim_end().ends_with(line))
    }

    pub fn describe(&self) -> String {
        let tail: Vec<&str> = self.stderr.lines().rev().take(12).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!(
            "child {} after {:.1} s{}\n--- stdout ---\n{}\n--- stderr (last lines) ---\n{}",
            self.status,
            self.elapsed.as_secs_f64(),
            if self.timed_out { " (killed: time limit)" } else { "" },
            self.stdout.trim_end(),
            tail.join("\n")
        )
    }
}

/// Re-runs this test binary for test `name` only, as a child process with
/// the environment variable `env` set to `name`, and kills it after `limit`.
pub fn run_child(env: &str, name: &str, limit: Duration) -> ChildRun {
    let started = Instant::now();
    let mut child = Command::new(std::env::current_exe().expect("the test binary"))
        .args([name, "--exact", "--nocapture", "--test-threads=1", "--include-ignored"])
        .env(env, name)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the test binary runs as a child");
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if started.elapsed() > limit {
            timed_out = true;
            let _ = child.kill();
            break child.wait().expect("wait for the killed child");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = started.elapsed();
    ChildRun {
        success: status.success() && !timed_out,
        status: format!("{status}"),
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
        elapsed,
        timed_out,
    }
}
