//! A hostile review, from the safe public API only, of three hot-path
//! changes to the runtime:
//!
//! - a task's header and wake token are read from the start of its value
//!   with no virtual call (`TaskCell` is `repr(C)`, header first; debug
//!   builds compare each direct read with a virtual one);
//! - the current task is kept as its record's address with no count, and
//!   `current_task()` makes a counted handle from it;
//! - `run_once` has an inlined fast path, and a cancelling wake-up carries
//!   its token and error in a box.
//!
//! The tests try result types of every layout (zero-sized, huge,
//! over-aligned), tasks whose last handle goes during their own step,
//! destructors and done callbacks that ask for the current task, loops torn
//! down from inside a task, sequential loops on one thread, and cancellation
//! wake-ups of every waiting primitive. Scenarios with a CPython 3.11
//! counterpart carry the Python program and compare the traces with
//! `python3`. Everything runs on the virtual clock.

mod common;

#[path = "common/inline_python.rs"]
mod inline_python;

use std::cell::{Cell, RefCell};
use std::fmt::Debug;
use std::rc::Rc;
use std::time::Duration;

use common::*;
use gencoro::runtime::{
    self, Builder, Clock, Error, ErrorKind, EventLoop, LoopHandle, Promise, Task, TaskRef,
};
use gencoro::sync::{Condition, Event, Lock, Queue, Semaphore};
use gencoro::{Generator, Step};
use inline_python::same_as_cpython;

// ---------------------------------------------------------------------
// Helpers.

fn virtual_loop() -> Builder {
    Builder::new().clock(Clock::virtual_time())
}

/// The id of the running task, or `None` outside a task, or `Err` outside
/// a running loop.
fn current_id() -> Result<Option<u64>, Error> {
    runtime::current_task().map(|t| t.map(|t| t.id()))
}

/// The running task (panics outside one).
fn me_ref() -> TaskRef {
    runtime::current_task().expect("a running loop").expect("inside a task")
}

/// What a probe saw when it was dropped.
type Seen = Rc<RefCell<Vec<Result<Option<u64>, ErrorKind>>>>;

/// Records `current_task()` when dropped.
struct Probe(Seen);

impl Drop for Probe {
    fn drop(&mut self) {
        self.0.borrow_mut().push(current_id().map_err(|e| e.kind()));
    }
}

fn seen() -> Seen {
    Rc::new(RefCell::new(Vec::new()))
}

// ---------------------------------------------------------------------
// Result types of every layout: the header and the wake token must be found
// at the start of the value whatever follows it.

#[derive(Clone, Debug, PartialEq)]
struct Zst;

#[derive(Clone, Debug, PartialEq)]
#[repr(align(64))]
struct Align64(u8);

#[derive(Clone, Debug, PartialEq)]
#[repr(align(4096))]
struct Align4096(u32);

#[derive(Clone, Debug, PartialEq)]
struct Huge(Box<[u8; 100_000]>);

/// A huge value held inline (not boxed), so the record holds it whole.
#[derive(Clone)]
struct HugeInline([u8; 100_000]);

impl PartialEq for HugeInline {
    fn eq(&self, other: &Self) -> bool {
        self.0[..] == other.0[..]
    }
}

impl Debug for HugeInline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HugeInline({}, {})", self.0[0], self.0[99_999])
    }
}

#[derive(Clone, Debug, PartialEq)]
#[repr(C, align(4096))]
struct AlignedHuge {
    tag: u8,
    bytes: [u8; 20_000],
}

impl Default for AlignedHuge {
    fn default() -> Self {
        AlignedHuge { tag: 0, bytes: [0; 20_000] }
    }
}

/// Task stacks for the layout tests: a 100 KB result is copied over its
/// task's stack many times in a debug build (it needs 1 to 2 MiB there,
/// 256 to 512 KiB in release; see
/// `a_task_returning_a_100_kb_value_fits_the_stack_a_release_build_needs`).
const TASK_STACK: usize = 4 << 20;

/// Runs `f` on a thread with a stack big enough for the loop's own copies
/// of a 100 KB result in a debug build (more than the 2 MiB of a test
/// thread).
fn on_a_big_thread(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(f)
        .expect("a thread")
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p));
}

/// Runs, on a loop whose tasks have big stacks (a huge result crosses the
/// task's stack), four tasks of result type `T`: one that names itself
/// through `current_task()`, sleeps and returns `make(1)`; one that yields
/// many times (plain steps) and returns `make(2)`; one parked on an event
/// and cancelled with a message; one sleeping and cancelled without. Also
/// a promise of `T`, set while a task waits on it, and one cancelled while
/// a task waits on it.
fn exercise<T>(what: &str, make: fn(u8) -> T)
where
    T: Clone + PartialEq + Debug + 'static,
{
    let what = what.to_owned();
    let out = Builder::new().clock(Clock::virtual_time()).stack_size(TASK_STACK).run(move || {
        let seen_id = Rc::new(Cell::new(0));
        let seen = seen_id.clone();
        let sleeper = runtime::spawn(move || {
            let me = me_ref();
            seen.set(me.id());
            me.set_name("sleeper");
            runtime::sleep(Duration::from_secs(1))?;
            // Still itself after a wake-up through a timer.
            assert_eq!(me_ref().id(), seen.get());
            Ok(make(1))
        });
        let yielder = runtime::spawn(move || {
            let id = me_ref().id();
            for _ in 0..20 {
                runtime::sleep(Duration::ZERO)?;
                assert_eq!(me_ref().id(), id);
            }
            Ok(make(2))
        });
        let event = Rc::new(Event::new());
        let ev = event.clone();
        let parked = runtime::spawn(move || {
            ev.wait()?;
            Ok(make(3))
        });
        let asleep = runtime::spawn(move || {
            runtime::sleep(Duration::from_secs(100))?;
            Ok(make(4))
        });
        let promise: Promise<T> = Promise::new()?;
        let p = promise.clone();
        let promise_waiter = runtime::spawn(move || p.wait());
        let cancelled_promise: Promise<T> = Promise::new()?;
        let p = cancelled_promise.clone();
        let cancelled_promise_waiter = runtime::spawn(move || p.wait());

        runtime::sleep(Duration::ZERO)?;
        assert!(parked.cancel_with("parked"));
        assert!(asleep.cancel());
        promise.set_result(make(5)).map_err(|_| Error::new("promise was done"))?;
        assert!(cancelled_promise.cancel_with("promise"));

        let v1 = sleeper.join()?;
        let v2 = yielder.join()?;
        let parked_err = parked.join().expect_err("cancelled");
        let asleep_err = asleep.join().expect_err("cancelled");
        let v5 = promise_waiter.join()?;
        let promise_err = cancelled_promise_waiter.join().expect_err("cancelled");
        assert_eq!(sleeper.id(), seen_id.get(), "{what}: current_task() inside the task");
        assert_eq!(sleeper.name(), "sleeper", "{what}: a name set through current_task()");
        assert_eq!(v1, make(1), "{what}");
        assert_eq!(v2, make(2), "{what}");
        assert_eq!(v5, make(5), "{what}");
        assert!(parked.is_cancelled() && asleep.is_cancelled(), "{what}");
        assert_eq!(
            (parked_err.kind(), parked_err.message()),
            (ErrorKind::Cancelled, "parked"),
            "{what}"
        );
        assert_eq!((asleep_err.kind(), asleep_err.message()), (ErrorKind::Cancelled, ""));
        assert_eq!((promise_err.kind(), promise_err.message()), (ErrorKind::Cancelled, "promise"));
        assert_eq!(event.waiters(), 0, "{what}");
        runtime::time()
    });
    assert_eq!(out.expect("the run"), Duration::from_secs(1));
}

