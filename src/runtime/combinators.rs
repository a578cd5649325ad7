//! Waiting on several tasks: `gather`, `wait`, `as_completed`, and on one
//! with a twist: `shield`, `wait_for`. Each follows CPython 3.11's
//! `tasks.py` step for step, since the number of loop iterations a
//! combinator takes shows in traces.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use super::core::{Core, Notify, TimerCall, current_core};
use super::error::{Error, ErrorKind};
use super::future::FutureCell;
use super::promise::Promise;
use super::record::{Record, unsize_record};
use super::task::{
    CallbackKind, FutState, Task, TaskCell, TaskContext, TaskObj, add_task_callback, cancel_task,
    check_same_loop,
};

fn erased<T: 'static>(cell: &Record<TaskCell<T>>) -> Record<dyn TaskObj> {
    unsize_record!(cell.clone() => dyn TaskObj)
}

/// Distinct tasks, in first-seen order, all of this loop.
fn distinct<T: 'static>(
    core: &Rc<Core>,
    cells: &[Record<TaskCell<T>>],
) -> Result<Vec<Record<TaskCell<T>>>, Error> {
    // Each task is marked the first time it is seen, and every mark is
    // cleared before returning: no hashing, no allocation but the result.
    let mut out = Vec::with_capacity(cells.len());
    let mut checked = Ok(());
    for cell in cells {
        if cell.header().mark() {
            out.push(cell.clone());
            if checked.is_ok() {
                checked = check_same_loop(core, cell.header());
            }
        }
    }
    for cell in &out {
        cell.header().unmark();
    }
    checked.map(|()| out)
}

/// What the combinators take: a [`Task`] or a [`Promise`], owned or
/// borrowed, so a caller can keep its handles (`gather(&tasks)`) or give
/// them away (`gather(tasks)`). Sealed: implemented for those four only.
pub trait Waitable: sealed::Sealed {
    /// The task's value type.
    type Output: 'static;
    #[doc(hidden)]
    fn as_task(&self) -> &Task<Self::Output>;
}

mod sealed {
    pub trait Sealed {}
    impl<T> Sealed for super::Task<T> {}
    impl<T> Sealed for &super::Task<T> {}
    impl<T> Sealed for super::Promise<T> {}
    impl<T> Sealed for &super::Promise<T> {}
}

impl<T: 'static> Waitable for Promise<T> {
    type Output = T;
    fn as_task(&self) -> &Task<T> {
        Promise::as_task(self)
    }
}

impl<T: 'static> Waitable for &Promise<T> {
    type Output = T;
    fn as_task(&self) -> &Task<T> {
        Promise::as_task(self)
    }
}

impl<T: 'static> Waitable for Task<T> {
    type Output = T;
    fn as_task(&self) -> &Task<T> {
        self
    }
}

impl<T: 'static> Waitable for &Task<T> {
    type Output = T;
    fn as_task(&self) -> &Task<T> {
        self
    }
}

fn cells<W: Waitable>(tasks: impl IntoIterator<Item = W>) -> Vec<Record<TaskCell<W::Output>>> {
    tasks.into_iter().map(|t| t.as_task().cell.clone()).collect()
}

/// Waits for every task and returns their values in argument order.
/// Python: `await asyncio.gather(*tasks)`.
///
/// The values move out of the tasks, so passing the same task twice is
/// refused with [`ErrorKind::Misuse`]; [`gather_cloned`] clones them
/// instead, leaves them in the tasks, and repeats a task given twice, as
/// Python does.
///
/// ```
/// use gencoro::runtime::{self, Builder, Clock};
///
/// let v = Builder::new().clock(Clock::virtual_time()).run(|| {
///     let tasks: Vec<_> = (1..=3).map(|i| runtime::spawn(move || Ok(i * 10))).collect();
///     runtime::gather(&tasks) // borrowed: `tasks` stays usable
/// });
/// assert_eq!(v.unwrap(), [10, 20, 30]);
/// ```
///
/// The first failure is returned as soon as it happens; the other tasks are
/// **not** cancelled and keep running (B6.2). A task cancelled from outside
/// counts as a failure with a cancellation error.
///
/// # Cancellation
///
/// Cancelling the task waiting here cancels every task not yet done; the
/// wait then returns a cancellation once they have all finished (B6.5).
///
/// # Errors
///
/// The first failure, or a cancellation.
pub fn gather<W: Waitable>(tasks: impl IntoIterator<Item = W>) -> Result<Vec<W::Output>, Error> {
    let children = cells(tasks);
    gather_children(&children, false, false)?;
    children.iter().map(|c| c.take_result()).collect()
}

