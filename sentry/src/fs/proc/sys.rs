//! `/proc/sys`: the sandbox's kernel parameters, read-only except the host name.

use super::node::Builder;
use super::{caller, random_uuid, HostFacts};
use crate::kernel::{KERNEL_RELEASE, KERNEL_VERSION};
use crate::return_errno;
use crate::vfs::Inode;
use std::sync::Arc;

/// Linux's limit on the host name (`__NEW_UTS_LEN`).
const HOST_NAME_MAX: usize = 64;

/// `CAP_NET_ADMIN` (capabilities(7)).
const CAP_NET_ADMIN: u32 = 12;

fn line(s: &str) -> Vec<u8> {
    format!("{s}\n").into_bytes()
}

/// What was written to a sysctl file, without the newline `echo` adds.
fn trimmed(buf: &[u8]) -> &[u8] {
    buf.strip_suffix(b"\n").unwrap_or(buf)
}

pub fn proc_sys(b: &Builder, facts: &HostFacts) -> Arc<dyn Inode> {
    let t = |key: &str, v: &str| b.text(&format!("sys/{key}"), line(v));
    let uts = |key: &str,
               get: fn(&crate::kernel::Kernel) -> Vec<u8>,
               field: fn(&crate::kernel::Kernel) -> &std::sync::Mutex<Vec<u8>>| {
        b.file_rw(
            &format!("sys/kernel/{key}"),
            0o644,
            move || {
                let (k, _) = caller()?;
                let mut v = get(&k);
                v.push(b'\n');
                Ok(v)
            },
            move |buf| {
                let (k, t) = caller()?;
                let privileged = crate::kernel::process::lock(&t.proc)
                    .creds
                    .has_cap(crate::kernel::creds::CAP_SYS_ADMIN);
                if !privileged {
                    return_errno!(EPERM);
                }
                let v = trimmed(buf);
                if v.len() > HOST_NAME_MAX {
                    return_errno!(EINVAL);
                }
                *crate::kernel::process::lock(field(&k)) = v.to_vec();
                Ok(())
            },
        )
    };
    let boot_id = facts.boot_id.clone();
    let random = b.static_dir(
        "sys/kernel/random",
        vec![
            ("boot_id", t("kernel/random/boot_id", &boot_id)),
            (
                "uuid",
                b.file("sys/kernel/random/uuid", 0o444, || Ok(line(&random_uuid()))),
            ),
            ("entropy_avail", t("kernel/random/entropy_avail", "256")),
            ("poolsize", t("kernel/random/poolsize", "256")),
        ],
    );
    let kernel = b.static_dir(
        "sys/kernel",
        vec![
            (
                "hostname",
                uts(
                    "hostname",
                    |k| crate::kernel::process::lock(&k.hostname).clone(),
                    |k| &k.hostname,
                ),
            ),
            (
                "domainname",
                uts(
                    "domainname",
                    |k| crate::kernel::process::lock(&k.domainname).clone(),
                    |k| &k.domainname,
                ),
            ),
            ("osrelease", t("kernel/osrelease", KERNEL_RELEASE)),
            ("ostype", t("kernel/ostype", "Linux")),
            ("version", t("kernel/version", KERNEL_VERSION)),
            ("pid_max", t("kernel/pid_max", "4194304")),
            ("threads-max", t("kernel/threads-max", "4096")),
            ("ngroups_max", t("kernel/ngroups_max", "65536")),
            (
                "cap_last_cap",
                t(
                    "kernel/cap_last_cap",
                    &crate::kernel::creds::CAP_LAST_CAP.to_string(),
                ),
            ),
            ("overflowuid", t("kernel/overflowuid", "65534")),
            ("overflowgid", t("kernel/overflowgid", "65534")),
            ("random", random),
        ],
    );
    let vm = b.static_dir(
        "sys/vm",
        vec![
            ("overcommit_memory", t("vm/overcommit_memory", "0")),
            ("max_map_count", t("vm/max_map_count", "65530")),
            ("mmap_min_addr", t("vm/mmap_min_addr", "65536")),
        ],
    );
    // Root may change them (the files are 0644), as in Linux's IPC namespace.
    let mq_entries: Vec<(&str, Arc<dyn Inode>)> = super::sysctl::MqParam::ALL
        .iter()
        .map(|&(p, name)| {
            let param = super::sysctl::Owned::Mqueue(p);
            let node = b.file_rw(
                &format!("sys/fs/mqueue/{name}"),
                0o644,
                move || Ok(super::sysctl::get(&caller()?.0, param)),
                move |buf| super::sysctl::set(&caller()?.0, param, buf),
            );
            (name, node)
        })
        .collect();
    let mqueue = b.static_dir("sys/fs/mqueue", mq_entries);
    let fs = b.static_dir(
        "sys/fs",
        vec![
            ("mqueue", mqueue),
            ("file-max", t("fs/file-max", "9223372036854775807")),
            ("nr_open", t("fs/nr_open", "1048576")),
            ("pipe-max-size", t("fs/pipe-max-size", "1048576")),
        ],
    );
    // The network parameters the sentry owns (see `sysctl`): root may change them.
    let net_param = |key: &str, p: super::sysctl::Owned| {
        b.file_rw(
            &format!("sys/net/ipv4/{key}"),
            0o644,
            move || Ok(super::sysctl::get(&caller()?.0, p)),
            move |buf| {
                let (k, t) = caller()?;
                let privileged = crate::kernel::process::lock(&t.proc)
                    .creds
                    .has_cap(CAP_NET_ADMIN);
                if !privileged {
                    return_errno!(EPERM);
                }
                super::sysctl::set(&k, p, buf)
            },
        )
    };
    let ipv4 = b.static_dir(
        "sys/net/ipv4",
        vec![
            (
                "ping_group_range",
                net_param("ping_group_range", super::sysctl::Owned::PingGroupRange),
            ),
            (
                "ip_unprivileged_port_start",
                net_param(
                    "ip_unprivileged_port_start",
                    super::sysctl::Owned::UnprivilegedPortStart,
                ),
            ),
        ],
    );
    let net = b.static_dir(
        "sys/net",
        vec![
            ("ipv4", ipv4),
            (
                "core",
                b.static_dir(
                    "sys/net/core",
                    vec![("somaxconn", t("net/core/somaxconn", "4096"))],
                ),
            ),
        ],
    );
    b.static_dir(
        "sys",
        vec![("kernel", kernel), ("vm", vm), ("fs", fs), ("net", net)],
    )
}
