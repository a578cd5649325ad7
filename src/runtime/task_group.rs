//! Structured concurrency. Python 3.11: `asyncio.TaskGroup`.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;

use super::core::Core;
use super::error::{Error, ErrorKind};
use super::future::FutureCell;
use super::record::{Record, unsize_record};
use super::task::{
    CallbackKind, FutState, Task, TaskCell, TaskContext, TaskObj, add_task_callback, cancel_task,
};

struct Inner {
    core: Rc<Core>,
    parent: Record<dyn TaskObj>,
    tasks: RefCell<Vec<Record<dyn TaskObj>>>,
    errors: RefCell<Vec<Error>>,
    aborting: Cell<bool>,
    parent_cancel_requested: Cell<bool>,
    on_completed: RefCell<Option<Record<FutureCell>>>,
    /// Set once `task_group` has returned: no task can join it any more.
    finished: Cell<bool>,
}

/// A scope whose tasks all finish before it ends; see [`task_group`].
///
/// Cheap to clone: every clone is the same group, so a task of the group
/// can hold one and spawn more tasks into it (the group then waits for
/// those too). Spawning after the group has finished is an error.
#[derive(Clone)]
pub struct TaskGroup {
    inner: Rc<Inner>,
}

impl TaskGroup {
    /// Starts a task in the group. Python: `tg.create_task(coro)`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Misuse`] while the group is shutting down after a
    /// failure (Python: `TaskGroup ... is shutting down`), once it has
    /// finished (`TaskGroup ... is finished`), or if its loop is closed.
    pub fn spawn<T, F>(&self, body: F) -> Result<Task<T>, Error>
    where
        T: 'static,
        F: FnOnce() -> Result<T, Error> + 'static,
    {
        self.spawn_inner(None, body)
    }

    /// [`spawn`](Self::spawn) with a task name.
    ///
    /// # Errors
    ///
    /// As [`spawn`](Self::spawn).
    pub fn spawn_named<T, F>(&self, name: impl Into<String>, body: F) -> Result<Task<T>, Error>
    where
        T: 'static,
        F: FnOnce() -> Result<T, Error> + 'static,
    {
        self.spawn_inner(Some(name.into()), body)
    }

    fn spawn_inner<T, F>(&self, name: Option<String>, body: F) -> Result<Task<T>, Error>
    where
        T: 'static,
        F: FnOnce() -> Result<T, Error> + 'static,
    {
        let inner = &self.inner;
        if inner.finished.get() {
            return Err(Error::kind_msg(ErrorKind::Misuse, "TaskGroup is finished"));
        }
        if inner.aborting.get() {
            return Err(Error::kind_msg(ErrorKind::Misuse, "TaskGroup is shutting down"));
        }
        if inner.core.is_closed() {
            return Err(Error::kind_msg(ErrorKind::Misuse, "Event loop is closed"));
        }
        let cell = TaskCell::spawn(&inner.core, name, body)?;
        let erased = unsize_record!(cell.clone() => dyn TaskObj);
        let weak = Rc::downgrade(inner);
        let task = erased.clone();
        add_task_callback(
            &erased,
            &inner.core,
            CallbackKind::Call(Box::new(move || {
                if let Some(inner) = weak.upgrade() {
                    inner.on_task_done(&task);
                }
            })),
        );
        inner.tasks.borrow_mut().push(erased);
        Ok(Task { cell })
    }
}

impl Inner {
    fn abort(&self) {
        self.aborting.set(true);
        let tasks = self.tasks.borrow().clone();
        for t in &tasks {
            if !t.header().is_done() {
                cancel_task(t, &self.core, None);
            }
        }
    }

    /// Python: `TaskGroup._on_task_done`.
    fn on_task_done(&self, task: &Record<dyn TaskObj>) {
        let removed = {
            let mut tasks = self.tasks.borrow_mut();
            tasks.iter().position(|t| Record::ptr_eq(t, task)).map(|i| tasks.remove(i))
        };
        drop(removed);
        if self.tasks.borrow().is_empty() {
            let fut = self.on_completed.borrow().clone();
            if let Some(fut) = fut {
                fut.set_done();
            }
        }
        if task.header().state() == FutState::Cancelled {
            return;
        }
        // Python: `task.exception()`.
        task.header().mark_retrieved();
        let Some(error) = task.failure() else { return };
        self.errors.borrow_mut().push(error);
        if self.parent.header().is_done() {
            eprintln!(
                "gencoro: {} has errored out but its parent {} is already completed",
                task.describe(),
                self.parent.describe()
            );
            return;
        }
        if !self.aborting.get() && !self.parent_cancel_requested.get() {
            self.abort();
            self.parent_cancel_requested.set(true);
            cancel_task(&self.parent, &self.core, None);
        }
    }
}

