//! `bench net`: servers in a sandbox, clients outside it, over a veth pair between two
//! network namespaces made for the run (the server's side `10.99.0.2`, the client's
//! `10.99.0.1`). redis-server answers `redis-benchmark` (SET and GET, 50 clients) and
//! nginx serves a 4 KiB and a 1 MiB file to `wrk` (50 connections), natively, under runc,
//! runsc (ptrace, `--network=host` in the namespace: its sandbox mode does not work here,
//! see ENVIRONMENT.md) and carapace in `--network=sandbox` and `host` (`none` cannot be
//! reached from outside by design).
//!
//! Each container joins the server's namespace through its spec (`linux.namespaces`
//! `network` with a `path`). carapace's sandbox mode takes the interface's address over
//! for good (the OCI runtime does not give it back), so it is put back after each run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::bundle::{BundleMaker, TempDir};
use crate::exec;

const INSIDE: &str = "carapace-bench-in";
const OUTSIDE: &str = "carapace-bench-out";
const IN_ADDR: &str = "10.99.0.2";
const OUT_ADDR: &str = "10.99.0.1";
const IN_DEV: &str = "cbench-in";
const OUT_DEV: &str = "cbench-out";

/// The namespaces and veth pair; removed when dropped.
struct Pair;

fn ip(args: &[&str]) -> Result<(), String> {
    exec::run(Command::new("ip").args(args), Duration::from_secs(30))?
        .success()
        .map(drop)
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))
}

impl Pair {
    fn new() -> Result<Pair, String> {
        // Left over from an interrupted run.
        let _ = ip(&["netns", "del", INSIDE]);
        let _ = ip(&["netns", "del", OUTSIDE]);
        ip(&["netns", "add", INSIDE])?;
        let pair = Pair;
        ip(&["netns", "add", OUTSIDE])?;
        ip(&[
            "link", "add", IN_DEV, "netns", INSIDE, "type", "veth", "peer", "name", OUT_DEV,
            "netns", OUTSIDE,
        ])?;
        for (ns, dev) in [(INSIDE, IN_DEV), (OUTSIDE, OUT_DEV)] {
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        ip(&[
            "-n",
            OUTSIDE,
            "addr",
            "add",
            &format!("{OUT_ADDR}/24"),
            "dev",
            OUT_DEV,
        ])?;
        pair.readdress()?;
        Ok(pair)
    }

    /// Give the server's side its address again (after carapace's sandbox mode took it).
    fn readdress(&self) -> Result<(), String> {
        ip(&[
            "-n",
            INSIDE,
            "addr",
            "replace",
            &format!("{IN_ADDR}/24"),
            "dev",
            IN_DEV,
        ])
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", INSIDE]);
        let _ = ip(&["netns", "del", OUTSIDE]);
    }
}

/// How a server gets started.
enum Launcher {
    Native,
    Oci {
        name: String,
        binary: String,
        global: Vec<String>,
        bundles: BundleMaker,
        /// carapace's sandbox mode: the address must be put back afterwards.
        takes_address: bool,
    },
}

/// A running server; stopped when dropped.
struct Server<'a> {
    launcher: &'a Launcher,
    child: Child,
    id: String,
    bundle: Option<PathBuf>,
    pair: &'a Pair,
}

impl Drop for Server<'_> {
    fn drop(&mut self) {
        if let Launcher::Oci {
            binary,
            global,
            takes_address,
            ..
        } = self.launcher
        {
            for args in [
                vec!["kill", &self.id, "KILL"],
                vec!["delete", "--force", &self.id],
            ] {
                let _ = exec::run(
                    Command::new(binary).args(global).args(&args),
                    Duration::from_secs(30),
                );
            }
            if *takes_address {
                let _ = self.pair.readdress();
            }
        }
        exec::kill_group(self.child.id());
        let _ = self.child.wait();
        if let Some(b) = &self.bundle {
            let _ = std::fs::remove_dir_all(b);
        }
    }
}

impl Launcher {
    fn name(&self) -> &str {
        match self {
            Launcher::Native => "native",
            Launcher::Oci { name, .. } => name,
        }
    }

