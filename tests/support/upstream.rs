//! A fake housing-management API for the integration tests.
//!
//! It speaks HTTP/1.1 directly over TCP instead of through hyper: several
//! replies exist to misbehave on purpose (stall after the head, reset the
//! socket mid-body, stream forever, send exact framing bytes), and a
//! well-behaved server library would not let us do that. Requests are parsed
//! just well enough for hyper's pooled client: Content-Length and chunked
//! request bodies, keep-alive, `Connection: close` and HEAD.

use std::future::pending;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinSet};

/// Headroom beyond `first` that [`Reply::ResetMidBody`] promises, so the
/// client is certainly still waiting for body bytes when the reset comes.
const RESET_DECLARED_EXTRA: usize = 4096;

/// How long [`Reply::ResetMidBody`] waits before the reset, so the client has
/// read the head and the first bytes and the failure is truly mid-body.
const RESET_DELAY: Duration = Duration::from_millis(50);

/// How long [`End::Reset`] waits before the reset: a reset discards what the client has
/// not read yet, so the gateway gets time to read (and stream out) everything sent.
const CHUNKED_RESET_DELAY: Duration = Duration::from_millis(750);

/// The JSON the [`Reply::Endless`] stream repeats after its opening `[0`.
const ENDLESS_CHUNK: &[u8] = b",0";

/// How many [`ENDLESS_CHUNK`]s go into one HTTP chunk.
const ENDLESS_REPEAT: usize = 4096;

/// One canned answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// `status` with an `application/json` body.
    Json(u16, Value),
    /// Exactly these headers and body bytes. Content-Length is added unless
    /// `headers` already carry Content-Length or Transfer-Encoding, so a test
    /// can send deliberately wrong framing.
    Raw {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// 200, `application/json`, gzip-compressed with `Content-Encoding: gzip`.
    Gzip(Value),
    /// Accept the request and never answer: an upstream that is down but
    /// still holds the socket open.
    Hang,
    /// Send the head (declaring `declared_len` bytes) and `first`, then stall
    /// forever: an upstream that stalls while the body is in flight.
    HeadThenHang {
        status: u16,
        content_type: String,
        declared_len: usize,
        first: Vec<u8>,
    },
    /// Send a 200 JSON head promising far more than `first`, send `first`,
    /// then reset the connection (RST, not FIN).
    ResetMidBody { first: Vec<u8> },
    /// 200, `application/json`, chunked, streaming `[0,0,0,...` until the
    /// client goes away: for the gateway's response size limit.
    Endless,
    /// A 3xx (or any status) with `Location`, which the gateway must not follow.
    Redirect(u16, String),
    /// 200 JSON, after a pause: a slow upstream for graceful-shutdown tests.
    Slow(Duration, Value),
    /// 200, `application/json`, chunked: each of `chunks` as one HTTP chunk,
    /// flushed, then `end`. For the gateway's streaming path.
    Chunked { chunks: Vec<Vec<u8>>, end: End },
    /// 200, `application/json`, chunked: an array of `count` generated tenant
    /// records ([`tenant`]), made as they are sent so a 100 MB body costs the
    /// upstream no memory.
    Generated { count: usize },
}

/// How a [`Reply::Chunked`] body ends.
#[derive(Debug, Clone, Copy)]
pub enum End {
    /// The terminating `0` chunk: a complete body.
    Finish,
    /// A reset (RST) after a pause, without the terminating chunk.
    Reset,
    /// Nothing more, with the connection held open: an upstream stalled mid-body.
    Hang,
}

/// Generated tenant record `i`, about 1 KB: every third one has objected to
/// research, and the `secret` fields must never reach a research vendor.
pub fn tenant(i: usize) -> Value {
    let restrictions: Vec<&str> = if i % 3 == 1 { vec!["research"] } else { vec![] };
    json!({
        "id": format!("T{i:06}"),
        "name": format!("Tenant Number {i}"),
        "phone": format!("07700 {:06}", i % 1_000_000),
        "email": format!("tenant{i}@example.org"),
        "date_of_birth": format!("{}-0{}-1{}", 1940 + i % 60, 1 + i % 9, i % 10),
        "household": 1 + i % 6,
        "address": {
            "line1": format!("{} Long Street", 1 + i % 300),
            "postcode": format!("LN{} {}AB", 1 + i % 9, i % 10),
        },
        "sharing_restrictions": restrictions,
        "consent": {"research": i % 5 != 0},
        "national_insurance": format!("secret-NI-{i:08}"),
        "notes": format!("secret note {i}: {}", "x".repeat(600)),
    })
}

