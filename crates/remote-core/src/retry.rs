//! The one retry loop of the workspace, and its small pure policy.
//!
//! * **What is retried**: only transient failures ([`Disposition::Transient`] and
//!   [`Disposition::TransientRestart`]): connection refused or reset, timeouts, a body cut
//!   short, HTTP 502/503/504, and "device or resource busy". A definite answer (any other 4xx or
//!   5xx, a failed transformation, a malformed reply) is returned at once: retrying it would only
//!   repeat it (the reference retries everything, and runs a failing job five times).
//! * **How often**: up to [`RetryPolicy::max_attempts`] attempts (5, as the reference), and no new
//!   attempt once [`RetryPolicy::budget`] has elapsed.
//! * **How long between attempts**: exponential backoff with decorrelated jitter
//!   (`Backoff`): each delay is drawn uniformly from `[initial, previous * base]`, capped at
//!   `max`. The reference retries with no delay at all, which is useless against a restarting
//!   server.
//!
//! Time and randomness are injected (`Backoff::with_rng`), so the policy is unit-tested without
//! sleeping.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::error::{TransportError, TransportErrorKind};

/// Whether a failure is worth another attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// A definite answer: never retried.
    Definite,
    /// Transient: retry after a backoff.
    Transient,
    /// Transient, and the client's connections are suspect: drop them, re-initialize (healthcheck,
    /// and for a launched service possibly a relaunch), then retry.
    TransientRestart,
}

/// Errors that the retry loop can classify and annotate.
pub trait Retryable {
    /// Whether this failure is worth another attempt.
    fn disposition(&self) -> Disposition;
    /// Records the number of attempts and the time spent, for the final message.
    fn set_attempts(&mut self, attempts: u32, elapsed: Duration);
}

impl Retryable for TransportError {
    fn disposition(&self) -> Disposition {
        match self.kind() {
            TransportErrorKind::Connect
            | TransportErrorKind::Timeout(_)
            | TransportErrorKind::Interrupted
            | TransportErrorKind::Busy => Disposition::TransientRestart,
            TransportErrorKind::Status { status, .. } => match status.as_u16() {
                502..=504 => Disposition::Transient,
                _ => Disposition::Definite,
            },
            TransportErrorKind::Protocol
            | TransportErrorKind::InvalidUrl
            | TransportErrorKind::Launch
            | TransportErrorKind::TooLarge { .. }
            | TransportErrorKind::WorkerForbidden => Disposition::Definite,
        }
    }
    fn set_attempts(&mut self, attempts: u32, elapsed: Duration) {
        TransportError::set_attempts(self, attempts, elapsed)
    }
}

/// Backoff parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffConfig {
    /// The shortest delay (default 100 ms).
    pub initial: Duration,
    /// The longest delay (default 5 s).
    pub max: Duration,
    /// Growth factor of the upper bound per attempt (default 2).
    pub base: f64,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(5),
            base: 2.0,
        }
    }
}

/// The retry policy of a client.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (default 5, as the reference).
    pub max_attempts: u32,
    /// Delays between attempts.
    pub backoff: BackoffConfig,
    /// No new attempt starts after this much time since the first (default 120 s). One attempt
    /// may itself last longer (a large transfer): the budget bounds retrying, not transfers.
    pub budget: Option<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            backoff: BackoffConfig::default(),
            budget: Some(Duration::from_secs(120)),
        }
    }
}

impl RetryPolicy {
    /// A policy that makes exactly one attempt.
    pub fn no_retry() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..Self::default()
        }
    }
}

/// Decorrelated-jitter backoff.
pub(crate) struct Backoff {
    config: BackoffConfig,
    upper: f64,
    rng: Box<dyn FnMut() -> f64 + Send>,
}

impl std::fmt::Debug for Backoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backoff")
            .field("config", &self.config)
            .field("upper", &self.upper)
            .finish()
    }
}

impl Backoff {
    /// A backoff with a random jitter source.
    pub(crate) fn new(config: BackoffConfig) -> Self {
        Self::with_rng(config, Box::new(fastrand::f64))
    }

    /// A backoff whose jitter comes from `rng` (values in `[0, 1)`), for tests.
    pub(crate) fn with_rng(config: BackoffConfig, rng: Box<dyn FnMut() -> f64 + Send>) -> Self {
        Backoff {
            config,
            upper: config.initial.as_secs_f64(),
            rng,
        }
    }

