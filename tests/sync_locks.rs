//! `docs/semantics.md` B.11: `Event`, `Lock`, `Semaphore`,
//! `BoundedSemaphore` and `Condition` (CPython 3.11.7's `asyncio/locks.py`),
//! on the virtual clock, plus their guards on every way out of a task.
//!
//! Each scenario was written in Python first and run with CPython 3.11; its
//! output is the expected trace. The program is
//! `tests/cpython/sync_locks/<test name>.py`, named in the comment above the
//! test, and `tests/cpython_programs.rs` runs it and checks that it prints
//! what the test asserts. Where Python calls `acquire()` and `release()` in
//! different places, the Rust test gives up the guard with `mem::forget`
//! ([`hold`]) and releases by hand.

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use common::*;
use gencoro::runtime::{self, Error, ErrorKind, Task};
use gencoro::sync::{BoundedSemaphore, Condition, Event, Lock, Semaphore, SyncError};

/// Python: `await lock.acquire()` with no `release` in the same place.
fn hold(lock: &Lock) -> Result<(), Error> {
    std::mem::forget(lock.acquire()?);
    Ok(())
}

/// Python: `await sem.acquire()` with no `release` in the same place.
fn hold_permit(sem: &Semaphore) -> Result<(), Error> {
    std::mem::forget(sem.acquire()?);
    Ok(())
}

/// Outcomes as the Python programs print them: `ex(e)` strings for
/// exceptions, values as they are, in a list.
fn outcome_list<T: Py>(outcomes: &[Result<T, Error>]) -> String {
    let items: Vec<String> = outcomes
        .iter()
        .map(|r| match r {
            Ok(v) => v.py_repr(),
            Err(e) => format!("'{}'", ex(e)),
        })
        .collect();
    format!("[{}]", items.join(", "))
}

fn shared<T>(value: T) -> Rc<RefCell<T>> {
    Rc::new(RefCell::new(value))
}

// ---------------------------------------------------------------------------
// B11.1 Lock
// ---------------------------------------------------------------------------

// Python: tests/cpython/sync_locks/lock_acquire_is_first_in_first_out.py
#[test]
fn lock_acquire_is_first_in_first_out() {
    let trace = go(|| {
        let lock = Lock::new();
        let result = shared(Vec::<i32>::new());
        hold(&lock)?;
        let c = |n: i32| {
            let (lock, result) = (lock.clone(), result.clone());
            runtime::spawn(move || {
                hold(&lock)?;
                result.borrow_mut().push(n);
                log(format!("c{n} acquired"));
                Ok(())
            })
        };
        let t1 = c(1);
        let t2 = c(2);
        sleep(0.0)?;
        log(format!("started: {}", result.borrow().py()));
        lock.release()?;
        sleep(0.0)?;
        log(format!("after release 1: {}", result.borrow().py()));
        sleep(0.0)?;
        log(format!("one step more: {}", result.borrow().py()));
        let t3 = c(3);
        lock.release()?;
        sleep(0.0)?;
        log(format!("after release 2: {}", result.borrow().py()));
        lock.release()?;
        sleep(0.0)?;
        log(format!("after release 3: {}", result.borrow().py()));
        log(format!(
            "done: {} {} {}, locked: {}",
            t1.is_done().py(),
            t2.is_done().py(),
            t3.is_done().py(),
            lock.locked().py()
        ));
        let n = result.borrow().len();
        Ok(n)
    });
    assert_eq!(
        trace,
        [
            "0.0 started: []",
            "0.0 c1 acquired",
            "0.0 after release 1: [1]",
            "0.0 one step more: [1]",
            "0.0 c2 acquired",
            "0.0 after release 2: [1, 2]",
            "0.0 c3 acquired",
            "0.0 after release 3: [1, 2, 3]",
            "0.0 done: True True True, locked: True",
            "result 3",
            "end 0.0",
        ]
    );
}

// Python: tests/cpython/sync_locks/lock_no_barging_past_a_woken_waiter.py
#[test]
fn lock_no_barging_past_a_woken_waiter() {
    let trace = go(|| {
        let lock = Lock::new();
        let order = shared(Vec::<&str>::new());
        hold(&lock)?;
        let t = {
            let (lock, order) = (lock.clone(), order.clone());
            runtime::spawn(move || {
                let _held = lock.acquire()?;
                order.borrow_mut().push("waiter");
                log("waiter has the lock");
                sleep(1.0)
            })
        };
        sleep(0.0)?;
        lock.release()?;
        log(format!("released: locked {}, waiters {}", lock.locked().py(), lock.waiters()));
        {
            let _held = lock.acquire()?;
            order.borrow_mut().push("main");
            log("main has the lock");
        }
        t.join()?;
        let order = order.borrow().clone();
        Ok(order)
    });
    assert_eq!(
        trace,
        [
            "0.0 released: locked False, waiters 1",
            "0.0 waiter has the lock",
            "1.0 main has the lock",
            "result ['waiter', 'main']",
            "end 1.0",
        ]
    );
}

// Python: tests/cpython/sync_locks/lock_waiter_cancelled_before_wake_up_leaves_the_queue.py
#[test]
fn lock_waiter_cancelled_before_wake_up_leaves_the_queue() {
    let trace = go(|| {
        let lock = Lock::new();
        hold(&lock)?;
        let c = |name: &'static str| {
            let lock = lock.clone();
            runtime::spawn(move || {
                hold(&lock)?;
                log(format!("{name} acquired"));
                lock.release()?;
                Ok(())
            })
        };
        let t1 = c("t1");
        let t2 = c("t2");
        sleep(0.0)?;
        t1.cancel();
        lock.release()?;
        log(format!(
            "cancelled t1 and released: locked {}, waiters {}",
            lock.locked().py(),
            lock.waiters()
        ));
        sleep(0.0)?;
        log(format!("t1 cancelled {}, waiters {}", t1.is_cancelled().py(), lock.waiters()));
        t2.join()?;
        log(format!("t2 done: locked {}", lock.locked().py()));
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "0.0 cancelled t1 and released: locked False, waiters 2",
            "0.0 t1 cancelled True, waiters 1",
            "0.0 t2 acquired",
            "0.0 t2 done: locked False",
            "result None",
            "end 0.0",
        ]
    );
}

