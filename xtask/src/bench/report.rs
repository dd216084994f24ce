//! Results of a bench run: medians, ratios against klue, the performance targets, and the Markdown
//! and JSON renderings (`<target>/bench/results.*`, `docs/benchmarks.md`).

use super::Workload;
use super::target::Kind;
use super::wrk::{Load, Run};
use anyhow::{Context, Result};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

/// The machine the run happened on.
#[derive(Debug, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub rustc: String,
    pub wrk: String,
    /// `/proc/loadavg` (1, 5, 15 min) before the first measurement: other work on the machine.
    pub loadavg_before: String,
}

impl Machine {
    pub fn detect(wrk: String, loadavg_before: String) -> Machine {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        Machine {
            nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            kernel,
            rustc: command_line("rustc", &["-V"]),
            wrk,
            loadavg_before,
        }
    }
}

fn command_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// One workload on one target: every round, and the summary.
#[derive(Debug, Serialize)]
pub struct WorkloadResult {
    pub workload: &'static str,
    pub request: &'static str,
    pub runs: Vec<Run>,
    /// Server CPU seconds (whole process tree) during each run.
    pub cpu_s: Vec<f64>,
    pub req_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Total server CPU time over total requests, in microseconds.
    pub cpu_us_per_req: f64,
    pub errors: u64,
}

/// Everything measured on one target.
#[derive(Debug, Serialize)]
pub struct TargetResult {
    pub target: &'static str,
    pub what: &'static str,
    #[serde(skip)]
    pub kind: Option<Kind>,
    pub cold_start_ms: Vec<f64>,
    pub cold_start_median_ms: f64,
    /// RSS of the process tree after start and 1 s idle.
    pub idle_rss_mib: f64,
    /// VmHWM summed over the tree after the read workloads (before the store grows).
    pub peak_rss_reads_mib: Option<f64>,
    /// VmHWM summed over the tree at the end (includes the items created by the POST workload).
    pub peak_rss_mib: f64,
    pub workloads: Vec<WorkloadResult>,
}

impl TargetResult {
    pub fn new(kind: Kind, cold_start_ms: Vec<f64>) -> TargetResult {
        TargetResult {
            target: kind.name(),
            what: kind.describe(),
            kind: Some(kind),
            cold_start_median_ms: median(&cold_start_ms),
            cold_start_ms,
            idle_rss_mib: 0.0,
            peak_rss_reads_mib: None,
            peak_rss_mib: 0.0,
            workloads: Vec::new(),
        }
    }

    /// Adds one wrk run and the server CPU seconds it took, and refreshes the summary.
    pub fn record(&mut self, workload: Workload, run: Run, cpu_s: f64) {
        let index = match self
            .workloads
            .iter()
            .position(|w| w.workload == workload.name())
        {
            Some(i) => i,
            None => {
                self.workloads.push(WorkloadResult {
                    workload: workload.name(),
                    request: workload.request(),
                    runs: Vec::new(),
                    cpu_s: Vec::new(),
                    req_per_s: 0.0,
                    p50_ms: 0.0,
                    p99_ms: 0.0,
                    cpu_us_per_req: 0.0,
                    errors: 0,
                });
                self.workloads.len() - 1
            }
        };
        let w = &mut self.workloads[index];
        w.runs.push(run);
        w.cpu_s.push(cpu_s);
        let rps: Vec<f64> = w.runs.iter().map(Run::req_per_s).collect();
        let p50: Vec<f64> = w.runs.iter().map(|r| r.p50_us / 1000.0).collect();
        let p99: Vec<f64> = w.runs.iter().map(|r| r.p99_us / 1000.0).collect();
        let requests: u64 = w.runs.iter().map(|r| r.requests).sum();
        w.req_per_s = median(&rps);
        w.p50_ms = median(&p50);
        w.p99_ms = median(&p99);
        w.cpu_us_per_req = if requests > 0 {
            w.cpu_s.iter().sum::<f64>() / requests as f64 * 1e6
        } else {
            0.0
        };
        w.errors = w.runs.iter().map(Run::errors).sum();
    }

    fn workload(&self, name: &str) -> Option<&WorkloadResult> {
        self.workloads.iter().find(|w| w.workload == name)
    }
}

/// One of the performance targets (docs/benchmarks.md, "Targets"), checked on this run.
#[derive(Debug, Serialize)]
pub struct Check {
    pub what: String,
    pub measured: String,
    pub bar: String,
    pub met: bool,
}

