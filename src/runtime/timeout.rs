//! Deadlines around a block of code. Python 3.11: `asyncio.timeout`.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use super::core::{Core, Handle, TimerAction, TimerCall};
use super::error::{Error, ErrorKind};
use super::record::Record;
use super::task::{TaskContext, TaskObj, cancel_task};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeoutState {
    Entered,
    Expiring,
    Expired,
    Exited,
}

struct Inner {
    state: Cell<TimeoutState>,
    when: Cell<Option<Duration>>,
    handle: RefCell<Option<Rc<TimerCall>>>,
    task: Record<dyn TaskObj>,
    core: Rc<Core>,
}

/// The deadline of a running [`timeout`] block. Python: `asyncio.Timeout`.
#[derive(Clone)]
pub struct Timeout {
    inner: Rc<Inner>,
}

impl Timeout {
    /// The deadline in loop time ([`time`](super::time)), or `None` if it
    /// never fires.
    pub fn when(&self) -> Option<Duration> {
        self.inner.when.get()
    }

    /// Whether the deadline has passed and cancelled the block.
    pub fn expired(&self) -> bool {
        matches!(self.inner.state.get(), TimeoutState::Expiring | TimeoutState::Expired)
    }

    /// Moves the deadline; `None` disables it. A deadline not in the future
    /// fires in the next loop iteration.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Misuse`] once the deadline has fired or the block has
    /// ended (Python: `Cannot change state of expiring Timeout`).
    pub fn reschedule(&self, when: Option<Duration>) -> Result<(), Error> {
        let inner = &self.inner;
        if inner.state.get() != TimeoutState::Entered {
            return Err(Error::kind_msg(
                ErrorKind::Misuse,
                format!("Cannot change state of {} Timeout", inner.state_name()),
            ));
        }
        inner.when.set(when);
        let previous = inner.handle.take();
        if let Some(h) = previous {
            h.cancel();
        }
        if let Some(when) = when {
            let weak = Rc::downgrade(&self.inner);
            let on_timeout: Box<dyn FnOnce()> = Box::new(move || {
                if let Some(inner) = weak.upgrade() {
                    inner.on_timeout();
                }
            });
            let call = if when <= inner.core.now() {
                let call = TimerCall::new(on_timeout);
                inner.core.push(Handle::Timer(TimerAction::Call(call.clone())));
                call
            } else {
                inner.core.call_at(when, on_timeout)
            };
            inner.handle.replace(Some(call));
        }
        Ok(())
    }
}

impl Inner {
    fn on_timeout(&self) {
        cancel_task(&self.task, &self.core, None);
        self.state.set(TimeoutState::Expiring);
        let handle = self.handle.take();
        drop(handle);
    }

    fn state_name(&self) -> &'static str {
        match self.state.get() {
            TimeoutState::Entered => "active",
            TimeoutState::Expiring => "expiring",
            TimeoutState::Expired => "expired",
            TimeoutState::Exited => "finished",
        }
    }
}

impl fmt::Debug for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("state", &self.inner.state_name())
            .field("when", &self.inner.when.get())
            .finish()
    }
}

/// Runs `body` in the current task; if `delay` passes first, the wait it is
/// in returns a cancellation, and once `body` returns that cancellation,
/// `timeout` turns it into [`ErrorKind::Timeout`], with that cancellation
/// as its [`source`](std::error::Error::source) (Python: `raise
/// TimeoutError from exc_val`). `None` never fires.
/// Python: `async with asyncio.timeout(delay): ...`.
///
/// Only the cancellation this deadline caused becomes a timeout: one that
/// came from outside (the task's cancel count stays above its value on
/// entry) passes through, and with nested timeouts only the one that fired
/// converts.
///
/// ```
/// use std::time::Duration;
/// use gencoro::runtime::{self, Builder, Clock};
///
/// let r = Builder::new().clock(Clock::virtual_time()).run(|| {
///     runtime::timeout(Some(Duration::from_secs(1)), |_| runtime::sleep(Duration::from_secs(5)))
/// });
/// assert!(r.unwrap_err().is_timeout());
/// ```
///
/// # Errors
///
/// `body`'s failure, [`ErrorKind::Timeout`], or [`ErrorKind::NoRunningLoop`]
/// outside a task (Python: `Timeout should be used inside a task`).
pub fn timeout<T>(
    delay: Option<Duration>,
    body: impl FnOnce(&Timeout) -> Result<T, Error>,
) -> Result<T, Error> {
    let cx = TaskContext::current("timeout")?;
    let when = delay.map(|d| cx.core.now().saturating_add(d));
    timeout_in(cx, when, body)
}

/// [`timeout`] with an absolute deadline in loop time. Python:
/// `asyncio.timeout_at(when)`.
///
/// # Errors
///
/// As [`timeout`].
pub fn timeout_at<T>(
    when: Option<Duration>,
    body: impl FnOnce(&Timeout) -> Result<T, Error>,
) -> Result<T, Error> {
    let cx = TaskContext::current("timeout_at")?;
    timeout_in(cx, when, body)
}

fn timeout_in<T>(
    cx: TaskContext,
    when: Option<Duration>,
    body: impl FnOnce(&Timeout) -> Result<T, Error>,
) -> Result<T, Error> {
    let cancelling = cx.task.header().cancelling();
    let scope = Timeout {
        inner: Rc::new(Inner {
            state: Cell::new(TimeoutState::Entered),
            when: Cell::new(None),
            handle: RefCell::new(None),
            task: cx.task.clone(),
            core: cx.core.clone(),
        }),
    };
    scope.reschedule(when)?;
    let result = body(&scope);
    let inner = &scope.inner;
    let handle = inner.handle.take();
    if let Some(h) = handle {
        h.cancel();
    }
    match inner.state.get() {
        TimeoutState::Expiring => {
            inner.state.set(TimeoutState::Expired);
            let remaining = inner.task.header().uncancel();
            match result {
                Err(e) if e.is_cancelled() && remaining <= cancelling => {
                    Err(Error::timeout_from(e))
                }
                other => other,
            }
        }
        _ => {
            inner.state.set(TimeoutState::Exited);
            result
        }
    }
}
