//! `docs/semantics.md` section B: the event-loop core (B0), `run` (B1),
//! creating tasks (B2), `sleep` (B3) and done callbacks (B4.5), plus panics and
//! deadlocks, on the virtual clock.
//!
//! Each scenario was written in Python first and run with CPython 3.11; its
//! output is the expected trace. The program is
//! `tests/cpython/runtime_scheduling/<test name>.py`, named in the comment
//! above the test, and `tests/cpython_programs.rs` runs it and checks that it
//! prints what the test asserts (`prelude` is `tests/cpython/prelude.py`).

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use common::*;
use gencoro::runtime::{self, Builder, Clock, Error, ErrorKind, ReturnWhen, Task};

// ---------------------------------------------------------------------------
// B0: the ready queue, timers, when tasks start
// ---------------------------------------------------------------------------

// Python: tests/cpython/runtime_scheduling/fifo_order_of_new_tasks.py
#[test]
fn fifo_order_of_new_tasks() {
    fn worker(name: &'static str) -> Result<&'static str, Error> {
        log(format!("{name} start"));
        sleep(0.0)?;
        log(format!("{name} end"));
        Ok(name)
    }
    let trace = go(|| {
        let tasks: Vec<Task<&str>> =
            ["a", "b", "c"].into_iter().map(|n| spawn_named(n, move || worker(n))).collect();
        log("main created a b c");
        for t in &tasks {
            log(format!("joined {}", t.join()?));
        }
        Ok(tasks.len())
    });
    assert_eq!(
        trace,
        [
            "0.0 main created a b c",
            "0.0 a start",
            "0.0 b start",
            "0.0 c start",
            "0.0 a end",
            "0.0 b end",
            "0.0 c end",
            "0.0 joined a",
            "0.0 joined b",
            "0.0 joined c",
            "result 3",
            "end 0.0",
        ]
    );
}

// Python: tests/cpython/runtime_scheduling/created_task_starts_only_when_creator_waits.py
#[test]
fn created_task_starts_only_when_creator_waits() {
    fn helper(started: &Cell<bool>) -> Result<i32, Error> {
        log(format!("helper runs in {}, child started: {}", current_name(), started.get().py()));
        Ok(5)
    }
    let trace = go(|| {
        name_current("main");
        let started = Rc::new(Cell::new(false));
        let s = started.clone();
        let t = spawn_named("child", move || {
            s.set(true);
            log(format!("child runs in {}", current_name()));
            Ok(())
        });
        for i in 0..2 {
            log(format!("main works {i}, child started: {}", started.get().py()));
        }
        let v = helper(&started)?;
        log(format!("helper returned {v}, child started: {}", started.get().py()));
        sleep(0.0)?;
        log(format!(
            "after sleep(0), child started: {}, done: {}",
            started.get().py(),
            t.is_done().py()
        ));
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "0.0 main works 0, child started: False",
            "0.0 main works 1, child started: False",
            "0.0 helper runs in main, child started: False",
            "0.0 helper returned 5, child started: False",
            "0.0 child runs in child",
            "0.0 after sleep(0), child started: True, done: True",
            "result None",
            "end 0.0",
        ]
    );
}

// Each iteration runs only the callbacks ready when it began: the timer
// armed by A1 (due at once) is appended behind A2, and runs before A3,
// which A2 schedules during the iteration.
//
// Python: tests/cpython/runtime_scheduling/ready_queue_snapshot_rule.py
#[test]
fn ready_queue_snapshot_rule() {
    fn chain(i: u32) {
        log(format!("A{i}"));
        if i == 1 {
            runtime::call_later(Duration::ZERO, || log("T")).unwrap();
        }
        if i < 4 {
            runtime::call_soon(move || chain(i + 1)).unwrap();
        }
    }
    let trace = go(|| {
        runtime::call_soon(|| chain(1))?;
        sleep(1.0)?;
        log("main");
        Ok(())
    });
    assert_eq!(
        trace,
        ["0.0 A1", "0.0 A2", "0.0 T", "0.0 A3", "0.0 A4", "1.0 main", "result None", "end 1.0"]
    );
}

// Python: tests/cpython/runtime_scheduling/sleep_zero_loop_does_not_starve_timers.py
#[test]
fn sleep_zero_loop_does_not_starve_timers() {
    let trace = go(|| {
        let t = runtime::spawn(|| {
            for i in 0..4 {
                log(format!("spin {i}"));
                sleep(0.0)?;
            }
            Ok(())
        });
        runtime::call_later(Duration::ZERO, || log("timer"))?;
        t.join()?;
        log("main");
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "0.0 spin 0",
            "0.0 timer",
            "0.0 spin 1",
            "0.0 spin 2",
            "0.0 spin 3",
            "0.0 main",
            "result None",
            "end 0.0",
        ]
    );
}

// B0.5: the sleep's timer only completes the sleep; the task resumes one
// iteration later, after a callback due at the same time.
//
// Python: tests/cpython/runtime_scheduling/timer_callback_runs_before_sleeping_task_resumes.py
#[test]
fn timer_callback_runs_before_sleeping_task_resumes() {
    let trace = go(|| {
        let t = runtime::spawn(|| {
            log("sleeper sleeps 1");
            sleep(1.0)?;
            log("sleeper resumes");
            Ok(())
        });
        sleep(0.0)?;
        runtime::call_later(secs(1.0), || log("call_later callback"))?;
        t.join()?;
        log("main");
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "0.0 sleeper sleeps 1",
            "1.0 call_later callback",
            "1.0 sleeper resumes",
            "1.0 main",
            "result None",
            "end 1.0",
        ]
    );
}

// Python: tests/cpython/runtime_scheduling/equal_deadlines_fire_first_in_first_out.py
#[test]
fn equal_deadlines_fire_first_in_first_out() {
    fn sleeper(i: u32, d: f64) -> Task<()> {
        runtime::spawn(move || {
            sleep(d)?;
            log(format!("task {i} woke"));
            Ok(())
        })
    }
    let trace = go(|| {
        let mut tasks: Vec<Task<()>> = (0..5).map(|i| sleeper(i, 1.0)).collect();
        for i in 0..3 {
            runtime::call_later(secs(2.0), move || log(format!("callback {i}")))?;
        }
        tasks.extend([(5, 3.0), (6, 0.5), (7, 2.0)].map(|(i, d)| sleeper(i, d)));
        for t in &tasks {
            t.join()?;
        }
        log("main");
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "0.5 task 6 woke",
            "1.0 task 0 woke",
            "1.0 task 1 woke",
            "1.0 task 2 woke",
            "1.0 task 3 woke",
            "1.0 task 4 woke",
            "2.0 callback 0",
            "2.0 callback 1",
            "2.0 callback 2",
            "2.0 task 7 woke",
            "3.0 task 5 woke",
            "3.0 main",
            "result None",
            "end 3.0",
        ]
    );
}

// B0.3: cancelled callbacks are skipped, and a cancelled timer does not
// make virtual time jump to its deadline.
//
// Python: tests/cpython/runtime_scheduling/cancelled_callbacks_do_not_run.py
#[test]
fn cancelled_callbacks_do_not_run() {
    let trace = go(|| {
        let h1 = runtime::call_later(secs(5.0), || log("h1 runs"))?;
        let h2 = runtime::call_soon(|| log("h2 runs"))?;
        let h3 = runtime::call_later(secs(1.0), || log("h3 runs"))?;
        runtime::call_later(secs(0.5), move || h3.cancel())?;
        h1.cancel();
        h2.cancel();
        sleep(2.0)?;
        log("main");
        Ok(0)
    });
    assert_eq!(trace, ["2.0 main", "result 0", "end 2.0"]);
}

// Python: tests/cpython/runtime_scheduling/sleep_zero_interleaves.py
#[test]
fn sleep_zero_interleaves() {
    fn worker(name: &'static str) -> Result<(), Error> {
        for i in 1..=2 {
            log(format!("{name}{i}"));
            sleep(0.0)?;
        }
        Ok(())
    }
    let trace = go(|| {
        let a = runtime::spawn(|| worker("a"));
        let b = runtime::spawn(|| worker("b"));
        a.join()?;
        b.join()
    });
    assert_eq!(trace, ["0.0 a1", "0.0 b1", "0.0 a2", "0.0 b2", "result None", "end 0.0"]);
}

// B0.6: awaiting a task that is done returns at once, without yielding.
//
// Python: tests/cpython/runtime_scheduling/join_of_done_task_does_not_yield.py
#[test]
fn join_of_done_task_does_not_yield() {
    let trace = go(|| {
        let started = Rc::new(Cell::new(false));
        let t = runtime::spawn(|| Ok(5));
        sleep(0.0)?;
        log(format!("t done: {}", t.is_done().py()));
        let s = started.clone();
        let _u = runtime::spawn(move || {
            s.set(true);
            log("u runs");
            Ok(())
        });
        let v = t.join()?;
        log(format!("awaited t -> {v}, u started: {}", started.get().py()));
        sleep(0.0)?;
        log(format!("after sleep(0), u started: {}", started.get().py()));
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "0.0 t done: True",
            "0.0 awaited t -> 5, u started: False",
            "0.0 u runs",
            "0.0 after sleep(0), u started: True",
            "result None",
            "end 0.0",
        ]
    );
}

// ---------------------------------------------------------------------------
// B1: run
// ---------------------------------------------------------------------------

// Python: tests/cpython/runtime_scheduling/run_returns_main_value.py
#[test]
fn run_returns_main_value() {
    let trace = go(|| {
        sleep(1.5)?;
        log("main returns");
        Ok(42)
    });
    assert_eq!(trace, ["1.5 main returns", "result 42", "end 1.5"]);
}

// Python: tests/cpython/runtime_scheduling/run_returns_main_error.py
#[test]
fn run_returns_main_error() {
    let trace = go(|| -> Result<(), Error> {
        sleep(1.0)?;
        log("main raises");
        Err(boom("bad"))
    });
    assert_eq!(trace, ["1.0 main raises", "raised Boom(bad)", "end 1.0"]);
}

// Python: tests/cpython/runtime_scheduling/run_reports_main_panic_and_cancellation.py
#[test]
fn run_reports_main_panic_and_cancellation() {
    let mut trace = go(|| -> Result<(), Error> {
        sleep(1.0)?;
        panic!("main panicked")
    });
    trace.extend(go(|| {
        sleep(1.0)?;
        me().cancel();
        sleep(1.0)
    }));
    // `TaskRef` has no `cancel_with`, so the self-cancel carries no message
    // (messages are covered by runtime_cancellation.rs).
    assert_eq!(
        trace,
        ["raised Panicked(main panicked)", "end 1.0", "raised CancelledError()", "end 1.0"]
    );
}

// B1.3: when main returns, the pending tasks are cancelled and their
// cleanup (which may wait) runs before run returns.
//
// Python: tests/cpython/runtime_scheduling/run_cancels_pending_tasks_at_end.py
#[test]
fn run_cancels_pending_tasks_at_end() {
    let drops = Drops::default();
    let d = drops.clone();
    let mut trace = go(move || {
        let _t = runtime::spawn(move || {
            let _sentinel = d.sentinel("lingering");
            log("lingering starts");
            if let Err(e) = sleep(10.0) {
                log(format!("lingering caught {}", ex(&e)));
                sleep(1.0)?;
                log("lingering cleanup done");
                return Err(e);
            }
            Ok(())
        });
        sleep(0.5)?;
        log("main returns");
        Ok("done")
    });
    assert_eq!(drops.count("lingering"), 1, "the task's stack unwound once, inside run");
    print("run returned");
    trace.extend(take_trace());
    assert_eq!(
        trace,
        [
            "0.0 lingering starts",
            "0.5 main returns",
            "0.5 lingering caught CancelledError()",
            "1.5 lingering cleanup done",
            "result done",
            "end 1.5",
            "run returned",
        ]
    );
}

// B1.3: `asyncio.run` is `run_until_complete(main)`, which stops the loop
// through a done callback of main: the iteration after main finishes still
// runs, so tasks that are ready then take one more step (a task created
// just before main returns even starts) before the shutdown cancels them.
//
// Python: tests/cpython/runtime_scheduling/run_gives_ready_tasks_one_more_step_before_shutdown.py
#[test]
fn run_gives_ready_tasks_one_more_step_before_shutdown() {
    let trace = go(|| {
        let _spinner = runtime::spawn(|| {
            for i in 0..5 {
                log(format!("spin {i}"));
                sleep(0.0)?;
            }
            Ok(())
        });
        sleep(0.0)?;
        let _fresh = runtime::spawn(|| {
            log("fresh runs");
            sleep(1.0)?;
            log("fresh not reached");
            Ok(())
        });
        log("main returns");
        Ok(1)
    });
    assert_eq!(
        trace,
        ["0.0 spin 0", "0.0 main returns", "0.0 spin 1", "0.0 fresh runs", "result 1", "end 0.0"]
    );
}

// B1.1: the nested main never runs (Python: "coroutine 'inner' was never
// awaited").
//
// Python: tests/cpython/runtime_scheduling/nested_run_is_an_error.py
#[test]
fn nested_run_is_an_error() {
    let ran = Rc::new(Cell::new(0));
    let r = ran.clone();
    let trace = go(move || {
        let r1 = r.clone();
        match runtime::run(move || {
            r1.set(r1.get() + 1);
            log("inner runs");
            Ok(())
        }) {
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::NestedRun);
                log(format!("RuntimeError: {}", e.message()));
            }
            Ok(()) => log("nested run returned"),
        }
        // The same through a Builder with a clock of its own.
        let r2 = r.clone();
        let nested = Builder::new().clock(Clock::virtual_time()).run(move || {
            r2.set(r2.get() + 1);
            Ok(())
        });
        assert_eq!(nested.map_err(|e| e.kind()), Err(ErrorKind::NestedRun));
        sleep(1.0)?;
        Ok(1)
    });
    assert_eq!(ran.get(), 0, "a nested main must not run");
    assert_eq!(
        trace,
        [
            "0.0 RuntimeError: asyncio.run() cannot be called from a running event loop",
            "result 1",
            "end 1.0",
        ]
    );
}

