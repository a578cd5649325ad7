#![cfg(feature = "testing")]
//! Attacks on parking (`runtime::park`) through the sync primitives, from
//! the safe public API: stale entries of a task that has moved on, wake-ups
//! and cancellations in the same iteration, waits inside `timeout`,
//! `shield`, task groups and gathers, lost wake-ups and lost or duplicated
//! items and permits under explored schedules, re-entrant destructors,
//! teardown of parked tasks, refused waits, and deadlock reports.
//!
//! The scenarios run under `gencoro::testing`, so they hold under the
//! orders FIFO never shows, not only under FIFO. Each returns an `Err`
//! naming what broke.

use std::cell::{Cell, RefCell};
use std::panic;
use std::rc::Rc;
use std::time::Duration;

use gencoro::generator::Generator;
use gencoro::runtime::{self, Builder, Clock, Error, ErrorKind, Task};
use gencoro::sync::{Condition, Event, LifoQueue, Lock, Queue, Semaphore};
use gencoro::testing::{self, Checker};

fn virtual_loop() -> Builder {
    Builder::new().clock(Clock::virtual_time())
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn yields(n: usize) -> Result<(), Error> {
    for _ in 0..n {
        runtime::sleep(Duration::ZERO)?;
    }
    Ok(())
}

/// Yields until `cond` holds, at most 50 times.
fn yield_until(what: &str, cond: impl Fn() -> bool) -> Result<(), String> {
    for _ in 0..50 {
        if cond() {
            return Ok(());
        }
        runtime::sleep(Duration::ZERO).map_err(|e| e.to_string())?;
    }
    Err(format!("never happened: {what}"))
}

/// A plain error with this message.
fn err(m: impl Into<String>) -> Error {
    Error::new(m.into())
}

fn s<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// Explored exhaustively up to `k` deviations and by a seeded random walk.
fn holds_everywhere<F>(k: usize, scenario: F)
where
    F: Fn() -> Result<(), String> + Clone + 'static,
{
    match testing::check_exhaustive(k, scenario.clone()) {
        Err(f) => panic!("exhaustive: {} under {:?}", f.message(), f.schedule()),
        // More than FIFO's own order was explored.
        Ok(explored) => assert!(explored.schedules_run > 1, "nothing to explore"),
    }
    if let Err(f) = Checker::new().check_seeded(11, 150, scenario) {
        panic!("seeded: {} under {:?}", f.message(), f.schedule());
    }
}

/// Counts its drops in a shared cell.
struct Counted(Rc<Cell<usize>>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

/// Runs a closure when dropped.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

// ---------------------------------------------------------------------------
// Staleness: a task that left one primitive and parked in another

/// T waits for a lock main holds and is cancelled; in the same step main
/// releases the lock (T's entry, cancelled, is not woken, so the lock goes
/// to the waiter behind it). T swallows the cancellation and parks in an
/// event. Nothing the lock does may wake T's new park; only the event does.
fn cancelled_lock_waiter_parks_in_an_event() -> Result<(), String> {
    let lock = Lock::new();
    let event = Event::new();
    let log = Rc::new(RefCell::new(Vec::<&'static str>::new()));
    let guard = lock.acquire().map_err(s)?;
    let t = {
        let (lock, event, log) = (lock.clone(), event.clone(), log.clone());
        runtime::spawn(move || -> Result<(), Error> {
            match lock.acquire() {
                Ok(_g) => log.borrow_mut().push("t got the lock"),
                Err(e) if e.is_cancelled() => log.borrow_mut().push("t cancelled"),
                Err(e) => return Err(e),
            }
            event.wait()?;
            log.borrow_mut().push("t saw the event");
            Ok(())
        })
    };
    yield_until("t waits for the lock", || lock.waiters() == 1)?;
    let behind = {
        let (lock, log) = (lock.clone(), log.clone());
        runtime::spawn(move || -> Result<(), Error> {
            let _g = lock.acquire()?;
            log.borrow_mut().push("behind got the lock");
            yields(2)?;
            Ok(())
        })
    };
    yield_until("both wait for the lock", || lock.waiters() == 2)?;
    t.cancel();
    drop(guard);
    yield_until("t waits for the event", || event.waiters() == 1)?;
    behind.join().map_err(s)?;
    // The lock changes hands again: still nothing for T.
    drop(lock.acquire().map_err(s)?);
    yields(3).map_err(s)?;
    if t.is_done() {
        return Err(format!("t ended before the event was set: {:?}", log.borrow()));
    }
    event.set();
    t.join().map_err(s)?;
    let want = ["t cancelled", "behind got the lock", "t saw the event"];
    if *log.borrow() != want {
        return Err(format!("log {:?}", log.borrow()));
    }
    if lock.locked() || lock.waiters() != 0 || event.waiters() != 0 {
        return Err(format!("left behind: {lock:?} {event:?}"));
    }
    Ok(())
}

#[test]
fn a_cancelled_lock_waiter_that_parks_in_an_event_is_woken_only_by_the_event() {
    holds_everywhere(2, cancelled_lock_waiter_parks_in_an_event);
}

/// G1 and G2 wait on queue A; main puts an item and cancels G1 in the same
/// step (G1 woken, then cancelled). G1 swallows it and waits on queue B.
/// The item goes to G2; B's item to G1; each exactly once.
fn woken_getter_cancelled_then_parks_elsewhere() -> Result<(), String> {
    let a: Queue<u32> = Queue::new();
    let b: Queue<u32> = Queue::new();
    let g1 = {
        let (a, b) = (a.clone(), b.clone());
        runtime::spawn(move || -> Result<(u32, u32), Error> {
            let first = match a.get() {
                Ok(v) => v,
                Err(e) if e.is_cancelled() => 0,
                Err(e) => return Err(e.into()),
            };
            Ok((first, b.get()?))
        })
    };
    yield_until("g1 waits", || format!("{a:?}").contains("getters: 1"))?;
    let g2 = {
        let a = a.clone();
        runtime::spawn(move || Ok(a.get()?))
    };
    yield_until("g2 waits", || format!("{a:?}").contains("getters: 2"))?;
    a.try_put(7).map_err(s)?;
    g1.cancel();
    if g2.join().map_err(s)? != 7 {
        return Err("g2 did not get the item".into());
    }
    yields(2).map_err(s)?;
    if g1.is_done() {
        return Err(format!("g1 ended early: {:?}", g1.result()));
    }
    // More traffic on A must not reach G1's park on B.
    a.try_put(8).map_err(s)?;
    yields(2).map_err(s)?;
    if g1.is_done() || a.len() != 1 {
        return Err(format!("A's put reached g1: {a:?}"));
    }
    b.try_put(9).map_err(s)?;
    let got = g1.join().map_err(s)?;
    if got != (0, 9) {
        return Err(format!("g1 got {got:?}"));
    }
    Ok(())
}

#[test]
fn a_getter_woken_and_cancelled_then_parked_in_another_queue_gets_only_from_that_queue() {
    holds_everywhere(2, woken_getter_cancelled_then_parks_elsewhere);
}

/// A task woken by `Event::set` and cancelled in the same iteration gets
/// the cancellation; then it parks on a semaphore; the event's later
/// `set`/`clear` cycles do not wake that park, a permit does.
fn event_woken_and_cancelled_then_semaphore() -> Result<(), String> {
    let event = Event::new();
    let sem = Semaphore::new(0);
    let t = {
        let (event, sem) = (event.clone(), sem.clone());
        runtime::spawn(move || -> Result<bool, Error> {
            let cancelled = match event.wait() {
                Ok(()) => false,
                Err(e) if e.is_cancelled() => true,
                Err(e) => return Err(e),
            };
            let permit = sem.acquire()?;
            std::mem::forget(permit);
            Ok(cancelled)
        })
    };
    yield_until("t waits", || event.waiters() == 1)?;
    event.set();
    t.cancel();
    yield_until("t waits for a permit", || sem.waiters() == 1)?;
    event.clear();
    event.set();
    event.clear();
    yields(2).map_err(s)?;
    if t.is_done() {
        return Err("the event woke the semaphore park".into());
    }
    sem.release();
    let cancelled = t.join().map_err(s)?;
    if !cancelled {
        return Err("t was cancelled after its wake-up but never saw it".into());
    }
    if sem.value() != 0 || sem.waiters() != 0 {
        return Err(format!("{sem:?}"));
    }
    Ok(())
}

#[test]
fn a_task_woken_by_an_event_and_cancelled_in_the_same_iteration_gets_the_cancellation() {
    holds_everywhere(2, event_woken_and_cancelled_then_semaphore);
}

// ---------------------------------------------------------------------------
// Woken and cancelled in the same iteration, per primitive

/// Two waiters; the first is woken (the lock released) and cancelled in
/// the same step, in either order: the second gets the lock.
fn lock_woken_and_cancelled(cancel_first: bool) -> impl Fn() -> Result<(), String> + Clone {
    move || {
        let lock = Lock::new();
        let holders = Rc::new(Cell::new(0usize));
        let guard = lock.acquire().map_err(s)?;
        let spawn_waiter = |lock: &Lock, holders: &Rc<Cell<usize>>| {
            let (lock, holders) = (lock.clone(), holders.clone());
            runtime::spawn(move || -> Result<(), Error> {
                let _g = lock.acquire()?;
                holders.set(holders.get() + 1);
                if holders.get() > 1 {
                    return Err(err("two holders"));
                }
                yields(1)?;
                holders.set(holders.get() - 1);
                Ok(())
            })
        };
        let w1 = spawn_waiter(&lock, &holders);
        yield_until("w1 waits", || lock.waiters() == 1)?;
        let w2 = spawn_waiter(&lock, &holders);
        yield_until("w2 waits", || lock.waiters() == 2)?;
        if cancel_first {
            w1.cancel();
            drop(guard);
        } else {
            drop(guard);
            w1.cancel();
        }
        let newcomer = lock.try_acquire().is_some();
        if newcomer && !cancel_first {
            return Err("a newcomer barged past the woken waiter".into());
        }
        match w1.join() {
            Err(e) if e.is_cancelled() => {}
            other => return Err(format!("w1: {other:?}")),
        }
        w2.join().map_err(s)?;
        if lock.locked() || lock.waiters() != 0 {
            return Err(format!("{lock:?}"));
        }
        Ok(())
    }
}

#[test]
fn a_lock_waiter_woken_and_cancelled_in_one_step_passes_the_lock_on() {
    holds_everywhere(2, lock_woken_and_cancelled(false));
    holds_everywhere(2, lock_woken_and_cancelled(true));
}

/// A semaphore at zero with two waiters: a release and a cancellation of
/// the first waiter in one step; the second gets the permit, and the count
/// comes back whole.
fn semaphore_woken_and_cancelled(cancel_first: bool) -> impl Fn() -> Result<(), String> + Clone {
    move || {
        let sem = Semaphore::new(0);
        let spawn_waiter = |sem: &Semaphore| {
            let sem = sem.clone();
            runtime::spawn(move || -> Result<(), Error> {
                let _p = sem.acquire()?;
                yields(1)?;
                Ok(())
            })
        };
        let w1 = spawn_waiter(&sem);
        yield_until("w1 waits", || sem.waiters() == 1)?;
        let w2 = spawn_waiter(&sem);
        yield_until("w2 waits", || sem.waiters() == 2)?;
        if cancel_first {
            w1.cancel();
            sem.release();
        } else {
            sem.release();
            w1.cancel();
        }
        match w1.join() {
            Err(e) if e.is_cancelled() => {}
            other => return Err(format!("w1: {other:?}")),
        }
        w2.join().map_err(s)?;
        if sem.value() != 1 || sem.waiters() != 0 {
            return Err(format!("permits not conserved: {sem:?}"));
        }
        Ok(())
    }
}

#[test]
fn a_semaphore_waiter_woken_and_cancelled_in_one_step_passes_the_permit_on() {
    holds_everywhere(2, semaphore_woken_and_cancelled(false));
    holds_everywhere(2, semaphore_woken_and_cancelled(true));
}

/// Condition (3.11 rules): a waiter notified and cancelled in the same
/// step re-takes the lock, raises the cancellation, and the notification
/// is not passed on; the other waiter still waits, and a second notify
/// releases it.
fn condition_notified_and_cancelled() -> Result<(), String> {
    let cond = Condition::new();
    let spawn_waiter = |cond: &Condition| {
        let cond = cond.clone();
        runtime::spawn(move || -> Result<bool, Error> {
            let mut g = cond.acquire()?;
            let r = cond.wait(&mut g);
            let held = g.is_held();
            drop(g);
            match r {
                Ok(()) => Ok(held),
                Err(e) if e.is_cancelled() && held => Err(e),
                Err(e) => Err(err(format!("{e}, lock held: {held}"))),
            }
        })
    };
    let w1 = spawn_waiter(&cond);
    yield_until("w1 waits", || cond.waiters() == 1)?;
    let w2 = spawn_waiter(&cond);
    yield_until("w2 waits", || cond.waiters() == 2)?;
    {
        let _g = cond.acquire().map_err(s)?;
        if cond.notify(1).map_err(s)? != 1 {
            return Err("notify(1) woke not one".into());
        }
        w1.cancel();
    }
    match w1.join() {
        Err(e) if e.is_cancelled() => {}
        other => return Err(format!("w1: {other:?}")),
    }
    yields(2).map_err(s)?;
    if w2.is_done() || cond.waiters() != 1 {
        return Err(format!("w2 got w1's notification: {cond:?}"));
    }
    {
        let _g = cond.acquire().map_err(s)?;
        cond.notify_all().map_err(s)?;
    }
    if !w2.join().map_err(s)? {
        return Err("w2 returned without the lock".into());
    }
    if cond.locked() || cond.waiters() != 0 || cond.lock().waiters() != 0 {
        return Err(format!("{cond:?}"));
    }
    Ok(())
}

#[test]
fn a_condition_waiter_notified_and_cancelled_retakes_the_lock_and_keeps_the_notification() {
    holds_everywhere(2, condition_notified_and_cancelled);
}

// ---------------------------------------------------------------------------
// Waits inside timeout, shield, task groups and gathers

/// `timeout` fires during a `Condition::wait` while main holds the lock:
/// the waiter parks again in the lock's re-acquire, and the timeout error
/// comes only once it has the lock back (its guard holds it).
#[test]
fn a_condition_wait_timed_out_while_the_lock_is_held_returns_with_the_lock() {
    let clock = Clock::virtual_time();
    let out = Builder::new()
        .clock(clock.clone())
        .run(|| {
            let cond = Condition::new();
            let t = {
                let cond = cond.clone();
                runtime::spawn(move || -> Result<(bool, bool, Duration), Error> {
                    let mut g = cond.acquire()?;
                    let r = runtime::timeout(Some(secs(1)), |_| cond.wait(&mut g));
                    let timed_out = r.as_ref().err().is_some_and(Error::is_timeout);
                    Ok((timed_out, g.is_held(), runtime::time()?))
                })
            };
            runtime::sleep(Duration::from_millis(500))?;
            let g = cond.acquire()?; // the waiter released it to wait
            runtime::sleep(secs(2))?; // the timeout fires meanwhile
            let report = t.as_ref().waiting_on();
            let parked_in_lock = cond.lock().waiters();
            drop(g);
            let (timed_out, held, at) = t.join()?;
            Ok((timed_out, held, at, report, parked_in_lock, cond.locked()))
        })
        .unwrap();
    let (timed_out, held, at, report, parked_in_lock, locked_after) = out;
    assert!(timed_out, "the wait ends with the timeout");
    assert!(held, "the guard holds the lock again");
    assert_eq!(at, Duration::from_millis(2500), "only once main let go");
    assert_eq!(report, "Lock.acquire()", "parked in the re-acquire");
    assert_eq!(parked_in_lock, 1);
    assert!(!locked_after, "the waiter's guard released it");
}

/// `shield` around a task parked in a lock: cancelling the outer task
/// leaves the inner one parked, and it still gets the lock in turn.
#[test]
fn a_shielded_lock_waiter_survives_the_outer_cancellation_and_gets_the_lock() {
    let out = virtual_loop()
        .run(|| {
            let lock = Lock::new();
            let g = lock.acquire()?;
            let inner = {
                let lock = lock.clone();
                runtime::spawn(move || -> Result<u32, Error> {
                    let _g = lock.acquire()?;
                    Ok(5)
                })
            };
            let outer = {
                let inner = inner.clone();
                runtime::spawn(move || runtime::shield(&inner))
            };
            yields(3)?;
            outer.cancel();
            yields(3)?;
            let outer_cancelled = outer.join().is_err_and(|e| e.is_cancelled());
            let inner_waiting = !inner.is_done() && lock.waiters() == 1;
            drop(g);
            Ok((outer_cancelled, inner_waiting, inner.join()?, lock.locked()))
        })
        .unwrap();
    assert_eq!(out, (true, true, 5, false));
}

/// A task group whose member fails while the others are parked in every
/// kind of primitive: all are cancelled and every primitive is left clean,
/// with its permits and items whole.
fn task_group_cancels_parked_members() -> Result<(), String> {
    let lock = Lock::new();
    let sem = Semaphore::new(0);
    let queue: Queue<u32> = Queue::bounded(1);
    queue.try_put(1).map_err(s)?;
    let empty: Queue<u32> = Queue::new();
    let event = Event::new();
    let cond = Condition::new();
    let held = lock.acquire().map_err(s)?;
    let r = runtime::task_group(|tg| {
        let l = lock.clone();
        tg.spawn(move || {
            drop(l.acquire()?);
            Ok(())
        })?;
        let sm = sem.clone();
        tg.spawn(move || {
            drop(sm.acquire()?);
            Ok(())
        })?;
        let q = queue.clone();
        tg.spawn(move || Ok(q.put(2)?))?;
        let q = empty.clone();
        tg.spawn(move || Ok(q.get().map(drop)?))?;
        let e = event.clone();
        tg.spawn(move || e.wait())?;
        let c = cond.clone();
        tg.spawn(move || {
            let mut g = c.acquire()?;
            c.wait(&mut g)
        })?;
        tg.spawn(|| -> Result<(), Error> {
            yields(4)?;
            Err(err("boom"))
        })?;
        Ok(())
    });
    drop(held);
    match r {
        Err(e) if e.kind() == ErrorKind::Group => {}
        other => return Err(format!("group: {other:?}")),
    }
    let clean = lock.waiters() == 0
        && !lock.locked()
        && sem.waiters() == 0
        && sem.value() == 0
        && queue.len() == 1
        && format!("{queue:?}").contains("putters: 0")
        && format!("{empty:?}").contains("getters: 0")
        && event.waiters() == 0
        && cond.waiters() == 0
        && !cond.locked();
    if !clean {
        return Err(format!("{lock:?} {sem:?} {queue:?} {empty:?} {event:?} {cond:?}"));
    }
    Ok(())
}

#[test]
fn a_task_group_cancels_members_parked_in_every_primitive_and_leaves_them_clean() {
    holds_everywhere(1, task_group_cancels_parked_members);
}

/// Cancelling a gather of tasks parked in a queue: each is cancelled, none
/// took an item, and the items put afterwards are all still there.
fn gather_cancel_of_parked_getters() -> Result<(), String> {
    let queue: Queue<u32> = Queue::new();
    let tasks: Vec<Task<u32>> = (0..3)
        .map(|_| {
            let q = queue.clone();
            runtime::spawn(move || Ok(q.get()?))
        })
        .collect();
    let gathered = runtime::gather_handle(tasks.clone()).map_err(s)?;
    yield_until("all wait", || format!("{queue:?}").contains("getters: 3"))?;
    queue.try_put(1).map_err(s)?; // the first getter is woken...
    gathered.cancel(); // ...and cancelled in the same step
    match gathered.wait() {
        Err(e) if e.is_cancelled() => {}
        other => return Err(format!("gather: {other:?}")),
    }
    yields(2).map_err(s)?;
    for t in &tasks {
        if !t.is_cancelled() {
            return Err(format!("a getter was not cancelled: {:?}", t.result()));
        }
    }
    if queue.len() != 1 || !format!("{queue:?}").contains("getters: 0") {
        return Err(format!("{queue:?}"));
    }
    Ok(())
}

#[test]
fn cancelling_a_gather_of_parked_getters_loses_no_item() {
    holds_everywhere(2, gather_cancel_of_parked_getters);
}

// ---------------------------------------------------------------------------
// Lost wake-ups, lost items, lost permits: against a model

/// A tiny deterministic random source for scenario shapes.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Producers, consumers and a canceller on a bounded queue: every item
/// offered to `put` is got exactly once, still queued, or handed back to
/// its cancelled producer; nobody is left parked.
fn queue_model(shape: u64) -> impl Fn() -> Result<(), String> + Clone {
    move || {
        let mut rng = Rng(shape);
        let queue: Queue<u32> = Queue::bounded(1 + rng.below(2) as usize);
        let offered = Rc::new(RefCell::new(Vec::new()));
        let got = Rc::new(RefCell::new(Vec::new()));
        let back = Rc::new(RefCell::new(Vec::new()));
        let mut tasks: Vec<Task<()>> = Vec::new();
        for p in 0..2u32 {
            let (q, offered, back) = (queue.clone(), offered.clone(), back.clone());
            let pause = rng.below(2) as usize;
            tasks.push(runtime::spawn(move || {
                for item in (0..3).map(|i| p * 10 + i) {
                    yields(pause)?;
                    offered.borrow_mut().push(item);
                    if let Err(e) = q.put(item) {
                        let cancelled = e.is_cancelled();
                        back.borrow_mut().push(e.into_inner());
                        if cancelled {
                            return Ok(());
                        }
                    }
                }
                Ok(())
            }));
        }
        for _ in 0..2 {
            let (q, got) = (queue.clone(), got.clone());
            let pause = rng.below(2) as usize;
            tasks.push(runtime::spawn(move || {
                loop {
                    yields(pause)?;
                    match q.get() {
                        Ok(v) => got.borrow_mut().push(v),
                        Err(e) if e.is_cancelled() => return Ok(()),
                        Err(e) => return Err(e.into()),
                    }
                }
            }));
        }
        let victim = tasks[rng.below(tasks.len() as u64) as usize].clone();
        yields(rng.below(4) as usize).map_err(s)?;
        victim.cancel();
        for t in &tasks[..2] {
            match t.join() {
                Ok(()) => {}
                Err(e) if e.is_cancelled() => {}
                Err(e) => return Err(format!("producer: {e}")),
            }
        }
        yields(4).map_err(s)?;
        for t in &tasks[2..] {
            t.cancel();
        }
        yields(3).map_err(s)?;
        let mut left = Vec::new();
        while let Ok(v) = queue.try_get() {
            left.push(v);
        }
        if !format!("{queue:?}").contains("getters: 0")
            || !format!("{queue:?}").contains("putters: 0")
            || !tasks.iter().all(|t| t.is_done())
        {
            return Err(format!("somebody is still parked: {queue:?}"));
        }
        let mut all: Vec<u32> = got.borrow().clone();
        all.extend(back.borrow().iter().copied());
        all.extend(left);
        all.sort_unstable();
        let mut want = offered.borrow().clone();
        want.sort_unstable();
        if all != want {
            return Err(format!("items {all:?}, offered {want:?}"));
        }
        Ok(())
    }
}

#[test]
fn a_bounded_queue_with_cancellations_loses_and_duplicates_no_item() {
    for shape in 0..6 {
        if let Err(f) = Checker::new().check_seeded(shape, 60, queue_model(shape)) {
            panic!("shape {shape}: {} under {:?}", f.message(), f.schedule());
        }
    }
    testing::check_exhaustive(1, queue_model(3)).unwrap();
    // And proptest's schedules, shrunk on failure.
    let checked =
        Checker::new().persist_failures(false).proptest_seed(3).cases(60).check(queue_model(4));
    if let Err(f) = checked {
        panic!("proptest: {} under {:?}", f.message(), f.schedule());
    }
}

/// Tasks take permits around sections with suspensions while a canceller
/// cancels some of them at various points: never more inside than
/// permits, and the count is whole at the end.
fn semaphore_model(shape: u64) -> impl Fn() -> Result<(), String> + Clone {
    move || {
        let mut rng = Rng(shape);
        let permits = 1 + rng.below(2) as usize;
        let sem = Semaphore::new(permits);
        let inside = Rc::new(Cell::new(0usize));
        let most = Rc::new(Cell::new(0usize));
        let tasks: Vec<Task<()>> = (0..4)
            .map(|_| {
                let (sem, inside, most) = (sem.clone(), inside.clone(), most.clone());
                let pause = rng.below(2) as usize;
                runtime::spawn(move || -> Result<(), Error> {
                    yields(pause)?;
                    let _p = sem.acquire()?;
                    inside.set(inside.get() + 1);
                    most.set(most.get().max(inside.get()));
                    let left = OnDrop(|| inside.set(inside.get() - 1));
                    yields(2)?;
                    drop(left);
                    Ok(())
                })
            })
            .collect();
        for _ in 0..2 {
            yields(rng.below(3) as usize).map_err(s)?;
            tasks[rng.below(4) as usize].cancel();
        }
        for t in &tasks {
            let _ = t.join();
        }
        if most.get() > permits {
            return Err(format!("{} inside with {permits} permits", most.get()));
        }
        if sem.value() != permits || sem.waiters() != 0 {
            return Err(format!("permits not whole: {sem:?}, {permits} expected"));
        }
        Ok(())
    }
}

#[test]
fn semaphore_permits_are_neither_lost_nor_duplicated_under_cancellations() {
    for shape in 0..6 {
        if let Err(f) = Checker::new().check_seeded(shape, 60, semaphore_model(shape)) {
            panic!("shape {shape}: {} under {:?}", f.message(), f.schedule());
        }
    }
    testing::check_exhaustive(2, semaphore_model(1)).unwrap();
}

/// Waiters queue for a lock main holds (in an order the schedule picks,
/// recorded as they queue); some are cancelled; then the lock is released:
/// at most one holder at a time, and the others get it in the order they
/// queued.
fn lock_fifo_model(shape: u64) -> impl Fn() -> Result<(), String> + Clone {
    move || {
        let mut rng = Rng(shape);
        let lock = Lock::new();
        let queued = Rc::new(RefCell::new(Vec::new()));
        let order = Rc::new(RefCell::new(Vec::new()));
        let holders = Rc::new(Cell::new(0usize));
        let g = lock.acquire().map_err(s)?;
        let tasks: Vec<Task<()>> = (0..4usize)
            .map(|i| {
                let (lock, queued, order, holders) =
                    (lock.clone(), queued.clone(), order.clone(), holders.clone());
                let pause = rng.below(2) as usize;
                runtime::spawn(move || -> Result<(), Error> {
                    yields(pause)?;
                    queued.borrow_mut().push(i);
                    let _g = lock.acquire()?;
                    holders.set(holders.get() + 1);
                    order.borrow_mut().push(i);
                    if holders.get() != 1 {
                        return Err(err("two holders"));
                    }
                    yields(1)?;
                    holders.set(holders.get() - 1);
                    Ok(())
                })
            })
            .collect();
        yield_until("all queue", || lock.waiters() == 4)?;
        let cancelled: Vec<usize> = (0..4).filter(|_| rng.below(3) == 0).collect();
        for &c in &cancelled {
            tasks[c].cancel();
        }
        if rng.below(2) == 0 {
            yields(1).map_err(s)?;
        }
        drop(g);
        for t in &tasks {
            match t.join() {
                Ok(()) => {}
                Err(e) if e.is_cancelled() => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        let want: Vec<usize> =
            queued.borrow().iter().copied().filter(|i| !cancelled.contains(i)).collect();
        if *order.borrow() != want {
            return Err(format!("acquired in {:?}, queued {want:?}", order.borrow()));
        }
        if lock.locked() || lock.waiters() != 0 {
            return Err(format!("{lock:?}"));
        }
        Ok(())
    }
}

#[test]
fn a_lock_is_handed_out_fifo_among_waiters_not_cancelled() {
    for shape in 0..6 {
        if let Err(f) = Checker::new().check_seeded(shape, 40, lock_fifo_model(shape)) {
            panic!("shape {shape}: {} under {:?}", f.message(), f.schedule());
        }
    }
}

/// Event set/clear/wait: waiters parked before a `set` are all released
/// even if `clear` follows at once; those that park after the `clear`
/// stay parked until the next `set`.
fn event_set_clear() -> Result<(), String> {
    let event = Event::new();
    let released = Rc::new(Cell::new(0usize));
    let spawn_waiter = |event: &Event, released: &Rc<Cell<usize>>| {
        let (event, released) = (event.clone(), released.clone());
        runtime::spawn(move || -> Result<(), Error> {
            event.wait()?;
            released.set(released.get() + 1);
            Ok(())
        })
    };
    let early: Vec<_> = (0..3).map(|_| spawn_waiter(&event, &released)).collect();
    yield_until("all wait", || event.waiters() == 3)?;
    event.set();
    event.clear();
    let late = spawn_waiter(&event, &released);
    for t in &early {
        t.join().map_err(s)?;
    }
    yield_until("the late one waits", || event.waiters() == 1)?;
    if released.get() != 3 || late.is_done() {
        return Err(format!("released {}", released.get()));
    }
    event.set();
    late.join().map_err(s)?;
    if released.get() != 4 || event.waiters() != 0 {
        return Err(format!("released {}, {event:?}", released.get()));
    }
    Ok(())
}

#[test]
fn event_set_then_clear_releases_exactly_the_waiters_already_parked() {
    holds_everywhere(2, event_set_clear);
}

/// Condition `notify(n)` with cancelled waiters: the first `n` waiters not
/// cancelled, in the order they began waiting, are woken (and no other),
/// and the count says so.
fn condition_notify_model(shape: u64) -> impl Fn() -> Result<(), String> + Clone {
    move || {
        let mut rng = Rng(shape);
        let cond = Condition::new();
        let queued = Rc::new(RefCell::new(Vec::new()));
        let woken = Rc::new(RefCell::new(Vec::new()));
        let tasks: Vec<Task<()>> = (0..4usize)
            .map(|i| {
                let (cond, queued, woken) = (cond.clone(), queued.clone(), woken.clone());
                let pause = rng.below(2) as usize;
                runtime::spawn(move || -> Result<(), Error> {
                    yields(pause)?;
                    let mut g = cond.acquire()?;
                    queued.borrow_mut().push(i);
                    cond.wait(&mut g)?;
                    if !g.is_held() {
                        return Err(err("woke without the lock"));
                    }
                    woken.borrow_mut().push(i);
                    Ok(())
                })
            })
            .collect();
        yield_until("all wait", || cond.waiters() == 4)?;
        let cancelled: Vec<usize> = (0..4).filter(|_| rng.below(3) == 0).collect();
        for &c in &cancelled {
            tasks[c].cancel();
        }
        yields(rng.below(2) as usize).map_err(s)?;
        let n = 1 + rng.below(3) as usize;
        let pending: Vec<usize> =
            queued.borrow().iter().copied().filter(|i| !cancelled.contains(i)).collect();
        let count = {
            let _g = cond.acquire().map_err(s)?;
            cond.notify(n).map_err(s)?
        };
        yields(8).map_err(s)?;
        // Woken in one iteration, they may run (and re-take the lock) in
        // any order the schedule picks: the set is what notify decides.
        let mut want: Vec<usize> = pending.iter().copied().take(n).collect();
        want.sort_unstable();
        woken.borrow_mut().sort_unstable();
        if count != want.len() || *woken.borrow() != want {
            return Err(format!(
                "notify({n}) said {count}, woke {:?}, expected {want:?}",
                woken.borrow()
            ));
        }
        for t in &tasks {
            t.cancel();
        }
        for t in &tasks {
            let _ = t.join();
        }
        if cond.locked() || cond.waiters() != 0 || cond.lock().waiters() != 0 {
            return Err(format!("{cond:?}"));
        }
        Ok(())
    }
}

#[test]
fn condition_notify_wakes_the_first_n_waiters_not_cancelled() {
    for shape in 0..6 {
        if let Err(f) = Checker::new().check_seeded(shape, 40, condition_notify_model(shape)) {
            panic!("shape {shape}: {} under {:?}", f.message(), f.schedule());
        }
    }
}

// ---------------------------------------------------------------------------
// Re-entrancy and teardown

/// A queue item whose drop (run by `shutdown(true)`, in a task) calls
/// `get` on the same queue: the queue is already shut down, so the get
/// fails with `ShutDown` at once instead of parking inside a destructor;
/// a getter that comes later gets `ShutDown` too; every
/// destructor runs once.
#[test]
fn a_queue_item_whose_drop_gets_from_its_queue_during_shutdown_fails_without_parking() {
    struct Waits {
        queue: Queue<Waits>,
        drops: Rc<Cell<usize>>,
        got_in_drop: Rc<Cell<Option<bool>>>,
    }
    impl Drop for Waits {
        fn drop(&mut self) {
            self.drops.set(self.drops.get() + 1);
            if self.got_in_drop.get().is_none() {
                // The queue is shut down: a get fails at once, with no park.
                let r = self.queue.get();
                self.got_in_drop.set(Some(r.is_err_and(|e| e.is_shut_down())));
            }
        }
    }
    let drops = Rc::new(Cell::new(0));
    let got = Rc::new(Cell::new(None));
    let (d, g) = (drops.clone(), got.clone());
    virtual_loop()
        .run(move || {
            let queue: Queue<Waits> = Queue::new();
            for _ in 0..2 {
                let item = Waits { queue: queue.clone(), drops: d.clone(), got_in_drop: g.clone() };
                queue.try_put(item).map_err(|_| err("put"))?;
            }
            let getter = {
                let q = queue.clone();
                runtime::spawn(move || {
                    yields(2)?;
                    Ok(q.get().map(drop).is_err_and(|e| e.is_shut_down()))
                })
            };
            assert_eq!(queue.shutdown(true), 2);
            assert!(getter.join()?);
            Ok(())
        })
        .unwrap();
    assert_eq!(drops.get(), 2);
    assert_eq!(got.get(), Some(true));
}

/// A task parked in a queue that only it can reach (the queue's line holds
/// the task, the task's stack holds the queue): main joins it, the loop
/// reports the deadlock naming the wait, and the cycle is broken at
/// teardown: every destructor runs once.
#[test]
fn a_task_parked_in_a_queue_only_it_holds_is_reported_and_torn_down() {
    let drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    let e = virtual_loop()
        .run(move || {
            let lonely = runtime::TaskBuilder::new().name("lonely").spawn(move || {
                let queue: Queue<Counted> = Queue::bounded(1);
                queue.try_put(Counted(d.clone())).map_err(|_| err("put"))?;
                let _mine = Counted(d.clone());
                queue.put(Counted(d.clone()))?; // full, forever
                Ok(())
            })?;
            lonely.join()
        })
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Deadlock, "{e}");
    assert!(e.to_string().contains("task 'lonely' waits on Queue.put()"), "{e}");
    assert_eq!(drops.get(), 3, "the queued item, the stack's and the one being put");
}

/// Dropping a loop whose tasks are parked: a task parked in a queue while
/// holding a lock guard releases the lock as its stack unwinds, which wakes
/// a lock waiter of the same (dying) loop; nothing is left queued, the
/// lock is free, and every value is dropped once.
#[test]
fn dropping_a_loop_with_parked_tasks_runs_every_destructor_once_and_frees_the_primitives() {
    let drops = Rc::new(Cell::new(0));
    let lock = Lock::new();
    let sem = Semaphore::new(1);
    let queue: Queue<Counted> = Queue::new();
    let cond = Condition::new();
    {
        let l = virtual_loop().build();
        let (d, lk, sm, q, c) =
            (drops.clone(), lock.clone(), sem.clone(), queue.clone(), cond.clone());
        l.run_until_complete(move || {
            let holder = {
                let (lk, sm, q, d) = (lk.clone(), sm.clone(), q.clone(), d.clone());
                runtime::spawn(move || -> Result<(), Error> {
                    let _g = lk.acquire()?;
                    let _p = sm.acquire()?;
                    let _mine = Counted(d.clone());
                    drop(q.get()?); // parks: the queue is empty
                    Ok(())
                })
            };
            for _ in 0..2 {
                let (lk, d1) = (lk.clone(), d.clone());
                runtime::spawn(move || -> Result<(), Error> {
                    let _mine = Counted(d1);
                    drop(lk.acquire()?);
                    Ok(())
                });
                let (sm, d1) = (sm.clone(), d.clone());
                runtime::spawn(move || -> Result<(), Error> {
                    let _mine = Counted(d1);
                    drop(sm.acquire()?);
                    Ok(())
                });
            }
            let c2 = c.clone();
            let d2 = d.clone();
            runtime::spawn(move || -> Result<(), Error> {
                let _mine = Counted(d2);
                let mut g = c2.acquire()?;
                c2.wait(&mut g)
            });
            runtime::sleep(secs(1))?;
            assert!(!holder.is_done());
            assert_eq!((lk.waiters(), sm.waiters(), c.waiters()), (2, 2, 1));
            Ok(())
        })
        .unwrap();
        drop(l);
    }
    assert_eq!(drops.get(), 6, "each parked task's value once");
    assert!(!lock.locked());
    assert_eq!(lock.waiters(), 0);
    assert_eq!((sem.value(), sem.waiters()), (1, 0));
    assert!(format!("{queue:?}").contains("getters: 0"), "{queue:?}");
    assert_eq!((cond.waiters(), cond.locked()), (0, false));
}

// ---------------------------------------------------------------------------
// Refused waits: nothing queued, nothing released

/// From a plain callback (`call_soon`) every wait is refused with a clear
/// error, before anything is queued or released.
#[test]
fn waits_from_a_callback_are_refused_with_nothing_queued_or_released() {
    let out = virtual_loop()
        .run(|| {
            let lock = Lock::new();
            let g = lock.acquire()?;
            let sem = Semaphore::new(0);
            let full: Queue<u32> = Queue::bounded(1);
            full.try_put(1)?;
            let empty: Queue<u32> = Queue::new();
            let event = Event::new();
            let results = Rc::new(RefCell::new(Vec::new()));
            {
                let (lock, sem, full, empty, event, results) = (
                    lock.clone(),
                    sem.clone(),
                    full.clone(),
                    empty.clone(),
                    event.clone(),
                    results.clone(),
                );
                runtime::call_soon(move || {
                    let mut r = results.borrow_mut();
                    r.push(lock.acquire().map(std::mem::forget).unwrap_err());
                    r.push(sem.acquire().map(std::mem::forget).unwrap_err());
                    match full.put(2) {
                        Err(gencoro::sync::PutError::Wait(2, e)) => r.push(e),
                        other => panic!("put from a callback: {other:?}"),
                    }
                    r.push(Error::from(empty.get().unwrap_err()));
                    r.push(event.wait().unwrap_err());
                })?;
            }
            yields(2)?;
            let kinds: Vec<ErrorKind> = results.borrow().iter().map(Error::kind).collect();
            let messages: Vec<String> = results.borrow().iter().map(Error::to_string).collect();
            let clean = lock.waiters() == 0
                && lock.locked()
                && sem.waiters() == 0
                && full.len() == 1
                && format!("{full:?}").contains("putters: 0")
                && format!("{empty:?}").contains("getters: 0")
                && event.waiters() == 0;
            drop(g);
            Ok((kinds, messages, clean))
        })
        .unwrap();
    let (kinds, messages, clean) = out;
    assert_eq!(kinds, vec![ErrorKind::NoRunningLoop; 5], "{messages:?}");
    for (m, what) in messages.iter().zip([
        "Lock.acquire",
        "Semaphore.acquire",
        "Queue.put",
        "Queue.get",
        "Event.wait",
    ]) {
        assert!(m.contains(what) && m.contains("inside a task"), "{m}");
    }
    assert!(clean, "nothing queued, nothing released");
}

/// `Condition::wait` from a callback, with a guard that holds the lock, is
/// refused before the lock is released: the lock stays held and the task
/// waiting for it is not woken.
#[test]
fn a_condition_wait_from_a_callback_keeps_the_lock_and_wakes_nobody() {
    let out = virtual_loop()
        .run(|| {
            let cond: &'static Condition = Box::leak(Box::new(Condition::new()));
            let mut guard = cond.acquire()?;
            let waiter = runtime::spawn(move || {
                drop(cond.acquire()?);
                Ok(())
            });
            yields(1)?;
            let result = Rc::new(RefCell::new(None));
            let r2 = result.clone();
            runtime::call_soon(move || {
                let kind = cond.wait(&mut guard).unwrap_err().kind();
                *r2.borrow_mut() = Some((kind, guard.is_held(), cond.lock().waiters()));
                std::mem::forget(guard);
            })?;
            yields(3)?;
            let r = *result.borrow();
            let untouched = cond.locked() && !waiter.is_done() && cond.waiters() == 0;
            cond.release()?;
            waiter.join()?;
            Ok((r, untouched))
        })
        .unwrap();
    assert_eq!(out, (Some((ErrorKind::NoRunningLoop, true, 1)), true));
}

/// A wait from a generator running inside a task is refused (it cannot
/// suspend the task from the generator's stack): nothing queued.
#[test]
fn waits_from_a_generator_inside_a_task_are_refused_with_nothing_queued() {
    let out = virtual_loop()
        .run(|| {
            let lock = Lock::new();
            let _g = lock.acquire()?;
            let queue: Queue<u32> = Queue::new();
            let sem = Semaphore::new(0);
            let (l, q, sm) = (lock.clone(), queue.clone(), sem.clone());
            let gen_: Generator<Vec<ErrorKind>> = Generator::new(move |co| {
                let kinds = vec![
                    l.acquire().map(std::mem::forget).unwrap_err().kind(),
                    Error::from(q.get().unwrap_err()).kind(),
                    sm.acquire().map(std::mem::forget).unwrap_err().kind(),
                ];
                co.yield_(kinds);
            });
            let kinds = gen_.resume().unwrap().yielded().unwrap();
            let clean = lock.waiters() == 0
                && format!("{queue:?}").contains("getters: 0")
                && sem.waiters() == 0
                && sem.value() == 0;
            Ok((kinds, clean))
        })
        .unwrap();
    assert_eq!(out, (vec![ErrorKind::Misuse; 3], true));
}

/// A wait in a destructor that runs while the task unwinds from a panic is
/// refused with `Misuse`: nothing queued, the panic goes on and fails only
/// that task, and the lock its guard held is released.
#[test]
fn a_wait_in_a_destructor_during_a_panic_is_refused_and_nothing_is_queued() {
    let out = virtual_loop()
        .run(|| {
            let lock = Lock::new();
            let queue: Queue<u32> = Queue::new();
            let seen = Rc::new(RefCell::new(None));
            let t = {
                let (lock, queue, seen) = (lock.clone(), queue.clone(), seen.clone());
                runtime::spawn(move || -> Result<(), Error> {
                    let _g = lock.acquire()?;
                    let _d = OnDrop(move || {
                        let e = Error::from(queue.get().unwrap_err());
                        *seen.borrow_mut() = Some(e.kind());
                    });
                    yields(1)?;
                    panic::panic_any("boom");
                })
            };
            let failed = t.join().is_err_and(|e| e.kind() == ErrorKind::Panicked);
            let kind = *seen.borrow();
            let clean = !lock.locked() && format!("{queue:?}").contains("getters: 0");
            Ok((failed, kind, clean))
        })
        .unwrap();
    assert_eq!(out, (true, Some(ErrorKind::Misuse), true));
}

/// Outside any loop a wait says there is no running loop, and a blocked
/// put hands its item back.
#[test]
fn waits_outside_any_loop_are_refused() {
    let lock = Lock::new();
    std::mem::forget(lock.try_acquire().unwrap());
    let e = lock.acquire().map(std::mem::forget).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoRunningLoop);
    assert!(e.to_string().contains("no running event loop"), "{e}");
    let queue = Queue::bounded(1);
    queue.try_put(1).unwrap();
    assert_eq!(queue.put(2).unwrap_err().into_inner(), 2);
    assert_eq!(lock.waiters(), 0);
    assert!(format!("{queue:?}").contains("putters: 0"));
}

// ---------------------------------------------------------------------------
// Across loops

/// A lock shared by two live loops: a task of loop 1 waits for it; loop 2
/// holds and releases it, which wakes loop 1's task (a wake-up on loop 1,
/// which is not running); loop 2's next acquire queues behind that woken
/// waiter, so loop 2 cannot go on until loop 1 runs. It must not hang
/// silently: loop 2's run ends with a deadlock report naming the wait,
/// and once loop 1 runs, its task gets the lock.
#[test]
fn a_lock_shared_by_two_live_loops_never_hangs_silently() {
    let lock = Lock::new();
    let l1 = virtual_loop().build();
    let l2 = virtual_loop().build();
    let lk = lock.clone();
    let held = lock.try_acquire().map(std::mem::forget);
    assert!(held.is_some());
    let t1 = l1
        .run_until_complete(move || {
            let lk2 = lk.clone();
            let t = runtime::TaskBuilder::new().name("loop1-waiter").spawn(move || {
                drop(lk2.acquire()?);
                Ok(1)
            })?;
            yields(1)?;
            Ok(t)
        })
        .unwrap();
    assert_eq!(lock.waiters(), 1);
    let lk = lock.clone();
    let e = l2
        .run_until_complete(move || {
            lk.release()?; // wakes loop 1's waiter
            let _g = lk.acquire()?; // behind it
            Ok(())
        })
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Deadlock, "{e}");
    assert!(e.to_string().contains("Lock.acquire()"), "{e}");
    let lk = lock.clone();
    let got = l1.run_until_complete(move || t1.join()).unwrap();
    assert_eq!(got, 1);
    drop(l2);
    drop(l1);
    assert!(!lock.locked());
    assert_eq!(lock.waiters(), 0, "{lk:?}");
}

// ---------------------------------------------------------------------------
// Deadlock reports

/// Each kind of park is named in the deadlock report.
#[test]
fn deadlock_reports_name_every_kind_of_park() {
    let e = virtual_loop()
        .run(|| {
            let lock = Lock::new();
            std::mem::forget(lock.acquire()?);
            let sem = Semaphore::new(0);
            let full: Queue<u32> = Queue::bounded(1);
            full.try_put(1)?;
            let empty: Queue<u32> = Queue::new();
            let event = Event::new();
            let cond = Condition::new();
            let unfinished: Queue<u32> = Queue::new();
            unfinished.try_put(1)?;
            let named = |name: &str| runtime::TaskBuilder::new().name(name);
            let l = lock.clone();
            named("l").spawn(move || {
                drop(l.acquire()?);
                Ok(())
            })?;
            let sm = sem.clone();
            named("s").spawn(move || {
                drop(sm.acquire()?);
                Ok(())
            })?;
            let q = full.clone();
            named("p").spawn(move || Ok(q.put(2)?))?;
            let q = empty.clone();
            named("g").spawn(move || Ok(q.get().map(drop)?))?;
            let ev = event.clone();
            named("e").spawn(move || ev.wait())?;
            let c = cond.clone();
            named("c").spawn(move || {
                let mut g = c.acquire()?;
                c.wait(&mut g)
            })?;
            let q = unfinished.clone();
            named("j").spawn(move || q.join())?;
            let (_, _, _) = (&full, &empty, &unfinished);
            runtime::sleep(secs(1))?;
            event.wait()
        })
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Deadlock);
    let report = e.to_string();
    for line in [
        "task 'l' waits on Lock.acquire()",
        "task 's' waits on Semaphore.acquire()",
        "task 'p' waits on Queue.put()",
        "task 'g' waits on Queue.get()",
        "task 'e' waits on Event.wait()",
        "task 'c' waits on Condition.wait()",
        "task 'j' waits on Queue.join()",
    ] {
        assert!(report.contains(line), "{line} not in {report}");
    }
}

/// A `LifoQueue` wait is reported under the queue's own name, as its
/// `Debug` names it.
#[test]
fn a_lifo_queue_wait_is_reported_as_lifo_queue_get() {
    let e = virtual_loop()
        .run(|| {
            let stack: LifoQueue<u32> = LifoQueue::new();
            assert!(format!("{stack:?}").starts_with("LifoQueue"));
            stack.get().map(drop).map_err(Error::from)
        })
        .unwrap_err();
    assert!(e.to_string().contains("LifoQueue.get()"), "{e}");
}

// ---------------------------------------------------------------------------
// Order of wake-ups (FIFO)

/// A park's wake-up enters the ready queue when the waker wakes it, among
/// the callbacks scheduled around it, as a future's done callback would:
/// the order CPython 3.11 prints for the same program is
/// `['cb1', 'ev', 'cb2', 'lock', 'cb3', 'q2 cancelled', 'cb4', 'q', 'cb5']`.
#[test]
fn wake_ups_and_cancellations_of_parks_queue_in_cpythons_order() {
    let log = virtual_loop()
        .run(|| {
            let log = Rc::new(RefCell::new(Vec::<String>::new()));
            let event = Event::new();
            let lock = Lock::new();
            std::mem::forget(lock.acquire()?);
            let queue: Queue<u32> = Queue::new();
            let w = |name: &'static str, f: Box<dyn FnOnce() -> Result<(), Error>>| {
                let log = log.clone();
                runtime::spawn(move || -> Result<(), Error> {
                    match f() {
                        Ok(()) => log.borrow_mut().push(name.to_owned()),
                        Err(e) if e.is_cancelled() => {
                            log.borrow_mut().push(format!("{name} cancelled"))
                        }
                        Err(e) => return Err(e),
                    }
                    Ok(())
                })
            };
            let (e, l, q, q2) = (event.clone(), lock.clone(), queue.clone(), queue.clone());
            let _t1 = w("ev", Box::new(move || e.wait()));
            let _t2 = w("lock", Box::new(move || l.acquire().map(std::mem::forget)));
            let _t3 = w("q", Box::new(move || q.get().map(drop).map_err(Error::from)));
            let t4 = w("q2", Box::new(move || q2.get().map(drop).map_err(Error::from)));
            yields(1)?;
            let cb = |name: &'static str| {
                let log = log.clone();
                runtime::call_soon(move || log.borrow_mut().push(name.to_owned())).map(drop)
            };
            cb("cb1")?;
            event.set();
            cb("cb2")?;
            lock.release()?;
            cb("cb3")?;
            t4.cancel();
            cb("cb4")?;
            queue.try_put(1)?;
            cb("cb5")?;
            yields(2)?;
            let v = log.borrow().clone();
            Ok(v)
        })
        .unwrap();
    assert_eq!(log, ["cb1", "ev", "cb2", "lock", "cb3", "q2 cancelled", "cb4", "q", "cb5"]);
}

