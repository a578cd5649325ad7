//! Python's generator protocol (PEP 255, 342, 380) on stackful coroutines.
//!
//! This is the only module that uses `corosensei`. A [`Generator`] owns a
//! coroutine running on a pooled stack (see [`crate::stack`]); its body is a
//! closure that receives a [`Yielder`] and may yield from any call depth.
//!
//! # Type parameters
//!
//! `Generator<Y, S, R>` follows Python's `Generator[YieldType, SendType,
//! ReturnType]`: the body yields `Y`, each [`send`](Generator::send) delivers
//! an `S` as the value of the suspended yield, and the body returns `R`.
//!
//! # State machine
//!
//! ```text
//!             start / resume                      yield
//!   Created ──────────────────▶ Running ◀──────────────────▶ Suspended
//!      │                          │       send / resume / throw   │
//!      │ close / throw / drop     │ return or panic               │ close / drop: unwind
//!      ▼                          ▼                               ▼
//!   Closed ◀──────────────────────┴───────────────────────────────┘
//! ```
//!
//! | state       | `start`/`resume`/`send`           | `throw(e)`                    | `close()`                 |
//! |-------------|-----------------------------------|-------------------------------|---------------------------|
//! | `Created`   | runs the body (`send`: error, value handed back) | closes, no body code runs, returns `Returned(Err(e))` | closes, no body code runs |
//! | `Suspended` | resumes at the yield              | the yield returns `Err(e)`    | unwinds the stack         |
//! | `Running`   | [`Running`](ResumeError::Running) error | `Running` error          | `Running` error           |
//! | `Closed`    | [`Closed`](ResumeError::Closed) error   | error handed back        | no-op                     |
//!
//! # Mapping Python to Rust
//!
//! * **Return value.** `StopIteration(value)` becomes [`Step::Returned`]. It
//!   is delivered by the one resume that finishes the body; later resumes
//!   report [`ResumeError::Closed`] (Python's bare `StopIteration`).
//! * **The first resume.** Python only allows `None` there. Here
//!   [`start`](Generator::start) runs a created generator to its first yield
//!   without a value, and [`send`](Generator::send) on a created generator
//!   is rejected with the value handed back, leaving the generator unchanged.
//!   [`resume`](Generator::resume) is Python's `next()`: it starts a created
//!   generator and otherwise sends `S::default()`, which for `S = ()` and
//!   `S = Option<T>` is exactly Python's `None`.
//! * **throw.** A generator that accepts thrown errors takes
//!   `S = Result<T, E>` and returns `R = Result<U, E>`.
//!   [`throw(e)`](Generator::throw) resumes the suspended yield with `Err(e)`;
//!   the body handles it with `match` or lets it escape with `?`, which
//!   finishes the generator with `Err(e)`, exactly as an uncaught exception
//!   comes out of Python's `throw`.
//! * **close.** [`close`](Generator::close) makes the suspended yield unwind
//!   with a [`GeneratorExit`] panic payload, so every destructor on the
//!   coroutine's stack runs, the way `GeneratorExit` runs `finally` blocks.
//!   The unwind does not run the panic hook, so nothing is printed. Code may
//!   catch it with [`std::panic::catch_unwind`] (Python's `except
//!   GeneratorExit`); if it then yields again, `close` reports
//!   [`CloseError::IgnoredExit`].
//! * **Exceptions** other than thrown errors are panics: a panic in the body
//!   propagates to whoever resumed it, and the generator is closed.
//! * **PEP 479** has no counterpart: a Rust body cannot raise
//!   `StopIteration` by accident, because finishing is a `return`.
//! * **Re-entrancy.** Every method takes `&self`, so a generator can be
//!   shared (`Rc<Generator>`) and even reached from its own body. Resuming
//!   it from inside is reported as [`ResumeError::Running`], never undefined
//!   behaviour. While a generator delegates with
//!   [`yield_from`](Yielder::yield_from), it and every delegator up the chain
//!   count as running.
//!
//! # Dropping
//!
//! Dropping a suspended generator closes it, so its destructors run exactly
//! once, also while the thread is already panicking. A panic raised by the
//! body while `close` unwinds it comes in two kinds:
//!
//! * raised by the body after it caught `GeneratorExit` (code that runs
//!   once the unwind has been caught): it propagates out of `close`, and
//!   out of `drop` unless the thread is already panicking, in which case it
//!   is reported on stderr and swallowed (Python sends it to
//!   `sys.unraisablehook`);
//! * raised by a destructor *during* the unwind: as everywhere in Rust, a
//!   panic escaping a destructor while unwinding aborts the process.
//!
//! A body that keeps catching `GeneratorExit` and yielding is closed again
//! by `drop`, up to a bound; after that its stack is leaked rather than
//! reused, so nothing on it dangles.
//!
//! # Yielding from a destructor while unwinding
//!
//! A destructor that yields while the body unwinds (from `close`, or from
//! a panic) is Python's `finally: yield`. After `close`, the first `close`
//! reports [`CloseError::IgnoredExit`], as in Python. The unwind itself stays
//! suspended. Resuming the generator lets the unwind finish, and its payload
//! then propagates out of that resume as a panic (Python raises
//! `GeneratorExit` out of `send`). Closing or dropping it instead cannot
//! unwind a second time through a destructor, which would abort: the
//! remaining destructors are skipped and the stack is leaked (Python
//! likewise skips the rest of the `finally`). Avoid yielding from
//! destructors.
//!
//! The damage stays inside that generator. Every other generator and task
//! on the thread goes on closing, dropping and waiting as before, because
//! the library counts the unwinds its generators hold rather than trusting
//! the thread's panic state. What remains:
//!
//! * [`std::thread::panicking`] itself is true on that thread while such an
//!   unwind is held, for good once the generator is abandoned, since the
//!   unwind never ends. Code of your own that asks it is misled.
//! * While an unwind is held, a panic that is really in progress elsewhere
//!   on the thread cannot be told apart from it. A generator whose body
//!   panics and then yields from a destructor in that window is not seen as
//!   mid-unwind, and closing it later aborts; and a panic raised while a
//!   dropped generator closes is reported on stderr rather than propagated.
//!
//! A yield observed while the thread is already panicking (a generator
//! resumed from a destructor during a panic) and no unwind is held cannot
//! be told apart from one inside an unwind either, so such a generator is
//! treated as mid-unwind when closed.
//!
//! # `panic = "abort"`
//!
//! Closing a suspended generator needs unwinding. Built with
//! `panic = "abort"`, closing or dropping a *suspended* generator cannot run
//! the destructors on its stack: they are skipped (as with
//! [`std::mem::forget`]) and the stack is leaked, never reused. Generators
//! that are created-but-unstarted or finished are unaffected.
//!
//! # Threads
//!
//! A generator is `!Send`: it stays on the thread that made it, whose stack
//! pool it borrows from. This also keeps thread-locals read across a yield
//! sound.
//!
//! ```compile_fail
//! fn assert_send<T: Send>() {}
//! assert_send::<gencoro::Generator<u32>>();
//! ```