// A panic in a task is that task's failure, reported where it is joined
// (any number of times); a panic in a callback is reported and the loop
// goes on. Python has exceptions where Rust has panics: a task raising
// `Panicked`, a callback dividing by zero.
//
// Python: tests/cpython/runtime_scheduling/panicking_task_does_not_stop_the_loop.py
#[test]
fn panicking_task_does_not_stop_the_loop() {
    let caught: Rc<RefCell<Option<Error>>> = Rc::default();
    let c = caught.clone();
    let trace = go(move || {
        let b = spawn_named("bad", || -> Result<i32, Error> {
            sleep(1.0)?;
            log("bad panics");
            panic!("kaboom {}", 7)
        });
        let g = spawn_named("good", || {
            sleep(2.0)?;
            log("good finished");
            Ok(7)
        });
        runtime::call_later(secs(0.5), || panic!("division by zero"))?;
        match b.join() {
            Err(e) => {
                log(format!("join bad: {}", ex(&e)));
                *c.borrow_mut() = Some(e);
            }
            Ok(v) => log(format!("join bad returned {v}")),
        }
        log(format!("good done: {}", g.is_done().py()));
        log(format!("good -> {}", g.join()?));
        if let Err(e) = b.result() {
            log(format!("bad again: {}", ex(&e)));
        }
        Ok(0)
    });
    assert_eq!(
        trace,
        [
            "1.0 bad panics",
            "1.0 join bad: Panicked(kaboom 7)",
            "1.0 good done: False",
            "2.0 good finished",
            "2.0 good -> 7",
            "2.0 bad again: Panicked(kaboom 7)",
            "result 0",
            "end 2.0",
        ]
    );
    let e = caught.borrow_mut().take().expect("the join failed");
    assert!(e.is_panic());
    let payload = e.take_panic().expect("the panic payload is kept");
    let text = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied());
    assert_eq!(text, Some("kaboom 7"));
}

