//! The server side of a bench run, read from Linux's `/proc`: which process serves the port,
//! and what it spent over the measured phase — CPU time (`utime + stime` of `/proc/PID/stat`)
//! and peak resident memory (`VmHWM` of `/proc/PID/status`).
//!
//! The process is the one a flag names (`--server-pid`, `--nats-pid`) or the one holding the
//! socket that listens on the server's port: the socket's inode from `/proc/net/tcp` and
//! `/proc/net/tcp6`, then the `/proc/*/fd/*` link `socket:[inode]`. Only a server on this
//! machine (a loopback or unspecified address, `localhost`) is looked up that way; a remote
//! host, no listening socket, a socket no readable process holds, or two processes holding it
//! is said, never guessed.
//!
//! Before the phase the peak is reset (`5` written to `/proc/PID/clear_refs`, which sets
//! `VmHWM` to the current resident set) so the peak is the phase's own; where that is not
//! allowed the report says the peak counts from the process's start.

use std::fs;
use std::io::ErrorKind;
use std::net::IpAddr;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Serialize;

/// What one server process spent over the measured phase.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ServerCost {
    /// The process measured.
    pub(crate) pid: u32,
    /// How it was found: the flag, or the port it listens on.
    pub(crate) found_by: String,
    /// CPU time (user + system) over the phase, seconds.
    pub(crate) cpu_seconds: f64,
    /// CPU-seconds per million messages published, which is also CPU-µs per message.
    pub(crate) cpu_us_per_msg: f64,
    /// Peak resident set (`VmHWM`), KiB.
    pub(crate) peak_rss_kib: u64,
    /// What the peak covers: `phase` (reset before it) or `process` (since the process
    /// started: the reset was not allowed).
    pub(crate) peak_rss_since: &'static str,
}

/// A measurement under way: the process and its CPU time when the phase began.
#[derive(Debug)]
pub(crate) struct Probe {
    pid: u32,
    found_by: String,
    ticks_at_start: u64,
    peak_rss_since: &'static str,
}

impl Probe {
    /// Starts measuring `pid`: reads its CPU time and resets its peak resident set.
    pub(crate) fn start(pid: u32, found_by: String) -> Result<Probe> {
        let ticks_at_start = cpu_ticks(&read(pid, "stat")?)?;
        let reset = fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok();
        Ok(Probe {
            pid,
            found_by,
            ticks_at_start,
            peak_rss_since: if reset { "phase" } else { "process" },
        })
    }

    /// Ends the phase after `messages` messages: the CPU it took and the peak memory.
    pub(crate) fn finish(&self, messages: u64) -> Result<ServerCost> {
        let ticks = cpu_ticks(&read(self.pid, "stat")?)?.saturating_sub(self.ticks_at_start);
        let cpu_seconds = ticks as f64 / rustix::param::clock_ticks_per_second() as f64;
        Ok(ServerCost {
            pid: self.pid,
            found_by: self.found_by.clone(),
            cpu_seconds,
            cpu_us_per_msg: cpu_seconds * 1e6 / messages.max(1) as f64,
            peak_rss_kib: peak_rss_kib(&read(self.pid, "status")?)?,
            peak_rss_since: self.peak_rss_since,
        })
    }
}

fn read(pid: u32, file: &str) -> Result<String> {
    let path = format!("/proc/{pid}/{file}");
    fs::read_to_string(&path).with_context(|| format!("reading {path} (is process {pid} running?)"))
}

/// The process to measure: `pid` when the flag gave it, else the one listening on `port` of
/// `host` when that is this machine. The answer carries how it was found.
pub(crate) fn locate(pid: Option<u32>, flag: &str, host: &str, port: u16) -> Result<(u32, String)> {
    if let Some(pid) = pid {
        read(pid, "stat")?;
        return Ok((pid, format!("{flag} {pid}")));
    }
    if !is_local(host) {
        bail!("the server at {host} is not on this machine; give {flag} to measure its process");
    }
    let inodes = listening_inodes(port)?;
    if inodes.is_empty() {
        bail!("no socket listens on port {port} on this machine; give {flag}");
    }
    match owners(Path::new("/proc"), &inodes)?.as_slice() {
        [pid] => Ok((*pid, format!("port {port}"))),
        [] => {
            bail!("no process readable here holds the socket listening on port {port}; give {flag}")
        }
        many => bail!("processes {many:?} all hold a socket listening on port {port}; give {flag}"),
    }
}