    fn start<'a>(
        &'a self,
        pair: &'a Pair,
        argv: &[String],
        log: &Path,
    ) -> Result<Server<'a>, String> {
        let out = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let id = format!(
            "cbench-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let (mut cmd, bundle) = match self {
            Launcher::Native => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", INSIDE]).args(argv);
                (c, None)
            }
            Launcher::Oci {
                binary,
                global,
                bundles,
                ..
            } => {
                let b = bundles.bundle(argv)?;
                let path = b.join("config.json");
                let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
                let mut spec: serde_json::Value =
                    serde_json::from_str(&text).map_err(|e| e.to_string())?;
                let ns = spec["linux"]["namespaces"]
                    .as_array_mut()
                    .ok_or("spec has no linux.namespaces")?;
                ns.retain(|n| n["type"] != "network");
                ns.push(json!({"type": "network", "path": format!("/var/run/netns/{INSIDE}")}));
                std::fs::write(&path, spec.to_string()).map_err(|e| e.to_string())?;
                let mut c = Command::new(binary);
                c.args(global).args(["run", "--bundle"]).arg(&b).arg(&id);
                (c, Some(b))
            }
        };
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {argv:?}: {e}"))?;
        Ok(Server {
            launcher: self,
            child,
            id,
            bundle,
            pair,
        })
    }
}

static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Run `program args…` in the client's namespace.
fn client(program: &str, args: &[&str], timeout: Duration) -> Result<exec::Captured, String> {
    exec::run(
        Command::new("ip")
            .args(["netns", "exec", OUTSIDE, program])
            .args(args),
        timeout,
    )
}

