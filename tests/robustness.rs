//! Regressions for robustness defects: user code re-entering the loop while
//! it holds a borrow of its own state, objects of one loop used from
//! another, a thread left counting as panicking, a deadlock reported too
//! early, deep cancellation chains, large captures, cancelled timers that
//! are never compacted, guards that grow the cross-thread channel, a
//! cancelled wait cycle, and a loop run again after it was torn down.
//!
//! Each test failed (or crashed its child process) before its fix; the
//! comment above each one says how. Scenarios that may abort the process
//! run in a child process (the test binary re-run for that one test), so a
//! crash is a failure of that test, not of the whole binary.

mod child;

use child::ChildRun;
use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use gencoro::runtime::{
    self, AsCompleted, Builder, Clock, Error, ErrorKind, EventLoop, InFlight, LoopHandle,
    ReturnWhen, Task, TaskBuilder,
};
use gencoro::{CloseError, Generator, GeneratorBuilder, ResumeError, Step, Yielder};

fn virtual_loop() -> Builder {
    Builder::new().clock(Clock::virtual_time())
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// The text of a panic payload.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_owned()
    }
}

/// Runs `f`; a panic comes back as `Err` with its message.
fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| panic_text(&*p))
}

/// Counts the drops of named sentinels.
#[derive(Clone, Default)]
struct Drops(Rc<RefCell<Vec<&'static str>>>);

impl Drops {
    fn sentinel(&self, name: &'static str) -> Sentinel {
        Sentinel { name, drops: self.clone() }
    }

    fn count(&self, name: &str) -> usize {
        self.0.borrow().iter().filter(|n| **n == name).count()
    }

    /// Asserts that each named sentinel was dropped exactly once.
    #[track_caller]
    fn assert_each_once(&self, names: &[&str]) {
        let counts: Vec<(&str, usize)> = names.iter().map(|n| (*n, self.count(n))).collect();
        assert!(
            counts.iter().all(|(_, c)| *c == 1),
            "every destructor must run exactly once; drops per sentinel: {counts:?}"
        );
    }
}

/// Records its drop in its [`Drops`].
struct Sentinel {
    name: &'static str,
    drops: Drops,
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        self.drops.0.borrow_mut().push(self.name);
    }
}

/// Tasks that sleep for a long time, each owning a sentinel: they are
/// pending whenever the scenario goes wrong, and must still be dropped once.
const BYSTANDERS: [&str; 2] = ["bystander 1", "bystander 2"];

fn spawn_bystanders(drops: &Drops) {
    for name in BYSTANDERS {
        let sentinel = drops.sentinel(name);
        runtime::spawn(move || {
            let _sentinel = sentinel;
            runtime::sleep(secs(1000))
        });
    }
}

/// A task that sleeps `delay`, swallows a cancellation and returns `value`.
fn returns_when_cancelled<T: 'static>(delay: u64, value: T) -> Task<T> {
    runtime::spawn(move || match runtime::sleep(secs(delay)) {
        Ok(()) => Ok(value),
        Err(e) if e.is_cancelled() => Ok(value),
        Err(e) => Err(e),
    })
}

// ---------------------------------------------------------------------------
// Child processes

const CHILD_ENV: &str = "GENCORO_ROBUSTNESS_CHILD";

/// Whether this process is the child running scenario `name`.
fn is_child(name: &str) -> bool {
    child::is_child(CHILD_ENV, name)
}

/// Re-runs this test binary for test `name` only, as a child process with
/// [`CHILD_ENV`] set, and kills it after `limit`.
fn run_child(name: &str, limit: Duration) -> ChildRun {
    child::run_child(CHILD_ENV, name, limit)
}

// ---------------------------------------------------------------------------
// 1a. A cancelled sleep's timer dropping its finished task inside the loop's
// timer borrow.

/// Its drop schedules a callback with `call_later`, counting whether that
/// worked; the callback counts that it ran.
struct CallsLaterOnDrop {
    scheduled: Rc<Cell<u32>>,
    ran: Rc<Cell<u32>>,
    _sentinel: Sentinel,
}

impl Drop for CallsLaterOnDrop {
    fn drop(&mut self) {
        let ran = self.ran.clone();
        if runtime::call_later(Duration::ZERO, move || ran.set(ran.get() + 1)).is_ok() {
            self.scheduled.set(self.scheduled.get() + 1);
        }
    }
}

/// What the timer scenarios below observe.
struct LateCall {
    drops: Drops,
    scheduled: Rc<Cell<u32>>,
    ran: Rc<Cell<u32>>,
}

impl LateCall {
    fn new() -> LateCall {
        LateCall {
            drops: Drops::default(),
            scheduled: Rc::new(Cell::new(0)),
            ran: Rc::new(Cell::new(0)),
        }
    }

    fn value(&self) -> CallsLaterOnDrop {
        CallsLaterOnDrop {
            scheduled: self.scheduled.clone(),
            ran: self.ran.clone(),
            _sentinel: self.drops.sentinel("result"),
        }
    }

    /// Runs `main` with bystanders, and checks that no panic escaped, the
    /// late callback was scheduled and ran, and every sentinel dropped once.
    #[track_caller]
    fn check(self, main: impl FnOnce(CallsLaterOnDrop) -> Result<(), Error> + 'static) {
        let (drops, value) = (self.drops.clone(), self.value());
        let outcome = catch(move || {
            virtual_loop().run(move || {
                spawn_bystanders(&drops);
                main(value)
            })
        });
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("run failed: {e}"),
            Err(p) => panic!("a panic escaped run: {p}"),
        }
        assert_eq!(self.scheduled.get(), 1, "call_later from the drop must succeed");
        assert_eq!(self.ran.get(), 1, "the callback scheduled by the drop must run");
        let mut names = vec!["result"];
        names.extend(BYSTANDERS);
        self.drops.assert_each_once(&names);
    }
}

