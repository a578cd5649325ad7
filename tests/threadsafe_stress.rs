//! Other threads reaching the loop through a `LoopHandle`:
//! `call_soon_threadsafe` and `spawn_threadsafe`, under load and at the
//! loop's end. Nothing submitted is lost or run twice.
//!
//! The loop runs on the virtual clock; the submitting threads run on real
//! time, and the loop blocks for them (they are outside work in flight, or
//! the main task waits on a future they complete).

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use gencoro::runtime::{self, Builder, Clock, Error, ErrorKind, LoopClosed, LoopHandle};

fn virtual_loop() -> Builder {
    Builder::new().clock(Clock::virtual_time())
}

/// Eight threads submit 1,000,000 callbacks and tasks in all (every fourth
/// item a task, the rest callbacks) while the loop runs them. Each item
/// marks its own slot: at the end every slot is marked exactly once, every
/// task's handle holds that task's own value, and the loop ran them all
/// before `main` returned.
#[test]
fn a_million_callbacks_and_tasks_from_eight_threads_each_run_exactly_once() {
    const THREADS: usize = 8;
    const TOTAL: usize = 1_000_000;
    const PER_THREAD: usize = TOTAL / THREADS;
    let slots: Arc<Vec<AtomicU8>> = Arc::new((0..TOTAL).map(|_| AtomicU8::new(0)).collect());
    let ran = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let (s, r) = (slots.clone(), ran.clone());
    let (tasks_checked, submitted_at) = virtual_loop()
        .run(move || {
            let handle = LoopHandle::current()?;
            let (done_tx, done_rx) = futures::channel::oneshot::channel::<()>();
            let done_tx = Arc::new(Mutex::new(Some(done_tx)));
            // Runs on the loop's thread for every item; the last one tells
            // main.
            let mark = move |slots: &[AtomicU8], ran: &AtomicUsize, g: usize| {
                slots[g].fetch_add(1, Ordering::Relaxed);
                if ran.fetch_add(1, Ordering::Relaxed) + 1 == TOTAL {
                    if let Some(tx) = done_tx.lock().unwrap().take() {
                        let _ = tx.send(());
                    }
                }
            };
            let mark = Arc::new(mark);
            let submitters: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (handle, slots, ran, mark) =
                        (handle.clone(), s.clone(), r.clone(), mark.clone());
                    thread::spawn(move || {
                        let mut tasks = Vec::with_capacity(PER_THREAD / 4 + 1);
                        for i in 0..PER_THREAD {
                            let g = t * PER_THREAD + i;
                            let (slots, ran, mark) = (slots.clone(), ran.clone(), mark.clone());
                            if g % 4 == 3 {
                                let task = handle
                                    .spawn_threadsafe(move || {
                                        mark(&slots, &ran, g);
                                        Ok(g)
                                    })
                                    .unwrap_or_else(|_| panic!("the loop runs"));
                                tasks.push((g, task));
                            } else {
                                let posted =
                                    handle.call_soon_threadsafe(move || mark(&slots, &ran, g));
                                assert!(posted, "the loop runs");
                            }
                        }
                        let submitted = Instant::now();
                        // Block on each task's handle from this thread.
                        let mut checked = 0;
                        for (g, task) in tasks {
                            assert_eq!(task.wait().expect("the task ran"), g);
                            checked += 1;
                        }
                        (checked, submitted)
                    })
                })
                .collect();
            runtime::await_future(done_rx)?.map_err(|_| Error::new("done sender dropped"))?;
            // The submitters still wait for their tasks' outcomes, which
            // the loop delivers: join them off the loop's thread.
            runtime::offload(move || {
                let mut checked = 0;
                let mut last_submit = started;
                for s in submitters {
                    let (n, at) = s.join().expect("a submitter");
                    checked += n;
                    last_submit = last_submit.max(at);
                }
                (checked, last_submit)
            })
        })
        .expect("main returns");
    let elapsed = started.elapsed();
    let marked_once = slots.iter().filter(|s| s.load(Ordering::Relaxed) == 1).count();
    let twice = slots.iter().filter(|s| s.load(Ordering::Relaxed) > 1).count();
    eprintln!(
        "{THREADS} threads submitted {} callbacks and {} tasks in {:?} ({:.0} items/s); all run \
         and every task handle checked in {:?} ({:.0} items/s)",
        TOTAL - TOTAL / 4,
        TOTAL / 4,
        submitted_at - started,
        TOTAL as f64 / (submitted_at - started).as_secs_f64(),
        elapsed,
        TOTAL as f64 / elapsed.as_secs_f64(),
    );
    assert_eq!(twice, 0, "items run more than once");
    assert_eq!(marked_once, TOTAL, "items never run: {}", TOTAL - marked_once);
    assert_eq!(ran.load(Ordering::Relaxed), TOTAL);
    assert_eq!(tasks_checked, TOTAL / 4);
}

