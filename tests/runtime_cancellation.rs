//! `docs/semantics.md` section B5: task cancellation, on the virtual clock.
//!
//! Each scenario was written in Python first and run with CPython 3.11; its
//! output is the expected trace. The program is
//! `tests/cpython/runtime_cancellation/<test name>.py`, named in the comment
//! above the test, and `tests/cpython_programs.rs` runs it and checks that it
//! prints what the test asserts (`prelude` is `tests/cpython/prelude.py`).
//! Python's `CancelledError` raised at an `await` is the `ErrorKind::Cancelled`
//! error returned by the wait; `raise` is returning it; catching it and going
//! on is ignoring it.

mod common;

use common::*;
use gencoro::runtime::{self, Error};

// B5.1, B5.3: the cancellation arrives at the wait the task is suspended
// in; the task cleans up (waiting again) and propagates it.
//
// Python: tests/cpython/runtime_cancellation/cancel_at_suspension_point_cleans_up_then_propagates.py
#[test]
fn cancel_at_suspension_point_cleans_up_then_propagates() {
    let trace = go(|| {
        let t = spawn_named("worker", || -> Result<(), Error> {
            log("worker starts");
            match sleep(10.0) {
                Ok(()) => {
                    log("not reached");
                    Ok(())
                }
                Err(e) => {
                    log(format!("worker caught {}", ex(&e)));
                    sleep(1.0)?;
                    log("worker cleanup done");
                    Err(e)
                }
            }
        });
        sleep(1.0)?;
        log(format!("cancel -> {}", t.cancel().py()));
        log(format!("cancelling={} done={}", t.cancelling(), t.is_done().py()));
        if let Err(e) = t.join() {
            log(format!("main caught {}", ex(&e)));
        }
        log(format!("cancelled={} done={}", t.is_cancelled().py(), t.is_done().py()));
        Ok(me().cancelling())
    });
    assert_eq!(
        trace,
        [
            "0.0 worker starts",
            "1.0 cancel -> True",
            "1.0 cancelling=1 done=False",
            "1.0 worker caught CancelledError()",
            "2.0 worker cleanup done",
            "2.0 main caught CancelledError()",
            "2.0 cancelled=True done=True",
            "result 0",
            "end 2.0",
        ]
    );
}

// B5.3: a task that catches the cancellation and goes on is not cancelled;
// its count of cancel requests stays at one.
//
// Python: tests/cpython/runtime_cancellation/cancel_suppressed_task_continues_and_returns.py
#[test]
fn cancel_suppressed_task_continues_and_returns() {
    let trace = go(|| {
        let t = runtime::spawn(|| {
            if let Err(e) = sleep(10.0) {
                log(format!("worker suppresses {}", ex(&e)));
            }
            sleep(1.0)?;
            log("worker goes on");
            Ok(7)
        });
        sleep(1.0)?;
        t.cancel();
        let v = t.join()?;
        log(format!(
            "worker returned {v}, cancelled={} cancelling={}",
            t.is_cancelled().py(),
            t.cancelling()
        ));
        Ok(v)
    });
    assert_eq!(
        trace,
        [
            "1.0 worker suppresses CancelledError()",
            "2.0 worker goes on",
            "2.0 worker returned 7, cancelled=False cancelling=1",
            "result 7",
            "end 2.0",
        ]
    );
}

// B5.2: no body code runs; the message reaches the first retrieval.
//
// Python: tests/cpython/runtime_cancellation/cancel_before_start_never_runs_the_body.py
#[test]
fn cancel_before_start_never_runs_the_body() {
    let drops = Drops::default();
    let d = drops.clone();
    let trace = go(move || {
        let sentinel = d.sentinel("body");
        let t = runtime::spawn(move || {
            let _sentinel = sentinel;
            log("body runs");
            Ok(1)
        });
        log(format!("cancel -> {}", t.cancel_with("early").py()));
        if let Err(e) = t.join() {
            log(format!("main caught {}", ex(&e)));
        }
        log(format!("cancelled={}", t.is_cancelled().py()));
        sleep(1.0)?;
        Ok(0)
    });
    assert_eq!(drops.count("body"), 1, "the unstarted body is dropped once");
    assert_eq!(
        trace,
        [
            "0.0 cancel -> True",
            "0.0 main caught CancelledError(early)",
            "0.0 cancelled=True",
            "result 0",
            "end 1.0",
        ]
    );
}

