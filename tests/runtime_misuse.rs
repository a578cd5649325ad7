//! Misusing the loop gets a clear error, never a hang, an abort or
//! undefined behaviour; and work posted from another thread runs on the
//! loop's thread.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use gencoro::Generator;
use gencoro::runtime::{
    self, Builder, Clock, Error, ErrorKind, EventLoop, LoopHandle, TaskBuilder,
};

fn virtual_loop() -> Builder {
    Builder::new().clock(Clock::virtual_time())
}

#[test]
fn waiting_outside_a_loop_is_no_running_loop() {
    let e = runtime::sleep(Duration::from_secs(1)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoRunningLoop);
    let e = runtime::sleep(Duration::ZERO).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoRunningLoop);
    assert_eq!(runtime::time().unwrap_err().kind(), ErrorKind::NoRunningLoop);
    assert_eq!(runtime::current_task().unwrap_err().kind(), ErrorKind::NoRunningLoop);
    let e = TaskBuilder::new().spawn(|| Ok(())).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoRunningLoop);
    assert_eq!(e.message(), "no running event loop");
}

#[test]
fn spawn_outside_a_loop_panics_with_a_clear_message() {
    let payload = std::panic::catch_unwind(|| runtime::spawn(|| Ok(()))).unwrap_err();
    let message = payload.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("no running event loop"), "{message:?}");
}

#[test]
fn waiting_in_a_plain_callback_is_an_error_not_a_suspension() {
    let seen = Rc::new(RefCell::new(None));
    let s = seen.clone();
    virtual_loop()
        .run(move || {
            runtime::call_soon(move || {
                *s.borrow_mut() = Some(runtime::sleep(Duration::ZERO).map_err(|e| e.kind()));
            })?;
            runtime::sleep(Duration::ZERO)?;
            Ok(())
        })
        .unwrap();
    assert_eq!(*seen.borrow(), Some(Err(ErrorKind::NoRunningLoop)));
}

/// A plain generator resumed inside a task runs on a stack of its own: a
/// wait from there cannot suspend the task, and is refused.
#[test]
fn waiting_from_a_generator_nested_in_a_task_is_refused() {
    let outcome = virtual_loop().run(|| {
        let inner: Generator<Result<(), ErrorKind>> = Generator::new(|co| {
            let r = runtime::sleep(Duration::from_secs(1)).map_err(|e| e.kind());
            co.yield_(r);
        });
        let refused = inner.resume().unwrap().yielded().unwrap();
        // The task itself can still wait normally.
        runtime::sleep(Duration::from_secs(2))?;
        Ok((refused, runtime::time()?))
    });
    let (refused, time) = outcome.unwrap();
    assert_eq!(refused, Err(ErrorKind::Misuse));
    assert_eq!(time, Duration::from_secs(2));
}

#[test]
fn joining_a_pending_task_from_outside_a_task_is_an_error() {
    let event_loop = virtual_loop().build();
    let task = event_loop
        .spawn(|| {
            runtime::sleep(Duration::from_secs(1))?;
            Ok(5)
        })
        .unwrap();
    assert_eq!(task.join().unwrap_err().kind(), ErrorKind::NoRunningLoop);
    let e = task.result().unwrap_err();
    assert_eq!((e.kind(), e.message()), (ErrorKind::InvalidState, "Result is not set."));
    let t = task.clone();
    assert_eq!(event_loop.run_until_complete(move || t.join()).unwrap(), 5);
    // The value moved out on the first retrieval.
    assert_eq!(task.result().unwrap_err().kind(), ErrorKind::InvalidState);
}

#[test]
fn running_a_loop_that_is_already_running_is_an_error() {
    let messages = virtual_loop()
        .run(|| {
            let nested_run = runtime::run(|| Ok(())).unwrap_err();
            let this_loop = EventLoop::running()?.run_until_complete(|| Ok(())).unwrap_err();
            let other_loop = virtual_loop().build().run_until_complete(|| Ok(())).unwrap_err();
            Ok([nested_run, this_loop, other_loop].map(|e| (e.kind(), e.message().to_owned())))
        })
        .unwrap();
    assert_eq!(
        messages,
        [
            (
                ErrorKind::NestedRun,
                "asyncio.run() cannot be called from a running event loop".into()
            ),
            (ErrorKind::NestedRun, "This event loop is already running".into()),
            (
                ErrorKind::NestedRun,
                "Cannot run the event loop while another loop is running".into()
            ),
        ]
    );
}