mod error;
mod yielder;

use std::cell::{Cell, UnsafeCell};
use std::fmt;
use std::mem::{self, MaybeUninit};
use std::panic::{self, AssertUnwindSafe};
use std::ptr;

use corosensei::{Coroutine, CoroutineResult};

pub use error::{CloseError, ResumeError, SendError, ThrowError, YieldFromError};
pub(crate) use yielder::RawYielder;
pub use yielder::Yielder;

use crate::stack::{self, DEFAULT_STACK_SIZE, StackError};

/// What a resume produced: a yielded value, or the body's return value.
///
/// Python: the value `next`/`send`/`throw` returns, or the
/// `StopIteration.value` it raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step<Y, R> {
    /// The body yielded this value and is suspended.
    Yielded(Y),
    /// The body returned this value and the generator is closed.
    Returned(R),
}

impl<Y, R> Step<Y, R> {
    /// The yielded value, if the body yielded.
    pub fn yielded(self) -> Option<Y> {
        match self {
            Step::Yielded(y) => Some(y),
            Step::Returned(_) => None,
        }
    }

    /// The return value, if the body returned.
    pub fn returned(self) -> Option<R> {
        match self {
            Step::Yielded(_) => None,
            Step::Returned(r) => Some(r),
        }
    }
}

/// A generator's lifecycle state. Python: `inspect.getgeneratorstate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Made but not started: none of the body has run. `GEN_CREATED`.
    Created,
    /// Executing now; only observable from inside the body or code it calls.
    /// `GEN_RUNNING`.
    Running,
    /// Paused at a yield, possibly inside `yield_from`. `GEN_SUSPENDED`.
    Suspended,
    /// Finished by returning, panicking, or being closed. `GEN_CLOSED`.
    Closed,
}

/// The panic payload that [`Generator::close`] raises at the suspended
/// yield to unwind the body. Python's `GeneratorExit`.
///
/// Catching it with [`std::panic::catch_unwind`] is Python's `except
/// GeneratorExit:`. A body that catches it should finish (return or let it
/// propagate with [`std::panic::resume_unwind`]); yielding again makes
/// `close` report [`CloseError::IgnoredExit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct GeneratorExit;

/// Payload raised in a delegator when the generator it delegates to ignored
/// `GeneratorExit` (PEP 380: `RuntimeError` raised at the `yield from`).
#[derive(Debug)]
struct IgnoredGeneratorExit;

/// What the coroutine is resumed with.
enum Input<S> {
    /// The first resume, which carries no value.
    Start,
    /// A value for the suspended yield.
    Value(S),
    /// Unwind from the suspended yield. (Never sent when built with
    /// `panic = "abort"`, where closing cannot unwind.)
    #[cfg_attr(panic = "abort", allow(dead_code))]
    Close,
}

/// A pooled stack, as corosensei sees it.
struct PooledStack(stack::Stack);

// SAFETY: `stack::Stack` is a region of at least `stack::MIN_STACK_SIZE`
// (16 KiB, above corosensei's 4 KiB minimum) usable bytes below a page-aligned
// `base`, with a guard page below it that `limit` includes. The region stays
// mapped and unused by anyone else until the `stack::Stack` is dropped.
unsafe impl corosensei::stack::Stack for PooledStack {
    #[inline]
    fn base(&self) -> corosensei::stack::StackPointer {
        self.0.base()
    }

    #[inline]
    fn limit(&self) -> corosensei::stack::StackPointer {
        self.0.limit_with_guard()
    }
}

type Co<Y, S, R> = Coroutine<Input<S>, Y, R, PooledStack>;

/// Words of a generator record that hold a body closure before it starts;
/// larger closures are boxed there.
const INLINE_BODY_WORDS: usize = 6;

/// A body not yet on a stack: a created generator holds no stack at all,
/// only this. The closure sits in `buf` when it fits, else a `Box` of it
/// does; `launch` and `discard` know which, and each takes it out once.
struct Unstarted<Y, S, R> {
    buf: MaybeUninit<[usize; INLINE_BODY_WORDS]>,
    /// Moves the body out of `buf` onto a new coroutine on `stack`, and
    /// writes that coroutine into the slot holding this `Unstarted`: in
    /// place, for a coroutine built in one frame and copied out of another
    /// costs a store-forwarding stall on every start.
    launch: unsafe fn(*mut u8, PooledStack, *mut Slot<Y, S, R>),
    /// Drops the body in `buf` without running it.
    discard: unsafe fn(*mut u8),
}

