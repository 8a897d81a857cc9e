//! The kernel parameters the sentry owns, by their sysctl names (OCI `linux.sysctl`, and
//! `/proc/sys` inside): the UTS names, and the network parameters its netstack honours.
//! Anything else is the host kernel's, which a container must not change: the runtime
//! refuses such keys when it reads the spec.
#![deny(unsafe_code)]

use crate::error::Result;
use crate::kernel::Kernel;
use crate::return_errno;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

/// Linux's limit on the host and domain names (`__NEW_UTS_LEN`).
const UTS_LEN: usize = 64;

/// One parameter the sentry owns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owned {
    Hostname,
    Domainname,
    /// `net.ipv4.ping_group_range`: the groups that may make ping sockets
    /// (`net/inet/icmp.rs`).
    PingGroupRange,
    /// `net.ipv4.ip_unprivileged_port_start`: the first port binding needs no
    /// `CAP_NET_BIND_SERVICE`.
    UnprivilegedPortStart,
    /// `fs.mqueue.*`: the limits of POSIX message queues (`fs::mqueue::limits`).
    Mqueue(MqParam),
}

/// The parameters under `fs.mqueue`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MqParam {
    MsgMax,
    MsgsizeMax,
    QueuesMax,
    MsgDefault,
    MsgsizeDefault,
}

impl MqParam {
    pub const ALL: [(MqParam, &'static str); 5] = [
        (MqParam::MsgMax, "msg_max"),
        (MqParam::MsgsizeMax, "msgsize_max"),
        (MqParam::QueuesMax, "queues_max"),
        (MqParam::MsgDefault, "msg_default"),
        (MqParam::MsgsizeDefault, "msgsize_default"),
    ];

    fn value(self) -> &'static std::sync::atomic::AtomicU64 {
        use crate::fs::mqueue::limits;
        match self {
            MqParam::MsgMax => &limits::MSG_MAX,
            MqParam::MsgsizeMax => &limits::MSGSIZE_MAX,
            MqParam::QueuesMax => &limits::QUEUES_MAX,
            MqParam::MsgDefault => &limits::MSG_DEFAULT,
            MqParam::MsgsizeDefault => &limits::MSGSIZE_DEFAULT,
        }
    }

    /// Linux's bounds (`ipc/mq_sysctl.c`).
    fn range(self) -> std::ops::RangeInclusive<u64> {
        use crate::fs::mqueue::{HARD_MSGMAX, HARD_MSGSIZEMAX};
        match self {
            MqParam::MsgMax | MqParam::MsgDefault => 1..=HARD_MSGMAX,
            MqParam::MsgsizeMax | MqParam::MsgsizeDefault => 128..=HARD_MSGSIZEMAX,
            MqParam::QueuesMax => 0..=u64::from(u32::MAX),
        }
    }
}

/// The parameter `key` names (`kernel.hostname`, or with slashes as under `/proc/sys`).
pub fn owned(key: &str) -> Option<Owned> {
    match key.replace('/', ".").as_str() {
        "kernel.hostname" => Some(Owned::Hostname),
        "kernel.domainname" => Some(Owned::Domainname),
        "net.ipv4.ping_group_range" => Some(Owned::PingGroupRange),
        "net.ipv4.ip_unprivileged_port_start" => Some(Owned::UnprivilegedPortStart),
        k => {
            let name = k.strip_prefix("fs.mqueue.")?;
            MqParam::ALL
                .iter()
                .find(|(_, n)| *n == name)
                .map(|(p, _)| Owned::Mqueue(*p))
        }
    }
}

/// Linux's default: nobody may open ping sockets (`1 0`).
static PING_GROUP_RANGE: Mutex<(u32, u32)> = Mutex::new((1, 0));
static UNPRIVILEGED_PORT_START: AtomicU32 = AtomicU32::new(1024);

/// The first port an unprivileged process may bind.
pub fn unprivileged_port_start() -> u32 {
    UNPRIVILEGED_PORT_START.load(Ordering::Relaxed)
}

/// `net.ipv4.ping_group_range` as it is now.
pub fn ping_group_range() -> (u32, u32) {
    *PING_GROUP_RANGE.lock().unwrap_or_else(|e| e.into_inner())
}

