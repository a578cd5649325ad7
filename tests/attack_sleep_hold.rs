//! A hostile review of who keeps a sleeping task alive: the sleep's timer
//! holds the task weakly, and the sleeping task's own waiter holds it
//! strongly (a deliberate self-reference), released when the task's next
//! step runs, when it completes, or when a torn-down loop abandons it.
//!
//! Every test counts drops (`Counted`, whose `Drop` increments a shared
//! counter and asserts it runs once) to check that each capture and result
//! is dropped exactly once and at the right time: a leak leaves a count
//! short, a task freed too early never reaches its end. Everything runs on
//! the virtual clock. Scenarios with a CPython 3.11 counterpart whose order
//! of events matters carry the Python program and compare traces.

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
use gencoro::runtime::{self, Builder, Clock, Error, ErrorKind, EventLoop, Task};
use inline_python::same_as_cpython;

// ---------------------------------------------------------------------
// Helpers.

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn virtual_builder() -> Builder {
    Builder::new().clock(Clock::virtual_time())
}

/// A loop-side exception handler that counts "Task was destroyed but it is
/// pending!" reports.
fn counting_pending_reports(b: Builder) -> (Builder, Rc<Cell<usize>>) {
    let n = Rc::new(Cell::new(0));
    let m = n.clone();
    let b = b.exception_handler(move |cx| {
        if cx.message() == "Task was destroyed but it is pending!" {
            m.set(m.get() + 1);
        }
    });
    (b, n)
}

// ---------------------------------------------------------------------
// Detached sleepers: every handle dropped, the task must still wake.

#[test]
fn detached_sleepers_wake_run_to_the_end_and_drop_captures_and_results() {
    const N: usize = 60;
    let captures = Counter::default();
    let results = Counter::default();
    let finished = Rc::new(Cell::new(0usize));
    let (c, r, f) = (captures.clone(), results.clone(), finished.clone());
    let (out, end) = {
        let clock = Clock::virtual_time();
        let out = Builder::new().clock(clock.clone()).run(move || {
            for i in 0..N {
                let cap = c.token();
                let res = r.token();
                let f = f.clone();
                // Several shapes: one sleep, a few, a loop of many.
                let sleeps = [1, 3, 50][i % 3];
                drop(runtime::spawn(move || {
                    for k in 0..sleeps {
                        runtime::sleep(ms(1 + (i as u64 + k) % 7))?;
                    }
                    let _hold = cap;
                    f.set(f.get() + 1);
                    Ok(res)
                }));
            }
            // The handles are gone before any task ran.
            runtime::sleep(s(1))?;
            let seen = (f.get(), c.get(), r.get());
            Ok(seen)
        });
        (out, clock.now())
    };
    assert_eq!(out.unwrap(), (N, N, N), "finished, captures dropped, results dropped by 1 s");
    assert_eq!(end, s(1));
    assert_eq!((finished.get(), captures.get(), results.get()), (N, N, N));
}

#[test]
fn sleepers_whose_handles_are_dropped_mid_sleep_still_wake() {
    let captures = Counter::default();
    let woke: Rc<RefCell<Vec<(usize, Duration)>>> = Rc::default();
    let (c, w) = (captures.clone(), woke.clone());
    let r = virtual_builder().run(move || {
        let tasks: Vec<Task<()>> = (0..10)
            .map(|i| {
                let cap = c.token();
                let w = w.clone();
                runtime::spawn(move || {
                    runtime::sleep(ms(10 * (i as u64 + 1)))?;
                    w.borrow_mut().push((i, runtime::time()?));
                    runtime::sleep(ms(5))?;
                    drop(cap);
                    Ok(())
                })
            })
            .collect();
        // Every task is asleep now; drop the handles in the middle of it.
        runtime::sleep(ms(1))?;
        drop(tasks);
        if c.get() != 0 {
            return Err(Error::new("a sleeping task was freed early".to_owned()));
        }
        runtime::sleep(ms(200))?;
        Ok(c.get())
    });
    assert_eq!(r.unwrap(), 10);
    let expected: Vec<(usize, Duration)> = (0..10).map(|i| (i, ms(10 * (i as u64 + 1)))).collect();
    assert_eq!(*woke.borrow(), expected);
}