impl<Y: 'static, S: 'static, R: 'static> Unstarted<Y, S, R> {
    #[inline(always)]
    fn new<F>(body: F) -> Self
    where
        F: FnOnce(&Yielder<Y, S>) -> R + 'static,
    {
        let mut buf = MaybeUninit::<[usize; INLINE_BODY_WORDS]>::uninit();
        let inline = mem::size_of::<F>() <= mem::size_of_val(&buf)
            && mem::align_of::<F>() <= mem::align_of_val(&buf);
        if inline {
            // SAFETY: `F` fits in `buf` and needs no more alignment than it.
            unsafe { ptr::write(buf.as_mut_ptr().cast::<F>(), body) };
            Unstarted { buf, launch: launch_inline::<Y, S, R, F>, discard: discard_inline::<F> }
        } else {
            // SAFETY: a `Box` is one word, as aligned as `buf`.
            unsafe { ptr::write(buf.as_mut_ptr().cast::<Box<F>>(), Box::new(body)) };
            Unstarted { buf, launch: launch_boxed::<Y, S, R, F>, discard: discard_boxed::<F> }
        }
    }
}

/// # Safety
///
/// `buf` holds an `F` written by [`Unstarted::new`], not taken out yet, and
/// lies in the `Unstarted` that `slot` holds; nothing else refers to the
/// slot.
unsafe fn launch_inline<Y: 'static, S: 'static, R: 'static, F>(
    buf: *mut u8,
    stack: PooledStack,
    slot: *mut Slot<Y, S, R>,
) where
    F: FnOnce(&Yielder<Y, S>) -> R + 'static,
{
    // SAFETY: the caller guarantees `buf` holds an `F`, read only this once.
    let body = unsafe { ptr::read(buf.cast::<F>()) };
    let co = Coroutine::with_stack(stack, move |inner, _start: Input<S>| {
        body(Yielder::from_inner(inner))
    });
    // SAFETY: the caller guarantees `slot` is valid and ours alone; what it
    // holds (`Unstarted`, whose body was just moved out) has no drop glue,
    // so overwriting it drops nothing.
    unsafe { ptr::write(slot, Slot::Started(co)) }
}

/// # Safety
///
/// As [`launch_inline`], with a `Box<F>` in `buf`.
unsafe fn launch_boxed<Y: 'static, S: 'static, R: 'static, F>(
    buf: *mut u8,
    stack: PooledStack,
    slot: *mut Slot<Y, S, R>,
) where
    F: FnOnce(&Yielder<Y, S>) -> R + 'static,
{
    // SAFETY: the caller guarantees `buf` holds a `Box<F>`, read only once.
    // corosensei moves the closure onto the new stack and refuses anything
    // over 1 KiB, so a large body travels boxed.
    let body = unsafe { ptr::read(buf.cast::<Box<F>>()) };
    let co = Coroutine::with_stack(stack, move |inner, _start: Input<S>| {
        body(Yielder::from_inner(inner))
    });
    // SAFETY: as in `launch_inline`.
    unsafe { ptr::write(slot, Slot::Started(co)) }
}

/// # Safety
///
/// As [`launch_inline`].
unsafe fn discard_inline<F>(buf: *mut u8) {
    // SAFETY: the caller guarantees `buf` holds an `F`, dropped only once.
    unsafe { ptr::drop_in_place(buf.cast::<F>()) }
}

/// # Safety
///
/// As [`launch_boxed`].
unsafe fn discard_boxed<F>(buf: *mut u8) {
    // SAFETY: the caller guarantees `buf` holds a `Box<F>`, dropped once.
    unsafe { ptr::drop_in_place(buf.cast::<Box<F>>()) }
}

/// Empties a slot whose body was taken, if `launch` unwinds.
struct EmptyOnUnwind<Y, S, R>(*mut Slot<Y, S, R>);

impl<Y, S, R> Drop for EmptyOnUnwind<Y, S, R> {
    #[cold]
    fn drop(&mut self) {
        // SAFETY: the slot is valid and ours alone while `launch` runs (see
        // `start_created`). `Unstarted` has no drop glue, so this forgets the
        // body's remains rather than dropping them a second time.
        unsafe { ptr::write(self.0, Slot::Empty) }
    }
}

/// What a generator record holds besides its state.
enum Slot<Y, S, R> {
    /// `Created`: the body, on no stack yet.
    Unstarted(Unstarted<Y, S, R>),
    /// `Running` or `Suspended`: the coroutine, on its stack.
    Started(Co<Y, S, R>),
    /// `Closed`, or in passing.
    Empty,
}

/// How much of the top of a stack a typical suspended body has touched.
const HOT_STACK_BYTES: usize = 1024;

/// How many times `drop` closes a body that keeps ignoring `GeneratorExit`
/// before it gives up and leaks the stack.
const DROP_CLOSE_ATTEMPTS: usize = 16;

thread_local! {
    /// How many unwinds the generators of this thread hold unfinished: each
    /// body suspended in the middle of an unwind (a destructor yielded), or
    /// abandoned there, keeps one, and keeps the thread counting as
    /// panicking while it does. Lets one misbehaving generator leave every
    /// other generator's behaviour unchanged.
    static HELD_UNWINDS: Cell<usize> = const { Cell::new(0) };
}

