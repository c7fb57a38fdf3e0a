//! A streamed export holds what it costs until its body ends: its `max_in_flight` slot.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

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
    Builder::new(&format!("{}/api", up.url()))
        .kind("research-vendor", kind)
        .recipient("survey-co", "research-vendor")
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
