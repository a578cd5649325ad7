//! `Semaphore` and `BoundedSemaphore` (Python `asyncio.Semaphore`,
//! `asyncio.BoundedSemaphore`), and the permit guard they hand out.

use std::cell::Cell;
use std::fmt;
use std::rc::Rc;

use super::lock::{SyncError, Waiters};
use crate::runtime::Error;
use crate::runtime::park::{Park, ParkState};

/// A counter of permits tasks take and give back. Python:
/// `asyncio.Semaphore` (CPython 3.11.7's rules, B11.4).
///
/// [`acquire`](Self::acquire) takes a permit at once unless the semaphore
/// is [`locked`](Self::locked): no permit left, *or* some task still waits
/// whose wait was not cancelled. So a newcomer never takes a permit ahead of
/// a queued task (no barging, gh-90155). Otherwise it queues, first in,
/// first out. [`release`](Self::release) (or dropping the
/// [`SemaphorePermit`]) adds a permit and hands it straight to the first
/// waiter that was not woken yet: the permit is that waiter's from then on,
/// and [`value`](Self::value) does not count it.
///
/// A plain semaphore may be released above its initial value; see
/// [`BoundedSemaphore`] for one that refuses. Python's `ValueError` for a
/// negative initial value cannot happen: the value is a `usize`.
///
/// Cheap to clone; all clones are the same semaphore.
///
/// ```
/// use std::time::Duration;
/// use gencoro::runtime::{self, Builder, Clock};
/// use gencoro::sync::Semaphore;
///
/// let clock = Clock::virtual_time();
/// Builder::new().clock(clock.clone()).run(|| {
///     let sem = Semaphore::new(2); // at most two at a time
///     let tasks: Vec<_> = (0..4)
///         .map(|_| {
///             let sem = sem.clone();
///             runtime::spawn(move || {
///                 let _permit = sem.acquire()?;
///                 runtime::sleep(Duration::from_secs(1))
///             })
///         })
///         .collect();
///     runtime::gather(tasks)?;
///     assert_eq!(sem.value(), 2);
///     Ok(())
/// }).unwrap();
/// assert_eq!(clock.now(), Duration::from_secs(2));
/// ```
#[derive(Clone)]
pub struct Semaphore {
    inner: Rc<SemInner>,
}

struct SemInner {
    value: Cell<usize>,
    /// `Some(initial value)` for a bounded semaphore.
    bound: Option<usize>,
    waiters: Waiters,
}

/// One permit, given back when dropped: also when the task returns early
/// with `?`, is cancelled, or unwinds from a panic. Python: the body of
/// `async with sem:`.
///
/// To give a permit back elsewhere, as Python's separate `acquire()` and
/// `release()` do, [`std::mem::forget`] it and call `release` later.
/// Dropping a permit of a [`BoundedSemaphore`] that is at its bound already
/// (it was released by hand too often) adds nothing.
#[must_use = "dropping the permit gives it back at once"]
pub struct SemaphorePermit<'a> {
    sem: &'a Semaphore,
}

impl Default for Semaphore {
    /// One permit, as Python's `Semaphore()`.
    fn default() -> Self {
        Semaphore::new(1)
    }
}

impl Semaphore {
    /// A semaphore with `value` permits. It needs no running loop. Python:
    /// `asyncio.Semaphore(value)`.
    pub fn new(value: usize) -> Semaphore {
        Semaphore::with_bound(value, None)
    }

    fn with_bound(value: usize, bound: Option<usize>) -> Semaphore {
        Semaphore {
            inner: Rc::new(SemInner {
                value: Cell::new(value),
                bound,
                waiters: Waiters::default(),
            }),
        }
    }

    /// The permits left, not counting those handed to woken waiters that
    /// have not run yet. Python: `sem._value`.
    pub fn value(&self) -> usize {
        self.inner.value.get()
    }

    /// Whether `acquire` would wait: no permit is left, or some task still
    /// waits whose wait was not cancelled. Python: `sem.locked()`.
    pub fn locked(&self) -> bool {
        self.inner.value.get() == 0 || !self.inner.waiters.all_cancelled()
    }

    /// How many tasks are queued (those cancelled or woken but not run yet
    /// included). Python: `len(sem._waiters)`.
    pub fn waiters(&self) -> usize {
        self.inner.waiters.len()
    }

