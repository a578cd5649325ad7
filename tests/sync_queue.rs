//! `docs/semantics.md` section B10: queues, on the virtual clock.
//!
//! Each scenario was written in Python first and run with CPython 3.11; its
//! output is the expected trace. The program is
//! `tests/cpython/sync_queue/<test name>.py`, named in the comment above the
//! test, and `tests/cpython_programs.rs` runs it and checks that it prints
//! what the test asserts. Python's exceptions are rendered as the prelude's
//! `ex(e)` renders them: `QueueEmpty()`, `QueueFull()`, `QueueShutDown()`,
//! `ValueError(task_done() called too many times)`, `CancelledError()`.
//!
//! The shutdown tests (B10.4) follow Python 3.13, which is not installed:
//! their programs run on 3.11 with the 3.13 rules added by
//! `tests/cpython/sync_queue/shutdown_wakes_waiting_getters_with_queue_shut_down.py`
//! (on 3.13, the real `asyncio.Queue`). Each is marked `PYTHON 3.13` below.

mod common;

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use common::*;
use gencoro::runtime::{self, Builder, Clock, Error, ErrorKind, Task};
use gencoro::sync::{
    GetError, LifoQueue, PriorityQueue, PutError, Queue, QueueEmpty, QueueFull, QueueShutDown,
    TaskDoneError, TryGetError, TryPutError,
};

/// `ex(e)` of the exception Python raises for a failed `get`.
fn get_ex(e: &GetError) -> String {
    match e {
        GetError::ShutDown => "QueueShutDown()".to_owned(),
        GetError::Wait(e) => ex(e),
    }
}

/// `ex(e)` of the exception Python raises for a failed `put`.
fn put_ex<T>(e: &PutError<T>) -> String {
    match e {
        PutError::ShutDown(_) => "QueueShutDown()".to_owned(),
        PutError::Wait(_, e) => ex(e),
    }
}

/// `ex(e)` for `get_nowait`.
fn try_get_ex(e: &TryGetError) -> String {
    match e {
        TryGetError::Empty => "QueueEmpty()".to_owned(),
        TryGetError::ShutDown => "QueueShutDown()".to_owned(),
    }
}

/// `ex(e)` for `put_nowait`.
fn try_put_ex<T>(e: &TryPutError<T>) -> String {
    match e {
        TryPutError::Full(_) => "QueueFull()".to_owned(),
        TryPutError::ShutDown(_) => "QueueShutDown()".to_owned(),
    }
}

/// `ex(e)` for `task_done`: Python's `ValueError`.
fn task_done_ex(e: &TaskDoneError) -> String {
    format!("ValueError({e})")
}

// B10.1: put_nowait on a full queue and get_nowait on an empty one fail at
// once; the rejected value comes back. An unbounded queue is never full.
//
// Python: tests/cpython/sync_queue/nowait_calls_never_wait.py
#[test]
fn nowait_calls_never_wait() {
    let trace = go(|| {
        let q = Queue::bounded(2);
        log(format!(
            "maxsize={} qsize={} empty={} full={}",
            q.maxsize().unwrap_or(0),
            q.len(),
            q.is_empty().py(),
            q.is_full().py()
        ));
        if let Err(e) = q.try_get() {
            log(format!("get_nowait: {}", try_get_ex(&e)));
        }
        q.try_put("a")?;
        q.try_put("b")?;
        log(format!("qsize={} empty={} full={}", q.len(), q.is_empty().py(), q.is_full().py()));
        if let Err(e) = q.try_put("c") {
            log(format!("put_nowait c: {}", try_put_ex(&e)));
            assert_eq!(e.into_inner(), "c", "the rejected value comes back");
        }
        log(format!("get_nowait -> {}", q.try_get()?));
        log(format!("qsize={} full={}", q.len(), q.is_full().py()));
        let u = Queue::new();
        for i in 0..100 {
            u.try_put(i)?;
        }
        log(format!(
            "unbounded: maxsize={} qsize={} full={}",
            u.maxsize().unwrap_or(0),
            u.len(),
            u.is_full().py()
        ));
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "0.0 maxsize=2 qsize=0 empty=True full=False",
            "0.0 get_nowait: QueueEmpty()",
            "0.0 qsize=2 empty=False full=True",
            "0.0 put_nowait c: QueueFull()",
            "0.0 get_nowait -> a",
            "0.0 qsize=1 full=False",
            "0.0 unbounded: maxsize=0 qsize=100 full=False",
            "result None",
            "end 0.0",
        ]
    );
}

