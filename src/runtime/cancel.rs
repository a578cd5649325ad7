//! Cancellation: Python's `Task.cancel`, walked without recursion.
//!
//! Cancelling a task cancels what it waits on: the task it joins, the
//! children of the gather it waits for, and so on down the chain. CPython
//! recurses once per link; here the walk keeps its own stack, so a chain of
//! a million tasks each joining the next is cancelled in linear time and
//! constant native stack.
//!
//! # What one request does (CPython's `Task.cancel`)
//!
//! For a task that is not done: count the request (`cancelling()`), then
//! cancel its waiter. A sleep or a park is cancelled outright (unless the
//! parked task was woken already); a future is cancelled
//! unless it is done; a task being joined is cancelled the same way, one
//! level down; a gather cancels each child not yet done, in order. If the
//! waiter could not be cancelled, the task remembers the request
//! (`must_cancel`) and gets it at its next step. Side effects happen in the
//! order CPython's recursion makes them (depth first, children in order).
//!
//! # Cycles
//!
//! A walk that comes back to a task it is still inside (A joins B, B joins
//! A) cannot cancel that task's waiter again. CPython recurses until
//! `RecursionError`; here the task where the walk entered the cycle (A,
//! when A is cancelled) has its wait interrupted with the cancellation at
//! once, so the request is delivered at a suspension point, and the others
//! in the cycle are woken in turn as it ends.
//!
//! # Shutdown
//!
//! `run` cancels every pending task, one request each, as CPython's
//! `_cancel_all_tasks` does. Walked one by one, a chain of n tasks is walked
//! n times (quadratic). A [`Batch`] walks each task once and counts how
//! many later walks would have come through it; once all requests are in,
//! it hands those counts on down the wait graph in topological order, with
//! the same `cancelling()` counts and flags the repeated walks would leave.
//! A wait graph with a cycle is cancelled one walk at a time instead.

use std::collections::HashMap;
use std::rc::Rc;

use super::core::{Core, Handle};
use super::error::Error;
use super::explore::TraceEventKind;
use super::park::cancel_parked;
use super::record::Record;
use super::task::runnable;
use super::task::{TaskObj, Waiter, Wake};

/// What cancelling a future-like waiter asks of the walk.
pub(crate) enum CancelReply {
    /// The waiter was cancelled (true), or could not be (false: it is
    /// done), and nothing else needs cancelling.
    Done(bool),
    /// The waiter is a task being joined: cancel it.
    Join(Record<dyn TaskObj>),
    /// The waiter is a gather: cancel each child, in order; `requested` is
    /// told if any of them could be cancelled.
    Children(Vec<Record<dyn TaskObj>>, Rc<dyn Fn()>),
}

/// Python: `Task.cancel(msg)`. True if the request was taken: the task was
/// not done.
pub(crate) fn cancel_task(task: &Record<dyn TaskObj>, core: &Core, msg: Option<&str>) -> bool {
    Walk::new(core, msg, None).cancel_root(task)
}

/// Python: `if self._fut_waiter.cancel(msg): self._must_cancel = False`, in
/// `Task.__step`: cancels what `task` waits on, without counting a request
/// against `task` itself. True if the waiter was cancelled.
pub(crate) fn cancel_waiter(task: &Record<dyn TaskObj>, core: &Core, msg: Option<&str>) -> bool {
    let Some(waiter) = task.header().waiter() else { return false };
    let mut walk = Walk::new(core, msg, None);
    let (cancelled, children) = walk.waiter_targets(task, waiter);
    walk.descend(task, children);
    walk.drain();
    cancelled
}

/// Cancels many tasks, one request each, as if by `cancel_task` on each in
/// turn, in time linear in the size of their wait graph. Python:
/// `for task in to_cancel: task.cancel()` in `_cancel_all_tasks`.
pub(crate) fn cancel_all(tasks: &[Record<dyn TaskObj>], core: &Core, msg: Option<&str>) {
    if has_wait_cycle(tasks) {
        for task in tasks {
            cancel_task(task, core, msg);
        }
        return;
    }
    let mut batch = BatchState::default();
    for task in tasks {
        Walk::new(core, msg, Some(&mut batch)).cancel_root(task);
    }
    batch.hand_down(core, msg);
}

/// One step of the walk.
enum Frame {
    /// A request reaches this task (it was not done and not on the walk's
    /// path when the step was queued).
    Enter(Record<dyn TaskObj>),
    /// The walk has left this task's subtree.
    Exit(Record<dyn TaskObj>),
}

/// A shutdown batch: which tasks were walked, in the order their subtrees
/// were finished (postorder), and how many repeat walks each would see.
#[derive(Default)]
struct BatchState {
    walked: HashMap<*const (), usize>,
    finished: Vec<(Record<dyn TaskObj>, u32)>,
}

impl BatchState {
    /// Replays the repeat walks counted during the batch: in reverse
    /// postorder (a topological order of an acyclic wait graph), each task
    /// takes its repeat requests and passes them to what it waits on.
    fn hand_down(mut self, core: &Core, msg: Option<&str>) {
        for index in (0..self.finished.len()).rev() {
            let (task, repeats) = self.finished[index].clone();
            if repeats == 0 {
                continue;
            }
            let h = task.header();
            h.add_cancel_requests(repeats);
            core.trace(&*task, TraceEventKind::Cancel);
            let (cancelled, children) = match h.waiter() {
                Some(waiter) => Walk::new(core, msg, None).waiter_targets(&task, waiter),
                None => (false, Vec::new()),
            };
            if !cancelled {
                h.set_must_cancel(msg);
            }
            for child in children {
                // Acyclic, and walked in this batch: it finished earlier.
                if let Some(&i) = self.walked.get(&key(&child)) {
                    self.finished[i].1 += repeats;
                }
            }
        }
    }
}