thread_local! {
    /// True while the code running is inside a coroutine that was resumed
    /// while the thread was already panicking (from a destructor during an
    /// unwind, say): that panic is not the coroutine's own. Set and restored
    /// only on that rare path: a coroutine resumed while the thread is not
    /// panicking finds it false already.
    static ENTERED_PANICKING: Cell<bool> = const { Cell::new(false) };
}

/// Marks the coroutine about to be resumed as entered by code that is
/// panicking, until the resume returns (or unwinds). Kept out of the resume
/// path itself: the switch must stay a single inlined call, since every
/// call level across it costs a mispredicted return.
struct EnteredPanicking(bool);

impl EnteredPanicking {
    #[cold]
    #[inline(never)]
    fn enter() -> EnteredPanicking {
        EnteredPanicking(ENTERED_PANICKING.try_with(|e| e.replace(true)).unwrap_or(false))
    }
}

impl Drop for EnteredPanicking {
    #[cold]
    fn drop(&mut self) {
        let _ = ENTERED_PANICKING.try_with(|e| e.set(self.0));
    }
}

/// Whether code running now is unwinding from a panic of its own, as far as
/// this thread's generators can tell: the thread is panicking, not only
/// because some generator holds an unwind suspended or abandoned, and not
/// only because the coroutine running was resumed by code that was already
/// panicking.
///
/// In those two cases a panic that really is in progress here cannot be
/// told apart, and this says false.
#[inline]
pub(crate) fn unwinding() -> bool {
    std::thread::panicking()
        && !ENTERED_PANICKING.try_with(Cell::get).unwrap_or(false)
        && HELD_UNWINDS.try_with(Cell::get).unwrap_or(0) == 0
}

/// A Python-style generator running on its own stack.
///
/// `Y` is what the body yields, `S` what [`send`](Generator::send) delivers
/// to the suspended yield, `R` what the body returns. See the
/// [module docs](self) for the state machine and the Python mapping.
///
/// # Examples
///
/// A running average fed by `send`:
///
/// ```
/// use gencoro::{Generator, Step};
///
/// let averager = Generator::new(|co| {
///     let (mut total, mut count) = (0.0, 0.0);
///     let mut average = f64::NAN;
///     loop {
///         let value: f64 = co.yield_(average);
///         total += value;
///         count += 1.0;
///         average = total / count;
///     }
/// });
/// averager.start().unwrap(); // run to the first yield
/// assert_eq!(averager.send(10.0).unwrap(), Step::Yielded(10.0));
/// assert_eq!(averager.send(30.0).unwrap(), Step::Yielded(20.0));
/// ```
pub struct Generator<Y, S = (), R = ()> {
    state: Cell<State>,
    /// The body while `Created`, the coroutine while `Running` or
    /// `Suspended`. Touched only while the state says it is not running.
    co: UnsafeCell<Slot<Y, S, R>>,
    /// Usable bytes of the stack it runs on, once started.
    stack_size: usize,
    /// Highest address of the stack once started, for prefetching its hot
    /// top; 0 before.
    stack_top: Cell<usize>,
    /// The return value caught by the `Iterator` implementation.
    returned: Cell<Option<R>>,
    /// The body yielded from a destructor while `close` was unwinding it:
    /// it is suspended in the middle of an unwind, which cannot be
    /// interrupted by another one.
    mid_unwind: Cell<bool>,
    /// The body's last yield came while the thread was panicking, whatever
    /// the reason: it may be suspended inside an unwind of its own.
    yielded_panicking: Cell<bool>,
}

impl<Y: 'static, S: 'static, R: 'static> Generator<Y, S, R> {
    /// Makes a generator with the default stack size. None of the body runs
    /// until the first [`start`](Self::start) or [`resume`](Self::resume),
    /// and no stack is taken until then either: a created generator costs
    /// only its record (the body closure sits in it, boxed if large).
    ///
    /// Never fails: a missing stack is reported by the first
    /// [`start`](Self::start) or [`resume`](Self::resume), as
    /// [`ResumeError::NoStack`].
    pub fn new<F>(body: F) -> Self
    where
        F: FnOnce(&Yielder<Y, S>) -> R + 'static,
    {
        match Self::try_new(body) {
            Ok(g) => g,
            Err(e) => panic!("gencoro: cannot create a generator: {e}"),
        }
    }

    /// Makes a generator with the default stack size.
    ///
    /// # Errors
    ///
    /// None with the default size: kept for symmetry with
    /// [`GeneratorBuilder::build`], which reports a stack size that cannot
    /// be had. The stack itself is taken when the generator first starts,
    /// so running out of stacks is reported then, by
    /// [`start`](Self::start) as [`ResumeError::NoStack`].
    pub fn try_new<F>(body: F) -> Result<Self, StackError>
    where
        F: FnOnce(&Yielder<Y, S>) -> R + 'static,
    {
        Self::with_stack_size(DEFAULT_STACK_SIZE, body)
    }

    #[inline]
    fn with_stack_size<F>(stack_size: usize, body: F) -> Result<Self, StackError>
    where
        F: FnOnce(&Yielder<Y, S>) -> R + 'static,
    {
        Ok(Generator {
            state: Cell::new(State::Created),
            co: UnsafeCell::new(Slot::Unstarted(Unstarted::new(body))),
            stack_size: stack::round_size(stack_size)?,
            stack_top: Cell::new(0),
            returned: Cell::new(None),
            mid_unwind: Cell::new(false),
            yielded_panicking: Cell::new(false),
        })
    }
}

