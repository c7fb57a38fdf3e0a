//! A streamed export holds what it costs until its body ends: its `max_in_flight` slot, its
//! upstream connection; and a recipient that stops taking a streamed body on HTTP/2 is cut
//! off after `write_stall_timeout`, with the export recorded aborted. (On HTTP/1.1 the
//! socket's rule does it: hostile::a_client_that_stops_reading_is_cut_off.)

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::streaming::RESEARCH;
use crate::support::gateway::{Builder, Gateway};
use crate::support::upstream::{Listening, Reply, Upstream};

/// Elements of the generated export (about 1 KB each upstream): far more than socket buffers
/// and the gateway's segments in flight hold, so it cannot end while the recipient waits.
const EXPORT_ELEMENTS: usize = 60_000;

async fn export_upstream() -> Listening {
    Upstream::new()
        .route(
            "GET",
            "/api/tenants",
            Reply::Generated {
                count: EXPORT_ELEMENTS,
            },
        )
        .run()
        .await
}

async fn gateway(up: &Listening, kind: &str) -> Gateway {
    Builder::before(up)
        .recipient_of("survey-co", "research-vendor", kind)
        .limits("stream_threshold = \"64KiB\"\nmax_stream_element = \"16KiB\"")
        .start()
        .await
}

/// Sends `GET target` on a keep-alive connection (with a small receive buffer, so a client
/// that stops reading soon stalls the gateway's writes) and reads only the response head.
async fn head_only(addr: SocketAddr, target: &str, key: &str) -> (u16, TcpStream) {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    let mut stream = socket.connect(addr).await.expect("connect");
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: gateway.test\r\nAuthorization: Bearer {key}\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write request");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut byte))
            .await
            .expect("a response head within 10 s")
            .expect("read");
        assert!(
            n > 0,
            "closed before the head: {}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    let status = String::from_utf8_lossy(&head)
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, stream)
}

/// An HTTP/2 connection whose every stream starts with a zero window: its peer may send
/// heads, and no data until the client opens a window, which this one never does.
async fn zero_window_client(addr: SocketAddr) -> h2::client::SendRequest<bytes::Bytes> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let (client, connection) = h2::client::Builder::new()
        .initial_window_size(0)
        .handshake::<_, bytes::Bytes>(tcp)
        .await
        .expect("h2 handshake");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// Opens one stream asking for the export.
async fn export(
    client: &h2::client::SendRequest<bytes::Bytes>,
    addr: SocketAddr,
    key: &str,
) -> h2::client::ResponseFuture {
    let mut client = client.clone().ready().await.expect("stream ready");
    let request = ::http::Request::get(format!("http://{addr}/tenants"))
        .header("authorization", format!("Bearer {key}"))
        .body(())
        .expect("request");
    let (response, _) = client.send_request(request, true).expect("send");
    response
}

