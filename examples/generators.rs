//! Python's generator idioms in Rust, with `gencoro`.
//!
//! Run with `cargo run --example generators`. It prints exactly what the
//! Python 3.11 program below prints, section by section, so the two can be
//! compared line by line (`diff <(python3 generators.py) <(cargo run -q
//! --example generators)` is empty).
//!
//! ```python
//! import inspect
//!
//!
//! def section(title):
//!     print(f"== {title} ==")
//!
//!
//! # 1. Counting: a generator iterated by a for loop.
//! def counter(start, stop):
//!     n = start
//!     while n < stop:
//!         yield n
//!         n += 1
//!
//!
//! section("counting")
//! for n in counter(1, 4):
//!     print(f"count {n}")
//! print(f"list(counter(5, 8)) = {list(counter(5, 8))}")
//!
//!
//! # 2. A running average fed by send().
//! def averager():
//!     total = 0.0
//!     count = 0
//!     average = None
//!     while True:
//!         value = yield average
//!         total += value
//!         count += 1
//!         average = total / count
//!
//!
//! section("running average (send)")
//! avg = averager()
//! print(f"next(avg) -> {next(avg)}")
//! for value in [10, 30, 5, 6]:
//!     print(f"send({value}) -> {avg.send(value):.2f}")
//!
//!
//! # 3. throw() handled inside the generator.
//! class JobError(Exception):
//!     pass
//!
//!
//! def worker():
//!     done = 0
//!     while True:
//!         try:
//!             job = yield done
//!         except JobError as e:
//!             if str(e) == "fatal":
//!                 raise
//!             print(f"  worker handled JobError: {e}")
//!             continue
//!         done += 1
//!         print(f"  worker did {job}")
//!
//!
//! section("throw")
//! w = worker()
//! print(f"next(w) -> {next(w)}")
//! print(f"send('a') -> {w.send('a')}")
//! print(f"throw(JobError('disk full')) -> {w.throw(JobError('disk full'))}")
//! print(f"send('b') -> {w.send('b')}")
//! try:
//!     w.throw(JobError("fatal"))
//! except JobError as e:
//!     print(f"throw(JobError('fatal')) raised JobError: {e}")
//! print(f"state: {inspect.getgeneratorstate(w)}")
//!
//!
//! # 4. close() runs the cleanup code.
//! def reader():
//!     print("  open")
//!     try:
//!         n = 0
//!         while True:
//!             yield f"line {n}"
//!             n += 1
//!     finally:
//!         print("  cleanup")
//!
//!
//! section("close")
//! r = reader()
//! print(next(r))
//! print(next(r))
//! r.close()
//! print(f"state: {inspect.getgeneratorstate(r)}")
//!
//!
//! # 5. A yield-from pipeline: the sub-generator's return value is used.
//! def numbers(text):
//!     total = 0
//!     for word in text.split():
//!         if word.isdigit():
//!             total += int(word)
//!             yield int(word)
//!     return total
//!
//!
//! def summarise(lines):
//!     grand_total = 0
//!     for line in lines:
//!         total = yield from numbers(line)
//!         print(f"  subtotal {total} for: {line}")
//!         grand_total += total
//!     return grand_total
//!
//!
//! section("yield from")
//! s = summarise(["3 apples and 4 pears", "10 plums"])
//! while True:
//!     try:
//!         print(f"got {next(s)}")
//!     except StopIteration as stop:
//!         print(f"returned {stop.value}")
//!         break
//!
//!
//! # 6. Yielding several calls deep. Python needs `yield from` at every level;
//! #    in Rust the levels are plain functions handed the yielder.
//! def walk(tree, depth):
//!     for node in tree:
//!         if isinstance(node, list):
//!             yield from walk(node, depth + 1)
//!         else:
//!             yield f"depth {depth}: {node}"
//!
//!
//! section("yield from several calls deep")
//! for line in walk(["a", ["b", ["c", "d"], "e"], "f"], 0):
//!     print(line)
//! ```

use gencoro::{Generator, State, Step, Yielder};

fn section(title: &str) {
    println!("== {title} ==");
}

/// Python's `inspect.getgeneratorstate`.
fn python_state(state: State) -> &'static str {
    match state {
        State::Created => "GEN_CREATED",
        State::Running => "GEN_RUNNING",
        State::Suspended => "GEN_SUSPENDED",
        State::Closed => "GEN_CLOSED",
    }
}

/// The yielded value of a step; the Python code never sees a return there.
fn yielded<Y, R>(step: Step<Y, R>) -> Y {
    step.yielded().expect("the generator yielded")
}

// 1. Counting: a generator iterated by a for loop.
fn counter(start: u32, stop: u32) -> Generator<u32> {
    Generator::new(move |co| {
        let mut n = start;
        while n < stop {
            co.yield_(n);
            n += 1;
        }
    })
}

fn counting() {
    section("counting");
    for n in counter(1, 4) {
        println!("count {n}");
    }
    println!("list(counter(5, 8)) = {:?}", counter(5, 8).collect::<Vec<_>>());
}

