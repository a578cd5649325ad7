//! `docs/semantics.md` section B: `timeout` / `timeout_at` (B9) and `TaskGroup`
//! (B12), on the virtual clock.
//!
//! Each scenario was written in Python first and run with CPython 3.11; its
//! output is the expected trace. The program is
//! `tests/cpython/runtime_timeout_taskgroup/<test name>.py`, named in the
//! comment above the test, and `tests/cpython_programs.rs` runs it and checks
//! that it prints what the test asserts (`prelude` is
//! `tests/cpython/prelude.py`).
//!
//! `async with asyncio.timeout(d) as cm:` is
//! `runtime::timeout(Some(d), |cm| ...)`;
//! `async with asyncio.TaskGroup() as tg:` is `runtime::task_group(|tg| ...)`;
//! an `ExceptionGroup` is an `ErrorKind::Group` error whose `errors()` are
//! printed in order.

mod common;

use common::*;
use gencoro::runtime::{self, Error, ErrorKind, Task, Timeout};

/// Python: `f"{cm.when():.1f}"`, or `None`.
fn when(cm: &Timeout) -> String {
    match cm.when() {
        Some(w) => format!("{:.1}", w.as_secs_f64()),
        None => "None".to_owned(),
    }
}

/// Loop time plus `s` seconds. Python: `loop.time() + s`.
fn at(s: f64) -> std::time::Duration {
    runtime::time().unwrap() + secs(s)
}

/// Loop time minus `s` seconds. Python: `loop.time() - s`.
fn ago(s: f64) -> std::time::Duration {
    runtime::time().unwrap() - secs(s)
}

// ---------------------------------------------------------------------------
// B9: timeout
// ---------------------------------------------------------------------------

// Python: tests/cpython/runtime_timeout_taskgroup/timeout_basic.py
#[test]
fn timeout_basic() {
    let trace = go(|| {
        let mut saved = None;
        let r = runtime::timeout(Some(secs(1.0)), |cm| {
            saved = Some(cm.clone());
            log(format!("when={}", when(cm)));
            if let Err(e) = sleep(10.0) {
                log(format!("body caught {}, expired={}", ex(&e), cm.expired().py()));
                return Err(e);
            }
            Ok(())
        });
        let cm = saved.expect("the body ran");
        match r {
            Err(e) if e.is_timeout() => log(format!(
                "timeout raised {}, expired={}, cancelling={}",
                ex(&e),
                cm.expired().py(),
                me().cancelling()
            )),
            other => other?,
        }
        let mut saved = None;
        let v = runtime::timeout(Some(secs(2.0)), |cm| {
            saved = Some(cm.clone());
            sleep(0.5)?;
            Ok(7)
        })?;
        log(format!("in time: {v}, expired={}", saved.unwrap().expired().py()));
        sleep(5.0)?;
        log(format!("still fine, cancelling={}", me().cancelling()));
        Ok(v)
    });
    assert_eq!(
        trace,
        [
            "0.0 when=1.0",
            "1.0 body caught CancelledError(), expired=True",
            "1.0 timeout raised TimeoutError, expired=True, cancelling=0",
            "1.5 in time: 7, expired=False",
            "6.5 still fine, cancelling=0",
            "result 7",
            "end 6.5",
        ]
    );
}