// ---------------------------------------------------------------------------
// Timeouts at the deadline of the wake-up

/// A waiter's timeout and the release it waits for fall due at the same
/// instant, so the schedule decides which comes first (cancelled before
/// it was woken, or woken then cancelled): either way a second waiter is
/// not starved and the resource comes back whole.
fn timeout_at_the_release(kind: u8) -> impl Fn() -> Result<(), String> + Clone {
    move || {
        let lock = Lock::new();
        let sem = Semaphore::new(0);
        let queue: Queue<u32> = Queue::new();
        let guard = lock.acquire().map_err(s)?;
        let wait = {
            let (lock, sem, queue) = (lock.clone(), sem.clone(), queue.clone());
            move || -> Result<(), Error> {
                match kind {
                    0 => drop(lock.acquire()?),
                    1 => drop(sem.acquire()?),
                    _ => drop(queue.get()?),
                }
                Ok(())
            }
        };
        let first = {
            let wait = wait.clone();
            runtime::spawn(move || runtime::timeout(Some(secs(1)), |_| wait()))
        };
        yields(1).map_err(s)?;
        let second = runtime::spawn(wait);
        yields(1).map_err(s)?;
        runtime::sleep(secs(1)).map_err(s)?; // due with the timeout
        drop(guard);
        sem.release();
        queue.try_put(1).map_err(s)?;
        let first = first.join();
        match &first {
            Ok(()) => {}
            Err(e) if e.is_timeout() => {}
            Err(e) => return Err(format!("first: {e}")),
        }
        let second_done = {
            // If the first got it, it gives it back (lock, permit); the
            // queue's second item is for the second.
            if first.is_ok() && kind == 2 {
                queue.try_put(2).map_err(s)?;
            }
            second.join()
        };
        second_done.map_err(|e| format!("second: {e}"))?;
        if lock.locked() || lock.waiters() != 0 {
            return Err(format!("{lock:?}"));
        }
        if kind == 1 && (sem.value() != 1 || sem.waiters() != 0) {
            return Err(format!("{sem:?}"));
        }
        if kind == 2 && (!queue.is_empty() || !format!("{queue:?}").contains("getters: 0")) {
            return Err(format!("{queue:?}"));
        }
        Ok(())
    }
}