#[test]
fn tasks_and_promises_of_every_result_layout_find_their_header_and_token() {
    on_a_big_thread(every_layout);
}

fn every_layout() {
    exercise("unit", |_| ());
    exercise("zero-sized", |_| Zst);
    exercise("u8", |n| n);
    exercise("u128", |n| u128::from(n) << 100);
    exercise("String", |n| format!("value {n}"));
    exercise("Option<Box<u8>>", |n| Some(Box::new(n)));
    exercise("align 64", Align64);
    exercise("align 4096", |n| Align4096(u32::from(n) * 1000));
    exercise("boxed huge", |n| Huge(Box::new([n; 100_000])));
    exercise("inline huge", |n| {
        let mut b = [n; 100_000];
        b[99_999] = n.wrapping_add(7);
        HugeInline(b)
    });
    exercise("aligned huge", |n| AlignedHuge { tag: n, bytes: [n; 20_000] });
    exercise("Result in a result", |n| -> Result<u8, String> {
        if n % 2 == 0 { Ok(n) } else { Err(format!("e{n}")) }
    });
}

/// Many tasks of mixed layouts at once, so records of different size
/// classes and alignments interleave in the record cache, and each is
/// woken by a timer, an event and a cancellation in one scrambled order.
#[test]
fn interleaved_records_of_mixed_layouts_each_see_only_themselves() {
    let out = Builder::new().clock(Clock::virtual_time()).stack_size(256 << 10).run(|| {
        let event = Rc::new(Event::new());
        let checks = Rc::new(Cell::new(0usize));
        let mut joins: Vec<Box<dyn FnOnce() -> Result<String, Error>>> = Vec::new();
        for i in 0..30u32 {
            let ev = event.clone();
            let checks = checks.clone();
            let body = move || -> Result<u32, Error> {
                let me = me_ref().id();
                runtime::sleep(Duration::from_millis(u64::from(30 - i)))?;
                assert_eq!(me_ref().id(), me);
                ev.wait()?;
                assert_eq!(me_ref().id(), me);
                checks.set(checks.get() + 1);
                Ok(i)
            };
            match i % 5 {
                0 => {
                    let t = runtime::spawn(move || body().map(|_| ()));
                    joins.push(Box::new(move || t.join().map(|()| "unit".into())));
                }
                1 => {
                    let t = runtime::spawn(move || body().map(Align4096));
                    joins.push(Box::new(move || t.join().map(|v| format!("{}", v.0))));
                }
                2 => {
                    let t = runtime::spawn(move || body().map(|n| Align64(n as u8)));
                    joins.push(Box::new(move || t.join().map(|v| format!("{}", v.0))));
                }
                3 => {
                    let t = runtime::spawn(move || body().map(|n| [n as u8; 3000]));
                    if i % 2 == 1 {
                        t.cancel_with("odd");
                    }
                    joins.push(Box::new(move || t.join().map(|v| format!("{}", v[2999]))));
                }
                _ => {
                    let t = runtime::spawn(move || body().map(|n| (Zst, n)));
                    joins.push(Box::new(move || t.join().map(|(_, n)| format!("{n}"))));
                }
            }
        }
        runtime::sleep(Duration::from_secs(1))?;
        event.set();
        let mut outcomes = Vec::new();
        for join in joins {
            outcomes.push(join().unwrap_or_else(|e| format!("{:?}({})", e.kind(), e.message())));
        }
        Ok((outcomes, checks.get()))
    });
    let (outcomes, checks) = out.expect("the run");
    let expected: Vec<String> = (0..30u32)
        .map(|i| match i % 5 {
            0 => "unit".to_owned(),
            3 if i % 2 == 1 => "Cancelled(odd)".to_owned(),
            _ => i.to_string(),
        })
        .collect();
    assert_eq!(outcomes, expected);
    assert_eq!(checks, 27);
}

// ---------------------------------------------------------------------
// The current task's kept address.

/// The body drops the only `Task` handle to itself (the test keeps none):
/// what keeps the record alive during the step is the loop's own handle.
/// `current_task()` must still find the task, before and after it waits.
#[test]
fn a_task_that_drops_the_only_handle_to_itself_is_still_current() {
    let out = virtual_loop().run(|| {
        let slot: Slot<u64> = slot();
        let s = slot.clone();
        let seen = Rc::new(RefCell::new(Vec::new()));
        let record = seen.clone();
        let task = runtime::spawn(move || {
            let own = s.borrow_mut().take().expect("the handle was put in the slot");
            let id = own.id();
            drop(own);
            record.borrow_mut().push(me_ref().id() == id);
            me_ref().set_name("orphan");
            runtime::sleep(Duration::from_secs(1))?;
            record.borrow_mut().push(me_ref().id() == id && me_ref().name() == "orphan");
            runtime::sleep(Duration::ZERO)?;
            record.borrow_mut().push(me_ref().id() == id);
            Ok(id)
        });
        let id = task.id();
        *slot.borrow_mut() = Some(task);
        // Only the task itself held a handle; keep a `TaskRef` view
        // through `all_tasks` to see it finish.
        let refs = runtime::all_tasks()?;
        let view = refs.into_iter().find(|t| t.id() == id).expect("listed");
        while !view.is_done() {
            runtime::sleep(Duration::from_millis(100))?;
        }
        let checks = seen.borrow().clone();
        Ok((checks, view.name()))
    });
    assert_eq!(out.expect("the run"), (vec![true, true, true], "orphan".to_owned()));
}

