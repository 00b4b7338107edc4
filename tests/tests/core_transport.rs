//! remote-core against a real hashserver, with the fault proxy in front where a fault is needed.

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use seamless_remote_core::{
    Checksum, ClientOptions, ClientRegistry, RemoteClient, RequestBody, RequestSpec, RetryPolicy,
    TimeoutKind, TransportError, TransportErrorKind,
};
use seamless_tests::proxy::{Fault, FaultProxy};
use seamless_tests::require;
use seamless_tests::services::{Hashserver, HashserverOptions};

fn opts() -> ClientOptions {
    seamless_tests::client_options()
}

fn start_hashserver() -> Option<Hashserver> {
    seamless_tests::init_tracing();
    require!(Hashserver::start(HashserverOptions::default()))
}

async fn put(client: &RemoteClient, data: &'static [u8]) -> Checksum {
    let cs = Checksum::of(data);
    let spec =
        RequestSpec::put(format!("/{cs}")).body(RequestBody::octets(Bytes::from_static(data)));
    let (status, _) = client.request_bytes(&spec, 1 << 20).await.unwrap();
    assert!(
        matches!(status.as_u16(), 200..=202),
        "PUT answered {status}"
    );
    cs
}

/// A GET whose non-2xx answers are errors (what a service client does for unexpected statuses).
async fn get_ok(client: &RemoteClient, path: &str) -> Result<Bytes, TransportError> {
    let spec = RequestSpec::get(path);
    client
        .execute(|| async {
            let response = client.send(&spec).await?;
            if response.status().is_success() {
                response.bytes_limited(64 << 20).await
            } else {
                Err(response.into_status_error().await)
            }
        })
        .await
}

#[tokio::test]
async fn healthcheck_against_a_real_hashserver() {
    let Some(hs) = start_hashserver() else { return };
    let client = RemoteClient::with_options(&format!("{}/", hs.url()), opts()).unwrap();
    assert_eq!(
        client.url().unwrap(),
        hs.url(),
        "trailing slash is stripped"
    );
    assert!(!client.is_initialized());
    let url = client.ensure_initialized().await.unwrap();
    assert_eq!(url, hs.url());
    assert!(client.is_initialized());
    client.healthcheck().await.unwrap();
}

#[tokio::test]
async fn get_with_a_json_body_on_has() {
    let Some(hs) = start_hashserver() else { return };
    let client = RemoteClient::with_options(&hs.url(), opts()).unwrap();
    let present = put(&client, b"hello world").await;
    let absent = Checksum::of(b"not stored");
    let spec = RequestSpec::get("/has")
        .json(&[present.to_string(), absent.to_string()])
        .unwrap();
    let (status, body) = client.request_bytes(&spec, 1 << 20).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    let answer: Vec<bool> = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer, vec![true, false]);
}

#[tokio::test]
async fn retry_recovers_from_a_reset_mid_body() {
    let Some(hs) = start_hashserver() else { return };
    let proxy = FaultProxy::start(hs.addr()).await;
    let client = RemoteClient::with_options(&proxy.url(), opts()).unwrap();
    let data: &'static [u8] = &[7u8; 100_000];
    let cs = put(&client, data).await;
    // Cut the response after its head and a few body bytes.
    proxy.push(&format!("GET /{cs}"), Fault::ResetAfter(300));
    let body = get_ok(&client, &format!("/{cs}")).await.unwrap();
    assert_eq!(Checksum::of(&body), cs);
    assert_eq!(
        proxy.count(&format!("GET /{cs}")),
        2,
        "{:?}",
        proxy.requests()
    );
    assert_eq!(proxy.pending(), 0);
}