/// A whole run.
#[derive(Debug, Serialize)]
pub struct Report {
    pub date: String,
    pub command: String,
    pub machine: Machine,
    pub load: Load,
    pub rounds: usize,
    pub workloads: Vec<&'static str>,
    pub targets: Vec<TargetResult>,
    pub checks: Vec<Check>,
    pub notes: Vec<String>,
}

impl Report {
    pub fn new(
        command: String,
        machine: Machine,
        load: Load,
        rounds: usize,
        workloads: &[Workload],
        targets: Vec<TargetResult>,
        notes: Vec<String>,
    ) -> Report {
        let mut report = Report {
            date: command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
            command,
            machine,
            load,
            rounds,
            workloads: workloads.iter().map(|w| w.name()).collect(),
            targets,
            checks: Vec::new(),
            notes,
        };
        report.checks = report.compute_checks();
        report
    }

    fn target(&self, kind: Kind) -> Option<&TargetResult> {
        self.targets.iter().find(|t| t.kind == Some(kind))
    }

    /// klue's req/s over `peer`'s on `workload`: the median over the rounds of the two
    /// runs' ratio in each round. The two runs of a round are seconds apart; the ratio of the
    /// two medians can compare runs from different minutes, and the load on a shared machine
    /// changes from minute to minute (docs/benchmarks.md, "What is measured, and how").
    fn ratio(&self, workload: &str, peer: Kind) -> Option<f64> {
        let ratios = self.round_ratios(workload, peer);
        (!ratios.is_empty()).then(|| median(&ratios))
    }

    /// klue's req/s over `peer`'s in each round of `workload` (see [`round_ratios`]).
    fn round_ratios(&self, workload: &str, peer: Kind) -> Vec<f64> {
        let runs = |kind| {
            self.target(kind)
                .and_then(|t| t.workload(workload))
                .map_or(&[][..], |w| &w.runs[..])
        };
        round_ratios(runs(Kind::Klue), runs(peer))
    }

    /// `peer`'s CPU per request over klue's on `workload` (how many times more CPU it spends).
    fn cpu_ratio(&self, workload: &str, peer: Kind) -> Option<f64> {
        let klue = self.target(Kind::Klue)?.workload(workload)?.cpu_us_per_req;
        let other = self.target(peer)?.workload(workload)?.cpu_us_per_req;
        (klue > 0.0).then(|| other / klue)
    }

    fn compute_checks(&self) -> Vec<Check> {
        let mut checks = Vec::new();
        for (workload, bar) in [("ping", 0.9), ("hello", 0.9), ("create", 0.8)] {
            let rounds = self.round_ratios(workload, Kind::Baseline);
            if !rounds.is_empty() {
                // The spread shows how much one run on this machine can be trusted.
                let r = median(&rounds);
                let low = rounds.iter().copied().fold(f64::INFINITY, f64::min);
                let high = rounds.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                checks.push(Check {
                    what: format!("klue / baseline req/s, {workload}"),
                    measured: format!("{r:.2}x (rounds {low:.2}-{high:.2})"),
                    bar: format!(">= {bar}x"),
                    met: r >= bar,
                });
            }
        }
        for workload in &self.workloads {
            if let Some(r) = self.ratio(workload, Kind::Anchor) {
                checks.push(Check {
                    what: format!("klue / klue-microservice req/s, {workload}"),
                    measured: format!("{r:.1}x"),
                    bar: ">= 25x".into(),
                    met: r >= 25.0,
                });
            }
        }
        if let Some(klue) = self.target(Kind::Klue) {
            if !klue.cold_start_ms.is_empty() {
                checks.push(Check {
                    what: "klue cold start (median)".into(),
                    measured: format!("{:.1} ms", klue.cold_start_median_ms),
                    bar: "<= 50 ms".into(),
                    met: klue.cold_start_median_ms <= 50.0,
                });
            }
            checks.push(Check {
                what: "klue idle RSS".into(),
                measured: format!("{:.1} MiB", klue.idle_rss_mib),
                bar: "<= 15 MB".into(),
                met: klue.idle_rss_mib * 1.048_576 <= 15.0,
            });
        }
        checks
    }