/// The task finishes with a value whose drop calls `call_later`; its
/// cancelled sleep timer, left holding the last reference to it, reaches the
/// front of the queue and is popped (step 1 of an iteration).
///
/// Before the fix: panics out of `run` with `already borrowed:
/// BorrowMutError` (the pop drops the task while `timers` is borrowed).
#[test]
fn a_task_value_whose_drop_calls_call_later_when_its_cancelled_timer_is_popped_does_not_panic() {
    LateCall::new().check(|value| {
        let t = returns_when_cancelled(10, value);
        runtime::sleep(Duration::ZERO)?; // t starts its 10 s sleep
        t.cancel();
        drop(t); // its timer now holds the only reference once t is done
        // Main's 5 s timer stays in front of t's cancelled one while t
        // finishes; at 5 s t's timer reaches the front and is popped.
        runtime::sleep(secs(5))?;
        runtime::sleep(secs(1))?; // the late callback runs meanwhile
        Ok(())
    });
}

/// As above, but the cancelled timer is due in the same iteration as an
/// uncancelled timer in front of it, so it is dropped while moving due
/// timers to the ready queue (step 4, with both queues borrowed).
///
/// Before the fix: panics out of `run` with `already borrowed`.
#[test]
fn a_task_value_whose_drop_calls_call_later_when_its_cancelled_timer_falls_due_does_not_panic() {
    LateCall::new().check(|value| {
        // Armed first, so it fires first, at the same deadline as t's sleep.
        runtime::call_later(secs(10), || {})?;
        let t = returns_when_cancelled(10, value);
        runtime::sleep(Duration::ZERO)?;
        t.cancel();
        drop(t);
        runtime::sleep(secs(20))?;
        Ok(())
    });
}

/// As above, but the cancelled timer is dropped by the compaction that
/// runs once more than 100 cancelled timers fill half the queue.
///
/// Before the fix: panics out of `run` with `already borrowed` (inside
/// `retain`).
#[test]
fn a_task_value_whose_drop_calls_call_later_when_cancelled_timers_are_compacted_does_not_panic() {
    LateCall::new().check(|value| {
        // An uncancelled timer at the front keeps cancelled ones from being
        // popped there.
        runtime::call_later(secs(10), || {})?;
        let t = returns_when_cancelled(50, value);
        let others: Vec<Task<()>> =
            (0..150).map(|_| runtime::spawn(|| runtime::sleep(secs(100)))).collect();
        runtime::sleep(Duration::ZERO)?; // everyone sleeps
        t.cancel();
        drop(t);
        runtime::sleep(Duration::ZERO)?; // t finishes; its timer stays queued
        for other in &others {
            other.cancel();
        }
        // 151 cancelled timers of 154: the next iteration compacts.
        runtime::sleep(Duration::ZERO)?;
        runtime::sleep(secs(1))?;
        Ok(())
    });
}

// ---------------------------------------------------------------------------
// 1b. Core::teardown drops queued callbacks while the ready queue is
// borrowed.

/// Cancels its task when dropped.
struct CancelsOnDrop {
    task: Task<()>,
    _sentinel: Sentinel,
}

impl Drop for CancelsOnDrop {
    fn drop(&mut self) {
        self.task.cancel();
    }
}

/// A task that sleeps for a long time, owning a sentinel.
fn spawn_sleeper(drops: &Drops, name: &'static str) -> Task<()> {
    let sentinel = drops.sentinel(name);
    runtime::spawn(move || {
        let _sentinel = sentinel;
        runtime::sleep(secs(1000))
    })
}

/// Queues `f` so that it is still in the ready queue when the loop stops:
/// a callback queues it one iteration before the stop.
fn queue_for_after_the_stop(f: impl FnOnce() + 'static) -> Result<(), Error> {
    runtime::call_soon(move || {
        runtime::call_soon(f).expect("call_soon in a callback");
    })?;
    Ok(())
}

/// Dropping a loop drops the callbacks still queued; one of them owns a
/// value whose drop cancels a sleeping task.
///
/// Before the fix: `drop(EventLoop)` panics with `already borrowed` (the
/// cancel queues a wake-up while `teardown` clears the ready queue).
#[test]
fn dropping_a_loop_whose_queued_callback_owns_a_value_that_cancels_a_task_does_not_panic() {
    let drops = Drops::default();
    let ran = Rc::new(Cell::new(false));
    let event_loop = virtual_loop().build();
    {
        let (drops, ran) = (drops.clone(), ran.clone());
        event_loop
            .run_until_complete(move || {
                let sleeper = spawn_sleeper(&drops, "sleeper");
                let canceller = CancelsOnDrop { task: sleeper, _sentinel: drops.sentinel("value") };
                queue_for_after_the_stop(move || {
                    ran.set(true);
                    drop(canceller);
                })
            })
            .unwrap();
    }
    assert!(!ran.get(), "premise: the callback is still queued when the loop stops");
    if let Err(p) = catch(move || drop(event_loop)) {
        panic!("a panic escaped drop(EventLoop): {p}");
    }
    drops.assert_each_once(&["sleeper", "value"]);
}