// B9.1, B9.3: no deadline; a zero or past deadline fires in the next
// iteration, even around sleep(0); timeout_at takes loop time.
//
// Python: tests/cpython/runtime_timeout_taskgroup/timeout_none_zero_past_and_timeout_at.py
#[test]
fn timeout_none_zero_past_and_timeout_at() {
    let trace = go(|| {
        let mut saved = None;
        runtime::timeout(None, |cm| {
            saved = Some(cm.clone());
            sleep(5.0)
        })?;
        let cm = saved.take().unwrap();
        log(format!("no deadline: when={} expired={}", when(&cm), cm.expired().py()));
        let r = runtime::timeout(Some(secs(0.0)), |_| {
            sleep(0.0)?;
            log("not reached");
            Ok(())
        });
        match r {
            Err(e) if e.is_timeout() => {
                log(format!("timeout(0) around sleep(0) raised {}", ex(&e)))
            }
            other => other?,
        }
        let r = runtime::timeout_at(Some(ago(1.0)), |_| {
            log("body runs until its first wait");
            sleep(0.0)?;
            log("not reached");
            Ok(())
        });
        match r {
            Err(e) if e.is_timeout() => log(format!("past deadline raised {}", ex(&e))),
            other => other?,
        }
        let r = runtime::timeout_at(Some(at(1.5)), |cm| {
            saved = Some(cm.clone());
            sleep(3.0)
        });
        match r {
            Err(e) if e.is_timeout() => {
                log(format!("timeout_at raised {}, when={}", ex(&e), when(saved.as_ref().unwrap())))
            }
            other => other?,
        }
        Ok(0)
    });
    assert_eq!(
        trace,
        [
            "5.0 no deadline: when=None expired=False",
            "5.0 timeout(0) around sleep(0) raised TimeoutError",
            "5.0 body runs until its first wait",
            "5.0 past deadline raised TimeoutError",
            "6.5 timeout_at raised TimeoutError, when=6.5",
            "result 0",
            "end 6.5",
        ]
    );
}

// B9.2: only the block whose deadline fired converts the cancellation; with
// a shared deadline, only the outermost.
//
// Python: tests/cpython/runtime_timeout_taskgroup/nested_timeouts.py
#[test]
fn nested_timeouts() {
    let trace = go(|| {
        // The outer deadline fires.
        let mut outer_cm = None;
        let r = runtime::timeout(Some(secs(1.0)), |outer| {
            outer_cm = Some(outer.clone());
            let mut inner_cm = None;
            let r = runtime::timeout(Some(secs(5.0)), |inner| {
                inner_cm = Some(inner.clone());
                sleep(10.0)
            });
            if let Err(e) = &r {
                if e.is_cancelled() {
                    log(format!(
                        "inner block passed {} on, inner expired={}",
                        ex(e),
                        inner_cm.unwrap().expired().py()
                    ));
                }
            }
            r
        });
        match r {
            Err(e) if e.is_timeout() => log(format!(
                "outer raised TimeoutError, outer expired={}",
                outer_cm.unwrap().expired().py()
            )),
            other => other?,
        }
        // The inner deadline fires.
        runtime::timeout(Some(secs(5.0)), |outer| {
            let mut inner_cm = None;
            let r = runtime::timeout(Some(secs(1.0)), |inner| {
                inner_cm = Some(inner.clone());
                sleep(10.0)
            });
            match r {
                Err(e) if e.is_timeout() => log(format!(
                    "inner raised TimeoutError, inner expired={}",
                    inner_cm.unwrap().expired().py()
                )),
                other => other?,
            }
            sleep(1.0)?;
            log(format!("outer body goes on, outer expired={}", outer.expired().py()));
            Ok(())
        })?;
        // The same deadline.
        let deadline = at(1.0);
        let (mut cm1, mut cm2) = (None, None);
        let r = runtime::timeout_at(Some(deadline), |c1| {
            cm1 = Some(c1.clone());
            let r = runtime::timeout_at(Some(deadline), |c2| {
                cm2 = Some(c2.clone());
                sleep(10.0)
            });
            if let Err(e) = &r {
                if e.is_cancelled() {
                    log(format!("inner passed {} on", ex(e)));
                }
            }
            r
        });
        match r {
            Err(e) if e.is_timeout() => log(format!(
                "outermost raised TimeoutError, expired: {} {}",
                cm1.unwrap().expired().py(),
                cm2.unwrap().expired().py()
            )),
            other => other?,
        }
        Ok(me().cancelling())
    });
    assert_eq!(
        trace,
        [
            "1.0 inner block passed CancelledError() on, inner expired=False",
            "1.0 outer raised TimeoutError, outer expired=True",
            "2.0 inner raised TimeoutError, inner expired=True",
            "3.0 outer body goes on, outer expired=False",
            "4.0 inner passed CancelledError() on",
            "4.0 outermost raised TimeoutError, expired: True True",
            "result 0",
            "end 4.0",
        ]
    );
}

