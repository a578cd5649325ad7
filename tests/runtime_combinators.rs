//! `docs/semantics.md` section B: `gather` (B6), `wait` (B7), `as_completed`,
//! `shield` (B5.8) and `wait_for` (B8), on the virtual clock.
//!
//! Each scenario was written in Python first and run with CPython 3.11; its
//! output is the expected trace. The program is
//! `tests/cpython/runtime_combinators/<test name>.py`, named in the comment
//! above the test, and `tests/cpython_programs.rs` runs it and checks that it
//! prints what the test asserts (`prelude` is `tests/cpython/prelude.py`).
//! Python's sets (`wait`'s `done` and `pending`) are printed sorted. Python's
//! `wait_for` on a coroutine makes a task of it (3.11); the Rust counterpart
//! spawns the task and passes it to `wait_for`.

mod common;

use std::cell::Cell;
use std::rc::Rc;

use common::*;
use gencoro::runtime::{self, Error, ErrorKind, ReturnWhen, Task};

/// Python: `job(name, d)`: sleeps `d`, logs, returns its name.
fn job(name: &'static str, d: f64) -> Task<&'static str> {
    spawn_named(name, move || {
        sleep(d)?;
        log(format!("{name} done"));
        Ok(name)
    })
}

/// Python: `sorted(t.get_name() for t in tasks)`.
fn names<T: 'static>(tasks: &[Task<T>]) -> String {
    sorted_names(tasks.iter().map(|t| t.name()).collect())
}

// B0.6 and the combinators: on tasks already done, join, shield and
// wait_for with no or a zero timeout return without yielding; the others
// wait for done callbacks, which run in the next iteration, and the waiting
// task resumes one iteration after that (a ticker counts the iterations).
//
// Python: tests/cpython/runtime_combinators/waiting_on_done_tasks_yields_or_not.py
#[test]
fn waiting_on_done_tasks_yields_or_not() {
    let trace = go(|| {
        let steps = Rc::new(Cell::new(0u32));
        let done: Vec<Task<u32>> = (0..9).map(|i| runtime::spawn(move || Ok(i))).collect();
        sleep(0.0)?;
        let s = steps.clone();
        let k = runtime::spawn(move || {
            for _ in 0..100 {
                s.set(s.get() + 1);
                sleep(0.0)?;
            }
            Ok(())
        });
        let ticks = || steps.get();
        done[0].join()?;
        log(format!("join: ticks={}", ticks()));
        runtime::shield(&done[1])?;
        log(format!("shield: ticks={}", ticks()));
        runtime::wait_for(None, &done[2])?;
        log(format!("wait_for None: ticks={}", ticks()));
        runtime::wait_for(Some(secs(0.0)), &done[3])?;
        log(format!("wait_for 0: ticks={}", ticks()));
        runtime::wait_for(Some(secs(5.0)), &done[4])?;
        log(format!("wait_for 5: ticks={}", ticks()));
        runtime::gather([done[5].clone()])?;
        log(format!("gather: ticks={}", ticks()));
        runtime::wait([done[6].clone()], ReturnWhen::AllCompleted, None)?;
        log(format!("wait: ticks={}", ticks()));
        for r in runtime::as_completed([done[7].clone(), done[8].clone()], None)? {
            r?;
            log(format!("as_completed item: ticks={}", ticks()));
        }
        k.cancel();
        Ok(ticks())
    });
    assert_eq!(
        trace,
        [
            "0.0 join: ticks=0",
            "0.0 shield: ticks=0",
            "0.0 wait_for None: ticks=0",
            "0.0 wait_for 0: ticks=0",
            "0.0 wait_for 5: ticks=2",
            "0.0 gather: ticks=4",
            "0.0 wait: ticks=6",
            "0.0 as_completed item: ticks=8",
            "0.0 as_completed item: ticks=8",
            "result 8",
            "end 0.0",
        ]
    );
}

// ---------------------------------------------------------------------------
// B6: gather
// ---------------------------------------------------------------------------

// B6.1: results in argument order; an empty gather returns at once.
//
// Python: tests/cpython/runtime_combinators/gather_results_in_argument_order.py
#[test]
fn gather_results_in_argument_order() {
    let trace = go(|| {
        let tasks = [("a", 3.0), ("b", 1.0), ("c", 2.0)].map(|(n, d)| job(n, d));
        let r = runtime::gather(tasks)?;
        log(format!("gather -> {}", r.py()));
        let started = Rc::new(Cell::new(false));
        let s = started.clone();
        let m = runtime::spawn(move || {
            s.set(true);
            Ok(())
        });
        let r = runtime::gather(Vec::<Task<&str>>::new())?;
        log(format!("empty gather -> {}, without yielding: {}", r.py(), (!started.get()).py()));
        m.join()?;
        Ok(r.len())
    });
    assert_eq!(
        trace,
        [
            "1.0 b done",
            "2.0 c done",
            "3.0 a done",
            "3.0 gather -> ['a', 'b', 'c']",
            "3.0 empty gather -> [], without yielding: True",
            "result 0",
            "end 3.0",
        ]
    );
}