/// Retry `probe` until it succeeds (the server is up) or 30 s pass.
fn wait_up(server: &mut Server, probe: impl Fn() -> bool, log: &Path) -> Result<(), String> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if probe() {
            return Ok(());
        }
        if let Ok(Some(st)) = server.child.try_wait() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            return Err(format!(
                "server exited ({st}): {}",
                exec::failure_reason(&text, "no output")
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let text = std::fs::read_to_string(log).unwrap_or_default();
    Err(format!(
        "server never answered: {}",
        exec::failure_reason(&text, "no output")
    ))
}

/// One measurement: name → value.
type Measured = Vec<(String, f64)>;

fn redis(l: &Launcher, pair: &Pair, dir: &Path, quick: bool) -> Result<Measured, String> {
    let log = dir.join(format!("redis-{}.log", l.name()));
    let argv: Vec<String> = [
        "/usr/bin/redis-server",
        "--port",
        "6379",
        "--bind",
        "0.0.0.0",
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "no",
        "--dir",
        "/tmp",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut server = l.start(pair, &argv, &log)?;
    wait_up(
        &mut server,
        || {
            client(
                "redis-cli",
                &["-h", IN_ADDR, "ping"],
                Duration::from_secs(5),
            )
            .is_ok_and(|c| c.stdout.contains("PONG"))
        },
        &log,
    )?;
    let n = if quick { "20000" } else { "100000" };
    let out = client(
        "redis-benchmark",
        &["-h", IN_ADDR, "-c", "50", "-n", n, "-t", "set,get", "--csv"],
        Duration::from_secs(300),
    )?
    .success()?;
    drop(server);
    // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",…
    let mut m = Vec::new();
    for line in out.stdout.lines() {
        let f: Vec<&str> = line.split(',').map(|s| s.trim_matches('"')).collect();
        if let (Some(test), Some(rps), Some(p50)) = (f.first(), f.get(1), f.get(4)) {
            if let (Ok(rps), Ok(p50)) = (rps.parse::<f64>(), p50.parse::<f64>()) {
                m.push((format!("redis {test} req/s"), rps));
                m.push((format!("redis {test} p50 ms"), p50));
            }
        }
    }
    if m.is_empty() {
        return Err(format!(
            "no results from redis-benchmark: {}",
            exec::shorten(&out.stdout, 200)
        ));
    }
    Ok(m)
}

/// The nginx configuration and the files it serves, under `dir` (bind-mounted into the
/// containers at the same path).
fn nginx_setup(dir: &Path) -> Result<PathBuf, String> {
    let www = dir.join("www");
    std::fs::create_dir_all(&www).map_err(|e| e.to_string())?;
    std::fs::write(www.join("4k.bin"), vec![b'x'; 4096]).map_err(|e| e.to_string())?;
    std::fs::write(www.join("1m.bin"), vec![b'y'; 1 << 20]).map_err(|e| e.to_string())?;
    let conf = dir.join("nginx.conf");
    let text = format!(
        "user root root;\nworker_processes 1;\ndaemon off;\nmaster_process off;\npid /tmp/nginx.pid;\n\
         error_log stderr;\nevents {{ worker_connections 1024; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path /tmp;\n  proxy_temp_path /tmp;\n\
         fastcgi_temp_path /tmp;\n  uwsgi_temp_path /tmp;\n  scgi_temp_path /tmp;\n\
         sendfile on;\n  server {{ listen 8080; root {}; }}\n}}\n",
        www.display()
    );
    std::fs::write(&conf, text).map_err(|e| e.to_string())?;
    Ok(conf)
}

fn nginx(
    l: &Launcher,
    pair: &Pair,
    dir: &Path,
    conf: &Path,
    quick: bool,
) -> Result<Measured, String> {
    let log = dir.join(format!("nginx-{}.log", l.name()));
    let argv: Vec<String> = vec![
        "/usr/sbin/nginx".into(),
        "-e".into(),
        "stderr".into(),
        "-p".into(),
        "/tmp/".into(),
        "-c".into(),
        conf.display().to_string(),
    ];
    let mut server = l.start(pair, &argv, &log)?;
    let url = |f: &str| format!("http://{IN_ADDR}:8080/{f}");
    wait_up(
        &mut server,
        || {
            client(
                "curl",
                &["-sf", "-o", "/dev/null", &url("4k.bin")],
                Duration::from_secs(5),
            )
            .is_ok_and(|c| c.status.success())
        },
        &log,
    )?;
    let secs = if quick { "3s" } else { "10s" };
    let mut m = Vec::new();
    for file in ["4k.bin", "1m.bin"] {
        let out = client(
            "wrk",
            &["-t2", "-c50", "-d", secs, "--latency", &url(file)],
            Duration::from_secs(120),
        )?
        .success()?;
        let size = if file == "4k.bin" { "4 KiB" } else { "1 MiB" };
        let rps = parse_after(&out.stdout, "Requests/sec:")
            .ok_or_else(|| format!("wrk: {}", exec::shorten(&out.stdout, 200)))?;
        m.push((format!("nginx {size} req/s"), rps));
        if let Some(p50) = wrk_p50_ms(&out.stdout) {
            m.push((format!("nginx {size} p50 ms"), p50));
        }
    }
    drop(server);
    Ok(m)
}

fn parse_after(text: &str, key: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(key))
        .and_then(|v| v.trim().parse().ok())
}

/// wrk's "50%" latency line, in milliseconds.
fn wrk_p50_ms(text: &str) -> Option<f64> {
    let v = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("50%"))?
        .trim();
    let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = num.parse().ok()?;
    Some(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        _ => return None,
    })
}