// B10.1: task_done more often than items were put is an error (Python's
// ValueError), and changes nothing.
//
// Python: tests/cpython/sync_queue/task_done_called_too_often_is_an_error.py
#[test]
fn task_done_called_too_often_is_an_error() {
    let trace = go(|| {
        let q = Queue::new();
        if let Err(e) = q.task_done() {
            log(format!("fresh queue: {}", task_done_ex(&e)));
        }
        q.try_put("a")?;
        log(format!("got {}", q.try_get()?));
        q.task_done()?;
        log("one task_done per item is fine");
        if let Err(e) = q.task_done() {
            log(format!("one more: {}", task_done_ex(&e)));
        }
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "0.0 fresh queue: ValueError(task_done() called too many times)",
            "0.0 got a",
            "0.0 one task_done per item is fine",
            "0.0 one more: ValueError(task_done() called too many times)",
            "result None",
            "end 0.0",
        ]
    );
}

// B10.1: join returns at once, without yielding to the loop, when no item
// is outstanding: the task created before it has not run yet.
//
// Python: tests/cpython/sync_queue/join_returns_at_once_when_nothing_is_outstanding.py
#[test]
fn join_returns_at_once_when_nothing_is_outstanding() {
    let trace = go(|| {
        let q = Queue::new();
        runtime::spawn(|| {
            log("other task runs");
            Ok(())
        });
        q.join()?;
        log("joined an empty queue");
        q.try_put("a")?;
        q.try_get()?;
        q.task_done()?;
        q.join()?;
        log("joined again, all done");
        sleep(0.0)
    });
    assert_eq!(
        trace,
        [
            "0.0 joined an empty queue",
            "0.0 joined again, all done",
            "0.0 other task runs",
            "result None",
            "end 0.0",
        ]
    );
}

fn worker(q: Queue<u64>, name: &'static str) -> Result<(), Error> {
    loop {
        let secs = q.get()?;
        log(format!("{name} takes {secs}"));
        sleep(secs as f64)?;
        log(format!("{name} done with {secs}"));
        q.task_done()?;
    }
}

// B10.1: join waits until task_done was called once per item put; every
// joiner is released, in the order it began to wait.
//
// Python: tests/cpython/sync_queue/join_waits_until_every_item_is_marked_done.py
#[test]
fn join_waits_until_every_item_is_marked_done() {
    let trace = go(|| {
        let q = Queue::new();
        for secs in [3, 1, 2] {
            q.try_put(secs)?;
        }
        let workers: Vec<Task<()>> = ["w1", "w2"]
            .into_iter()
            .map(|name| {
                let q = q.clone();
                runtime::spawn(move || worker(q, name))
            })
            .collect();
        let watcher = q.clone();
        runtime::spawn(move || {
            watcher.join()?;
            log("watcher: joined");
            Ok(())
        });
        q.join()?;
        log("main: joined");
        for w in &workers {
            w.cancel();
        }
        runtime::gather_outcomes(workers)?;
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "0.0 w1 takes 3",
            "0.0 w2 takes 1",
            "1.0 w2 done with 1",
            "1.0 w2 takes 2",
            "3.0 w1 done with 3",
            "3.0 w2 done with 2",
            "3.0 main: joined",
            "3.0 watcher: joined",
            "result None",
            "end 3.0",
        ]
    );
}

// B10.1: a joiner cancelled while it waits leaves; the other joiners are
// released when the last item is done.
//
// Python: tests/cpython/sync_queue/cancelled_joiner_leaves_the_other_joiners_waiting.py
#[test]
fn cancelled_joiner_leaves_the_other_joiners_waiting() {
    let trace = go(|| {
        let q = Queue::new();
        q.try_put("a")?;
        let joiner = |q: Queue<&'static str>, name: &'static str| {
            runtime::spawn(move || {
                q.join().inspect_err(|e| log(format!("{name} cancelled: {}", ex(e))))?;
                log(format!("{name} joined"));
                Ok(())
            })
        };
        let j1 = joiner(q.clone(), "j1");
        let j2 = joiner(q.clone(), "j2");
        sleep(1.0)?;
        j1.cancel();
        sleep(1.0)?;
        log(format!("main got {}", q.try_get()?));
        q.task_done()?;
        runtime::gather_outcomes([j1, j2])?;
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "1.0 j1 cancelled: CancelledError()",
            "2.0 main got a",
            "2.0 j2 joined",
            "result None",
            "end 2.0"
        ]
    );
}