/// [`gather`] for values that can be cloned: each value is cloned out and
/// stays in its task, so it can be read again, and a task passed twice
/// gives its value at both places. Python: `await asyncio.gather(t, t)`.
///
/// ```
/// use gencoro::runtime::{self, Builder, Clock};
///
/// let v = Builder::new().clock(Clock::virtual_time()).run(|| {
///     let abc = runtime::spawn(|| Ok("abc"));
///     let def = runtime::spawn(|| Ok("def"));
///     let all = runtime::gather_cloned([&abc, &abc, &def, &abc])?;
///     assert_eq!(abc.result_cloned()?, "abc"); // still there
///     Ok(all)
/// });
/// assert_eq!(v.unwrap(), ["abc", "abc", "def", "abc"]);
/// ```
///
/// # Errors
///
/// As [`gather`].
pub fn gather_cloned<W: Waitable>(
    tasks: impl IntoIterator<Item = W>,
) -> Result<Vec<W::Output>, Error>
where
    W::Output: Clone,
{
    let children = cells(tasks);
    gather_children(&children, false, true)?;
    children.iter().map(|c| c.clone_result()).collect()
}

/// Waits for every task and returns each outcome in argument order,
/// failures in place. Python: `gather(*tasks, return_exceptions=True)`.
///
/// # Cancellation
///
/// As [`gather`]: cancelling the waiter cancels the children, and the wait
/// returns a cancellation.
///
/// # Errors
///
/// Only a cancellation of the gather itself.
pub fn gather_outcomes<W: Waitable>(
    tasks: impl IntoIterator<Item = W>,
) -> Result<Vec<Result<W::Output, Error>>, Error> {
    let children = cells(tasks);
    gather_children(&children, true, false)?;
    Ok(children
        .iter()
        .map(|c| match c.take_result() {
            // Python's `_done_callback` makes a new `CancelledError` from
            // the child's `_cancel_message`. A task that ends cancelled ends
            // with `super().cancel()`, no message: whatever message the
            // cancellation carried, the outcome has none. A plain future
            // keeps the message it was cancelled with.
            Err(e) if e.is_cancelled() && !c.header().is_plain_future() => {
                Err(Error::cancelled(None))
            }
            outcome => outcome,
        })
        .collect())
}

/// A gathering's shared state: Python's `_GatheringFuture` with the
/// `_done_callback` closure. Each child's done callback notifies it with the
/// child's index.
struct Gathering {
    outer: Record<FutureCell>,
    children: Vec<Record<dyn TaskObj>>,
    nfinished: Cell<usize>,
    /// Set by the outer future's cancellation. Shared with the closure the
    /// outer future keeps, rather than reached through this object: the
    /// outer future holding it would be a cycle, leaked whenever the
    /// gathering never ends (its loop torn down under it).
    cancel_requested: Rc<Cell<bool>>,
    return_exceptions: bool,
}

impl Notify for Gathering {
    fn notify(&self, index: usize) {
        let (outer, child) = (&self.outer, &self.children[index]);
        self.nfinished.set(self.nfinished.get() + 1);
        // Python reads every child's `exception()`: none is reported as
        // never retrieved.
        child.header().mark_retrieved();
        if outer.is_done() {
            return;
        }
        if !self.return_exceptions {
            if let Some(e) = child.failure() {
                outer.set_failure(e);
                return;
            }
        }
        if self.nfinished.get() == self.children.len() {
            if self.cancel_requested.get() {
                let e = child
                    .failure()
                    .filter(Error::is_cancelled)
                    .unwrap_or_else(|| Error::cancelled(None));
                outer.set_failure(e);
            } else {
                outer.set_done();
            }
        }
    }
}

