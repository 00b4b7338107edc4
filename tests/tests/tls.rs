//! HTTPS: certificates are verified; an extra trusted root makes a private server reachable.
//!
//! The Seamless services speak plain HTTP; HTTPS matters when they sit behind a TLS proxy. The
//! server here is a minimal TLS endpoint answering `/healthcheck` (no Seamless service speaks
//! TLS, so this is the one place where a stand-in is the real thing under test: our TLS client).

use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use seamless_remote_core::http::TlsOptions;
use seamless_remote_core::{
    ClientOptions, ClientRegistry, RemoteClient, RetryPolicy, TransportErrorKind,
};

async fn tls_server() -> (u16, Vec<u8>, tokio::task::JoinHandle<()>) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_der = certified.cert.der().to_vec();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![CertificateDer::from(cert_der.clone())], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                        bytes::Bytes::from_static(b"OK"),
                    )))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (port, cert_der, task)
}

fn options(roots: Vec<Vec<u8>>) -> ClientOptions {
    ClientOptions {
        tls: TlsOptions {
            root_certificates: roots,
        },
        retry: RetryPolicy::no_retry(),
        registry: Some(ClientRegistry::new(Duration::from_secs(3600))),
        ..ClientOptions::default()
    }
}

#[tokio::test]
async fn https_with_a_trusted_root_works() {
    let (port, cert, task) = tls_server().await;
    let client =
        RemoteClient::with_options(&format!("https://localhost:{port}"), options(vec![cert]))
            .unwrap();
    client.ensure_initialized().await.unwrap();
    task.abort();
}

#[tokio::test]
async fn https_with_an_unknown_certificate_is_refused() {
    let (port, _cert, task) = tls_server().await;
    let client =
        RemoteClient::with_options(&format!("https://localhost:{port}"), options(vec![])).unwrap();
    let err = client.ensure_initialized().await.unwrap_err();
    assert_eq!(err.kind(), &TransportErrorKind::Connect, "{err}");
    let msg = err.to_string().to_lowercase();
    assert!(msg.contains("certificate"), "{msg}");
    task.abort();
}

#[test]
fn bad_base_urls_are_clear_errors() {
    for (url, why) in [
        ("ftp://host", "http:// or https://"),
        ("127.0.0.1:5100", "http:// or https://"),
        ("http://", "not a valid URL"),
        ("http:///path", "URL"),
        ("http://h/?x=1", "query"),
        ("http://h:5100/#frag", "fragment"),
    ] {
        let err = RemoteClient::new(url).unwrap_err();
        assert_eq!(err.kind(), &TransportErrorKind::InvalidUrl, "{url}: {err}");
        assert!(err.to_string().contains(why), "{url}: {err}");
    }
}