// 2. A running average fed by send(). The first yield hands out `None`.
fn averager() -> Generator<Option<f64>, f64, ()> {
    Generator::new(|co| {
        let (mut total, mut count) = (0.0, 0.0);
        let mut average = None;
        loop {
            let value = co.yield_(average);
            total += value;
            count += 1.0;
            average = Some(total / count);
        }
    })
}

fn running_average() {
    section("running average (send)");
    let avg = averager();
    let first = yielded(avg.start().unwrap());
    println!("next(avg) -> {}", first.map_or("None".to_string(), |a| a.to_string()));
    for value in [10, 30, 5, 6] {
        let average = yielded(avg.send(f64::from(value)).unwrap()).expect("an average");
        println!("send({value}) -> {average:.2}");
    }
}

// 3. throw() handled inside the generator: the send type is a `Result`, and
//    a thrown error arrives as the `Err` of the suspended yield.
#[derive(Debug, PartialEq)]
struct JobError(&'static str);

type Worker = Generator<u32, Result<&'static str, JobError>, Result<(), JobError>>;

fn worker() -> Worker {
    Generator::new(|co| {
        let mut done = 0;
        loop {
            let job = match co.yield_(done) {
                Ok(job) => job,
                // Python's bare `raise`: the error escapes and ends the body.
                Err(JobError("fatal")) => return Err(JobError("fatal")),
                Err(JobError(e)) => {
                    println!("  worker handled JobError: {e}");
                    continue;
                }
            };
            done += 1;
            println!("  worker did {job}");
        }
    })
}

fn throw() {
    section("throw");
    let w = worker();
    println!("next(w) -> {}", yielded(w.start().unwrap()));
    println!("send('a') -> {}", yielded(w.send(Ok("a")).unwrap()));
    let step = w.throw(JobError("disk full")).unwrap();
    println!("throw(JobError('disk full')) -> {}", yielded(step));
    println!("send('b') -> {}", yielded(w.send(Ok("b")).unwrap()));
    if let Step::Returned(Err(JobError(e))) = w.throw(JobError("fatal")).unwrap() {
        println!("throw(JobError('fatal')) raised JobError: {e}");
    }
    println!("state: {}", python_state(w.state()));
}

// 4. close() runs the cleanup code: `finally` becomes a destructor, which
//    runs when close() unwinds the suspended body.
struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        println!("  cleanup");
    }
}

fn reader() -> Generator<String> {
    Generator::new(|co| {
        println!("  open");
        let _finally = Cleanup;
        let mut n = 0;
        loop {
            co.yield_(format!("line {n}"));
            n += 1;
        }
    })
}

fn close() {
    section("close");
    let mut r = reader();
    println!("{}", r.next().unwrap());
    println!("{}", r.next().unwrap());
    r.close().unwrap();
    println!("state: {}", python_state(r.state()));
}

// 5. A yield-from pipeline: the sub-generator's return value is used.
fn numbers(text: &'static str) -> Generator<u32, (), u32> {
    Generator::new(move |co| {
        let mut total = 0;
        for word in text.split_whitespace() {
            if let Ok(n) = word.parse::<u32>() {
                total += n;
                co.yield_(n);
            }
        }
        total
    })
}

fn summarise(lines: Vec<&'static str>) -> Generator<u32, (), u32> {
    Generator::new(move |co| {
        let mut grand_total = 0;
        for line in lines {
            let total = co.yield_from(&numbers(line)).unwrap();
            println!("  subtotal {total} for: {line}");
            grand_total += total;
        }
        grand_total
    })
}

fn yield_from() {
    section("yield from");
    let s = summarise(vec!["3 apples and 4 pears", "10 plums"]);
    loop {
        match s.resume().unwrap() {
            Step::Yielded(n) => println!("got {n}"),
            Step::Returned(total) => {
                println!("returned {total}");
                break;
            }
        }
    }
}

// 6. Yielding several calls deep: `walk` is a plain recursive function, not
//    a generator. It is handed the yielder and yields from any depth, since
//    the whole call chain runs on the generator's own stack.
enum Node {
    Leaf(&'static str),
    List(Vec<Node>),
}

fn walk(co: &Yielder<String>, tree: &[Node], depth: usize) {
    for node in tree {
        match node {
            Node::List(children) => walk(co, children, depth + 1),
            Node::Leaf(name) => {
                co.yield_(format!("depth {depth}: {name}"));
            }
        }
    }
}

fn deep() {
    use Node::{Leaf, List};

    section("yield from several calls deep");
    let tree = vec![
        Leaf("a"),
        List(vec![Leaf("b"), List(vec![Leaf("c"), Leaf("d")]), Leaf("e")]),
        Leaf("f"),
    ];
    for line in Generator::new(move |co| walk(co, &tree, 0)) {
        println!("{line}");
    }
}

fn main() {
    counting();
    running_average();
    throw();
    close();
    yield_from();
    deep();
}