/// The last handles to a finished task go: in a done callback (no task is
/// current there), in another task's step (that task is current), and
/// after the loop (no loop). The task's value is dropped then, and sees
/// exactly that; a destructor of a value on the task's own stack sees the
/// task itself.
#[test]
fn values_of_a_task_dropped_with_its_last_handle_see_whoever_runs_then() {
    let in_callback = seen();
    let in_task = seen();
    let after_loop = seen();
    let on_own_stack = seen();
    let (a, b, c, d) =
        (in_callback.clone(), in_task.clone(), after_loop.clone(), on_own_stack.clone());
    let out = virtual_loop().run(move || {
        // 1. A done callback holds the only handle, and drops it.
        let own_id = Rc::new(Cell::new(0));
        let oid = own_id.clone();
        let t1 = runtime::spawn(move || {
            let _on_stack = Probe(d);
            oid.set(me_ref().id());
            runtime::sleep(Duration::from_millis(1))?;
            Ok(Probe(a))
        });
        let holder: Slot<Probe> = slot();
        *holder.borrow_mut() = Some(t1.clone());
        let h = holder.clone();
        let callback_saw = Rc::new(RefCell::new(None));
        let cs = callback_saw.clone();
        t1.add_done_callback(move |_| {
            *cs.borrow_mut() = Some(current_id().map_err(|e| e.kind()));
            drop(h.borrow_mut().take());
        })?;
        drop(t1);
        // 2. Another task holds the only handle to a finished task.
        let t2 = runtime::spawn(move || Ok(Probe(b)));
        let dropper = runtime::spawn(move || {
            while !t2.is_done() {
                runtime::sleep(Duration::ZERO)?;
            }
            let me = me_ref().id();
            drop(t2);
            Ok(me)
        });
        // 3. The loop's caller gets the last handle.
        let t3 = runtime::spawn(move || Ok(Probe(c)));
        runtime::sleep(Duration::from_secs(1))?;
        let dropper_id = dropper.join()?;
        let callback_saw = callback_saw.borrow_mut().take();
        Ok((t3, dropper_id, own_id.get(), callback_saw))
    });
    let (t3, dropper_id, own_id, callback_saw) = out.expect("the run");
    assert_eq!(callback_saw, Some(Ok(None)), "a done callback runs outside any task");
    assert_eq!(*in_callback.borrow(), vec![Ok(None)]);
    assert_eq!(*in_task.borrow(), vec![Ok(Some(dropper_id))]);
    assert_eq!(*on_own_stack.borrow(), vec![Ok(Some(own_id))]);
    assert!(after_loop.borrow().is_empty());
    drop(t3);
    assert_eq!(*after_loop.borrow(), vec![Err(ErrorKind::NoRunningLoop)]);
}

/// A panicking task is the current task in the destructors its unwind runs;
/// so is a task unwinding from a cancellation with `?`. The task that runs
/// next sees itself.
#[test]
fn unwinding_destructors_see_their_own_task_and_the_next_task_sees_itself() {
    let panicked = seen();
    let cancelled = seen();
    let (p, c) = (panicked.clone(), cancelled.clone());
    let out = virtual_loop().run(move || {
        let t1 = runtime::spawn(move || -> Result<(), Error> {
            let _probe = Probe(p);
            runtime::sleep(Duration::ZERO)?;
            panic!("boom in a task");
        });
        let t2 = runtime::spawn(move || -> Result<(), Error> {
            let _probe = Probe(c);
            runtime::sleep(Duration::from_secs(5))?;
            Ok(())
        });
        let t3 = runtime::spawn(|| {
            runtime::sleep(Duration::ZERO)?;
            runtime::sleep(Duration::ZERO)?;
            Ok(me_ref().id())
        });
        runtime::sleep(Duration::ZERO)?;
        t2.cancel();
        let e1 = t1.join().expect_err("panicked");
        let e2 = t2.join().expect_err("cancelled");
        let id3 = t3.join()?;
        Ok((t1.id(), e1.kind(), t2.id(), e2.kind(), t3.id() == id3))
    });
    let (id1, k1, id2, k2, third_ok) = out.expect("the run");
    assert_eq!(k1, ErrorKind::Panicked);
    assert_eq!(k2, ErrorKind::Cancelled);
    assert!(third_ok);
    assert_eq!(*panicked.borrow(), vec![Ok(Some(id1))]);
    assert_eq!(*cancelled.borrow(), vec![Ok(Some(id2))]);
}

/// A loop closed with tasks pending unwinds their stacks: no task of that
/// loop may be current in those destructors (the loop is not running).
/// Each destructor runs once.
#[test]
fn destructors_run_at_teardown_see_no_task_of_the_closed_loop() {
    let probes = seen();
    let event_loop = virtual_loop().build();
    let mut ids = Vec::new();
    for i in 0..5u64 {
        let p = probes.clone();
        let t = event_loop
            .spawn(move || {
                let _probe = Probe(p);
                if i % 2 == 0 {
                    runtime::sleep(Duration::from_secs(100 + i))?;
                } else {
                    Event::new().wait()?;
                }
                Ok(())
            })
            .expect("spawn");
        ids.push(t.id());
    }
    event_loop.run_until_complete(|| runtime::sleep(Duration::from_secs(1))).expect("run");
    assert!(probes.borrow().is_empty(), "nothing unwound yet");
    drop(event_loop);
    let probes = probes.borrow();
    assert_eq!(probes.len(), 5, "{probes:?}");
    for seen in probes.iter() {
        assert!(matches!(seen, Ok(None) | Err(ErrorKind::NoRunningLoop)), "{probes:?}");
    }
}

/// A task of loop A drops loop B, whose pending tasks unwind inside A's
/// step. Their destructors must never see one of B's (dying) tasks; they
/// see A's task, which is alive, or none. A wait in such a destructor is
/// refused, and so is running a third loop there. A's task is still the
/// current task afterwards, and goes on waiting.
#[test]
fn a_task_that_drops_another_loop_stays_current_and_the_dying_tasks_are_never_current() {
    let probes = seen();
    let refusals = Rc::new(RefCell::new(Vec::new()));
    let b = virtual_loop().build();
    let mut b_ids = Vec::new();
    for i in 0..3u64 {
        let p = probes.clone();
        let r = refusals.clone();
        let t = b
            .spawn(move || {
                struct Waits(Rc<RefCell<Vec<String>>>);
                impl Drop for Waits {
                    fn drop(&mut self) {
                        let sleep = runtime::sleep(Duration::from_secs(1));
                        self.0.borrow_mut().push(format!("{:?}", sleep.map_err(|e| e.kind())));
                        let nested = virtual_loop().run(|| Ok(()));
                        self.0.borrow_mut().push(format!("{:?}", nested.map_err(|e| e.kind())));
                    }
                }
                let _waits = Waits(r);
                let _probe = Probe(p);
                runtime::sleep(Duration::from_secs(100 + i))?;
                Ok(())
            })
            .expect("spawn");
        b_ids.push(t.id());
    }
    b.run_until_complete(|| runtime::sleep(Duration::from_secs(1))).expect("first run of B");
    let holder = Rc::new(RefCell::new(Some(b)));
    let h = holder.clone();
    let out = virtual_loop().run(move || {
        let a_task = runtime::spawn(move || {
            let me = me_ref().id();
            drop(h.borrow_mut().take());
            let after_drop = me_ref().id() == me;
            runtime::sleep(Duration::from_secs(1))?;
            let after_sleep = me_ref().id() == me;
            Ok((me, after_drop, after_sleep))
        });
        a_task.join()
    });
    let (a_id, after_drop, after_sleep) = out.expect("the run of A");
    assert!(after_drop && after_sleep);
    assert!(holder.borrow().is_none());
    let probes = probes.borrow();
    assert_eq!(probes.len(), 3, "{probes:?}");
    for seen in probes.iter() {
        match seen {
            Ok(Some(id)) => {
                assert!(!b_ids.contains(id), "a dying task of B was current: {probes:?}");
                assert_eq!(*id, a_id, "{probes:?}");
            }
            Ok(None) => {}
            Err(kind) => panic!("inside A's run, the loop is running: {kind:?}"),
        }
    }
    let refusals = refusals.borrow();
    assert_eq!(refusals.len(), 6, "{refusals:?}");
    for pair in refusals.chunks(2) {
        assert!(pair[0].starts_with("Err("), "a wait in a dying task's destructor: {refusals:?}");
        assert_eq!(pair[1], "Err(NestedRun)", "{refusals:?}");
    }
}