/// Threads keep submitting while the loop ends. Every submission is either
/// refused, with its closure handed back unrun, or accepted, and then its
/// handle reports exactly what happened: the task ran once (its value), or
/// it never started (a cancellation, at shutdown or because the loop
/// closed). No body runs twice, none runs unreported.
#[test]
fn submissions_racing_with_the_loops_end_are_refused_run_or_reported_never_lost() {
    const THREADS: usize = 4;
    let runs: Arc<Mutex<Vec<u8>>> = Arc::new(Mutex::new(Vec::new()));
    let handle_out = Arc::new(Mutex::new(None::<LoopHandle>));
    let (ready_tx, ready_rx) = crossbeam_channel::bounded::<()>(THREADS);
    let h = handle_out.clone();
    let submitters: Vec<_> = (0..THREADS)
        .map(|t| {
            let (h, runs, ready) = (h.clone(), runs.clone(), ready_tx.clone());
            thread::spawn(move || {
                let handle = loop {
                    if let Some(handle) = h.lock().unwrap().clone() {
                        break handle;
                    }
                    thread::yield_now();
                };
                ready.send(()).unwrap();
                let mut accepted = Vec::new();
                for i in 0.. {
                    let id = i * THREADS + t;
                    let r = runs.clone();
                    let body = move || -> Result<usize, Error> {
                        let mut runs = r.lock().unwrap();
                        if runs.len() <= id {
                            runs.resize(id + 1, 0);
                        }
                        runs[id] += 1;
                        Ok(id)
                    };
                    match handle.spawn_threadsafe(body) {
                        // Every 500th is waited for at once: the loop keeps
                        // up (a few hundred submissions outstanding at most).
                        Ok(task) if i % 500 == 499 => {
                            accepted.push((id, Submitted::Waited(task.wait())))
                        }
                        Ok(task) => accepted.push((id, Submitted::Pending(task))),
                        Err(LoopClosed(body)) => {
                            // Handed back unrun, and still callable.
                            assert_eq!(runs_of(&runs, id), 0);
                            assert_eq!(body().unwrap(), id);
                            return (accepted, id);
                        }
                    }
                }
                unreachable!()
            })
        })
        .collect();
    virtual_loop()
        .run(move || {
            *handle_out.lock().unwrap() = Some(LoopHandle::current()?);
            // Serve the submitters for a while, then end.
            for _ in 0..THREADS {
                runtime::offload({
                    let ready = ready_rx.clone();
                    move || ready.recv().unwrap()
                })?;
            }
            for _ in 0..200 {
                runtime::sleep(Duration::ZERO)?;
            }
            Ok(())
        })
        .expect("main returns");
    let (mut ran, mut never_started) = (0, 0);
    for s in submitters {
        let (accepted, refused_id) = s.join().expect("a submitter");
        // The refused one ran once: by the test, after it came back.
        assert_eq!(runs_of(&runs, refused_id), 1);
        for (id, submitted) in accepted {
            let outcome = match submitted {
                Submitted::Pending(task) => task.wait(),
                Submitted::Waited(outcome) => outcome,
            };
            match outcome {
                Ok(v) => {
                    assert_eq!(v, id);
                    assert_eq!(runs_of(&runs, id), 1, "task {id} ran {} times", runs_of(&runs, id));
                    ran += 1;
                }
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::Cancelled, "{e}");
                    assert_eq!(runs_of(&runs, id), 0, "a task reported cancelled had run");
                    never_started += 1;
                }
            }
        }
    }
    eprintln!("{ran} submissions ran, {never_started} were reported as never started");
    assert!(ran > 0);
}

/// An accepted submission: its handle, or the outcome already waited for.
enum Submitted {
    Pending(gencoro::runtime::RemoteTask<usize>),
    Waited(Result<usize, Error>),
}

fn runs_of(runs: &Mutex<Vec<u8>>, id: usize) -> u8 {
    runs.lock().unwrap().get(id).copied().unwrap_or(0)
}

#[test]
fn spawn_threadsafe_after_the_loop_has_ended_hands_the_closure_back() {
    let handle = virtual_loop().run(LoopHandle::current).unwrap();
    let captured = String::from("still here");
    let refused = thread::spawn(move || match handle.spawn_threadsafe(move || Ok(captured)) {
        Err(LoopClosed(body)) => body(),
        Ok(_) => panic!("a closed loop accepted a task"),
    });
    let e = refused.join().unwrap();
    assert_eq!(e.unwrap(), "still here");
    let message = LoopClosed(()).to_string();
    assert!(message.contains("ended"), "{message}");
}

/// The smallest executor: polls a future on this thread, parking between
/// wake-ups.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(v) = future.as_mut().poll(&mut Context::from_waker(&waker)) {
            return v;
        }
        thread::park();
    }
}

