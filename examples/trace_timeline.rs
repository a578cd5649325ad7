//! The `crawl` program of seeds 000–003 in gather mode, traced: prints the
//! program's own lines, then the timeline of what its tasks did, and with
//! `--trace <file.json>` writes the trace in the Chrome trace-event format
//! (open it in <https://ui.perfetto.dev> or `chrome://tracing`).
//!
//! ```text
//! cargo run --example trace_timeline --features testing -- --trace crawl.json
//! ```
//!
//! The run is a schedule-driven run under asyncio's own order
//! (`Schedule::fifo()`), on the virtual clock: the four crawls overlap, so
//! loop time ends at 4 s, and the trace is the same on every run.
//!
//! ```python
//! async def crawl_page(url):
//!     print('crawling {}'.format(url))
//!     sleep_time = int(url.split('_')[-1])
//!     await asyncio.sleep(sleep_time)
//!     print('OK {}'.format(url))
//!
//! async def main(urls):
//!     tasks = [asyncio.create_task(crawl_page(url)) for url in urls]
//!     await asyncio.gather(*tasks)
//! ```

use std::time::Duration;

use gencoro::runtime::{self, Error, TaskBuilder};
use gencoro::testing::{self, Schedule};

fn crawl_page(url: &str) -> Result<(), Error> {
    println!("crawling {url}");
    let sleep_time: u64 = url.rsplit('_').next().and_then(|n| n.parse().ok()).unwrap_or(0);
    runtime::sleep(Duration::from_secs(sleep_time))?;
    println!("OK {url}");
    Ok(())
}

fn crawl() -> Result<(), Error> {
    let tasks = ["url_1", "url_2", "url_3", "url_4"]
        .map(|url| TaskBuilder::new().name(url).spawn(move || crawl_page(url)));
    let tasks: Vec<_> = tasks.into_iter().collect::<Result<_, _>>()?;
    runtime::gather(tasks)?;
    Ok(())
}

fn main() {
    let mut trace_file = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--trace", Some(path)) => trace_file = Some(path),
            _ => {
                eprintln!("usage: trace_timeline [--trace <file.json>]");
                std::process::exit(2);
            }
        }
    }
    let run = testing::replay(&Schedule::fifo(), crawl);
    if let Some(message) = run.failure_message() {
        eprintln!("crawl failed: {message}");
        std::process::exit(1);
    }
    println!("timeline ({} steps):", run.steps());
    print!("{}", run.trace().timeline());
    if let Some(path) = trace_file {
        match run.trace().write_chrome_json(&path) {
            Ok(()) => println!("trace written to {path}"),
            Err(e) => {
                eprintln!("cannot write {path}: {e}");
                std::process::exit(1);
            }
        }
    }
}