/// Closing or running the running loop from inside one of its tasks is
/// refused, and the task stays current.
#[test]
fn a_task_cannot_close_or_rerun_its_own_loop_and_stays_current() {
    let out = virtual_loop().run(|| {
        let me = me_ref().id();
        let running = EventLoop::running()?;
        let close = running.close().map_err(|e| e.kind());
        let rerun = running.run_until_complete(|| Ok(())).map_err(|e| e.kind());
        drop(running);
        runtime::sleep(Duration::ZERO)?;
        Ok((close, rerun, me_ref().id() == me))
    });
    assert_eq!(out.expect("the run"), (Err(ErrorKind::Misuse), Err(ErrorKind::NestedRun), true));
}

/// Loop after loop on one thread: record blocks are reused, so task
/// addresses repeat, but `current_task()` always names the running task,
/// and outside the runs there is none.
#[test]
fn sequential_loops_on_one_thread_never_see_an_earlier_loops_task() {
    let mut all_ids = std::collections::HashSet::new();
    for round in 0..40u64 {
        let out = virtual_loop().run(move || {
            let mut tasks = Vec::new();
            for i in 0..4u64 {
                tasks.push(runtime::spawn(move || {
                    let id = me_ref().id();
                    runtime::sleep(Duration::from_millis(round % 3 + i))?;
                    assert_eq!(me_ref().id(), id);
                    Ok(id)
                }));
            }
            let mut pairs = Vec::new();
            for t in &tasks {
                pairs.push((t.id(), t.join()?));
            }
            Ok((me_ref().id(), pairs))
        });
        let (main_id, pairs) = out.expect("a run");
        assert!(all_ids.insert(main_id), "a main task id repeated");
        for (id, seen) in pairs {
            assert_eq!(id, seen);
            assert!(all_ids.insert(id), "a task id repeated");
        }
        assert_eq!(current_id().map_err(|e| e.kind()), Err(ErrorKind::NoRunningLoop));
    }
}

/// A generator made in one task sees, in its body, the task that resumes
/// it: its maker, then another task (after the maker finished), then no
/// loop at all.
#[test]
fn current_task_in_a_nested_generator_is_whoever_resumes_it() {
    type Seen = Result<Option<u64>, ErrorKind>;
    type Gen = Generator<Seen, (), ()>;
    let out = virtual_loop().run(|| {
        let gen_slot: Rc<RefCell<Option<Gen>>> = Rc::new(RefCell::new(None));
        let g = gen_slot.clone();
        let maker = runtime::spawn(move || {
            let generator: Gen = Generator::new(|y| {
                for _ in 0..3 {
                    y.yield_(current_id().map_err(|e| e.kind()));
                }
            });
            let first = generator.resume().ok();
            *g.borrow_mut() = Some(generator);
            Ok((me_ref().id(), first))
        });
        let (maker_id, first) = maker.join()?;
        let g = gen_slot.clone();
        let other = runtime::spawn(move || {
            let second = g.borrow().as_ref().expect("kept").resume().ok();
            Ok((me_ref().id(), second))
        });
        let (other_id, second) = other.join()?;
        Ok((maker_id, first, other_id, second, gen_slot.borrow_mut().take().expect("kept")))
    });
    let (maker_id, first, other_id, second, generator) = out.expect("the run");
    assert_ne!(maker_id, other_id);
    assert_eq!(first, Some(Step::Yielded(Ok(Some(maker_id)))));
    assert_eq!(second, Some(Step::Yielded(Ok(Some(other_id)))));
    assert_eq!(generator.resume().ok(), Some(Step::Yielded(Err(ErrorKind::NoRunningLoop))));
}

// ---------------------------------------------------------------------
// Cancellation wake-ups: delivered once, in CPython's order.

// A task cancels itself through `current_task()`: it runs on to its next
// wait, which returns the cancellation; the wait after that is not
// cancelled again.
//
// Expected (CPython 3.11): 0.0 cancel self True / 0.0 still running /
// 0.0 got CancelledError() cancelling 1 / 0.0 uncancel 0 / 1.0 slept /
// 1.0 r 1 False / result None / end 1.0
const SELF_CANCEL_PY: &str = r#"
from prelude import *

async def main():
    async def body():
        t = asyncio.current_task()
        log(f"cancel self {t.cancel()}")
        log("still running")
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError as e:
            log(f"got {ex(e)} cancelling {t.cancelling()}")
        log(f"uncancel {t.uncancel()}")
        await asyncio.sleep(1)
        log("slept")
        return 1
    t = asyncio.create_task(body())
    r = await t
    log(f"r {r} {t.cancelled()}")

go(main)
"#;

#[test]
fn a_task_that_cancels_itself_gets_one_cancellation_at_its_next_wait() {
    let trace = go(|| {
        let t = runtime::spawn(|| {
            let me = me_ref();
            log(format!("cancel self {}", me.cancel().py()));
            log("still running");
            if let Err(e) = runtime::sleep(Duration::ZERO) {
                log(format!("got {} cancelling {}", ex(&e), me.cancelling()));
            }
            log(format!("uncancel {}", me.uncancel()));
            sleep(1.0)?;
            log("slept");
            Ok(1u32)
        });
        let r = t.join()?;
        log(format!("r {r} {}", t.is_cancelled().py()));
        Ok(())
    });
    assert_eq!(trace.len(), 8, "{trace:?}");
    same_as_cpython(&trace, SELF_CANCEL_PY);
}

// Six tasks wait on six different things (a sleep, a queue, a held lock,
// an empty semaphore, an event, a condition); each is cancelled, some with
// a message, one twice. Each wait returns its cancellation exactly once, in
// the order of the cancel calls; the sleep each does next is not cancelled;
// nothing is left parked.
const CANCEL_PARKED_PY: &str = r#"
from prelude import *

