//! Seed 004's `aiohttp` program: three concurrent GETs, each printing
//! `start fetch <time>` when its response arrives, sleeping 4 s, then
//! printing its URL and the time. All three fetch at once and finish
//! together: about 4 s in all, not 12.
//!
//! ```text
//! cargo run --example aiohttp_fetch [-- --virtual]
//! ```
//!
//! The Python original fetches three public sites:
//!
//! ```python
//! import asyncio
//! import aiohttp
//! from datetime import datetime
//!
//! async def fetch(session,url):
//!     async with session.get(url) as response:
//!         print('start fetch {}'.format(datetime.now()))
//!         await asyncio.sleep(4)
//!         return response.url
//!
//! async def run(url):
//!     async with aiohttp.ClientSession() as session:
//!         html = await fetch(session,url)
//!         print(html,datetime.now())
//!
//! urls  = ['https://www.baidu.com','https://www.163.com',"https://www.zhihu.com"]
//! loop = asyncio.get_event_loop()
//! tasks = [asyncio.ensure_future(run(url)) for url in urls ]
//! loop.run_until_complete(asyncio.wait(tasks))
//! ```
//!
//! This counterpart needs no network: it starts a small HTTP/1.1 server as
//! a task of the same loop, on 127.0.0.1 and a free port, which answers any
//! GET with a 200 response naming the path; the three URLs are paths on it
//! named after the seed's sites (`http://127.0.0.1:<port>/www.baidu.com`,
//! ...). The client is a few lines on [`TcpStream`]; both sides parse HTTP
//! with `httparse`. Every socket wait suspends only its task, so the three
//! fetches and the server interleave on one thread.
//!
//! As in `start_end`, the times are the loop's clock rather than the wall
//! clock, printed as the time part of Python's `datetime`
//! (`%H:%M:%S.%f`, counted from the loop's start), so the run on the
//! virtual clock prints the same lines at once and exactly:
//!
//! ```text
//! start fetch 00:00:00.000000
//! start fetch 00:00:00.000000
//! start fetch 00:00:00.000000
//! http://127.0.0.1:<port>/www.baidu.com 00:00:04.000000
//! http://127.0.0.1:<port>/www.163.com 00:00:04.000000
//! http://127.0.0.1:<port>/www.zhihu.com 00:00:04.000000
//! elapsed: 4.000s
//! ```

mod common;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use gencoro::net::{TcpListener, TcpStream};
use gencoro::runtime::{self, Error};

const USAGE: &str = "aiohttp_fetch [--virtual]";

/// The seed's three sites, as paths on the local server.
const PATHS: [&str; 3] = ["/www.baidu.com", "/www.163.com", "/www.zhihu.com"];

/// The most a request or response head may take.
const MAX_HEAD: usize = 8 * 1024;

/// The most headers either side parses.
const MAX_HEADERS: usize = 16;

/// The loop's time as `HH:MM:SS.ffffff`: Python's `datetime` prints its
/// time of day this way.
fn now() -> Result<String, Error> {
    let us = runtime::time()?.as_micros();
    Ok(format!(
        "{:02}:{:02}:{:02}.{:06}",
        us / 3_600_000_000,
        us / 60_000_000 % 60,
        us / 1_000_000 % 60,
        us % 1_000_000
    ))
}

/// A failure of the HTTP exchange (not of the socket).
fn protocol(msg: String) -> Error {
    Error::from(io::Error::new(io::ErrorKind::InvalidData, msg))
}