/// Python's `gather` and `_GatheringFuture`: returns once the outer future
/// is done, with its failure if it has one.
fn gather_children<T: 'static>(
    children: &[Record<TaskCell<T>>],
    return_exceptions: bool,
    repeats_allowed: bool,
) -> Result<(), Error> {
    if children.is_empty() {
        return Ok(());
    }
    let cx = TaskContext::current("gather")?;
    let outer = start_gather(&cx.core, children, return_exceptions, repeats_allowed)?;
    outer.wait(&cx)
}

/// Python's `gather` up to the point it returns the outer future: checks
/// the children, registers a done callback with each, and returns the
/// outer future, done already if there are no children.
fn start_gather<T: 'static>(
    core: &Rc<Core>,
    children: &[Record<TaskCell<T>>],
    return_exceptions: bool,
    repeats_allowed: bool,
) -> Result<Record<FutureCell>, Error> {
    let outer = FutureCell::new("gather", core);
    if children.is_empty() {
        outer.set_done();
        return Ok(outer);
    }
    let unique = distinct(core, children)?;
    if unique.len() != children.len() && !repeats_allowed {
        return Err(Error::kind_msg(
            ErrorKind::Misuse,
            "gather() got the same task twice; its value can only be moved out once \
             (gather_cloned repeats it)",
        ));
    }
    let kids: Vec<Record<dyn TaskObj>> = unique.iter().map(erased).collect();
    let gathering = Rc::new(Gathering {
        outer: outer.clone(),
        children: kids.clone(),
        nfinished: Cell::new(0),
        cancel_requested: Rc::new(Cell::new(false)),
        return_exceptions,
    });
    let requested = gathering.cancel_requested.clone();
    outer.cancel_children(kids, Rc::new(move || requested.set(true)));
    let notify: Rc<dyn Notify> = gathering.clone();
    for (index, kid) in gathering.children.iter().enumerate() {
        add_task_callback(kid, core, CallbackKind::Notify(notify.clone(), index));
    }
    Ok(outer)
}

/// Starts gathering the tasks and returns a handle to the gathering
/// itself, without waiting. Python: the `_GatheringFuture` that
/// `asyncio.gather(*tasks)` returns, to be held, cancelled or asked about
/// before it is awaited.
///
/// ```
/// use std::time::Duration;
/// use gencoro::runtime::{self, Builder, Clock};
///
/// let r = Builder::new().clock(Clock::virtual_time()).run(|| {
///     let a = runtime::spawn(|| runtime::sleep(Duration::from_secs(10)));
///     let g = runtime::gather_handle([a.clone()])?;
///     runtime::sleep(Duration::ZERO)?;
///     assert!(g.cancel_with("bye"));
///     let e = g.wait().unwrap_err();
///     // As in CPython 3.11: the gather raises the cancellation, yet is
///     // not cancelled() itself; its child is.
///     Ok((e.message().to_owned(), g.is_cancelled(), a.is_cancelled()))
/// });
/// assert_eq!(r.unwrap(), ("bye".to_owned(), false, true));
/// ```
///
/// # Errors
///
/// [`ErrorKind::NoRunningLoop`] outside a running loop; as [`gather`] for
/// a task of another loop or a task given twice.
pub fn gather_handle<W: Waitable>(
    tasks: impl IntoIterator<Item = W>,
) -> Result<GatherHandle<W::Output>, Error> {
    let core = current_core()?;
    let children = cells(tasks);
    let outer = start_gather(&core, &children, false, false)?;
    Ok(GatherHandle { core, outer, children })
}

/// A gathering under way; see [`gather_handle`].
pub struct GatherHandle<T> {
    core: Rc<Core>,
    outer: Record<FutureCell>,
    children: Vec<Record<TaskCell<T>>>,
}

