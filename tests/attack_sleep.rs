//! A hostile review of the step-armed sleep (`runtime::sleep` suspends with
//! `Suspend::Sleep`, and the task's step arms the timer on the loop's
//! stack) and of the larger per-thread record cache, from the public API
//! only.
//!
//! Every scenario with a CPython 3.11 counterpart carries its Python
//! program (on the prelude of `tests/cpython/prelude.py`: a virtual clock,
//! equal deadlines first in, first out) and runs it with `python3`: the
//! trace gencoro prints must be the one CPython prints. The expected trace
//! is also written in a comment above each test. Everything runs on the
//! virtual clock.

mod common;

#[path = "common/drop_counter.rs"]
mod drop_counter;
#[path = "common/inline_python.rs"]
mod inline_python;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use common::*;
use drop_counter::{Counted, Counter};
use gencoro::Generator;
use gencoro::runtime::{self, Builder, Clock, Error, ErrorKind, Task};
use inline_python::same_as_cpython;

// ---------------------------------------------------------------------
// Helpers.

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A runner on a fresh virtual clock that hands back the clock's end time.
fn run_on_virtual<T: 'static>(
    main: impl FnOnce() -> Result<T, Error> + 'static,
) -> (Result<T, Error>, Duration) {
    let clock = Clock::virtual_time();
    let r = Builder::new().clock(clock.clone()).run(main);
    (r, clock.now())
}

// ---------------------------------------------------------------------
// Ordering.

// Tasks sleeping equal and different delays, spawned in a scrambled order,
// each sleeping again on waking: deadline order, equal deadlines first in,
// first out (the prelude's FIFO rule).
//
// Expected (CPython 3.11): 0.5 h woke / 1.0 b, d, g woke / 2.0 c, f woke /
// 2.0 d woke again / 3.0 a, e woke / 3.0 h, b, g, c woke again /
// 3.5 e woke again / 4.0 f, a woke again / 4.0 all done / result 8 / end 4.0
const MANY_SLEEPERS_PY: &str = r#"
from prelude import *

async def sleeper(name, first, again):
    await asyncio.sleep(first)
    log(f"{name} woke")
    await asyncio.sleep(again)
    log(f"{name} woke again")

async def main():
    plan = [("a", 3, 1), ("b", 1, 2), ("c", 2, 1), ("d", 1, 1),
            ("e", 3, 0.5), ("f", 2, 2), ("g", 1, 2), ("h", 0.5, 2.5)]
    tasks = [asyncio.create_task(sleeper(n, f, a)) for n, f, a in plan]
    for t in tasks:
        await t
    log("all done")
    return len(tasks)

go(main)
"#;

#[test]
fn equal_and_different_sleeps_fire_in_deadline_then_insertion_order() {
    let trace = go(|| {
        let plan = [
            ("a", 3.0, 1.0),
            ("b", 1.0, 2.0),
            ("c", 2.0, 1.0),
            ("d", 1.0, 1.0),
            ("e", 3.0, 0.5),
            ("f", 2.0, 2.0),
            ("g", 1.0, 2.0),
            ("h", 0.5, 2.5),
        ];
        let tasks: Vec<Task<()>> = plan
            .iter()
            .map(|&(name, first, again)| {
                runtime::spawn(move || {
                    sleep(first)?;
                    log(format!("{name} woke"));
                    sleep(again)?;
                    log(format!("{name} woke again"));
                    Ok(())
                })
            })
            .collect();
        for t in &tasks {
            t.join()?;
        }
        log("all done");
        Ok(tasks.len())
    });
    assert_eq!(trace.len(), 8 * 2 + 3, "{trace:?}");
    same_as_cpython(&trace, MANY_SLEEPERS_PY);
}

// A sleep armed by task A, then a `call_later` by task B in the same
// iteration with the same deadline, then a sleep by task C: insertion
// order at the deadline. Then the reverse: the callback first, the sleep
// second. The callbacks `call_soon` their log line, so it lands in the
// ready queue where the timer's own place puts it: behind A's wake-up,
// ahead of C's (and ahead of E's).
//
// Expected (CPython 3.11):
//   1.0 A woke / 1.0 B's callback, soon after / 1.0 C woke
//   2.0 D's callback, soon after / 2.0 E woke
const SLEEP_THEN_CALL_LATER_PY: &str = r#"
from prelude import *

async def main():
    loop = asyncio.get_running_loop()
    async def a():
        await asyncio.sleep(1)
        log("A woke")
    async def b():
        loop.call_later(1, lambda: loop.call_soon(log, "B's callback, soon after"))
    async def c():
        await asyncio.sleep(1)
        log("C woke")
    ts = [asyncio.create_task(a()), asyncio.create_task(b()), asyncio.create_task(c())]
    await asyncio.sleep(1.5)
    async def d():
        loop.call_later(0.5, lambda: loop.call_soon(log, "D's callback, soon after"))
    async def e():
        await asyncio.sleep(0.5)
        log("E woke")
    ts += [asyncio.create_task(d()), asyncio.create_task(e())]
    for t in ts:
        await t
    log("done")
    return 0

go(main)
"#;

#[test]
fn a_sleep_and_a_call_later_with_the_same_deadline_fire_in_insertion_order() {
    let trace = go(|| {
        let a = runtime::spawn(|| {
            sleep(1.0)?;
            log("A woke");
            Ok(())
        });
        let b = runtime::spawn(|| {
            runtime::call_later(secs(1.0), || {
                runtime::call_soon(|| log("B's callback, soon after")).expect("in the loop");
            })?;
            Ok(())
        });
        let c = runtime::spawn(|| {
            sleep(1.0)?;
            log("C woke");
            Ok(())
        });
        sleep(1.5)?;
        let d = runtime::spawn(|| {
            runtime::call_later(secs(0.5), || {
                runtime::call_soon(|| log("D's callback, soon after")).expect("in the loop");
            })?;
            Ok(())
        });
        let e = runtime::spawn(|| {
            sleep(0.5)?;
            log("E woke");
            Ok(())
        });
        for t in [a, b, c, d, e] {
            t.join()?;
        }
        log("done");
        Ok(0)
    });
    same_as_cpython(&trace, SLEEP_THEN_CALL_LATER_PY);
}

// Tasks woken by timers in one iteration sleep again in that iteration,
// some for the same delay as others still to wake, and a task spawned by
// a done callback sleeps too: the new timers go behind the older ones with
// the same deadline.
//
// Expected (CPython 3.11): 1.0 w0, w1, w3 up / 1.5 w4 up / 1.5 w1 up again /
// 2.0 w2 up / 2.0 w0, w4 up again / 2.0 spawned starts / 2.5 w3, w2 up again /
// 3.0 spawned woke / 3.0 done / result 0 / end 3.0
const RESLEEP_IN_WAKE_ITERATION_PY: &str = r#"
from prelude import *

async def main():
    async def w(name, d1, d2):
        await asyncio.sleep(d1)
        log(f"{name} up, sleeps {d2}")
        await asyncio.sleep(d2)
        log(f"{name} up again")
    async def spawned():
        log("spawned starts")
        await asyncio.sleep(1)
        log("spawned woke")
    ts = [asyncio.create_task(w(n, d1, d2)) for n, d1, d2 in
          [("w0", 1, 1), ("w1", 1, 0.5), ("w2", 2, 0.5), ("w3", 1, 1.5), ("w4", 1.5, 0.5)]]
    extra = []
    ts[0].add_done_callback(lambda t: extra.append(asyncio.create_task(spawned())))
    for t in ts:
        await t
    await asyncio.sleep(0)
    await extra[0]
    log("done")
    return 0

go(main)
"#;

