//! cgroupfs: the container's own cgroup as a cgroup v2 hierarchy whose root it is, as a
//! container with a private cgroup namespace sees it. Mounted on `/sys/fs/cgroup` (and
//! for OCI mounts of type `cgroup`/`cgroup2`); `/proc/PID/cgroup` says `0::/`.
//!
//! The limits are the container's (`linux.resources`, set at boot by [`set_limits`] and
//! by `carapace update`); the usage is the sandbox's: its pids and threads from the
//! sentry's pid table, its memory as the sentry's memory file holds it, its CPU time.
//! Writes are refused with `EPERM`: the sandbox cannot change its own limits.
#![deny(unsafe_code)]

use crate::fs::proc::caller;
use crate::fs::proc::node::Builder;
use crate::return_errno;
use crate::vfs::Inode;
use std::sync::{Arc, Mutex};

/// `CGROUP2_SUPER_MAGIC`.
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// The container's cgroup limits (`None`: no limit, shown as `max`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// `memory.max`, in bytes.
    pub memory_max: Option<u64>,
    /// `pids.max`.
    pub pids_max: Option<u64>,
    /// `cpu.max`: the quota in microseconds per `cpu_period`.
    pub cpu_quota: Option<u64>,
    /// `cpu.max`'s period in microseconds (100000 when not set).
    pub cpu_period: Option<u64>,
    /// `cpu.weight`, 1..=10000 (100 when not set).
    pub cpu_weight: Option<u64>,
}

impl Limits {
    /// cgroup v1's `cpu.shares` (2..=262144) as v2's `cpu.weight` (1..=10000), the
    /// conversion runc and the kernel's documentation use.
    pub fn weight_of_shares(shares: u64) -> u64 {
        let s = shares.clamp(2, 262_144);
        1 + (s - 2) * 9999 / 262_142
    }
}

static LIMITS: Mutex<Limits> = Mutex::new(Limits {
    memory_max: None,
    pids_max: None,
    cpu_quota: None,
    cpu_period: None,
    cpu_weight: None,
});

/// Set the limits the sandbox's cgroup shows (one sandbox per sentry process).
pub fn set_limits(l: Limits) {
    *LIMITS.lock().unwrap_or_else(|e| e.into_inner()) = l;
}

/// `carapace update`: the limits set in `l` replace those shown.
pub fn update_limits(l: Limits) {
    let mut cur = LIMITS.lock().unwrap_or_else(|e| e.into_inner());
    cur.memory_max = l.memory_max.or(cur.memory_max);
    cur.pids_max = l.pids_max.or(cur.pids_max);
    cur.cpu_quota = l.cpu_quota.or(cur.cpu_quota);
    cur.cpu_period = l.cpu_period.or(cur.cpu_period);
    cur.cpu_weight = l.cpu_weight.or(cur.cpu_weight);
}

/// The limits the sandbox's cgroup shows.
pub fn limits() -> Limits {
    *LIMITS.lock().unwrap_or_else(|e| e.into_inner())
}

fn max_or(v: Option<u64>) -> String {
    v.map_or_else(|| "max".to_string(), |n| n.to_string())
}

/// The sandbox's live thread groups (`cgroup.procs`) and threads (`cgroup.threads`).
fn members(threads: bool) -> crate::error::Result<Vec<i32>> {
    let (k, _) = caller()?;
    let p = k.pids();
    let mut ids: Vec<i32> = if threads {
        p.tasks.keys().copied().collect()
    } else {
        p.groups
            .iter()
            .filter(|(_, g)| g.state().exit_status.is_none())
            .map(|(id, _)| *id)
            .collect()
    };
    ids.sort_unstable();
    Ok(ids)
}

fn lines(ids: Vec<i32>) -> Vec<u8> {
    let mut s = String::new();
    for id in ids {
        s.push_str(&id.to_string());
        s.push('\n');
    }
    s.into_bytes()
}

