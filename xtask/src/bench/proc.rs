//! Process-tree accounting from `/proc`: CPU time (utime + stime) and memory (VmRSS, VmHWM)
//! summed over a server process and all its descendants (gunicorn or uvicorn workers).

use std::collections::HashMap;

/// The pid and its descendants, found by walking `/proc/*/stat` parent links.
pub fn tree(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(stat) = read_stat(pid) {
                children.entry(stat.ppid).or_default().push(pid);
            }
        }
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        if let Some(kids) = children.get(&out[i]) {
            out.extend(kids.iter().copied().filter(|k| *k != root));
        }
        i += 1;
    }
    out
}

/// The fields of `/proc/<pid>/stat` we use.
struct Stat {
    ppid: u32,
    /// utime + stime, in clock ticks.
    cpu_ticks: u64,
}

fn read_stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `comm` (field 2) is in parentheses and may hold spaces or parentheses: split after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): ppid is field 4, utime 14, stime 15.
    let ppid = fields.get(1)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Stat {
        ppid,
        cpu_ticks: utime + stime,
    })
}

/// Clock ticks per second (`getconf CLK_TCK`), 100 when it cannot be asked.
pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// CPU seconds (user + system) used so far by the tree under `root`.
pub fn cpu_seconds(root: u32, ticks_per_second: f64) -> f64 {
    let ticks: u64 = tree(root)
        .into_iter()
        .filter_map(read_stat)
        .map(|s| s.cpu_ticks)
        .sum();
    ticks as f64 / ticks_per_second
}

/// A `Vm*:` field of `/proc/<pid>/status`, in KiB.
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Resident memory now, summed over the tree, in MiB.
pub fn rss_mib(root: u32) -> f64 {
    sum_kib(root, "VmRSS:") as f64 / 1024.0
}

/// Peak resident memory (VmHWM), summed over the tree, in MiB.
pub fn peak_rss_mib(root: u32) -> f64 {
    sum_kib(root, "VmHWM:") as f64 / 1024.0
}

fn sum_kib(root: u32, field: &str) -> u64 {
    tree(root)
        .into_iter()
        .filter_map(|p| status_kib(p, field))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_accounted() {
        let me = std::process::id();
        assert!(tree(me).contains(&me));
        assert!(rss_mib(me) > 0.0);
        assert!(peak_rss_mib(me) > 0.0);
        // The tree sums race with other tests' children starting and exiting; compare the
        // process itself, read once each.
        let rss = status_kib(me, "VmRSS:").unwrap_or(0);
        let peak = status_kib(me, "VmHWM:").unwrap_or(0);
        assert!(rss > 0 && peak >= rss, "VmHWM {peak} KiB < VmRSS {rss} KiB");
        assert!(cpu_seconds(me, clock_ticks()) >= 0.0);
    }
}