async def main():
    q = asyncio.Queue()
    lock = asyncio.Lock()
    await lock.acquire()
    sem = asyncio.Semaphore(0)
    ev = asyncio.Event()
    cond = asyncio.Condition()
    async def cond_wait():
        async with cond:
            await cond.wait()
    async def waiter(name, wait):
        try:
            await wait()
            log(f"{name} woke")
        except asyncio.CancelledError as e:
            log(f"{name} {ex(e)}")
        await asyncio.sleep(1)
        log(f"{name} again")
        return name
    waits = [("s", lambda: asyncio.sleep(10)), ("q", q.get), ("l", lock.acquire),
             ("m", sem.acquire), ("e", ev.wait), ("c", cond_wait)]
    tasks = {n: asyncio.create_task(waiter(n, w)) for n, w in waits}
    await asyncio.sleep(0)
    for n, msg in [("c", "c"), ("e", None), ("m", "m"), ("l", None), ("q", "q"), ("s", "s")]:
        log(f"cancel {n} {tasks[n].cancel(msg)}")
    log(f"cancel s again {tasks['s'].cancel()}")
    await asyncio.sleep(0)
    log(f"lock {lock.locked()} {len(lock._waiters)} sem {len(sem._waiters)} "
        f"event {len(ev._waiters)} cond {len(cond._waiters)} {cond.locked()}")
    q.put_nowait(7)
    await asyncio.sleep(0)
    log(f"queue {q.qsize()}")
    r = await asyncio.gather(*tasks.values())
    log(f"{r}")
    lock.release()

go(main)
"#;

#[test]
fn cancelled_waiters_of_every_primitive_get_one_cancellation_in_cpython_order() {
    let trace = go(|| {
        let q: Rc<Queue<u32>> = Rc::new(Queue::new());
        let lock = Rc::new(Lock::new());
        let held = lock.acquire()?;
        let sem = Rc::new(Semaphore::new(0));
        let ev = Rc::new(Event::new());
        let cond = Rc::new(Condition::new());
        fn waiter(
            name: &'static str,
            wait: impl FnOnce() -> Result<(), Error> + 'static,
        ) -> Task<&'static str> {
            runtime::spawn(move || {
                match wait() {
                    Ok(()) => log(format!("{name} woke")),
                    Err(e) => log(format!("{name} {}", ex(&e))),
                }
                sleep(1.0)?;
                log(format!("{name} again"));
                Ok(name)
            })
        }
        let (q2, l2, s2, e2, c2) = (q.clone(), lock.clone(), sem.clone(), ev.clone(), cond.clone());
        let tasks = [
            ("s", waiter("s", || sleep(10.0))),
            ("q", waiter("q", move || q2.get().map(drop).map_err(Error::from))),
            ("l", waiter("l", move || l2.acquire().map(drop))),
            ("m", waiter("m", move || s2.acquire().map(std::mem::forget))),
            ("e", waiter("e", move || e2.wait())),
            (
                "c",
                waiter("c", move || {
                    let mut g = c2.acquire()?;
                    c2.wait(&mut g)
                }),
            ),
        ];
        let find = |n: &str| tasks.iter().find(|(m, _)| *m == n).map(|(_, t)| t).expect("named");
        runtime::sleep(Duration::ZERO)?;
        for (n, msg) in [
            ("c", Some("c")),
            ("e", None),
            ("m", Some("m")),
            ("l", None),
            ("q", Some("q")),
            ("s", Some("s")),
        ] {
            let t = find(n);
            let r = match msg {
                Some(m) => t.cancel_with(m),
                None => t.cancel(),
            };
            log(format!("cancel {n} {}", r.py()));
        }
        log(format!("cancel s again {}", find("s").cancel().py()));
        runtime::sleep(Duration::ZERO)?;
        log(format!(
            "lock {} {} sem {} event {} cond {} {}",
            lock.locked().py(),
            lock.waiters(),
            sem.waiters(),
            ev.waiters(),
            cond.waiters(),
            cond.locked().py()
        ));
        q.try_put(7).map_err(|_| Error::new("full"))?;
        runtime::sleep(Duration::ZERO)?;
        log(format!("queue {}", q.len()));
        let names: Vec<&str> = runtime::gather(tasks.iter().map(|(_, t)| t.clone()))?;
        log(names.py());
        drop(held);
        Ok(())
    });
    assert_eq!(trace.len(), 24, "{trace:?}");
    same_as_cpython(&trace, CANCEL_PARKED_PY);
}

// A waiter woken and then cancelled in the same step: the cancellation
// wins (the step delivers it), and what the wake handed over goes on to
// the next waiter: the lock, the queue's item, the semaphore's permit.
const WOKEN_THEN_CANCELLED_PY: &str = r#"
from prelude import *

async def main():
    ev = asyncio.Event()
    lock = asyncio.Lock()
    q = asyncio.Queue()
    sem = asyncio.Semaphore(0)
    async def w(name, wait):
        try:
            r = await wait()
            log(f"{name} got {r}")
        except asyncio.CancelledError as e:
            log(f"{name} {ex(e)}")
    await lock.acquire()
    ts = [asyncio.create_task(w("e1", ev.wait)), asyncio.create_task(w("e2", ev.wait)),
          asyncio.create_task(w("l1", lock.acquire)), asyncio.create_task(w("l2", lock.acquire)),
          asyncio.create_task(w("q1", q.get)), asyncio.create_task(w("q2", q.get)),
          asyncio.create_task(w("m1", sem.acquire)), asyncio.create_task(w("m2", sem.acquire))]
    await asyncio.sleep(0)
    ev.set()
    log(f"cancel e1 {ts[0].cancel('late')}")
    lock.release()
    log(f"cancel l1 {ts[2].cancel()}")
    q.put_nowait("x")
    log(f"cancel q1 {ts[4].cancel('q')}")
    sem.release()
    log(f"cancel m1 {ts[6].cancel()}")
    for _ in range(3):
        await asyncio.sleep(0)
    log(f"lock {lock.locked()} sem {sem._value} queue {q.qsize()}")
    log(f"{[t.cancelled() for t in ts]}")

go(main)
"#;