// B9.2: a cancellation from outside passes through, also when it arrives
// together with the deadline.
//
// Python: tests/cpython/runtime_timeout_taskgroup/timeout_lets_foreign_cancellation_through.py
#[test]
fn timeout_lets_foreign_cancellation_through() {
    fn worker(d: f64) -> Task<()> {
        runtime::spawn(move || {
            let mut saved = None;
            let r = runtime::timeout(Some(secs(d)), |cm| {
                saved = Some(cm.clone());
                sleep(20.0)
            });
            match r {
                Err(e) if e.is_cancelled() => {
                    let expired = saved.unwrap().expired();
                    log(format!("worker: {} passed through, expired={}", ex(&e), expired.py()));
                    Err(e)
                }
                Err(e) if e.is_timeout() => {
                    log("worker: TimeoutError");
                    Ok(())
                }
                other => other,
            }
        })
    }
    let trace = go(|| {
        let t = worker(10.0);
        sleep(1.0)?;
        t.cancel_with("outside");
        if let Err(e) = t.join() {
            log(format!("main caught {}, cancelled={}", ex(&e), t.is_cancelled().py()));
        }
        let u = worker(1.0);
        sleep(0.0)?;
        let u2 = u.clone();
        runtime::call_later(secs(1.0), move || {
            u2.cancel();
        })?;
        if let Err(e) = u.join() {
            log(format!("main caught {}, cancelled={}", ex(&e), u.is_cancelled().py()));
        }
        Ok(0)
    });
    assert_eq!(
        trace,
        [
            "1.0 worker: CancelledError(outside) passed through, expired=False",
            "1.0 main caught CancelledError(outside), cancelled=True",
            "2.0 worker: CancelledError() passed through, expired=True",
            "2.0 main caught CancelledError(), cancelled=True",
            "result 0",
            "end 2.0",
        ]
    );
}

// B9.2: only a cancellation becomes a timeout: a body that swallows it
// returns normally, another error passes through unchanged.
//
// Python: tests/cpython/runtime_timeout_taskgroup/timeout_lets_other_outcomes_through.py
#[test]
fn timeout_lets_other_outcomes_through() {
    let trace = go(|| {
        let mut saved = None;
        let v = runtime::timeout(Some(secs(1.0)), |cm| {
            saved = Some(cm.clone());
            if sleep(5.0).is_err() {
                log("body swallows the cancellation");
            }
            Ok("finished anyway")
        })?;
        log(format!(
            "{v}, expired={}, cancelling={}",
            saved.take().unwrap().expired().py(),
            me().cancelling()
        ));
        let r = runtime::timeout(Some(secs(1.0)), |cm| -> Result<(), Error> {
            saved = Some(cm.clone());
            sleep(5.0).map_err(|_| boom("instead"))
        });
        if let Err(e) = r {
            log(format!(
                "raised {}, expired={}, cancelling={}",
                ex(&e),
                saved.take().unwrap().expired().py(),
                me().cancelling()
            ));
        }
        let r = runtime::timeout(Some(secs(1.0)), |cm| -> Result<(), Error> {
            saved = Some(cm.clone());
            sleep(0.5)?;
            Err(boom("early"))
        });
        if let Err(e) = r {
            log(format!("raised {}, expired={}", ex(&e), saved.take().unwrap().expired().py()));
        }
        sleep(2.0)?;
        Ok(me().cancelling())
    });
    assert_eq!(
        trace,
        [
            "1.0 body swallows the cancellation",
            "1.0 finished anyway, expired=True, cancelling=0",
            "2.0 raised Boom(instead), expired=True, cancelling=0",
            "2.5 raised Boom(early), expired=False",
            "result 0",
            "end 4.5",
        ]
    );
}

