//! Property tests over scheduling: run a scenario under many interleavings
//! of its tasks, on virtual time, find one that breaks a property, shrink it
//! to the fewest deviations from asyncio's order, replay it, and draw it.
//!
//! A *scenario* is a closure that runs as the main task of a fresh event
//! loop (the way [`runtime::run`](crate::runtime::run) runs `main`) and
//! returns whether its property held: `()`, a `bool`, or a `Result<(), E>`;
//! a panic fails it too (see [`Property`]). Each run of it is driven by a
//! [`Schedule`]:
//!
//! * Wherever the loop could legitimately run more than one thing next, the
//!   schedule picks: which ready task or callback runs first, which of
//!   several timers with the same deadline fires first, which finished
//!   [`offload`](crate::runtime::offload)ed closure is delivered first.
//! * Choice 0 is what asyncio's FIFO order picks, and a schedule that runs
//!   out picks 0 from then on: the empty schedule ([`Schedule::fifo`]) is
//!   asyncio's own order, and shrinking a schedule towards zeros converges
//!   on the fewest deviations from it.
//! * A run is reproducible: the clock is virtual, offloaded closures run
//!   one at a time (each on a thread of its own while the loop's thread
//!   waits for it, so it sees what a pool thread sees), and default task names are
//!   numbered per run. The same scenario under the same schedule gives the
//!   same [`Trace`].
//!
//! Four ways to explore:
//!
//! * [`check`] (feature `testing`): proptest generates schedules, and
//!   shrinks a failing one; `PROPTEST_CASES` is honoured and failures are
//!   persisted in proptest's regression file.
//! * [`check_exhaustive`]: every schedule with at most `k` deviations, the
//!   fewest first, so the first failure is minimal by construction (the
//!   bounded-preemption search of CHESS and loom).
//! * [`check_seeded`]: a quick random walk, each seed a schedule.
//! * [`replay`]: one given schedule, with its trace.
//!
//! ```
//! use std::cell::Cell;
//! use std::rc::Rc;
//! use gencoro::runtime::{self, Error};
//! use gencoro::testing;
//!
//! // Two tasks increment a shared counter with a suspension between the
//! // read and the write; the second does other work first. Under FIFO they
//! // happen to take turns, but one deviation lets both read the same value.
//! let lost_update = || -> Result<(), String> {
//!     let counter = Rc::new(Cell::new(0));
//!     let tasks: Vec<_> = (0..2)
//!         .map(|other_work| {
//!             let counter = counter.clone();
//!             runtime::spawn(move || -> Result<(), Error> {
//!                 for _ in 0..other_work {
//!                     runtime::sleep(std::time::Duration::ZERO)?;
//!                 }
//!                 let seen = counter.get();
//!                 runtime::sleep(std::time::Duration::ZERO)?;
//!                 counter.set(seen + 1);
//!                 Ok(())
//!             })
//!         })
//!         .collect();
//!     runtime::gather(tasks).map_err(|e| e.to_string())?;
//!     if counter.get() == 2 { Ok(()) } else { Err(format!("counter is {}", counter.get())) }
//! };
//! // FIFO happens to be fine...
//! assert!(testing::replay(&testing::Schedule::fifo(), lost_update).passed());
//! // ...but the search finds the lost update, with one deviation.
//! let failure = testing::check_exhaustive(1, lost_update).unwrap_err();
//! assert_eq!(failure.schedule().deviations(), 1);
//! assert_eq!(failure.message(), "counter is 1");
//! // The schedule replays to the same trace.
//! let again = testing::replay(failure.schedule(), lost_update);
//! assert_eq!(again.trace(), failure.trace());
//! ```
//!
//! # What a schedule may and may not change
//!
//! Only orders a real run could produce are explored. A schedule never runs
//! a task that is not ready, never reorders one task's own steps, and never
//! reorders callbacks among themselves (the loop promises they run in the
//! order they were scheduled), except timer callbacks (`call_later`) with
//! the same deadline. These rules of FIFO order still hold:
//!
//! * the `_run_once` snapshot: what an iteration makes ready runs in a
//!   later iteration, never in the same one;
//! * due timers are queued behind what was already ready, and a timer with
//!   an earlier deadline fires before one with a later deadline;
//! * a task's timer only completes its sleep, and the task resumes in a
//!   later iteration.
//!
//! Relaxed: the order of tasks (and of the callbacks' turn among them)
//! within an iteration, the order of timers with the same deadline, and
//! when offloaded closures run (the schedule may put one off from
//! iteration to iteration, as a slow closure would be) and so the order
//! in which they deliver their results.
//!
//! A schedule-driven run never waits for other threads. Outside work still
//! in flight when nothing else can happen (an [`InFlight`] guard held, a
//! Rust future whose waker nobody will wake) ends the run in a
//! [`FailureKind::Deadlock`] that says so, and so does an offloaded
//! closure still running after [`Checker::offload_timeout`] (one that
//! waits for the loop, which cannot run meanwhile): the run ends there,
//! and the closure is left to finish on its own.
//!
//! Not covered: a task woken by another thread (a
//! [`LoopHandle`](crate::runtime::LoopHandle) call, a Rust future's waker
//! woken elsewhere) makes a run depend on that thread's timing.
//! [`Task::id`](crate::runtime::Task::id) stays process-wide, so differs
//! from run to run.
//!
//! [`InFlight`]: crate::runtime::InFlight

