//! Tests that kill the mutants `cargo mutants` found surviving the rest of
//! the suite (`.ci/mutants`). Each test checks a behaviour of the public
//! API, on the virtual clock where a loop runs, and names in a comment the
//! mutant(s) it kills, as `cargo mutants --list` names them (without line
//! numbers). Mutants that no test can observe are listed, with the reason,
//! in `.ci/mutants-accepted.txt`.

mod common;

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use gencoro::runtime::{
    self, Builder, Clock, Error, ErrorKind, EventLoop, ExceptionContext, LoopHandle, Promise,
    ReturnWhen, Task,
};
use gencoro::{
    CloseError, Generator, GeneratorBuilder, GeneratorExit, SendError, State, Step, ThrowError,
    YieldFromError, Yielder,
};

// ---------------------------------------------------------------------------
// src/generator/
// ---------------------------------------------------------------------------

// Kills: src/generator/mod.rs: replace Generator<Y, S, R>::stack_size -> usize with 1
// Kills: src/generator/mod.rs: replace GeneratorBuilder::stack_size -> Self with Default::default()
#[test]
fn a_generator_reports_the_usable_size_of_its_stack() {
    let g: Generator<u32> = GeneratorBuilder::new().stack_size(100_000).build(|_| {}).unwrap();
    assert_eq!(g.stack_size(), gencoro::stack::usable_size(100_000));
    assert!(g.stack_size() >= 100_000);
    let default: Generator<u32> = Generator::new(|_| {});
    assert_eq!(default.stack_size(), gencoro::stack::DEFAULT_STACK_SIZE);
}

// Kills: src/generator/error.rs: replace <impl fmt::Debug for SendError<S>>::fmt -> fmt::Result with Ok(Default::default())
#[test]
fn send_errors_debug_print_their_kind_without_the_value() {
    let g: Generator<u32, u32> = Generator::new(|co| {
        co.yield_(1);
    });
    let not_started = g.send(7).unwrap_err();
    assert_eq!(format!("{not_started:?}"), "NotStarted(..)");
    assert_eq!(g.start(), Ok(Step::Yielded(1)));
    assert_eq!(g.send(8), Ok(Step::Returned(())));
    let closed = g.send(9).unwrap_err();
    assert_eq!(format!("{closed:?}"), "Closed(..)");
    assert_eq!(format!("{:?}", SendError::Running(0u8)), "Running(..)");
}

// Kills: src/generator/error.rs: replace <impl fmt::Debug for YieldFromError<S>>::fmt -> fmt::Result with Ok(Default::default())
#[test]
fn yield_from_errors_debug_print_their_kind_and_whether_they_hold_a_value() {
    // Delegating to a generator that has already started.
    let sub: Rc<Generator<u32, u32>> = Rc::new(Generator::new(|co| {
        co.yield_(1);
    }));
    assert_eq!(sub.start(), Ok(Step::Yielded(1)));
    let outer: Generator<u32, u32, String> = {
        let sub = sub.clone();
        Generator::new(move |co| format!("{:?}", co.yield_from(&sub).unwrap_err()))
    };
    assert_eq!(outer.start(), Ok(Step::Returned("Started".to_owned())));
    assert_eq!(sub.state(), State::Suspended);
    assert_eq!(format!("{:?}", YieldFromError::Finished(None::<u32>)), "Finished(None)");
    assert_eq!(format!("{:?}", YieldFromError::Running(Some(3u32))), "Running(Some(..))");
}

// Kills: src/generator/error.rs: replace <impl fmt::Debug for ThrowError<E>>::fmt -> fmt::Result with Ok(Default::default())
#[test]
fn throw_errors_debug_print_their_kind_without_the_error() {
    let g: Generator<u32, Result<(), String>, Result<(), String>> = Generator::new(|_| Ok(()));
    assert_eq!(g.start(), Ok(Step::Returned(Ok(()))));
    let closed = g.throw("late".to_owned()).unwrap_err();
    assert_eq!(format!("{closed:?}"), "Closed(..)");
    assert_eq!(format!("{:?}", ThrowError::Running(0u8)), "Running(..)");
}

// Kills: src/generator/yielder.rs: replace <impl fmt::Debug for Yielder<Y, S>>::fmt -> fmt::Result with Ok(Default::default())
#[test]
fn a_yielder_debug_prints_its_type() {
    let g: Generator<String> = Generator::new(|co| {
        co.yield_(format!("{co:?}"));
    });
    assert_eq!(g.start(), Ok(Step::Yielded("Yielder { .. }".to_owned())));
}

/// Panics when dropped.
struct PanicsOnDrop(&'static str);

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("{}", self.0);
    }
}

// Kills: src/generator/mod.rs: replace match guard std::thread::panicking() with true in <impl Drop for Generator<Y, S, R>>::drop
#[test]
fn a_panic_dropping_an_unstarted_generators_captures_propagates_out_of_drop() {
    let capture = PanicsOnDrop("capture dropped");
    let g: Generator<u32> = Generator::new(move |_| {
        let _keep = &capture;
    });
    let dropped = panic::catch_unwind(AssertUnwindSafe(|| drop(g)));
    let payload = dropped.expect_err("the destructor's panic comes out of drop");
    assert_eq!(payload.downcast_ref::<String>().map(String::as_str), Some("capture dropped"));
}

// Kills: src/generator/mod.rs: replace <impl fmt::Debug for Generator<Y, S, R>>::fmt -> fmt::Result with Ok(Default::default())
#[test]
fn a_generator_debug_prints_its_state_and_stack_size() {
    let g: Generator<u32> = Generator::new(|co| co.yield_(1));
    let size = g.stack_size();
    assert_eq!(format!("{g:?}"), format!("Generator {{ state: Created, stack_size: {size}, .. }}"));
    assert_eq!(g.start(), Ok(Step::Yielded(1)));
    assert_eq!(
        format!("{g:?}"),
        format!("Generator {{ state: Suspended, stack_size: {size}, .. }}")
    );
}