impl<Y, S, R> Generator<Y, S, R> {
    /// The current state. Python: `inspect.getgeneratorstate(g)`.
    #[inline]
    pub fn state(&self) -> State {
        self.state.get()
    }

    /// Whether the body is executing now. Python: `gi_running`.
    pub fn is_running(&self) -> bool {
        self.state.get() == State::Running
    }

    /// Whether the generator is paused at a yield. Python: `gi_suspended`.
    pub fn is_suspended(&self) -> bool {
        self.state.get() == State::Suspended
    }

    /// Whether the generator has finished. Python: `gi_frame is None`.
    pub fn is_closed(&self) -> bool {
        self.state.get() == State::Closed
    }

    /// Usable bytes of the stack this generator runs on (or will run on:
    /// a created generator holds no stack yet).
    pub fn stack_size(&self) -> usize {
        self.stack_size
    }

    /// Starts loading the top of the stack, where a suspended body's frames
    /// live, into cache: a scheduler calls this for the generator it will
    /// resume next, so the resume does not wait on memory.
    #[inline]
    pub(crate) fn prefetch(&self) {
        let top = self.stack_top.get();
        if self.state.get() == State::Suspended && top != 0 {
            stack::prefetch(top - HOT_STACK_BYTES, HOT_STACK_BYTES);
        }
    }

    /// Runs a created generator up to its first yield or its return.
    /// Python: `next(g)` on a new generator.
    ///
    /// # Errors
    ///
    /// [`ResumeError::Started`] if the generator already started,
    /// [`ResumeError::Running`] if it is running, [`ResumeError::Closed`] if
    /// it finished.
    /// [`ResumeError::NoStack`] if no stack could be had; the generator is
    /// then left as it was.
    #[inline(always)]
    pub fn start(&self) -> Result<Step<Y, R>, ResumeError> {
        match self.state.get() {
            State::Created => self.start_created().map_err(ResumeError::NoStack),
            State::Suspended => Err(ResumeError::Started),
            State::Running => Err(ResumeError::Running),
            State::Closed => Err(ResumeError::Closed),
        }
    }

    /// Delivers `value` as the result of the suspended yield and runs the
    /// body to its next yield or its return. Python: `g.send(value)`.
    ///
    /// # Errors
    ///
    /// The value comes back inside the error: [`SendError::NotStarted`] on a
    /// created generator (which is left unchanged), [`SendError::Running`],
    /// or [`SendError::Closed`].
    #[inline(always)]
    pub fn send(&self, value: S) -> Result<Step<Y, R>, SendError<S>> {
        match self.state.get() {
            State::Suspended => Ok(self.resume_unchecked(Input::Value(value))),
            State::Created => Err(SendError::NotStarted(value)),
            State::Running => Err(SendError::Running(value)),
            State::Closed => Err(SendError::Closed(value)),
        }
    }

    /// Python's `next(g)`: starts a created generator, or sends
    /// `S::default()` to a suspended one. For `S = ()` and `S = Option<T>`
    /// that default is exactly Python's `None`.
    ///
    /// # Errors
    ///
    /// [`ResumeError::Running`] or [`ResumeError::Closed`];
    /// [`ResumeError::NoStack`] if a created generator could not get a stack.
    #[inline]
    pub fn resume(&self) -> Result<Step<Y, R>, ResumeError>
    where
        S: Default,
    {
        self.resume_with(S::default)
    }

    /// Python's `next(g)` with `value` making what a suspended generator is
    /// resumed with. `value` is user code (a `Default` impl), which may
    /// reach this generator: it runs first, and the state is checked again
    /// through `send`.
    #[inline]
    fn resume_with(&self, value: impl FnOnce() -> S) -> Result<Step<Y, R>, ResumeError> {
        match self.state.get() {
            State::Created => self.start_created().map_err(ResumeError::NoStack),
            State::Suspended => self.send(value()).map_err(|e| match e {
                SendError::Running(_) => ResumeError::Running,
                // A generator that has started never goes back to `Created`.
                SendError::Closed(_) | SendError::NotStarted(_) => ResumeError::Closed,
            }),
            State::Running => Err(ResumeError::Running),
            State::Closed => Err(ResumeError::Closed),
        }
    }

    /// Unwinds a suspended generator so every destructor on its stack runs.
    /// Python: `g.close()`.
    ///
    /// * On a created generator: closes it without running any body code.
    /// * On a closed generator: does nothing.
    /// * On a suspended generator: raises [`GeneratorExit`] at the yield. If
    ///   it propagates, or the body catches it and returns, the generator is
    ///   closed and `close` returns `Ok(())`.
    ///
    /// # Errors
    ///
    /// [`CloseError::IgnoredExit`] if the body caught `GeneratorExit` and
    /// yielded again (it stays suspended there), or if a generator it was
    /// delegating to did. [`CloseError::Running`] if called from inside.
    ///
    /// # Panics
    ///
    /// A panic other than `GeneratorExit` raised by the body after it caught
    /// `GeneratorExit` propagates out of `close`, and the generator is
    /// closed. A panic escaping a destructor *during* the unwind aborts the
    /// process, as any panic in a destructor during unwinding does in Rust.
    pub fn close(&self) -> Result<(), CloseError> {
        match self.state.get() {
            State::Closed => Ok(()),
            State::Created => {
                self.discard_unstarted();
                Ok(())
            }
            State::Running => Err(CloseError::Running),
            State::Suspended if self.mid_unwind.get() => {
                self.abandon_suspended();
                Ok(())
            }
            State::Suspended => self.close_suspended(),
        }
    }

