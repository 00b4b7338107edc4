//! database-remote and jobserver-remote against a real seamless-database, seamless-jobserver and
//! hashserver: a real transformation end to end, failures, cancel, long jobs, interop with the
//! Python reference, and faults.

use std::time::Duration;

use seamless_buffer_remote::BufferClient;
use seamless_database_remote::{ActiveDatabases, DatabaseClient, DatabaseError, RecordWrite};
use seamless_jobserver_remote::{JobStatus, JobserverClient, JobserverError, RunRequest};
use seamless_remote_core::{Checksum, ClientOptions, Timeouts};
use seamless_tests::proxy::{Fault, FaultProxy};
use seamless_tests::require;
use seamless_tests::services::{Database, Hashserver, HashserverOptions, Jobserver};
use seamless_tests::transformation::{mixed_buffer, python, Transformation};
use serde_json::{json, Map, Value};

fn opts() -> ClientOptions {
    seamless_tests::client_options()
}

fn db(url: &str) -> DatabaseClient {
    DatabaseClient::with_options(url, false, opts(), 30).unwrap()
}

struct Stack {
    hs: Hashserver,
    db: Database,
    js: Jobserver,
}

fn stack() -> Option<Stack> {
    seamless_tests::init_tracing();
    let hs = require!(Hashserver::start(HashserverOptions::default()))?;
    let db = require!(Database::start())?;
    let js = require!(Jobserver::start(&hs.url(), Some(&db.url())))?;
    Some(Stack { hs, db, js })
}

async fn upload(hs_url: &str, t: &Transformation) {
    let c = BufferClient::with_options(hs_url, false, opts()).unwrap();
    for (cs, buf) in &t.buffers {
        c.write(cs, buf.clone()).await.unwrap();
    }
}

fn minimal_record(tf: &Checksum, result: &Checksum, wall: f64) -> Map<String, Value> {
    let v = json!({"schema_version": 1, "tf_checksum": tf, "result_checksum": result,
                   "execution_mode": "remote", "wall_time_seconds": wall});
    v.as_object().unwrap().clone()
}

