//! The loop's clock: real time, or virtual time that jumps to the next timer.

use std::cell::Cell;
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The clock an event loop runs on. Two kinds behind one interface:
///
/// * [`Clock::real_time`]: when nothing is ready, the loop sleeps the thread
///   until the next timer is due.
/// * [`Clock::virtual_time`]: when nothing is ready, time jumps straight to
///   the next timer. A program that takes ten seconds of real time runs in
///   microseconds, with the same output and the same elapsed figure.
///
/// A clock is a cheap handle: clone it, give one clone to
/// [`Builder::clock`](super::Builder::clock) and read the other around the
/// run, the way a Python program reads `time.time()` around `asyncio.run`.
///
/// ```
/// use std::time::Duration;
/// use gencoro::runtime::{self, Builder, Clock};
///
/// let clock = Clock::virtual_time();
/// let start = clock.now();
/// Builder::new().clock(clock.clone()).run(|| runtime::sleep(Duration::from_secs(10))).unwrap();
/// assert_eq!(clock.now() - start, Duration::from_secs(10));
/// ```
#[derive(Clone)]
pub struct Clock {
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    Real(Instant),
    Virtual(Rc<Cell<Duration>>),
}

impl Clock {
    /// The system's monotonic clock.
    pub fn real_time() -> Clock {
        Clock { kind: Kind::Real(Instant::now()) }
    }

    /// A virtual clock starting at zero, advanced only by the loop.
    pub fn virtual_time() -> Clock {
        Clock { kind: Kind::Virtual(Rc::new(Cell::new(Duration::ZERO))) }
    }

    /// Whether this is a virtual clock.
    pub fn is_virtual(&self) -> bool {
        matches!(self.kind, Kind::Virtual(_))
    }

    /// Time since the clock was made. Python: `loop.time()`, up to an offset.
    pub fn now(&self) -> Duration {
        match &self.kind {
            Kind::Real(origin) => origin.elapsed(),
            Kind::Virtual(now) => now.get(),
        }
    }

    /// Blocks the calling thread for `duration`, as a blocking call such as
    /// `std::thread::sleep` would: on a real clock it sleeps; on a virtual
    /// clock time jumps forward by `duration` at once. Python: `time.sleep`
    /// (under a virtual clock). Called from a task, it blocks the whole
    /// loop, exactly as `time.sleep` in a coroutine does.
    ///
    /// ```
    /// use std::time::Duration;
    /// use gencoro::runtime::Clock;
    ///
    /// let clock = Clock::virtual_time();
    /// clock.sleep_blocking(Duration::from_secs(3));
    /// assert_eq!(clock.now(), Duration::from_secs(3));
    /// ```
    pub fn sleep_blocking(&self, duration: Duration) {
        self.pass(duration);
    }

    /// Lets `timeout` pass: sleeps the thread, or advances virtual time.
    pub(crate) fn pass(&self, timeout: Duration) {
        match &self.kind {
            Kind::Real(_) => std::thread::sleep(timeout),
            Kind::Virtual(now) => now.set(now.get() + timeout),
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::real_time()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.is_virtual() { "virtual" } else { "real" };
        f.debug_struct("Clock").field("kind", &kind).field("now", &self.now()).finish()
    }
}