    /// Takes a permit, waiting for one if need be. Python: `await
    /// sem.acquire()`.
    ///
    /// It is taken at once, without yielding, unless the semaphore is
    /// [`locked`](Self::locked). A woken waiter that finds more permits
    /// left when it runs wakes the next one.
    ///
    /// # Cancellation
    ///
    /// Cancelling the task while it waits returns the cancellation, and the
    /// task holds no permit. If a release had handed it a permit already
    /// (it was woken but had not run yet), the permit goes back and on to
    /// the next waiter, so none is lost.
    ///
    /// # Errors
    ///
    /// A cancellation; if it has to wait, the errors of a wait outside a
    /// task ([`ErrorKind::NoRunningLoop`](crate::runtime::ErrorKind), or
    /// `Misuse` from a generator inside a task or while unwinding).
    #[inline]
    pub fn acquire(&self) -> Result<SemaphorePermit<'_>, Error> {
        if self.locked() {
            self.acquire_slow()?;
        } else {
            self.inner.value.set(self.inner.value.get() - 1);
        }
        Ok(SemaphorePermit { sem: self })
    }

    /// Takes a permit if that is possible without waiting (as `acquire`
    /// would), or returns `None`. Never yields.
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        if self.locked() {
            return None;
        }
        self.inner.value.set(self.inner.value.get() - 1);
        Some(SemaphorePermit { sem: self })
    }

    /// Adds a permit and hands it to the first waiter not woken yet, if
    /// any. Python: `sem.release()`.
    ///
    /// # Panics
    ///
    /// If the value would overflow `usize`.
    pub fn release(&self) {
        let value = self.inner.value.get().checked_add(1).expect("Semaphore value overflow");
        self.inner.value.set(value);
        self.wake_up_next();
    }

    #[inline(never)]
    fn acquire_slow(&self) -> Result<(), Error> {
        let park = Park::prepare("Semaphore.acquire")?;
        self.inner.waiters.push(park.entry());
        let mut waiting = SemWait { sem: self, park, granted: false };
        let woken = waiting.park.wait();
        waiting.granted = woken.is_ok();
        drop(waiting);
        woken?;
        if self.inner.value.get() > 0 {
            self.wake_up_next();
        }
        Ok(())
    }

    /// Python: `_wake_up_next`: hands one permit to the first waiter that
    /// is not done.
    fn wake_up_next(&self) {
        if self.inner.value.get() == 0 {
            return;
        }
        // Not woken if its loop is gone, and then nobody waits on it: the
        // permit stays.
        if self.inner.waiters.wake_first_pending() {
            self.inner.value.set(self.inner.value.get() - 1);
        }
    }

    /// A permit's drop: `release`, except above a bound.
    fn give_back(&self) {
        match self.inner.bound {
            Some(bound) if self.inner.value.get() >= bound => {}
            _ => self.release(),
        }
    }
}

/// A waiter of `Semaphore::acquire_slow`: leaves the queue when dropped,
/// and if it did not get to run with its permit (cancelled after it was
/// woken, or unwound), gives the permit back and on. Python: the `finally`
/// and the `except CancelledError` of `Semaphore.acquire`, in that order.
struct SemWait<'a> {
    sem: &'a Semaphore,
    park: Park,
    granted: bool,
}

impl Drop for SemWait<'_> {
    fn drop(&mut self) {
        self.sem.inner.waiters.remove(&self.park);
        let handed_a_permit = self.park.state() == ParkState::Woken;
        if !self.granted && handed_a_permit {
            self.sem.release();
        }
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("value", &self.value())
            .field("locked", &self.locked())
            .field("waiters", &self.waiters())
            .finish()
    }
}

impl Drop for SemaphorePermit<'_> {
    #[inline]
    fn drop(&mut self) {
        self.sem.give_back();
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit").finish_non_exhaustive()
    }
}

/// A [`Semaphore`] that refuses to be released above its initial value.
/// Python: `asyncio.BoundedSemaphore`.
///
/// ```
/// use gencoro::runtime::{Builder, Clock};
/// use gencoro::sync::{BoundedSemaphore, SyncError};
///
/// Builder::new().clock(Clock::virtual_time()).run(|| {
///     let sem = BoundedSemaphore::new(1);
///     drop(sem.acquire()?);
///     assert_eq!(sem.release(), Err(SyncError::ReleasedTooManyTimes));
///     assert_eq!(sem.value(), 1);
///     Ok(())
/// }).unwrap();
/// ```
#[derive(Clone)]
pub struct BoundedSemaphore {
    sem: Semaphore,
}

impl Default for BoundedSemaphore {
    /// One permit, as Python's `BoundedSemaphore()`.
    fn default() -> Self {
        BoundedSemaphore::new(1)
    }
}

impl BoundedSemaphore {
    /// A bounded semaphore with `value` permits, which is also its bound.
    /// Python: `asyncio.BoundedSemaphore(value)`.
    pub fn new(value: usize) -> BoundedSemaphore {
        BoundedSemaphore { sem: Semaphore::with_bound(value, Some(value)) }
    }

    /// The initial value, above which it cannot be released.
    pub fn bound(&self) -> usize {
        self.sem.inner.bound.unwrap_or_default()
    }

    /// See [`Semaphore::value`].
    pub fn value(&self) -> usize {
        self.sem.value()
    }

    /// See [`Semaphore::locked`].
    pub fn locked(&self) -> bool {
        self.sem.locked()
    }

    /// See [`Semaphore::waiters`].
    pub fn waiters(&self) -> usize {
        self.sem.waiters()
    }

    /// Takes a permit, waiting for one if need be; see
    /// [`Semaphore::acquire`].
    ///
    /// # Cancellation
    ///
    /// As [`Semaphore::acquire`]: the cancelled task holds no permit, and a
    /// permit it had been handed goes on to the next waiter.
    ///
    /// # Errors
    ///
    /// As [`Semaphore::acquire`].
    #[inline]
    pub fn acquire(&self) -> Result<SemaphorePermit<'_>, Error> {
        self.sem.acquire()
    }

    /// See [`Semaphore::try_acquire`].
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.sem.try_acquire()
    }

    /// Adds a permit, as [`Semaphore::release`], unless the value is at its
    /// bound. Python: `BoundedSemaphore.release()`.
    ///
    /// # Errors
    ///
    /// [`SyncError::ReleasedTooManyTimes`] if the value is at its bound
    /// already; nothing changes then.
    pub fn release(&self) -> Result<(), SyncError> {
        if self.sem.value() >= self.bound() {
            return Err(SyncError::ReleasedTooManyTimes);
        }
        self.sem.release();
        Ok(())
    }
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedSemaphore")
            .field("value", &self.value())
            .field("bound", &self.bound())
            .field("locked", &self.locked())
            .field("waiters", &self.waiters())
            .finish()
    }
}
