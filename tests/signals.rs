//! SIGINT and SIGTERM: tasks waiting for them (`gencoro::net::ctrl_c`,
//! `signal::wait`), and `run`'s Ctrl-C default (`asyncio.Runner`'s).
//!
//! The signals that would end the process if nobody took them go to child
//! processes: the `cancel_all` example, or this binary re-run for one
//! `child_*` test (ignored unless `GENCORO_SIGNALS_CHILD` names it), which
//! prints `child: ...` lines and a ready line; the parent sends SIGINT
//! with `kill -INT` once it read the ready line. The in-process tests raise
//! a signal only while a task of theirs waits for it, one test at a time
//! (`ONE_AT_A_TIME`): then the signal is theirs, never the default action.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::Mutex;
use std::time::Duration;

use gencoro::net::{self, signal::Signal};
use gencoro::runtime::{self, Builder, Clock, Error, ErrorKind};

#[path = "common/child_lines.rs"]
mod child_lines;
use child_lines::ChildLines;

const CHILD_ENV: &str = "GENCORO_SIGNALS_CHILD";

/// A child's whole run may take this long at most.
const LIMIT: Duration = Duration::from_secs(60);

/// In-process tests that raise signals run one at a time: a signal raised
/// by one could otherwise reach another's waiters.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

fn raise(signal: Signal) {
    signal_hook::low_level::raise(signal.number()).expect("raise");
}

// ---------------------------------------------------------------------
// Child processes.

/// A running child whose stdout lines arrive as they are printed.
struct Interactive(ChildLines);

impl Interactive {
    fn spawn(command: Command) -> Interactive {
        Interactive(ChildLines::spawn(command, LIMIT))
    }

    /// Reads lines until one ends with `ready`.
    fn wait_for(&mut self, ready: &str) {
        self.0.wait_until(ready, |line| line.trim_end().ends_with(ready));
    }

    /// Sends SIGINT to the child (with `kill`, so no `unsafe` here).
    fn interrupt(&self) {
        let status = Command::new("kill")
            .args(["-INT", &self.0.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -INT failed: {status}");
    }

    /// Waits for the child to end; its status, every stdout line and its
    /// stderr.
    fn finish(mut self) -> (ExitStatus, Vec<String>, String) {
        let (status, stderr) = self.0.finish(Duration::from_secs(5));
        (status, self.0.seen, stderr)
    }
}

/// This binary, re-run for the child test `name` alone.
fn child_command(name: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("the test binary"));
    command
        .args([name, "--exact", "--nocapture", "--test-threads=1", "--include-ignored"])
        .env(CHILD_ENV, name);
    command
}

/// Whether this process is the child running `name`; a child's SIGINT and
/// SIGTERM are put back to their default actions first.
fn is_child(name: &str) -> bool {
    let child = std::env::var(CHILD_ENV).is_ok_and(|v| v == name);
    if child {
        child_lines::reset_signal_dispositions(None);
    }
    child
}

/// The `child: ` lines a child printed, without the prefix (the harness
/// may print `test <name> ... ` in front of the first).
fn child_lines(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| l.find("child: ").map(|at| l[at + "child: ".len()..].trim_end().to_owned()))
        .collect()
}

/// Prints a line when dropped: a task's destructor ran.
struct Announce(String);

impl Drop for Announce {
    fn drop(&mut self) {
        println!("child: dropped {}", self.0);
    }
}

/// The body of the armed-run children: three workers and the main task,
/// each holding an `Announce`, all waiting when `ready` is printed.
fn armed_run_with_workers(main_after_cancel: fn() -> Result<(), Error>) -> Result<(), Error> {
    Builder::new().cancel_on_ctrl_c(true).run(move || {
        let _main = Announce("main".into());
        for i in 0..3 {
            runtime::spawn(move || {
                let _worker = Announce(format!("worker {i}"));
                runtime::sleep(Duration::from_secs(3600))
            });
        }
        // The workers start when main first waits; the ready line comes
        // after they have.
        runtime::call_later(Duration::from_millis(1), || println!("child: ready"))?;
        match runtime::sleep(Duration::from_secs(3600)) {
            Err(e) if e.is_cancelled() => {
                println!("child: main cancelled");
                main_after_cancel()?;
                Err(e)
            }
            other => other,
        }
    })
}