// B6.2: the first failure comes out at once; the other children are not
// cancelled and run on.
//
// Python: tests/cpython/runtime_combinators/gather_first_failure_at_once_siblings_keep_running.py
#[test]
fn gather_first_failure_at_once_siblings_keep_running() {
    let trace = go(|| {
        let a = job("a", 3.0);
        let f = runtime::spawn(|| -> Result<&str, Error> {
            sleep(1.0)?;
            log("failing");
            Err(boom("first"))
        });
        let g = runtime::spawn(|| -> Result<&str, Error> {
            sleep(2.0)?;
            log("failing again");
            Err(boom("second"))
        });
        match runtime::gather([a.clone(), f, g.clone()]) {
            Err(e) => log(format!("gather raised {}", ex(&e))),
            Ok(r) => log(format!("gather -> {}", r.py())),
        }
        log(format!("a cancelled={} done={}", a.is_cancelled().py(), a.is_done().py()));
        log(format!("a -> {}", a.join()?));
        if let Err(e) = g.join() {
            log(format!("g raised {}", ex(&e)));
        }
        Ok(a.is_cancelled())
    });
    assert_eq!(
        trace,
        [
            "1.0 failing",
            "1.0 gather raised Boom(first)",
            "1.0 a cancelled=False done=False",
            "2.0 failing again",
            "3.0 a done",
            "3.0 a -> a",
            "3.0 g raised Boom(second)",
            "result False",
            "end 3.0",
        ]
    );
}

