#![cfg(feature = "testing")]
//! `gencoro::testing` over the sync primitives and combinators: their
//! promises (mutual exclusion, permits, no lost or duplicated items, a
//! cancelled waiter steals nothing, a task group cancels its siblings) hold
//! under every schedule explored, not only under FIFO. Each scenario checks
//! its own invariant and returns an `Err` naming what broke.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use gencoro::runtime::{self, Error, ErrorKind};
use gencoro::sync::{Condition, Lock, Queue, Semaphore};
use gencoro::testing::{self, Checker};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn yields(n: usize) -> Result<(), Error> {
    for _ in 0..n {
        runtime::sleep(Duration::ZERO)?;
    }
    Ok(())
}

/// Explores `scenario` three ways; it must hold under all of them.
fn holds_everywhere<F>(scenario: F, exhaustive: usize)
where
    F: Fn() -> Result<(), String> + Clone + 'static,
{
    testing::check_exhaustive(exhaustive, scenario.clone()).unwrap();
    Checker::new().check_seeded(7, 300, scenario.clone()).unwrap();
    Checker::new().persist_failures(false).proptest_seed(1).cases(200).check(scenario).unwrap();
}

/// `tasks` tasks take `sem` (`permits` permits) around a critical section
/// with suspensions inside; at most `permits` are ever inside at once, and
/// everybody gets in.
fn bounded_section(tasks: usize, permits: usize) -> impl Fn() -> Result<(), String> + Clone {
    move || {
        let sem = Rc::new(Semaphore::new(permits));
        let inside = Rc::new(Cell::new(0usize));
        let most = Rc::new(Cell::new(0usize));
        let handles: Vec<_> = (0..tasks)
            .map(|i| {
                let (sem, inside, most) = (sem.clone(), inside.clone(), most.clone());
                runtime::spawn(move || -> Result<(), Error> {
                    yields(i % 2)?;
                    let _permit = sem.acquire()?;
                    inside.set(inside.get() + 1);
                    most.set(most.get().max(inside.get()));
                    yields(2)?;
                    inside.set(inside.get() - 1);
                    Ok(())
                })
            })
            .collect();
        runtime::gather(handles).map_err(|e| e.to_string())?;
        if most.get() > permits {
            return Err(format!("{} tasks inside at once, {permits} permits", most.get()));
        }
        if sem.value() != permits {
            return Err(format!("{} permits left of {permits}", sem.value()));
        }
        Ok(())
    }
}

#[test]
fn a_lock_excludes_under_every_schedule() {
    holds_everywhere(bounded_section(3, 1), 2);
}

#[test]
fn a_semaphore_bounds_under_every_schedule() {
    holds_everywhere(bounded_section(4, 2), 2);
}

/// Two tasks wait for a lock that main holds; one of them is cancelled
/// around the time main releases. The other still gets the lock, the lock
/// ends free, and nobody is stuck.
fn cancelled_lock_waiter() -> Result<(), String> {
    let lock = Rc::new(Lock::new());
    let guard = lock.try_acquire().ok_or("the lock is taken")?;
    let got = Rc::new(RefCell::new(Vec::new()));
    let waiters: Vec<_> = (0..2)
        .map(|i| {
            let (lock, got) = (lock.clone(), got.clone());
            runtime::spawn(move || -> Result<(), Error> {
                let _guard = lock.acquire()?;
                got.borrow_mut().push(i);
                yields(1)
            })
        })
        .collect();
    yields(1).map_err(|e| e.to_string())?;
    drop(guard);
    waiters[0].cancel();
    let first = waiters[0].join();
    waiters[1].join().map_err(|e| format!("the other waiter failed: {e}"))?;
    match first {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::Cancelled => {}
        Err(e) => return Err(format!("the cancelled waiter failed otherwise: {e}")),
    }
    if !got.borrow().contains(&1) {
        return Err("the other waiter never got the lock".to_owned());
    }
    if lock.locked() {
        return Err("the lock is still held".to_owned());
    }
    Ok(())
}

#[test]
fn a_cancelled_lock_waiter_steals_nothing_under_every_schedule() {
    holds_everywhere(cancelled_lock_waiter, 2);
}

/// Two producers and two consumers on a bounded queue: every item arrives
/// exactly once, and each producer's items in the order it put them.
fn queue_exchange() -> Result<(), String> {
    let queue = Rc::new(Queue::<(usize, usize)>::bounded(1));
    let producers: Vec<_> = (0..2)
        .map(|p| {
            let queue = queue.clone();
            runtime::spawn(move || -> Result<(), Error> {
                for i in 0..3 {
                    queue.put((p, i)).map_err(|_| Error::new("put failed"))?;
                }
                Ok(())
            })
        })
        .collect();
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let queue = queue.clone();
            runtime::spawn(move || -> Result<Vec<(usize, usize)>, Error> {
                let mut got = Vec::new();
                for _ in 0..3 {
                    got.push(queue.get()?);
                }
                Ok(got)
            })
        })
        .collect();
    runtime::gather(producers).map_err(|e| e.to_string())?;
    let got = runtime::gather(consumers).map_err(|e| e.to_string())?;
    let mut all: Vec<_> = got.iter().flatten().copied().collect();
    for consumer in &got {
        for p in 0..2 {
            let mine: Vec<_> = consumer.iter().filter(|(q, _)| *q == p).map(|(_, i)| *i).collect();
            if !mine.is_sorted() {
                return Err(format!("producer {p}'s items out of order: {got:?}"));
            }
        }
    }
    all.sort();
    let expected: Vec<_> = (0..2).flat_map(|p| (0..3).map(move |i| (p, i))).collect();
    if all != expected {
        return Err(format!("items lost or doubled: {got:?}"));
    }
    Ok(())
}