#[test]
#[ignore = "a child process of run_cancels_its_main_task_on_the_first_sigint_and_every_destructor_runs"]
fn child_armed_run() {
    if !is_child("child_armed_run") {
        return;
    }
    let outcome = armed_run_with_workers(|| Ok(()));
    match outcome {
        Err(e) if e.kind() == ErrorKind::Cancelled => println!("child: run returned cancelled"),
        other => println!("child: run returned {other:?}"),
    }
}

/// `asyncio.run`'s first Ctrl-C: the main task is cancelled where it
/// waits, it unwinds, the pending workers are cancelled at the end of
/// `run` and unwind too (each destructor prints a line), `run` returns the
/// cancellation, and the process ends normally.
#[test]
fn run_cancels_its_main_task_on_the_first_sigint_and_every_destructor_runs() {
    let mut child = Interactive::spawn(child_command("child_armed_run"));
    child.wait_for("child: ready");
    child.interrupt();
    let (status, lines, stderr) = child.finish();
    assert!(status.success(), "{status}: {lines:#?}\n{stderr}");
    let mut got = child_lines(&lines);
    assert_eq!(got.first().map(String::as_str), Some("ready"), "{got:#?}");
    assert_eq!(got.last().map(String::as_str), Some("run returned cancelled"), "{got:#?}");
    got.sort();
    assert_eq!(
        got,
        [
            "dropped main",
            "dropped worker 0",
            "dropped worker 1",
            "dropped worker 2",
            "main cancelled",
            "ready",
            "run returned cancelled",
        ],
        "every destructor ran once"
    );
}

#[test]
#[ignore = "a child process of a_second_sigint_kills_the_process"]
fn child_stubborn_main() {
    if !is_child("child_stubborn_main") {
        return;
    }
    let outcome = armed_run_with_workers(|| {
        // Ignores the cancellation and goes on waiting: only the second
        // SIGINT ends this.
        runtime::current_task()?.expect("in a task").uncancel();
        println!("child: still running");
        runtime::sleep(Duration::from_secs(3600))
    });
    println!("child: run returned {outcome:?}");
}

/// The second SIGINT, after the one that cancelled the main task, is the
/// signal's default: it kills the process, as `asyncio.run`'s second
/// Ctrl-C raises `KeyboardInterrupt`. No destructor runs then.
#[test]
fn a_second_sigint_kills_the_process() {
    let mut child = Interactive::spawn(child_command("child_stubborn_main"));
    child.wait_for("child: ready");
    child.interrupt();
    child.wait_for("child: still running");
    child.interrupt();
    let (status, lines, stderr) = child.finish();
    assert_eq!(status.signal(), Some(Signal::Interrupt.number()), "{status}: {lines:#?}\n{stderr}");
    assert_eq!(child_lines(&lines), ["ready", "main cancelled", "still running"]);
}

#[test]
#[ignore = "a child process of a_sigint_after_run_has_returned_does_the_default_again"]
fn child_after_run() {
    if !is_child("child_after_run") {
        return;
    }
    let v = Builder::new().cancel_on_ctrl_c(true).run(|| Ok(7)).unwrap();
    println!("child: run returned {v}");
    // Nobody waits for SIGINT now: it must not be swallowed.
    std::thread::sleep(Duration::from_secs(30));
    println!("child: SIGINT was swallowed");
}

/// gencoro's hook stays installed after `run` (signal-hook never removes
/// one), but a SIGINT nobody waits for does what it did before: here the
/// default, which ends the process.
#[test]
fn a_sigint_after_run_has_returned_does_the_default_again() {
    let mut child = Interactive::spawn(child_command("child_after_run"));
    child.wait_for("child: run returned 7");
    child.interrupt();
    let (status, lines, stderr) = child.finish();
    assert_eq!(status.signal(), Some(Signal::Interrupt.number()), "{status}: {lines:#?}\n{stderr}");
    assert_eq!(child_lines(&lines), ["run returned 7"]);
}

fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary has a path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev".to_owned(),
        Some(other) => other.to_owned(),
        None => panic!("unexpected profile directory {profile_dir:?}"),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "--profile", &profile, "--example", name, "--manifest-path"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .arg("--target-dir")
        .arg(profile_dir.parent().expect("target/"))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the example failed: {status}");
    profile_dir.join("examples").join(name)
}

/// Seed 004's "how to cancel" with a real Ctrl-C: the example's waiting
/// task stops the loop on SIGINT, every task is cancelled and unwinds
/// (each prints `test1 cleanup`), and the program ends normally.
#[test]
fn cancel_all_with_ctrl_c_cancels_every_task_on_a_real_sigint() {
    let mut command = Command::new(example_binary("cancel_all"));
    command.arg("--ctrl-c");
    let mut child = Interactive::spawn(command);
    child.wait_for("press Ctrl-C to interrupt");
    child.interrupt();
    let (status, lines, stderr) = child.finish();
    assert!(status.success(), "{status}: {lines:#?}\n{stderr}");
    let count = |wanted: &str| lines.iter().filter(|l| *l == wanted).count();
    assert_eq!(count("This is test1"), 100);
    assert_eq!(count("test1 cleanup"), 100, "every task's destructor ran");
    assert_eq!(count("test1 done"), 0);
    let tail: Vec<&str> = lines.iter().rev().take(3).rev().map(String::as_str).collect();
    assert_eq!(tail[..2], ["test1 cleanup", "cancelled: 100"], "{lines:#?}");
    assert!(tail[2].starts_with("elapsed: "), "{lines:#?}");
    let interrupted =
        lines.iter().position(|l| l.starts_with("interrupted: ")).expect("interrupted");
    let first_cleanup = lines.iter().position(|l| l == "test1 cleanup").expect("a cleanup");
    assert!(interrupted < first_cleanup, "the cleanup follows the interruption: {lines:#?}");
}

// ---------------------------------------------------------------------
// In-process: a raised signal always has a waiter of the raising test.

/// `ctrl_c()` returns once the process gets SIGINT; every task waiting for
/// it returns, also on another thread's loop, and a wait cancelled before
/// the signal returns its cancellation, not the signal.
#[test]
fn ctrl_c_returns_in_every_waiting_task_when_the_process_gets_sigint() {
    let _serial = serial();
    let (other_ready_tx, other_ready) = std::sync::mpsc::channel();
    let other_loop = std::thread::spawn(move || {
        runtime::run(move || {
            // Tell the raiser once this task waits: the callback runs after
            // this step.
            runtime::call_soon(move || other_ready_tx.send(()).unwrap())?;
            net::ctrl_c()?;
            Ok("other loop")
        })
    });
    other_ready.recv().unwrap();
    let (first, second, cancelled) = runtime::run(|| {
        let waiters: Vec<_> = (0..2).map(|_| runtime::spawn(net::ctrl_c)).collect();
        let doomed = runtime::spawn(net::ctrl_c);
        runtime::sleep(Duration::ZERO)?; // all three wait now
        doomed.cancel();
        runtime::sleep(Duration::ZERO)?;
        raise(Signal::Interrupt);
        let mut outcomes = waiters.into_iter().map(|w| w.join());
        Ok((outcomes.next().unwrap(), outcomes.next().unwrap(), doomed.join()))
    })
    .unwrap();
    assert!(first.is_ok() && second.is_ok(), "{first:?} {second:?}");
    assert!(cancelled.unwrap_err().is_cancelled());
    assert_eq!(other_loop.join().unwrap().unwrap(), "other loop");
}

/// SIGTERM reaches its own waiters; a SIGINT waiter does not take it.
#[test]
fn a_sigterm_wakes_its_waiters_and_not_those_of_sigint() {
    let _serial = serial();
    let (term, int_still_waiting) = runtime::run(|| {
        let term = runtime::spawn(|| net::signal::wait(Signal::Terminate));
        let int = runtime::spawn(net::ctrl_c);
        runtime::sleep(Duration::ZERO)?;
        raise(Signal::Terminate);
        let term = term.join();
        let still = !int.is_done();
        int.cancel();
        Ok((term, still))
    })
    .unwrap();
    assert!(term.is_ok(), "{term:?}");
    assert!(int_still_waiting);
}

