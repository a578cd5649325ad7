//! Blocking work: `runtime::offload` runs a closure on the loop's thread
//! pool and suspends the calling task, not the loop, until it is done.
//!
//! The closures run on real threads, so some of these tests take real
//! time: each keeps it to a few hundred milliseconds at most, with wide
//! bounds for a loaded machine. The loop runs on the virtual clock unless a
//! test needs the real one.
//!
//! Threads are identified by their kernel id, read from `/proc/thread-self`
//! (a link to `<pid>/task/<tid>`), so a test can check that the pool
//! threads it used are gone (`/proc/self/task/<tid>` no longer exists)
//! while other tests run their own pools in parallel.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use gencoro::runtime::{self, Builder, Clock, Error, ErrorKind, LoopHandle};

#[path = "common/threads.rs"]
mod threads;
use threads::{cpu_time_of, thread_alive, thread_cpu_time, tid};

fn virtual_loop() -> Builder {
    Builder::new().clock(Clock::virtual_time())
}

#[test]
fn offload_returns_the_closures_value_computed_on_a_pool_thread() {
    let loop_thread = thread::current().id();
    let v = virtual_loop().run(move || {
        let (value, ran_on) = runtime::offload(|| (6 * 7, thread::current()))?;
        assert_ne!(ran_on.id(), loop_thread, "the closure ran on a pool thread");
        assert!(ran_on.name().is_some_and(|n| n.starts_with("gencoro-blocking-")), "{ran_on:?}");
        Ok(value)
    });
    assert_eq!(v.unwrap(), 42);
}

/// Three closures that can only finish together (a barrier of three) do
/// finish: the pool runs them at the same time, and the loop is not
/// blocked by any of them.
#[test]
fn offloaded_closures_run_at_the_same_time() {
    let v = virtual_loop().blocking_threads(3).run(|| {
        let barrier = Arc::new(Barrier::new(3));
        let tasks: Vec<_> = (0..3)
            .map(|i| {
                let b = barrier.clone();
                runtime::spawn(move || {
                    runtime::offload(move || {
                        b.wait();
                        i
                    })
                })
            })
            .collect();
        runtime::gather(tasks)
    });
    assert_eq!(v.unwrap(), [0, 1, 2]);
}

/// A pool of two threads runs at most two closures at a time, and with six
/// queued it does run two at once.
#[test]
fn the_pool_runs_no_more_closures_at_once_than_its_size() {
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (r, m) = (running.clone(), most.clone());
    virtual_loop()
        .blocking_threads(2)
        .run(move || {
            let tasks: Vec<_> = (0..6)
                .map(|_| {
                    let (r, m) = (r.clone(), m.clone());
                    runtime::spawn(move || {
                        runtime::offload(move || {
                            let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                            m.fetch_max(now, Ordering::SeqCst);
                            thread::sleep(Duration::from_millis(40));
                            r.fetch_sub(1, Ordering::SeqCst);
                        })
                    })
                })
                .collect();
            runtime::gather(tasks)?;
            Ok(())
        })
        .unwrap();
    assert_eq!(most.load(Ordering::SeqCst), 2);
}

#[test]
fn a_panicking_closure_fails_the_wait_with_its_payload() {
    let v = virtual_loop().blocking_threads(1).run(|| {
        let e = runtime::offload(|| -> u32 { panic!("boom in the pool") }).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Panicked);
        assert!(e.is_panic());
        let payload = e.take_panic().expect("the payload travels back");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom in the pool"));
        // The pool's only thread survived the panic.
        runtime::offload(|| 5)
    });
    assert_eq!(v.unwrap(), 5);
}

