//! Rate limits per access key and per project (the tenant): token buckets that refill at the
//! configured requests per second and hold a burst of twice that. A request over either limit gets
//! 429 CTS.0429 with `Retry-After`, before its handler runs (so it is not audited or stored). The
//! layer sits inside authentication: unsigned and unauthenticated requests never reach it.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cts_iam::Principal;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::num::NonZeroU32;
use std::time::Duration;

/// Requests per second allowed to one access key, and to one project (all its keys together).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    pub per_key: NonZeroU32,
    pub per_project: NonZeroU32,
}

impl Default for RateLimitConfig {
    /// Far above what one reporter or auditor sends (a reporter batches up to 1,000 traces a request).
    fn default() -> Self {
        RateLimitConfig { per_key: NonZeroU32::new(500).unwrap(), per_project: NonZeroU32::new(2000).unwrap() }
    }
}

/// The buckets of every key and project seen.
pub struct RateLimits {
    keys: DefaultKeyedRateLimiter<String>,
    projects: DefaultKeyedRateLimiter<String>,
}

fn quota(per_second: NonZeroU32) -> Quota {
    Quota::per_second(per_second).allow_burst(per_second.saturating_mul(NonZeroU32::new(2).unwrap()))
}

impl RateLimits {
    pub fn new(config: RateLimitConfig) -> RateLimits {
        RateLimits {
            keys: DefaultKeyedRateLimiter::keyed(quota(config.per_key)),
            projects: DefaultKeyedRateLimiter::keyed(quota(config.per_project)),
        }
    }

    /// Takes a token for the key and one for its project; when either has none, how long until it has.
    pub fn check(&self, access_key: &str, project_id: &str) -> Result<(), Duration> {
        let now = DefaultClock::default().now();
        let wait = |denied: governor::NotUntil<_>| denied.wait_time_from(now);
        self.keys.check_key(&access_key.to_owned()).map_err(wait)?;
        self.projects.check_key(&project_id.to_owned()).map_err(wait)
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits::new(RateLimitConfig::default())
    }
}

pub(crate) async fn limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let checked = request
        .extensions()
        .get::<Principal>()
        .map_or(Ok(()), |principal| state.rate_limits.check(&principal.access_key_id, &principal.project_id));
    match checked {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            metrics::counter!("cts_rate_limited_total").increment(1);
            ApiError::RateLimited { retry_after_secs: wait.as_secs().max(1) }.into_response()
        }
    }
}
