//! Sockets. [`Socket`] is what every socket family implements beside
//! [`FileDescription`] (reached through [`FileDescription::as_socket`]); the syscall layer
//! (`syscalls/socket.rs`) decodes addresses, message headers and control messages once and
//! talks to sockets only through it. `unix/` is `AF_UNIX`, always inside the sentry
//! (DESIGN.md §4); `inet/` is `AF_INET`/`AF_INET6` on the sentry's own TCP/IP stack;
//! `netlink.rs` answers `NETLINK_ROUTE` from the sandbox's interfaces (`iface.rs`).
//!
//! Socket operations may block: they take the task and wait through [`wait_ready`], which
//! gives the socket rules for `O_NONBLOCK`/`MSG_DONTWAIT`, `SO_RCVTIMEO`/`SO_SNDTIMEO` and
//! signals.
#![deny(unsafe_code)]

pub mod hostinet;
pub mod iface;
pub mod ifreq;
pub mod inet;
pub mod netlink;
pub mod procnet;
pub mod unix;

use crate::error::Result;
use crate::kernel::wait::{events, WaitQueue};
use crate::kernel::Task;
use crate::vfs::{FileDescription, Stat, Timespec};
use crate::{errno, return_errno};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Where the sandbox's `AF_INET`/`AF_INET6` sockets live (`--network`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NetworkMode {
    /// The sentry's own stack with loopback only.
    #[default]
    None,
    /// Host sockets held by the sentry (hostinet).
    Host,
    /// The sentry's own stack attached to an interface of the network namespace the
    /// sandbox runs in, through a packet socket (`inet/packet.rs`).
    Sandbox,
}

static MODE: OnceLock<NetworkMode> = OnceLock::new();

/// Set once, at boot.
pub fn set_mode(mode: NetworkMode) {
    let _ = MODE.set(mode);
}

pub fn mode() -> NetworkMode {
    MODE.get().copied().unwrap_or_default()
}

/// `shutdown` bits as Linux keeps them in `sk_shutdown`.
pub const RCV_SHUTDOWN: u8 = 1;
pub const SEND_SHUTDOWN: u8 = 2;
pub const SHUTDOWN_MASK: u8 = 3;

/// `/proc/sys/net/core/{w,r}mem_default` and `_max`.
pub const WMEM_DEFAULT: usize = 212_992;
pub const RMEM_DEFAULT: usize = 212_992;
pub const MEM_MAX: usize = 212_992;
/// Linux's `SOCK_MIN_SNDBUF` and `SOCK_MIN_RCVBUF` on x86_64.
const SOCK_MIN_SNDBUF: usize = 4608;
const SOCK_MIN_RCVBUF: usize = 2304;
/// Linux's `SOMAXCONN`: listen backlogs are capped here.
pub const SOMAXCONN: usize = 4096;

/// `struct ucred`: who sent a message or is at the other end (`SO_PEERCRED`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Ucred {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

/// Linux's `overflowuid`/`overflowgid`: what `SO_PEERCRED` shows with no peer.
pub const OVERFLOW_ID: u32 = 65534;

impl Ucred {
    /// The credentials a socket records for `task` (`SO_PEERCRED`: effective ids).
    pub fn of_task(task: &Task) -> Ucred {
        Ucred {
            pid: task.tgid,
            uid: task.creds.euid,
            gid: task.creds.egid,
        }
    }

    /// What a message carries when the sender gave no `SCM_CREDENTIALS`: real ids, as
    /// Linux's `current_uid_gid`.
    pub fn real_of_task(task: &Task) -> Ucred {
        Ucred {
            pid: task.tgid,
            uid: task.creds.ruid,
            gid: task.creds.rgid,
        }
    }

    /// No peer: pid 0 and the overflow ids.
    pub fn none() -> Ucred {
        Ucred {
            pid: 0,
            uid: OVERFLOW_ID,
            gid: OVERFLOW_ID,
        }
    }
}

/// One message to send, decoded by the syscall layer.
pub struct SendRequest<'a> {
    pub data: &'a [u8],
    /// The destination (`msg_name`), raw `sockaddr` bytes.
    pub addr: Option<&'a [u8]>,
    /// Files passed with `SCM_RIGHTS`.
    pub rights: Vec<Arc<dyn FileDescription>>,
    /// `SCM_CREDENTIALS` as given (already checked against the sender's ids).
    pub creds: Option<Ucred>,
    /// `MSG_*` flags.
    pub flags: i32,
}