struct Walk<'a> {
    core: &'a Core,
    msg: Option<&'a str>,
    stack: Vec<Frame>,
    batch: Option<&'a mut BatchState>,
}

fn key(task: &Record<dyn TaskObj>) -> *const () {
    Record::as_ptr(task) as *const ()
}

impl<'a> Walk<'a> {
    fn new(core: &'a Core, msg: Option<&'a str>, batch: Option<&'a mut BatchState>) -> Self {
        Walk { core, msg, stack: Vec::new(), batch }
    }

    fn cancel_root(&mut self, task: &Record<dyn TaskObj>) -> bool {
        let h = task.header();
        if h.is_done() || h.cancel_in_progress() {
            // Reached again while its own cancellation is walked (a
            // re-entrant call): this request adds nothing.
            return false;
        }
        self.stack.push(Frame::Enter(task.clone()));
        self.drain();
        true
    }

    fn drain(&mut self) {
        while let Some(frame) = self.stack.pop() {
            match frame {
                Frame::Enter(task) => self.enter(task),
                Frame::Exit(task) => {
                    task.header().set_cancel_in_progress(false);
                    if let Some(batch) = self.batch.as_deref_mut() {
                        batch.walked.insert(key(&task), batch.finished.len());
                        batch.finished.push((task, 0));
                    }
                }
            }
        }
    }

    /// One request reaches `task`.
    fn enter(&mut self, task: Record<dyn TaskObj>) {
        if let Some(batch) = self.batch.as_deref_mut() {
            if let Some(&index) = batch.walked.get(&key(&task)) {
                batch.finished[index].1 += 1;
                return;
            }
        }
        let h = task.header();
        if h.is_plain_future() {
            // Python: `Future.cancel` cancels it at once, and counts nothing.
            task.cancel_future(self.core, self.msg);
            return;
        }
        h.note_cancel_request();
        self.core.trace(&*task, TraceEventKind::Cancel);
        let (cancelled, children) = match h.waiter() {
            Some(waiter) => self.waiter_targets(&task, waiter),
            None => (false, Vec::new()),
        };
        if !cancelled {
            h.set_must_cancel(self.msg);
        }
        self.descend(&task, children);
    }

    /// Queues `children` to be entered, depth first and in order, with
    /// `task` on the path until they are done.
    fn descend(&mut self, task: &Record<dyn TaskObj>, children: Vec<Record<dyn TaskObj>>) {
        task.header().set_cancel_in_progress(true);
        self.stack.push(Frame::Exit(task.clone()));
        self.stack.extend(children.into_iter().rev().map(Frame::Enter));
    }

    /// Cancels what `task` waits on, one level: whether that took, and the
    /// tasks the request goes on to. Python: `self._fut_waiter.cancel(msg)`.
    fn waiter_targets(
        &mut self,
        task: &Record<dyn TaskObj>,
        waiter: Waiter,
    ) -> (bool, Vec<Record<dyn TaskObj>>) {
        let free = |t: &Record<dyn TaskObj>| {
            let h = t.header();
            !h.is_done() && !h.cancel_in_progress()
        };
        match waiter {
            Waiter::Sleep { .. } => {
                (task.header().cancel_sleep(self.core, task, self.msg), Vec::new())
            }
            Waiter::Parked(_) => (cancel_parked(self.core, task, self.msg), Vec::new()),
            Waiter::Future(f) => match f.cancel_reply(&f, self.core, self.msg) {
                CancelReply::Done(cancelled) => (cancelled, Vec::new()),
                CancelReply::Join(joined) if free(&joined) => (true, vec![joined]),
                CancelReply::Join(joined) if !joined.header().is_done() => {
                    // A cycle: `joined` is on the walk's path, where the
                    // walk entered the cycle. Its wait is interrupted, and
                    // its end wakes this task in turn.
                    self.interrupt(&joined);
                    (true, Vec::new())
                }
                CancelReply::Join(_) => (false, Vec::new()),
                CancelReply::Children(children, requested) => {
                    let children: Vec<_> = children.into_iter().filter(free).collect();
                    if children.is_empty() {
                        (false, Vec::new())
                    } else {
                        requested();
                        (true, children)
                    }
                }
            },
        }
    }

    /// Ends `task`'s current wait with the cancellation. Its registration
    /// with what it waited on goes stale with the new token.
    fn interrupt(&self, task: &Record<dyn TaskObj>) {
        let token = task.header().next_token();
        let error = Error::cancelled(self.msg);
        self.core.push(Handle::wakeup(runnable(task.clone()), token, Wake::Cancel(error)));
    }
}

/// Whether the wait graph reachable from `tasks` has a cycle.
fn has_wait_cycle(tasks: &[Record<dyn TaskObj>]) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Closed,
    }
    let mut marks: HashMap<*const (), Mark> = HashMap::new();
    let mut stack: Vec<(Record<dyn TaskObj>, bool)> = Vec::new();
    for root in tasks {
        stack.push((root.clone(), false));
        while let Some((task, leaving)) = stack.pop() {
            let k = key(&task);
            if leaving {
                marks.insert(k, Mark::Closed);
                continue;
            }
            match marks.get(&k) {
                Some(Mark::Open) => return true,
                Some(Mark::Closed) => continue,
                None => {}
            }
            marks.insert(k, Mark::Open);
            stack.push((task.clone(), true));
            for next in task.header().waits_on() {
                match marks.get(&key(&next)) {
                    Some(Mark::Open) => return true,
                    Some(Mark::Closed) => {}
                    None => stack.push((next, false)),
                }
            }
        }
    }
    false
}
