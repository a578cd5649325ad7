//! What the loop reports instead of raising: a failure nobody retrieved, a
//! task destroyed while pending, a panicking callback. Python: the loop's
//! exception handler (`loop.set_exception_handler`) and its `context` dict.

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

use super::error::Error;

/// A report to the loop's exception handler. Python: the `context` dict
/// passed to `loop.call_exception_handler`.
///
/// Set a handler with [`Builder::exception_handler`](super::Builder::exception_handler);
/// the default one prints the report's [`Display`](fmt::Display) form on
/// stderr, as one line.
#[derive(Debug, Clone)]
pub struct ExceptionContext {
    message: String,
    error: Option<Error>,
    task: Option<String>,
}

impl ExceptionContext {
    pub(crate) fn new(message: &str, error: Option<Error>, task: Option<String>) -> Self {
        ExceptionContext { message: message.to_owned(), error, task }
    }

    /// What happened, in CPython's words: `Task exception was never
    /// retrieved`, `Task was destroyed but it is pending!`, `Exception in
    /// callback`, `unhandled exception during run() shutdown`.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The failure, if the report is about one.
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// The name of the task concerned, if any.
    pub fn task_name(&self) -> Option<&str> {
        self.task.as_deref()
    }
}

impl fmt::Display for ExceptionContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(task) = &self.task {
            write!(f, " (task '{task}')")?;
        }
        if let Some(e) = &self.error {
            write!(f, ": {e}")?;
        }
        Ok(())
    }
}

/// A loop's exception handler.
pub(crate) type Handler = Rc<dyn Fn(&ExceptionContext)>;

/// Python's `default_exception_handler`, in one line.
pub(crate) fn default_handler(context: &ExceptionContext) {
    eprintln!("gencoro: {context}");
}

/// Calls `handler` (or the default one) with `context`. A handler that
/// panics is reported by the default one and the loop goes on. Python:
/// `call_exception_handler`.
pub(crate) fn report(handler: Option<&Handler>, context: ExceptionContext) {
    match handler {
        Some(handler) => {
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| handler(&context))) {
                default_handler(&ExceptionContext::new(
                    "Unhandled error in exception handler",
                    Some(Error::panicked(payload)),
                    None,
                ));
                default_handler(&context);
            }
        }
        None => default_handler(&context),
    }
}