// ---------------------------------------------------------------------------
// B2.3: names; B0.4: a task cannot wait on itself
// ---------------------------------------------------------------------------

// Python: tests/cpython/runtime_scheduling/task_names.py
#[test]
fn task_names() {
    let trace = go(|| {
        let t = runtime::spawn(|| sleep(0.0));
        // The number comes from a process-wide counter, so only the form is
        // checked.
        let default = t.name() == format!("Task-{}", t.id());
        log(format!("default name is Task-N: {}", default.py()));
        t.set_name("renamed");
        log(t.name());
        let u = spawn_named("given", || sleep(0.0));
        log(u.name());
        t.join()?;
        u.join()?;
        Ok(0)
    });
    assert_eq!(
        trace,
        ["0.0 default name is Task-N: True", "0.0 renamed", "0.0 given", "result 0", "end 0.0",]
    );
}

// Python: tests/cpython/runtime_scheduling/task_cannot_join_itself.py
#[test]
fn task_cannot_join_itself() {
    let trace = go(|| {
        let cell: Slot<&str> = slot();
        let c = cell.clone();
        let t = runtime::spawn(move || {
            sleep(0.0)?;
            let me = c.borrow().clone().expect("set before the first step");
            if let Err(e) = me.join() {
                assert_eq!(e.kind(), ErrorKind::Misuse);
                log(format!("RuntimeError: {}", e.message().split(':').next().unwrap_or("")));
            }
            Ok("went on")
        });
        *cell.borrow_mut() = Some(t.clone());
        let v = t.join();
        cell.borrow_mut().take();
        v
    });
    assert_eq!(
        trace,
        ["0.0 RuntimeError: Task cannot await on itself", "result went on", "end 0.0"]
    );
}