/// Cancelling the task ends its wait at once; the closure goes on to its
/// end, and its result is dropped (on the loop's thread) when it arrives.
#[test]
fn cancelling_the_waiting_task_leaves_the_closure_running_and_drops_its_result() {
    struct Result_(Arc<Mutex<Option<thread::ThreadId>>>);
    impl Drop for Result_ {
        fn drop(&mut self) {
            *self.0.lock().unwrap() = Some(thread::current().id());
        }
    }
    let finished = Arc::new(AtomicBool::new(false));
    let dropped_on = Arc::new(Mutex::new(None));
    let (f, d) = (finished.clone(), dropped_on.clone());
    let v = virtual_loop().run(move || {
        let (release_tx, release_rx) = crossbeam_channel::bounded::<()>(1);
        let waiter = runtime::spawn(move || {
            runtime::offload(move || {
                release_rx.recv().unwrap();
                thread::sleep(Duration::from_millis(20));
                f.store(true, Ordering::SeqCst);
                Result_(d)
            })
            .map(drop)
        });
        runtime::sleep(Duration::ZERO)?; // the waiter offloads
        assert!(waiter.cancel());
        let outcome = waiter.join().map_err(|e| e.kind());
        release_tx.send(()).unwrap();
        Ok(outcome)
    });
    assert_eq!(v.unwrap(), Err(ErrorKind::Cancelled));
    assert!(finished.load(Ordering::SeqCst), "run waited for the closure to finish");
    assert_eq!(*dropped_on.lock().unwrap(), Some(thread::current().id()));
}

/// `run` returns only once the closures still running have finished, and
/// leaves none of the pool's threads behind.
#[test]
fn run_waits_for_closures_in_flight_and_leaves_no_pool_thread_behind() {
    let finished = Arc::new(AtomicBool::new(false));
    let tids = Arc::new(Mutex::new(Vec::new()));
    let (f, t) = (finished.clone(), tids.clone());
    virtual_loop()
        .run(move || {
            for _ in 0..3 {
                let (f, t) = (f.clone(), t.clone());
                runtime::spawn(move || {
                    runtime::offload(move || {
                        t.lock().unwrap().push(tid());
                        thread::sleep(Duration::from_millis(100));
                        f.store(true, Ordering::SeqCst);
                    })
                });
            }
            // Let them start, then end main: they are cancelled.
            runtime::sleep(Duration::ZERO)
        })
        .unwrap();
    assert!(finished.load(Ordering::SeqCst), "run returned before the closures finished");
    let tids = tids.lock().unwrap();
    assert_eq!(tids.len(), 3);
    for &tid in tids.iter() {
        assert!(!thread_alive(tid), "pool thread {tid} outlived the run");
    }
}

/// While `run` waits for closures at its end, the loop still runs, so a
/// closure that submits work to it and waits for that work finishes.
#[test]
fn run_keeps_serving_the_loop_while_it_waits_for_closures() {
    let got = Arc::new(AtomicUsize::new(0));
    let g = got.clone();
    virtual_loop()
        .run(move || {
            let handle = LoopHandle::current()?;
            runtime::spawn(move || {
                runtime::offload(move || {
                    thread::sleep(Duration::from_millis(30));
                    let task = handle.spawn_threadsafe(|| Ok(5)).expect("the loop still runs");
                    g.store(task.wait().expect("the task ran"), Ordering::SeqCst);
                })
            });
            runtime::sleep(Duration::ZERO)
        })
        .unwrap();
    assert_eq!(got.load(Ordering::SeqCst), 5);
}

/// A thread idle for the idle timeout exits while the loop goes on.
#[test]
fn idle_pool_threads_exit_after_the_idle_timeout() {
    let v = Builder::new()
        .clock(Clock::real_time())
        .blocking_idle_timeout(Duration::from_millis(30))
        .run(|| {
            let worker = runtime::offload(tid)?;
            assert!(thread_alive(worker), "the thread waits for more work for a while");
            let started = Instant::now();
            while thread_alive(worker) {
                assert!(started.elapsed() < Duration::from_secs(5), "the idle thread stayed");
                runtime::sleep(Duration::from_millis(10))?;
            }
            // A new closure gets a new thread.
            let next = runtime::offload(tid)?;
            Ok((worker, next, started.elapsed()))
        });
    let (first, second, waited) = v.unwrap();
    eprintln!("the idle thread exited after {waited:?} (timeout 30 ms)");
    assert_ne!(first, second);
    assert!(waited >= Duration::from_millis(20), "exited before its timeout: {waited:?}");
}

