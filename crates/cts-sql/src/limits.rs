//! What one SQL query may use, and how many run at once.

use std::time::Duration;

/// The limits of an [`crate::SqlEngine`]. Every field must be positive ([`SqlLimits::validate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqlLimits {
    /// Wall time of one query from planning to its last result row (waiting for a turn not counted).
    pub timeout: Duration,
    /// Memory one query's operators (sorts, aggregations, joins) and its result may hold; a query that
    /// needs more fails. Nothing spills to disk.
    pub memory_bytes: usize,
    /// Result rows returned; further rows are cut and the result is marked truncated.
    pub max_rows: usize,
    /// Queries running at once; the others wait for a turn.
    pub max_concurrent: usize,
    /// The longest statement accepted, in bytes.
    pub max_statement_bytes: usize,
}

impl Default for SqlLimits {
    /// 30 s, 512 MiB, 10,000 rows, 2 queries at once, statements of up to 64 KiB.
    fn default() -> Self {
        SqlLimits {
            timeout: Duration::from_secs(30),
            memory_bytes: 512 << 20,
            max_rows: 10_000,
            max_concurrent: 2,
            max_statement_bytes: 64 << 10,
        }
    }
}

/// The smallest memory limit: DataFusion's operators need some room to run at all.
pub const MIN_MEMORY_BYTES: usize = 1 << 20;

impl SqlLimits {
    /// Checks every limit is usable; the message names the limit.
    pub fn validate(&self) -> Result<(), String> {
        let checks = [
            (self.timeout.is_zero(), "the SQL time limit must be positive"),
            (self.memory_bytes < MIN_MEMORY_BYTES, "the SQL memory limit must be at least 1 MiB"),
            (self.max_rows == 0, "the SQL row limit must be positive"),
            (self.max_concurrent == 0, "the number of concurrent SQL queries must be positive"),
            (self.max_statement_bytes == 0, "the SQL statement length limit must be positive"),
        ];
        match checks.into_iter().find(|(broken, _)| *broken) {
            Some((_, message)) => Err(message.to_owned()),
            None => Ok(()),
        }
    }
}

/// `bytes` for people: `512 MiB`, `1.5 GiB`, `300 KiB`, `12 bytes`.
pub(crate) fn human_bytes(bytes: usize) -> String {
    const UNITS: [(&str, usize); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    match UNITS.into_iter().find(|&(_, size)| bytes >= size) {
        Some((unit, size)) if bytes.is_multiple_of(size) => format!("{} {unit}", bytes / size),
        Some((unit, size)) => format!("{:.1} {unit}", bytes as f64 / size as f64),
        None => format!("{bytes} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_each_zero_limit_is_named() {
        assert_eq!(SqlLimits::default().validate(), Ok(()));
        let broken = [
            (SqlLimits { timeout: Duration::ZERO, ..SqlLimits::default() }, "time limit"),
            (SqlLimits { memory_bytes: 1000, ..SqlLimits::default() }, "memory limit"),
            (SqlLimits { max_rows: 0, ..SqlLimits::default() }, "row limit"),
            (SqlLimits { max_concurrent: 0, ..SqlLimits::default() }, "concurrent"),
            (SqlLimits { max_statement_bytes: 0, ..SqlLimits::default() }, "statement length"),
        ];
        for (limits, named) in broken {
            let message = limits.validate().unwrap_err();
            assert!(message.contains(named), "{message}");
        }
    }

    #[test]
    fn bytes_read_as_people_write_them() {
        let cases = [(512 << 20, "512 MiB"), (3 << 29, "1.5 GiB"), (300 << 10, "300 KiB"), (12, "12 bytes")];
        for (bytes, text) in cases {
            assert_eq!(human_bytes(bytes), text);
        }
    }
}