    /// Gives up on a suspended body without resuming it: the destructors
    /// still on its stack are skipped and the stack is leaked, never reused,
    /// so nothing on it dangles.
    ///
    /// An abandoned mid-unwind body keeps its unwind forever: it stays
    /// counted in [`HELD_UNWINDS`], and the thread keeps counting as
    /// panicking.
    fn abandon_suspended(&self) {
        // SAFETY: the state is `Suspended`, so the coroutine is not running
        // and no other reference to `co` exists.
        let slot = unsafe { &mut *self.co.get() };
        mem::forget(mem::replace(slot, Slot::Empty));
        self.mid_unwind.set(false);
        self.state.set(State::Closed);
    }

    /// Takes a stack, puts the body on it, and runs it to its first yield
    /// or its return. The caller has checked that the state is `Created`.
    /// Without a stack, nothing changes.
    #[inline(always)]
    pub(super) fn start_created(&self) -> Result<Step<Y, R>, StackError> {
        let stack = stack::Stack::allocate_rounded(self.stack_size)?;
        self.stack_top.set(stack.base().get());
        let slot = self.co.get();
        // SAFETY: the state is `Created`, so the coroutine is not running
        // and no other reference to the slot exists (see `resume_unchecked`).
        let Slot::Unstarted(body) = (unsafe { &mut *slot }) else {
            unreachable!("a created generator holds its body")
        };
        let (launch, buf) = (body.launch, body.buf.as_mut_ptr().cast::<u8>());
        // The body is read where it lies, not copied out first. Once
        // `launch` has read it, the slot must never be dropped as holding it:
        // if `launch` unwinds, the guard empties the slot.
        let emptied = EmptyOnUnwind(slot);
        // SAFETY: `Unstarted::new` wrote the body into `buf`, inside the
        // slot, and this is its only reader; the slot is ours alone (above),
        // and `launch` overwrites it with the coroutine, or unwinds and the
        // guard empties it.
        unsafe { launch(buf, PooledStack(stack), slot) };
        mem::forget(emptied);
        Ok(self.resume_unchecked(Input::Start))
    }

    /// Resumes the coroutine.
    ///
    /// The caller has checked that the state is `Created` and the body is on
    /// its stack (with `Input::Start`), or that it is `Suspended` (with any
    /// other input).
    #[inline(always)]
    fn resume_unchecked(&self, input: Input<S>) -> Step<Y, R> {
        let closing = matches!(input, Input::Close);
        if self.yielded_panicking.get() {
            // A suspended unwind, if any, goes on now, on this resume's path.
            self.release_held_unwind();
        }
        let entered_panicking = std::thread::panicking();
        self.state.set(State::Running);
        // If the body panics, the panic unwinds through here: mark the
        // generator closed and recycle its stack on the way out.
        let on_panic = ClosedOnUnwind(self);
        // SAFETY: the state was `Created` or `Suspended` and is now `Running`.
        // Every method checks the state before it touches `co`, so no other
        // reference to it exists until this call returns, and `Generator` is
        // `!Sync`, so no other thread can reach it.
        let Slot::Started(co) = (unsafe { &mut *self.co.get() }) else {
            unreachable!("a started generator owns its coroutine")
        };
        let entered = if entered_panicking { Some(EnteredPanicking::enter()) } else { None };
        let result = co.resume(input);
        drop(entered);
        std::mem::forget(on_panic);
        match result {
            CoroutineResult::Yield(y) => {
                self.state.set(State::Suspended);
                // A yield while the thread is panicking may come from a
                // destructor in the middle of an unwind, which must never be
                // unwound into again. (Usually one relaxed atomic load.)
                if std::thread::panicking() {
                    self.yielded_while_panicking(closing);
                }
                Step::Yielded(y)
            }
            CoroutineResult::Return(r) => {
                self.finish();
                Step::Returned(r)
            }
        }
    }

    /// The body yielded while the thread counts as panicking: decide whether
    /// the unwind in progress is this body's own, suspended in a destructor.
    ///
    /// The thread's panic state cannot say whose unwind it is, so the
    /// generators of a thread count the unwinds they hold ([`HELD_UNWINDS`]).
    /// With none held, the unwind is this body's own, or an outer panic
    /// this generator was resumed under: either way it is treated as its
    /// own, the safe choice. With some held, the panic state is presumed
    /// theirs, unless this resume was a `close`: a body that yields while
    /// being closed is misbehaving anyway, and treating it as mid-unwind
    /// only costs its own remaining destructors.
    #[cold]
    #[inline(never)]
    fn yielded_while_panicking(&self, closing: bool) {
        self.yielded_panicking.set(true);
        let held = HELD_UNWINDS.try_with(Cell::get).unwrap_or(0);
        if held == 0 || closing {
            self.mid_unwind.set(true);
            let _ = HELD_UNWINDS.try_with(|h| h.set(held + 1));
        }
    }

    /// A generator suspended mid-unwind is resumed: its unwind is no longer
    /// held aside.
    #[cold]
    #[inline(never)]
    fn release_held_unwind(&self) {
        self.yielded_panicking.set(false);
        if self.mid_unwind.replace(false) {
            let _ = HELD_UNWINDS.try_with(|h| h.set(h.get().saturating_sub(1)));
        }
    }

    /// Whether the body is suspended at a yield it made while the thread
    /// was panicking: possibly inside an unwind of its own, even where
    /// [`close`](Self::close) cannot tell. A caller that can resume it with
    /// a value (the runtime can always deliver a cancellation) should do
    /// that rather than close it, which would unwind into a destructor.
    pub(crate) fn suspended_while_panicking(&self) -> bool {
        self.state.get() == State::Suspended && self.yielded_panicking.get()
    }

