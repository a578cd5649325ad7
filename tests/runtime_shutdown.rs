//! What `run` does after `main` returns (docs/semantics.md B1): it cancels the
//! tasks still pending, runs the loop until they are done and two more
//! iterations (`run_until_complete(gather(*to_cancel))`), then four more
//! (`shutdown_asyncgens()` and `shutdown_default_executor()`, each a task
//! plus its stop callback). Work spawned meanwhile is not cancelled: it runs
//! in those iterations and is left pending.
//!
//! A task that yields with `sleep(0)` in every iteration counts them. Each
//! scenario was written in Python first and run with CPython 3.11; the
//! program is `tests/cpython/runtime_shutdown/<test name>.py`, and
//! `tests/cpython_programs.rs` checks that its stdout is the test's trace.

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use common::*;
use gencoro::runtime::{self, Task};

/// Prints (or logs) a tick in every iteration, ten at most.
fn ticker(stamped: bool) -> Result<(), runtime::Error> {
    for i in 0..10 {
        if stamped {
            log(format!("tick {i}"));
        } else {
            print(format!("tick {i}"));
        }
        runtime::sleep(Duration::ZERO)?;
    }
    Ok(())
}

// Python: tests/cpython/runtime_shutdown/shutdown_runs_six_iterations_after_the_cancelled_tasks_end.py
//
// The shutdown cancels `sleeper`; in the next iteration it spawns `ticker`
// and ends. Then two iterations for the gather of the cancelled tasks and
// four for the two shutdown steps: `ticker` runs in those six. A shutdown
// with two settling iterations instead of four shows four ticks.
/// Work spawned during the shutdown runs for exactly the six iterations the
/// shutdown takes after the cancelled tasks are done.
#[test]
fn shutdown_runs_six_iterations_after_the_cancelled_tasks_end() {
    let (result, trace, _) = run_virtual(|| {
        runtime::spawn(|| match runtime::sleep(Duration::from_secs(10)) {
            Err(e) if e.is_cancelled() => {
                runtime::spawn(|| ticker(false));
                Err(e)
            }
            other => other,
        });
        runtime::sleep(Duration::ZERO)
    });
    result.expect("main returns");
    assert_eq!(trace, ["tick 0", "tick 1", "tick 2", "tick 3", "tick 4", "tick 5"]);
}

// Python: tests/cpython/runtime_shutdown/shutdown_waits_for_a_cleanup_that_sleeps_then_runs_six_iterations.py
/// The shutdown waits, on the clock, for a cancelled task whose cleanup
/// sleeps; timers armed meanwhile fire; the six iterations come after.
#[test]
fn shutdown_waits_for_a_cleanup_that_sleeps_then_runs_six_iterations() {
    let trace = go(|| {
        runtime::spawn(|| match sleep(10.0) {
            Err(e) if e.is_cancelled() => {
                log(format!("sleeper: {}", ex(&e)));
                runtime::call_later(Duration::ZERO, || log("zero-delay timer"))?;
                sleep(2.0)?;
                log("sleeper slept 2 in its cleanup");
                runtime::spawn(|| ticker(true));
                Err(e)
            }
            other => other,
        });
        sleep(1.0)?;
        log("main returns");
        Ok("main")
    });
    assert_eq!(
        trace,
        [
            "1.0 main returns",
            "1.0 sleeper: CancelledError()",
            "1.0 zero-delay timer",
            "3.0 sleeper slept 2 in its cleanup",
            "3.0 tick 0",
            "3.0 tick 1",
            "3.0 tick 2",
            "3.0 tick 3",
            "3.0 tick 4",
            "3.0 tick 5",
            "result main",
            "end 3.0",
        ]
    );
}

// Python: tests/cpython/runtime_shutdown/work_spawned_during_shutdown_is_left_pending_not_cancelled.py
//
// CPython reports "Task was destroyed but it is pending!" when it collects
// the late task; gencoro unwinds its stack when the loop is dropped, so its
// destructors run.
/// A task spawned during the shutdown is never cancelled: `run` returns
/// with it pending, and its stack has been unwound.
#[test]
fn work_spawned_during_shutdown_is_left_pending_not_cancelled() {
    let drops = Drops::default();
    let late: Rc<RefCell<Option<Task<()>>>> = Rc::default();
    let (d, l) = (drops.clone(), late.clone());
    let trace = go(move || {
        runtime::spawn(move || match runtime::sleep(Duration::from_secs(10)) {
            Err(e) if e.is_cancelled() => {
                let task = runtime::spawn(move || {
                    let _guard = d.sentinel("ticker's stack");
                    match ticker(true) {
                        Err(e) if e.is_cancelled() => {
                            log("ticker cancelled");
                            Err(e)
                        }
                        other => other,
                    }
                });
                *l.borrow_mut() = Some(task);
                Err(e)
            }
            other => other,
        });
        runtime::sleep(Duration::ZERO)
    });
    let task = late.borrow_mut().take().expect("the sleeper spawned the ticker");
    let mut trace = trace;
    trace.push(format!(
        "late task done={} cancelled={}",
        if task.is_done() { "True" } else { "False" },
        if task.is_cancelled() { "True" } else { "False" },
    ));
    assert_eq!(
        trace,
        [
            "0.0 tick 0",
            "0.0 tick 1",
            "0.0 tick 2",
            "0.0 tick 3",
            "0.0 tick 4",
            "0.0 tick 5",
            "result None",
            "end 0.0",
            "late task done=False cancelled=False",
        ]
    );
    assert_eq!(drops.all(), ["ticker's stack"], "the loop's teardown unwinds the pending task");
}
