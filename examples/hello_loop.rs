//! Seed 002: an event loop made, run until a coroutine completes, and
//! closed, outside any running loop; then the serial crawler, whose blocking
//! `time.sleep` holds up everything (10 s for four pages).
//!
//! ```text
//! cargo run --example hello_loop [-- --virtual]
//! ```
//!
//! The Python original (CPython 3.11 prints the same lines; the seed calls
//! `asyncio.get_event_loop()`, which makes the same loop when none runs):
//!
//! ```python
//! async def hello_world():
//!     print("Hello, World!")
//!
//! loop = asyncio.new_event_loop()
//! loop.run_until_complete(hello_world())
//! loop.close()
//!
//! def crawl_page(url):
//!     print('crawling {}'.format(url))
//!     sleep_time = int(url.split('_')[-1])
//!     time.sleep(sleep_time)
//!     print('OK {}'.format(url))
//!
//! def main(urls):
//!     for url in urls:
//!         crawl_page(url)
//!
//! main(['url_1', 'url_2', 'url_3', 'url_4'])
//! ```
//!
//! With `--virtual`, the blocking sleeps move the virtual clock
//! ([`Clock::sleep_blocking`]), as they do under the Python twin's virtual
//! clock.

mod common;

use std::time::Duration;

use gencoro::runtime::{Builder, Clock, Error};

fn hello_world() -> Result<(), Error> {
    println!("Hello, World!");
    Ok(())
}

fn crawl_page(clock: &Clock, url: &str) {
    println!("crawling {url}");
    let secs: u64 = url.rsplit('_').next().and_then(|s| s.parse().ok()).unwrap_or(0);
    clock.sleep_blocking(Duration::from_secs(secs));
    println!("OK {url}");
}

fn main() {
    let options = common::Options::parse("hello_loop [--virtual]");
    let clock = options.clock();
    let start = clock.now();
    let event_loop = Builder::new().clock(clock.clone()).build();
    let ran = event_loop.run_until_complete(hello_world).and_then(|()| event_loop.close());
    if let Err(e) = ran {
        eprintln!("hello_loop failed: {e}");
        std::process::exit(1);
    }
    for url in ["url_1", "url_2", "url_3", "url_4"] {
        crawl_page(&clock, url);
    }
    common::print_elapsed(clock.now() - start);
}