impl fmt::Debug for TaskGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskGroup")
            .field("tasks", &self.inner.tasks.borrow().len())
            .field("errors", &self.inner.errors.borrow().len())
            .field("aborting", &self.inner.aborting.get())
            .field("finished", &self.inner.finished.get())
            .finish()
    }
}

/// Runs `body` with a [`TaskGroup`] and waits for every task spawned in it.
/// Python: `async with asyncio.TaskGroup() as tg: ...`.
///
/// The first task that fails (a cancellation does not count) cancels the
/// other tasks and the body's current wait; every failure is then reported
/// together in one [`ErrorKind::Group`] error (Python: `ExceptionGroup`).
/// Cancelling a task of the group yourself is not a failure.
///
/// ```
/// use std::time::Duration;
/// use gencoro::runtime::{self, Builder, Clock, Error};
///
/// let r: Result<(), Error> = Builder::new().clock(Clock::virtual_time()).run(|| {
///     runtime::task_group(|tg| {
///         tg.spawn(|| { runtime::sleep(Duration::from_secs(10))?; Ok(()) })?;
///         tg.spawn(|| -> Result<(), Error> { Err(Error::new("boom")) })?;
///         Ok(())
///     })
/// });
/// let e = r.unwrap_err();
/// assert_eq!(e.errors().len(), 1);
/// assert_eq!(e.errors()[0].message(), "boom");
/// ```
///
/// # Cancellation
///
/// Cancelling the task running the group cancels every task in it; the
/// group still waits for them all, then returns the cancellation (or the
/// failures, which take priority).
///
/// # Errors
///
/// A [`ErrorKind::Group`] error with every failure, a cancellation, or
/// [`ErrorKind::NoRunningLoop`] outside a task.
pub fn task_group<R>(body: impl FnOnce(&TaskGroup) -> Result<R, Error>) -> Result<R, Error> {
    let cx = TaskContext::current("task_group")?;
    let group = TaskGroup {
        inner: Rc::new(Inner {
            core: cx.core.clone(),
            parent: cx.task.clone(),
            tasks: RefCell::new(Vec::new()),
            errors: RefCell::new(Vec::new()),
            aborting: Cell::new(false),
            parent_cancel_requested: Cell::new(false),
            on_completed: RefCell::new(None),
            finished: Cell::new(false),
        }),
    };
    // However the group ends, later spawns into it are refused.
    struct Finish<'a>(&'a Inner);
    impl Drop for Finish<'_> {
        fn drop(&mut self) {
            self.0.finished.set(true);
        }
    }
    let _finish = Finish(&group.inner);
    let result = body(&group);
    let inner = &group.inner;
    // Python: TaskGroup.__aexit__.
    let mut propagate_cancellation = match &result {
        Err(e) if e.is_cancelled() => Some(e.clone()),
        _ => None,
    };
    if inner.parent_cancel_requested.get() && inner.parent.header().uncancel() == 0 {
        propagate_cancellation = None;
    }
    if result.is_err() && !inner.aborting.get() {
        inner.abort();
    }
    while !inner.tasks.borrow().is_empty() {
        let fut = FutureCell::new("task group", &cx.core);
        inner.on_completed.replace(Some(fut.clone()));
        if let Err(e) = fut.wait(&cx) {
            if !inner.aborting.get() {
                propagate_cancellation = Some(e);
                inner.abort();
            }
        }
        inner.on_completed.take();
    }
    if let Some(e) = propagate_cancellation.filter(|_| inner.errors.borrow().is_empty()) {
        return Err(e);
    }
    if let Err(e) = &result {
        if !e.is_cancelled() {
            inner.errors.borrow_mut().push(e.clone());
        }
    }
    let errors = std::mem::take(&mut *inner.errors.borrow_mut());
    if !errors.is_empty() {
        return Err(Error::group("unhandled errors in a TaskGroup", errors));
    }
    result
}
