//! Model-based test of `Queue`: random programs of producers, consumers,
//! cancellations, `try_*` calls and shutdowns over a bounded queue, checked
//! against a plain reference model (a `VecDeque` and a flag).
//!
//! A program has a `maxsize` (1 to 3), up to five actors spawned at the
//! start, and a script for `main`:
//!
//! * a producer puts its own items (distinct numbers), with a pause before
//!   each (`sleep(0)`, a plain yield, or 1 to 2 s);
//! * a consumer gets a number of items, with a pause before each get;
//! * `main` sleeps, cancels an actor (wherever it is: pausing, waiting in
//!   `put` or `get`, or done), calls `try_put` or `try_get`, or shuts the
//!   queue down (with or without `immediate`). A `try_*` call is often
//!   followed at once by a cancel, so that a waiter woken by it is
//!   cancelled in the same loop iteration.
//!
//! The model follows every operation as it completes (nothing else runs
//! between an operation's effect on the queue and its return, so the model
//! sees them in the queue's own order):
//!
//! * a `put` or `try_put` that succeeds appends to the model, and the queue
//!   then holds as many items as the model;
//! * a `get` or `try_get` that succeeds returns the model's front item;
//! * `try_put` fails with `Full` only when the model is full, `try_get` with
//!   `Empty` only when it is empty, and either with `ShutDown` only after a
//!   shutdown (a get only once the model is empty, or after `immediate`);
//! * a failed `put` hands back exactly the item it was given;
//! * `shutdown(true)` reports as dropped exactly the model's items.
//!
//! At the end, once `main` has slept long enough for every actor to be
//! done or stuck, no actor waits in `get` while an item is queued (or the
//! queue is shut down), and none waits in `put` while a slot is free (or
//! the queue is shut down): no wake-up was lost or stolen. After the run,
//! every item put was got exactly once, or dropped by the shutdown, or is
//! still in the queue, in the model's order.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use gencoro::runtime::{self, Builder, Clock, Error, Task};
use gencoro::sync::{GetError, PutError, Queue, TryGetError, TryPutError};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Actor {
    /// Puts `pauses.len()` items, pausing `pauses[i]` s before the i-th.
    Producer { pauses: Vec<u8> },
    /// Gets `pauses.len()` items, pausing `pauses[i]` s before the i-th.
    Consumer { pauses: Vec<u8> },
}

#[derive(Debug, Clone)]
enum MainOp {
    Sleep(u8),
    Cancel(usize),
    TryPut,
    TryGet,
    Shutdown { immediate: bool },
}

#[derive(Debug, Clone)]
struct Program {
    maxsize: usize,
    actors: Vec<Actor>,
    main: Vec<MainOp>,
}

fn pauses() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(0u8..3, 0..6)
}

fn actor() -> impl Strategy<Value = Actor> {
    prop_oneof![
        pauses().prop_map(|pauses| Actor::Producer { pauses }),
        pauses().prop_map(|pauses| Actor::Consumer { pauses }),
    ]
}

/// One or two operations of `main`: the pairs are a `try_put` or a
/// `try_get` and a cancel in the same loop iteration, the race in which a
/// waiter is woken and cancelled before it runs.
fn main_ops(actors: usize) -> impl Strategy<Value = Vec<MainOp>> {
    prop_oneof![
        4 => (0u8..3).prop_map(|secs| vec![MainOp::Sleep(secs)]),
        2 => (0..actors).prop_map(|i| vec![MainOp::Cancel(i)]),
        2 => Just(vec![MainOp::TryPut]),
        2 => Just(vec![MainOp::TryGet]),
        2 => (0..actors).prop_map(|i| vec![MainOp::TryPut, MainOp::Cancel(i)]),
        2 => (0..actors).prop_map(|i| vec![MainOp::TryGet, MainOp::Cancel(i)]),
        1 => any::<bool>().prop_map(|immediate| vec![MainOp::Shutdown { immediate }]),
    ]
}

fn program() -> impl Strategy<Value = Program> {
    (1usize..4, prop::collection::vec(actor(), 1..6)).prop_flat_map(|(maxsize, actors)| {
        let ops = prop::collection::vec(main_ops(actors.len()), 0..10);
        (Just(maxsize), Just(actors), ops).prop_map(|(maxsize, actors, main)| Program {
            maxsize,
            actors,
            main: main.into_iter().flatten().collect(),
        })
    })
}

