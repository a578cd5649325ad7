//! Queues between tasks. Python: `asyncio.Queue`, `LifoQueue`,
//! `PriorityQueue` (`Lib/asyncio/queues.py`), with Python 3.13's
//! `shutdown`.
//!
//! One type, [`GenericQueue`], holds the waiting machinery; an [`Order`]
//! decides which item leaves first. The three orders have an alias each:
//! [`Queue`] (first in, first out), [`LifoQueue`] (a stack) and
//! [`PriorityQueue`] (smallest first, equal items in insertion order).
//!
//! # How waiting works (CPython's `queues.py`)
//!
//! A task that cannot go on appends itself to the queue's getters or
//! putters and parks (where Python appends a new future and awaits it).
//! Whoever frees a slot or adds an item wakes the first waiter that is
//! still pending (Python: `_wakeup_next`); the woken task then
//! runs through the ready queue and *checks again*. So wake-ups are first in,
//! first out, but an item is not handed to the woken getter: a task that
//! runs before it may take the item first (say with
//! [`try_get`](GenericQueue::try_get)), and then the woken getter waits
//! again, at the back.
//!
//! A waiter that is cancelled takes itself out of the line. If it had been
//! woken already (the wake-up and the cancellation arrived in the same loop
//! iteration), it passes the wake-up on to the next waiter, so no item and no
//! free slot is left without a taker. The item it was woken for never left
//! the queue: it is still where it was, at the front for a FIFO queue.
//!
//! # Cost
//!
//! [`try_put`](GenericQueue::try_put) and [`try_get`](GenericQueue::try_get)
//! never allocate beyond the item store's own growth, and neither does a
//! wait: the entry a waiting task queues is the task itself (one `Rc` and
//! its suspension's token), in a line that keeps its capacity.
//!
//! # Re-entrancy
//!
//! No user code runs while the queue holds its internal borrow, with one
//! exception: a [`PriorityQueue`] compares items with `T`'s [`Ord`] while
//! it holds them. An `Ord` implementation that uses the same queue panics.
//! Items dropped by [`shutdown`](GenericQueue::shutdown) are dropped after
//! the borrow has ended.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

use crate::runtime::Error;
use crate::runtime::park::{Park, ParkState, Parked};

// ---------------------------------------------------------------------------
// Orders
// ---------------------------------------------------------------------------