// ---------------------------------------------------------------------------
// B2.4: current_task, all_tasks
// ---------------------------------------------------------------------------

// Python: tests/cpython/runtime_scheduling/current_task_and_all_tasks.py
#[test]
fn current_task_and_all_tasks() {
    fn names() -> Vec<String> {
        runtime::all_tasks().unwrap().iter().map(|t| t.name()).collect()
    }
    fn child(name: &'static str) -> Result<(), Error> {
        log(format!("{name}: current={}", current_name()));
        sleep(1.0)
    }
    let mut trace = go(|| {
        name_current("main");
        log(format!("main: current={}", current_name()));
        let a = spawn_named("a", || child("a"));
        let b = spawn_named("b", || child("b"));
        log(format!("all: {}", sorted_names(names())));
        runtime::call_soon(|| {
            let current = runtime::current_task().unwrap().map(|t| t.name());
            log(format!("callback: current={}", current.py()));
        })?;
        sleep(0.0)?;
        a.join()?;
        log(format!("after a: all: {} b done: {}", sorted_names(names()), b.is_done().py()));
        Ok(names().len())
    });
    match runtime::current_task() {
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::NoRunningLoop);
            print(format!("outside: RuntimeError: {}", e.message()));
        }
        Ok(t) => print(format!("outside: {t:?}")),
    }
    trace.extend(take_trace());
    assert_eq!(
        trace,
        [
            "0.0 main: current=main",
            "0.0 all: ['a', 'b', 'main']",
            "0.0 a: current=a",
            "0.0 b: current=b",
            "0.0 callback: current=None",
            "1.0 after a: all: ['main'] b done: True",
            "result 1",
            "end 1.0",
            "outside: RuntimeError: no running event loop",
        ]
    );
}