/// As above, but the value is a suspended generator whose body owns the
/// canceller: the cancel runs while the generator is being closed, inside
/// its unwind, where a panic aborts the process.
///
/// Before the fix: the child process aborts (`panic in a destructor during
/// cleanup`, after `already borrowed`).
#[test]
fn dropping_a_loop_whose_queued_callback_owns_a_generator_that_cancels_a_task_does_not_abort() {
    const NAME: &str =
        "dropping_a_loop_whose_queued_callback_owns_a_generator_that_cancels_a_task_does_not_abort";
    if is_child(NAME) {
        let drops = Drops::default();
        let event_loop = virtual_loop().build();
        {
            let drops = drops.clone();
            event_loop
                .run_until_complete(move || {
                    let sleeper = spawn_sleeper(&drops, "sleeper");
                    let canceller =
                        CancelsOnDrop { task: sleeper, _sentinel: drops.sentinel("value") };
                    let generator: Generator<()> = Generator::new(move |co| {
                        let _canceller = canceller;
                        co.yield_(());
                    });
                    assert_eq!(generator.start(), Ok(Step::Yielded(())));
                    queue_for_after_the_stop(move || drop(generator))
                })
                .unwrap();
        }
        drop(event_loop);
        drops.assert_each_once(&["sleeper", "value"]);
        println!("teardown finished");
        return;
    }
    let run = run_child(NAME, secs(60));
    assert!(run.success && run.printed("teardown finished"), "{}", run.describe());
}

// ---------------------------------------------------------------------------
// 1c. `abandon` drops a task's callbacks while its callback list is
// borrowed.

/// Adds a done callback (owning `late`) to its task when dropped.
struct AddsDoneCallbackOnDrop {
    task: Task<()>,
    late: Option<Sentinel>,
    _sentinel: Sentinel,
}

impl Drop for AddsDoneCallbackOnDrop {
    fn drop(&mut self) {
        let late = self.late.take();
        let _ = self.task.add_done_callback(move |_| drop(late));
    }
}

/// Dropping a loop abandons a pending task; its done callback owns a value
/// whose drop adds another done callback to that task.
///
/// Before the fix: `drop(EventLoop)` panics with `already borrowed` (the
/// callback list is borrowed while `abandon` drops its entries).
#[test]
fn dropping_a_loop_whose_pending_task_has_a_callback_that_adds_a_callback_when_dropped_does_not_panic()
 {
    let drops = Drops::default();
    let event_loop = virtual_loop().build();
    {
        let drops = drops.clone();
        event_loop
            .run_until_complete(move || {
                let sleeper = spawn_sleeper(&drops, "sleeper");
                let adder = AddsDoneCallbackOnDrop {
                    task: sleeper.clone(),
                    late: Some(drops.sentinel("late callback")),
                    _sentinel: drops.sentinel("callback"),
                };
                sleeper.add_done_callback(move |_| drop(adder))?;
                runtime::sleep(Duration::ZERO)
            })
            .unwrap();
    }
    if let Err(p) = catch(move || drop(event_loop)) {
        panic!("a panic escaped drop(EventLoop): {p}");
    }
    drops.assert_each_once(&["sleeper", "callback", "late callback"]);
}

/// Dropping a loop closes a pending task; a value on the task's stack adds
/// a done callback to that task when the close drops it. The callback
/// must be dropped too (it holds the task, so kept it is a leak).
///
/// Before the fix: `abandon` drains the callbacks before it closes the
/// generator, so the late callback (and the task it holds) leaks: its
/// sentinel is never dropped. (Found by `tests/reentrant_drop.rs`.)
#[test]
fn a_done_callback_added_while_the_loop_closes_its_pending_task_is_dropped_too() {
    let drops = Drops::default();
    let event_loop = virtual_loop().build();
    {
        let drops = drops.clone();
        event_loop
            .run_until_complete(move || {
                let slot: Rc<RefCell<Option<AddsDoneCallbackOnDrop>>> = Rc::new(RefCell::new(None));
                let task = {
                    let (slot, sentinel) = (slot.clone(), drops.sentinel("task"));
                    runtime::spawn(move || {
                        let _sentinel = sentinel;
                        let _adder = slot.borrow_mut().take();
                        runtime::sleep(secs(1000))
                    })
                };
                *slot.borrow_mut() = Some(AddsDoneCallbackOnDrop {
                    task,
                    late: Some(drops.sentinel("late callback")),
                    _sentinel: drops.sentinel("value"),
                });
                runtime::sleep(Duration::ZERO) // the task takes the value onto its stack
            })
            .unwrap();
    }
    if let Err(p) = catch(move || drop(event_loop)) {
        panic!("a panic escaped drop(EventLoop): {p}");
    }
    drops.assert_each_once(&["task", "value", "late callback"]);
}

// ---------------------------------------------------------------------------
// 1d. `Generator::resume` makes `S::default()` after checking the state.

/// A send type whose `Default` closes the generator in [`CLOSE_ON_DEFAULT`].
struct ClosesOnDefault;

thread_local! {
    static CLOSE_ON_DEFAULT: RefCell<Option<Rc<Generator<u32, ClosesOnDefault>>>> =
        const { RefCell::new(None) };
}

impl Default for ClosesOnDefault {
    fn default() -> Self {
        let target = CLOSE_ON_DEFAULT.with(|t| t.borrow().clone());
        if let Some(g) = target {
            let _ = g.close();
        }
        ClosesOnDefault
    }
}

/// `resume` on a suspended generator whose send type's `Default` closes
/// that very generator reports it closed.
///
/// Before the fix: panics inside `resume` with `a created or suspended
/// generator owns its coroutine`.
#[test]
fn resume_reports_closed_when_the_send_default_closes_the_generator() {
    let drops = Drops::default();
    let sentinel = drops.sentinel("body");
    let g: Rc<Generator<u32, ClosesOnDefault>> = Rc::new(Generator::new(move |co| {
        let _sentinel = sentinel;
        loop {
            let ClosesOnDefault = co.yield_(1);
        }
    }));
    assert_eq!(g.start(), Ok(Step::Yielded(1)));
    CLOSE_ON_DEFAULT.with(|t| *t.borrow_mut() = Some(g.clone()));
    let resumed = catch(|| g.resume());
    CLOSE_ON_DEFAULT.with(|t| t.borrow_mut().take());
    match resumed {
        Ok(r) => assert_eq!(r, Err(ResumeError::Closed)),
        Err(p) => panic!("resume panicked: {p}"),
    }
    assert!(g.is_closed());
    drops.assert_each_once(&["body"]);
}

