//! Which worker thread serves a new connection.
//!
//! Connections from the same client CPU go to the same worker, as long as that keeps the
//! workers' loads within [`SLACK`] connections of each other; otherwise the least-loaded
//! worker takes it.
//!
//! Why: a client thread (a load generator's, a proxy's worker process, a pooled HTTP client)
//! opens its connections from the CPU it runs on, and the kernel records that CPU on the
//! accepted socket (`SO_INCOMING_CPU`). When all of one client thread's connections are
//! served by one worker, that worker and that client thread talk only to each other, and the
//! scheduler can keep the pair on one core: answers wake a thread on the same core, the
//! sockets' memory stays in that core's cache. Handed out in turn, every worker served
//! every client thread, so the two sides of a connection were on different cores half the
//! time. On 2 cores under `wrk -t2 -c32`, paired runs put this placement about 2 % ahead on
//! `GET /ping` and 1-8 % on `GET /v1/hello` (docs/benchmarks.md, "What made klue faster").
//!
//! The CPU is only a grouping key: workers are not pinned to CPUs. Where the kernel does not
//! say (another OS, a socket that never saw a packet), the least-loaded worker is taken,
//! in turn among equals.

/// How many more connections than the least-loaded worker a worker may take to keep a
/// client's connections together. Small: it also bounds the imbalance when all connections
/// come from one CPU (a single-threaded client, or one that opened them all before its
/// threads spread out).
const SLACK: usize = 3;

/// The CPU that received the connection's first packets, when the kernel knows it.
pub(crate) fn client_cpu(stream: &std::net::TcpStream) -> Option<usize> {
    #[cfg(target_os = "linux")]
    {
        // An unknown CPU is -1, which reads as a huge number here.
        socket2::SockRef::from(stream)
            .cpu_affinity()
            .ok()
            .filter(|cpu| u32::try_from(*cpu).is_ok())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = stream;
        None
    }
}

/// The worker for a new connection: the one of the client's CPU unless it would get more than
/// [`SLACK`] ahead of the least-loaded, else the least-loaded, searched from `turn` so that
/// equals take turns. `open` holds each worker's open connections; it must not be empty.
pub(crate) fn pick(client_cpu: Option<usize>, open: &[usize], turn: usize) -> usize {
    let workers = open.len().max(1);
    let least = open.iter().copied().min().unwrap_or(0);
    if let Some(cpu) = client_cpu {
        let preferred = cpu % workers;
        if open.get(preferred).is_some_and(|&n| n < least + SLACK) {
            return preferred;
        }
    }
    (0..workers)
        .map(|k| (turn + k) % workers)
        .find(|&i| open.get(i).is_some_and(|&n| n == least))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Places a sequence of client CPUs on `workers` workers; returns (connections placed off
    /// their CPU's worker, open connections per worker).
    fn place(cpus: &[usize], workers: usize) -> (usize, Vec<usize>) {
        let mut open = vec![0; workers];
        let mut off = 0;
        for (turn, &cpu) in cpus.iter().enumerate() {
            let worker = pick(Some(cpu), &open, turn);
            open[worker] += 1;
            off += usize::from(worker != cpu % workers);
        }
        (off, open)
    }

    fn cpus(pattern: &str) -> Vec<usize> {
        pattern.bytes().map(|b| usize::from(b - b'0')).collect()
    }

    #[test]
    fn interleaved_clients_keep_their_connections_together() {
        // Two client threads on two CPUs opening 16 connections each (as wrk -t2 -c32 does).
        let (off, open) = place(&cpus("01010101010101010101010101010101"), 2);
        assert_eq!((off, open), (0, vec![16, 16]));
        // With short bursts from one CPU, as seen in practice.
        let (off, open) = place(&cpus("11111010101010101010101010100000"), 2);
        assert!(off <= 2, "{off} placed away from their client's CPU");
        assert!(open[0].abs_diff(open[1]) <= SLACK, "{open:?}");
    }

    #[test]
    fn one_cpu_for_everything_still_spreads_the_load() {
        let (_, open) = place(&[0; 32], 2);
        assert!(open[0].abs_diff(open[1]) <= SLACK, "{open:?}");
        let (_, open) = place(&[5; 40], 4);
        let (min, max) = (open.iter().min(), open.iter().max());
        assert!(
            max.zip(min).is_some_and(|(max, min)| max - min <= SLACK),
            "{open:?}"
        );
    }

    #[test]
    fn without_a_cpu_the_least_loaded_take_turns() {
        assert_eq!(pick(None, &[0, 0, 0], 0), 0);
        assert_eq!(pick(None, &[0, 0, 0], 1), 1);
        assert_eq!(pick(None, &[1, 0, 0], 0), 1);
        assert_eq!(pick(None, &[1, 1, 0], 0), 2);
        assert_eq!(pick(None, &[2, 1, 1], 5), 2);
    }

    #[test]
    fn more_cpus_than_workers_share_workers() {
        // CPUs 0-3 on 2 workers: CPU 2 groups with 0, CPU 3 with 1.
        assert_eq!(pick(Some(2), &[0, 0], 1), 0);
        assert_eq!(pick(Some(3), &[0, 0], 0), 1);
    }

    #[test]
    fn connections_closing_let_the_preferred_worker_take_more() {
        assert_eq!(pick(Some(0), &[5, 2], 0), 1);
        assert_eq!(pick(Some(0), &[4, 2], 0), 0);
    }

    #[test]
    fn a_real_socket_reports_a_cpu_on_linux() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").ok();
        let addr = listener.as_ref().and_then(|l| l.local_addr().ok());
        let client = addr.and_then(|a| std::net::TcpStream::connect(a).ok());
        let accepted = listener.and_then(|l| l.accept().ok()).map(|(s, _)| s);
        assert!(client.is_some());
        let cpu = accepted.as_ref().and_then(client_cpu);
        if cfg!(target_os = "linux") {
            // The CPU ids of a machine can exceed its count (offline CPUs), not by much.
            assert!(cpu.is_some_and(|c| c < 1024), "{cpu:?}");
        } else {
            assert_eq!(cpu, None);
        }
    }
}