// ---------------------------------------------------------------------------
// B4.5: done callbacks
// ---------------------------------------------------------------------------

// Callbacks and a waiting task's wake-up run in registration order, and
// never inline.
//
// Python: tests/cpython/runtime_scheduling/done_callbacks_in_registration_order.py
#[test]
fn done_callbacks_in_registration_order() {
    let trace = go(|| {
        let t = spawn_named("t", || {
            sleep(1.0)?;
            log("work returns");
            Ok(3)
        });
        t.add_done_callback(|f| log(format!("cb1 done={}", f.is_done().py())))?;
        let t2 = t.clone();
        let w = runtime::spawn(move || {
            log("waiter waits");
            let v = t2.join()?;
            log(format!("waiter got {v}"));
            Ok(())
        });
        sleep(0.0)?;
        t.add_done_callback(|f| log(format!("cb2 cancelled={}", f.is_cancelled().py())))?;
        log("callbacks added");
        w.join()?;
        log("main after waiter");
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "0.0 waiter waits",
            "0.0 callbacks added",
            "1.0 work returns",
            "1.0 cb1 done=True",
            "1.0 waiter got 3",
            "1.0 cb2 cancelled=False",
            "1.0 main after waiter",
            "result None",
            "end 1.0",
        ]
    );
}

