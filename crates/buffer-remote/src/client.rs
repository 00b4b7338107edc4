//! [`BufferClient`]: a hashserver over HTTP.
//!
//! Every buffer received is decoded (the hashserver sends zstd or gzip when that is all it has
//! stored, whatever `Accept-Encoding` says) and verified: a buffer whose SHA-256 differs from the
//! requested checksum is never returned. On a mismatch the buffer is fetched once more; a second
//! mismatch is a [`BufferError::Integrity`] error.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::try_join_all;
use http::header::{HeaderValue, ACCEPT_ENCODING, CONTENT_ENCODING};
use http::StatusCode;
use http_body_util::BodyExt;
use seamless_remote_core::http::BoxBody;
use seamless_remote_core::{
    Checksum, ClientOptions, RemoteClient, RequestBody, RequestSpec, Response, TransportError,
};

use crate::error::BufferError;
use crate::stream::{pump, Encoding, Progress, PumpError, Sink, VerifiedSource};
use crate::BufferLength;

/// The largest number of checksums sent in one `/has` or `/buffer-length` request (the
/// hashserver needs ~0.3 s per 1000; 100 000 in one request took 54 s).
pub const BATCH_SIZE: usize = 1000;

/// The largest answer read to a PUT or a promise (`OK`, or a small JSON object).
const SMALL_ANSWER_LIMIT: u64 = 64 * 1024;

/// How an upload was received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Stored now (200).
    Stored,
    /// Already present (201).
    AlreadyPresent,
    /// Another upload of the same checksum is in progress (202); it is not guaranteed to succeed.
    InProgress,
}

/// A client of one hashserver.
#[derive(Debug, Clone)]
pub struct BufferClient {
    remote: RemoteClient,
    readonly: bool,
}

enum Fetched {
    Absent,
    Received { got: Checksum, url: String },
}

impl BufferClient {
    /// A client of the hashserver at `url`.
    pub fn new(url: &str, readonly: bool) -> Result<Self, BufferError> {
        Self::with_options(url, readonly, ClientOptions::default())
    }

    /// A client of the hashserver at `url`, with options.
    pub fn with_options(
        url: &str,
        readonly: bool,
        options: ClientOptions,
    ) -> Result<Self, BufferError> {
        Ok(BufferClient {
            remote: RemoteClient::with_options(url, options)?,
            readonly,
        })
    }

    /// A client over an existing [`RemoteClient`] (e.g. one whose URL comes from a launcher).
    pub fn from_remote(remote: RemoteClient, readonly: bool) -> Self {
        BufferClient { remote, readonly }
    }

    /// The underlying remote client.
    pub fn remote(&self) -> &RemoteClient {
        &self.remote
    }

    /// Whether writes and promises are refused.
    pub fn readonly(&self) -> bool {
        self.readonly
    }

    /// The base URL, once known.
    pub fn url(&self) -> Option<String> {
        self.remote.url()
    }

    fn name(&self) -> String {
        self.url()
            .unwrap_or_else(|| "(launched hashserver)".to_string())
    }

    /// `GET /has`: whether each buffer is present (stored, being uploaded, or promised).
    /// Batches are split into requests of at most [`BATCH_SIZE`], sent concurrently.
    pub async fn has(&self, checksums: &[Checksum]) -> Result<Vec<bool>, BufferError> {
        let parts = try_join_all(
            checksums
                .chunks(BATCH_SIZE)
                .map(|batch| self.batch_query::<bool>("/has", batch)),
        )
        .await?;
        Ok(parts.into_iter().flatten().collect())
    }

