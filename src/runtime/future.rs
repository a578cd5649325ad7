//! An internal future: a one-shot completion with done callbacks, which
//! tasks wait on. Python: `asyncio.Future`, as `gather`, `wait`, `shield`
//! and `TaskGroup` use it.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use super::cancel::CancelReply;
use super::core::Core;
use super::error::Error;
use super::record::{Record, unsize_record};
use super::task::{
    Awaitable, Callback, CallbackKind, Callbacks, FutState, TaskContext, TaskObj, Wake,
};

/// A gather's children, and what to tell the gather when they are cancelled.
type GatherChildren = (Vec<Record<dyn TaskObj>>, Rc<dyn Fn()>);

/// A future completed by the loop's own machinery. It carries no value: the
/// waiter reads the outcome from where it lives (the children of a gather,
/// the inner task of a shield), except for a failure set on it.
///
/// It belongs to the loop it was made on: its callbacks are always queued
/// there, whichever loop's callback completes it.
pub(crate) struct FutureCell {
    label: &'static str,
    core: Weak<Core>,
    state: Cell<FutState>,
    failure: RefCell<Option<Error>>,
    callbacks: RefCell<Callbacks>,
    /// A gather's children: cancelling the future cancels them instead, and
    /// tells the gather that it was asked to.
    children: RefCell<Option<GatherChildren>>,
}

impl FutureCell {
    pub(crate) fn new(label: &'static str, core: &Rc<Core>) -> Record<FutureCell> {
        Record::new_with(|| FutureCell {
            label,
            core: Rc::downgrade(core),
            state: Cell::new(FutState::Pending),
            failure: RefCell::new(None),
            callbacks: RefCell::new(Callbacks::default()),
            children: RefCell::new(None),
        })
    }

    /// Makes cancelling this future cancel `children`; `requested` runs if
    /// any of them could be cancelled. Python: `_GatheringFuture.cancel`.
    pub(crate) fn cancel_children(
        &self,
        children: Vec<Record<dyn TaskObj>>,
        requested: Rc<dyn Fn()>,
    ) {
        *self.children.borrow_mut() = Some((children, requested));
    }

    pub(crate) fn is_done(&self) -> bool {
        self.state.get() != FutState::Pending
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.state.get() == FutState::Cancelled
    }

    /// Python: `set_result(None)`; false if already done.
    pub(crate) fn set_done(&self) -> bool {
        self.finish(FutState::Finished, None)
    }

    /// Python: `set_exception(error)`; false if already done.
    pub(crate) fn set_failure(&self, error: Error) -> bool {
        self.finish(FutState::Finished, Some(error))
    }

    /// Python's `Future.cancel`, for a future with no children.
    pub(crate) fn cancel_plain(&self, msg: Option<&str>) -> bool {
        self.finish(FutState::Cancelled, Some(Error::cancelled(msg)))
    }

    fn finish(&self, state: FutState, failure: Option<Error>) -> bool {
        if self.is_done() {
            return false;
        }
        self.state.set(state);
        let wake = match (&failure, state) {
            (Some(e), FutState::Cancelled) => Wake::Cancel(e.clone()),
            _ => Wake::Go,
        };
        self.failure.replace(failure);
        // Its children are of no more use once it is done.
        let children = self.children.take();
        drop(children);
        let callbacks = self.callbacks.borrow_mut().drain();
        match self.core.upgrade() {
            Some(core) => {
                for cb in callbacks {
                    cb.schedule(&core, &wake);
                }
            }
            // The loop is gone: nobody is left to wake.
            None => super::core::drop_each(callbacks),
        }
        true
    }

    /// The failure it finished with, if any.
    pub(crate) fn failure(&self) -> Option<Error> {
        self.failure.borrow().clone()
    }

    pub(crate) fn add_callback(&self, core: &Core, kind: CallbackKind) -> u64 {
        let id = core.next_callback_id();
        if self.is_done() {
            let wake = match self.failure() {
                Some(e) if self.is_cancelled() => Wake::Cancel(e),
                _ => Wake::Go,
            };
            Callback { id, kind }.schedule(core, &wake);
        } else {
            self.callbacks.borrow_mut().push(Callback { id, kind });
        }
        id
    }
}

impl Record<FutureCell> {
    /// Waits until done, from inside a task. Returns at once, without
    /// yielding, if it is done already. `Ok` means done; the failure set on
    /// it, or a cancellation of the wait, comes back as `Err`.
    pub(crate) fn wait(&self, cx: &TaskContext) -> Result<(), Error> {
        if !self.is_done() {
            let register = |kind| {
                self.add_callback(&cx.core, kind);
            };
            let target = unsize_record!(self.clone() => dyn Awaitable);
            if let Wake::Cancel(e) = cx.wait_on(target, register)? {
                return Err(e);
            }
        }
        match self.failure() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Awaitable for FutureCell {
    fn cancel_reply(
        &self,
        _this: &Record<dyn Awaitable>,
        _core: &Core,
        msg: Option<&str>,
    ) -> CancelReply {
        // Python: every `cancel` starts with `if self.done(): return False`,
        // so a waiter whose gather already failed gets `must_cancel` instead.
        if self.is_done() {
            return CancelReply::Done(false);
        }
        let children = self.children.borrow().clone();
        match children {
            Some((children, requested)) => CancelReply::Children(children, requested),
            None => CancelReply::Done(self.cancel_plain(msg)),
        }
    }

    fn cancel_edges(&self, _this: &Record<dyn Awaitable>) -> Vec<Record<dyn TaskObj>> {
        match &*self.children.borrow() {
            Some((children, _)) if !self.is_done() => children.clone(),
            _ => Vec::new(),
        }
    }

    fn describe(&self) -> String {
        self.label.to_owned()
    }
}