#[tokio::test]
async fn retry_gives_up_after_five_attempts_and_says_so() {
    let Some(hs) = start_hashserver() else { return };
    let proxy = FaultProxy::start(hs.addr()).await;
    let client = RemoteClient::with_options(&proxy.url(), opts()).unwrap();
    let cs = put(&client, b"five resets").await;
    for _ in 0..5 {
        proxy.push(&format!("GET /{cs}"), Fault::ResetAfter(0));
    }
    let err = get_ok(&client, &format!("/{cs}")).await.unwrap_err();
    assert_eq!(err.attempts(), 5, "{err}");
    assert_eq!(proxy.count(&format!("GET /{cs}")), 5);
    let msg = err.to_string();
    assert!(msg.contains(&format!("{}/{cs}", proxy.url())), "{msg}");
    assert!(msg.contains("after 5 attempts"), "{msg}");
}

#[tokio::test]
async fn retry_recovers_from_503() {
    let Some(hs) = start_hashserver() else { return };
    let proxy = FaultProxy::start(hs.addr()).await;
    let client = RemoteClient::with_options(&proxy.url(), opts()).unwrap();
    let cs = put(&client, b"behind a flaky gateway").await;
    proxy.push(&format!("GET /{cs}"), Fault::Status503);
    proxy.push(&format!("GET /{cs}"), Fault::Status503);
    let body = get_ok(&client, &format!("/{cs}")).await.unwrap();
    assert_eq!(&body[..], b"behind a flaky gateway");
    assert_eq!(
        proxy.count(&format!("GET /{cs}")),
        3,
        "{:?}",
        proxy.requests()
    );
}

#[tokio::test]
async fn a_400_is_never_retried() {
    let Some(hs) = start_hashserver() else { return };
    let proxy = FaultProxy::start(hs.addr()).await;
    let client = RemoteClient::with_options(&proxy.url(), opts()).unwrap();
    // The hashserver rejects a malformed checksum with 400.
    let err = get_ok(&client, "/abcd").await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::BAD_REQUEST), "{err}");
    assert_eq!(err.attempts(), 1);
    assert_eq!(proxy.count("GET /abcd"), 1);
    assert!(err.to_string().contains("Wrong length"), "{err}");

    // A wrong body for a checksum: 400 "Incorrect checksum", one PUT only.
    let cs = Checksum::of(b"the real content");
    let spec = RequestSpec::put(format!("/{cs}")).body(RequestBody::octets(&b"other content"[..]));
    let err = client
        .execute(|| async {
            let r = client.send(&spec).await?;
            match r.status().as_u16() {
                200..=202 => Ok(()),
                _ => Err(r.into_status_error().await),
            }
        })
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::BAD_REQUEST));
    assert!(err.to_string().contains("Incorrect checksum"), "{err}");
    assert_eq!(proxy.count(&format!("PUT /{cs}")), 1);
}

#[tokio::test]
async fn a_stalled_response_times_out_naming_the_url() {
    let Some(hs) = start_hashserver() else { return };
    let proxy = FaultProxy::start(hs.addr()).await;
    let mut o = opts();
    o.timeouts.read = Some(Duration::from_millis(300));
    o.retry.max_attempts = 2;
    let client = RemoteClient::with_options(&proxy.url(), o).unwrap();
    let cs = put(&client, b"slow").await;
    proxy.push(&format!("GET /{cs}"), Fault::Stall);
    proxy.push(&format!("GET /{cs}"), Fault::Stall);
    let err = get_ok(&client, &format!("/{cs}")).await.unwrap_err();
    assert_eq!(
        err.kind(),
        &TransportErrorKind::Timeout(TimeoutKind::Read),
        "{err}"
    );
    assert_eq!(err.attempts(), 2);
    let msg = err.to_string();
    assert!(msg.contains(&format!("GET {}/{cs}", proxy.url())), "{msg}");
    assert!(msg.contains("read timeout"), "{msg}");
}

