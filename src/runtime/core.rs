//! The loop core: ready queue, timers, clock, and the one place that picks
//! what runs next. It mirrors CPython's `BaseEventLoop._run_once`.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::clock::Clock;
use super::error::{Error, ErrorKind};
use super::explore::{Explore, PositionSet, TraceEventKind};
use super::record::{Record, WeakRecord};
use super::report::{ExceptionContext, Handler, report};
use super::schedule::{Runnable, Wake, wake_token};
use super::timers::{self, TimerEntry, Timers};
use crate::net::driver::{Driver, PollWaker};

/// Cancelled timers are compacted away once there are more than this many
/// and they fill half the queue. Python: `_MIN_SCHEDULED_TIMER_HANDLES`.
const MIN_TIMERS_TO_COMPACT: usize = 100;

/// Ready batches at least this long prefetch each task one step ahead.
const PREFETCH_BATCH: usize = 2048;

/// How long a loop with outside work under way and nothing else to do
/// spins for a message before it blocks on its channel (see
/// `Core::spin_for_message`). Short beside any closure worth offloading
/// that does not return at once: waiting a second on one costs the loop's
/// thread this much CPU time per wait, no more.
const SPIN_BEFORE_BLOCKING: Duration = Duration::from_micros(50);

/// The full spin, in nanoseconds, for `Core::spin_budget`.
const SPIN_BUDGET_FULL: u32 = 50_000;

/// Whether spinning for another thread can pay: not with a single core,
/// where the other thread cannot run while this one spins. Worked out once
/// per process (`available_parallelism` reads cgroup files).
pub(crate) fn spinning_pays() -> bool {
    static PAYS: OnceLock<bool> = OnceLock::new();
    *PAYS.get_or_init(|| std::thread::available_parallelism().is_ok_and(|n| n.get() > 1))
}

/// Spins until `stop()` holds or `limit` has passed; whether `stop()` held.
/// The clock is read once every 64 spins.
pub(crate) fn spin_until(limit: Duration, mut stop: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    let mut spins = 0u32;
    loop {
        if stop() {
            return true;
        }
        spins = spins.wrapping_add(1);
        if spins % 64 == 0 && start.elapsed() >= limit {
            return false;
        }
        std::hint::spin_loop();
    }
}

/// Work posted from another thread, run on the loop's thread.
pub(crate) type RemoteCall = Box<dyn FnOnce() + Send>;

/// What other threads send the loop.
enum RemoteMsg {
    /// Run this on the loop's thread.
    Call(RemoteCall),
    /// Run this on the loop's thread as soon as the loop takes it in,
    /// before anything already ready: what a Python signal handler does
    /// between two steps (`Runner._on_sigint`'s `main_task.cancel()`).
    Interrupt(RemoteCall),
    /// Look again: the last outside work ended while the loop was blocked
    /// waiting for it.
    Wake,
}

/// The loop's side that other threads hold (through `LoopHandle`).
pub(crate) struct Remote {
    tx: Sender<RemoteMsg>,
    /// Calls posted and not yet drained, so the loop need not poll the
    /// channel on every iteration.
    posted: AtomicUsize,
    /// Outside work declared under way (`LoopHandle::in_flight`).
    in_flight: AtomicUsize,
    /// The part of `in_flight` that does not run on real time, so does not
    /// keep virtual time from passing: live `await_future` wakers, whose
    /// futures may themselves wait for virtual time.
    untimed: AtomicUsize,
    /// The loop is blocked waiting for outside work. With `in_flight`, a
    /// Dekker pair (both sequentially consistent): a guard dropped while
    /// the loop blocks sees this set and wakes it, and a loop about to block
    /// sees the guard gone; neither misses the other.
    waiting: AtomicBool,
    /// Offloaded closures queued or running (`runtime::offload`): outside
    /// work whose result often comes back within microseconds, which the
    /// loop spins for briefly before it blocks.
    offloads: AtomicUsize,
    /// Set when the loop is torn down: nothing posted after it can run.
    closed: AtomicBool,
    /// Set once the loop has a poll (`gencoro::net`): a loop that waits
    /// blocks in its poll rather than on the channel, so posts and the end
    /// of outside work wake it through this as well.
    poll_waker: OnceLock<PollWaker>,
}

impl Remote {
    /// Queues `call` for the loop's thread; false if the loop has ended.
    pub(crate) fn post(&self, call: RemoteCall) -> bool {
        self.send(RemoteMsg::Call(call))
    }

    /// Has `call` run on the loop's thread as soon as the loop takes it in,
    /// between two steps, before the handles already ready; false if the
    /// loop has ended. For signal handlers.
    pub(crate) fn interrupt(&self, call: RemoteCall) -> bool {
        self.send(RemoteMsg::Interrupt(call))
    }

    fn send(&self, msg: RemoteMsg) -> bool {
        if self.closed.load(AtomicOrdering::Acquire) {
            return false;
        }
        let sent = self.tx.send(msg).is_ok();
        if sent {
            // Sequentially consistent: with `waiting`, the Dekker pair of
            // `Core::poll_io` (a loop with a poll does not block on the
            // channel, so the message alone would not wake it).
            self.posted.fetch_add(1, AtomicOrdering::SeqCst);
            if let Some(waker) = self.poll_waker.get() {
                if self.waiting.load(AtomicOrdering::SeqCst) {
                    waker.wake();
                }
            }
        }
        sent
    }

    pub(crate) fn begin_work(&self) {
        self.in_flight.fetch_add(1, AtomicOrdering::SeqCst);
    }

    /// Ends outside work, and wakes the loop if it is blocked waiting for
    /// it. A guard dropped while the loop is not waiting sends nothing.
    pub(crate) fn end_work(&self) {
        self.in_flight.fetch_sub(1, AtomicOrdering::SeqCst);
        if self.waiting.load(AtomicOrdering::SeqCst) {
            let _ = self.tx.send(RemoteMsg::Wake);
            // A loop with a poll blocks there instead (the `Wake` message
            // is then dropped unread by `receive_posted`).
            if let Some(waker) = self.poll_waker.get() {
                waker.wake();
            }
        }
    }

    /// An offloaded closure was queued: see `offloads`.
    pub(crate) fn begin_offload(&self) {
        self.offloads.fetch_add(1, AtomicOrdering::SeqCst);
    }

    /// An offloaded closure's result was posted (or it was dropped).
    pub(crate) fn end_offload(&self) {
        self.offloads.fetch_sub(1, AtomicOrdering::SeqCst);
    }

    fn offloads_running(&self) -> usize {
        self.offloads.load(AtomicOrdering::Relaxed)
    }

    pub(crate) fn work_in_flight(&self) -> usize {
        self.in_flight.load(AtomicOrdering::SeqCst)
    }

    /// Begins outside work that does not hold virtual time (see
    /// `untimed`): counted in the work in flight first, then here.
    pub(crate) fn begin_untimed_work(&self) {
        self.begin_work();
        self.untimed.fetch_add(1, AtomicOrdering::SeqCst);
    }

    /// Ends what [`begin_untimed_work`](Self::begin_untimed_work) began, in
    /// the opposite order.
    pub(crate) fn end_untimed_work(&self) {
        self.untimed.fetch_sub(1, AtomicOrdering::SeqCst);
        self.end_work();
    }

    /// How much outside work keeps virtual time from passing: the work in
    /// flight less its untimed part. Blocking closures and `InFlight`
    /// guards run on real time, so the virtual clock must not jump past
    /// them. The work in flight is read first: untimed work leaves the
    /// untimed count before the work in flight, so the result never
    /// undercounts.
    pub(crate) fn timed_work_in_flight(&self) -> usize {
        let in_flight = self.in_flight.load(AtomicOrdering::SeqCst);
        in_flight.saturating_sub(self.untimed.load(AtomicOrdering::SeqCst))
    }
}