#[test]
fn a_timeout_due_with_the_wake_up_never_starves_the_next_waiter() {
    for kind in 0..3 {
        holds_everywhere(2, timeout_at_the_release(kind));
    }
}

// ---------------------------------------------------------------------------
// A bounded buffer on a Condition, with cancellations

/// Producers and consumers share a buffer of two slots guarded by a
/// Condition (`wait_for` on "not full" / "not empty", `notify_all` after
/// each change); a canceller cancels one task at a point the shape picks.
/// Every item offered is taken once or is still in the buffer, the buffer
/// never overflows, and every task ends.
fn condition_buffer(shape: u64) -> impl Fn() -> Result<(), String> + Clone {
    move || {
        let mut rng = Rng(shape);
        let cond = Condition::new();
        let buf = Rc::new(RefCell::new(Vec::<u32>::new()));
        let offered = Rc::new(RefCell::new(Vec::new()));
        let taken = Rc::new(RefCell::new(Vec::new()));
        let overflow = Rc::new(Cell::new(false));
        let mut tasks: Vec<Task<()>> = Vec::new();
        for p in 0..2u32 {
            let (cond, buf, offered, overflow) =
                (cond.clone(), buf.clone(), offered.clone(), overflow.clone());
            let pause = rng.below(2) as usize;
            tasks.push(runtime::spawn(move || -> Result<(), Error> {
                for item in (0..3).map(|i| p * 10 + i) {
                    yields(pause)?;
                    let mut g = cond.acquire()?;
                    cond.wait_for(&mut g, || buf.borrow().len() < 2)?;
                    buf.borrow_mut().push(item);
                    offered.borrow_mut().push(item);
                    overflow.set(overflow.get() || buf.borrow().len() > 2);
                    cond.notify_all()?;
                }
                Ok(())
            }));
        }
        for _ in 0..2 {
            let (cond, buf, taken) = (cond.clone(), buf.clone(), taken.clone());
            let pause = rng.below(2) as usize;
            tasks.push(runtime::spawn(move || -> Result<(), Error> {
                loop {
                    yields(pause)?;
                    let mut g = cond.acquire()?;
                    cond.wait_for(&mut g, || !buf.borrow().is_empty())?;
                    let item = buf.borrow_mut().remove(0);
                    taken.borrow_mut().push(item);
                    cond.notify_all()?;
                }
            }));
        }
        let victim = tasks[rng.below(4) as usize].clone();
        yields(rng.below(6) as usize).map_err(s)?;
        victim.cancel();
        for t in &tasks[..2] {
            match t.join() {
                Ok(()) => {}
                Err(e) if e.is_cancelled() => {}
                Err(e) => return Err(format!("producer: {e}")),
            }
        }
        yields(6).map_err(s)?;
        for t in &tasks[2..] {
            t.cancel();
        }
        for t in &tasks[2..] {
            match t.join() {
                Err(e) if e.is_cancelled() => {}
                other => return Err(format!("consumer: {other:?}")),
            }
        }
        if overflow.get() {
            return Err("the buffer overflowed".into());
        }
        let mut all = taken.borrow().clone();
        all.extend(buf.borrow().iter().copied());
        all.sort_unstable();
        let mut want = offered.borrow().clone();
        want.sort_unstable();
        if all != want {
            return Err(format!("items {all:?}, offered {want:?}"));
        }
        if cond.locked() || cond.waiters() != 0 || cond.lock().waiters() != 0 {
            return Err(format!("{cond:?}"));
        }
        Ok(())
    }
}