/// While only blocking work is in flight, the loop thread sleeps on its
/// channel: waiting on a 300 ms closure costs it almost no CPU time (a
/// spinning loop would burn about 300 ms).
#[test]
fn the_loop_thread_uses_almost_no_cpu_while_it_waits_on_blocking_work() {
    let (cpu, wall) = Builder::new()
        .clock(Clock::real_time())
        .run(|| {
            // Start the pool thread first, so its start is not measured.
            runtime::offload(|| ())?;
            let cpu0 = thread_cpu_time();
            let wall0 = Instant::now();
            runtime::offload(|| thread::sleep(Duration::from_millis(300)))?;
            Ok((thread_cpu_time() - cpu0, wall0.elapsed()))
        })
        .unwrap();
    eprintln!("loop thread CPU time while it waited {wall:?} on a closure: {cpu:?}");
    assert!(wall >= Duration::from_millis(300));
    assert!(cpu < Duration::from_millis(50), "the loop thread used {cpu:?} while it waited");
}

/// A pool thread that has finished its job spins a little for the next
/// one (50 µs), then sleeps: idle for 300 ms, it uses almost no CPU time
/// (a thread that kept spinning would use about 300 ms).
#[test]
fn an_idle_pool_thread_stops_spinning_and_sleeps() {
    let (cpu, idle) = Builder::new()
        .clock(Clock::real_time())
        .run(|| {
            let pool_thread = runtime::offload(tid)?;
            let cpu0 = cpu_time_of(pool_thread);
            let wall0 = Instant::now();
            runtime::sleep(Duration::from_millis(300))?;
            Ok((cpu_time_of(pool_thread) - cpu0, wall0.elapsed()))
        })
        .unwrap();
    eprintln!("an idle pool thread's CPU time over {idle:?}: {cpu:?}");
    assert!(idle >= Duration::from_millis(300));
    assert!(cpu < Duration::from_millis(50), "the idle pool thread used {cpu:?}");
}

/// Offloads from several tasks at once, and one after another, while
/// pool threads spin for work and sleep between bursts: every closure
/// runs once and its result reaches its own task.
#[test]
fn offloads_in_bursts_and_one_at_a_time_each_run_once() {
    let ran = Arc::new(AtomicUsize::new(0));
    let total = Builder::new()
        .clock(Clock::real_time())
        .blocking_threads(3)
        .run({
            let ran = ran.clone();
            move || {
                let mut total = 0u64;
                for round in 0..20u64 {
                    let tasks: Vec<_> = (0..5u64)
                        .map(|t| {
                            let ran = ran.clone();
                            runtime::spawn(move || {
                                let mut sum = 0;
                                for i in 0..10u64 {
                                    let ran = ran.clone();
                                    let v = round * 1000 + t * 100 + i;
                                    sum += runtime::offload(move || {
                                        ran.fetch_add(1, Ordering::SeqCst);
                                        v
                                    })?;
                                }
                                Ok(sum)
                            })
                        })
                        .collect();
                    for task in tasks {
                        total += task.join()?;
                    }
                    if round % 5 == 4 {
                        // Long enough for every spinning thread to sleep.
                        runtime::sleep(Duration::from_millis(2))?;
                    }
                }
                Ok(total)
            }
        })
        .unwrap();
    let expected: u64 = (0..20u64)
        .flat_map(|r| (0..5u64).flat_map(move |t| (0..10u64).map(move |i| r * 1000 + t * 100 + i)))
        .sum();
    assert_eq!(total, expected);
    assert_eq!(ran.load(Ordering::SeqCst), 1000);
}

/// The loop's thread CPU time while it sleeps 1,000 times for 100 µs on
/// the real clock, with what `hold` starts running meanwhile (the closure
/// it returns stops it, after the measure).
fn cpu_of_short_sleeps(hold: fn() -> Box<dyn FnOnce()>) -> Duration {
    Builder::new()
        .clock(Clock::real_time())
        .run(move || {
            runtime::offload(|| ())?; // the pool thread starts outside the measure
            let release = hold();
            let cpu0 = thread_cpu_time();
            for _ in 0..1_000 {
                runtime::sleep(Duration::from_micros(100))?;
            }
            let cpu = thread_cpu_time() - cpu0;
            release();
            Ok(cpu)
        })
        .unwrap()
}

