//! Pods: `carapace create` of a pod's app container.
//!
//! A bundle annotated as a CRI app container (`io.kubernetes.cri.container-type =
//! container`, `io.kubernetes.cri.sandbox-id = S`) does not get a sentry of its own: it
//! becomes a sub-container of the sentry that runs container `S` (the pod's pause
//! container, created before it under the same `--root`). `create` starts the
//! container's own gofer (its rootfs and bind mounts), binds the container's control
//! socket `<root>/<id>/control.sock` (the confined sentry cannot) and hands it, the gofer
//! socket and the container's stdio to the sentry with an `AddContainer` request. The
//! sentry builds the container's mount tree, loads its init and serves the new socket for
//! that container alone, so `start`, `state`, `kill`, `ps`, `exec`, `wait` and `delete`
//! work on it unchanged. The host process recorded as its pid (`--pid-file`) is a waiter,
//! `carapace container-wait`, which exits as the container's init does (SIGKILL when the
//! sentry goes away first).

use crate::bundle::Bundle;
use crate::cmd_create::{Console, Created};
use crate::container::{HostProcess, Root, Saved, Status};
use anyhow::{bail, Context};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use sentry::control::{AddContainerRequest, MountSpec, Request, Response};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The CRI annotation that tells a pod's sandbox (pause) container from its app
/// containers.
pub const CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";
/// The CRI annotation naming an app container's pod sandbox (its pause container's id).
pub const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";

/// The sandbox container `b` is to join, if it is a pod's app container.
pub fn sandbox_of(b: &Bundle) -> Option<&str> {
    if b.annotations.get(CONTAINER_TYPE).map(String::as_str) != Some("container") {
        return None;
    }
    b.annotations.get(SANDBOX_ID).map(String::as_str)
}

/// Add the container to its pod's sentry; every host process started is pushed on
/// `procs` so that the caller can undo a failure.
#[allow(clippy::too_many_arguments)]
pub fn start(
    opts: &crate::RuntimeOpts,
    id: &str,
    sandbox_id: &str,
    b: &Bundle,
    dir: &Path,
    pid_file: Option<&Path>,
    console: Option<Console>,
    procs: &mut Vec<Child>,
) -> anyhow::Result<Created> {
    let sandbox = Root::new(opts.root.clone())
        .load(sandbox_id)
        .with_context(|| format!("annotation {SANDBOX_ID}: the pod's sandbox"))?;
    if sandbox.saved.sandbox.is_some() {
        bail!("annotation {SANDBOX_ID}: {sandbox_id} is an app container, not a pod sandbox");
    }
    if sandbox.status() == Status::Stopped {
        bail!("the pod's sandbox {sandbox_id} is not running");
    }
    let exe = std::env::current_exe().context("cannot find the carapace binary")?;

    // The container's own cgroup holds its gofer and waiter; its processes run in the
    // pod's sentry, under the sandbox's cgroup.
    let cgroup = crate::cgroups::Cgroup::for_container(id, &opts.root, b.cgroups_path.as_deref())?;
    cgroup.create(&b.resources)?;
    if let Err(e) = cgroup.save(&dir.join("cgroup")) {
        cgroup.remove();
        return Err(e);
    }

    let (sentry_end, gofer_end) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .context("socketpair for the gofer")?;
    let (overlay, gofer_writable) = crate::cmd_boot::root_mode(b.readonly, opts.overlay);
    let inherited = nix::unistd::dup(&gofer_end).context("dup for the gofer")?;
    drop(gofer_end);
    let mut gofer = Command::new(&exe);
    opts.pass_logging(&mut gofer);
    gofer
        .arg("--cgroup")
        .arg(cgroup.path())
        .current_dir("/")
        .arg("gofer")
        .arg("--root")
        .arg(&b.rootfs)
        .arg("--sock-fd")
        .arg(inherited.as_raw_fd().to_string())
        .arg("--staged");
    if !gofer_writable {
        gofer.arg("--read-only");
    }
    for bind in &b.binds {
        let mut arg = std::ffi::OsString::from(if bind.read_only { "ro:" } else { "rw:" });
        arg.push(&bind.path);
        gofer.arg("--bind").arg(arg);
    }
    // Off the container's stdio: its end-of-file must come with the container's end.
    let g = gofer
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start the gofer")?;
    drop(inherited);
    let gofer_proc = HostProcess::of(g.id() as i32)?;
    procs.push(g);

    let control = dir.join("control.sock");
    let listener = crate::container::bind(&control)
        .with_context(|| format!("cannot create {}", control.display()))?;
    let mut fds: Vec<OwnedFd> = vec![listener.into(), sentry_end];
    match &console {
        Some(c) => fds.push(nix::unistd::dup(c.sentry_end()).context("dup of the console")?),
        None => {
            for fd in 0..3 {
                fds.push(crate::host::dup_stdio(fd)?);
            }
        }
    }
    let req = AddContainerRequest {
        id: id.to_string(),
        args: b.args.clone(),
        env: b.env.clone(),
        cwd: b.cwd.clone(),
        uid: b.uid,
        gid: b.gid,
        additional_gids: b.additional_gids.clone(),
        umask: b.umask,
        terminal: console.is_some(),
        overlay_memory: overlay == sentry::fs::RootOverlay::Memory,
        gofer_writable,
        read_only_root: b.readonly,
        mounts: b.mounts.iter().map(MountSpec::from_spec).collect(),
        security: Box::new(b.security.clone()),
    };
    let init_pid = add_container(&sandbox.control_path(), &req, fds)?;
    tracing::debug!("container {id}: init is pid {init_pid} of sandbox {sandbox_id}");
    let finished = finish(
        opts, id, sandbox_id, b, dir, pid_file, console, procs, gofer_proc,
    );
    if finished.is_err() {
        // The sentry has the container loaded: take it out again (the caller removes the
        // host side).
        let _ = crate::container::request(&control, &Request::Remove);
    }
    finished
}