    /// The results as Markdown (what is printed and put into docs/benchmarks.md).
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let m = &self.machine;
        let _ = writeln!(md, "Run on {} with `{}`.\n", self.date, self.command);
        let _ = writeln!(
            md,
            "Machine: nproc {}, CPU {}, Linux {}, {}, {}; load average before the run: {}.\n",
            m.nproc, m.cpu_model, m.kernel, m.rustc, m.wrk, m.loadavg_before
        );
        let _ = writeln!(
            md,
            "Load: wrk -t{} -c{} -d{}s per run, {} round(s) per workload, targets alternated; \
             all on 127.0.0.1, wrk on the same cores as the servers.\n",
            self.load.threads, self.load.connections, self.load.duration_s, self.rounds
        );

        md.push_str("### Throughput, latency and CPU per request\n\n");
        md.push_str(
            "| workload | target | req/s (median) | p50 ms | p99 ms | CPU µs/req | errors |\n",
        );
        md.push_str("|---|---|---:|---:|---:|---:|---:|\n");
        for workload in &self.workloads {
            for t in &self.targets {
                if let Some(w) = t.workload(workload) {
                    let _ = writeln!(
                        md,
                        "| {} | {} | {:.0} | {:.2} | {:.2} | {:.1} | {} |",
                        w.request,
                        t.target,
                        w.req_per_s,
                        w.p50_ms,
                        w.p99_ms,
                        w.cpu_us_per_req,
                        w.errors
                    );
                }
            }
        }

        let peers: Vec<Kind> = [Kind::Baseline, Kind::Anchor, Kind::Connexion]
            .into_iter()
            .filter(|k| self.target(*k).is_some())
            .collect();
        if self.target(Kind::Klue).is_some() && !peers.is_empty() {
            md.push_str("\n### Ratios (same run)\n\n");
            md.push_str("req/s: klue ÷ peer (higher is better for klue), the median over the rounds of the ratio within each round. CPU: peer's CPU per request ÷ klue's, over all rounds.\n\n");
            md.push_str("| workload |");
            for p in &peers {
                let _ = write!(md, " req/s klue ÷ {} | CPU {} ÷ klue |", p.name(), p.name());
            }
            md.push_str("\n|---|");
            for _ in &peers {
                md.push_str("---:|---:|");
            }
            md.push('\n');
            for workload in &self.workloads {
                let _ = write!(md, "| {workload} |");
                for p in &peers {
                    let r = self
                        .ratio(workload, *p)
                        .map_or("-".into(), |r| format!("{r:.2}x"));
                    let c = self
                        .cpu_ratio(workload, *p)
                        .map_or("-".into(), |r| format!("{r:.2}x"));
                    let _ = write!(md, " {r} | {c} |");
                }
                md.push('\n');
            }
        }

        md.push_str("\n### Start-up and memory\n\n");
        md.push_str("RSS is summed over the server's process tree (master and workers).\n\n");
        md.push_str("| target | what | cold start ms (median) | idle RSS MiB | peak RSS MiB, reads | peak RSS MiB, end |\n");
        md.push_str("|---|---|---:|---:|---:|---:|\n");
        for t in &self.targets {
            let _ = writeln!(
                md,
                "| {} | {} | {:.1} | {:.1} | {} | {:.1} |",
                t.target,
                t.what,
                t.cold_start_median_ms,
                t.idle_rss_mib,
                t.peak_rss_reads_mib
                    .map_or("-".into(), |v| format!("{v:.1}")),
                t.peak_rss_mib
            );
        }

        if !self.checks.is_empty() {
            md.push_str(
                "\n### Targets\n\n| target | measured | bar | met |\n|---|---:|---:|:---:|\n",
            );
            for c in &self.checks {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} |",
                    c.what,
                    c.measured,
                    c.bar,
                    if c.met { "yes" } else { "**no**" }
                );
            }
        }
        if !self.notes.is_empty() {
            md.push_str("\nNotes:\n\n");
            for n in &self.notes {
                let _ = writeln!(md, "- {n}");
            }
        }
        md
    }
}

/// `runs[i]`'s req/s over `peer_runs[i]`'s (both in round order), for each round in which
/// both ran and the peer answered.
fn round_ratios(runs: &[Run], peer_runs: &[Run]) -> Vec<f64> {
    runs.iter()
        .zip(peer_runs)
        .filter_map(|(run, peer)| {
            let peer = peer.req_per_s();
            (peer > 0.0).then(|| run.req_per_s() / peer)
        })
        .collect()
}