#[test]
fn detached_eternal_sleepers_do_not_keep_run_going_and_are_dropped_once() {
    const N: usize = 25;
    let captures = Counter::default();
    let results = Counter::default();
    let (c, r) = (captures.clone(), results.clone());
    let clock = Clock::virtual_time();
    let out = Builder::new().clock(clock.clone()).run(move || {
        for i in 0..N {
            let cap = c.token();
            let res = r.token();
            drop(runtime::spawn(move || {
                let _hold = cap;
                match runtime::sleep(Duration::MAX) {
                    // Half of them catch the shutdown's cancellation and
                    // return a result, which is dropped with the record.
                    Err(e) if e.is_cancelled() && i % 2 == 0 => Ok(res),
                    Err(e) => Err(e),
                    Ok(()) => unreachable!("Duration::MAX never passes"),
                }
            }));
        }
        runtime::sleep(s(3))?;
        Ok(c.get())
    });
    assert_eq!(out.unwrap(), 0, "nothing dropped while they sleep");
    assert_eq!(clock.now(), s(3));
    assert_eq!(captures.get(), N);
    assert_eq!(results.get(), N, "the results of the catchers and the unreturned ones");
}

fn spawn_eternal_sleepers(c: &Counter, n: usize) {
    for _ in 0..n {
        let cap = c.token();
        drop(runtime::spawn(move || {
            let _hold = cap;
            runtime::sleep(Duration::MAX)
        }));
    }
}

#[test]
fn detached_sleepers_are_dropped_once_when_main_fails() {
    let captures = Counter::default();
    let c = captures.clone();
    let out: Result<(), Error> = virtual_builder().run(move || {
        spawn_eternal_sleepers(&c, 7);
        runtime::sleep(s(1))?;
        Err(boom("main fails"))
    });
    let e = out.unwrap_err();
    assert_eq!(ex(&e), "Boom(main fails)");
    assert_eq!(captures.get(), 7);
}

#[test]
fn detached_sleepers_are_dropped_once_when_main_panics() {
    let captures = Counter::default();
    let c = captures.clone();
    let out: Result<(), Error> = virtual_builder().run(move || {
        spawn_eternal_sleepers(&c, 7);
        runtime::sleep(s(1))?;
        panic!("main panics");
    });
    let e = out.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Panicked, "{e}");
    assert_eq!(captures.get(), 7);
}

// ---------------------------------------------------------------------
// EventLoop: tasks kept between runs, then the loop goes away.

#[test]
fn event_loop_keeps_detached_sleepers_between_runs_and_its_drop_abandons_them_once() {
    let captures = Counter::default();
    let body_locals = Counter::default();
    let woke = Rc::new(Cell::new(0usize));
    let (b, reports) = counting_pending_reports(virtual_builder());
    let event_loop = b.build();
    let (c, l, w) = (captures.clone(), body_locals.clone(), woke.clone());
    event_loop
        .run_until_complete(move || {
            for i in 0..12u64 {
                let cap = c.token();
                let l = l.clone();
                let w = w.clone();
                drop(runtime::spawn(move || {
                    let _hold = cap;
                    // A value that only the body's stack holds.
                    let _local = l.token();
                    runtime::sleep(s(2 + 10 * (i % 2)))?;
                    w.set(w.get() + 1);
                    runtime::sleep(Duration::MAX)
                }));
            }
            runtime::sleep(s(1))
        })
        .unwrap();
    assert_eq!((captures.get(), body_locals.get(), woke.get()), (0, 0, 0));
    assert_eq!(event_loop.all_tasks().len(), 12, "the sleepers are pending");
    // The next run wakes the short sleepers (at 2 s) but not the long ones.
    event_loop.run_until_complete(|| runtime::sleep(s(4))).unwrap();
    assert_eq!(event_loop.clock().now(), s(5));
    assert_eq!((captures.get(), woke.get()), (0, 6));
    assert_eq!(event_loop.all_tasks().len(), 12);
    drop(event_loop);
    assert_eq!((captures.get(), body_locals.get()), (12, 12));
    assert_eq!(reports.get(), 12);
}

#[test]
fn event_loop_closed_with_sleepers_drops_them_once_and_its_drop_does_nothing_more() {
    let captures = Counter::default();
    let event_loop = virtual_builder().build();
    let c = captures.clone();
    event_loop
        .run_until_complete(move || {
            spawn_eternal_sleepers(&c, 5);
            Ok(())
        })
        .unwrap();
    // The spawned tasks have not run yet: one more run puts them to sleep.
    event_loop.run_until_complete(|| runtime::sleep(ms(1))).unwrap();
    assert_eq!(captures.get(), 0);
    event_loop.close().unwrap();
    assert_eq!(captures.get(), 5);
    assert!(event_loop.is_closed());
    drop(event_loop);
    assert_eq!(captures.get(), 5);
}

