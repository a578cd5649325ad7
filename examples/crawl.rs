//! Seeds 000–003: `crawl_page` over `url_1`..`url_4`, three ways.
//!
//! ```text
//! cargo run --example crawl -- --mode gather [--virtual]
//! ```
//!
//! The Python original (CPython 3.11 prints the same lines; the timing line
//! is `elapsed: <seconds>s`):
//!
//! ```python
//! async def crawl_page(url):
//!     print('crawling {}'.format(url))
//!     sleep_time = int(url.split('_')[-1])
//!     await asyncio.sleep(sleep_time)
//!     print('OK {}'.format(url))
//!
//! async def main(urls):                      # --mode sequential
//!     for url in urls:
//!         await crawl_page(url)
//!
//! async def main(urls):                      # --mode tasks
//!     tasks = [asyncio.create_task(crawl_page(url)) for url in urls]
//!     for task in tasks:
//!         await task
//!
//! async def main(urls):                      # --mode gather
//!     tasks = [asyncio.create_task(crawl_page(url)) for url in urls]
//!     await asyncio.gather(*tasks)
//!
//! start = time.time()
//! asyncio.run(main(['url_1', 'url_2', 'url_3', 'url_4']))
//! print('elapsed: {:.3f}s'.format(time.time() - start))
//! ```

mod common;

use std::time::Duration;

use gencoro::runtime::{self, Error};

const USAGE: &str = "crawl [--mode sequential|tasks|gather] [--virtual]";

/// `await crawl_page(url)` is a plain call: it runs in the caller's task.
fn crawl_page(url: &str) -> Result<(), Error> {
    println!("crawling {url}");
    let sleep_time: u64 = url.rsplit('_').next().and_then(|n| n.parse().ok()).unwrap_or(0);
    runtime::sleep(Duration::from_secs(sleep_time))?;
    println!("OK {url}");
    Ok(())
}

fn spawn_all(urls: &[&'static str]) -> Vec<runtime::Task<()>> {
    urls.iter().map(|&url| runtime::spawn(move || crawl_page(url))).collect()
}

fn main() {
    let options = common::Options::parse(USAGE);
    let mode = options.mode(USAGE, &["gather", "sequential", "tasks"]);
    let urls = ["url_1", "url_2", "url_3", "url_4"];
    let (result, elapsed) = common::run_timed(&options.clock(), move || match mode {
        "sequential" => urls.iter().try_for_each(|url| crawl_page(url)),
        "tasks" => spawn_all(&urls).iter().try_for_each(|task| task.join()),
        _ => runtime::gather(spawn_all(&urls)).map(drop),
    });
    if let Err(e) = result {
        eprintln!("crawl failed: {e}");
        std::process::exit(1);
    }
    common::print_elapsed(elapsed);
}