/// A fresh cgroupfs root.
pub fn new_cgroupfs() -> Arc<dyn Inode> {
    let b = Builder::new(CGROUP2_SUPER_MAGIC);
    let t = |key: &str, v: &str| b.text(key, format!("{v}\n"));
    // What the sandbox may read but not change.
    let ro = |key: &str, gen: fn() -> crate::error::Result<String>| {
        b.file_rw(
            key,
            0o644,
            move || gen().map(String::into_bytes),
            |_| -> crate::error::Result<()> { return_errno!(EPERM) },
        )
    };
    let entries: Vec<(&str, Arc<dyn Inode>)> = vec![
        (
            "cgroup.controllers",
            t("cgroup.controllers", "cpu memory pids"),
        ),
        (
            "cgroup.subtree_control",
            ro("cgroup.subtree_control", || Ok("\n".into())),
        ),
        ("cgroup.type", t("cgroup.type", "domain")),
        ("cgroup.events", t("cgroup.events", "populated 1\nfrozen 0")),
        (
            "cgroup.max.depth",
            ro("cgroup.max.depth", || Ok("max\n".into())),
        ),
        (
            "cgroup.max.descendants",
            ro("cgroup.max.descendants", || Ok("max\n".into())),
        ),
        (
            "cgroup.procs",
            ro("cgroup.procs", || {
                Ok(String::from_utf8_lossy(&lines(members(false)?)).into_owned())
            }),
        ),
        (
            "cgroup.threads",
            ro("cgroup.threads", || {
                Ok(String::from_utf8_lossy(&lines(members(true)?)).into_owned())
            }),
        ),
        (
            "memory.max",
            ro("memory.max", || {
                Ok(format!("{}\n", max_or(limits().memory_max)))
            }),
        ),
        (
            "memory.current",
            b.file("memory.current", 0o444, || {
                let (k, _) = caller()?;
                Ok(format!("{}\n", k.memory_file.allocated_bytes()).into_bytes())
            }),
        ),
        (
            "memory.swap.max",
            ro("memory.swap.max", || Ok("0\n".into())),
        ),
        (
            "pids.max",
            ro("pids.max", || {
                Ok(format!("{}\n", max_or(limits().pids_max)))
            }),
        ),
        (
            "pids.current",
            b.file("pids.current", 0o444, || {
                Ok(format!("{}\n", members(true)?.len()).into_bytes())
            }),
        ),
        (
            "cpu.max",
            ro("cpu.max", || {
                let l = limits();
                Ok(format!(
                    "{} {}\n",
                    max_or(l.cpu_quota),
                    l.cpu_period.unwrap_or(100_000)
                ))
            }),
        ),
        (
            "cpu.weight",
            ro("cpu.weight", || {
                Ok(format!("{}\n", limits().cpu_weight.unwrap_or(100)))
            }),
        ),
        ("cpu.max.burst", ro("cpu.max.burst", || Ok("0\n".into()))),
        ("memory.swap.current", t("memory.swap.current", "0")),
        ("memory.high", ro("memory.high", || Ok("max\n".into()))),
        ("memory.low", ro("memory.low", || Ok("0\n".into()))),
        ("memory.min", ro("memory.min", || Ok("0\n".into()))),
        (
            "memory.events",
            t("memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0"),
        ),
        (
            "memory.stat",
            b.file("memory.stat", 0o444, || {
                let (k, _) = caller()?;
                let anon = k.memory_file.allocated_bytes();
                Ok(format!("anon {anon}\nfile 0\nkernel 0\nshmem 0\nsock 0\n").into_bytes())
            }),
        ),
        ("pids.events", t("pids.events", "max 0")),
        (
            "cgroup.stat",
            t("cgroup.stat", "nr_descendants 0\nnr_dying_descendants 0"),
        ),
        ("cgroup.freeze", ro("cgroup.freeze", || Ok("0\n".into()))),
        (
            "cpu.stat",
            b.file("cpu.stat", 0o444, || {
                let (k, _) = caller()?;
                let groups: Vec<_> = k.pids().groups.values().cloned().collect();
                let busy: std::time::Duration = groups.iter().map(|g| g.cpu_time()).sum();
                let us = busy.as_micros();
                Ok(format!("usage_usec {us}\nuser_usec {us}\nsystem_usec 0\n").into_bytes())
            }),
        ),
    ];
    let entries: Vec<(Vec<u8>, Arc<dyn Inode>)> = entries
        .into_iter()
        .map(|(n, i)| (n.as_bytes().to_vec(), i))
        .collect();
    b.root(Box::new(move || Ok(entries.clone())), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_to_weight() {
        assert_eq!(Limits::weight_of_shares(2), 1);
        assert_eq!(Limits::weight_of_shares(1024), 39);
        assert_eq!(Limits::weight_of_shares(262_144), 10000);
        assert_eq!(Limits::weight_of_shares(0), 1);
    }

    #[test]
    fn lists_the_files() {
        let root = new_cgroupfs();
        let names: Vec<Vec<u8>> = root
            .readdir()
            .expect("readdir")
            .into_iter()
            .map(|e| e.name)
            .collect();
        for want in [
            "cgroup.procs",
            "memory.max",
            "pids.max",
            "cpu.max",
            "cpu.weight",
        ] {
            assert!(names.iter().any(|n| n == want.as_bytes()), "{want}");
        }
    }
}