// ---------------------------------------------------------------------------
// 2. An `AsCompleted` of one loop driven from a task of another.

/// An `as_completed` iterator made in loop L1 and then used in a task of
/// loop L2 is refused with a clear error, and L1's tasks are unaffected.
///
/// Before the fix: L2's task waits, is woken on L1 when L1's task finishes
/// (and gets its value there, at L1's time 5 s), and then, finishing on
/// L1, removes an unrelated L1 task (the bystander) from L1's registry, so
/// L1's teardown never frees it.
#[test]
fn an_as_completed_iterator_used_from_a_task_of_another_loop_is_refused() {
    let drops = Drops::default();
    let stash: Rc<RefCell<Option<AsCompleted<u32>>>> = Rc::new(RefCell::new(None));
    let l1 = virtual_loop().build();
    {
        let (drops, stash) = (drops.clone(), stash.clone());
        l1.run_until_complete(move || {
            let sentinel = drops.sentinel("L1 bystander");
            runtime::spawn(move || {
                let _sentinel = sentinel;
                // A reference to itself on its own stack: only the loop's
                // teardown can free this task.
                let _me = runtime::current_task()?;
                runtime::sleep(secs(1000))
            });
            let a = runtime::spawn(|| {
                runtime::sleep(secs(5))?;
                Ok(1u32)
            });
            *stash.borrow_mut() = Some(runtime::as_completed([a], None)?);
            Ok(())
        })
        .unwrap();
    }
    type Seen = Option<(Option<Result<u32, (ErrorKind, String)>>, Duration)>;
    let seen: Rc<RefCell<Seen>> = Rc::new(RefCell::new(None));
    let l2 = virtual_loop().build();
    {
        let (stash, seen) = (stash.clone(), seen.clone());
        l2.run_until_complete(move || {
            runtime::spawn(move || {
                let mut iter = stash.borrow_mut().take().expect("stashed");
                let item = iter.next().map(|r| r.map_err(|e| (e.kind(), e.message().to_owned())));
                *seen.borrow_mut() = Some((item, runtime::time()?));
                Ok(())
            });
            Ok(())
        })
        .unwrap();
    }
    l1.run_until_complete(|| runtime::sleep(secs(10))).unwrap();
    drop(l1);
    drop(l2);
    let seen = seen.borrow_mut().take();
    match &seen {
        Some((Some(Err((ErrorKind::Misuse, message))), _))
            if message.contains("different loop") => {}
        other => panic!(
            "next() in L2 must fail at once with a Misuse error about a different loop; \
             it returned (item, loop time) = {other:?}"
        ),
    }
    drops.assert_each_once(&["L1 bystander"]);
}

// ---------------------------------------------------------------------------
// 3. A generator that yields from a destructor while being closed.

/// Yields from its destructor.
struct YieldsOnDrop<'a>(&'a Yielder<u32>);

impl Drop for YieldsOnDrop<'_> {
    fn drop(&mut self) {
        self.0.yield_(99);
    }
}

/// Closes (and drops) a generator that yields from a destructor while it
/// unwinds: its unwind stays suspended forever.
fn abandon_a_generator_mid_unwind() {
    let g: Generator<u32> = Generator::new(|co| {
        let _yields = YieldsOnDrop(co);
        co.yield_(1);
    });
    assert_eq!(g.start(), Ok(Step::Yielded(1)));
    assert_eq!(g.close(), Err(CloseError::IgnoredExit));
    drop(g);
}

/// After such a generator, an unrelated generator's `close` still runs its
/// destructors.
///
/// Before the fix: the thread counts as panicking from then on, so the
/// unrelated generator's yield is taken for one inside an unwind and its
/// `close` skips its destructors (the sentinel is never dropped).
#[test]
fn a_generator_abandoned_mid_unwind_does_not_stop_other_generators_closing_normally() {
    let dropped = std::thread::spawn(|| {
        abandon_a_generator_mid_unwind();
        let drops = Drops::default();
        let sentinel = drops.sentinel("unrelated");
        let g: Generator<u32> = Generator::new(move |co| {
            let _sentinel = sentinel;
            co.yield_(1);
            co.yield_(2);
        });
        assert_eq!(g.resume(), Ok(Step::Yielded(1)));
        let closed = g.close();
        (closed, drops.count("unrelated"))
    })
    .join()
    .expect("the scenario thread");
    assert_eq!(dropped, (Ok(()), 1), "(close result, drops of the unrelated generator's sentinel)");
}

/// After such a generator, a loop on the same thread can still wait.
///
/// Before the fix: `run` fails with `a task cannot wait while it unwinds
/// from a panic`.
#[test]
fn a_generator_abandoned_mid_unwind_does_not_stop_later_runs_on_its_thread_from_waiting() {
    let outcome = std::thread::spawn(|| {
        abandon_a_generator_mid_unwind();
        virtual_loop()
            .run(|| {
                runtime::sleep(secs(1))?;
                Ok(7)
            })
            .map_err(|e| e.to_string())
    })
    .join()
    .expect("the scenario thread");
    assert_eq!(outcome, Ok(7));
}

// ---------------------------------------------------------------------------
// 4. A deadlock reported while a posted callback is still in the channel.

thread_local! {
    /// The task the worker's callback cancels (on the loop's thread).
    static RACE_TARGET: RefCell<Option<Task<()>>> = const { RefCell::new(None) };
}