fn producer(
    q: Queue<&'static str>,
    name: &'static str,
    items: [&'static str; 2],
) -> Result<(), Error> {
    for item in items {
        log(format!("{name} puts {item}"));
        q.put(item)?;
        log(format!("{name} put {item}"));
    }
    Ok(())
}

// B10.2: with maxsize=1, putters wait in line and each freed slot goes to
// the first of them; the consumer's gets alternate with their puts.
//
// Python: tests/cpython/sync_queue/bounded_queue_of_one_hands_off_in_turn.py
#[test]
fn bounded_queue_of_one_hands_off_in_turn() {
    let trace = go(|| {
        let q = Queue::bounded(1);
        let (q1, q2, qc) = (q.clone(), q.clone(), q.clone());
        let p1 = runtime::spawn(move || producer(q1, "p1", ["a1", "a2"]));
        let p2 = runtime::spawn(move || producer(q2, "p2", ["b1", "b2"]));
        let c = runtime::spawn(move || {
            for _ in 0..4 {
                sleep(1.0)?;
                log(format!("got {}", qc.get()?));
            }
            Ok(())
        });
        runtime::gather([p1, p2, c])?;
        log(format!("qsize={}", q.len()));
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "0.0 p1 puts a1",
            "0.0 p1 put a1",
            "0.0 p1 puts a2",
            "0.0 p2 puts b1",
            "1.0 got a1",
            "1.0 p1 put a2",
            "2.0 got a2",
            "2.0 p2 put b1",
            "2.0 p2 puts b2",
            "3.0 got b1",
            "3.0 p2 put b2",
            "4.0 got b2",
            "4.0 qsize=0",
            "result None",
            "end 4.0",
        ]
    );
}

fn getter<T: fmt::Display + 'static>(q: Queue<T>, name: &'static str) -> Task<()> {
    runtime::spawn(move || {
        log(format!("{name} waits"));
        log(format!("{name} got {}", q.get()?));
        Ok(())
    })
}

// B10.2: getters are woken first in, first out, one per item.
//
// Python: tests/cpython/sync_queue/waiting_getters_are_woken_in_the_order_they_came.py
#[test]
fn waiting_getters_are_woken_in_the_order_they_came() {
    let trace = go(|| {
        let q = Queue::new();
        let tasks: Vec<Task<()>> = ["g1", "g2", "g3"].map(|name| getter(q.clone(), name)).into();
        sleep(1.0)?;
        for item in ["x", "y", "z"] {
            q.try_put(item)?;
        }
        runtime::gather(tasks)?;
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "0.0 g1 waits",
            "0.0 g2 waits",
            "0.0 g3 waits",
            "1.0 g1 got x",
            "1.0 g2 got y",
            "1.0 g3 got z",
            "result None",
            "end 1.0",
        ]
    );
}

// B10.2: a wake-up is not a hand-off. g1 is woken for x, which main takes
// first; y then wakes g2, but g1 runs first and takes it, and g2 waits
// again until z.
//
// Python: tests/cpython/sync_queue/woken_getter_can_lose_the_item_to_a_task_that_runs_first.py
#[test]
fn woken_getter_can_lose_the_item_to_a_task_that_runs_first() {
    let trace = go(|| {
        let q = Queue::new();
        let quiet = |q: Queue<&'static str>, name: &'static str| {
            runtime::spawn(move || {
                log(format!("{name} got {}", q.get()?));
                Ok(())
            })
        };
        let g1 = quiet(q.clone(), "g1");
        let g2 = quiet(q.clone(), "g2");
        sleep(1.0)?;
        q.try_put("x")?;
        log(format!("main takes {}", q.try_get()?));
        q.try_put("y")?;
        sleep(1.0)?;
        log(format!(
            "qsize={} g1 done={} g2 done={}",
            q.len(),
            g1.is_done().py(),
            g2.is_done().py()
        ));
        q.try_put("z")?;
        g2.join()
    });
    assert_eq!(
        trace,
        [
            "1.0 main takes x",
            "1.0 g1 got y",
            "2.0 qsize=0 g1 done=True g2 done=False",
            "2.0 g2 got z",
            "result None",
            "end 2.0",
        ]
    );
}