mod schedule;
mod timeline;

#[cfg(feature = "testing")]
mod chrome;

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

pub use self::schedule::{ParseScheduleError, Schedule};
use crate::runtime::explore::{Choice, DEFAULT_OFFLOAD_TIMEOUT, Explore, Source, SplitMix64};
pub use crate::runtime::explore::{Ending, Trace, TraceEvent, TraceEventKind};
use crate::runtime::{Builder, Clock, ErrorKind, ExceptionContext};

/// What a scenario returns: whether its property held.
///
/// * `()`: it held (a panic or an assertion failure says it did not);
/// * `bool`: `false` fails;
/// * `Result<(), E>`: an `Err` fails, with `E`'s message.
pub trait Property {
    /// `Ok` if the property held, else what went wrong.
    fn verdict(self) -> Result<(), String>;
}

impl Property for () {
    fn verdict(self) -> Result<(), String> {
        Ok(())
    }
}

impl Property for bool {
    fn verdict(self) -> Result<(), String> {
        if self { Ok(()) } else { Err("the property returned false".to_owned()) }
    }
}

impl<E: fmt::Display> Property for Result<(), E> {
    fn verdict(self) -> Result<(), String> {
        self.map_err(|e| e.to_string())
    }
}

/// Why a run failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// The scenario returned `false` or an `Err` (or its main task ended
    /// with an error).
    Property,
    /// The scenario panicked (an `assert!` failed, say).
    Panic,
    /// Every task waits, forever: nothing is ready, no timer is armed. The
    /// message names the stuck tasks and what each waits on.
    Deadlock,
    /// The run took more steps than the limit
    /// ([`Checker::step_limit`]): it does not end.
    StepLimit,
    /// Something nobody could be told about was reported: a task's
    /// failure nobody retrieved, a callback that panicked
    /// ([`Builder::exception_handler`]'s reports). See
    /// [`Checker::fail_on_unhandled`].
    Unhandled,
    /// A schedule failed, but passed when it was run again for the report:
    /// the scenario is not deterministic (it keeps state between runs,
    /// reads the wall clock, or depends on another thread), so the
    /// schedule cannot tell the story.
    NotReproducible,
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailureKind::Property => "the property failed",
            FailureKind::Panic => "the scenario panicked",
            FailureKind::Deadlock => "deadlock",
            FailureKind::StepLimit => "the run does not end (step limit)",
            FailureKind::Unhandled => "an unhandled error was reported",
            FailureKind::NotReproducible => "the failure did not reproduce",
        })
    }
}

/// One run of a scenario under a schedule.
#[derive(Clone, Debug)]
pub struct Run {
    schedule: Schedule,
    choices: Vec<Choice>,
    trace: Trace,
    failure: Option<(FailureKind, String)>,
    steps: u64,
}

impl Run {
    /// The schedule the run took: the choices it made (each reduced to its
    /// number of options), trailing zeros left out. Replaying it repeats
    /// the run.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// How many points of the run had more than one option.
    pub fn choice_points(&self) -> usize {
        self.choices.len()
    }