/// After `AddContainer`: the waiter, the console, the record.
#[allow(clippy::too_many_arguments)]
fn finish(
    opts: &crate::RuntimeOpts,
    id: &str,
    sandbox_id: &str,
    b: &Bundle,
    dir: &Path,
    pid_file: Option<&Path>,
    console: Option<Console>,
    procs: &mut Vec<Child>,
    gofer_proc: HostProcess,
) -> anyhow::Result<Created> {
    let exe = std::env::current_exe().context("cannot find the carapace binary")?;
    let cgroup = crate::cgroups::Cgroup::load(&dir.join("cgroup"))
        .context("the container's cgroup record")?;
    let control = dir.join("control.sock");
    let mut waiter = Command::new(&exe);
    opts.pass_logging(&mut waiter);
    let w = waiter
        .arg("--cgroup")
        .arg(cgroup.path())
        .current_dir("/")
        .arg("container-wait")
        .arg("--control")
        .arg(&control)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start the container's waiter")?;
    let waiter_proc = HostProcess::of(w.id() as i32)?;
    procs.push(w);

    if let Some(Console::Socket { path, master, .. }) = &console {
        crate::console::send_console(path, master)?;
    }
    drop(console);

    let saved = Saved {
        id: id.to_string(),
        bundle: b.dir.clone(),
        rootfs: b.rootfs.clone(),
        created: crate::container::rfc3339_nano(std::time::SystemTime::now()),
        owner_uid: nix::unistd::geteuid().as_raw(),
        annotations: b.annotations.clone(),
        oci_version: b.oci_version.clone(),
        pid: waiter_proc,
        gofer: gofer_proc,
        sandbox: Some(sandbox_id.to_string()),
    };
    crate::hooks::created(dir, &b.hooks, &saved)?;
    crate::cmd_create::write_atomically(&dir.join("state.json"), &serde_json::to_vec(&saved)?)?;
    if let Some(p) = pid_file {
        crate::cmd_create::write_atomically(p, waiter_proc.pid.to_string().as_bytes())
            .with_context(|| format!("--pid-file {}", p.display()))?;
    }
    let boot = procs.pop().context("internal: no waiter")?;
    Ok(Created {
        boot,
        container: crate::container::Container {
            dir: dir.to_path_buf(),
            saved,
        },
    })
}