fn cancellable_getter(q: Queue<&'static str>, name: &'static str) -> Task<()> {
    runtime::spawn(move || {
        let item = q.get().inspect_err(|e| log(format!("{name} cancelled: {}", get_ex(e))))?;
        log(format!("{name} got {item}"));
        Ok(())
    })
}

// B10.2: a getter woken for an item and cancelled in the same iteration
// takes nothing and passes the wake-up to the next getter, which gets the
// item (CPython's test_get_cancelled_race).
//
// Python: tests/cpython/sync_queue/cancelled_getter_passes_its_wake_up_on.py
#[test]
fn cancelled_getter_passes_its_wake_up_on() {
    let trace = go(|| {
        let q = Queue::new();
        let g1 = cancellable_getter(q.clone(), "g1");
        let g2 = cancellable_getter(q.clone(), "g2");
        sleep(1.0)?;
        q.try_put("x")?;
        g1.cancel();
        runtime::gather_outcomes([g1.clone(), g2])?;
        log(format!("qsize={} g1 cancelled={}", q.len(), g1.is_cancelled().py()));
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "1.0 g1 cancelled: CancelledError()",
            "1.0 g2 got x",
            "1.0 qsize=0 g1 cancelled=True",
            "result None",
            "end 1.0",
        ]
    );
}

// B10.2: a getter cancelled before any item came leaves the line; the
// items go to the getters behind it, in order.
//
// Python: tests/cpython/sync_queue/cancelled_getter_that_was_not_woken_steals_nothing.py
#[test]
fn cancelled_getter_that_was_not_woken_steals_nothing() {
    let trace = go(|| {
        let q = Queue::new();
        let g1 = cancellable_getter(q.clone(), "g1");
        let g2 = cancellable_getter(q.clone(), "g2");
        let g3 = cancellable_getter(q.clone(), "g3");
        sleep(1.0)?;
        g1.cancel();
        sleep(1.0)?;
        q.try_put("x")?;
        q.try_put("y")?;
        runtime::gather_outcomes([g1, g2, g3])?;
        log(format!("qsize={}", q.len()));
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "1.0 g1 cancelled: CancelledError()",
            "2.0 g2 got x",
            "2.0 g3 got y",
            "2.0 qsize=0",
            "result None",
            "end 2.0",
        ]
    );
}

// B10.2: the item a cancelled getter was woken for never left the queue: it
// is still at the front, ahead of items put after it.
//
// Python: tests/cpython/sync_queue/item_announced_to_a_cancelled_getter_stays_at_the_front.py
#[test]
fn item_announced_to_a_cancelled_getter_stays_at_the_front() {
    let trace = go(|| {
        let q = Queue::new();
        let qg = q.clone();
        let g = runtime::spawn(move || {
            let got = qg.get();
            if let Err(e) = &got {
                log(format!("getter cancelled: {}, qsize={}", get_ex(e), qg.len()));
            }
            got.map(drop).map_err(Error::from)
        });
        sleep(1.0)?;
        q.try_put("x")?;
        g.cancel();
        q.try_put("y")?;
        runtime::gather_outcomes([g])?;
        let (a, b) = (q.try_get()?, q.try_get()?);
        log(format!("then {a}, {b}"));
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "1.0 getter cancelled: CancelledError(), qsize=2",
            "1.0 then x, y",
            "result None",
            "end 1.0",
        ]
    );
}

