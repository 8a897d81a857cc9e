//! `carapace confine-probe --role sentry|gofer ATTEMPT`: confine this process exactly as
//! a sentry or gofer confines itself, then try one forbidden thing and report what
//! happened. The confinement tests (`tests/tests/confine.rs`) run it for every attempt
//! and check that each one fails: a host call outside the allow-list kills the process
//! with SIGSYS (the test sees that in the exit status); others print the errno.

use anyhow::{bail, Context};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ProbeArgs {
    /// Which process's confinement to apply.
    /// (`sentry-hostnet`: a sentry for `--network=host`.)
    #[arg(long, value_parser = ["sentry", "sentry-hostnet", "gofer"])]
    role: String,
    /// For a gofer: the tree it serves.
    #[arg(long, default_value = "/")]
    root: PathBuf,
    /// What to try.
    #[arg(value_parser = ATTEMPTS.iter().map(|(n, _)| *n).collect::<Vec<_>>())]
    attempt: String,
}

type Attempt = fn() -> nix::Result<()>;

/// The forbidden things, by name. Each returns `Err(errno)` if the host refused it, and
/// `Ok` if it (wrongly) worked.
const ATTEMPTS: &[(&str, Attempt)] = &[
    ("open-host-file", || {
        nix::fcntl::open(
            "/etc/passwd",
            nix::fcntl::OFlag::O_RDONLY,
            nix::sys::stat::Mode::empty(),
        )
        .map(drop)
    }),
    ("write-root", || {
        nix::fcntl::open(
            "/carapace-probe",
            nix::fcntl::OFlag::O_CREAT | nix::fcntl::OFlag::O_WRONLY,
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .map(drop)
    }),
    ("mount-tmpfs", || {
        nix::mount::mount(
            Some("none"),
            "/",
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
    }),
    ("unshare-user", || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER)
    }),
    ("inet-socket", || {
        use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
        socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::empty(),
            None,
        )
        .map(drop)
    }),
    ("packet-socket", || {
        use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
        socket(
            AddressFamily::Packet,
            SockType::Raw,
            SockFlag::empty(),
            None,
        )
        .map(drop)
    }),
    ("exec-shell", || {
        nix::unistd::execv(c"/bin/sh", &[c"sh", c"-c", c"true"]).map(drop)
    }),
    ("kill-host-init", || {
        // In its own pid namespace the sentry is pid 1 and sees no host process; pid 2
        // does not exist there. (A gofer is not given a pid namespace: kill is not on its
        // allow-list.)
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(2), None)
    }),
    ("ptrace-attach", || {
        // Pid 1: the sentry itself in its namespace (EPERM), the host's init for a gofer.
        nix::sys::ptrace::attach(nix::unistd::Pid::from_raw(1))
    }),
    ("chroot", || nix::unistd::chroot("/")),
    ("setuid-root", || {
        nix::unistd::setuid(nix::unistd::Uid::from_raw(0))
    }),
];

pub fn run(args: ProbeArgs) -> anyhow::Result<u8> {
    let Some((_, attempt)) = ATTEMPTS.iter().find(|(n, _)| *n == args.attempt) else {
        bail!("unknown attempt {}", args.attempt);
    };
    let mode = crate::confine::seccomp::Mode::Enforce;
    match args.role.as_str() {
        role @ ("sentry" | "sentry-hostnet") => {
            if let Some(child) = crate::confine::fork_into_pid_namespace()? {
                return wait_child(child);
            }
            crate::confine::sentry(mode, role == "sentry-hostnet")
                .context("confining as a sentry")?;
        }
        // Read-only: a probe must never change the host tree it is given.
        _ => crate::confine::gofer(&args.root, true, None, mode).context("confining as a gofer")?,
    }
    match attempt() {
        Ok(()) => {
            println!("{}: SUCCEEDED", args.attempt);
            Ok(1)
        }
        Err(e) => {
            println!("{}: refused: {}", args.attempt, e.desc());
            println!("errno {}", e as i32);
            Ok(0)
        }
    }
}

/// Pass a probe child's outcome on: its exit code, or 128+signal like a shell.
fn wait_child(pid: nix::unistd::Pid) -> anyhow::Result<u8> {
    use nix::sys::wait::{waitpid, WaitStatus};
    loop {
        match waitpid(pid, None)? {
            WaitStatus::Exited(_, code) => return Ok(code as u8),
            WaitStatus::Signaled(_, sig, _) => {
                println!("killed by {sig}");
                return Ok(128 + sig as u8);
            }
            _ => continue,
        }
    }
}