/// What the fake upstream will answer, built up route by route.
pub struct Upstream {
    /// (method, exact path including any base prefix, without the query).
    routes: Vec<(String, String, Reply)>,
    /// The answer when no route matches.
    default: Reply,
}

impl Default for Upstream {
    fn default() -> Self {
        Self {
            routes: Vec::new(),
            default: Reply::Json(404, json!({"error": "not found"})),
        }
    }
}

impl Upstream {
    /// No routes: every request gets 404 `{"error":"not found"}`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers `method` `path` (both exact, query ignored) with `reply`.
    /// HEAD does not fall back to GET routes. When routes overlap the first
    /// one added wins.
    pub fn route(mut self, method: &str, path: &str, reply: Reply) -> Self {
        self.routes
            .push((method.to_owned(), path.to_owned(), reply));
        self
    }

    /// Answers GET `path` with 200 and `body`.
    pub fn json(self, path: &str, body: Value) -> Self {
        self.route("GET", path, Reply::Json(200, body))
    }

    /// Binds 127.0.0.1 on a free port and serves in the background until the
    /// returned [`Listening`] is dropped.
    pub async fn run(self) -> Listening {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake upstream on loopback");
        let addr = listener
            .local_addr()
            .expect("the fake upstream's bound address");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let open = Arc::new(AtomicUsize::new(0));
        let upstream = Arc::new(self);
        let accept = tokio::spawn(accept_loop(
            listener,
            upstream,
            Arc::clone(&seen),
            Arc::clone(&open),
        ));
        Listening {
            addr,
            seen,
            open,
            accept: accept.abort_handle(),
        }
    }

    fn reply_for(&self, method: &str, path: &str) -> &Reply {
        self.routes
            .iter()
            .find(|(m, p, _)| m == method && p == path)
            .map_or(&self.default, |(_, _, reply)| reply)
    }
}

/// A running fake upstream. Dropping it stops the server and every
/// connection it holds open, hanging ones included.
pub struct Listening {
    pub addr: SocketAddr,
    seen: Log,
    /// Connections being served now.
    open: Arc<AtomicUsize>,
    accept: AbortHandle,
}

impl Listening {
    /// The base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, in arrival order, including those still
    /// waiting on a reply that hangs.
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().expect("request log lock").clone()
    }

    /// How many requests have been received so far.
    pub fn count(&self) -> usize {
        self.seen.lock().expect("request log lock").len()
    }

    /// How many connections the gateway holds open to this upstream now: a connection ends
    /// when its reply is done or the gateway drops it (a write then fails).
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

/// Counts a connection as open for as long as it lives.
struct Open(Arc<AtomicUsize>);

impl Open {
    fn new(count: &Arc<AtomicUsize>) -> Open {
        count.fetch_add(1, Ordering::SeqCst);
        Open(Arc::clone(count))
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        // The accept task owns the JoinSet of connections, so aborting it
        // closes the listener and aborts every connection task too.
        self.accept.abort();
    }
}

/// The requests received so far, shared between the server and the test.
type Log = Arc<Mutex<Vec<Seen>>>;

/// One request as the upstream received it, so tests can check what the
/// gateway forwarded (and what it withheld).
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// In arrival order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// De-chunked if the request was chunked.
    pub body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: Arc<Upstream>,
    seen: Log,
    open: Arc<AtomicUsize>,
) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Only that one connection is lost (say, the peer reset first).
            continue;
        };
        // Reap finished connections so a long test does not accumulate them.
        while connections.try_join_next().is_some() {}
        let counted = Open::new(&open);
        let (upstream, seen) = (Arc::clone(&upstream), Arc::clone(&seen));
        connections.spawn(async move {
            serve(Conn::new(stream), upstream, seen).await;
            drop(counted);
        });
    }
}

/// Serves requests on one connection until the client closes it, a reply
/// ends it, or the request is malformed.
async fn serve(mut conn: Conn, upstream: Arc<Upstream>, seen: Log) {
    // An error here means the client misbehaved or went away; either way the
    // connection is done and there is nobody to tell.
    while let Ok(Some(request)) = conn.read_request().await {
        let keep_alive = request.keep_alive;
        let method = request.seen.method.clone();
        let reply = upstream.reply_for(&method, &request.seen.path).clone();
        // Record before answering, so a test against a hanging reply sees it.
        seen.lock().expect("request log lock").push(request.seen);
        match conn.answer(&method, reply).await {
            Ok(Next::KeepAlive) if keep_alive => {}
            _ => return,
        }
    }
}

/// What the connection should do after a reply.
enum Next {
    KeepAlive,
    Close,
}

/// A parsed request plus whether the client wants the connection kept.
struct Request {
    seen: Seen,
    keep_alive: bool,
}