// B10.2: a putter promised a free slot and cancelled in the same iteration
// puts nothing, gets its item back, and passes the slot to the next putter
// (CPython's test_put_cancelled_race).
//
// Python: tests/cpython/sync_queue/cancelled_putter_passes_its_free_slot_on.py
#[test]
fn cancelled_putter_passes_its_free_slot_on() {
    let trace = go(|| {
        let q = Queue::bounded(1);
        q.try_put("a")?;
        let putter = |q: Queue<&'static str>, name: &'static str, item: &'static str| {
            runtime::spawn(move || {
                match q.put(item) {
                    Ok(()) => log(format!("{name} put {item}")),
                    Err(PutError::Wait(back, e)) => {
                        log(format!("{name} cancelled: {}, still holds {back}", ex(&e)));
                        return Err(e);
                    }
                    Err(e) => return Err(e.into()),
                }
                Ok(())
            })
        };
        let p1 = putter(q.clone(), "p1", "b");
        let p2 = putter(q.clone(), "p2", "c");
        sleep(1.0)?;
        log(format!("main takes {}", q.try_get()?));
        p1.cancel();
        runtime::gather_outcomes([p1, p2])?;
        log(format!("qsize={} next={}", q.len(), q.try_get()?));
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "1.0 main takes a",
            "1.0 p1 cancelled: CancelledError(), still holds b",
            "1.0 p2 put c",
            "1.0 qsize=1 next=c",
            "result None",
            "end 1.0",
        ]
    );
}

// B10.2: a get from a full queue wakes the waiting putter; the next get
// waits for that put (CPython's test_get_with_waiting_putters).
//
// Python: tests/cpython/sync_queue/get_with_waiting_putters.py
#[test]
fn get_with_waiting_putters() {
    let trace = go(|| {
        let q = Queue::bounded(1);
        q.try_put("a")?;
        let qp = q.clone();
        let p = runtime::spawn(move || {
            log("putter puts b");
            qp.put("b")?;
            log("putter put b");
            Ok(())
        });
        sleep(0.0)?;
        log(format!("main got {}", q.get()?));
        log(format!("main got {}", q.get()?));
        p.join()?;
        log(format!("qsize={}", q.len()));
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "0.0 putter puts b",
            "0.0 main got a",
            "0.0 putter put b",
            "0.0 main got b",
            "0.0 qsize=0",
            "result None",
            "end 0.0",
        ]
    );
}

// B10.3: a LifoQueue is a stack, for waiting getters too.
//
// Python: tests/cpython/sync_queue/lifo_queue_hands_out_the_newest_first.py
#[test]
fn lifo_queue_hands_out_the_newest_first() {
    let trace = go(|| {
        let q = LifoQueue::new();
        for item in [1, 2, 3, 4] {
            q.try_put(item)?;
        }
        let first: Vec<i32> = (0..3).map(|_| q.try_get()).collect::<Result<_, _>>()?;
        log(format!("got {}", first.py()));
        q.try_put(5)?;
        let (a, b) = (q.try_get()?, q.try_get()?);
        log(format!("got {a} then {b}"));
        let qg = q.clone();
        let g = runtime::spawn(move || {
            log(format!("getter got {}", qg.get()?));
            Ok(())
        });
        sleep(1.0)?;
        q.try_put(6)?;
        q.try_put(7)?;
        g.join()?;
        log(format!("left {}", q.try_get()?));
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "0.0 got [4, 3, 2]",
            "0.0 got 5 then 1",
            "1.0 getter got 7",
            "1.0 left 6",
            "result None",
            "end 1.0",
        ]
    );
}

/// A job ordered by its priority alone: jobs of equal priority compare
/// equal, so only the queue's insertion order tells them apart.
#[derive(Debug)]
struct Job {
    priority: u32,
    name: &'static str,
}

impl PartialEq for Job {
    fn eq(&self, other: &Self) -> bool {
        self.priority == other.priority
    }
}

impl Eq for Job {}

impl PartialOrd for Job {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Job {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.priority.cmp(&other.priority)
    }
}