/// What one receive produced.
#[derive(Default)]
pub struct Received {
    pub data: Vec<u8>,
    /// The message's whole length (a datagram longer than the buffer): what `MSG_TRUNC`
    /// returns.
    pub full_len: usize,
    /// The sender's address, raw `sockaddr` bytes, for datagram sockets.
    pub addr: Option<Vec<u8>>,
    pub rights: Vec<Arc<dyn FileDescription>>,
    /// Credentials to report (`SO_PASSCRED` was on).
    pub creds: Option<Ucred>,
    /// The datagram did not fit the buffer (`MSG_TRUNC` in `msg_flags`).
    pub truncated: bool,
}

/// A socket, beside its [`FileDescription`]. Addresses are raw `sockaddr` bytes: each
/// family decodes its own. `nonblock` is `O_NONBLOCK` or `MSG_DONTWAIT`.
pub trait Socket: Send + Sync {
    fn family(&self) -> i32;
    fn sock_type(&self) -> i32;
    fn protocol(&self) -> i32;

    fn bind(&self, task: &Task, addr: &[u8]) -> Result<()>;
    fn listen(&self, task: &Task, backlog: i32) -> Result<()>;
    /// A new connection: its description (with `O_NONBLOCK` if `new_nonblock`) and the
    /// peer's address.
    fn accept(
        &self,
        task: &Task,
        nonblock: bool,
        new_nonblock: bool,
    ) -> Result<(Arc<dyn FileDescription>, Vec<u8>)>;
    fn connect(&self, task: &Task, addr: &[u8], nonblock: bool) -> Result<()>;
    /// Send; the number of bytes taken.
    fn sendmsg(&self, task: &Task, req: SendRequest<'_>, nonblock: bool) -> Result<usize>;
    /// Receive at most `len` bytes; `flags` are the `MSG_*` flags.
    fn recvmsg(&self, task: &Task, len: usize, flags: i32, nonblock: bool) -> Result<Received>;
    fn shutdown(&self, how: i32) -> Result<()>;
    fn sockname(&self) -> Result<Vec<u8>>;
    fn peername(&self) -> Result<Vec<u8>>;
    /// The option's value, at most `len` bytes of it.
    fn getsockopt(&self, task: &Task, level: i32, name: i32, len: usize) -> Result<Vec<u8>>;
    fn setsockopt(&self, task: &Task, level: i32, name: i32, val: &[u8]) -> Result<()>;
}

/// Run `op`, an attempt that answers `None` when it would block. A blocking socket waits
/// on `queues` for `ev` until `deadline` (`SO_RCVTIMEO`/`SO_SNDTIMEO`), then fails with
/// `EAGAIN`, as Linux does. A signal ends the wait with `ERESTARTSYS`, or with `EINTR`
/// when a timeout is set (Linux's `sock_intr_errno`).
pub fn wait_ready<T>(
    task: &Task,
    queues: &[&WaitQueue],
    ev: u32,
    nonblock: bool,
    timeout: Option<Duration>,
    mut op: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    if nonblock || timeout == Some(Duration::ZERO) {
        return op()?.ok_or(errno!(EAGAIN));
    }
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let mask = ev | events::ERR | events::HUP;
    let waits: Vec<(&WaitQueue, u32)> = queues.iter().map(|q| (*q, mask)).collect();
    let r = task.block_until(&waits, deadline, op);
    match r {
        Err(e) if e.errno == crate::Errno::ETIMEDOUT => Err(errno!(EAGAIN)),
        Err(e) if e.errno == crate::Errno::ERESTARTSYS && timeout.is_some() => Err(errno!(EINTR)),
        r => r,
    }
}

/// The `SOL_SOCKET` options every family keeps the same way.
#[derive(Clone, Debug)]
pub struct CommonOpts {
    pub sndbuf: usize,
    pub rcvbuf: usize,
    pub rcvtimeo: Option<Duration>,
    pub sndtimeo: Option<Duration>,
    pub passcred: bool,
    pub reuseaddr: bool,
    pub reuseport: bool,
    pub keepalive: bool,
    pub broadcast: bool,
    pub oobinline: bool,
    pub linger: (i32, i32),
    pub rcvlowat: i32,
}

impl Default for CommonOpts {
    fn default() -> CommonOpts {
        CommonOpts {
            sndbuf: WMEM_DEFAULT,
            rcvbuf: RMEM_DEFAULT,
            rcvtimeo: None,
            sndtimeo: None,
            passcred: false,
            reuseaddr: false,
            reuseport: false,
            keepalive: false,
            broadcast: false,
            oobinline: false,
            linger: (0, 0),
            rcvlowat: 1,
        }
    }
}

/// `SO_RCVTIMEO_NEW`/`SO_SNDTIMEO_NEW`: the same 16-byte timeval as the old names on x86_64.
const SO_RCVTIMEO_NEW: i32 = 66;
const SO_SNDTIMEO_NEW: i32 = 67;

fn int_bytes(v: i32) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

fn clamp_i32(v: usize) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

fn timeval_bytes(t: Option<Duration>) -> Vec<u8> {
    let (s, us) = t.map_or((0, 0), |d| {
        (d.as_secs() as i64, i64::from(d.subsec_micros()))
    });
    let mut v = s.to_ne_bytes().to_vec();
    v.extend_from_slice(&us.to_ne_bytes());
    v
}

/// `sock_set_timeout`: zero means no timeout, a negative time means "do not wait",
/// microseconds must be in range (`EDOM`).
fn parse_timeval(val: &[u8]) -> Result<Option<Duration>> {
    let sec = val
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map(i64::from_ne_bytes)
        .ok_or(errno!(EINVAL))?;
    let usec = val
        .get(8..16)
        .and_then(|b| b.try_into().ok())
        .map(i64::from_ne_bytes)
        .ok_or(errno!(EINVAL))?;
    if !(0..1_000_000).contains(&usec) {
        return_errno!(EDOM);
    }
    if sec < 0 {
        return Ok(Some(Duration::ZERO));
    }
    if sec == 0 && usec == 0 {
        return Ok(None);
    }
    Ok(Some(
        Duration::from_secs(sec as u64) + Duration::from_micros(usec as u64),
    ))
}

/// The first four bytes of an option value as an int (`EINVAL` if shorter).
pub fn opt_int(val: &[u8]) -> Result<i32> {
    val.get(..4)
        .and_then(|b| b.try_into().ok())
        .map(i32::from_ne_bytes)
        .ok_or(errno!(EINVAL))
}

impl CommonOpts {
    /// A `SOL_SOCKET` option kept here; `None` if the family must answer it.
    pub fn get(&self, name: i32) -> Option<Vec<u8>> {
        Some(match name {
            libc::SO_SNDBUF => int_bytes(clamp_i32(self.sndbuf)),
            libc::SO_RCVBUF => int_bytes(clamp_i32(self.rcvbuf)),
            libc::SO_RCVTIMEO | SO_RCVTIMEO_NEW => timeval_bytes(self.rcvtimeo),
            libc::SO_SNDTIMEO | SO_SNDTIMEO_NEW => timeval_bytes(self.sndtimeo),
            libc::SO_PASSCRED => int_bytes(i32::from(self.passcred)),
            libc::SO_REUSEADDR => int_bytes(i32::from(self.reuseaddr)),
            libc::SO_REUSEPORT => int_bytes(i32::from(self.reuseport)),
            libc::SO_KEEPALIVE => int_bytes(i32::from(self.keepalive)),
            libc::SO_BROADCAST => int_bytes(i32::from(self.broadcast)),
            libc::SO_OOBINLINE => int_bytes(i32::from(self.oobinline)),
            libc::SO_RCVLOWAT => int_bytes(self.rcvlowat),
            libc::SO_SNDLOWAT => int_bytes(1),
            libc::SO_LINGER => {
                let mut v = int_bytes(self.linger.0);
                v.extend_from_slice(&self.linger.1.to_ne_bytes());
                v
            }
            _ => return None,
        })
    }

