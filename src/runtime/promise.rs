//! A one-shot future completed by hand. Python: `asyncio.Future`, as
//! `loop.create_future()` makes it.

use std::fmt;

use super::core::current_core;
use super::error::{Error, ErrorKind};
use super::record::unsize_record;
use super::task::{CallbackKind, Task, TaskCell, TaskObj, add_task_callback};

/// A one-shot future whose outcome is set from outside: a value, a
/// failure, or a cancellation. Python: `asyncio.Future` (named so as not to
/// shadow [`std::future::Future`]).
///
/// It has a future's four states (pending, done with a value, done with a
/// failure, cancelled). A task waits on it with [`wait`](Self::wait), a
/// plain call, and it goes wherever a task goes: [`gather`](super::gather),
/// [`wait`](super::wait()), [`wait_for`](super::wait_for),
/// [`shield`](super::shield), [`as_completed`](super::as_completed) (through
/// [`as_task`](Self::as_task)). Done callbacks run through the loop's ready
/// queue in registration order, never inline, and receive the promise.
///
/// Cheap to clone; all clones are the same future.
///
/// ```
/// use std::time::Duration;
/// use gencoro::runtime::{self, Builder, Clock, Promise};
///
/// let v = Builder::new().clock(Clock::virtual_time()).run(|| {
///     let promise: Promise<u32> = Promise::new()?;
///     let setter = promise.clone();
///     runtime::call_later(Duration::from_secs(1), move || {
///         setter.set_result(42).unwrap();
///     })?;
///     promise.wait() // suspends this task until it is set
/// });
/// assert_eq!(v.unwrap(), 42);
/// ```
pub struct Promise<T> {
    task: Task<T>,
}

impl<T> Clone for Promise<T> {
    fn clone(&self) -> Self {
        Promise { task: self.task.clone() }
    }
}

/// Why a [`Promise`] was not set: it is done already (Python:
/// `InvalidStateError`), or its loop is gone. The value comes back inside.
pub struct AlreadyDone<T>(pub T);

impl<T> fmt::Debug for AlreadyDone<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AlreadyDone(..)")
    }
}

impl<T> fmt::Display for AlreadyDone<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid state: the future is done already, or its loop is gone")
    }
}

impl<T> std::error::Error for AlreadyDone<T> {}

/// Identifies a done callback, to remove it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallbackId(u64);

