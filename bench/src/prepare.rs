//! Before measuring: compile the workload programs, lay out their input files, build
//! carapace, and note what machine this is.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::Serialize;

use crate::exec::{self, Captured};
use crate::workloads::PROGRAMS;

/// The directories the workloads use, all on the host's disk (never under `/tmp`, which is
/// a private tmpfs inside every sandbox).
#[derive(Debug, Clone)]
pub struct WorkDir {
    pub bin: PathBuf,
    pub data: PathBuf,
    pub scratch: PathBuf,
}

fn mkdir(p: &Path) -> Result<(), String> {
    std::fs::create_dir_all(p).map_err(|e| format!("cannot create {}: {e}", p.display()))
}

fn write(p: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(p, bytes).map_err(|e| format!("cannot write {}: {e}", p.display()))
}

/// Compiles every program with `gcc -static -O2` (static, so the very same binary runs on
/// the host and in every sandbox) and writes the input files. `big_mib` sizes the file the
/// sequential-read workload reads.
pub fn work_dir(root: &Path, big_mib: u32) -> Result<WorkDir, String> {
    let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("workloads");
    let dir = WorkDir {
        bin: root.join("bin"),
        data: root.join("data"),
        scratch: root.join("scratch"),
    };
    for d in [&dir.bin, &dir.data, &dir.scratch] {
        mkdir(d)?;
    }
    for program in PROGRAMS {
        let source = sources.join(format!("{program}.c"));
        let out = exec::run(
            Command::new("gcc")
                .args(["-static", "-O2", "-pthread", "-Wall", "-o"])
                .arg(dir.bin.join(program))
                .arg(&source),
            Duration::from_secs(120),
        )
        .map_err(|e| format!("gcc: {e} (apt-get install build-essential)"))?;
        out.success()
            .map_err(|e| format!("compiling {}: {e}", source.display()))?;
    }
    // Inputs: what gcc compiles and python3 runs, a small file, a deep path, a big file.
    for file in ["memory.c", "bench.h", "work.py"] {
        let from = sources.join(file);
        std::fs::copy(&from, dir.data.join(file))
            .map_err(|e| format!("cannot copy {}: {e}", from.display()))?;
    }
    write(&dir.data.join("small.txt"), &[b'x'; 1000])?;
    let deep = dir.data.join("deep/a/b/c/d/e/f/g/h/i/j");
    mkdir(&deep)?;
    write(&deep.join("leaf"), b"leaf\n")?;
    let big = dir.data.join("big");
    let want = u64::from(big_mib) << 20;
    if std::fs::metadata(&big).map(|m| m.len()).ok() != Some(want) {
        let block = vec![b'b'; 1 << 20];
        let mut file = std::fs::File::create(&big)
            .map_err(|e| format!("cannot create {}: {e}", big.display()))?;
        for _ in 0..big_mib {
            file.write_all(&block)
                .map_err(|e| format!("cannot write {}: {e}", big.display()))?;
        }
    }
    Ok(dir)
}

/// Builds `target/release/carapace` with cargo, returning its path or why there is none.
pub fn build_carapace(workspace: &Path) -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    eprintln!("building carapace (cargo build --release -p runtime-shim)…");
    let out = exec::run(
        Command::new(cargo)
            .args(["build", "--release", "-p", "runtime-shim"])
            .current_dir(workspace),
        Duration::from_secs(1800),
    )?;
    out.success()
        .map_err(|e| format!("carapace build failed: {e}"))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    let binary = target.join("release/carapace");
    if binary.is_file() {
        Ok(binary)
    } else {
        Err(format!("carapace not built at {}", binary.display()))
    }
}

/// Facts about the machine and software, recorded with every result.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub date: String,
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub kernel: String,
    pub os: String,
    pub hypervisor: bool,
    pub runc: String,
    pub runsc: String,
    pub carapace_commit: String,
}

fn first_line(cmd: &mut Command) -> String {
    match exec::run(cmd, Duration::from_secs(30)).and_then(Captured::success) {
        Ok(out) => out.stdout.lines().next().unwrap_or("").trim().to_string(),
        Err(e) => format!("unknown ({e})"),
    }
}

pub fn machine(workspace: &Path) -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown".to_string());
    let hypervisor = cpuinfo
        .lines()
        .any(|l| l.starts_with("flags") && l.split_whitespace().any(|f| f == "hypervisor"));
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.0);
    let os_release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let os = os_release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|l| l.trim_matches('"').to_string())
        .unwrap_or_else(|| "unknown".to_string());
    Machine {
        date: first_line(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"])),
        cpu,
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        memory_gib: (mem_kib / (1024.0 * 1024.0) * 10.0).round() / 10.0,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        os,
        hypervisor,
        runc: first_line(Command::new("runc").arg("--version")),
        runsc: first_line(Command::new("runsc").arg("--version")),
        carapace_commit: first_line(
            Command::new("git")
                .args(["rev-parse", "--short", "HEAD"])
                .current_dir(workspace),
        ),
    }
}