#[test]
fn a_waiter_woken_and_cancelled_in_one_step_gets_the_cancellation_once() {
    let trace = go(|| {
        let ev = Rc::new(Event::new());
        let lock = Rc::new(Lock::new());
        let q: Rc<Queue<&'static str>> = Rc::new(Queue::new());
        let sem = Rc::new(Semaphore::new(0));
        fn w(
            name: &'static str,
            wait: impl FnOnce() -> Result<String, Error> + 'static,
        ) -> Task<()> {
            runtime::spawn(move || {
                match wait() {
                    Ok(r) => log(format!("{name} got {r}")),
                    Err(e) => log(format!("{name} {}", ex(&e))),
                }
                Ok(())
            })
        }
        let held = lock.acquire()?;
        std::mem::forget(held);
        let mut ts = Vec::new();
        for n in ["e1", "e2"] {
            let ev = ev.clone();
            ts.push(w(n, move || ev.wait().map(|()| "True".to_owned())));
        }
        for n in ["l1", "l2"] {
            let lock = lock.clone();
            ts.push(w(n, move || {
                lock.acquire().map(|g| {
                    std::mem::forget(g);
                    "True".to_owned()
                })
            }));
        }
        for n in ["q1", "q2"] {
            let q = q.clone();
            ts.push(w(n, move || q.get().map(str::to_owned).map_err(Error::from)));
        }
        for n in ["m1", "m2"] {
            let sem = sem.clone();
            ts.push(w(n, move || {
                sem.acquire().map(|p| {
                    std::mem::forget(p);
                    "True".to_owned()
                })
            }));
        }
        runtime::sleep(Duration::ZERO)?;
        ev.set();
        log(format!("cancel e1 {}", ts[0].cancel_with("late").py()));
        lock.release().map_err(|e| Error::new(e.message()))?;
        log(format!("cancel l1 {}", ts[2].cancel().py()));
        q.try_put("x").map_err(|_| Error::new("full"))?;
        log(format!("cancel q1 {}", ts[4].cancel_with("q").py()));
        sem.release();
        log(format!("cancel m1 {}", ts[6].cancel().py()));
        for _ in 0..3 {
            runtime::sleep(Duration::ZERO)?;
        }
        log(format!("lock {} sem {} queue {}", lock.locked().py(), sem.value(), q.len()));
        let cancelled: Vec<bool> = ts.iter().map(Task::is_cancelled).collect();
        log(cancelled.py());
        Ok(())
    });
    assert_eq!(trace.len(), 16, "{trace:?}");
    same_as_cpython(&trace, WOKEN_THEN_CANCELLED_PY);
}

// `wait_for` timing out, `shield` cancelled from outside, `timeout` around
// a parked lock acquisition, and a task group whose child fails while a
// sibling sleeps and another is parked: each cancellation arrives once.
const COMBINATORS_PY: &str = r#"
from prelude import *

async def main():
    async def inner(name, d):
        try:
            await asyncio.sleep(d)
            log(f"{name} done")
            return name
        except asyncio.CancelledError as e:
            log(f"{name} {ex(e)}")
            raise
    t = asyncio.create_task(inner("w", 5))
    try:
        await asyncio.wait_for(t, 1)
    except TimeoutError as e:
        log(f"wait_for {ex(e)} {t.cancelled()}")

    s = asyncio.create_task(inner("s", 2))
    async def outer():
        try:
            return await asyncio.shield(s)
        except asyncio.CancelledError as e:
            log(f"outer {ex(e)}")
            raise
    o = asyncio.create_task(outer())
    await asyncio.sleep(1)
    log(f"cancel o {o.cancel('o')}")
    try:
        await o
    except asyncio.CancelledError as e:
        log(f"o {ex(e)} s done {s.done()}")
    log(f"s {await s}")

    lock = asyncio.Lock()
    await lock.acquire()
    try:
        async with asyncio.timeout(1):
            await lock.acquire()
    except TimeoutError as e:
        log(f"timeout {ex(e)} waiters {len(lock._waiters)} locked {lock.locked()}")
    lock.release()

    ev = asyncio.Event()
    async def failing():
        await asyncio.sleep(1)
        raise Boom("x")
    # The group cancels its children in the order of a set: only their
    # states are compared, not the order of their cancellations.
    children = []
    try:
        async with asyncio.TaskGroup() as tg:
            children.append(tg.create_task(failing()))
            children.append(tg.create_task(asyncio.sleep(5)))
            children.append(tg.create_task(ev.wait()))
    except BaseException as e:
        log(f"group {ex(e)} {[t.cancelled() for t in children]}")
    log(f"event waiters {len(ev._waiters)}")
    return "ok"

go(main)
"#;

#[test]
fn wait_for_shield_timeout_and_task_groups_deliver_each_cancellation_once() {
    let trace = go(|| {
        fn inner(name: &'static str, d: f64) -> impl FnOnce() -> Result<&'static str, Error> {
            move || match sleep(d) {
                Ok(()) => {
                    log(format!("{name} done"));
                    Ok(name)
                }
                Err(e) => {
                    log(format!("{name} {}", ex(&e)));
                    Err(e)
                }
            }
        }
        let t = runtime::spawn(inner("w", 5.0));
        if let Err(e) = runtime::wait_for(Some(secs(1.0)), &t) {
            log(format!("wait_for {} {}", ex(&e), t.is_cancelled().py()));
        }

        let s = runtime::spawn(inner("s", 2.0));
        let s2 = s.clone();
        let o = runtime::spawn(move || match runtime::shield(&s2) {
            Ok(v) => Ok(v),
            Err(e) => {
                log(format!("outer {}", ex(&e)));
                Err(e)
            }
        });
        sleep(1.0)?;
        log(format!("cancel o {}", o.cancel_with("o").py()));
        if let Err(e) = o.join() {
            log(format!("o {} s done {}", ex(&e), s.is_done().py()));
        }
        log(format!("s {}", s.join()?));

        let lock = Lock::new();
        let held = lock.acquire()?;
        let r = runtime::timeout(Some(secs(1.0)), |_| lock.acquire().map(drop));
        if let Err(e) = r {
            log(format!(
                "timeout {} waiters {} locked {}",
                ex(&e),
                lock.waiters(),
                lock.locked().py()
            ));
        }
        drop(held);

        let ev = Rc::new(Event::new());
        let ev2 = ev.clone();
        let children = Rc::new(RefCell::new(Vec::<TaskRef>::new()));
        let ch = children.clone();
        let r = runtime::task_group(move |tg| {
            let failing = tg.spawn(|| -> Result<(), Error> {
                sleep(1.0)?;
                Err(boom("x"))
            })?;
            let sleeping = tg.spawn(|| sleep(5.0))?;
            let parked = tg.spawn(move || ev2.wait())?;
            ch.borrow_mut().extend([failing.as_ref(), sleeping.as_ref(), parked.as_ref()]);
            Ok(())
        });
        if let Err(e) = r {
            let states: Vec<bool> = children.borrow().iter().map(TaskRef::is_cancelled).collect();
            log(format!("group {} {}", ex(&e), states.py()));
        }
        log(format!("event waiters {}", ev.waiters()));
        Ok("ok")
    });
    assert_eq!(trace.len(), 12, "{trace:?}");
    same_as_cpython(&trace, COMBINATORS_PY);
}

// ---------------------------------------------------------------------
// The loop's iteration: `stop`, and the fast path among timers, callbacks
// and tasks.

// `stop` before `run_forever` lets one iteration run; `stop` from a task in
// the middle of an iteration lets the rest of that iteration run (the tasks
// behind it step once more), and no more; the next run goes on from there;
// a stop inside `run_until_complete` fails it.
const STOP_PY: &str = r#"
from prelude import *

loop = asyncio.new_event_loop()
async def ticker(name, n):
    for i in range(n):
        log(f"{name} {i}")
        await asyncio.sleep(0)
async def stopper():
    log("c 0")
    await asyncio.sleep(0)
    log("c stop")
    loop.stop()
    await asyncio.sleep(0)
    log("c after")
c = loop.create_task(stopper())
a = loop.create_task(ticker("a", 4))
b = loop.create_task(ticker("b", 4))
loop.stop()
loop.run_forever()
print("first run over")
loop.run_forever()
print("second run over")
async def stop_inside():
    await asyncio.sleep(0)
    loop.stop()
    await asyncio.sleep(5)
try:
    loop.run_until_complete(stop_inside())
except RuntimeError as e:
    print(f"third run: {e}")
async def rest():
    await asyncio.gather(a, b, c)
    log("all done")
loop.run_until_complete(rest())
print(f"end {loop.time():.1f}")
"#;

#[test]
fn stop_lets_exactly_the_rest_of_one_iteration_run() {
    take_trace();
    let event_loop = virtual_loop().build();
    let ticker = |name: &'static str, n: u32| {
        move || {
            for i in 0..n {
                log(format!("{name} {i}"));
                runtime::sleep(Duration::ZERO)?;
            }
            Ok(())
        }
    };
    let c = event_loop
        .spawn(|| {
            log("c 0");
            runtime::sleep(Duration::ZERO)?;
            log("c stop");
            EventLoop::running()?.stop();
            runtime::sleep(Duration::ZERO)?;
            log("c after");
            Ok(())
        })
        .expect("spawn");
    let a = event_loop.spawn(ticker("a", 4)).expect("spawn");
    let b = event_loop.spawn(ticker("b", 4)).expect("spawn");
    event_loop.stop();
    event_loop.run_forever().expect("first run");
    print("first run over");
    event_loop.run_forever().expect("second run");
    print("second run over");
    let third = event_loop.run_until_complete(|| {
        runtime::sleep(Duration::ZERO)?;
        EventLoop::running()?.stop();
        runtime::sleep(Duration::from_secs(5))
    });
    match third {
        Err(e) if e.kind() == ErrorKind::Misuse => print(format!("third run: {}", e.message())),
        other => panic!("a stopped run_until_complete: {other:?}"),
    }
    event_loop
        .run_until_complete(move || {
            runtime::gather([a, b, c])?;
            log("all done");
            Ok(())
        })
        .expect("fourth run");
    print(format!("end {:.1}", event_loop.clock().now().as_secs_f64()));
    let trace = take_trace();
    assert_eq!(trace.len(), 16, "{trace:?}");
    same_as_cpython(&trace, STOP_PY);
}

