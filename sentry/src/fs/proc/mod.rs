//! procfs: `/proc` generated from the sentry's state. Only the sandbox's processes are
//! visible, with their sandbox pids; host facts shown are the CPU count and model and the
//! memory total, read once when the filesystem is made.
//!
//! Files are generated when opened (a snapshot, as Linux's seq files are read). The task
//! asking is the one running on the calling host thread ([`crate::kernel::task::current`]):
//! `/proc/self` and the readers' view of paths come from it.
#![deny(unsafe_code)]

mod mem;
pub mod node;
mod pid;
mod sys;
pub mod sysctl;

use crate::error::Result;
use crate::kernel::task::current;
use crate::kernel::{Kernel, KERNEL_RELEASE, KERNEL_VERSION};
use crate::vfs::Inode;
use crate::{errno, Errno};
use node::Builder;
use std::fmt::Write as _;
use std::sync::Arc;

/// `PROC_SUPER_MAGIC`.
const PROC_SUPER_MAGIC: i64 = 0x9fa0;
/// Clock ticks per second (`AT_CLKTCK`, `sysconf(_SC_CLK_TCK)`).
pub const CLK_TCK: u64 = 100;

/// Host facts, read when the filesystem is made (never on the application's behalf).
pub struct HostFacts {
    /// CPUs the sentry may run on when it boots (its task threads may be pinned later).
    pub ncpus: usize,
    /// One `/proc/cpuinfo` block per CPU, from the host's, or made up from the count.
    cpuinfo: Vec<u8>,
    pub mem_total: u64,
    /// `/proc/sys/kernel/random/boot_id`: fixed per sandbox.
    boot_id: String,
}

/// The host facts, probed once per sentry (at boot, when `/proc` is first made).
pub fn host_facts() -> &'static HostFacts {
    static FACTS: std::sync::OnceLock<HostFacts> = std::sync::OnceLock::new();
    FACTS.get_or_init(HostFacts::probe)
}

impl HostFacts {
    fn probe() -> HostFacts {
        let ncpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        // Read before the sentry confines itself; a confined sentry (no host files) gets
        // the made-up blocks. Only as many CPUs as the count says, so the two agree.
        let cpuinfo = std::fs::read("/proc/cpuinfo")
            .ok()
            .map(|c| first_blocks(&c, ncpus))
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| {
                let mut s = String::new();
                for i in 0..ncpus {
                    let _ = write!(
                        s,
                        "processor\t: {i}\nvendor_id\t: unknown\nmodel name\t: unknown\n\n"
                    );
                }
                s.into_bytes()
            });
        let mem_total = nix::sys::sysinfo::sysinfo()
            .map(|s| s.ram_total())
            .unwrap_or(1 << 30);
        HostFacts {
            ncpus,
            cpuinfo,
            mem_total,
            boot_id: random_uuid(),
        }
    }

    /// `0-N` as the cpu list files print it.
    pub fn cpu_list(&self) -> String {
        match self.ncpus {
            0 | 1 => "0\n".into(),
            n => format!("0-{}\n", n - 1),
        }
    }
}

/// The first `n` blank-line-separated blocks of `text`, each ending in a blank line.
fn first_blocks(text: &[u8], n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let blocks = text
        .split(|&b| b == b'\n')
        .collect::<Vec<_>>()
        .split(|line| line.is_empty())
        .filter(|b| !b.is_empty())
        .take(n)
        .map(|lines| lines.join(&b'\n'))
        .collect::<Vec<_>>();
    for b in blocks {
        out.extend_from_slice(&b);
        out.extend_from_slice(b"\n\n");
    }
    out
}

