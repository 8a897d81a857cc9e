//! The container's resources (`linux.resources`: memory, CPU, pids) applied as host
//! cgroups to the sandbox's host processes — the sentry, its stubs and the gofer — as
//! runc's cgroupfs manager would, on cgroup v1 (one hierarchy per controller) or v2.
//!
//! `create` makes the cgroup and writes the limits; `boot` and `gofer` move themselves in
//! first thing (so every stub the sentry forks is counted); `delete` removes it once its
//! processes are dead; `events --stats` reads it.

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The v1 controllers a container's cgroup is made in.
const V1_CONTROLLERS: &[&str] = &["memory", "cpu", "cpuacct", "pids", "freezer"];

/// 32-bit FNV-1a: a short, stable name for a path.
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// The limits of `linux.resources` that are applied.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    pub memory_limit: Option<i64>,
    pub cpu_shares: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub pids_limit: Option<i64>,
}

impl Resources {
    pub fn from_spec(spec: &oci_spec::runtime::Spec) -> Resources {
        match spec.linux().as_ref().and_then(|l| l.resources().as_ref()) {
            Some(r) => Resources::from_linux(r),
            None => Resources::default(),
        }
    }

    pub fn from_linux(r: &oci_spec::runtime::LinuxResources) -> Resources {
        let memory_limit = r.memory().as_ref().and_then(|m| m.limit());
        let cpu = r.cpu().as_ref();
        Resources {
            memory_limit: memory_limit.filter(|l| *l > 0),
            cpu_shares: cpu.and_then(|c| c.shares()),
            cpu_quota: cpu.and_then(|c| c.quota()).filter(|q| *q > 0),
            cpu_period: cpu.and_then(|c| c.period()),
            pids_limit: r.pids().as_ref().map(|p| p.limit()).filter(|l| *l > 0),
        }
    }
}

/// A container's cgroup: its path below each hierarchy's root (`/carapace/ID`, or the
/// spec's `linux.cgroupsPath`).
#[derive(Clone, Debug)]
pub struct Cgroup {
    path: String,
    v2: bool,
}

impl Cgroup {
    /// The cgroup for container `id` of the runtime root `root`; `spec_path` is
    /// `linux.cgroupsPath`. Without one, the path is `/carapace/ID-HASH`, HASH naming the
    /// runtime root: container ids are unique per root, cgroups are not.
    pub fn for_container(id: &str, root: &Path, spec_path: Option<&str>) -> anyhow::Result<Cgroup> {
        let path = match spec_path {
            Some(p) if !p.is_empty() => p.to_string(),
            _ => format!(
                "/carapace/{id}-{:08x}",
                fnv1a(root.as_os_str().as_encoded_bytes())
            ),
        };
        if path.split('/').any(|c| c == "..") {
            bail!("linux.cgroupsPath {path:?}: contains \"..\"");
        }
        if path.contains(':') {
            bail!("linux.cgroupsPath {path:?}: systemd slices are not supported (cgroupfs only)");
        }
        Ok(Cgroup {
            path: format!("/{}", path.trim_start_matches('/')),
            v2: Path::new(CGROUP_ROOT).join("cgroup.controllers").exists(),
        })
    }

    /// Read back what [`Cgroup::save`] wrote.
    pub fn load(file: &Path) -> Option<Cgroup> {
        let path = std::fs::read_to_string(file).ok()?;
        Cgroup::for_container("", Path::new("/"), Some(path.trim())).ok()
    }

