//! sysfs: the little of `/sys` programs probe. The CPU topology (`online`, `possible`,
//! `present` and a `cpuN` directory per CPU, from the host's CPU count) and
//! `/sys/fs/cgroup`, where the sandbox's cgroupfs (`fs::cgroup`) is mounted.
//!
//! Missing: `/sys/class`, `/sys/devices` beyond the CPUs, `/sys/kernel`, `/sys/block`.
#![deny(unsafe_code)]

use crate::fs::proc::node::Builder;
use crate::fs::proc::{host_facts, HostFacts};
use crate::vfs::Inode;
use std::sync::Arc;

/// `SYSFS_MAGIC`.
const SYSFS_MAGIC: i64 = 0x6265_6572;

/// A fresh `/sys`.
pub fn new_sysfs() -> Arc<dyn Inode> {
    new_sysfs_for(host_facts())
}

pub fn new_sysfs_for(facts: &HostFacts) -> Arc<dyn Inode> {
    let b = Builder::new(SYSFS_MAGIC);
    let list = facts.cpu_list();
    let mut cpu: Vec<(String, Arc<dyn Inode>)> = vec![
        ("online".into(), b.text("cpu/online", list.clone())),
        ("possible".into(), b.text("cpu/possible", list.clone())),
        ("present".into(), b.text("cpu/present", list)),
        ("offline".into(), b.text("cpu/offline", "\n")),
        ("kernel_max".into(), b.text("cpu/kernel_max", "8191\n")),
    ];
    for i in 0..facts.ncpus {
        let mut entries: Vec<(&str, Arc<dyn Inode>)> = Vec::new();
        if i > 0 {
            entries.push(("online", b.text(&format!("cpu/cpu{i}/online"), "1\n")));
        }
        cpu.push((
            format!("cpu{i}"),
            b.static_dir(&format!("cpu/cpu{i}"), entries),
        ));
    }
    let cpu: Vec<(&str, Arc<dyn Inode>)> =
        cpu.iter().map(|(n, i)| (n.as_str(), i.clone())).collect();
    let cpu = b.static_dir("cpu", cpu);
    let system = b.static_dir("system", vec![("cpu", cpu)]);
    let devices = b.static_dir("devices", vec![("system", system)]);
    let cgroup = b.static_dir("fs/cgroup", Vec::new());
    let fs = b.static_dir("fs", vec![("cgroup", cgroup)]);
    let entries: Vec<(Vec<u8>, Arc<dyn Inode>)> =
        vec![(b"devices".to_vec(), devices), (b"fs".to_vec(), fs)];
    b.root(Box::new(move || Ok(entries.clone())), None)
}
