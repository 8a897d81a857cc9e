//! `cargo run -p bench --release -- all`: the same workloads natively, under runc, under
//! runsc (ptrace platform) and under carapace on each of its platforms, interleaved in
//! rounds; a table of medians with ratios, pass/fail lines for the performance targets,
//! and JSON, Markdown and a PNG chart under `target/bench/`.
//!
//! Speed is judged here, never in tests. A runtime that is missing or fails a workload
//! shows `n/a (reason)`; the harness itself only stops for its own problems (no gcc, an
//! unwritable output directory).

#![deny(unsafe_code)]

mod bundle;
mod chart;
mod exec;
mod net;
mod prepare;
mod report;
mod runtime;
mod stats;
mod workloads;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;

use report::{Cell, Results, RuntimeInfo, Settings};
use runtime::{Carapace, Native, OciCli, Runtime};
use workloads::{Measure, Params, Workload, WORKLOADS};

/// Carapace platforms, in the order they appear; the ones not built yet say so.
/// `systrap-nopatch` is systrap with syscall patching off (`--systrap-patch=off`).
const CARAPACE_PLATFORMS: &[&str] = &["ptrace", "systrap", "systrap-nopatch", "kvm"];

#[derive(Parser, Debug)]
#[command(about = "Runs the same workloads natively, under runc, runsc and carapace")]
struct Args {
    /// Workloads to run: `all`, a group (`micro`, `lifecycle`, `apps`) or workload names;
    /// or `net` alone: servers in the sandbox, clients outside (`net.rs`).
    #[arg(default_value = "all")]
    workloads: Vec<String>,
    /// Fewer rounds, shorter measurements, smaller files (about 3 minutes).
    #[arg(long)]
    quick: bool,
    /// Rounds (default 5, or 3 with --quick).
    #[arg(long)]
    rounds: Option<u32>,
    /// Runtimes to compare (repeatable): native, runc, runsc, carapace (every platform) or
    /// carapace-ptrace, carapace-systrap, carapace-systrap-nopatch, carapace-kvm. Default:
    /// all of them.
    #[arg(long = "runtime", value_name = "NAME")]
    runtimes: Vec<String>,
    /// Where results.json, results.md and chart.png go (default: target/bench).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Use this carapace binary instead of building target/release/carapace.
    #[arg(long)]
    carapace: Option<PathBuf>,
    /// List the workloads and exit.
    #[arg(long)]
    list: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    exec::catch_interrupts();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

fn wanted(selection: &[String], name: &str) -> bool {
    selection.is_empty()
        || selection
            .iter()
            .any(|s| s == name || (s == "carapace" && name.starts_with("carapace-")))
}

fn run(args: Args) -> Result<(), String> {
    if args.list {
        for w in WORKLOADS {
            let metrics: Vec<&str> = w.metrics.iter().map(|m| m.id).collect();
            println!(
                "{:<10} {:<20} {}",
                w.group.name(),
                w.name,
                metrics.join(", ")
            );
        }
        return Ok(());
    }
    let started = Instant::now();
    let net_only = args.workloads.iter().any(|w| w == "net");
    let selected = if net_only {
        Vec::new()
    } else {
        workloads::select(&args.workloads)?
    };
    let quick = args.quick;
    let rounds = args.rounds.unwrap_or(if quick { 3 } else { 5 }).max(1);
    let mut params = Params {
        bin: String::new(),
        data: String::new(),
        scratch: String::new(),
        tmp: String::new(),
        target_ms: if quick { 50 } else { 200 },
        mib: if quick { 64 } else { 256 },
        loops: if quick { 200 } else { 1000 },
    };
    let settle = Duration::from_millis(if quick { 500 } else { 1000 });
    // Generous (runsc runs the shell loop in seconds), but a hang costs no more than this.
    let timeout = Duration::from_secs(if quick { 60 } else { 120 });

    let root = workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let out_dir = args.out.clone().unwrap_or_else(|| target.join("bench"));
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    // Servers in the sandbox, clients outside: a run of its own (`net.rs`).
    if net_only {
        let binary = match &args.carapace {
            Some(path) if path.is_file() => Ok(path.clone()),
            Some(path) => Err(format!("no carapace binary at {}", path.display())),
            None => prepare::build_carapace(&root),
        };
        return net::run(binary, quick, &out_dir, &args.runtimes);
    }
    // The programs live on the host's disk, never under /tmp (a tmpfs in every sandbox).
    eprintln!("compiling workloads…");
    let work = prepare::work_dir(&target.join("bench/work"), params.mib)?;
    params.bin = work.bin.display().to_string();
    params.data = work.data.display().to_string();
    params.scratch = work.scratch.display().to_string();

    let mut runtimes: Vec<Box<dyn Runtime>> = Vec::new();
    if wanted(&args.runtimes, "native") {
        runtimes.push(Box::new(Native::new()?));
    }
    let visible = [work.bin.as_path(), work.data.as_path()];
    let writable = [work.scratch.as_path()];
    if wanted(&args.runtimes, "runc") {
        runtimes.push(Box::new(OciCli::new(
            "runc",
            "runc",
            &[],
            &visible,
            &writable,
        )));
    }
    if wanted(&args.runtimes, "runsc") {
        // ptrace and no network: the only modes that work on our machines (ENVIRONMENT.md).
        let global = ["--platform=ptrace", "--network=none"];
        runtimes.push(Box::new(OciCli::new(
            "runsc", "runsc", &global, &visible, &writable,
        )));
    }
    let carapace_platforms: Vec<&str> = CARAPACE_PLATFORMS
        .iter()
        .copied()
        .filter(|p| wanted(&args.runtimes, &format!("carapace-{p}")))
        .collect();
    if !carapace_platforms.is_empty() {
        let binary = match &args.carapace {
            Some(path) if path.is_file() => Ok(path.clone()),
            Some(path) => Err(format!("no carapace binary at {}", path.display())),
            None => prepare::build_carapace(&root),
        };
        for p in carapace_platforms {
            runtimes.push(Box::new(Carapace::new(
                binary.clone(),
                p,
                &visible,
                &writable,
            )));
        }
    }
    if runtimes.is_empty() {
        return Err(format!("no runtime matches {:?}", args.runtimes));
    }

    let mut infos = Vec::new();
    for rt in &runtimes {
        let probe = rt.probe();
        match &probe {
            Ok(()) => eprintln!("{}: ready", rt.name()),
            Err(e) => eprintln!("{}: n/a ({e})", rt.name()),
        }
        infos.push(RuntimeInfo {
            name: rt.name().to_string(),
            available: probe.is_ok(),
            reason: probe.err(),
        });
    }
    let live: Vec<&dyn Runtime> = runtimes
        .iter()
        .zip(&infos)
        .filter(|(_, i)| i.available)
        .map(|(r, _)| r.as_ref())
        .collect();

    let mut results = Results::new();
    'rounds: for round in 0..rounds {
        for w in &selected {
            if exec::interrupted() {
                break 'rounds;
            }
            // Rotate the order each round so no runtime always runs first (or last).
            let n = live.len().max(1);
            for k in 0..live.len() {
                let rt = live[(k + round as usize) % n];
                let failed = w.metrics.iter().any(|m| {
                    results
                        .get(&(m.id.to_string(), rt.name().to_string()))
                        .is_some_and(|c| c.error.is_some())
                });
                if failed || exec::interrupted() {
                    continue; // a failure is final: do not pay for it every round
                }
                let mut p = params.clone();
                p.tmp = rt.tmp_dir();
                let outcome = measure(w, rt, &p, timeout, settle);
                report_progress(round + 1, rounds, w, rt.name(), &outcome);
                match outcome {
                    Ok(values) => {
                        for (id, v) in values {
                            cell(&mut results, id, rt.name()).samples.push(v);
                        }
                    }
                    // A run cut short by ^C says nothing about the runtime.
                    Err(_) if exec::interrupted() => {}
                    Err(e) => {
                        for m in w.metrics {
                            cell(&mut results, m.id, rt.name()).error = Some(e.clone());
                        }
                    }
                }
            }
        }
    }

