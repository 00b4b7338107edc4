//! The Seamless database client: the transformation result cache and its companions.
//!
//! * [`DatabaseClient`]: one seamless-database: transformation results (`tf → result`), reverse
//!   lookups, execution records, bucket probes, irreproducible records; typed answers, 404 as
//!   "unknown", a bounded number of requests in flight.
//! * [`remote`]: the activation API: read databases asked in order with failover, write
//!   databases written concurrently.

pub mod client;
pub mod error;
pub mod launched;
pub mod remote;

pub use client::{max_inflight_from_env, DatabaseClient, RecordWrite};
pub use error::DatabaseError;
pub use remote::{ActiveDatabases, DatabaseRemote};
pub use seamless_remote_core::Checksum;