#[test]
fn a_condition_guarded_buffer_with_cancellations_loses_no_item_and_leaves_no_waiter() {
    for shape in 0..6 {
        if let Err(f) = Checker::new().check_seeded(shape, 50, condition_buffer(shape)) {
            panic!("shape {shape}: {} under {:?}", f.message(), f.schedule());
        }
    }
}

/// `join` and `task_done` with cancelled joiners: a joiner cancelled in
/// the iteration the last `task_done` wakes it gets the cancellation; the
/// other joiner returns; a later join with work outstanding waits again.
fn join_with_cancelled_joiner() -> Result<(), String> {
    let queue: Queue<u32> = Queue::new();
    queue.try_put(1).map_err(s)?;
    let joiner = |q: &Queue<u32>| {
        let q = q.clone();
        runtime::spawn(move || q.join())
    };
    let j1 = joiner(&queue);
    let j2 = joiner(&queue);
    yield_until("both join", || format!("{queue:?}").contains("unfinished_tasks: 1"))?;
    yields(1).map_err(s)?;
    queue.try_get().map_err(s)?;
    queue.task_done().map_err(s)?;
    j1.cancel();
    match j1.join() {
        Err(e) if e.is_cancelled() => {}
        other => return Err(format!("j1: {other:?}")),
    }
    j2.join().map_err(s)?;
    queue.try_put(2).map_err(s)?;
    let j3 = joiner(&queue);
    yields(3).map_err(s)?;
    if j3.is_done() {
        return Err("j3 returned with work outstanding".into());
    }
    queue.try_get().map_err(s)?;
    queue.task_done().map_err(s)?;
    j3.join().map_err(s)?;
    Ok(())
}