/// Reads from `stream` into `buf` until `complete` says the head is whole;
/// returns the head's length. `complete` gets the bytes so far and answers
/// `Some(head length)` once they hold a whole head.
fn read_head(
    stream: &TcpStream,
    buf: &mut Vec<u8>,
    mut complete: impl FnMut(&[u8]) -> Result<Option<usize>, Error>,
) -> Result<usize, Error> {
    let mut chunk = [0; 1024];
    loop {
        if let Some(len) = complete(buf)? {
            return Ok(len);
        }
        if buf.len() >= MAX_HEAD {
            return Err(protocol(format!("head longer than {MAX_HEAD} bytes")));
        }
        match stream.read(&mut chunk)? {
            0 => return Err(protocol("the peer closed before the head was whole".into())),
            n => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The body the server sends for `path` (the client checks it).
fn body_for(path: &str) -> String {
    format!("you fetched {path}\n")
}

/// Answers one request on `stream`, then closes it.
fn handle(stream: TcpStream) -> Result<(), Error> {
    let mut buf = Vec::new();
    let mut target = None;
    read_head(&stream, &mut buf, |bytes| {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(bytes) {
            Ok(httparse::Status::Complete(len)) => {
                target =
                    Some((request.method == Some("GET"), request.path.unwrap_or("/").to_owned()));
                Ok(Some(len))
            }
            Ok(httparse::Status::Partial) => Ok(None),
            Err(e) => Err(protocol(format!("bad request: {e}"))),
        }
    })?;
    let (get, path) = target.expect("a complete head sets the target");
    let (status, body) =
        if get { ("200 OK", body_for(&path)) } else { ("405 Method Not Allowed", String::new()) };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes())
}

/// The server: accepts forever, a task per connection (cancelled with the
/// loop's other tasks when `main` returns).
fn serve(listener: TcpListener) -> Result<(), Error> {
    loop {
        let (stream, _peer) = listener.accept()?;
        runtime::spawn(move || handle(stream));
    }
}

/// GETs `path` from `addr`: returns once the whole response is in, having
/// checked it is a 200 whose body names the path.
fn get(addr: SocketAddr, path: &str) -> Result<(), Error> {
    let stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    let mut buf = Vec::new();
    let mut head = None;
    let head_len = read_head(&stream, &mut buf, |bytes| {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(bytes) {
            Ok(httparse::Status::Complete(len)) => {
                let length = response
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse::<usize>().ok());
                head = Some((response.code, length));
                Ok(Some(len))
            }
            Ok(httparse::Status::Partial) => Ok(None),
            Err(e) => Err(protocol(format!("bad response: {e}"))),
        }
    })?;
    let (code, length) = head.expect("a complete head sets the status");
    if code != Some(200) {
        return Err(protocol(format!("GET {path}: status {code:?}")));
    }
    let length = length.ok_or_else(|| protocol(format!("GET {path}: no Content-Length")))?;
    let mut body = buf.split_off(head_len);
    if body.len() < length {
        let have = body.len();
        body.resize(length, 0);
        stream.read_exact(&mut body[have..])?;
    }
    if body != body_for(path).as_bytes() {
        return Err(protocol(format!(
            "GET {path}: unexpected body {:?}",
            String::from_utf8_lossy(&body)
        )));
    }
    Ok(())
}

/// The seed's `fetch`: the response is in when `get` returns.
fn fetch(addr: SocketAddr, path: &str) -> Result<String, Error> {
    get(addr, path)?;
    println!("start fetch {}", now()?);
    runtime::sleep(Duration::from_secs(4))?;
    Ok(format!("http://{addr}{path}"))
}

/// The seed's `run`.
fn run(addr: SocketAddr, path: &str) -> Result<(), Error> {
    let url = fetch(addr, path)?;
    println!("{url} {}", now()?);
    Ok(())
}

fn main() {
    let options = common::Options::parse(USAGE);
    let (result, elapsed) = common::run_timed(&options.clock(), || {
        let listener = TcpListener::bind("127.0.0.1:0".parse().expect("an address"))?;
        let addr = listener.local_addr()?;
        let server = runtime::spawn(move || serve(listener));
        let tasks = PATHS.map(|path| runtime::spawn(move || run(addr, path)));
        // `asyncio.wait(tasks)`, then the first failure, if any.
        runtime::gather(tasks)?;
        server.cancel();
        Ok(())
    });
    if let Err(e) = result {
        eprintln!("aiohttp_fetch failed: {e}");
        std::process::exit(1);
    }
    common::print_elapsed(elapsed);
}
