//! `carapace boot`: the sandbox process. Started by `create` with the gofer's socket and
//! a readiness pipe; sets up the sentry (kernel, root filesystem, mounts, init loaded),
//! reports "ready" and waits on the control socket for `start`. It exits when the
//! container's init exits, with init's status, so `--pid-file` watchers see it.

use crate::bundle::Bundle;
use anyhow::Context;
use sentry::boot::{BootError, SandboxConfig};
use sentry::control::{ControlServer, StartDecision};
use sentry::kernel::ExitStatus;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct BootArgs {
    /// The bundle directory.
    #[arg(long)]
    bundle: PathBuf,
    /// The container's state directory (`<root>/<id>`): the control socket goes there.
    #[arg(long)]
    state_dir: PathBuf,
    /// The sentry's end of the gofer socketpair.
    #[arg(long)]
    gofer_fd: i32,
    /// Where to report "ready" or why setup failed, one line.
    #[arg(long)]
    ready_fd: i32,
    /// A host terminal for the container's console (`process.terminal`).
    #[arg(long)]
    console_fd: Option<i32>,
    /// A descriptor that becomes init's next fd from 3 on (`--preserve-fds`), repeated.
    #[arg(long)]
    preserve_fd: Vec<i32>,
}

/// The line `boot` writes on the readiness pipe when the container is created.
pub const READY: &str = "ready";

pub fn run(args: BootArgs, opts: &crate::RuntimeOpts) -> anyhow::Result<u8> {
    let mut ready =
        std::fs::File::from(crate::host::take_inherited_fd(args.ready_fd).context("--ready-fd")?);
    // The sentry is pid 1 of its own pid namespace, in a child of this process; this
    // process (the pid `create` records) waits for it and ends the way it ended.
    sentry::boot::read_host_facts();
    // The network namespace and interface, while this process can still see them.
    let (network, link) = match crate::netsetup::prepare_oci(&args.bundle, opts.network) {
        Ok((mode, taken)) => (mode, taken.map(|t| (t.fd, t.desc))),
        Err(e) => {
            let _ = writeln!(ready, "{e:#}");
            return Ok(1);
        }
    };
    if let Some(child) = crate::confine::fork_into_pid_namespace()? {
        drop(ready);
        drop(link);
        return Ok(crate::host::exit_like(wait_sentry(child)?));
    }
    let (sandbox, control) = match setup(&args, opts, network, link) {
        Ok(s) => s,
        Err(e) => {
            // `create` prints it; a failed write means `create` is gone already.
            let _ = writeln!(ready, "{e:#}");
            return Ok(1);
        }
    };
    // `create` gave up waiting (it was killed): nobody will ever start or delete us.
    writeln!(ready, "{READY}").context("create is gone")?;
    drop(ready);
    let status = match control.wait_for_start() {
        StartDecision::Start => {
            // Free heap left from booting goes back before the container runs.
            crate::host::trim_heap();
            sandbox.run()
        }
        StartDecision::Killed(signo) => ExitStatus::Signaled { signo, core: false },
    };
    control.finish(status);
    Ok(crate::host::exit_like(status))
}

/// The sentry's exit as the kernel reports it, in the sentry's own terms.
fn wait_sentry(pid: nix::unistd::Pid) -> anyhow::Result<ExitStatus> {
    use nix::sys::wait::{waitpid, WaitStatus};
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(ExitStatus::Exited(code)),
            Ok(WaitStatus::Signaled(_, sig, _)) => {
                if sig == nix::sys::signal::Signal::SIGSYS {
                    tracing::error!(
                        "the sentry was killed by SIGSYS (a host system call outside its \
                         seccomp allow-list)"
                    );
                }
                return Ok(ExitStatus::Signaled {
                    signo: sig as i32,
                    core: false,
                });
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => anyhow::bail!("waiting for the sentry: {e}"),
        }
    }
}