    /// How many ready handles (task steps, callbacks) the loop ran.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// What the tasks did (empty for runs made without a trace, as the
    /// searches make them until one fails).
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// Whether the property held.
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }

    /// Why it failed, if it did.
    pub fn failure_kind(&self) -> Option<FailureKind> {
        self.failure.as_ref().map(|(kind, _)| *kind)
    }

    /// What went wrong, if anything did.
    pub fn failure_message(&self) -> Option<&str> {
        self.failure.as_ref().map(|(_, message)| message.as_str())
    }
}

/// A schedule under which the property failed, as small as the search could
/// make it, with the trace of that run. Its `Display` is the whole report:
/// the message, the schedule, how to replay it, and the timeline.
#[derive(Clone)]
pub struct Failure {
    run: Box<Run>,
    schedules_run: usize,
}

impl Failure {
    /// The failing schedule.
    pub fn schedule(&self) -> &Schedule {
        &self.run.schedule
    }

    /// Why the run failed.
    pub fn kind(&self) -> FailureKind {
        self.run.failure.as_ref().map_or(FailureKind::Property, |(kind, _)| *kind)
    }

    /// What went wrong.
    pub fn message(&self) -> &str {
        self.run.failure.as_ref().map_or("", |(_, message)| message.as_str())
    }

    /// The trace of the failing run.
    pub fn trace(&self) -> &Trace {
        &self.run.trace
    }

    /// The failing run itself.
    pub fn run(&self) -> &Run {
        &self.run
    }

    /// How many schedules the search ran, this one included (shrinking
    /// counts too).
    pub fn schedules_run(&self) -> usize {
        self.schedules_run
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "scheduling property failed: {}", self.kind())?;
        for line in self.message().lines() {
            writeln!(f, "  {line}")?;
        }
        writeln!(f, "minimal schedule: {}", self.schedule())?;
        writeln!(f, "deviations from fifo: {}", self.schedule().deviations())?;
        writeln!(f, "schedules run: {}", self.schedules_run)?;
        writeln!(
            f,
            "replay: gencoro::testing::replay(&\"{}\".parse().unwrap(), scenario)",
            self.schedule()
        )?;
        writeln!(f, "timeline:")?;
        write!(f, "{}", self.run.trace.timeline_abridged(REPORT_ROWS))
    }
}

/// The whole report, as `Display` gives it, so that `unwrap` shows it.
impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Failure {}

/// What a search that found no failure did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Explored {
    /// How many schedules it ran.
    pub schedules_run: usize,
}

impl fmt::Display for Explored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the property held under {} schedules", self.schedules_run)
    }
}

/// The settings of a search. The free functions ([`check`],
/// [`check_exhaustive`], [`check_seeded`], [`replay`]) use the defaults.
///
/// ```
/// use gencoro::testing::{Checker, FailureKind};
/// use gencoro::runtime;
///
/// // A scenario that never ends is reported, not run forever.
/// let failure = Checker::new()
///     .step_limit(1_000)
///     .check_seeded(7, 10, || -> Result<(), runtime::Error> {
///         loop {
///             runtime::sleep(std::time::Duration::from_secs(1))?;
///         }
///     })
///     .unwrap_err();
/// assert_eq!(failure.kind(), FailureKind::StepLimit);
/// ```
#[derive(Clone, Debug)]
pub struct Checker {
    cases: Option<u32>,
    step_limit: u64,
    stack_size: Option<usize>,
    fail_on_unhandled: bool,
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    max_choice: u32,
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    persist_failures: bool,
    offload_timeout: std::time::Duration,
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    proptest_seed: Option<u64>,
}

impl Default for Checker {
    fn default() -> Self {
        Checker::new()
    }
}

/// How a bounded exhaustive search ended.
enum Search {
    /// This schedule failed, after this many runs.
    Failed(Vec<u32>, usize),
    /// Every schedule passed.
    Passed(usize),
    /// The budget ran out first.
    OutOfBudget(usize),
}

/// The most runs shrinking spends searching for a schedule with fewer
/// deviations than the one it found (see `Checker::minimize`).
pub const MINIMIZE_BUDGET: usize = 20_000;

/// The most timeline rows a failure report prints: the first and the last
/// of a longer timeline, with the count of those left out.
const REPORT_ROWS: usize = 400;

