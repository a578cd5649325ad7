//! The loop's readiness driver: one `mio::Poll` per loop, made when the
//! first socket registers (`Core::io_driver`), so a loop without sockets
//! never makes one.
//!
//! A registered socket has a [`Readiness`]: the lines of tasks parked to
//! read and to write ([`Parked`] entries). The loop's wait step calls
//! [`Driver::poll`], which wakes the entries of every socket an event names:
//! each wake-up goes to the back of the ready queue, like any other, so FIFO
//! order and the single pick point still decide what runs.
//!
//! Readiness is edge-triggered (mio's only mode). A task parks only after
//! a system call found the socket drained (`WouldBlock`, or a short read or
//! write) with no event for it fetched since ([`Readiness::may_be_ready`]):
//! an edge that came after that call is in the poll's queue and wakes the
//! task (and marks the socket ready), and one that came before it was
//! already seen by the call. A wake-up with nothing to do (an old edge) is
//! harmless: the task tries again and parks again.
//!
//! Staleness: an entry carries the token of its suspension, so waking an
//! entry whose task was cancelled, or has moved on, does nothing
//! ([`Parked::wake`]). Tokens of the poll are slot indexes, reused after a
//! socket is dropped; events are handled in the same call that fetched them
//! (no socket can be dropped in between), and deregistering removes a
//! socket's pending events from the kernel's queue, so an event never
//! reaches the next owner of a slot (and if it did, it would be one more
//! harmless wake-up).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use mio::event::Source;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::runtime::LoopRef;
use crate::runtime::park::{Park, Parked};

/// The poll token of the loop's waker (never a slot index).
const WAKER: Token = Token(usize::MAX);

/// Events fetched by one poll at most; more wait for the next one.
const EVENTS: usize = 1024;

/// What another thread uses to wake a loop that blocks in its poll
/// (`Remote` keeps it once the loop has a poll).
pub(crate) struct PollWaker(Waker);

impl PollWaker {
    /// Makes the loop's poll return (an eventfd write on Linux).
    pub(crate) fn wake(&self) {
        // The only failure is a full eventfd counter, which wakes the poll
        // anyway.
        let _ = self.0.wake();
    }
}

/// Which readiness a task waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Read = 0,
    Write = 1,
}

/// One socket's lines of parked tasks, and what the loop knows of its
/// readiness.
pub(crate) struct Readiness {
    readers: RefCell<Vec<Parked>>,
    writers: RefCell<Vec<Parked>>,
    /// Per direction: false once a system call found the socket drained
    /// (`WouldBlock`, or a short read or write), true again at the next
    /// event for it. While false, a task parks without trying the call:
    /// any data or space that comes after the call that drained it brings
    /// an event, which the poll queues until it is fetched. (tokio keeps
    /// the same bit.)
    ready: [Cell<bool>; 2],
    /// Per direction: the peer closed that side, or the socket failed. It
    /// stays so (no further event would come), and a call always tries:
    /// a short read before the end of the stream does not mean that the
    /// next read would block.
    closed: [Cell<bool>; 2],
}

impl Default for Readiness {
    fn default() -> Self {
        Readiness {
            readers: RefCell::default(),
            writers: RefCell::default(),
            // Unknown at first: try the call.
            ready: [Cell::new(true), Cell::new(true)],
            closed: [Cell::new(false), Cell::new(false)],
        }
    }
}

impl Readiness {
    /// Whether a system call in `dir` may succeed: false if one found the
    /// socket drained and no event came since.
    pub(crate) fn may_be_ready(&self, dir: Direction) -> bool {
        self.ready[dir as usize].get() || self.closed[dir as usize].get()
    }

    /// A system call in `dir` found the socket drained.
    pub(crate) fn drained(&self, dir: Direction) {
        self.ready[dir as usize].set(false);
    }

    fn line(&self, dir: Direction) -> &RefCell<Vec<Parked>> {
        match dir {
            Direction::Read => &self.readers,
            Direction::Write => &self.writers,
        }
    }

    /// Queues a parked task. Entries that are no longer pending (their
    /// task was cancelled or moved on) are dropped on the way, so a line
    /// never grows past the tasks that really wait.
    pub(crate) fn add(&self, dir: Direction, entry: Parked) {
        let mut line = self.line(dir).borrow_mut();
        if !line.is_empty() {
            line.retain(Parked::is_pending);
        }
        line.push(entry);
    }

    /// Takes `park`'s entry out, if it is still queued (its wait was
    /// cancelled, or its stack unwinds).
    pub(crate) fn remove(&self, dir: Direction, park: &Park) {
        if let Ok(mut line) = self.line(dir).try_borrow_mut() {
            if !line.is_empty() {
                line.retain(|entry| !park.is(entry));
            }
        }
    }

    /// Wakes every task parked in `dir`; true if one was pending. All of
    /// them, since any may be the one to consume the readiness (a task
    /// that finds nothing parks again).
    fn wake(&self, dir: Direction) -> bool {
        // Taken out, so that no borrow is held while a stale entry drops
        // (it may hold the last reference to a finished task, whose result
        // has a destructor); its buffer goes back afterwards, so a socket
        // waited on again and again allocates nothing.
        let mut line = {
            let mut current = self.line(dir).borrow_mut();
            if current.is_empty() {
                // Nobody waits: the buffer stays for the next wait.
                return false;
            }
            std::mem::take(&mut *current)
        };
        let mut woke = false;
        for entry in line.drain(..) {
            woke |= entry.wake_taken().is_ok();
        }
        if let Ok(mut current) = self.line(dir).try_borrow_mut() {
            if current.capacity() == 0 {
                *current = line;
            }
        }
        woke
    }