impl<T: 'static> GatherHandle<T> {
    /// Waits for the gathering and returns the values in argument order;
    /// as [`gather`].
    ///
    /// # Cancellation
    ///
    /// As [`gather`]: cancelling the waiting task cancels the children.
    ///
    /// # Errors
    ///
    /// As [`gather`]; the cancellation if the gathering was cancelled.
    pub fn wait(&self) -> Result<Vec<T>, Error> {
        let cx = TaskContext::current("gather")?;
        self.outer.wait(&cx)?;
        self.children.iter().map(|c| c.take_result()).collect()
    }

    /// Cancels every child not yet done; once they are all done, the
    /// gathering fails with the cancellation. False if no child could be
    /// cancelled (or the gathering is done). Python: `gather(...).cancel()`.
    pub fn cancel(&self) -> bool {
        self.cancel_inner(None)
    }

    /// [`cancel`](Self::cancel) with a message, which the children's and
    /// the gathering's cancellation carry.
    pub fn cancel_with(&self, message: &str) -> bool {
        self.cancel_inner(Some(message))
    }

    fn cancel_inner(&self, msg: Option<&str>) -> bool {
        if self.outer.is_done() {
            return false;
        }
        let target = unsize_record!(self.outer.clone() => dyn super::task::Awaitable);
        match target.cancel_reply(&target, &self.core, msg) {
            super::cancel::CancelReply::Children(children, requested) => {
                let mut any = false;
                for child in &children {
                    any |= cancel_task(child, &self.core, msg);
                }
                if any {
                    requested();
                }
                any
            }
            super::cancel::CancelReply::Done(cancelled) => cancelled,
            super::cancel::CancelReply::Join(_) => false,
        }
    }

    /// Whether the gathering is done. Python: `done()`.
    pub fn is_done(&self) -> bool {
        self.outer.is_done()
    }

    /// Whether the gathering ended cancelled: never in CPython 3.11, where
    /// a cancelled gathering fails with the cancellation instead (it is
    /// set as its exception); kept for Python's `cancelled()`.
    pub fn is_cancelled(&self) -> bool {
        self.outer.is_cancelled()
    }
}

impl<T> fmt::Debug for GatherHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatherHandle")
            .field("children", &self.children.len())
            .field("done", &self.outer.is_done())
            .finish()
    }
}

/// When [`wait`] returns. Python: `asyncio.FIRST_COMPLETED` and friends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReturnWhen {
    /// As soon as any task finishes or is cancelled.
    FirstCompleted,
    /// As soon as any task fails (a cancellation does not count), or when
    /// all are done.
    FirstException,
    /// When every task is done.
    AllCompleted,
}

/// What [`wait`] returns: the tasks done and those still pending, each in
/// argument order. Python: the `(done, pending)` sets.
#[derive(Debug)]
pub struct Waited<T> {
    /// Tasks that were done when the wait returned.
    pub done: Vec<Task<T>>,
    /// Tasks still pending.
    pub pending: Vec<Task<T>>,
}