// Two spinning tasks schedule `call_soon` callbacks, zero-delay timers
// (one cancelled) and one task sleeps: iterations where only handles are
// ready (the fast path) alternate with ones where a timer is due or a
// cancelled one waits to be dropped. CPython's per-iteration order: due
// timers go behind what was ready, and what runs schedules for the next
// iteration.
const FAST_PATH_MIX_PY: &str = r#"
from prelude import *

async def main():
    loop = asyncio.get_running_loop()
    async def spin(name, n):
        for i in range(n):
            log(f"{name} {i}")
            if i == 1:
                loop.call_soon(log, f"{name} soon")
            if i == 2:
                loop.call_later(0, log, f"{name} later0")
            if i == 3:
                h = loop.call_later(0, log, f"{name} cancelled")
                h.cancel()
                loop.call_soon(log, f"{name} soon after cancel")
            if i == 4:
                loop.call_later(0, loop.call_soon, log, f"{name} soon from timer")
            await asyncio.sleep(0)
    async def sleeper():
        await asyncio.sleep(0.5)
        log("sleeper")
    ts = [asyncio.create_task(spin("a", 7)), asyncio.create_task(sleeper()),
          asyncio.create_task(spin("b", 6))]
    loop.call_later(0, log, "main later0")
    loop.call_soon(log, "main soon")
    await asyncio.gather(*ts)
    log("done")

go(main)
"#;

#[test]
fn the_fast_path_keeps_cpython_order_among_timers_callbacks_and_tasks() {
    let trace = go(|| {
        fn spin(name: &'static str, n: u32) -> impl FnOnce() -> Result<(), Error> {
            move || {
                for i in 0..n {
                    log(format!("{name} {i}"));
                    match i {
                        1 => drop(runtime::call_soon(move || log(format!("{name} soon")))?),
                        2 => drop(runtime::call_later(Duration::ZERO, move || {
                            log(format!("{name} later0"))
                        })?),
                        3 => {
                            let h = runtime::call_later(Duration::ZERO, move || {
                                log(format!("{name} cancelled"))
                            })?;
                            h.cancel();
                            runtime::call_soon(move || log(format!("{name} soon after cancel")))?;
                        }
                        4 => drop(runtime::call_later(Duration::ZERO, move || {
                            runtime::call_soon(move || log(format!("{name} soon from timer")))
                                .expect("call_soon in a timer");
                        })?),
                        _ => {}
                    }
                    runtime::sleep(Duration::ZERO)?;
                }
                Ok(())
            }
        }
        let a = runtime::spawn(spin("a", 7));
        let s = runtime::spawn(|| {
            sleep(0.5)?;
            log("sleeper");
            Ok(())
        });
        let b = runtime::spawn(spin("b", 6));
        runtime::call_later(Duration::ZERO, || log("main later0"))?;
        runtime::call_soon(|| log("main soon"))?;
        runtime::gather([a, s, b])?;
        log("done");
        Ok(())
    });
    assert_eq!(trace.len(), 27, "{trace:?}");
    same_as_cpython(&trace, FAST_PATH_MIX_PY);
}