#[test]
fn tasks_resleeping_in_their_wake_iteration_and_tasks_of_done_callbacks_keep_cpython_order() {
    let trace = go(|| {
        let plan = [
            ("w0", 1.0, 1.0),
            ("w1", 1.0, 0.5),
            ("w2", 2.0, 0.5),
            ("w3", 1.0, 1.5),
            ("w4", 1.5, 0.5),
        ];
        let ts: Vec<Task<()>> = plan
            .iter()
            .map(|&(name, d1, d2)| {
                runtime::spawn(move || {
                    sleep(d1)?;
                    log(format!("{name} up, sleeps {d2}"));
                    sleep(d2)?;
                    log(format!("{name} up again"));
                    Ok(())
                })
            })
            .collect();
        let extra: Slot<()> = slot();
        let e = extra.clone();
        ts[0].add_done_callback(move |_| {
            *e.borrow_mut() = Some(runtime::spawn(|| {
                log("spawned starts");
                sleep(1.0)?;
                log("spawned woke");
                Ok(())
            }));
        })?;
        for t in &ts {
            t.join()?;
        }
        sleep(0.0)?;
        let spawned = extra.borrow_mut().take().expect("the callback ran");
        spawned.join()?;
        log("done");
        Ok(0)
    });
    same_as_cpython(&trace, RESLEEP_IN_WAKE_ITERATION_PY);
}

// ---------------------------------------------------------------------
// Cancellation.

// A task that cancels itself and then sleeps gets the cancellation at that
// sleep (Task.__step cancels the future it just yielded), with its message;
// after uncancel it sleeps the full delay, and the clock ends where the
// last real sleep does.
//
// Expected (CPython 3.11): 0.0 cancel -> True / 0.0 cancelling=1 /
// 0.0 caught CancelledError(self) / 0.0 uncancel -> 0 / 2.0 slept 2 /
// 2.0 caught CancelledError() / 2.0 child returned 0 / result 0 / end 2.0
const SELF_CANCEL_THEN_SLEEP_PY: &str = r#"
from prelude import *

async def child():
    me = asyncio.current_task()
    log(f"cancel -> {me.cancel('self')}")
    log(f"cancelling={me.cancelling()}")
    try:
        await asyncio.sleep(100)
        log("not reached")
    except asyncio.CancelledError as e:
        log(f"caught {ex(e)}")
    log(f"uncancel -> {me.uncancel()}")
    await asyncio.sleep(2)
    log("slept 2")
    me.cancel()
    try:
        await asyncio.sleep(5)
    except asyncio.CancelledError as e:
        log(f"caught {ex(e)}")
    me.uncancel()
    return me.cancelling()

async def main():
    r = await asyncio.create_task(child())
    log(f"child returned {r}")
    return r

go(main)
"#;

#[test]
fn a_task_that_cancels_itself_then_sleeps_is_cancelled_at_that_sleep() {
    let trace = go(|| {
        let own: Slot<u32> = slot();
        let mine = own.clone();
        let t = runtime::spawn(move || {
            let me = me();
            let cancelled = mine.borrow().as_ref().expect("set").cancel_with("self");
            log(format!("cancel -> {}", cancelled.py()));
            log(format!("cancelling={}", me.cancelling()));
            match sleep(100.0) {
                Ok(()) => log("not reached"),
                Err(e) => log(format!("caught {}", ex(&e))),
            }
            log(format!("uncancel -> {}", me.uncancel()));
            sleep(2.0)?;
            log("slept 2");
            me.cancel();
            if let Err(e) = sleep(5.0) {
                log(format!("caught {}", ex(&e)));
            }
            me.uncancel();
            // The handle in the slot would keep the record alive.
            mine.borrow_mut().take();
            Ok(me.cancelling())
        });
        *own.borrow_mut() = Some(t.clone());
        let r = t.join()?;
        log(format!("child returned {r}"));
        Ok(r)
    });
    same_as_cpython(&trace, SELF_CANCEL_THEN_SLEEP_PY);
}

// Cancelling another task right after its step armed the sleep (same
// iteration), right before its step (it is ready), and while its timer is
// armed; each one then sleeps again the full new delay.
//
// Expected (CPython 3.11): 0.0 cancel a -> True / 0.0 cancel b -> True /
// 0.0 a caught CancelledError(after arm) / 0.0 b caught CancelledError(before step) /
// 1.0 a, b slept again / 3.5 cancel d -> True / 3.5 d caught CancelledError(armed) /
// 4.5 d slept again / 4.5 results ['a', 'b', 'd'] / result 3 / end 4.5
const CANCEL_AROUND_THE_STEP_PY: &str = r#"
from prelude import *

async def sleeper(name, yields=0):
    try:
        for _ in range(yields):
            await asyncio.sleep(0)
        await asyncio.sleep(10)
        log(f"{name} not cancelled")
    except asyncio.CancelledError as e:
        log(f"{name} caught {ex(e)}")
    await asyncio.sleep(1)
    log(f"{name} slept again")
    return name

async def main():
    a = asyncio.create_task(sleeper("a"))
    async def canceller():
        log(f"cancel a -> {a.cancel('after arm')}")
    c = asyncio.create_task(canceller())
    b = asyncio.create_task(sleeper("b", 2))
    await asyncio.sleep(0)
    log(f"cancel b -> {b.cancel('before step')}")
    await asyncio.sleep(0.5)
    d = asyncio.create_task(sleeper("d"))
    await asyncio.sleep(3)
    log(f"cancel d -> {d.cancel('armed')}")
    r = [await a, await b, await d]
    await c
    log(f"results {r}")
    return len(r)

go(main)
"#;

#[test]
fn cancelling_a_sleeper_before_during_and_after_its_arming_step_matches_cpython() {
    let trace = go(|| {
        fn sleeper(
            name: &'static str,
            yields: usize,
        ) -> impl FnOnce() -> Result<&'static str, Error> {
            move || {
                let first = (0..yields).try_for_each(|_| sleep(0.0)).and_then(|()| sleep(10.0));
                match first {
                    Ok(()) => log(format!("{name} not cancelled")),
                    Err(e) => log(format!("{name} caught {}", ex(&e))),
                }
                sleep(1.0)?;
                log(format!("{name} slept again"));
                Ok(name)
            }
        }
        let a = Rc::new(runtime::spawn(sleeper("a", 0)));
        let a2 = a.clone();
        let c = runtime::spawn(move || {
            log(format!("cancel a -> {}", a2.cancel_with("after arm").py()));
            Ok(())
        });
        let b = runtime::spawn(sleeper("b", 2));
        sleep(0.0)?;
        log(format!("cancel b -> {}", b.cancel_with("before step").py()));
        sleep(0.5)?;
        let d = runtime::spawn(sleeper("d", 0));
        sleep(3.0)?;
        log(format!("cancel d -> {}", d.cancel_with("armed").py()));
        let r = vec![a.join()?, b.join()?, d.join()?];
        c.join()?;
        log(format!("results {}", r.py()));
        Ok(r.len())
    });
    same_as_cpython(&trace, CANCEL_AROUND_THE_STEP_PY);
}

// Timeouts around sleeps: `timeout` armed before a sleep with the same
// deadline wins (insertion order); a sleep shorter than its timeout ends
// normally; `wait_for` with the same deadline as the task's sleep times
// out and cancels the task, whose timer already fired; a shorter one
// returns the value; `shield` of a sleeping task: the outer waiter is
// cancelled, the inner task sleeps on.
//
// Expected (CPython 3.11): 1.0 timed out 1 / 2.0 slept 1 inside timeout 2 /
// 3.0 wait_for timed out / 3.5 w slept 0.5 / 3.5 wait_for -> 0.5 /
// 4.5 outer caught CancelledError(stop) / 4.5 main caught CancelledError(stop) /
// 5.5 w slept 2 / 5.5 inner -> 2.0 / result 0 / end 5.5
const TIMEOUTS_AROUND_SLEEPS_PY: &str = r#"
from prelude import *

async def w(d):
    await asyncio.sleep(d)
    log(f"w slept {d}")
    return d

async def main():
    try:
        async with asyncio.timeout(1):
            await asyncio.sleep(1)
        log("slept through")
    except TimeoutError:
        log("timed out 1")
    async with asyncio.timeout(2):
        await asyncio.sleep(1)
    log("slept 1 inside timeout 2")
    try:
        r = await asyncio.wait_for(asyncio.create_task(w(1.0)), 1)
        log(f"wait_for -> {r}")
    except TimeoutError:
        log("wait_for timed out")
    r = await asyncio.wait_for(asyncio.create_task(w(0.5)), 1)
    log(f"wait_for -> {r}")
    inner = asyncio.create_task(w(2.0))
    async def outer():
        try:
            return await asyncio.shield(inner)
        except asyncio.CancelledError as e:
            log(f"outer caught {ex(e)}")
            raise
    o = asyncio.create_task(outer())
    await asyncio.sleep(1)
    o.cancel("stop")
    try:
        await o
    except asyncio.CancelledError as e:
        log(f"main caught {ex(e)}")
    log(f"inner -> {await inner}")
    return 0