    if exec::interrupted() {
        eprintln!("interrupted: the table holds the rounds finished so far");
    }
    let rows = report::rows(&selected, &infos, &results, &params);
    let targets = report::targets(&infos, &results);
    let machine = prepare::machine(&root);
    let settings = Settings {
        quick,
        rounds,
        target_ms: params.target_ms,
        io_mib: params.mib,
        sh_loops: params.loops,
        seconds: started.elapsed().as_secs_f64().round(),
    };
    let table = report::text_table(&rows);
    let unavailable = report::unavailable_lines(&infos);
    let target_text = report::target_lines(&targets);
    println!("\n{table}");
    if !unavailable.is_empty() {
        println!("{unavailable}");
    }
    println!("Targets:\n{target_text}");
    let summary_line = format!(
        "{} rounds{}, {} s; {} cores, {}, kernel {}",
        rounds,
        if quick { " (quick)" } else { "" },
        settings.seconds,
        machine.cores,
        machine.cpu,
        machine.kernel
    );
    println!("{summary_line}");

    let markdown = format!(
        "{}\n{}\nTargets:\n\n```\n{target_text}```\n\n{summary_line}\n",
        report::markdown_table(&rows),
        unavailable
            .lines()
            .map(|l| format!("- {l}\n"))
            .collect::<String>()
    );
    let report = report::Report {
        machine,
        settings,
        runtimes: infos,
        results: rows.clone(),
        targets,
    };
    let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    let write = |name: &str, text: &str| {
        let path = out_dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    write("results.json", &json)?;
    write("results.md", &markdown)?;
    let png = out_dir.join("chart.png");
    let title = format!(
        "Carapace vs runc and runsc ({} rounds{})",
        rounds,
        if quick { ", quick" } else { "" }
    );
    match chart::write_png(&rows, &title, &png) {
        Ok(()) => println!(
            "wrote {}/{{results.json,results.md,chart.png}}",
            out_dir.display()
        ),
        Err(e) => println!(
            "wrote {}/{{results.json,results.md}}; no chart: {e}",
            out_dir.display()
        ),
    }
    Ok(())
}

fn cell<'a>(results: &'a mut Results, metric: &str, runtime: &str) -> &'a mut Cell {
    results
        .entry((metric.to_string(), runtime.to_string()))
        .or_default()
}

