//! Regressions for defects a code review found: each test failed (or
//! crashed the process) before its fix.

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::process::Command;
use std::rc::Rc;
use std::time::Duration;

use gencoro::runtime::{self, Builder, Clock, Error, ErrorKind, EventLoop};
use gencoro::{Generator, GeneratorExit, Step, Yielder};

fn virtual_loop() -> Builder {
    Builder::new().clock(Clock::virtual_time())
}

/// Re-runs this test binary for one test in a child process, for tests
/// whose failure mode is a crash, or that leave the thread panicking.
fn in_child(test: &str) -> std::process::Output {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads", "1"])
        .env("GENCORO_REVIEW_CHILD", test)
        .output()
        .expect("the test binary runs")
}

fn is_child(test: &str) -> bool {
    std::env::var("GENCORO_REVIEW_CHILD").as_deref() == Ok(test)
}

/// A `GeneratorExit` unwinding out of a task body (not the loop closing
/// it) fails that task; it must not leave the task's yielder installed for
/// the next coroutine that gets its stack.
#[test]
fn generator_exit_raised_in_a_task_fails_the_task_and_leaves_no_stale_yielder() {
    let e = virtual_loop()
        .run(|| -> Result<(), Error> {
            let t =
                runtime::spawn(|| -> Result<(), Error> { resume_unwind(Box::new(GeneratorExit)) });
            t.join()
        })
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Panicked);
    // A plain generator on a recycled stack, waiting outside any task.
    let g: Generator<u64, (), String> =
        Generator::new(|_co| format!("{:?}", runtime::sleep(Duration::ZERO).map_err(|e| e.kind())));
    assert_eq!(g.resume(), Ok(Step::Returned("Err(NoRunningLoop)".to_owned())));
}

/// Dropping an unstarted generator whose captures panic while dropped drops
/// each capture once (it was dropped twice: a double free).
#[test]
fn a_panicking_capture_of_an_unstarted_generator_is_dropped_once() {
    struct PanicOnDrop(Rc<Cell<u32>>);
    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
            panic!("capture dropped");
        }
    }
    let drops = Rc::new(Cell::new(0));
    let capture = PanicOnDrop(drops.clone());
    let g: Generator<u32> = Generator::new(move |co| {
        let _keep = &capture;
        co.yield_(1);
    });
    let panicked = catch_unwind(AssertUnwindSafe(|| g.close())).is_err();
    assert!(panicked, "the capture's panic propagates out of close");
    assert_eq!(drops.get(), 1);
    assert!(g.is_closed());
    drop(g);
    assert_eq!(drops.get(), 1);
}

/// A destructor that yields while a panic unwinds the body leaves the
/// generator suspended mid-unwind; closing it must not unwind into that
/// destructor again (which aborted the process).
#[test]
fn closing_a_generator_suspended_in_a_panic_unwind_does_not_abort() {
    const NAME: &str = "closing_a_generator_suspended_in_a_panic_unwind_does_not_abort";
    if is_child(NAME) {
        struct YieldOnDrop<'a>(&'a Yielder<u32>);
        impl Drop for YieldOnDrop<'_> {
            fn drop(&mut self) {
                self.0.yield_(2);
            }
        }
        let g: Generator<u32> = Generator::new(|co| {
            let _guard = YieldOnDrop(co);
            co.yield_(1);
            panic!("body fails");
        });
        assert_eq!(g.resume(), Ok(Step::Yielded(1)));
        // The panic starts; the guard yields from inside the unwind.
        assert_eq!(g.resume(), Ok(Step::Yielded(2)));
        assert_eq!(g.close(), Ok(()));
        assert!(g.is_closed());
        println!("CHILD closed");
        return;
    }
    let out = in_child(NAME);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("CHILD closed"), "{out:?}");
}

/// At the loop level, a destructor that waits while its task unwinds from
/// a panic gets an error instead of suspending mid-unwind.
#[test]
fn waiting_while_a_task_unwinds_is_refused() {
    let seen = Rc::new(RefCell::new(None));
    let s = seen.clone();
    let e = virtual_loop()
        .run(move || {
            struct SleepOnDrop(Rc<RefCell<Option<ErrorKind>>>);
            impl Drop for SleepOnDrop {
                fn drop(&mut self) {
                    *self.0.borrow_mut() =
                        runtime::sleep(Duration::from_secs(1)).err().map(|e| e.kind());
                }
            }
            let t = runtime::spawn(move || -> Result<(), Error> {
                let _guard = SleepOnDrop(s);
                runtime::sleep(Duration::from_secs(1))?;
                panic!("task fails");
            });
            t.join()
        })
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Panicked);
    assert_eq!(*seen.borrow(), Some(ErrorKind::Misuse));
    assert!(!std::thread::panicking());
}