/// Waits until `return_when` holds or `timeout` passes, and reports which
/// tasks are done. It never fails on a timeout and never cancels anything.
/// Python: `await asyncio.wait(tasks, timeout=..., return_when=...)`.
///
/// # Cancellation
///
/// Cancelling the waiter makes `wait` return the cancellation; the tasks
/// are left running.
///
/// # Errors
///
/// [`ErrorKind::Misuse`] for an empty set (`Set of Tasks/Futures is
/// empty.`), or a cancellation.
pub fn wait<W: Waitable>(
    tasks: impl IntoIterator<Item = W>,
    return_when: ReturnWhen,
    timeout: Option<Duration>,
) -> Result<Waited<W::Output>, Error> {
    let cells = cells(tasks);
    if cells.is_empty() {
        return Err(Error::kind_msg(ErrorKind::Misuse, "Set of Tasks/Futures is empty."));
    }
    let cx = TaskContext::current("wait")?;
    let unique = distinct(&cx.core, &cells)?;
    let waiter = FutureCell::new("wait", &cx.core);
    let timeout_handle = timeout.map(|delay| {
        let w = waiter.clone();
        cx.core.call_at(cx.core.now().saturating_add(delay), Box::new(move || release(&w)))
    });
    let counter = Rc::new(Cell::new(unique.len()));
    let mut registrations = Vec::with_capacity(unique.len());
    for kid in &unique {
        let (waiter, counter, child) = (waiter.clone(), counter.clone(), erased(kid));
        let timeout_handle = timeout_handle.clone();
        let on_completion = move || {
            counter.set(counter.get().saturating_sub(1));
            let failed = child.header().state() == FutState::Finished && child.failure().is_some();
            if return_when == ReturnWhen::FirstException {
                // Python reads `f.exception()` only in this mode.
                child.header().mark_retrieved();
            }
            if counter.get() == 0
                || return_when == ReturnWhen::FirstCompleted
                || (return_when == ReturnWhen::FirstException && failed)
            {
                if let Some(h) = &timeout_handle {
                    h.cancel();
                }
                release(&waiter);
            }
        };
        let id =
            add_task_callback(&erased(kid), &cx.core, CallbackKind::Call(Box::new(on_completion)));
        registrations.push(id);
    }
    let waited = waiter.wait(&cx);
    if let Some(h) = &timeout_handle {
        h.cancel();
    }
    for (kid, id) in unique.iter().zip(registrations) {
        kid.header().remove_callback(id);
    }
    waited?;
    let (done, pending): (Vec<_>, Vec<_>) =
        unique.into_iter().map(|cell| Task { cell }).partition(|t| t.is_done());
    Ok(Waited { done, pending })
}

/// Python's `_release_waiter`.
fn release(waiter: &FutureCell) {
    waiter.set_done();
}

/// Iterates over outcomes in the order the tasks finish; each `next` waits
/// for the next one. Python: `for f in asyncio.as_completed(tasks): await f`.
///
/// With a timeout, once it passes every remaining item is a timeout error.
///
/// ```
/// use std::time::Duration;
/// use gencoro::runtime::{self, Builder, Clock};
///
/// let order = Builder::new().clock(Clock::virtual_time()).run(|| {
///     let slow = runtime::spawn(|| { runtime::sleep(Duration::from_secs(2))?; Ok("slow") });
///     let fast = runtime::spawn(|| { runtime::sleep(Duration::from_secs(1))?; Ok("fast") });
///     runtime::as_completed([slow, fast], None)?.collect::<Result<Vec<_>, _>>()
/// });
/// assert_eq!(order.unwrap(), ["fast", "slow"]);
/// ```
///
/// # Errors
///
/// Outside a task: [`ErrorKind::NoRunningLoop`].
pub fn as_completed<W: Waitable>(
    tasks: impl IntoIterator<Item = W>,
    timeout: Option<Duration>,
) -> Result<AsCompleted<W::Output>, Error> {
    let cx = TaskContext::current("as_completed")?;
    let core = cx.core.clone();
    let cells = cells(tasks);
    let unique = distinct(&cx.core, &cells)?;
    let shared = Rc::new(AsCompletedShared {
        core: Rc::downgrade(&core),
        done: RefCell::new(VecDeque::new()),
        todo: RefCell::new(Vec::new()),
        getter: RefCell::new(None),
        timeout_handle: RefCell::new(None),
    });
    for kid in &unique {
        let (s, k) = (shared.clone(), kid.clone());
        let id = add_task_callback(
            &erased(kid),
            &core,
            CallbackKind::Call(Box::new(move || s.on_completion(&k))),
        );
        shared.todo.borrow_mut().push((kid.clone(), id));
    }
    if let Some(delay) = timeout.filter(|_| !unique.is_empty()) {
        let s = shared.clone();
        let call = core.call_at(core.now().saturating_add(delay), Box::new(move || s.on_timeout()));
        *shared.timeout_handle.borrow_mut() = Some(call);
    }
    Ok(AsCompleted { remaining: unique.len(), shared })
}