/// A remote task's outcome is its value, its error or its panic, whether
/// the submitting thread blocks on it, polls it or awaits it.
#[test]
fn a_remote_task_reports_its_outcome_to_wait_poll_and_await() {
    let outcomes = virtual_loop()
        .run(|| {
            let handle = LoopHandle::current()?;
            let worker = thread::spawn(move || {
                let value = handle.spawn_threadsafe(|| Ok(1)).unwrap().wait();
                let failure = handle
                    .spawn_threadsafe(|| -> Result<u32, Error> { Err(Error::new("no")) })
                    .unwrap()
                    .wait()
                    .map_err(|e| e.to_string());
                let panicked = handle
                    .spawn_threadsafe(|| -> Result<u32, Error> { panic!("remote boom") })
                    .unwrap()
                    .wait()
                    .map_err(|e| e.kind());
                let awaited = block_on(handle.spawn_threadsafe(|| Ok(4)).unwrap());
                let polled = handle.spawn_threadsafe(|| Ok(5)).unwrap();
                let polled_value = loop {
                    if let Some(v) = polled.try_result() {
                        break v;
                    }
                    thread::sleep(Duration::from_millis(1));
                };
                assert!(polled.is_done());
                let again = polled.try_result().map(|r| r.map_err(|e| e.kind()));
                (value.unwrap(), failure, panicked, awaited.unwrap(), polled_value.unwrap(), again)
            });
            runtime::offload(move || worker.join().unwrap())
        })
        .unwrap();
    assert_eq!(
        outcomes,
        (1, Err("no".to_owned()), Err(ErrorKind::Panicked), 4, 5, Some(Err(ErrorKind::Misuse)))
    );
}

/// Cancelling a remote task that has not started keeps its body from ever
/// running; cancelling one that waits delivers the cancellation there.
#[test]
fn cancelling_a_remote_task_before_and_after_it_started() {
    let v = virtual_loop().run(|| {
        let handle = LoopHandle::current()?;
        // Time stands still while this guard lives: the sleeper cannot
        // finish its sleep before the thread cancels it.
        let guard = handle.in_flight();
        let (submitted_tx, submitted_rx) = crossbeam_channel::bounded(1);
        let worker = thread::spawn(move || {
            let ran = Arc::new(AtomicUsize::new(0));
            let r = ran.clone();
            let early = handle
                .spawn_threadsafe(move || {
                    r.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                })
                .unwrap();
            assert!(early.cancel());
            submitted_tx.send(()).unwrap();
            let early = early.wait().map_err(|e| e.kind());
            let (started_tx, started_rx) = crossbeam_channel::bounded(1);
            let late = handle
                .spawn_threadsafe(move || {
                    started_tx.send(()).unwrap();
                    runtime::sleep(Duration::from_secs(10))?;
                    Ok("slept")
                })
                .unwrap();
            started_rx.recv().unwrap();
            assert!(late.cancel());
            let late_outcome = late.wait_timeout(Duration::from_secs(10)).expect("done in time");
            drop(guard);
            (early, ran.load(Ordering::SeqCst), late_outcome.map_err(|e| e.kind()))
        });
        // Block the loop's thread (on purpose) until the first task is
        // submitted and cancelled: the loop then sees both requests in the
        // same drain, so the task cannot have started before the cancel.
        submitted_rx.recv().unwrap();
        let outcome = runtime::offload(move || worker.join().unwrap())?;
        Ok((outcome, runtime::time()?))
    });
    let ((early, early_runs, late), t) = v.unwrap();
    assert_eq!(early, Err(ErrorKind::Cancelled));
    assert_eq!(early_runs, 0, "a task cancelled before it started ran its body");
    assert_eq!(late, Err(ErrorKind::Cancelled));
    assert_eq!(t, Duration::ZERO, "the sleep was cancelled, not finished");
}

#[test]
fn waiting_on_a_remote_task_from_the_loops_own_thread_is_refused() {
    let v = virtual_loop().run(|| {
        let handle = LoopHandle::current()?;
        let task = handle.spawn_threadsafe(|| Ok(3)).unwrap();
        let refused = task.wait_timeout(Duration::from_secs(1)).map(|r| r.map_err(|e| e.kind()));
        // Awaiting it as a future from a task is fine.
        let awaited = runtime::await_future(handle.spawn_threadsafe(|| Ok(4)).unwrap())??;
        Ok((refused, task.wait().map_err(|e| e.kind()), awaited))
    });
    assert_eq!(v.unwrap(), (Some(Err(ErrorKind::Misuse)), Err(ErrorKind::Misuse), 4));
}

/// A loop closed with a remote task still pending (the task outlives
/// `run_until_complete` and the loop is dropped) reports it to the handle.
#[test]
fn a_remote_task_destroyed_with_its_loop_is_reported_as_cancelled() {
    let event_loop = virtual_loop().build();
    let task = event_loop
        .run_until_complete(|| {
            let handle = LoopHandle::current()?;
            let task = handle
                .spawn_threadsafe(|| {
                    runtime::sleep(Duration::from_secs(100))?;
                    Ok(())
                })
                .unwrap();
            runtime::sleep(Duration::from_secs(1))?; // it starts and sleeps
            Ok(task)
        })
        .unwrap();
    assert!(!task.is_done());
    drop(event_loop);
    let e = task.wait().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Cancelled);
    assert!(e.message().contains("closed before the task finished"), "{}", e.message());
}