/// One entry of the ready queue. Python: a `Handle` in `loop._ready`.
pub(crate) enum Handle {
    /// A task's `__step` with nothing to deliver: its first step, or the
    /// step after `sleep(0)`.
    Step(Record<dyn Runnable<Core>>),
    /// A task's `__wakeup`: resume it with [`Wake::Go`] if it still waits
    /// with this token.
    Wakeup(Record<dyn Runnable<Core>>, u64),
    /// A task's `__wakeup` with a cancellation, if it still waits with this
    /// token. Boxed, so that a handle takes four words, not five (every
    /// handle is written to the ready queue and read back).
    WakeupCancel(Record<dyn Runnable<Core>>, Box<(u64, Error)>),
    /// A due timer's callback.
    Timer(TimerAction),
    /// A callback scheduled with `call_soon`, such as a done callback.
    Call(Box<dyn FnOnce()>),
    /// A done callback of the library's own: `notify(index)`, with no
    /// closure to allocate.
    Notify(Rc<dyn Notify>, usize),
    /// Blocking work run one closure at a time, while the loop's thread
    /// waits for it: only in schedule-driven runs (see [`Explore`]), where
    /// the pool's threads would make the order of results depend on thread
    /// timing.
    Offloaded(Box<dyn FnOnce()>),
}

/// A done callback of the library's own combinators, run through the ready
/// queue like any other: one object that watches many futures, told which
/// of them finished by its index. It runs no user code.
pub(crate) trait Notify {
    fn notify(&self, index: usize);
}

/// What a timer does when it fires.
pub(crate) enum TimerAction {
    /// Completes a task's sleep (`_set_result_unless_cancelled`); the task
    /// itself resumes one iteration later, through its wake-up.
    ///
    /// Weak: a sleeping task is kept alive by its own header (its waiter),
    /// which lets go when the sleep ends, by this timer or by a
    /// cancellation. A cancelled timer left in the queue then holds only
    /// the record's block, as CPython's cancelled `TimerHandle` holds
    /// nothing: the task and its result go with their last handle.
    Sleep(WeakRecord<dyn Runnable<Core>>, u64),
    /// Runs a cancellable callback (`call_later`, `call_soon` with handle).
    Call(Rc<TimerCall>),
}

impl Handle {
    /// A task's wake-up delivering `wake` at suspension `token`.
    #[inline(always)]
    pub(crate) fn wakeup(task: Record<dyn Runnable<Core>>, token: u64, wake: Wake) -> Handle {
        match wake {
            Wake::Go => Handle::Wakeup(task, token),
            Wake::Cancel(e) => Handle::WakeupCancel(task, Box::new((token, e))),
        }
    }

    /// Starts loading the task this handle will run into cache.
    #[inline]
    fn prefetch(&self) {
        match self {
            Handle::Step(task) | Handle::Wakeup(task, _) | Handle::WakeupCancel(task, _) => {
                task.prefetch()
            }
            Handle::Timer(action) => action.prefetch(),
            Handle::Call(_) | Handle::Notify(..) | Handle::Offloaded(_) => {}
        }
    }

    /// For schedule-driven runs: which stream of work this handle belongs
    /// to. A schedule may run the first handle of any stream first, never
    /// a later one of the same stream before it: a task's own handles stay
    /// in order, and so do all callbacks (the loop promises callbacks run
    /// in the order they were scheduled). Each blocking closure is a
    /// stream of its own, told apart by its position `pos`.
    fn stream(&self, pos: usize) -> usize {
        match self {
            Handle::Step(task) | Handle::Wakeup(task, _) | Handle::WakeupCancel(task, _) => {
                Record::as_ptr(task) as *const () as usize
            }
            Handle::Timer(TimerAction::Sleep(task, _)) => {
                WeakRecord::as_ptr(task) as *const () as usize
            }
            Handle::Timer(TimerAction::Call(_)) | Handle::Call(_) | Handle::Notify(..) => 0,
            // Never the address of a record.
            Handle::Offloaded(_) => usize::MAX - pos,
        }
    }
}

/// How much of a sleeping task's record the loop prefetches before its
/// timer fires: about what a record spans for a small result (its counts,
/// header, generator and outcome; `TaskCell<()>` is 328 bytes with its
/// counts).
const TASK_RECORD_PREFETCH: usize = 384;

impl TimerAction {
    #[inline]
    fn prefetch(&self) {
        if let TimerAction::Sleep(task, _) = self {
            if let Some(task) = task.upgrade() {
                task.prefetch();
            }
        }
    }

    /// The first of two prefetch stages for a timer that fires soon: its
    /// task's record only, from its address (the handle is weak, and
    /// reading the record would wait on memory); the second stage, the
    /// stack, comes when the timer fires.
    #[inline]
    fn prefetch_record(&self) {
        if let TimerAction::Sleep(task, _) = self {
            crate::stack::prefetch(WeakRecord::block_addr(task), TASK_RECORD_PREFETCH);
        }
    }

    fn is_cancelled(&self) -> bool {
        match self {
            // Called under the timer queue's borrow: the handle upgraded
            // here is never the last (it exists only while another does),
            // so dropping it runs no destructor.
            TimerAction::Sleep(task, token) => {
                task.upgrade().is_none_or(|task| !task.sleep_pending(*token))
            }
            TimerAction::Call(call) => call.cancelled.get(),
        }
    }
}

/// A cancellable callback. Python: `Handle` / `TimerHandle`.
pub(crate) struct TimerCall {
    cancelled: Cell<bool>,
    f: Cell<Option<Box<dyn FnOnce()>>>,
    /// The loop whose timer queue holds this call, so cancelling it counts
    /// towards that loop's compaction. Empty for `call_soon` calls, which
    /// sit in the ready queue.
    timer_of: Weak<Core>,
}

impl TimerCall {
    /// A call for the ready queue (`call_soon`).
    pub(crate) fn new(f: Box<dyn FnOnce()>) -> Rc<TimerCall> {
        Rc::new(TimerCall {
            cancelled: Cell::new(false),
            f: Cell::new(Some(f)),
            timer_of: Weak::new(),
        })
    }

    /// Keeps the call from running and drops its closure. Python:
    /// `TimerHandle.cancel()`, which tells the loop
    /// (`_timer_handle_cancelled`).
    pub(crate) fn cancel(&self) {
        if self.cancelled.replace(true) {
            return;
        }
        if let Some(core) = self.timer_of.upgrade() {
            core.timer_cancelled();
        }
        drop(self.f.take());
    }
}

/// Tasks that are not done, for `all_tasks` and for shutdown.
#[derive(Default)]
struct Registry {
    slots: Vec<Option<WeakRecord<dyn Runnable<Core>>>>,
    free: Vec<usize>,
}

impl Registry {
    fn clear(&mut self) {
        self.slots.clear();
        self.free.clear();
    }
}

