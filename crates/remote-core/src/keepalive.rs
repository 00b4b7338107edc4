//! The client registry and its one keepalive task.
//!
//! Launched services exit after 600 s without traffic, so every initialized client is pinged
//! (`GET /healthcheck`) every 30 s by one background task per registry, errors ignored. The
//! task starts when the first client of the registry is initialized and stops on
//! [`ClientRegistry::close_all`] (or [`close_all`] for the process-wide registry), which also drops
//! every client's connections. A client used again afterwards re-initializes and restarts the task.
//!
//! The interval of the process-wide registry can be changed with
//! `SEAMLESS_REMOTE_KEEPALIVE_INTERVAL` (seconds; our addition, the reference hard-codes 30).

use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::client::{ClientInner, RemoteClient};

/// The default keepalive interval (30 s, as the reference).
pub const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);

/// A set of clients sharing one keepalive task. Cheap to clone.
#[derive(Clone)]
pub struct ClientRegistry {
    inner: Arc<RegistryInner>,
}

struct RegistryInner {
    interval: Duration,
    clients: Mutex<Vec<Weak<ClientInner>>>,
    task: Mutex<Option<(JoinHandle<()>, Arc<Notify>)>>,
}

impl std::fmt::Debug for ClientRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientRegistry")
            .field("interval", &self.inner.interval)
            .field("clients", &self.clients().len())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ClientRegistry {
    /// A registry whose keepalive task pings every `interval`.
    pub fn new(interval: Duration) -> Self {
        ClientRegistry {
            inner: Arc::new(RegistryInner {
                interval,
                clients: Mutex::new(Vec::new()),
                task: Mutex::new(None),
            }),
        }
    }

    /// The process-wide registry (interval from [`crate::env::set_keepalive_interval`], default
    /// 30 s).
    pub fn global() -> Self {
        static GLOBAL: OnceLock<ClientRegistry> = OnceLock::new();
        GLOBAL
            .get_or_init(|| {
                let interval =
                    crate::env::keepalive_interval().unwrap_or(DEFAULT_KEEPALIVE_INTERVAL);
                ClientRegistry::new(interval)
            })
            .clone()
    }

    /// The keepalive interval.
    pub fn interval(&self) -> Duration {
        self.inner.interval
    }

    pub(crate) fn register(&self, client: Weak<ClientInner>) {
        let mut clients = lock(&self.inner.clients);
        clients.retain(|c| c.strong_count() > 0);
        clients.push(client);
    }

    /// The live clients of this registry.
    pub fn clients(&self) -> Vec<RemoteClient> {
        let clients = lock(&self.inner.clients);
        clients
            .iter()
            .filter_map(Weak::upgrade)
            .map(RemoteClient::from_inner)
            .collect()
    }

    /// Whether the keepalive task runs.
    pub fn keepalive_running(&self) -> bool {
        lock(&self.inner.task)
            .as_ref()
            .is_some_and(|(handle, _)| !handle.is_finished())
    }

    /// Starts the keepalive task if it does not run (needs a tokio runtime; without one, nothing
    /// happens and the next initialization tries again).
    pub(crate) fn ensure_keepalive(&self) {
        let mut task = lock(&self.inner.task);
        if task.as_ref().is_some_and(|(h, _)| !h.is_finished()) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let stop = Arc::new(Notify::new());
        let weak = Arc::downgrade(&self.inner);
        let interval = self.inner.interval;
        let stop2 = stop.clone();
        let handle = runtime.spawn(async move {
            loop {
                tokio::select! {
                    _ = stop2.notified() => break,
                    _ = tokio::time::sleep(interval) => {}
                }
                let Some(inner) = weak.upgrade() else { break };
                ClientRegistry { inner }.ping_all().await;
            }
        });
        crate::client_debug!(
            interval_s = interval.as_secs_f64(),
            "keepalive task started"
        );
        *task = Some((handle, stop));
    }

    /// Pings every initialized client once, concurrently, ignoring errors.
    pub async fn ping_all(&self) {
        let mut set = tokio::task::JoinSet::new();
        for client in self.clients() {
            if client.inner_initialized() {
                set.spawn(async move {
                    if let Err(e) = client.healthcheck().await {
                        crate::client_debug!(error = %e, "keepalive ping failed");
                    }
                });
            }
        }
        while set.join_next().await.is_some() {}
    }

    /// Stops the keepalive task and drops every client's connections.
    pub fn close_all(&self) {
        if let Some((handle, stop)) = lock(&self.inner.task).take() {
            stop.notify_one();
            handle.abort();
        }
        for client in self.clients() {
            client.close();
        }
        crate::client_debug!("all clients closed, keepalive stopped");
    }
}

impl RemoteClient {
    fn inner_initialized(&self) -> bool {
        self.inner_ref().is_initialized()
    }
    fn close(&self) {
        self.inner_ref().close()
    }
}

/// Stops the process-wide keepalive task and drops the connections of every client that uses
/// the process-wide registry.
pub fn close_all() {
    ClientRegistry::global().close_all();
}
