//! Seeds 001 and 002: the notebook programs that call `asyncio.run` (or
//! `loop.run_until_complete`) while a loop is already running, and fail.
//!
//! ```text
//! cargo run --example nested_run [-- --virtual]
//! ```
//!
//! A notebook runs every cell inside its own running loop. The Python
//! program below reproduces that; CPython 3.11 prints
//! `RuntimeError: asyncio.run() cannot be called from a running event loop`
//! and `RuntimeError: This event loop is already running`:
//!
//! ```python
//! async def hello_world():
//!     print("Hello, World!")
//!
//! async def main(urls):
//!     for url in urls:
//!         await crawl_page(url)
//!
//! async def notebook_cell():
//!     try:
//!         asyncio.run(main(['url_1', 'url_2', 'url_3', 'url_4']))
//!     except RuntimeError as e:
//!         print('RuntimeError: {}'.format(e))
//!     loop = asyncio.get_event_loop()
//!     try:
//!         loop.run_until_complete(hello_world())
//!     except RuntimeError as e:
//!         print('RuntimeError: {}'.format(e))
//!
//! asyncio.run(notebook_cell())
//! ```
//!
//! As in Python, neither `main` nor `hello_world` runs any of its body.

mod common;

use std::time::Duration;

use gencoro::runtime::{self, Error, EventLoop};

fn hello_world() -> Result<(), Error> {
    println!("Hello, World!");
    Ok(())
}

fn crawl_page(url: &str) -> Result<(), Error> {
    println!("crawling {url}");
    let secs: u64 = url.rsplit('_').next().and_then(|n| n.parse().ok()).unwrap_or(0);
    runtime::sleep(Duration::from_secs(secs))?;
    println!("OK {url}");
    Ok(())
}

fn crawl_all(urls: &[&str]) -> Result<(), Error> {
    urls.iter().try_for_each(|url| crawl_page(url))
}

fn notebook_cell() -> Result<(), Error> {
    if let Err(e) = runtime::run(|| crawl_all(&["url_1", "url_2", "url_3", "url_4"])) {
        println!("RuntimeError: {e}");
    }
    let running = EventLoop::running()?;
    if let Err(e) = running.run_until_complete(hello_world) {
        println!("RuntimeError: {e}");
    }
    Ok(())
}

fn main() {
    let options = common::Options::parse("nested_run [--virtual]");
    let (result, elapsed) = common::run_timed(&options.clock(), notebook_cell);
    if let Err(e) = result {
        eprintln!("nested_run failed: {e}");
        std::process::exit(1);
    }
    common::print_elapsed(elapsed);
}