#[test]
fn event_loop_dropped_without_running_again_drops_unstarted_and_sleeping_tasks() {
    let captures = Counter::default();
    let event_loop = virtual_builder().build();
    let c = captures.clone();
    event_loop
        .run_until_complete(move || {
            spawn_eternal_sleepers(&c, 3);
            runtime::sleep(ms(1))
        })
        .unwrap();
    // Never started: spawned on the loop from outside.
    for _ in 0..3 {
        let cap = captures.token();
        drop(event_loop.spawn(move || {
            let _hold = cap;
            runtime::sleep(s(1))
        }));
    }
    assert_eq!(captures.get(), 0);
    drop(event_loop);
    assert_eq!(captures.get(), 6);
}

#[test]
fn run_forever_stopped_while_detached_tasks_sleep_keeps_them_until_close() {
    let captures = Counter::default();
    let event_loop = virtual_builder().build();
    let c = captures.clone();
    event_loop
        .spawn(move || {
            spawn_eternal_sleepers(&c, 4);
            for _ in 0..4 {
                let cap = c.token();
                drop(runtime::spawn(move || {
                    runtime::sleep(s(1))?;
                    drop(cap);
                    Ok(())
                }));
            }
            runtime::sleep(s(2))?;
            EventLoop::running()?.stop();
            Ok(())
        })
        .unwrap();
    event_loop.run_forever().unwrap();
    assert_eq!(event_loop.clock().now(), s(2));
    assert_eq!(captures.get(), 4, "the 1 s sleepers finished, the eternal ones sleep");
    // Run again: still asleep, not freed early.
    event_loop.run_until_complete(|| runtime::sleep(s(100))).unwrap();
    assert_eq!(captures.get(), 4);
    drop(event_loop);
    assert_eq!(captures.get(), 8);
}

#[test]
fn loop_dropped_from_inside_its_own_run_abandons_detached_sleepers_once_after_the_run() {
    let captures = Counter::default();
    let owner: Rc<RefCell<Option<EventLoop>>> =
        Rc::new(RefCell::new(Some(virtual_builder().build())));
    // A handle that does not own the loop, to run it with.
    let handle = owner.borrow().as_ref().unwrap().run_until_complete(EventLoop::running).unwrap();
    let c = captures.clone();
    let o = owner.clone();
    let out = handle.run_until_complete(move || {
        spawn_eternal_sleepers(&c, 3);
        runtime::sleep(ms(1))?;
        // The owner goes while its loop runs: the run tears it down when
        // it ends, not now.
        drop(o.borrow_mut().take());
        let after_drop = c.get();
        runtime::sleep(ms(1))?;
        Ok((after_drop, c.get()))
    });
    assert_eq!(out.unwrap(), (0, 0), "the sleepers live until the run ends");
    assert!(handle.is_closed());
    assert_eq!(captures.get(), 3);
    drop(handle);
    assert_eq!(captures.get(), 3);
}

#[test]
fn a_loop_on_a_thread_that_exits_drops_its_detached_sleepers() {
    let captures = Counter::default();
    let c = captures.clone();
    std::thread::spawn(move || {
        let event_loop = virtual_builder().build();
        let c2 = c.clone();
        event_loop
            .run_until_complete(move || {
                spawn_eternal_sleepers(&c2, 20);
                runtime::sleep(ms(1))
            })
            .unwrap();
        assert_eq!(c.get(), 0);
        // Dropped as the thread's closure ends.
    })
    .join()
    .unwrap();
    assert_eq!(captures.get(), 20);
}

thread_local! {
    static PARKED_LOOP: RefCell<Option<EventLoop>> = const { RefCell::new(None) };
}

#[test]
fn a_loop_kept_in_a_thread_local_is_torn_down_at_thread_exit_dropping_its_sleepers_once() {
    let captures = Counter::default();
    let c = captures.clone();
    std::thread::spawn(move || {
        let event_loop = virtual_builder().build();
        let c2 = c.clone();
        event_loop
            .run_until_complete(move || {
                spawn_eternal_sleepers(&c2, 20);
                runtime::sleep(ms(1))
            })
            .unwrap();
        PARKED_LOOP.with(|p| *p.borrow_mut() = Some(event_loop));
    })
    .join()
    .unwrap();
    assert_eq!(captures.get(), 20);
}