go(main)
"#;

#[test]
fn timeouts_wait_for_and_shield_around_sleeps_match_cpython() {
    fn w(d: f64) -> impl FnOnce() -> Result<f64, Error> {
        move || {
            sleep(d)?;
            log(format!("w slept {d:?}"));
            Ok(d)
        }
    }
    let trace = go(|| {
        match runtime::timeout(Some(secs(1.0)), |_| sleep(1.0)) {
            Ok(()) => log("slept through"),
            Err(e) if e.is_timeout() => log("timed out 1"),
            Err(e) => return Err(e),
        }
        runtime::timeout(Some(secs(2.0)), |_| sleep(1.0))?;
        log("slept 1 inside timeout 2");
        match runtime::wait_for(Some(secs(1.0)), &runtime::spawn(w(1.0))) {
            Ok(r) => log(format!("wait_for -> {r:?}")),
            Err(e) if e.is_timeout() => log("wait_for timed out"),
            Err(e) => return Err(e),
        }
        let r = runtime::wait_for(Some(secs(1.0)), &runtime::spawn(w(0.5)))?;
        log(format!("wait_for -> {r:?}"));
        let inner = Rc::new(runtime::spawn(w(2.0)));
        let i2 = inner.clone();
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
            log(format!("main caught {}", ex(&e)));
        }
        log(format!("inner -> {:?}", inner.join()?));
        Ok(0)
    });
    same_as_cpython(&trace, TIMEOUTS_AROUND_SLEEPS_PY);
}

// A cancelled sleep does not hold the virtual clock: the loop ends when
// the last live timer fires, not at the cancelled deadline, whether the
// cancelled timer is at the front of the queue or behind a live one, and
// whether it is cancelled by another task, by `timeout`, or by the shutdown
// of `run` (a task still sleeping when main returns). CPython sleeps 1e300
// seconds where gencoro sleeps `Duration::MAX`.
//
// Expected (CPython 3.11): 1.0 x caught CancelledError() /
// 1.0 timeout: TimeoutError / 50.0 y woke / 50.0 main returns / result 50 /
// end 50.0
const CANCELLED_SLEEP_CLOCK_PY: &str = r#"
from prelude import *

async def main():
    async def x():
        try:
            await asyncio.sleep(1e300)
        except asyncio.CancelledError as e:
            log(f"x caught {ex(e)}")
            raise
    async def y():
        await asyncio.sleep(50)
        log("y woke")
    async def z():
        await asyncio.sleep(1e300)
        log("z not reached")
    tx = asyncio.create_task(x())
    ty = asyncio.create_task(y())
    tz = asyncio.create_task(z())
    await asyncio.sleep(1)
    tx.cancel()
    try:
        async with asyncio.timeout(0):
            await asyncio.sleep(1e300)
    except TimeoutError:
        log("timeout: TimeoutError")
    await ty
    log("main returns")
    return 50

go(main)
"#;

#[test]
fn cancelled_huge_sleeps_do_not_move_the_virtual_clock() {
    let trace = go(|| {
        let x = runtime::spawn(|| match runtime::sleep(Duration::MAX) {
            Ok(()) => Ok(()),
            Err(e) => {
                log(format!("x caught {}", ex(&e)));
                Err(e)
            }
        });
        let y = runtime::spawn(|| {
            sleep(50.0)?;
            log("y woke");
            Ok(())
        });
        let _z = runtime::spawn(|| {
            runtime::sleep(Duration::MAX)?;
            log("z not reached");
            Ok(())
        });
        sleep(1.0)?;
        x.cancel();
        match runtime::timeout(Some(Duration::ZERO), |_| runtime::sleep(Duration::MAX)) {
            Err(e) if e.is_timeout() => log("timeout: TimeoutError"),
            other => log(format!("timeout: {}", outcome(&other))),
        }
        y.join()?;
        log("main returns");
        Ok(50)
    });
    same_as_cpython(&trace, CANCELLED_SLEEP_CLOCK_PY);
}

// A task whose sleep was cancelled and that then finished is dropped when
// the last handle to it goes: its result is freed then, not when the
// cancelled sleep's deadline passes. CPython's `TimerHandle.cancel()`
// clears the handle's callback and arguments, so the cancelled timer holds
// nothing; here an earlier live timer (`y`) keeps the cancelled one off
// the front of the queue.
//
// Expected (CPython 3.11): 1.0 t caught CancelledError() / 2.0 value dropped /
// 2.0 handle dropped / 50.0 y woke / result 0 / end 50.0
const CANCELLED_SLEEP_RECORD_PY: &str = r#"
from prelude import *

class Value:
    def __del__(self):
        log("value dropped")

async def main():
    async def t():
        try:
            await asyncio.sleep(100)
        except asyncio.CancelledError as e:
            log(f"t caught {ex(e)}")
        return Value()
    async def y():
        await asyncio.sleep(50)
        log("y woke")
    task = asyncio.create_task(t())
    ty = asyncio.create_task(y())
    await asyncio.sleep(1)
    task.cancel()
    await asyncio.sleep(1)
    del task
    log("handle dropped")
    await ty
    return 0

go(main)
"#;

/// Logs its drop, like the Python program's `Value.__del__`.
struct Value;

impl Drop for Value {
    fn drop(&mut self) {
        log("value dropped");
    }
}

#[test]
fn a_finished_task_whose_sleep_was_cancelled_is_freed_with_its_last_handle() {
    let trace = go(|| {
        let task = runtime::spawn(|| {
            if let Err(e) = sleep(100.0) {
                log(format!("t caught {}", ex(&e)));
            }
            Ok(Value)
        });
        let y = runtime::spawn(|| {
            sleep(50.0)?;
            log("y woke");
            Ok(())
        });
        sleep(1.0)?;
        task.cancel();
        sleep(1.0)?;
        drop(task);
        log("handle dropped");
        y.join()?;
        Ok(0)
    });
    same_as_cpython(&trace, CANCELLED_SLEEP_RECORD_PY);
}

// ---------------------------------------------------------------------
// Where a sleep must be refused. The errors are the ones the wait checks
// gave before the change (`wait_refused` in src/runtime/task.rs, the same
// function before and after).

/// An error as `(kind, message)`.
fn kind_msg(r: Result<(), Error>) -> (ErrorKind, String) {
    let e = r.expect_err("the sleep must be refused");
    (e.kind(), e.message().to_owned())
}

const NO_LOOP: &str = "no running event loop";
const IN_CALLBACK: &str = "sleep must be called from inside a task";
const NESTED: &str =
    "a task can only wait from its own stack, not from a generator running inside it";
const UNWINDING: &str = "a task cannot wait while it unwinds from a panic";

#[test]
fn sleep_outside_any_loop_is_refused_with_no_running_loop() {
    for d in [Duration::from_nanos(1), Duration::from_secs(1), Duration::MAX] {
        assert_eq!(kind_msg(runtime::sleep(d)), (ErrorKind::NoRunningLoop, NO_LOOP.to_owned()));
    }
    // And after a loop has come and gone on this thread.
    let (r, end) = run_on_virtual(|| runtime::sleep(ms(5)));
    r.unwrap();
    assert_eq!(end, ms(5));
    assert_eq!(kind_msg(runtime::sleep(ms(5))), (ErrorKind::NoRunningLoop, NO_LOOP.to_owned()));
}