struct AsCompletedShared<T> {
    /// The loop it was made on, the only one that may drive it.
    core: std::rc::Weak<Core>,
    /// Finished tasks not yet handed out; `None` marks a timeout.
    done: RefCell<VecDeque<Option<Record<TaskCell<T>>>>>,
    todo: RefCell<Vec<(Record<TaskCell<T>>, u64)>>,
    getter: RefCell<Option<Record<FutureCell>>>,
    timeout_handle: RefCell<Option<Rc<TimerCall>>>,
}

impl<T: 'static> AsCompletedShared<T> {
    fn on_completion(&self, task: &Record<TaskCell<T>>) {
        let finished = {
            let mut todo = self.todo.borrow_mut();
            if todo.is_empty() {
                return; // the timeout came first
            }
            let index = todo.iter().position(|(t, _)| Record::ptr_eq(t, task));
            let entry = index.map(|i| todo.remove(i));
            (entry, todo.is_empty())
        };
        // Dropped with no borrow held: it may be the last handle to a task.
        drop(finished.0);
        if finished.1 {
            let handle = self.timeout_handle.take();
            if let Some(h) = handle {
                h.cancel();
            }
        }
        self.put(Some(task.clone()));
    }

    fn on_timeout(&self) {
        let todo = std::mem::take(&mut *self.todo.borrow_mut());
        for (task, id) in todo {
            task.header().remove_callback(id);
            self.put(None);
        }
    }

    /// Python: `Queue.put_nowait`, waking the getter.
    fn put(&self, item: Option<Record<TaskCell<T>>>) {
        self.done.borrow_mut().push_back(item);
        let getter = self.getter.take();
        if let Some(getter) = getter {
            release(&getter);
        }
    }
}

/// The iterator [`as_completed`] returns.
pub struct AsCompleted<T> {
    remaining: usize,
    shared: Rc<AsCompletedShared<T>>,
}

impl<T: 'static> Iterator for AsCompleted<T> {
    type Item = Result<T, Error>;

    fn next(&mut self) -> Option<Result<T, Error>> {
        if self.remaining == 0 {
            return None;
        }
        loop {
            let item = self.shared.done.borrow_mut().pop_front();
            if let Some(item) = item {
                self.remaining -= 1;
                return Some(match item {
                    Some(task) => task.take_result(),
                    None => Err(Error::timeout()),
                });
            }
            let cx = match TaskContext::current("as_completed").and_then(|cx| {
                if std::ptr::eq(self.shared.core.as_ptr(), Rc::as_ptr(&cx.core)) {
                    Ok(cx)
                } else {
                    Err(Error::kind_msg(
                        ErrorKind::Misuse,
                        "this as_completed iterator is attached to a different loop",
                    ))
                }
            }) {
                Ok(cx) => cx,
                Err(e) => {
                    // Waiting is impossible here: end the iteration.
                    self.remaining = 0;
                    return Some(Err(e));
                }
            };
            let getter = FutureCell::new("as_completed", &cx.core);
            self.shared.getter.replace(Some(getter.clone()));
            if let Err(e) = getter.wait(&cx) {
                self.shared.getter.take();
                return Some(Err(e));
            }
        }
    }
}

impl<T> fmt::Debug for AsCompleted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompleted").field("remaining", &self.remaining).finish()
    }
}

