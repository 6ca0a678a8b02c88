//! The marketplace's time: the system clock, or a simulated clock that a demo moves forward over days.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub enum Clock {
    System,
    /// Starts at a given time and moves only when told.
    Simulated(Arc<AtomicI64>),
}

impl Clock {
    pub fn simulated(start_ms: i64) -> Clock {
        Clock::Simulated(Arc::new(AtomicI64::new(start_ms)))
    }

    /// UTC milliseconds now.
    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::System => cts_model::now_ms(),
            Clock::Simulated(now) => now.load(Ordering::SeqCst),
        }
    }

    /// Moves a simulated clock forward by `ms` and answers the new time; `None` for the system clock (or a
    /// negative step).
    pub fn advance(&self, ms: i64) -> Option<i64> {
        match self {
            Clock::Simulated(now) if ms >= 0 => Some(now.fetch_add(ms, Ordering::SeqCst) + ms),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_simulated_clock_moves_on_demand() {
        let clock = Clock::simulated(1_000);
        assert_eq!(clock.advance(500), Some(1_500));
        assert_eq!(clock.now_ms(), 1_500);
        assert_eq!(clock.advance(-1), None);
        assert_eq!(Clock::System.advance(500), None);
    }
}