#[test]
fn sleep_in_loop_callbacks_is_refused_and_arms_no_timer() {
    let seen: Rc<RefCell<Vec<(ErrorKind, String)>>> = Rc::default();
    let s = seen.clone();
    let (r, end) = run_on_virtual(move || {
        let s1 = s.clone();
        runtime::call_soon(move || s1.borrow_mut().push(kind_msg(runtime::sleep(ms(700)))))?;
        let s2 = s.clone();
        runtime::call_later(ms(1), move || {
            s2.borrow_mut().push(kind_msg(runtime::sleep(ms(800))))
        })?;
        let t = runtime::spawn(|| Ok(()));
        let s3 = s.clone();
        t.add_done_callback(move |_| s3.borrow_mut().push(kind_msg(runtime::sleep(ms(900)))))?;
        runtime::sleep(ms(2))
    });
    r.unwrap();
    let expected = (ErrorKind::NoRunningLoop, IN_CALLBACK.to_owned());
    assert_eq!(*seen.borrow(), vec![expected.clone(), expected.clone(), expected]);
    // Had a refused sleep armed its timer, the loop would have run on to it.
    assert_eq!(end, ms(2));
}

#[test]
fn sleep_in_a_generator_nested_in_a_task_is_refused_and_does_not_suspend_the_task() {
    let (r, end) = run_on_virtual(|| {
        let g: Generator<u32, (), Result<(), Error>> = Generator::new(|y| {
            let first = runtime::sleep(Duration::from_secs(5));
            y.yield_(1);
            let again = runtime::sleep(Duration::from_nanos(1));
            y.yield_(2);
            first.and(again)
        });
        let mut yields = Vec::new();
        // Resumed from the task's body...
        yields.push(g.resume().unwrap().yielded().unwrap());
        runtime::sleep(ms(3))?;
        // ...and from another task that sleeps itself around it.
        let g = Rc::new(g);
        let g2 = g.clone();
        let other = runtime::spawn(move || {
            runtime::sleep(ms(1))?;
            let y = g2.resume().unwrap().yielded().unwrap();
            runtime::sleep(ms(1))?;
            Ok(y)
        });
        yields.push(other.join()?);
        let ret = g.resume().unwrap().returned().unwrap();
        Ok((yields, kind_msg(ret), runtime::time()?))
    });
    let (yields, refused, at) = r.unwrap();
    assert_eq!(yields, [1, 2]);
    assert_eq!(refused, (ErrorKind::Misuse, NESTED.to_owned()));
    assert_eq!(at, ms(5));
    assert_eq!(end, ms(5), "a refused sleep armed a timer");
}

/// Records what a sleep in its destructor returned.
struct SleepsOnDrop {
    delay: Duration,
    seen: Rc<RefCell<Vec<(ErrorKind, String)>>>,
}

impl Drop for SleepsOnDrop {
    fn drop(&mut self) {
        let r = runtime::sleep(self.delay);
        self.seen.borrow_mut().push(match r {
            Ok(()) => (ErrorKind::Failed, "slept".to_owned()),
            Err(e) => (e.kind(), e.message().to_owned()),
        });
    }
}

#[test]
fn sleep_in_a_destructor_while_the_task_panics_is_refused_with_misuse() {
    let seen: Rc<RefCell<Vec<(ErrorKind, String)>>> = Rc::default();
    let s = seen.clone();
    let (r, end) = run_on_virtual(move || {
        let t: Task<()> = runtime::spawn(move || {
            let _guard = SleepsOnDrop { delay: Duration::from_secs(9), seen: s };
            runtime::sleep(ms(1))?;
            panic!("boom after the sleep");
        });
        let e = t.join().expect_err("the task panicked");
        Ok((e.kind(), e.message().contains("boom after the sleep"), runtime::time()?))
    });
    assert_eq!(r.unwrap(), (ErrorKind::Panicked, true, ms(1)));
    assert_eq!(*seen.borrow(), [(ErrorKind::Misuse, UNWINDING.to_owned())]);
    assert_eq!(end, ms(1), "a refused sleep armed a timer");
}

#[test]
fn sleep_in_destructors_of_tasks_abandoned_at_loop_teardown_is_refused() {
    let seen: Rc<RefCell<Vec<(ErrorKind, String)>>> = Rc::default();
    let reports = Rc::new(Cell::new(0));
    let r2 = reports.clone();
    let clock = Clock::virtual_time();
    let lp = Builder::new()
        .clock(clock.clone())
        .exception_handler(move |_| r2.set(r2.get() + 1))
        .build();
    let s = seen.clone();
    lp.run_until_complete(move || {
        for i in 0..3u64 {
            let guard = SleepsOnDrop { delay: ms(10 + i), seen: s.clone() };
            runtime::spawn(move || {
                let _guard = guard;
                runtime::sleep(Duration::from_secs(100 + i))?;
                Ok(())
            });
        }
        runtime::sleep(ms(1))
    })
    .unwrap();
    assert!(seen.borrow().is_empty());
    // Dropped from inside a task of another loop: the destructors run on
    // the abandoned tasks' stacks while that task's step runs; their
    // sleeps must be refused, not suspend anything.
    let outer_end = {
        let clock2 = Clock::virtual_time();
        let lp = RefCell::new(Some(lp));
        Builder::new()
            .clock(clock2.clone())
            .run(move || {
                runtime::sleep(ms(2))?;
                drop(lp.borrow_mut().take());
                runtime::sleep(ms(2))?;
                runtime::time()
            })
            .unwrap();
        clock2.now()
    };
    assert_eq!(outer_end, ms(4));
    assert_eq!(reports.get(), 3, "each pending task is reported destroyed");
    let seen = seen.borrow();
    assert_eq!(seen.len(), 3, "{seen:?}");
    for (kind, msg) in seen.iter() {
        assert_eq!((*kind, msg.as_str()), (ErrorKind::Misuse, UNWINDING));
    }
    assert_eq!(clock.now(), ms(1));
}

#[test]
fn sleep_in_destructors_of_tasks_abandoned_when_a_loop_is_dropped_outside_any_loop() {
    let seen: Rc<RefCell<Vec<(ErrorKind, String)>>> = Rc::default();
    let lp = Builder::new().clock(Clock::virtual_time()).exception_handler(|_| {}).build();
    let s = seen.clone();
    lp.run_until_complete(move || {
        let guard = SleepsOnDrop { delay: ms(10), seen: s };
        runtime::spawn(move || {
            let _guard = guard;
            runtime::sleep(Duration::MAX)?;
            Ok(())
        });
        runtime::sleep(ms(1))
    })
    .unwrap();
    drop(lp);
    assert_eq!(*seen.borrow(), [(ErrorKind::NoRunningLoop, NO_LOOP.to_owned())]);
}

// A destructor that sleeps while `run` cancels the pending tasks at
// shutdown: the task is not unwinding (it returns the cancellation), so
// the sleep is a real one, and shutdown waits for it, as CPython's
// `_cancel_all_tasks` does for a `finally: await asyncio.sleep(2)`.
//
// Expected (CPython 3.11): 1.0 main returns / 1.0 t cleanup sleeps /
// 3.0 t cleanup done / result 1 / end 3.0
const CLEANUP_SLEEP_AT_SHUTDOWN_PY: &str = r#"
from prelude import *

async def main():
    async def t():
        try:
            await asyncio.sleep(100)
        finally:
            log("t cleanup sleeps")
            await asyncio.sleep(2)
            log("t cleanup done")
    asyncio.create_task(t())
    await asyncio.sleep(1)
    log("main returns")
    return 1

go(main)
"#;

/// Sleeps for two seconds when dropped, logging around it.
struct CleanupSleep;

impl Drop for CleanupSleep {
    fn drop(&mut self) {
        log("t cleanup sleeps");
        match sleep(2.0) {
            Ok(()) => log("t cleanup done"),
            Err(e) => log(format!("t cleanup refused: {}", ex(&e))),
        }
    }
}

#[test]
fn a_destructor_sleeping_while_shutdown_cancels_its_task_sleeps_like_a_finally() {
    let trace = go(|| {
        runtime::spawn(|| {
            let _cleanup = CleanupSleep;
            sleep(100.0)
        });
        sleep(1.0)?;
        log("main returns");
        Ok(1)
    });
    same_as_cpython(&trace, CLEANUP_SLEEP_AT_SHUTDOWN_PY);
}

// ---------------------------------------------------------------------
// Huge and tiny delays.