// Kills: src/generator/mod.rs: replace match guard std::thread::panicking() with false in <impl Drop for Generator<Y, S, R>>::drop
#[test]
fn an_unstarted_generator_dropped_during_a_panic_reports_its_captures_panic_instead_of_aborting() {
    const NAME: &str = "an_unstarted_generator_dropped_during_a_panic_reports_its_captures_panic_instead_of_aborting";
    if is_child(NAME) {
        let outer = panic::catch_unwind(|| {
            let capture = PanicsOnDrop("capture dropped");
            let g: Generator<u32> = Generator::new(move |_| {
                let _keep = &capture;
            });
            let _dropped_by_the_unwind = g;
            panic!("outer panic");
        });
        assert!(outer.is_err());
        println!("the outer panic was caught");
        return;
    }
    // A panic escaping a destructor during an unwind aborts: the scenario
    // runs in a child process.
    let (ok, stdout, stderr) = run_in_child(NAME);
    assert!(ok, "the child failed; stderr:\n{stderr}");
    assert!(stdout.contains("the outer panic was caught"), "{stdout}");
    assert!(
        stderr.contains(
            "gencoro: dropping an unstarted generator's captures panicked during a panic: capture dropped"
        ),
        "{stderr}"
    );
}

/// Yields from its destructor: Python's `finally: yield`.
struct YieldsOnDrop<'a>(&'a Yielder<u32>);

impl Drop for YieldsOnDrop<'_> {
    fn drop(&mut self) {
        self.0.yield_(2);
    }
}

/// Waits, from its destructor, and logs what the wait returned.
struct WaitsOnDrop;

impl Drop for WaitsOnDrop {
    fn drop(&mut self) {
        let waited = runtime::sleep(Duration::ZERO);
        log(format!("wait in drop: {}", outcome(&waited)));
    }
}

// Kills: src/generator/mod.rs: replace Generator<Y, S, R>::release_held_unwind with ()
#[test]
fn once_a_suspended_unwind_finishes_a_task_unwinding_from_a_panic_still_cannot_wait() {
    // On a thread of its own: a generator that holds an unwind marks its
    // thread as panicking until the unwind ends.
    let trace = std::thread::spawn(|| {
        let g: Generator<u32> = Generator::new(|co| {
            let _yields = YieldsOnDrop(co);
            co.yield_(1);
        });
        assert_eq!(g.start(), Ok(Step::Yielded(1)));
        // The close's unwind is suspended in the destructor's yield...
        assert_eq!(g.close(), Err(CloseError::IgnoredExit));
        // ... and goes on out of the next resume.
        let resumed = panic::catch_unwind(AssertUnwindSafe(|| g.resume()));
        assert!(resumed.expect_err("the unwind comes out of the resume").is::<GeneratorExit>());
        assert!(g.is_closed() && !std::thread::panicking());
        go(|| {
            let task = spawn_named("panics", || -> Result<(), Error> {
                let _waits = WaitsOnDrop;
                panic!("task body");
            });
            log(format!("join: {}", outcome(&task.join())));
            Ok(())
        })
    })
    .join()
    .expect("the scenario thread");
    assert_eq!(
        trace,
        [
            "0.0 wait in drop: Misuse(a task cannot wait while it unwinds from a panic)",
            "0.0 join: Panicked(task body)",
            "result None",
            "end 0.0",
        ]
    );
}

/// The address of a local of the caller: a point on the stack it runs on.
#[inline(never)]
fn stack_address() -> usize {
    let local = 0u8;
    std::hint::black_box(&local) as *const u8 as usize
}

/// A generator that yields the address of a point on its stack.
fn reports_its_stack() -> Generator<usize> {
    Generator::new(|co| {
        co.yield_(stack_address());
    })
}

/// Whether two points lie on the same stack (of the default size).
fn same_stack(a: usize, b: usize) -> bool {
    a.abs_diff(b) < gencoro::stack::DEFAULT_STACK_SIZE
}

// Kills: src/generator/yielder.rs: replace + with * in Yielder<Y, S>::raw
#[test]
fn waiting_from_a_generator_whose_stack_lies_below_the_tasks_is_refused() {
    // tests/runtime_misuse.rs checks a nested generator whose stack was
    // carved after the task's, above it; here it lies below. On a fresh
    // thread (a stack pool of its own), two stacks are freed so that the
    // task gets the upper one and the generator the lower one: the free
    // list is last in, first out.
    let (result, _, _) = std::thread::spawn(|| {
        let (lower, upper) = (reports_its_stack(), reports_its_stack());
        let lower_at = lower.start().unwrap().yielded().unwrap();
        let upper_at = upper.start().unwrap().yielded().unwrap();
        assert!(lower_at < upper_at, "stacks carved in address order");
        drop(lower);
        drop(upper);
        run_virtual(move || {
            assert!(same_stack(stack_address(), upper_at), "the task runs on the upper stack");
            let nested: Generator<(usize, Result<(), ErrorKind>)> = Generator::new(|co| {
                let waited = runtime::sleep(secs(1.0)).map_err(|e| e.kind());
                co.yield_((stack_address(), waited));
            });
            let (nested_at, waited) = nested.resume().unwrap().yielded().unwrap();
            assert!(same_stack(nested_at, lower_at), "the generator runs on the lower stack");
            // The task itself can still wait.
            runtime::sleep(secs(2.0))?;
            Ok((waited, runtime::time()?))
        })
    })
    .join()
    .expect("the scenario thread");
    assert_eq!(result.expect("main returns"), (Err(ErrorKind::Misuse), secs(2.0)));
}

// Kills: src/generator/error.rs: replace <impl std::error::Error for YieldFromError<S>>::source -> Option<&(dyn std::error::Error +'static)> with None
#[test]
fn a_delegation_whose_delegate_gets_no_stack_has_the_stack_error_as_its_source() {
    use std::error::Error as _;
    // A stack this large cannot be mapped (a chunk of them overflows the
    // address space), so the delegate cannot start.
    let huge = usize::MAX / 4;
    let sub: Generator<u32, u32> = GeneratorBuilder::new()
        .stack_size(huge)
        .build(|co| {
            co.yield_(1);
        })
        .unwrap();
    let outer: Generator<u32, u32, (String, Option<String>)> = Generator::new(move |co| {
        let refused = co.yield_from(&sub).unwrap_err();
        assert!(matches!(refused, YieldFromError::NoStack(_)), "{refused:?}");
        assert_eq!(sub.state(), State::Created, "the delegate is left as it was");
        (refused.to_string(), refused.source().map(ToString::to_string))
    });
    let Ok(Step::Returned((message, source))) = outer.start() else {
        panic!("the delegator returns the refusal")
    };
    // The same stack error as a generator of that size reports on its own.
    let alone: Generator<u32> = GeneratorBuilder::new().stack_size(huge).build(|_| {}).unwrap();
    let Err(gencoro::ResumeError::NoStack(stack_error)) = alone.start() else {
        panic!("no stack for the generator alone either")
    };
    assert_eq!(message, format!("cannot start the generator delegated to: {stack_error}"));
    assert_eq!(source, Some(stack_error.to_string()));
}