    /// Whether a task is parked here.
    pub(crate) fn has_waiters(&self) -> bool {
        self.readers.borrow().iter().any(Parked::is_pending)
            || self.writers.borrow().iter().any(Parked::is_pending)
    }
}

/// A socket's place in the driver; deregister it before the socket closes.
pub(crate) struct Registration {
    driver: Rc<Driver>,
    /// The loop whose driver this is.
    owner: LoopRef,
    slot: usize,
    readiness: Rc<Readiness>,
}

impl Registration {
    pub(crate) fn readiness(&self) -> &Rc<Readiness> {
        &self.readiness
    }

    /// The loop this registration is with.
    pub(crate) fn owner(&self) -> &LoopRef {
        &self.owner
    }

    /// Whether this registration is with `driver`.
    pub(crate) fn is_with(&self, driver: &Rc<Driver>) -> bool {
        Rc::ptr_eq(&self.driver, driver)
    }

    /// Removes `source` from the poll and frees its slot.
    pub(crate) fn deregister(self, source: &mut impl Source) {
        // Closing the socket would remove it from the poll anyway; an error
        // here leaves nothing behind.
        let _ = self.driver.poll.borrow().registry().deregister(source);
        let mut slots = self.driver.slots.borrow_mut();
        slots[self.slot] = None;
        self.driver.free.borrow_mut().push(self.slot);
        self.driver.registered.set(self.driver.registered.get() - 1);
    }
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration").field("slot", &self.slot).finish_non_exhaustive()
    }
}

/// A loop's poll and its registered sockets.
pub(crate) struct Driver {
    poll: RefCell<Poll>,
    events: RefCell<Events>,
    slots: RefCell<Vec<Option<Rc<Readiness>>>>,
    free: RefCell<Vec<usize>>,
    registered: Cell<usize>,
}

impl Driver {
    /// A new poll, and the waker other threads use to interrupt it.
    ///
    /// # Errors
    ///
    /// The system refused a poll (out of file descriptors).
    pub(crate) fn new() -> io::Result<(Driver, PollWaker)> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        let driver = Driver {
            poll: RefCell::new(poll),
            events: RefCell::new(Events::with_capacity(EVENTS)),
            slots: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
            registered: Cell::new(0),
        };
        Ok((driver, PollWaker(waker)))
    }

    /// Registers `source` for both readiness kinds (edge-triggered, so
    /// asking for both costs nothing while nobody waits).
    ///
    /// # Errors
    ///
    /// The system refused the registration.
    pub(crate) fn register(
        self: &Rc<Self>,
        owner: LoopRef,
        source: &mut impl Source,
    ) -> io::Result<Registration> {
        let slot = match self.free.borrow_mut().pop() {
            Some(slot) => slot,
            None => {
                let mut slots = self.slots.borrow_mut();
                slots.push(None);
                slots.len() - 1
            }
        };
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = self.poll.borrow().registry().register(source, Token(slot), interest) {
            self.free.borrow_mut().push(slot);
            return Err(e);
        }
        let readiness = Rc::new(Readiness::default());
        self.slots.borrow_mut()[slot] = Some(readiness.clone());
        self.registered.set(self.registered.get() + 1);
        Ok(Registration { driver: self.clone(), owner, slot, readiness })
    }

    /// Whether any socket is registered: only then does the loop poll.
    pub(crate) fn has_registrations(&self) -> bool {
        self.registered.get() > 0
    }

    /// Whether a task is parked on a socket: the loop then blocks in its
    /// poll rather than report a deadlock (the peer may be anywhere).
    pub(crate) fn has_waiters(&self) -> bool {
        self.slots.borrow().iter().flatten().any(|r| r.has_waiters())
    }

    /// Waits for readiness for at most `timeout` (`None`: until an event or
    /// the waker) and wakes the tasks parked on what became ready; true if
    /// one was woken. It runs no user code.
    pub(crate) fn poll(&self, timeout: Option<Duration>) -> bool {
        let mut events = self.events.borrow_mut();
        if self.poll.borrow_mut().poll(&mut events, timeout).is_err() {
            // Interrupted by a signal, or a failure of the poll itself: the
            // loop looks again in its next iteration.
            return false;
        }
        let mut woke = false;
        for event in events.iter() {
            if event.token() == WAKER {
                continue;
            }
            let readiness = self.slots.borrow().get(event.token().0).cloned().flatten();
            let Some(readiness) = readiness else { continue };
            if event.is_read_closed() || event.is_error() {
                readiness.closed[Direction::Read as usize].set(true);
            }
            if event.is_write_closed() || event.is_error() {
                readiness.closed[Direction::Write as usize].set(true);
            }
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                readiness.ready[Direction::Read as usize].set(true);
                woke |= readiness.wake(Direction::Read);
            }
            if event.is_writable() || event.is_write_closed() || event.is_error() {
                readiness.ready[Direction::Write as usize].set(true);
                woke |= readiness.wake(Direction::Write);
            }
        }
        woke
    }
}

impl fmt::Debug for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Driver").field("registered", &self.registered.get()).finish_non_exhaustive()
    }
}
