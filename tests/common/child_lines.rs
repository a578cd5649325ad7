//! A child process whose stdout lines reach the test as they are printed,
//! for tests that talk to a child while it runs (send it a signal once it
//! says it is ready, say). Included with `#[path]` by the signal tests.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running child, its stdout read line by line on a thread of its own.
pub struct ChildLines {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    /// Every stdout line read so far.
    pub seen: Vec<String>,
    started: Instant,
    /// How long the child's whole life may take.
    limit: Duration,
}

impl ChildLines {
    /// Starts `command` with no stdin, stdout and stderr piped and no
    /// backtraces; the child has `limit` to end.
    pub fn spawn(mut command: Command, limit: Duration) -> ChildLines {
        let mut child = command
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the child starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        ChildLines { child, lines, seen: Vec::new(), started: Instant::now(), limit }
    }

    /// Reads lines until one satisfies `done`. Past the limit the child is
    /// killed and the test fails, showing what it printed; `what` names
    /// the line awaited.
    pub fn wait_until(&mut self, what: &str, done: impl Fn(&str) -> bool) {
        loop {
            let left = self.limit.saturating_sub(self.started.elapsed());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = done(&line);
                    self.seen.push(line);
                    if found {
                        return;
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    panic!("no {what:?} line from the child; it printed {:#?}", self.seen);
                }
            }
        }
    }

    /// Waits for the child to end (killing it and failing the test past
    /// the limit); its status and stderr. Its last lines go to `seen`,
    /// read for at most `drain` after it ended.
    pub fn finish(&mut self, drain: Duration) -> (ExitStatus, String) {
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            if self.started.elapsed() > self.limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.seen.push(line);
                }
                panic!(
                    "the child did not end within {:?}; it printed {:#?}",
                    self.limit, self.seen
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        while let Ok(line) = self.lines.recv_timeout(drain) {
            self.seen.push(line);
        }
        let mut stderr = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut err, &mut stderr);
        }
        (status, stderr)
    }
}

/// Puts SIGINT and SIGTERM back to their default actions, first thing in a
/// child, except `keep` (a signal its test starts it with ignored): it must
/// run as a program started with them at their defaults, whatever the test
/// runner inherited (a background job of a non-interactive shell starts
/// with SIGINT ignored, and gencoro, like CPython, leaves an ignored SIGINT
/// alone).
pub fn reset_signal_dispositions(keep: Option<libc::c_int>) {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        if Some(signal) != keep {
            // SAFETY: `SIG_DFL` installs no handler; the child calls this
            // before it starts any loop or thread.
            unsafe { libc::signal(signal, libc::SIG_DFL) };
        }
    }
}