/// The least, over three tries, of what `hold` adds to the loop thread's CPU
/// time over 1,000 sleeps of 100 µs (against the same sleeps without it,
/// measured right before). A loaded machine inflates single measures; a
/// cost that is really there shows in every try.
fn least_extra_cpu(hold: fn() -> Box<dyn FnOnce()>) -> (Duration, Duration) {
    let mut least = Duration::MAX;
    let mut plain_then = Duration::ZERO;
    for _ in 0..3 {
        let plain = cpu_of_short_sleeps(|| Box::new(|| ()));
        let with = cpu_of_short_sleeps(hold);
        let extra = with.saturating_sub(plain);
        if extra < least {
            least = extra;
            plain_then = plain;
        }
    }
    (least, plain_then)
}

/// Outside work other than an offloaded closure (here an `InFlight`
/// guard), which may last any time, costs the loop no sustained spinning:
/// 1,000 short timer waits with a guard held cost about what they cost
/// without (a 50 µs spin before each would cost 50 ms of CPU time). The
/// loop does not spin for it at all; were it to, the halving of fruitless
/// spins would still stop it after a few.
#[test]
fn the_loop_does_not_spin_for_outside_work_other_than_offloaded_closures() {
    let (extra, plain) = least_extra_cpu(|| {
        let guard = LoopHandle::current().expect("in a loop").in_flight();
        Box::new(move || drop(guard))
    });
    eprintln!("loop CPU time over 1,000 sleeps of 100 µs: {plain:?}, more with a guard: {extra:?}");
    assert!(extra < Duration::from_millis(25), "the guard cost the loop {extra:?} more");
}

/// A closure that runs long beside frequent timers costs the loop a few
/// spins in all, not one per timer wait: each spin that comes to nothing
/// halves the next one, down to none.
#[test]
fn spins_for_a_long_closure_shrink_to_none() {
    let (extra, plain) = least_extra_cpu(|| {
        let (tx, rx) = crossbeam_channel::bounded::<()>(0);
        let task = runtime::spawn(move || runtime::offload(move || rx.recv().ok()));
        Box::new(move || {
            tx.send(()).unwrap();
            drop(task);
        })
    });
    eprintln!(
        "loop CPU time over 1,000 sleeps of 100 µs: {plain:?}, more beside a closure: {extra:?}"
    );
    assert!(extra < Duration::from_millis(25), "the closure cost the loop {extra:?} more");
}

/// On the virtual clock, a sleeper's deadline does not arrive while a
/// closure still runs: time stands still until the closure is done.
#[test]
fn virtual_time_does_not_pass_while_blocking_work_runs() {
    let clock = Clock::virtual_time();
    let v = Builder::new().clock(clock.clone()).run(|| {
        let sleeper = runtime::spawn(|| {
            runtime::sleep(Duration::from_secs(10))?;
            runtime::time()
        });
        runtime::sleep(Duration::ZERO)?; // the sleeper arms its timer
        runtime::offload(|| thread::sleep(Duration::from_millis(50)))?;
        let after_offload = runtime::time()?;
        let sleeper_woke_at = sleeper.join()?;
        Ok((after_offload, sleeper_woke_at))
    });
    let (after_offload, woke) = v.unwrap();
    assert_eq!(after_offload, Duration::ZERO, "virtual time passed during the closure");
    assert_eq!(woke, Duration::from_secs(10));
    assert_eq!(clock.now(), Duration::from_secs(10));
}