// Python: tests/cpython/runtime_scheduling/done_callback_on_finished_task_runs_soon.py
#[test]
fn done_callback_on_finished_task_runs_soon() {
    let trace = go(|| {
        let t = runtime::spawn(|| Ok(1));
        sleep(0.0)?;
        t.add_done_callback(|_| log("late cb"))?;
        log("late cb added");
        sleep(0.0)?;
        log("main resumed");
        let c = runtime::spawn(|| Ok(1));
        c.cancel();
        c.add_done_callback(|f| {
            log(format!("cb on cancelled: cancelled={}", f.is_cancelled().py()))
        })?;
        sleep(0.0)?;
        log("main after one yield");
        sleep(0.0)?;
        log("main end");
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "0.0 late cb added",
            "0.0 late cb",
            "0.0 main resumed",
            "0.0 main after one yield",
            "0.0 cb on cancelled: cancelled=True",
            "0.0 main end",
            "result None",
            "end 0.0",
        ]
    );
}

// ---------------------------------------------------------------------------
// Deadlocks (gencoro's own: CPython's loop would block forever, which the
// prelude reports as `Deadlock`)
// ---------------------------------------------------------------------------

/// The names of the stuck tasks and what they wait on, as the deadlock
/// error lists them.
fn stuck_lines(e: &Error) -> Vec<String> {
    let mut lines: Vec<String> = e.message().lines().skip(1).map(|l| l.trim().to_owned()).collect();
    lines.sort();
    lines
}

// Python: tests/cpython/runtime_scheduling/deadlock_in_a_wait_cycle.py
#[test]
fn deadlock_in_a_wait_cycle() {
    fn waits_on(name: &'static str, other: Slot<()>, drops: Drops) -> Task<()> {
        spawn_named(name, move || {
            let _sentinel = drops.sentinel(name);
            let other = other.borrow().clone().expect("both tasks exist");
            let r = runtime::wait([other], ReturnWhen::AllCompleted, None);
            log(format!("{name} cleanup"));
            r.map(drop)
        })
    }
    let drops = Drops::default();
    let d = drops.clone();
    let (result, mut trace, end) = run_virtual(move || {
        name_current("main");
        let (a_slot, b_slot) = (slot(), slot());
        let a = waits_on("a", b_slot.clone(), d.clone());
        let b = waits_on("b", a_slot.clone(), d.clone());
        *a_slot.borrow_mut() = Some(a.clone());
        *b_slot.borrow_mut() = Some(b);
        a.join()
    });
    let e = result.expect_err("main can never finish");
    assert_eq!(e.kind(), ErrorKind::Deadlock, "{e:?}");
    assert_eq!(
        stuck_lines(&e),
        ["task 'a' waits on wait", "task 'b' waits on wait", "task 'main' waits on task 'a'"],
        "{e}"
    );
    trace.sort();
    assert_eq!(trace, ["0.0 a cleanup", "0.0 b cleanup"]);
    assert_eq!(end, Duration::ZERO);
    assert_eq!((drops.count("a"), drops.count("b")), (1, 1));
}