/// Waits for `task` while shielding it from cancellation. Python:
/// `await asyncio.shield(task)`.
///
/// # Cancellation
///
/// Cancelling the waiter makes this wait return a cancellation at once,
/// while `task` keeps running (B5.8). If `task` itself is cancelled, the
/// wait returns a cancellation too.
///
/// # Errors
///
/// The task's failure, or a cancellation.
pub fn shield<T: 'static>(task: &Task<T>) -> Result<T, Error> {
    if task.is_done() {
        return task.cell.take_result();
    }
    let cx = TaskContext::current("shield")?;
    cx.check_same_loop(task.cell.header())?;
    let outer = FutureCell::new("shield", &cx.core);
    let inner = erased(&task.cell);
    let inner_id = {
        let (outer, inner2) = (outer.clone(), inner.clone());
        let on_inner_done = move || {
            // Python reads `inner.exception()` here, even when the outer
            // wait was cancelled.
            inner2.header().mark_retrieved();
            if outer.is_cancelled() {
                return;
            }
            match inner2.header().state() {
                FutState::Cancelled => {
                    outer.cancel_plain(None);
                }
                _ => match inner2.failure() {
                    Some(e) => {
                        outer.set_failure(e);
                    }
                    None => {
                        outer.set_done();
                    }
                },
            }
        };
        add_task_callback(&inner, &cx.core, CallbackKind::Call(Box::new(on_inner_done)))
    };
    {
        let inner = inner.clone();
        outer.add_callback(
            &cx.core,
            CallbackKind::Call(Box::new(move || {
                if !inner.header().is_done() {
                    inner.header().remove_callback(inner_id);
                }
            })),
        );
    }
    outer.wait(&cx)?;
    task.cell.take_result()
}

/// Waits for `task` for at most `timeout`; on time-out cancels it, waits
/// until it has really finished, and returns a timeout error. Python 3.11:
/// `await asyncio.wait_for(task, timeout)`.
///
/// `None` waits without limit. A zero timeout cancels a task that is not
/// done yet, so a task that never started never runs its body. If the task
/// swallows the cancellation and returns a value, that value is returned.
///
/// # Cancellation
///
/// Cancelling the waiter cancels `task` too, waits for it to finish, and
/// returns the cancellation.
///
/// # Errors
///
/// The task's failure, [`ErrorKind::Timeout`] (whose
/// [`source`](std::error::Error::source) is the task's cancellation, as
/// Python raises `TimeoutError() from exc`), or a cancellation.
pub fn wait_for<T: 'static>(timeout: Option<Duration>, task: &Task<T>) -> Result<T, Error> {
    let Some(timeout) = timeout else {
        return task.join();
    };
    let cx = TaskContext::current("wait_for")?;
    cx.check_same_loop(task.cell.header())?;
    if timeout.is_zero() {
        if task.is_done() {
            return task.result();
        }
        cancel_and_wait(&cx, &task.cell)?;
        return timeout_if_cancelled(task.result());
    }
    let waiter = FutureCell::new("wait_for", &cx.core);
    let timeout_handle = {
        let w = waiter.clone();
        cx.core.call_at(cx.core.now().saturating_add(timeout), Box::new(move || release(&w)))
    };
    let cb = {
        let w = waiter.clone();
        add_task_callback(
            &erased(&task.cell),
            &cx.core,
            CallbackKind::Call(Box::new(move || release(&w))),
        )
    };
    let outcome = (|| {
        if let Err(e) = waiter.wait(&cx) {
            if task.is_done() {
                return task.result();
            }
            task.cell.header().remove_callback(cb);
            cancel_and_wait(&cx, &task.cell)?;
            return Err(e);
        }
        if task.is_done() {
            return task.result();
        }
        task.cell.header().remove_callback(cb);
        cancel_and_wait(&cx, &task.cell)?;
        timeout_if_cancelled(task.result())
    })();
    timeout_handle.cancel();
    outcome
}

fn timeout_if_cancelled<T>(result: Result<T, Error>) -> Result<T, Error> {
    match result {
        Err(e) if e.is_cancelled() => Err(Error::timeout_from(e)),
        other => other,
    }
}

/// Python's `_cancel_and_wait`: cancels and waits until it has finished.
fn cancel_and_wait<T: 'static>(cx: &TaskContext, task: &Record<TaskCell<T>>) -> Result<(), Error> {
    let waiter = FutureCell::new("cancellation", &cx.core);
    let w = waiter.clone();
    let id = add_task_callback(
        &erased(task),
        &cx.core,
        CallbackKind::Call(Box::new(move || release(&w))),
    );
    cancel_task(&erased(task), &cx.core, None);
    let waited = waiter.wait(cx);
    task.header().remove_callback(id);
    waited
}