fn report_progress(
    round: u32,
    rounds: u32,
    w: &Workload,
    runtime: &str,
    outcome: &Result<Vec<(&'static str, f64)>, String>,
) {
    let what = match outcome {
        Ok(values) => values
            .iter()
            .filter_map(|(id, v)| {
                let m = w.metrics.iter().find(|m| m.id == *id)?;
                Some(format!("{id} {}", stats::format_value(m.unit, *v)))
            })
            .collect::<Vec<_>>()
            .join(", "),
        Err(e) => format!("n/a ({e})"),
    };
    eprintln!("[{round}/{rounds}] {:<20} {:<17} {what}", w.name, runtime);
}

/// One run of one workload on one runtime: a value per metric, or why there is none.
fn measure(
    w: &Workload,
    rt: &dyn Runtime,
    params: &Params,
    timeout: Duration,
    settle: Duration,
) -> Result<Vec<(&'static str, f64)>, String> {
    let argv = params.argv(w);
    let first = w.metrics.first().ok_or("workload without metrics")?;
    match w.measure {
        Measure::SelfTimed => {
            let out = rt.run(&argv, timeout)?;
            let lines = workloads::parse_results(&out.stdout)?;
            w.metrics
                .iter()
                .map(|m| {
                    lines
                        .iter()
                        .find(|l| l.metric == m.id && l.unit == m.unit)
                        .map(|l| (m.id, l.value))
                        .ok_or_else(|| format!("no RESULT {} in the output", m.id))
                })
                .collect()
        }
        Measure::WallTime => {
            let out = rt.run(&argv, timeout)?;
            Ok(vec![(first.id, out.wall.as_nanos() as f64)])
        }
        Measure::CreateStartDelete => {
            let wall = rt.create_start_delete(&argv, timeout)?;
            Ok(vec![(first.id, wall.as_nanos() as f64)])
        }
        Measure::IdleMemory => {
            let kib = rt.idle_memory(&argv, settle)?;
            Ok(vec![(first.id, kib as f64)])
        }
    }
}