mod sealed {
    /// Where a queue keeps its items. Python: the overridable `_init`,
    /// `_put`, `_get` and `qsize` of `asyncio.Queue`.
    pub trait Store<T> {
        fn new() -> Self;
        fn push(&mut self, item: T);
        fn pop(&mut self) -> Option<T>;
        fn len(&self) -> usize;
        /// Takes every item out, in no particular order, comparing none.
        fn take_all(&mut self) -> Vec<T>;
        /// A panic raised by the items' own code (a `PriorityQueue`'s
        /// `Ord`) during the last `push` or `pop`, held back so the queue
        /// can finish its bookkeeping before it goes on.
        fn take_panic(&mut self) -> Option<super::Payload> {
            None
        }
        /// Python's class name, for `Debug`.
        const NAME: &'static str;
        /// What a task waiting in each line waits on, for reports:
        /// `<NAME>.get`, `<NAME>.put`, `<NAME>.join`.
        const WAITS: [&'static str; 3];
    }
}

/// A panic's payload.
type Payload = Box<dyn std::any::Any + Send>;

thread_local! {
    /// The first panic of a `PriorityQueue` item's `Ord` during the heap
    /// operation under way on this thread.
    static ORD_PANIC: std::cell::Cell<Option<Payload>> = const { std::cell::Cell::new(None) };
}

/// Which item a [`GenericQueue`] hands out first: [`Fifo`], [`Lifo`] or
/// [`Priority`]. Sealed: these three are all there is.
pub trait Order<T>: sealed::Store<T> {}

/// First in, first out: the order of [`Queue`]. Python: `asyncio.Queue`.
pub struct Fifo<T>(VecDeque<T>);

/// Last in, first out: the order of [`LifoQueue`]. Python:
/// `asyncio.LifoQueue`.
pub struct Lifo<T>(Vec<T>);

/// Smallest first, equal items in insertion order: the order of
/// [`PriorityQueue`]. Python: `asyncio.PriorityQueue` (whose heap does not
/// keep equal items in insertion order; Python programs add a counter to
/// their entries for that, which this order does for them).
pub struct Priority<T> {
    heap: BinaryHeap<Ranked<T>>,
    next_seq: u64,
    /// See [`sealed::Store::take_panic`].
    panicked: Option<Payload>,
}

impl<T> sealed::Store<T> for Fifo<T> {
    const NAME: &'static str = "Queue";
    const WAITS: [&'static str; 3] = ["Queue.get", "Queue.put", "Queue.join"];

    fn new() -> Self {
        Fifo(VecDeque::new())
    }

    fn push(&mut self, item: T) {
        self.0.push_back(item);
    }

    fn pop(&mut self) -> Option<T> {
        self.0.pop_front()
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn take_all(&mut self) -> Vec<T> {
        self.0.drain(..).collect()
    }
}

impl<T> Order<T> for Fifo<T> {}

impl<T> sealed::Store<T> for Lifo<T> {
    const NAME: &'static str = "LifoQueue";
    const WAITS: [&'static str; 3] = ["LifoQueue.get", "LifoQueue.put", "LifoQueue.join"];

    fn new() -> Self {
        Lifo(Vec::new())
    }

    fn push(&mut self, item: T) {
        self.0.push(item);
    }

    fn pop(&mut self) -> Option<T> {
        self.0.pop()
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn take_all(&mut self) -> Vec<T> {
        std::mem::take(&mut self.0)
    }
}

impl<T> Order<T> for Lifo<T> {}

/// An item of a [`Priority`] store with its insertion number, ordered so
/// that the max-heap pops the smallest item, and the earliest of equals.
struct Ranked<T> {
    item: T,
    seq: u64,
}

impl<T: Ord> Ord for Ranked<T> {
    /// The items' order, then insertion order. A panic in the items' `Ord`
    /// does not unwind through the heap, which would drop an item it holds
    /// in its hands (`BinaryHeap::pop`) or leave the queue's counts behind:
    /// it is held in `ORD_PANIC`, this comparison falls back to insertion
    /// order, and the queue raises the panic again once it is consistent.
    fn cmp(&self, other: &Self) -> Ordering {
        let items = panic::catch_unwind(AssertUnwindSafe(|| other.item.cmp(&self.item)))
            .unwrap_or_else(|payload| {
                let first = ORD_PANIC.take().unwrap_or(payload);
                ORD_PANIC.set(Some(first));
                Ordering::Equal
            });
        items.then_with(|| other.seq.cmp(&self.seq))
    }
}

impl<T: Ord> PartialOrd for Ranked<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T: Ord> PartialEq for Ranked<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<T: Ord> Eq for Ranked<T> {}

impl<T: Ord> sealed::Store<T> for Priority<T> {
    const NAME: &'static str = "PriorityQueue";
    const WAITS: [&'static str; 3] =
        ["PriorityQueue.get", "PriorityQueue.put", "PriorityQueue.join"];

    fn new() -> Self {
        Priority { heap: BinaryHeap::new(), next_seq: 0, panicked: None }
    }

    /// A panicking `Ord` leaves the item in the heap, in an order that is
    /// no longer meaningful, and the panic for the queue to raise.
    fn push(&mut self, item: T) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Ranked { item, seq });
        self.note_panic();
    }

    /// A panicking `Ord` puts the item back and takes nothing: nothing is
    /// lost, and the queue raises the panic.
    fn pop(&mut self) -> Option<T> {
        let ranked = self.heap.pop()?;
        if !self.note_panic() {
            return Some(ranked.item);
        }
        self.heap.push(ranked);
        self.note_panic();
        None
    }

    fn len(&self) -> usize {
        self.heap.len()
    }

    fn take_all(&mut self) -> Vec<T> {
        std::mem::take(&mut self.heap).into_vec().into_iter().map(|r| r.item).collect()
    }

    fn take_panic(&mut self) -> Option<Payload> {
        self.panicked.take()
    }
}

impl<T> Priority<T> {
    /// Moves a panic the last heap operation held back into the store;
    /// whether there was one.
    fn note_panic(&mut self) -> bool {
        match ORD_PANIC.take() {
            Some(payload) => {
                self.panicked.get_or_insert(payload);
                true
            }
            None => false,
        }
    }
}

impl<T: Ord> Order<T> for Priority<T> {}

impl<T> fmt::Debug for Fifo<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fifo").field("len", &self.0.len()).finish()
    }
}

impl<T> fmt::Debug for Lifo<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lifo").field("len", &self.0.len()).finish()
    }
}

