//! The Seamless database client: the transformation result cache and its companions.
//!
//! * [`DatabaseClient`]: one seamless-database: transformation results (`tf → result`), reverse
//!   lookups, execution records, bucket probes, irreproducible records; typed answers, 404 as
//!   "unknown", a bounded number of requests in flight.
//! * [`remote`]: the activation API: read databases asked in order with failover, write
//!   databases written concurrently.
//!
//! ```no_run
//! use seamless_database_remote::{Checksum, DatabaseClient};
//! # async fn demo() -> Result<(), seamless_database_remote::DatabaseError> {
//! let db = DatabaseClient::new("http://127.0.0.1:5522", false)?;
//! let (tf, result) = (Checksum::of(b"transformation"), Checksum::of(b"result"));
//! db.set_transformation_result(&tf, &result).await?;
//! assert_eq!(db.get_transformation_result(&tf).await?, Some(result));
//! # Ok(())
//! # }
//! ```

pub mod client;
pub mod error;
pub mod launched;
pub mod remote;

pub use client::{default_max_inflight, DatabaseClient, RecordWrite};
pub use error::DatabaseError;
pub use remote::{ActiveDatabases, DatabaseRemote};
pub use seamless_remote_core::Checksum;
