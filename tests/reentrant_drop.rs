//! Property: destructors that call back into the loop never make a panic
//! escape it, and every destructor runs exactly once.
//!
//! A generated program spawns tasks and schedules callbacks, cancels and
//! forgets tasks, and lets time pass, then ends in one of several ways: it
//! returns from `run` (whose shutdown cancels what is pending), or it
//! returns from `run_until_complete` on a loop made with `Builder::build`,
//! maybe runs that loop again for a while, and drops it with tasks still
//! pending. Re-entrant values ([`Reentrant`]) ride along everywhere a user
//! value can: in task captures, task results and callback captures. When
//! dropped, each calls one loop API: `call_soon`, `call_later`, `spawn`,
//! cancelling a task, `add_done_callback`, `current_task`, `all_tasks` or
//! `time`. The values those calls create are counted too.
//!
//! Before the fix this fails with `RefCell already borrowed` (or `already
//! mutably borrowed`) panics escaping `run` or `drop(EventLoop)`: the loop
//! drops user values while it holds a borrow of its timers, ready queue,
//! current task or a task's callback list.
//!
//! Everything runs on the virtual clock, so a case behaves the same every
//! time it runs.

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::Command;
use std::time::Duration;

use gencoro::runtime::{self, Builder, Clock, Task, TaskBuilder};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// The loop API a [`Reentrant`] calls when dropped.
#[derive(Debug, Clone, Copy)]
enum Action {
    /// `call_soon` a callback owning a counted value.
    CallSoon,
    /// `call_later(secs)` a callback owning a counted value.
    CallLater(u8),
    /// Spawn a task owning a counted value that sleeps `secs`.
    Spawn(u8),
    /// Cancel the task at this index of [`TASKS`] (modulo its length).
    Cancel(usize),
    /// Add a done callback owning a counted value to the task at this
    /// index of [`TASKS`].
    AddDoneCallback(usize),
    CurrentTask,
    AllTasks,
    Time,
}

thread_local! {
    /// The case running on this thread: a value left over from an earlier
    /// case (one whose run panicked) is ignored when it is dropped.
    static CASE: Cell<u64> = const { Cell::new(0) };
    /// Set by the panic hook when a panic starts on this thread (a
    /// `GeneratorExit` unwind, which skips the hook, does not set it).
    static PANICKED: Cell<bool> = const { Cell::new(false) };
    /// How often each counted value of this case was dropped, by id.
    static LEDGER: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    /// The tasks the program spawned (`None` once forgotten): the targets
    /// of `Cancel` and `AddDoneCallback`.
    static TASKS: RefCell<Vec<Option<Task<Payload>>>> = const { RefCell::new(Vec::new()) };
}

/// A counted value; when dropped it records the drop, then performs its
/// action, if any.
struct Reentrant {
    case: u64,
    id: usize,
    action: Option<Action>,
}

impl Reentrant {
    fn new(action: Option<Action>) -> Reentrant {
        let id = LEDGER.with(|l| {
            let mut l = l.borrow_mut();
            l.push(0);
            l.len() - 1
        });
        Reentrant { case: CASE.get(), id, action }
    }

    fn plain() -> Reentrant {
        Reentrant::new(None)
    }
}

impl Drop for Reentrant {
    fn drop(&mut self) {
        if self.case != CASE.get() {
            return;
        }
        LEDGER.with(|l| l.borrow_mut()[self.id] += 1);
        // Once a panic is escaping (the case has failed), calling into the
        // loop again from the values it drops on its way out would panic
        // again, which aborts the process.
        if PANICKED.get() {
            return;
        }
        if let Some(action) = self.action {
            perform(action);
        }
    }
}

