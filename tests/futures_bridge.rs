//! Rust futures both ways: a task waits on any `std::future::Future` with
//! `runtime::await_future`, and a gencoro `Task` is a `Future` that async
//! code can `.await`.
//!
//! The futures here are completed by other OS threads (a hand-written one,
//! `futures::channel::oneshot`, `async-channel`) or by the loop itself. The
//! loop runs on the virtual clock unless a test says otherwise; a thread
//! that completes a future does so on real time, and the loop blocks for it
//! (the future's waker counts as outside work).

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::Duration;

use gencoro::runtime::{self, Builder, Clock, Error, ErrorKind};

fn virtual_loop() -> Builder {
    Builder::new().clock(Clock::virtual_time())
}

/// A one-shot future completed by hand from any thread: the simplest
/// future that keeps its waker and is woken from elsewhere.
struct Handoff<T> {
    state: Mutex<(Option<T>, Option<Waker>)>,
}

impl<T> Handoff<T> {
    fn new() -> Self {
        Handoff { state: Mutex::new((None, None)) }
    }

    fn complete(&self, value: T) {
        let waker = {
            let mut state = self.state.lock().unwrap();
            state.0 = Some(value);
            state.1.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

struct HandoffFuture<T>(Arc<Handoff<T>>);

impl<T> Future for HandoffFuture<T> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut state = self.0.state.lock().unwrap();
        match state.0.take() {
            Some(v) => Poll::Ready(v),
            None => {
                state.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

#[test]
fn a_future_completed_by_another_os_thread_resumes_the_waiting_task() {
    let v = virtual_loop().run(|| {
        let handoff = Arc::new(Handoff::new());
        let h = handoff.clone();
        let loop_thread = thread::current().id();
        let completer = thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            h.complete(thread::current().id());
        });
        // Another task runs while the main one waits: the loop is not blocked.
        let other = runtime::spawn(|| Ok(7));
        let completed_on = runtime::await_future(HandoffFuture(handoff))?;
        completer.join().unwrap();
        assert_ne!(completed_on, loop_thread, "completed on another thread");
        assert!(other.is_done(), "the other task ran while main waited");
        // Still on the loop's thread after the wait.
        assert_eq!(thread::current().id(), loop_thread);
        other.join()
    });
    assert_eq!(v.unwrap(), 7);
}

#[test]
fn a_futures_oneshot_receiver_delivers_the_value_sent_from_a_thread() {
    let v = virtual_loop().run(|| {
        let (tx, rx) = futures::channel::oneshot::channel::<String>();
        let sender = thread::spawn(move || tx.send("from a thread".to_owned()).unwrap());
        let got = runtime::await_future(rx)?.map_err(|_| Error::new("the sender was dropped"))?;
        sender.join().unwrap();
        Ok(got)
    });
    assert_eq!(v.unwrap(), "from a thread");
}

#[test]
fn a_futures_oneshot_whose_sender_is_dropped_reports_canceled() {
    let v = virtual_loop().run(|| {
        let (tx, rx) = futures::channel::oneshot::channel::<u32>();
        thread::spawn(move || drop(tx)).join().unwrap();
        runtime::await_future(rx)
    });
    assert_eq!(v.unwrap(), Err(futures::channel::oneshot::Canceled));
}

#[test]
fn an_async_channel_receiver_gets_every_item_a_thread_sends_in_order() {
    let v = virtual_loop().run(|| {
        let (tx, rx) = async_channel::bounded::<u32>(4);
        let producer = thread::spawn(move || {
            for i in 0..100 {
                tx.send_blocking(i).unwrap();
            }
        });
        let mut got = Vec::new();
        while let Ok(i) = runtime::await_future(rx.recv())? {
            got.push(i);
        }
        producer.join().unwrap();
        Ok(got)
    });
    assert_eq!(v.unwrap(), (0..100).collect::<Vec<_>>());
}

/// A future that is ready once `target` wakes have been counted, and
/// counts how often it is polled.
struct CountedWakes {
    woken: Arc<AtomicUsize>,
    target: usize,
    waker_slot: Arc<Mutex<Option<Waker>>>,
    polls: Rc<Cell<usize>>,
}

impl Future for CountedWakes {
    type Output = usize;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        self.polls.set(self.polls.get() + 1);
        let mut slot = self.waker_slot.lock().unwrap();
        if slot.is_none() {
            *slot = Some(cx.waker().clone());
        }
        let n = self.woken.load(Ordering::SeqCst);
        if n >= self.target { Poll::Ready(n) } else { Poll::Pending }
    }
}

/// Four threads clone the waker and wake it 250,000 times each. The task
/// must see the last wake (a lost one leaves it suspended, and once the
/// threads drop their wakers the loop reports a deadlock), must not be
/// resumed once per wake (the wakes coalesce), and a wake after the task is
/// gone is harmless.
#[test]
fn a_waker_woken_a_million_times_from_four_threads_resumes_the_task_correctly() {
    const THREADS: usize = 4;
    const WAKES: usize = 250_000;
    let polls = Rc::new(Cell::new(0));
    let p = polls.clone();
    let leftover = Arc::new(Mutex::new(None::<Waker>));
    let left = leftover.clone();
    let v = virtual_loop().run(move || {
        let woken = Arc::new(AtomicUsize::new(0));
        let waker_slot = Arc::new(Mutex::new(None::<Waker>));
        let go = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for _ in 0..THREADS {
            let (woken, slot, go) = (woken.clone(), waker_slot.clone(), go.clone());
            threads.push(thread::spawn(move || {
                while !go.load(Ordering::SeqCst) {
                    thread::yield_now();
                }
                let waker = slot.lock().unwrap().clone().expect("polled once before go");
                for _ in 0..WAKES {
                    woken.fetch_add(1, Ordering::SeqCst);
                    let clone = waker.clone();
                    clone.wake();
                }
            }));
        }
        let future = CountedWakes {
            woken: woken.clone(),
            target: THREADS * WAKES,
            waker_slot: waker_slot.clone(),
            polls: p,
        };
        // Let the threads start once the future has stored its waker.
        let starter = runtime::spawn(move || {
            go.store(true, Ordering::SeqCst);
            Ok(())
        });
        let n = runtime::await_future(future)?;
        starter.join()?;
        for t in threads {
            t.join().unwrap();
        }
        *left.lock().unwrap() = waker_slot.lock().unwrap().take();
        Ok(n)
    });
    assert_eq!(v.unwrap(), THREADS * WAKES);
    let polls = polls.get();
    eprintln!(
        "{} wakes from {THREADS} threads: the future was polled {polls} times",
        THREADS * WAKES
    );
    assert!(polls >= 2, "polled at first and after wakes: {polls}");
    assert!(polls < THREADS * WAKES / 10, "the wakes did not coalesce: {polls} polls");
    // After the loop has gone, waking is harmless, from any thread.
    let waker = leftover.lock().unwrap().take().expect("the waker was kept");
    waker.wake_by_ref();
    thread::spawn(move || waker.wake()).join().unwrap();
}

/// A future that keeps its waker, never completes, and records its drop.
struct Forever(Rc<Cell<bool>>, Option<Waker>);

impl Future for Forever {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.1 = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Forever {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

#[test]
fn cancelling_the_task_drops_the_future_at_the_suspension_point() {
    let v = virtual_loop().run(|| {
        let dropped = Rc::new(Cell::new(false));
        let d = dropped.clone();
        let waiter = runtime::spawn(move || {
            let outcome = runtime::await_future(Forever(d.clone(), None));
            // The future is gone by the time the wait returns.
            Ok((outcome.map_err(|e| e.kind()), d.get()))
        });
        runtime::sleep(Duration::from_secs(1))?;
        assert!(!dropped.get(), "still waiting");
        waiter.cancel();
        let (outcome, dropped_at_return) = waiter.join()?;
        Ok((outcome, dropped_at_return, runtime::time()?))
    });
    let (outcome, dropped_at_return, t) = v.unwrap();
    assert_eq!(outcome, Err(ErrorKind::Cancelled));
    assert!(dropped_at_return, "the future was dropped before await_future returned");
    assert_eq!(t, Duration::from_secs(1));
}

/// A future that drops its waker can never be woken: the loop says so
/// instead of waiting forever.
#[test]
fn a_future_that_can_never_be_woken_is_reported_as_a_deadlock() {
    let e = virtual_loop().run(|| runtime::await_future(std::future::pending::<()>())).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Deadlock);
    assert!(e.message().contains("a Rust future"), "{}", e.message());
}

/// A future that wakes itself during its poll (as `yield_now` in other
/// runtimes does) is polled again, after the other ready tasks.
#[test]
fn a_future_woken_during_its_own_poll_is_polled_again_after_other_tasks() {
    struct YieldOnce(bool);
    impl Future for YieldOnce {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                return Poll::Ready(());
            }
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
    let v = virtual_loop().run(|| {
        let order = Rc::new(std::cell::RefCell::new(Vec::new()));
        let o = order.clone();
        let other = runtime::spawn(move || {
            o.borrow_mut().push("other");
            Ok(())
        });
        runtime::await_future(YieldOnce(false))?;
        order.borrow_mut().push("main");
        other.join()?;
        Ok(order.take())
    });
    assert_eq!(v.unwrap(), ["other", "main"]);
}

#[test]
fn gencoro_tasks_can_be_awaited_inside_async_code() {
    let clock = Clock::virtual_time();
    let v = Builder::new().clock(clock.clone()).run(|| {
        let a = runtime::spawn(|| {
            runtime::sleep(Duration::from_secs(1))?;
            Ok(20)
        });
        let b = runtime::spawn(|| {
            runtime::sleep(Duration::from_secs(2))?;
            Ok(22)
        });
        runtime::await_future(async move { Ok::<_, Error>(a.await? + b.await?) })?
    });
    assert_eq!(v.unwrap(), 42);
    assert_eq!(clock.now(), Duration::from_secs(2));
}

/// `futures::future::join` of two tasks, both polled with the same waker:
/// virtual time passes for their sleeps (a waker in flight does not stop
/// it), and a task's failure comes out as its error.
#[test]
fn joined_task_futures_let_virtual_time_pass_and_report_failures() {
    let clock = Clock::virtual_time();
    let v = Builder::new().clock(clock.clone()).run(|| {
        let ok = runtime::spawn(|| {
            runtime::sleep(Duration::from_secs(3))?;
            Ok(1)
        });
        let failing = runtime::spawn(|| -> Result<i32, Error> {
            runtime::sleep(Duration::from_secs(1))?;
            Err(Error::new("boom"))
        });
        let (a, b) = runtime::await_future(futures::future::join(ok, failing))?;
        Ok((a?, b.map_err(|e| e.to_string())))
    });
    assert_eq!(v.unwrap(), (1, Err("boom".to_owned())));
    assert_eq!(clock.now(), Duration::from_secs(3));
}

/// A waker that is not the one `await_future` passed (a combinator's own)
/// still wakes the task when the awaited gencoro task ends; virtual time
/// passes meanwhile.
#[test]
fn a_task_polled_with_a_foreign_waker_wakes_it_when_done() {
    /// Wraps the inner future's waker in a waker of its own.
    struct Rewake<F>(Pin<Box<F>>);
    struct Forward(Waker);
    impl Wake for Forward {
        fn wake(self: Arc<Self>) {
            self.0.wake_by_ref();
        }
    }
    impl<F: Future> Future for Rewake<F> {
        type Output = F::Output;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
            let own = Waker::from(Arc::new(Forward(cx.waker().clone())));
            self.0.as_mut().poll(&mut Context::from_waker(&own))
        }
    }
    let clock = Clock::virtual_time();
    let v = Builder::new().clock(clock.clone()).run(|| {
        let t = runtime::spawn(|| {
            runtime::sleep(Duration::from_secs(5))?;
            Ok("done")
        });
        runtime::await_future(Rewake(Box::pin(t)))?
    });
    assert_eq!(v.unwrap(), "done");
    assert_eq!(clock.now(), Duration::from_secs(5));
}

#[test]
fn a_task_cannot_await_its_own_future() {
    let v = virtual_loop().run(|| {
        let me: Rc<Cell<Option<runtime::Task<Option<ErrorKind>>>>> = Rc::new(Cell::new(None));
        let m = me.clone();
        let t = runtime::spawn(move || {
            let own = m.take().expect("set before it runs");
            Ok(runtime::await_future(own)?.err().map(|e| e.kind()))
        });
        me.set(Some(t.clone()));
        t.join()
    });
    assert_eq!(v.unwrap(), Some(ErrorKind::Misuse));
}

#[test]
fn a_task_polled_outside_its_running_loop_is_a_misuse() {
    let event_loop = virtual_loop().build();
    let task = event_loop.spawn(|| Ok(1)).unwrap();
    let mut task = std::pin::pin!(task);
    let polled = task.as_mut().poll(&mut Context::from_waker(Waker::noop()));
    match polled {
        Poll::Ready(Err(e)) => assert_eq!(e.kind(), ErrorKind::Misuse),
        other => {
            panic!("expected a misuse error, got {:?}", other.map(|r| r.map_err(|e| e.kind())))
        }
    }
}

#[test]
fn await_future_outside_a_task_is_refused_and_does_not_poll() {
    let polled = Rc::new(Cell::new(false));
    let p = polled.clone();
    let e = runtime::await_future(std::future::poll_fn(move |_| {
        p.set(true);
        Poll::Ready(())
    }))
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoRunningLoop);
    assert!(!polled.get());
}

/// A waker kept past the end of `await_future` no longer keeps the loop
/// waiting: a later deadlock is still reported.
#[test]
fn a_waker_kept_after_the_wait_does_not_hide_a_later_deadlock() {
    let kept = Arc::new(Mutex::new(None::<Waker>));
    let k = kept.clone();
    let e = virtual_loop()
        .run(move || {
            let k2 = k.clone();
            runtime::await_future(std::future::poll_fn(move |cx| {
                *k2.lock().unwrap() = Some(cx.waker().clone());
                Poll::Ready(())
            }))?;
            assert!(k.lock().unwrap().is_some(), "the waker is still alive");
            // Waking it now is harmless too.
            k.lock().unwrap().as_ref().unwrap().wake_by_ref();
            runtime::await_future(std::future::pending::<()>())
        })
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Deadlock);
    drop(kept);
}

/// A wake from the loop's own thread (another task completing the future)
/// needs no message and resumes the waiter.
#[test]
fn a_future_completed_by_another_task_on_the_loop_resumes_the_waiter() {
    let clock = Clock::virtual_time();
    let v = Builder::new().clock(clock.clone()).run(|| {
        let (tx, rx) = futures::channel::oneshot::channel();
        runtime::spawn(move || {
            runtime::sleep(Duration::from_secs(2))?;
            let _ = tx.send("hello");
            Ok(())
        });
        runtime::await_future(rx)?.map_err(|_| Error::new("the sender was dropped"))
    });
    assert_eq!(v.unwrap(), "hello");
    assert_eq!(clock.now(), Duration::from_secs(2));
}