#[tokio::test]
async fn the_total_timeout_bounds_a_request() {
    let Some(hs) = start_hashserver() else { return };
    let proxy = FaultProxy::start(hs.addr()).await;
    let mut o = opts();
    o.timeouts.total = Some(Duration::from_millis(300));
    o.retry = RetryPolicy::no_retry();
    let client = RemoteClient::with_options(&proxy.url(), o).unwrap();
    client.ensure_initialized().await.unwrap();
    proxy.push("GET /has", Fault::Stall);
    let spec = RequestSpec::get("/has")
        .json(&Vec::<String>::new())
        .unwrap();
    let err = client.request_bytes(&spec, 1 << 20).await.unwrap_err();
    assert_eq!(err.kind(), &TransportErrorKind::Timeout(TimeoutKind::Total));
}

#[tokio::test]
async fn restart_reconnects_after_the_server_restarts_on_the_same_port() {
    let Some(mut hs) = start_hashserver() else {
        return;
    };
    let proxy = FaultProxy::start(hs.addr()).await;
    let client = RemoteClient::with_options(&proxy.url(), opts()).unwrap();
    let cs = put(&client, b"survives a restart").await;
    assert_eq!(proxy.count("GET /healthcheck"), 1);

    // The server goes away and comes back on the same port; the pooled connection is dead.
    hs.restart().unwrap();
    let body = get_ok(&client, &format!("/{cs}")).await.unwrap();
    assert_eq!(&body[..], b"survives a restart");

    // An explicit restart drops the pool and re-runs the healthcheck before the next request.
    let before = proxy.count("GET /healthcheck");
    let connections = proxy.connections();
    client.restart();
    assert!(!client.is_initialized());
    get_ok(&client, &format!("/{cs}")).await.unwrap();
    assert_eq!(proxy.count("GET /healthcheck"), before + 1);
    assert!(
        proxy.connections() > connections,
        "a new connection is opened"
    );
}

#[tokio::test]
async fn a_dead_server_fails_with_connect_errors_after_retries() {
    seamless_tests::init_tracing();
    let port = seamless_tests::process::free_port();
    let client = RemoteClient::with_options(&format!("http://127.0.0.1:{port}"), opts()).unwrap();
    let err = get_ok(&client, "/healthcheck").await.unwrap_err();
    assert_eq!(err.kind(), &TransportErrorKind::Connect, "{err}");
    assert_eq!(err.attempts(), 5);
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("127.0.0.1:{port}/healthcheck")),
        "{msg}"
    );
    assert!(msg.contains("could not connect"), "{msg}");
    assert!(client.restarts() >= 4);
}

#[tokio::test]
async fn a_connection_dropped_at_accept_is_retried() {
    let Some(hs) = start_hashserver() else { return };
    let proxy = FaultProxy::start(hs.addr()).await;
    let client = RemoteClient::with_options(&proxy.url(), opts()).unwrap();
    let cs = put(&client, b"refused then fine").await;
    client.restart();
    let before = proxy.connections();
    proxy.set_refuse(true);
    let task = {
        let client = client.clone();
        tokio::spawn(async move { get_ok(&client, &format!("/{cs}")).await })
    };
    // Accept again once a connection has been refused (at least one failed attempt).
    while proxy.connections() == before {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    proxy.set_refuse(false);
    let body = task.await.unwrap().unwrap();
    assert_eq!(&body[..], b"refused then fine");
}

#[tokio::test]
async fn keepalive_pings_an_idle_client_until_close_all() {
    let Some(hs) = start_hashserver() else { return };
    let proxy = FaultProxy::start(hs.addr()).await;
    let registry = ClientRegistry::new(Duration::from_millis(200));
    let client = RemoteClient::with_options(
        &proxy.url(),
        ClientOptions {
            registry: Some(registry.clone()),
            ..opts()
        },
    )
    .unwrap();
    assert!(
        !registry.keepalive_running(),
        "starts with the first initialization"
    );
    client.ensure_initialized().await.unwrap();
    assert!(registry.keepalive_running());
    // Wait (bounded) for the keepalive's pings: no timing assertion, just their arrival.
    let mut pings = 0;
    for _ in 0..100 {
        pings = proxy.count("GET /healthcheck");
        if pings >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        pings >= 4,
        "1 initial healthcheck + keepalive pings, saw {pings}"
    );

    registry.close_all();
    assert!(!registry.keepalive_running());
    // A ping already on the wire may still arrive: let it, then count.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = proxy.count("GET /healthcheck");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        proxy.count("GET /healthcheck"),
        after,
        "no pings after close_all"
    );
    // The hashserver's own access log saw the pings too.
    assert!(hs.log().matches("GET /healthcheck").count() >= pings);
}

