//! Attacks on the synchronisation primitives, the blocking pool and the
//! bridge to Rust futures, from the safe public API only: re-entrant
//! destructors, handles used across loops, cancellation races, panics in
//! user code, and loops that end while outside work is in flight.
//!
//! Every test checks that nothing hangs, no panic escapes the loop, every
//! destructor runs exactly once and no item or permit is lost.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use gencoro::runtime::{self, Builder, Clock, ErrorKind, LoopHandle, Promise};
use gencoro::sync::{
    Condition, Event, GetError, Lock, PriorityQueue, PutError, Queue, Semaphore, TryPutError,
};

fn virtual_loop() -> Builder {
    Builder::new().clock(Clock::virtual_time())
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Counts its drops in a shared cell.
struct Counted(Rc<Cell<usize>>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

/// Counts its drops across threads.
struct SendCounted(Arc<AtomicUsize>);

impl Drop for SendCounted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

// ---------------------------------------------------------------------------
// Re-entrant destructors

/// An item that, when dropped, uses the queue it was in.
struct Reentrant {
    queue: Queue<Item>,
    drops: Rc<Cell<usize>>,
}

enum Item {
    Plain(#[allow(dead_code)] Counted),
    Reentrant(#[allow(dead_code)] Reentrant),
}

impl Drop for Reentrant {
    fn drop(&mut self) {
        self.drops.set(self.drops.get() + 1);
        // Every method of the queue, from inside a drop the queue caused.
        let _ = self.queue.len();
        let _ = self.queue.is_full();
        let _ = format!("{:?}", self.queue);
        match self.queue.try_put(Item::Plain(Counted(self.drops.clone()))) {
            Ok(()) => {}
            Err(TryPutError::ShutDown(back)) | Err(TryPutError::Full(back)) => drop(back),
        }
        let _ = self.queue.try_get();
        let _ = self.queue.task_done();
        self.queue.shutdown(true);
    }
}

#[test]
fn queue_items_whose_drop_uses_the_queue_during_an_immediate_shutdown_drop_once() {
    let drops = Rc::new(Cell::new(0));
    let queue: Queue<Item> = Queue::new();
    for _ in 0..3 {
        assert!(
            queue
                .try_put(Item::Reentrant(Reentrant { queue: queue.clone(), drops: drops.clone() }))
                .is_ok()
        );
    }
    // Items hold the queue: only an immediate shutdown frees them.
    assert_eq!(queue.shutdown(true), 3);
    // Three re-entrant drops, each of which made one plain item that was
    // refused (the queue is shut down) and dropped.
    assert_eq!(drops.get(), 6);
    assert_eq!(queue.len(), 0);
    assert!(queue.join().is_ok(), "nothing is outstanding after an immediate shutdown");
}

/// Dropped, it puts a plain item into the live queue and shuts down another.
struct PutOnDrop(Queue<Item>, Rc<Cell<usize>>, Queue<Item>);

impl Drop for PutOnDrop {
    fn drop(&mut self) {
        self.1.set(self.1.get() + 1);
        assert!(self.0.try_put(Item::Plain(Counted(self.1.clone()))).is_ok());
        self.2.shutdown(true);
    }
}

#[test]
fn a_value_whose_drop_puts_into_a_live_queue_wakes_the_waiting_getter() {
    let drops = Rc::new(Cell::new(0));
    let got = virtual_loop()
        .run({
            let drops = drops.clone();
            move || {
                let queue: Queue<Item> = Queue::new();
                let getter = {
                    let queue = queue.clone();
                    runtime::spawn(move || Ok(matches!(queue.get()?, Item::Plain(_))))
                };
                runtime::sleep(Duration::ZERO)?;
                let bomb = PutOnDrop(queue.clone(), drops.clone(), Queue::new());
                drop(bomb);
                getter.join()
            }
        })
        .unwrap();
    assert!(got);
    // The bomb and the item it put.
    assert_eq!(drops.get(), 2);
}

#[test]
fn a_queue_item_whose_drop_cancels_the_task_that_dropped_it() {
    let drops = Rc::new(Cell::new(0));
    virtual_loop()
        .run({
            let drops = drops.clone();
            move || {
                struct CancelOnDrop(
                    Rc<RefCell<Option<runtime::Task<()>>>>,
                    #[allow(dead_code)] Counted,
                );
                impl Drop for CancelOnDrop {
                    fn drop(&mut self) {
                        if let Some(t) = self.0.borrow().as_ref() {
                            t.cancel();
                            t.cancel();
                        }
                    }
                }
                let slot = Rc::new(RefCell::new(None));
                let queue: Queue<CancelOnDrop> = Queue::new();
                let consumer = {
                    let queue = queue.clone();
                    runtime::spawn(move || {
                        loop {
                            let item = queue.get()?;
                            drop(item); // cancels this very task
                            runtime::sleep(secs(1))?;
                        }
                    })
                };
                *slot.borrow_mut() = Some(consumer.clone());
                for _ in 0..3 {
                    assert!(
                        queue.try_put(CancelOnDrop(slot.clone(), Counted(drops.clone()))).is_ok()
                    );
                }
                let outcome = consumer.join();
                assert!(outcome.unwrap_err().is_cancelled());
                // It took one item; two are still queued, none lost.
                assert_eq!(queue.len(), 2);
                slot.borrow_mut().take();
                Ok(())
            }
        })
        .unwrap();
    assert_eq!(drops.get(), 3);
}

/// Dropped, it drops the loop its cell owns.
struct DropsLoop(Rc<RefCell<Option<runtime::EventLoop>>>, #[allow(dead_code)] Counted);

impl Drop for DropsLoop {
    fn drop(&mut self) {
        let l = self.0.borrow_mut().take();
        drop(l);
    }
}

#[test]
fn a_promise_value_whose_drop_drops_its_loop_is_dropped_once_after_the_run() {
    let drops = Rc::new(Cell::new(0));
    let owner = Rc::new(RefCell::new(Some(virtual_loop().build())));
    let result = {
        let l = owner.borrow();
        let (owner2, drops2) = (owner.clone(), drops.clone());
        l.as_ref().unwrap().run_until_complete(move || {
            let promise: Promise<DropsLoop> = Promise::new()?;
            let setter = promise.clone();
            runtime::spawn(move || {
                runtime::sleep(secs(1))?;
                assert!(setter.set_result(DropsLoop(owner2, Counted(drops2))).is_ok());
                Ok(())
            });
            promise.wait()
        })
    };
    // The value, moved out of its promise, drops the idle loop.
    drop(result.unwrap());
    assert!(owner.borrow().is_none());
    assert_eq!(drops.get(), 1);
}

// ---------------------------------------------------------------------------
// Handles across loops

#[test]
fn a_lock_held_by_a_task_of_a_dropped_loop_is_released_for_the_next_loop() {
    let lock = Lock::new();
    let waiters_left;
    {
        let l = virtual_loop().build();
        let lk = lock.clone();
        l.run_until_complete(move || {
            let holder = lk.clone();
            runtime::spawn(move || {
                let _g = holder.acquire()?;
                runtime::sleep(secs(1000))?;
                Ok(())
            });
            let waiter = lk.clone();
            runtime::spawn(move || {
                let _g = waiter.acquire()?;
                Ok(())
            });
            runtime::sleep(secs(1))?;
            assert!(lk.locked());
            assert_eq!(lk.waiters(), 1);
            Ok(())
        })
        .unwrap();
        // Both tasks still pending; dropping the loop tears them down.
        drop(l);
        waiters_left = lock.waiters();
    }
    assert!(!lock.locked(), "the holder's guard was dropped with its stack");
    assert_eq!(waiters_left, 0, "the waiter left the queue");
    let lk = lock.clone();
    virtual_loop()
        .run(move || {
            let t = {
                let lk = lk.clone();
                runtime::spawn(move || {
                    let _g = lk.acquire()?;
                    Ok(1)
                })
            };
            let _g = lk.acquire()?;
            drop(_g);
            t.join()
        })
        .unwrap();
}

#[test]
fn a_semaphore_and_queue_waiters_of_a_dropped_loop_do_not_block_the_next_loop() {
    let sem = Semaphore::new(1);
    let queue: Queue<u32> = Queue::bounded(1);
    let event = Event::new();
    {
        let l = virtual_loop().build();
        let (s, q, e) = (sem.clone(), queue.clone(), event.clone());
        l.run_until_complete(move || {
            let _p = s.try_acquire().map(std::mem::forget);
            for _ in 0..2 {
                let s = s.clone();
                runtime::spawn(move || {
                    let _p = s.acquire()?;
                    Ok(())
                });
                let q = q.clone();
                runtime::spawn(move || {
                    let _ = q.get();
                    Ok(())
                });
                let e = e.clone();
                runtime::spawn(move || e.wait());
            }
            runtime::sleep(secs(1))?;
            assert_eq!(s.waiters(), 2);
            assert_eq!(e.waiters(), 2);
            Ok(())
        })
        .unwrap();
        drop(l);
    }
    assert_eq!(sem.waiters(), 0);
    assert_eq!(event.waiters(), 0);
    // The forgotten permit is still taken.
    assert_eq!(sem.value(), 0);
    let (s, q, e) = (sem.clone(), queue.clone(), event.clone());
    virtual_loop()
        .run(move || {
            let getter = {
                let q = q.clone();
                runtime::spawn(move || q.get().map_err(runtime::Error::from))
            };
            let acquirer = {
                let s = s.clone();
                runtime::spawn(move || {
                    let _p = s.acquire()?;
                    Ok(())
                })
            };
            let waiter = {
                let e = e.clone();
                runtime::spawn(move || e.wait())
            };
            runtime::sleep(secs(1))?;
            q.try_put(5)?;
            s.release();
            e.set();
            assert_eq!(getter.join()?, 5);
            acquirer.join()?;
            waiter.join()
        })
        .unwrap();
}

#[test]
fn a_lock_shared_by_two_loops_running_one_after_the_other_in_their_runs() {
    let lock = Lock::new();
    for round in 0..3 {
        let lk = lock.clone();
        let order = virtual_loop()
            .run(move || {
                let log = Rc::new(RefCell::new(Vec::new()));
                let tasks: Vec<_> = (0..3)
                    .map(|i| {
                        let (lk, log) = (lk.clone(), log.clone());
                        runtime::spawn(move || {
                            let _g = lk.acquire()?;
                            log.borrow_mut().push(i);
                            runtime::sleep(secs(1))?;
                            Ok(())
                        })
                    })
                    .collect();
                // Leave the last one waiting: run cancels it.
                runtime::sleep(secs(1))?;
                tasks[0].join()?;
                let v = log.borrow().clone();
                Ok(v)
            })
            .unwrap();
        assert_eq!(order[0], 0, "round {round}");
        assert!(!lock.locked(), "round {round}: run's cancellation released the lock");
        assert_eq!(lock.waiters(), 0, "round {round}");
    }
}

// ---------------------------------------------------------------------------
// Cancellation races

#[test]
fn a_getter_cancelled_in_the_iteration_it_is_woken_passes_the_item_on() {
    virtual_loop()
        .run(|| {
            let queue: Queue<u32> = Queue::new();
            let getters: Vec<_> = (0..3)
                .map(|_| {
                    let q = queue.clone();
                    runtime::spawn(move || Ok(q.get()?))
                })
                .collect();
            runtime::sleep(Duration::ZERO)?;
            queue.try_put(1)?;
            assert!(getters[0].cancel());
            getters[0].cancel(); // twice: still one cancellation
            queue.try_put(2)?;
            assert!(getters[0].join().unwrap_err().is_cancelled());
            assert_eq!(getters[1].join()?, 1);
            assert_eq!(getters[2].join()?, 2);
            assert_eq!(queue.len(), 0);
            Ok(())
        })
        .unwrap();
}

#[test]
fn a_putter_cancelled_after_its_slot_was_promised_hands_back_its_item_and_passes_the_slot_on() {
    let drops = Rc::new(Cell::new(0));
    virtual_loop()
        .run({
            let drops = drops.clone();
            move || {
                let queue: Queue<Counted> = Queue::bounded(1);
                queue.try_put(Counted(drops.clone()))?;
                let putters: Vec<_> = (0..2)
                    .map(|_| {
                        let (q, d) = (queue.clone(), drops.clone());
                        runtime::spawn(move || match q.put(Counted(d)) {
                            Ok(()) => Ok(true),
                            Err(PutError::Wait(item, e)) => {
                                drop(item);
                                Err(e)
                            }
                            Err(PutError::ShutDown(_)) => Ok(false),
                        })
                    })
                    .collect();
                runtime::sleep(Duration::ZERO)?;
                let first = queue.try_get()?;
                drop(first);
                putters[0].cancel();
                putters[0].cancel();
                assert!(putters[0].join().unwrap_err().is_cancelled());
                assert!(putters[1].join()?);
                assert_eq!(queue.len(), 1);
                Ok(())
            }
        })
        .unwrap();
    // The first item, the cancelled putter's item, and the one in the
    // queue when it was dropped.
    assert_eq!(drops.get(), 3);
}

#[test]
fn shutdown_while_a_woken_putter_and_a_getter_both_wait_loses_no_item() {
    let drops = Rc::new(Cell::new(0));
    let (put_outcome, get_outcome) = virtual_loop()
        .run({
            let drops = drops.clone();
            move || {
                let queue: Queue<Counted> = Queue::bounded(1);
                queue.try_put(Counted(drops.clone()))?;
                let putter = {
                    let (q, d) = (queue.clone(), drops.clone());
                    runtime::spawn(move || {
                        Ok(match q.put(Counted(d)) {
                            Ok(()) => "put",
                            Err(PutError::ShutDown(item)) => {
                                drop(item);
                                "shut down"
                            }
                            Err(PutError::Wait(..)) => "wait",
                        })
                    })
                };
                runtime::sleep(Duration::ZERO)?;
                // In this order, in the next iteration: the getter starts
                // and waits (the queue is empty by then), the queue shuts
                // down while the getter waits and the putter is woken but
                // has not run, then the putter runs.
                let getter = {
                    let q = queue.clone();
                    runtime::spawn(move || {
                        Ok(match q.get() {
                            Ok(_) => "got",
                            Err(GetError::ShutDown) => "shut down",
                            Err(GetError::Wait(_)) => "wait",
                        })
                    })
                };
                let seen = Rc::new(RefCell::new(String::new()));
                {
                    let (q, seen) = (queue.clone(), seen.clone());
                    runtime::call_soon(move || {
                        *seen.borrow_mut() = format!("{q:?}");
                        assert_eq!(q.shutdown(true), 0);
                    })?;
                }
                drop(queue.try_get()?); // wakes the putter
                let p = putter.join()?;
                let g = getter.join()?;
                let seen = seen.borrow().clone();
                // The woken putter has left the line already; the getter waits.
                assert!(seen.contains("len: 0, getters: 1, putters: 0"), "{seen}");
                assert_eq!(queue.len(), 0);
                Ok((p, g))
            }
        })
        .unwrap();
    assert_eq!((put_outcome, get_outcome), ("shut down", "shut down"));
    assert_eq!(drops.get(), 2);
}

#[test]
fn a_task_cancelled_during_a_condition_wait_retakes_the_lock_and_releases_it() {
    virtual_loop()
        .run(|| {
            let cond = Condition::new();
            let waiter = {
                let cond = cond.clone();
                runtime::spawn(move || {
                    let mut g = cond.acquire()?;
                    let r = cond.wait(&mut g);
                    // The lock is held again, whatever the outcome.
                    assert!(g.is_held() && cond.locked());
                    r
                })
            };
            runtime::sleep(Duration::ZERO)?;
            assert_eq!(cond.waiters(), 1);
            // Hold the lock while the waiter is notified and cancelled, twice.
            let g = cond.acquire()?;
            assert_eq!(cond.notify(1)?, 1);
            waiter.cancel();
            waiter.cancel();
            runtime::sleep(secs(1))?;
            assert!(!waiter.is_done(), "it waits for the lock again");
            drop(g);
            let r = waiter.join();
            assert!(r.unwrap_err().is_cancelled());
            assert!(!cond.locked());
            assert_eq!(cond.waiters(), 0);
            assert_eq!(cond.lock().waiters(), 0);
            // The lock still works.
            let _g = cond.acquire()?;
            Ok(())
        })
        .unwrap();
}

#[test]
fn a_condition_waiter_torn_down_with_its_loop_leaves_the_lock_free() {
    let cond = Condition::new();
    {
        let l = virtual_loop().build();
        let c = cond.clone();
        l.run_until_complete(move || {
            let c2 = c.clone();
            runtime::spawn(move || {
                let mut g = c2.acquire()?;
                c2.wait(&mut g)
            });
            // Another task holds the lock when the loop goes.
            let c3 = c.clone();
            runtime::spawn(move || {
                let _g = c3.acquire()?;
                runtime::sleep(secs(100))?;
                Ok(())
            });
            runtime::sleep(secs(1))?;
            assert_eq!(c.waiters(), 1);
            assert!(c.locked());
            Ok(())
        })
        .unwrap();
    }
    assert!(!cond.locked());
    assert_eq!(cond.waiters(), 0);
    assert_eq!(cond.lock().waiters(), 0);
}

#[test]
fn semaphore_permits_survive_cancel_storms() {
    virtual_loop()
        .run(|| {
            let sem = Semaphore::new(2);
            let tasks: Vec<_> = (0..8)
                .map(|i| {
                    let s = sem.clone();
                    runtime::spawn(move || {
                        let _p = s.acquire()?;
                        runtime::sleep(secs(1 + i % 3))?;
                        Ok(())
                    })
                })
                .collect();
            for step in 0..6 {
                runtime::sleep(Duration::from_millis(500))?;
                for (i, t) in tasks.iter().enumerate() {
                    if (i + step) % 3 == 0 {
                        t.cancel();
                        t.cancel();
                    }
                }
            }
            for t in &tasks {
                let _ = t.join();
            }
            assert_eq!(sem.value(), 2);
            assert_eq!(sem.waiters(), 0);
            Ok(())
        })
        .unwrap();
}

// ---------------------------------------------------------------------------
// Panics in user code

/// Panics when compared while armed.
struct Touchy {
    key: u32,
    armed: Rc<Cell<bool>>,
}

impl PartialEq for Touchy {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}
impl Eq for Touchy {}
impl PartialOrd for Touchy {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Touchy {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if self.armed.get() {
            panic!("Ord panicked");
        }
        self.key.cmp(&other.key)
    }
}

/// A panicking `Ord` in `try_put` leaves the item queued and counted. (It
/// used to be queued but not counted: `join` could return with it still
/// there.)
#[test]
fn a_priority_item_whose_ord_panics_in_try_put_leaves_the_counts_consistent() {
    virtual_loop()
        .run(|| {
            let armed = Rc::new(Cell::new(false));
            let queue: PriorityQueue<Touchy> = PriorityQueue::new();
            queue.try_put(Touchy { key: 2, armed: armed.clone() })?;
            armed.set(true);
            let r = panic::catch_unwind(AssertUnwindSafe(|| {
                let _ = queue.try_put(Touchy { key: 1, armed: armed.clone() });
            }));
            assert!(r.is_err());
            armed.set(false);
            // Either the item is in (and counted) or it is not.
            let len = queue.len();
            let mut taken = 0;
            while queue.try_get().is_ok() {
                taken += 1;
            }
            assert_eq!(taken, len);
            let mut done = 0;
            while queue.task_done().is_ok() {
                done += 1;
            }
            assert_eq!(done, len, "every item queued counts as unfinished");
            Ok(())
        })
        .unwrap();
}

/// A panicking `Ord` in `try_put` still wakes a waiting getter. (The
/// wake-up used to be skipped: the second getter waited forever.)
#[test]
fn a_priority_item_whose_ord_panics_in_try_put_still_wakes_a_second_waiting_getter() {
    let out = virtual_loop()
        .run(|| {
            let armed = Rc::new(Cell::new(false));
            let queue: PriorityQueue<Touchy> = PriorityQueue::new();
            let getters: Vec<_> = (0..2)
                .map(|_| {
                    let q = queue.clone();
                    runtime::spawn(move || Ok(q.get()?.key))
                })
                .collect();
            runtime::sleep(Duration::ZERO)?;
            // Wakes the first getter (no comparison in an empty heap).
            queue.try_put(Touchy { key: 3, armed: armed.clone() })?;
            // Panics in the heap's sift: the item stays in the heap.
            armed.set(true);
            let r = panic::catch_unwind(AssertUnwindSafe(|| {
                let _ = queue.try_put(Touchy { key: 1, armed: armed.clone() });
            }));
            assert!(r.is_err());
            armed.set(false);
            let first = getters[0].join()?;
            // The second getter must get the item that is in the queue.
            let second = runtime::wait_for(Some(secs(10)), &getters[1]);
            Ok((first, second.map_err(|e| e.to_string()), queue.len()))
        })
        .unwrap();
    assert_eq!(out.2, 0, "both items handed out");
    assert!(out.1.is_ok(), "the second getter was never woken: {:?}", out.1);
}

/// A panicking `Ord` in `get` takes nothing and loses nothing. (The heap's
/// pop used to drop the item it had taken out.)
#[test]
fn a_priority_item_whose_ord_panics_in_get_loses_no_item_and_no_count() {
    let drops = Rc::new(Cell::new(0));
    struct Tracked(Touchy, #[allow(dead_code)] Counted);
    impl PartialEq for Tracked {
        fn eq(&self, o: &Self) -> bool {
            self.0 == o.0
        }
    }
    impl Eq for Tracked {}
    impl PartialOrd for Tracked {
        fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
            Some(self.cmp(o))
        }
    }
    impl Ord for Tracked {
        fn cmp(&self, o: &Self) -> std::cmp::Ordering {
            self.0.cmp(&o.0)
        }
    }
    let (got, left) = virtual_loop()
        .run({
            let drops = drops.clone();
            move || {
                let armed = Rc::new(Cell::new(false));
                let queue: PriorityQueue<Tracked> = PriorityQueue::new();
                for key in [1, 2, 3] {
                    queue.try_put(Tracked(
                        Touchy { key, armed: armed.clone() },
                        Counted(drops.clone()),
                    ))?;
                }
                armed.set(true);
                let r = panic::catch_unwind(AssertUnwindSafe(|| {
                    let _ = queue.try_get();
                }));
                assert!(r.is_err());
                armed.set(false);
                let mut got = 0;
                while queue.try_get().is_ok() {
                    got += 1;
                }
                Ok((got, queue.len()))
            }
        })
        .unwrap();
    assert_eq!(left, 0);
    assert_eq!(drops.get(), 3, "every item dropped once");
    assert_eq!(got, 3, "a panicking comparison in get must not lose an item");
}

#[test]
fn a_panicking_wait_for_predicate_fails_the_task_and_releases_the_lock() {
    virtual_loop()
        .run(|| {
            let cond = Condition::new();
            let calls = Rc::new(Cell::new(0));
            let waiter = {
                let (cond, calls) = (cond.clone(), calls.clone());
                runtime::spawn(move || {
                    let mut g = cond.acquire()?;
                    cond.wait_for(&mut g, || {
                        calls.set(calls.get() + 1);
                        if calls.get() == 2 {
                            std::panic::panic_any(17u8);
                        }
                        false
                    })
                })
            };
            let other = {
                let cond = cond.clone();
                runtime::spawn(move || {
                    let mut g = cond.acquire()?;
                    cond.wait(&mut g)
                })
            };
            runtime::sleep(Duration::ZERO)?;
            {
                let _g = cond.acquire()?;
                assert_eq!(cond.notify_all()?, 2);
            }
            let e = waiter.join().unwrap_err();
            assert!(e.is_panic(), "{e}");
            assert_eq!(e.take_panic().and_then(|p| p.downcast::<u8>().ok()).map(|b| *b), Some(17));
            other.join()?;
            assert!(!cond.locked());
            assert_eq!(cond.waiters(), 0);
            Ok(())
        })
        .unwrap();
}

#[test]
fn an_offloaded_closure_panicking_with_a_non_string_payload_hands_it_back() {
    let drops = Arc::new(AtomicUsize::new(0));
    virtual_loop()
        .run({
            let drops = drops.clone();
            move || {
                struct Payload(u64, #[allow(dead_code)] SendCounted);
                let d = drops.clone();
                let e = runtime::offload(move || -> u32 {
                    std::panic::panic_any(Payload(99, SendCounted(d)))
                })
                .unwrap_err();
                assert_eq!(e.kind(), ErrorKind::Panicked);
                let _ = format!("{e} {e:?}");
                let p = e.take_panic().expect("payload");
                let p = p.downcast::<Payload>().expect("the payload's own type");
                assert_eq!(p.0, 99);
                assert!(e.take_panic().is_none(), "taken once");
                drop(p);
                // The pool still works.
                assert_eq!(runtime::offload(|| 3)?, 3);
                Ok(())
            }
        })
        .unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn an_offloaded_panic_not_taken_is_dropped_once_with_the_error() {
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    let r = virtual_loop().run(move || {
        let t = runtime::spawn(move || {
            runtime::offload(move || -> () { std::panic::panic_any(SendCounted(d)) })
        });
        let e = t.join().unwrap_err();
        assert!(e.is_panic());
        Ok(())
    });
    r.unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

struct PanicsInPoll {
    polls: u32,
}

impl Future for PanicsInPoll {
    type Output = u32;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        self.polls += 1;
        if self.polls == 1 {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        panic!("poll panicked");
    }
}

#[test]
fn a_future_panicking_in_poll_fails_its_task_and_later_await_future_calls_work() {
    virtual_loop()
        .run(|| {
            let t = runtime::spawn(|| runtime::await_future(PanicsInPoll { polls: 0 }));
            let e = t.join().unwrap_err();
            assert!(e.is_panic(), "{e}");
            // Another await_future, woken from a thread, in a new task.
            let (tx, rx) = mpsc::channel::<Waker>();
            let th = std::thread::spawn(move || {
                let w = rx.recv().unwrap();
                w.wake();
            });
            struct Once(Option<mpsc::Sender<Waker>>);
            impl Future for Once {
                type Output = u8;
                fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u8> {
                    if let Some(tx) = self.0.take() {
                        tx.send(cx.waker().clone()).unwrap();
                        return Poll::Pending;
                    }
                    Poll::Ready(8)
                }
            }
            let v = runtime::spawn(move || runtime::await_future(Once(Some(tx)))).join()?;
            th.join().unwrap();
            assert_eq!(v, 8);
            Ok(())
        })
        .unwrap();
}

#[test]
fn a_future_whose_drop_panics_after_cancellation_fails_only_its_task() {
    struct DropPanics;
    impl Future for DropPanics {
        type Output = ();
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
            Poll::Pending
        }
    }
    impl Drop for DropPanics {
        fn drop(&mut self) {
            if !std::thread::panicking() {
                panic!("drop panicked");
            }
        }
    }
    virtual_loop()
        .run(|| {
            let t = runtime::spawn(|| runtime::await_future(DropPanics));
            runtime::sleep(Duration::ZERO)?;
            t.cancel();
            let e = t.join().unwrap_err();
            assert!(e.is_panic() || e.is_cancelled(), "{e}");
            Ok(())
        })
        .unwrap();
}

// ---------------------------------------------------------------------------
// Loops that end while outside work is in flight

#[test]
fn dropping_the_loop_while_an_offloaded_closure_runs_drops_its_result_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Mutex::new(()));
    let held = gate.lock().unwrap();
    let (started_tx, started_rx) = mpsc::channel();
    {
        let l = virtual_loop().build();
        let (d, g) = (drops.clone(), gate.clone());
        l.run_until_complete(move || {
            runtime::spawn(move || {
                let v = runtime::offload(move || {
                    started_tx.send(()).unwrap();
                    let _open = g.lock().unwrap();
                    SendCounted(d)
                })?;
                drop(v);
                Ok(())
            });
            runtime::sleep(Duration::ZERO)?;
            runtime::sleep(Duration::ZERO)?;
            Ok(())
        })
        .unwrap();
        started_rx.recv_timeout(secs(5)).expect("the closure started");
        drop(l); // the closure is still blocked on the gate
    }
    drop(held);
    let deadline = Instant::now() + secs(5);
    while drops.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the result was never dropped");
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn a_waker_kept_by_a_thread_after_its_loop_was_dropped_is_harmless() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel::<Waker>();
    struct Parked(Option<mpsc::Sender<Waker>>, #[allow(dead_code)] SendCounted);
    impl Future for Parked {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if let Some(tx) = self.0.take() {
                tx.send(cx.waker().clone()).unwrap();
            }
            Poll::Pending
        }
    }
    {
        let l = virtual_loop().build();
        let d = drops.clone();
        l.run_until_complete(move || {
            runtime::spawn(move || runtime::await_future(Parked(Some(tx), SendCounted(d))));
            runtime::sleep(Duration::ZERO)?;
            Ok(())
        })
        .unwrap();
        drop(l);
    }
    assert_eq!(drops.load(Ordering::SeqCst), 1, "the future was dropped with its task");
    let waker = rx.recv_timeout(secs(1)).unwrap();
    let th = std::thread::spawn(move || {
        for _ in 0..1000 {
            waker.wake_by_ref();
        }
        waker.wake();
    });
    th.join().unwrap();
    // A new loop on this thread is not disturbed by the old wakes.
    assert_eq!(virtual_loop().run(|| Ok(5)).unwrap(), 5);
}

#[test]
fn spawn_threadsafe_from_many_threads_while_the_loop_ends_loses_no_closure() {
    let submitted = Arc::new(AtomicUsize::new(0));
    let drops = Arc::new(AtomicUsize::new(0));
    let outcomes = Arc::new(Mutex::new((0usize, 0usize, 0usize))); // ok, cancelled, refused
    let (htx, hrx) = mpsc::channel::<LoopHandle>();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (submitted, drops, outcomes) = (submitted.clone(), drops.clone(), outcomes.clone());
            let (tx, rx) = mpsc::channel::<LoopHandle>();
            let th = std::thread::spawn(move || {
                let handle = rx.recv().unwrap();
                let mut tasks = Vec::new();
                for i in 0..200u32 {
                    submitted.fetch_add(1, Ordering::SeqCst);
                    let token = SendCounted(drops.clone());
                    match handle.spawn_threadsafe(move || {
                        let _t = token;
                        if i % 3 == 0 {
                            runtime::sleep(Duration::from_millis(5))?;
                        }
                        Ok(i)
                    }) {
                        Ok(t) => tasks.push(t),
                        Err(closed) => {
                            drop(closed);
                            outcomes.lock().unwrap().2 += 1;
                        }
                    }
                }
                for t in tasks {
                    match t.wait_timeout(secs(5)) {
                        None => panic!("a RemoteTask never completed"),
                        Some(Ok(_)) => outcomes.lock().unwrap().0 += 1,
                        Some(Err(e)) => {
                            assert!(e.is_cancelled(), "{e}");
                            outcomes.lock().unwrap().1 += 1;
                        }
                    }
                }
            });
            (tx, th)
        })
        .collect();
    let senders: Vec<_> = threads.iter().map(|(tx, _)| tx.clone()).collect();
    drop(htx);
    drop(hrx);
    runtime::run(move || {
        let handle = LoopHandle::current()?;
        for tx in senders {
            tx.send(handle.clone()).unwrap();
        }
        runtime::sleep(Duration::from_millis(3))?;
        Ok(())
    })
    .unwrap();
    for (_, th) in threads {
        th.join().expect("no submitting thread panicked");
    }
    let (ok, cancelled, refused) = *outcomes.lock().unwrap();
    assert_eq!(ok + cancelled + refused, 800);
    assert_eq!(submitted.load(Ordering::SeqCst), 800);
    assert_eq!(drops.load(Ordering::SeqCst), 800, "every closure dropped once");
}

#[test]
fn remote_task_wait_after_the_loop_was_dropped_reports_a_cancellation() {
    let drops = Arc::new(AtomicUsize::new(0));
    let l = virtual_loop().build();
    let handle = l.run_until_complete(LoopHandle::current).unwrap();
    // Submitted and started, then left pending.
    let d = drops.clone();
    let h2 = handle.clone();
    let started = std::thread::spawn(move || {
        h2.spawn_threadsafe(move || {
            let _t = SendCounted(d);
            runtime::sleep(secs(1000))?;
            Ok(2)
        })
        .ok()
        .unwrap()
    })
    .join()
    .unwrap();
    l.run_until_complete(|| runtime::sleep(secs(1))).unwrap();
    // Submitted after the last run: accepted, never started.
    let token = SendCounted(drops.clone());
    let not_started = handle
        .spawn_threadsafe(move || {
            let _t = token;
            Ok(1)
        })
        .expect("the loop is not closed");
    drop(l);
    let waited = std::thread::spawn(move || (not_started.wait(), started.wait())).join().unwrap();
    let (a, b) = waited;
    let a = a.unwrap_err();
    let b = b.unwrap_err();
    assert!(a.is_cancelled() && b.is_cancelled(), "{a} / {b}");
    assert_eq!(drops.load(Ordering::SeqCst), 2);
    // Further submissions are refused with the closure back.
    let token = SendCounted(drops.clone());
    let refused = handle.spawn_threadsafe(move || {
        let _t = token;
        Ok(3)
    });
    assert!(refused.is_err());
    assert_eq!(drops.load(Ordering::SeqCst), 2, "the refused closure comes back unrun");
    drop(refused);
    assert_eq!(drops.load(Ordering::SeqCst), 3);
}

#[test]
fn a_remote_task_cancelled_from_its_thread_while_the_loop_ends_completes() {
    for _ in 0..20 {
        let (htx, hrx) = mpsc::channel::<LoopHandle>();
        let th = std::thread::spawn(move || {
            let handle = hrx.recv().unwrap();
            let mut ts = Vec::new();
            for _ in 0..20 {
                if let Ok(t) = handle.spawn_threadsafe(|| {
                    runtime::sleep(Duration::from_millis(1))?;
                    Ok(())
                }) {
                    t.cancel();
                    ts.push(t);
                }
            }
            for t in ts {
                assert!(t.wait_timeout(secs(5)).is_some(), "never completed");
            }
        });
        runtime::run(move || {
            htx.send(LoopHandle::current()?).unwrap();
            runtime::sleep(Duration::from_millis(1))?;
            Ok(())
        })
        .unwrap();
        th.join().unwrap();
    }
}

#[test]
fn offload_from_a_task_whose_loop_is_closed_by_hand_mid_flight() {
    // Close (not drop) the loop from a callback while a closure runs.
    let drops = Arc::new(AtomicUsize::new(0));
    let l = virtual_loop().build();
    let d = drops.clone();
    let r = l.run_until_complete(move || {
        let t = runtime::spawn(move || {
            let v = runtime::offload(move || {
                std::thread::sleep(Duration::from_millis(20));
                SendCounted(d)
            })?;
            drop(v);
            Ok(())
        });
        t.join()
    });
    r.unwrap();
    l.close().unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

/// Dropped while its task unwinds, it tries to wait in every way there is.
struct WaitsOnDrop {
    queue: Queue<u32>,
    lock: Lock,
    outcomes: Rc<RefCell<Vec<bool>>>,
    _fields: Option<Counted>,
}

impl Drop for WaitsOnDrop {
    fn drop(&mut self) {
        let mut o = self.outcomes.borrow_mut();
        o.push(runtime::offload(|| 1).is_ok());
        o.push(self.queue.get().is_ok());
        o.push(self.lock.acquire().is_ok());
        o.push(runtime::await_future(std::future::pending::<()>()).is_ok());
    }
}

#[test]
fn destructors_that_wait_while_their_task_is_torn_down_get_errors_not_hangs() {
    let outcomes = Rc::new(RefCell::new(Vec::new()));
    let drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    {
        let o = outcomes.clone();
        let l = virtual_loop().build();
        l.run_until_complete(move || {
            let lock = Lock::new();
            let held = lock.try_acquire().map(std::mem::forget);
            assert!(held.is_some());
            let w = WaitsOnDrop {
                queue: Queue::new(),
                lock,
                outcomes: o,
                _fields: Some(Counted(d.clone())),
            };
            runtime::spawn(move || {
                let _w = w;
                runtime::sleep(secs(1000))?;
                Ok(())
            });
            runtime::sleep(secs(1))?;
            Ok(())
        })
        .unwrap();
        drop(l);
    }
    // Whatever each wait returned, none of them hung or succeeded in
    // waiting for something that can never come.
    assert_eq!(drops.get(), 1);
    let o = outcomes.borrow();
    assert_eq!(o.len(), 4);
    assert_eq!(&o[1..], &[false, false, false]);
}

/// Cancelled by `run`'s shutdown, the task returns normally, so its
/// destructor may wait: the offload completes, and the get that can never
/// complete makes `run` report a deadlock rather than hang; the teardown
/// after the report unwinds the destructor and drops its fields once.
#[test]
fn a_destructor_waiting_forever_during_runs_shutdown_is_reported_as_a_deadlock() {
    let outcomes = Rc::new(RefCell::new(Vec::new()));
    let o = outcomes.clone();
    let drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    let r = virtual_loop().run(move || {
        let lock = Lock::new();
        std::mem::forget(lock.try_acquire());
        let w = WaitsOnDrop {
            queue: Queue::new(),
            lock,
            outcomes: o,
            _fields: Some(Counted(d.clone())),
        };
        runtime::spawn(move || {
            let _w = w;
            runtime::sleep(secs(1000))?;
            Ok(())
        });
        runtime::sleep(secs(1))?;
        Ok(())
    });
    assert_eq!(r.unwrap_err().kind(), ErrorKind::Deadlock);
    assert_eq!(drops.get(), 1, "the task's stack was torn down");
    let o = outcomes.borrow();
    // The get never returned: the teardown unwound the destructor from
    // that suspension point, and its fields were dropped all the same.
    assert_eq!(&o[..], &[true]);
}

/// Panics when dropped while armed; counts its drops either way.
struct PanicsOnDrop(Rc<Cell<usize>>, bool);

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
        if self.1 {
            panic!("drop panicked");
        }
    }
}

#[test]
fn an_item_whose_drop_panics_in_an_immediate_shutdown_leaves_the_queue_usable() {
    let drops = Rc::new(Cell::new(0));
    let queue: Queue<PanicsOnDrop> = Queue::new();
    for armed in [false, true, false] {
        assert!(queue.try_put(PanicsOnDrop(drops.clone(), armed)).is_ok());
    }
    let r = panic::catch_unwind(AssertUnwindSafe(|| queue.shutdown(true)));
    assert!(r.is_err());
    assert_eq!(drops.get(), 3, "the items after the panicking one are dropped too");
    assert_eq!(queue.len(), 0);
    assert!(queue.is_shut_down());
    assert!(queue.join().is_ok());
    assert!(format!("{queue:?}").contains("unfinished_tasks: 0"));
}

#[test]
fn a_bounded_semaphore_waiter_woken_then_cancelled_passes_the_permit_on_within_the_bound() {
    virtual_loop()
        .run(|| {
            let sem = gencoro::sync::BoundedSemaphore::new(1);
            let held = sem.try_acquire().expect("free");
            let waiters: Vec<_> = (0..2)
                .map(|_| {
                    let s = sem.clone();
                    runtime::spawn(move || {
                        let _p = s.acquire()?;
                        runtime::sleep(secs(1))?;
                        Ok(())
                    })
                })
                .collect();
            runtime::sleep(Duration::ZERO)?;
            drop(held); // wakes the first waiter
            waiters[0].cancel();
            waiters[0].cancel();
            assert!(waiters[0].join().unwrap_err().is_cancelled());
            waiters[1].join()?;
            assert_eq!(sem.value(), 1);
            assert!(sem.release().is_err(), "released beyond its bound");
            assert_eq!(sem.value(), 1);
            assert_eq!(sem.waiters(), 0);
            Ok(())
        })
        .unwrap();
}