    /// Remember the cgroup in `file` (in the container's state directory).
    pub fn save(&self, file: &Path) -> anyhow::Result<()> {
        std::fs::write(file, &self.path).with_context(|| format!("{}", file.display()))
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// The directories this cgroup is, one per hierarchy.
    fn dirs(&self) -> Vec<PathBuf> {
        let rel = self.path.trim_start_matches('/');
        if self.v2 {
            vec![Path::new(CGROUP_ROOT).join(rel)]
        } else {
            V1_CONTROLLERS
                .iter()
                .filter(|c| Path::new(CGROUP_ROOT).join(c).is_dir())
                .map(|c| Path::new(CGROUP_ROOT).join(c).join(rel))
                .collect()
        }
    }

    fn dir(&self, controller: &str) -> PathBuf {
        let rel = self.path.trim_start_matches('/');
        if self.v2 {
            Path::new(CGROUP_ROOT).join(rel)
        } else {
            Path::new(CGROUP_ROOT).join(controller).join(rel)
        }
    }

    /// Make the cgroup and write the limits. On error, whatever was made is removed.
    /// A cgroup that already holds processes (another container's) is refused and left
    /// alone.
    pub fn create(&self, r: &Resources) -> anyhow::Result<()> {
        if !self.pids().is_empty() {
            bail!(
                "cgroup {} already holds processes of another container",
                self.path
            );
        }
        let made = self.write_limits(r);
        if made.is_err() {
            self.remove();
        }
        made
    }

    fn write_limits(&self, r: &Resources) -> anyhow::Result<()> {
        for d in self.dirs() {
            std::fs::create_dir_all(&d)
                .with_context(|| format!("cannot create cgroup {}", d.display()))?;
        }
        let write = |controller: &str, file: &str, value: String| -> anyhow::Result<()> {
            let p = self.dir(controller).join(file);
            std::fs::write(&p, &value)
                .with_context(|| format!("cannot write {value} to {}", p.display()))
        };
        if self.v2 {
            if let Some(m) = r.memory_limit {
                write("memory", "memory.max", m.to_string())?;
            }
            if let Some(q) = r.cpu_quota {
                write(
                    "cpu",
                    "cpu.max",
                    format!("{q} {}", r.cpu_period.unwrap_or(100_000)),
                )?;
            }
            if let Some(p) = r.pids_limit {
                write("pids", "pids.max", p.to_string())?;
            }
        } else {
            if let Some(m) = r.memory_limit {
                write("memory", "memory.limit_in_bytes", m.to_string())?;
            }
            if let Some(s) = r.cpu_shares {
                write("cpu", "cpu.shares", s.to_string())?;
            }
            if let Some(p) = r.cpu_period {
                write("cpu", "cpu.cfs_period_us", p.to_string())?;
            }
            if let Some(q) = r.cpu_quota {
                write("cpu", "cpu.cfs_quota_us", q.to_string())?;
            }
            if let Some(p) = r.pids_limit {
                write("pids", "pids.max", p.to_string())?;
            }
        }
        Ok(())
    }

    /// Change the limits of a live cgroup (`update`).
    pub fn update(&self, r: &Resources) -> anyhow::Result<()> {
        self.write_limits(r)
    }

    /// Move the calling process (and so every child it makes from now on) into the cgroup.
    pub fn join(&self) -> anyhow::Result<()> {
        for d in self.dirs() {
            let procs = d.join("cgroup.procs");
            std::fs::write(&procs, "0").with_context(|| format!("cannot join {}", d.display()))?;
        }
        Ok(())
    }

    /// The host pids still in the cgroup.
    pub fn pids(&self) -> Vec<i32> {
        let Some(d) = self.dirs().into_iter().next() else {
            return Vec::new();
        };
        std::fs::read_to_string(d.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Kill what is left in it and remove it (best effort: a cgroup that is already gone
    /// is fine).
    pub fn remove(&self) {
        // Frozen processes cannot die of SIGKILL until thawed.
        if self.is_frozen() {
            let _ = self.freeze(false);
        }
        for _ in 0..100 {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            for p in pids {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        for d in self.dirs() {
            let _ = std::fs::remove_dir(&d);
        }
    }

    /// Freeze (`pause`) or thaw (`resume`) every process in the cgroup, waiting until the
    /// kernel says it is done.
    pub fn freeze(&self, frozen: bool) -> anyhow::Result<()> {
        if self.v2 {
            let p = self.dir("freezer").join("cgroup.freeze");
            let value = if frozen { "1" } else { "0" };
            return std::fs::write(&p, value)
                .with_context(|| format!("cannot write {}", p.display()));
        }
        let p = self.dir("freezer").join("freezer.state");
        let write = |v: &str| {
            std::fs::write(&p, v).with_context(|| format!("cannot write {}", p.display()))
        };
        if !frozen {
            return write("THAWED");
        }
        // v1 goes through FREEZING. Seen here: a freeze that catches a stub between its
        // ptrace stop and its tracer's wake-up can stay FREEZING for good; thawing and
        // freezing again gets past it. So: a few short attempts.
        for _ in 0..8 {
            write("FROZEN")?;
            for _ in 0..100 {
                if std::fs::read_to_string(&p).is_ok_and(|s| s.trim() == "FROZEN") {
                    return Ok(());
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            write("THAWED")?;
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        bail!("{} did not become FROZEN", p.display())
    }

    /// Whether the cgroup is frozen (`paused`).
    pub fn is_frozen(&self) -> bool {
        if self.v2 {
            std::fs::read_to_string(self.dir("freezer").join("cgroup.freeze"))
                .is_ok_and(|s| s.trim() == "1")
        } else {
            std::fs::read_to_string(self.dir("freezer").join("freezer.state"))
                .is_ok_and(|s| s.trim() != "THAWED")
        }
    }

    fn read_u64(&self, controller: &str, file: &str) -> Option<u64> {
        std::fs::read_to_string(self.dir(controller).join(file))
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// runc's `events --stats` data: CPU time, memory use and limit, pids.
    pub fn stats(&self) -> serde_json::Value {
        let (cpu_ns, mem, mem_limit, mem_max) = if self.v2 {
            let usec = std::fs::read_to_string(self.dir("cpu").join("cpu.stat"))
                .unwrap_or_default()
                .lines()
                .find_map(|l| l.strip_prefix("usage_usec ")?.trim().parse::<u64>().ok());
            (
                usec.map(|u| u.saturating_mul(1000)),
                self.read_u64("memory", "memory.current"),
                self.read_u64("memory", "memory.max"),
                self.read_u64("memory", "memory.peak"),
            )
        } else {
            (
                self.read_u64("cpuacct", "cpuacct.usage"),
                self.read_u64("memory", "memory.usage_in_bytes"),
                self.read_u64("memory", "memory.limit_in_bytes"),
                self.read_u64("memory", "memory.max_usage_in_bytes"),
            )
        };
        let pids_limit = self.read_u64("pids", "pids.max").unwrap_or(0);
        serde_json::json!({
            "cpu": { "usage": { "total": cpu_ns.unwrap_or(0) } },
            "memory": { "usage": {
                "usage": mem.unwrap_or(0),
                "limit": mem_limit.unwrap_or(0),
                "max": mem_max.unwrap_or(0),
            } },
            "pids": {
                "current": self.read_u64("pids", "pids.current").unwrap_or(0),
                "limit": pids_limit,
            },
        })
    }
}