/// A random version-4 UUID, as `/proc/sys/kernel/random/uuid` prints it.
fn random_uuid() -> String {
    let mut b = [0u8; 16];
    let _ = crate::host::getrandom(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let part = |r: std::ops::Range<usize>| h.get(r).unwrap_or_default().to_string();
    format!(
        "{}-{}-{}-{}-{}",
        part(0..8),
        part(8..12),
        part(12..16),
        part(16..20),
        part(20..32)
    )
}

/// The kernel and the task asking: `ENOENT` outside a task thread.
pub(crate) fn caller() -> Result<(Arc<Kernel>, Arc<crate::kernel::process::TaskShared>)> {
    current().ok_or(errno!(ENOENT, "/proc outside a task"))
}

/// The time since the sandbox booted, as `/proc/uptime` and `sysinfo` count it.
fn uptime(k: &Kernel) -> std::time::Duration {
    k.boot_time.elapsed() + crate::syscalls::time::BOOT_OFFSET
}

fn ticks(d: std::time::Duration) -> u64 {
    (d.as_millis() / (1000 / u128::from(CLK_TCK))) as u64
}

/// A fresh `/proc`.
pub fn new_procfs() -> Arc<dyn Inode> {
    let facts = host_facts();
    let b = Builder::new(PROC_SUPER_MAGIC);
    let statics = static_entries(&b, facts);
    let (bl, bf) = (b.clone(), b.clone());
    let statics_l = statics.clone();
    b.root(
        Box::new(move || {
            let mut all = statics_l.clone();
            if let Ok((k, _)) = caller() {
                let mut pids: Vec<i32> = k.pids().groups.keys().copied().collect();
                pids.sort_unstable();
                for p in pids {
                    all.push((p.to_string().into_bytes(), pid::process_dir(&bl, p, None)));
                }
            }
            Ok(all)
        }),
        Some(Box::new(move |name| {
            if let Some((_, i)) = statics.iter().find(|(n, _)| n == name) {
                return Ok(i.clone());
            }
            let n = parse_id(name).ok_or(errno!(ENOENT))?;
            let (k, _) = caller()?;
            let pids = k.pids();
            // A thread's id names its process too, hidden from the listing (as in Linux).
            if pids.group(n).is_some() {
                Ok(pid::process_dir(&bf, n, None))
            } else if let Some(t) = pids.task(n) {
                Ok(pid::process_dir(&bf, t.tg.tgid, Some(n)))
            } else {
                Err(Errno::ENOENT.into())
            }
        })),
    )
}

/// A pid or fd as a directory entry names it: decimal, no sign, no leading zero (Linux's
/// `name_to_int`).
fn parse_id(name: &[u8]) -> Option<i32> {
    let s = std::str::from_utf8(name).ok()?;
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.starts_with('0') && s.len() > 1)
    {
        return None;
    }
    s.parse().ok()
}

fn static_entries(b: &Builder, facts: &'static HostFacts) -> Vec<(Vec<u8>, Arc<dyn Inode>)> {
    let mut v: Vec<(&str, Arc<dyn Inode>)> = Vec::new();
    v.push((
        "self",
        b.link(
            "self",
            0o777,
            || Ok(caller()?.1.tg.tgid.to_string().into_bytes()),
            None,
        ),
    ));
    v.push((
        "thread-self",
        b.link(
            "thread-self",
            0o777,
            || {
                let (_, t) = caller()?;
                Ok(format!("{}/task/{}", t.tg.tgid, t.tid).into_bytes())
            },
            None,
        ),
    ));
    v.push((
        "mounts",
        b.link("mounts", 0o777, || Ok(b"self/mounts".to_vec()), None),
    ));
    let f = facts;
    v.push((
        "cpuinfo",
        b.file("cpuinfo", 0o444, move || Ok(f.cpuinfo.clone())),
    ));
    let f = facts;
    v.push(("meminfo", b.file("meminfo", 0o444, move || meminfo(f))));
    let f = facts;
    v.push(("stat", b.file("stat", 0o444, move || stat(f))));
    let f = facts;
    v.push((
        "uptime",
        b.file("uptime", 0o444, move || {
            let (k, _) = caller()?;
            let up = uptime(&k);
            let idle = up.saturating_mul(f.ncpus as u32).saturating_sub(busy(&k));
            Ok(format!(
                "{}.{:02} {}.{:02}\n",
                up.as_secs(),
                up.subsec_millis() / 10,
                idle.as_secs(),
                idle.subsec_millis() / 10
            )
            .into_bytes())
        }),
    ));
    v.push(("loadavg", b.file("loadavg", 0o444, loadavg)));
    // The sandbox's sockets and interfaces (Linux makes this `self/net`, per namespace;
    // the sandbox has one).
    let net: Vec<(&str, Arc<dyn Inode>)> = crate::net::procnet::FILES
        .iter()
        .map(|&(name, make)| {
            let node: Arc<dyn Inode> = b.file(&format!("net/{name}"), 0o444, move || Ok(make()));
            (name, node)
        })
        .collect();
    v.push(("net", b.static_dir("net", net)));
    v.push((
        "version",
        b.text(
            "version",
            format!(
                "Linux version {KERNEL_RELEASE} (carapace@carapace) (carapace) {KERNEL_VERSION}\n"
            ),
        ),
    ));
    v.push((
        "filesystems",
        b.text(
            "filesystems",
            "nodev\tsysfs\nnodev\ttmpfs\nnodev\tproc\nnodev\tdevtmpfs\nnodev\tdevpts\n\
             nodev\tpipefs\nnodev\toverlay\nnodev\t9p\n",
        ),
    ));
    v.push((
        "cmdline",
        b.text("cmdline", "BOOT_IMAGE=/carapace console=ttyS0\n"),
    ));
    v.push((
        "swaps",
        b.text(
            "swaps",
            "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n",
        ),
    ));
    v.push(("sys", sys::proc_sys(b, facts)));
    v.into_iter()
        .map(|(n, i)| (n.as_bytes().to_vec(), i))
        .collect()
}