impl<T: 'static> Promise<T> {
    /// A pending promise on the running loop. Python:
    /// `loop.create_future()`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NoRunningLoop`] outside a running loop.
    pub fn new() -> Result<Promise<T>, Error> {
        let core = current_core()?;
        Ok(Promise { task: Task { cell: TaskCell::new_future(&core) } })
    }

    /// Completes it with `value`. Python: `fut.set_result(value)`.
    ///
    /// # Errors
    ///
    /// [`AlreadyDone`] with the value if it is done (Python:
    /// `InvalidStateError`) or its loop is gone.
    pub fn set_result(&self, value: T) -> Result<(), AlreadyDone<T>> {
        self.task.cell.settle(Ok(value)).map_err(|back| match back {
            Ok(v) => AlreadyDone(v),
            Err(_) => unreachable!("a value was given"),
        })
    }

    /// Completes it with a failure. Python: `fut.set_exception(error)`.
    ///
    /// # Errors
    ///
    /// As [`set_result`](Self::set_result), with the error handed back.
    pub fn set_exception(&self, error: Error) -> Result<(), AlreadyDone<Error>> {
        self.task.cell.settle(Err(error)).map_err(|back| match back {
            Err(e) => AlreadyDone(e),
            Ok(_) => unreachable!("an error was given"),
        })
    }

    /// Cancels it: it ends cancelled at once, and its callbacks (a waiting
    /// task's wake-up among them) are queued. False if it was done.
    /// Python: `fut.cancel()`.
    pub fn cancel(&self) -> bool {
        self.cancel_inner(None)
    }

    /// [`cancel`](Self::cancel) with a message. Python: `fut.cancel(msg)`.
    pub fn cancel_with(&self, message: &str) -> bool {
        self.cancel_inner(Some(message))
    }

    fn cancel_inner(&self, msg: Option<&str>) -> bool {
        let cell = unsize_record!(self.task.cell.clone() => dyn TaskObj);
        match self.task.cell.header().core_alive() {
            Some(core) => cell.cancel_future(&core, msg),
            None => false,
        }
    }

    /// Waits until it is done and returns its value (moved out), or its
    /// failure or cancellation. Python: `await fut`.
    ///
    /// # Cancellation
    ///
    /// Cancelling the waiting task cancels the promise too, as for a task
    /// (B5.7); the wait returns the cancellation.
    ///
    /// # Errors
    ///
    /// Its failure, a cancellation, or [`ErrorKind::NoRunningLoop`] outside
    /// a task while it is pending.
    pub fn wait(&self) -> Result<T, Error> {
        self.task.join()
    }

    /// Whether it is done. Python: `fut.done()`.
    pub fn is_done(&self) -> bool {
        self.task.is_done()
    }

    /// Whether it was cancelled. Python: `fut.cancelled()`.
    pub fn is_cancelled(&self) -> bool {
        self.task.is_cancelled()
    }

    /// Its value, moved out, without waiting. Python: `fut.result()`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidState`] while pending or once the value was
    /// taken; its failure; its cancellation.
    pub fn result(&self) -> Result<T, Error> {
        self.task.result()
    }

    /// [`result`](Self::result) for values that can be cloned: the value
    /// stays, to be read again.
    ///
    /// # Errors
    ///
    /// As [`result`](Self::result).
    pub fn result_cloned(&self) -> Result<T, Error>
    where
        T: Clone,
    {
        self.task.result_cloned()
    }

    /// Python: `fut.exception()`; see [`Task::exception`].
    ///
    /// # Errors
    ///
    /// As [`Task::exception`].
    pub fn exception(&self) -> Result<Option<Error>, Error> {
        self.task.exception()
    }

    /// Schedules `callback` to run through the loop once it is done, after
    /// those added before; if it is done, at once (never inline). The
    /// callback receives the promise. Python: `fut.add_done_callback(cb)`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NoRunningLoop`] if its loop is gone, or
    /// [`ErrorKind::Misuse`] if the loop is closed.
    pub fn add_done_callback(
        &self,
        callback: impl FnOnce(&Promise<T>) + 'static,
    ) -> Result<CallbackId, Error> {
        let core = self.task.cell.header().core_alive().ok_or_else(|| {
            Error::kind_msg(ErrorKind::NoRunningLoop, "the future's event loop is gone")
        })?;
        if core.is_closed() {
            return Err(Error::kind_msg(ErrorKind::Misuse, "Event loop is closed"));
        }
        let me = self.clone();
        let call: Box<dyn FnOnce()> = Box::new(move || callback(&me));
        let erased = unsize_record!(self.task.cell.clone() => dyn TaskObj);
        Ok(CallbackId(add_task_callback(&erased, &core, CallbackKind::Call(call))))
    }

    /// Removes a callback that has not been scheduled yet; returns how many
    /// were removed (0 or 1). Python: `fut.remove_done_callback(cb)`.
    pub fn remove_done_callback(&self, id: CallbackId) -> usize {
        usize::from(self.task.cell.header().remove_callback_counted(id.0))
    }

    /// The promise as a task handle, for the combinators and for APIs that
    /// take a [`Task`] (`wait_for`, `shield`, `as_completed`). It is not
    /// a task: it has no body, and `cancelling()` stays 0.
    pub fn as_task(&self) -> &Task<T> {
        &self.task
    }
}

impl<T> fmt::Debug for Promise<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Promise").field("task", &self.task).finish()
    }
}
