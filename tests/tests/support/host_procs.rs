//! Host processes and mounts a test's private containerd leaves, shared by
//! `containerd.rs` and `cri.rs` (each includes it with `#[path]`).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Live (not zombie) processes other than this one and `skip` whose command line
/// contains `needle`, with their command lines.
pub fn naming(needle: &str, skip: i32) -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me || pid == skip {
            continue;
        }
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let zombie = stat
            .rsplit(')')
            .next()
            .is_some_and(|s| s.trim_start().starts_with('Z'));
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) && !zombie {
            out.push((pid, cmdline));
        }
    }
    out
}

/// Mount points below `dir` in this mount namespace.
pub fn mounts_under(dir: &str) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(dir))
        .map(str::to_string)
        .collect()
}

pub fn ppid(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')')
        .next()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The sentries among `boots` (pids of `carapace … boot` processes): `boot` forks the
/// sentry, and the sentry forks stubs, which carry the same command line until they
/// exec. A sentry is a child of a `boot` that is not itself a child of one.
pub fn sentries(boots: &[i32]) -> Vec<i32> {
    let top: Vec<i32> = boots
        .iter()
        .copied()
        .filter(|pid| !ppid(*pid).is_some_and(|p| boots.contains(&p)))
        .collect();
    boots
        .iter()
        .copied()
        .filter(|pid| ppid(*pid).is_some_and(|p| top.contains(&p)))
        .collect()
}

/// Ends a test's containerd (TERM, then KILL after 20 s), then every process `left`
/// still lists (waiting up to 10 s for them to go: a cgroup cannot be removed while its
/// processes are dying), then lazily unmounts `mounts`, deepest first.
pub fn tear_down(
    daemon: Option<Child>,
    left: impl Fn() -> Vec<(i32, String)>,
    mounts: impl Fn() -> Vec<String>,
) {
    if let Some(mut d) = daemon {
        let _ = Command::new("kill")
            .args(["-TERM", &d.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while matches!(d.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = d.kill();
        let _ = d.wait();
    }
    for (pid, _) in left() {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .stderr(Stdio::null())
            .status();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !left().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut mounts = mounts();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in mounts {
        let _ = Command::new("umount").args(["-l", &m]).status();
    }
}