// Python: tests/cpython/sync_locks/lock_woken_waiter_cancelled_passes_the_lock_on.py
#[test]
fn lock_woken_waiter_cancelled_passes_the_lock_on() {
    let trace = go(|| {
        let lock = Lock::new();
        hold(&lock)?;
        let c = |name: &'static str| {
            let lock = lock.clone();
            runtime::spawn(move || {
                match lock.acquire() {
                    Ok(guard) => std::mem::forget(guard),
                    Err(e) => {
                        log(format!("{name} cancelled: locked {}", lock.locked().py()));
                        return Err(e);
                    }
                }
                log(format!("{name} acquired"));
                Ok(())
            })
        };
        let tb = c("tb");
        let tc = c("tc");
        sleep(0.0)?;
        lock.release()?;
        tb.cancel();
        log(format!("released to tb, then cancelled tb: locked {}", lock.locked().py()));
        sleep(0.0)?;
        log(format!("tb cancelled {}, tc done {}", tb.is_cancelled().py(), tc.is_done().py()));
        sleep(0.0)?;
        log(format!(
            "tc done {}, locked {}, waiters {}",
            tc.is_done().py(),
            lock.locked().py(),
            lock.waiters()
        ));
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "0.0 released to tb, then cancelled tb: locked False",
            "0.0 tb cancelled: locked False",
            "0.0 tb cancelled True, tc done False",
            "0.0 tc acquired",
            "0.0 tc done True, locked True, waiters 0",
            "result None",
            "end 0.0",
        ]
    );
}

// Python: tests/cpython/sync_locks/lock_is_free_for_a_newcomer_once_every_waiter_is_cancelled.py
#[test]
fn lock_is_free_for_a_newcomer_once_every_waiter_is_cancelled() {
    let trace = go(|| {
        let lock = Lock::new();
        hold(&lock)?;
        let t = {
            let lock = lock.clone();
            runtime::spawn(move || {
                hold(&lock)?;
                log("c acquired");
                Ok(())
            })
        };
        sleep(0.0)?;
        t.cancel();
        lock.release()?;
        hold(&lock)?;
        log(format!(
            "main took it at once: waiters {}, t done {}",
            lock.waiters(),
            t.is_done().py()
        ));
        sleep(0.0)?;
        log(format!(
            "t cancelled {}, waiters {}, locked {}",
            t.is_cancelled().py(),
            lock.waiters(),
            lock.locked().py()
        ));
        lock.release()?;
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "0.0 main took it at once: waiters 1, t done False",
            "0.0 t cancelled True, waiters 0, locked True",
            "result None",
            "end 0.0",
        ]
    );
}

// Python: tests/cpython/sync_locks/lock_release_when_unlocked_is_an_error.py
#[test]
fn lock_release_when_unlocked_is_an_error() {
    let trace = go(|| {
        let lock = Lock::new();
        if let Err(e @ SyncError::NotAcquired) = lock.release() {
            log(format!("RuntimeError: {e}"));
        }
        {
            let _held = lock.acquire()?;
            log(format!("inside: locked {}", lock.locked().py()));
        }
        log(format!("after: locked {}", lock.locked().py()));
        if let Err(e @ SyncError::NotAcquired) = lock.release() {
            log(format!("RuntimeError: {e}"));
        }
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "0.0 RuntimeError: Lock is not acquired.",
            "0.0 inside: locked True",
            "0.0 after: locked False",
            "0.0 RuntimeError: Lock is not acquired.",
            "result None",
            "end 0.0",
        ]
    );
}

// Python: tests/cpython/sync_locks/lock_guard_is_released_by_an_early_return.py
#[test]
fn lock_guard_is_released_by_an_early_return() {
    fn fails() -> Result<(), Error> {
        Err(boom("failed inside"))
    }
    let trace = go(|| {
        let lock = Lock::new();
        let t1 = {
            let lock = lock.clone();
            runtime::spawn(move || {
                let _held = lock.acquire()?;
                log(format!("critical: locked {}", lock.locked().py()));
                fails()?; // returns with the guard alive
                Ok(())
            })
        };
        let t2 = {
            let lock = lock.clone();
            runtime::spawn(move || {
                let _held = lock.acquire()?;
                log("next_one has the lock");
                Ok(())
            })
        };
        let outcomes = runtime::gather_outcomes([t1, t2])?;
        log(format!("outcomes {}", outcome_list(&outcomes)));
        log(format!("locked {}", lock.locked().py()));
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "0.0 critical: locked True",
            "0.0 next_one has the lock",
            "0.0 outcomes ['Boom(failed inside)', None]",
            "0.0 locked False",
            "result None",
            "end 0.0",
        ]
    );
}

// Python: tests/cpython/sync_locks/lock_guard_is_released_by_a_panic.py
#[test]
fn lock_guard_is_released_by_a_panic() {
    let trace = go(|| {
        let lock = Lock::new();
        let t1 = {
            let lock = lock.clone();
            runtime::spawn(move || -> Result<(), Error> {
                let _held = lock.acquire()?;
                sleep(1.0)?;
                panic!("crash while holding the lock");
            })
        };
        let t2 = {
            let lock = lock.clone();
            runtime::spawn(move || {
                let _held = lock.acquire()?;
                log("next_one has the lock");
                Ok(())
            })
        };
        match t1.join() {
            Err(e) if e.is_panic() => log(format!("crashes failed: {}", e.message())),
            other => log(format!("crashes did not panic: {}", outcome(&other))),
        }
        t2.join()?;
        log(format!("locked {}", lock.locked().py()));
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "1.0 next_one has the lock",
            "1.0 crashes failed: crash while holding the lock",
            "1.0 locked False",
            "result None",
            "end 1.0",
        ]
    );
}

