//! The handle a generator body yields through.

use std::fmt;
use std::panic;

use super::{
    CloseError, Generator, GeneratorExit, IgnoredGeneratorExit, Input, State, Step, YieldFromError,
};

/// The handle a generator body receives: it suspends the body, handing a
/// value out, and returns what the generator is resumed with.
///
/// It can be passed down to plain functions, so code several calls deep can
/// yield or delegate: the stack is the coroutine's own. It cannot leave the
/// body: it is only ever borrowed, and it is neither `Send` nor `Sync`.
///
/// ```
/// use gencoro::{Generator, Yielder};
///
/// // An ordinary recursive function that yields from deep inside.
/// fn walk(co: &Yielder<u32>, depth: u32) {
///     if depth > 0 {
///         walk(co, depth - 1);
///         co.yield_(depth);
///     }
/// }
///
/// let g = Generator::new(|co| walk(co, 3));
/// assert_eq!(g.collect::<Vec<_>>(), [1, 2, 3]);
/// ```
#[repr(transparent)]
pub struct Yielder<Y, S = ()> {
    inner: corosensei::Yielder<Input<S>, Y>,
}

impl<Y, S> Yielder<Y, S> {
    #[inline]
    pub(super) fn from_inner(inner: &corosensei::Yielder<Input<S>, Y>) -> &Self {
        // SAFETY: `Yielder` is `repr(transparent)` over the corosensei
        // yielder, so the two references have the same layout, and the
        // lifetime is carried over unchanged.
        unsafe { &*(inner as *const corosensei::Yielder<Input<S>, Y> as *const Self) }
    }

    /// Suspends the body, handing `value` to whoever resumed the generator,
    /// and returns the value the generator is next resumed with. Python:
    /// `received = yield value`.
    ///
    /// If the generator is closed while suspended here, this unwinds with a
    /// [`GeneratorExit`] payload instead of returning.
    #[inline(always)]
    pub fn yield_(&self, value: Y) -> S {
        match self.inner.suspend(value) {
            Input::Value(s) => s,
            Input::Close => raise_generator_exit(),
            Input::Start => unreachable!("a started generator is never resumed with Start"),
        }
    }

    /// Delegates to `sub` until it returns, then returns its return value.
    /// Python (PEP 380): `result = yield from sub`.
    ///
    /// While delegating, every value `sub` yields goes straight to this
    /// generator's caller, and every value sent to this generator goes to
    /// `sub`. With `S = Result<T, E>`, a [`throw`](Generator::throw) is such
    /// a value too, so it is forwarded to `sub`; an error `sub` lets escape
    /// comes back as its `Err` return value, for this body to handle or
    /// propagate with `?`. Closing this generator closes `sub` first,
    /// innermost first, then unwinds this body; if `sub` ignores
    /// `GeneratorExit`, this body unwinds with that error instead.
    ///
    /// # Errors
    ///
    /// Nothing (more) is yielded and [`YieldFromError`] says why when `sub`
    /// is running (a delegation cycle), has finished (Python evaluates to
    /// `None`), or had already started. If `sub` finished because someone
    /// else closed it while this body was delegating, the value sent or
    /// thrown next comes back in the error, so a thrown error is not lost.
    ///
    /// ```
    /// use gencoro::Generator;
    ///
    /// let inner = || Generator::new(|co| { co.yield_(1); co.yield_(2); "inner done" });
    /// let outer = Generator::new(move |co| {
    ///     let result = co.yield_from(&inner()).unwrap();
    ///     co.yield_(3);
    ///     result
    /// });
    /// let mut outer = outer;
    /// assert_eq!(outer.by_ref().collect::<Vec<_>>(), [1, 2, 3]);
    /// assert_eq!(outer.take_return(), Some("inner done"));
    /// ```
    pub fn yield_from<R2>(&self, sub: &Generator<Y, S, R2>) -> Result<R2, YieldFromError<S>> {
        let step = match sub.state() {
            State::Created => sub.start_created().map_err(YieldFromError::NoStack)?,
            State::Running => return Err(YieldFromError::Running(None)),
            State::Suspended => return Err(YieldFromError::Started),
            State::Closed => return Err(YieldFromError::Finished(None)),
        };
        self.delegate(sub, step)
    }