// B5.1, B4.4: cancelling a done task returns False and changes nothing;
// in 3.11 a repeated cancel of a pending task returns True again.
//
// Python: tests/cpython/runtime_cancellation/cancel_of_finished_task_returns_false.py
#[test]
fn cancel_of_finished_task_returns_false() {
    let trace = go(|| {
        let t = runtime::spawn(|| Ok(1));
        t.join()?;
        log(format!(
            "cancel finished -> {} cancelled={} cancelling={}",
            t.cancel().py(),
            t.is_cancelled().py(),
            t.cancelling()
        ));
        let u = runtime::spawn(|| {
            if let Err(e) = sleep(5.0) {
                log(format!("slow caught {}", ex(&e)));
                return Err(e);
            }
            Ok(())
        });
        sleep(1.0)?;
        let (first, second) = (u.cancel(), u.cancel());
        log(format!(
            "cancel -> {}, again -> {}, cancelling={}",
            first.py(),
            second.py(),
            u.cancelling()
        ));
        if let Err(e) = u.join() {
            log(format!("main caught {}", ex(&e)));
        }
        log(format!("cancel cancelled -> {}", u.cancel().py()));
        Ok(u.is_cancelled())
    });
    assert_eq!(
        trace,
        [
            "0.0 cancel finished -> False cancelled=False cancelling=0",
            "1.0 cancel -> True, again -> True, cancelling=2",
            "1.0 slow caught CancelledError()",
            "1.0 main caught CancelledError()",
            "1.0 cancel cancelled -> False",
            "result True",
            "end 1.0",
        ]
    );
}

// B5.5: the message is seen at the wait and at the first retrieval.
//
// Python: tests/cpython/runtime_cancellation/cancel_with_message.py
#[test]
fn cancel_with_message() {
    let trace = go(|| {
        let t = runtime::spawn(|| {
            if let Err(e) = sleep(10.0) {
                log(format!("worker caught {}", ex(&e)));
                return Err(e);
            }
            Ok(())
        });
        sleep(1.0)?;
        t.cancel_with("stop it");
        if let Err(e) = t.join() {
            log(format!("main caught {}", ex(&e)));
        }
        Ok(t.is_cancelled())
    });
    assert_eq!(
        trace,
        [
            "1.0 worker caught CancelledError(stop it)",
            "1.0 main caught CancelledError(stop it)",
            "result True",
            "end 1.0",
        ]
    );
}

// B5.6: cancelling() counts the requests, uncancel() withdraws one (not
// below zero) and returns what is left.
//
// Python: tests/cpython/runtime_cancellation/cancelling_and_uncancel_counts.py
#[test]
fn cancelling_and_uncancel_counts() {
    let trace = go(|| {
        let t = runtime::spawn(|| {
            let me = me();
            if let Err(e) = sleep(10.0) {
                log(format!("worker caught {}, cancelling={}", ex(&e), me.cancelling()));
                for _ in 0..3 {
                    log(format!("uncancel -> {}", me.uncancel()));
                }
            }
            sleep(1.0)?;
            log(format!("worker goes on, cancelling={}", me.cancelling()));
            Ok("survived")
        });
        log(format!("before: cancelling={}", t.cancelling()));
        sleep(1.0)?;
        t.cancel();
        t.cancel();
        log(format!("after two cancels: cancelling={}", t.cancelling()));
        let v = t.join()?;
        log(format!("{v}: cancelled={} cancelling={}", t.is_cancelled().py(), t.cancelling()));
        Ok(v)
    });
    assert_eq!(
        trace,
        [
            "0.0 before: cancelling=0",
            "1.0 after two cancels: cancelling=2",
            "1.0 worker caught CancelledError(), cancelling=2",
            "1.0 uncancel -> 1",
            "1.0 uncancel -> 0",
            "1.0 uncancel -> 0",
            "2.0 worker goes on, cancelling=0",
            "2.0 survived: cancelled=False cancelling=0",
            "result survived",
            "end 2.0",
        ]
    );
}