/// `value` checked for parameter `p`, without a trailing newline.
fn parse(p: Owned, value: &[u8]) -> Result<Parsed> {
    let v = value.strip_suffix(b"\n").unwrap_or(value);
    let text = || std::str::from_utf8(v).map_err(|_| crate::errno!(EINVAL));
    Ok(match p {
        Owned::Hostname | Owned::Domainname => {
            if v.len() > UTS_LEN {
                return_errno!(EINVAL);
            }
            Parsed::Name(v.to_vec())
        }
        Owned::PingGroupRange => {
            let mut it = text()?.split_whitespace().map(str::parse::<u32>);
            match (it.next(), it.next(), it.next()) {
                (Some(Ok(lo)), Some(Ok(hi)), None) if lo <= i32::MAX as u32 => {
                    Parsed::Range(lo, hi)
                }
                _ => return_errno!(EINVAL),
            }
        }
        Owned::UnprivilegedPortStart => match text()?.trim().parse::<u32>() {
            Ok(n) if n <= 65535 => Parsed::Number(n),
            _ => return_errno!(EINVAL),
        },
        Owned::Mqueue(m) => match text()?.trim().parse::<u64>() {
            Ok(n) if m.range().contains(&n) => Parsed::Big(n),
            _ => return_errno!(EINVAL),
        },
    })
}

enum Parsed {
    Name(Vec<u8>),
    Range(u32, u32),
    Number(u32),
    Big(u64),
}

/// Check `key = value` as the runtime reads it from the spec: the error names what is
/// wrong.
pub fn check(key: &str, value: &str) -> std::result::Result<(), String> {
    let Some(p) = owned(key) else {
        return Err(format!(
            "sysctl {key:?} is not supported: the sandbox owns only kernel.hostname, \
             kernel.domainname, net.ipv4.ping_group_range, \
             net.ipv4.ip_unprivileged_port_start and fs.mqueue.*; others are the host \
             kernel's"
        ));
    };
    parse(p, value.as_bytes())
        .map(|_| ())
        .map_err(|_| format!("sysctl {key:?}: invalid value {value:?}"))
}

/// Set parameter `p` of kernel `k` (the setup of the sandbox, or a write under
/// `/proc/sys` by a privileged process).
pub fn set(k: &Kernel, p: Owned, value: &[u8]) -> Result<()> {
    match parse(p, value)? {
        Parsed::Name(n) => {
            let field = if p == Owned::Hostname {
                &k.hostname
            } else {
                &k.domainname
            };
            *crate::kernel::process::lock(field) = n;
        }
        Parsed::Range(lo, hi) => {
            *PING_GROUP_RANGE.lock().unwrap_or_else(|e| e.into_inner()) = (lo, hi);
        }
        Parsed::Number(n) => UNPRIVILEGED_PORT_START.store(n, Ordering::Relaxed),
        Parsed::Big(n) => {
            if let Owned::Mqueue(m) = p {
                m.value().store(n, Ordering::Relaxed);
            }
        }
    }
    Ok(())
}

/// The value of `p` as `/proc/sys` shows it.
pub fn get(k: &Kernel, p: Owned) -> Vec<u8> {
    let mut v = match p {
        Owned::Hostname => crate::kernel::process::lock(&k.hostname).clone(),
        Owned::Domainname => crate::kernel::process::lock(&k.domainname).clone(),
        Owned::PingGroupRange => {
            let (lo, hi) = ping_group_range();
            format!("{lo}\t{hi}").into_bytes()
        }
        Owned::UnprivilegedPortStart => unprivileged_port_start().to_string().into_bytes(),
        Owned::Mqueue(m) => m.value().load(Ordering::Relaxed).to_string().into_bytes(),
    };
    v.push(b'\n');
    v
}

/// Apply the spec's `linux.sysctl` at boot; `key` must be one the sentry owns.
pub fn apply(k: &Kernel, key: &str, value: &str) -> Result<()> {
    let p = owned(key).ok_or(crate::errno!(EINVAL, "not a sysctl of the sandbox"))?;
    set(k, p, value.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_are_checked() {
        assert!(check("kernel.hostname", "box").is_ok());
        assert!(check("kernel/domainname", "example.org").is_ok());
        assert!(check("net.ipv4.ping_group_range", "0 2147483647").is_ok());
        assert!(check("net.ipv4.ip_unprivileged_port_start", "0").is_ok());
        assert!(check("fs.mqueue.msg_max", "100").is_ok());
        assert!(check("fs.mqueue.msg_max", "0").is_err());
        assert!(check("fs.mqueue.nope", "1").is_err());
        let e = check("kernel.shmmax", "1").expect_err("not owned");
        assert!(e.contains("kernel.shmmax"), "{e}");
        assert!(check("vm.swappiness", "1").is_err());
        assert!(check("net.ipv4.ping_group_range", "0").is_err());
        assert!(check("net.ipv4.ip_unprivileged_port_start", "70000").is_err());
        assert!(check("kernel.hostname", &"x".repeat(65)).is_err());
    }
}