// B10.3: a PriorityQueue hands out the smallest item first; equal items
// leave in the order they were put (the Python program adds the counter
// that heapq needs for that).
//
// Python: tests/cpython/sync_queue/priority_queue_hands_out_the_smallest_first_and_equals_in_insertion_order.py
#[test]
fn priority_queue_hands_out_the_smallest_first_and_equals_in_insertion_order() {
    let trace = go(|| {
        let q = PriorityQueue::new();
        let jobs = [(3, "c1"), (1, "a1"), (2, "b1"), (1, "a2"), (3, "c2"), (1, "a3"), (2, "b2")];
        for (priority, name) in jobs {
            q.try_put(Job { priority, name })?;
        }
        let mut order = Vec::new();
        while let Ok(job) = q.try_get() {
            order.push(format!("{}:{}", job.priority, job.name));
        }
        log(order.join(" "));
        Ok(())
    });
    assert_eq!(trace, ["0.0 1:a1 1:a2 1:a3 2:b1 2:b2 3:c1 3:c2", "result None", "end 0.0"]);
}

// PYTHON 3.13 (B10.4): shutdown wakes every waiting getter with
// QueueShutDown; later puts and gets, waiting or not, fail with it too.
//
// Python: tests/cpython/sync_queue/shutdown_wakes_waiting_getters_with_queue_shut_down.py
#[test]
fn shutdown_wakes_waiting_getters_with_queue_shut_down() {
    let trace = go(|| {
        let q: Queue<&'static str> = Queue::new();
        let getters: Vec<Task<()>> = ["g1", "g2"]
            .map(|name| {
                let q = q.clone();
                runtime::spawn(move || {
                    log(format!("{name} waits"));
                    match q.get() {
                        Err(e) if e.is_shut_down() => log(format!("{name}: {}", get_ex(&e))),
                        other => log(format!("{name}: unexpected {other:?}")),
                    }
                    Ok(())
                })
            })
            .into();
        sleep(1.0)?;
        q.shutdown(false);
        log("shut down");
        runtime::gather(getters)?;
        if let Err(e) = q.try_put("x") {
            log(format!("put_nowait: {}", try_put_ex(&e)));
        }
        if let Err(e) = q.try_get() {
            log(format!("get_nowait: {}", try_get_ex(&e)));
        }
        if let Err(e) = q.put("y") {
            log(format!("put: {}, qsize={}", put_ex(&e), q.len()));
        }
        if let Err(e) = q.get() {
            log(format!("get: {}", get_ex(&e)));
            let as_error: Error = e.into();
            assert!(as_error.downcast_ref::<QueueShutDown>().is_some());
        }
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "0.0 g1 waits",
            "0.0 g2 waits",
            "1.0 shut down",
            "1.0 g1: QueueShutDown()",
            "1.0 g2: QueueShutDown()",
            "1.0 put_nowait: QueueShutDown()",
            "1.0 get_nowait: QueueShutDown()",
            "1.0 put: QueueShutDown(), qsize=0",
            "1.0 get: QueueShutDown()",
            "result None",
            "end 1.0",
        ]
    );
}

// PYTHON 3.13 (B10.4): after a shutdown without `immediate`, a waiting
// putter fails and keeps its item, while a getter still drains the items
// left (and join sees them done) before it fails.
//
// Python: tests/cpython/sync_queue/getters_drain_the_items_left_after_shutdown.py
#[test]
fn getters_drain_the_items_left_after_shutdown() {
    let trace = go(|| {
        let q = Queue::bounded(2);
        q.try_put("a")?;
        q.try_put("b")?;
        let qp = q.clone();
        let p = runtime::spawn(move || {
            if let Err(e) = qp.put("c") {
                let what = put_ex(&e);
                log(format!("putter: {what}, still holds {}", e.into_inner()));
            }
            Ok(())
        });
        sleep(1.0)?;
        q.shutdown(false);
        log(format!("shut down with qsize={}", q.len()));
        p.join()?;
        let qc = q.clone();
        let c = runtime::spawn(move || -> Result<(), Error> {
            loop {
                let item = match qc.get() {
                    Ok(item) => item,
                    Err(e) => {
                        log(format!("consumer: {}", get_ex(&e)));
                        return Ok(());
                    }
                };
                log(format!("consumer got {item}"));
                qc.task_done()?;
                sleep(1.0)?;
            }
        });
        q.join()?;
        log("joined");
        c.join()
    });
    assert_eq!(
        trace,
        [
            "1.0 shut down with qsize=2",
            "1.0 putter: QueueShutDown(), still holds c",
            "1.0 consumer got a",
            "2.0 consumer got b",
            "2.0 joined",
            "3.0 consumer: QueueShutDown()",
            "result None",
            "end 3.0",
        ]
    );
}

