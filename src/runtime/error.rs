//! The one error type of the event loop: Python's exceptions, as far as the
//! loop is concerned.

use std::any::Any;
use std::fmt;
use std::sync::{Arc, Mutex};

/// What kind of failure an [`Error`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The task or the wait was cancelled. Python: `CancelledError`.
    Cancelled,
    /// A deadline passed. Python: `TimeoutError`.
    Timeout,
    /// The task's body panicked; the payload is kept.
    Panicked,
    /// An error raised by user code, wrapped with [`Error::new`].
    Failed,
    /// Several failures reported together, by a
    /// [`TaskGroup`](super::TaskGroup). Python: `ExceptionGroup`.
    Group,
    /// A result was asked for before it existed, or after it was taken.
    /// Python: `InvalidStateError`.
    InvalidState,
    /// `run` was called while a loop is running on this thread. Python:
    /// `RuntimeError('asyncio.run() cannot be called from a running event
    /// loop')`.
    NestedRun,
    /// A loop-only operation was called with no loop running, or a wait
    /// outside a task. Python: `RuntimeError('no running event loop')`.
    NoRunningLoop,
    /// The main task waits on something that can never happen.
    Deadlock,
    /// A task could not get a stack to start on (see
    /// [`StackError`](crate::stack::StackError)); its body never ran.
    /// Python: `MemoryError`.
    NoStack,
    /// The API was used in a way Python reports with `RuntimeError` or
    /// `ValueError`, such as a task awaiting itself.
    Misuse,
    /// A schedule-driven run ([`gencoro::testing`](crate::testing)) took
    /// more steps than its limit: the scenario does not end.
    StepLimit,
    /// An I/O operation failed ([`gencoro::net`](crate::net)): the
    /// [`std::io::Error`] is the [`source`](std::error::Error::source),
    /// and [`Error::io_kind`] gives its kind (connection refused, reset,
    /// ...). Python: `OSError` and its subclasses.
    Io,
}

struct Inner {
    kind: ErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    group: Vec<Error>,
}

/// A failure seen by the event loop: a cancellation, a timeout, a panic, a
/// user error, or a misuse of the loop.
///
/// Cheap to clone (one reference count), so a task's failure can be
/// retrieved any number of times, as in Python.
///
/// ```
/// use gencoro::runtime::{Error, ErrorKind};
///
/// #[derive(Debug)]
/// struct ZeroDivision;
/// impl std::fmt::Display for ZeroDivision {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         f.write_str("division by zero")
///     }
/// }
/// impl std::error::Error for ZeroDivision {}
///
/// let e = Error::new(ZeroDivision);
/// assert_eq!(e.kind(), ErrorKind::Failed);
/// assert!(e.downcast_ref::<ZeroDivision>().is_some());
/// assert_eq!(e.to_string(), "division by zero");
/// ```
#[derive(Clone)]
pub struct Error {
    inner: Arc<Inner>,
}

impl Error {
    fn build(kind: ErrorKind, message: String) -> Error {
        Error {
            inner: Arc::new(Inner {
                kind,
                message,
                source: None,
                panic: Mutex::new(None),
                group: Vec::new(),
            }),
        }
    }