/// The event loop's state. One per `run`, reachable from the thread-local
/// `CORE` while it runs.
pub(crate) struct Core {
    /// Process-wide unique, for telling loops apart.
    pub(crate) id: u64,
    /// Python: `loop._exception_handler`.
    exception_handler: Option<Handler>,
    pub(crate) clock: Clock,
    /// Usable bytes of each task stack, rounded once here.
    pub(crate) stack_size: usize,
    ready: RefCell<VecDeque<Handle>>,
    timers: RefCell<Timers<TimerAction>>,
    registry: RefCell<Registry>,
    /// Timers cancelled but still queued. Python: `_timer_cancelled_count`.
    cancelled_timers: Cell<usize>,
    /// Interrupts taken out of the channel while a step may have been
    /// running (see `take_in_posted_calls`), to run at the next drain.
    interrupts: RefCell<Vec<RemoteCall>>,
    /// The longest the loop spins for an offloaded closure's result before
    /// it blocks, in nanoseconds (see `spin_for_message`).
    spin_budget: Cell<u32>,
    next_callback_id: Cell<u64>,
    /// Set once the loop has been torn down: it never runs again.
    closed: Cell<bool>,
    /// Set by `EventLoop::stop`: the run under way ends after the current
    /// iteration. Python: `loop._stopping`.
    stopping: Cell<bool>,
    /// Set when the owning `EventLoop` was dropped while the loop ran: the
    /// run that is under way tears it down when it ends.
    orphaned: Cell<bool>,
    remote: Arc<Remote>,
    remote_rx: Receiver<RemoteMsg>,
    /// Run first when the loop is torn down: the layers above the core
    /// (the blocking pool) release what they keep for this loop.
    on_close: RefCell<Vec<Box<dyn FnOnce()>>>,
    /// Set for a schedule-driven run (`gencoro::testing`): the schedule
    /// decides at the pick point, and the run may be traced.
    explore: Option<Rc<Explore>>,
    /// The buffers of a schedule-driven iteration, kept from one to the
    /// next (taken out while it runs).
    explore_buffers: RefCell<ExploreBuffers>,
    /// The readiness driver of `gencoro::net`: made when the first socket
    /// registers, so a loop without sockets never polls.
    io: OnceCell<Rc<Driver>>,
}

/// What a schedule-driven iteration works with (see
/// `Core::run_ready_explored`).
#[derive(Default)]
struct ExploreBuffers {
    /// The iteration's snapshot of the ready queue; a handle is taken out
    /// when it runs.
    batch: Vec<Option<Handle>>,
    /// `(stream, position)` of each handle of the batch, sorted.
    streams: Vec<(usize, usize)>,
    /// For each position, the next position of the same stream.
    next: Vec<usize>,
    /// The positions of the streams' first handles not yet run: the
    /// options of the next pick, in queue order.
    heads: PositionSet,
}

/// Batches up to this long link their streams by looking back (quadratic,
/// but cheaper than sorting while short).
const SMALL_BATCH: usize = 16;

/// [`ExploreBuffers::next`] for the last handle of its stream.
const NO_NEXT: usize = usize::MAX;

thread_local! {
    static CORE: RefCell<Option<Rc<Core>>> = const { RefCell::new(None) };
    /// The buffers of the last loop that ended on this thread, kept (empty)
    /// for the next one: a loop's queues grow to hold all its tasks, and
    /// growing them again for every `run` costs page faults.
    static SPARE: RefCell<Option<Buffers>> = const { RefCell::new(None) };
}

/// A loop's growable buffers.
struct Buffers {
    ready: VecDeque<Handle>,
    timers: Timers<TimerAction>,
    registry: Registry,
}

/// The loop running on this thread.
pub(crate) fn current_core() -> Result<Rc<Core>, Error> {
    CORE.try_with(|c| c.borrow().clone()).ok().flatten().ok_or_else(no_running_loop)
}

/// `current_core`'s error, out of line: the callers' frames on a task's
/// stack stay small (every byte of a frame is stack memory a waiting task
/// keeps touched).
#[cold]
#[inline(never)]
fn no_running_loop() -> Error {
    Error::kind_msg(ErrorKind::NoRunningLoop, "no running event loop")
}

/// Whether a loop is running on this thread.
pub(crate) fn loop_running() -> bool {
    CORE.try_with(|c| c.borrow().is_some()).unwrap_or(false)
}

/// Whether `core` is the loop running on this thread.
pub(crate) fn is_running(core: &Rc<Core>) -> bool {
    CORE.try_with(|c| c.borrow().as_ref().is_some_and(|running| Rc::ptr_eq(running, core)))
        .unwrap_or(false)
}

/// Installs `core` as this thread's running loop until the guard drops.
pub(crate) struct Installed(());

impl Installed {
    /// # Errors
    ///
    /// The thread is exiting and its running-loop slot is gone already
    /// (a loop run from a late thread-local destructor).
    pub(crate) fn new(core: &Rc<Core>) -> Result<Installed, Error> {
        CORE.try_with(|c| *c.borrow_mut() = Some(core.clone())).map_err(|_| {
            Error::kind_msg(
                ErrorKind::Misuse,
                "cannot run an event loop while its thread's thread-locals are being destroyed",
            )
        })?;
        Ok(Installed(()))
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = CORE.try_with(|c| c.borrow_mut().take());
    }
}

impl Core {
    pub(crate) fn new(
        clock: Clock,
        stack_size: usize,
        exception_handler: Option<Handler>,
        explore: Option<Rc<Explore>>,
    ) -> Rc<Core> {
        let (remote_tx, remote_rx) = crossbeam_channel::unbounded();
        let spare = SPARE.try_with(|s| s.borrow_mut().take()).ok().flatten();
        let Buffers { ready, timers, registry } = spare.unwrap_or_else(|| Buffers {
            ready: VecDeque::new(),
            timers: Timers::new(),
            registry: Registry::default(),
        });
        static NEXT_LOOP_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Rc::new(Core {
            id: NEXT_LOOP_ID.fetch_add(1, AtomicOrdering::Relaxed),
            exception_handler,
            clock,
            stack_size: crate::stack::usable_size(stack_size),
            ready: RefCell::new(ready),
            timers: RefCell::new(timers),
            registry: RefCell::new(registry),
            cancelled_timers: Cell::new(0),
            interrupts: RefCell::new(Vec::new()),
            spin_budget: Cell::new(SPIN_BUDGET_FULL),
            next_callback_id: Cell::new(0),
            closed: Cell::new(false),
            orphaned: Cell::new(false),
            stopping: Cell::new(false),
            remote: Arc::new(Remote {
                tx: remote_tx,
                posted: AtomicUsize::new(0),
                in_flight: AtomicUsize::new(0),
                untimed: AtomicUsize::new(0),
                waiting: AtomicBool::new(false),
                offloads: AtomicUsize::new(0),
                closed: AtomicBool::new(false),
                poll_waker: OnceLock::new(),
            }),
            remote_rx,
            on_close: RefCell::new(Vec::new()),
            explore,
            explore_buffers: RefCell::new(ExploreBuffers::default()),
            io: OnceCell::new(),
        })
    }

    /// The schedule of a schedule-driven run.
    #[inline]
    pub(crate) fn explore(&self) -> Option<&Explore> {
        self.explore.as_deref()
    }

    /// A wake-up queued in a schedule-driven run goes in its trace.
    #[cold]
    #[inline(never)]
    fn trace_push(&self, handle: &Handle) {
        if let Handle::Wakeup(task, _) | Handle::WakeupCancel(task, _) = handle {
            self.trace(&**task, TraceEventKind::Wake);
        }
    }

    /// Records an event of `task` in the trace, if one is recorded.
    pub(crate) fn trace(&self, task: &dyn Runnable<Core>, kind: TraceEventKind) {
        if let Some(explore) = self.explore().filter(|e| e.is_tracing()) {
            explore.record(self.now(), task.id(), || task.name(), kind);
        }
    }

    /// Loop time. Python: `loop.time()`.
    pub(crate) fn now(&self) -> Duration {
        self.clock.now()
    }