#[test]
fn a_joiner_cancelled_as_the_queue_finishes_gets_the_cancellation_and_the_others_return() {
    holds_everywhere(2, join_with_cancelled_joiner);
}

// ---------------------------------------------------------------------------
// A woken waiter torn down with its loop

/// A queue shared by two loops: a getter of loop 1 waits first, a getter
/// of loop 2 behind it. Loop 2 puts an item, which wakes loop 1's getter
/// (loop 1 is not running). Loop 1 is then dropped: its getter is torn
/// down without ever running, so it can never take the item. The wake-up
/// it was given must go on to loop 2's getter (as a cancelled woken getter
/// passes it on, and as a torn-down woken `Lock` or `Semaphore` waiter
/// does), or loop 2 deadlocks with an item in the queue.
#[test]
fn a_woken_getter_torn_down_with_its_loop_passes_its_wake_up_on() {
    let queue: Queue<u32> = Queue::new();
    let l1 = virtual_loop().build();
    let l2 = virtual_loop().build();
    let q = queue.clone();
    l1.run_until_complete(move || {
        runtime::spawn(move || Ok(q.get()?));
        yields(1)
    })
    .unwrap();
    let q = queue.clone();
    let g2 = l2
        .run_until_complete(move || {
            let q2 = q.clone();
            let g2 = runtime::spawn(move || Ok(q2.get()?));
            yields(1)?;
            assert!(format!("{q:?}").contains("getters: 2"), "{q:?}");
            q.try_put(7)?; // wakes loop 1's getter, first in line
            Ok(g2)
        })
        .unwrap();
    drop(l1); // its woken getter is torn down
    let got = l2.run_until_complete(move || g2.join());
    assert_eq!(got.unwrap(), 7, "loop 2's getter gets the item");
}

