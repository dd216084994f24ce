//! `cargo xtask bench`: the same workloads against klue, a bare axum baseline, klue-microservice
//! (the Python original) and Connexion 3, in one invocation on one machine, reported as ratios
//! (each the median over the rounds of the two targets' req/s in the same round).
//!
//! Each target is started once on a free 127.0.0.1 port and kept running; for every workload the
//! targets are alternated over several rounds of wrk with fixed threads, connections and duration.
//! CPU time and memory come from `/proc` for the server's whole process tree. Cold start (spawn to
//! the first 200 on `/ping`) is measured on separate short-lived processes. Results go to
//! `<target>/bench/results.{json,md}` and `docs/benchmarks.md` (between its result markers).
//! It is not a load test of a deployment: everything runs on loopback, on the same cores as wrk.

mod http;
mod proc;
mod report;
mod target;
mod wrk;

use crate::util;
use anyhow::{Context, Result, bail};
use std::process::ExitCode;
use std::time::Duration;
use target::{Kind, Prepared, Server};

/// Options of `cargo xtask bench`. The defaults finish in about 7 minutes on 2 cores.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seconds of load per wrk run.
    #[arg(long, default_value_t = 4)]
    duration: u64,
    /// Rounds per workload; targets are alternated within each round. Five, because a
    /// 4-second run on a shared 2-core machine can be 20 % off its neighbours.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// wrk connections (kept open; the Python original closes after each answer).
    #[arg(long, default_value_t = 32)]
    connections: u32,
    /// wrk threads.
    #[arg(long, default_value_t = 2)]
    threads: u32,
    /// Targets to run, comma-separated: klue, baseline, klue-microservice (or anchor), connexion.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Workloads to run, comma-separated: ping, hello, list, create.
    #[arg(long, value_delimiter = ',')]
    workloads: Vec<String>,
    /// Cold starts per target (the median is reported).
    #[arg(long, default_value_t = 5)]
    cold_starts: usize,
    /// Do not rebuild the release binaries (use what is in the target dir).
    #[arg(long)]
    no_build: bool,
    /// Do not rewrite docs/benchmarks.md.
    #[arg(long)]
    no_docs: bool,
}

/// One workload: a request shape sent by wrk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    Ping,
    Hello,
    List,
    Create,
}

/// The body POSTed by the create workload (and the pre-population).
const ITEM_BODY: &str = r#"{"name":"widget","count":3,"tags":["a","b"]}"#;

impl Workload {
    /// In run order: reads first, so that the store only grows in the last workload.
    const ALL: [Workload; 4] = [
        Workload::Ping,
        Workload::Hello,
        Workload::List,
        Workload::Create,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Ping => "ping",
            Workload::Hello => "hello",
            Workload::List => "list",
            Workload::Create => "create",
        }
    }

    pub fn request(self) -> &'static str {
        match self {
            Workload::Ping => "GET /ping",
            Workload::Hello => "GET /v1/hello/{name}",
            Workload::List => "GET /v1/items?limit=20",
            Workload::Create => "POST /v1/items (JWT)",
        }
    }

    fn parse(s: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == s.trim())
    }

    fn path(self) -> &'static str {
        match self {
            Workload::Ping => "/ping",
            Workload::Hello => "/v1/hello/bob",
            Workload::List => "/v1/items?limit=20",
            Workload::Create => "/v1/items",
        }
    }

    fn method(self) -> &'static str {
        match self {
            Workload::Create => "POST",
            _ => "GET",
        }
    }

    fn headers(self, token: &str) -> Vec<(&'static str, String)> {
        match self {
            Workload::Create => vec![
                ("Content-Type", "application/json".into()),
                ("Authorization", format!("Bearer {token}")),
            ],
            _ => vec![],
        }
    }

    fn body(self) -> Option<&'static str> {
        match self {
            Workload::Create => Some(ITEM_BODY),
            _ => None,
        }
    }
}

/// A long-running target and what was measured on it.
struct Live {
    prepared: Prepared,
    server: Server,
    result: report::TargetResult,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let kinds = selected_targets(&args.only)?;
    let workloads = selected_workloads(&args.workloads)?;
    if args.rounds == 0 || args.duration == 0 || args.connections == 0 || args.threads == 0 {
        bail!("--rounds, --duration, --connections and --threads must be positive");
    }
    let root = util::workspace_root();
    let target_dir = util::target_dir();
    let out_dir = target_dir.join("bench");
    std::fs::create_dir_all(out_dir.join("logs"))?;
    std::fs::create_dir_all(out_dir.join("lua"))?;
    for kind in Kind::ALL {
        // Logs of this run only.
        let _ = std::fs::remove_file(out_dir.join("logs").join(format!("{}.log", kind.name())));
    }

