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

use common::*;
use gencoro::runtime::{self, Builder, Clock, Error, ErrorKind, EventLoop};
use gencoro::{Generator, GeneratorBuilder, SendError, State, Step, YieldFromError};

// ---------------------------------------------------------------------------
// src/generator/
// ---------------------------------------------------------------------------

// Kills: src/generator/mod.rs: replace Generator<Y, S, R>::stack_size -> usize with 1
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
    assert_eq!(format!("{g:?}"), format!("Generator {{ state: Suspended, stack_size: {size}, .. }}"));
}

// ---------------------------------------------------------------------------
// src/runtime/mod.rs
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// src/runtime/clock.rs
// ---------------------------------------------------------------------------

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
// src/runtime/error.rs
// ---------------------------------------------------------------------------

// Kills: src/runtime/error.rs: replace <impl fmt::Debug for Error>::fmt -> fmt::Result with Ok(Default::default())
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

// ---------------------------------------------------------------------------
// src/runtime/task.rs
// ---------------------------------------------------------------------------

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
        let expected = format!(r#"TaskRef {{ id: {}, name: "worker", state: Pending }}"#, worker.id());
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