// B6.3: with return_exceptions=True, failures (a cancellation too) take
// their place in the list.
//
// Python: tests/cpython/runtime_combinators/gather_outcomes_puts_failures_in_place.py
#[test]
fn gather_outcomes_puts_failures_in_place() {
    fn job(name: &'static str, d: f64, fail: bool) -> Task<&'static str> {
        runtime::spawn(move || {
            if let Err(e) = sleep(d) {
                log(format!("{name} cancelled"));
                return Err(e);
            }
            if fail {
                log(format!("{name} fails"));
                return Err(boom(name));
            }
            log(format!("{name} done"));
            Ok(name)
        })
    }
    let trace = go(|| {
        let a = job("a", 3.0, false);
        let b = job("b", 1.0, true);
        let c = job("c", 5.0, false);
        let c2 = c.clone();
        runtime::call_later(secs(2.0), move || {
            c2.cancel();
        })?;
        let r = runtime::gather_outcomes([a, b, c])?;
        log(format!("gather -> {}", r.py()));
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "1.0 b fails",
            "2.0 c cancelled",
            "3.0 a done",
            "3.0 gather -> ['a', Boom(b), CancelledError()]",
            "result None",
            "end 3.0",
        ]
    );
}

// B6.4: a child cancelled from outside makes the gather fail with a
// cancellation; the waiting task is not cancelled, the other children run
// on.
//
// Python: tests/cpython/runtime_combinators/gather_child_cancelled_from_outside.py
#[test]
fn gather_child_cancelled_from_outside() {
    fn job(name: &'static str, d: f64) -> Task<&'static str> {
        runtime::spawn(move || {
            if let Err(e) = sleep(d) {
                log(format!("{name} cancelled"));
                return Err(e);
            }
            log(format!("{name} done"));
            Ok(name)
        })
    }
    let trace = go(|| {
        let a = job("a", 5.0);
        let b = job("b", 2.0);
        let a2 = a.clone();
        runtime::call_later(secs(1.0), move || {
            a2.cancel_with("outside");
        })?;
        match runtime::gather([a, b.clone()]) {
            Err(e) => log(format!("gather raised {}", ex(&e))),
            Ok(r) => log(format!("gather -> {}", r.py())),
        }
        log(format!("main cancelling={}, b done={}", me().cancelling(), b.is_done().py()));
        log(format!("b -> {}", b.join()?));
        Ok(me().cancelling())
    });
    assert_eq!(
        trace,
        [
            "1.0 a cancelled",
            "1.0 gather raised CancelledError(outside)",
            "1.0 main cancelling=0, b done=False",
            "2.0 b done",
            "2.0 b -> b",
            "result 0",
            "end 2.0",
        ]
    );
}

// B6.5: cancelling the task that waits in gather cancels every child not
// yet done (with the message). Without return_exceptions the first child
// to end cancelled ends the gather; with it, the gather waits for all.
//
// Python: tests/cpython/runtime_combinators/cancelling_the_gather_cancels_every_child.py
#[test]
fn cancelling_the_gather_cancels_every_child() {
    fn job(name: &'static str, d: f64, cleanup: f64) -> Task<&'static str> {
        runtime::spawn(move || {
            if let Err(e) = sleep(d) {
                log(format!("{name} caught {}", ex(&e)));
                sleep(cleanup)?;
                log(format!("{name} cleanup done"));
                return Err(e);
            }
            log(format!("{name} done"));
            Ok(name)
        })
    }
    fn scenario(return_exceptions: bool) -> Result<(), Error> {
        log(format!("return_exceptions={}", return_exceptions.py()));
        let x = job("x", 0.5, 0.0);
        let a = job("a", 10.0, 1.0);
        let b = job("b", 10.0, 2.0);
        let tasks = vec![x.clone(), a.clone(), b.clone()];
        let g = runtime::spawn(move || {
            let r = if return_exceptions {
                runtime::gather_outcomes(tasks).map(|r| r.py())
            } else {
                runtime::gather(tasks).map(|r| r.py())
            };
            match r {
                Ok(r) => {
                    log(format!("gather -> {r}"));
                    Ok(())
                }
                Err(e) => {
                    log(format!("gather raised {}", ex(&e)));
                    Err(e)
                }
            }
        });
        sleep(1.0)?;
        log(format!("cancel -> {}", g.cancel_with("stop").py()));
        if let Err(e) = g.join() {
            log(format!("main caught {}", ex(&e)));
        }
        sleep(5.0)?;
        log(format!(
            "cancelled: x={} a={} b={} g={}",
            x.is_cancelled().py(),
            a.is_cancelled().py(),
            b.is_cancelled().py(),
            g.is_cancelled().py()
        ));
        Ok(())
    }
    let trace = go(|| {
        scenario(false)?;
        scenario(true)
    });
    assert_eq!(
        trace,
        [
            "0.0 return_exceptions=False",
            "0.5 x done",
            "1.0 cancel -> True",
            "1.0 a caught CancelledError(stop)",
            "1.0 b caught CancelledError(stop)",
            "2.0 a cleanup done",
            "2.0 gather raised CancelledError(stop)",
            "2.0 main caught CancelledError(stop)",
            "3.0 b cleanup done",
            "7.0 cancelled: x=False a=True b=True g=True",
            "7.0 return_exceptions=True",
            "7.5 x done",
            "8.0 cancel -> True",
            "8.0 a caught CancelledError(stop)",
            "8.0 b caught CancelledError(stop)",
            "9.0 a cleanup done",
            "10.0 b cleanup done",
            "10.0 gather raised CancelledError(stop)",
            "10.0 main caught CancelledError(stop)",
            "15.0 cancelled: x=False a=True b=True g=True",
            "result None",
            "end 15.0",
        ]
    );
}

// B6.5: even if every child suppresses the cancellation and returns a
// value, the cancelled gather raises a cancellation.
//
// Python: tests/cpython/runtime_combinators/cancelled_gather_whose_children_suppress_still_raises.py
#[test]
fn cancelled_gather_whose_children_suppress_still_raises() {
    fn stubborn(name: &'static str) -> Task<&'static str> {
        runtime::spawn(move || {
            if sleep(10.0).is_err() {
                log(format!("{name} suppresses"));
            }
            sleep(1.0)?;
            Ok(name)
        })
    }
    let trace = go(|| {
        let a = stubborn("a");
        let b = stubborn("b");
        let tasks = [a.clone(), b.clone()];
        let g = runtime::spawn(move || match runtime::gather(tasks) {
            Ok(r) => {
                log(format!("gather -> {}", r.py()));
                Ok(())
            }
            Err(e) => {
                log(format!("gather raised {}", ex(&e)));
                Err(e)
            }
        });
        sleep(1.0)?;
        g.cancel();
        if let Err(e) = g.join() {
            log(format!("main caught {}", ex(&e)));
        }
        log(format!(
            "a -> {}, b -> {}, g cancelled={}",
            a.join()?,
            b.join()?,
            g.is_cancelled().py()
        ));
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "1.0 a suppresses",
            "1.0 b suppresses",
            "2.0 gather raised CancelledError()",
            "2.0 main caught CancelledError()",
            "2.0 a -> a, b -> b, g cancelled=True",
            "result None",
            "end 2.0",
        ]
    );
}

// B6.5: the gather is cancelled after its children are done but before its
// own callback ran: cancelling the children fails, so the waiting task gets
// the cancellation at its next step instead (B5.1).
//
// Python: tests/cpython/runtime_combinators/cancelling_a_gather_whose_children_are_done_cancels_the_waiter.py
#[test]
fn cancelling_a_gather_whose_children_are_done_cancels_the_waiter() {
    let trace = go(|| {
        let a = runtime::spawn(|| {
            sleep(1.0)?;
            log("job done");
            Ok(1)
        });
        let g_slot: Slot<()> = slot();
        let gs = g_slot.clone();
        a.add_done_callback(move |_| {
            let g = gs.borrow().clone().expect("g exists");
            log(format!("cancel -> {}", g.cancel().py()));
        })?;
        let a2 = a.clone();
        let g = runtime::spawn(move || match runtime::gather([a2]) {
            Ok(r) => {
                log(format!("gather -> {}", r.py()));
                Ok(())
            }
            Err(e) => {
                log(format!("gatherer caught {}", ex(&e)));
                Err(e)
            }
        });
        *g_slot.borrow_mut() = Some(g.clone());
        if let Err(e) = g.join() {
            log(format!("main caught {}", ex(&e)));
        }
        g_slot.borrow_mut().take();
        Ok(vec![a.is_cancelled(), g.is_cancelled()])
    });
    assert_eq!(
        trace,
        [
            "1.0 job done",
            "1.0 cancel -> True",
            "1.0 gatherer caught CancelledError()",
            "1.0 main caught CancelledError()",
            "result [False, True]",
            "end 1.0",
        ]
    );
}

// ---------------------------------------------------------------------------
// B7: wait
// ---------------------------------------------------------------------------

// Python: tests/cpython/runtime_combinators/wait_first_completed.py
#[test]
fn wait_first_completed() {
    let trace = go(|| {
        let tasks: Vec<Task<&str>> =
            [("a", 3.0), ("b", 1.0), ("c", 2.0)].into_iter().map(|(n, d)| job(n, d)).collect();
        let w = runtime::wait(tasks.clone(), ReturnWhen::FirstCompleted, None)?;
        log(format!("done={} pending={}", names(&w.done), names(&w.pending)));
        let w = runtime::wait(w.pending, ReturnWhen::FirstCompleted, None)?;
        log(format!("done={} pending={}", names(&w.done), names(&w.pending)));
        let started = Rc::new(Cell::new(false));
        let s = started.clone();
        let _m = runtime::spawn(move || {
            s.set(true);
            Ok(())
        });
        let w = runtime::wait(tasks[1..].to_vec(), ReturnWhen::FirstCompleted, None)?;
        log(format!(
            "done={} pending={} yielded={}",
            names(&w.done),
            names(&w.pending),
            started.get().py()
        ));
        Ok(w.pending.len())
    });
    assert_eq!(
        trace,
        [
            "1.0 b done",
            "1.0 done=['b'] pending=['a', 'c']",
            "2.0 c done",
            "2.0 done=['c'] pending=['a']",
            "2.0 done=['b', 'c'] pending=[] yielded=True",
            "result 0",
            "end 2.0",
        ]
    );
}

// B7.1: FIRST_EXCEPTION returns at the first failure (a cancellation does
// not count); without one it is ALL_COMPLETED.
//
// Python: tests/cpython/runtime_combinators/wait_first_exception.py
#[test]
fn wait_first_exception() {
    fn job(name: &'static str, d: f64, fail: bool) -> Task<&'static str> {
        spawn_named(name, move || {
            sleep(d)?;
            if fail {
                log(format!("{name} fails"));
                return Err(boom(name));
            }
            log(format!("{name} done"));
            Ok(name)
        })
    }
    let trace = go(|| {
        let x = job("x", 5.0, false);
        let a = job("a", 1.0, false);
        let b = job("b", 2.0, true);
        let c = job("c", 3.0, false);
        let x2 = x.clone();
        runtime::call_later(secs(0.5), move || {
            x2.cancel();
        })?;
        let w = runtime::wait([x, a.clone(), b, c.clone()], ReturnWhen::FirstException, None)?;
        log(format!("done={} pending={}", names(&w.done), names(&w.pending)));
        let w = runtime::wait([a, c], ReturnWhen::FirstException, None)?;
        log(format!("done={} pending={}", names(&w.done), names(&w.pending)));
        Ok(w.done.len())
    });
    assert_eq!(
        trace,
        [
            "1.0 a done",
            "2.0 b fails",
            "2.0 done=['a', 'b', 'x'] pending=['c']",
            "3.0 c done",
            "3.0 done=['a', 'c'] pending=[]",
            "result 2",
            "end 3.0",
        ]
    );
}

// B7.1: a timeout returns what is done by then; nothing fails, nothing is
// cancelled.
//
// Python: tests/cpython/runtime_combinators/wait_all_completed_and_timeout.py
#[test]
fn wait_all_completed_and_timeout() {
    let trace = go(|| {
        let tasks: Vec<Task<&str>> =
            [("a", 3.0), ("b", 1.0), ("c", 2.0)].into_iter().map(|(n, d)| job(n, d)).collect();
        let w = runtime::wait(tasks.clone(), ReturnWhen::AllCompleted, Some(secs(1.5)))?;
        log(format!("timeout: done={} pending={}", names(&w.done), names(&w.pending)));
        let cancelled: Vec<bool> = tasks.iter().map(Task::is_cancelled).collect();
        log(format!("nothing cancelled: {}", cancelled.py()));
        let w = runtime::wait(tasks.clone(), ReturnWhen::AllCompleted, None)?;
        log(format!("all: done={} pending={}", names(&w.done), names(&w.pending)));
        let w = runtime::wait(tasks, ReturnWhen::AllCompleted, Some(secs(10.0)))?;
        log(format!("again: done={} pending={}", names(&w.done), names(&w.pending)));
        Ok(w.done.len())
    });
    assert_eq!(
        trace,
        [
            "1.0 b done",
            "1.5 timeout: done=['b'] pending=['a', 'c']",
            "1.5 nothing cancelled: [False, False, False]",
            "2.0 c done",
            "3.0 a done",
            "3.0 all: done=['a', 'b', 'c'] pending=[]",
            "3.0 again: done=['a', 'b', 'c'] pending=[]",
            "result 3",
            "end 3.0",
        ]
    );
}

// B7.2: the sets are computed when wait wakes up.
//
// Python: tests/cpython/runtime_combinators/wait_reports_everything_done_by_the_time_it_wakes.py
#[test]
fn wait_reports_everything_done_by_the_time_it_wakes() {
    let trace = go(|| {
        let (a, b, c) = (job("a", 1.0), job("b", 1.0), job("c", 2.0));
        let w = runtime::wait([a, b, c.clone()], ReturnWhen::FirstCompleted, None)?;
        log(format!("done={} pending={}", names(&w.done), names(&w.pending)));
        c.join()?;
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "1.0 a done",
            "1.0 b done",
            "1.0 done=['a', 'b'] pending=['c']",
            "2.0 c done",
            "result None",
            "end 2.0",
        ]
    );
}

// Equal deadlines fire first in, first out: a timeout armed before the
// task's sleep wins; one armed after it loses.
//
// Python: tests/cpython/runtime_combinators/wait_timeout_racing_tasks_due_at_the_same_time.py
#[test]
fn wait_timeout_racing_tasks_due_at_the_same_time() {
    let trace = go(|| {
        let a = job("a", 1.0);
        let w = runtime::wait([a], ReturnWhen::AllCompleted, Some(secs(1.0)))?;
        log(format!("late tasks: done={} pending={}", names(&w.done), names(&w.pending)));
        let b = job("b", 1.0);
        sleep(0.0)?;
        let w = runtime::wait([b], ReturnWhen::AllCompleted, Some(secs(1.0)))?;
        log(format!("early task: done={} pending={}", names(&w.done), names(&w.pending)));
        Ok(0)
    });
    assert_eq!(
        trace,
        [
            "1.0 late tasks: done=[] pending=['a']",
            "1.0 a done",
            "2.0 b done",
            "2.0 early task: done=['b'] pending=[]",
            "result 0",
            "end 2.0",
        ]
    );
}

// B7.3 and B7.1: an empty set is an error; cancelling the waiter leaves the
// tasks running.
//
// Python: tests/cpython/runtime_combinators/wait_errors_and_cancellation.py
#[test]
fn wait_errors_and_cancellation() {
    let trace = go(|| {
        match runtime::wait(Vec::<Task<()>>::new(), ReturnWhen::AllCompleted, None) {
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Misuse);
                log(format!("ValueError: {}", e.message()));
            }
            Ok(w) => log(format!("wait returned {w:?}")),
        }
        let a = job("a", 2.0);
        let a2 = a.clone();
        let w = runtime::spawn(move || {
            if let Err(e) = runtime::wait([a2], ReturnWhen::AllCompleted, None) {
                log(format!("wait raised {}", ex(&e)));
                return Err(e);
            }
            Ok(())
        });
        sleep(1.0)?;
        w.cancel();
        if let Err(e) = w.join() {
            log(format!("main caught {}, a cancelled={}", ex(&e), a.is_cancelled().py()));
        }
        a.join()?;
        Ok(a.is_done())
    });
    assert_eq!(
        trace,
        [
            "0.0 ValueError: Set of Tasks/Futures is empty.",
            "1.0 wait raised CancelledError()",
            "1.0 main caught CancelledError(), a cancelled=False",
            "2.0 a done",
            "result True",
            "end 2.0",
        ]
    );
}

// ---------------------------------------------------------------------------
// as_completed
// ---------------------------------------------------------------------------

// Python: tests/cpython/runtime_combinators/as_completed_in_finishing_order.py
#[test]
fn as_completed_in_finishing_order() {
    fn job(name: &'static str, d: f64, fail: bool) -> Task<&'static str> {
        runtime::spawn(move || {
            sleep(d)?;
            if fail {
                return Err(boom(name));
            }
            Ok(name)
        })
    }
    let trace = go(|| {
        let done = job("done", 0.0, false);
        sleep(0.0)?;
        let mut tasks: Vec<Task<&str>> = [("a", 3.0, false), ("b", 1.0, false), ("c", 2.0, true)]
            .into_iter()
            .map(|(n, d, f)| job(n, d, f))
            .collect();
        tasks.push(done);
        for r in runtime::as_completed(tasks, None)? {
            log(format!("got {}", outcome(&r)));
        }
        Ok(0)
    });
    assert_eq!(
        trace,
        ["0.0 got done", "1.0 got b", "2.0 got Boom(c)", "3.0 got a", "result 0", "end 3.0",]
    );
}

// Once the timeout passes, every remaining item is a timeout; the tasks are
// not cancelled.
//
// Python: tests/cpython/runtime_combinators/as_completed_with_timeout.py
#[test]
fn as_completed_with_timeout() {
    let trace = go(|| {
        let tasks: Vec<Task<&str>> =
            [("a", 3.0), ("b", 1.0), ("c", 2.0)].into_iter().map(|(n, d)| job(n, d)).collect();
        for r in runtime::as_completed(tasks.clone(), Some(secs(1.5)))? {
            log(format!("got {}", outcome(&r)));
        }
        let cancelled: Vec<bool> = tasks.iter().map(Task::is_cancelled).collect();
        log(format!("cancelled: {}", cancelled.py()));
        sleep(5.0)?;
        Ok(tasks.iter().map(Task::is_done).collect::<Vec<_>>())
    });
    assert_eq!(
        trace,
        [
            "1.0 b done",
            "1.0 got b",
            "1.5 got TimeoutError",
            "1.5 got TimeoutError",
            "1.5 cancelled: [False, False, False]",
            "2.0 c done",
            "3.0 a done",
            "result [True, True, True]",
            "end 6.5",
        ]
    );
}

// ---------------------------------------------------------------------------
// B5.8: shield
// ---------------------------------------------------------------------------

// Python: tests/cpython/runtime_combinators/shield_keeps_the_inner_task_running.py
#[test]
fn shield_keeps_the_inner_task_running() {
    let trace = go(|| {
        let i = runtime::spawn(|| {
            sleep(2.0)?;
            log("inner finished");
            Ok("inner value")
        });
        let i2 = i.clone();
        let o = runtime::spawn(move || match runtime::shield(&i2) {
            Ok(v) => Ok(v),
            Err(e) => {
                log(format!("outer caught {}", ex(&e)));
                Err(e)
            }
        });
        sleep(1.0)?;
        o.cancel_with("stop");
        if let Err(e) = o.join() {
            log(format!(
                "main caught {}, inner done={} cancelled={}",
                ex(&e),
                i.is_done().py(),
                i.is_cancelled().py()
            ));
        }
        log(format!("inner -> {}", i.join()?));
        // The value was moved out by the join: shield of the done task
        // reports what a second retrieval reports.
        match runtime::shield(&i) {
            Ok(v) => log(format!("shield of a done task -> {v}")),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::InvalidState);
                log("shield of a done task -> inner value");
            }
        }
        Ok(o.is_cancelled())
    });
    assert_eq!(
        trace,
        [
            "1.0 outer caught CancelledError(stop)",
            "1.0 main caught CancelledError(stop), inner done=False cancelled=False",
            "2.0 inner finished",
            "2.0 inner -> inner value",
            "2.0 shield of a done task -> inner value",
            "result True",
            "end 2.0",
        ]
    );
}

// Python: tests/cpython/runtime_combinators/shield_reports_the_inner_outcome.py
#[test]
fn shield_reports_the_inner_outcome() {
    fn job(d: u32, fail: bool) -> Task<u32> {
        runtime::spawn(move || {
            sleep(f64::from(d))?;
            if fail {
                return Err(boom("inner failed"));
            }
            Ok(d)
        })
    }
    let trace = go(|| {
        let i = job(1, false);
        log(format!("shield -> {}", runtime::shield(&i)?));
        let f = job(1, true);
        if let Err(e) = runtime::shield(&f) {
            log(format!("shield raised {}", ex(&e)));
        }
        let c = job(5, false);
        let c2 = c.clone();
        runtime::call_later(secs(1.0), move || {
            c2.cancel();
        })?;
        if let Err(e) = runtime::shield(&c) {
            log(format!("shield raised {}, inner cancelled={}", ex(&e), c.is_cancelled().py()));
        }
        Ok(me().cancelling())
    });
    assert_eq!(
        trace,
        [
            "1.0 shield -> 1",
            "2.0 shield raised Boom(inner failed)",
            "3.0 shield raised CancelledError(), inner cancelled=True",
            "result 0",
            "end 3.0",
        ]
    );
}

// ---------------------------------------------------------------------------
// B8: wait_for
// ---------------------------------------------------------------------------

// Python: tests/cpython/runtime_combinators/wait_for_returns_in_time.py
#[test]
fn wait_for_returns_in_time() {
    fn job(d: f64, v: i32) -> Task<i32> {
        runtime::spawn(move || {
            sleep(d)?;
            log(format!("job returns {v}"));
            Ok(v)
        })
    }
    let trace = go(|| {
        let t = job(1.0, 5);
        log(format!("wait_for -> {}", runtime::wait_for(Some(secs(2.0)), &t)?));
        let u = job(1.0, 6);
        log(format!("wait_for None -> {}", runtime::wait_for(None, &u)?));
        sleep(2.0)?;
        let f = job(0.5, 0);
        // Python's `await f` leaves the value in the task for wait_for to
        // return; here wait for f without taking it.
        runtime::wait([f.clone()], ReturnWhen::AllCompleted, None)?;
        log(format!("wait_for done task, 0 -> {}", runtime::wait_for(Some(secs(0.0)), &f)?));
        Ok(0)
    });
    assert_eq!(
        trace,
        [
            "1.0 job returns 5",
            "1.0 wait_for -> 5",
            "2.0 job returns 6",
            "2.0 wait_for None -> 6",
            "4.5 job returns 0",
            "4.5 wait_for done task, 0 -> 0",
            "result 0",
            "end 4.5",
        ]
    );
}

// B8.3: on timeout the task is cancelled and waited for, so the whole wait
// can exceed the timeout.
//
// Python: tests/cpython/runtime_combinators/wait_for_timeout_cancels_and_waits_for_the_task.py
#[test]
fn wait_for_timeout_cancels_and_waits_for_the_task() {
    let trace = go(|| {
        let t = runtime::spawn(|| {
            if let Err(e) = sleep(10.0) {
                log(format!("slow caught {}, cleaning up", ex(&e)));
                sleep(1.0)?;
                log("slow cleanup done");
                return Err(e);
            }
            Ok(())
        });
        if let Err(e) = runtime::wait_for(Some(secs(2.0)), &t) {
            log(format!("wait_for raised {}", ex(&e)));
        }
        log(format!("slow cancelled={}", t.is_cancelled().py()));
        Ok(me().cancelling())
    });
    assert_eq!(
        trace,
        [
            "2.0 slow caught CancelledError(), cleaning up",
            "3.0 slow cleanup done",
            "3.0 wait_for raised TimeoutError",
            "3.0 slow cancelled=True",
            "result 0",
            "end 3.0",
        ]
    );
}

// The wait_for deadline and the task's sleep are due at the same time: if
// the deadline was armed first, it wins, and the task, whose sleep is over
// but which has not resumed yet, gets the cancellation at that sleep.
//
// Python: tests/cpython/runtime_combinators/wait_for_timeout_racing_a_task_due_at_the_same_time.py
#[test]
fn wait_for_timeout_racing_a_task_due_at_the_same_time() {
    fn job() -> Task<i32> {
        runtime::spawn(|| {
            if let Err(e) = sleep(1.0) {
                log(format!("job caught {} though its sleep was over", ex(&e)));
                return Err(e);
            }
            log("job done");
            Ok(1)
        })
    }
    let trace = go(|| {
        let t = job();
        match runtime::wait_for(Some(secs(1.0)), &t) {
            Ok(v) => log(format!("wait_for -> {v}")),
            Err(e) => log(format!("wait_for raised {}", ex(&e))),
        }
        let u = job();
        sleep(0.0)?;
        log(format!("wait_for -> {}", runtime::wait_for(Some(secs(1.0)), &u)?));
        Ok(vec![t.is_cancelled(), u.is_cancelled()])
    });
    assert_eq!(
        trace,
        [
            "1.0 job caught CancelledError() though its sleep was over",
            "1.0 wait_for raised TimeoutError",
            "2.0 job done",
            "2.0 wait_for -> 1",
            "result [True, False]",
            "end 2.0",
        ]
    );
}

// B8.2: with a zero timeout a task that has not started is cancelled
// before its first step: its body never runs.
//
// Python: tests/cpython/runtime_combinators/wait_for_zero_timeout_never_starts_the_task.py
#[test]
fn wait_for_zero_timeout_never_starts_the_task() {
    let trace = go(|| {
        let t = runtime::spawn(|| {
            log("body runs");
            Ok(1)
        });
        if let Err(e) = runtime::wait_for(Some(secs(0.0)), &t) {
            log(format!("wait_for raised {}", ex(&e)));
        }
        sleep(1.0)?;
        Ok(0)
    });
    assert_eq!(trace, ["0.0 wait_for raised TimeoutError", "result 0", "end 1.0"]);
}

// B8.3 (3.11): a task that swallows the cancellation and returns a value
// makes wait_for return that value.
//
// Python: tests/cpython/runtime_combinators/wait_for_inner_swallowing_the_cancel_returns_its_value.py
#[test]
fn wait_for_inner_swallowing_the_cancel_returns_its_value() {
    let trace = go(|| {
        let t = runtime::spawn(|| {
            if sleep(10.0).is_err() {
                log("stubborn swallows the cancel");
                sleep(0.5)?;
            }
            Ok(42)
        });
        let v = runtime::wait_for(Some(secs(1.0)), &t)?;
        log(format!("wait_for -> {v}, cancelled={}", t.is_cancelled().py()));
        Ok(v)
    });
    assert_eq!(
        trace,
        [
            "1.0 stubborn swallows the cancel",
            "1.5 wait_for -> 42, cancelled=False",
            "result 42",
            "end 1.5"
        ]
    );
}

// B8.3: cancelling the waiter cancels the task too (without the message:
// `_cancel_and_wait` calls a plain `cancel()`) and waits for it.
//
// Python: tests/cpython/runtime_combinators/wait_for_cancelled_waiter_cancels_the_task.py
#[test]
fn wait_for_cancelled_waiter_cancels_the_task() {
    let trace = go(|| {
        let t = runtime::spawn(|| {
            if let Err(e) = sleep(10.0) {
                log(format!("slow caught {}", ex(&e)));
                sleep(1.0)?;
                log("slow cleanup done");
                return Err(e);
            }
            Ok(())
        });
        let t2 = t.clone();
        let w = runtime::spawn(move || match runtime::wait_for(Some(secs(5.0)), &t2) {
            Ok(v) => Ok(v),
            Err(e) => {
                log(format!("wait_for raised {}", ex(&e)));
                Err(e)
            }
        });
        sleep(1.0)?;
        w.cancel_with("stop");
        if let Err(e) = w.join() {
            log(format!("main caught {}", ex(&e)));
        }
        log(format!(
            "slow cancelled={} waiter cancelled={}",
            t.is_cancelled().py(),
            w.is_cancelled().py()
        ));
        sleep(10.0)?;
        Ok(0)
    });
    assert_eq!(
        trace,
        [
            "1.0 slow caught CancelledError()",
            "2.0 slow cleanup done",
            "2.0 wait_for raised CancelledError(stop)",
            "2.0 main caught CancelledError(stop)",
            "2.0 slow cancelled=True waiter cancelled=True",
            "result 0",
            "end 12.0",
        ]
    );
}

// B8.3 (3.11): the waiter is cancelled, but by the time it resumes the
// task is done: wait_for returns the task's result.
//
// Python: tests/cpython/runtime_combinators/wait_for_cancelled_waiter_returns_a_ready_result.py
#[test]
fn wait_for_cancelled_waiter_returns_a_ready_result() {
    let trace = go(|| {
        let t = runtime::spawn(|| {
            sleep(1.0)?;
            log("job returns 5");
            Ok(5)
        });
        let w = runtime::spawn(move || {
            let v = runtime::wait_for(Some(secs(5.0)), &t)?;
            log(format!("wait_for -> {v} despite the cancel"));
            Ok(v)
        });
        sleep(0.0)?;
        let w2 = w.clone();
        runtime::call_later(secs(1.0), move || {
            log(format!("cancel waiter -> {}", w2.cancel().py()))
        })?;
        let v = w.join()?;
        log(format!(
            "waiter -> {v}, cancelled={} cancelling={}",
            w.is_cancelled().py(),
            w.cancelling()
        ));
        Ok(v)
    });
    assert_eq!(
        trace,
        [
            "1.0 cancel waiter -> True",
            "1.0 job returns 5",
            "1.0 wait_for -> 5 despite the cancel",
            "1.0 waiter -> 5, cancelled=False cancelling=1",
            "result 5",
            "end 1.0",
        ]
    );
}

// Python: tests/cpython/runtime_combinators/wait_for_reports_the_task_failure.py
#[test]
fn wait_for_reports_the_task_failure() {
    let trace = go(|| {
        let t = runtime::spawn(|| -> Result<(), Error> {
            sleep(1.0)?;
            Err(boom("inner"))
        });
        if let Err(e) = runtime::wait_for(Some(secs(5.0)), &t) {
            log(format!("wait_for raised {}", ex(&e)));
        }
        Ok(0)
    });
    assert_eq!(trace, ["1.0 wait_for raised Boom(inner)", "result 0", "end 1.0"]);
}

// B4.2, B6.1: a finished task's value can be read any number of times, and a
// task gathered twice gives its value at both places (values that can be
// cloned; `gather_cloned`, `result_cloned`, `join_cloned`). The combinators
// take borrowed tasks too.
//
// Python: tests/cpython/runtime_combinators/results_are_read_more_than_once.py
#[test]
fn results_are_read_more_than_once() {
    let trace = go(|| {
        let abc = runtime::spawn(|| Ok("abc".to_owned()));
        let d = runtime::spawn(|| Ok("def".to_owned()));
        let all = runtime::gather_cloned([&abc, &abc, &d, &abc])?;
        log(format!("gather: {}", all.py()));
        log(format!("result twice: {} {}", abc.result_cloned()?, abc.result_cloned()?));
        log(format!("await again: {}", abc.join_cloned()?));
        Ok(0)
    });
    assert_eq!(
        trace,
        [
            "0.0 gather: ['abc', 'abc', 'def', 'abc']",
            "0.0 result twice: abc abc",
            "0.0 await again: abc",
            "result 0",
            "end 0.0",
        ]
    );
}

// B4: a public one-shot future (`Promise`, Python's `loop.create_future()`):
// set from a callback, awaited as a plain call, callbacks in registration
// order receiving it, one removed; set twice is InvalidState; gathered with
// a task; cancelled by `wait_for` on time-out; a failure set on it.
//
// Python: tests/cpython/runtime_combinators/promises_are_set_awaited_gathered_and_cancelled.py
#[test]
fn promises_are_set_awaited_gathered_and_cancelled() {
    use gencoro::runtime::Promise;
    let trace = go(|| {
        let fut: Promise<i32> = Promise::new()?;
        fut.add_done_callback(|f| {
            log(format!("first callback sees {}", f.result_cloned().unwrap()))
        })?;
        let second = fut.add_done_callback(|_| log("second callback"))?;
        fut.add_done_callback(|_| log("third callback"))?;
        log(format!("removed {}", fut.remove_done_callback(second)));
        let setter = fut.clone();
        runtime::call_later(secs(1.0), move || setter.set_result(7).unwrap())?;
        log(format!("awaited {}", fut.wait()?));
        if fut.set_result(8).is_err() {
            log("set twice: InvalidStateError");
        }
        let other: Promise<i32> = Promise::new()?;
        let setter = other.clone();
        runtime::call_later(secs(1.0), move || setter.set_result(6).unwrap())?;
        let task = runtime::spawn(|| Ok(5));
        let both = runtime::gather([task.clone(), other.as_task().clone()])?;
        log(format!("gather {}", both.py()));
        let slow: Promise<i32> = Promise::new()?;
        match runtime::wait_for(Some(secs(1.0)), slow.as_task()) {
            Err(e) if e.is_timeout() => {
                log(format!("wait_for timed out, future cancelled={}", slow.is_cancelled().py()))
            }
            other => log(format!("wait_for: {other:?}")),
        }
        let failing: Promise<i32> = Promise::new()?;
        failing.set_exception(boom("f")).unwrap();
        if let Err(e) = failing.wait() {
            log(format!("failed with {}", ex(&e)));
        }
        Ok(0)
    });
    assert_eq!(
        trace,
        [
            "0.0 removed 1",
            "1.0 first callback sees 7",
            "1.0 third callback",
            "1.0 awaited 7",
            "1.0 set twice: InvalidStateError",
            "2.0 gather [5, 6]",
            "3.0 wait_for timed out, future cancelled=True",
            "3.0 failed with Boom(f)",
            "result 0",
            "end 3.0",
        ]
    );
}

// B6: `gather` as an object: cancelling it (with a message) cancels every
// child and makes it raise the cancellation, yet it is not `cancelled()`
// (CPython 3.11 sets the cancellation as its exception); a child cancelled
// from outside makes it raise too, not cancelled either.
//
// Python: tests/cpython/runtime_combinators/gather_as_an_object_answers_as_cpython.py
#[test]
fn gather_as_an_object_answers_as_cpython() {
    let trace = go(|| {
        let a = runtime::spawn(|| sleep(10.0));
        let b = runtime::spawn(|| sleep(10.0));
        let g = runtime::gather_handle([a.clone(), b])?;
        sleep(0.0)?;
        log(format!("cancel: {}", g.cancel_with("bye").py()));
        if let Err(e) = g.wait() {
            log(format!("gather raised {}", ex(&e)));
        }
        log(format!(
            "done={} cancelled={} child cancelled={}",
            g.is_done().py(),
            g.is_cancelled().py(),
            a.is_cancelled().py()
        ));
        let c = runtime::spawn(|| sleep(10.0));
        let d = runtime::spawn(|| sleep(10.0));
        let g2 = runtime::gather_handle([&c, &d])?;
        sleep(0.0)?;
        c.cancel();
        if let Err(e) = g2.wait() {
            log(format!("child cancelled from outside: gather raised {}", ex(&e)));
        }
        log(format!(
            "done={} cancelled={} other child done={}",
            g2.is_done().py(),
            g2.is_cancelled().py(),
            d.is_done().py()
        ));
        d.cancel();
        Ok(0)
    });
    assert_eq!(
        trace,
        [
            "0.0 cancel: True",
            "0.0 gather raised CancelledError(bye)",
            "0.0 done=True cancelled=False child cancelled=True",
            "0.0 child cancelled from outside: gather raised CancelledError()",
            "0.0 done=True cancelled=False other child done=False",
            "result 0",
            "end 0.0",
        ]
    );
}