    /// Wraps a user error. Python: raising an exception.
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
        let source = error.into();
        Error {
            inner: Arc::new(Inner {
                kind: ErrorKind::Failed,
                message: source.to_string(),
                source: Some(source),
                panic: Mutex::new(None),
                group: Vec::new(),
            }),
        }
    }

    /// A cancellation, with an optional message. Python:
    /// `CancelledError(msg)`.
    pub fn cancelled(message: Option<&str>) -> Error {
        Error::build(ErrorKind::Cancelled, message.unwrap_or_default().to_owned())
    }

    /// A timeout. Python: `TimeoutError()`.
    pub fn timeout() -> Error {
        Error::build(ErrorKind::Timeout, String::new())
    }

    /// A timeout caused by `cause`, the cancellation that interrupted the
    /// wait; [`source`](std::error::Error::source) returns it. Python:
    /// `raise TimeoutError() from exc`, as `wait_for` and `timeout` do.
    pub(crate) fn timeout_from(cause: Error) -> Error {
        Error {
            inner: Arc::new(Inner {
                kind: ErrorKind::Timeout,
                message: String::new(),
                source: Some(Box::new(cause)),
                panic: Mutex::new(None),
                group: Vec::new(),
            }),
        }
    }

    pub(crate) fn kind_msg(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error::build(kind, message.into())
    }

    pub(crate) fn panicked(payload: Box<dyn Any + Send>) -> Error {
        let message = crate::generator::panic_message(&*payload).to_owned();
        let e = Error::build(ErrorKind::Panicked, message);
        *e.inner.panic.lock().unwrap_or_else(|p| p.into_inner()) = Some(payload);
        e
    }

    pub(crate) fn group(message: &str, errors: Vec<Error>) -> Error {
        Error {
            inner: Arc::new(Inner {
                kind: ErrorKind::Group,
                message: message.to_owned(),
                source: None,
                panic: Mutex::new(None),
                group: errors,
            }),
        }
    }

    /// The kind of the [`std::io::Error`] an [`ErrorKind::Io`] error
    /// wraps; `None` for other errors.
    ///
    /// ```
    /// use gencoro::runtime::{Error, ErrorKind};
    ///
    /// let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
    /// let e = Error::from(refused);
    /// assert_eq!(e.kind(), ErrorKind::Io);
    /// assert_eq!(e.io_kind(), Some(std::io::ErrorKind::ConnectionRefused));
    /// assert!(e.downcast_ref::<std::io::Error>().is_some());
    /// ```
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        if self.inner.kind != ErrorKind::Io {
            return None;
        }
        self.downcast_ref::<std::io::Error>().map(std::io::Error::kind)
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// Whether this is a cancellation (Python: `CancelledError`).
    pub fn is_cancelled(&self) -> bool {
        self.inner.kind == ErrorKind::Cancelled
    }

    /// Whether this is a timeout (Python: `TimeoutError`).
    pub fn is_timeout(&self) -> bool {
        self.inner.kind == ErrorKind::Timeout
    }

    /// Whether a task panicked.
    pub fn is_panic(&self) -> bool {
        self.inner.kind == ErrorKind::Panicked
    }

    /// The message: a cancellation's message (empty if none), a panic's
    /// message, a user error's `Display`, or the loop's own explanation.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// The wrapped user error, if it is an `E`.
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.inner.source.as_ref()?.downcast_ref::<E>()
    }

    /// The failures a [`TaskGroup`](super::TaskGroup) reports together.
    pub fn errors(&self) -> &[Error] {
        &self.inner.group
    }

    /// Takes the payload of a panic, to re-raise it with
    /// [`std::panic::resume_unwind`]. `None` if this is not a panic or the
    /// payload was taken already.
    pub fn take_panic(&self) -> Option<Box<dyn Any + Send>> {
        self.inner.panic.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind).field("message", &self.inner.message);
        if !self.inner.group.is_empty() {
            d.field("errors", &self.inner.group);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = &self.inner.message;
        match self.inner.kind {
            ErrorKind::Cancelled if message.is_empty() => f.write_str("cancelled"),
            ErrorKind::Cancelled => write!(f, "cancelled: {message}"),
            ErrorKind::Timeout if message.is_empty() => f.write_str("timed out"),
            ErrorKind::Panicked => write!(f, "task panicked: {message}"),
            ErrorKind::Group => {
                write!(f, "{message} ({} sub-exception", self.inner.group.len())?;
                if self.inner.group.len() != 1 {
                    f.write_str("s")?;
                }
                f.write_str(")")
            }
            _ => f.write_str(message),
        }
    }
}

/// An I/O failure becomes an [`ErrorKind::Io`] error holding it, so `?`
/// works on `std::io` results inside a task. An `io::Error` that only
/// carries an `Error` (as the `std::io::Read`/`Write` implementations of
/// [`gencoro::net`](crate::net) make, say for a cancellation) gives that
/// `Error` back: the round trip keeps cancellations cancellations.
impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        if let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<Error>()) {
            return inner.clone();
        }
        Error {
            inner: Arc::new(Inner {
                kind: ErrorKind::Io,
                message: e.to_string(),
                source: Some(Box::new(e)),
                panic: Mutex::new(None),
                group: Vec::new(),
            }),
        }
    }
}

/// For `std::io` callers (the `Read`/`Write` implementations of
/// [`gencoro::net`](crate::net)): an [`ErrorKind::Io`] error keeps its
/// I/O kind, a timeout is [`TimedOut`](std::io::ErrorKind::TimedOut), and
/// anything else (a cancellation) is [`Other`](std::io::ErrorKind::Other),
/// never `Interrupted`, which `read_exact` and friends would retry. The
/// `Error` rides inside, and [`From<std::io::Error>`] takes it back out.
impl From<Error> for std::io::Error {
    fn from(e: Error) -> std::io::Error {
        let kind = match e.kind() {
            ErrorKind::Io => e.io_kind().unwrap_or(std::io::ErrorKind::Other),
            ErrorKind::Timeout => std::io::ErrorKind::TimedOut,
            _ => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, e)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.inner.source {
            Some(e) => Some(&**e),
            None => None,
        }
    }
}