#[test]
fn a_failing_main_is_returned_and_the_loop_can_run_again() {
    let e =
        virtual_loop().run(|| -> Result<(), Error> { Err(Error::new("bad input")) }).unwrap_err();
    assert_eq!((e.kind(), e.message()), (ErrorKind::Failed, "bad input"));
    assert_eq!(virtual_loop().run(|| Ok(7)).unwrap(), 7);
}

/// Work posted from another thread runs on the loop's thread, between
/// steps of its tasks.
#[test]
fn call_soon_threadsafe_runs_on_the_loop_thread() {
    let loop_thread = thread::current().id();
    let ran_on = virtual_loop()
        .run(move || {
            let handle = LoopHandle::current()?;
            let (tx, rx) = mpsc::channel();
            let poster = thread::spawn(move || {
                assert!(handle.call_soon_threadsafe(move || {
                    tx.send(thread::current().id()).unwrap();
                }));
            });
            poster.join().unwrap();
            loop {
                if let Ok(id) = rx.try_recv() {
                    return Ok(id);
                }
                runtime::sleep(Duration::ZERO)?;
            }
        })
        .unwrap();
    assert_eq!(ran_on, loop_thread);
}

/// With nothing ready and no timer armed, the loop waits for outside work
/// declared in flight instead of reporting a deadlock: the work's callback
/// runs first, and the deadlock is reported only once the work has ended.
#[test]
fn the_loop_waits_for_work_in_flight_before_reporting_a_deadlock() {
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let e = virtual_loop()
        .run(move || {
            let guard = LoopHandle::current()?.in_flight();
            let handle = LoopHandle::current()?;
            let worker = thread::spawn(move || {
                handle.call_soon_threadsafe(move || r.store(true, Ordering::SeqCst));
                drop(guard);
            });
            // Two tasks that wait on each other: stuck for good.
            let slot: Rc<RefCell<Option<runtime::Task<()>>>> = Rc::default();
            let s = slot.clone();
            let a = runtime::spawn(move || {
                let b = s.borrow().clone().expect("b is set before a runs");
                b.join()
            });
            let a2 = a.clone();
            *slot.borrow_mut() = Some(runtime::spawn(move || a2.join()));
            let outcome = a.join();
            worker.join().unwrap();
            outcome
        })
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Deadlock);
    assert!(ran.load(Ordering::SeqCst), "the posted callback ran before the deadlock was declared");
}

/// Loops can be told apart: a handle from `EventLoop::running()` equals its
/// owner and has its id; another loop does not; a closed loop says so.
#[test]
fn loops_are_told_apart_and_report_being_closed() {
    use gencoro::runtime::{Builder, Clock, EventLoop};
    let first = Builder::new().clock(Clock::virtual_time()).build();
    let second = Builder::new().clock(Clock::virtual_time()).build();
    assert_ne!(first, second);
    assert_ne!(first.id(), second.id());
    let (id, same) = {
        let first_id = first.id();
        first
            .run_until_complete(move || {
                let here = EventLoop::running()?;
                Ok((here.id(), here.id() == first_id))
            })
            .unwrap()
    };
    assert_eq!(id, first.id());
    assert!(same);
    let kept = std::rc::Rc::new(std::cell::RefCell::new(None));
    let k = kept.clone();
    second
        .run_until_complete(move || {
            *k.borrow_mut() = Some(EventLoop::running()?);
            Ok(())
        })
        .unwrap();
    assert!(!second.is_closed());
    drop(second);
    let handle = kept.borrow_mut().take().expect("kept a handle");
    assert!(handle.is_closed(), "{handle:?}");
}
