//! Confinement of the sandbox's own host processes, applied to themselves before they
//! touch anything the application controls:
//!
//! - the **sentry**: new mount, IPC, UTS and network namespaces (and a new PID namespace,
//!   made by the caller's fork: see [`fork_into_pid_namespace`]); `pivot_root` into an
//!   empty read-only tmpfs so that it cannot name a single host file; every capability
//!   dropped; `no_new_privs`; and a seccomp allow-list of the host calls it makes
//!   (`seccomp/sentry.policy`).
//! - the **gofer**: its own mount, IPC, UTS and (empty) network namespaces; `pivot_root`
//!   into the tree it serves, bind-mounted `nodev,nosuid` (and read-only when it serves
//!   read-only); only the capabilities file serving needs; `no_new_privs`; its own seccomp
//!   allow-list (`seccomp/gofer.policy`).
//!
//! Each step is a plain host call; the order matters (namespaces before mounts, mounts
//! before dropping CAP_SYS_ADMIN, capabilities before seccomp forbids capset).

pub mod seccomp;

use anyhow::Context;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::CloneFlags;
use std::path::Path;

/// Where the new root is assembled. Inside our private mount namespace, a tmpfs mounted
/// over `/proc` hides nothing anyone else sees, and `/proc` exists on every Linux host.
const STAGING: &str = "/proc";

/// Enter new user (when not already root, so that the rest is possible at all), mount,
/// IPC, UTS and network namespaces, and stop mount events propagating back to the host.
fn enter_namespaces(extra: CloneFlags) -> anyhow::Result<()> {
    ensure_privileged()?;
    let flags =
        CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWUTS | extra;
    nix::sched::unshare(flags).context("unshare(mount, ipc, uts, net namespaces)")?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .context("making the mount tree private")?;
    Ok(())
}

/// Without CAP_SYS_ADMIN (an unprivileged user), namespaces come from a user namespace.
fn ensure_privileged() -> anyhow::Result<()> {
    let admin = caps::has_cap(
        None,
        caps::CapSet::Effective,
        caps::Capability::CAP_SYS_ADMIN,
    )
    .context("reading capabilities")?;
    if !admin {
        enter_user_namespace()?;
    }
    Ok(())
}

/// An unprivileged user gets the capabilities the rest needs from a user namespace of
/// its own, in which it keeps its uid and gid.
fn enter_user_namespace() -> anyhow::Result<()> {
    let (uid, gid) = (nix::unistd::geteuid(), nix::unistd::getegid());
    nix::sched::unshare(CloneFlags::CLONE_NEWUSER).context("unshare(user namespace)")?;
    std::fs::write("/proc/self/setgroups", "deny").context("writing setgroups")?;
    std::fs::write("/proc/self/uid_map", format!("{uid} {uid} 1")).context("uid_map")?;
    std::fs::write("/proc/self/gid_map", format!("{gid} {gid} 1")).context("gid_map")?;
    Ok(())
}

/// Make `new_root` (a mount point) the root and detach the old one entirely.
fn pivot_to(new_root: &str) -> anyhow::Result<()> {
    nix::unistd::chdir(new_root).with_context(|| format!("chdir {new_root}"))?;
    // With both arguments ".", the old root ends up stacked under the new one at "/",
    // from where it is detached: no directory for it is needed.
    nix::unistd::pivot_root(".", ".").context("pivot_root")?;
    umount2(".", MntFlags::MNT_DETACH).context("detaching the old root")?;
    nix::unistd::chdir("/").context("chdir /")?;
    Ok(())
}

/// The sentry's root: an empty tmpfs, read-only once it is the root.
fn pivot_to_empty_root() -> anyhow::Result<()> {
    let hardened = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(
        Some("none"),
        STAGING,
        Some("tmpfs"),
        hardened,
        Some("size=4k,nr_inodes=2,mode=0555"),
    )
    .context("mounting the sentry's empty root")?;
    pivot_to(STAGING)?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | hardened,
        None::<&str>,
    )
    .context("making the sentry's root read-only")?;
    Ok(())
}

