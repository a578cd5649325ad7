//! The loop on the real clock: when nothing is ready it blocks the thread
//! until the next timer is due (`Core::wait`), and work posted from another
//! thread wakes it early. The other tests run on the virtual clock; these
//! few check the real-time path, in well under a second in all.
//!
//! The bounds are wide, for a loaded machine (a wake-up may come tens of
//! milliseconds late), yet a loop that waited twice as long as asked falls
//! outside every one of them, however it is scheduled: each upper bound is
//! below the least time such a loop can take.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gencoro::runtime::{self, Builder, Clock, ErrorKind, LoopHandle};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Checks `elapsed` is in `[low, high)`, and shows it.
#[track_caller]
fn assert_between(what: &str, elapsed: Duration, low: Duration, high: Duration) {
    eprintln!("{what}: {elapsed:?} (expected {low:?} to {high:?})");
    assert!(
        elapsed >= low && elapsed < high,
        "{what} took {elapsed:?}, expected at least {low:?} and less than {high:?}"
    );
}

/// Three sleeps of 50 ms in a row take 150 ms (a loop that waits twice as
/// long: 300 ms at least); the loop's own clock agrees with the thread's.
#[test]
fn sleeps_block_for_the_time_asked() {
    let started = Instant::now();
    let loop_time = runtime::run(|| {
        let t0 = runtime::time()?;
        for _ in 0..3 {
            runtime::sleep(ms(50))?;
        }
        Ok(runtime::time()? - t0)
    })
    .expect("main sleeps");
    let elapsed = started.elapsed();
    assert_between("3 sleeps of 50 ms", elapsed, ms(150), ms(290));
    assert_between("3 sleeps of 50 ms, loop time", loop_time, ms(150), ms(290));
}

/// A `call_later` callback fires after its delay and wakes the loop, which
/// has nothing else to do: here it cancels a task sleeping for 10 s, which
/// `main` joins (a loop that waits twice as long: 200 ms at least).
#[test]
fn call_later_fires_after_its_delay() {
    let started = Instant::now();
    let (fired_at, outcome) = Builder::new()
        .clock(Clock::real_time())
        .run(|| {
            let t0 = runtime::time()?;
            let sleeper = runtime::spawn(|| runtime::sleep(Duration::from_secs(10)));
            let fired = Rc::new(Cell::new(None));
            let (f, s) = (fired.clone(), sleeper.clone());
            runtime::call_later(ms(100), move || {
                f.set(Some(runtime::time().expect("in the loop") - t0));
                s.cancel();
            })?;
            let outcome = sleeper.join();
            let fired_at = fired.get();
            Ok((fired_at, outcome))
        })
        .expect("main joins the sleeper");
    let elapsed = started.elapsed();
    let fired_at = fired_at.expect("the callback ran before the sleeper ended");
    assert!(outcome.is_err_and(|e| e.is_cancelled()), "the callback cancelled the sleeper");
    assert_between("call_later(100 ms), loop time when it fired", fired_at, ms(100), ms(190));
    assert_between("call_later(100 ms), whole run", elapsed, ms(100), ms(195));
}

/// `wait_for` gives up after its timeout, cancels the task and reports a
/// timeout (a loop that waits twice as long: 200 ms at least).
#[test]
fn wait_for_times_out_after_its_timeout() {
    let started = Instant::now();
    let (result, waited, cancelled) = runtime::run(|| {
        let t0 = runtime::time()?;
        let slow = runtime::spawn(|| {
            runtime::sleep(Duration::from_secs(10))?;
            Ok("too late")
        });
        let result = runtime::wait_for(Some(ms(100)), &slow);
        Ok((result, runtime::time()? - t0, slow.is_cancelled()))
    })
    .expect("main waits");
    let elapsed = started.elapsed();
    assert_eq!(result.expect_err("the wait times out").kind(), ErrorKind::Timeout);
    assert!(cancelled, "wait_for cancels the task it gave up on");
    assert_between("wait_for(100 ms), loop time", waited, ms(100), ms(190));
    assert_between("wait_for(100 ms), whole run", elapsed, ms(100), ms(195));
}

/// While the loop blocks on a 250 ms timer, another thread posts a call
/// after 25 ms: it runs at once, not when the timer is due, and the timer
/// still fires on time. (A loop that waits twice as long, woken by the call
/// at `c` ms, then waits twice the remaining `250 - c` ms: it ends at
/// `500 - c`, at least 400 ms since the call must come before 100 ms.)
#[test]
fn a_call_from_another_thread_wakes_the_sleeping_loop() {
    let started = Instant::now();
    let (called_at, slept, thread) = runtime::run(|| {
        let t0 = runtime::time()?;
        let handle = LoopHandle::current()?;
        let called = Arc::new(Mutex::new(None));
        let c = called.clone();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(ms(25));
            // The call runs on the loop's thread, which reads the loop's
            // clock from it.
            handle.call_soon_threadsafe(move || {
                *c.lock().unwrap() = Some(runtime::time().expect("on the loop's thread") - t0);
            })
        });
        runtime::sleep(ms(250))?;
        let called_at = called.lock().unwrap().take();
        Ok((called_at, runtime::time()? - t0, thread))
    })
    .expect("main sleeps");
    let elapsed = started.elapsed();
    assert!(thread.join().expect("the thread ends"), "the loop took the call");
    let called_at = called_at.expect("the call ran while main slept");
    assert_between("call from another thread, loop time when it ran", called_at, ms(25), ms(100));
    assert_between("250 ms sleep around it, loop time", slept, ms(250), ms(390));
    assert_between("250 ms sleep around it, whole run", elapsed, ms(250), ms(395));
}