    /// [`yield_from`](Self::yield_from) for a delegate that may have
    /// started already: PEP 380 delegates to it from where it is suspended,
    /// resuming it first with Python's `None` (`S::default()`), as `next()`
    /// does. A created delegate is started, as by `yield_from`.
    ///
    /// ```
    /// use gencoro::{Generator, Step};
    ///
    /// let inner = Generator::new(|co| { co.yield_(1); co.yield_(2); co.yield_(3); "inner done" });
    /// assert_eq!(inner.start().unwrap(), Step::Yielded(1)); // already under way
    /// let outer = Generator::new(move |co| co.yield_from_resuming(&inner).unwrap());
    /// let mut outer = outer;
    /// assert_eq!(outer.by_ref().collect::<Vec<_>>(), [2, 3]);
    /// assert_eq!(outer.take_return(), Some("inner done"));
    /// ```
    ///
    /// # Errors
    ///
    /// As [`yield_from`](Self::yield_from), except that a started delegate
    /// is no error.
    pub fn yield_from_resuming<R2>(
        &self,
        sub: &Generator<Y, S, R2>,
    ) -> Result<R2, YieldFromError<S>>
    where
        S: Default,
    {
        let step = match sub.state() {
            State::Suspended => {
                // `S::default()` is user code: make it, then check again.
                let value = S::default();
                match sub.state() {
                    State::Suspended => sub.resume_unchecked(Input::Value(value)),
                    State::Closed => return Err(YieldFromError::Finished(None)),
                    _ => return Err(YieldFromError::Running(None)),
                }
            }
            _ => return self.yield_from(sub),
        };
        self.delegate(sub, step)
    }

    /// Yields every item of `items`. Python (PEP 380): `yield from
    /// iterable` over a plain iterator, such as `yield from range(3)`; its
    /// value is `None`, here `()`.
    ///
    /// ```
    /// use gencoro::Generator;
    ///
    /// let g = Generator::new(|co| {
    ///     co.yield_from_iter(0..3).unwrap();
    ///     co.yield_from_iter([]).unwrap(); // `yield from ()`
    ///     co.yield_(10);
    /// });
    /// assert_eq!(g.collect::<Vec<i32>>(), [0, 1, 2, 10]);
    /// ```
    ///
    /// # Errors
    ///
    /// [`YieldFromError::CannotSend`] with the value, if one other than
    /// `S::default()` (Python's `None`) is sent while delegating: a plain
    /// iterator cannot take it. The items after it are not yielded.
    pub fn yield_from_iter<I>(&self, items: I) -> Result<(), YieldFromError<S>>
    where
        I: IntoIterator<Item = Y>,
        S: Default + PartialEq,
    {
        for item in items {
            let sent = self.yield_(item);
            if sent != S::default() {
                return Err(YieldFromError::CannotSend(sent));
            }
        }
        Ok(())
    }

    /// The delegation loop of `yield_from`, from `sub`'s first step on.
    fn delegate<R2>(
        &self,
        sub: &Generator<Y, S, R2>,
        mut step: Step<Y, R2>,
    ) -> Result<R2, YieldFromError<S>> {
        loop {
            let yielded = match step {
                Step::Returned(r) => return Ok(r),
                Step::Yielded(y) => y,
            };
            step = match self.inner.suspend(yielded) {
                Input::Value(s) => match sub.state() {
                    State::Suspended => sub.resume_unchecked(Input::Value(s)),
                    // Someone else closed or is running `sub` meanwhile.
                    State::Closed => return Err(YieldFromError::Finished(Some(s))),
                    State::Running => return Err(YieldFromError::Running(Some(s))),
                    State::Created => unreachable!("a started generator is never created again"),
                },
                Input::Close => match sub.close() {
                    Ok(()) => raise_generator_exit(),
                    Err(CloseError::IgnoredExit) => {
                        panic::resume_unwind(Box::new(IgnoredGeneratorExit))
                    }
                    Err(CloseError::Running) => return Err(YieldFromError::Running(None)),
                },
                Input::Start => unreachable!("a started generator is never resumed with Start"),
            };
        }
    }
}