/// The default step limit: far more than a test scenario takes.
pub const DEFAULT_STEP_LIMIT: u64 = 1_000_000;

impl Checker {
    /// The defaults: proptest's case count (`PROPTEST_CASES`, else 256), a
    /// step limit of [`DEFAULT_STEP_LIMIT`], the loop's default stack size,
    /// and unhandled errors failing the property.
    pub fn new() -> Checker {
        Checker {
            cases: None,
            step_limit: DEFAULT_STEP_LIMIT,
            stack_size: None,
            fail_on_unhandled: true,
            max_choice: 255,
            persist_failures: true,
            proptest_seed: None,
            offload_timeout: DEFAULT_OFFLOAD_TIMEOUT,
        }
    }

    /// How long an offloaded closure of a run may take before the run gives
    /// up waiting for it: the run then ends at once as a
    /// [`FailureKind::Deadlock`] that names the closure, which goes on
    /// running on its own thread. Default: 5 s.
    pub fn offload_timeout(mut self, timeout: std::time::Duration) -> Checker {
        self.offload_timeout = timeout;
        self
    }

    /// Whether [`check`](Self::check) saves failing schedules in
    /// proptest's regression file (and replays those first). Default: true.
    pub fn persist_failures(mut self, persist: bool) -> Checker {
        self.persist_failures = persist;
        self
    }

    /// Makes [`check`](Self::check) draw its schedules from this seed
    /// instead of a random one, so the search itself repeats.
    pub fn proptest_seed(mut self, seed: u64) -> Checker {
        self.proptest_seed = Some(seed);
        self
    }

    /// How many schedules [`check`](Self::check) generates (overrides
    /// `PROPTEST_CASES`).
    pub fn cases(mut self, cases: u32) -> Checker {
        self.cases = Some(cases);
        self
    }

    /// The most ready handles (task steps and callbacks) one run may take
    /// before it fails with [`FailureKind::StepLimit`].
    pub fn step_limit(mut self, steps: u64) -> Checker {
        self.step_limit = steps;
        self
    }

    /// The stack size of the scenario's tasks
    /// ([`Builder::stack_size`]).
    pub fn stack_size(mut self, bytes: usize) -> Checker {
        self.stack_size = Some(bytes);
        self
    }

    /// Whether reports of the loop's exception handler (a task failure
    /// nobody retrieved, a panicking callback) fail the property
    /// ([`FailureKind::Unhandled`]). Default: true.
    pub fn fail_on_unhandled(mut self, fail: bool) -> Checker {
        self.fail_on_unhandled = fail;
        self
    }

    /// Runs `scenario` once, under `schedule`, with its trace.
    pub fn replay<F, P>(&self, schedule: &Schedule, scenario: F) -> Run
    where
        F: Fn() -> P + 'static,
        P: Property,
    {
        let scenario = Rc::new(scenario);
        self.execute(&scenario, Source::Fixed(schedule.choices().to_vec()), true)
    }

    /// Runs `scenario` under every schedule with at most `max_deviations`
    /// choices different from FIFO's, the fewest first (and, among equals,
    /// the earliest deviations first), until one fails: that one is
    /// minimal by construction. Returns how many it ran if none failed.
    ///
    /// The number of schedules grows as the number of choice points to the
    /// power `max_deviations`: 1 to 3 suits scenarios of a few tasks.
    ///
    /// # Errors
    ///
    /// The first failing schedule, with its trace.
    pub fn check_exhaustive<F, P>(
        &self,
        max_deviations: usize,
        scenario: F,
    ) -> Result<Explored, Failure>
    where
        F: Fn() -> P + 'static,
        P: Property,
    {
        let scenario = Rc::new(scenario);
        match self.search(&scenario, max_deviations, usize::MAX) {
            Search::Failed(schedule, runs) => Err(self.failure(&scenario, schedule, runs)),
            Search::Passed(runs) | Search::OutOfBudget(runs) => {
                Ok(Explored { schedules_run: runs })
            }
        }
    }

