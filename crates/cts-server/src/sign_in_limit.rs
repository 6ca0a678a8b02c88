//! Brute-force protection of console sign-in: at most [`SignInLimitConfig::failures_per_name`] failed
//! attempts per user name (or access key id) and [`SignInLimitConfig::failures_per_source_ip`] per
//! source address within [`SignInLimitConfig::window`]; a further attempt is refused with 429
//! CTS.0429 and `Retry-After` (when the oldest failure leaves the window) before any credential is
//! checked. A success clears the name's failures.
//!
//! An attempt counts as a failure from the moment it starts ([`SignInLimits::begin`]) until it is
//! known to have succeeded ([`SignInLimits::succeeded`]) or to have failed for cts's own reasons
//! ([`SignInLimits::abandoned`]): parallel guesses cannot slip past the limit while argon2 works.
//! Of the refusals of one lockout only the first is to be recorded as a trace
//! ([`Refusal::first_of_lockout`]), so a locked-out guesser cannot flood the audit log either.

use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// How many failed sign-ins are allowed, per what and within how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInLimitConfig {
    pub failures_per_name: usize,
    /// Higher than per name: several people may sign in from behind one address.
    pub failures_per_source_ip: usize,
    pub window: Duration,
}

impl Default for SignInLimitConfig {
    /// 5 failures per name and 20 per address in 5 minutes.
    fn default() -> Self {
        SignInLimitConfig { failures_per_name: 5, failures_per_source_ip: 20, window: Duration::from_secs(300) }
    }
}

/// Above this many tracked names and addresses, the ones with no failure left in the window are dropped.
const PRUNE_ABOVE: usize = 4096;

/// The recent failures of one name or address.
#[derive(Debug, Default)]
struct Failures {
    /// Start times of failed (or unfinished) attempts, oldest first.
    times: VecDeque<i64>,
    /// When a refusal of this key was last recorded.
    refusal_recorded_at: Option<i64>,
}

#[derive(Debug, Default)]
struct Tables {
    names: HashMap<String, Failures>,
    addresses: HashMap<String, Failures>,
}

/// The failure counts of every name and address seen recently.
#[derive(Debug, Default)]
pub struct SignInLimits {
    config: SignInLimitConfig,
    tables: Mutex<Tables>,
}

/// An attempt under way, counted as a failure until told otherwise.
#[must_use = "an attempt ends as succeeded, failed (dropped) or abandoned"]
#[derive(Debug)]
pub(crate) struct Attempt {
    name: String,
    source_ip: Option<String>,
    started_ms: i64,
}

/// A refused attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub retry_after_secs: u64,
    /// Whether this is the first refusal of the lockout (the one to record).
    pub first_of_lockout: bool,
}

impl SignInLimits {
    pub fn new(config: SignInLimitConfig) -> SignInLimits {
        SignInLimits { config, tables: Mutex::default() }
    }

    fn window_ms(&self) -> i64 {
        i64::try_from(self.config.window.as_millis()).unwrap_or(i64::MAX)
    }

    /// Starts an attempt of `name` from `source_ip` at `now_ms`, unless either is over its limit.
    pub(crate) fn begin(&self, name: &str, source_ip: Option<&str>, now_ms: i64) -> Result<Attempt, Refusal> {
        let window_ms = self.window_ms();
        let mut guard = self.tables.lock();
        let tables = &mut *guard;
        for table in [&mut tables.names, &mut tables.addresses] {
            if table.len() > PRUNE_ABOVE {
                table.retain(|_, failures| failures.times.back().is_some_and(|&last| last > now_ms - window_ms));
            }
        }
        let keys = [
            (&mut tables.names, Some(name), self.config.failures_per_name),
            (&mut tables.addresses, source_ip, self.config.failures_per_source_ip),
        ];
        let mut refusal: Option<Refusal> = None;
        let mut entries = Vec::with_capacity(2);
        for (table, key, limit) in keys {
            let Some(key) = key else { continue };
            let failures = table.entry(key.to_owned()).or_default();
            while failures.times.front().is_some_and(|&time| time <= now_ms - window_ms) {
                failures.times.pop_front();
            }
            if failures.times.len() >= limit {
                let oldest = failures.times.front().copied().unwrap_or(now_ms);
                let wait_ms = (oldest + window_ms - now_ms).max(1);
                let first_of_lockout =
                    failures.refusal_recorded_at.is_none_or(|recorded| recorded <= now_ms - window_ms);
                if first_of_lockout {
                    failures.refusal_recorded_at = Some(now_ms);
                }
                let this = Refusal { retry_after_secs: (wait_ms as u64).div_ceil(1000), first_of_lockout };
                refusal = Some(match refusal {
                    Some(other) => Refusal {
                        retry_after_secs: other.retry_after_secs.max(this.retry_after_secs),
                        first_of_lockout: other.first_of_lockout || this.first_of_lockout,
                    },
                    None => this,
                });
            }
            entries.push(failures);
        }
        if let Some(refusal) = refusal {
            return Err(refusal);
        }
        entries.into_iter().for_each(|failures| failures.times.push_back(now_ms));
        Ok(Attempt { name: name.to_owned(), source_ip: source_ip.map(str::to_owned), started_ms: now_ms })
    }