/// True for the names of this machine that a URL can carry: loopback, unspecified,
/// `localhost`.
fn is_local(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified())
}

/// The inodes of the sockets of `table` (the text of `/proc/net/tcp` or `tcp6`) listening on
/// `port`, at any local address.
fn listening_in(table: &str, port: u16) -> Vec<u64> {
    // columns: sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
    const LISTEN: &str = "0A";
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (_, local_port) = fields.get(1)?.rsplit_once(':')?;
            let listening = *fields.get(3)? == LISTEN;
            let matches = u16::from_str_radix(local_port, 16).ok()? == port;
            (listening && matches).then(|| fields.get(9)?.parse().ok())?
        })
        .collect()
}

/// The inodes of every socket of this machine's network namespace listening on `port`.
fn listening_inodes(port: u16) -> Result<Vec<u64>> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        match fs::read_to_string(table) {
            Ok(text) => inodes.extend(listening_in(&text, port)),
            // a kernel without IPv6 has no tcp6
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("reading {table}")),
        }
    }
    Ok(inodes)
}

/// The processes under `proc` with a file descriptor open on one of the sockets `inodes`.
/// Processes whose descriptors this user may not read are skipped.
fn owners(proc: &Path, inodes: &[u64]) -> Result<Vec<u32>> {
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    let holds = |fd: fs::DirEntry| {
        fs::read_link(fd.path())
            .is_ok_and(|link| wanted.iter().any(|w| link.as_os_str() == w.as_str()))
    };
    let mut pids = Vec::new();
    let entries = fs::read_dir(proc).with_context(|| format!("listing {}", proc.display()))?;
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let Ok(fds) = fs::read_dir(entry.path().join("fd")) else {
            continue; // gone, or another user's
        };
        if fds.flatten().any(holds) {
            pids.push(pid);
        }
    }
    Ok(pids)
}

/// `utime + stime` of the text of a `/proc/PID/stat`, in clock ticks.
fn cpu_ticks(stat: &str) -> Result<u64> {
    // Field 2, the command name, is in parentheses and may hold spaces and `)`: the fields
    // are counted from the last `)`, which is followed by field 3 (the state).
    let (_, rest) = stat
        .rsplit_once(')')
        .context("a /proc/PID/stat without `)` after the command name")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |number: usize, name: &str| {
        fields
            .get(number - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .with_context(|| format!("a /proc/PID/stat without {name} (field {number})"))
    };
    Ok(field(14, "utime")? + field(15, "stime")?)
}

/// `VmHWM` of the text of a `/proc/PID/status`, in KiB.
fn peak_rss_kib(status: &str) -> Result<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().strip_suffix("kB")?.trim().parse().ok())
        .context("a /proc/PID/status without a `VmHWM: <n> kB` line")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `/proc/PID/stat` of a process whose name holds a space and a `)`; utime 1234, stime 56.
    const STAT: &str = "4242 (ace comms) x) S 1 4242 4242 0 -1 4194560 2048 0 0 0 1234 56 0 0 \
                        20 0 9 0 6227 987654321 3210 18446744073709551615 1 1 0 0 0 0 0 4096 \
                        17664 0 0 0 17 1 0 0 0 0 0";

    const STATUS: &str = "Name:\tace-comms\nUmask:\t0022\nState:\tS (sleeping)\nVmPeak:\t  \
                          912344 kB\nVmSize:\t  912340 kB\nVmHWM:\t   48812 kB\nVmRSS:\t   \
                          40100 kB\nThreads:\t9\n";

    /// `/proc/net/tcp` with a listener on 127.0.0.1:8500 (inode 5959), a connection from that
    /// port (not listening), and a listener on 0.0.0.0:2024.
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:2134 00000000:0000 0A 00000000:00000000 00:00000000 00000000   106        0 5959 1 000000008a06f138 100 0 0 10 0
   1: 0100007F:2134 0100007F:C350 01 00000000:00000000 00:00000000 00000000   106        0 6001 1 000000008a06f139 20 4 30 10 -1
   2: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 297 1 000000004bb76eb3 100 0 0 10 0