/// Run everything; print a table and write `out/net.md`.
pub fn run(
    carapace: Result<PathBuf, String>,
    quick: bool,
    out_dir: &Path,
    only: &[String],
) -> Result<(), String> {
    // `--runtime` names: native, runc, runsc, carapace (all four) or e.g.
    // carapace-systrap-sandbox.
    let wanted = |name: &str| {
        only.is_empty()
            || only
                .iter()
                .any(|o| name == o || name.starts_with(&format!("{o}-")))
    };
    for tool in [
        "ip",
        "redis-server",
        "redis-benchmark",
        "redis-cli",
        "nginx",
        "wrk",
        "curl",
    ] {
        if exec::run(
            Command::new("sh").args(["-c", &format!("command -v {tool}")]),
            Duration::from_secs(5),
        )
        .map(|c| !c.status.success())
        .unwrap_or(true)
        {
            return Err(format!(
                "{tool} is not installed (scripts/deps.sh installs it)"
            ));
        }
    }
    let pair = Pair::new()?;
    // Not under /tmp: that is a tmpfs inside every container.
    let dir = TempDir::in_dir(out_dir, "net-work")?;
    let conf = nginx_setup(dir.path())?;
    let visible = [dir.path()];
    let mut launchers: Vec<Result<Launcher, (String, String)>> = Vec::new();
    if wanted("native") {
        launchers.push(Ok(Launcher::Native));
    }
    let mut oci = |key: &str, name: &str, binary: &str, global: &[&str], takes: bool| {
        if !wanted(key) {
            return;
        }
        launchers.push(
            BundleMaker::new(binary, &visible, &[])
                .map(|bundles| Launcher::Oci {
                    name: name.to_string(),
                    binary: binary.to_string(),
                    global: global.iter().map(|s| s.to_string()).collect(),
                    bundles,
                    takes_address: takes,
                })
                .map_err(|e| (name.to_string(), e)),
        )
    };
    oci("runc", "runc", "runc", &[], false);
    oci(
        "runsc",
        "runsc (ptrace, host)",
        "runsc",
        &["--platform=ptrace", "--network=host"],
        false,
    );
    match &carapace {
        Ok(bin) => {
            let bin = std::fs::canonicalize(bin)
                .unwrap_or_else(|_| bin.clone())
                .display()
                .to_string();
            for platform in ["systrap", "ptrace"] {
                for mode in ["sandbox", "host"] {
                    oci(
                        &format!("carapace-{platform}-{mode}"),
                        &format!("carapace ({platform}, {mode})"),
                        &bin,
                        &["--platform", platform, "--network", mode],
                        mode == "sandbox",
                    );
                }
            }
        }
        Err(e) if wanted("carapace") => launchers.push(Err(("carapace".into(), e.clone()))),
        Err(_) => {}
    }
    let mut rows: Vec<(String, Result<Measured, String>)> = Vec::new();
    for l in &launchers {
        let l = match l {
            Ok(l) => l,
            Err((name, e)) => {
                rows.push((name.clone(), Err(e.clone())));
                continue;
            }
        };
        eprintln!("{}: redis…", l.name());
        let mut all = Measured::new();
        let r = redis(l, &pair, dir.path(), quick).and_then(|mut m| {
            eprintln!("{}: nginx…", l.name());
            m.extend(nginx(l, &pair, dir.path(), &conf, quick)?);
            Ok(m)
        });
        let r = r.map(|m| {
            all.extend(m);
            all
        });
        if let Err(e) = &r {
            eprintln!("{}: n/a ({e})", l.name());
        }
        rows.push((l.name().to_string(), r));
    }
    let md = table(&rows);
    println!("{md}");
    let path = out_dir.join("net.md");
    std::fs::write(&path, &md).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

fn table(rows: &[(String, Result<Measured, String>)]) -> String {
    let mut cols: Vec<String> = Vec::new();
    for (_, r) in rows {
        for (k, _) in r.iter().flatten() {
            if !cols.contains(k) {
                cols.push(k.clone());
            }
        }
    }
    let mut out = format!(
        "| runtime | {} |\n|---|{}\n",
        cols.join(" | "),
        "---|".repeat(cols.len())
    );
    for (name, r) in rows {
        out.push_str(&format!("| {name} |"));
        match r {
            Ok(m) => {
                for c in &cols {
                    match m.iter().find(|(k, _)| k == c) {
                        Some((k, v)) if k.ends_with("ms") => out.push_str(&format!(" {v:.2} |")),
                        Some((_, v)) => out.push_str(&format!(" {v:.0} |")),
                        None => out.push_str(" — |"),
                    }
                }
            }
            Err(e) => out.push_str(&format!(" n/a ({}) |", exec::shorten(e, 80))),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_output_parses() {
        let text = "  Latency Distribution\n     50%  612.00us\n     75%    1.20ms\n\
                    Requests/sec:  12345.67\n";
        assert_eq!(parse_after(text, "Requests/sec:"), Some(12345.67));
        assert_eq!(wrk_p50_ms(text), Some(0.612));
    }
}