    /// `GET /buffer-length`: the length of each buffer, batched as [`BufferClient::has`].
    ///
    /// The server's `0` means "absent" except for the empty buffer; its `true` (a promised
    /// buffer) is [`BufferLength::Unknown`].
    pub async fn buffer_lengths(
        &self,
        checksums: &[Checksum],
    ) -> Result<Vec<BufferLength>, BufferError> {
        let parts = try_join_all(checksums.chunks(BATCH_SIZE).map(|batch| async move {
            let raw = self
                .batch_query::<serde_json::Value>("/buffer-length", batch)
                .await?;
            let url = format!("{}/buffer-length", self.name());
            raw.into_iter()
                .zip(batch)
                .map(|(v, cs)| {
                    length_from_json(&v, cs).map_err(|detail| BufferError::Malformed {
                        url: url.clone(),
                        detail,
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        }))
        .await?;
        Ok(parts.into_iter().flatten().collect())
    }

    async fn batch_query<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        batch: &[Checksum],
    ) -> Result<Vec<T>, BufferError> {
        let spec = RequestSpec::get(path).json(batch)?;
        // An answer is a list of `false` or of lengths: a cap proportional to the request.
        let limit = 1024 + 24 * batch.len() as u64;
        let (status, body) = self.remote.request_bytes(&spec, limit).await?;
        let url = format!("{}{path}", self.name());
        let quote = |n: usize| {
            seamless_safe_io::text::escape(&String::from_utf8_lossy(&body[..body.len().min(n)]))
        };
        if status != StatusCode::OK {
            return Err(BufferError::Malformed {
                url,
                detail: format!("HTTP {status}: {}", quote(300)),
            });
        }
        let answer: Vec<T> = serde_json::from_slice(&body).map_err(|e| BufferError::Malformed {
            url: url.clone(),
            detail: format!(
                "expected a JSON list of {} items ({e}): {}",
                batch.len(),
                quote(200)
            ),
        })?;
        if answer.len() != batch.len() {
            return Err(BufferError::Malformed {
                url,
                detail: format!(
                    "asked about {} checksums, got {} answers",
                    batch.len(),
                    answer.len()
                ),
            });
        }
        Ok(answer)
    }

    /// Reads and verifies a buffer; `None` if it is not here.
    pub async fn get(&self, checksum: &Checksum) -> Result<Option<Bytes>, BufferError> {
        self.get_bytes(checksum).await
    }

    /// Streams a buffer into `writer`, verified on the way; returns its length, or `None`.
    /// The writer receives the bytes before the checksum can be verified: on an error it holds
    /// data that must be discarded (`get_to_file` does that for files). A transfer that breaks
    /// after bytes were written is not retried ([`BufferError::Partial`]).
    pub async fn get_to_writer<W>(
        &self,
        checksum: &Checksum,
        writer: &mut W,
    ) -> Result<Option<u64>, BufferError>
    where
        W: tokio::io::AsyncWrite + Unpin,
    {
        self.get_writer(checksum, writer).await
    }

    /// Streams a buffer into the file `path`, verified: written to a temporary file in the same
    /// directory and renamed into place only after its checksum matched, so that a failure never
    /// leaves a partial or wrong file. Returns the length, or `None` (then no file is created).
    pub async fn get_to_file(
        &self,
        checksum: &Checksum,
        path: &Path,
    ) -> Result<Option<u64>, BufferError> {
        self.get_file(checksum, path, None).await
    }

    /// As `get_to_file`, reporting the bytes written to `progress`.
    pub async fn get_to_file_with(
        &self,
        checksum: &Checksum,
        path: &Path,
        progress: Option<Progress>,
    ) -> Result<Option<u64>, BufferError> {
        self.get_file(checksum, path, progress).await
    }

    /// Fetches into `sink` (retrying transient failures), verifies, re-fetches once on a
    /// mismatch. Returns whether the buffer was found.
    async fn fetch_verified<S: Sink>(
        &self,
        checksum: &Checksum,
        sink: &mut S,
    ) -> Result<bool, BufferError> {
        let mut previous: Option<Checksum> = None;
        loop {
            let fetched = self.fetch_once(checksum, sink).await?;
            let Fetched::Received { got, url } = fetched else {
                return Ok(false);
            };
            if got == *checksum {
                return Ok(true);
            }
            tracing::warn!(%url, expected = %checksum, %got, "buffer with the wrong checksum");
            if previous.is_some() {
                return Err(BufferError::Integrity {
                    checksum: *checksum,
                    got,
                    source_name: url,
                });
            }
            previous = Some(got);
            sink.reset().await.map_err(|_| BufferError::Integrity {
                checksum: *checksum,
                got,
                source_name: url.clone(),
            })?;
        }
    }

    /// One download under the retry loop: transient failures (including a body cut short) are
    /// retried after resetting the sink.
    async fn fetch_once<S: Sink>(
        &self,
        checksum: &Checksum,
        sink: &mut S,
    ) -> Result<Fetched, BufferError> {
        let spec = RequestSpec::get(format!("/{checksum}")).header(
            ACCEPT_ENCODING,
            HeaderValue::from_static("zstd, gzip, identity"),
        );
        let sink = tokio::sync::Mutex::new(sink);
        self.remote
            .execute(|| async {
                let mut sink = sink.lock().await;
                if let Err(e) = sink.reset().await {
                    // A retry into a writer that already holds bytes is impossible.
                    return Err(BufferError::Partial {
                        checksum: *checksum,
                        url: format!("{}/{checksum}", self.name()),
                        written: sink.written(),
                        source: Box::new(BufferError::output("(output)", e)),
                    });
                }
                let response = self.remote.send(&spec).await?;
                match response.status() {
                    StatusCode::OK => {}
                    StatusCode::NOT_FOUND => return Ok(Fetched::Absent),
                    _ => return Err(response.into_status_error().await.into()),
                }
                let url = response.url().to_string();
                let limit = self.announced_length(checksum, &response).await?;
                match receive(response, checksum, Some(limit), &mut **sink).await {
                    Ok(got) => Ok(Fetched::Received { got, url }),
                    Err(e) if sink.written() > 0 && sink.reset().await.is_err() => {
                        Err(BufferError::Partial {
                            checksum: *checksum,
                            url,
                            written: sink.written(),
                            source: Box::new(e),
                        })
                    }
                    Err(e) => Err(e),
                }
            })
            .await
    }

    /// How many decoded bytes the body of `response` may hold: its `Content-Length` when it is
    /// sent as it is, else what `/buffer-length` says (a compressed or chunked body). A body
    /// whose length nobody announces is refused ([`BufferError::Malformed`]): every read from a
    /// server is bounded.
    async fn announced_length(
        &self,
        checksum: &Checksum,
        response: &Response,
    ) -> Result<u64, BufferError> {
        let encoding = response_encoding(response)?;
        if encoding == Encoding::Identity {
            if let Some(n) = response.announced_length() {
                return Ok(n);
            }
        }
        let asked = self.buffer_lengths(std::slice::from_ref(checksum)).await;
        match asked.as_deref() {
            Ok([BufferLength::Known(n)]) => Ok(*n),
            _ => Err(BufferError::Malformed {
                url: response.url().to_string(),
                detail: format!(
                    "a {encoding:?} body of unknown length (no Content-Length, and /buffer-length gives no length: {}); refused",
                    match &asked {
                        Ok(v) => format!("{v:?}"),
                        Err(e) => e.to_string(),
                    }
                ),
            }),
        }
    }

    fn refuse_if_readonly(
        &self,
        action: &'static str,
        checksum: &Checksum,
    ) -> Result<(), BufferError> {
        if self.readonly {
            Err(BufferError::ReadOnly {
                action,
                checksum: *checksum,
                target: format!("buffer client {}", self.name()),
            })
        } else {
            Ok(())
        }
    }

    /// `PUT /<checksum>` with the buffer from memory.
    pub async fn write(
        &self,
        checksum: &Checksum,
        buffer: Bytes,
    ) -> Result<WriteOutcome, BufferError> {
        self.refuse_if_readonly("write", checksum)?;
        self.upload(checksum, RequestBody::octets(buffer)).await
    }

    /// `PUT /<checksum>` with the buffer compressed by zstd (`Content-Encoding: zstd`); the
    /// hashserver stores it compressed. Only use this when every reader of the server decodes
    /// zstd (the Python reference needs the `backports.zstd` package for that).
    pub async fn write_compressed(
        &self,
        checksum: &Checksum,
        buffer: &[u8],
        level: i32,
    ) -> Result<WriteOutcome, BufferError> {
        self.refuse_if_readonly("write", checksum)?;
        let compressed = zstd::bulk::compress(buffer, level)
            .map_err(|e| BufferError::io("compressing", checksum.to_hex(), e))?;
        let body = RequestBody::Bytes {
            data: Bytes::from(compressed),
            content_type: Some("application/octet-stream"),
        };
        let spec = RequestSpec::put(format!("/{checksum}"))
            .body(body)
            .header(CONTENT_ENCODING, HeaderValue::from_static("zstd"));
        self.upload_spec(checksum, spec).await
    }

    /// `PUT /<checksum>` streamed from a file (re-opened for each attempt). The server verifies
    /// the checksum; a mismatch is [`BufferError::IncorrectChecksum`].
    pub async fn write_file(
        &self,
        checksum: &Checksum,
        path: &Path,
    ) -> Result<WriteOutcome, BufferError> {
        self.refuse_if_readonly("write", checksum)?;
        let len = std::fs::metadata(path)
            .map_err(|e| BufferError::io("reading", path, e))?
            .len();
        let path = path.to_path_buf();
        let make = Arc::new(move || -> Result<BoxBody, std::io::Error> {
            let file = tokio::fs::File::from_std(std::fs::File::open(&path)?);
            let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
            let body = http_body_util::StreamBody::new(futures_util::StreamExt::map(stream, |r| {
                r.map(http_body::Frame::data).map_err(Into::into)
            }));
            Ok(body.boxed())
        });
        self.upload(
            checksum,
            RequestBody::Stream {
                len: Some(len),
                make,
            },
        )
        .await
    }

    async fn upload(
        &self,
        checksum: &Checksum,
        body: RequestBody,
    ) -> Result<WriteOutcome, BufferError> {
        self.upload_spec(
            checksum,
            RequestSpec::put(format!("/{checksum}")).body(body),
        )
        .await
    }

    async fn upload_spec(
        &self,
        checksum: &Checksum,
        spec: RequestSpec,
    ) -> Result<WriteOutcome, BufferError> {
        self.remote
            .execute(|| async {
                let response = self.remote.send(&spec).await?;
                let status = response.status();
                let url = response.url().to_string();
                match status.as_u16() {
                    200 => {
                        response.bytes_limited(SMALL_ANSWER_LIMIT).await?;
                        Ok(WriteOutcome::Stored)
                    }
                    201 => Ok(WriteOutcome::AlreadyPresent),
                    202 => Ok(WriteOutcome::InProgress),
                    405 => Err(BufferError::ReadOnly {
                        action: "write",
                        checksum: *checksum,
                        target: format!("hashserver {} (started without --writable)", self.name()),
                    }),
                    400 => {
                        let err = response.into_status_error().await;
                        if is_incorrect_checksum(&err) {
                            Err(BufferError::IncorrectChecksum {
                                checksum: *checksum,
                                url,
                            })
                        } else {
                            Err(err.into())
                        }
                    }
                    _ => Err(response.into_status_error().await.into()),
                }
            })
            .await
    }

    /// `PUT /promise/<checksum>`: announces that the buffer will be uploaded soon.
    pub async fn promise(&self, checksum: &Checksum) -> Result<(), BufferError> {
        self.refuse_if_readonly("promise", checksum)?;
        let spec = RequestSpec::put(format!("/promise/{checksum}"));
        self.remote
            .execute(|| async {
                let response = self.remote.send(&spec).await?;
                match response.status().as_u16() {
                    200..=202 => {
                        response.bytes_limited(SMALL_ANSWER_LIMIT).await?;
                        Ok(())
                    }
                    404 | 405 => Err(BufferError::ReadOnly {
                        action: "promise",
                        checksum: *checksum,
                        target: format!("hashserver {} (started without --writable)", self.name()),
                    }),
                    _ => Err(response.into_status_error().await.into()),
                }
            })
            .await
    }
}

fn is_incorrect_checksum(err: &TransportError) -> bool {
    matches!(err.kind(), seamless_remote_core::TransportErrorKind::Status { body, .. } if body.contains("Incorrect checksum"))
}

/// Decodes and hashes a response body into `sink`; returns the checksum of the decoded bytes.
/// More decoded bytes than `limit` cut the transfer ([`BufferError::Oversized`]).
async fn receive<S: Sink>(
    mut response: Response,
    checksum: &Checksum,
    limit: Option<u64>,
    sink: &mut S,
) -> Result<Checksum, BufferError> {
    let url = response.url().to_string();
    let encoding = response_encoding(&response)?;
    let length_hint = response.announced_length();
    pump(encoding, length_hint, limit, &mut response, sink)
        .await
        .map_err(|e| match e {
            PumpError::Source(e) => BufferError::Transport(e),
            PumpError::Decode(e) => BufferError::Malformed {
                url: url.clone(),
                detail: format!("cannot decode the {encoding:?} body: {e}"),
            },
            PumpError::Sink(e) => BufferError::output("(output)", e),
            PumpError::TooLong(limit) => BufferError::Oversized {
                checksum: *checksum,
                source_name: url.clone(),
                limit,
            },
        })
}

fn response_encoding(response: &Response) -> Result<Encoding, BufferError> {
    let header = response
        .headers()
        .get(CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("(not text)").to_string());
    Encoding::from_header(header.as_deref()).map_err(|detail| BufferError::Malformed {
        url: response.url().to_string(),
        detail: seamless_safe_io::text::escape(&detail),
    })
}

/// One element of a `/buffer-length` answer.
fn length_from_json(v: &serde_json::Value, checksum: &Checksum) -> Result<BufferLength, String> {
    match v {
        serde_json::Value::Bool(true) => Ok(BufferLength::Unknown),
        serde_json::Value::Bool(false) => Ok(BufferLength::Absent),
        serde_json::Value::Number(n) => match n.as_u64() {
            Some(0) if *checksum == crate::EMPTY_CHECKSUM => Ok(BufferLength::Known(0)),
            Some(0) => Ok(BufferLength::Absent),
            Some(len) => Ok(BufferLength::Known(len)),
            None => Err(format!("invalid length {n} for {checksum}")),
        },
        other => Err(format!("invalid length {other} for {checksum}")),
    }
}

impl VerifiedSource for BufferClient {
    async fn fill<S: Sink>(&self, checksum: &Checksum, sink: &mut S) -> Result<bool, BufferError> {
        self.fetch_verified(checksum, sink).await
    }
}
