//! `Condition` (Python `asyncio.Condition`).

use std::fmt;
use std::rc::Rc;

use super::lock::{Lock, LockGuard, SyncError, Waiters};
use crate::runtime::park::Park;
use crate::runtime::{Error, ErrorKind};

/// A condition variable: tasks wait, holding its [`Lock`], until another
/// task notifies them. Python: `asyncio.Condition` (B11.3).
///
/// [`wait`](Self::wait) releases the lock, waits for a
/// [`notify`](Self::notify), then takes the lock again before it returns.
/// `notify(n)` wakes the first `n` waiters in the order they began to wait;
/// each proceeds only once it has the lock again, which the notifier still
/// holds, so they take it one by one as it is released.
///
/// The waits take the caller's [`LockGuard`], the proof that the task holds
/// the lock, and leave it holding the lock again.
///
/// Cheap to clone; all clones are the same condition.
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
/// use gencoro::runtime::{self, Builder, Clock};
/// use gencoro::sync::Condition;
///
/// Builder::new().clock(Clock::virtual_time()).run(|| {
///     let cond = Condition::new();
///     let items = Rc::new(Cell::new(0));
///     let (c, i) = (cond.clone(), items.clone());
///     let consumer = runtime::spawn(move || {
///         let mut guard = c.acquire()?; // Python: `async with cond:`
///         c.wait_for(&mut guard, || i.get() > 0)?;
///         i.set(i.get() - 1);
///         Ok("consumed")
///     });
///     runtime::sleep(std::time::Duration::from_secs(1))?;
///     {
///         let _guard = cond.acquire()?;
///         items.set(1);
///         cond.notify(1)?;
///     } // the consumer proceeds once the lock is released here
///     assert_eq!(consumer.join()?, "consumed");
///     assert_eq!(items.get(), 0);
///     Ok(())
/// }).unwrap();
/// ```
#[derive(Clone, Default)]
pub struct Condition {
    inner: Rc<CondInner>,
}

#[derive(Default)]
struct CondInner {
    lock: Lock,
    waiters: Waiters,
}

impl Condition {
    /// A condition with a new lock of its own. It needs no running loop.
    /// Python: `asyncio.Condition()`.
    pub fn new() -> Condition {
        Condition::default()
    }

    /// A condition on `lock` (shared with its other clones). Python:
    /// `asyncio.Condition(lock)`.
    pub fn with_lock(lock: Lock) -> Condition {
        Condition { inner: Rc::new(CondInner { lock, waiters: Waiters::default() }) }
    }

    /// Its lock.
    pub fn lock(&self) -> &Lock {
        &self.inner.lock
    }

    /// Whether its lock is held. Python: `cond.locked()`.
    pub fn locked(&self) -> bool {
        self.inner.lock.locked()
    }

