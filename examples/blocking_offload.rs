//! Seed 004 ("如何使用阻塞和异步", blocking calls with asyncio): three blocking
//! HTTP requests, each offloaded to the loop's thread pool, overlap.
//!
//! ```text
//! cargo run --example blocking_offload
//! ```
//!
//! The Python original (`requests.get` blocks, so it runs in the default
//! executor; the three requests run at the same time):
//!
//! ```python
//! import requests
//! import asyncio
//! import functools
//! urls = ["https://www.baidu.com","https://www.zhihu.com","https://www.163.com"]
//!
//! async def run(url):
//!     loop = asyncio.get_event_loop()
//!     res = await loop.run_in_executor(None,functools.partial(requests.get,url,verify=False))
//!     print(res.url)
//!
//! tasks = [ asyncio.ensure_future(run(url)) for url in urls]
//! loop = asyncio.get_event_loop()
//! loop.run_until_complete(asyncio.wait(tasks))
//! ```
//!
//! Here the three sites are paths of a small HTTP server that this example
//! starts on 127.0.0.1 (a thread per connection, 1 s per request), so the
//! program needs no network. The client is a plain blocking
//! `std::net::TcpStream`, called through `runtime::offload`, the
//! `run_in_executor(None, ...)` of gencoro. Each task prints the URL it
//! got; the requests overlap, so the last line shows about 1 s, not 3 s.
//! It runs on the real clock (the work is real I/O).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use gencoro::runtime::{self, Clock, Error};

/// How long the server takes to answer each request.
const DELAY: Duration = Duration::from_secs(1);

/// Test scaffolding: a blocking HTTP/1.1 server, one thread per
/// connection, that answers every `GET /<path>` after `DELAY` with `200 OK`
/// and the path as its body. Its threads are the example's, not the
/// library's (the library starts threads only in its pool).
fn start_server() -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            thread::spawn(move || {
                let _ = serve(conn);
            });
        }
    });
    Ok(addr)
}

fn serve(conn: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // Skip the headers, up to the empty line.
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    thread::sleep(DELAY);
    let body = path.trim_start_matches('/');
    let mut conn = conn;
    write!(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    conn.flush()
}

/// What `requests.get` returns, as far as the program uses it.
struct Response {
    url: String,
}

/// A blocking HTTP GET: connect, send the request, read the whole answer.
fn get(url: &str) -> std::io::Result<Response> {
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let rest = url.strip_prefix("http://").ok_or_else(|| invalid("not an http:// URL"))?;
    let (host, path) = rest.split_once('/').map_or((rest, ""), |(h, p)| (h, p));
    let mut stream = TcpStream::connect(host)?;
    write!(stream, "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let (head, body) = answer.split_once("\r\n\r\n").ok_or_else(|| invalid("no header end"))?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(invalid(head.lines().next().unwrap_or_default()));
    }
    if body != path {
        return Err(invalid("the server answered for another path"));
    }
    Ok(Response { url: url.to_owned() })
}

/// Python: `async def run(url)`.
fn run(url: String) -> Result<(), Error> {
    let res = runtime::offload(move || get(&url))?.map_err(Error::new)?;
    println!("{}", res.url);
    Ok(())
}

fn main() {
    let addr = match start_server() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("cannot start the local server: {e}");
            std::process::exit(1);
        }
    };
    let urls: Vec<String> = ["www.baidu.com", "www.zhihu.com", "www.163.com"]
        .iter()
        .map(|site| format!("http://{addr}/{site}"))
        .collect();
    let (result, elapsed) = common::run_timed(&Clock::real_time(), move || {
        let tasks: Vec<_> = urls.into_iter().map(|url| runtime::spawn(move || run(url))).collect();
        // `asyncio.wait(tasks)`, then each task's outcome.
        runtime::wait(&tasks, runtime::ReturnWhen::AllCompleted, None)?;
        for task in &tasks {
            task.result()?;
        }
        Ok(())
    });
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
    common::print_elapsed(elapsed);
}