    /// The attempt signed in: the name's failures are cleared, the address's count of it withdrawn.
    pub(crate) fn succeeded(&self, attempt: Attempt) {
        let mut tables = self.tables.lock();
        tables.names.remove(&attempt.name);
        withdraw(&mut tables.addresses, attempt.source_ip.as_deref(), attempt.started_ms);
    }

    /// The attempt failed inside cts (not for its credentials): it does not count.
    pub(crate) fn abandoned(&self, attempt: Attempt) {
        let mut tables = self.tables.lock();
        withdraw(&mut tables.names, Some(&attempt.name), attempt.started_ms);
        withdraw(&mut tables.addresses, attempt.source_ip.as_deref(), attempt.started_ms);
    }
}

/// Removes one failure recorded at `time` for `key`.
fn withdraw(table: &mut HashMap<String, Failures>, key: Option<&str>, time: i64) {
    let Some(failures) = key.and_then(|key| table.get_mut(key)) else { return };
    if let Some(index) = failures.times.iter().position(|&recorded| recorded == time) {
        failures.times.remove(index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000;

    fn limits() -> SignInLimits {
        SignInLimits::new(SignInLimitConfig::default())
    }

    #[test]
    fn the_sixth_failure_of_a_name_within_five_minutes_is_refused_until_the_oldest_leaves() {
        let limits = limits();
        for minute in 0..5 {
            drop(limits.begin("carol", Some("10.0.0.1"), minute * MINUTE).unwrap());
        }
        let refusal = limits.begin("carol", Some("10.0.0.2"), 5 * MINUTE - 1).unwrap_err();
        assert_eq!(refusal, Refusal { retry_after_secs: 1, first_of_lockout: true });
        let again = limits.begin("carol", None, 5 * MINUTE - 1).unwrap_err();
        assert!(!again.first_of_lockout, "one refusal per lockout is recorded");
        assert!(limits.begin("dave", Some("10.0.0.1"), 5 * MINUTE - 1).is_ok(), "other names are not locked");
        // The first failure (at 0) leaves the window at 5 minutes.
        assert!(limits.begin("carol", None, 5 * MINUTE).is_ok());
    }

    #[test]
    fn a_success_clears_the_names_failures_and_refusals_do_not_count() {
        let limits = limits();
        for _ in 0..4 {
            drop(limits.begin("carol", None, 0).unwrap());
        }
        limits.succeeded(limits.begin("carol", None, 1).unwrap());
        for _ in 0..5 {
            drop(limits.begin("carol", None, 2).unwrap());
        }
        for _ in 0..10 {
            assert!(limits.begin("carol", None, 3).is_err());
        }
        assert_eq!(limits.begin("carol", None, 5 * MINUTE + 2).map(|_| ()), Ok(()), "refusals added no failure");
    }

    #[test]
    fn an_address_is_limited_across_names_and_abandoned_attempts_do_not_count() {
        let limits = limits();
        for index in 0..20 {
            drop(limits.begin(&format!("user{index}"), Some("10.0.0.9"), 0).unwrap());
        }
        let refusal = limits.begin("someone", Some("10.0.0.9"), MINUTE).unwrap_err();
        assert_eq!(refusal.retry_after_secs, 240);
        assert!(limits.begin("someone", Some("10.0.0.10"), MINUTE).is_ok());

        let limits = SignInLimits::default();
        for _ in 0..50 {
            limits.abandoned(limits.begin("carol", Some("10.0.0.9"), 0).unwrap());
        }
        assert!(limits.begin("carol", Some("10.0.0.9"), 0).is_ok());
    }

    #[test]
    fn attempts_under_way_count_so_parallel_guesses_cannot_pass_the_limit() {
        let limits = limits();
        let under_way: Vec<Attempt> = (0..5).map(|_| limits.begin("carol", None, 0).unwrap()).collect();
        assert!(limits.begin("carol", None, 0).is_err());
        drop(under_way);
    }
}