fn setup(
    args: &BootArgs,
    opts: &crate::RuntimeOpts,
    network: sentry::net::NetworkMode,
    link: Option<(OwnedFd, sentry::net::inet::packet::LinkDesc)>,
) -> anyhow::Result<(sentry::boot::Sandbox, ControlServer)> {
    let gofer = crate::host::take_inherited_fd(args.gofer_fd).context("--gofer-fd")?;
    let bundle = crate::bundle::load(&args.bundle)?;
    let stdio = [
        crate::host::dup_stdio(0)?,
        crate::host::dup_stdio(1)?,
        crate::host::dup_stdio(2)?,
    ];
    let mut cfg = sandbox_config(&bundle, opts, gofer, stdio);
    let mut preserved = Vec::new();
    for &fd in &args.preserve_fd {
        preserved.push(crate::host::take_inherited_fd(fd).context("--preserve-fd")?);
    }
    cfg.oci = crate::spec_extras::setup(&bundle, preserved);
    if let Some(fd) = args.console_fd {
        cfg.console = Some(crate::host::take_inherited_fd(fd).context("--console-fd")?);
    }
    // Bound while the state directory can still be named; the listening fd outlives the
    // sentry's view of the host, which ends with confinement below.
    let listener = crate::container::bind(&args.state_dir.join("control.sock"))
        .context("cannot create the control socket")?;
    // Before any thread exists: namespaces need a single thread, and seccomp filters apply
    // to the threads created after them.
    cfg.network = network;
    crate::confine::sentry(
        crate::confine::seccomp::Mode::from_env(),
        network == sentry::net::NetworkMode::Host,
    )
    .context("confining the sentry")?;
    if let Some((fd, desc)) = link {
        sentry::net::inet::packet::attach(fd, desc)
            .map_err(|e| anyhow::anyhow!("--network=sandbox: {e}"))?;
    }
    let sandbox = sentry::boot::prepare(cfg).map_err(|e| match e {
        BootError::NotFound(cmd) => {
            anyhow::anyhow!("exec: {cmd:?}: executable file not found in $PATH")
        }
        BootError::CannotExecute(cmd, err) => anyhow::anyhow!("exec: {cmd:?}: {err}"),
        BootError::Setup(msg) => anyhow::anyhow!("sandbox setup failed: {msg}"),
    })?;
    let control = ControlServer::spawn(listener, sandbox.kernel().clone(), Some(sandbox.spawner()))
        .context("cannot start the control server")?;
    Ok((sandbox, control))
}

/// The sentry's configuration for a bundle.
fn sandbox_config(
    b: &Bundle,
    opts: &crate::RuntimeOpts,
    gofer: OwnedFd,
    stdio: [OwnedFd; 3],
) -> SandboxConfig {
    let mut cfg = SandboxConfig::new(gofer, stdio, b.args.clone());
    cfg.strace = opts.strace;
    cfg.envp = b.env.clone();
    cfg.cwd = b.cwd.clone();
    cfg.uid = b.uid;
    cfg.gid = b.gid;
    cfg.groups = b.additional_gids.clone();
    cfg.umask = b.umask;
    if let Some(h) = &b.hostname {
        cfg.hostname = h.clone();
    }
    (cfg.overlay, cfg.gofer_writable) = root_mode(b.readonly, opts.overlay);
    cfg.read_only_root = b.readonly;
    cfg.mounts = b.mounts.clone();
    cfg.gofer_staged = true;
    cfg.platform = sentry::platform::Kind::from_name(&opts.platform).unwrap_or_default();
    cfg.security = b.security.clone();
    cfg.systrap_patch = opts.systrap_patch;
    cfg
}

/// How the root takes writes, and whether the gofer serves it writable: `--overlay=memory`
/// keeps writes in sandbox memory (and holds mount points missing from a read-only
/// image); `--overlay=none` sends them through a writable gofer to the bundle's rootfs,
/// as runc does, unless the root is read-only.
pub fn root_mode(readonly: bool, overlay: crate::Overlay) -> (sentry::fs::RootOverlay, bool) {
    use sentry::fs::RootOverlay;
    match overlay {
        crate::Overlay::Memory => (RootOverlay::Memory, false),
        crate::Overlay::None => (RootOverlay::None, !readonly),
    }
}