/// With `max_in_flight = 1`, an export whose body is still being sent is the one request in
/// flight: a second gets 429 (before reaching the upstream), and once the first body has
/// ended (here: its recipient went away) the next is served.
#[tokio::test]
async fn a_streamed_export_holds_its_in_flight_slot_until_its_body_ends() {
    let up = export_upstream().await;
    let bounded = RESEARCH.replacen(
        "lawful_basis = \"legitimate_interests\"\n",
        "lawful_basis = \"legitimate_interests\"\nmax_in_flight = 1\n",
        1,
    );
    assert_ne!(bounded, RESEARCH);
    let gw = gateway(&up, &bounded).await;
    let key = gw.key("survey-co").to_string();

    let (status, first) = head_only(gw.addr, "/tenants", &key).await;
    assert_eq!(status, 200);
    let (status, _second) = head_only(gw.addr, "/tenants", &key).await;
    assert_eq!(status, 429, "a second export while the first body is open");
    assert_eq!(up.count(), 1, "the refused export reached the upstream");

    drop(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _third) = head_only(gw.addr, "/tenants", &key).await;
        if status == 200 {
            break;
        }
        assert_eq!(status, 429);
        assert!(
            Instant::now() < deadline,
            "the slot was not freed 10 s after the first body ended"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let refused = gw
        .audit_records()
        .into_iter()
        .filter(|r| r["error"] == "too_many_in_flight")
        .count();
    assert!(refused >= 1);
    gw.stop().await;
}

/// An HTTP/2 client that advertises a zero initial window gets its streams' heads and can
/// never be sent a byte of data: hyper then waits for window forever without polling the
/// body. Once `write_stall_timeout` (2 s here) passes without progress, the connection is
/// closed (hyper offers no reset of one stream from outside it), every stream on it ends,
/// the upstream connections are dropped, and every export that started is recorded aborted.
#[tokio::test]
async fn http2_streams_that_never_open_their_window_are_cut_off_and_recorded_aborted() {
    const STREAMS: usize = 6;
    let up = export_upstream().await;
    let gw = gateway(&up, RESEARCH).await;
    let key = gw.key("survey-co").to_string();

    let client = zero_window_client(gw.addr).await;
    let mut pending = Vec::new();
    for _ in 0..STREAMS {
        pending.push(export(&client, gw.addr, &key).await);
    }
    // Every stream ends with an error (a reset, or its connection closed), or never. A stream
    // whose head had not left yet when the connection was closed ends without one.
    let sent = Instant::now();
    let streams: Vec<_> = pending
        .into_iter()
        .map(|response| {
            tokio::spawn(async move {
                let mut received = 0;
                let headed = match response.await {
                    Ok(response) => {
                        assert_eq!(response.status(), 200);
                        let mut body = response.into_body();
                        while let Some(Ok(data)) = body.data().await {
                            received += data.len();
                        }
                        true
                    }
                    Err(_) => false,
                };
                (sent.elapsed(), headed, received)
            })
        })
        .collect();
    let mut cut_after = Vec::new();
    let mut headed = 0;
    for stream in streams {
        let (after, head, received) = tokio::time::timeout(Duration::from_secs(20), stream)
            .await
            .expect("a stream was neither reset nor closed 20 s after it was sent")
            .expect("stream task");
        assert_eq!(received, 0, "data past a zero window");
        headed += usize::from(head);
        cut_after.push(after.as_secs_f64());
    }

    let deadline = Instant::now() + Duration::from_secs(10);
    while up.open_connections() > 0 {
        assert!(
            Instant::now() < deadline,
            "{} upstream connections still open 10 s after the streams were cut",
            up.open_connections()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Every export that started (a segment recorded, so a head sent) has its final record.
    let started: BTreeSet<String> = gw
        .audit_records()
        .iter()
        .filter(|r| r["stream"].get("segment").is_some())
        .map(|r| r["request_id"].as_str().expect("id").to_string())
        .collect();
    assert!(
        started.len() >= headed,
        "{} started, {headed} heads",
        started.len()
    );
    // A head the client had not read when the connection was closed may be lost with it
    // (a busy machine), so that some export started is read from the ledger.
    assert!(
        !started.is_empty(),
        "no export got as far as its first segment"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let finals: Vec<Value> = loop {
        let finals: Vec<Value> = gw
            .audit_records()
            .into_iter()
            .filter(|r| r["stream"].get("state").is_some())
            .collect();
        let ended: BTreeSet<&str> = finals
            .iter()
            .filter_map(|r| r["request_id"].as_str())
            .collect();
        if started.iter().all(|id| ended.contains(id.as_str())) {
            break finals;
        }
        assert!(
            Instant::now() < deadline,
            "exports without a final record: {started:?} started, {ended:?} ended"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for r in &finals {
        assert_eq!(r["stream"]["state"], "aborted", "{r}");
        let error = r["error"].as_str().expect("error");
        assert!(
            error == "recipient_stalled" || error == "recipient_gone",
            "{r}"
        );
    }
    assert!(
        finals.iter().any(|r| r["error"] == "recipient_stalled"),
        "no stream was recorded as stalled: {finals:?}"
    );
    let (least, most) = cut_after
        .iter()
        .fold((f64::MAX, 0f64), |(lo, hi), &s| (lo.min(s), hi.max(s)));
    eprintln!(
        "h2 zero-window summary: {STREAMS} streams ({headed} got their head), each reset or \
         closed {least:.1}-{most:.1} s after it was sent (write_stall_timeout 2 s); upstream \
         connections left open: 0; {} exports recorded aborted",
        finals.len()
    );
    gw.stop().await;
}

/// An export small enough to be handed to hyper whole is not complete until the connection
/// has accepted it: under a zero window it never is, and the export is recorded aborted.
#[tokio::test]
async fn a_small_http2_export_never_given_window_is_recorded_aborted() {
    let up = Upstream::new()
        .route("GET", "/api/tenants", Reply::Generated { count: 30 })
        .run()
        .await;
    let gw = gateway(&up, RESEARCH).await;
    let key = gw.key("survey-co").to_string();
    let client = zero_window_client(gw.addr).await;
    let response = export(&client, gw.addr, &key)
        .await
        .await
        .expect("response head");
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let ended = tokio::time::timeout(Duration::from_secs(10), body.data())
        .await
        .expect("the stream was neither reset nor closed within 10 s");
    assert!(matches!(ended, Some(Err(_))), "{ended:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    let last = loop {
        let records = gw.audit_records();
        if let Some(last) = records.iter().find(|r| r["stream"].get("state").is_some()) {
            break last.clone();
        }
        assert!(Instant::now() < deadline, "no final record: {records:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(last["stream"]["state"], "aborted", "{last}");
    assert_eq!(last["error"], "recipient_stalled", "{last}");
    gw.stop().await;
}

/// An HTTP/2 client that completes the handshake and asks for nothing (answering pings, as
/// any h2 client does) is disconnected once `idle_timeout` (3 s here) passes with no request
/// under way; one that keeps a request under way is not.
#[tokio::test]
async fn an_idle_http2_connection_is_closed() {
    let up = Upstream::new()
        .route(
            "GET",
            "/api/tenants",
            Reply::Json(200, serde_json::json!([{"id": "T-1", "name": "Ann"}])),
        )
        .run()
        .await;
    let gw = gateway(&up, RESEARCH).await;
    let tcp = TcpStream::connect(gw.addr).await.expect("connect");
    let (client, connection) = h2::client::Builder::new()
        .handshake::<_, bytes::Bytes>(tcp)
        .await
        .expect("h2 handshake");
    let started = std::time::Instant::now();
    let ended = tokio::spawn(connection);
    let outcome = tokio::time::timeout(Duration::from_secs(10), ended).await;
    assert!(
        outcome.is_ok(),
        "an idle HTTP/2 connection was still open after 10 s"
    );
    let after = started.elapsed();
    assert!(
        after >= Duration::from_secs(3),
        "closed after {after:?}, before idle_timeout"
    );
    eprintln!("h2 idle summary: an idle HTTP/2 connection was closed after {after:.1?}");
    drop(client);
    gw.stop().await;
}