// ---------------------------------------------------------------------------
// src/runtime/mod.rs
// ---------------------------------------------------------------------------

// Kills: src/runtime/mod.rs: replace EventLoop::clock -> &Clock with Box::leak(Box::new(Default::default()))
#[test]
fn an_event_loop_uses_the_clock_it_was_built_with() {
    let clock = Clock::virtual_time();
    let event_loop = Builder::new().clock(clock.clone()).build();
    assert!(event_loop.clock().is_virtual());
    event_loop.run_until_complete(|| runtime::sleep(secs(2.0))).expect("main sleeps");
    assert_eq!(event_loop.clock().now(), secs(2.0));
    assert_eq!(clock.now(), secs(2.0));
}

// Kills: src/runtime/mod.rs: replace && with || in <impl Drop for EventLoop>::drop
#[test]
fn dropping_a_borrowed_loop_handle_between_runs_leaves_the_loop_open() {
    let event_loop = Builder::new().clock(Clock::virtual_time()).build();
    type Kept = Option<(EventLoop, Task<&'static str>)>;
    let kept: Rc<RefCell<Kept>> = Rc::new(RefCell::new(None));
    {
        let kept = kept.clone();
        event_loop
            .run_until_complete(move || {
                let worker = spawn_named("worker", || {
                    sleep(5.0)?;
                    Ok("worker's value")
                });
                *kept.borrow_mut() = Some((EventLoop::running()?, worker));
                Ok(())
            })
            .expect("the first run");
    }
    let (borrowed, worker) = kept.borrow_mut().take().expect("kept by the first run");
    drop(borrowed);
    assert!(!event_loop.is_closed());
    let joined = event_loop.run_until_complete(move || worker.join()).expect("the second run");
    assert_eq!(joined, "worker's value");
    assert_eq!(event_loop.clock().now(), secs(5.0));
}

// Kills: src/runtime/mod.rs: replace <impl fmt::Debug for LoopHandle>::fmt -> fmt::Result with Ok(Default::default())
// Kills: src/runtime/mod.rs: replace <impl fmt::Debug for InFlight>::fmt -> fmt::Result with Ok(Default::default())
#[test]
fn a_loop_handle_debug_prints_the_work_in_flight() {
    let (result, _, _) = run_virtual(|| {
        let handle = LoopHandle::current()?;
        let idle = format!("{handle:?}");
        let guard = handle.in_flight();
        let busy = format!("{handle:?} {guard:?}");
        drop(guard);
        Ok((idle, busy))
    });
    let (idle, busy) = result.expect("main returns");
    assert_eq!(idle, "LoopHandle { in_flight: 0 }");
    assert_eq!(busy, "LoopHandle { in_flight: 1 } InFlight { .. }");
}

// Kills: src/runtime/mod.rs: delete ! in cancel_pending
#[test]
fn shutdown_reports_tasks_that_fail_while_cancelled_but_not_those_cancelled() {
    const NAME: &str = "shutdown_reports_tasks_that_fail_while_cancelled_but_not_those_cancelled";
    if is_child(NAME) {
        let trace = go(|| {
            spawn_named("fails", || -> Result<(), Error> {
                let _ = sleep(10.0);
                Err(boom("failed while cancelled"))
            });
            spawn_named("cancelled", || sleep(10.0));
            sleep(0.0)?;
            Ok(())
        });
        assert_eq!(trace, ["result None", "end 0.0"]);
        return;
    }
    // The report goes to stderr: the scenario runs in a child process.
    let (ok, _, stderr) = run_in_child(NAME);
    assert!(ok, "the child failed; stderr:\n{stderr}");
    let reports: Vec<&str> =
        stderr.lines().filter(|l| l.starts_with("gencoro: unhandled exception")).collect();
    assert_eq!(
        reports,
        [
            "gencoro: unhandled exception during run() shutdown (task 'fails'): failed while cancelled"
        ]
    );
}

// Kills: src/runtime/mod.rs: replace <impl fmt::Debug for CallHandle>::fmt -> fmt::Result with Ok(Default::default())
#[test]
fn a_call_handle_debug_prints_its_type() {
    let (result, _, _) = run_virtual(|| {
        let handle = runtime::call_later(secs(1.0), || {})?;
        Ok(format!("{handle:?}"))
    });
    assert_eq!(result.expect("main returns"), "CallHandle { .. }");
}

// Kills: src/runtime/mod.rs: replace EventLoop::is_closed -> bool with false
#[test]
fn a_running_loop_handle_kept_after_the_run_sees_the_loop_closed() {
    let kept: Rc<RefCell<Option<EventLoop>>> = Rc::new(RefCell::new(None));
    let trace = {
        let kept = kept.clone();
        go(move || {
            let handle = EventLoop::running()?;
            print(format!("closed inside the run: {}", handle.is_closed()));
            *kept.borrow_mut() = Some(handle);
            Ok(())
        })
    };
    assert_eq!(trace, ["closed inside the run: false", "result None", "end 0.0"]);
    let handle = kept.borrow_mut().take().expect("kept by main");
    assert!(handle.is_closed());
    let refused = handle.spawn(|| Ok(())).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Misuse);
}

// Kills: src/runtime/mod.rs: replace <impl PartialEq for EventLoop>::eq -> bool with false
#[test]
fn a_handle_from_inside_a_run_equals_the_loop_it_runs_on_and_no_other() {
    let event_loop = Builder::new().clock(Clock::virtual_time()).build();
    let other = Builder::new().clock(Clock::virtual_time()).build();
    let running = event_loop.run_until_complete(EventLoop::running).expect("the run");
    assert_eq!(running, event_loop);
    assert_ne!(running, other);
}

