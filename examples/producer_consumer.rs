//! Seeds 000, 001 and 003: two consumers and two producers share an
//! `asyncio.Queue`; after a while `main` cancels the consumers and gathers
//! all four with `return_exceptions=True`.
//!
//! ```text
//! cargo run --example producer_consumer [-- --variant 000|001|003] [--seed N] [--maxsize N] [--virtual]
//! ```
//!
//! * `--variant` picks the seed's names, lines and duration: `000` (`con1`,
//!   `pro1`, `con1 get a val 8`, 10 s), `001` (`consumer 1 consume 8`,
//!   `producer 1 produce 8`, 15 s) or `003` (`consumer_1 get a val : 8`,
//!   10 s: the lines seed 003 prints). Default `000`.
//! * `--seed N` (default 0) seeds the values the producers put (1 to 10).
//!   The seeds draw them with `random.randint(1, 10)`; here they come from
//!   a 64-bit linear congruential generator, which the Python twin
//!   (`tests/seeds/producer_consumer.py`) computes the same way, so the two
//!   print the same lines.
//! * `--maxsize N` bounds the queue (default 0: unbounded, as in the
//!   seeds); with `--maxsize 1` each put waits for the previous item to be
//!   taken.
//! * `--mode V[-seedN][-maxsizeN]` says the same in one word (`--mode
//!   000-maxsize1`), the form `tests/seed_examples.rs` passes.
//!
//! It prints CPython's lines, then the gather's outcomes (the two consumers
//! cancelled, the producers done) and `elapsed: X.XXXs`.
//!
//! The Python original, seed 000's variant:
//!
//! ```python
//! async def consumer(queue, id):
//!     while True:
//!         val = await queue.get()
//!         print('{} get a val {}'.format(id, val))
//!         await asyncio.sleep(1)
//!
//! async def producer(queue, id):
//!     for i in range(5):
//!         val = random.randint(1, 10)
//!         await queue.put(val)
//!         print('{} put a val: {}'.format(id, val))
//!         await asyncio.sleep(1)
//!
//! async def main():
//!     queue = asyncio.Queue()
//!     con1 = asyncio.create_task(consumer(queue, 'con1'))
//!     con2 = asyncio.create_task(consumer(queue, 'con2'))
//!     pro1 = asyncio.create_task(producer(queue, 'pro1'))
//!     pro2 = asyncio.create_task(producer(queue, 'pro2'))
//!
//!     await  asyncio.sleep(10)
//!     con1.cancel()
//!     con2.cancel()
//!
//!     await asyncio.gather(con1, con2, pro1, pro2, return_exceptions=True)
//! ```

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use gencoro::runtime::{self, Error};
use gencoro::sync::Queue;

const USAGE: &str = "producer_consumer [--variant 000|001|003] [--seed N] [--maxsize N] \
                     [--mode V[-seedN][-maxsizeN]] [--virtual]";

/// The values the producers put, in the order they draw them: Python's
/// `random.randint(1, 10)` in the seeds, a 64-bit LCG here (Knuth's MMIX
/// constants), taking bits 33 and up.
struct Values {
    state: u64,
}

impl Values {
    fn randint_1_10(&mut self) -> u64 {
        self.state = self.state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        1 + (self.state >> 33) % 10
    }
}