    /// The next delay.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let low = self.config.initial.as_secs_f64();
        let max = self.config.max.as_secs_f64();
        let high = (self.upper * self.config.base).min(max).max(low);
        let r = (self.rng)().clamp(0.0, 1.0);
        let delay = low + (high - low) * r;
        self.upper = delay.max(low);
        Duration::from_secs_f64(delay.min(max))
    }
}

/// What the loop does after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Give up and return the error.
    GiveUp,
    /// Wait this long, then try again.
    RetryAfter(Duration),
}

/// The state of one retried operation: attempts made, time spent, next backoff.
#[derive(Debug)]
pub(crate) struct RetryState {
    policy: RetryPolicy,
    backoff: Backoff,
    attempts: u32,
    start: Instant,
}

impl RetryState {
    /// Starts counting now.
    pub(crate) fn new(policy: RetryPolicy) -> Self {
        Self::with_backoff(policy, Backoff::new(policy.backoff), Instant::now())
    }

    /// Starts counting at `start` with the given backoff (for tests).
    pub(crate) fn with_backoff(policy: RetryPolicy, backoff: Backoff, start: Instant) -> Self {
        RetryState {
            policy,
            backoff,
            attempts: 0,
            start,
        }
    }

    /// Attempts made so far.
    pub(crate) fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Time since the first attempt.
    pub(crate) fn elapsed_at(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.start)
    }

    /// Decides, after attempt number `attempts()` failed with `disposition` at time `now`.
    pub(crate) fn on_failure(&mut self, disposition: Disposition, now: Instant) -> Decision {
        self.attempts += 1;
        if disposition == Disposition::Definite || self.attempts >= self.policy.max_attempts {
            return Decision::GiveUp;
        }
        let delay = self.backoff.next_delay();
        if let Some(budget) = self.policy.budget {
            if self.elapsed_at(now) + delay > budget {
                return Decision::GiveUp;
            }
        }
        Decision::RetryAfter(delay)
    }
}

/// Runs `op` until it succeeds, fails definitely, or the policy gives up.
///
/// `on_transient` is called with each transient failure and its disposition before the delay
/// (clients drop their connections there on [`Disposition::TransientRestart`]). The returned
/// error carries the number of attempts and the elapsed time.
pub(crate) async fn run<T, E, F, Fut>(
    policy: RetryPolicy,
    mut op: F,
    mut on_transient: impl FnMut(&E, Disposition),
) -> Result<T, E>
where
    E: Retryable + std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut state = RetryState::new(policy);
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(mut e) => {
                let disposition = e.disposition();
                let now = Instant::now();
                match state.on_failure(disposition, now) {
                    Decision::GiveUp => {
                        e.set_attempts(state.attempts(), state.elapsed_at(now));
                        return Err(e);
                    }
                    Decision::RetryAfter(delay) => {
                        tracing::info!(
                            attempt = state.attempts(),
                            delay_ms = delay.as_millis() as u64,
                            error = %e,
                            "transient failure, retrying"
                        );
                        on_transient(&e, disposition);
                        tokio::time::sleep(delay).await;
                    }
                }
            }
        }
    }
}