    /// Appends to the ready queue. Python: `call_soon`.
    ///
    /// Calls other threads posted before this (`call_soon_threadsafe`)
    /// enter the queue first: CPython appends them to `_ready` at once, so
    /// they run before what the loop's thread schedules after them, even
    /// within one iteration. (Schedule-driven runs take posts in only at
    /// the start of an iteration and at their waits, as before.)
    #[inline]
    pub(crate) fn push(&self, handle: Handle) {
        if self.explore.is_some() {
            self.trace_push(&handle);
        } else if self.remote.posted.load(AtomicOrdering::Acquire) != 0 {
            self.take_in_posted_calls();
        }
        self.ready.borrow_mut().push_back(handle);
    }

    /// For [`push`](Self::push): moves the calls posted so far into the
    /// ready queue. A step may be running, so an interrupt cannot run now:
    /// it waits in `interrupts` for the next iteration's start, where it
    /// runs before anything else is taken in (as if it were still in the
    /// channel).
    #[cold]
    #[inline(never)]
    fn take_in_posted_calls(&self) {
        self.remote.posted.swap(0, AtomicOrdering::AcqRel);
        self.drain_channel(|msg| match msg {
            RemoteMsg::Interrupt(call) => {
                self.interrupts.borrow_mut().push(call);
                true
            }
            msg => self.take_in(msg),
        });
        if !self.interrupts.borrow().is_empty() {
            // Counted as posted (again, if an earlier call took them in), so
            // the next iteration drains, and runs them first.
            self.remote.posted.fetch_add(1, AtomicOrdering::SeqCst);
        }
    }

    /// [`push`](Self::push) for a call taken in from the channel.
    fn push_taken_in(&self, handle: Handle) {
        if self.explore.is_some() {
            self.trace_push(&handle);
        }
        self.ready.borrow_mut().push_back(handle);
    }

    /// Arms a task's sleep timer. Python: `call_at`.
    pub(crate) fn push_timer(&self, when: Duration, action: TimerAction) {
        self.timers.borrow_mut().push(when, action);
    }

    /// Arms a cancellable callback timer. Python: `call_at`.
    pub(crate) fn call_at(self: &Rc<Self>, when: Duration, f: Box<dyn FnOnce()>) -> Rc<TimerCall> {
        let call = Rc::new(TimerCall {
            cancelled: Cell::new(false),
            f: Cell::new(Some(f)),
            timer_of: Rc::downgrade(self),
        });
        self.push_timer(when, TimerAction::Call(call.clone()));
        call
    }

    /// Hands `context` to the loop's exception handler. Python:
    /// `loop.call_exception_handler`.
    /// Registers `hook` to run first when the loop is torn down.
    pub(crate) fn on_close(&self, hook: Box<dyn FnOnce()>) {
        self.on_close.borrow_mut().push(hook);
    }

    pub(crate) fn report(&self, context: ExceptionContext) {
        report(self.exception_handler.as_ref(), context);
    }

    /// Whether the loop has been torn down. Python: `loop.is_closed()`.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// The owner was dropped while the loop ran; see `orphaned`.
    pub(crate) fn set_orphaned(&self) {
        self.orphaned.set(true);
    }

    pub(crate) fn is_orphaned(&self) -> bool {
        self.orphaned.get()
    }

    /// Notes that a queued timer was cancelled; it is dropped when it
    /// reaches the front, or when cancelled timers fill half the queue.
    pub(crate) fn timer_cancelled(&self) {
        self.cancelled_timers.set(self.cancelled_timers.get() + 1);
    }

    pub(crate) fn next_callback_id(&self) -> u64 {
        let id = self.next_callback_id.get();
        self.next_callback_id.set(id + 1);
        id
    }

    /// Adds a task to the loop's set of pending tasks; returns its slot.
    pub(crate) fn register(&self, task: WeakRecord<dyn Runnable<Core>>) -> usize {
        let mut reg = self.registry.borrow_mut();
        match reg.free.pop() {
            Some(i) => {
                reg.slots[i] = Some(task);
                i
            }
            None => {
                reg.slots.push(Some(task));
                reg.slots.len() - 1
            }
        }
    }

    pub(crate) fn unregister(&self, slot: usize) {
        let mut reg = self.registry.borrow_mut();
        if reg.slots.get_mut(slot).and_then(Option::take).is_some() {
            reg.free.push(slot);
        }
    }

    /// Every task that is not done. Python: `all_tasks()`.
    pub(crate) fn pending_tasks(&self) -> Vec<Record<dyn Runnable<Core>>> {
        self.registry.borrow().slots.iter().flatten().filter_map(WeakRecord::upgrade).collect()
    }

    pub(crate) fn remote(&self) -> Arc<Remote> {
        self.remote.clone()
    }

    /// The loop's readiness driver (`gencoro::net`), made on first use:
    /// from then on, other threads wake the loop through its poll too.
    ///
    /// # Errors
    ///
    /// The system refused a poll.
    pub(crate) fn io_driver(&self) -> std::io::Result<Rc<Driver>> {
        if let Some(driver) = self.io.get() {
            return Ok(driver.clone());
        }
        let (driver, waker) = Driver::new()?;
        // Set before any wait can block in the poll (this is the loop's
        // thread, inside a step).
        let _ = self.remote.poll_waker.set(waker);
        let driver = Rc::new(driver);
        let _ = self.io.set(driver.clone());
        Ok(driver)
    }

    /// The driver, if a socket is registered: only then does the wait step
    /// poll. A loop that never had one (or has none now) waits exactly as
    /// before.
    #[inline]
    fn io_active(&self) -> Option<&Driver> {
        self.io.get().map(|d| &**d).filter(|d| d.has_registrations())
    }

    /// Runs iterations until `done()` holds.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Deadlock`] when nothing is ready, no timer is armed and
    /// no outside work is in flight, yet `done()` does not hold.
    ///
    /// [`ErrorKind::Misuse`] if the loop was stopped (`EventLoop::stop`)
    /// before `done()` held. Python: `Event loop stopped before Future
    /// completed.`
    pub(crate) fn run_until(&self, done: impl Fn() -> bool) -> Result<(), Error> {
        while !done() {
            if !self.run_once(true) {
                return Err(self.deadlock("the main task can never finish"));
            }
            if self.explore.is_some() {
                self.check_step_limit()?;
            }
            if self.stopping.replace(false) && !done() {
                return Err(Error::kind_msg(
                    ErrorKind::Misuse,
                    "Event loop stopped before Future completed.",
                ));
            }
        }
        Ok(())
    }

    /// Runs iterations until the loop is stopped. Python: `run_forever`,
    /// which checks `_stopping` after each iteration, so a stop requested
    /// before the run lets one iteration run.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Deadlock`] when nothing can ever happen again and
    /// nothing stopped the loop.
    pub(crate) fn run_forever(&self) -> Result<(), Error> {
        loop {
            if !self.run_once(true) {
                return Err(self.deadlock("nothing can ever stop the loop"));
            }
            if self.explore.is_some() {
                self.check_step_limit()?;
            }
            if self.stopping.replace(false) {
                return Ok(());
            }
        }
    }