// B9.3: reschedule moves, disables or (into the past) fires the deadline;
// it is refused once the deadline fired or the block ended.
//
// Python: tests/cpython/runtime_timeout_taskgroup/timeout_reschedule.py
#[test]
fn timeout_reschedule() {
    fn misuse(r: Result<(), Error>) {
        match r {
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Misuse);
                log(format!("RuntimeError: {}", e.message()));
            }
            Ok(()) => log("reschedule accepted"),
        }
    }
    let trace = go(|| {
        let mut saved = None;
        let r = runtime::timeout(None, |cm| {
            saved = Some(cm.clone());
            cm.reschedule(Some(at(1.0)))?;
            log(format!("when={}", when(cm)));
            sleep(0.5)?;
            cm.reschedule(Some(at(2.0)))?;
            log(format!("when={}", when(cm)));
            sleep(10.0)
        });
        let cm = saved.take().unwrap();
        match r {
            Err(e) if e.is_timeout() => {
                log(format!("rescheduled deadline fired, expired={}", cm.expired().py()))
            }
            other => other?,
        }
        misuse(cm.reschedule(None));
        runtime::timeout(Some(secs(1.0)), |cm| {
            saved = Some(cm.clone());
            cm.reschedule(None)?;
            sleep(2.0)
        })?;
        let cm = saved.take().unwrap();
        log(format!("disabled: expired={} when={}", cm.expired().py(), when(&cm)));
        misuse(cm.reschedule(Some(at(5.0))));
        let r = runtime::timeout(Some(secs(1.0)), |cm| {
            if let Err(e) = sleep(2.0) {
                misuse(cm.reschedule(Some(at(10.0))));
                return Err(e);
            }
            Ok(())
        });
        match r {
            Err(e) if e.is_timeout() => log("timed out"),
            other => other?,
        }
        let r = runtime::timeout(Some(secs(10.0)), |cm| {
            sleep(1.0)?;
            cm.reschedule(Some(ago(0.5)))?;
            log("rescheduled into the past");
            sleep(0.0)?;
            log("not reached");
            Ok(())
        });
        match r {
            Err(e) if e.is_timeout() => log("past reschedule raised TimeoutError"),
            other => other?,
        }
        Ok(0)
    });
    assert_eq!(
        trace,
        [
            "0.0 when=1.0",
            "0.5 when=2.5",
            "2.5 rescheduled deadline fired, expired=True",
            "2.5 RuntimeError: Cannot change state of expired Timeout",
            "4.5 disabled: expired=False when=None",
            "4.5 RuntimeError: Cannot change state of finished Timeout",
            "5.5 RuntimeError: Cannot change state of expiring Timeout",
            "5.5 timed out",
            "6.5 rescheduled into the past",
            "6.5 past reschedule raised TimeoutError",
            "result 0",
            "end 6.5",
        ]
    );
}

// ---------------------------------------------------------------------------
// B12: TaskGroup
// ---------------------------------------------------------------------------

/// Python: `job(name, d, fail=False, cleanup=0)`.
fn job(
    name: &'static str,
    d: f64,
    fail: bool,
    cleanup: f64,
) -> impl FnOnce() -> Result<&'static str, Error> {
    move || {
        if let Err(e) = sleep(d) {
            log(format!("{name} cancelled"));
            sleep(cleanup)?;
            log(format!("{name} cleanup done"));
            return Err(e);
        }
        if fail {
            log(format!("{name} fails"));
            return Err(boom(name));
        }
        log(format!("{name} done"));
        Ok(name)
    }
}

/// Python: `quiet(name, d, cleanup)`: logs only when done or cleaned up, so
/// the order in which a group cancels its tasks (a set's order in Python)
/// does not show.
fn quiet(name: &'static str, d: f64, cleanup: f64) -> impl FnOnce() -> Result<(), Error> {
    move || {
        if let Err(e) = sleep(d) {
            sleep(cleanup)?;
            log(format!("{name} cleanup done"));
            return Err(e);
        }
        log(format!("{name} done"));
        Ok(())
    }
}

