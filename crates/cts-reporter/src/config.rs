//! How a [`crate::Reporter`] reaches cts, batches, retries and spools.

use cts_client::Credentials;
use std::path::PathBuf;
use std::time::Duration;

/// The most traces cts takes in one ingest request.
pub const MAX_BATCH_TRACES: usize = 1000;
/// The largest ingest body cts takes.
pub const MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct ReporterConfig {
    /// `http://host:port` of cts.
    pub endpoint: String,
    pub credentials: Credentials,
    /// Where traces wait while cts is unreachable (created if needed; one reporter per directory).
    pub spool_dir: PathBuf,
    /// The most bytes the spool's files may take; traces beyond are dropped and counted.
    pub spool_max_bytes: u64,
    /// Traces `submit` may queue in memory; beyond, they go to the spool through a buffer of the same size (written
    /// by a blocking task); beyond that too, they are dropped and counted.
    pub queue_capacity: usize,
    /// A batch is sent once it holds this many traces (at most [`MAX_BATCH_TRACES`])…
    pub batch_max_traces: usize,
    /// …or this many bytes of JSON (at most [`MAX_BATCH_BYTES`]); a larger trace is dropped…
    pub batch_max_bytes: usize,
    /// …or its first trace waited this long.
    pub batch_max_delay: Duration,
    /// Sealed batches kept in memory while another is being sent; more go to the spool.
    pub max_batches_in_memory: usize,
    /// The first retry waits about this long; each further one twice as long, up to `retry_backoff_max`.
    pub retry_backoff_base: Duration,
    pub retry_backoff_max: Duration,
    /// An ingest call that takes longer failed (and is retried).
    pub request_timeout: Duration,
}

impl ReporterConfig {
    /// A configuration with the defaults: a 256 MiB spool, a queue of 10,000 traces, batches of up to 500
    /// traces, 4 MiB or 100 ms, 4 batches in memory, backoff from 100 ms to 30 s, 10 s request timeout.
    pub fn new(endpoint: impl Into<String>, credentials: Credentials, spool_dir: impl Into<PathBuf>) -> Self {
        ReporterConfig {
            endpoint: endpoint.into(),
            credentials,
            spool_dir: spool_dir.into(),
            spool_max_bytes: 256 * 1024 * 1024,
            queue_capacity: 10_000,
            batch_max_traces: 500,
            batch_max_bytes: 4 * 1024 * 1024,
            batch_max_delay: Duration::from_millis(100),
            max_batches_in_memory: 4,
            retry_backoff_base: Duration::from_millis(100),
            retry_backoff_max: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
        }
    }

    /// Checks the limits; names the first setting out of range.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let out_of_range = |setting: &'static str, reason: String| Err(ConfigError { setting, reason });
        if !(1..=MAX_BATCH_TRACES).contains(&self.batch_max_traces) {
            return out_of_range("batch_max_traces", format!("must be 1 to {MAX_BATCH_TRACES}"));
        }
        if !(1..=MAX_BATCH_BYTES).contains(&self.batch_max_bytes) {
            return out_of_range("batch_max_bytes", format!("must be 1 to {MAX_BATCH_BYTES}"));
        }
        if self.queue_capacity == 0 {
            return out_of_range("queue_capacity", "must be at least 1".to_owned());
        }
        if self.retry_backoff_base.is_zero() || self.retry_backoff_max < self.retry_backoff_base {
            return out_of_range("retry_backoff_base", "must be positive and at most retry_backoff_max".to_owned());
        }
        if self.request_timeout.is_zero() {
            return out_of_range("request_timeout", "must be positive".to_owned());
        }
        Ok(())
    }

    /// How long to wait before retry number `attempt` (1 for the first): exponential, capped, with jitter (half
    /// fixed, half random) so that reporters that lost cts together do not return together.
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let exponential =
            self.retry_backoff_base.saturating_mul(1u32.checked_shl(attempt.saturating_sub(1)).unwrap_or(u32::MAX));
        let capped = exponential.min(self.retry_backoff_max);
        capped / 2 + capped.mul_f64(rand::random::<f64>() / 2.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("reporter setting {setting}: {reason}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ReporterConfig {
        let credentials = Credentials { access_key: "AK".into(), secret_key: "SK".into(), project_id: "p".into() };
        ReporterConfig::new("http://127.0.0.1:1", credentials, "/tmp/spool")
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half() {
        let config = config();
        for attempt in [1, 2, 3, 8, 12, 40, u32::MAX] {
            let ceiling =
                config.retry_backoff_base.saturating_mul(1 << (attempt - 1).min(20)).min(config.retry_backoff_max);
            for _ in 0..50 {
                let delay = config.backoff(attempt);
                assert!(delay >= ceiling / 2 && delay <= ceiling, "attempt {attempt}: {delay:?} of {ceiling:?}");
            }
        }
    }

    #[test]
    fn out_of_range_settings_are_named() {
        type Change = fn(&mut ReporterConfig);
        let cases: [(Change, &str); 6] = [
            (|c| c.batch_max_traces = 0, "batch_max_traces"),
            (|c| c.batch_max_traces = MAX_BATCH_TRACES + 1, "batch_max_traces"),
            (|c| c.batch_max_bytes = MAX_BATCH_BYTES + 1, "batch_max_bytes"),
            (|c| c.queue_capacity = 0, "queue_capacity"),
            (|c| c.retry_backoff_max = Duration::from_millis(1), "retry_backoff_base"),
            (|c| c.request_timeout = Duration::ZERO, "request_timeout"),
        ];
        assert_eq!(config().validate(), Ok(()));
        for (change, setting) in cases {
            let mut config = config();
            change(&mut config);
            assert_eq!(config.validate().unwrap_err().setting, setting);
        }
    }
}