#[test]
fn a_loop_with_sleepers_dropped_inside_a_task_of_another_loop_abandons_them_once() {
    let captures = Counter::default();
    let inner = virtual_builder().build();
    let c = captures.clone();
    inner
        .run_until_complete(move || {
            spawn_eternal_sleepers(&c, 4);
            runtime::sleep(ms(1))
        })
        .unwrap();
    let c = captures.clone();
    let out = virtual_builder().run(move || {
        // Running it from inside another loop's task is refused.
        let refused = inner.run_until_complete(|| Ok(())).unwrap_err();
        if refused.kind() != ErrorKind::NestedRun {
            return Err(refused);
        }
        let before = c.get();
        drop(inner);
        runtime::sleep(ms(1))?;
        Ok((before, c.get()))
    });
    assert_eq!(out.unwrap(), (0, 4));
    assert_eq!(captures.get(), 4);
}

/// Tries to sleep and to spawn in its destructor, which runs while a
/// torn-down loop abandons the task that holds it.
struct Meddler {
    counter: Counter,
    outcomes: Rc<RefCell<Vec<String>>>,
}

impl Drop for Meddler {
    fn drop(&mut self) {
        let slept = runtime::sleep(s(1));
        let c = self.counter.clone();
        let spawned = runtime::TaskBuilder::new().spawn(move || {
            let _x = c.token();
            Ok(())
        });
        let spawn_on_loop = EventLoop::running().map(|_| ());
        self.outcomes.borrow_mut().push(format!(
            "sleep {:?}, spawn {:?}, running {:?}",
            slept.map_err(|e| e.kind()),
            spawned.map(|_| ()).map_err(|e| e.kind()),
            spawn_on_loop.map_err(|e| e.kind())
        ));
        self.counter.count_one();
    }
}

#[test]
fn teardown_destructors_that_sleep_or_spawn_are_refused_and_everything_drops_once() {
    let counter = Counter::default();
    let outcomes: Rc<RefCell<Vec<String>>> = Rc::default();
    let event_loop = virtual_builder().build();
    let (c, o) = (counter.clone(), outcomes.clone());
    event_loop
        .run_until_complete(move || {
            for _ in 0..3 {
                let m = Meddler { counter: c.clone(), outcomes: o.clone() };
                drop(runtime::spawn(move || {
                    let _m = m;
                    runtime::sleep(Duration::MAX)
                }));
            }
            runtime::sleep(ms(1))
        })
        .unwrap();
    assert_eq!(counter.get(), 0);
    drop(event_loop);
    // Three Meddlers, and no task spawned by them ran or was kept.
    assert_eq!(counter.get(), 3, "{:?}", outcomes.borrow());
    let o = outcomes.borrow();
    assert_eq!(o.len(), 3);
    for line in o.iter() {
        assert!(line.starts_with("sleep Err("), "{line}");
        assert!(line.contains("spawn Err("), "{line}");
    }
}

#[test]
fn teardown_destructors_inside_another_loop_cannot_sleep_or_spawn_onto_it() {
    // The inner loop is dropped inside a task of the outer one: its
    // abandoned tasks' destructors run while the outer loop is the running
    // one. A sleep there would suspend the wrong stack; a spawn would hand
    // a task to a loop the destructor's task never belonged to.
    let counter = Counter::default();
    let outcomes: Rc<RefCell<Vec<String>>> = Rc::default();
    let inner = virtual_builder().build();
    let (c, o) = (counter.clone(), outcomes.clone());
    inner
        .run_until_complete(move || {
            let m = Meddler { counter: c.clone(), outcomes: o.clone() };
            drop(runtime::spawn(move || {
                let _m = m;
                runtime::sleep(Duration::MAX)
            }));
            runtime::sleep(ms(1))
        })
        .unwrap();
    let c = counter.clone();
    let out = virtual_builder().run(move || {
        drop(inner);
        // Whatever the destructor did, the outer loop goes on.
        runtime::sleep(s(5))?;
        Ok(c.get())
    });
    let o = outcomes.borrow().clone();
    assert_eq!(o.len(), 1);
    assert!(o[0].starts_with("sleep Err("), "{o:?}");
    // If the spawn was accepted by the outer loop, its task ran and
    // dropped its token: the count says which.
    let n = out.unwrap();
    assert!(n == 1 || n == 2, "{n}: {o:?}");
    assert_eq!(counter.get(), n, "nothing dropped after the outer run");
    eprintln!("destructor of an abandoned inner-loop task: {o:?}, drops {n}");
}