    /// The search of [`check_exhaustive`](Self::check_exhaustive), which
    /// gives up after `budget` runs.
    fn search<F, P>(&self, scenario: &Rc<F>, max_deviations: usize, budget: usize) -> Search
    where
        F: Fn() -> P + 'static,
        P: Property,
    {
        let mut runs = 0;
        let first = self.execute(scenario, Source::Fixed(Vec::new()), false);
        runs += 1;
        if !first.passed() {
            return Search::Failed(Vec::new(), runs);
        }
        // Each entry: a schedule whose last choice is its last deviation,
        // and the choice points its run met. The next level extends each
        // with one deviation after its last one, so every schedule is made
        // once.
        let mut frontier: Vec<(Vec<u32>, Vec<Choice>)> = vec![(Vec::new(), first.choices)];
        for deviations in 1..=max_deviations {
            if frontier.is_empty() {
                break;
            }
            let last_level = deviations == max_deviations;
            let mut next = Vec::new();
            for (prefix, choices) in &frontier {
                for (point, choice) in choices.iter().enumerate().skip(prefix.len()) {
                    for value in 1..choice.options {
                        if runs >= budget {
                            return Search::OutOfBudget(runs);
                        }
                        let mut schedule = prefix.clone();
                        schedule.resize(point, 0);
                        schedule.push(value);
                        let run = self.execute(scenario, Source::Fixed(schedule.clone()), false);
                        runs += 1;
                        if !run.passed() {
                            return Search::Failed(schedule, runs);
                        }
                        if !last_level {
                            next.push((schedule, run.choices));
                        }
                    }
                }
            }
            frontier = next;
        }
        Search::Passed(runs)
    }

    /// Runs `scenario` under `schedules` random schedules drawn from
    /// `seed`: at every choice point each option is equally likely. A
    /// failing schedule is then shrunk (each deviation is dropped if the
    /// run still fails without it, then schedules with fewer deviations are
    /// searched, fewest first) and reported with its trace. The same seed
    /// explores the same schedules.
    ///
    /// # Errors
    ///
    /// The first failing schedule found, shrunk, with its trace.
    pub fn check_seeded<F, P>(
        &self,
        seed: u64,
        schedules: usize,
        scenario: F,
    ) -> Result<Explored, Failure>
    where
        F: Fn() -> P + 'static,
        P: Property,
    {
        let scenario = Rc::new(scenario);
        let mut seeds = SplitMix64::new(seed);
        for i in 0..schedules {
            let source = Source::Random(SplitMix64::new(seeds.next_u64()));
            let run = self.execute(&scenario, source, false);
            if !run.passed() {
                let choices = run.schedule.choices().to_vec();
                let (schedule, extra) = self.minimize(&scenario, choices);
                return Err(self.failure(&scenario, schedule, i + 1 + extra));
            }
        }
        Ok(Explored { schedules_run: schedules })
    }

    /// Makes a failing schedule as small as it can: first drops each
    /// deviation the failure does not need (greedy, so it may stop at a
    /// local minimum such as `1.1` where `2` alone fails too), then, if
    /// more than one is left, searches every schedule with fewer
    /// deviations, fewest first (within [`MINIMIZE_BUDGET`] runs), and
    /// takes the first that fails. Returns the schedule and the runs made.
    fn minimize<F, P>(&self, scenario: &Rc<F>, choices: Vec<u32>) -> (Vec<u32>, usize)
    where
        F: Fn() -> P + 'static,
        P: Property,
    {
        let (best, mut runs) = self.shrink(scenario, choices);
        let deviations = best.iter().filter(|&&c| c != 0).count();
        if deviations < 2 {
            return (best, runs);
        }
        match self.search(scenario, deviations - 1, MINIMIZE_BUDGET) {
            Search::Failed(smaller, n) => {
                runs += n;
                // What that run really chose, with its zeros trimmed.
                (Schedule::new(smaller).choices().to_vec(), runs)
            }
            Search::Passed(n) | Search::OutOfBudget(n) => (best, runs + n),
        }
    }

    /// Greedy shrinking: drops each deviation, last first, while the run
    /// still fails. Returns the schedule and the runs it took.
    fn shrink<F, P>(&self, scenario: &Rc<F>, choices: Vec<u32>) -> (Vec<u32>, usize)
    where
        F: Fn() -> P + 'static,
        P: Property,
    {
        let mut best = choices;
        let mut runs = 0;
        // Passes until one drops nothing: dropping a deviation can change
        // the later choices, and so make one kept earlier unneeded.
        loop {
            let before = best.clone();
            let mut i = best.len();
            while i > 0 {
                i -= 1;
                if best.get(i).is_none_or(|&c| c == 0) {
                    continue;
                }
                let mut candidate = best.clone();
                candidate[i] = 0;
                let run = self.execute(scenario, Source::Fixed(candidate), false);
                runs += 1;
                if !run.passed() {
                    // What the run really chose, which may differ after `i`.
                    best = run.schedule.choices().to_vec();
                    i = i.min(best.len());
                }
            }
            if best == before {
                break;
            }
        }
        (best, runs)
    }