/// Where an actor is, for the lost-wake-up check.
#[derive(Debug, Clone, Copy, PartialEq)]
enum At {
    Elsewhere,
    InGet,
    InPut,
}

/// The reference model and what the run observed.
#[derive(Default)]
struct Model {
    maxsize: usize,
    items: VecDeque<u32>,
    shut_down: bool,
    /// Items handed out by `get`/`try_get`, in order.
    got: Vec<u32>,
    /// Items dropped by `shutdown(true)`.
    dropped: Vec<u32>,
    /// Items a failed `put` or `try_put` handed back.
    returned: Vec<u32>,
    /// Every item a `put` or `try_put` was offered.
    offered: Vec<u32>,
    /// Where each actor is.
    at: Vec<At>,
    /// Disagreements with the model, reported at the end.
    errors: Vec<String>,
}

type Shared = Rc<RefCell<Model>>;

impl Model {
    fn check(&mut self, ok: bool, what: String) {
        if !ok {
            self.errors.push(what);
        }
    }

    fn put_ok(&mut self, q: &Queue<u32>, item: u32) {
        self.check(!self.shut_down, format!("{item} was put after the shutdown"));
        self.items.push_back(item);
        self.check(self.items.len() <= self.maxsize, format!("put {item} past maxsize"));
        self.check(
            q.len() == self.items.len(),
            format!("after put {item}: queue holds {}, model {}", q.len(), self.items.len()),
        );
    }

    fn got(&mut self, q: &Queue<u32>, item: u32) {
        let expected = self.items.pop_front();
        self.check(expected == Some(item), format!("got {item}, model says {expected:?}"));
        self.got.push(item);
        self.check(
            q.len() == self.items.len(),
            format!("after get {item}: queue holds {}, model {}", q.len(), self.items.len()),
        );
    }

    fn put_failed(&mut self, offered: u32, back: u32, shut_down: bool) {
        self.check(back == offered, format!("put {offered} handed back {back}"));
        self.check(!shut_down || self.shut_down, format!("put {offered}: shut down early"));
        self.returned.push(back);
    }

    fn get_shut_down(&mut self) {
        self.check(
            self.shut_down && self.items.is_empty(),
            format!("get failed with ShutDown, model {:?} shut={}", self.items, self.shut_down),
        );
    }
}

fn pause(secs: u8) -> Result<(), Error> {
    runtime::sleep(Duration::from_secs(u64::from(secs)))
}

fn producer(q: Queue<u32>, m: Shared, me: usize, pauses: Vec<u8>) -> Result<(), Error> {
    for (i, secs) in pauses.into_iter().enumerate() {
        pause(secs)?;
        let item = 1000 * (me as u32 + 1) + i as u32;
        m.borrow_mut().offered.push(item);
        m.borrow_mut().at[me] = At::InPut;
        let outcome = q.put(item);
        let mut model = m.borrow_mut();
        model.at[me] = At::Elsewhere;
        match outcome {
            Ok(()) => model.put_ok(&q, item),
            Err(PutError::ShutDown(back)) => {
                model.put_failed(item, back, true);
                return Ok(());
            }
            Err(PutError::Wait(back, e)) => {
                model.put_failed(item, back, false);
                return Err(e);
            }
        }
    }
    Ok(())
}

fn consumer(q: Queue<u32>, m: Shared, me: usize, pauses: Vec<u8>) -> Result<(), Error> {
    for secs in pauses {
        pause(secs)?;
        m.borrow_mut().at[me] = At::InGet;
        let outcome = q.get();
        let mut model = m.borrow_mut();
        model.at[me] = At::Elsewhere;
        match outcome {
            Ok(item) => model.got(&q, item),
            Err(GetError::ShutDown) => {
                model.get_shut_down();
                return Ok(());
            }
            Err(GetError::Wait(e)) => return Err(e),
        }
    }
    Ok(())
}