";

    /// `/proc/net/tcp6` with a listener on [::1]:8500 (inode 4848).
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:2134 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4848 1 00000000b907982b 100 0 0 10 0
";

    #[test]
    fn given_a_stat_line_whose_name_holds_a_paren_when_parsed_then_utime_plus_stime() {
        assert_eq!(cpu_ticks(STAT).unwrap(), 1234 + 56);
    }

    #[test]
    fn given_a_truncated_stat_line_when_parsed_then_the_missing_field_is_named() {
        let err = cpu_ticks("4242 (ace) S 1 4242").unwrap_err().to_string();
        assert!(err.contains("utime (field 14)"), "{err}");
        let err = cpu_ticks("4242 ace S").unwrap_err().to_string();
        assert!(err.contains("without `)`"), "{err}");
    }

    #[test]
    fn given_a_status_file_when_parsed_then_the_peak_is_vm_hwm_in_kib() {
        assert_eq!(peak_rss_kib(STATUS).unwrap(), 48_812);
        let err = peak_rss_kib("Name:\tx\nVmRSS:\t1 kB\n").unwrap_err();
        assert!(err.to_string().contains("VmHWM"), "{err}");
    }

    #[test]
    fn given_tcp_tables_when_a_port_is_looked_up_then_only_its_listening_sockets_count() {
        assert_eq!(
            listening_in(TCP, 8500),
            vec![5959],
            "the connection is not a listener"
        );
        assert_eq!(listening_in(TCP6, 8500), vec![4848]);
        assert_eq!(listening_in(TCP, 2024), vec![297]);
        assert!(listening_in(TCP, 4222).is_empty());
    }

    #[test]
    fn given_hosts_when_asked_whether_local_then_only_loopback_unspecified_and_localhost_are() {
        for local in ["127.0.0.1", "localhost", "[::1]", "0.0.0.0", "::"] {
            assert!(is_local(local), "{local}");
        }
        for remote in ["10.0.0.5", "comms.example", "[2001:db8::1]"] {
            assert!(!is_local(remote), "{remote}");
        }
    }

    #[test]
    fn given_a_socket_this_test_listens_on_when_located_by_port_then_it_is_this_process() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (pid, found_by) = locate(None, "--server-pid", "127.0.0.1", port).unwrap();
        assert_eq!(pid, std::process::id());
        assert_eq!(found_by, format!("port {port}"));
        drop(listener);
        let err = locate(None, "--server-pid", "127.0.0.1", port).unwrap_err();
        assert!(err.to_string().contains("no socket listens"), "{err}");
    }

    #[test]
    fn given_a_remote_host_or_a_dead_pid_when_located_then_the_reason_is_said() {
        let err = locate(None, "--nats-pid", "comms.example", 4222).unwrap_err();
        assert!(err.to_string().contains("give --nats-pid"), "{err}");
        let err = locate(Some(u32::MAX), "--server-pid", "127.0.0.1", 1).unwrap_err();
        assert!(err.to_string().contains("is process"), "{err:#}");
    }

    #[test]
    fn given_this_process_when_probed_then_cpu_and_peak_memory_are_measured() {
        let probe = Probe::start(std::process::id(), "test".into()).unwrap();
        let spin = std::time::Instant::now();
        let mut x = 0u64;
        while spin.elapsed() < std::time::Duration::from_millis(60) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let cost = probe.finish(1_000).unwrap();
        assert!(cost.cpu_seconds > 0.0, "{cost:?}");
        assert!((cost.cpu_us_per_msg - cost.cpu_seconds * 1e3).abs() < 1e-9);
        assert!(cost.peak_rss_kib > 0, "{cost:?}");
    }
}
