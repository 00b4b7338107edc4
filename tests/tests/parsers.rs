//! Property tests of every parser of outside data (SECURITY.md): arbitrary input gives `Ok` or a
//! clear error, never a panic, in bounded time. Server answers come from the hostile peer of the
//! harness, answering arbitrary bytes with arbitrary statuses.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use proptest::prelude::*;
use seamless_buffer_remote::BufferClient;
use seamless_config::{self as config, LoadOptions, RemoteClients};
use seamless_database_remote::DatabaseClient;
use seamless_jobserver_remote::JobserverClient;
use seamless_remote_core::{Checksum, ClientOptions, RetryPolicy};
use seamless_tests::hostile::{Answer, HostileServer};

/// Arbitrary JSON values, nested a few levels.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        "\\PC{0,20}".prop_map(serde_json::Value::from),
        "[0-9a-f]{64}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Text that is mostly YAML/JSON punctuation, to reach the parsers' corners.
fn yamlish() -> impl Strategy<Value = String> {
    "[\\[\\]{}:, \\n\\-#'\"a-z0-9_&*!|>]{0,300}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn seamless_remote_clients_never_panics(text in prop_oneof!["\\PC{0,200}".boxed(), json_value().prop_map(|v| v.to_string()).boxed()]) {
        if let Ok(rc) = RemoteClients::parse(&text) {
            let _ = rc.buffer_stores(None);
            let _ = rc.database_stores();
        }
    }

    #[test]
    fn structured_remote_clients_never_panic(buffer in prop::collection::vec(json_value(), 0..4), database in prop::collection::vec(json_value(), 0..4)) {
        let text = serde_json::json!({"buffer": buffer, "database": database}).to_string();
        if let Ok(rc) = RemoteClients::parse(&text) {
            let _ = rc.buffer_stores(None);
            let _ = rc.database_stores();
        }
    }

    #[test]
    fn yaml_text_never_panics(text in prop_oneof![yamlish().boxed(), "\\PC{0,300}".boxed()]) {
        let _ = config::files::parse_yaml(&text);
    }
}

proptest! {
    // Each case writes three files and loads them: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn project_and_cluster_files_never_panic(
        project in prop_oneof![yamlish().boxed(), json_value().prop_map(|v| serde_yaml::to_string(&v).unwrap_or_default()).boxed()],
        profile in yamlish(),
        clusters in prop_oneof![yamlish().boxed(), json_value().prop_map(|v| serde_yaml::to_string(&v).unwrap_or_default()).boxed()],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let work = dir.path().join("work");
        std::fs::create_dir_all(home.join(".seamless")).unwrap();
        std::fs::create_dir_all(&work).unwrap();
        std::fs::write(work.join("seamless.yaml"), project).unwrap();
        std::fs::write(work.join("seamless.profile.yaml"), profile).unwrap();
        std::fs::write(home.join(".seamless").join("clusters.yaml"), clusters).unwrap();
        let opts = LoadOptions { workdir: work, home: Some(home), ..LoadOptions::default() };
        if let Ok(cfg) = config::load(&opts) {
            if let Ok(cur) = cfg.current() {
                let _ = cfg.hashserver_launch(false, &cur, None);
                let _ = cfg.database_launch(true, &cur, None);
                let _ = cfg.daskserver_launch(&cur, None);
                let _ = cfg.delegation();
            }
        }
    }
}

fn options() -> ClientOptions {
    ClientOptions {
        healthcheck: false,
        retry: RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        },
        timeouts: seamless_remote_core::Timeouts {
            total: Some(Duration::from_secs(5)),
            ..seamless_remote_core::Timeouts::default()
        },
        ..seamless_tests::client_options()
    }
}

/// Arbitrary answers: a status and a body that is JSON-like, arbitrary bytes, or huge.
fn answer() -> impl Strategy<Value = (u16, Vec<u8>)> {
    let status = prop_oneof![Just(200u16), Just(404), Just(409), Just(500), 100u16..600];
    let body = prop_oneof![
        json_value().prop_map(|v| v.to_string().into_bytes()),
        prop::collection::vec(any::<u8>(), 0..300),
        (1usize..4).prop_map(|n| vec![b'['; n << 20]),
    ];
    (status, body)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn server_answers_never_panic((status, body) in answer()) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let cs = Checksum::of(b"x");
            let server = HostileServer::start(vec![("", Answer::Full(status, vec![], body))]).await;
            let url = server.url();
            let b = BufferClient::with_options(&url, false, options()).unwrap();
            let d = DatabaseClient::with_options(&url, false, options(), 0).unwrap();
            let j = JobserverClient::with_options(&url, options()).unwrap();
            let calls = async {
                let _ = b.has(&[cs, cs]).await;
                let _ = b.buffer_lengths(&[cs]).await;
                let _ = b.get(&cs).await;
                let _ = d.get_transformation_result(&cs).await;
                let _ = d.get_rev_transformations(&cs).await;
                let _ = d.get_execution_record(&cs).await;
                let _ = d.get_bucket_probe("kind", "label").await;
                let _ = j.transformation_status(&cs).await;
                let _ = j.cancel_transformation(&cs).await;
            };
            tokio::time::timeout(Duration::from_secs(120), calls).await.unwrap();
        });
    }
}