impl<T> fmt::Debug for Priority<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Priority").field("len", &self.heap.len()).finish()
    }
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// The queue was shut down. Python 3.13: `asyncio.QueueShutDown`.
///
/// This is what an [`Error`] carries when a [`PutError`], [`GetError`] or
/// [`TryPutError`] / [`TryGetError`] of a shut-down queue is turned into
/// one with `?`: `e.downcast_ref::<QueueShutDown>()` recognises it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueShutDown;

/// The queue was full. Python: `asyncio.QueueFull`. What an [`Error`] made
/// from [`TryPutError::Full`] carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull;

/// The queue was empty. Python: `asyncio.QueueEmpty`. What an [`Error`]
/// made from [`TryGetError::Empty`] carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueEmpty;

/// [`task_done`](GenericQueue::task_done) was called more often than items
/// were put. Python: `ValueError('task_done() called too many times')`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskDoneError;

impl fmt::Display for QueueShutDown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the queue is shut down")
    }
}

impl fmt::Display for QueueFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the queue is full")
    }
}

impl fmt::Display for QueueEmpty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the queue is empty")
    }
}

impl fmt::Display for TaskDoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("task_done() called too many times")
    }
}

impl std::error::Error for QueueShutDown {}
impl std::error::Error for QueueFull {}
impl std::error::Error for QueueEmpty {}
impl std::error::Error for TaskDoneError {}

impl From<TaskDoneError> for Error {
    fn from(e: TaskDoneError) -> Error {
        Error::new(e)
    }
}

/// Why [`try_put`](GenericQueue::try_put) did not put; the value comes
/// back.
pub enum TryPutError<T> {
    /// The queue is full. Python: `QueueFull`.
    Full(T),
    /// The queue is shut down. Python 3.13: `QueueShutDown`.
    ShutDown(T),
}

/// Why [`try_get`](GenericQueue::try_get) got nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryGetError {
    /// The queue is empty. Python: `QueueEmpty`.
    Empty,
    /// The queue is shut down and empty (or was shut down with
    /// `immediate`). Python 3.13: `QueueShutDown`.
    ShutDown,
}

/// Why [`put`](GenericQueue::put) did not put; the value comes back.
pub enum PutError<T> {
    /// The queue is shut down, or was shut down while the putter waited.
    /// Python 3.13: `QueueShutDown`.
    ShutDown(T),
    /// The wait for a free slot failed: the task was cancelled (the error
    /// is the cancellation), or the wait was refused (outside a task, or
    /// while unwinding).
    Wait(T, Error),
}

/// Why [`get`](GenericQueue::get) got nothing.
#[derive(Debug, Clone)]
pub enum GetError {
    /// The queue is shut down and empty, or was shut down with `immediate`.
    /// Python 3.13: `QueueShutDown`.
    ShutDown,
    /// The wait for an item failed: the task was cancelled (the error is
    /// the cancellation), or the wait was refused (outside a task, or while
    /// unwinding).
    Wait(Error),
}

impl<T> TryPutError<T> {
    /// The value that was not put.
    pub fn into_inner(self) -> T {
        match self {
            TryPutError::Full(v) | TryPutError::ShutDown(v) => v,
        }
    }

    /// Whether the queue was full.
    pub fn is_full(&self) -> bool {
        matches!(self, TryPutError::Full(_))
    }

    /// Whether the queue is shut down.
    pub fn is_shut_down(&self) -> bool {
        matches!(self, TryPutError::ShutDown(_))
    }
}

impl TryGetError {
    /// Whether the queue was empty (and not shut down).
    pub fn is_empty(&self) -> bool {
        *self == TryGetError::Empty
    }

    /// Whether the queue is shut down.
    pub fn is_shut_down(&self) -> bool {
        *self == TryGetError::ShutDown
    }
}

impl<T> PutError<T> {
    /// The value that was not put.
    pub fn into_inner(self) -> T {
        match self {
            PutError::ShutDown(v) | PutError::Wait(v, _) => v,
        }
    }

    /// Whether the queue is shut down.
    pub fn is_shut_down(&self) -> bool {
        matches!(self, PutError::ShutDown(_))
    }

    /// Whether the waiting task was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, PutError::Wait(_, e) if e.is_cancelled())
    }
}

impl GetError {
    /// Whether the queue is shut down.
    pub fn is_shut_down(&self) -> bool {
        matches!(self, GetError::ShutDown)
    }

    /// Whether the waiting task was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, GetError::Wait(e) if e.is_cancelled())
    }
}

