//! Time and size limits: a body trickling past the read timeout gets 408 CTS.0408 and stores nothing; a response
//! later than the request timeout gets 503 CTS.0503 with `Retry-After`; over TCP, headers past the read timeout close
//! the connection, too many or too large headers get 431, and connections over the limit wait to be served.

use crate::common::*;
use axum::body::Body;
use axum::http::StatusCode;
use cts_server::{RequestLimits, MAX_HEADERS, MAX_HEADER_BYTES};
use futures_util::StreamExt;
use serde_json::json;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn limited(request_timeout: Duration, read_timeout: Duration, max_connections: usize) -> Harness {
    let Harness { state, dir } = harness();
    let limits = RequestLimits { request_timeout, read_timeout, max_connections };
    Harness { state: state.with_limits(limits), dir }
}

fn ingest_body(trace_name: &str) -> Vec<u8> {
    json!({"traces": [trace_json(trace_name, cts_model::now_ms())]}).to_string().into_bytes()
}

async fn stored_names(harness: &Harness) -> Vec<String> {
    let path = format!("/v3/{PROJECT_ID}/traces");
    let (status, _, body) = send(harness, Call::new("GET", &path).request()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["traces"].as_array().unwrap().iter().map(|t| t["trace_name"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_body_slower_than_the_read_timeout_gets_408_and_nothing_is_stored() {
    let harness = limited(Duration::from_secs(30), Duration::from_millis(200), 8);
    let path = format!("/v3/{PROJECT_ID}/traces");
    let body = ingest_body("createOrder");
    let mut request = Call::new("POST", &path).body(body.clone()).request();
    let first_half = body[..body.len() / 2].to_vec();
    let trickle =
        futures_util::stream::iter([Ok::<_, std::io::Error>(first_half)]).chain(futures_util::stream::pending());
    *request.body_mut() = Body::from_stream(trickle);
    let (status, _, answer) = send(&harness, request).await;
    assert_eq!((status, error_code(&answer)), (StatusCode::REQUEST_TIMEOUT, "CTS.0408"), "{answer}");
    assert!(stored_names(&harness).await.is_empty());
}

#[tokio::test]
async fn a_response_later_than_the_request_timeout_gets_503_with_retry_after() {
    // The body arrives within the read timeout but after the request timeout.
    let harness = limited(Duration::from_millis(200), Duration::from_secs(15), 8);
    let path = format!("/v3/{PROJECT_ID}/traces");
    let body = ingest_body("createOrder");
    let mut request = Call::new("POST", &path).body(body.clone()).request();
    let (first_half, rest) = body.split_at(body.len() / 2);
    let (first_half, rest) = (first_half.to_vec(), rest.to_vec());
    let late_rest = futures_util::stream::once(async move {
        tokio::time::sleep(Duration::from_millis(600)).await;
        Ok::<_, std::io::Error>(rest)
    });
    let slow = futures_util::stream::iter([Ok::<_, std::io::Error>(first_half)]).chain(late_rest);
    *request.body_mut() = Body::from_stream(slow);
    let (status, response, answer) = send(&harness, request).await;
    assert_eq!((status, error_code(&answer)), (StatusCode::SERVICE_UNAVAILABLE, "CTS.0503"), "{answer}");
    assert!(response.headers().contains_key("retry-after"));
    assert!(answer["error_msg"].as_str().unwrap().contains("same trace ids"), "{answer}");
    assert!(stored_names(&harness).await.is_empty());
}

/// A server on a loopback port with these limits; it stops when the harness's runtime ends.
async fn serve(harness: &Harness) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(cts_server::serve(listener, harness.state.clone(), std::future::pending()));
    address
}

/// What the server sends on `stream` until it closes it or `wait` passes.
async fn read_for(stream: &mut TcpStream, wait: Duration) -> String {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Ok(read)) = tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
        if read == 0 {
            break;
        }
        received.extend_from_slice(&buffer[..read]);
        if received.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    String::from_utf8_lossy(&received).into_owned()
}

#[tokio::test]
async fn headers_slower_than_the_read_timeout_close_the_connection() {
    let harness = limited(Duration::from_secs(30), Duration::from_millis(300), 8);
    let mut stream = TcpStream::connect(serve(&harness).await).await.unwrap();
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: cts\r\n").await.unwrap();
    let started = std::time::Instant::now();
    let mut buffer = [0u8; 256];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer)).await;
    let answered = match read {
        Ok(Ok(read)) => String::from_utf8_lossy(&buffer[..read]).into_owned(),
        Ok(Err(_)) => String::new(),
        Err(_) => panic!("the connection stayed open 10 s with half its headers"),
    };
    assert!(answered.is_empty() || answered.starts_with("HTTP/1.1 408"), "{answered}");
    assert!(started.elapsed() >= Duration::from_millis(250), "closed before the read timeout");
}

#[tokio::test]
async fn too_many_or_too_large_headers_get_431() {
    let harness = limited(Duration::from_secs(30), Duration::from_secs(15), 8);
    let address = serve(&harness).await;
    let many: String = (0..=MAX_HEADERS).map(|i| format!("X-Filler-{i}: {i}\r\n")).collect();
    let large = format!("X-Large: {}\r\n", "a".repeat(MAX_HEADER_BYTES));
    for headers in [many, large] {
        let mut stream = TcpStream::connect(address).await.unwrap();
        let request = format!("GET /health HTTP/1.1\r\nHost: cts\r\n{headers}\r\n");
        // The server may answer and close before it has read everything.
        let _ = stream.write_all(request.as_bytes()).await;
        let answer = read_for(&mut stream, Duration::from_secs(10)).await;
        assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    }
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: cts\r\n\r\n").await.unwrap();
    assert!(read_for(&mut stream, Duration::from_secs(10)).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn connections_over_the_limit_wait_until_an_open_one_closes() {
    let harness = limited(Duration::from_secs(30), Duration::from_secs(15), 1);
    let address = serve(&harness).await;
    let health = b"GET /health HTTP/1.1\r\nHost: cts\r\n\r\n";
    let mut first = TcpStream::connect(address).await.unwrap();
    first.write_all(health).await.unwrap();
    assert!(read_for(&mut first, Duration::from_secs(10)).await.starts_with("HTTP/1.1 200"));

    // The first connection stays open (keep-alive): the second is not served yet...
    let mut second = TcpStream::connect(address).await.unwrap();
    second.write_all(health).await.unwrap();
    assert_eq!(read_for(&mut second, Duration::from_millis(300)).await, "");
    // ...and is once the first closes.
    drop(first);
    assert!(read_for(&mut second, Duration::from_secs(10)).await.starts_with("HTTP/1.1 200"));
}