/// A task's value.
struct Payload(#[allow(dead_code)] Option<Reentrant>);

fn task_at(index: usize) -> Option<Task<Payload>> {
    TASKS.with(|t| {
        let t = t.try_borrow().ok()?;
        if t.is_empty() { None } else { t[index % t.len()].clone() }
    })
}

fn perform(action: Action) {
    match action {
        Action::CallSoon => {
            let value = Reentrant::plain();
            let _ = runtime::call_soon(move || drop(value));
        }
        Action::CallLater(secs) => {
            let value = Reentrant::plain();
            let _ = runtime::call_later(Duration::from_secs(secs.into()), move || drop(value));
        }
        Action::Spawn(secs) => {
            let value = Reentrant::plain();
            let _ = TaskBuilder::new().spawn(move || {
                let _value = value;
                runtime::sleep(Duration::from_secs(secs.into()))?;
                Ok(Payload(None))
            });
        }
        Action::Cancel(index) => {
            if let Some(task) = task_at(index) {
                task.cancel();
            }
        }
        Action::AddDoneCallback(index) => {
            if let Some(task) = task_at(index) {
                let value = Reentrant::plain();
                let _ = task.add_done_callback(move |_| drop(value));
            }
        }
        Action::CurrentTask => {
            let _ = runtime::current_task();
        }
        Action::AllTasks => {
            let _ = runtime::all_tasks();
        }
        Action::Time => {
            let _ = runtime::time();
        }
    }
}

/// One step of the generated program, run by its main task.
#[derive(Debug, Clone)]
enum Op {
    /// Spawn a task that owns `capture`, sleeps `sleep` seconds (1,000 for
    /// 9 or more) and returns `result`; if `swallow`, it ignores a
    /// cancellation of its sleep and returns `result` all the same. If
    /// `keep`, its handle goes into [`TASKS`]; if not, only the loop holds
    /// it.
    Spawn {
        capture: Option<Action>,
        result: Option<Action>,
        sleep: u8,
        swallow: bool,
        keep: bool,
    },
    CallSoon(Action),
    CallLater(u8, Action),
    /// `call_later`, cancelled at once.
    CallLaterCancelled(u8, Action),
    /// A callback that queues (with `call_soon`) a callback owning the
    /// value: if it runs in the loop's last iteration, the inner one is
    /// still queued when the loop stops.
    CallSoonNested(Action),
    AddDoneCallback(usize, Action),
    /// Cancels a task; with `forget`, also drops the program's handle.
    Cancel {
        index: usize,
        forget: bool,
    },
    /// Drops the program's handle of a task, so the loop's queues may hold
    /// its last reference.
    Forget(usize),
    /// Main sleeps this many seconds.
    Sleep(u8),
    /// 120 sleeping tasks cancelled at once, so the loop compacts its
    /// timers in the next iteration.
    CancelledCrowd,
    /// Spawn a task that sleeps `sleep` seconds, swallows a cancellation
    /// and returns a value acting with `action`; let it start, cancel it,
    /// drop its handle, and sleep `then` seconds. The loop's queues then
    /// hold the task's last reference: its cancelled timer, which is
    /// dropped when it reaches the front, falls due or is compacted.
    CancelledSleeper {
        sleep: u8,
        action: Action,
        then: u8,
    },
}

/// How the program ends.
#[derive(Debug, Clone, Copy)]
enum End {
    /// Main returns from `Builder::run`; its shutdown cancels the rest.
    Run,
    /// Main returns from `run_until_complete` on a built loop, which is
    /// dropped with its tasks still pending.
    Drop,
    /// As `Drop`, after another `run_until_complete` that sleeps this long.
    RunAgainThenDrop(u8),
}

/// Task indices are taken modulo the number of tasks, which is small: a
/// small range makes a value act on the very task that owns it often.
const INDICES: std::ops::Range<usize> = 0..4;

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        2 => Just(Action::CallSoon),
        3 => (0..3u8).prop_map(Action::CallLater),
        2 => (0..3u8).prop_map(Action::Spawn),
        3 => INDICES.prop_map(Action::Cancel),
        3 => INDICES.prop_map(Action::AddDoneCallback),
        1 => Just(Action::CurrentTask),
        1 => Just(Action::AllTasks),
        1 => Just(Action::Time),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (
            proptest::option::of(action()),
            proptest::option::of(action()),
            0..12u8,
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(capture, result, sleep, swallow, keep)| Op::Spawn {
                capture,
                result,
                sleep,
                swallow,
                keep
            }),
        2 => action().prop_map(Op::CallSoon),
        2 => action().prop_map(Op::CallSoonNested),
        2 => (0..4u8, action()).prop_map(|(d, a)| Op::CallLater(d, a)),
        1 => (0..4u8, action()).prop_map(|(d, a)| Op::CallLaterCancelled(d, a)),
        3 => (INDICES, action()).prop_map(|(i, a)| Op::AddDoneCallback(i, a)),
        5 => (INDICES, any::<bool>()).prop_map(|(index, forget)| Op::Cancel { index, forget }),
        4 => INDICES.prop_map(Op::Forget),
        4 => (0..4u8).prop_map(Op::Sleep),
        1 => Just(Op::CancelledCrowd),
        4 => (1..6u8, action(), 0..6u8)
            .prop_map(|(sleep, action, then)| Op::CancelledSleeper { sleep, action, then }),
    ]
}