    /// Re-runs a failing schedule with its trace, for the report.
    fn failure<F, P>(&self, scenario: &Rc<F>, choices: Vec<u32>, schedules_run: usize) -> Failure
    where
        F: Fn() -> P + 'static,
        P: Property,
    {
        let mut run = self.execute(scenario, Source::Fixed(choices), true);
        if run.passed() {
            // The scenario is not deterministic: the run that failed and
            // this one, under the same schedule, went differently.
            run.failure = Some((
                FailureKind::NotReproducible,
                "the schedule failed once, but passed when re-run for this report: the \
                 scenario depends on something besides the schedule (state kept between \
                 runs, another thread, the wall clock, randomness)"
                    .to_owned(),
            ));
        }
        Failure { run: Box::new(run), schedules_run }
    }

    fn execute<F, P>(&self, scenario: &Rc<F>, source: Source, record_trace: bool) -> Run
    where
        F: Fn() -> P + 'static,
        P: Property,
    {
        let explore = Rc::new(
            Explore::new(source, self.step_limit, record_trace)
                .with_offload_timeout(self.offload_timeout),
        );
        let reports = Rc::new(RefCell::new(Vec::new()));
        let sink = reports.clone();
        let mut builder = Builder::new()
            .clock(Clock::virtual_time())
            .explore(explore.clone())
            .exception_handler(move |cx| sink.borrow_mut().push(describe_report(cx)));
        if let Some(bytes) = self.stack_size {
            builder = builder.stack_size(bytes);
        }
        let body = scenario.clone();
        let outcome = builder.run(move || Ok(body().verdict()));
        let failure = match outcome {
            Ok(Ok(())) => {
                let reports = reports.borrow();
                (self.fail_on_unhandled && !reports.is_empty())
                    .then(|| (FailureKind::Unhandled, reports.join("\n")))
            }
            Ok(Err(message)) => Some((FailureKind::Property, message)),
            Err(e) => {
                let kind = match e.kind() {
                    ErrorKind::Panicked => FailureKind::Panic,
                    ErrorKind::Deadlock => FailureKind::Deadlock,
                    ErrorKind::StepLimit => FailureKind::StepLimit,
                    _ => FailureKind::Property,
                };
                Some((kind, e.to_string()))
            }
        };
        let choices = explore.take_choices();
        Run {
            schedule: Schedule::new(choices.iter().map(|c| c.chosen).collect()),
            choices,
            trace: explore.take_trace(),
            failure,
            steps: explore.steps(),
        }
    }
}

fn describe_report(cx: &ExceptionContext) -> String {
    let mut line = cx.message().to_owned();
    if let Some(task) = cx.task_name() {
        line.push_str(&format!(" (task '{task}')"));
    }
    if let Some(error) = cx.error() {
        line.push_str(&format!(": {error}"));
    }
    line
}