// Python: tests/cpython/sync_locks/lock_guard_is_released_by_cancellation.py
#[test]
fn lock_guard_is_released_by_cancellation() {
    let trace = go(|| {
        let lock = Lock::new();
        let t1 = {
            let lock = lock.clone();
            runtime::spawn(move || {
                let _held = lock.acquire()?;
                log("holder has the lock");
                sleep(10.0)
            })
        };
        let t2 = {
            let lock = lock.clone();
            runtime::spawn(move || {
                let _held = lock.acquire()?;
                log("next_one has the lock");
                Ok(())
            })
        };
        sleep(1.0)?;
        t1.cancel();
        let outcomes = runtime::gather_outcomes([t1, t2])?;
        log(format!("outcomes {}", outcome_list(&outcomes)));
        log(format!("locked {}", lock.locked().py()));
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "0.0 holder has the lock",
            "1.0 next_one has the lock",
            "1.0 outcomes ['CancelledError()', None]",
            "1.0 locked False",
            "result None",
            "end 1.0",
        ]
    );
}

#[test]
fn lock_guard_is_released_when_run_cancels_its_task_at_shutdown() {
    let lock = Lock::new();
    let inner = lock.clone();
    let (result, _, end) = run_virtual(move || {
        let task_lock = inner.clone();
        runtime::spawn(move || {
            let _held = task_lock.acquire()?;
            sleep(100.0)
        });
        sleep(1.0)?;
        Ok(inner.locked())
    });
    assert!(result.unwrap(), "the task held the lock when main returned");
    assert_eq!(end, secs(1.0), "shutdown cancels the sleeper at once");
    assert!(!lock.locked(), "the cancelled task's guard released the lock");
    assert_eq!(lock.waiters(), 0);
}

#[test]
fn lock_guard_of_an_acquisition_released_by_hand_does_nothing_when_dropped() {
    let lock = Lock::new();
    let first = lock.acquire().unwrap(); // the free lock needs no loop
    assert!(first.is_held());
    lock.release().unwrap();
    assert!(!first.is_held());
    let second = lock.acquire().unwrap();
    assert!(!first.is_held() && second.is_held());
    drop(first);
    assert!(lock.locked(), "a stale guard must not release the new acquisition");
    drop(second);
    assert!(!lock.locked());
}

#[test]
fn lock_try_acquire_never_waits_and_never_barges() {
    let (result, trace, _) = run_virtual(|| {
        let lock = Lock::new();
        let held = lock.try_acquire().expect("a free lock");
        assert!(lock.try_acquire().is_none());
        let waiter = {
            let lock = lock.clone();
            runtime::spawn(move || {
                let _held = lock.acquire()?;
                log("waiter has the lock");
                Ok(())
            })
        };
        sleep(0.0)?;
        drop(held);
        assert!(!lock.locked());
        // Unlocked, but promised to the woken waiter.
        assert!(lock.try_acquire().is_none());
        waiter.join()?;
        assert!(lock.try_acquire().is_some());
        Ok(())
    });
    result.unwrap();
    assert_eq!(trace, ["0.0 waiter has the lock"]);
}

#[test]
fn lock_acquire_outside_a_task_takes_a_free_lock_and_refuses_to_wait() {
    let (result, trace, _) = run_virtual(|| {
        let lock = Lock::new();
        let l = lock.clone();
        runtime::call_soon(move || {
            let free = l.acquire().map(std::mem::forget);
            print(format!("free: {}", outcome(&free)));
            let busy = l.acquire().map(std::mem::forget);
            print(format!("busy: {}", outcome(&busy)));
            print(format!("waiters {}", l.waiters()));
        })?;
        sleep(0.0)?;
        Ok(lock.locked())
    });
    assert!(result.unwrap());
    assert_eq!(
        trace,
        [
            "free: None",
            "busy: NoRunningLoop(Lock.acquire must be called from inside a task)",
            "waiters 0",
        ]
    );
}

#[test]
fn sync_errors_have_python_messages_and_convert_to_misuse() {
    let cases = [
        (SyncError::NotAcquired, "Lock is not acquired."),
        (SyncError::WaitUnacquired, "cannot wait on un-acquired lock"),
        (SyncError::NotifyUnacquired, "cannot notify on un-acquired lock"),
        (SyncError::ReleasedTooManyTimes, "BoundedSemaphore released too many times"),
    ];
    for (e, text) in cases {
        assert_eq!(e.to_string(), text);
        let boxed: Box<dyn std::error::Error> = Box::new(e);
        assert_eq!(boxed.to_string(), text);
        let converted = Error::from(e);
        assert_eq!(converted.kind(), ErrorKind::Misuse);
        assert_eq!(converted.message(), text);
    }
}

#[test]
fn debug_shows_the_state_of_each_primitive() {
    let lock = Lock::new();
    let guard = lock.acquire().unwrap();
    assert_eq!(format!("{lock:?}"), "Lock { locked: true, waiters: 0 }");
    assert_eq!(format!("{guard:?}"), "LockGuard { held: true }");
    drop(guard);
    let ev = Event::new();
    ev.set();
    assert_eq!(format!("{ev:?}"), "Event { set: true, waiters: 0 }");
    let sem = Semaphore::new(2);
    let permit = sem.acquire().unwrap();
    assert_eq!(format!("{sem:?}"), "Semaphore { value: 1, locked: false, waiters: 0 }");
    assert_eq!(format!("{permit:?}"), "SemaphorePermit { .. }");
    drop(permit);
    let bounded = BoundedSemaphore::new(1);
    assert_eq!(
        format!("{bounded:?}"),
        "BoundedSemaphore { value: 1, bound: 1, locked: false, waiters: 0 }"
    );
    let cond = Condition::new();
    assert_eq!(format!("{cond:?}"), "Condition { locked: false, waiters: 0 }");
}

// ---------------------------------------------------------------------------
// B11.2 Event
// ---------------------------------------------------------------------------

