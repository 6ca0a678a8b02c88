//! CPU and writes of the processes under test per phase: readings of `/proc`
//! before and after each timed step, summed per phase name.

use crate::procfs;
use crate::report::PhaseLoad;
use std::time::{Duration, Instant};

/// The processes to watch: `cts serve`, PostgreSQL's server (with its backends) and this process.
#[derive(Debug, Clone, Copy)]
pub struct Meter {
    pub cts_pid: u32,
    pub postgres_pid: Option<u32>,
}

/// What the processes had used at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    at: Instant,
    cts: Option<Duration>,
    postgres: Option<Duration>,
    bench: Option<Duration>,
    cts_written: Option<u64>,
}

impl Meter {
    pub fn read(&self) -> Reading {
        Reading {
            at: Instant::now(),
            cts: procfs::cpu_time(self.cts_pid).ok(),
            postgres: self.postgres_pid.and_then(|pid| procfs::tree_cpu_time(pid).ok()),
            bench: procfs::cpu_time(std::process::id()).ok(),
            cts_written: procfs::written_bytes(self.cts_pid).ok(),
        }
    }
}

/// Phases in the order first seen, each the sum of its steps.
#[derive(Debug, Default)]
pub struct Phases(Vec<PhaseLoad>);

fn add_seconds(total: &mut Option<f64>, from: Option<Duration>, to: Option<Duration>) {
    if let (Some(from), Some(to)) = (from, to) {
        *total = Some(total.unwrap_or(0.0) + to.saturating_sub(from).as_secs_f64());
    }
}

impl Phases {
    /// Adds the step between two readings to the phase `name`.
    pub fn add(&mut self, name: &str, from: Reading, to: Reading) {
        let index = match self.0.iter().position(|phase| phase.phase == name) {
            Some(index) => index,
            None => {
                self.0.push(PhaseLoad { phase: name.to_owned(), ..PhaseLoad::default() });
                self.0.len() - 1
            }
        };
        let phase = &mut self.0[index];
        phase.wall_seconds += to.at.duration_since(from.at).as_secs_f64();
        add_seconds(&mut phase.cts_cpu_seconds, from.cts, to.cts);
        add_seconds(&mut phase.postgres_cpu_seconds, from.postgres, to.postgres);
        add_seconds(&mut phase.bench_cpu_seconds, from.bench, to.bench);
        if let (Some(from), Some(to)) = (from.cts_written, to.cts_written) {
            phase.cts_written_bytes = Some(phase.cts_written_bytes.unwrap_or(0) + to.saturating_sub(from));
        }
    }

    pub fn into_loads(self) -> Vec<PhaseLoad> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(at: Instant, cts_ms: u64, written: u64) -> Reading {
        Reading {
            at,
            cts: Some(Duration::from_millis(cts_ms)),
            postgres: None,
            bench: Some(Duration::from_millis(cts_ms / 2)),
            cts_written: Some(written),
        }
    }

    #[test]
    fn steps_of_one_phase_add_up_and_phases_keep_their_order() {
        let start = Instant::now();
        let second = Duration::from_secs(1);
        let mut phases = Phases::default();
        phases.add("ingest", reading(start, 0, 0), reading(start + second, 1_500, 100));
        phases.add("queries", reading(start + second, 1_500, 100), reading(start + 2 * second, 1_600, 100));
        phases.add("ingest", reading(start + 2 * second, 1_600, 100), reading(start + 3 * second, 3_600, 300));
        let loads = phases.into_loads();
        assert_eq!(loads.iter().map(|l| l.phase.as_str()).collect::<Vec<_>>(), ["ingest", "queries"]);
        let ingest = &loads[0];
        assert_eq!(ingest.wall_seconds, 2.0);
        assert_eq!(ingest.cts_cpu_seconds, Some(3.5));
        assert_eq!(ingest.bench_cpu_seconds, Some(1.75));
        assert_eq!(ingest.postgres_cpu_seconds, None);
        assert_eq!(ingest.cts_written_bytes, Some(300));
        assert!(ingest.describe(2).ends_with("-> CPU-bound"), "{}", ingest.describe(2));
        let idle = "not CPU-bound, 92% idle (waiting on fsync/disk or on round trips)";
        assert!(loads[1].describe(2).ends_with(idle), "{}", loads[1].describe(2));
    }

    #[test]
    fn a_meter_reads_this_process() {
        let me = std::process::id();
        let meter = Meter { cts_pid: me, postgres_pid: None };
        let (first, second) = (meter.read(), meter.read());
        assert!(first.cts.is_some() && first.bench.is_some());
        let mut phases = Phases::default();
        phases.add("self", first, second);
        assert!(phases.into_loads()[0].cts_cpu_seconds.is_some());
    }
}