impl<T> fmt::Debug for TryPutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryPutError::Full(_) => f.write_str("Full(..)"),
            TryPutError::ShutDown(_) => f.write_str("ShutDown(..)"),
        }
    }
}

impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::ShutDown(_) => f.write_str("ShutDown(..)"),
            PutError::Wait(_, e) => f.debug_tuple("Wait").field(&"..").field(e).finish(),
        }
    }
}

impl<T> fmt::Display for TryPutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryPutError::Full(_) => fmt::Display::fmt(&QueueFull, f),
            TryPutError::ShutDown(_) => fmt::Display::fmt(&QueueShutDown, f),
        }
    }
}

impl fmt::Display for TryGetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryGetError::Empty => fmt::Display::fmt(&QueueEmpty, f),
            TryGetError::ShutDown => fmt::Display::fmt(&QueueShutDown, f),
        }
    }
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::ShutDown(_) => fmt::Display::fmt(&QueueShutDown, f),
            PutError::Wait(_, e) => write!(f, "put: {e}"),
        }
    }
}

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetError::ShutDown => fmt::Display::fmt(&QueueShutDown, f),
            GetError::Wait(e) => write!(f, "get: {e}"),
        }
    }
}

impl<T> std::error::Error for TryPutError<T> {}
impl std::error::Error for TryGetError {}

impl<T> std::error::Error for PutError<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PutError::Wait(_, e) => Some(e),
            PutError::ShutDown(_) => None,
        }
    }
}

impl std::error::Error for GetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            GetError::Wait(e) => Some(e),
            GetError::ShutDown => None,
        }
    }
}

/// For `?` in a task: the value is dropped; a shut-down queue becomes an
/// error carrying [`QueueFull`] or [`QueueShutDown`].
impl<T> From<TryPutError<T>> for Error {
    fn from(e: TryPutError<T>) -> Error {
        match e {
            TryPutError::Full(_) => Error::new(QueueFull),
            TryPutError::ShutDown(_) => Error::new(QueueShutDown),
        }
    }
}

/// For `?` in a task: an error carrying [`QueueEmpty`] or
/// [`QueueShutDown`].
impl From<TryGetError> for Error {
    fn from(e: TryGetError) -> Error {
        match e {
            TryGetError::Empty => Error::new(QueueEmpty),
            TryGetError::ShutDown => Error::new(QueueShutDown),
        }
    }
}

/// For `?` in a task: the value is dropped; a cancellation stays the same
/// cancellation, and a shut-down queue becomes an error carrying
/// [`QueueShutDown`].
impl<T> From<PutError<T>> for Error {
    fn from(e: PutError<T>) -> Error {
        match e {
            PutError::ShutDown(_) => Error::new(QueueShutDown),
            PutError::Wait(_, e) => e,
        }
    }
}

/// For `?` in a task: a cancellation stays the same cancellation, and a
/// shut-down queue becomes an error carrying [`QueueShutDown`].
impl From<GetError> for Error {
    fn from(e: GetError) -> Error {
        match e {
            GetError::ShutDown => Error::new(QueueShutDown),
            GetError::Wait(e) => e,
        }
    }
}

// ---------------------------------------------------------------------------
// The queue
// ---------------------------------------------------------------------------

/// A first-in, first-out queue. Python: `asyncio.Queue`.
///
/// ```
/// use std::time::Duration;
/// use gencoro::runtime::{self, Builder, Clock};
/// use gencoro::sync::Queue;
///
/// let got = Builder::new().clock(Clock::virtual_time()).run(|| {
///     let queue = Queue::bounded(1);
///     let producer = {
///         let queue = queue.clone();
///         runtime::spawn(move || {
///             for i in 0..3 {
///                 queue.put(i)?; // waits while the queue is full
///             }
///             Ok(())
///         })
///     };
///     let mut got = Vec::new();
///     for _ in 0..3 {
///         runtime::sleep(Duration::from_secs(1))?;
///         got.push(queue.get()?);
///     }
///     producer.join()?;
///     Ok(got)
/// });
/// assert_eq!(got.unwrap(), [0, 1, 2]);
/// ```
pub type Queue<T> = GenericQueue<T, Fifo<T>>;

/// A last-in, first-out queue (a stack). Python: `asyncio.LifoQueue`.
///
/// ```
/// use gencoro::sync::LifoQueue;
///
/// let stack = LifoQueue::new();
/// for i in 1..=3 {
///     stack.try_put(i).unwrap();
/// }
/// assert_eq!(stack.try_get(), Ok(3));
/// assert_eq!(stack.try_get(), Ok(2));
/// ```
pub type LifoQueue<T> = GenericQueue<T, Lifo<T>>;

