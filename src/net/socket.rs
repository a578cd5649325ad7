//! A mio socket with its registration: the one place a task waits for
//! readiness.

use std::cell::{Ref, RefCell};
use std::fmt;
use std::io;
use std::rc::Rc;

use mio::event::Source;

use super::driver::{Direction, Readiness, Registration};
use crate::runtime::park::Park;
use crate::runtime::{Error, ErrorKind};

/// A non-blocking socket, registered with the loop of the first task that
/// waits on it; deregistered when dropped.
pub(crate) struct Socket<S: Source> {
    /// Borrowed mutably only to register (mio's `register` takes `&mut`),
    /// never during a system call.
    io: RefCell<S>,
    reg: RefCell<Option<Registration>>,
}

impl<S: Source> Socket<S> {
    pub(crate) fn new(io: S) -> Socket<S> {
        Socket { io: RefCell::new(io), reg: RefCell::new(None) }
    }

    pub(crate) fn get(&self) -> Ref<'_, S> {
        self.io.borrow()
    }

    /// Runs `op` until it does not say `WouldBlock`, parking the task for
    /// readiness in `dir` between tries. `what` names the wait in deadlock
    /// reports. `Interrupted` is retried at once. `drained` tells from a
    /// successful result that the call emptied the socket (a short read or
    /// write), so the next call parks without trying (see
    /// [`Readiness::may_be_ready`]).
    ///
    /// # Errors
    ///
    /// The I/O error of `op`, the cancellation of a wait, or a refused wait.
    pub(crate) fn io<T>(
        &self,
        dir: Direction,
        what: &'static str,
        mut op: impl FnMut(&S) -> io::Result<T>,
        drained: impl Fn(&T) -> bool,
    ) -> Result<T, Error> {
        loop {
            if self.may_be_ready(dir) {
                match op(&self.io.borrow()) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.mark_drained(dir),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Ok(value) => {
                        if drained(&value) {
                            self.mark_drained(dir);
                        }
                        return Ok(value);
                    }
                    Err(e) => return Err(Error::from(e)),
                }
            }
            self.wait(dir, what)?;
        }
    }

    /// False only if the socket is registered and a call found it drained
    /// in `dir` with no event since.
    fn may_be_ready(&self, dir: Direction) -> bool {
        self.reg.borrow().as_ref().is_none_or(|r| r.readiness().may_be_ready(dir))
    }

    fn mark_drained(&self, dir: Direction) {
        if let Some(reg) = &*self.reg.borrow() {
            reg.readiness().drained(dir);
        }
    }

    /// Parks the running task until the socket may be ready in `dir`
    /// (readiness, an error, or the peer's close). Call it only after the
    /// system call said `WouldBlock` in this step (see the driver's docs).
    ///
    /// # Errors
    ///
    /// The cancellation (the entry is gone when it returns), a refused
    /// wait, or a failed registration.
    pub(crate) fn wait(&self, dir: Direction, what: &'static str) -> Result<(), Error> {
        // Refused before anything is registered if the caller may not wait.
        let park = Park::prepare(what)?;
        // Registered with this task's loop already (every wait but the
        // first): no lookup of the running loop.
        let registered = self
            .reg
            .borrow()
            .as_ref()
            .filter(|r| park.is_on(r.owner()))
            .map(|r| r.readiness().clone());
        let readiness = match registered.map_or_else(|| self.readiness(), Ok) {
            Ok(readiness) => readiness,
            Err(e) => {
                park.cancel();
                return Err(e);
            }
        };
        readiness.add(dir, park.entry());
        let _unqueue = Unqueue { readiness: &readiness, dir, park: &park };
        // Woken: the entry was taken out by the waker. Cancelled, or the
        // stack unwinds: the guard takes it out, so no entry outlives its
        // wait (a stale one could not wake the task anyway: its token is
        // the old suspension's).
        park.wait()
    }

    /// The socket's readiness lines, registering it with the running loop
    /// on first use.
    fn readiness(&self) -> Result<Rc<Readiness>, Error> {
        let (driver, owner) = crate::runtime::io_driver()?;
        let mut reg = self.reg.borrow_mut();
        if let Some(current) = &*reg {
            if current.is_with(&driver) {
                return Ok(current.readiness().clone());
            }
            // Registered with another loop, which is not running (one loop
            // runs on a thread at a time, and a socket stays on its
            // thread): the socket moves to this one, unless a task of the
            // other loop still waits on it.
            if current.readiness().has_waiters() {
                return Err(Error::kind_msg(
                    ErrorKind::Misuse,
                    "the socket is waited on by a task of another event loop",
                ));
            }
            if let Some(old) = reg.take() {
                old.deregister(&mut *self.io.borrow_mut());
            }
        }
        let registration = driver.register(owner, &mut *self.io.borrow_mut())?;
        let readiness = registration.readiness().clone();
        *reg = Some(registration);
        Ok(readiness)
    }
}

impl<S: Source> Drop for Socket<S> {
    fn drop(&mut self) {
        if let Some(reg) = self.reg.get_mut().take() {
            reg.deregister(self.io.get_mut());
        }
    }
}

impl<S: Source + fmt::Debug> fmt::Debug for Socket<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.io.borrow(), f)
    }
}

/// Takes a park's entry out of its line when the wait ends.
struct Unqueue<'a> {
    readiness: &'a Readiness,
    dir: Direction,
    park: &'a Park,
}

impl Drop for Unqueue<'_> {
    fn drop(&mut self) {
        self.readiness.remove(self.dir, self.park);
    }
}