fn end() -> impl Strategy<Value = End> {
    prop_oneof![Just(End::Run), Just(End::Drop), (0..12u8).prop_map(End::RunAgainThenDrop)]
}

fn secs(s: u8) -> Duration {
    Duration::from_secs(s.into())
}

/// Drops the program's handle of the task at `index` (outside the borrow
/// of [`TASKS`], since dropping it may drop the task).
fn forget_task(index: usize) {
    let forgotten = TASKS.with(|t| {
        let mut t = t.borrow_mut();
        let len = t.len();
        if len == 0 { None } else { t[index % len].take() }
    });
    drop(forgotten);
}

/// Main's program.
fn main_task(ops: Vec<Op>) -> Result<(), runtime::Error> {
    for op in ops {
        match op {
            Op::Spawn { capture, result, sleep, swallow, keep } => {
                let capture = capture.map(|a| Reentrant::new(Some(a)));
                let result = result.map(|a| Reentrant::new(Some(a)));
                let delay = if sleep >= 9 { Duration::from_secs(1000) } else { secs(sleep) };
                let task = runtime::spawn(move || {
                    let _capture = capture;
                    match runtime::sleep(delay) {
                        Err(e) if !swallow => Err(e),
                        _ => Ok(Payload(result)),
                    }
                });
                if keep {
                    TASKS.with(|t| t.borrow_mut().push(Some(task)));
                }
            }
            Op::CallSoon(a) => {
                let value = Reentrant::new(Some(a));
                runtime::call_soon(move || drop(value))?;
            }
            Op::CallLater(d, a) => {
                let value = Reentrant::new(Some(a));
                runtime::call_later(secs(d), move || drop(value))?;
            }
            Op::CallSoonNested(a) => {
                let value = Reentrant::new(Some(a));
                runtime::call_soon(move || {
                    let _ = runtime::call_soon(move || drop(value));
                })?;
            }
            Op::CallLaterCancelled(d, a) => {
                let value = Reentrant::new(Some(a));
                runtime::call_later(secs(d), move || drop(value))?.cancel();
            }
            Op::AddDoneCallback(i, a) => {
                if let Some(task) = task_at(i) {
                    let value = Reentrant::new(Some(a));
                    task.add_done_callback(move |_| drop(value))?;
                }
            }
            Op::Cancel { index, forget } => {
                if let Some(task) = task_at(index) {
                    task.cancel();
                }
                if forget {
                    forget_task(index);
                }
            }
            Op::Forget(i) => forget_task(i),
            Op::Sleep(s) => runtime::sleep(secs(s))?,
            Op::CancelledSleeper { sleep, action, then } => {
                let value = Reentrant::new(Some(action));
                let task = runtime::spawn(move || match runtime::sleep(secs(sleep)) {
                    Ok(()) => Ok(Payload(Some(value))),
                    Err(e) if e.is_cancelled() => Ok(Payload(Some(value))),
                    Err(e) => Err(e),
                });
                runtime::sleep(Duration::ZERO)?;
                task.cancel();
                drop(task);
                runtime::sleep(secs(then))?;
            }
            Op::CancelledCrowd => {
                let crowd: Vec<Task<()>> = (0..120)
                    .map(|_| {
                        let value = Reentrant::plain();
                        runtime::spawn(move || {
                            let _value = value;
                            runtime::sleep(Duration::from_secs(500))
                        })
                    })
                    .collect();
                runtime::sleep(Duration::ZERO)?;
                for task in &crowd {
                    task.cancel();
                }
            }
        }
    }
    Ok(())
}

/// Installs (once) a panic hook that sets [`PANICKED`], then the default
/// hook's report.
fn note_panics() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICKED.set(true);
            previous(info);
        }));
    });
}