/// The gofer's root: `dir` (the tree it serves) bind-mounted with everything under it,
/// `nodev` and `nosuid`, and read-only if `read_only`.
fn pivot_to_tree(dir: &Path, read_only: bool) -> anyhow::Result<()> {
    mount(
        Some("none"),
        STAGING,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("size=4k,nr_inodes=4,mode=0700"),
    )
    .context("mounting the gofer's staging directory")?;
    let target = format!("{STAGING}/root");
    std::fs::create_dir(&target).context("creating the gofer's staging root")?;
    mount(
        Some(dir),
        target.as_str(),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .with_context(|| format!("bind-mounting {}", dir.display()))?;
    crate::host::harden_mount_tree(&target, read_only)
        .with_context(|| format!("restricting the mounts under {}", dir.display()))?;
    pivot_to(&target)
}

/// A host path the gofer serves besides the root (an OCI bind mount's source).
#[derive(Clone, Debug)]
pub struct BindSource {
    pub path: std::path::PathBuf,
    pub read_only: bool,
}

/// The name under which the gofer's staged root shows the container's root filesystem;
/// bind sources are `m0`, `m1`… in order.
pub const STAGED_ROOT: &str = "root";

/// The staged layout: the gofer's root is a tmpfs holding `root` (the container's root
/// filesystem) and `m0`, `m1`… (bind sources, files or directories), each a bind mount
/// of its host path, `nosuid,nodev`, read-only as asked; the tmpfs itself is read-only
/// once it is the root. The sentry mounts each where the spec says.
fn pivot_to_staged(root: &Path, root_read_only: bool, binds: &[BindSource]) -> anyhow::Result<()> {
    mount(
        Some("none"),
        STAGING,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("size=64k,mode=0755"),
    )
    .context("mounting the gofer's staging directory")?;
    let entries = std::iter::once((STAGED_ROOT.to_string(), root, root_read_only)).chain(
        binds
            .iter()
            .enumerate()
            .map(|(i, b)| (format!("m{i}"), b.path.as_path(), b.read_only)),
    );
    for (name, src, read_only) in entries {
        let target = format!("{STAGING}/{name}");
        let meta = std::fs::metadata(src).with_context(|| format!("{}", src.display()))?;
        if meta.is_dir() {
            std::fs::create_dir(&target)
        } else {
            std::fs::File::create(&target).map(drop)
        }
        .with_context(|| format!("creating the mount point for {}", src.display()))?;
        mount(
            Some(src),
            target.as_str(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .with_context(|| format!("bind-mounting {}", src.display()))?;
        crate::host::harden_mount_tree(&target, read_only)
            .with_context(|| format!("restricting the mounts under {}", src.display()))?;
    }
    pivot_to(STAGING)?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REMOUNT
            | MsFlags::MS_BIND
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .context("making the gofer's staging root read-only")?;
    Ok(())
}

/// Keep only `keep` of the capabilities, in every set including the bounding set.
fn drop_capabilities(keep: &[caps::Capability]) -> anyhow::Result<()> {
    use caps::{CapSet, CapsHashSet};
    let keep: CapsHashSet = keep.iter().copied().collect();
    // The bounding set first: dropping from it needs CAP_SETPCAP, which goes next.
    for cap in caps::all() {
        if !keep.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap)
                .with_context(|| format!("dropping {cap} from the bounding set"))?;
        }
    }
    caps::clear(None, CapSet::Ambient).context("clearing ambient capabilities")?;
    caps::set(None, CapSet::Inheritable, &CapsHashSet::new())
        .context("clearing inheritable capabilities")?;
    caps::set(None, CapSet::Effective, &keep).context("setting effective capabilities")?;
    caps::set(None, CapSet::Permitted, &keep).context("setting permitted capabilities")?;
    Ok(())
}

fn no_new_privs() -> anyhow::Result<()> {
    nix::sys::prctl::set_no_new_privs().context("prctl(PR_SET_NO_NEW_PRIVS)")
}

/// Put the caller's future children in a new PID namespace and fork: the child, pid 1
/// there, returns `None` and becomes the sentry; the parent returns the child's pid and
/// should only wait for it. Must be called while the process has a single thread.
pub fn fork_into_pid_namespace() -> anyhow::Result<Option<nix::unistd::Pid>> {
    ensure_privileged()?;
    nix::sched::unshare(CloneFlags::CLONE_NEWPID).context("unshare(pid namespace)")?;
    match crate::host::fork().context("fork into the pid namespace")? {
        nix::unistd::ForkResult::Child => {
            // The sentry dies with whoever started it, so nothing is left running.
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .context("prctl(PR_SET_PDEATHSIG)")?;
            Ok(None)
        }
        nix::unistd::ForkResult::Parent { child } => Ok(Some(child)),
    }
}

/// Confine the calling process as a sentry: from here on it reaches host files only
/// through descriptors it already holds or receives from the gofer. With `host_network`
/// (`--network=host`) it stays in the caller's network namespace and may make and use
/// `AF_INET`/`AF_INET6` sockets (`seccomp/sentry-hostnet.policy`); otherwise it gets an
/// empty network namespace and no socket calls.
pub fn sentry(mode: seccomp::Mode, host_network: bool) -> anyhow::Result<()> {
    let mut text = include_str!("../../seccomp/sentry.policy").to_string();
    if host_network {
        text.push_str(include_str!("../../seccomp/sentry-hostnet.policy"));
    }
    let policy = seccomp::Policy::parse(&text).context("seccomp/sentry.policy")?;
    enter_namespaces(if host_network {
        CloneFlags::empty()
    } else {
        CloneFlags::CLONE_NEWNET
    })?;
    pivot_to_empty_root()?;
    drop_capabilities(&[])?;
    no_new_privs()?;
    policy
        .load(mode)
        .context("loading the sentry's seccomp filter")?;
    Ok(())
}

/// The capabilities a gofer keeps: to act on files of any owner as the application's
/// file operations require (the sentry decides what is allowed; the host kernel then
/// must not refuse it), and to set owners and modes.
const GOFER_CAPS: &[caps::Capability] = &[
    caps::Capability::CAP_CHOWN,
    caps::Capability::CAP_DAC_OVERRIDE,
    caps::Capability::CAP_DAC_READ_SEARCH,
    caps::Capability::CAP_FOWNER,
    caps::Capability::CAP_FSETID,
];

/// Confine the calling process as a gofer serving `root`: afterwards `/` is that tree, or
/// with `staged` the staged layout of [`pivot_to_staged`] holding it and `binds`.
pub fn gofer(
    root: &Path,
    read_only: bool,
    staged: Option<&[BindSource]>,
    mode: seccomp::Mode,
) -> anyhow::Result<()> {
    let policy = seccomp::Policy::parse(include_str!("../../seccomp/gofer.policy"))
        .context("seccomp/gofer.policy")?;
    enter_namespaces(CloneFlags::CLONE_NEWNET)?;
    match staged {
        Some(binds) => pivot_to_staged(root, read_only, binds)?,
        None => pivot_to_tree(root, read_only)?,
    }
    drop_capabilities(GOFER_CAPS)?;
    no_new_privs()?;
    policy
        .load(mode)
        .context("loading the gofer's seccomp filter")?;
    Ok(())
}