// ---------------------------------------------------------------------
// Cancelled sleepers whose handles are dropped.

// A sleeping task cancelled, its handle dropped before the cancellation is
// delivered; it catches it and sleeps again, then returns a value. Another
// one has its handle dropped after the delivery.
//
// Expected (CPython 3.11): 1.0 a caught CancelledError() / 1.0 b caught
// CancelledError() / 2.0 a slept again / 2.0 a value dropped / 3.0 b slept
// again / 3.0 b value dropped / 10.0 main done / result 0 / end 10.0
const CANCEL_THEN_DROP_PY: &str = r#"
from prelude import *

class Value:
    def __init__(self, name):
        self.name = name
    def __del__(self):
        log(f"{self.name} value dropped")

async def sleeper(name, again):
    try:
        await asyncio.sleep(100)
    except asyncio.CancelledError as e:
        log(f"{name} caught {ex(e)}")
    await asyncio.sleep(again)
    log(f"{name} slept again")
    return Value(name)

async def main():
    a = asyncio.create_task(sleeper("a", 1))
    b = asyncio.create_task(sleeper("b", 2))
    await asyncio.sleep(1)
    a.cancel()
    b.cancel()
    del a
    await asyncio.sleep(0)
    del b
    await asyncio.sleep(9)
    log("main done")
    return 0

go(main)
"#;