#[tokio::test]
async fn a_real_transformation_end_to_end() {
    let Some(s) = stack() else { return };
    let t = python(
        "def add(a, b):\n    return a + b\n",
        &[("a", json!(19)), ("b", json!(23))],
    );
    upload(&s.hs.url(), &t).await;
    let js = JobserverClient::with_options(&s.js.url(), opts()).unwrap();
    let result = js
        .run_transformation(&RunRequest::new(t.dict.clone(), t.tf_checksum))
        .await
        .unwrap();
    let r = result.result_checksum().unwrap();
    assert_eq!(r, Checksum::of(b"42\n"));
    let hs = BufferClient::with_options(&s.hs.url(), false, opts()).unwrap();
    assert_eq!(&hs.get(&r).await.unwrap().unwrap()[..], b"42\n");

    // Store the result and an execution record; read them back.
    let active = ActiveDatabases::new(vec![db(&s.db.url())], vec![db(&s.db.url())]);
    let tf = t.tf_checksum;
    assert_eq!(active.get_transformation_result(&tf).await.unwrap(), None);
    assert!(active.set_transformation_result(&tf, &r).await.unwrap());
    assert!(active.set_transformation_result(&tf, &r).await.unwrap());
    assert_eq!(
        active.get_transformation_result(&tf).await.unwrap(),
        Some(r)
    );
    let record = minimal_record(&tf, &r, 0.02);
    assert!(active.set_execution_record(&tf, &r, &record).await.unwrap());
    let back = active.get_execution_record(&tf).await.unwrap().unwrap();
    assert_eq!(back["result_checksum"], json!(r));
    // A different record for the same result is "not written", not an error.
    let other = minimal_record(&tf, &r, 99.0);
    assert_eq!(
        db(&s.db.url())
            .set_execution_record(&tf, &r, &other)
            .await
            .unwrap(),
        RecordWrite::AlreadyExistsDifferent
    );
    assert!(!active.set_execution_record(&tf, &r, &other).await.unwrap());
    // The transformation is found from its result, once, although it was stored twice.
    assert_eq!(
        active.get_rev_transformations(&r).await.unwrap(),
        Some(vec![tf])
    );
    // Undo removes it.
    assert!(active.undo_transformation_result(&tf, &r).await.unwrap());
    assert_eq!(active.get_transformation_result(&tf).await.unwrap(), None);
    let irr = active
        .get_irreproducible_records(&tf, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(irr.len(), 1);
    // Bucket probes.
    let tokens = json!({"boot_id": "abc"}).as_object().unwrap().clone();
    assert!(active
        .set_bucket_probe(
            "node",
            "host1",
            &Checksum::of(b"b"),
            &tokens,
            "2026-01-01T00:00:00Z"
        )
        .await
        .unwrap());
    let probe = active
        .get_bucket_probe("node", "host1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(probe["label"], json!("host1"));
    assert_eq!(
        active.get_bucket_probe("node", "nobody").await.unwrap(),
        None
    );
}

#[tokio::test]
async fn a_failing_transformation_is_one_request_with_its_traceback() {
    let Some(s) = stack() else { return };
    let t = python(
        "def fail(a):\n    raise ValueError(\"deliberate failure %s\" % a)\n",
        &[("a", json!(1))],
    );
    upload(&s.hs.url(), &t).await;
    let proxy = FaultProxy::start(s.js.addr()).await;
    let js = JobserverClient::with_options(&proxy.url(), opts()).unwrap();
    let err = js
        .run_transformation(&RunRequest::new(t.dict.clone(), t.tf_checksum))
        .await
        .unwrap_err();
    assert!(matches!(err, JobserverError::Failed { .. }), "{err}");
    assert!(err.to_string().contains("deliberate failure 1"), "{err}");
    assert_eq!(proxy.count("GET /run-transformation"), 1, "never re-run");
}

fn slow(secs: f64) -> Transformation {
    python(
        "def slow(secs):\n    import time\n    time.sleep(secs)\n    return secs * 2\n",
        &[("secs", json!(secs))],
    )
}

#[tokio::test]
async fn cancel_of_a_running_job_and_cancel_on_drop() {
    let Some(s) = stack() else { return };
    let js = JobserverClient::with_options(&s.js.url(), opts()).unwrap();

    // An explicit cancel: the run ends with Canceled.
    let t = slow(3.0);
    upload(&s.hs.url(), &t).await;
    let run = {
        let js = js.clone();
        let req = RunRequest::new(t.dict.clone(), t.tf_checksum);
        tokio::spawn(async move { js.run_transformation(&req).await })
    };
    wait_for_status(&js, &t.tf_checksum, JobStatus::Running).await;
    assert!(js.cancel_transformation(&t.tf_checksum).await.unwrap());
    let err = run.await.unwrap().unwrap_err();
    assert!(matches!(err, JobserverError::Canceled { .. }), "{err}");
    assert_eq!(
        js.transformation_status(&t.tf_checksum).await.unwrap(),
        JobStatus::Canceled
    );

    // Dropping the future (aborting the task) sends the cancel.
    let t = slow(2.5);
    upload(&s.hs.url(), &t).await;
    let run = {
        let js = js.clone();
        let req = RunRequest::new(t.dict.clone(), t.tf_checksum);
        tokio::spawn(async move { js.run_transformation(&req).await })
    };
    wait_for_status(&js, &t.tf_checksum, JobStatus::Running).await;
    run.abort();
    wait_for_status(&js, &t.tf_checksum, JobStatus::Canceled).await;
}

async fn wait_for_status(js: &JobserverClient, tf: &Checksum, want: JobStatus) {
    for _ in 0..200 {
        if js.transformation_status(tf).await.unwrap() == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("status never became {want:?}");
}

#[tokio::test]
async fn a_job_longer_than_the_read_timeout_is_not_cut() {
    let Some(s) = stack() else { return };
    let t = slow(2.5);
    upload(&s.hs.url(), &t).await;
    let mut o = opts();
    o.timeouts = Timeouts {
        read: Some(Duration::from_millis(800)),
        ..Timeouts::default()
    };
    let proxy = FaultProxy::start(s.js.addr()).await;
    let js = JobserverClient::with_options(&proxy.url(), o).unwrap();
    let r = js
        .run_transformation(&RunRequest::new(t.dict.clone(), t.tf_checksum))
        .await
        .unwrap();
    assert_eq!(
        r.result_checksum(),
        Some(Checksum::of(&mixed_buffer(&json!(5.0))))
    );
    assert_eq!(proxy.count("GET /run-transformation"), 1);
}

fn py_db(args: &[&str]) -> Option<String> {
    let mut cmd = require!(seamless_tests::venv::python_script("database_interop.py"))?;
    let out = cmd.args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[tokio::test]
async fn interop_with_the_python_database_client() {
    seamless_tests::init_tracing();
    let Some(d) = require!(Database::start()) else {
        return;
    };
    let c = db(&d.url());
    let (tf1, r1) = (Checksum::of(b"tf one"), Checksum::of(b"result one"));
    c.set_transformation_result(&tf1, &r1).await.unwrap();
    c.set_execution_record(&tf1, &r1, &minimal_record(&tf1, &r1, 1.5))
        .await
        .unwrap();
    let Some(got) = py_db(&["get", &d.url(), &tf1.to_hex()]) else {
        return;
    };
    assert_eq!(got, r1.to_hex());
    let rec: Value =
        serde_json::from_str(&py_db(&["get-record", &d.url(), &tf1.to_hex()]).unwrap()).unwrap();
    assert_eq!(rec["wall_time_seconds"], json!(1.5));
    assert_eq!(
        py_db(&["rev", &d.url(), &r1.to_hex()]).unwrap(),
        json!([tf1]).to_string()
    );

    let (tf2, r2) = (Checksum::of(b"tf two"), Checksum::of(b"result two"));
    py_db(&["set", &d.url(), &tf2.to_hex(), &r2.to_hex()]).unwrap();
    let record = json!({"schema_version": 1, "tf_checksum": tf2, "result_checksum": r2, "executor": "python"});
    py_db(&[
        "set-record",
        &d.url(),
        &tf2.to_hex(),
        &r2.to_hex(),
        &record.to_string(),
    ])
    .unwrap();
    assert_eq!(c.get_transformation_result(&tf2).await.unwrap(), Some(r2));
    assert_eq!(
        c.get_execution_record(&tf2).await.unwrap().unwrap()["executor"],
        json!("python")
    );
    assert_eq!(
        py_db(&["get", &d.url(), &Checksum::of(b"unknown").to_hex()]).unwrap(),
        "None"
    );
}

#[tokio::test]
async fn malformed_answers_dead_databases_and_the_inflight_bound() {
    seamless_tests::init_tracing();
    let Some(d) = require!(Database::start()) else {
        return;
    };
    let proxy = FaultProxy::start(d.addr()).await;
    let c = DatabaseClient::with_options(&proxy.url(), false, opts(), 3).unwrap();
    let tf = Checksum::of(b"tf");
    c.set_transformation_result(&tf, &Checksum::of(b"r"))
        .await
        .unwrap();

    // Malformed answers: clear errors, not retried.
    proxy.push("GET /", Fault::Respond(200, "not a checksum".into()));
    let err = c.get_transformation_result(&tf).await.unwrap_err();
    assert!(matches!(err, DatabaseError::Malformed { .. }), "{err}");
    assert!(err.to_string().contains("bare 64-hex"), "{err}");
    proxy.push("GET /", Fault::Respond(200, "{\"not\": \"a list\"}".into()));
    let err = c
        .get_rev_transformations(&Checksum::of(b"r"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("rev_transformations"), "{err}");
    proxy.push("GET /", Fault::Respond(200, "[1, 2]".into()));
    assert!(c.get_execution_record(&tf).await.is_err());
    // A server error is definite: one request.
    let before = proxy.count("GET /");
    proxy.push(
        "GET /",
        Fault::Respond(500, "Server got itself in trouble".into()),
    );
    let err = c.get_transformation_result(&tf).await.unwrap_err();
    assert!(
        matches!(err, DatabaseError::Rejected { status: 500, .. }),
        "{err}"
    );
    assert_eq!(proxy.count("GET /"), before + 1);

    // A dead database: the next read client answers.
    let dead = format!("http://127.0.0.1:{}", seamless_tests::process::free_port());
    let mut o = opts();
    o.retry.max_attempts = 1;
    let dead = DatabaseClient::with_options(&dead, false, o, 30).unwrap();
    let active = ActiveDatabases::new(vec![dead, db(&d.url())], vec![]);
    assert_eq!(
        active.get_transformation_result(&tf).await.unwrap(),
        Some(Checksum::of(b"r"))
    );

    // The in-flight bound: 40 concurrent lookups, never more than 3 at the proxy.
    let lookups = (0..40).map(|i| {
        let c = c.clone();
        async move {
            c.get_transformation_result(&Checksum::of(format!("x{i}").as_bytes()))
                .await
        }
    });
    for r in futures_util::future::join_all(lookups).await {
        assert_eq!(r.unwrap(), None);
    }
    assert!(
        proxy.max_concurrent_connections() <= 3,
        "{} at once",
        proxy.max_concurrent_connections()
    );

    // A read-only client refuses writes.
    let ro = DatabaseClient::with_options(&d.url(), true, opts(), 30).unwrap();
    let err = ro.set_transformation_result(&tf, &tf).await.unwrap_err();
    assert!(matches!(err, DatabaseError::ReadOnly { .. }), "{err}");
}

#[tokio::test]
async fn activation_apis_with_extern_clients() {
    use seamless_database_remote::remote::{ActivateOptions, DatabaseRemote};
    use seamless_jobserver_remote::remote::JobserverRemote;
    let Some(s) = stack() else { return };

    let mut dbs = DatabaseRemote::new();
    dbs.define_extern_client("ro", &s.db.url(), true).unwrap();
    dbs.define_extern_client("rw", &s.db.url(), false).unwrap();
    let err = dbs
        .activate(&ActivateOptions {
            extern_clients: vec!["missing".into()],
            ..ActivateOptions::default()
        })
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("unknown extern database client 'missing'"),
        "{err}"
    );
    dbs.activate(&ActivateOptions {
        extern_clients: vec!["ro".into()],
        ..ActivateOptions::default()
    })
    .unwrap();
    let active = dbs.active();
    assert!(active.has_read_server() && !active.has_write_server());
    let (tf, r) = (Checksum::of(b"act tf"), Checksum::of(b"act r"));
    assert!(
        !active.set_transformation_result(&tf, &r).await.unwrap(),
        "nothing to write to"
    );
    dbs.activate(&ActivateOptions {
        extern_clients: vec!["ro".into(), "rw".into()],
        ..ActivateOptions::default()
    })
    .unwrap();
    assert!(dbs
        .active()
        .set_transformation_result(&tf, &r)
        .await
        .unwrap());
    assert_eq!(
        dbs.active().get_transformation_result(&tf).await.unwrap(),
        Some(r)
    );
    assert_eq!(dbs.inspect_extern_clients().len(), 2);

    let mut jobs = JobserverRemote::new();
    assert!(jobs
        .active()
        .run_transformation(&RunRequest::new(json!({}), tf))
        .await
        .is_err());
    jobs.define_extern_client("js", &s.js.url()).unwrap();
    jobs.activate(&seamless_jobserver_remote::remote::ActivateOptions {
        extern_clients: vec!["js".into()],
        ..Default::default()
    })
    .unwrap();
    let t = python(
        "def add(a, b):\n    return a + b\n",
        &[("a", json!(1)), ("b", json!(2))],
    );
    upload(&s.hs.url(), &t).await;
    let active = jobs.active();
    let res = active
        .run_transformation(&RunRequest::new(t.dict.clone(), t.tf_checksum))
        .await
        .unwrap();
    assert_eq!(res.result_checksum(), Some(Checksum::of(b"3\n")));
    assert_eq!(
        active.transformation_status(&t.tf_checksum).await.unwrap(),
        JobStatus::NotRunning
    );
    assert!(!active.cancel_transformation(&t.tf_checksum).await.unwrap());
}