/// The same for a putter: loop 1's putter was woken for a free slot, then
/// torn down; loop 2's putter behind it must get the slot.
#[test]
fn a_woken_putter_torn_down_with_its_loop_passes_its_wake_up_on() {
    let queue: Queue<u32> = Queue::bounded(1);
    queue.try_put(0).unwrap();
    let l1 = virtual_loop().build();
    let l2 = virtual_loop().build();
    let q = queue.clone();
    l1.run_until_complete(move || {
        runtime::spawn(move || Ok(q.put(1)?));
        yields(1)
    })
    .unwrap();
    let q = queue.clone();
    let p2 = l2
        .run_until_complete(move || {
            let q2 = q.clone();
            let p2 = runtime::spawn(move || Ok(q2.put(2)?));
            yields(1)?;
            assert!(format!("{q:?}").contains("putters: 2"), "{q:?}");
            assert_eq!(q.try_get()?, 0); // wakes loop 1's putter
            Ok(p2)
        })
        .unwrap();
    drop(l1);
    l2.run_until_complete(move || p2.join()).unwrap();
    assert_eq!(queue.try_get().unwrap(), 2);
}

/// The `Lock` and `Semaphore` counterparts hold: a woken waiter torn down
/// with its loop hands the lock or the permit on to the next waiter.
#[test]
fn a_woken_lock_or_semaphore_waiter_torn_down_with_its_loop_passes_it_on() {
    let lock = Lock::new();
    let sem = Semaphore::new(0);
    std::mem::forget(lock.try_acquire().unwrap());
    let l1 = virtual_loop().build();
    let l2 = virtual_loop().build();
    let (lk, sm) = (lock.clone(), sem.clone());
    l1.run_until_complete(move || {
        runtime::spawn(move || {
            drop(lk.acquire()?);
            Ok(())
        });
        runtime::spawn(move || {
            drop(sm.acquire()?);
            Ok(())
        });
        yields(1)
    })
    .unwrap();
    let (lk, sm) = (lock.clone(), sem.clone());
    let (a, b) = l2
        .run_until_complete(move || {
            let lk2 = lk.clone();
            let a = runtime::spawn(move || {
                drop(lk2.acquire()?);
                Ok(())
            });
            let sm2 = sm.clone();
            let b = runtime::spawn(move || {
                drop(sm2.acquire()?);
                Ok(())
            });
            yields(1)?;
            lk.release()?; // wakes loop 1's waiter
            sm.release(); // the permit goes to loop 1's waiter
            Ok((a, b))
        })
        .unwrap();
    drop(l1);
    l2.run_until_complete(move || {
        a.join()?;
        b.join()
    })
    .unwrap();
    assert!(!lock.locked());
    assert_eq!((sem.value(), sem.waiters()), (1, 0));
}