// Python: tests/cpython/sync_locks/event_set_wakes_waiters_in_order_behind_ready_tasks.py
#[test]
fn event_set_wakes_waiters_in_order_behind_ready_tasks() {
    let trace = go(|| {
        let ev = Event::new();
        let result = shared(Vec::<i32>::new());
        let c = |n: i32| {
            let (ev, result) = (ev.clone(), result.clone());
            runtime::spawn(move || {
                ev.wait()?;
                result.borrow_mut().push(n);
                Ok(())
            })
        };
        let t1 = c(1);
        let t2 = c(2);
        sleep(0.0)?;
        log(format!("waiting: {}, waiters {}", result.borrow().py(), ev.waiters()));
        let t3 = c(3);
        ev.set();
        sleep(0.0)?;
        log(format!("after set: {}, waiters {}", result.borrow().py(), ev.waiters()));
        log(format!("done: {} {} {}", t1.is_done().py(), t2.is_done().py(), t3.is_done().py()));
        let result = result.borrow().clone();
        Ok(result)
    });
    assert_eq!(
        trace,
        [
            "0.0 waiting: [], waiters 2",
            "0.0 after set: [3, 1, 2], waiters 0",
            "0.0 done: True True True",
            "result [3, 1, 2]",
            "end 0.0",
        ]
    );
}

// Python: tests/cpython/sync_locks/event_wait_on_a_set_event_does_not_yield.py
#[test]
fn event_wait_on_a_set_event_does_not_yield() {
    let trace = go(|| {
        let ev = Event::new();
        ev.set();
        let started = Rc::new(Cell::new(false));
        let s = started.clone();
        let t = runtime::spawn(move || {
            s.set(true);
            Ok(())
        });
        ev.wait()?;
        log(format!("wait returned; other started: {}", started.get().py()));
        t.join()?;
        log(format!("other started: {}", started.get().py()));
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "0.0 wait returned; other started: False",
            "0.0 other started: True",
            "result None",
            "end 0.0",
        ]
    );
}

// Python: tests/cpython/sync_locks/event_set_then_clear_still_releases_the_waiters.py
#[test]
fn event_set_then_clear_still_releases_the_waiters() {
    let trace = go(|| {
        let ev = Event::new();
        let result = shared(Vec::<i32>::new());
        let t = {
            let (ev, result) = (ev.clone(), result.clone());
            runtime::spawn(move || {
                ev.wait()?;
                result.borrow_mut().push(1);
                log("c woke");
                Ok(())
            })
        };
        sleep(0.0)?;
        ev.set();
        ev.clear();
        log(format!("set and cleared: is_set {}", ev.is_set().py()));
        ev.set();
        ev.set();
        log(format!("set twice more: waiters {}", ev.waiters()));
        sleep(0.0)?;
        log(format!(
            "result {}, waiters {}, done {}",
            result.borrow().py(),
            ev.waiters(),
            t.is_done().py()
        ));
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "0.0 set and cleared: is_set False",
            "0.0 set twice more: waiters 1",
            "0.0 c woke",
            "0.0 result [1], waiters 0, done True",
            "result None",
            "end 0.0",
        ]
    );
}

// Python: tests/cpython/sync_locks/event_waiter_cancelled_before_or_after_set_leaves_the_others.py
#[test]
fn event_waiter_cancelled_before_or_after_set_leaves_the_others() {
    let trace = go(|| {
        let ev = Event::new();
        let c = |name: &'static str| {
            let ev = ev.clone();
            runtime::spawn(move || {
                ev.wait()?;
                log(format!("{name} woke"));
                Ok(name)
            })
        };
        let (t1, t2, t3) = (c("t1"), c("t2"), c("t3"));
        sleep(0.0)?;
        t1.cancel();
        sleep(0.0)?;
        log(format!("t1 cancelled before set: waiters {}", ev.waiters()));
        ev.set();
        t2.cancel();
        let outcomes = runtime::gather_outcomes([t1, t2, t3])?;
        log(format!("outcomes {}", outcome_list(&outcomes)));
        log(format!("waiters {}", ev.waiters()));
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "0.0 t1 cancelled before set: waiters 2",
            "0.0 t3 woke",
            "0.0 outcomes ['CancelledError()', 'CancelledError()', 't3']",
            "0.0 waiters 0",
            "result None",
            "end 0.0",
        ]
    );
}

// ---------------------------------------------------------------------------
// B11.3 Condition
// ---------------------------------------------------------------------------

// Python: tests/cpython/sync_locks/condition_wait_and_notify_need_the_lock.py
#[test]
fn condition_wait_and_notify_need_the_lock() {
    let trace = go(|| {
        let cond = Condition::new();
        let mut guard = cond.acquire()?;
        cond.release()?; // the guard holds nothing any more
        if let Err(e) = cond.wait(&mut guard) {
            log(format!("wait: RuntimeError: {}", e.message()));
        }
        if let Err(e @ SyncError::NotifyUnacquired) = cond.notify(1) {
            log(format!("notify: RuntimeError: {e}"));
        }
        if let Err(e @ SyncError::NotifyUnacquired) = cond.notify_all() {
            log(format!("notify_all: RuntimeError: {e}"));
        }
        drop(guard);
        log(format!("locked {}", cond.locked().py()));
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "0.0 wait: RuntimeError: cannot wait on un-acquired lock",
            "0.0 notify: RuntimeError: cannot notify on un-acquired lock",
            "0.0 notify_all: RuntimeError: cannot notify on un-acquired lock",
            "0.0 locked False",
            "result None",
            "end 0.0",
        ]
    );
}

#[test]
fn condition_wait_refuses_a_guard_of_another_lock_and_keeps_both_locks() {
    let (result, _, _) = run_virtual(|| {
        let cond = Condition::new();
        let other = Lock::new();
        let _cond_guard = cond.acquire()?;
        let mut other_guard = other.acquire()?;
        let e = cond.wait(&mut other_guard).expect_err("a guard of another lock");
        assert_eq!(e.kind(), ErrorKind::Misuse);
        assert!(cond.locked() && other.locked() && other_guard.is_held());
        assert_eq!(cond.waiters(), 0);
        Ok(())
    });
    result.unwrap();
}