/// A queue that hands out its smallest item first; equal items leave in the
/// order they came in. Python: `asyncio.PriorityQueue`.
///
/// `T`'s [`Ord`] runs while the queue holds its items; it must not use the
/// same queue. If it panics, nothing is lost: the operation finishes first
/// (a put leaves the item queued, counted, and a getter woken; a get takes
/// nothing), then the panic goes on to the caller. The order of the items
/// already queued is no longer meaningful after that, as with any
/// [`BinaryHeap`] whose `Ord` misbehaves.
///
/// ```
/// use gencoro::sync::PriorityQueue;
///
/// let jobs = PriorityQueue::new();
/// for job in [(2, "write"), (1, "read"), (2, "close")] {
///     jobs.try_put(job).unwrap();
/// }
/// assert_eq!(jobs.try_get(), Ok((1, "read")));
/// assert_eq!(jobs.try_get(), Ok((2, "close")));
/// ```
pub type PriorityQueue<T> = GenericQueue<T, Priority<T>>;

/// The queue behind [`Queue`], [`LifoQueue`] and [`PriorityQueue`]; `O` is
/// its [`Order`]. Use it through those aliases.
///
/// Cheap to clone: all clones are the same queue, so producers and
/// consumers can each hold one. A queue is not bound to a loop, but each
/// wait belongs to the loop it was made on, as in Python.
///
/// Dropping the last handle drops the items still queued.
pub struct GenericQueue<T, O: Order<T>> {
    state: Rc<RefCell<State<T, O>>>,
}

struct State<T, O> {
    items: O,
    /// 0: unbounded.
    maxsize: usize,
    /// Python: `_getters`, `_putters`: futures of the waiting tasks; here
    /// the parked tasks themselves.
    getters: VecDeque<Parked>,
    putters: VecDeque<Parked>,
    /// Python: the waiters of the `_finished` event, which `join` waits on.
    joiners: VecDeque<Parked>,
    /// Python: `_unfinished_tasks`.
    unfinished: usize,
    /// Python 3.13: `_is_shutdown`.
    shut_down: bool,
    _item: PhantomData<T>,
}

impl<T, O: Order<T>> State<T, O> {
    fn is_full(&self) -> bool {
        self.maxsize != 0 && self.items.len() >= self.maxsize
    }

    fn line(&mut self, line: Line) -> &mut VecDeque<Parked> {
        match line {
            Line::Getters => &mut self.getters,
            Line::Putters => &mut self.putters,
            Line::Joiners => &mut self.joiners,
        }
    }
}

/// Which line of waiters.
#[derive(Clone, Copy)]
enum Line {
    Getters,
    Putters,
    Joiners,
}

impl<T, O: Order<T>> Clone for GenericQueue<T, O> {
    fn clone(&self) -> Self {
        GenericQueue { state: self.state.clone() }
    }
}

impl<T, O: Order<T>> Default for GenericQueue<T, O> {
    fn default() -> Self {
        GenericQueue::new()
    }
}

impl<T, O: Order<T>> GenericQueue<T, O> {
    /// An unbounded queue. Python: `Queue()` (`maxsize=0`).
    pub fn new() -> Self {
        Self::with_limit(0)
    }

    /// A queue that holds at most `maxsize` items: [`put`](Self::put)
    /// waits while it is full. Python: `Queue(maxsize)`.
    ///
    /// # Panics
    ///
    /// If `maxsize` is 0. (Python's `maxsize=0` means unbounded: that is
    /// [`new`](Self::new).)
    pub fn bounded(maxsize: usize) -> Self {
        assert!(maxsize > 0, "a bounded queue holds at least one item; Queue::new() is unbounded");
        Self::with_limit(maxsize)
    }

    fn with_limit(maxsize: usize) -> Self {
        GenericQueue {
            state: Rc::new(RefCell::new(State {
                items: O::new(),
                maxsize,
                getters: VecDeque::new(),
                putters: VecDeque::new(),
                joiners: VecDeque::new(),
                unfinished: 0,
                shut_down: false,
                _item: PhantomData,
            })),
        }
    }

    /// How many items are queued. Python: `qsize()`.
    pub fn len(&self) -> usize {
        self.state.borrow().items.len()
    }