// ---------------------------------------------------------------------------
// src/runtime/core.rs
// ---------------------------------------------------------------------------

// Kills: src/runtime/core.rs: replace Core::run_batch_prefetching with ()
#[test]
fn a_ready_batch_of_thousands_of_tasks_runs_in_fifo_order() {
    // Above the batch size (2048) from which the loop prefetches each
    // task's stack one step ahead. The loop runs on a thread of its own so
    // that a loop that stops running its ready queue fails the test rather
    // than hanging it.
    const TASKS: usize = 2100;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (result, _, end) = run_virtual(|| {
            let order = Rc::new(RefCell::new(Vec::new()));
            let tasks: Vec<_> = (0..TASKS)
                .map(|i| {
                    let order = order.clone();
                    runtime::spawn(move || {
                        order.borrow_mut().push(i);
                        runtime::sleep(Duration::ZERO)?;
                        order.borrow_mut().push(i);
                        Ok(())
                    })
                })
                .collect();
            runtime::gather(tasks)?;
            Ok(order.take())
        });
        let _ = tx.send((result.map_err(|e| e.to_string()), end));
    });
    let (order, end) = rx.recv_timeout(Duration::from_secs(20)).expect("the loop finishes");
    let expected: Vec<usize> = (0..TASKS).chain(0..TASKS).collect();
    assert_eq!(order, Ok(expected));
    assert_eq!(end, Duration::ZERO);
}

thread_local! {
    /// The task the worker's callback cancels, on the loop's thread.
    static GATE: RefCell<Option<Task<()>>> = const { RefCell::new(None) };
}

// Kills: src/runtime/core.rs: replace Core::wait_for_outside_work -> bool with false
// Kills: src/runtime/core.rs: replace Remote::begin_work with ()
#[test]
fn with_nothing_ready_and_no_timer_the_loop_blocks_for_work_in_flight() {
    // The worker posts its callback well after the loop has run out of
    // things to do: the loop must block for it, not report a deadlock.
    let trace = go(|| {
        let gate_slot: Slot<()> = slot();
        let gate = {
            let gate_slot = gate_slot.clone();
            spawn_named("gate", move || {
                let itself = gate_slot.borrow_mut().take().expect("set before it starts");
                // Waits on itself: only a cancellation ends this wait.
                runtime::wait([itself], ReturnWhen::AllCompleted, None)?;
                Ok(())
            })
        };
        *gate_slot.borrow_mut() = Some(gate.clone());
        GATE.with(|g| *g.borrow_mut() = Some(gate.clone()));
        let handle = LoopHandle::current()?;
        let guard = handle.in_flight();
        let worker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            handle.call_soon_threadsafe(|| {
                if let Some(gate) = GATE.with(|g| g.borrow_mut().take()) {
                    log("the worker's callback cancels the gate");
                    gate.cancel();
                }
            });
            drop(guard);
        });
        log(format!("gate: {}", outcome(&gate.join())));
        worker.join().expect("the worker");
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "0.0 the worker's callback cancels the gate",
            "0.0 gate: CancelledError()",
            "result None",
            "end 0.0",
        ]
    );
}

// Kills: src/runtime/core.rs: replace drop_each with ()
#[test]
fn a_panicking_destructor_of_a_pending_timer_does_not_escape_the_end_of_the_run() {
    // The loop drops what is still queued when the run ends, each item on
    // its own: a panic in one is reported (on stderr) and the rest are
    // still dropped.
    let drops = Drops::default();
    let (result, _, _) = {
        let drops = drops.clone();
        run_virtual(move || {
            let panics = PanicsOnDrop("a timer's closure panicked when dropped");
            runtime::call_later(secs(100.0), move || drop(panics))?;
            let sentinel = drops.sentinel("the other timer's closure");
            runtime::call_later(secs(100.0), move || drop(sentinel))?;
            Ok(())
        })
    };
    assert!(result.is_ok());
    assert_eq!(drops.all(), ["the other timer's closure"]);
}

// ---------------------------------------------------------------------------
// src/runtime/cancel.rs
// ---------------------------------------------------------------------------

// Kills: src/runtime/cancel.rs: replace BatchState::hand_down with ()
#[test]
fn shutdown_hands_every_cancellation_request_to_a_task_that_several_tasks_join() {
    // `a` and `b` join `c`; main returns while they wait. Python's shutdown
    // cancels `a` (which cancels `c`, interrupting its sleep), `b` (which
    // cancels `c` again: its sleep is already cancelled, so `c` must cancel)
    // and `c` itself: three requests, delivered as one cancellation, since
    // `c`'s next step consumes `must_cancel` with the interrupted sleep.
    // `c` then sleeps on; `a` takes its value, so `b`'s join finds it gone.
    let trace = go(|| {
        let c = spawn_named("c", || {
            let first = sleep(10.0);
            log(format!("c: sleep -> {}, cancelling={}", outcome(&first), me().cancelling()));
            let second = sleep(1.0);
            log(format!("c: sleep again -> {}", outcome(&second)));
            second
        });
        for name in ["a", "b"] {
            let c = c.clone();
            spawn_named(name, move || {
                let joined = c.join();
                log(format!("{}: join c -> {}", current_name(), outcome(&joined)));
                joined
            });
        }
        sleep(0.0)?;
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "0.0 c: sleep -> CancelledError(), cancelling=3",
            "1.0 c: sleep again -> None",
            "1.0 a: join c -> None",
            "1.0 b: join c -> InvalidState(the task's value was already taken by an earlier join or result)",
            "result None",
            "end 1.0",
        ]
    );
}