struct Value(&'static str);

impl Drop for Value {
    fn drop(&mut self) {
        log(format!("{} value dropped", self.0));
    }
}

fn catching_sleeper(name: &'static str, again: f64) -> impl FnOnce() -> Result<Value, Error> {
    move || {
        if let Err(e) = sleep(100.0) {
            log(format!("{name} caught {}", ex(&e)));
        }
        sleep(again)?;
        log(format!("{name} slept again"));
        Ok(Value(name))
    }
}

#[test]
fn cancelled_sleepers_whose_handles_are_dropped_before_or_after_delivery_finish() {
    let trace = go(|| {
        let a = runtime::spawn(catching_sleeper("a", 1.0));
        let b = runtime::spawn(catching_sleeper("b", 2.0));
        sleep(1.0)?;
        a.cancel();
        b.cancel();
        drop(a);
        runtime::sleep(Duration::ZERO)?;
        drop(b);
        sleep(9.0)?;
        log("main done");
        Ok(0)
    });
    assert!(trace.contains(&"3.0 b value dropped".to_owned()), "{trace:?}");
    same_as_cpython(&trace, CANCEL_THEN_DROP_PY);
}

#[test]
fn a_sleeper_cancelled_many_times_with_no_handle_is_dropped_once_when_it_ends() {
    let captures = Counter::default();
    let c = captures.clone();
    let r = virtual_builder().run(move || {
        let cap = c.token();
        let t = runtime::spawn(move || {
            let _hold = cap;
            // Catches every cancellation and sleeps again, five times.
            for _ in 0..5 {
                let _ = runtime::sleep(s(100));
            }
            Ok(())
        });
        let r = t.as_ref();
        drop(t);
        for _ in 0..5 {
            runtime::sleep(s(1))?;
            r.cancel();
            r.cancel();
        }
        drop(r);
        runtime::sleep(ms(1))?;
        Ok(c.get())
    });
    assert_eq!(r.unwrap(), 1);
}

#[test]
fn a_sleeping_task_cancelled_by_wait_for_is_freed_with_its_handle() {
    let captures = Counter::default();
    let c = captures.clone();
    let r = virtual_builder().run(move || {
        let cap = c.token();
        let res = c.token();
        let t = runtime::spawn(move || {
            let _hold = cap;
            runtime::sleep(s(100))?;
            Ok(res)
        });
        let e = match runtime::wait_for(Some(s(1)), &t) {
            Err(e) => e,
            Ok(_) => return Err(Error::new("wait_for returned a value".to_owned())),
        };
        if !e.is_timeout() {
            return Err(e);
        }
        // The body unwound: its capture and the unreturned result are gone.
        let after_timeout = c.get();
        drop(t);
        let after_drop = c.get();
        runtime::sleep(s(200))?;
        Ok((after_timeout, after_drop, c.get(), runtime::time()?))
    });
    assert_eq!(r.unwrap(), (2, 2, 2, s(201)));
}

#[test]
fn a_detached_task_sleeping_in_a_timeout_ends_by_the_timeout_and_drops_its_result() {
    let results = Counter::default();
    let r2 = results.clone();
    let r = virtual_builder().run(move || {
        let res = r2.token();
        let done = Rc::new(Cell::new(None));
        let d = done.clone();
        drop(runtime::spawn(move || {
            let e = runtime::timeout(Some(s(2)), |_| runtime::sleep(s(1000))).unwrap_err();
            d.set(Some((e.is_timeout(), runtime::time()?)));
            Ok(res)
        }));
        runtime::sleep(s(3))?;
        Ok((done.get(), r2.get()))
    });
    assert_eq!(r.unwrap(), (Some((true, s(2))), 1));
}

#[test]
fn a_cancelled_gather_of_detached_sleepers_drops_every_capture() {
    let captures = Counter::default();
    let c = captures.clone();
    let r = virtual_builder().run(move || {
        let children: Vec<Task<()>> = (0..8)
            .map(|i| {
                let cap = c.token();
                runtime::spawn(move || {
                    let _hold = cap;
                    runtime::sleep(s(10 + i))
                })
            })
            .collect();
        let g = runtime::spawn(move || runtime::gather(children).map(|_| ()));
        runtime::sleep(s(1))?;
        g.cancel();
        drop(g);
        let right_after = c.get();
        runtime::sleep(ms(1))?;
        Ok((right_after, c.get()))
    });
    assert_eq!(r.unwrap(), (0, 8));
}

#[test]
fn a_task_group_cancelling_its_sleepers_drops_every_capture_by_its_exit() {
    let captures = Counter::default();
    let c = captures.clone();
    let r = virtual_builder().run(move || {
        let out = runtime::task_group(|g| {
            for i in 0..6u64 {
                let cap = c.token();
                drop(g.spawn(move || {
                    let _hold = cap;
                    runtime::sleep(s(10 + i))
                })?);
            }
            drop(g.spawn(|| {
                runtime::sleep(s(1))?;
                Err::<(), _>(boom("sibling fails"))
            })?);
            Ok(())
        });
        let e = out.unwrap_err();
        Ok((ex(&e), c.get(), runtime::time()?))
    });
    assert_eq!(r.unwrap(), ("ExceptionGroup[Boom(sibling fails)]".to_owned(), 6, s(1)));
}

// ---------------------------------------------------------------------
// Handles held by user code: a done callback, the task's own body.

// A task b whose only handle is in a done callback of task a. b finishes
// first; its value goes when a's callback has run.
//
// Expected (CPython 3.11): 2.0 b done / 5.0 a done / 5.0 callback sees b
// / 5.0 b value dropped / 6.0 main done / result 0 / end 6.0
const HANDLE_IN_CALLBACK_PY: &str = r#"
from prelude import *

class Value:
    def __init__(self, name):
        self.name = name
    def __del__(self):
        log(f"{self.name} value dropped")

async def main():
    async def a():
        await asyncio.sleep(5)
        log("a done")
    async def b():
        await asyncio.sleep(2)
        log("b done")
        return Value("b")
    ta = asyncio.create_task(a())
    tb = asyncio.create_task(b())
    def cb(_, tb=tb):
        log(f"callback sees {tb.result().name}")
    ta.add_done_callback(cb)
    del cb, tb
    await asyncio.sleep(6)
    log("main done")
    return 0

go(main)
"#;

#[test]
fn a_sleeper_held_only_by_another_tasks_done_callback_lives_until_the_callback_ran() {
    let trace = go(|| {
        let a = runtime::spawn(|| {
            sleep(5.0)?;
            log("a done");
            Ok(())
        });
        let b = runtime::spawn(|| {
            sleep(2.0)?;
            log("b done");
            Ok(Value("b"))
        });
        a.add_done_callback(move |_| {
            // Taken out, named, dropped after the line: Python drops it
            // with `tb`, once the callback returned.
            let v = b.result();
            log(format!("callback sees {}", v.as_ref().map_or("error", |v| v.0)));
            drop(v);
        })?;
        drop(a);
        sleep(6.0)?;
        log("main done");
        Ok(0)
    });
    same_as_cpython(&trace, HANDLE_IN_CALLBACK_PY);
}

#[test]
fn a_sleeper_held_only_by_a_never_run_done_callback_is_dropped_by_teardown_once() {
    let captures = Counter::default();
    let (b, reports) = counting_pending_reports(virtual_builder());
    let event_loop = b.build();
    let c = captures.clone();
    event_loop
        .run_until_complete(move || {
            let cap_a = c.token();
            let a = runtime::spawn(move || {
                let _hold = cap_a;
                runtime::sleep(Duration::MAX)
            });
            let cap_b = c.token();
            let b = runtime::spawn(move || {
                let _hold = cap_b;
                runtime::sleep(Duration::MAX)
            });
            let res = c.token();
            a.add_done_callback(move |_| {
                let _b = &b;
                let _r = &res;
            })?;
            drop(a);
            runtime::sleep(s(1))
        })
        .unwrap();
    assert_eq!(captures.get(), 0);
    drop(event_loop);
    assert_eq!(captures.get(), 3, "a's and b's captures and the callback's value");
    assert_eq!(reports.get(), 2);
}

#[test]
fn a_sleeper_holding_its_own_handle_in_its_body_is_dropped_once_by_teardown() {
    // A cycle through user code: the task's body holds the task's handle.
    // CPython keeps such a cycle until the garbage collector runs; here the
    // loop's teardown abandons the pending task, whose unwound body drops
    // the handle.
    let captures = Counter::default();
    let (b, reports) = counting_pending_reports(virtual_builder());
    let event_loop = b.build();
    let c = captures.clone();
    event_loop
        .run_until_complete(move || {
            for _ in 0..4 {
                let me: Slot<()> = slot();
                let m = me.clone();
                let cap = c.token();
                let t = runtime::spawn(move || {
                    let _hold = cap;
                    let _me = m;
                    runtime::sleep(Duration::MAX)
                });
                *me.borrow_mut() = Some(t);
            }
            runtime::sleep(s(1))
        })
        .unwrap();
    assert_eq!(captures.get(), 0);
    drop(event_loop);
    assert_eq!(captures.get(), 4);
    assert_eq!(reports.get(), 4);
}

#[test]
fn a_finished_sleeper_holding_its_own_handle_in_its_body_is_freed_when_it_ends() {
    let captures = Counter::default();
    let c = captures.clone();
    let r = virtual_builder().run(move || {
        let me: Slot<Counted> = slot();
        let m = me.clone();
        let cap = c.token();
        let res = c.token();
        let t = runtime::spawn(move || {
            let _hold = cap;
            runtime::sleep(s(2))?;
            // The body lets go of its own handle as it ends.
            drop(m.borrow_mut().take());
            Ok(res)
        });
        *me.borrow_mut() = Some(t);
        drop(me);
        runtime::sleep(s(3))?;
        Ok(c.get())
    });
    assert_eq!(r.unwrap(), 2);
}

/// A result that holds the handle of the task that returned it.
struct SelfHolding {
    _me: Slot<SelfHolding>,
    _value: Counted,
}

#[test]
fn a_finished_task_whose_result_holds_its_own_handle_is_kept_until_user_code_breaks_the_cycle() {
    // A cycle through a result: no loop can see it (the task is done, so
    // teardown does not look at it), as CPython's reference counting alone
    // cannot (its cycle collector would). Breaking the cycle frees it once.
    let captures = Counter::default();
    let c = captures.clone();
    let outside: Rc<RefCell<Option<Slot<SelfHolding>>>> = Rc::default();
    let o = outside.clone();
    let r = virtual_builder().run(move || {
        let me: Slot<SelfHolding> = slot();
        let m = me.clone();
        let value = c.token();
        let t = runtime::spawn(move || {
            runtime::sleep(s(1))?;
            Ok(SelfHolding { _me: m, _value: value })
        });
        *me.borrow_mut() = Some(t);
        *o.borrow_mut() = Some(me.clone());
        drop(me);
        runtime::sleep(s(2))?;
        Ok(c.get())
    });
    assert_eq!(r.unwrap(), 0);
    assert_eq!(captures.get(), 0, "the cycle keeps the result after the loop is gone");
    let me = outside.borrow_mut().take().unwrap();
    let task = me.borrow_mut().take().unwrap();
    assert!(task.is_done());
    drop(task);
    assert_eq!(captures.get(), 1);
}

// ---------------------------------------------------------------------
// Schedule-driven runs.

#[cfg(feature = "testing")]
fn detached_sleepers_scenario(counter: &Counter) -> Result<(), String> {
    let finished = Rc::new(Cell::new(0usize));
    for i in 0..4u64 {
        let cap = counter.token();
        let res = counter.token();
        let f = finished.clone();
        drop(runtime::spawn(move || {
            let _hold = cap;
            runtime::sleep(ms(1 + i % 2))?;
            runtime::sleep(Duration::ZERO)?;
            runtime::sleep(ms(1))?;
            f.set(f.get() + 1);
            Ok(res)
        }));
    }
    // Two that never wake, one of them cancelled mid-sleep with its handle
    // already gone.
    let cap = counter.token();
    drop(runtime::spawn(move || {
        let _hold = cap;
        runtime::sleep(Duration::MAX)
    }));
    let cap = counter.token();
    let t = runtime::spawn(move || {
        let _hold = cap;
        runtime::sleep(Duration::MAX)
    });
    let r = t.as_ref();
    drop(t);
    runtime::sleep(ms(2)).map_err(|e| e.to_string())?;
    r.cancel();
    drop(r);
    runtime::sleep(ms(2)).map_err(|e| e.to_string())?;
    if finished.get() != 4 {
        return Err(format!("only {} detached sleepers finished", finished.get()));
    }
    Ok(())
}

#[cfg(feature = "testing")]
#[test]
fn detached_sleepers_under_explored_schedules_all_finish_and_leak_nothing() {
    use gencoro::testing;
    let counter = Counter::default();
    let c = counter.clone();
    let explored = testing::check_seeded(7, 200, move || detached_sleepers_scenario(&c))
        .expect("the property holds");
    assert_eq!(explored.schedules_run, 200);
    // 4 captures + 4 results + 2 eternal captures per run.
    assert_eq!(counter.get(), 200 * 10);
    let c = counter.clone();
    let before = counter.get();
    let exhaustive = testing::check_exhaustive(2, move || detached_sleepers_scenario(&c))
        .expect("the property holds");
    assert_eq!(counter.get() - before, exhaustive.schedules_run * 10);
}

// ---------------------------------------------------------------------
// Record memory: results go with their last handle, not with the deadline
// of the cancelled sleep still in the queue.

#[test]
fn results_of_100k_tasks_with_cancelled_sleeps_drop_with_their_last_handle() {
    const BATCH: usize = 1_000;
    const BATCHES: usize = 100;
    let results = Counter::default();
    let captures = Counter::default();
    let (r, c) = (results.clone(), captures.clone());
    let out = virtual_builder().run(move || {
        // A later timer: the cancelled sleeps' deadlines (1000 s) stay in
        // the queue behind nothing; this one (5000 s) stays too.
        let late = runtime::spawn(|| runtime::sleep(s(5000)));
        for batch in 0..BATCHES {
            let tasks: Vec<Task<Counted>> = (0..BATCH)
                .map(|_| {
                    let res = r.token();
                    let cap = c.token();
                    runtime::spawn(move || {
                        let _hold = cap;
                        match runtime::sleep(s(1000)) {
                            Err(e) if e.is_cancelled() => Ok(res),
                            other => Err(Error::new(format!("sleep ended with {other:?}"))),
                        }
                    })
                })
                .collect();
            runtime::sleep(Duration::ZERO)?;
            for t in &tasks {
                t.cancel();
            }
            // One iteration delivers the cancellations and the tasks end.
            runtime::sleep(Duration::ZERO)?;
            if !tasks.iter().all(|t| t.is_done() && !t.is_cancelled()) {
                return Err(Error::new("a task did not finish".to_owned()));
            }
            let n = (batch + 1) * BATCH;
            if c.get() != n || r.get() != n - BATCH {
                return Err(Error::new(format!(
                    "batch {batch}: captures {}, results {} before the drop",
                    c.get(),
                    r.get()
                )));
            }
            drop(tasks);
            if r.get() != n {
                return Err(Error::new(format!(
                    "batch {batch}: {} results dropped right after the handles, want {n}",
                    r.get()
                )));
            }
        }
        let now = runtime::time()?;
        late.cancel();
        Ok(now)
    });
    assert_eq!(out.unwrap(), Duration::ZERO, "the cancelled deadlines never passed");
    assert_eq!((results.get(), captures.get()), (BATCH * BATCHES, BATCH * BATCHES));
}
