//! An internal future: a one-shot completion with done callbacks, which
//! tasks wait on. Python: `asyncio.Future`, as `gather`, `wait`, `shield`
//! and `TaskGroup` use it.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use super::core::Core;
use super::error::Error;
use super::task::{Awaitable, Callback, CallbackKind, Callbacks, FutState, TaskContext, Wake};

type CancelHook = Box<dyn Fn(&Core, Option<&str>) -> bool>;

/// A future completed by the loop's own machinery. It carries no value: the
/// waiter reads the outcome from where it lives (the children of a gather,
/// the inner task of a shield), except for a failure set on it.
pub(crate) struct FutureCell {
    label: &'static str,
    state: Cell<FutState>,
    failure: RefCell<Option<Error>>,
    callbacks: RefCell<Callbacks>,
    /// Replaces the default `cancel` (gather cancels its children instead).
    cancel_hook: RefCell<Option<CancelHook>>,
}

impl FutureCell {
    pub(crate) fn new(label: &'static str) -> Rc<FutureCell> {
        Rc::new(FutureCell {
            label,
            state: Cell::new(FutState::Pending),
            failure: RefCell::new(None),
            callbacks: RefCell::new(Callbacks::default()),
            cancel_hook: RefCell::new(None),
        })
    }

    pub(crate) fn set_cancel_hook(&self, hook: CancelHook) {
        *self.cancel_hook.borrow_mut() = Some(hook);
    }

    pub(crate) fn is_done(&self) -> bool {
        self.state.get() != FutState::Pending
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.state.get() == FutState::Cancelled
    }

    /// Python: `set_result(None)`; false if already done.
    pub(crate) fn set_done(&self, core: &Core) -> bool {
        self.finish(core, FutState::Finished, None)
    }

    /// Python: `set_exception(error)`; false if already done.
    pub(crate) fn set_failure(&self, core: &Core, error: Error) -> bool {
        self.finish(core, FutState::Finished, Some(error))
    }

    /// Python's `Future.cancel`, ignoring any hook.
    pub(crate) fn cancel_plain(&self, core: &Core, msg: Option<&str>) -> bool {
        self.finish(core, FutState::Cancelled, Some(Error::cancelled(msg)))
    }

    fn finish(&self, core: &Core, state: FutState, failure: Option<Error>) -> bool {
        if self.is_done() {
            return false;
        }
        self.state.set(state);
        let wake = match (&failure, state) {
            (Some(e), FutState::Cancelled) => Wake::Cancel(e.clone()),
            _ => Wake::Go,
        };
        *self.failure.borrow_mut() = failure;
        let callbacks = self.callbacks.borrow_mut().drain();
        for cb in callbacks {
            cb.schedule(core, &wake);
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

    /// Waits until done, from inside a task. Returns at once, without
    /// yielding, if it is done already. `Ok` means done; the failure set on
    /// it, or a cancellation of the wait, comes back as `Err`.
    pub(crate) fn wait(self: &Rc<Self>, cx: &TaskContext) -> Result<(), Error> {
        if !self.is_done() {
            let register = |kind| {
                self.add_callback(&cx.core, kind);
            };
            if let Wake::Cancel(e) = cx.wait_on(self.clone(), register)? {
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
    fn cancel(self: Rc<Self>, core: &Core, msg: Option<&str>) -> bool {
        // Python: every `cancel` starts with `if self.done(): return False`,
        // so a waiter whose gather already failed gets `must_cancel` instead.
        if self.is_done() {
            return false;
        }
        let hook = self.cancel_hook.borrow_mut().take();
        match hook {
            Some(hook) => {
                let result = hook(core, msg);
                *self.cancel_hook.borrow_mut() = Some(hook);
                result
            }
            None => self.cancel_plain(core, msg),
        }
    }

    fn describe(&self) -> String {
        self.label.to_owned()
    }
}