/// CPU time used by every process of the sandbox.
fn busy(k: &Kernel) -> std::time::Duration {
    let groups: Vec<_> = k.pids().groups.values().cloned().collect();
    groups.iter().map(|g| g.cpu_time()).sum()
}

fn meminfo(f: &HostFacts) -> Result<Vec<u8>> {
    let (k, _) = caller()?;
    let total = f.mem_total / 1024;
    let used = k.memory_file.allocated_bytes() / 1024;
    let free = total.saturating_sub(used);
    let mut s = String::new();
    let rows: [(&str, u64); 20] = [
        ("MemTotal", total),
        ("MemFree", free),
        ("MemAvailable", free),
        ("Buffers", 0),
        ("Cached", 0),
        ("SwapCached", 0),
        ("Active", used),
        ("Inactive", 0),
        ("Active(anon)", used),
        ("Inactive(anon)", 0),
        ("Active(file)", 0),
        ("Inactive(file)", 0),
        ("Unevictable", 0),
        ("Mlocked", 0),
        ("SwapTotal", 0),
        ("SwapFree", 0),
        ("Dirty", 0),
        ("Writeback", 0),
        ("AnonPages", used),
        ("Mapped", 0),
    ];
    for (name, kb) in rows {
        let _ = writeln!(s, "{:<16}{kb:>8} kB", format!("{name}:"));
    }
    for name in ["Shmem", "Slab", "SReclaimable", "SUnreclaim", "KernelStack"] {
        let _ = writeln!(s, "{:<16}{:>8} kB", format!("{name}:"), 0);
    }
    for name in ["PageTables", "CommitLimit"] {
        let v = if name == "CommitLimit" { total } else { 0 };
        let _ = writeln!(s, "{:<16}{v:>8} kB", format!("{name}:"));
    }
    let _ = writeln!(s, "{:<16}{used:>8} kB", "Committed_AS:");
    let _ = writeln!(s, "{:<16}{:>8} kB", "VmallocTotal:", 34_359_738_367u64);
    let _ = writeln!(s, "{:<16}{:>8} kB", "VmallocUsed:", 0);
    let _ = writeln!(s, "{:<16}{:>8} kB", "VmallocChunk:", 0);
    let _ = writeln!(s, "{:<16}{:>8}", "HugePages_Total:", 0);
    let _ = writeln!(s, "{:<16}{:>8}", "HugePages_Free:", 0);
    let _ = writeln!(s, "{:<16}{:>8} kB", "Hugepagesize:", 2048);
    Ok(s.into_bytes())
}

fn stat(f: &HostFacts) -> Result<Vec<u8>> {
    let (k, _) = caller()?;
    let up = uptime(&k);
    let user = ticks(busy(&k));
    let n = f.ncpus.max(1) as u64;
    let idle = ticks(up).saturating_mul(n).saturating_sub(user);
    let mut s = String::new();
    let _ = writeln!(s, "cpu  {user} 0 0 {idle} 0 0 0 0 0 0");
    for i in 0..n {
        let _ = writeln!(s, "cpu{i} {} 0 0 {} 0 0 0 0 0 0", user / n, idle / n);
    }
    let btime = crate::vfs::Timespec::now()
        .sec
        .saturating_sub(i64::try_from(up.as_secs()).unwrap_or(0));
    let (procs, threads) = {
        let p = k.pids();
        (p.groups.len(), p.tasks.len())
    };
    let _ = writeln!(s, "intr 0");
    let _ = writeln!(s, "ctxt 0");
    let _ = writeln!(s, "btime {btime}");
    let _ = writeln!(s, "processes {procs}");
    let _ = writeln!(s, "procs_running {}", threads.max(1));
    let _ = writeln!(s, "procs_blocked 0");
    let _ = writeln!(s, "softirq 0 0 0 0 0 0 0 0 0 0 0");
    Ok(s.into_bytes())
}

fn loadavg() -> Result<Vec<u8>> {
    let (k, _) = caller()?;
    let p = k.pids();
    let last = p
        .tasks
        .keys()
        .chain(p.groups.keys())
        .max()
        .copied()
        .unwrap_or(1);
    Ok(format!("0.00 0.00 0.00 1/{} {last}\n", p.tasks.len()).into_bytes())
}

#[cfg(test)]
mod tests;
