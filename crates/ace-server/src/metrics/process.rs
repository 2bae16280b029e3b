//! The standard `process_*` metrics of the server's own process, read from `/proc/self` at each
//! scrape (Linux only; elsewhere none is exported): `process_resident_memory_bytes`,
//! `process_virtual_memory_bytes`, `process_cpu_seconds_total` (user + system),
//! `process_open_fds`, `process_max_fds` (the soft limit) and `process_start_time_seconds`
//! (Unix time). The names, types and units are those of the Prometheus client libraries, so
//! dashboards written for any exporter read them as they are.
//!
//! Parsed by hand rather than through the `prometheus` crate's `process` feature, which would
//! bring `procfs` and its dependency tree for five numbers. A file that cannot be read or parsed
//! leaves its metrics out of that scrape (logged at debug): a scrape never fails for them.

/// One process metric: its name, help, whether it is a counter, and its value.
pub(super) type Sample = (&'static str, &'static str, bool, f64);

/// The process metrics now; empty off Linux or when `/proc` is unreadable.
pub(super) fn samples() -> Vec<Sample> {
    #[cfg(target_os = "linux")]
    {
        linux::samples()
    }
    #[cfg(not(target_os = "linux"))]
    {
        Vec::new()
    }
}

/// What `/proc/self/stat` says, in its own units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    /// `utime + stime`, clock ticks.
    cpu_ticks: u64,
    /// Start after boot, clock ticks.
    start_ticks: u64,
    /// Virtual memory, bytes.
    vsize: u64,
    /// Resident set, pages.
    rss_pages: u64,
}

/// Parses the text of a `/proc/PID/stat`; the command name (field 2) may hold spaces and `)`,
/// so fields are counted from its last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let after = &text[text.rfind(')')? + 1..];
    // `after` starts at field 3 (state): field n is at index n - 3.
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        cpu_ticks: field(14)?.checked_add(field(15)?)?,
        start_ticks: field(22)?,
        vsize: field(23)?,
        rss_pages: field(24)?,
    })
}