#[test]
fn huge_delays_saturate_and_still_fire_in_insertion_order() {
    let order: Rc<RefCell<Vec<&'static str>>> = Rc::default();
    let o = order.clone();
    let (r, end) = run_on_virtual(move || {
        // Sleep to the clock's far end: u64::MAX nanoseconds, then more.
        runtime::sleep(Duration::from_nanos(u64::MAX))?;
        let far = runtime::time()?;
        runtime::sleep(Duration::MAX)?;
        let end_of_time = runtime::time()?;
        // Past saturation every deadline is the same: insertion order.
        let mk = |name: &'static str, d: Duration| {
            let o = o.clone();
            runtime::spawn(move || {
                runtime::sleep(d)?;
                o.borrow_mut().push(name);
                Ok(())
            })
        };
        let ts = [
            mk("max", Duration::MAX),
            mk("2s", Duration::from_secs(2)),
            mk("1ns", Duration::from_nanos(1)),
        ];
        for t in &ts {
            t.join()?;
        }
        runtime::sleep(Duration::from_nanos(1))?;
        Ok((far, end_of_time, runtime::time()?))
    });
    let (far, end_of_time, last) = r.unwrap();
    assert_eq!(far, Duration::from_nanos(u64::MAX));
    assert!(end_of_time >= far);
    assert!(last >= end_of_time && end >= last);
    assert_eq!(*order.borrow(), ["max", "2s", "1ns"]);
}

#[test]
fn one_nanosecond_sleeps_advance_the_virtual_clock_by_one_nanosecond_each() {
    let (r, end) = run_on_virtual(|| {
        let mut times = Vec::new();
        for _ in 0..1000 {
            runtime::sleep(Duration::from_nanos(1))?;
            times.push(runtime::time()?);
        }
        Ok(times)
    });
    let times = r.unwrap();
    for (i, t) in times.iter().enumerate() {
        assert_eq!(*t, Duration::from_nanos(i as u64 + 1));
    }
    assert_eq!(end, Duration::from_nanos(1000));
}

#[test]
fn a_huge_sleep_cancelled_from_another_loop_wakes_cancelled_and_leaves_the_clock() {
    // The task sleeps on a paused loop; a task of another loop on the same
    // thread cancels it; the paused loop, resumed, delivers the
    // cancellation at once and its clock does not jump.
    let clock = Clock::virtual_time();
    let lp = Builder::new().clock(clock.clone()).build();
    let sleeper = lp
        .spawn(|| match runtime::sleep(Duration::MAX) {
            Ok(()) => Ok("slept"),
            Err(e) if e.is_cancelled() => Ok("cancelled"),
            Err(e) => Err(e),
        })
        .unwrap();
    lp.run_until_complete(|| runtime::sleep(ms(1))).unwrap();
    assert_eq!(sleeper.as_ref().waiting_on(), "a sleep");
    let s = sleeper.clone();
    Builder::new()
        .clock(Clock::virtual_time())
        .run(move || {
            runtime::sleep(ms(1))?;
            assert!(s.cancel());
            Ok(())
        })
        .unwrap();
    let s = sleeper.clone();
    let got = lp.run_until_complete(move || s.join()).unwrap();
    assert_eq!(got, "cancelled");
    assert_eq!(clock.now(), ms(1));
}

// ---------------------------------------------------------------------
// Schedule-driven runs and traces.

thread_local! {
    /// Sleeps with a delay the last run of `sleepy_scenario` started.
    static SLEEPS_STARTED: Cell<usize> = const { Cell::new(0) };
}

/// A sleep of `d` (not zero) counted in `SLEEPS_STARTED`.
fn counted_sleep(d: Duration) -> Result<(), Error> {
    SLEEPS_STARTED.set(SLEEPS_STARTED.get() + 1);
    runtime::sleep(d)
}

/// Tasks sleeping equal and different delays, one cancelled while it
/// sleeps or before it starts (the schedule decides); the property: no
/// task wakes before an earlier deadline's, each wakes at its own
/// deadline, and only the cancelled one sees a cancellation.
fn sleepy_scenario() -> Result<(), String> {
    SLEEPS_STARTED.set(0);
    let woke: Rc<RefCell<Vec<(u64, Duration)>>> = Rc::default();
    let tasks: Vec<Task<bool>> = (0..6u64)
        .map(|i| {
            let woke = woke.clone();
            runtime::spawn(move || match counted_sleep(ms(1 + i % 3)) {
                Ok(()) => {
                    woke.borrow_mut().push((i, runtime::time()?));
                    counted_sleep(ms(1))?;
                    Ok(false)
                }
                Err(e) if e.is_cancelled() => Ok(true),
                Err(e) => Err(e),
            })
        })
        .collect();
    runtime::sleep(Duration::ZERO).map_err(|e| e.to_string())?;
    tasks[4].cancel();
    let mut cancelled = Vec::new();
    for t in &tasks {
        cancelled.push(match t.join() {
            Ok(c) => c,
            Err(e) if e.is_cancelled() => true,
            Err(e) => return Err(e.to_string()),
        });
    }
    if cancelled != [false, false, false, false, true, false] {
        return Err(format!("cancelled: {cancelled:?}"));
    }
    let woke = woke.borrow();
    for pair in woke.windows(2) {
        if pair[0].1 > pair[1].1 {
            return Err(format!("woke out of deadline order: {woke:?}"));
        }
    }
    for &(i, at) in woke.iter() {
        if at != ms(1 + i % 3) {
            return Err(format!("task {i} woke at {at:?}"));
        }
    }
    Ok(())
}

#[test]
fn schedule_driven_sleeps_keep_deadline_order_and_replay_identically() {
    use gencoro::testing::{self, Schedule, TraceEventKind};
    let explored = testing::check_seeded(11, 300, sleepy_scenario).expect("the property holds");
    assert_eq!(explored.schedules_run, 300);
    let exhaustive = testing::check_exhaustive(2, sleepy_scenario).expect("the property holds");
    assert!(exhaustive.schedules_run > 1);
    let schedules = ["fifo", "1", "0.1.2", "2.0.0.1", "0*4.1.1.1", "3.1.4.1.5.9.2.6"]
        .map(|s| s.parse::<Schedule>());
    let mut orders = std::collections::BTreeSet::new();
    for schedule in schedules {
        let schedule = schedule.expect("a schedule");
        let a = testing::replay(&schedule, sleepy_scenario);
        let b = testing::replay(&schedule, sleepy_scenario);
        assert!(a.passed(), "{schedule}: {:?}", a.failure_message());
        assert_eq!(a.trace(), b.trace(), "{schedule}");
        assert_eq!(a.schedule(), b.schedule());
        assert_eq!(a.trace().to_string(), b.trace().to_string());
        // Every suspension at a sleep with a delay shows it waits on one.
        let sleeps = a
            .trace()
            .events()
            .iter()
            .filter(|e| matches!(&e.kind, TraceEventKind::Suspend { on } if on == "a sleep"))
            .count();
        assert_eq!(sleeps, SLEEPS_STARTED.get(), "{schedule}:\n{}", a.trace());
        assert!(sleeps >= 10, "{schedule}: {sleeps} sleeps");
        let wakes: Vec<usize> = a
            .trace()
            .events()
            .iter()
            .filter(|e| matches!(e.kind, TraceEventKind::Resume) && e.time == ms(1))
            .map(|e| e.task)
            .collect();
        orders.insert(wakes);
    }
    assert!(orders.len() > 1, "the schedules never reordered equal deadlines: {orders:?}");
}

#[test]
fn a_sleeping_task_reports_that_it_waits_on_a_sleep() {
    let (r, _) = run_on_virtual(|| {
        let t = runtime::spawn(|| runtime::sleep(ms(5)));
        let before = t.as_ref().waiting_on();
        runtime::sleep(Duration::ZERO)?;
        let during = t.as_ref().waiting_on();
        // Cancelled: its wake-up is queued, the sleep is still what it waits on.
        t.cancel();
        let cancelled = t.as_ref().waiting_on();
        let own = runtime::current_task()?.expect("in a task").waiting_on();
        let _ = t.join();
        Ok((before, during, cancelled, own))
    });
    let (before, during, cancelled, own) = r.unwrap();
    assert_eq!(before, "nothing (it is ready to run)");
    assert_eq!(during, "a sleep");
    assert_eq!(cancelled, "a sleep");
    assert_eq!(own, "nothing (it is ready to run)");
}