/// A worker posts a callback with `call_soon_threadsafe` and then drops its
/// `InFlight` guard; the loop must run the callback, never report a
/// deadlock in between. The callback cancels a task that waits on itself
/// (no timer, nothing ready), which main joins. Right before, main cancels
/// 100 `call_later` timers, so the loop's iteration that finds nothing
/// ready first spends a while popping them: that widens the window between
/// its check of the channel and its check of the in-flight count, which
/// the worker (woken by main) then often hits. Run 100,000 times (about
/// 8 s in a debug build).
///
/// Before the fix: runs end in `Deadlock` (from 0.1% to 11% of them,
/// depending on the machine's load; 11,268 of 100,000 in one debug run).
#[test]
fn a_callback_posted_before_the_in_flight_guard_drops_is_run_not_reported_as_a_deadlock() {
    let runs: usize = 100_000;
    let (tx, rx) = mpsc::channel::<(LoopHandle, InFlight)>();
    let worker = std::thread::spawn(move || {
        for (handle, guard) in rx {
            handle.call_soon_threadsafe(|| {
                RACE_TARGET.with(|t| {
                    if let Some(t) = t.borrow().as_ref() {
                        t.cancel();
                    }
                })
            });
            drop(guard);
        }
    });
    let mut deadlocks = 0;
    let mut first = None;
    for _ in 0..runs {
        let tx = tx.clone();
        let outcome = virtual_loop().run(move || {
            let me: Rc<RefCell<Option<Task<()>>>> = Rc::new(RefCell::new(None));
            let target = {
                let me = me.clone();
                runtime::spawn(move || {
                    let me = me.borrow_mut().take().expect("set before the task starts");
                    // Waits on itself: only a cancellation ends this wait.
                    runtime::wait([me], ReturnWhen::AllCompleted, None)?;
                    Ok(())
                })
            };
            *me.borrow_mut() = Some(target.clone());
            RACE_TARGET.with(|t| *t.borrow_mut() = Some(target.clone()));
            runtime::sleep(Duration::ZERO)?; // the target waits on itself
            for _ in 0..100 {
                runtime::call_later(secs(3600), || {})?.cancel();
            }
            // The guard is taken here, on the loop's thread, so the loop
            // knows of the work before the worker even starts it.
            let handle = LoopHandle::current()?;
            let guard = handle.in_flight();
            tx.send((handle, guard)).expect("the worker runs");
            Ok(target.join().map_err(|e| e.kind()))
        });
        RACE_TARGET.with(|t| t.borrow_mut().take());
        match outcome {
            Ok(Err(ErrorKind::Cancelled)) => {}
            Err(e) if e.kind() == ErrorKind::Deadlock => {
                deadlocks += 1;
                first.get_or_insert_with(|| e.to_string());
            }
            other => panic!("unexpected outcome: {other:?}"),
        }
    }
    drop(tx);
    worker.join().expect("the worker");
    assert_eq!(deadlocks, 0, "runs reporting a deadlock out of {runs}; the first: {first:?}");
}

// ---------------------------------------------------------------------------
// 5. Cancelling long chains of tasks that join each other.

/// Links in the chains below. A million suspended tasks touch about 8 KiB
/// of stack each in a debug build (8 GiB in all), too much for a machine
/// shared with other builds, so the chains have 200,000 links; the
/// recursion they overflow is hit at about 200 (debug) to 800 (release)
/// links on a task's stack, and at about 100,000 on the main thread's.
const CHAIN_LINKS: usize = 200_000;

/// The time the chain scenarios (building the chain included) may take.
fn chain_time_limit() -> Duration {
    if cfg!(debug_assertions) { secs(30) } else { secs(10) }
}

/// Counts drops.
struct CountsDrop(Rc<Cell<usize>>);