/// Implements [`Retryable`] for a service error type whose `$variant` wraps a
/// [`TransportError`](crate::TransportError): that variant is retried as the transport failure
/// it carries; every other failure (a failed job, a malformed answer...) is definite.
///
/// ```
/// #[derive(Debug)]
/// enum MyError {
///     Transport(seamless_remote_core::TransportError),
///     Failed,
/// }
/// seamless_remote_core::retryable_through_transport!(MyError, MyError::Transport);
/// use seamless_remote_core::{Disposition, Retryable};
/// assert_eq!(MyError::Failed.disposition(), Disposition::Definite);
/// ```
#[macro_export]
macro_rules! retryable_through_transport {
    ($ty:ty, $variant:path) => {
        impl $crate::retry::Retryable for $ty {
            fn disposition(&self) -> $crate::retry::Disposition {
                match self {
                    $variant(e) => $crate::retry::Retryable::disposition(e),
                    #[allow(unreachable_patterns)]
                    _ => $crate::retry::Disposition::Definite,
                }
            }
            fn set_attempts(&mut self, attempts: u32, elapsed: ::std::time::Duration) {
                #[allow(irrefutable_let_patterns)]
                if let $variant(e) = self {
                    $crate::retry::Retryable::set_attempts(e, attempts, elapsed);
                }
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Method, StatusCode};

    fn fixed(v: f64) -> Box<dyn FnMut() -> f64 + Send> {
        Box::new(move || v)
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let cfg = BackoffConfig::default();
        let mut b = Backoff::with_rng(cfg, fixed(1.0));
        let delays: Vec<u128> = (0..8).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(delays, vec![200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
        let mut b = Backoff::with_rng(cfg, fixed(0.0));
        assert!((0..8).all(|_| b.next_delay() == cfg.initial));
    }

    #[test]
    fn jittered_delays_stay_in_bounds() {
        let cfg = BackoffConfig::default();
        let mut b = Backoff::new(cfg);
        for _ in 0..1000 {
            let d = b.next_delay();
            assert!(d >= cfg.initial && d <= cfg.max, "{d:?}");
        }
    }

    #[test]
    fn gives_up_after_max_attempts_and_on_definite() {
        let policy = RetryPolicy::default();
        let t0 = Instant::now();
        let mut s =
            RetryState::with_backoff(policy, Backoff::with_rng(policy.backoff, fixed(0.5)), t0);
        for _ in 0..4 {
            assert!(matches!(
                s.on_failure(Disposition::Transient, t0),
                Decision::RetryAfter(_)
            ));
        }
        assert_eq!(s.on_failure(Disposition::Transient, t0), Decision::GiveUp);
        assert_eq!(s.attempts(), 5);

        let mut s = RetryState::with_backoff(policy, Backoff::new(policy.backoff), t0);
        assert_eq!(s.on_failure(Disposition::Definite, t0), Decision::GiveUp);
        assert_eq!(s.attempts(), 1);
    }

    #[test]
    fn respects_the_time_budget() {
        let policy = RetryPolicy {
            budget: Some(Duration::from_secs(1)),
            ..RetryPolicy::default()
        };
        let t0 = Instant::now();
        let mut s =
            RetryState::with_backoff(policy, Backoff::with_rng(policy.backoff, fixed(0.0)), t0);
        assert!(matches!(
            s.on_failure(Disposition::Transient, t0 + Duration::from_millis(500)),
            Decision::RetryAfter(_)
        ));
        assert_eq!(
            s.on_failure(Disposition::Transient, t0 + Duration::from_millis(950)),
            Decision::GiveUp
        );
    }

    #[test]
    fn classification_of_transport_errors() {
        let e = |kind| TransportError::new(kind, Method::GET, "http://h/");
        let status = |s: u16| TransportErrorKind::Status {
            status: StatusCode::from_u16(s).unwrap(),
            body: String::new(),
        };
        for s in [502, 503, 504] {
            assert_eq!(e(status(s)).disposition(), Disposition::Transient);
        }
        for s in [400, 404, 405, 409, 500, 501] {
            assert_eq!(e(status(s)).disposition(), Disposition::Definite, "{s}");
        }
        for k in [
            TransportErrorKind::Connect,
            TransportErrorKind::Interrupted,
            TransportErrorKind::Busy,
            TransportErrorKind::Timeout(crate::error::TimeoutKind::Read),
        ] {
            assert_eq!(e(k).disposition(), Disposition::TransientRestart);
        }
        assert_eq!(
            e(TransportErrorKind::Protocol).disposition(),
            Disposition::Definite
        );
    }

    #[tokio::test(start_paused = true)]
    async fn loop_counts_attempts_and_calls_the_hook() {
        let mut calls = 0;
        let mut hooks = 0;
        let result: Result<(), TransportError> = run(
            RetryPolicy::default(),
            || {
                calls += 1;
                async {
                    Err(TransportError::new(
                        TransportErrorKind::Connect,
                        Method::GET,
                        "http://h/",
                    ))
                }
            },
            |_, d| {
                assert_eq!(d, Disposition::TransientRestart);
                hooks += 1;
            },
        )
        .await;
        let err = result.unwrap_err();
        assert_eq!(calls, 5);
        assert_eq!(hooks, 4);
        assert_eq!(err.attempts(), 5);
        assert!(err.to_string().contains("after 5 attempts"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn loop_returns_success_after_transient_failures() {
        let mut calls = 0;
        let result: Result<u32, TransportError> = run(
            RetryPolicy::default(),
            || {
                calls += 1;
                let n = calls;
                async move {
                    if n < 3 {
                        Err(TransportError::new(
                            TransportErrorKind::Interrupted,
                            Method::GET,
                            "u",
                        ))
                    } else {
                        Ok(n)
                    }
                }
            },
            |_, _| {},
        )
        .await;
        assert_eq!(result.unwrap(), 3);
    }
}