    /// Set a `SOL_SOCKET` option kept here; `Ok(false)` if the family must handle it.
    pub fn set(&mut self, name: i32, val: &[u8]) -> Result<bool> {
        match name {
            libc::SO_RCVTIMEO | SO_RCVTIMEO_NEW => self.rcvtimeo = parse_timeval(val)?,
            libc::SO_SNDTIMEO | SO_SNDTIMEO_NEW => self.sndtimeo = parse_timeval(val)?,
            libc::SO_LINGER => {
                let onoff = opt_int(val)?;
                let secs = opt_int(val.get(4..).unwrap_or(&[]))?;
                self.linger = (i32::from(onoff != 0), secs);
            }
            _ => {
                let v = opt_int(val)?;
                match name {
                    // Linux doubles the size asked for, to count its bookkeeping.
                    libc::SO_SNDBUF => {
                        let v = (v as u32 as usize).min(MEM_MAX);
                        self.sndbuf = (v * 2).max(SOCK_MIN_SNDBUF);
                    }
                    libc::SO_RCVBUF => {
                        let v = (v as u32 as usize).min(MEM_MAX);
                        self.rcvbuf = (v * 2).max(SOCK_MIN_RCVBUF);
                    }
                    libc::SO_PASSCRED => self.passcred = v != 0,
                    libc::SO_REUSEADDR => self.reuseaddr = v != 0,
                    libc::SO_REUSEPORT => self.reuseport = v != 0,
                    libc::SO_KEEPALIVE => self.keepalive = v != 0,
                    libc::SO_BROADCAST => self.broadcast = v != 0,
                    libc::SO_OOBINLINE => self.oobinline = v != 0,
                    libc::SO_RCVLOWAT => self.rcvlowat = v.max(1),
                    // Linux cannot change it.
                    libc::SO_SNDLOWAT => return_errno!(ENOPROTOOPT),
                    _ => return Ok(false),
                }
            }
        }
        Ok(true)
    }
}

fn sockfs_dev() -> u64 {
    static DEV: OnceLock<u64> = OnceLock::new();
    *DEV.get_or_init(crate::vfs::anon_dev)
}

/// A fresh inode number on the socket filesystem.
pub fn new_ino() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// What `fstat` shows for a socket: `S_IFSOCK`, mode 0777, on the socket filesystem.
pub fn sockfs_stat(ino: u64, uid: u32, gid: u32, created: Timespec) -> Stat {
    Stat {
        dev: sockfs_dev(),
        ino,
        mode: libc::S_IFSOCK | 0o777,
        nlink: 1,
        uid,
        gid,
        blksize: 4096,
        atime: created,
        mtime: created,
        ctime: created,
        ..Stat::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_sizes_double_and_clamp() {
        let mut o = CommonOpts::default();
        assert_eq!(
            o.set(libc::SO_SNDBUF, &10000i32.to_ne_bytes()).ok(),
            Some(true)
        );
        assert_eq!(o.sndbuf, 20000);
        assert!(o.set(libc::SO_SNDBUF, &1i32.to_ne_bytes()).is_ok());
        assert_eq!(o.sndbuf, SOCK_MIN_SNDBUF);
        assert!(o.set(libc::SO_RCVBUF, &(-1i32).to_ne_bytes()).is_ok());
        assert_eq!(o.rcvbuf, MEM_MAX * 2);
        assert!(o.set(libc::SO_SNDBUF, &[1, 2]).is_err());
    }

    #[test]
    fn timeouts_round_trip() {
        let mut o = CommonOpts::default();
        let mut tv = 2i64.to_ne_bytes().to_vec();
        tv.extend_from_slice(&500_000i64.to_ne_bytes());
        assert!(o.set(libc::SO_RCVTIMEO, &tv).is_ok());
        assert_eq!(o.rcvtimeo, Some(Duration::from_millis(2500)));
        assert_eq!(o.get(libc::SO_RCVTIMEO), Some(tv));
        let mut bad = 0i64.to_ne_bytes().to_vec();
        bad.extend_from_slice(&1_000_000i64.to_ne_bytes());
        assert_eq!(
            o.set(libc::SO_RCVTIMEO, &bad).map_err(|e| e.errno),
            Err(crate::Errno::EDOM)
        );
    }
}