/// A callback posted from another thread while two tasks hand the loop to
/// each other (every iteration could take the fast path) runs in the very
/// next iteration: the fast path must not skip what other threads posted.
#[test]
fn a_callback_posted_from_another_thread_runs_in_the_next_iteration_despite_the_fast_path() {
    let out = virtual_loop().run(|| {
        let iteration = Rc::new(Cell::new(0u32));
        let it = iteration.clone();
        let counter = runtime::spawn(move || {
            for _ in 0..200 {
                it.set(it.get() + 1);
                runtime::sleep(Duration::ZERO)?;
            }
            Ok(())
        });
        let other = runtime::spawn(|| {
            for _ in 0..200 {
                runtime::sleep(Duration::ZERO)?;
            }
            Ok(())
        });
        let mut lags = Vec::new();
        for _ in 0..10 {
            for _ in 0..7 {
                runtime::sleep(Duration::ZERO)?;
            }
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let handle = LoopHandle::current()?;
            let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let r = ran.clone();
            std::thread::spawn(move || {
                let posted = handle.call_soon_threadsafe(move || {
                    r.store(true, std::sync::atomic::Ordering::SeqCst);
                });
                assert!(posted);
                tx.send(()).expect("the task waits");
            });
            // Blocks the loop's thread until the post is in: it enters the
            // ready queue before this task's own step is queued again.
            rx.recv().expect("the poster ran");
            let posted_at = iteration.get();
            // Bounded: were posted calls never taken in while handles are
            // ready, the flag would never be set.
            for _ in 0..50 {
                if ran.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                runtime::sleep(Duration::ZERO)?;
            }
            lags.push(iteration.get() - posted_at);
        }
        counter.join()?;
        other.join()?;
        Ok(lags)
    });
    // The counter steps before this task in each iteration, and the
    // callback runs between the two in the next one: this task sees the
    // flag after one more of the counter's steps. CPython 3.11 prints
    // `[1, 1, 1, 1, 1, 1, 1, 1, 1, 1]` for the same program (threads,
    // `loop.call_soon_threadsafe`, `threading.Event` in place of the
    // channel).
    assert_eq!(out.expect("the run"), vec![1; 10]);
}

// A callback posted from another thread during a task's step, then a
// `call_soon` and a `sleep(0)` by the same task. CPython's
// `call_soon_threadsafe` appends to the ready queue at once, so the
// callback runs ahead of both in the next iteration; gencoro takes posted
// calls in at the start of the next iteration, behind everything scheduled
// in this one. (This predates the commits under review: the fast path
// keeps it as it was.)
const THREADSAFE_ORDER_PY: &str = r#"
from prelude import *
import threading

async def main():
    loop = asyncio.get_running_loop()
    async def a():
        for i in range(3):
            log(f"a {i}")
            if i == 1:
                th = threading.Thread(target=lambda: loop.call_soon_threadsafe(log, "remote"))
                th.start()
                th.join()
                loop.call_soon(log, "a soon")
            await asyncio.sleep(0)
    async def b():
        for i in range(3):
            log(f"b {i}")
            await asyncio.sleep(0)
    await asyncio.gather(asyncio.create_task(a()), asyncio.create_task(b()))

go(main)
"#;

#[test]
fn a_call_posted_from_another_thread_keeps_its_place_among_callbacks_scheduled_after_it() {
    let trace = go(|| {
        let a = runtime::spawn(|| {
            for i in 0..3 {
                log(format!("a {i}"));
                if i == 1 {
                    let handle = LoopHandle::current()?;
                    std::thread::spawn(move || handle.call_soon_threadsafe(|| log("remote")))
                        .join()
                        .expect("the poster");
                    runtime::call_soon(|| log("a soon"))?;
                }
                runtime::sleep(Duration::ZERO)?;
            }
            Ok(())
        });
        let b = runtime::spawn(|| {
            for i in 0..3 {
                log(format!("b {i}"));
                runtime::sleep(Duration::ZERO)?;
            }
            Ok(())
        });
        runtime::gather([a, b])?;
        Ok(())
    });
    assert_eq!(trace.len(), 10, "{trace:?}");
    same_as_cpython(&trace, THREADSAFE_ORDER_PY);
}

// ---------------------------------------------------------------------
// Schedule-driven runs (the explored path reads tokens the same way).

/// Under every explored schedule: a waiter on an event is cancelled twice
/// and the event is set, by three tasks racing in one iteration; its wait
/// ends once (with the cancellation if a cancel ran before its wake-up
/// step), and its next wait is never cancelled. The waiter's result is
/// over-aligned, so its token is read at the start of a record whose value
/// sits 4 KiB into the block.
#[test]
fn a_raced_cancellation_arrives_once_under_every_explored_schedule() {
    let scenario = || -> Result<(), String> {
        let ev = Rc::new(Event::new());
        let ends = Rc::new(RefCell::new(Vec::new()));
        let (e, en) = (ev.clone(), ends.clone());
        let waiter = runtime::spawn(move || {
            let first = e.wait();
            en.borrow_mut().push(first.map_err(|e| e.kind()));
            let second = runtime::sleep(Duration::from_secs(1));
            en.borrow_mut().push(second.map_err(|e| e.kind()));
            Ok(Align4096(7))
        });
        runtime::sleep(Duration::ZERO).map_err(|e| e.to_string())?;
        let w1 = waiter.clone();
        let c1 = runtime::spawn(move || Ok(w1.cancel()));
        let w2 = waiter.clone();
        let c2 = runtime::spawn(move || Ok(w2.cancel_with("second")));
        let e2 = ev.clone();
        let setter = runtime::spawn(move || {
            e2.set();
            Ok(())
        });
        for t in [&c1, &c2] {
            t.join().map_err(|e| e.to_string())?;
        }
        setter.join().map_err(|e| e.to_string())?;
        let v = waiter.join().map_err(|e| e.to_string())?;
        let ends = ends.borrow();
        if v != Align4096(7) {
            return Err(format!("value {v:?}"));
        }
        match ends.as_slice() {
            [Err(ErrorKind::Cancelled), Ok(())] => Ok(()),
            other => Err(format!("the waiter's waits ended {other:?}")),
        }
    };
    let checker = gencoro::testing::Checker::new().stack_size(TASK_STACK);
    match checker.check_exhaustive(3, scenario) {
        Err(f) => panic!("exhaustive: {} under {:?}", f.message(), f.schedule()),
        Ok(explored) => assert!(explored.schedules_run > 1, "nothing to explore"),
    }
}

// ---------------------------------------------------------------------
// Fragile: large results on the task's stack.

/// A task whose result is 100 KB, on a 512 KiB task stack, in a loop on a
/// thread with the test harness's 2 MiB: what a release build needs. Run in
/// a child process, since a stack overflow aborts.
#[test]
#[ignore = "design: a task's result travels over its own stack, copied several times in \
            debug builds; `spawn`'s docs say to box large results. In debug a 100 KB result \
            overflows a 512 KiB task stack and a 2 MiB thread; release builds pass"]
fn a_task_returning_a_100_kb_value_fits_the_stack_a_release_build_needs() {
    const NAME: &str = "a_task_returning_a_100_kb_value_fits_the_stack_a_release_build_needs";
    if is_child(NAME) {
        let out = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(|| {
                Builder::new().clock(Clock::virtual_time()).stack_size(512 << 10).run(|| {
                    let t = runtime::spawn(|| Ok(HugeInline([9; 100_000])));
                    Ok(t.join()?.0[99_999])
                })
            })
            .expect("a thread")
            .join()
            .expect("no panic");
        assert_eq!(out.expect("the run"), 9);
        return;
    }
    // `run_in_child` would not run an ignored test in the child.
    let out = std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args([NAME, "--exact", "--include-ignored", "--nocapture", "--test-threads=1"])
        .env("GENCORO_RUNTIME_TEST_CHILD", NAME)
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the child failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("1 passed"), "the child ran no test: {stdout}");
}