// PYTHON 3.13 (B10.4): shutdown(immediate) drops the items left, each
// counted as done, and reports how many; join still waits for the item
// taken before, until its task_done. Every dropped item is dropped once,
// at the shutdown.
//
// Python: tests/cpython/sync_queue/immediate_shutdown_drops_the_items_and_releases_join.py
#[test]
fn immediate_shutdown_drops_the_items_and_releases_join() {
    let drops = Drops::default();
    let d = drops.clone();
    let trace = go(move || {
        let q = Queue::new();
        for name in ["a", "b", "c"] {
            q.try_put((name, d.sentinel(name)))?;
        }
        let (first, _sentinel) = q.try_get()?;
        log(format!("main got {first}"));
        let qj = q.clone();
        let j = runtime::spawn(move || {
            qj.join()?;
            log("joiner: joined");
            Ok(())
        });
        sleep(1.0)?;
        let dropped = q.shutdown(true);
        assert_eq!(d.all(), ["b", "c"], "the items left are dropped at the shutdown");
        log(format!("dropped {dropped}, qsize={}", q.len()));
        if let Err(e) = q.get() {
            log(format!("get: {}", get_ex(&e)));
        }
        sleep(1.0)?;
        log(format!("joiner done={}", j.is_done().py()));
        q.task_done()?;
        j.join()
    });
    assert_eq!(drops.all(), ["b", "c", "a"], "each item is dropped once");
    assert_eq!(
        trace,
        [
            "0.0 main got a",
            "1.0 dropped 2, qsize=0",
            "1.0 get: QueueShutDown()",
            "2.0 joiner done=False",
            "2.0 joiner: joined",
            "result None",
            "end 2.0",
        ]
    );
}

// ---------------------------------------------------------------------------
// Rust-only behaviour: no Python program, since Python has no counterpart.
// ---------------------------------------------------------------------------

// A wait outside a task is refused at once, hands the value back, and
// leaves no waiter in the line, whether no loop runs or the caller is a
// callback of a running loop.
#[test]
fn waits_outside_a_task_are_refused_and_leave_no_waiter() {
    let q = Queue::bounded(1);
    q.try_put("a").unwrap();
    match q.put("b") {
        Err(PutError::Wait(back, e)) => {
            assert_eq!(back, "b");
            assert_eq!(e.kind(), ErrorKind::NoRunningLoop);
        }
        other => panic!("put outside a loop: {other:?}"),
    }
    assert_eq!(q.join().map_err(|e| e.kind()), Err(ErrorKind::NoRunningLoop));
    let empty: Queue<u32> = Queue::new();
    assert!(matches!(empty.get(), Err(GetError::Wait(e)) if e.kind() == ErrorKind::NoRunningLoop));

    let seen = Rc::new(RefCell::new(Vec::new()));
    let (q2, seen2) = (empty.clone(), seen.clone());
    let got = Builder::new()
        .clock(Clock::virtual_time())
        .run(move || {
            let q3 = q2.clone();
            runtime::call_soon(move || {
                let refused = q3.get();
                seen2.borrow_mut().push(format!("{refused:?} {q3:?}"));
            })?;
            let getter = {
                let q = q2.clone();
                runtime::spawn(move || Ok(q.get()?))
            };
            sleep(1.0)?;
            q2.try_put(7)?;
            getter.join()
        })
        .unwrap();
    assert_eq!(got, 7, "the refused wait took no wake-up");
    let seen = seen.borrow();
    assert!(seen[0].starts_with("Err(Wait(Error { kind: "), "{seen:?}");
    assert!(seen[0].ends_with("getters: 0, putters: 0, unfinished_tasks: 0, shut_down: false }"));
}

// A task still waiting when its loop is dropped is unwound; its waiter
// leaves the line, and the queue works on.
#[test]
fn a_waiter_unwound_with_its_loop_leaves_the_line() {
    let q: Queue<u32> = Queue::new();
    let event_loop = Builder::new().clock(Clock::virtual_time()).build();
    let qg = q.clone();
    event_loop
        .run_until_complete(move || {
            runtime::spawn(move || Ok(qg.get()?));
            sleep(0.0)
        })
        .unwrap();
    assert!(format!("{q:?}").contains("getters: 1"), "{q:?}");
    drop(event_loop);
    assert!(format!("{q:?}").contains("getters: 0"), "{q:?}");
    q.try_put(1).unwrap();
    assert_eq!(q.try_get(), Ok(1));
}