#[test]
fn a_queue_loses_and_doubles_nothing_under_every_schedule() {
    holds_everywhere(queue_exchange, 2);
}

/// A condition variable guarding a counter: waiters wake only once the
/// predicate holds, and all of them do.
fn condition_counter() -> Result<(), String> {
    let cond = Rc::new(Condition::new());
    let count = Rc::new(Cell::new(0));
    let waiters: Vec<_> = (1..=2)
        .map(|target| {
            let (cond, count) = (cond.clone(), count.clone());
            runtime::spawn(move || -> Result<i32, Error> {
                let mut guard = cond.acquire()?;
                cond.wait_for(&mut guard, || count.get() >= target)?;
                Ok(count.get() - target)
            })
        })
        .collect();
    let bumper = {
        let (cond, count) = (cond.clone(), count.clone());
        runtime::spawn(move || -> Result<(), Error> {
            for _ in 0..2 {
                yields(1)?;
                let _guard = cond.acquire()?;
                count.set(count.get() + 1);
                cond.notify_all().map_err(|e| Error::new(e.message()))?;
            }
            Ok(())
        })
    };
    let slack = runtime::gather(waiters).map_err(|e| e.to_string())?;
    bumper.join().map_err(|e| e.to_string())?;
    if slack.iter().any(|&s| s < 0) {
        return Err(format!("a waiter woke before its predicate held: {slack:?}"));
    }
    Ok(())
}

#[test]
fn a_condition_wakes_waiters_only_when_their_predicate_holds() {
    holds_everywhere(condition_counter, 2);
}

/// A task group whose child fails: the siblings are cancelled, the group
/// reports the failure, and nothing is left running.
fn failing_group() -> Result<(), String> {
    let finished = Rc::new(Cell::new(0));
    let outcome = runtime::task_group(|group| {
        for i in 0..3 {
            let finished = finished.clone();
            group.spawn(move || -> Result<(), Error> {
                yields(i)?;
                if i == 1 {
                    return Err(Error::new("child 1 failed"));
                }
                runtime::sleep(ms(10))?;
                finished.set(finished.get() + 1);
                Ok(())
            })?;
        }
        Ok(())
    });
    let Err(e) = outcome else { return Err("the group did not fail".to_owned()) };
    let messages: Vec<String> = e.errors().iter().map(|e| e.to_string()).collect();
    if e.kind() != ErrorKind::Group
        || messages.len() != 1
        || !messages[0].contains("child 1 failed")
    {
        return Err(format!("the group reported {e}: {messages:?}"));
    }
    if finished.get() != 0 {
        return Err(format!("{} siblings ran to the end", finished.get()));
    }
    let left = runtime::all_tasks().map_err(|e| e.to_string())?;
    if left.len() != 1 {
        return Err(format!("tasks left running: {left:?}"));
    }
    Ok(())
}

#[test]
fn a_task_group_cancels_its_siblings_under_every_schedule() {
    holds_everywhere(failing_group, 2);
}

/// `timeout` around work that sometimes finishes in time: a sleep of 2 ms
/// under a 2 ms deadline must not be reported both done and timed out, and
/// work of 1 ms always finishes.
fn timeouts() -> Result<(), String> {
    let quick = runtime::timeout(Some(ms(2)), |_| runtime::sleep(ms(1)));
    if let Err(e) = quick {
        return Err(format!("1 ms of work under a 2 ms timeout failed: {e}"));
    }
    let slow = runtime::timeout(Some(ms(2)), |_| runtime::sleep(ms(3)));
    match slow {
        Err(e) if e.kind() == ErrorKind::Timeout => {}
        other => return Err(format!("3 ms of work under a 2 ms timeout: {other:?}")),
    }
    let done = Rc::new(Cell::new(false));
    let flag = done.clone();
    let tight = runtime::timeout(Some(ms(2)), move |_| {
        runtime::sleep(ms(2))?;
        flag.set(true);
        Ok(())
    });
    match tight {
        Ok(()) if done.get() => Ok(()),
        Err(e) if e.kind() == ErrorKind::Timeout && !done.get() => Ok(()),
        other => Err(format!("equal deadlines: {other:?}, body done: {}", done.get())),
    }
}

#[test]
fn timeouts_are_consistent_under_every_schedule() {
    holds_everywhere(timeouts, 3);
}

/// The same critical section guarded by a home-made lock that checks a
/// flag, suspends, then sets it: the search finds two tasks inside at once
/// (so the exclusion check above can fail).
#[test]
fn a_flag_lock_with_a_gap_is_caught() {
    let scenario = || -> Result<(), String> {
        let taken = Rc::new(Cell::new(false));
        let inside = Rc::new(Cell::new(0usize));
        let most = Rc::new(Cell::new(0usize));
        let handles: Vec<_> = (0..2)
            .map(|i| {
                let (taken, inside, most) = (taken.clone(), inside.clone(), most.clone());
                runtime::spawn(move || -> Result<(), Error> {
                    yields(i)?;
                    while taken.get() {
                        yields(1)?;
                    }
                    yields(1)?; // the gap
                    taken.set(true);
                    inside.set(inside.get() + 1);
                    most.set(most.get().max(inside.get()));
                    yields(2)?;
                    inside.set(inside.get() - 1);
                    taken.set(false);
                    Ok(())
                })
            })
            .collect();
        runtime::gather(handles).map_err(|e| e.to_string())?;
        if most.get() > 1 { Err(format!("{} tasks inside at once", most.get())) } else { Ok(()) }
    };
    assert!(testing::replay(&testing::Schedule::fifo(), scenario).passed());
    let failure = testing::check_exhaustive(2, scenario).unwrap_err();
    assert_eq!(failure.message(), "2 tasks inside at once");
    assert_eq!(failure.schedule().deviations(), 1);
}