// Two tasks that join each other: cancelling one cancels what it waits on
// (B5.7), the other, which waits on the first. CPython 3.11 recurses until
// it raises RecursionError out of `asyncio.run`'s shutdown; gencoro must
// report the deadlock. The scenario runs in a child process, since a stack
// overflow aborts the process.
//
// Python: tests/cpython/runtime_scheduling/deadlock_in_a_join_cycle.py
#[test]
fn deadlock_in_a_join_cycle() {
    const NAME: &str = "deadlock_in_a_join_cycle";
    if is_child(NAME) {
        let (result, _, _) = run_virtual(|| {
            name_current("main");
            let (a_slot, b_slot): (Slot<()>, Slot<()>) = (slot(), slot());
            let bs = b_slot.clone();
            let a = spawn_named("a", move || bs.borrow().clone().expect("b exists").join());
            let a2 = a.clone();
            let b = spawn_named("b", move || a2.join());
            *a_slot.borrow_mut() = Some(a.clone());
            *b_slot.borrow_mut() = Some(b);
            a.join()
        });
        match result {
            Err(e) => {
                println!("\nCHILD kind={:?}", e.kind());
                for line in stuck_lines(&e) {
                    println!("CHILD stuck: {line}");
                }
            }
            Ok(()) => println!("CHILD returned"),
        }
        return;
    }
    let (ok, stdout, stderr) = run_in_child(NAME);
    assert!(ok, "the child process failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("CHILD")).collect();
    assert_eq!(
        lines,
        [
            "CHILD kind=Deadlock",
            "CHILD stuck: task 'a' waits on task 'b'",
            "CHILD stuck: task 'b' waits on task 'a'",
            "CHILD stuck: task 'main' waits on task 'a'",
        ],
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
}

// Tasks that ignore the shutdown's cancellation and wait again stay stuck:
// run returns the deadlock and unwinds their stacks, running every
// destructor on them exactly once.
//
// Python: tests/cpython/runtime_scheduling/deadlock_stuck_stacks_are_dropped_once.py
#[test]
fn deadlock_stuck_stacks_are_dropped_once() {
    fn stubborn(name: &'static str, other: Slot<()>, drops: Drops) -> Task<()> {
        spawn_named(name, move || {
            let _sentinel = drops.sentinel(name);
            loop {
                let o = other.borrow().clone().expect("both tasks exist");
                match runtime::wait([o], ReturnWhen::AllCompleted, None) {
                    Ok(_) => return Ok(()),
                    Err(e) if e.is_cancelled() => log(format!("{name} ignores the cancellation")),
                    Err(e) => return Err(e),
                }
            }
        })
    }
    let drops = Drops::default();
    let d = drops.clone();
    let (result, mut trace, _) = run_virtual(move || {
        let _sentinel = d.sentinel("main");
        name_current("main");
        let (a_slot, b_slot) = (slot(), slot());
        let a = stubborn("a", b_slot.clone(), d.clone());
        let b = stubborn("b", a_slot.clone(), d.clone());
        *a_slot.borrow_mut() = Some(a.clone());
        *b_slot.borrow_mut() = Some(b);
        a.join()
    });
    let e = result.expect_err("main can never finish");
    assert_eq!(e.kind(), ErrorKind::Deadlock, "{e:?}");
    assert_eq!(
        stuck_lines(&e),
        ["task 'a' waits on wait", "task 'b' waits on wait", "task 'main' waits on task 'a'"],
        "{e}"
    );
    trace.sort();
    assert_eq!(trace, ["0.0 a ignores the cancellation", "0.0 b ignores the cancellation"]);
    let mut all = drops.all();
    all.sort();
    assert_eq!(all, ["a", "b", "main"], "every stuck stack unwound exactly once");
}

// B4.6: `exception()` tells a pending task (InvalidStateError) from one that
// succeeded (`None`), and raises a cancelled task's cancellation.
//
// Python: tests/cpython/runtime_scheduling/exception_tells_pending_from_succeeded.py
#[test]
fn exception_tells_pending_from_succeeded() {
    let trace = go(|| {
        let t_ok = runtime::spawn(|| Ok(1));
        let t_fail = runtime::spawn(|| -> Result<(), Error> { Err(Error::new(Boom("b".into()))) });
        let t_cancel = runtime::spawn(|| sleep(10.0));
        if let Err(e) = t_ok.exception() {
            if e.kind() == ErrorKind::InvalidState {
                log(format!("pending: InvalidStateError({})", e.message()));
            }
        }
        sleep(0.0)?;
        t_cancel.cancel();
        sleep(0.0)?;
        match t_ok.exception() {
            Ok(None) => log("succeeded: None"),
            other => log(format!("succeeded: {other:?}")),
        }
        match t_fail.exception() {
            Ok(Some(e)) => log(format!("failed: {}", ex(&e))),
            other => log(format!("failed: {other:?}")),
        }
        if let Err(e) = t_cancel.exception() {
            log(format!("cancelled: raised {}", ex(&e)));
        }
        Ok(0)
    });
    assert_eq!(
        trace,
        [
            "0.0 pending: InvalidStateError(Exception is not set.)",
            "0.0 succeeded: None",
            "0.0 failed: Boom(b)",
            "0.0 cancelled: raised CancelledError()",
            "result 0",
            "end 0.0",
        ]
    );
}

// B1: `run_forever` runs until `stop`, which takes effect after the current
// iteration; a stop before `run_until_complete`'s main is done fails it;
// `close` drops what is pending, and closing again does nothing (seed 004's
// shutdown).
//
// Python: tests/cpython/runtime_scheduling/run_forever_until_stop_then_close.py
#[test]
fn run_forever_until_stop_then_close() {
    use gencoro::runtime::{Builder, Clock, EventLoop};
    fn work(n: f64) -> Result<(), Error> {
        log(format!("start {n:.0}"));
        match sleep(n) {
            Ok(()) => {
                log(format!("end {n:.0}"));
                Ok(())
            }
            Err(e) => {
                log(format!("cancelled {n:.0}"));
                Err(e)
            }
        }
    }
    fn stopper() -> Result<(), Error> {
        sleep(2.0)?;
        log("stop");
        EventLoop::running()?.stop();
        Ok(())
    }
    take_trace();
    let event_loop = Builder::new().clock(Clock::virtual_time()).build();
    let tasks: Vec<_> =
        [1.0, 3.0, 5.0].into_iter().map(|n| event_loop.spawn(move || work(n)).unwrap()).collect();
    event_loop.spawn(stopper).unwrap();
    event_loop.run_forever().unwrap();
    print(format!("run_forever returned at {:.1}", event_loop.clock().now().as_secs_f64()));
    for t in &tasks {
        t.cancel();
    }
    event_loop.stop();
    event_loop.run_forever().unwrap();
    let cancelled: Vec<bool> = tasks.iter().map(|t| t.is_cancelled()).collect();
    print(format!("after one more iteration: {}", cancelled.py()));
    event_loop.spawn(stopper).unwrap();
    match event_loop.run_until_complete(|| sleep(5.0)) {
        Err(e) if e.kind() == ErrorKind::Misuse => {
            print(format!("run_until_complete: {}", e.message()))
        }
        other => print(format!("run_until_complete: {other:?}")),
    }
    event_loop.close().unwrap();
    print(format!("closed: {}", event_loop.is_closed().py()));
    match event_loop.close() {
        Ok(()) => print("closing again does nothing"),
        Err(e) => print(e),
    }
    let trace = take_trace();
    assert_eq!(
        trace,
        [
            "0.0 start 1",
            "0.0 start 3",
            "0.0 start 5",
            "1.0 end 1",
            "2.0 stop",
            "run_forever returned at 2.0",
            "2.0 cancelled 3",
            "2.0 cancelled 5",
            "after one more iteration: [False, True, True]",
            "4.0 stop",
            "run_until_complete: Event loop stopped before Future completed.",
            "closed: True",
            "closing again does nothing",
        ]
    );
}

// B4.6, B14: a failure nobody read is reported once, when its task goes; a
// task whose failure was read (by `result`, or by `gather`) is not; a task
// still pending when its loop closes is reported once too.
//
// Python: tests/cpython/runtime_scheduling/unretrieved_failures_and_destroyed_pending_tasks_are_reported_once.py
#[test]
fn unretrieved_failures_and_destroyed_pending_tasks_are_reported_once() {
    use gencoro::runtime::{Builder, Clock, ExceptionContext};
    fn handler(cx: &ExceptionContext) {
        print(format!("report: {} ({})", cx.message(), cx.task_name().unwrap_or("?")));
    }
    fn fails() -> Result<(), Error> {
        Err(boom("x"))
    }
    take_trace();
    let clock = Clock::virtual_time();
    let result = Builder::new().clock(clock.clone()).exception_handler(handler).run(|| {
        let unread = runtime::TaskBuilder::new().name("unread").spawn(fails)?;
        let read = runtime::TaskBuilder::new().name("read").spawn(fails)?;
        let gathered = runtime::TaskBuilder::new().name("gathered").spawn(fails)?;
        sleep(0.0)?;
        if read.result().is_err() {
            log("read's failure was read");
        }
        runtime::gather_outcomes([gathered.clone()])?;
        drop(unread);
        log("unread dropped");
        drop((read, gathered));
        log("read ones dropped");
        Ok(0)
    });
    print(format!("result {}", result.py()));
    print(format!("end {:.1}", clock.now().as_secs_f64()));
    let event_loop = Builder::new().clock(Clock::virtual_time()).exception_handler(handler).build();
    let task = event_loop.spawn(|| sleep(10.0)).unwrap();
    task.set_name("pending");
    event_loop.run_until_complete(|| sleep(0.0)).unwrap();
    event_loop.close().unwrap();
    drop(task);
    print("closed");
    let trace = take_trace();
    assert_eq!(
        trace,
        [
            "0.0 read's failure was read",
            "report: Task exception was never retrieved (unread)",
            "0.0 unread dropped",
            "0.0 read ones dropped",
            "result 0",
            "end 0.0",
            "report: Task was destroyed but it is pending! (pending)",
            "closed",
        ]
    );
}