#[test]
fn offload_outside_a_task_is_refused_and_does_not_run_the_closure() {
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let e = runtime::offload(move || r.store(true, Ordering::SeqCst)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoRunningLoop);
    // A plain callback is not a task either.
    let r = ran.clone();
    let refused = Rc::new(RefCell::new(None));
    let out = refused.clone();
    virtual_loop()
        .run(move || {
            runtime::call_soon(move || {
                let e = runtime::offload(move || r.store(true, Ordering::SeqCst)).unwrap_err();
                *out.borrow_mut() = Some(e.kind());
            })?;
            runtime::sleep(Duration::ZERO)
        })
        .unwrap();
    assert_eq!(*refused.borrow(), Some(ErrorKind::NoRunningLoop));
    assert!(!ran.load(Ordering::SeqCst));
}

#[test]
fn many_tasks_offloading_at_once_each_get_their_own_result() {
    let v = virtual_loop().blocking_threads(4).run(|| {
        let tasks: Vec<_> =
            (0..200u64).map(|i| runtime::spawn(move || runtime::offload(move || i * i))).collect();
        Ok(runtime::gather(tasks)?.into_iter().sum::<u64>())
    });
    assert_eq!(v.unwrap(), (0..200u64).map(|i| i * i).sum::<u64>());
}

/// An event loop kept between runs keeps its pool; closing it lets the
/// threads go without waiting for them.
#[test]
fn an_event_loop_reuses_its_pool_across_runs_and_closing_it_lets_the_threads_go() {
    let event_loop = virtual_loop().blocking_idle_timeout(Duration::from_secs(60)).build();
    let first = event_loop.run_until_complete(|| runtime::offload(tid)).unwrap();
    let second = event_loop.run_until_complete(|| runtime::offload(tid)).unwrap();
    assert_eq!(first, second, "the idle thread took the second closure too");
    event_loop.close().unwrap();
    let started = Instant::now();
    while thread_alive(first) {
        assert!(started.elapsed() < Duration::from_secs(5), "the pool thread stayed after close");
        thread::sleep(Duration::from_millis(5));
    }
}

fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary has a path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev".to_owned(),
        Some(other) => other.to_owned(),
        None => panic!("unexpected profile directory {profile_dir:?}"),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "--profile", &profile, "--example", name, "--manifest-path"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .arg("--target-dir")
        .arg(profile_dir.parent().expect("target/"))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the example failed: {status}");
    profile_dir.join("examples").join(name)
}

/// Seed 004's `run_in_executor(requests.get)` program: three fetches from a
/// server that takes 1 s per request overlap, so the run takes about 1 s.
#[test]
fn the_blocking_offload_example_fetches_three_urls_in_about_a_second() {
    let out = Command::new(example_binary("blocking_offload")).output().expect("it runs");
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "three URLs and the timing line: {stdout:?}");
    let mut paths: Vec<&str> = lines[..3]
        .iter()
        .map(|l| {
            let rest = l.strip_prefix("http://127.0.0.1:").expect("a URL of the local server");
            let (port, path) = rest.split_once('/').expect("host:port/path");
            assert!(port.parse::<u16>().is_ok(), "port in {l:?}");
            path
        })
        .collect();
    paths.sort();
    assert_eq!(paths, ["www.163.com", "www.baidu.com", "www.zhihu.com"]);
    let seconds: f64 = lines[3]
        .strip_prefix("elapsed: ")
        .and_then(|s| s.strip_suffix('s'))
        .filter(|s| s.split_once('.').is_some_and(|(_, frac)| frac.len() == 3))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an `elapsed: X.XXXs` line: {:?}", lines[3]));
    eprintln!("blocking_offload: elapsed {seconds} s");
    assert!((1.0..1.5).contains(&seconds), "three 1 s fetches took {seconds} s");
}

#[test]
#[should_panic(expected = "at least one thread")]
fn a_pool_of_zero_threads_is_refused() {
    let _ = Builder::new().blocking_threads(0);
}

/// The error kinds a closure's own failure comes back with are its own:
/// `offload` returns what the closure returned, `Result`s included.
#[test]
fn a_closure_returning_an_error_hands_it_back_as_its_value() {
    let v = virtual_loop().run(|| {
        let inner: Result<u32, Error> = runtime::offload(|| Err(Error::new("disk full")))?;
        Ok(inner.map_err(|e| e.to_string()))
    });
    assert_eq!(v.unwrap(), Err("disk full".to_owned()));
}