// B12.2: the group waits for every task, including one spawned late.
//
// Python: tests/cpython/runtime_timeout_taskgroup/task_group_waits_for_all.py
#[test]
fn task_group_waits_for_all() {
    let trace = go(|| {
        let (a, b) = runtime::task_group(|tg| {
            let a = tg.spawn(job("a", 3.0, false, 0.0))?;
            let b = tg.spawn(job("b", 1.0, false, 0.0))?;
            log("body ends");
            Ok((a, b))
        })?;
        log(format!("group exited: {} {}", a.result()?, b.result()?));
        runtime::task_group(|tg| {
            tg.spawn(job("c", 1.0, false, 0.0))?;
            sleep(2.0)?;
            tg.spawn(job("d", 1.0, false, 0.0))?;
            log("body ends");
            Ok(())
        })?;
        log("second group exited");
        Ok(me().cancelling())
    });
    assert_eq!(
        trace,
        [
            "0.0 body ends",
            "1.0 b done",
            "3.0 a done",
            "3.0 group exited: a b",
            "4.0 c done",
            "5.0 body ends",
            "6.0 d done",
            "6.0 second group exited",
            "result 0",
            "end 6.0",
        ]
    );
}

// B12.3, B12.1: the first failure cancels the other tasks and the body's
// wait; the group refuses new tasks while shutting down, waits for the
// cancelled ones, and reports the failure; the parent is not left
// cancelled.
//
// Python: tests/cpython/runtime_timeout_taskgroup/task_group_first_failure_cancels_siblings_and_body.py
#[test]
fn task_group_first_failure_cancels_siblings_and_body() {
    let trace = go(|| {
        let mut handles = None;
        let r = runtime::task_group(|tg| {
            tg.spawn(job("a", 1.0, true, 0.0))?;
            let b = tg.spawn(job("b", 10.0, false, 1.0))?;
            let x = tg.spawn(job("x", 0.5, false, 0.0))?;
            handles = Some((b, x));
            if let Err(e) = sleep(5.0) {
                log(format!("body caught {}", ex(&e)));
                match tg.spawn(job("late", 1.0, false, 0.0)) {
                    Err(e) => {
                        assert_eq!(e.kind(), ErrorKind::Misuse);
                        log(format!(
                            "spawn refused: {}",
                            e.message().contains("is shutting down").py()
                        ));
                    }
                    Ok(_) => log("spawn accepted"),
                }
                return Err(e);
            }
            Ok(())
        });
        if let Err(e) = r {
            log(format!("group raised {}", ex(&e)));
        }
        let (b, x) = handles.unwrap();
        log(format!(
            "b cancelled={}, x -> {}, cancelling={}",
            b.is_cancelled().py(),
            x.result()?,
            me().cancelling()
        ));
        Ok(me().cancelling())
    });
    assert_eq!(
        trace,
        [
            "0.5 x done",
            "1.0 a fails",
            "1.0 b cancelled",
            "1.0 body caught CancelledError()",
            "1.0 spawn refused: True",
            "2.0 b cleanup done",
            "2.0 group raised ExceptionGroup[Boom(a)]",
            "2.0 b cancelled=True, x -> x, cancelling=0",
            "result 0",
            "end 2.0",
        ]
    );
}