#[test]
fn condition_with_a_shared_lock_waits_on_that_lock() {
    let (result, trace, _) = run_virtual(|| {
        let lock = Lock::new();
        let cond = Condition::with_lock(lock.clone());
        let waiter = {
            let cond = cond.clone();
            runtime::spawn(move || {
                let mut guard = cond.lock().acquire()?;
                cond.wait(&mut guard)?;
                log(format!("woken with the lock: {}", guard.is_held().py()));
                Ok(())
            })
        };
        sleep(0.0)?;
        assert!(!lock.locked(), "wait released the shared lock");
        let guard = lock.acquire()?;
        assert_eq!(cond.notify_all(), Ok(1));
        drop(guard);
        waiter.join()?;
        assert!(!lock.locked());
        Ok(())
    });
    result.unwrap();
    assert_eq!(trace, ["0.0 woken with the lock: True"]);
}

// Python: tests/cpython/sync_locks/condition_notified_waiters_proceed_one_by_one_with_the_lock.py
#[test]
fn condition_notified_waiters_proceed_one_by_one_with_the_lock() {
    let trace = go(|| {
        let cond = Condition::new();
        let result = shared(Vec::<i32>::new());
        let tasks: Vec<Task<()>> = (1..=3)
            .map(|n| {
                let (cond, result) = (cond.clone(), result.clone());
                runtime::spawn(move || {
                    let mut guard = cond.acquire()?;
                    cond.wait(&mut guard)?;
                    result.borrow_mut().push(n);
                    std::mem::forget(guard); // Python: no release
                    Ok(())
                })
            })
            .collect();
        sleep(0.0)?;
        log(format!("waiting: {}, locked {}", result.borrow().py(), cond.locked().py()));
        hold(cond.lock())?;
        cond.notify(1)?;
        sleep(0.0)?;
        log(format!(
            "notified 1, lock still held: {}, locked {}",
            result.borrow().py(),
            cond.locked().py()
        ));
        cond.release()?;
        sleep(0.0)?;
        log(format!("released: {}, locked {}", result.borrow().py(), cond.locked().py()));
        cond.notify(2)?;
        sleep(0.0)?;
        log(format!("notified 2 more: {}, locked {}", result.borrow().py(), cond.locked().py()));
        cond.release()?;
        sleep(0.0)?;
        log(format!("released: {}, locked {}", result.borrow().py(), cond.locked().py()));
        cond.release()?;
        sleep(0.0)?;
        log(format!("released: {}, locked {}", result.borrow().py(), cond.locked().py()));
        let done: Vec<bool> = tasks.iter().map(Task::is_done).collect();
        log(format!("done: {}", done.py()));
        let result = result.borrow().clone();
        Ok(result)
    });
    assert_eq!(
        trace,
        [
            "0.0 waiting: [], locked False",
            "0.0 notified 1, lock still held: [], locked True",
            "0.0 released: [1], locked True",
            "0.0 notified 2 more: [1], locked True",
            "0.0 released: [1, 2], locked True",
            "0.0 released: [1, 2, 3], locked True",
            "0.0 done: [True, True, True]",
            "result [1, 2, 3]",
            "end 0.0",
        ]
    );
}

// Python: tests/cpython/sync_locks/condition_notify_wakes_the_first_n_in_order.py
#[test]
fn condition_notify_wakes_the_first_n_in_order() {
    let trace = go(|| {
        let cond = Condition::new();
        let result = shared(Vec::<i32>::new());
        let tasks: Vec<Task<()>> = (1..=5)
            .map(|n| {
                let (cond, result) = (cond.clone(), result.clone());
                runtime::spawn(move || {
                    let mut guard = cond.acquire()?;
                    cond.wait(&mut guard)?;
                    result.borrow_mut().push(n);
                    Ok(())
                })
            })
            .collect();
        sleep(0.0)?;
        {
            let _guard = cond.acquire()?;
            cond.notify(1)?;
        }
        sleep(0.0)?;
        log(format!("notify(1): {}", result.borrow().py()));
        {
            let _guard = cond.acquire()?;
            cond.notify(1)?;
            cond.notify(2)?;
        }
        sleep(0.0)?;
        log(format!("notify(1), notify(2): {}", result.borrow().py()));
        {
            let _guard = cond.acquire()?;
            cond.notify_all()?;
        }
        sleep(0.0)?;
        log(format!("notify_all: {}, waiters {}", result.borrow().py(), cond.waiters()));
        runtime::gather(tasks)?;
        let result = result.borrow().clone();
        Ok(result)
    });
    assert_eq!(
        trace,
        [
            "0.0 notify(1): [1]",
            "0.0 notify(1), notify(2): [1, 2, 3, 4]",
            "0.0 notify_all: [1, 2, 3, 4, 5], waiters 0",
            "result [1, 2, 3, 4, 5]",
            "end 0.0",
        ]
    );
}

// Python: tests/cpython/sync_locks/condition_wait_for_rechecks_the_predicate.py
#[test]
fn condition_wait_for_rechecks_the_predicate() {
    let trace = go(|| {
        let cond = Condition::new();
        let ready = Rc::new(Cell::new(false));
        let checks = Rc::new(Cell::new(0));
        let t = {
            let (cond, ready, checks) = (cond.clone(), ready.clone(), checks.clone());
            runtime::spawn(move || {
                let mut guard = cond.acquire()?;
                cond.wait_for(&mut guard, || {
                    checks.set(checks.get() + 1);
                    log(format!("predicate check {}: {}", checks.get(), ready.get().py()));
                    ready.get()
                })?;
                log("c proceeds");
                Ok(())
            })
        };
        sleep(0.0)?;
        {
            let _guard = cond.acquire()?;
            cond.notify(1)?;
        }
        sleep(0.0)?;
        log(format!("notified while false: done {}", t.is_done().py()));
        ready.set(true);
        {
            let _guard = cond.acquire()?;
            cond.notify(1)?;
        }
        t.join()?;
        log(format!("checks {}, locked {}", checks.get(), cond.locked().py()));
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "0.0 predicate check 1: False",
            "0.0 predicate check 2: False",
            "0.0 notified while false: done False",
            "0.0 predicate check 3: True",
            "0.0 c proceeds",
            "0.0 checks 3, locked False",
            "result None",
            "end 0.0",
        ]
    );
}

