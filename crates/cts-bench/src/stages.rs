//! The load proceeds in stages: at each checkpoint (a number of traces loaded
//! into both systems) the selective queries are measured, so latency at 1M and
//! at 10M come from one run (`--checkpoints 1M,10M`). Without checkpoints there
//! is one, at the end.

use anyhow::{bail, Context};

/// A trace count as typed on the command line: `20000`, `20_000`, `20k`, `1M`, `1.5M`.
pub fn parse_count(text: &str) -> anyhow::Result<usize> {
    let cleaned = text.trim().replace('_', "");
    let (number, scale) = match cleaned.char_indices().last() {
        Some((at, 'k' | 'K')) => (&cleaned[..at], 1e3),
        Some((at, 'm' | 'M')) => (&cleaned[..at], 1e6),
        _ => (cleaned.as_str(), 1.0),
    };
    let value: f64 = number.parse().with_context(|| format!("{text:?} is not a count (e.g. 20000, 20k, 1M)"))?;
    let count = value * scale;
    if !count.is_finite() || count < 1.0 || count.fract() != 0.0 || count > usize::MAX as f64 {
        bail!("{text:?} is not a whole positive count");
    }
    Ok(count as usize)
}

/// The checkpoints of a run of `traces`: the given ones, strictly increasing
/// and within the run, then `traces` itself (added unless given last).
pub fn checkpoint_plan(traces: usize, given: &[usize]) -> anyhow::Result<Vec<usize>> {
    if let Some(pair) = given.windows(2).find(|pair| pair[0] >= pair[1]) {
        bail!("checkpoints must increase: {} then {}", pair[0], pair[1]);
    }
    if let Some(beyond) = given.iter().find(|&&checkpoint| checkpoint > traces) {
        bail!("checkpoint {beyond} lies beyond the run of {traces} traces (raise --traces)");
    }
    let mut plan = given.to_vec();
    if plan.last() != Some(&traces) {
        plan.push(traces);
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_accept_plain_grouped_and_scaled_forms() {
        for (text, count) in [
            ("20000", 20_000),
            ("20_000", 20_000),
            ("20k", 20_000),
            ("1M", 1_000_000),
            ("10m", 10_000_000),
            ("1.5M", 1_500_000),
            (" 7 ", 7),
        ] {
            assert_eq!(parse_count(text).unwrap(), count, "{text}");
        }
        for text in ["", "0", "-5", "1.5", "x", "1G", "M", "0.0001k"] {
            assert!(parse_count(text).is_err(), "{text} accepted");
        }
    }

    #[test]
    fn the_plan_ends_at_the_run_size_and_rejects_disorder() {
        assert_eq!(checkpoint_plan(10_000_000, &[]).unwrap(), vec![10_000_000]);
        assert_eq!(checkpoint_plan(10_000_000, &[1_000_000]).unwrap(), vec![1_000_000, 10_000_000]);
        assert_eq!(checkpoint_plan(10_000_000, &[1_000_000, 10_000_000]).unwrap(), vec![1_000_000, 10_000_000]);
        assert!(checkpoint_plan(100, &[50, 50]).is_err());
        assert!(checkpoint_plan(100, &[60, 50]).is_err());
        assert!(checkpoint_plan(100, &[50, 200]).is_err());
    }
}