/// The median (mean of the two middle values for an even count); 0 for no values.
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

const START: &str = "<!-- bench:results:start -->";
const END: &str = "<!-- bench:results:end -->";

/// Puts `results` between the result markers of `docs/benchmarks.md` (creating the page when it
/// does not exist); the hand-written text around the markers is kept.
pub fn update_docs(path: &Path, results: &str) -> Result<()> {
    let block = format!("{START}\n\n{results}\n{END}");
    let text = match std::fs::read_to_string(path) {
        Ok(old) => match (old.find(START), old.find(END)) {
            (Some(s), Some(e)) if s < e => format!("{}{block}{}", &old[..s], &old[e + END.len()..]),
            _ => format!("{old}\n## Last results\n\n{block}\n"),
        },
        Err(_) => {
            format!("# Benchmarks\n\nRun with `cargo xtask bench`.\n\n## Last results\n\n{block}\n")
        }
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn run(req_per_s: f64) -> Run {
        Run {
            requests: req_per_s as u64,
            duration_us: 1e6,
            ..Run::default()
        }
    }

    #[test]
    fn ratios_pair_the_runs_of_each_round() {
        // The machine got busy during round 3, after the peer's run and before klue's: klue's
        // median comes from the busy rounds and the peer's from the quiet ones, but in every
        // other round klue ran at 0.9x the peer.
        let klue: Vec<Run> = [144e3, 141.3e3, 108e3, 108.9e3, 109.8e3].map(run).into();
        let peer: Vec<Run> = [160e3, 157e3, 158e3, 121e3, 122e3].map(run).into();
        let rounds = round_ratios(&klue, &peer);
        assert_eq!(rounds.len(), 5);
        let paired = median(&rounds);
        assert!((paired - 0.9).abs() < 1e-9, "{paired}");
        let of_medians = median(&klue.iter().map(Run::req_per_s).collect::<Vec<_>>())
            / median(&peer.iter().map(Run::req_per_s).collect::<Vec<_>>());
        assert!(of_medians < 0.85, "{of_medians}");
        // A round the peer did not answer in is left out; none at all gives no ratio.
        assert!(round_ratios(&[run(1.0)], &[run(0.0)]).is_empty());
        assert!(round_ratios(&[run(1.0), run(2.0)], &[run(0.0), run(4.0)]) == [0.5]);
        assert!(round_ratios(&[], &[]).is_empty());
    }

    #[test]
    fn the_baseline_targets_show_the_spread_of_the_rounds() {
        let mut klue = TargetResult::new(Kind::Klue, vec![6.0]);
        let mut baseline = TargetResult::new(Kind::Baseline, vec![3.0]);
        for (k, b) in [(88e3, 100e3), (95e3, 100e3), (120e3, 100e3)] {
            klue.record(Workload::Ping, run(k), 0.5);
            baseline.record(Workload::Ping, run(b), 0.5);
        }
        let machine = Machine {
            nproc: 2,
            cpu_model: "test".into(),
            kernel: "test".into(),
            rustc: "test".into(),
            wrk: "test".into(),
            loadavg_before: "0".into(),
        };
        let load = Load {
            threads: 2,
            connections: 32,
            duration_s: 1,
        };
        let report = Report::new(
            "cargo xtask bench".into(),
            machine,
            load,
            3,
            &[Workload::Ping],
            vec![klue, baseline],
            Vec::new(),
        );
        let ping = report
            .checks
            .iter()
            .find(|c| c.what == "klue / baseline req/s, ping")
            .unwrap();
        assert_eq!(ping.measured, "0.95x (rounds 0.88-1.20)");
        assert!(ping.met);
        assert!(report.markdown().contains(
            "| klue / baseline req/s, ping | 0.95x (rounds 0.88-1.20) | >= 0.9x | yes |"
        ));
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn docs_keep_text_around_markers() {
        let dir = std::env::temp_dir().join(format!("klue-bench-docs-{}", std::process::id()));
        let path = dir.join("benchmarks.md");
        update_docs(&path, "first").unwrap();
        let with_notes = std::fs::read_to_string(&path).unwrap() + "\n## Profiling\n\nkept\n";
        std::fs::write(&path, with_notes).unwrap();
        update_docs(&path, "second").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("second") && !text.contains("first") && text.contains("kept"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