/// How long the sentry may take to build a container's mount tree and load its init.
const ADD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Send `AddContainer` with its descriptors to the sandbox's control socket; returns the
/// new container's init pid.
fn add_container(
    control: &Path,
    req: &AddContainerRequest,
    fds: Vec<OwnedFd>,
) -> anyhow::Result<i32> {
    let stream = crate::container::connect(control)
        .with_context(|| format!("cannot reach the pod's sandbox at {}", control.display()))?;
    let mut line = serde_json::to_vec(&Request::AddContainer(req.clone()))?;
    line.push(b'\n');
    let borrowed: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
    crate::console::send_with_fds(&stream, &line, &borrowed).context("control socket: write")?;
    drop(borrowed);
    drop(fds);
    // Bounded, so that a wedged sentry fails `create` instead of hanging it (and
    // containerd's CreateTask with it).
    stream
        .set_read_timeout(Some(ADD_TIMEOUT))
        .context("control socket: timeout")?;
    let mut answer = String::new();
    BufReader::new(stream)
        .read_line(&mut answer)
        .context("the pod's sandbox did not answer the request to add the container")?;
    if answer.is_empty() {
        bail!("the pod's sandbox closed the control socket without answering");
    }
    match serde_json::from_str(&answer).context("control socket: bad answer")? {
        Response::Started { pid } => Ok(pid),
        Response::Error { message } => bail!("{message}"),
        other => bail!("unexpected answer from the sandbox: {other:?}"),
    }
}

#[derive(clap::Args)]
pub struct WaitArgs {
    /// The container's control socket.
    #[arg(long)]
    control: PathBuf,
}

/// `container-wait`: ask the container's control socket to `Wait` and exit as its init
/// did; a sentry that goes away first took the container with it (SIGKILL, as the end
/// of a pid namespace).
pub fn wait(args: WaitArgs) -> anyhow::Result<u8> {
    let _ = nix::unistd::setsid();
    let killed = sentry::kernel::ExitStatus::Signaled {
        signo: libc::SIGKILL,
        core: false,
    };
    // A waiter slow to start (a loaded machine) may find the sentry gone already: its
    // socket refuses or the write fails. That is the same end as losing it later.
    let mut s = match crate::container::connect(&args.control) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("cannot reach {}: {e}", args.control.display());
            return Ok(crate::host::exit_like(killed));
        }
    };
    let mut line = serde_json::to_vec(&Request::Wait)?;
    line.push(b'\n');
    if let Err(e) = s.write_all(&line) {
        tracing::warn!("control socket: write: {e}");
        return Ok(crate::host::exit_like(killed));
    }
    let mut answer = String::new();
    let n = BufReader::new(s).read_line(&mut answer).unwrap_or(0);
    let status = match serde_json::from_str::<Response>(&answer) {
        Ok(Response::Exited { wait_status }) if n > 0 => from_wait_status(wait_status),
        _ => killed,
    };
    Ok(crate::host::exit_like(status))
}

fn from_wait_status(ws: i32) -> sentry::kernel::ExitStatus {
    if ws & 0x7f == 0 {
        sentry::kernel::ExitStatus::Exited((ws >> 8) & 0xff)
    } else {
        sentry::kernel::ExitStatus::Signaled {
            signo: ws & 0x7f,
            core: ws & 0x80 != 0,
        }
    }
}