fn run_main(program: Program, q: Queue<u32>, m: Shared) -> Result<(), Error> {
    let tasks: Vec<Task<()>> = program
        .actors
        .iter()
        .cloned()
        .enumerate()
        .map(|(me, actor)| {
            let (q, m) = (q.clone(), m.clone());
            match actor {
                Actor::Producer { pauses } => runtime::spawn(move || producer(q, m, me, pauses)),
                Actor::Consumer { pauses } => runtime::spawn(move || consumer(q, m, me, pauses)),
            }
        })
        .collect();
    let mut next_item = 0;
    for op in program.main {
        match op {
            MainOp::Sleep(secs) => pause(secs)?,
            MainOp::Cancel(i) => {
                if let Some(t) = tasks.get(i) {
                    t.cancel();
                }
            }
            MainOp::TryPut => {
                let item = next_item;
                next_item += 1;
                let outcome = q.try_put(item);
                let mut model = m.borrow_mut();
                model.offered.push(item);
                match outcome {
                    Ok(()) => model.put_ok(&q, item),
                    Err(TryPutError::Full(back)) => {
                        let full = model.items.len() == model.maxsize && !model.shut_down;
                        model.check(full, format!("try_put {item}: Full, but the model is not"));
                        model.put_failed(item, back, false);
                    }
                    Err(TryPutError::ShutDown(back)) => model.put_failed(item, back, true),
                }
            }
            MainOp::TryGet => {
                let outcome = q.try_get();
                let mut model = m.borrow_mut();
                match outcome {
                    Ok(item) => model.got(&q, item),
                    Err(TryGetError::Empty) => {
                        let empty = model.items.is_empty() && !model.shut_down;
                        model.check(empty, "try_get: Empty, but the model is not".to_owned());
                    }
                    Err(TryGetError::ShutDown) => model.get_shut_down(),
                }
            }
            MainOp::Shutdown { immediate } => {
                let dropped = q.shutdown(immediate);
                let mut model = m.borrow_mut();
                model.shut_down = true;
                let expected = if immediate { model.items.drain(..).collect() } else { Vec::new() };
                model.check(
                    dropped == expected.len(),
                    format!("shutdown dropped {dropped}, the model {expected:?}"),
                );
                model.dropped.extend(expected);
                let same = q.len() == model.items.len();
                model.check(same, "len after shutdown".to_owned());
            }
        }
    }
    // Every actor's pauses add up to less than this: they are all done or
    // stuck in a wait by now.
    runtime::sleep(Duration::from_secs(1000))?;
    let mut model = m.borrow_mut();
    for (i, at) in model.at.clone().into_iter().enumerate() {
        let stuck_ok = match at {
            At::Elsewhere => true,
            At::InGet => q.is_empty() && !model.shut_down,
            At::InPut => q.is_full() && !model.shut_down,
        };
        model.check(
            stuck_ok,
            format!(
                "actor {i} still waits ({at:?}) with {} queued, shut={}",
                q.len(),
                q.is_shut_down()
            ),
        );
    }
    Ok(())
}

fn check(program: Program) -> Result<(), TestCaseError> {
    let q: Queue<u32> = Queue::bounded(program.maxsize);
    let m: Shared = Rc::new(RefCell::new(Model {
        maxsize: program.maxsize,
        at: vec![At::Elsewhere; program.actors.len()],
        ..Model::default()
    }));
    let (q2, m2) = (q.clone(), m.clone());
    let outcome =
        Builder::new().clock(Clock::virtual_time()).run(move || run_main(program, q2, m2));
    prop_assert!(outcome.is_ok(), "main failed: {outcome:?}");
    let mut model = m.borrow_mut();
    let remaining: Vec<u32> = std::iter::from_fn(|| q.try_get().ok()).collect();
    prop_assert_eq!(&remaining, &Vec::from(model.items.clone()), "what is left, in order");
    prop_assert!(model.errors.is_empty(), "disagreements: {:#?}", model.errors);
    // Every item offered ends in exactly one place.
    let mut places: Vec<u32> = model.got.clone();
    places.extend(&model.dropped);
    places.extend(&model.returned);
    places.extend(&remaining);
    places.sort_unstable();
    let mut offered = std::mem::take(&mut model.offered);
    offered.sort_unstable();
    // A producer cancelled while waiting in `put` has its item back; one
    // cancelled in a pause offered nothing more. So the two lists match.
    prop_assert_eq!(places, offered, "each item offered is got, dropped, handed back or left");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn queue_matches_the_reference_model(program in program()) {
        check(program)?;
    }
}

/// The model's checks can fail: telling it of a put the queue never saw is
/// reported.
#[test]
fn a_disagreement_with_the_model_is_reported() {
    let q: Queue<u32> = Queue::bounded(1);
    let mut model = Model { maxsize: 1, ..Model::default() };
    model.put_ok(&q, 7);
    assert_eq!(model.errors, ["after put 7: queue holds 0, model 1"]);
}