/// An item that may use its own queue when it is dropped.
struct Item {
    _reentrant: Option<Reentrant>,
}

struct Reentrant {
    queue: Queue<Item>,
    seen: Rc<RefCell<Vec<String>>>,
}

impl Drop for Reentrant {
    fn drop(&mut self) {
        let put = self.queue.try_put(Item { _reentrant: None }).map_err(|e| e.to_string());
        let got = self.queue.try_get().map(|_| ()).map_err(|e| e.to_string());
        let line = format!(
            "len={} shut={} put={put:?} get={got:?}",
            self.queue.len(),
            self.queue.is_shut_down()
        );
        self.seen.borrow_mut().push(line);
    }
}

// Items dropped by shutdown(immediate) are dropped after the queue has let
// go of its state: their destructors may use the queue.
#[test]
fn items_dropped_by_shutdown_may_use_their_queue() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let q: Queue<Item> = Queue::new();
    for _ in 0..2 {
        let item = Item { _reentrant: Some(Reentrant { queue: q.clone(), seen: seen.clone() }) };
        assert!(q.try_put(item).is_ok());
    }
    assert!(q.try_put(Item { _reentrant: None }).is_ok());
    assert_eq!(q.shutdown(true), 3);
    let line =
        r#"len=0 shut=true put=Err("the queue is shut down") get=Err("the queue is shut down")"#;
    assert_eq!(*seen.borrow(), [line, line]);
}

// The errors convert for `?` in a task: a cancellation stays a
// cancellation, a shut-down queue carries `QueueShutDown`, a full or empty
// queue `QueueFull` / `QueueEmpty`, and task_done's error `TaskDoneError`.
#[test]
fn queue_errors_convert_to_runtime_errors() {
    let q = Queue::bounded(1);
    let full: Error = q.try_put(1).and_then(|()| q.try_put(2)).unwrap_err().into();
    assert!(full.downcast_ref::<QueueFull>().is_some());
    assert_eq!(full.to_string(), "the queue is full");
    q.try_get().unwrap();
    let empty: Error = q.try_get().unwrap_err().into();
    assert!(empty.downcast_ref::<QueueEmpty>().is_some());
    let too_often: Error = q.task_done().and_then(|()| q.task_done()).unwrap_err().into();
    assert!(too_often.downcast_ref::<TaskDoneError>().is_some());
    q.shutdown(false);
    let shut: Error = q.put(3).unwrap_err().into();
    assert!(shut.downcast_ref::<QueueShutDown>().is_some());
    let cancelled: Error = GetError::Wait(Error::cancelled(Some("bye"))).into();
    assert!(cancelled.is_cancelled());
    assert_eq!(cancelled.message(), "bye");
    let put_cancelled = PutError::Wait(5, Error::cancelled(None));
    assert!(put_cancelled.is_cancelled() && !put_cancelled.is_shut_down());
    assert_eq!(put_cancelled.into_inner(), 5);
}

// Debug shows the state without the items, under Python's class names.
#[test]
fn debug_shows_the_state_and_the_order() {
    let q = Queue::bounded(3);
    q.try_put("a").unwrap();
    assert_eq!(
        format!("{q:?}"),
        "Queue { maxsize: 3, len: 1, getters: 0, putters: 0, unfinished_tasks: 1, shut_down: false }"
    );
    let l: LifoQueue<u8> = LifoQueue::new();
    assert!(format!("{l:?}").starts_with("LifoQueue { maxsize: 0,"));
    let p: PriorityQueue<u8> = PriorityQueue::new();
    p.shutdown(false);
    assert!(format!("{p:?}").ends_with("shut_down: true }"));
    assert_eq!(format!("{:?}", TryPutError::Full("secret")), "Full(..)");
}

#[test]
#[should_panic(expected = "a bounded queue holds at least one item")]
fn bounded_to_zero_items_panics() {
    let _ = Queue::<u8>::bounded(0);
}