// Kills: src/runtime/cancel.rs: delete ! in BatchState::hand_down
#[test]
fn shutdown_delivers_the_repeated_cancellation_of_a_joining_task_through_the_task_it_joins() {
    // `a` and `b` join `c`, which joins `d`, which sleeps; main returns.
    // Python's shutdown cancels a, b, c and d in turn: each request to `c`
    // goes on to `d` (`d.cancel()` returns True), so `c` is never marked
    // to cancel itself and its join returns `d`'s value, while `d`, whose
    // sleep is already cancelled, is (and takes all four as one).
    let trace = go(|| {
        let d = spawn_named("d", || {
            let slept = sleep(10.0);
            log(format!("d: sleep -> {}, cancelling={}", outcome(&slept), me().cancelling()));
            Ok("d's value")
        });
        let c = spawn_named("c", move || {
            let joined = d.join();
            log(format!("c: join d -> {}, cancelling={}", outcome(&joined), me().cancelling()));
            joined
        });
        for name in ["a", "b"] {
            let c = c.clone();
            spawn_named(name, move || c.join().map(|_| ()));
        }
        sleep(0.0)?;
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "0.0 d: sleep -> CancelledError(), cancelling=4",
            "0.0 c: join d -> d's value, cancelling=3",
            "result None",
            "end 0.0",
        ]
    );
}

// ---------------------------------------------------------------------------
// src/runtime/timers.rs
// ---------------------------------------------------------------------------

// Kills: src/runtime/timers.rs: replace Timers<A>::len -> usize with 0
#[test]
fn the_end_of_a_run_drops_its_pending_timers_while_a_loop_handle_is_kept() {
    // The teardown must see the queued timer; a handle from
    // `EventLoop::running()` keeps the loop's record alive after the run.
    let drops = Drops::default();
    let kept: Rc<RefCell<Option<EventLoop>>> = Rc::new(RefCell::new(None));
    let trace = {
        let (drops, kept) = (drops.clone(), kept.clone());
        go(move || {
            let sentinel = drops.sentinel("timer's closure");
            runtime::call_later(secs(100.0), move || drop(sentinel))?;
            *kept.borrow_mut() = Some(EventLoop::running()?);
            Ok(())
        })
    };
    assert_eq!(trace, ["result None", "end 0.0"]);
    assert_eq!(drops.all(), ["timer's closure"], "dropped by the end of the run");
    drop(kept);
    assert_eq!(drops.all(), ["timer's closure"]);
}

// ---------------------------------------------------------------------------
// src/runtime/clock.rs
// ---------------------------------------------------------------------------

// Kills: src/runtime/clock.rs: replace Clock::is_virtual -> bool with true
#[test]
fn only_a_virtual_clock_says_it_is_virtual() {
    assert!(Clock::virtual_time().is_virtual());
    assert!(!Clock::real_time().is_virtual());
}

