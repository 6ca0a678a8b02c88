//! What Linux's `/proc` says about the processes under test: CPU time
//! (utime + stime), peak resident memory (`VmHWM`) and bytes written to
//! storage, so the report states what bounds each figure instead of guessing.

use std::io;
use std::sync::OnceLock;
use std::time::Duration;

/// The fields of `/proc/PID/stat` the benchmark reads, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatFields {
    pub parent: u32,
    pub user_ticks: u64,
    pub system_ticks: u64,
    /// CPU of children that exited and were waited for.
    pub reaped_children_ticks: u64,
}

/// Parses `/proc/PID/stat`; the command name (field 2) may hold spaces and
/// parentheses, so fields are counted from its last `)`.
pub fn parse_stat(text: &str) -> Option<StatFields> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state (3), ppid (4), ... utime (14), stime (15), cutime (16), cstime (17).
    let number = |field: usize| fields.get(field - 3)?.parse::<u64>().ok();
    Some(StatFields {
        parent: u32::try_from(number(4)?).ok()?,
        user_ticks: number(14)?,
        system_ticks: number(15)?,
        reaped_children_ticks: number(16)? + number(17)?,
    })
}

fn stat(pid: u32) -> io::Result<StatFields> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat(&text).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("/proc/{pid}/stat: {text}")))
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 on every common Linux).
fn ticks_per_second() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .filter(|ticks| *ticks > 0)
            .unwrap_or(100)
    })
}

fn ticks(count: u64) -> Duration {
    Duration::from_secs_f64(count as f64 / ticks_per_second() as f64)
}

/// CPU time the process used so far (user + system).
pub fn cpu_time(pid: u32) -> io::Result<Duration> {
    let fields = stat(pid)?;
    Ok(ticks(fields.user_ticks + fields.system_ticks))
}

/// CPU time of a process and all its children, living or exited (a server
/// forking a process per connection, as PostgreSQL does).
pub fn tree_cpu_time(pid: u32) -> io::Result<Duration> {
    let fields = stat(pid)?;
    let mut total = fields.user_ticks + fields.system_ticks + fields.reaped_children_ticks;
    for child in children(pid)? {
        // A child may exit between the listing and the read; its time then moves to the parent's reaped total.
        if let Ok(child) = stat(child) {
            total += child.user_ticks + child.system_ticks;
        }
    }
    Ok(ticks(total))
}

/// The ids of the living children of `pid`.
pub fn children(pid: u32) -> io::Result<Vec<u32>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let Some(child) = entry?.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else { continue };
        if stat(child).is_ok_and(|fields| fields.parent == pid) {
            found.push(child);
        }
    }
    Ok(found)
}

/// A `kB` line of `/proc/PID/status` (`VmHWM:   12345 kB`) in bytes.
pub fn status_kib_line(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.split(':').next() == Some(key))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Peak resident memory of the process (`VmHWM`).
pub fn peak_rss_bytes(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status_kib_line(&status, "VmHWM").ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no VmHWM"))
}

/// The largest peak resident memory among a process and its living children.
pub fn tree_peak_rss_bytes(pid: u32) -> io::Result<u64> {
    let mut peak = peak_rss_bytes(pid)?;
    for child in children(pid)? {
        peak = peak.max(peak_rss_bytes(child).unwrap_or(0));
    }
    Ok(peak)
}

/// Bytes the process caused to be written to storage (`write_bytes` of `/proc/PID/io`).
pub fn written_bytes(pid: u32) -> io::Result<u64> {
    let io_text = std::fs::read_to_string(format!("/proc/{pid}/io"))?;
    io_text
        .lines()
        .find_map(|line| line.strip_prefix("write_bytes:"))
        .and_then(|value| value.trim().parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no write_bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis_of_the_name() {
        let line = "4242 (cts (serve) x) S 17 4242 4242 0 -1 4194560 1 0 0 0 250 75 9 3 20 0 5 0 100 1000 50";
        assert_eq!(
            parse_stat(line),
            Some(StatFields { parent: 17, user_ticks: 250, system_ticks: 75, reaped_children_ticks: 12 })
        );
        assert_eq!(parse_stat("4242 (cut short) S 1 2"), None);
        assert_eq!(parse_stat("no name at all"), None);
    }

    #[test]
    fn this_process_has_cpu_time_memory_and_a_parent() {
        let me = std::process::id();
        let spin = std::time::Instant::now();
        while spin.elapsed() < Duration::from_millis(30) {
            std::hint::black_box(spin.elapsed());
        }
        let own = cpu_time(me).unwrap();
        assert!(own > Duration::ZERO);
        // Read after the process's own time, which only grows: the tree includes it.
        assert!(tree_cpu_time(me).unwrap() >= own);
        assert!(peak_rss_bytes(me).unwrap() > 1 << 20);
        let parent = stat(me).unwrap().parent;
        assert!(children(parent).unwrap().contains(&me));
    }

    #[test]
    fn status_lines_are_read_in_bytes() {
        let status = "Name:\tcts\nVmPeak:\t  9000 kB\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(status_kib_line(status, "VmHWM"), Some(2 * 1024 * 1024));
        assert_eq!(status_kib_line(status, "VmSwap"), None);
    }
}