/// Runs the program; a panic that escapes comes back as its message.
fn run_program(ops: Vec<Op>, end: End) -> Result<(), String> {
    note_panics();
    PANICKED.set(false);
    let builder = Builder::new().clock(Clock::virtual_time());
    let outcome = catch_unwind(AssertUnwindSafe(move || match end {
        End::Run => {
            let _ = builder.run(move || main_task(ops));
        }
        End::Drop | End::RunAgainThenDrop(_) => {
            let event_loop = builder.build();
            let _ = event_loop.run_until_complete(move || main_task(ops));
            if let End::RunAgainThenDrop(s) = end {
                let _ = event_loop.run_until_complete(move || runtime::sleep(secs(s)));
            }
            drop(event_loop);
        }
    }));
    outcome.map_err(|p| {
        p.downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "<non-string panic payload>".to_owned())
    })
}

/// Drops the program's task handles (and whatever their drops add).
fn release_tasks() {
    loop {
        let tasks = TASKS.with(|t| std::mem::take(&mut *t.borrow_mut()));
        if tasks.is_empty() {
            break;
        }
        drop(tasks);
    }
}

/// Ids of counted values not dropped exactly once, with their counts.
fn miscounted() -> Vec<(usize, u32)> {
    LEDGER.with(|l| {
        l.borrow().iter().enumerate().filter(|(_, n)| **n != 1).map(|(i, n)| (i, *n)).collect()
    })
}

/// Runs one generated program in a fresh case; returns the panic that
/// escaped it, if any, and the values not dropped exactly once.
fn run_case(ops: Vec<Op>, end: End) -> (Result<(), String>, Vec<(usize, u32)>) {
    release_tasks();
    CASE.set(CASE.get() + 1);
    LEDGER.with(|l| l.borrow_mut().clear());
    let outcome = run_program(ops, end);
    // A panic may have left tasks behind; drop what the program holds.
    release_tasks();
    (outcome, miscounted())
}

/// No panic escapes `run`, `run_until_complete` or `drop(EventLoop)`.
fn no_panic_escapes(ops: Vec<Op>, end: End) -> Result<(), TestCaseError> {
    let (outcome, _) = run_case(ops, end);
    prop_assert_eq!(outcome, Ok(()), "a panic escaped the loop");
    Ok(())
}

/// Every counted value is dropped exactly once, in programs where no panic
/// escaped (those are the other property's failures).
fn each_destructor_runs_once(ops: Vec<Op>, end: End) -> Result<(), TestCaseError> {
    let (outcome, wrong) = run_case(ops, end);
    prop_assume!(outcome.is_ok(), "a panic escaped");
    prop_assert!(wrong.is_empty(), "values not dropped exactly once (id, drops): {:?}", wrong);
    Ok(())
}

/// Runs `property` on 1,024 generated programs, shrinking a failure.
fn check(property: fn(Vec<Op>, End) -> Result<(), TestCaseError>) {
    let config = Config { cases: 1024, failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new(config);
    let strategy = (proptest::collection::vec(op(), 1..14), end());
    if let Err(e) = runner.run(&strategy, |(ops, end)| property(ops, end)) {
        panic!("{e}");
    }
}

// A panic escaping a destructor while another unwinds aborts the process,
// so each property runs in a child process: the test binary re-run for
// that one test, with `CHILD_ENV` set. To debug one, run it so directly:
// `GENCORO_REENTRANT_CHILD=<test name> cargo test --test reentrant_drop
// <test name> -- --exact --nocapture`.

const CHILD_ENV: &str = "GENCORO_REENTRANT_CHILD";

/// Runs `property` in a child process (or, in the child, runs it here).
fn in_child(name: &str, property: fn(Vec<Op>, End) -> Result<(), TestCaseError>) {
    if std::env::var(CHILD_ENV).is_ok_and(|v| v == name) {
        check(property);
        println!("property held");
        return;
    }
    let out = Command::new(std::env::current_exe().expect("the test binary"))
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, name)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("the test binary runs as a child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let held =
        out.status.success() && stdout.lines().any(|l| l.trim_end().ends_with("property held"));
    let tail: Vec<&str> = stderr.lines().rev().take(40).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    assert!(
        held,
        "child {}:\n{}\n--- stderr (last lines) ---\n{}",
        out.status,
        stdout,
        tail.join("\n")
    );
}

#[test]
fn no_panic_escapes_the_loop_when_destructors_call_back_into_it() {
    in_child("no_panic_escapes_the_loop_when_destructors_call_back_into_it", no_panic_escapes);
}

#[test]
fn each_destructor_runs_once_when_destructors_call_back_into_the_loop() {
    in_child(
        "each_destructor_runs_once_when_destructors_call_back_into_the_loop",
        each_destructor_runs_once,
    );
}