#[tokio::test]
async fn never_sends_expect_100_continue() {
    let Some(hs) = start_hashserver() else { return };
    let proxy = FaultProxy::start(hs.addr()).await;
    let client = RemoteClient::with_options(&proxy.url(), opts()).unwrap();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    let cs = Checksum::of(&big);
    let spec = RequestSpec::put(format!("/{cs}")).body(RequestBody::octets(big.clone()));
    let (status, _) = client.request_bytes(&spec, 1 << 20).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    // A second PUT of the same checksum is answered (201) before its body is read; the
    // connection must stay usable for the next request.
    let (status, _) = client.request_bytes(&spec, 1 << 20).await.unwrap();
    assert_eq!(status, StatusCode::CREATED);
    let body = get_ok(&client, &format!("/{cs}")).await.unwrap();
    assert_eq!(Checksum::of(&body), cs);
    for head in proxy.heads() {
        assert!(!head.to_ascii_lowercase().contains("expect:"), "{head}");
    }
    let put_head = proxy
        .heads()
        .into_iter()
        .find(|h| h.starts_with("PUT"))
        .unwrap();
    assert!(
        put_head
            .to_ascii_lowercase()
            .contains("content-length: 3000000"),
        "{put_head}"
    );
}

#[tokio::test]
async fn streamed_request_body_is_recreated_for_a_retry() {
    let Some(hs) = start_hashserver() else { return };
    let proxy = FaultProxy::start(hs.addr()).await;
    let client = RemoteClient::with_options(&proxy.url(), opts()).unwrap();
    client.ensure_initialized().await.unwrap();
    let data = Bytes::from(vec![42u8; 1_000_000]);
    let cs = Checksum::of(&data);
    let made = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let body = {
        let made = made.clone();
        let data = data.clone();
        RequestBody::Stream {
            len: Some(data.len() as u64),
            make: std::sync::Arc::new(move || {
                use http_body_util::BodyExt;
                made.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let chunks: Vec<Result<http_body::Frame<Bytes>, seamless_remote_core::BoxError>> =
                    data.chunks(64 * 1024)
                        .map(|c| Ok(http_body::Frame::data(Bytes::copy_from_slice(c))))
                        .collect();
                Ok(http_body_util::StreamBody::new(futures_util::stream::iter(chunks)).boxed())
            }),
        }
    };
    proxy.push(&format!("PUT /{cs}"), Fault::Status503);
    let spec = RequestSpec::put(format!("/{cs}")).body(body);
    let (status, _) = client.request_bytes(&spec, 1 << 20).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(made.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(
        Checksum::of(&get_ok(&client, &format!("/{cs}")).await.unwrap()),
        cs
    );
}

#[tokio::test]
async fn concurrent_requests_are_capped_by_max_connections() {
    let Some(hs) = start_hashserver() else { return };
    let proxy = FaultProxy::start(hs.addr()).await;
    let client = RemoteClient::with_options(
        &proxy.url(),
        ClientOptions {
            max_connections: 3,
            ..opts()
        },
    )
    .unwrap();
    let cs = put(&client, b"many readers").await;
    let path = format!("/{cs}");
    let gets = (0..40).map(|_| get_ok(&client, &path));
    for body in futures_util::future::join_all(gets).await {
        assert_eq!(&body.unwrap()[..], b"many readers");
    }
    assert!(
        proxy.max_concurrent_connections() <= 3,
        "{} connections open at once",
        proxy.max_concurrent_connections()
    );
}