// B5.4: a task that cancels itself runs on until its next wait.
//
// Python: tests/cpython/runtime_cancellation/self_cancel_arrives_at_the_next_wait.py
#[test]
fn self_cancel_arrives_at_the_next_wait() {
    let trace = go(|| {
        let t = runtime::spawn(|| {
            log(format!("self-cancel -> {}", me().cancel().py()));
            log("still running until the next await");
            if let Err(e) = sleep(5.0) {
                log(format!("caught {} at the await", ex(&e)));
                return Err(e);
            }
            Ok(())
        });
        if let Err(e) = t.join() {
            log(format!("main caught {}", ex(&e)));
        }
        Ok(t.is_cancelled())
    });
    assert_eq!(
        trace,
        [
            "0.0 self-cancel -> True",
            "0.0 still running until the next await",
            "0.0 caught CancelledError() at the await",
            "0.0 main caught CancelledError()",
            "result True",
            "end 0.0",
        ]
    );
}

// B5.4: a cancel requested while the body runs, which then returns before
// waiting again, still ends the task cancelled.
//
// Python: tests/cpython/runtime_cancellation/cancel_at_end_still_cancels.py
#[test]
fn cancel_at_end_still_cancels() {
    let trace = go(|| {
        let t = runtime::spawn(|| {
            sleep(1.0)?;
            me().cancel();
            log("worker returns 12 with a cancel pending");
            Ok(12)
        });
        match t.join() {
            Ok(v) => log(format!("await -> {v}")),
            Err(e) => log(format!("main caught {}", ex(&e))),
        }
        Ok(t.is_cancelled())
    });
    assert_eq!(
        trace,
        [
            "1.0 worker returns 12 with a cancel pending",
            "1.0 main caught CancelledError()",
            "result True",
            "end 1.0",
        ]
    );
}

// B5.1 with B0.5: the sleep has completed but the task has not resumed yet;
// the cancel is delivered at that sleep all the same.
//
// Python: tests/cpython/runtime_cancellation/cancel_after_the_timer_fired_reaches_the_sleep.py
#[test]
fn cancel_after_the_timer_fired_reaches_the_sleep() {
    let trace = go(|| {
        let t = runtime::spawn(|| match sleep(1.0) {
            Ok(()) => {
                log("sleeper woke normally");
                Ok(())
            }
            Err(e) => {
                log(format!("sleeper caught {}", ex(&e)));
                Err(e)
            }
        });
        sleep(0.0)?;
        let t2 = t.clone();
        runtime::call_later(secs(1.0), move || log(format!("cancel -> {}", t2.cancel().py())))?;
        if let Err(e) = t.join() {
            log(format!("main caught {}", ex(&e)));
        }
        Ok(t.is_cancelled())
    });
    assert_eq!(
        trace,
        [
            "1.0 cancel -> True",
            "1.0 sleeper caught CancelledError()",
            "1.0 main caught CancelledError()",
            "result True",
            "end 1.0",
        ]
    );
}

// B5.1: a task suspended in sleep(0) waits on nothing; the cancel is
// delivered at its next step.
//
// Python: tests/cpython/runtime_cancellation/cancel_during_sleep_zero.py
#[test]
fn cancel_during_sleep_zero() {
    let trace = go(|| {
        let t = runtime::spawn(|| {
            log("yielder yields");
            match sleep(0.0) {
                Ok(()) => {
                    log("not reached");
                    Ok(())
                }
                Err(e) => {
                    log(format!("yielder caught {}", ex(&e)));
                    Err(e)
                }
            }
        });
        sleep(0.0)?;
        log(format!("cancel -> {}", t.cancel().py()));
        if let Err(e) = t.join() {
            log(format!("main caught {}", ex(&e)));
        }
        Ok(t.is_cancelled())
    });
    assert_eq!(
        trace,
        [
            "0.0 yielder yields",
            "0.0 cancel -> True",
            "0.0 yielder caught CancelledError()",
            "0.0 main caught CancelledError()",
            "result True",
            "end 0.0",
        ]
    );
}