/// Gathers of gathers of tasks parked on a semaphore: permits are released
/// to some of them and the outer gather is cancelled in the same step, so
/// some waiters are woken then cancelled and the others cancelled before
/// any wake-up. Every permit comes back, nobody is left parked.
fn nested_gather_cancel_on_a_semaphore(released: usize) -> impl Fn() -> Result<(), String> + Clone {
    move || {
        let sem = Semaphore::new(0);
        let leaf = |sem: &Semaphore| {
            let sem = sem.clone();
            runtime::spawn(move || -> Result<(), Error> {
                let _p = sem.acquire()?;
                yields(1)?;
                Ok(())
            })
        };
        let mut leaves = Vec::new();
        let inner: Vec<Task<Vec<()>>> = (0..2)
            .map(|_| {
                let mine: Vec<_> = (0..2).map(|_| leaf(&sem)).collect();
                leaves.extend(mine.iter().cloned());
                runtime::spawn(move || runtime::gather(mine))
            })
            .collect();
        let outer = runtime::gather_handle(inner).map_err(s)?;
        yield_until("all park", || sem.waiters() == 4)?;
        for _ in 0..released {
            sem.release();
        }
        outer.cancel();
        match outer.wait() {
            Err(e) if e.is_cancelled() => {}
            other => return Err(format!("outer: {other:?}")),
        }
        // An inner gather cancelled before its first step never gathered
        // (as in CPython), so its leaves run on: wait for every leaf.
        for leaf in &leaves {
            match leaf.join() {
                Ok(()) => {}
                Err(e) if e.is_cancelled() => {}
                Err(e) => return Err(format!("leaf: {e}")),
            }
        }
        if sem.value() != released || sem.waiters() != 0 {
            return Err(format!("{sem:?}, {released} released"));
        }
        Ok(())
    }
}

