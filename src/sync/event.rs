//! `Event` (Python `asyncio.Event`).

use std::cell::Cell;
use std::fmt;
use std::rc::Rc;

use super::lock::Waiters;
use crate::runtime::Error;
use crate::runtime::park::Park;

/// A flag tasks can wait for. Python: `asyncio.Event`.
///
/// [`set`](Self::set) wakes every task waiting in [`wait`](Self::wait);
/// they resume in the order they started waiting, behind whatever was
/// ready already (a task created before `set` but not started yet runs
/// first, and finds the flag set). [`clear`](Self::clear) lowers the flag
/// for later waits, without taking back a wake-up (B11.2).
///
/// Cheap to clone; all clones are the same event.
///
/// ```
/// use gencoro::runtime::{self, Builder, Clock};
/// use gencoro::sync::Event;
///
/// Builder::new().clock(Clock::virtual_time()).run(|| {
///     let ready = Event::new();
///     let r = ready.clone();
///     let waiter = runtime::spawn(move || {
///         r.wait()?;
///         Ok("woken")
///     });
///     runtime::sleep(std::time::Duration::from_secs(1))?;
///     ready.set();
///     assert_eq!(waiter.join()?, "woken");
///     Ok(())
/// }).unwrap();
/// ```
#[derive(Clone, Default)]
pub struct Event {
    inner: Rc<EventInner>,
}

#[derive(Default)]
struct EventInner {
    value: Cell<bool>,
    waiters: Waiters,
}

impl Event {
    /// A new event, not set. It needs no running loop.
    pub fn new() -> Event {
        Event::default()
    }

    /// Whether the flag is set. Python: `event.is_set()`.
    pub fn is_set(&self) -> bool {
        self.inner.value.get()
    }

    /// How many tasks wait on it (those woken but not run yet included).
    /// Python: `len(event._waiters)`.
    pub fn waiters(&self) -> usize {
        self.inner.waiters.len()
    }

    /// Sets the flag and wakes every waiting task, in the order they began
    /// to wait. Does nothing if it is set already. Python: `event.set()`.
    pub fn set(&self) {
        if self.inner.value.replace(true) {
            return;
        }
        self.inner.waiters.wake_pending(usize::MAX);
    }

    /// Lowers the flag: later waits block until the next `set`. Tasks woken
    /// already stay woken. Python: `event.clear()`.
    pub fn clear(&self) {
        self.inner.value.set(false);
    }

    /// Waits until the flag is set; returns at once, without yielding, if
    /// it is set now. Python: `await event.wait()`.
    ///
    /// # Cancellation
    ///
    /// Cancelling the task while it waits returns the cancellation; the
    /// task leaves the queue and the event is unchanged. A task cancelled
    /// after `set` woke it but before it ran also returns the cancellation
    /// (as in Python); the other waiters are not affected.
    ///
    /// # Errors
    ///
    /// A cancellation; if it has to wait, the errors of a wait outside a
    /// task ([`ErrorKind::NoRunningLoop`](crate::runtime::ErrorKind), or
    /// `Misuse` from a generator inside a task or while unwinding).
    pub fn wait(&self) -> Result<(), Error> {
        if self.inner.value.get() {
            return Ok(());
        }
        let entry = self.inner.waiters.enqueue(Park::prepare("Event.wait")?);
        entry.park.wait()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.is_set())
            .field("waiters", &self.waiters())
            .finish()
    }
}
