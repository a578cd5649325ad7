//! One error type per generator operation. Each hands back the value it was
//! given, so a rejected `send` or `throw` loses nothing.

use std::fmt;

use crate::stack::StackError;

/// The message CPython gives for re-entering a running generator.
const ALREADY_EXECUTING: &str = "generator already executing";

/// Why [`Generator::start`](super::Generator::start) or
/// [`Generator::resume`](super::Generator::resume) did not run the generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResumeError {
    /// The generator is running: it was resumed from inside itself, or from
    /// a generator it is delegating to. Python: `ValueError('generator
    /// already executing')`.
    Running,
    /// The generator already finished; its return value was delivered by the
    /// resume that finished it. Python: a bare `StopIteration`.
    Closed,
    /// [`start`](super::Generator::start) was called on a generator that has
    /// already started. Use [`send`](super::Generator::send) to continue it.
    Started,
    /// A created generator could not get a stack to start on. It is left
    /// unchanged, body and all, so starting it can be tried again. Python:
    /// `MemoryError`.
    NoStack(StackError),
}

impl fmt::Display for ResumeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResumeError::Running => f.write_str(ALREADY_EXECUTING),
            ResumeError::Closed => f.write_str("generator is closed"),
            ResumeError::Started => f.write_str("generator has already started"),
            ResumeError::NoStack(e) => write!(f, "cannot start the generator: {e}"),
        }
    }
}

impl std::error::Error for ResumeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ResumeError::NoStack(e) => Some(e),
            _ => None,
        }
    }
}

/// Why [`Generator::send`](super::Generator::send) did not deliver its value.
/// The value comes back inside the error.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum SendError<S> {
    /// The generator has not started, so no `yield` is waiting for a value.
    /// The generator is unchanged. Python: `TypeError("can't send non-None
    /// value to a just-started generator")`.
    NotStarted(S),
    /// The generator is running. Python: `ValueError('generator already
    /// executing')`.
    Running(S),
    /// The generator already finished. Python: a bare `StopIteration`.
    Closed(S),
}

impl<S> SendError<S> {
    /// The value that was not delivered.
    pub fn into_inner(self) -> S {
        match self {
            SendError::NotStarted(s) | SendError::Running(s) | SendError::Closed(s) => s,
        }
    }
}

impl<S> fmt::Debug for SendError<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::NotStarted(_) => "NotStarted(..)",
            SendError::Running(_) => "Running(..)",
            SendError::Closed(_) => "Closed(..)",
        })
    }
}

impl<S> fmt::Display for SendError<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::NotStarted(_) => "can't send non-None value to a just-started generator",
            SendError::Running(_) => ALREADY_EXECUTING,
            SendError::Closed(_) => "generator is closed",
        })
    }
}

impl<S> std::error::Error for SendError<S> {}

/// Why [`Generator::throw`](super::Generator::throw) did not deliver its
/// error. The error comes back inside.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum ThrowError<E> {
    /// The generator is running. Python: `ValueError('generator already
    /// executing')`.
    Running(E),
    /// The generator already finished, so the error is handed straight back
    /// and no code runs (PEP 342).
    Closed(E),
}

impl<E> ThrowError<E> {
    /// The error that was not thrown.
    pub fn into_inner(self) -> E {
        match self {
            ThrowError::Running(e) | ThrowError::Closed(e) => e,
        }
    }
}

impl<E> fmt::Debug for ThrowError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ThrowError::Running(_) => "Running(..)",
            ThrowError::Closed(_) => "Closed(..)",
        })
    }
}

impl<E> fmt::Display for ThrowError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ThrowError::Running(_) => ALREADY_EXECUTING,
            ThrowError::Closed(_) => "generator is closed",
        })
    }
}

impl<E> std::error::Error for ThrowError<E> {}

/// Why [`Generator::close`](super::Generator::close) did not finish cleanly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseError {
    /// The generator is running. Python: `ValueError('generator already
    /// executing')`.
    Running,
    /// The body caught [`GeneratorExit`](super::GeneratorExit) and yielded
    /// again instead of finishing: the generator stays suspended at that new
    /// yield, and a second `close` finishes it. Or a generator it was
    /// delegating to did so: the error was raised in this body at the
    /// `yield_from`, and escaping it closed this generator. Python:
    /// `RuntimeError('generator ignored GeneratorExit')`.
    IgnoredExit,
}

impl fmt::Display for CloseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CloseError::Running => ALREADY_EXECUTING,
            CloseError::IgnoredExit => "generator ignored GeneratorExit",
        })
    }
}

impl std::error::Error for CloseError {}

/// Why [`Yielder::yield_from`](super::Yielder::yield_from) stopped
/// delegating without a return value. A value sent (or an error thrown) that
/// could not be delivered comes back inside.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum YieldFromError<S> {
    /// The sub-generator is running: delegating to it would form a cycle.
    /// Python: `ValueError('generator already executing')`.
    Running(Option<S>),
    /// The sub-generator had finished, so nothing more was yielded and its
    /// return value is not delivered again. Python: `yield from` evaluates
    /// to `None`; a value thrown in is raised at the `yield from`. Holds the
    /// value that was sent or thrown, if it finished (closed by someone
    /// else) while this generator was delegating to it.
    Finished(Option<S>),
    /// The sub-generator had already started. Python would resume it with
    /// `None`; gencoro has no `None` for an arbitrary send type, so it
    /// delegates only to generators that have not started.
    Started,
    /// The sub-generator had not started and could not get a stack.
    NoStack(StackError),
    /// A value other than Python's `None` was sent while delegating to a
    /// plain iterator, which cannot take one (Python: `AttributeError:
    /// ... object has no attribute 'send'`). The value comes back here.
    CannotSend(S),
}

impl<S> YieldFromError<S> {
    /// The value that was sent or thrown but not delivered, if any.
    pub fn into_inner(self) -> Option<S> {
        match self {
            YieldFromError::Running(s) | YieldFromError::Finished(s) => s,
            YieldFromError::Started | YieldFromError::NoStack(_) => None,
            YieldFromError::CannotSend(s) => Some(s),
        }
    }
}

impl<S> fmt::Debug for YieldFromError<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let held = |s: &Option<S>| if s.is_some() { "(Some(..))" } else { "(None)" };
        match self {
            YieldFromError::Running(s) => write!(f, "Running{}", held(s)),
            YieldFromError::Finished(s) => write!(f, "Finished{}", held(s)),
            YieldFromError::Started => f.write_str("Started"),
            YieldFromError::NoStack(e) => write!(f, "NoStack({e:?})"),
            YieldFromError::CannotSend(_) => f.write_str("CannotSend(..)"),
        }
    }
}

impl<S> fmt::Display for YieldFromError<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            YieldFromError::Running(_) => f.write_str(ALREADY_EXECUTING),
            YieldFromError::Finished(_) => f.write_str("the generator delegated to has finished"),
            YieldFromError::Started => {
                f.write_str("cannot delegate to a generator that has already started")
            }
            YieldFromError::NoStack(e) => write!(f, "cannot start the generator delegated to: {e}"),
            YieldFromError::CannotSend(_) => {
                f.write_str("the iterator delegated to has no attribute 'send'")
            }
        }
    }
}

impl<S> std::error::Error for YieldFromError<S> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            YieldFromError::NoStack(e) => Some(e),
            _ => None,
        }
    }
}