// B12.3: every failure is reported, in the order they happened, the body's
// own last.
//
// Python: tests/cpython/runtime_timeout_taskgroup/task_group_reports_all_failures_together.py
#[test]
fn task_group_reports_all_failures_together() {
    fn fail(name: &'static str, d: f64) -> impl FnOnce() -> Result<(), Error> {
        move || {
            sleep(d)?;
            log(format!("{name} fails"));
            Err(boom(name))
        }
    }
    let errors = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let errs = errors.clone();
    let trace = go(move || {
        let r = runtime::task_group(|tg| {
            tg.spawn(fail("a", 1.0))?;
            tg.spawn(|| -> Result<(), Error> {
                if sleep(10.0).is_err() {
                    log("b cancelled");
                    sleep(1.0)?;
                    log("b cleanup fails");
                    return Err(boom("b cleanup"));
                }
                Ok(())
            })?;
            tg.spawn(fail("c", 1.0))?;
            if sleep(5.0).is_err() {
                log("body cancelled, raises");
                return Err(boom("body"));
            }
            Ok(())
        });
        if let Err(e) = r {
            log(format!("group raised {}", ex(&e)));
            *errs.borrow_mut() = e.errors().to_vec();
        }
        Ok(me().cancelling())
    });
    assert_eq!(
        trace,
        [
            "1.0 a fails",
            "1.0 c fails",
            "1.0 b cancelled",
            "1.0 body cancelled, raises",
            "2.0 b cleanup fails",
            "2.0 group raised ExceptionGroup[Boom(a), Boom(c), Boom(b cleanup), Boom(body)]",
            "result 0",
            "end 2.0",
        ]
    );
    let messages: Vec<String> =
        errors.borrow().iter().map(|e| e.downcast_ref::<Boom>().unwrap().0.clone()).collect();
    assert_eq!(messages, ["a", "c", "b cleanup", "body"]);
}