    /// Marks the generator closed and returns a finished coroutine's stack
    /// to the pool.
    #[inline]
    fn finish(&self) {
        self.state.set(State::Closed);
        // SAFETY: the coroutine has just returned, so nothing is running on
        // it and no other reference to `co` exists (see `resume_unchecked`).
        let slot = unsafe { &mut *self.co.get() };
        if let Slot::Started(co) = mem::replace(slot, Slot::Empty) {
            if co.done() {
                drop(co.into_stack());
            }
        }
    }

    /// Closes a created generator: drops the body without running it. A
    /// panic from the body's captures propagates, after they are all
    /// dropped, once.
    fn discard_unstarted(&self) {
        // Closed first: a destructor of the body's captures that reaches this
        // generator again finds it closed, not half taken apart.
        self.state.set(State::Closed);
        // SAFETY: the state was `Created`, so the coroutine is not running and
        // no other reference to the slot exists.
        let slot = unsafe { &mut *self.co.get() };
        if let Slot::Unstarted(mut body) = mem::replace(slot, Slot::Empty) {
            // SAFETY: `Unstarted::new` wrote the body into `buf`, and taking
            // it out of the slot makes this its only use. If a destructor in
            // it panics, drop glue drops the rest while unwinding, and the
            // body is never touched again.
            unsafe { (body.discard)(body.buf.as_mut_ptr().cast::<u8>()) };
        }
    }

    #[cfg(panic = "abort")]
    fn close_suspended(&self) -> Result<(), CloseError> {
        // No unwinding: skip the destructors and never reuse the stack.
        self.abandon_suspended();
        Ok(())
    }

    #[cfg(not(panic = "abort"))]
    fn close_suspended(&self) -> Result<(), CloseError> {
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| self.resume_unchecked(Input::Close)));
        match outcome {
            // The body caught GeneratorExit and yielded: it stays suspended.
            // If it yielded from a destructor, the unwind itself is
            // suspended, and this thread counts as panicking until it ends.
            Ok(Step::Yielded(_)) => Err(CloseError::IgnoredExit),
            // It caught GeneratorExit and returned (3.11 discards the value).
            Ok(Step::Returned(_)) => Ok(()),
            Err(payload) if payload.is::<GeneratorExit>() => Ok(()),
            Err(payload) if payload.is::<IgnoredGeneratorExit>() => Err(CloseError::IgnoredExit),
            Err(payload) => panic::resume_unwind(payload),
        }
    }
}

impl<Y, T, U, E> Generator<Y, Result<T, E>, Result<U, E>> {
    /// Raises `error` at the suspended yield: the yield returns `Err(error)`.
    /// Python: `g.throw(error)`.
    ///
    /// * If the body handles it and yields, `throw` returns
    ///   [`Step::Yielded`].
    /// * If the body returns, or lets the error escape with `?`, `throw`
    ///   returns [`Step::Returned`] and the generator is closed.
    /// * On a created generator no body code runs: the generator is closed
    ///   and `throw` returns `Returned(Err(error))`.
    ///
    /// # Errors
    ///
    /// The error comes back inside: [`ThrowError::Closed`] on a finished
    /// generator, [`ThrowError::Running`] if called from inside.
    ///
    /// ```
    /// use gencoro::{Generator, Step};
    ///
    /// let g = Generator::new(|co| -> Result<&str, String> {
    ///     match co.yield_(1) {
    ///         Err(e) if e == "retry" => {}
    ///         other => { other?; }
    ///     }
    ///     co.yield_(2)?;
    ///     Ok("done")
    /// });
    /// assert_eq!(g.start().unwrap(), Step::Yielded(1));
    /// assert_eq!(g.throw("retry".to_string()).unwrap(), Step::Yielded(2));
    /// assert_eq!(g.throw("fatal".to_string()).unwrap(), Step::Returned(Err("fatal".to_string())));
    /// ```
    pub fn throw(&self, error: E) -> Result<Step<Y, Result<U, E>>, ThrowError<E>> {
        match self.state.get() {
            State::Suspended => Ok(self.resume_unchecked(Input::Value(Err(error)))),
            State::Created => {
                self.discard_unstarted();
                Ok(Step::Returned(Err(error)))
            }
            State::Running => Err(ThrowError::Running(error)),
            State::Closed => Err(ThrowError::Closed(error)),
        }
    }
}

impl<Y, T: Default, E, U> Generator<Y, Result<T, E>, Result<U, E>> {
    /// Python's `next(g)` for a generator that accepts thrown errors: starts
    /// a created generator, or sends `Ok(T::default())` (Python's `None`)
    /// to a suspended one. [`resume`](Self::resume) needs `S: Default`,
    /// which `Result` is not.
    ///
    /// ```
    /// use gencoro::{Generator, Step};
    ///
    /// let g = Generator::new(|co| -> Result<(), String> {
    ///     let got: Option<u32> = co.yield_(1)?;
    ///     assert_eq!(got, None);
    ///     co.yield_(2)?;
    ///     Ok(())
    /// });
    /// assert_eq!(g.resume_ok().unwrap(), Step::Yielded(1));
    /// assert_eq!(g.resume_ok().unwrap(), Step::Yielded(2));
    /// assert_eq!(g.throw("stop".to_string()).unwrap(), Step::Returned(Err("stop".to_string())));
    /// ```
    ///
    /// # Errors
    ///
    /// As [`resume`](Self::resume).
    pub fn resume_ok(&self) -> Result<Step<Y, Result<U, E>>, ResumeError> {
        self.resume_with(|| Ok(T::default()))
    }
}