/// An `EventLoop` kept in a thread-local is dropped after the loop's own
/// thread-locals at thread exit; that aborted the process.
#[test]
fn an_event_loop_in_a_thread_local_is_dropped_cleanly_at_thread_exit() {
    thread_local! {
        static KEPT: RefCell<Option<EventLoop>> = const { RefCell::new(None) };
    }
    std::thread::spawn(|| {
        let event_loop = virtual_loop().build();
        drop(event_loop.spawn(|| runtime::sleep(Duration::from_secs(5))).unwrap());
        KEPT.with(|k| *k.borrow_mut() = Some(event_loop));
    })
    .join()
    .expect("the thread exits cleanly");
}

/// A wait refused from a generator nested in a task registers nothing: the
/// task is not woken early later.
#[test]
fn a_refused_wait_leaves_no_stale_wake_up() {
    let elapsed = virtual_loop()
        .run(|| {
            let other = runtime::spawn(|| Ok(()));
            let o = other.clone();
            let nested: Generator<ErrorKind> = Generator::new(move |co| {
                co.yield_(o.join().unwrap_err().kind());
            });
            assert_eq!(nested.resume(), Ok(Step::Yielded(ErrorKind::Misuse)));
            let start = runtime::time()?;
            runtime::sleep(Duration::from_secs(10))?;
            Ok(runtime::time()? - start)
        })
        .unwrap();
    assert_eq!(elapsed, Duration::from_secs(10));
}

/// The stack-range check uses the stack's real (rounded-up) size.
#[test]
fn tasks_on_a_small_requested_stack_can_wait() {
    let r = virtual_loop().stack_size(1000).run(|| {
        runtime::sleep(Duration::ZERO)?;
        runtime::sleep(Duration::from_millis(1))
    });
    assert!(r.is_ok(), "{r:?}");
}

/// Joining a task of another loop is refused. Python: `attached to a
/// different loop`.
#[test]
fn joining_a_task_of_another_loop_is_refused() {
    let other = virtual_loop().build();
    let foreign = other.spawn(|| Ok(1)).unwrap();
    let f = foreign.clone();
    let e = virtual_loop().run(move || f.join()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Misuse);
    assert!(e.message().contains("different loop"), "{e}");
    let f = foreign.clone();
    let e = virtual_loop().run(move || runtime::gather([f])).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Misuse);
    // Its own loop still runs it.
    assert_eq!(other.run_until_complete(move || foreign.join()).unwrap(), 1);
}

/// Cancelled sleeps do not keep their tasks alive until their deadlines.
#[test]
fn cancelled_sleeps_release_their_tasks() {
    struct Sentinel(Rc<Cell<u32>>);
    impl Drop for Sentinel {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }
    let dropped = Rc::new(Cell::new(0));
    let d = dropped.clone();
    let released = virtual_loop()
        .run(move || {
            // A long sleeper keeps an early timer armed throughout.
            let _long = runtime::spawn(|| runtime::sleep(Duration::from_secs(1000)));
            let sleepers: Vec<_> = (0..1000)
                .map(|_| {
                    let sentinel = Sentinel(d.clone());
                    // The task swallows the cancellation and finishes with
                    // the sentinel as its value: it lives as long as the
                    // task's record does.
                    runtime::spawn(move || {
                        let _ = runtime::sleep(Duration::from_secs(3600));
                        Ok(sentinel)
                    })
                })
                .collect();
            runtime::sleep(Duration::ZERO)?;
            for t in &sleepers {
                t.cancel();
            }
            drop(sleepers);
            for _ in 0..4 {
                runtime::sleep(Duration::ZERO)?;
            }
            Ok(d.get())
        })
        .unwrap();
    assert_eq!(released, 1000, "every cancelled task's record was freed");
    assert_eq!(dropped.get(), 1000);
}

#[test]
fn gathering_the_same_task_twice_is_refused() {
    let e = virtual_loop()
        .run(|| {
            let t = runtime::spawn(|| Ok(1));
            runtime::gather([t.clone(), t])
        })
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Misuse);
}