/// What differs between the three seeds' programs.
struct Variant {
    consumers: [&'static str; 2],
    producers: [&'static str; 2],
    get_line: fn(&str, u64) -> String,
    put_line: fn(&str, u64) -> String,
    run_for: Duration,
}

fn variant(name: &str) -> Option<Variant> {
    Some(match name {
        "000" => Variant {
            consumers: ["con1", "con2"],
            producers: ["pro1", "pro2"],
            get_line: |id, val| format!("{id} get a val {val}"),
            put_line: |id, val| format!("{id} put a val: {val}"),
            run_for: Duration::from_secs(10),
        },
        "001" => Variant {
            consumers: ["1", "2"],
            producers: ["1", "2"],
            get_line: |id, val| format!("consumer {id} consume {val}"),
            put_line: |id, val| format!("producer {id} produce {val}"),
            run_for: Duration::from_secs(15),
        },
        "003" => Variant {
            consumers: ["consumer_1", "consumer_2"],
            producers: ["producer_1", "producer_2"],
            get_line: |id, val| format!("{id} get a val : {val}"),
            put_line: |id, val| format!("{id} put a val: {val}"),
            run_for: Duration::from_secs(10),
        },
        _ => return None,
    })
}

struct Options {
    virtual_time: bool,
    variant: String,
    seed: u64,
    maxsize: usize,
}

fn fail(problem: &str) -> ! {
    eprintln!("{problem}\nusage: {USAGE}");
    std::process::exit(2)
}

fn number<T: std::str::FromStr>(what: &str, value: Option<&str>) -> T {
    let value = value.unwrap_or_else(|| fail(&format!("{what} needs a number")));
    value.parse().unwrap_or_else(|_| fail(&format!("{what}: not a number: {value:?}")))
}

impl Options {
    fn parse() -> Options {
        let mut options =
            Options { virtual_time: false, variant: "000".to_owned(), seed: 0, maxsize: 0 };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--virtual" => options.virtual_time = true,
                "--variant" => {
                    options.variant = args.next().unwrap_or_else(|| fail("--variant needs a name"))
                }
                "--seed" => options.seed = number("--seed", args.next().as_deref()),
                "--maxsize" => options.maxsize = number("--maxsize", args.next().as_deref()),
                "--mode" => {
                    let mode = args.next().unwrap_or_else(|| fail("--mode needs a value"));
                    let mut parts = mode.split('-');
                    options.variant = parts.next().unwrap_or_default().to_owned();
                    for part in parts {
                        if let Some(n) = part.strip_prefix("seed") {
                            options.seed = number("--mode seed", Some(n));
                        } else if let Some(n) = part.strip_prefix("maxsize") {
                            options.maxsize = number("--mode maxsize", Some(n));
                        } else {
                            fail(&format!("unknown part {part:?} of --mode {mode:?}"));
                        }
                    }
                }
                _ => fail(&format!("unknown argument {arg:?}")),
            }
        }
        options
    }
}

fn consumer(
    queue: Queue<u64>,
    id: &'static str,
    line: fn(&str, u64) -> String,
) -> Result<(), Error> {
    loop {
        let val = queue.get()?;
        println!("{}", line(id, val));
        runtime::sleep(Duration::from_secs(1))?;
    }
}

fn producer(
    queue: Queue<u64>,
    id: &'static str,
    line: fn(&str, u64) -> String,
    values: Rc<RefCell<Values>>,
) -> Result<(), Error> {
    for _ in 0..5 {
        let val = values.borrow_mut().randint_1_10();
        queue.put(val)?;
        println!("{}", line(id, val));
        runtime::sleep(Duration::from_secs(1))?;
    }
    Ok(())
}

/// How Python's `print(list)` shows each outcome of the gather.
fn python_repr(outcome: &Result<(), Error>) -> String {
    match outcome {
        Ok(()) => "None".to_owned(),
        Err(e) if e.is_cancelled() => format!("CancelledError('{}')", e.message()),
        Err(e) => format!("Exception('{}')", e.message()),
    }
}

fn main() {
    let options = Options::parse();
    let v = variant(&options.variant)
        .unwrap_or_else(|| fail(&format!("unknown variant {:?}", options.variant)));
    let clock = if options.virtual_time {
        runtime::Clock::virtual_time()
    } else {
        runtime::Clock::real_time()
    };
    let values = Rc::new(RefCell::new(Values { state: options.seed }));
    let maxsize = options.maxsize;
    let (result, elapsed) = common::run_timed(&clock, move || {
        let queue = if maxsize == 0 { Queue::new() } else { Queue::bounded(maxsize) };
        let [c1, c2] = v.consumers;
        let [p1, p2] = v.producers;
        let con1 = runtime::spawn({
            let queue = queue.clone();
            move || consumer(queue, c1, v.get_line)
        });
        let con2 = runtime::spawn({
            let queue = queue.clone();
            move || consumer(queue, c2, v.get_line)
        });
        let pro1 = runtime::spawn({
            let (queue, values) = (queue.clone(), values.clone());
            move || producer(queue, p1, v.put_line, values)
        });
        let pro2 = runtime::spawn({
            let (queue, values) = (queue.clone(), values.clone());
            move || producer(queue, p2, v.put_line, values)
        });

        runtime::sleep(v.run_for)?;
        con1.cancel();
        con2.cancel();

        let res = runtime::gather_outcomes([con1, con2, pro1, pro2])?;
        let shown: Vec<String> = res.iter().map(python_repr).collect();
        println!("[{}]", shown.join(", "));
        Ok(())
    });
    if let Err(e) = result {
        eprintln!("producer_consumer failed: {e}");
        std::process::exit(1);
    }
    common::print_elapsed(elapsed);
}