#[cfg(feature = "testing")]
mod proptest_search {
    use std::cell::Cell;
    use std::rc::Rc;

    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed, TestCaseError, TestError, TestRunner};

    use super::{Checker, Explored, Failure, Property, Source};

    impl Checker {
        /// Explores schedules with proptest: each case is a schedule (a
        /// vector of choices, mostly zeros), and a failing one is shrunk by
        /// proptest towards fewer and smaller choices, so towards the
        /// fewest deviations from FIFO; if more than one deviation is left,
        /// every schedule with fewer is then tried, fewest first (at most
        /// [`MINIMIZE_BUDGET`](super::MINIMIZE_BUDGET) runs), since
        /// proptest can stop at a local minimum such as `1.1` where `2`
        /// alone fails too. The case count is `PROPTEST_CASES`
        /// (default 256) unless [`cases`](Self::cases) sets it; failures are
        /// saved in proptest's regression file next to the calling source
        /// file, and re-run first next time.
        ///
        /// # Errors
        ///
        /// The failing schedule proptest shrank to, with its trace.
        #[track_caller]
        pub fn check<F, P>(&self, scenario: F) -> Result<Explored, Failure>
        where
            F: Fn() -> P + 'static,
            P: Property,
        {
            let source_file = std::panic::Location::caller().file();
            let scenario = Rc::new(scenario);
            // The FIFO run first: it must pass, and its number of choice
            // points sizes the schedules.
            let fifo = self.execute(&scenario, Source::Fixed(Vec::new()), false);
            if !fifo.passed() {
                return Err(self.failure(&scenario, Vec::new(), 1));
            }
            // Long enough to reach choice points that only a deviation
            // opens up, beyond those of the FIFO run.
            let length = (fifo.choice_points() * 4).max(64);
            let mut config = Config { source_file: Some(source_file), ..Config::default() };
            if let Some(cases) = self.cases {
                config.cases = cases;
            }
            if !self.persist_failures {
                config.failure_persistence = None;
            }
            if let Some(seed) = self.proptest_seed {
                config.rng_seed = RngSeed::Fixed(seed);
            }
            let mut runner = TestRunner::new(config);
            let choice = prop_oneof![4 => Just(0u32), 1 => 1..=self.max_choice];
            let strategy = proptest::collection::vec(choice, 0..=length);
            let runs = Cell::new(1usize);
            let outcome = runner.run(&strategy, |choices| {
                runs.set(runs.get() + 1);
                let run = self.execute(&scenario, Source::Fixed(choices), false);
                match run.failure_message() {
                    None => Ok(()),
                    Some(message) => Err(TestCaseError::fail(message.to_owned())),
                }
            });
            match outcome {
                Ok(()) => Ok(Explored { schedules_run: runs.get() }),
                Err(TestError::Fail(_, choices)) => {
                    // What the shrunk schedule really chose; then fewer
                    // deviations if proptest stopped at a local minimum
                    // (it moves each choice towards 0, so `1.1` can stay
                    // where `2` alone fails too).
                    let run = self.execute(&scenario, Source::Fixed(choices), false);
                    let effective = run.schedule().choices().to_vec();
                    let (smallest, extra) = self.minimize(&scenario, effective);
                    Err(self.failure(&scenario, smallest, runs.get() + 1 + extra))
                }
                Err(TestError::Abort(reason)) => {
                    panic!("gencoro::testing::check: proptest gave up: {reason}")
                }
            }
        }
    }

    /// Explores schedules of `scenario` with proptest, with the default
    /// settings; see [`Checker::check`].
    ///
    /// # Errors
    ///
    /// The failing schedule proptest shrank to, with its trace.
    #[track_caller]
    pub fn check<F, P>(scenario: F) -> Result<Explored, Failure>
    where
        F: Fn() -> P + 'static,
        P: Property,
    {
        Checker::new().check(scenario)
    }
}

#[cfg(feature = "testing")]
pub use proptest_search::check;

/// Runs every schedule of `scenario` with at most `max_deviations`
/// deviations from FIFO, the fewest first; see
/// [`Checker::check_exhaustive`].
///
/// # Errors
///
/// The first failing schedule, minimal by construction, with its trace.
pub fn check_exhaustive<F, P>(max_deviations: usize, scenario: F) -> Result<Explored, Failure>
where
    F: Fn() -> P + 'static,
    P: Property,
{
    Checker::new().check_exhaustive(max_deviations, scenario)
}

/// Runs `scenario` under `schedules` random schedules drawn from `seed`;
/// see [`Checker::check_seeded`].
///
/// # Errors
///
/// The first failing schedule, shrunk, with its trace.
pub fn check_seeded<F, P>(seed: u64, schedules: usize, scenario: F) -> Result<Explored, Failure>
where
    F: Fn() -> P + 'static,
    P: Property,
{
    Checker::new().check_seeded(seed, schedules, scenario)
}

/// Runs `scenario` once under `schedule`, with its trace; see
/// [`Checker::replay`].
pub fn replay<F, P>(schedule: &Schedule, scenario: F) -> Run
where
    F: Fn() -> P + 'static,
    P: Property,
{
    Checker::new().replay(schedule, scenario)
}