// A second cancel reaches the wait of the cleanup.
//
// Python: tests/cpython/runtime_cancellation/second_cancel_interrupts_cleanup.py
#[test]
fn second_cancel_interrupts_cleanup() {
    let trace = go(|| {
        let t = runtime::spawn(|| {
            if let Err(e) = sleep(10.0) {
                log(format!("worker caught {}, cleaning up for 5", ex(&e)));
                if let Err(e2) = sleep(5.0) {
                    log(format!("cleanup interrupted by {}", ex(&e2)));
                }
                return Err(e);
            }
            Ok(())
        });
        sleep(1.0)?;
        t.cancel_with("first");
        sleep(1.0)?;
        t.cancel_with("second");
        if let Err(e) = t.join() {
            log(format!("main caught {}", ex(&e)));
        }
        Ok(t.cancelling())
    });
    assert_eq!(
        trace,
        [
            "1.0 worker caught CancelledError(first), cleaning up for 5",
            "2.0 cleanup interrupted by CancelledError(second)",
            "2.0 main caught CancelledError(first)",
            "result 2",
            "end 2.0",
        ]
    );
}

// B5.7: the outer task waits on the inner one, so cancelling the outer task
// cancels the inner one (with the message), and the outer task's wait
// returns once the inner one has finished its cleanup.
//
// Python: tests/cpython/runtime_cancellation/cancelling_a_waiting_task_cancels_the_awaited_task.py
#[test]
fn cancelling_a_waiting_task_cancels_the_awaited_task() {
    let trace = go(|| {
        let i = runtime::spawn(|| {
            if let Err(e) = sleep(10.0) {
                log(format!("inner caught {}", ex(&e)));
                sleep(1.0)?;
                log("inner cleanup done");
                return Err(e);
            }
            Ok(())
        });
        let i2 = i.clone();
        let o = runtime::spawn(move || {
            if let Err(e) = i2.join() {
                log(format!("outer caught {}", ex(&e)));
                return Err(e);
            }
            Ok(())
        });
        sleep(1.0)?;
        log(format!("cancel outer -> {}", o.cancel_with("stop").py()));
        log(format!("inner cancelling={} outer cancelling={}", i.cancelling(), o.cancelling()));
        if let Err(e) = o.join() {
            log(format!("main caught {}", ex(&e)));
        }
        Ok(vec![i.is_cancelled(), o.is_cancelled()])
    });
    assert_eq!(
        trace,
        [
            "1.0 cancel outer -> True",
            "1.0 inner cancelling=1 outer cancelling=1",
            "1.0 inner caught CancelledError(stop)",
            "2.0 inner cleanup done",
            "2.0 outer caught CancelledError(stop)",
            "2.0 main caught CancelledError(stop)",
            "result [True, True]",
            "end 2.0",
        ]
    );
}

// B5.7 with B5.3: if the inner task suppresses the cancellation, the outer
// task's wait returns the inner value, and the outer task goes on.
//
// Python: tests/cpython/runtime_cancellation/awaited_task_suppressing_the_cancel_returns_to_the_waiter.py
#[test]
fn awaited_task_suppressing_the_cancel_returns_to_the_waiter() {
    let trace = go(|| {
        let i = runtime::spawn(|| {
            if sleep(10.0).is_err() {
                log("inner suppresses");
            }
            sleep(1.0)?;
            Ok("inner value")
        });
        let o = runtime::spawn(move || {
            let v = i.join()?;
            log(format!("outer got {v}"));
            sleep(1.0)?;
            log("outer goes on");
            Ok(v)
        });
        sleep(1.0)?;
        o.cancel();
        let v = o.join()?;
        log(format!(
            "outer returned {v}, cancelled={} cancelling={}",
            o.is_cancelled().py(),
            o.cancelling()
        ));
        Ok(v)
    });
    assert_eq!(
        trace,
        [
            "1.0 inner suppresses",
            "2.0 outer got inner value",
            "3.0 outer goes on",
            "3.0 outer returned inner value, cancelled=False cancelling=1",
            "result inner value",
            "end 3.0",
        ]
    );
}