    /// Whether no item is queued. Python: `empty()`.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the queue holds `maxsize` items; never for an unbounded
    /// queue. Python: `full()`.
    pub fn is_full(&self) -> bool {
        self.state.borrow().is_full()
    }

    /// The most items it holds; `None` if unbounded. Python: `maxsize`
    /// (where 0 means unbounded).
    pub fn maxsize(&self) -> Option<usize> {
        let maxsize = self.state.borrow().maxsize;
        (maxsize != 0).then_some(maxsize)
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    pub fn is_shut_down(&self) -> bool {
        self.state.borrow().shut_down
    }

    /// Puts `item` if there is room, without waiting, and wakes the first
    /// waiting getter. Python: `put_nowait(item)`.
    ///
    /// # Errors
    ///
    /// [`TryPutError::ShutDown`] after [`shutdown`](Self::shutdown), else
    /// [`TryPutError::Full`]; either way with `item`.
    pub fn try_put(&self, item: T) -> Result<(), TryPutError<T>> {
        let mut s = self.state.borrow_mut();
        if s.shut_down {
            return Err(TryPutError::ShutDown(item));
        }
        if s.is_full() {
            return Err(TryPutError::Full(item));
        }
        s.items.push(item);
        s.unfinished += 1;
        let waiting = !s.getters.is_empty();
        let panicked = s.items.take_panic();
        drop(s);
        if waiting {
            self.wake_next(Line::Getters);
        }
        if let Some(payload) = panicked {
            // The item is in, counted, and a getter woken: only then does
            // the items' own panic go on.
            panic::resume_unwind(payload);
        }
        Ok(())
    }

    /// Takes the next item if there is one, without waiting, and wakes the
    /// first waiting putter. Python: `get_nowait()`.
    ///
    /// # Errors
    ///
    /// [`TryGetError::ShutDown`] if the queue is empty and shut down, else
    /// [`TryGetError::Empty`] if it is empty.
    pub fn try_get(&self) -> Result<T, TryGetError> {
        let mut s = self.state.borrow_mut();
        let popped = s.items.pop();
        if let Some(payload) = s.items.take_panic() {
            // Nothing was taken: the item is back in the queue.
            drop(s);
            panic::resume_unwind(payload);
        }
        let Some(item) = popped else {
            return Err(if s.shut_down { TryGetError::ShutDown } else { TryGetError::Empty });
        };
        let waiting = !s.putters.is_empty();
        drop(s);
        if waiting {
            self.wake_next(Line::Putters);
        }
        Ok(item)
    }

    /// Puts `item`, waiting while the queue is full. Python:
    /// `await queue.put(item)`.
    ///
    /// Waiting putters are woken in the order they came, one per freed
    /// slot; a woken putter checks again, and waits again (at the back) if
    /// another task filled the slot first.
    ///
    /// # Cancellation
    ///
    /// Cancelling the task while it waits returns the cancellation with
    /// `item`: nothing was put. If a slot had already been promised to it,
    /// the slot goes to the next waiting putter. A put that did not wait
    /// cannot be cancelled: it has already put.
    ///
    /// # Errors
    ///
    /// [`PutError::ShutDown`] if the queue is shut down, before or during
    /// the wait; [`PutError::Wait`] if the wait was cancelled or refused (a
    /// full queue outside a task). Both hand `item` back.
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        let mut item = item;
        loop {
            match self.try_put(item) {
                Ok(()) => return Ok(()),
                Err(TryPutError::ShutDown(v)) => return Err(PutError::ShutDown(v)),
                Err(TryPutError::Full(v)) => item = v,
            }
            if let Err(e) = self.wait_in(Line::Putters) {
                return Err(PutError::Wait(item, e));
            }
        }
    }

    /// Takes the next item, waiting while the queue is empty. Python:
    /// `await queue.get()`.
    ///
    /// Waiting getters are woken in the order they came, one per item put;
    /// a woken getter checks again, and waits again (at the back) if another
    /// task took the item first.
    ///
    /// After a [`shutdown`](Self::shutdown) without `immediate`, the items
    /// left are still handed out; then it fails.
    ///
    /// # Cancellation
    ///
    /// Cancelling the task while it waits returns the cancellation and
    /// takes nothing. If an item had already been announced to it (put in
    /// the same loop iteration as the cancel), the item stays in the queue
    /// where it was, and the next waiting getter is woken for it. A get that
    /// did not wait cannot be cancelled: it has already taken the item.
    ///
    /// # Errors
    ///
    /// [`GetError::ShutDown`] if the queue is shut down and empty, before
    /// or during the wait; [`GetError::Wait`] if the wait was cancelled or
    /// refused (an empty queue outside a task).
    pub fn get(&self) -> Result<T, GetError> {
        loop {
            match self.try_get() {
                Ok(item) => return Ok(item),
                Err(TryGetError::ShutDown) => return Err(GetError::ShutDown),
                Err(TryGetError::Empty) => {}
            }
            self.wait_in(Line::Getters).map_err(GetError::Wait)?;
        }
    }