    /// A schedule-driven run that has taken more steps than its limit ends
    /// with [`ErrorKind::StepLimit`].
    #[cold]
    #[inline(never)]
    fn check_step_limit(&self) -> Result<(), Error> {
        if let Some(why) = self.explore().and_then(Explore::aborted) {
            return Err(Error::kind_msg(ErrorKind::Deadlock, format!("deadlock: {why}")));
        }
        match self.explore() {
            Some(explore) if explore.over_limit() => Err(Error::kind_msg(
                ErrorKind::StepLimit,
                format!(
                    "the run went past its step limit ({} steps) without finishing",
                    explore.step_limit()
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Python: `loop.stop()`.
    pub(crate) fn request_stop(&self) {
        self.stopping.set(true);
    }

    /// Runs `iterations` iterations that do not wait for time to pass.
    ///
    /// CPython stops a loop from a done callback (`run_until_complete`'s
    /// `_run_until_complete_cb`), which runs one iteration after the future
    /// completes; that whole iteration runs first, so ready tasks take one
    /// more step. Since the callback is ready, that iteration does not wait.
    pub(crate) fn settle(&self, iterations: usize) {
        for _ in 0..iterations {
            self.run_once(false);
        }
    }

    /// One iteration. Python: `_run_once`. With `may_wait` false it does not
    /// wait for timers (something is ready in CPython's queue). Returns false
    /// when nothing can ever happen again.
    #[inline(always)]
    fn run_once(&self, may_wait: bool) -> bool {
        // With something ready, nothing posted from other threads, no
        // socket registered, and no timer queued or none cancelled and the
        // earliest not due, steps 1 to 4 have nothing to do: nothing to
        // take in, drop, wait for or fire. That iteration runs here, inlined
        // into the caller's loop (one handle per iteration is common: two
        // tasks handing a queue's items to each other).
        if self.explore.is_none() && self.remote.posted.load(AtomicOrdering::Acquire) == 0 {
            let ntodo = self.ready.borrow().len();
            if ntodo != 0 && self.io_active().is_none() && self.nothing_to_do_but_run() {
                self.run_ready(ntodo);
                return true;
            }
        }
        self.run_once_in_full(may_wait)
    }

    /// [`run_once`](Self::run_once) when its fast path does not apply.
    #[inline(never)]
    fn run_once_in_full(&self, may_wait: bool) -> bool {
        self.drain_remote();
        // With something ready, and no timer queued or none cancelled and
        // the earliest not due, steps 1 to 4 have nothing to do: nothing to
        // drop, no wait, nothing to fire.
        if self.explore.is_none() {
            let mut ntodo = self.ready.borrow().len();
            if ntodo != 0 && self.nothing_to_do_but_run() {
                // Step 3 with sockets: look for readiness without blocking
                // (Python: `select(0)`); the tasks it wakes run in this
                // iteration, behind what was ready.
                if let Some(io) = self.io_active() {
                    io.poll(Some(Duration::ZERO));
                    ntodo = self.ready.borrow().len();
                }
                self.run_ready(ntodo);
                return true;
            }
        }
        // Dropping a timer may drop the last handle to a task, and with it
        // user values whose destructors may call back into the loop: every
        // timer taken out below is dropped with no borrow held.
        //
        // 1. Drop cancelled timers: all of them if they fill half the queue
        // (so a cancelled sleep does not keep its task alive until its
        // deadline), else those at the front.
        self.compact_timers();
        while let Some(entry) = self.pop_timer_if(|t| t.action.is_cancelled()) {
            self.note_cancelled_timer_gone();
            drop(entry);
        }
        let earliest = self.timers.borrow().peek().map(TimerEntry::when);
        // 2 and 3. Wait for something to happen: no wait if anything is
        // ready, else until the earliest timer, else for outside work.
        let mut waited = false;
        if may_wait && self.ready.borrow().is_empty() {
            match earliest {
                Some(when) => {
                    let now = self.now();
                    if when > now {
                        self.wait(when - now);
                        waited = true;
                    }
                }
                None => {
                    if !self.wait_for_outside_work() {
                        return false;
                    }
                    waited = true;
                }
            }
        }
        // With sockets, an iteration that did not wait (the waits poll)
        // still looks for readiness without blocking. Python: `select(0)`.
        if !waited {
            if let Some(io) = self.io_active() {
                io.poll(Some(Duration::ZERO));
            }
        }
        // 4. Append every due timer to the ready queue, in deadline order,
        // behind what is already ready.
        let now = self.now();
        let mut fired = false;
        let now_nanos = timers::deadline_nanos(now);
        if let Some(explore) = self.explore() {
            self.fire_due_timers_explored(explore, now_nanos);
            let ntodo = self.ready.borrow().len();
            self.run_ready_explored(explore, ntodo);
            return true;
        }
        while let Some(entry) = self.pop_timer_if(|t| t.deadline_nanos() <= now_nanos) {
            fired = true;
            if entry.action.is_cancelled() {
                self.note_cancelled_timer_gone();
                drop(entry);
            } else {
                self.push(Handle::Timer(entry.action));
            }
        }
        // The task whose timer fires next will run a few iterations from
        // now: start loading it while they run.
        if fired {
            if let Some(next) = self.timers.borrow().peek() {
                next.action.prefetch_record();
            }
        }
        // 5. Run exactly the handles ready now; what they schedule runs in
        // the next iteration.
        let ntodo = self.ready.borrow().len();
        self.run_ready(ntodo);
        true
    }

    /// Whether steps 1 to 4 of an iteration in which a handle is ready would
    /// do nothing: no timer is queued, or none is cancelled (each cancellation
    /// is counted, see [`timer_cancelled`](Self::timer_cancelled)) and the
    /// earliest is not due.
    #[inline(always)]
    fn nothing_to_do_but_run(&self) -> bool {
        let timers = self.timers.borrow();
        match timers.peek() {
            None => true,
            Some(first) => {
                self.cancelled_timers.get() == 0
                    && first.deadline_nanos() > timers::deadline_nanos(self.now())
            }
        }
    }

    /// Step 5: runs the first `ntodo` handles of the ready queue, in order.
    #[inline(always)]
    fn run_ready(&self, ntodo: usize) {
        if ntodo >= PREFETCH_BATCH {
            self.run_batch_prefetching(ntodo);
        } else {
            for _ in 0..ntodo {
                match self.pick() {
                    Some(handle) => self.run_handle(handle),
                    None => break,
                }
            }
        }
    }

    /// Step 5 for a batch that touches more task stacks than the caches
    /// hold: each task starts loading one step ahead. Kept out of line so
    /// the common loop above stays as lean as possible.
    #[inline(never)]
    fn run_batch_prefetching(&self, ntodo: usize) {
        for _ in 0..ntodo {
            match self.pick() {
                Some(handle) => {
                    if let Some(next) = self.ready.borrow().front() {
                        next.prefetch();
                    }
                    self.run_handle(handle)
                }
                None => break,
            }
        }
    }

    /// The single point where the loop chooses what runs next: the front of
    /// the FIFO ready queue. Schedule-driven runs pick in
    /// [`run_ready_explored`](Self::run_ready_explored) instead.
    #[inline]
    fn pick(&self) -> Option<Handle> {
        self.ready.borrow_mut().pop_front()
    }

    /// Step 4 of a schedule-driven run: the due timers go to the ready
    /// queue in deadline order, but the schedule orders those with equal
    /// deadlines (choice 0 keeps first in, first out).
    #[inline(never)]
    fn fire_due_timers_explored(&self, explore: &Explore, now_nanos: u64) {
        let mut due = Vec::new();
        while let Some(entry) = self.pop_timer_if(|t| t.deadline_nanos() <= now_nanos) {
            if entry.action.is_cancelled() {
                self.note_cancelled_timer_gone();
                drop(entry);
            } else {
                due.push(entry);
            }
        }
        let mut start = 0;
        while start < due.len() {
            let deadline = due[start].deadline_nanos();
            let end =
                start + due[start..].iter().take_while(|e| e.deadline_nanos() == deadline).count();
            for first in start..end.saturating_sub(1) {
                let chosen = explore.choose(end - first);
                due[first..=first + chosen].rotate_right(1);
            }
            start = end;
        }
        for entry in due {
            self.push(Handle::Timer(entry.action));
        }
    }

    /// Step 5 of a schedule-driven run: the handles that were ready when
    /// the iteration began (the `_run_once` snapshot holds) run one at a
    /// time, each picked by the schedule. The options of a pick are the
    /// first handle of each stream (see [`Handle::stream`]) not yet run, in
    /// queue order; option 0 is the front, FIFO's pick, and a pick with one
    /// option makes no choice. The snapshot is taken out of the ready queue
    /// (what the handles schedule goes behind it as usual), so a pick costs
    /// O(log n); what a refused step (the step limit) leaves goes back to
    /// the front.
    #[inline(never)]
    fn run_ready_explored(&self, explore: &Explore, ntodo: usize) {
        if ntodo == 0 {
            return;
        }
        let mut buffers = std::mem::take(&mut *self.explore_buffers.borrow_mut());
        let ExploreBuffers { batch, streams, next, heads } = &mut buffers;
        batch.clear();
        batch.extend(self.ready.borrow_mut().drain(..ntodo).map(Some));
        streams.clear();
        streams.extend(
            batch.iter().enumerate().map(|(pos, h)| (h.as_ref().map_or(0, |h| h.stream(pos)), pos)),
        );
        next.clear();
        next.resize(ntodo, NO_NEXT);
        heads.reset(ntodo);
        if ntodo <= SMALL_BATCH {
            // Few handles: link each to the last one before it of its
            // stream, by looking back.
            for pos in 0..ntodo {
                let stream = streams[pos].0;
                match (0..pos).rev().find(|&p| streams[p].0 == stream) {
                    Some(before) => next[before] = pos,
                    None => heads.insert(pos),
                }
            }
        } else {
            streams.sort_unstable();
            for (i, &(stream, pos)) in streams.iter().enumerate() {
                if i == 0 || streams[i - 1].0 != stream {
                    heads.insert(pos);
                } else {
                    next[streams[i - 1].1] = pos;
                }
            }
        }
        while heads.len() > 0 {
            if explore.count_step() {
                break;
            }
            let options = heads.len();
            let pos = heads.kth(if options > 1 { explore.choose(options) } else { 0 });
            heads.remove(pos);
            if next[pos] != NO_NEXT {
                heads.insert(next[pos]);
            }
            let Some(handle) = batch[pos].take() else { continue };
            if let Handle::Offloaded(_) = handle {
                // Blocking work may take longer than the tasks around it:
                // the schedule may put it off to the next iteration (0
                // runs it now).
                if explore.choose(2) == 1 {
                    self.push(handle);
                    continue;
                }
            }
            if explore.is_tracing() {
                self.run_handle_traced(handle);
            } else {
                self.run_handle(handle);
            }
        }
        if batch.iter().any(Option::is_some) {
            let mut ready = self.ready.borrow_mut();
            for handle in batch.drain(..).rev().flatten() {
                ready.push_front(handle);
            }
        }
        batch.clear();
        *self.explore_buffers.borrow_mut() = buffers;
    }

    /// Runs a handle, and records in the trace the task step it makes:
    /// the resume, then the suspension (with what the task waits on) unless
    /// the step ended the task (which `complete` records).
    fn run_handle_traced(&self, handle: Handle) {
        let stepped = match &handle {
            Handle::Step(task) => Some(task.clone()),
            Handle::Wakeup(task, token) if wake_token(&**task) == *token => Some(task.clone()),
            Handle::WakeupCancel(task, cancel) if wake_token(&**task) == cancel.0 => {
                Some(task.clone())
            }
            _ => None,
        };
        let Some(task) = stepped.filter(|t| !t.is_done()) else {
            self.run_handle(handle);
            return;
        };
        self.trace(&*task, TraceEventKind::Resume);
        self.run_handle(handle);
        if !task.is_done() {
            self.trace(&*task, TraceEventKind::Suspend { on: task.suspended_on() });
        }
    }

    /// Pops the earliest timer if `due` accepts it. The borrow ends before
    /// the caller drops or runs the entry.
    #[inline]
    fn pop_timer_if(
        &self,
        due: impl FnOnce(&TimerEntry<TimerAction>) -> bool,
    ) -> Option<TimerEntry<TimerAction>> {
        let mut timers = self.timers.borrow_mut();
        if timers.peek().is_some_and(due) { timers.pop() } else { None }
    }

    fn note_cancelled_timer_gone(&self) {
        self.cancelled_timers.set(self.cancelled_timers.get().saturating_sub(1));
    }

    /// Python: `_run_once`'s compaction of cancelled timers, once there are
    /// more than `MIN_TIMERS_TO_COMPACT` and they fill half the queue.
    fn compact_timers(&self) {
        let cancelled = self.cancelled_timers.get();
        if cancelled <= MIN_TIMERS_TO_COMPACT || cancelled * 2 <= self.timers.borrow().len() {
            return;
        }
        let removed = self.timers.borrow_mut().extract(TimerAction::is_cancelled);
        self.cancelled_timers.set(0);
        drop_each(removed);
    }

    /// Blocks for at most `timeout`, or lets virtual time pass.
    ///
    /// Virtual time does not pass while outside work runs on real time
    /// (blocking closures, `InFlight` guards; see `Remote::timed_work_in_flight`):
    /// the loop blocks for it instead, and lets the time pass once none is
    /// left. A call that arrives meanwhile ends the wait with no time
    /// passed; the next iteration waits again if need be.
    ///
    /// With sockets registered (see [`poll_io`](Self::poll_io)) the loop
    /// blocks in its poll instead of on the channel, and on the virtual
    /// clock looks for readiness before time jumps: socket events win.
    fn wait(&self, timeout: Duration) {
        if self.explore.is_some() {
            // A schedule-driven run never waits for other threads: it takes
            // what they posted so far, looks for socket readiness without
            // blocking, and lets virtual time pass if neither woke anything.
            let posted = self.receive_posted();
            let io = self.io_active().is_some_and(|io| io.poll(Some(Duration::ZERO)));
            if !posted && !io {
                self.clock.pass(timeout);
            }
            return;
        }
        if let Some(io) = self.io_active() {
            self.wait_io(io, timeout);
            return;
        }
        if self.clock.is_virtual() {
            if self.remote.work_in_flight() == 0 {
                self.clock.pass(timeout);
                return;
            }
            loop {
                if self.receive_posted() {
                    return;
                }
                if self.spin_for_message(SPIN_BEFORE_BLOCKING) {
                    continue;
                }
                // The Dekker pair of `wait_for_outside_work`.
                self.remote.waiting.store(true, AtomicOrdering::SeqCst);
                if self.remote.timed_work_in_flight() == 0 {
                    self.remote.waiting.store(false, AtomicOrdering::SeqCst);
                    if !self.receive_posted() {
                        self.clock.pass(timeout);
                    }
                    return;
                }
                let msg = self.recv_blocking();
                self.remote.waiting.store(false, AtomicOrdering::SeqCst);
                match msg {
                    Ok(RemoteMsg::Wake) => {}
                    Ok(msg) => {
                        self.take_in(msg);
                        return;
                    }
                    Err(_) => {
                        self.clock.pass(timeout);
                        return;
                    }
                }
            }
        } else {
            let start = Instant::now();
            let msg = if self.spin_for_message(timeout.min(SPIN_BEFORE_BLOCKING)) {
                self.remote_rx.try_recv().ok()
            } else {
                let msg = self.remote_rx.recv_timeout(timeout.saturating_sub(start.elapsed()));
                self.note_blocked_wait(start, msg.is_ok());
                msg.ok()
            };
            if let Some(msg) = msg {
                // Woken early by another thread: run its call; the next
                // iteration waits for the rest of the time if need be.
                self.take_in(msg);
            }
        }
    }

    /// Spins for at most `limit` (less if recent spins came to nothing)
    /// while an offloaded closure runs, in case its result arrives soon;
    /// true if a message is in the channel.
    ///
    /// A blocking closure's result often comes back within microseconds,
    /// and blocking on the channel costs two futex calls and a thread
    /// wake-up (about 10 µs on a VM) where a spin costs a few hundred
    /// nanoseconds of a spare core. Other outside work (an `InFlight`
    /// guard, a waker of `await_future`) may last any time: no spin for it.
    /// Each spin that comes to nothing halves the next one, down to none,
    /// so a closure that runs long beside frequent timers costs a few
    /// spins, not one per timer; a result that arrives soon after the loop
    /// blocked (or during a spin) restores the full spin. On a machine
    /// with one core the thread that would post could not run meanwhile:
    /// no spin there.
    fn spin_for_message(&self, limit: Duration) -> bool {
        let budget = Duration::from_nanos(u64::from(self.spin_budget.get()));
        let limit = limit.min(budget);
        if limit.is_zero() || !spinning_pays() || self.remote.offloads_running() == 0 {
            return !self.remote_rx.is_empty();
        }
        let stopped =
            spin_until(limit, || !self.remote_rx.is_empty() || self.remote.offloads_running() == 0);
        if !self.remote_rx.is_empty() {
            self.spin_budget.set(SPIN_BUDGET_FULL);
            return true;
        }
        if !stopped {
            let halved = self.spin_budget.get() / 2;
            self.spin_budget.set(if halved < 1_000 { 0 } else { halved });
        }
        false
    }

    /// After a blocking wait that began at `start`: a message that came
    /// within a spin's length (`got`) restores the full spin.
    fn note_blocked_wait(&self, start: Instant, got: bool) {
        if got && start.elapsed() < SPIN_BEFORE_BLOCKING {
            self.spin_budget.set(SPIN_BUDGET_FULL);
        }
    }

    /// Blocks on the channel for the next message (see
    /// [`note_blocked_wait`](Self::note_blocked_wait)).
    fn recv_blocking(&self) -> Result<RemoteMsg, crossbeam_channel::RecvError> {
        let start = Instant::now();
        let msg = self.remote_rx.recv();
        self.note_blocked_wait(start, matches!(msg, Ok(RemoteMsg::Call(_))));
        msg
    }

    /// Nothing is ready and no timer is armed: waits for work from other
    /// threads while some is declared in flight. False when none is, and
    /// nothing was posted: nothing can ever happen again.
    ///
    /// With sockets registered, a task parked on one is outside work too
    /// (its peer may be anywhere): the loop blocks in its poll for it
    /// rather than report a deadlock, on either clock.
    fn wait_for_outside_work(&self) -> bool {
        if self.explore.is_some() {
            // As in `wait`: nothing posted and no socket ready right now
            // means nothing can happen.
            let posted = self.receive_posted();
            return self.io_active().is_some_and(|io| io.poll(Some(Duration::ZERO))) | posted;
        }
        if let Some(io) = self.io_active() {
            loop {
                let may_block = || self.remote.work_in_flight() > 0 || io.has_waiters();
                let (ready, blocked) = self.poll_io(io, None, &may_block);
                if ready {
                    return true;
                }
                if !blocked {
                    return false;
                }
            }
        }
        loop {
            if self.receive_posted() {
                return true;
            }
            if self.spin_for_message(SPIN_BEFORE_BLOCKING) {
                continue;
            }
            self.remote.waiting.store(true, AtomicOrdering::SeqCst);
            if self.remote.work_in_flight() == 0 {
                self.remote.waiting.store(false, AtomicOrdering::SeqCst);
                // A call posted before the last guard was dropped is in the
                // channel by now: the guard's drop came after the post.
                return self.receive_posted();
            }
            let msg = self.recv_blocking();
            self.remote.waiting.store(false, AtomicOrdering::SeqCst);
            match msg {
                Ok(RemoteMsg::Wake) => {}
                Ok(msg) => {
                    self.take_in(msg);
                    return true;
                }
                Err(_) => return false,
            }
        }
    }

    /// `wait` with sockets registered, outside schedule-driven runs. Real
    /// clock: blocks in the poll until readiness, a post, or `timeout`.
    /// Virtual clock: looks for readiness without blocking, and lets the
    /// time pass if nothing woke; while outside work runs on real time it
    /// blocks in the poll instead, as `wait` blocks on the channel.
    fn wait_io(&self, io: &Driver, timeout: Duration) {
        if !self.clock.is_virtual() {
            self.poll_io(io, Some(timeout), &|| true);
            return;
        }
        loop {
            let may_block = || self.remote.timed_work_in_flight() > 0;
            let (ready, blocked) = self.poll_io(io, None, &may_block);
            if ready {
                return;
            }
            if !blocked {
                self.clock.pass(timeout);
                return;
            }
        }
    }

    /// One wait in the poll: for at most `timeout` (`None`: no limit) if
    /// `may_block()` holds once the loop has said it waits, else a look
    /// without blocking. Then takes in what was posted. Returns whether
    /// something entered the ready queue, and whether it blocked.
    ///
    /// `waiting` with `posted` and `in_flight` is a Dekker pair (all
    /// sequentially consistent): a post or an `end_work` after the store
    /// below sees `waiting` and wakes the poll through its waker; one
    /// before it shows in `posted` or `in_flight`, read after the store,
    /// and the loop does not block. Neither misses the other.
    fn poll_io(
        &self,
        io: &Driver,
        timeout: Option<Duration>,
        may_block: &dyn Fn() -> bool,
    ) -> (bool, bool) {
        self.remote.waiting.store(true, AtomicOrdering::SeqCst);
        let blocked = self.remote.posted.load(AtomicOrdering::SeqCst) == 0 && may_block();
        let woke = io.poll(if blocked { timeout } else { Some(Duration::ZERO) });
        self.remote.waiting.store(false, AtomicOrdering::SeqCst);
        self.remote.posted.swap(0, AtomicOrdering::AcqRel);
        let posted = self.receive_posted();
        (woke || posted, blocked)
    }

    /// Moves the calls posted so far into the ready queue; true if there
    /// was one. Only as many messages as were queued when it began: threads
    /// that post faster than the loop drains cannot keep it here forever,
    /// and what they post meanwhile is taken in the next iteration (each
    /// post counts in `posted` after it is sent).
    fn receive_posted(&self) -> bool {
        let mut any = false;
        let interrupts = std::mem::take(&mut *self.interrupts.borrow_mut());
        for call in interrupts {
            any = true;
            self.run_callback(call);
        }
        self.drain_channel(|msg| self.take_in(msg)) | any
    }

    /// Hands each message queued in the channel when it began to `take`;
    /// true if `take` returned true for one.
    fn drain_channel(&self, mut take: impl FnMut(RemoteMsg) -> bool) -> bool {
        let mut any = false;
        for _ in 0..self.remote_rx.len() {
            let Ok(msg) = self.remote_rx.try_recv() else { break };
            any |= take(msg);
        }
        any
    }

    /// Takes in a message from another thread: a call joins the ready
    /// queue, an interrupt runs now (no step is running: the loop takes
    /// messages in only between steps). True unless it was a bare `Wake`.
    fn take_in(&self, msg: RemoteMsg) -> bool {
        match msg {
            // Not `push`: that would take in later posts before this one.
            RemoteMsg::Call(call) => self.push_taken_in(Handle::Call(Box::new(call))),
            RemoteMsg::Interrupt(call) => self.run_callback(call),
            RemoteMsg::Wake => return false,
        }
        true
    }

    #[inline]
    fn drain_remote(&self) {
        if self.remote.posted.load(AtomicOrdering::Acquire) == 0 {
            return;
        }
        self.remote.posted.swap(0, AtomicOrdering::AcqRel);
        self.receive_posted();
    }

    #[inline(always)]
    fn run_handle(&self, handle: Handle) {
        match handle {
            Handle::Step(task) => {
                if task.step(&task, self, Wake::Go) {
                    self.push(Handle::Step(task));
                }
            }
            Handle::Wakeup(task, token) => {
                if wake_token(&*task) == token && task.step(&task, self, Wake::Go) {
                    self.push(Handle::Step(task));
                }
            }
            Handle::WakeupCancel(task, cancel) => {
                let (token, e) = *cancel;
                if wake_token(&*task) == token && task.step(&task, self, Wake::Cancel(e)) {
                    self.push(Handle::Step(task));
                }
            }
            Handle::Timer(TimerAction::Sleep(task, token)) => {
                // A task gone with its cancelled sleep has nothing to wake.
                let Some(task) = task.upgrade() else { return };
                // The task resumes in the next iteration: its record is in
                // cache by now (stage one), so load its stack.
                task.prefetch();
                if task.finish_sleep(token) {
                    self.push(Handle::Wakeup(task, token));
                }
            }
            Handle::Timer(TimerAction::Call(call)) => {
                if !call.cancelled.get() {
                    if let Some(f) = call.f.take() {
                        self.run_callback(f);
                    }
                }
            }
            Handle::Call(f) | Handle::Offloaded(f) => self.run_callback(f),
            Handle::Notify(n, index) => n.notify(index),
        }
    }

    /// Explains what the stuck tasks wait on.
    fn deadlock(&self, consequence: &str) -> Error {
        let mut lines = Vec::new();
        for task in self.pending_tasks() {
            lines.push(format!("  {} waits on {}", task.describe(), task.waiting_on()));
        }
        let in_flight = self.remote.work_in_flight();
        let mut message = if self.explore.is_some() && in_flight > 0 {
            // A schedule-driven run never waits for other threads.
            format!(
                "deadlock: no task is ready and no timer is armed, so {consequence}; outside \
                 work is in flight ({in_flight}: a live waker of `await_future`, an `InFlight` \
                 guard, an offloaded closure that has not finished), but a schedule-driven \
                 run never waits for other threads; stuck tasks:\n{}",
                lines.join("\n")
            )
        } else {
            format!(
                "deadlock: no task is ready, no timer is armed and no outside work is in \
                 flight, so {consequence}; stuck tasks:\n{}",
                lines.join("\n")
            )
        };
        if self.explore.is_some() && self.io.get().is_some_and(|io| io.has_waiters()) {
            // A schedule-driven run polls sockets, but never blocks in the
            // poll.
            message.push_str(
                "\ntasks wait on sockets, but a schedule-driven run never blocks for their \
                 readiness: none was ready when the loop looked",
            );
        }
        if let Some(explore) = self.explore() {
            for note in explore.notes() {
                message.push('\n');
                message.push_str(&note);
            }
        }
        Error::kind_msg(ErrorKind::Deadlock, message)
    }

    /// Closes the loop for good: breaks the reference cycles of tasks that
    /// never finished, so their generators are dropped (and their stacks
    /// unwound) now, and drops everything queued.
    ///
    /// Everything is taken out of the loop's cells before it is dropped,
    /// since destructors may call back into the loop (cancel a task, queue
    /// a callback); what they queue is dropped in the next round. A panic
    /// in one destructor is reported and the rest still run.
    pub(crate) fn teardown(&self) {
        // What the layers above keep for this loop goes first.
        let hooks = std::mem::take(&mut *self.on_close.borrow_mut());
        drop_each(hooks.into_iter().map(CallOnDrop));
        self.closed.set(true);
        self.remote.closed.store(true, AtomicOrdering::Release);
        loop {
            // Calls posted before the loop closed will never run.
            let mut posted = Vec::new();
            while let Ok(msg) = self.remote_rx.try_recv() {
                posted.push(msg);
            }
            drop_each(posted);
            let interrupts = std::mem::take(&mut *self.interrupts.borrow_mut());
            drop_each(interrupts);
            let stuck = self.pending_tasks();
            self.registry.borrow_mut().clear();
            let ready = std::mem::take(&mut *self.ready.borrow_mut());
            let timers = std::mem::replace(&mut *self.timers.borrow_mut(), Timers::new());
            if stuck.is_empty()
                && ready.is_empty()
                && timers.len() == 0
                && self.remote_rx.is_empty()
            {
                // Keep the empty buffers for the next loop on this thread.
                self.restore_buffers(ready, timers);
                return;
            }
            let mut ready = ready;
            drop_each(ready.drain(..));
            let mut timers = timers;
            drop_each(timers.drain());
            for task in stuck {
                self.report(ExceptionContext::new(
                    "Task was destroyed but it is pending!",
                    None,
                    Some(task.name()),
                ));
                drop_each(Some(AbandonOnDrop(task)));
            }
            self.restore_buffers(ready, timers);
        }
    }

    /// Puts emptied buffers back, unless something was queued meanwhile.
    fn restore_buffers(&self, ready: VecDeque<Handle>, timers: Timers<TimerAction>) {
        if let Ok(mut cell) = self.ready.try_borrow_mut() {
            if cell.is_empty() {
                *cell = ready;
            }
        }
        if let Ok(mut cell) = self.timers.try_borrow_mut() {
            if cell.len() == 0 {
                *cell = timers;
            }
        }
    }
}

/// Calls a closure when dropped, so [`drop_each`] runs a list of them and
/// reports any that panics.
struct CallOnDrop(Box<dyn FnOnce()>);

impl Drop for CallOnDrop {
    fn drop(&mut self) {
        let f = std::mem::replace(&mut self.0, Box::new(|| {}));
        f();
    }
}

/// Abandons a stuck task when dropped, so [`drop_each`] can report a panic
/// from its destructors.
struct AbandonOnDrop(Record<dyn Runnable<Core>>);

impl Drop for AbandonOnDrop {
    fn drop(&mut self) {
        self.0.abandon();
    }
}

/// Drops each item on its own, with no borrow of the loop held: a panic in
/// one destructor is reported and the others still run. Python hands such
/// errors to the loop's exception handler.
pub(crate) fn drop_each<T>(items: impl IntoIterator<Item = T>) {
    for item in items {
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| drop(item))) {
            eprintln!(
                "gencoro: a destructor panicked while the event loop dropped it: {}",
                crate::generator::panic_message(&*payload)
            );
        }
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        let mut ready = std::mem::take(self.ready.get_mut());
        let mut timers = std::mem::replace(self.timers.get_mut(), Timers::new());
        let mut registry = std::mem::take(self.registry.get_mut());
        // Dropping what is left may drop tasks, whose destructors may run
        // arbitrary code: do it before the buffers are put aside.
        ready.clear();
        timers.clear();
        registry.clear();
        let _ = SPARE.try_with(|spare| {
            if let Ok(mut spare) = spare.try_borrow_mut() {
                *spare = Some(Buffers { ready, timers, registry });
            }
        });
    }
}

impl Core {
    /// Runs a callback; a panic in it is reported and the loop goes on.
    /// Python: `Handle._run` hands exceptions to the exception handler.
    fn run_callback(&self, f: Box<dyn FnOnce()>) {
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(f)) {
            self.report(ExceptionContext::new(
                "Exception in callback",
                Some(Error::panicked(payload)),
                None,
            ));
        }
    }
}

impl fmt::Debug for Core {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Core")
            .field("id", &self.id)
            .field("closed", &self.closed.get())
            .field("clock", &self.clock)
            .field("ready", &self.ready.borrow().len())
            .field("timers", &self.timers.borrow().len())
            .finish_non_exhaustive()
    }
}