/// A [`Yielder`] reachable without a borrow, for the runtime: a task's wait
/// functions (`sleep`, `join`, ...) are plain calls that were not handed the
/// yielder, so the runtime keeps this in the task record.
///
/// It remembers the coroutine's stack range and refuses to suspend from any
/// other stack, so code running in a plain generator nested inside a task
/// cannot suspend the task from the wrong stack.
pub(crate) struct RawYielder<Y, S> {
    ptr: std::ptr::NonNull<Yielder<Y, S>>,
    stack_low: usize,
    stack_high: usize,
}

impl<Y, S> Clone for RawYielder<Y, S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<Y, S> Copy for RawYielder<Y, S> {}

impl<Y, S> Yielder<Y, S> {
    /// Detaches this yielder. `stack_size` is the usable size of the stack
    /// the body runs on; the range check uses it.
    pub(crate) fn raw(&self, stack_size: usize) -> RawYielder<Y, S> {
        // The corosensei yielder is the parent link at the top of the
        // coroutine's own stack: 16 bytes below its base on x86_64 and
        // aarch64, 32 with corosensei's sanitizer fields above it. It is not
        // a Rust local, so AddressSanitizer's fake stacks do not move it.
        // Every frame of the body lies below it, so `high` (two words above
        // it) is at most the base, and `low` at most 32 bytes into the guard
        // page below the stack, where no frame can be.
        let high = self as *const Self as usize + 16;
        RawYielder {
            ptr: std::ptr::NonNull::from(self),
            stack_low: high.saturating_sub(stack_size + 32),
            stack_high: high,
        }
    }
}

impl<Y, S> RawYielder<Y, S> {
    /// Whether the caller runs on this coroutine's stack.
    #[inline(always)]
    pub(crate) fn on_own_stack(&self) -> bool {
        let here = stack_pointer();
        here >= self.stack_low && here < self.stack_high
    }

    /// Suspends the coroutine, or returns `Err(value)` if the caller is not
    /// running on that coroutine's stack.
    ///
    /// # Safety
    ///
    /// The generator whose body received the yielder must not have finished
    /// (its stack may have been reused by another coroutine since), and it
    /// must be the generator currently running on this thread.
    #[inline(always)]
    pub(crate) unsafe fn suspend(&self, value: Y) -> Result<S, Y> {
        if !self.on_own_stack() {
            return Err(value);
        }
        // SAFETY: the caller guarantees the generator is alive and running,
        // so the yielder at the top of its stack is alive; and we are
        // executing on that very stack, as corosensei requires of `suspend`.
        Ok(unsafe { self.ptr.as_ref() }.yield_(value))
    }
}

/// The stack pointer of the caller's frame (inlined into it).
///
/// Read from the register, not from the address of a local: under
/// AddressSanitizer, locals may live on a "fake stack" on the heap, far from
/// the stack the code runs on.
#[inline(always)]
fn stack_pointer() -> usize {
    let sp: usize;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: copies the stack pointer into a general register; reads and
    // writes no memory, does not touch the stack or the flags.
    unsafe {
        std::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags));
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: as on x86_64: `mov xN, sp` only copies the stack pointer.
    unsafe {
        std::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags));
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        // Elsewhere a local's address is the stack pointer's neighbour,
        // except under AddressSanitizer's fake stacks.
        let marker = 0u8;
        sp = std::hint::black_box(std::ptr::addr_of!(marker)) as usize;
    }
    sp
}

/// Unwinds the body from the suspended yield. `resume_unwind` skips the
/// panic hook, so closing prints nothing.
#[cold]
fn raise_generator_exit() -> ! {
    panic::resume_unwind(Box::new(GeneratorExit))
}

impl<Y, S> fmt::Debug for Yielder<Y, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Yielder").finish_non_exhaustive()
    }
}