/// A TCP stream with a read buffer, so bytes read past one request (a
/// pipelined next request) are not lost.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// Header name and value for the HTTP/1.1 response heads we build.
type Header = (String, String);

impl Conn {
    fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            buf: Vec::new(),
        }
    }

    /// The next request, or `None` if the client closed the connection
    /// cleanly between requests.
    async fn read_request(&mut self) -> io::Result<Option<Request>> {
        let Some(head) = self.take_through(b"\r\n\r\n").await? else {
            return Ok(None);
        };
        let head = String::from_utf8(head).map_err(|_| malformed("request head is not UTF-8"))?;
        let mut lines = head.split("\r\n");
        let start = lines.next().unwrap_or_default();
        let mut parts = start.split(' ');
        let (Some(method), Some(target), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("bad request line"));
        };
        let headers = lines
            .filter(|line| !line.is_empty())
            .map(|line| {
                let (name, value) = line
                    .split_once(':')
                    .ok_or_else(|| malformed("bad header"))?;
                Ok((name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            })
            .collect::<io::Result<Vec<Header>>>()?;
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path.to_owned(), Some(query.to_owned())),
            None => (target.to_owned(), None),
        };
        let mut seen = Seen {
            method: method.to_owned(),
            path,
            query,
            headers,
            body: Vec::new(),
        };
        let chunked = seen
            .header("transfer-encoding")
            .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
        seen.body = if chunked {
            self.read_chunked().await?
        } else {
            let len = match seen.header("content-length") {
                Some(len) => len.parse().map_err(|_| malformed("bad content-length"))?,
                None => 0,
            };
            self.take_exact(len).await?
        };
        let connection = seen
            .header("connection")
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        // HTTP/1.0 keep-alive is not worth supporting: hyper's client speaks 1.1.
        let keep_alive = version == "HTTP/1.1" && !connection.contains("close");
        Ok(Some(Request { seen, keep_alive }))
    }

    /// A chunked body, de-chunked; trailers are read and dropped.
    async fn read_chunked(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line = self.take_line().await?;
            let size = line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size, 16).map_err(|_| malformed("bad chunk size"))?;
            if size == 0 {
                while !self.take_line().await?.is_empty() {}
                return Ok(body);
            }
            body.extend(self.take_exact(size).await?);
            if !self.take_line().await?.is_empty() {
                return Err(malformed("chunk longer than its size"));
            }
        }
    }

    /// One CRLF-terminated line, without the CRLF.
    async fn take_line(&mut self) -> io::Result<String> {
        let mut line = self
            .take_through(b"\r\n")
            .await?
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        line.truncate(line.len() - 2);
        String::from_utf8(line).map_err(|_| malformed("line is not UTF-8"))
    }

    /// Bytes up to and including `delim`; `None` on EOF before any byte.
    async fn take_through(&mut self, delim: &[u8]) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(at) = self.buf.windows(delim.len()).position(|w| w == delim) {
                return Ok(Some(self.buf.drain(..at + delim.len()).collect()));
            }
            if !self.fill().await? {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(io::ErrorKind::UnexpectedEof.into())
                };
            }
        }
    }

    async fn take_exact(&mut self, len: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < len {
            if !self.fill().await? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(self.buf.drain(..len).collect())
    }

    /// Reads more bytes into the buffer; `false` on EOF.
    async fn fill(&mut self) -> io::Result<bool> {
        let mut chunk = [0; 8192];
        let n = self.stream.read(&mut chunk).await?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    /// Writes `reply` to a request made with `method`.
    async fn answer(&mut self, method: &str, reply: Reply) -> io::Result<Next> {
        let json = || ("content-type".to_owned(), "application/json".to_owned());
        match reply {
            Reply::Json(status, value) => {
                let body = serde_json::to_vec(&value).expect("serialise a JSON reply");
                self.complete(method, status, vec![json()], body).await
            }
            Reply::Raw {
                status,
                headers,
                body,
            } => self.complete(method, status, headers, body).await,
            Reply::Gzip(value) => {
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                serde_json::to_writer(&mut encoder, &value).expect("serialise a gzip reply");
                let body = encoder.finish().expect("gzip into memory");
                let encoding = ("content-encoding".to_owned(), "gzip".to_owned());
                self.complete(method, 200, vec![json(), encoding], body)
                    .await
            }
            Reply::Hang => pending().await,
            Reply::Slow(pause, value) => {
                tokio::time::sleep(pause).await;
                let body = serde_json::to_vec(&value).expect("serialise a JSON reply");
                self.complete(method, 200, vec![json()], body).await
            }
            Reply::HeadThenHang {
                status,
                content_type,
                declared_len,
                first,
            } => {
                let headers = vec![
                    ("content-type".to_owned(), content_type),
                    ("content-length".to_owned(), declared_len.to_string()),
                ];
                self.send(head(status, &headers), &first).await?;
                pending().await
            }
            Reply::ResetMidBody { first } => {
                let declared = first.len() + RESET_DECLARED_EXTRA;
                let headers = vec![json(), ("content-length".to_owned(), declared.to_string())];
                self.send(head(200, &headers), &first).await?;
                tokio::time::sleep(RESET_DELAY).await;
                // Linger 0 makes the close an RST rather than a FIN.
                self.stream.set_zero_linger()?;
                Ok(Next::Close)
            }
            Reply::Endless => {
                let headers = vec![
                    json(),
                    ("transfer-encoding".to_owned(), "chunked".to_owned()),
                ];
                self.send(head(200, &headers), b"2\r\n[0\r\n").await?;
                let data = ENDLESS_CHUNK.repeat(ENDLESS_REPEAT);
                let mut chunk = format!("{:x}\r\n", data.len()).into_bytes();
                chunk.extend(data);
                chunk.extend(b"\r\n");
                // Runs until the client stops reading and hangs up, which
                // surfaces here as a write error.
                loop {
                    self.stream.write_all(&chunk).await?;
                }
            }
            Reply::Chunked { chunks, end } => {
                let headers = vec![
                    json(),
                    ("transfer-encoding".to_owned(), "chunked".to_owned()),
                ];
                self.send(head(200, &headers), b"").await?;
                for data in chunks {
                    self.chunk(&data).await?;
                }
                match end {
                    End::Finish => {
                        self.send(b"0\r\n\r\n".to_vec(), b"").await?;
                        Ok(Next::Close)
                    }
                    End::Reset => {
                        tokio::time::sleep(CHUNKED_RESET_DELAY).await;
                        self.stream.set_zero_linger()?;
                        Ok(Next::Close)
                    }
                    End::Hang => pending().await,
                }
            }
            Reply::Generated { count } => {
                let headers = vec![
                    json(),
                    ("transfer-encoding".to_owned(), "chunked".to_owned()),
                ];
                self.send(head(200, &headers), b"").await?;
                let mut data = b"[".to_vec();
                for i in 0..count {
                    if i > 0 {
                        data.push(b',');
                    }
                    serde_json::to_writer(&mut data, &tenant(i)).expect("serialise a tenant");
                    if data.len() >= 64 << 10 {
                        self.chunk(&data).await?;
                        data.clear();
                    }
                }
                data.push(b']');
                self.chunk(&data).await?;
                self.send(b"0\r\n\r\n".to_vec(), b"").await?;
                Ok(Next::Close)
            }
            Reply::Redirect(status, location) => {
                let headers = vec![("location".to_owned(), location)];
                self.complete(method, status, headers, Vec::new()).await
            }
        }
    }

    /// Sends a whole response, adding Content-Length unless the headers
    /// already frame the body, and leaving the body out for HEAD.
    async fn complete(
        &mut self,
        method: &str,
        status: u16,
        mut headers: Vec<Header>,
        body: Vec<u8>,
    ) -> io::Result<Next> {
        let framed = headers.iter().any(|(name, _)| {
            name.eq_ignore_ascii_case("content-length")
                || name.eq_ignore_ascii_case("transfer-encoding")
        });
        if !framed {
            headers.push(("content-length".to_owned(), body.len().to_string()));
        }
        let closes = headers.iter().any(|(name, value)| {
            name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close")
        });
        let body = if method == "HEAD" { &[][..] } else { &body };
        self.send(head(status, &headers), body).await?;
        Ok(if closes { Next::Close } else { Next::KeepAlive })
    }

    /// One HTTP/1.1 chunk holding `data`, flushed.
    async fn chunk(&mut self, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        self.send(format!("{:x}\r\n", data.len()).into_bytes(), data)
            .await?;
        self.send(b"\r\n".to_vec(), b"").await
    }

    async fn send(&mut self, head: Vec<u8>, body: &[u8]) -> io::Result<()> {
        self.stream.write_all(&head).await?;
        self.stream.write_all(body).await?;
        self.stream.flush().await
    }
}

/// A response head: status line, headers as given, blank line.
fn head(status: u16, headers: &[Header]) -> Vec<u8> {
    let reason = StatusCode::from_u16(status)
        .ok()
        .and_then(|code| code.canonical_reason())
        .unwrap_or("");
    let mut out = Vec::new();
    write!(out, "HTTP/1.1 {status} {reason}\r\n").expect("write into memory");
    for (name, value) in headers {
        write!(out, "{name}: {value}\r\n").expect("write into memory");
    }
    out.extend(b"\r\n");
    out
}

fn malformed(why: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}