// B12.4: cancelling a task of the group yourself is not a failure.
//
// Python: tests/cpython/runtime_timeout_taskgroup/task_group_child_cancelled_is_not_a_failure.py
#[test]
fn task_group_child_cancelled_is_not_a_failure() {
    fn job(name: &'static str, d: f64) -> impl FnOnce() -> Result<&'static str, Error> {
        move || {
            if let Err(e) = sleep(d) {
                log(format!("{name} cancelled"));
                return Err(e);
            }
            log(format!("{name} done"));
            Ok(name)
        }
    }
    let trace = go(|| {
        let (a, b) = runtime::task_group(|tg| {
            let a = tg.spawn(job("a", 10.0))?;
            let b = tg.spawn(job("b", 2.0))?;
            sleep(1.0)?;
            a.cancel();
            log("body cancelled a");
            Ok((a, b))
        })?;
        log(format!(
            "group exited normally, a cancelled={}, b -> {}",
            a.is_cancelled().py(),
            b.result()?
        ));
        Ok(0)
    });
    assert_eq!(
        trace,
        [
            "1.0 body cancelled a",
            "1.0 a cancelled",
            "2.0 b done",
            "2.0 group exited normally, a cancelled=True, b -> b",
            "result 0",
            "end 2.0",
        ]
    );
}

// B12.5: cancelling the parent cancels every task; the group waits for
// them and passes the cancellation on.
//
// Python: tests/cpython/runtime_timeout_taskgroup/task_group_parent_cancelled_from_outside.py
#[test]
fn task_group_parent_cancelled_from_outside() {
    let trace = go(|| {
        let r = runtime::spawn(|| {
            let result = runtime::task_group(|tg| {
                tg.spawn(quiet("a", 10.0, 1.0))?;
                tg.spawn(quiet("b", 10.0, 2.0))?;
                if let Err(e) = sleep(10.0) {
                    log(format!("body caught {}", ex(&e)));
                    return Err(e);
                }
                Ok(())
            });
            if let Err(e) = &result {
                if e.is_cancelled() {
                    log(format!("group raised {}", ex(e)));
                }
            }
            result
        });
        sleep(1.0)?;
        r.cancel_with("outside");
        if let Err(e) = r.join() {
            log(format!("main caught {}, cancelled={}", ex(&e), r.is_cancelled().py()));
        }
        Ok(0)
    });
    assert_eq!(
        trace,
        [
            "1.0 body caught CancelledError(outside)",
            "2.0 a cleanup done",
            "3.0 b cleanup done",
            "3.0 group raised CancelledError(outside)",
            "3.0 main caught CancelledError(outside), cancelled=True",
            "result 0",
            "end 3.0",
        ]
    );
}

// B12.5: failures take priority over the parent's cancellation.
//
// Python: tests/cpython/runtime_timeout_taskgroup/task_group_errors_take_priority_over_outside_cancel.py
#[test]
fn task_group_errors_take_priority_over_outside_cancel() {
    let trace = go(|| {
        let r = runtime::spawn(|| {
            runtime::task_group(|tg| {
                tg.spawn(|| -> Result<(), Error> {
                    if sleep(10.0).is_err() {
                        sleep(1.0)?;
                        log("a cleanup fails");
                        return Err(boom("a cleanup"));
                    }
                    Ok(())
                })?;
                sleep(10.0)
            })
        });
        sleep(1.0)?;
        r.cancel();
        if let Err(e) = r.join() {
            log(format!("runner raised {}, cancelled={}", ex(&e), r.is_cancelled().py()));
        }
        Ok(0)
    });
    assert_eq!(
        trace,
        [
            "2.0 a cleanup fails",
            "2.0 runner raised ExceptionGroup[Boom(a cleanup)], cancelled=False",
            "result 0",
            "end 2.0",
        ]
    );
}

// B12.3: the body's own failure cancels the tasks and is reported with
// theirs; a panicking task is a failure of the group. (CPython 3.11 calls
// `uncancel` before waiting for the tasks, so a failure that arrives while
// the group waits leaves the parent's cancel count at 1.)
//
// Python: tests/cpython/runtime_timeout_taskgroup/task_group_body_error_cancels_children.py
#[test]
fn task_group_body_error_cancels_children() {
    let trace = go(|| {
        let r = runtime::task_group(|tg| -> Result<(), Error> {
            tg.spawn(job("a", 10.0, false, 1.0))?;
            sleep(1.0)?;
            Err(boom("body"))
        });
        if let Err(e) = r {
            log(format!("group raised {}", ex(&e)));
        }
        let r = runtime::task_group(|tg| {
            tg.spawn(|| -> Result<(), Error> {
                sleep(0.5)?;
                panic!("child panicked")
            })?;
            tg.spawn(job("b", 10.0, false, 0.0))?;
            Ok(())
        });
        if let Err(e) = r {
            log(format!("group raised {}", ex(&e)));
        }
        Ok(me().cancelling())
    });
    assert_eq!(
        trace,
        [
            "1.0 a cancelled",
            "2.0 a cleanup done",
            "2.0 group raised ExceptionGroup[Boom(body)]",
            "2.5 b cancelled",
            "2.5 b cleanup done",
            "2.5 group raised ExceptionGroup[Panicked(child panicked)]",
            "result 1",
            "end 2.5",
        ]
    );
}

// B12.2, B12.5: the body has ended and the group waits for its tasks when
// the parent is cancelled: the group cancels them, waits, and passes the
// cancellation on.
//
// Python: tests/cpython/runtime_timeout_taskgroup/task_group_cancelled_while_waiting_for_its_tasks.py
#[test]
fn task_group_cancelled_while_waiting_for_its_tasks() {
    let trace = go(|| {
        let r = runtime::spawn(|| {
            let result = runtime::task_group(|tg| {
                tg.spawn(quiet("a", 10.0, 1.0))?;
                tg.spawn(quiet("b", 10.0, 2.0))?;
                log("body ends");
                Ok(())
            });
            if let Err(e) = &result {
                if e.is_cancelled() {
                    log(format!("group raised {}", ex(e)));
                }
            }
            result
        });
        sleep(1.0)?;
        r.cancel();
        if let Err(e) = r.join() {
            log(format!("main caught {}, cancelled={}", ex(&e), r.is_cancelled().py()));
        }
        Ok(0)
    });
    assert_eq!(
        trace,
        [
            "0.0 body ends",
            "2.0 a cleanup done",
            "3.0 b cleanup done",
            "3.0 group raised CancelledError()",
            "3.0 main caught CancelledError(), cancelled=True",
            "result 0",
            "end 3.0",
        ]
    );
}

// B9 with B12: the deadline cancels the task waiting for its group; the
// group cancels its tasks and waits for them, then the timeout converts.
//
// Python: tests/cpython/runtime_timeout_taskgroup/timeout_around_a_task_group.py
#[test]
fn timeout_around_a_task_group() {
    let trace = go(|| {
        let mut saved = None;
        let r = runtime::timeout(Some(secs(1.0)), |cm| {
            saved = Some(cm.clone());
            runtime::task_group(|tg| {
                tg.spawn(quiet("a", 5.0, 0.5))?;
                tg.spawn(quiet("b", 5.0, 1.0))?;
                tg.spawn(quiet("c", 0.5, 0.0))?;
                Ok(())
            })
        });
        match r {
            Err(e) if e.is_timeout() => log(format!(
                "raised {}, expired={}, cancelling={}",
                ex(&e),
                saved.unwrap().expired().py(),
                me().cancelling()
            )),
            other => other?,
        }
        Ok(0)
    });
    assert_eq!(
        trace,
        [
            "0.5 c done",
            "1.5 a cleanup done",
            "2.0 b cleanup done",
            "2.0 raised TimeoutError, expired=True, cancelling=0",
            "result 0",
            "end 2.0",
        ]
    );
}

// B8, B9.2: the TimeoutError of `wait_for` and of `timeout` is raised from the
// cancellation that interrupted the wait; in Rust it is the error's
// `source()`.
//
// Python: tests/cpython/runtime_timeout_taskgroup/timeouts_are_raised_from_the_cancellation.py
#[test]
fn timeouts_are_raised_from_the_cancellation() {
    fn cause(e: &Error) -> String {
        use std::error::Error as _;
        match e.source().and_then(|s| s.downcast_ref::<Error>()) {
            Some(cause) => ex(cause),
            None => "nothing".to_owned(),
        }
    }
    let trace = go(|| {
        let sleeper = runtime::spawn(|| sleep(10.0));
        match runtime::wait_for(Some(secs(1.0)), &sleeper) {
            Err(e) if e.is_timeout() => {
                log(format!("wait_for raised {} from {}", ex(&e), cause(&e)))
            }
            other => other?,
        }
        match runtime::timeout(Some(secs(1.0)), |_| sleep(10.0)) {
            Err(e) if e.is_timeout() => {
                log(format!("timeout raised {} from {}", ex(&e), cause(&e)))
            }
            other => other?,
        }
        Ok(0)
    });
    assert_eq!(
        trace,
        [
            "1.0 wait_for raised TimeoutError from CancelledError()",
            "2.0 timeout raised TimeoutError from CancelledError()",
            "result 0",
            "end 2.0",
        ]
    );
}

// B12: a task of a group holds a handle to it and spawns into it; the group
// waits for those too. Spawning after the group has finished is refused
// (Python: `RuntimeError('TaskGroup ... is finished')`).
//
// Python: tests/cpython/runtime_timeout_taskgroup/task_group_tasks_spawn_into_their_own_group.py
#[test]
fn task_group_tasks_spawn_into_their_own_group() {
    fn child(tg: runtime::TaskGroup, n: u32) -> Result<(), Error> {
        log(format!("child {n}"));
        if n < 2 {
            let group = tg.clone();
            tg.spawn(move || child(group, n + 1))?;
        }
        sleep(1.0)?;
        log(format!("child {n} done"));
        Ok(())
    }
    let trace = go(|| {
        let mut kept = None;
        runtime::task_group(|tg| {
            kept = Some(tg.clone());
            let group = tg.clone();
            tg.spawn(move || child(group, 0))?;
            Ok(())
        })?;
        log("group done");
        let tg = kept.expect("kept the group");
        let group = tg.clone();
        match tg.spawn(move || child(group, 9)) {
            Err(e) => log(format!(
                "late spawn refused: {}",
                (e.kind() == ErrorKind::Misuse && e.message().ends_with("is finished")).py()
            )),
            Ok(_) => log("late spawn accepted"),
        }
        Ok(0)
    });
    assert_eq!(
        trace,
        [
            "0.0 child 0",
            "0.0 child 1",
            "0.0 child 2",
            "1.0 child 0 done",
            "1.0 child 1 done",
            "1.0 child 2 done",
            "1.0 group done",
            "1.0 late spawn refused: True",
            "result 0",
            "end 1.0",
        ]
    );
}