#[test]
fn cancelling_nested_gathers_of_semaphore_waiters_returns_every_permit() {
    for released in [1, 3] {
        holds_everywhere(1, nested_gather_cancel_on_a_semaphore(released));
    }
}

/// Loop 1, with tasks parked in a lock and a semaphore (one of them
/// already woken by loop 2), is dropped from inside a task of loop 2:
/// its tasks are torn down on the spot, their guards and waits hand the
/// lock and the permit to loop 2's waiters, and every value is dropped once.
#[test]
fn dropping_a_loop_from_a_task_of_another_loop_hands_its_parks_on() {
    let drops = Rc::new(Cell::new(0));
    let lock = Lock::new();
    let sem = Semaphore::new(0);
    let l1 = virtual_loop().build();
    let (lk, sm, d) = (lock.clone(), sem.clone(), drops.clone());
    l1.run_until_complete(move || {
        let (lk2, d2) = (lk.clone(), d.clone());
        runtime::spawn(move || -> Result<(), Error> {
            let _g = lk2.acquire()?; // holds it...
            let _mine = Counted(d2);
            drop(sm.acquire()?); // ...while it waits for a permit
            Ok(())
        });
        yields(1)?;
        let d3 = d.clone();
        runtime::spawn(move || -> Result<(), Error> {
            let _mine = Counted(d3);
            drop(lk.acquire()?);
            Ok(())
        });
        yields(1)
    })
    .unwrap();
    assert_eq!((lock.waiters(), sem.waiters()), (1, 1));
    let l1 = RefCell::new(Some(l1));
    let (lk, sm) = (lock.clone(), sem.clone());
    let out = virtual_loop()
        .run(move || {
            let (lk2, sm2) = (lk.clone(), sm.clone());
            let waiter = runtime::spawn(move || -> Result<(), Error> {
                let _p = sm2.acquire()?;
                let _g = lk2.acquire()?;
                Ok(())
            });
            yields(1)?;
            sm.release(); // to loop 1's waiter, first in line
            sm.release(); // to ours
            drop(l1.borrow_mut().take()); // tears loop 1 down here
            waiter.join()?;
            Ok((lk.locked(), lk.waiters(), sm.value(), sm.waiters()))
        })
        .unwrap();
    assert_eq!(out, (false, 0, 2, 0), "the lock is free, both permits back");
    assert_eq!(drops.get(), 2);
}

// ---------------------------------------------------------------------------
// Cancellation messages and counts

/// CPython 3.11 prints `[('cancelled', ('one',), 2), ('done', False),
/// 'event']` and `[('cancelled', ('late',))] False` for the same program:
/// a parked task cancelled twice gets one cancellation, with the first
/// message, counts two requests, and its next park is not cancelled; a
/// woken waiter cancelled before it runs gets the message it was cancelled
/// with, and the lock stays free.
#[test]
fn a_parked_task_cancelled_twice_gets_one_cancellation_with_the_first_message() {
    let out = virtual_loop()
        .run(|| {
            let lock = Lock::new();
            std::mem::forget(lock.acquire()?);
            let event = Event::new();
            let log = Rc::new(RefCell::new(Vec::<String>::new()));
            let t = {
                let (lock, event, log) = (lock.clone(), event.clone(), log.clone());
                runtime::spawn(move || -> Result<(), Error> {
                    if let Err(e) = lock.acquire().map(std::mem::forget) {
                        let me = runtime::current_task()?.expect("in a task");
                        log.borrow_mut().push(format!(
                            "{:?} {} {}",
                            e.kind(),
                            e.message(),
                            me.cancelling()
                        ));
                    }
                    event.wait()?;
                    log.borrow_mut().push("event".into());
                    Ok(())
                })
            };
            yields(1)?;
            t.cancel_with("one");
            t.cancel_with("two");
            yields(2)?;
            log.borrow_mut().push(format!("done {}", t.is_done()));
            event.set();
            t.join()?;
            let first = log.borrow().clone();

            let lock2 = Lock::new();
            std::mem::forget(lock2.acquire()?);
            let log2 = Rc::new(RefCell::new(Vec::<String>::new()));
            let t2 = {
                let (lock2, log2) = (lock2.clone(), log2.clone());
                runtime::spawn(move || -> Result<(), Error> {
                    match lock2.acquire() {
                        Ok(g) => {
                            log2.borrow_mut().push("got".into());
                            drop(g);
                        }
                        Err(e) => log2.borrow_mut().push(format!("{:?} {}", e.kind(), e.message())),
                    }
                    Ok(())
                })
            };
            yields(1)?;
            lock2.release()?;
            t2.cancel_with("late");
            yields(2)?;
            let second = log2.borrow().clone();
            Ok((first, second, lock2.locked()))
        })
        .unwrap();
    assert_eq!(out.0, ["Cancelled one 2", "done false", "event"]);
    assert_eq!(out.1, ["Cancelled late"]);
    assert!(!out.2);
}

/// A task group's body waits for an item; a child puts one (waking the
/// body, first in line) and fails in the same step. Under FIFO the body's
/// wake-up runs before the group's abort, so the body gets the item (and
/// CPython 3.11 prints the same: `ExceptionGroup(..., [ValueError('boom'),
/// RuntimeError('the body got 1')])`, the getter behind still waiting);
/// when a schedule runs the abort first, the woken body is cancelled and
/// its wake-up goes on to the getter behind, which gets the item. Either
/// way the item is taken exactly once.
fn group_body_woken_then_aborted() -> Result<(), String> {
    let queue: Queue<u32> = Queue::new();
    let behind = Rc::new(RefCell::new(None));
    let (q, b) = (queue.clone(), behind.clone());
    let r = runtime::task_group(move |tg| -> Result<(), Error> {
        let q2 = q.clone();
        tg.spawn(move || -> Result<(), Error> {
            yields(2)?;
            q2.try_put(1)?;
            Err(err("boom"))
        })?;
        let q3 = q.clone();
        *b.borrow_mut() = Some(runtime::spawn(move || -> Result<u32, Error> {
            yields(1)?;
            Ok(q3.get()?)
        }));
        match q.get() {
            Ok(v) => Err(err(format!("the body got {v}"))),
            Err(e) => Err(e.into()),
        }
    });
    let errors: Vec<String> = match &r {
        Err(e) if e.kind() == ErrorKind::Group => e.errors().iter().map(Error::to_string).collect(),
        other => return Err(format!("group: {other:?}")),
    };
    if errors.iter().any(|e| e == "the body got 1") {
        // The body took it: the getter behind must still be parked.
        yields(2).map_err(s)?;
        let g = behind.borrow_mut().take().unwrap();
        if g.is_done() || !queue.is_empty() {
            return Err(format!("the item twice: {:?} {queue:?}", g.result()));
        }
        g.cancel();
        return Ok(());
    }
    if errors != ["boom"] {
        return Err(format!("errors {errors:?}"));
    }
    let g = behind.borrow_mut().take().unwrap();
    let got = g.join().map_err(|e| format!("behind: {e}"))?;
    if got != 1 || !queue.is_empty() {
        return Err(format!("behind got {got}, {queue:?}"));
    }
    Ok(())
}

#[test]
fn a_task_group_body_woken_then_aborted_passes_its_item_on() {
    holds_everywhere(2, group_body_woken_then_aborted);
}