    /// Takes its lock; see [`Lock::acquire`]. Python: `await
    /// cond.acquire()`, `async with cond:`.
    ///
    /// # Cancellation
    ///
    /// As [`Lock::acquire`].
    ///
    /// # Errors
    ///
    /// As [`Lock::acquire`].
    #[inline]
    pub fn acquire(&self) -> Result<LockGuard<'_>, Error> {
        self.inner.lock.acquire()
    }

    /// Releases its lock; see [`Lock::release`]. Python: `cond.release()`.
    ///
    /// # Errors
    ///
    /// [`SyncError::NotAcquired`] if it is not locked.
    pub fn release(&self) -> Result<(), SyncError> {
        self.inner.lock.release()
    }

    /// How many tasks wait to be notified (those notified but not run yet
    /// included). Python: `len(cond._waiters)`.
    pub fn waiters(&self) -> usize {
        self.inner.waiters.len()
    }

    /// Releases the lock `guard` holds, waits to be notified, and takes the
    /// lock again before it returns, with `guard` holding it. Python:
    /// `await cond.wait()`.
    ///
    /// # Cancellation
    ///
    /// The lock is taken again **even if the task is cancelled**, as in
    /// Python: a cancellation while it waits to be notified, or while it
    /// waits for the lock again, does not stop the wait for the lock. Only
    /// once `guard` holds the lock again does `wait` return the
    /// cancellation (the first one, if there were several), so the code
    /// after it always runs with the lock held, and `?` then releases it
    /// through the guard.
    ///
    /// A task notified and then cancelled before it ran loses that
    /// notification: it is not passed on to another waiter (CPython 3.11;
    /// 3.13 passes it on).
    ///
    /// If waiting becomes impossible (the task can no longer suspend, say
    /// because it unwinds from a panic) while the lock is taken by another
    /// task, `wait` returns that error with the lock not held, and `guard`
    /// holds nothing: [`LockGuard::is_held`] is false and dropping it does
    /// nothing.
    ///
    /// # Errors
    ///
    /// A cancellation (with the lock held again);
    /// [`SyncError::WaitUnacquired`] (kind [`ErrorKind::Misuse`]) if
    /// `guard` does not hold the lock any more (it was released by hand),
    /// and [`ErrorKind::Misuse`] if `guard` is of another lock, both
    /// before anything is released; the errors of a wait outside a task.
    pub fn wait(&self, guard: &mut LockGuard<'_>) -> Result<(), Error> {
        let lock = &self.inner.lock;
        if !guard.lock().ptr_eq(lock) {
            return Err(Error::kind_msg(
                ErrorKind::Misuse,
                "the guard does not hold this condition's lock",
            ));
        }
        if !guard.is_held() {
            return Err(SyncError::WaitUnacquired.into());
        }
        // Made before the lock is released: if the task cannot wait,
        // nothing has changed.
        let park = Park::prepare("Condition.wait")?;
        lock.release_locked();
        let notified = {
            let entry = self.inner.waiters.enqueue(park);
            entry.park.wait()
        };
        // Python: `finally: ... while True: try: await self.acquire()`.
        let mut cancelled = None;
        loop {
            match lock.acquire_raw() {
                Ok(()) => break,
                Err(e) if e.is_cancelled() => {
                    cancelled.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        guard.renew();
        notified?;
        cancelled.map_or(Ok(()), Err)
    }

    /// Waits until `predicate` is true: checks it, and [`wait`](Self::wait)s
    /// and checks it again as long as it is false. Returns at once if it is
    /// true to begin with. Python: `await cond.wait_for(predicate)`.
    ///
    /// # Cancellation
    ///
    /// As [`wait`](Self::wait): the cancellation is returned with the lock
    /// held again, and `predicate` is not checked after it.
    ///
    /// # Errors
    ///
    /// As [`wait`](Self::wait).
    pub fn wait_for(
        &self,
        guard: &mut LockGuard<'_>,
        mut predicate: impl FnMut() -> bool,
    ) -> Result<(), Error> {
        while !predicate() {
            self.wait(guard)?;
        }
        Ok(())
    }

    /// Wakes the first `n` waiting tasks that were not woken already, in
    /// the order they began to wait; returns how many it woke. Each
    /// returns from its wait only once it has taken the lock again, so the
    /// caller should release it. Python: `cond.notify(n)`.
    ///
    /// # Errors
    ///
    /// [`SyncError::NotifyUnacquired`] if the lock is not held.
    pub fn notify(&self, n: usize) -> Result<usize, SyncError> {
        if !self.locked() {
            return Err(SyncError::NotifyUnacquired);
        }
        Ok(self.inner.waiters.wake_pending(n))
    }

    /// Wakes every waiting task; see [`notify`](Self::notify). Python:
    /// `cond.notify_all()`.
    ///
    /// # Errors
    ///
    /// [`SyncError::NotifyUnacquired`] if the lock is not held.
    pub fn notify_all(&self) -> Result<usize, SyncError> {
        self.notify(self.waiters())
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition")
            .field("locked", &self.locked())
            .field("waiters", &self.waiters())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Condition;
    use crate::generator::Generator;
    use crate::runtime::{self, Builder, Clock, ErrorKind};

    /// A wait that cannot suspend (here: from a generator nested in the
    /// task) is refused before the lock is released, so the lock stays
    /// with the caller and no task queued for it is woken.
    #[test]
    fn a_refused_condition_wait_keeps_the_lock_and_wakes_nobody() {
        let outcome = Builder::new()
            .clock(Clock::virtual_time())
            .run(|| {
                let cond = Condition::new();
                std::mem::forget(cond.acquire()?);
                let c = cond.clone();
                let other = runtime::spawn(move || {
                    drop(c.acquire()?);
                    Ok(())
                });
                runtime::sleep(Duration::ZERO)?;
                assert_eq!(cond.lock().waiters(), 1);
                let c = cond.clone();
                let nested: Generator<(ErrorKind, bool)> = Generator::new(move |co| {
                    let mut guard = c.lock().guard();
                    let kind = c.wait(&mut guard).unwrap_err().kind();
                    let held = guard.is_held();
                    std::mem::forget(guard);
                    co.yield_((kind, held));
                });
                let (refused, held) = nested.resume().unwrap().yielded().unwrap();
                let kept = held && cond.locked() && cond.waiters() == 0;
                runtime::sleep(Duration::from_secs(1))?;
                let other_done = other.is_done();
                cond.release()?;
                other.join()?;
                Ok((refused, kept, other_done))
            })
            .unwrap();
        assert_eq!(outcome, (ErrorKind::Misuse, true, false));
    }
}
