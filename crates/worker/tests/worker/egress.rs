//! The SSRF guard against a real listener on 127.0.0.1: blocked URLs must never reach it, in any
//! spelling, through a redirect or through a DNS name; the allow-list lets them through.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use helpdesk_domain::egress::{EgressPolicy, EgressRefusal};
use helpdesk_worker::egress::{EgressClient, EgressOptions, read_capped, refusal_of};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A tiny HTTP server that counts the connections it accepts and answers each request with
/// `response`.
async fn counting_server(address: &str, response: String) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind(address).await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&connections);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            let response = response.clone();
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                let _ = socket.read(&mut buffer).await;
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (port, connections)
}

fn ok_response(body: &str) -> String {
    format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len())
}

#[tokio::test]
async fn blocked_urls_never_reach_the_listener() {
    let (port, connections) = counting_server("127.0.0.1:0", ok_response("secret")).await;
    // A redirector on 127.0.0.2, which the policy admits, pointing at the blocked 127.0.0.1.
    let redirect = format!(
        "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:{port}/\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
    let (redirector, redirector_hits) = counting_server("127.0.0.2:0", redirect).await;
    let client = EgressClient::new(EgressPolicy::parse("127.0.0.2/32").expect("list"), &EgressOptions::default())
        .expect("client");

    let literal = [
        format!("http://127.0.0.1:{port}/"),
        format!("http://2130706433:{port}/"),
        format!("http://0x7f.0.0.1:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
    ];
    for url in &literal {
        assert!(
            matches!(client.check(url), Err(EgressRefusal::Address { .. })),
            "{url} must be refused before any request"
        );
    }
    // A name that resolves to loopback, refused by the resolver when the request connects.
    let by_name =
        client.http().get(format!("http://localhost:{port}/")).send().await.expect_err("localhost must be refused");
    assert!(matches!(refusal_of(&by_name), Some(EgressRefusal::Address { .. })), "{by_name:?}");
    // A redirect to the blocked address.
    let url = format!("http://127.0.0.2:{redirector}/");
    client.check(&url).expect("the redirector is allow-listed");
    let redirected = client.http().get(&url).send().await.expect_err("the redirect must be refused");
    assert!(matches!(refusal_of(&redirected), Some(EgressRefusal::Address { .. })), "{redirected:?}");
    assert_eq!(redirector_hits.load(Ordering::SeqCst), 1, "the redirector was asked once");

    assert_eq!(connections.load(Ordering::SeqCst), 0, "the blocked listener was never reached");
}

#[tokio::test]
async fn allow_listed_addresses_are_reached_and_bodies_are_capped() {
    let (port, connections) = counting_server("127.0.0.1:0", ok_response(&"x".repeat(10_000))).await;
    let client =
        EgressClient::new(EgressPolicy::parse("127.0.0.0/8,::1/128").expect("list"), &EgressOptions::default())
            .expect("client");
    let url = client.check(&format!("http://localhost:{port}/")).expect("allowed");
    let response = client.http().get(url).send().await.expect("reached");
    assert_eq!(response.status(), 200);
    let body = read_capped(response, 1024).await.expect("body");
    assert_eq!(body.len(), 1024);
    assert_eq!(connections.load(Ordering::SeqCst), 1);
}