impl<Y, R> Generator<Y, (), R> {
    /// The return value, once iteration has finished it. The
    /// [`Iterator`] implementation keeps it here; it can be taken once.
    pub fn take_return(&self) -> Option<R> {
        self.returned.take()
    }
}

/// A generator whose send type is `()` iterates over its yields. When the
/// body returns, iteration ends and the return value waits in
/// [`take_return`](Generator::take_return).
///
/// ```
/// use gencoro::Generator;
///
/// let mut countdown = Generator::new(|co| {
///     for i in (1..=3).rev() {
///         co.yield_(i);
///     }
///     "liftoff"
/// });
/// assert_eq!(countdown.by_ref().collect::<Vec<_>>(), [3, 2, 1]);
/// assert_eq!(countdown.take_return(), Some("liftoff"));
/// ```
impl<Y, R> Iterator for Generator<Y, (), R> {
    type Item = Y;

    /// # Panics
    ///
    /// If a created generator cannot get a stack (an allocation failure,
    /// like `Vec`'s).
    fn next(&mut self) -> Option<Y> {
        match self.resume() {
            Ok(Step::Yielded(y)) => Some(y),
            Ok(Step::Returned(r)) => {
                self.returned.set(Some(r));
                None
            }
            Err(ResumeError::NoStack(e)) => panic!("gencoro: cannot start a generator: {e}"),
            Err(_) => None,
        }
    }
}

impl<Y, S, R> Drop for Generator<Y, S, R> {
    fn drop(&mut self) {
        match self.state.get() {
            State::Created if std::thread::panicking() => {
                // A second panic escaping a destructor while unwinding would
                // abort: report it instead.
                if let Err(payload) =
                    panic::catch_unwind(AssertUnwindSafe(|| self.discard_unstarted()))
                {
                    eprintln!(
                        "gencoro: dropping an unstarted generator's captures panicked during a panic: {}",
                        panic_message(&*payload)
                    );
                }
            }
            State::Created => self.discard_unstarted(),
            State::Suspended => self.close_on_drop(),
            State::Running | State::Closed => {}
        }
    }
}

impl<Y, S, R> Generator<Y, S, R> {
    fn close_on_drop(&self) {
        for _ in 0..DROP_CLOSE_ATTEMPTS {
            if self.mid_unwind.get() {
                eprintln!(
                    "gencoro: a dropped generator yielded from a destructor while being closed; \
                     its remaining destructors are skipped and its stack is leaked"
                );
                self.abandon_suspended();
                return;
            }
            let closed = if std::thread::panicking() {
                // A second panic escaping a destructor while unwinding would
                // abort: report it instead, as Python's unraisable hook does.
                match panic::catch_unwind(AssertUnwindSafe(|| self.close())) {
                    Ok(result) => result,
                    Err(payload) => {
                        eprintln!(
                            "gencoro: a generator panicked while being dropped during a panic: {}",
                            panic_message(&*payload)
                        );
                        Ok(())
                    }
                }
            } else {
                self.close()
            };
            if closed.is_ok() || self.state.get() == State::Closed {
                return;
            }
        }
        eprintln!(
            "gencoro: a dropped generator ignored GeneratorExit {DROP_CLOSE_ATTEMPTS} times; \
             leaking its stack"
        );
        // SAFETY: the state is `Suspended`, so no other reference exists.
        let slot = unsafe { &mut *self.co.get() };
        mem::forget(mem::replace(slot, Slot::Empty));
        self.state.set(State::Closed);
    }
}

/// The text of a panic payload, for diagnostics.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "<non-string panic payload>"
    }
}

/// Marks a generator closed if a resume unwinds.
struct ClosedOnUnwind<'a, Y, S, R>(&'a Generator<Y, S, R>);

impl<Y, S, R> Drop for ClosedOnUnwind<'_, Y, S, R> {
    #[cold]
    fn drop(&mut self) {
        self.0.finish();
    }
}

impl<Y, S, R> fmt::Debug for Generator<Y, S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Generator")
            .field("state", &self.state.get())
            .field("stack_size", &self.stack_size)
            .finish_non_exhaustive()
    }
}

/// Makes generators with non-default settings.
///
/// ```
/// use gencoro::{Generator, GeneratorBuilder, Step};
///
/// let g: Generator<i32> = GeneratorBuilder::new()
///     .stack_size(64 * 1024)
///     .build(|co| { co.yield_(1); })
///     .expect("a stack could be mapped");
/// assert_eq!(g.stack_size(), 64 * 1024);
/// assert_eq!(g.start().unwrap(), Step::Yielded(1));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct GeneratorBuilder {
    stack_size: usize,
}

impl Default for GeneratorBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl GeneratorBuilder {
    /// Default settings: a [`DEFAULT_STACK_SIZE`] stack.
    pub fn new() -> Self {
        GeneratorBuilder { stack_size: DEFAULT_STACK_SIZE }
    }

    /// Usable stack bytes, rounded up to whole pages and to at least
    /// [`stack::MIN_STACK_SIZE`]. Stacks of each size are pooled separately.
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = bytes;
        self
    }

    /// Makes the generator. Its stack is taken when it first starts (see
    /// [`Generator::new`]).
    ///
    /// # Errors
    ///
    /// [`StackError::SizeOverflow`] if the stack size cannot be had.
    pub fn build<Y, S, R, F>(self, body: F) -> Result<Generator<Y, S, R>, StackError>
    where
        Y: 'static,
        S: 'static,
        R: 'static,
        F: FnOnce(&Yielder<Y, S>) -> R + 'static,
    {
        Generator::with_stack_size(self.stack_size, body)
    }
}