    /// Marks one item taken with [`get`](Self::get) as processed. When
    /// every item put has been marked, [`join`](Self::join) returns.
    /// Python: `task_done()`.
    ///
    /// # Errors
    ///
    /// [`TaskDoneError`] if it was called more often than items were put
    /// (Python: `ValueError`); nothing changes.
    pub fn task_done(&self) -> Result<(), TaskDoneError> {
        let mut s = self.state.borrow_mut();
        if s.unfinished == 0 {
            return Err(TaskDoneError);
        }
        s.unfinished -= 1;
        let finished = s.unfinished == 0;
        drop(s);
        if finished {
            self.wake_all(Line::Joiners);
        }
        Ok(())
    }

    /// Waits until every item put has been marked with
    /// [`task_done`](Self::task_done); returns at once if none is
    /// outstanding. Python: `await queue.join()`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use gencoro::runtime::{self, Builder, Clock};
    /// use gencoro::sync::Queue;
    ///
    /// let clock = Clock::virtual_time();
    /// Builder::new().clock(clock.clone()).run(|| {
    ///     let jobs = Queue::new();
    ///     for secs in [1, 2] {
    ///         jobs.try_put(secs)?;
    ///     }
    ///     let worker = jobs.clone();
    ///     runtime::spawn(move || -> Result<(), runtime::Error> {
    ///         loop {
    ///             let secs = worker.get()?;
    ///             runtime::sleep(Duration::from_secs(secs))?;
    ///             worker.task_done()?;
    ///         }
    ///     });
    ///     jobs.join() // the worker is still waiting for more: run cancels it
    /// })
    /// .unwrap();
    /// assert_eq!(clock.now(), Duration::from_secs(3));
    /// ```
    ///
    /// # Cancellation
    ///
    /// Cancelling the task while it waits returns the cancellation; the
    /// queue is unchanged.
    ///
    /// # Errors
    ///
    /// The cancellation, or a refused wait (outside a task while items are
    /// outstanding).
    pub fn join(&self) -> Result<(), Error> {
        if self.state.borrow().unfinished == 0 {
            return Ok(());
        }
        self.wait_in(Line::Joiners)
    }

    /// Shuts the queue down. Python 3.13: `shutdown(immediate)`.
    ///
    /// Every later [`put`](Self::put) or [`try_put`](Self::try_put) fails
    /// with the shut-down error. [`get`](Self::get) hands out the items
    /// left and then fails; with `immediate`, the items left are dropped
    /// first, each counting as done for [`join`](Self::join) (which returns
    /// once no item is outstanding), so `get` fails at once. Every waiting
    /// getter and putter is woken to check again: getters first, then
    /// putters, each in the order they came.
    ///
    /// Returns how many items were dropped (0 without `immediate`). Calling
    /// it again does no harm.
    ///
    /// ```
    /// use gencoro::sync::{Queue, TryGetError, TryPutError};
    ///
    /// let queue = Queue::new();
    /// for job in ["a", "b", "c"] {
    ///     queue.try_put(job).unwrap();
    /// }
    /// assert_eq!(queue.shutdown(false), 0);
    /// assert!(matches!(queue.try_put("d"), Err(TryPutError::ShutDown("d"))));
    /// assert_eq!(queue.try_get(), Ok("a")); // what is left is still handed out
    /// assert_eq!(queue.shutdown(true), 2); // unless it is dropped
    /// assert_eq!(queue.try_get(), Err(TryGetError::ShutDown));
    /// ```
    pub fn shutdown(&self, immediate: bool) -> usize {
        let mut dropped = Vec::new();
        let finished = {
            let mut s = self.state.borrow_mut();
            s.shut_down = true;
            if immediate {
                dropped = s.items.take_all();
                s.unfinished = s.unfinished.saturating_sub(dropped.len());
            }
            immediate && s.unfinished == 0
        };
        if finished {
            self.wake_all(Line::Joiners);
        }
        self.wake_all(Line::Getters);
        self.wake_all(Line::Putters);
        let count = dropped.len();
        drop(dropped);
        count
    }