// ---------------------------------------------------------------------
// Panics and teardown.

#[test]
fn a_task_panicking_right_after_waking_from_sleep_fails_alone_and_drops_its_captures() {
    let counter = Counter::default();
    let c = counter.clone();
    let (r, end) = run_on_virtual(move || {
        let captured = c.token();
        let bad: Task<()> = runtime::spawn(move || {
            let _captured = captured;
            runtime::sleep(ms(3))?;
            panic!("panic right after the sleep");
        });
        let good = runtime::spawn(|| {
            runtime::sleep(ms(3))?;
            runtime::sleep(ms(3))?;
            runtime::time()
        });
        let e = bad.join().expect_err("it panicked");
        let dropped_at_failure = c.get();
        Ok((e.kind(), e.message().to_owned(), dropped_at_failure, good.join()?))
    });
    let (kind, msg, dropped_at_failure, good_end) = r.unwrap();
    assert_eq!(kind, ErrorKind::Panicked);
    assert!(msg.contains("panic right after the sleep"), "{msg}");
    assert_eq!(dropped_at_failure, 1, "the capture is dropped by the unwind");
    assert_eq!(counter.get(), 1);
    assert_eq!(good_end, ms(6));
    assert_eq!(end, ms(6));
}

#[test]
fn dropping_a_loop_with_thousands_of_sleeping_tasks_runs_every_destructor_once() {
    const N: usize = 5_000;
    let counter = Counter::default();
    let refused: Rc<RefCell<Vec<(ErrorKind, String)>>> = Rc::default();
    let reports = Rc::new(Cell::new(0usize));
    let r2 = reports.clone();
    let clock = Clock::virtual_time();
    let lp = Builder::new()
        .clock(clock.clone())
        .exception_handler(move |_| r2.set(r2.get() + 1))
        .build();
    let c = counter.clone();
    let rf = refused.clone();
    let handles = lp
        .run_until_complete(move || {
            let mut handles = Vec::new();
            for i in 0..N {
                let token = c.token();
                let guard = (i % 10 == 0).then(|| SleepsOnDrop { delay: ms(1), seen: rf.clone() });
                let t = runtime::spawn(move || {
                    let _token = token;
                    let _guard = guard;
                    // Some sleep once and wait again; some never get to.
                    runtime::sleep(ms(1 + (i % 7) as u64))?;
                    runtime::sleep(Duration::from_secs(1000))?;
                    Ok(i)
                });
                if i % 3 == 0 {
                    handles.push(t);
                }
            }
            runtime::sleep(ms(4))?;
            Ok(handles)
        })
        .unwrap();
    assert_eq!(counter.get(), 0, "no task has ended yet");
    drop(lp);
    assert_eq!(counter.get(), N, "every capture dropped exactly once");
    assert_eq!(reports.get(), N, "every pending task reported");
    assert_eq!(refused.borrow().len(), N / 10);
    assert!(refused.borrow().iter().all(|(k, m)| *k == ErrorKind::NoRunningLoop && m == NO_LOOP));
    // The handles that outlive the loop still answer, and dropping them
    // drops nothing twice.
    assert!(handles.iter().all(|t| !t.is_done()));
    drop(handles);
    assert_eq!(counter.get(), N);
    assert_eq!(clock.now(), ms(4));
}

// ---------------------------------------------------------------------
// The record cache (up to 16 MiB of freed blocks per thread).

/// A result whose bytes are a function of `seed`: a block reused while
/// still in use would show up as wrong bytes.
fn pattern<const N: usize>(seed: usize) -> [u8; N] {
    let mut a = [0u8; N];
    for (j, b) in a.iter_mut().enumerate() {
        *b = (seed.wrapping_mul(31).wrapping_add(j * 7) % 251) as u8;
    }
    a
}

/// One burst on the running loop: `n` tasks of four record sizes, each
/// capturing a counted value and sleeping zero or one millisecond, then
/// joined and their results checked.
fn burst(n: usize, counter: &Counter, round: usize) -> Result<(), Error> {
    let mut small = Vec::new();
    let mut big = Vec::new();
    let mut huge = Vec::new();
    let mut counted = Vec::new();
    for i in 0..n {
        let token = counter.token();
        let seed = round * n + i;
        let delay = if i % 2 == 0 { Duration::ZERO } else { ms(1) };
        match i % 4 {
            0 => small.push(runtime::spawn(move || {
                let _token = token;
                runtime::sleep(delay)?;
                Ok(seed as u8)
            })),
            1 => big.push(runtime::spawn(move || {
                let _token = token;
                runtime::sleep(delay)?;
                Ok(pattern::<900>(seed))
            })),
            2 => huge.push(runtime::spawn(move || {
                let _token = token;
                runtime::sleep(delay)?;
                Ok(pattern::<1000>(seed))
            })),
            _ => counted.push(runtime::spawn(move || {
                runtime::sleep(delay)?;
                Ok(token)
            })),
        }
    }
    for (k, t) in small.iter().enumerate() {
        assert_eq!(t.join()?, (round * n + 4 * k) as u8);
    }
    for (k, t) in big.iter().enumerate() {
        assert!(t.join()? == pattern::<900>(round * n + 4 * k + 1), "big result {k} corrupted");
    }
    for (k, t) in huge.iter().enumerate() {
        assert!(t.join()? == pattern::<1000>(round * n + 4 * k + 2), "huge result {k} corrupted");
    }
    for t in &counted {
        drop(t.join()?);
    }
    Ok(())
}

#[test]
fn bursts_of_100k_short_tasks_on_several_loops_drop_every_value_once() {
    const BURST: usize = 10_000;
    const BURSTS: usize = 10;
    let counter = Counter::default();
    // Two loops alive at once, run in turns, then a third after they are
    // gone: every loop takes blocks the others freed.
    let a = Builder::new().clock(Clock::virtual_time()).build();
    let b = Builder::new().clock(Clock::virtual_time()).build();
    for round in 0..BURSTS {
        let lp = if round % 2 == 0 { &a } else { &b };
        let c = counter.clone();
        lp.run_until_complete(move || burst(BURST, &c, round)).unwrap();
        assert_eq!(counter.get(), (round + 1) * BURST);
    }
    drop((a, b));
    let c = counter.clone();
    let (r, end) = run_on_virtual(move || {
        for round in 0..BURSTS {
            burst(BURST, &c, round)?;
        }
        Ok(())
    });
    r.unwrap();
    assert_eq!(end, ms(BURSTS as u64));
    assert_eq!(counter.get(), 2 * BURSTS * BURST);
}

#[test]
fn threads_exiting_with_a_full_record_cache_drop_every_value_once() {
    const TASKS: usize = 50_000;
    const THREADS: usize = 3;
    let counter = Counter::default();
    let threads: Vec<_> = (0..THREADS)
        .map(|k| {
            let counter = counter.clone();
            std::thread::spawn(move || {
                let c = counter.clone();
                let (r, _) = run_on_virtual(move || {
                    // All records live at once, then all freed: the cache
                    // fills to its cap and the thread exits with it full.
                    let tasks: Vec<Task<(Counted, [u8; 300])>> = (0..TASKS)
                        .map(|i| {
                            let token = c.token();
                            runtime::spawn(move || Ok((token, pattern::<300>(k * TASKS + i))))
                        })
                        .collect();
                    runtime::sleep(ms(1))?;
                    for (i, t) in tasks.iter().enumerate() {
                        let (token, bytes) = t.join()?;
                        assert!(bytes == pattern::<300>(k * TASKS + i), "result {i} corrupted");
                        drop(token);
                    }
                    Ok(())
                });
                r.unwrap();
                counter.get()
            })
        })
        .collect();
    for t in threads {
        t.join().expect("the thread ran its loop");
    }
    assert_eq!(counter.get(), THREADS * TASKS);
}