    let wrk_version = wrk::ensure_installed()?;
    let load = wrk::Load {
        threads: args.threads,
        connections: args.connections,
        duration_s: args.duration,
    };
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());

    // Build the Rust targets in release.
    let packages: Vec<&str> = kinds
        .iter()
        .filter_map(|k| match k {
            Kind::Klue => Some("service"),
            Kind::Baseline => Some("bench-baseline"),
            _ => None,
        })
        .collect();
    if !packages.is_empty() && !args.no_build {
        let mut cargo = util::cargo();
        cargo.current_dir(&root).args(["build", "--release"]);
        for p in &packages {
            cargo.args(["-p", p]);
        }
        util::run(&mut cargo).context("building the release binaries")?;
    }

    let klue_token = mint_token()?;
    let setup = target::Setup {
        root: &root,
        target_dir: &target_dir,
        out_dir: &out_dir,
        workers,
        klue_token: &klue_token,
    };
    let mut notes = Vec::new();
    let mut prepared = Vec::new();
    for kind in &kinds {
        let p = match kind {
            Kind::Klue => Ok(Prepared::klue(&setup)),
            Kind::Baseline => Ok(Prepared::baseline(&setup)),
            Kind::Anchor => Prepared::anchor(&setup),
            Kind::Connexion => Prepared::connexion(&setup),
        };
        // A Python peer whose venv cannot be made (no python3.11, no PyPI) is left out of the
        // run with a note rather than stopping it.
        match p {
            Ok(p) => prepared.push(p),
            Err(error) => {
                eprintln!("note: {} skipped: {error:#}", kind.name());
                notes.push(format!("{} skipped: {error:#}", kind.name()));
            }
        }
    }
    if prepared.is_empty() {
        bail!("no target could be prepared");
    }
    let loadavg_before = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();

    // Cold starts, alternating targets; each process is stopped before the next starts.
    let mut cold: Vec<Vec<f64>> = vec![Vec::new(); prepared.len()];
    for _ in 0..args.cold_starts {
        for (i, p) in prepared.iter().enumerate() {
            let (mut server, took) = p.start(Duration::from_secs(60))?;
            server.stop();
            cold[i].push(took.as_secs_f64() * 1000.0);
        }
    }
    eprintln!("cold starts done");

    // The long-running instances.
    let ticks = proc::clock_ticks();
    let mut live = Vec::new();
    for (p, cold_ms) in prepared.into_iter().zip(cold) {
        let (server, _) = p.start(Duration::from_secs(60))?;
        let result = report::TargetResult::new(p.kind, cold_ms);
        live.push(Live {
            prepared: p,
            server,
            result,
        });
    }
    std::thread::sleep(Duration::from_secs(1));
    for l in &mut live {
        l.result.idle_rss_mib = proc::rss_mib(l.server.pid());
    }
    // Some items for the list workload (each Python worker has its own store: post plenty).
    if workloads.contains(&Workload::List) {
        for l in &live {
            populate(l, 100)?;
        }
    }

    for workload in &workloads {
        if *workload == Workload::Create {
            for l in &mut live {
                l.result.peak_rss_reads_mib = Some(proc::peak_rss_mib(l.server.pid()));
            }
        }
        let mut active = Vec::new();
        for (i, l) in live.iter_mut().enumerate() {
            let script = out_dir.join("lua").join(format!(
                "{}-{}.lua",
                workload.name(),
                l.server.kind.name()
            ));
            let headers = workload.headers(&l.prepared.token);
            std::fs::write(
                &script,
                wrk::script(workload.method(), &headers, workload.body()),
            )?;
            let header_refs: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let answer = http::request(
                l.server.port,
                workload.method(),
                workload.path(),
                &header_refs,
                workload.body(),
                Duration::from_secs(10),
            );
            match answer {
                Some(a) if (200..300).contains(&a.status) => active.push((i, script)),
                other => {
                    let seen = other.map_or("no answer".to_string(), |a| {
                        format!(
                            "{} {}",
                            a.status,
                            a.body.chars().take(200).collect::<String>()
                        )
                    });
                    let note = format!(
                        "{} skipped on {}: smoke request answered {seen}",
                        l.server.kind.name(),
                        workload.request()
                    );
                    eprintln!("note: {note}");
                    notes.push(note);
                }
            }
        }
        // Each Rust target right after a Python one, so that klue and the baseline meet the
        // same conditions (in the list's order klue always came right after Connexion's worker
        // processes, and the baseline right after klue).
        active.sort_by_key(|(i, _)| match live[*i].server.kind {
            Kind::Klue => 0,
            Kind::Anchor => 1,
            Kind::Baseline => 2,
            Kind::Connexion => 3,
        });
        for round in 0..args.rounds {
            // Rotate the order each round, so that no target always goes first.
            for k in 0..active.len() {
                let (i, script) = &active[(k + round) % active.len()];
                let l = &mut live[*i];
                let url = format!("http://127.0.0.1:{}{}", l.server.port, workload.path());
                let cpu_before = proc::cpu_seconds(l.server.pid(), ticks);
                let run = wrk::run(load, script, &url)?;
                let cpu = proc::cpu_seconds(l.server.pid(), ticks) - cpu_before;
                eprintln!(
                    "{:<8} round {}/{} {:<18} {:>10.0} req/s  p99 {:>8.2} ms  errors {}",
                    workload.name(),
                    round + 1,
                    args.rounds,
                    l.server.kind.name(),
                    run.req_per_s(),
                    run.p99_us / 1000.0,
                    run.errors()
                );
                l.result.record(*workload, run, cpu);
            }
        }
    }
    for l in &mut live {
        l.result.peak_rss_mib = proc::peak_rss_mib(l.server.pid());
    }
    let results: Vec<report::TargetResult> = live
        .into_iter()
        .map(|mut l| {
            l.server.stop();
            l.result
        })
        .collect();

    let command = std::iter::once("cargo xtask".to_string())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    let report = report::Report::new(
        command,
        report::Machine::detect(wrk_version, loadavg_before),
        load,
        args.rounds,
        &workloads,
        results,
        notes,
    );
    let markdown = report.markdown();
    std::fs::write(
        out_dir.join("results.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    std::fs::write(out_dir.join("results.md"), &markdown)?;
    println!("{markdown}");
    eprintln!("wrote {}", out_dir.join("results.md").display());
    if !args.no_docs {
        let docs = root.join("docs").join("benchmarks.md");
        report::update_docs(&docs, &markdown)?;
        eprintln!("updated {}", docs.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn selected_targets(only: &[String]) -> Result<Vec<Kind>> {
    if only.is_empty() {
        return Ok(Kind::ALL.to_vec());
    }
    let mut kinds = Vec::new();
    for name in only {
        let Some(kind) = Kind::parse(name) else {
            bail!(
                "unknown target {name:?}: expected klue, baseline, klue-microservice or connexion"
            );
        };
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    // Keep the canonical order, so that tables read the same way.
    Ok(Kind::ALL
        .into_iter()
        .filter(|k| kinds.contains(k))
        .collect())
}

fn selected_workloads(names: &[String]) -> Result<Vec<Workload>> {
    if names.is_empty() {
        return Ok(Workload::ALL.to_vec());
    }
    let mut wanted = Vec::new();
    for name in names {
        let Some(w) = Workload::parse(name) else {
            bail!("unknown workload {name:?}: expected ping, hello, list or create");
        };
        wanted.push(w);
    }
    Ok(Workload::ALL
        .into_iter()
        .filter(|w| wanted.contains(w))
        .collect())
}

/// POSTs `n` items, each on its own connection (so they spread over a server's workers).
fn populate(l: &Live, n: usize) -> Result<()> {
    let auth = format!("Bearer {}", l.prepared.token);
    let headers = [
        ("Content-Type", "application/json"),
        ("Authorization", auth.as_str()),
    ];
    for _ in 0..n {
        let answer = http::request(
            l.server.port,
            "POST",
            "/v1/items",
            &headers,
            Some(ITEM_BODY),
            Duration::from_secs(10),
        );
        match answer {
            Some(a) if (200..300).contains(&a.status) => {}
            Some(a) => bail!(
                "{}: POST /v1/items answered {} {}",
                l.server.kind.name(),
                a.status,
                a.body.chars().take(300).collect::<String>()
            ),
            None => bail!("{}: POST /v1/items got no answer", l.server.kind.name()),
        }
    }
    Ok(())
}

/// An HS256 token for klue and Connexion, made by klue's own `mint_token`, valid for a day.
fn mint_token() -> Result<String> {
    klue::auth::mint_token(
        target::JWT_SECRET.as_bytes(),
        target::JWT_AUDIENCE,
        Some("klue-bench"),
        "bench",
        Duration::from_secs(86_400),
        serde_json::Map::new(),
    )
    .context("minting the bench JWT")
}