/// A task waiting for Ctrl-C takes the SIGINT: `run`'s default does not
/// cancel the main task then (a program that handles Ctrl-C itself keeps
/// it, as one that sets its own SIGINT handler under `asyncio.run`).
#[test]
fn a_waiting_task_takes_the_sigint_from_runs_default() {
    let _serial = serial();
    let outcome = Builder::new().cancel_on_ctrl_c(true).run(|| {
        let waiter = runtime::spawn(net::ctrl_c);
        runtime::sleep(Duration::ZERO)?;
        raise(Signal::Interrupt);
        waiter.join()?;
        // Main was not cancelled: it can still wait.
        runtime::sleep(Duration::from_millis(1))?;
        Ok("main finished")
    });
    assert_eq!(outcome.unwrap(), "main finished");
}

/// The same `run` on the virtual clock: a task waiting for a signal is
/// outside work that holds no virtual time, so timers fire meanwhile; the
/// loop does not report a deadlock either.
#[test]
fn virtual_time_goes_on_while_a_task_waits_for_a_signal() {
    let _serial = serial();
    let clock = Clock::virtual_time();
    let at = Builder::new()
        .clock(clock.clone())
        .run(|| {
            let waiter = runtime::spawn(net::ctrl_c);
            runtime::sleep(Duration::from_secs(60))?; // at once: nothing holds time
            let at = runtime::time()?;
            raise(Signal::Interrupt);
            waiter.join()?;
            Ok(at)
        })
        .unwrap();
    assert_eq!(at, Duration::from_secs(60));
}

/// Outside a task there is nothing to suspend.
#[test]
fn ctrl_c_outside_a_task_is_refused() {
    assert_eq!(net::ctrl_c().unwrap_err().kind(), ErrorKind::NoRunningLoop);
}

#[test]
#[ignore = "a child process of a_sigint_during_a_busy_step_cancels_main_at_its_next_wait"]
fn child_busy_step() {
    if !is_child("child_busy_step") {
        return;
    }
    let outcome = Builder::new().cancel_on_ctrl_c(true).run(|| {
        // A flag of the test's own beside gencoro's hook, to know when the
        // signal has come.
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        signal_hook::flag::register(Signal::Interrupt.number(), seen.clone()).expect("a hook");
        println!("child: ready");
        // The loop's thread stays in this step until the signal has come
        // and the dispatcher thread has posted its interrupt.
        while !seen.load(std::sync::atomic::Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(50));
        // Queuing takes in what other threads posted first: the interrupt,
        // which cannot run inside this step, and waits for the next
        // iteration's start.
        runtime::call_soon(|| println!("child: callback"))?;
        println!("child: queued");
        match runtime::sleep(Duration::ZERO) {
            Err(e) if e.is_cancelled() => {
                println!("child: main cancelled at its sleep");
                Err(e)
            }
            other => {
                println!("child: sleep returned {other:?}");
                other
            }
        }
    });
    match outcome {
        Err(e) if e.kind() == ErrorKind::Cancelled => println!("child: run returned cancelled"),
        other => println!("child: run returned {other:?}"),
    }
}

/// A SIGINT that comes while the main task's step keeps the loop's thread
/// busy cancels the main task at its next wait, once that step has ended,
/// as CPython's handler (`main_task.cancel()` from inside the running
/// step) does: the callback it queued runs first, then the cancellation
/// reaches it at its `sleep(0)`. The loop took the interrupt in while the
/// step queued the callback, and ran it at the start of the next
/// iteration. CPython 3.11, for the same program (`time.sleep` for the
/// busy step, a `call_soon`, `await asyncio.sleep(0)` in `asyncio.run`),
/// prints `ready`, `queued`, `callback`, `main cancelled at its sleep`, and
/// `asyncio.run` raises `KeyboardInterrupt`.
#[test]
fn a_sigint_during_a_busy_step_cancels_main_at_its_next_wait() {
    let mut child = Interactive::spawn(child_command("child_busy_step"));
    child.wait_for("child: ready");
    child.interrupt();
    let (status, lines, stderr) = child.finish();
    assert!(status.success(), "{status}: {lines:#?}\n{stderr}");
    assert_eq!(
        child_lines(&lines),
        ["ready", "queued", "callback", "main cancelled at its sleep", "run returned cancelled"]
    );
}