// Python: tests/cpython/sync_locks/condition_wait_takes_the_lock_again_when_cancelled.py
#[test]
fn condition_wait_takes_the_lock_again_when_cancelled() {
    let trace = go(|| {
        let cond = Condition::new();
        let t = {
            let cond = cond.clone();
            runtime::spawn(move || {
                let mut guard = cond.acquire()?;
                if let Err(e) = cond.wait(&mut guard) {
                    log(format!("w: {} with the lock held: {}", ex(&e), cond.locked().py()));
                    assert!(guard.is_held());
                    return Err(e);
                }
                Ok(())
            })
        };
        sleep(0.0)?;
        hold(cond.lock())?;
        cond.notify(1)?;
        t.cancel();
        sleep(0.0)?;
        log(format!(
            "notified and cancelled w while holding the lock: w done {}",
            t.is_done().py()
        ));
        sleep(1.0)?;
        log(format!("still held: w done {}", t.is_done().py()));
        cond.release()?;
        if let Err(e) = t.join() {
            if e.is_cancelled() {
                log(format!(
                    "w cancelled {}, locked {}",
                    t.is_cancelled().py(),
                    cond.locked().py()
                ));
            }
        }
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "0.0 notified and cancelled w while holding the lock: w done False",
            "1.0 still held: w done False",
            "1.0 w: CancelledError() with the lock held: True",
            "1.0 w cancelled True, locked False",
            "result None",
            "end 1.0",
        ]
    );
}

#[test]
fn condition_wait_cancelled_again_while_it_takes_the_lock_still_takes_it() {
    let (result, trace, _) = run_virtual(|| {
        let cond = Condition::new();
        let t = {
            let cond = cond.clone();
            runtime::spawn(move || {
                let mut guard = cond.acquire()?;
                let e = cond.wait(&mut guard).expect_err("cancelled");
                log(format!("{} held {}", ex(&e), guard.is_held().py()));
                Ok(())
            })
        };
        sleep(0.0)?;
        let guard = cond.acquire()?;
        t.cancel(); // while it waits to be notified
        sleep(0.0)?;
        t.cancel(); // while it waits for the lock again
        sleep(0.0)?;
        t.cancel();
        sleep(1.0)?;
        assert!(!t.is_done());
        drop(guard);
        t.join()?;
        assert!(!cond.locked());
        Ok(())
    });
    result.unwrap();
    assert_eq!(trace, ["1.0 CancelledError() held True"]);
}

// Python: tests/cpython/sync_locks/condition_notified_waiter_cancelled_before_it_runs_loses_the_notification.py
#[test]
fn condition_notified_waiter_cancelled_before_it_runs_loses_the_notification() {
    let trace = go(|| {
        let cond = Condition::new();
        let w = |name: &'static str| {
            let cond = cond.clone();
            runtime::spawn(move || {
                let mut guard = cond.acquire()?;
                cond.wait(&mut guard)?;
                log(format!("{name} notified"));
                Ok(())
            })
        };
        let t1 = w("t1");
        let t2 = w("t2");
        sleep(0.0)?;
        {
            let _guard = cond.acquire()?;
            cond.notify(1)?;
            t1.cancel();
        }
        sleep(1.0)?;
        log(format!(
            "t1 cancelled {}, t2 done {}, waiters {}",
            t1.is_cancelled().py(),
            t2.is_done().py(),
            cond.waiters()
        ));
        {
            let _guard = cond.acquire()?;
            cond.notify(1)?;
        }
        t2.join()?;
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "1.0 t1 cancelled True, t2 done False, waiters 1",
            "1.0 t2 notified",
            "result None",
            "end 1.0",
        ]
    );
}

// ---------------------------------------------------------------------------
// B11.4 Semaphore, BoundedSemaphore
// ---------------------------------------------------------------------------

// Python: tests/cpython/sync_locks/semaphore_acquire_is_first_in_first_out.py
#[test]
fn semaphore_acquire_is_first_in_first_out() {
    let trace = go(|| {
        let sem = Semaphore::new(1);
        let result = shared(Vec::<String>::new());
        let tasks: Vec<Task<()>> = ["c1", "c2", "c3"]
            .into_iter()
            .map(|tag| {
                let (sem, result) = (sem.clone(), result.clone());
                runtime::spawn(move || {
                    for round in 1..=2 {
                        let _permit = sem.acquire()?;
                        result.borrow_mut().push(format!("{tag}_{round}"));
                        sleep(0.5)?;
                    }
                    Ok(())
                })
            })
            .collect();
        runtime::gather(tasks)?;
        log(format!("value {}", sem.value()));
        let result = result.borrow().clone();
        Ok(result)
    });
    assert_eq!(
        trace,
        ["3.0 value 1", "result ['c1_1', 'c2_1', 'c3_1', 'c1_2', 'c2_2', 'c3_2']", "end 3.0",]
    );
}

// Python: tests/cpython/sync_locks/semaphore_woken_waiter_does_not_lose_its_turn_to_a_releaser.py
#[test]
fn semaphore_woken_waiter_does_not_lose_its_turn_to_a_releaser() {
    let trace = go(|| {
        let sem = Semaphore::new(1);
        let result = shared(Vec::<i32>::new());
        let spawn = |body: fn(&Semaphore, &RefCell<Vec<i32>>) -> Result<(), Error>| {
            let (sem, result) = (sem.clone(), result.clone());
            runtime::spawn(move || body(&sem, &result))
        };
        let tasks = [
            spawn(|sem, result| {
                hold_permit(sem)?;
                result.borrow_mut().push(1);
                Ok(())
            }),
            spawn(|sem, result| {
                let permit = sem.acquire()?;
                result.borrow_mut().push(2);
                drop(permit);
                hold_permit(sem)?;
                result.borrow_mut().push(4);
                Ok(())
            }),
            spawn(|sem, result| {
                hold_permit(sem)?;
                result.borrow_mut().push(3);
                Ok(())
            }),
        ];
        sleep(0.0)?;
        sem.release();
        sem.release();
        runtime::gather(tasks)?;
        log(format!("value {}, locked {}", sem.value(), sem.locked().py()));
        let result = result.borrow().clone();
        Ok(result)
    });
    assert_eq!(trace, ["0.0 value 0, locked True", "result [1, 2, 3, 4]", "end 0.0"]);
}