    /// Waits in `line` until woken: Python's `create_future`, append,
    /// `await`, and the `except` clause that cleans up after a failed wait.
    fn wait_in(&self, line: Line) -> Result<(), Error> {
        let park = Park::prepare(line.what::<T, O>())?;
        self.state.borrow_mut().line(line).push_back(park.entry());
        let guard = InLine { queue: self, line, park: &park };
        match park.wait() {
            Ok(()) => {
                // Whoever woke it took it out of the line: the guard, which
                // owns nothing, has nothing to do.
                std::mem::forget(guard);
                Ok(())
            }
            Err(e) => Err(self.wait_failed(&park, guard, e)),
        }
    }

    /// The `except` clause of a failed wait in `line`: the waiter leaves
    /// the line and passes on a wake-up it got.
    #[cold]
    #[inline(never)]
    fn wait_failed(&self, park: &Park, guard: InLine<'_, T, O>, e: Error) -> Error {
        // Python: `putter.cancel()  # Just in case putter is not done yet.`
        // The guard's drop then passes on a wake-up it got.
        park.cancel();
        drop(guard);
        e
    }

    /// Wakes the first waiter of `line` that is still pending, taking out
    /// the ones before it. Python: `_wakeup_next`.
    #[inline]
    fn wake_next(&self, line: Line) {
        loop {
            // An entry not woken is dropped after the borrow (it holds a
            // task); waking runs no user code, so it is done under it.
            let not_woken = {
                let mut s = self.state.borrow_mut();
                let Some(first) = s.line(line).pop_front() else { return };
                // A waiter of a loop that is gone cannot be woken; the next
                // one is.
                match first.wake_taken() {
                    Ok(()) => return,
                    Err(entry) => entry,
                }
            };
            drop(not_woken);
        }
    }

    /// Wakes every pending waiter of `line`, in order.
    fn wake_all(&self, line: Line) {
        let waiters = std::mem::take(self.state.borrow_mut().line(line));
        for waiter in &waiters {
            waiter.wake();
        }
    }
}

impl Line {
    /// The wait, for errors and reports.
    fn what<T, O: Order<T>>(self) -> &'static str {
        let waits = <O as sealed::Store<T>>::WAITS;
        match self {
            Line::Getters => waits[0],
            Line::Putters => waits[1],
            Line::Joiners => waits[2],
        }
    }
}

/// Takes a waiter out of its line when its wait ends without a wake-up,
/// including when the waiting task's stack is unwound while it waits.
struct InLine<'a, T, O: Order<T>> {
    queue: &'a GenericQueue<T, O>,
    line: Line,
    park: &'a Park,
}

/// A wait that did not end in a wake-up: after a failure (a cancellation,
/// once the park is cancelled), or with the task's stack unwound while it
/// waited (its loop torn down). The waiter leaves the line; if it had been
/// woken, the wake-up goes to the next in line, as CPython's `except:`
/// around the wait does (for a closed coroutine too).
impl<T, O: Order<T>> Drop for InLine<'_, T, O> {
    fn drop(&mut self) {
        let (removed, can_go_on) = match self.queue.state.try_borrow_mut() {
            Ok(mut s) => {
                let can_go_on = match self.line {
                    Line::Getters => s.items.len() > 0,
                    Line::Putters => !s.is_full(),
                    Line::Joiners => false,
                };
                let line = s.line(self.line);
                let removed =
                    line.iter().position(|w| self.park.is(w)).and_then(|at| line.remove(at));
                (removed, can_go_on)
            }
            Err(_) => (None, false),
        };
        drop(removed);
        if can_go_on
            && self.park.state() == ParkState::Woken
            && self.queue.state.try_borrow_mut().is_ok()
        {
            self.queue.wake_next(self.line);
        }
    }
}

impl<T, O: Order<T>> fmt::Debug for GenericQueue<T, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Ok(s) = self.state.try_borrow() else {
            return f.write_str("GenericQueue { <in use> }");
        };
        f.debug_struct(<O as sealed::Store<T>>::NAME)
            .field("maxsize", &s.maxsize)
            .field("len", &s.items.len())
            .field("getters", &s.getters.len())
            .field("putters", &s.putters.len())
            .field("unfinished_tasks", &s.unfinished)
            .field("shut_down", &s.shut_down)
            .finish()
    }
}