// Kills: src/runtime/clock.rs: replace <impl fmt::Debug for Clock>::fmt -> fmt::Result with Ok(Default::default())
#[test]
fn a_clock_debug_prints_its_kind_and_time() {
    let clock = Clock::virtual_time();
    assert_eq!(format!("{clock:?}"), r#"Clock { kind: "virtual", now: 0ns }"#);
    Builder::new()
        .clock(clock.clone())
        .run(|| runtime::sleep(secs(1.5)))
        .expect("main sleeps and returns");
    assert_eq!(format!("{clock:?}"), r#"Clock { kind: "virtual", now: 1.5s }"#);
    assert!(format!("{:?}", Clock::real_time()).starts_with(r#"Clock { kind: "real", now: "#));
}

// ---------------------------------------------------------------------------
// src/runtime/combinators.rs
// ---------------------------------------------------------------------------

// Kills: src/runtime/combinators.rs: delete match arm FutState::Cancelled in shield
#[test]
fn shield_of_a_task_cancelled_with_a_message_raises_a_bare_cancellation() {
    // Python: the shield's outer future is cancelled without the message
    // (`outer.cancel()` in `_inner_done_callback`).
    let trace = go(|| {
        let inner = spawn_named("inner", || sleep(10.0));
        let target = inner.clone();
        let _canceller = spawn_named("canceller", move || {
            sleep(1.0)?;
            target.cancel_with("bye");
            Ok(())
        });
        let shielded = runtime::shield(&inner);
        log(format!("shield: {}", outcome(&shielded)));
        log(format!("inner: {}", outcome(&inner.result())));
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "1.0 shield: CancelledError()",
            "1.0 inner: CancelledError(bye)",
            "result None",
            "end 1.0",
        ]
    );
}

// Kills: src/runtime/combinators.rs: delete ! in shield
// Kills: src/runtime/task.rs: replace Header::remove_callback with ()
// Kills: src/runtime/report.rs: replace ExceptionContext::task_name -> Option<&str> with Some("")
#[test]
fn a_task_that_fails_after_its_shield_was_cancelled_reports_its_failure_as_never_retrieved() {
    // Python: a cancelled shield removes its callback from the inner task
    // (`_outer_done_callback`), so nothing reads the inner task's later
    // failure, and its destruction reports it.
    fn handler(cx: &ExceptionContext) {
        print(format!("report: {} ({})", cx.message(), cx.task_name().unwrap_or("?")));
    }
    take_trace();
    let clock = Clock::virtual_time();
    let result = Builder::new().clock(clock.clone()).exception_handler(handler).run(|| {
        let inner = spawn_named("inner", || -> Result<(), Error> {
            sleep(2.0)?;
            Err(boom("late"))
        });
        let waiter = {
            let inner = inner.clone();
            spawn_named("waiter", move || {
                log(format!("shield: {}", outcome(&runtime::shield(&inner))));
                Ok(())
            })
        };
        sleep(1.0)?;
        waiter.cancel();
        waiter.join()?;
        sleep(2.0)?;
        log(format!("inner done={}", inner.is_done().py()));
        drop(inner);
        log("inner dropped");
        Ok(())
    });
    assert!(result.is_ok());
    assert_eq!(
        take_trace(),
        [
            "1.0 shield: CancelledError()",
            "3.0 inner done=True",
            "report: Task exception was never retrieved (inner)",
            "3.0 inner dropped",
        ]
    );
}

// ---------------------------------------------------------------------------
// src/runtime/future.rs
// ---------------------------------------------------------------------------

// Kills: src/runtime/future.rs: delete match arm (Some(e), FutState::Cancelled) in FutureCell::finish
#[test]
fn a_task_cancelled_after_its_shield_was_raises_the_shields_cancellation() {
    // The shield's outer future is cancelled (its inner task was), which
    // queues the waiter's wake-up; a done callback that runs before that
    // wake-up then cancels the waiter with a message. As in Python (the
    // wake-up raises the future's CancelledError, which `_must_cancel`
    // keeps), the waiter sees the shield's cancellation, without the message.
    let trace = go(|| {
        let inner = spawn_named("inner", || sleep(10.0));
        let waiter = {
            let inner = inner.clone();
            spawn_named("waiter", move || Ok(outcome(&runtime::shield(&inner))))
        };
        sleep(1.0)?;
        let target = waiter.clone();
        inner.add_done_callback(move |_| {
            target.cancel_with("waiter's message");
        })?;
        inner.cancel();
        log(format!("waiter saw: {}", waiter.join()?));
        Ok(())
    });
    assert_eq!(trace, ["1.0 waiter saw: CancelledError()", "result None", "end 1.0"]);
}

// Kills: src/runtime/future.rs: replace match guard !self.is_done() with false in <impl Awaitable for FutureCell>::cancel_edges
// Kills: src/runtime/future.rs: delete ! in <impl Awaitable for FutureCell>::cancel_edges
#[test]
fn shutdown_cancels_a_wait_cycle_through_a_gather_without_a_deadlock() {
    // `a` gathers `b`, which joins `a`; main returns while both wait. The
    // shutdown must see the cycle through the gather (and cancel each task
    // on its own) or its batched cancellation leaves both waiting forever.
    // `a` gets both requests as one cancellation and suppresses it; `b`'s
    // request went on to `a`, so `b`'s join returns `a`'s value.
    let trace = go(|| {
        let a_slot: Slot<()> = slot();
        let b = {
            let a_slot = a_slot.clone();
            spawn_named("b", move || {
                let a = a_slot.borrow().clone().expect("a is spawned before b starts");
                let joined = a.join();
                log(format!("b: join a -> {}, cancelling={}", outcome(&joined), me().cancelling()));
                sleep(1.0)
            })
        };
        let a = spawn_named("a", move || {
            let gathered = runtime::gather([b]).map(|_| ());
            log(format!("a: gather -> {}, cancelling={}", outcome(&gathered), me().cancelling()));
            sleep(1.0)
        });
        *a_slot.borrow_mut() = Some(a);
        sleep(0.0)?;
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "0.0 a: gather -> CancelledError(), cancelling=2",
            "1.0 b: join a -> None, cancelling=2",
            "result None",
            "end 2.0",
        ]
    );
}

// ---------------------------------------------------------------------------
// src/runtime/promise.rs
// ---------------------------------------------------------------------------

// Kills: src/runtime/promise.rs: replace Promise<T>::cancel_with -> bool with false
// Kills: src/runtime/promise.rs: replace Promise<T>::cancel_inner -> bool with true
#[test]
fn a_promise_cancelled_with_a_message_says_so_once_and_its_waiter_gets_the_message() {
    let kept: Rc<RefCell<Option<Promise<u32>>>> = Rc::new(RefCell::new(None));
    let trace = {
        let kept = kept.clone();
        go(move || {
            let fut: Promise<u32> = Promise::new()?;
            let waiter = {
                let fut = fut.clone();
                spawn_named("waiter", move || Ok(outcome(&fut.wait())))
            };
            sleep(1.0)?;
            let cancelled = fut.cancel_with("stop");
            log(format!("cancel -> {}, cancelled={}", cancelled.py(), fut.is_cancelled().py()));
            log(format!("cancel again -> {}", fut.cancel_with("again").py()));
            log(format!("waiter saw: {}", waiter.join()?));
            let done: Promise<u32> = Promise::new()?;
            done.set_result(1).expect("a new promise is pending");
            log(format!("cancel a done promise -> {}", done.cancel().py()));
            *kept.borrow_mut() = Some(Promise::new()?);
            Ok(())
        })
    };
    assert_eq!(
        trace,
        [
            "1.0 cancel -> True, cancelled=True",
            "1.0 cancel again -> False",
            "1.0 waiter saw: CancelledError(stop)",
            "1.0 cancel a done promise -> False",
            "result None",
            "end 1.0",
        ]
    );
    let orphan = kept.borrow_mut().take().expect("kept by main");
    let was_done = orphan.is_done();
    assert!(!orphan.cancel(), "its loop is gone");
    assert_eq!(orphan.is_done(), was_done, "a cancel without a loop changes nothing");
}

// Kills: src/runtime/promise.rs: replace <impl fmt::Debug for AlreadyDone<T>>::fmt -> fmt::Result with Ok(Default::default())
#[test]
fn setting_a_done_promise_hands_the_value_back_in_an_already_done_error() {
    let (result, _, _) = run_virtual(|| {
        let fut: Promise<String> = Promise::new()?;
        fut.set_result("first".to_owned()).expect("a new promise is pending");
        let refused = fut.set_result("second".to_owned()).unwrap_err();
        Ok((format!("{refused:?}"), refused.0, fut.result()?))
    });
    let (debug, handed_back, kept) = result.expect("main returns");
    assert_eq!(debug, "AlreadyDone(..)");
    assert_eq!((handed_back.as_str(), kept.as_str()), ("second", "first"));
}

// ---------------------------------------------------------------------------
// src/runtime/task_group.rs
// ---------------------------------------------------------------------------

// Kills: src/runtime/task_group.rs: replace <impl fmt::Debug for TaskGroup>::fmt -> fmt::Result with Ok(Default::default())
#[test]
fn a_task_group_debug_prints_its_task_and_error_counts() {
    let trace = go(|| {
        let grouped = runtime::task_group(|tg| {
            print(format!("{tg:?}"));
            tg.spawn(|| sleep(1.0))?;
            tg.spawn(|| -> Result<(), Error> { Err(boom("a")) })?;
            print(format!("{tg:?}"));
            let slept = sleep(0.5);
            print(format!("{tg:?}"));
            slept
        });
        print(format!("group: {}", outcome(&grouped)));
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "TaskGroup { tasks: 0, errors: 0, aborting: false, finished: false }",
            "TaskGroup { tasks: 2, errors: 0, aborting: false, finished: false }",
            "TaskGroup { tasks: 1, errors: 1, aborting: true, finished: false }",
            "group: ExceptionGroup[Boom(a)]",
            "result None",
            "end 0.0",
        ]
    );
}

// ---------------------------------------------------------------------------
// src/runtime/error.rs
// ---------------------------------------------------------------------------

// Kills: src/runtime/error.rs: replace <impl fmt::Debug for Error>::fmt -> fmt::Result with Ok(Default::default())
// Kills: src/runtime/error.rs: delete ! in <impl fmt::Debug for Error>::fmt
#[test]
fn an_error_debug_prints_its_kind_message_and_sub_errors() {
    assert_eq!(
        format!("{:?}", Error::cancelled(Some("bye"))),
        r#"Error { kind: Cancelled, message: "bye" }"#
    );
    let (result, _, _) = run_virtual(|| {
        runtime::task_group(|tg| {
            tg.spawn(|| -> Result<(), Error> { Err(boom("a")) })?;
            Ok(())
        })
    });
    let group = result.unwrap_err();
    assert_eq!(
        format!("{group:?}"),
        r#"Error { kind: Group, message: "unhandled errors in a TaskGroup", errors: [Error { kind: Failed, message: "a" }] }"#
    );
}

// Kills: src/runtime/error.rs: replace match guard message.is_empty() with false in <impl fmt::Display for Error>::fmt
// Kills: src/runtime/error.rs: replace Error::is_timeout -> bool with true
#[test]
fn a_timeout_error_displays_as_timed_out() {
    assert_eq!(Error::timeout().to_string(), "timed out");
    assert!(Error::timeout().is_timeout());
    assert!(!Error::cancelled(None).is_timeout());
    let (result, _, _) =
        run_virtual(|| runtime::timeout(Some(secs(1.0)), |_| runtime::sleep(secs(5.0))));
    assert_eq!(result.unwrap_err().to_string(), "timed out");
}

// Kills: src/runtime/error.rs: replace match guard message.is_empty() with true in <impl fmt::Display for Error>::fmt
// (the guard of the Cancelled arm; also "with false")
// Kills: src/runtime/error.rs: delete match arm ErrorKind::Cancelled in <impl fmt::Display for Error>::fmt
#[test]
fn a_cancellation_displays_its_message_if_it_has_one() {
    assert_eq!(Error::cancelled(None).to_string(), "cancelled");
    assert_eq!(Error::cancelled(Some("bye")).to_string(), "cancelled: bye");
    let trace = go(|| {
        let worker = spawn_named("worker", || sleep(10.0));
        sleep(1.0)?;
        worker.cancel_with("enough");
        Ok(worker.join().unwrap_err().to_string())
    });
    assert_eq!(trace, ["result cancelled: enough", "end 1.0"]);
}

// Kills: src/runtime/error.rs: replace <impl std::error::Error for Error>::source -> Option<&(dyn std::error::Error +'static)> with None
#[test]
fn a_failure_from_a_user_error_has_it_as_its_source() {
    use std::error::Error as _;
    let failed = Error::new(Boom("b".to_owned()));
    let source = failed.source().expect("the user error is the source");
    assert_eq!(source.to_string(), "b");
    assert!(source.downcast_ref::<Boom>().is_some());
    assert!(Error::cancelled(None).source().is_none());
}

// Kills: src/runtime/error.rs: delete match arm ErrorKind::Panicked in <impl fmt::Display for Error>::fmt
// Kills: src/runtime/error.rs: replace Error::is_panic -> bool with true
#[test]
fn a_panicked_task_displays_as_task_panicked() {
    let (result, _, _) = run_virtual(|| {
        let task = runtime::spawn(|| -> Result<(), Error> { panic!("oops") });
        let e = task.join().unwrap_err();
        Ok((e.to_string(), e.is_panic()))
    });
    assert_eq!(result.expect("main returns"), ("task panicked: oops".to_owned(), true));
    assert!(!Error::cancelled(None).is_panic());
    assert!(!Error::new(Boom("b".to_owned())).is_panic());
}

// Kills: src/runtime/error.rs: replace != with == in <impl fmt::Display for Error>::fmt
// Kills: src/runtime/error.rs: delete match arm ErrorKind::Group in <impl fmt::Display for Error>::fmt
#[test]
fn a_group_error_displays_how_many_sub_exceptions_it_holds() {
    for failing in [1, 2] {
        let (result, _, _) = run_virtual(move || {
            runtime::task_group(|tg| {
                for i in 0..failing {
                    tg.spawn(move || -> Result<(), Error> { Err(boom(&format!("b{i}"))) })?;
                }
                Ok(())
            })
        });
        let expected = match failing {
            1 => "unhandled errors in a TaskGroup (1 sub-exception)",
            _ => "unhandled errors in a TaskGroup (2 sub-exceptions)",
        };
        assert_eq!(result.unwrap_err().to_string(), expected);
    }
}

// ---------------------------------------------------------------------------
// src/runtime/task.rs
// ---------------------------------------------------------------------------

// Kills: src/runtime/task.rs: replace <impl fmt::Debug for Task<T>>::fmt -> fmt::Result with Ok(Default::default())
// Kills: src/runtime/task.rs: replace TaskRef::is_cancelled -> bool with true (and "with false")
#[test]
fn a_task_debug_prints_id_name_and_state_and_its_ref_knows_if_it_was_cancelled() {
    let trace = go(|| {
        let done = spawn_named("done", || Ok(()));
        let cancelled = spawn_named("cancelled", || sleep(10.0));
        let refs = [done.as_ref(), cancelled.as_ref()];
        sleep(1.0)?;
        cancelled.cancel();
        sleep(1.0)?;
        for (task, task_ref) in [done, cancelled].iter().zip(&refs) {
            let debug = format!("{task:?}").replace(&task.id().to_string(), "<id>");
            log(format!("{debug}: ref cancelled={}", task_ref.is_cancelled()));
        }
        log(format!("main: ref cancelled={}", me().is_cancelled()));
        Ok(())
    });
    assert_eq!(
        trace,
        [
            r#"2.0 Task { id: <id>, name: "done", state: Finished }: ref cancelled=false"#,
            r#"2.0 Task { id: <id>, name: "cancelled", state: Cancelled }: ref cancelled=true"#,
            "2.0 main: ref cancelled=false",
            "result None",
            "end 2.0",
        ]
    );
}

// Kills: src/runtime/task.rs: replace TaskRef::waiting_on -> String with String::new()
#[test]
fn a_task_ref_says_what_its_task_waits_on() {
    let trace = go(|| {
        let sleeper = spawn_named("sleeper", || sleep(5.0));
        let joiner = {
            let sleeper = sleeper.clone();
            spawn_named("joiner", move || sleeper.join())
        };
        let refs = [sleeper.as_ref(), joiner.as_ref()];
        for r in &refs {
            log(format!("{}: {}", r.name(), r.waiting_on()));
        }
        sleep(1.0)?;
        for r in &refs {
            log(format!("{}: {}", r.name(), r.waiting_on()));
        }
        joiner.join()
    });
    assert_eq!(
        trace,
        [
            "0.0 sleeper: nothing (it is ready to run)",
            "0.0 joiner: nothing (it is ready to run)",
            "1.0 sleeper: a sleep",
            "1.0 joiner: task 'sleeper'",
            "result None",
            "end 5.0",
        ]
    );
}

// Kills: src/runtime/task.rs: replace Task<T>::uncancel -> u32 with 0 (and "with 1")
#[test]
fn uncancel_withdraws_one_request_and_returns_how_many_remain() {
    let trace = go(|| {
        let worker = spawn_named("worker", || {
            let first = sleep(10.0);
            log(format!("worker: {}, cancelling={}", outcome(&first), me().cancelling()));
            sleep(1.0)
        });
        sleep(1.0)?;
        worker.cancel();
        worker.cancel();
        log(format!("cancelling={}", worker.cancelling()));
        log(format!("uncancel -> {}", worker.uncancel()));
        log(format!("uncancel -> {}", worker.uncancel()));
        log(format!("uncancel -> {}", worker.uncancel()));
        worker.join()
    });
    assert_eq!(
        trace,
        [
            "1.0 cancelling=2",
            "1.0 uncancel -> 1",
            "1.0 uncancel -> 0",
            "1.0 uncancel -> 0",
            "1.0 worker: CancelledError(), cancelling=0",
            "result None",
            "end 2.0",
        ]
    );
}

// Kills: src/runtime/task.rs: replace TaskRef::is_done -> bool with true (and "with false")
#[test]
fn a_task_ref_is_done_only_once_its_task_is() {
    let trace = go(|| {
        let worker = spawn_named("worker", || sleep(1.0));
        let worker_ref = worker.as_ref();
        log(format!("pending: done={}", worker_ref.is_done()));
        log(format!("main itself: done={}", me().is_done()));
        worker.join()?;
        log(format!("joined: done={}", worker_ref.is_done()));
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "0.0 pending: done=false",
            "0.0 main itself: done=false",
            "1.0 joined: done=true",
            "result None",
            "end 1.0",
        ]
    );
}

// Kills: src/runtime/task.rs: replace == with != in Callbacks::remove (both: the check of the
// first callback and the search of the others)
// Kills: src/runtime/core.rs: replace + with * in Core::next_callback_id
#[test]
fn a_wait_that_times_out_removes_only_its_own_done_callback() {
    let trace = go(|| {
        let slow = spawn_named("slow", || sleep(2.0));
        for n in 1..=2 {
            slow.add_done_callback(move |t| {
                log(format!("done callback {n}: {} finished", t.name()))
            })?;
        }
        let waited = runtime::wait([slow.clone()], ReturnWhen::AllCompleted, Some(secs(1.0)))?;
        log(format!("wait: {} done, {} pending", waited.done.len(), waited.pending.len()));
        slow.join()?;
        log("joined");
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "1.0 wait: 0 done, 1 pending",
            "2.0 done callback 1: slow finished",
            "2.0 done callback 2: slow finished",
            "2.0 joined",
            "result None",
            "end 2.0",
        ]
    );
}

// Kills: src/runtime/task.rs: replace TaskRef::id -> u64 with 1
// Kills: src/runtime/task.rs: replace <impl fmt::Debug for TaskRef>::fmt -> fmt::Result with Ok(Default::default())
#[test]
fn a_task_ref_has_its_tasks_id_and_debug_prints_id_name_and_state() {
    let trace = go(|| {
        let worker = spawn_named("worker", || sleep(1.0));
        let worker_ref = worker.as_ref();
        print(format!("same id: {}", worker_ref.id() == worker.id()));
        print(format!("main's id differs: {}", me().id() != worker.id()));
        let debug = format!("{worker_ref:?}");
        let expected =
            format!(r#"TaskRef {{ id: {}, name: "worker", state: Pending }}"#, worker.id());
        print(format!("debug while pending: {}", debug == expected));
        worker.join()?;
        print(format!("{:?}", worker_ref).replace(&worker.id().to_string(), "<id>"));
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "same id: true",
            "main's id differs: true",
            "debug while pending: true",
            r#"TaskRef { id: <id>, name: "worker", state: Finished }"#,
            "result None",
            "end 1.0",
        ]
    );
}

// Kills: src/runtime/task.rs: delete match arm FutState::Cancelled in TaskCell<T>::complete
#[test]
fn a_task_cancelled_once_the_task_it_joins_was_raises_that_tasks_cancellation() {
    // `inner` ends cancelled, which queues the joiner's wake-up; main runs
    // before that wake-up and cancels the joiner with a message, which can
    // only mark it to cancel (what it waits on is done). As in Python (the
    // wake-up raises inner's CancelledError, which `_must_cancel` keeps),
    // the joiner sees inner's cancellation, with inner's message.
    let trace = go(|| {
        let inner = spawn_named("inner", || sleep(10.0));
        let joiner = {
            let inner = inner.clone();
            spawn_named("joiner", move || Ok(outcome(&inner.join())))
        };
        sleep(1.0)?;
        inner.cancel_with("inner's message");
        sleep(0.0)?;
        let cancelled = joiner.cancel_with("joiner's message");
        log(format!("inner done={}, cancel joiner -> {}", inner.is_done().py(), cancelled.py()));
        log(format!("joiner saw: {}", joiner.join()?));
        Ok(())
    });
    assert_eq!(
        trace,
        [
            "1.0 inner done=True, cancel joiner -> True",
            "1.0 joiner saw: CancelledError(inner's message)",
            "result None",
            "end 1.0",
        ]
    );
}