// Python: tests/cpython/sync_locks/semaphore_waiter_cancelled_before_wake_up_gets_nothing.py
#[test]
fn semaphore_waiter_cancelled_before_wake_up_gets_nothing() {
    let trace = go(|| {
        let sem = Semaphore::new(0);
        let result = shared(Vec::<i32>::new());
        let tasks: Vec<Task<()>> = (1..=4)
            .map(|n| {
                let (sem, result) = (sem.clone(), result.clone());
                runtime::spawn(move || {
                    hold_permit(&sem)?;
                    result.borrow_mut().push(n);
                    Ok(())
                })
            })
            .collect();
        sleep(0.0)?;
        tasks[0].cancel();
        sleep(0.0)?;
        log(format!("c1 cancelled: locked {}, waiters {}", sem.locked().py(), sem.waiters()));
        tasks[1].cancel();
        sem.release();
        log(format!("c2 cancelled, one release: value {}", sem.value()));
        sleep(0.0)?;
        sleep(0.0)?;
        let done: Vec<bool> = tasks.iter().map(Task::is_done).collect();
        log(format!("result {}, done {}, value {}", result.borrow().py(), done.py(), sem.value()));
        tasks[3].cancel();
        let outcomes = runtime::gather_outcomes(&tasks)?;
        log(format!("outcomes {}", outcome_list(&outcomes)));
        let result = result.borrow().clone();
        Ok(result)
    });
    assert_eq!(
        trace,
        [
            "0.0 c1 cancelled: locked True, waiters 3",
            "0.0 c2 cancelled, one release: value 0",
            "0.0 result [3], done [True, True, True, False], value 0",
            "0.0 outcomes ['CancelledError()', 'CancelledError()', None, 'CancelledError()']",
            "result [3]",
            "end 0.0",
        ]
    );
}

// Python: tests/cpython/sync_locks/semaphore_woken_waiter_cancelled_passes_the_permit_on.py
#[test]
fn semaphore_woken_waiter_cancelled_passes_the_permit_on() {
    let trace = go(|| {
        let sem = Semaphore::new(0);
        let c = |name: &'static str| {
            let sem = sem.clone();
            runtime::spawn(move || {
                match sem.acquire() {
                    Ok(permit) => std::mem::forget(permit),
                    Err(e) => {
                        log(format!("{name} cancelled: value {}", sem.value()));
                        return Err(e);
                    }
                }
                log(format!("{name} got a permit"));
                Ok(())
            })
        };
        let t1 = c("t1");
        let t2 = c("t2");
        sleep(0.0)?;
        sem.release();
        log(format!("released to t1: value {}, locked {}", sem.value(), sem.locked().py()));
        t1.cancel();
        sleep(0.0)?;
        sleep(0.0)?;
        log(format!(
            "t1 cancelled {}, t2 done {}, value {}, locked {}",
            t1.is_cancelled().py(),
            t2.is_done().py(),
            sem.value(),
            sem.locked().py()
        ));
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "0.0 released to t1: value 0, locked True",
            "0.0 t1 cancelled: value 0",
            "0.0 t2 got a permit",
            "0.0 t1 cancelled True, t2 done True, value 0, locked True",
            "result None",
            "end 0.0",
        ]
    );
}

// Python: tests/cpython/sync_locks/semaphore_locked_counts_waiters_not_cancelled.py
#[test]
fn semaphore_locked_counts_waiters_not_cancelled() {
    let trace = go(|| {
        let sem = Semaphore::new(3);
        let result = shared(Vec::<i32>::new());
        hold_permit(&sem)?;
        hold_permit(&sem)?;
        log(format!("two taken: value {}, locked {}", sem.value(), sem.locked().py()));
        let c = |n: i32| {
            let (sem, result) = (sem.clone(), result.clone());
            runtime::spawn(move || {
                hold_permit(&sem)?;
                result.borrow_mut().push(n);
                Ok(())
            })
        };
        let mut tasks: Vec<Task<()>> = (1..=3).map(c).collect();
        sleep(0.0)?;
        log(format!(
            "{}: value {}, locked {}, waiters {}",
            result.borrow().py(),
            sem.value(),
            sem.locked().py(),
            sem.waiters()
        ));
        tasks.push(c(4));
        sem.release();
        sem.release();
        log(format!("two releases: value {}", sem.value()));
        sleep(0.0)?;
        log(format!(
            "{}: value {}, locked {}, waiters {}",
            result.borrow().py(),
            sem.value(),
            sem.locked().py(),
            sem.waiters()
        ));
        tasks[3].cancel();
        sleep(0.0)?;
        log(format!("c4 cancelled: locked {}, waiters {}", sem.locked().py(), sem.waiters()));
        sem.release();
        log(format!("released: locked {}, value {}", sem.locked().py(), sem.value()));
        let permit = sem.try_acquire().expect("a permit without waiting");
        std::mem::forget(permit);
        log(format!("main took a permit at once: value {}", sem.value()));
        let result = result.borrow().clone();
        Ok(result)
    });
    assert_eq!(
        trace,
        [
            "0.0 two taken: value 1, locked False",
            "0.0 [1]: value 0, locked True, waiters 2",
            "0.0 two releases: value 0",
            "0.0 [1, 2, 3]: value 0, locked True, waiters 1",
            "0.0 c4 cancelled: locked True, waiters 0",
            "0.0 released: locked False, value 1",
            "0.0 main took a permit at once: value 0",
            "result [1, 2, 3]",
            "end 0.0",
        ]
    );
}