#[test]
fn task_records_freed_on_another_loop_than_the_one_that_made_them() {
    let counter = Counter::default();
    let a = Builder::new().clock(Clock::virtual_time()).build();
    let c = counter.clone();
    let handles = a
        .run_until_complete(move || {
            let hs: Vec<Task<(Counted, [u8; 900])>> = (0..2_000)
                .map(|i| {
                    let token = c.token();
                    runtime::spawn(move || {
                        runtime::sleep(ms(1 + (i % 3) as u64))?;
                        Ok((token, pattern::<900>(i)))
                    })
                })
                .collect();
            for h in &hs {
                h.join().map(drop).unwrap_or(());
            }
            Ok(hs)
        })
        .unwrap();
    // join took the values out: they were dropped on loop a.
    assert_eq!(counter.get(), 2_000);
    let c = counter.clone();
    let again = a
        .run_until_complete(move || {
            Ok((0..2_000)
                .map(|i| {
                    let token = c.token();
                    runtime::spawn(move || {
                        runtime::sleep(ms(1))?;
                        Ok((token, pattern::<900>(i + 7)))
                    })
                })
                .collect::<Vec<_>>())
        })
        .unwrap();
    let c = counter.clone();
    a.run_until_complete(move || {
        runtime::sleep(ms(5))?;
        assert_eq!(c.get(), 2_000, "the results stay in their records");
        Ok(())
    })
    .unwrap();
    drop(a);
    // Loop b reads and drops the handles of loop a's tasks: the records
    // are freed there, into this thread's cache, and b's own tasks reuse
    // the blocks.
    let c = counter.clone();
    let (r, _) = run_on_virtual(move || {
        for (i, t) in again.iter().enumerate() {
            assert!(t.is_done());
            let (token, bytes) = t.result()?;
            assert!(bytes == pattern::<900>(i + 7), "result {i} corrupted");
            drop(token);
        }
        drop(again);
        drop(handles);
        let before = c.get();
        let mine: Vec<Task<[u8; 900]>> = (0..2_000)
            .map(|i| {
                runtime::spawn(move || {
                    runtime::sleep(ms(1))?;
                    Ok(pattern::<900>(i + 13))
                })
            })
            .collect();
        for (i, t) in mine.iter().enumerate() {
            assert!(t.join()? == pattern::<900>(i + 13), "result {i} corrupted");
        }
        Ok(before)
    });
    assert_eq!(r.unwrap(), 4_000);
    assert_eq!(counter.get(), 4_000);
}

/// A task whose result holds a counted value and 500 patterned bytes.
type KeptTask = Task<(Counted, [u8; 500])>;

thread_local! {
    /// Task handles kept until their thread exits (see
    /// `keep_handles_until_thread_exit`).
    static KEPT: RefCell<Vec<KeptTask>> = const { RefCell::new(Vec::new()) };
}

/// A thread keeps 20,000 task handles (10,000 results still in their
/// records) in a thread-local until it exits. With `early`, the
/// thread-local is touched first, so its destructor runs after the record
/// cache's exit guard (thread-local destructors run in reverse order of
/// registration); otherwise before it.
fn keep_handles_until_thread_exit(early: bool) -> usize {
    let counter = Counter::default();
    let c = counter.clone();
    std::thread::spawn(move || {
        if early {
            KEPT.with(|k| assert!(k.borrow().is_empty()));
        }
        let c2 = c.clone();
        let (r, _) = run_on_virtual(move || {
            let hs: Vec<_> = (0..20_000)
                .map(|i| {
                    let token = c2.token();
                    runtime::spawn(move || {
                        runtime::sleep(Duration::ZERO)?;
                        Ok((token, pattern::<500>(i)))
                    })
                })
                .collect();
            for h in &hs[..10_000] {
                drop(h.join()?);
            }
            runtime::sleep(ms(1))?;
            Ok(hs)
        });
        let hs = r.unwrap();
        assert_eq!(c.get(), 10_000);
        KEPT.with(|k| k.borrow_mut().extend(hs));
    })
    .join()
    .expect("the thread exits cleanly");
    counter.get()
}

#[test]
fn records_freed_by_thread_local_destructors_at_thread_exit_are_freed_once() {
    assert_eq!(keep_handles_until_thread_exit(true), 20_000);
    assert_eq!(keep_handles_until_thread_exit(false), 20_000);
}

thread_local! {
    /// Runs a whole loop from its destructor, at thread exit.
    static LATE_LOOP: LateLoop = const { LateLoop };
}

struct LateLoop;

impl Drop for LateLoop {
    fn drop(&mut self) {
        let (r, end) = run_on_virtual(|| {
            let ts: Vec<Task<[u8; 600]>> = (0..1_000)
                .map(|i| {
                    runtime::spawn(move || {
                        runtime::sleep(ms(1 + (i % 2) as u64))?;
                        Ok(pattern::<600>(i))
                    })
                })
                .collect();
            for (i, t) in ts.iter().enumerate() {
                assert!(t.join()? == pattern::<600>(i), "result {i} corrupted");
            }
            Ok(ts.len())
        });
        println!("late loop: {:?} at {end:?}", r.map_err(|e| e.to_string()));
    }
}

// A thread-local destructor that runs a loop with sleeping tasks while its
// thread exits, after the record cache (and perhaps the stack pool) closed:
// it runs, or fails cleanly; it must not crash. In a child process.
#[test]
fn a_loop_run_by_a_thread_local_destructor_at_thread_exit_does_not_crash() {
    const NAME: &str = "a_loop_run_by_a_thread_local_destructor_at_thread_exit_does_not_crash";
    if is_child(NAME) {
        std::thread::spawn(|| {
            LATE_LOOP.with(|_| {});
            let (r, _) = run_on_virtual(|| {
                let ts: Vec<Task<u8>> =
                    (0..5_000).map(|i| runtime::spawn(move || Ok(i as u8))).collect();
                runtime::gather(ts.iter().cloned()).map(|v| v.len())
            });
            assert_eq!(r.unwrap(), 5_000);
        })
        .join()
        .expect("the thread exits");
        return;
    }
    let (ok, stdout, stderr) = run_in_child(NAME);
    assert!(ok, "the child failed:\n{stdout}\n{stderr}");
    let ran = stdout.contains("late loop: Ok(1000) at 2ms");
    let refused = stdout.contains(
        "late loop: Err(\"cannot run an event loop while its thread's thread-locals are being \
         destroyed\") at 0ns",
    );
    assert!(ran || refused, "{stdout}\n{stderr}");
}

// ---------------------------------------------------------------------
// Groups of sleepers.

// A task group whose first child fails when its sleep ends, with siblings
// whose sleeps end at the same deadline (armed before and after the
// failing one's, and one a step later) and one sleeping longer, which is
// cancelled and sleeps again in its cleanup. The same-deadline siblings
// wake in that iteration, before the group's done callback aborts.
//
// Expected (CPython 3.11): 1.0 a fails / 1.0 b woke / 1.0 c woke /
// 1.0 d cancelled / 1.5 d cleanup done / 1.5 group ExceptionGroup[Boom(a)] /
// result 0 / end 1.5
const TASK_GROUP_OF_SLEEPERS_PY: &str = r#"
from prelude import *

async def main():
    async def b():
        await asyncio.sleep(1)
        log("b woke")
    async def a():
        await asyncio.sleep(1)
        log("a fails")
        raise Boom("a")
    async def c():
        await asyncio.sleep(0)
        await asyncio.sleep(1)
        log("c woke")
    async def d():
        try:
            await asyncio.sleep(1.5)
            log("d woke")
        except asyncio.CancelledError:
            log("d cancelled")
            await asyncio.sleep(0.5)
            log("d cleanup done")
            raise
    try:
        async with asyncio.TaskGroup() as tg:
            for f in (b, a, c, d):
                tg.create_task(f())
            await asyncio.sleep(5)
            log("body not reached")
    except BaseExceptionGroup as e:
        log(f"group {ex(e)}")
    return 0

go(main)
"#;

#[test]
fn a_task_group_of_sleepers_aborts_after_same_deadline_siblings_woke() {
    let trace = go(|| {
        let r = runtime::task_group(|tg| {
            tg.spawn(|| {
                sleep(1.0)?;
                log("b woke");
                Ok(())
            })?;
            tg.spawn(|| -> Result<(), Error> {
                sleep(1.0)?;
                log("a fails");
                Err(boom("a"))
            })?;
            tg.spawn(|| {
                sleep(0.0)?;
                sleep(1.0)?;
                log("c woke");
                Ok(())
            })?;
            tg.spawn(|| match sleep(1.5) {
                Ok(()) => {
                    log("d woke");
                    Ok(())
                }
                Err(e) => {
                    log("d cancelled");
                    sleep(0.5)?;
                    log("d cleanup done");
                    Err(e)
                }
            })?;
            sleep(5.0)?;
            log("body not reached");
            Ok(())
        });
        if let Err(e) = r {
            log(format!("group {}", ex(&e)));
        }
        Ok(0)
    });
    same_as_cpython(&trace, TASK_GROUP_OF_SLEEPERS_PY);
}