impl Drop for CountsDrop {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

/// Spawns `n` tasks, task `i` joining task `i + 1`, the last sleeping for
/// an hour, in head-first order; each owns a drop counter. Returns them.
fn spawn_chain(n: usize, drops: &Rc<Cell<usize>>) -> Vec<Task<()>> {
    let slots: Vec<Rc<RefCell<Option<Task<()>>>>> =
        (0..n).map(|_| Rc::new(RefCell::new(None))).collect();
    let tasks: Vec<Task<()>> = (0..n)
        .map(|i| {
            let next = slots[i].clone();
            let counter = CountsDrop(drops.clone());
            runtime::spawn(move || {
                let _counter = counter;
                let next = next.borrow_mut().take();
                match next {
                    Some(next) => next.join(),
                    None => runtime::sleep(secs(3600)),
                }
            })
        })
        .collect();
    for (slot, next) in slots.iter().zip(tasks.iter().skip(1)) {
        *slot.borrow_mut() = Some(next.clone());
    }
    tasks
}

/// Runs `scenario` on a thread with a main thread's 8 MiB stack.
fn on_big_thread(scenario: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(scenario)
        .expect("a thread")
        .join()
        .expect("the scenario passes");
}

/// Cancelling the head of a 200,000-link chain from a task cancels every
/// link once, in bounded time and stack.
///
/// `cancelling()` follows CPython, where each link's `cancel()` is
/// delivered to the link it awaits, so every link counts one request
/// (checked on a 3-link chain by the Python program named below, whose
/// CPython 3.11 output its sibling `.expected` file records).
///
/// Before the fix: the recursive cancel overflows main's 128 KiB task
/// stack; the child aborts on the guard page.
// Python: tests/cpython/robustness/cancelling_the_head_of_a_long_chain_of_joins_from_a_task_cancels_every_link_once.py
#[test]
fn cancelling_the_head_of_a_long_chain_of_joins_from_a_task_cancels_every_link_once() {
    const NAME: &str =
        "cancelling_the_head_of_a_long_chain_of_joins_from_a_task_cancels_every_link_once";
    if is_child(NAME) {
        on_big_thread(|| {
            let started = Instant::now();
            let drops = Rc::new(Cell::new(0));
            let counted = drops.clone();
            let report = virtual_loop()
                .run(move || {
                    let chain = spawn_chain(CHAIN_LINKS, &counted);
                    runtime::sleep(Duration::ZERO)?; // every link starts and waits
                    assert!(chain[0].cancel());
                    let right_after: Vec<u32> = chain.iter().map(Task::cancelling).collect();
                    let head = chain[0].join();
                    assert!(head.is_err_and(|e| e.is_cancelled()), "the head ends cancelled");
                    let wrong_after_cancel = right_after.iter().filter(|c| **c != 1).count();
                    let not_cancelled = chain.iter().filter(|t| !t.is_cancelled()).count();
                    let wrong_count = chain.iter().filter(|t| t.cancelling() != 1).count();
                    Ok((wrong_after_cancel, not_cancelled, wrong_count))
                })
                .expect("run");
            assert_eq!(
                report,
                (0, 0, 0),
                "(links whose cancelling() != 1 right after cancel, links not cancelled, \
                 links whose cancelling() != 1 at the end)"
            );
            assert_eq!(drops.get(), CHAIN_LINKS, "every link's destructors run once");
            println!("chain cancelled in {:.1} s", started.elapsed().as_secs_f64());
            println!("chain scenario finished");
        });
        return;
    }
    let run = run_child(NAME, chain_time_limit());
    assert!(run.success && run.printed("chain scenario finished"), "{}", run.describe());
}

/// A 200,000-link chain left pending when `main` returns is cancelled by
/// `run`'s shutdown, in bounded time and stack, and every link is dropped
/// once. (Which `cancelling()` counts CPython reaches here depends on the
/// order of its `all_tasks()` set, so they are not checked.)
///
/// Before the fix: the shutdown's recursive cancel overflows the thread's
/// 8 MiB stack (the child aborts); with fewer links it is quadratic (6 s
/// for 20,000, 36 s for 40,000).
#[test]
fn a_long_chain_of_joins_pending_at_shutdown_is_cancelled_in_bounded_time_and_stack() {
    const NAME: &str =
        "a_long_chain_of_joins_pending_at_shutdown_is_cancelled_in_bounded_time_and_stack";
    if is_child(NAME) {
        on_big_thread(|| {
            let started = Instant::now();
            let drops = Rc::new(Cell::new(0));
            let counted = drops.clone();
            let chain = virtual_loop()
                .run(move || {
                    let chain = spawn_chain(CHAIN_LINKS, &counted);
                    runtime::sleep(Duration::ZERO)?;
                    Ok(chain)
                })
                .expect("run");
            let not_cancelled = chain.iter().filter(|t| !t.is_cancelled()).count();
            assert_eq!(not_cancelled, 0, "links not cancelled by the shutdown");
            drop(chain);
            assert_eq!(drops.get(), CHAIN_LINKS, "every link's destructors run once");
            println!("chain shut down in {:.1} s", started.elapsed().as_secs_f64());
            println!("chain scenario finished");
        });
        return;
    }
    let run = run_child(NAME, chain_time_limit());
    assert!(run.success && run.printed("chain scenario finished"), "{}", run.describe());
}

// ---------------------------------------------------------------------------
// 6. Captures larger than corosensei's 1,024-byte transfer limit.

/// 4 KiB of data a body captures by value.
fn big_data() -> [u64; 512] {
    std::array::from_fn(|i| (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// Whether the data is as `big_data` made it.
fn intact(data: &[u64; 512]) -> bool {
    *data == big_data()
}

/// Before the fix (this and the next two): panics in `Generator::new` with
/// `type is too big to transfer`.
#[test]
fn generator_new_accepts_a_body_capturing_4_kib() {
    let data = big_data();
    let made = catch(move || Generator::new(move |_co: &Yielder<()>| intact(&data)));
    let g = made.unwrap_or_else(|p| panic!("Generator::new panicked: {p}"));
    assert_eq!(g.resume(), Ok(Step::Returned(true)));
}

#[test]
fn generator_try_new_accepts_a_body_capturing_4_kib() {
    let data = big_data();
    let made = catch(move || Generator::try_new(move |_co: &Yielder<()>| intact(&data)));
    let g = made.unwrap_or_else(|p| panic!("Generator::try_new panicked: {p}")).unwrap();
    assert_eq!(g.resume(), Ok(Step::Returned(true)));
}

#[test]
fn generator_builder_accepts_a_body_capturing_4_kib() {
    let data = big_data();
    let made = catch(move || {
        GeneratorBuilder::new().stack_size(64 * 1024).build(move |co: &Yielder<u64>| {
            co.yield_(data[511]);
            intact(&data)
        })
    });
    let g = made.unwrap_or_else(|p| panic!("GeneratorBuilder::build panicked: {p}")).unwrap();
    assert_eq!(g.resume(), Ok(Step::Yielded(big_data()[511])));
    assert_eq!(g.resume(), Ok(Step::Returned(true)));
}

/// Before the fix: the spawn panics inside main, which fails with
/// `Panicked(type is too big to transfer)`.
#[test]
fn spawn_accepts_a_task_body_capturing_4_kib() {
    let outcome = virtual_loop().run(|| {
        let data = big_data();
        let t = runtime::spawn(move || {
            runtime::sleep(secs(1))?;
            Ok(intact(&data))
        });
        t.join()
    });
    assert_eq!(outcome.map_err(|e| e.to_string()), Ok(true));
}

/// Before the fix: as for `spawn`.
#[test]
fn task_builder_spawn_accepts_a_task_body_capturing_4_kib() {
    let outcome = virtual_loop().run(|| {
        let data = big_data();
        TaskBuilder::new().name("big").spawn(move || Ok(intact(&data)))?.join()
    });
    assert_eq!(outcome.map_err(|e| e.to_string()), Ok(true));
}

/// Before the fix: panics out of `run` with `type is too big to transfer`.
#[test]
fn run_accepts_a_main_capturing_4_kib() {
    let data = big_data();
    let outcome = catch(move || runtime::run(move || Ok(intact(&data))));
    match outcome {
        Ok(r) => assert_eq!(r.map_err(|e| e.to_string()), Ok(true)),
        Err(p) => panic!("run panicked: {p}"),
    }
}

/// Before the fix: panics out of `EventLoop::spawn` with `type is too big
/// to transfer`.
#[test]
fn event_loop_spawn_and_run_until_complete_accept_bodies_capturing_4_kib() {
    let event_loop = virtual_loop().build();
    let (a, b) = (big_data(), big_data());
    let outcome = catch(|| {
        let t = event_loop.spawn(move || Ok(intact(&a))).expect("spawn");
        event_loop.run_until_complete(move || Ok(intact(&b) && t.join()?))
    });
    match outcome {
        Ok(r) => assert_eq!(r.map_err(|e| e.to_string()), Ok(true)),
        Err(p) => panic!("panicked: {p}"),
    }
}

// ---------------------------------------------------------------------------
// 8. Cancelled `call_later` timers are never compacted.

/// The number of queued timers, from the loop's `Debug` output (the only
/// place the public API shows it): `... timers: N ...`.
fn queued_timers(event_loop: &EventLoop) -> usize {
    let text = format!("{event_loop:?}");
    let rest = text.split("timers: ").nth(1).unwrap_or_else(|| panic!("no timer count in {text}"));
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or_else(|_| panic!("no timer count in {text}"))
}

/// A million `call_later(1 hour)` handles cancelled behind a live timer
/// leave no timer records behind a few iterations later (cancelled timers
/// are compacted once more than 100 of them fill half the queue, as in
/// CPython). The live timer, due first, keeps them from being popped at
/// the front instead.
///
/// Before the fix: `CallHandle::cancel` does not count the cancellation,
/// so all 1,000,000 records stay queued for the hour.
#[test]
fn a_million_cancelled_call_later_timers_are_compacted_away() {
    const TIMERS: usize = 1_000_000;
    let event_loop = virtual_loop().build();
    event_loop
        .run_until_complete(|| {
            runtime::call_later(secs(60), || {})?;
            let handles: Vec<_> = (0..TIMERS)
                .map(|_| runtime::call_later(secs(3600), || {}))
                .collect::<Result<_, _>>()?;
            for h in &handles {
                h.cancel();
            }
            drop(handles);
            for _ in 0..3 {
                runtime::sleep(Duration::ZERO)?;
            }
            Ok(())
        })
        .unwrap();
    let left = queued_timers(&event_loop);
    assert!(left <= 100, "{left} timer records are still queued after cancelling {TIMERS}");
}

// ---------------------------------------------------------------------------
// 9. `InFlight` guards dropped while the loop is idle.

/// Resident memory of this process, in KiB.
fn resident_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).expect("rss");
    pages * 4
}

/// Taking and dropping 4,000,000 `InFlight` guards between two runs of a
/// loop does not grow memory (measured in a child process, alone).
///
/// Before the fix: each dropped guard posts a no-op into the loop's
/// channel, which nothing drains until the next run: about 96 MiB for
/// 4,000,000 guards.
#[test]
fn in_flight_guards_dropped_between_runs_do_not_grow_memory() {
    const NAME: &str = "in_flight_guards_dropped_between_runs_do_not_grow_memory";
    const GUARDS: usize = 4_000_000;
    if is_child(NAME) {
        let event_loop = virtual_loop().build();
        let handle = event_loop.run_until_complete(LoopHandle::current).unwrap();
        // Warm up the allocator and the channel.
        for _ in 0..1000 {
            drop(handle.in_flight());
        }
        event_loop.run_until_complete(|| Ok(())).unwrap();
        let before = resident_kib();
        for _ in 0..GUARDS {
            drop(handle.in_flight());
        }
        let grown = resident_kib().saturating_sub(before);
        assert!(grown < 8 * 1024, "{GUARDS} guards grew resident memory by {grown} KiB");
        event_loop.run_until_complete(|| Ok(())).unwrap();
        println!("memory stayed flat");
        return;
    }
    let run = run_child(NAME, secs(120));
    assert!(run.success && run.printed("memory stayed flat"), "{}", run.describe());
}

// ---------------------------------------------------------------------------
// 10. Cancelling one task of a wait cycle.

/// A joins B and B joins A; cancelling A delivers the cancellation at A's
/// wait. Expected (CPython itself raises `RecursionError` in `cancel`
/// here): the cancel is delivered, no deadlock is reported, and both tasks
/// end cancelled: A's join of B returns a cancellation, A propagates it,
/// and B's join of A returns A's cancellation.
///
/// Before the fix: the cancel only sets B's `must_cancel`, nothing is ever
/// ready again, and `run` fails with `Deadlock`.
#[test]
fn cancelling_one_task_of_a_join_cycle_ends_both_with_the_cancellation() {
    let drops = Drops::default();
    type Seen = Rc<RefCell<Vec<(&'static str, ErrorKind)>>>;
    let seen: Seen = Rc::new(RefCell::new(Vec::new()));
    let outcome = {
        let (drops, seen) = (drops.clone(), seen.clone());
        virtual_loop().run(move || {
            let b_slot: Rc<RefCell<Option<Task<()>>>> = Rc::new(RefCell::new(None));
            let a = {
                let (b_slot, seen, sentinel) = (b_slot.clone(), seen.clone(), drops.sentinel("a"));
                runtime::spawn(move || {
                    let _sentinel = sentinel;
                    let b = b_slot.borrow_mut().take().expect("b is set");
                    let joined = b.join();
                    seen.borrow_mut().push(("a's join of b", kind_of(&joined)));
                    joined
                })
            };
            let b = {
                let (a, seen, sentinel) = (a.clone(), seen.clone(), drops.sentinel("b"));
                runtime::spawn(move || {
                    let _sentinel = sentinel;
                    let joined = a.join();
                    seen.borrow_mut().push(("b's join of a", kind_of(&joined)));
                    joined
                })
            };
            *b_slot.borrow_mut() = Some(b.clone());
            runtime::sleep(Duration::ZERO)?; // both wait on each other
            let cancelled = a.cancel();
            let (ra, rb) = (a.join(), b.join());
            Ok((cancelled, kind_of(&ra), kind_of(&rb), a.is_cancelled(), b.is_cancelled()))
        })
    };
    let outcome = outcome.map_err(|e| e.to_string());
    assert_eq!(
        outcome,
        Ok((true, ErrorKind::Cancelled, ErrorKind::Cancelled, true, true)),
        "(cancel's result, a's outcome, b's outcome, a cancelled, b cancelled)"
    );
    assert_eq!(
        *seen.borrow(),
        [("a's join of b", ErrorKind::Cancelled), ("b's join of a", ErrorKind::Cancelled)]
    );
    drops.assert_each_once(&["a", "b"]);
}

/// The kind of a result's error; `Failed` stands in for a value here.
fn kind_of<T>(r: &Result<T, Error>) -> ErrorKind {
    match r {
        Ok(_) => ErrorKind::Failed,
        Err(e) => e.kind(),
    }
}

// ---------------------------------------------------------------------------
// 11. A `running()` handle used after its loop was dropped.

/// Makes a loop, takes a `running()` handle to it from inside, and drops
/// the loop; returns the handle.
fn handle_to_a_dropped_loop() -> EventLoop {
    let event_loop = virtual_loop().build();
    let handle = event_loop.run_until_complete(EventLoop::running).unwrap();
    drop(event_loop);
    handle
}

/// Running a loop again through a `running()` handle kept past the loop's
/// drop is refused: the loop is closed (Python: `Event loop is closed`).
///
/// Before the fix: it runs `main` on the torn-down loop, and a task it
/// leaves pending is never dropped.
#[test]
fn running_a_dropped_loop_through_a_kept_running_handle_is_refused() {
    let drops = Drops::default();
    let handle = handle_to_a_dropped_loop();
    let ran = Rc::new(Cell::new(false));
    let outcome = {
        let (drops, ran) = (drops.clone(), ran.clone());
        handle.run_until_complete(move || {
            ran.set(true);
            spawn_sleeper(&drops, "pending task");
            Ok(())
        })
    };
    drop(handle);
    match outcome {
        Err(e) if e.message().to_lowercase().contains("closed") => {}
        other => panic!("expected an error saying the loop is closed, got {other:?}"),
    }
    assert!(!ran.get(), "main must not run on a closed loop");
}

/// Spawning on a loop through a `running()` handle kept past the loop's
/// drop is refused too.
///
/// Before the fix: the task is made on the torn-down loop and never
/// dropped (its captures leak).
#[test]
fn spawning_on_a_dropped_loop_through_a_kept_running_handle_is_refused() {
    let drops = Drops::default();
    let handle = handle_to_a_dropped_loop();
    let sentinel = drops.sentinel("capture");
    let spawned = handle.spawn(move || {
        let _sentinel = sentinel;
        Ok(())
    });
    let spawned = spawned.map(|_| ()).map_err(|e| e.message().to_owned());
    drop(handle);
    assert!(
        spawned.as_ref().is_err_and(|m| m.to_lowercase().contains("closed")),
        "expected an error saying the loop is closed, got {spawned:?}"
    );
    drops.assert_each_once(&["capture"]);
}

/// Delays too long for a deadline (`now + Duration::MAX`) do not overflow:
/// the timers are armed, wait, and are cancelled like any other. (The
/// deadline addition used to panic.)
#[test]
fn delays_of_duration_max_arm_timers_that_can_be_cancelled() {
    let clock = Clock::virtual_time();
    let outcome = Builder::new().clock(clock.clone()).run(|| {
        let sleeper = runtime::spawn(|| runtime::sleep(Duration::MAX));
        let waited = runtime::spawn(|| runtime::sleep(Duration::MAX));
        let waiter = {
            let waited = waited.clone();
            runtime::spawn(move || runtime::wait_for(Some(Duration::MAX), &waited))
        };
        let bounded = runtime::spawn(|| {
            runtime::timeout(Some(Duration::MAX), |_| runtime::sleep(Duration::from_secs(2)))
        });
        let call = runtime::call_later(Duration::MAX, || panic!("never due"))?;
        runtime::sleep(Duration::from_secs(3))?;
        call.cancel();
        sleeper.cancel();
        waiter.cancel();
        Ok((
            sleeper.join().map_err(|e| e.is_cancelled()),
            waiter.join().map_err(|e| e.is_cancelled()),
            waited.join().map_err(|e| e.is_cancelled()),
            bounded.join().is_ok(),
        ))
    });
    assert_eq!(outcome.unwrap(), (Err(true), Err(true), Err(true), true));
    assert_eq!(clock.now(), Duration::from_secs(3));
}

/// A gather still pending when its loop is dropped (no shutdown: the loop
/// only ran `run_until_complete`) frees what it holds: the finished child's
/// value is dropped once. (Once a gathering was reachable from its own outer
/// future through the cancellation hook: a cycle, leaked in exactly this
/// case, found by LeakSanitizer.)
#[test]
fn a_gather_pending_when_its_loop_is_dropped_frees_its_finished_children() {
    let drops = Drops::default();
    let event_loop = virtual_loop().build();
    let (done_value, slow_value) = (drops.sentinel("done child"), drops.sentinel("slow child"));
    event_loop
        .run_until_complete(move || {
            let done = runtime::spawn(move || Ok(done_value));
            let slow = runtime::spawn(move || {
                runtime::sleep(secs(1000))?;
                Ok(slow_value)
            });
            let _gathering = runtime::spawn(move || runtime::gather([done, slow]).map(drop));
            runtime::sleep(secs(1))?;
            Ok(())
        })
        .unwrap();
    drop(event_loop);
    drops.assert_each_once(&["done child", "slow child"]);
}