/// The boot time (`btime`, Unix seconds) from the text of `/proc/stat`.
fn parse_boot_time(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

/// The soft limit of open files from the text of `/proc/PID/limits` (`None` when unlimited).
fn parse_max_fds(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The samples of one reading of each file; `ticks` per second and `page` bytes.
fn to_samples(
    stat: Option<Stat>,
    boot_time: Option<u64>,
    open_fds: Option<u64>,
    max_fds: Option<u64>,
    (ticks, page): (u64, u64),
) -> Vec<Sample> {
    let mut samples = Vec::with_capacity(6);
    let ticks = ticks.max(1) as f64;
    if let Some(stat) = stat {
        samples.extend([
            (
                "process_cpu_seconds_total",
                "Total user and system CPU time spent in seconds.",
                true,
                stat.cpu_ticks as f64 / ticks,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                false,
                stat.vsize as f64,
            ),
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                false,
                stat.rss_pages.saturating_mul(page) as f64,
            ),
        ]);
        if let Some(boot) = boot_time {
            samples.push((
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                false,
                boot as f64 + stat.start_ticks as f64 / ticks,
            ));
        }
    }
    if let Some(open) = open_fds {
        samples.push((
            "process_open_fds",
            "Number of open file descriptors.",
            false,
            open as f64,
        ));
    }
    if let Some(max) = max_fds {
        samples.push((
            "process_max_fds",
            "Maximum number of open file descriptors.",
            false,
            max as f64,
        ));
    }
    samples
}

#[cfg(target_os = "linux")]
mod linux {
    use super::{Sample, parse_boot_time, parse_max_fds, parse_stat, to_samples};

    /// Reads `path`, logging (at debug) why not.
    fn read(path: &str) -> Option<String> {
        std::fs::read_to_string(path)
            .inspect_err(|err| tracing::debug!(path, error = %err, "process metrics: unreadable"))
            .ok()
    }

    pub(super) fn samples() -> Vec<Sample> {
        let stat = read("/proc/self/stat").and_then(|t| parse_stat(&t));
        let boot = read("/proc/stat").and_then(|t| parse_boot_time(&t));
        // The directory's own descriptor, open while it is listed, is one of the entries.
        let open = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|dir| (dir.count() as u64).saturating_sub(1));
        let max = read("/proc/self/limits").and_then(|t| parse_max_fds(&t));
        let units = (
            rustix::param::clock_ticks_per_second(),
            rustix::param::page_size() as u64,
        );
        to_samples(stat, boot, open, max, units)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `/proc/PID/stat` of a process whose name holds a space and a `)`: utime 1234,
    /// stime 56, starttime 9000, vsize 104857600, rss 2560 pages.
    const STAT: &str = "4242 (ace (x) y) S 1 4242 4242 0 -1 4194560 500 0 0 0 1234 56 0 0 20 0 \
                        12 0 9000 104857600 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 \
                        1 0 0 0 0 0";

    #[test]
    fn given_proc_texts_when_parsed_then_each_metric_has_its_unit() {
        let stat = parse_stat(STAT).expect("parses");
        assert_eq!(
            stat,
            Stat {
                cpu_ticks: 1290,
                start_ticks: 9000,
                vsize: 104_857_600,
                rss_pages: 2560,
            }
        );
        let boot = parse_boot_time("cpu  1 2 3\nbtime 1700000000\nprocesses 9\n");
        assert_eq!(boot, Some(1_700_000_000));
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             63459                63459                processes \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(parse_max_fds(limits), Some(1024));
        let samples = to_samples(Some(stat), boot, Some(7), Some(1024), (100, 4096));
        let value = |name: &str| {
            samples
                .iter()
                .find(|s| s.0 == name)
                .map(|s| (s.2, s.3))
                .unwrap_or_else(|| panic!("{name} missing"))
        };
        assert_eq!(value("process_cpu_seconds_total"), (true, 12.9));
        assert_eq!(
            value("process_resident_memory_bytes"),
            (false, 10_485_760.0)
        );
        assert_eq!(
            value("process_virtual_memory_bytes"),
            (false, 104_857_600.0)
        );
        assert_eq!(
            value("process_start_time_seconds"),
            (false, 1_700_000_090.0)
        );
        assert_eq!(value("process_open_fds"), (false, 7.0));
        assert_eq!(value("process_max_fds"), (false, 1024.0));
    }

    #[test]
    fn given_unreadable_or_malformed_texts_when_parsed_then_their_metrics_are_left_out() {
        assert_eq!(parse_stat("4242 no parenthesis 1 2 3"), None);
        assert_eq!(parse_stat("4242 (short) S 1 2"), None);
        assert_eq!(parse_stat(&STAT.replace(" 1234 ", " x ")), None);
        assert_eq!(parse_boot_time("cpu 1 2 3\n"), None);
        assert_eq!(
            parse_max_fds("Max open files  unlimited  unlimited  files\n"),
            None
        );
        assert_eq!(parse_max_fds(""), None);
        assert!(to_samples(None, Some(1), None, None, (100, 4096)).is_empty());
        let no_boot = to_samples(parse_stat(STAT), None, None, None, (100, 4096));
        let names: Vec<&str> = no_boot.iter().map(|s| s.0).collect();
        assert_eq!(
            names,
            [
                "process_cpu_seconds_total",
                "process_virtual_memory_bytes",
                "process_resident_memory_bytes"
            ]
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn given_this_process_when_read_then_every_process_metric_is_plausible() {
        let samples = samples();
        let value = |name: &str| samples.iter().find(|s| s.0 == name).map(|s| s.3);
        assert!(value("process_resident_memory_bytes").is_some_and(|v| v > 0.0));
        assert!(value("process_cpu_seconds_total").is_some_and(|v| v >= 0.0));
        assert!(
            value("process_open_fds").is_some_and(|v| v >= 3.0),
            "stdio at least"
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let start = value("process_start_time_seconds").expect("a start time");
        assert!(
            start <= now + 1.0 && start > now - 86_400.0 * 30.0,
            "{start} vs {now}"
        );
    }
}