// Python: tests/cpython/sync_locks/semaphore_no_barging_past_a_woken_waiter.py
#[test]
fn semaphore_no_barging_past_a_woken_waiter() {
    let trace = go(|| {
        let sem = Semaphore::new(1);
        let order = shared(Vec::<&str>::new());
        hold_permit(&sem)?;
        let t = {
            let (sem, order) = (sem.clone(), order.clone());
            runtime::spawn(move || {
                let _permit = sem.acquire()?;
                order.borrow_mut().push("waiter");
                sleep(1.0)
            })
        };
        sleep(0.0)?;
        sem.release();
        log(format!("released: value {}, locked {}", sem.value(), sem.locked().py()));
        {
            let _permit = sem.acquire()?;
            order.borrow_mut().push("main");
            log("main has a permit");
        }
        t.join()?;
        log(format!("value {}", sem.value()));
        let order = order.borrow().clone();
        Ok(order)
    });
    assert_eq!(
        trace,
        [
            "0.0 released: value 0, locked True",
            "1.0 main has a permit",
            "1.0 value 1",
            "result ['waiter', 'main']",
            "end 1.0",
        ]
    );
}

// Python: tests/cpython/sync_locks/bounded_semaphore_released_too_many_times_is_an_error.py
#[test]
fn bounded_semaphore_released_too_many_times_is_an_error() {
    let trace = go(|| {
        let sem = BoundedSemaphore::new(2);
        if let Err(e @ SyncError::ReleasedTooManyTimes) = sem.release() {
            log(format!("ValueError: {e}"));
        }
        std::mem::forget(sem.acquire()?);
        sem.release()?;
        log(format!("acquired and released: value {}", sem.value()));
        if let Err(e @ SyncError::ReleasedTooManyTimes) = sem.release() {
            log(format!("ValueError: {e}"));
        }
        log(format!("value {}", sem.value()));
        let plain = Semaphore::new(2);
        plain.release();
        log(format!("a plain semaphore goes above: value {}", plain.value()));
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "0.0 ValueError: BoundedSemaphore released too many times",
            "0.0 acquired and released: value 2",
            "0.0 ValueError: BoundedSemaphore released too many times",
            "0.0 value 2",
            "0.0 a plain semaphore goes above: value 3",
            "result None",
            "end 0.0",
        ]
    );
}

#[test]
fn bounded_semaphore_permit_dropped_at_the_bound_adds_nothing() {
    let sem = BoundedSemaphore::new(1);
    let permit = sem.acquire().unwrap();
    sem.release().unwrap(); // by hand, while the permit is out
    assert_eq!(sem.value(), 1);
    drop(permit);
    assert_eq!(sem.value(), 1, "the bound holds");
    assert_eq!(sem.bound(), 1);
}

// Python: tests/cpython/sync_locks/semaphore_permit_is_given_back_by_errors_and_cancellation.py
#[test]
fn semaphore_permit_is_given_back_by_errors_and_cancellation() {
    fn fails() -> Result<(), Error> {
        Err(boom("fails"))
    }
    let trace = go(|| {
        let sem = BoundedSemaphore::new(2);
        let t1 = {
            let sem = sem.clone();
            runtime::spawn(move || {
                let _permit = sem.acquire()?;
                sleep(1.0)?;
                fails()?;
                Ok(())
            })
        };
        let t2 = {
            let sem = sem.clone();
            runtime::spawn(move || {
                let _permit = sem.acquire()?;
                sleep(10.0)
            })
        };
        let t3 = {
            let sem = sem.clone();
            runtime::spawn(move || {
                let _permit = sem.acquire()?;
                log(format!("third has a permit: value {}", sem.value()));
                Ok(())
            })
        };
        sleep(2.0)?;
        log(format!("value {}", sem.value()));
        t2.cancel();
        let outcomes = runtime::gather_outcomes([t1, t2, t3])?;
        log(format!("outcomes {}", outcome_list(&outcomes)));
        log(format!("value {}", sem.value()));
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "1.0 third has a permit: value 0",
            "2.0 value 1",
            "2.0 outcomes ['Boom(fails)', 'CancelledError()', None]",
            "2.0 value 2",
            "result None",
            "end 2.0",
        ]
    );
}

#[test]
fn semaphore_permit_is_given_back_by_a_panic() {
    let (result, _, end) = run_virtual(|| {
        let sem = Semaphore::new(1);
        let crashes = {
            let sem = sem.clone();
            runtime::spawn(move || -> Result<(), Error> {
                let _permit = sem.acquire()?;
                sleep(1.0)?;
                panic!("crash while holding a permit");
            })
        };
        let next = {
            let sem = sem.clone();
            runtime::spawn(move || {
                let _permit = sem.acquire()?;
                runtime::time()
            })
        };
        assert!(crashes.join().expect_err("it panicked").is_panic());
        assert_eq!(next.join()?, Duration::from_secs(1));
        Ok(sem.value())
    });
    assert_eq!(result.unwrap(), 1);
    assert_eq!(end, secs(1.0));
}

// ---------------------------------------------------------------------------
// The uncontended paths allocate nothing
// ---------------------------------------------------------------------------

#[path = "common/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::allocations;

#[test]
fn uncontended_paths_allocate_nothing() {
    let (result, _, _) = run_virtual(|| {
        let lock = Lock::new();
        let sem = Semaphore::new(2);
        let bounded = BoundedSemaphore::new(1);
        let ev = Event::new();
        let cond = Condition::new();
        let before = allocations();
        for _ in 0..1_000 {
            drop(lock.acquire()?);
            drop(lock.try_acquire());
            let (a, b) = (sem.acquire()?, sem.acquire()?);
            assert!(sem.try_acquire().is_none());
            drop((a, b));
            drop(bounded.acquire()?);
            ev.set();
            ev.wait()?;
            ev.clear();
            let mut guard = cond.acquire()?;
            cond.notify(1)?;
            cond.notify_all()?;
            cond.wait_for(&mut guard, || true)?;
        }
        let uncontended = allocations() - before;
        // The counter does count: a contended acquire makes a promise.
        let held = lock.acquire()?;
        let waiter = {
            let lock = lock.clone();
            runtime::spawn(move || {
                let before = allocations();
                drop(lock.acquire()?);
                Ok(allocations() - before)
            })
        };
        sleep(0.0)?;
        drop(held);
        let contended = waiter.join()?;
        Ok((uncontended, contended))
    });
    let (uncontended, contended) = result.unwrap();
    assert_eq!(uncontended, 0);
    assert!(contended > 0, "a wait allocates its promise");
}