// `gather` of sleepers, one of which is cancelled in the iteration its
// sleep was armed (by a sibling that runs after it), another while armed;
// `return_exceptions` collects the outcomes; the gather itself, cancelled
// while its children sleep, cancels them all with its message.
//
// Expected (CPython 3.11): 0.0 cancel s1 -> True / 2.0 s0 woke /
// 2.0 outcomes [0, 'CancelledError()', 'CancelledError()', 3] /
// 3.0 gather cancelled: CancelledError(stop) / 3.0 children cancelled [True, True] /
// result 0 / end 3.0
const GATHER_OF_SLEEPERS_PY: &str = r#"
from prelude import *

async def main():
    async def s(i, d):
        await asyncio.sleep(d)
        if i == 0:
            log("s0 woke")
        return i
    t0 = asyncio.create_task(s(0, 2))
    t1 = asyncio.create_task(s(1, 5))
    async def canceller():
        log(f"cancel s1 -> {t1.cancel()}")
    tc = asyncio.create_task(canceller())
    t2 = asyncio.create_task(s(2, 5))
    t3 = asyncio.create_task(s(3, 1))
    asyncio.get_running_loop().call_later(1.5, t2.cancel)
    out = await asyncio.gather(t0, t1, t2, t3, return_exceptions=True)
    log(f"outcomes {[o if isinstance(o, int) else ex(o) for o in out]}")
    await tc
    kids = [asyncio.create_task(s(10 + i, 7)) for i in range(2)]
    g = asyncio.gather(*kids)
    asyncio.get_running_loop().call_later(1, g.cancel, "stop")
    try:
        await g
    except asyncio.CancelledError as e:
        log(f"gather cancelled: {ex(e)}")
    await asyncio.sleep(0)
    log(f"children cancelled {[k.cancelled() for k in kids]}")
    return 0

go(main)
"#;

#[test]
fn gathers_of_sleepers_cancelled_in_and_after_the_arming_iteration_match_cpython() {
    fn s(i: i64, d: f64) -> impl FnOnce() -> Result<i64, Error> {
        move || {
            sleep(d)?;
            if i == 0 {
                log("s0 woke");
            }
            Ok(i)
        }
    }
    let trace = go(|| {
        let t0 = runtime::spawn(s(0, 2.0));
        let t1 = runtime::spawn(s(1, 5.0));
        let t1c = t1.clone();
        let tc = runtime::spawn(move || {
            log(format!("cancel s1 -> {}", t1c.cancel().py()));
            Ok(())
        });
        let t2 = runtime::spawn(s(2, 5.0));
        let t3 = runtime::spawn(s(3, 1.0));
        let t2c = t2.clone();
        runtime::call_later(secs(1.5), move || {
            t2c.cancel();
        })?;
        let out = runtime::gather_outcomes([t0, t1, t2, t3])?;
        let rendered: Vec<String> = out
            .iter()
            .map(|o| match o {
                Ok(v) => v.to_string(),
                Err(e) => ex(e),
            })
            .collect();
        log(format!(
            "outcomes [{}]",
            rendered.iter().map(|r| r.py_repr_num()).collect::<Vec<_>>().join(", ")
        ));
        tc.join()?;
        let kids: Vec<Task<i64>> = (0..2).map(|i| runtime::spawn(s(10 + i, 7.0))).collect();
        let g = Rc::new(runtime::gather_handle(kids.iter().cloned())?);
        let g2 = g.clone();
        runtime::call_later(secs(1.0), move || {
            g2.cancel_with("stop");
        })?;
        if let Err(e) = g.wait() {
            log(format!("gather cancelled: {}", ex(&e)));
        }
        sleep(0.0)?;
        let states: Vec<bool> = kids.iter().map(|k| k.is_cancelled()).collect();
        log(format!("children cancelled {}", states.py()));
        Ok(0)
    });
    same_as_cpython(&trace, GATHER_OF_SLEEPERS_PY);
}

/// Python's `repr` of a gather outcome as the program prints it: ints
/// bare, the `ex` strings quoted.
trait PyReprNum {
    fn py_repr_num(&self) -> String;
}

impl PyReprNum for String {
    fn py_repr_num(&self) -> String {
        if self.parse::<i64>().is_ok() { self.clone() } else { format!("'{self}'") }
    }
}

// Found on the way: in CPython 3.11 a task cancelled with a message shows up
// in `gather(..., return_exceptions=True)` as `CancelledError('')`:
// `Task.__step` ends the task with `super().cancel()` (no message), and
// gather's `_done_callback` builds the error from `fut._cancel_message`,
// now None. gencoro kept the message until this test.
//
// Expected (CPython 3.11): 1.0 outcomes ['CancelledError()'] / result 0 / end 1.0
const GATHER_OUTCOME_MESSAGE_PY: &str = r#"
from prelude import *

async def main():
    t = asyncio.create_task(asyncio.sleep(5))
    asyncio.get_running_loop().call_later(1, t.cancel, "late")
    out = await asyncio.gather(t, return_exceptions=True)
    log(f"outcomes {[ex(o) for o in out]}")
    return 0

go(main)
"#;

#[test]
fn gather_outcomes_of_a_task_cancelled_with_a_message_match_cpython() {
    let trace = go(|| {
        let t = runtime::spawn(|| sleep(5.0));
        let t2 = t.clone();
        runtime::call_later(secs(1.0), move || {
            t2.cancel_with("late");
        })?;
        let out = runtime::gather_outcomes([t])?;
        let rendered: Vec<String> = out.iter().map(|o| format!("'{}'", outcome(o))).collect();
        log(format!("outcomes [{}]", rendered.join(", ")));
        Ok(0)
    });
    same_as_cpython(&trace, GATHER_OUTCOME_MESSAGE_PY);
}

// The other half of the rule above: a plain future cancelled with a message
// keeps it in `gather(..., return_exceptions=True)` (its `_cancel_message`
// is the message), while a task cancelled the same way has none.
//
// Expected (CPython 3.11):
//   1.0 future ['CancelledError(late)']
//   1.0 task ['CancelledError()']
const GATHER_OUTCOME_FUTURE_PY: &str = r#"
from prelude import *

async def main():
    loop = asyncio.get_running_loop()
    f = loop.create_future()
    t = asyncio.create_task(asyncio.sleep(5))
    loop.call_later(1, f.cancel, "late")
    loop.call_later(1, t.cancel, "late")
    out = await asyncio.gather(f, return_exceptions=True)
    log(f"future {[ex(o) for o in out]}")
    out = await asyncio.gather(t, return_exceptions=True)
    log(f"task {[ex(o) for o in out]}")
    return 0

go(main)
"#;

#[test]
fn gather_outcomes_keep_a_plain_futures_cancel_message_but_not_a_tasks() {
    let trace = go(|| {
        let f: gencoro::runtime::Promise<()> = gencoro::runtime::Promise::new()?;
        let t = runtime::spawn(|| sleep(5.0));
        let (f2, t2) = (f.clone(), t.clone());
        runtime::call_later(secs(1.0), move || {
            f2.cancel_with("late");
        })?;
        runtime::call_later(secs(1.0), move || {
            t2.cancel_with("late");
        })?;
        let render = |out: Vec<Result<(), Error>>| -> String {
            out.iter().map(|o| format!("'{}'", outcome(o))).collect::<Vec<_>>().join(", ")
        };
        let out = runtime::gather_outcomes([&f])?;
        log(format!("future [{}]", render(out)));
        let out = runtime::gather_outcomes([&t])?;
        log(format!("task [{}]", render(out)));
        Ok(0)
    });
    same_as_cpython(&trace, GATHER_OUTCOME_FUTURE_PY);
}
