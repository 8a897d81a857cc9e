//! `AddContainer`: a pod's app container joins the sandbox.
//!
//! The request brings the new container's listening control socket (bound by
//! `carapace create`, which the confined sentry could not do), its gofer socket and its
//! stdio. Its mount tree is built here; its init is loaded on a new host thread, which
//! then serves the container's control socket with a server scoped to that container
//! (start, state, signals, ps, wait, exec, remove act on it alone) and runs init once
//! `start` arrives.

use super::server::{ControlServer, Shared};
use super::{AddContainerRequest, Phase};
use crate::boot::subcontainer::{self, RootConfig};
use crate::boot::{BootError, ProcessIo, ProcessSpec};
use crate::control::StartDecision;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;

/// Add the container; returns its init's sandbox pid.
pub(super) fn add(
    shared: &Shared,
    req: AddContainerRequest,
    fds: Vec<OwnedFd>,
) -> Result<i32, String> {
    if shared.container != crate::kernel::container::SANDBOX {
        return Err("containers are added to the pod's sandbox container".into());
    }
    if shared.state().phase == Phase::Stopped {
        return Err(format!(
            "cannot add container {}: the pod's sandbox has stopped",
            req.id
        ));
    }
    if req.args.is_empty() {
        return Err("args must not be empty".into());
    }
    let want = if req.terminal { 3 } else { 5 };
    if fds.len() != want {
        return Err(format!(
            "adding a container takes {want} descriptors (control socket, gofer, {}), got {}",
            if req.terminal {
                "terminal"
            } else {
                "stdin, stdout, stderr"
            },
            fds.len()
        ));
    }
    let mut fds = fds.into_iter();
    let (Some(listener), Some(gofer)) = (fds.next(), fds.next()) else {
        return Err("internal: descriptors".into());
    };
    let io = if req.terminal {
        let console = fds.next().ok_or("internal: descriptors")?;
        ProcessIo::Console(console)
    } else {
        let (Some(i), Some(o), Some(e)) = (fds.next(), fds.next(), fds.next()) else {
            return Err("internal: descriptors".into());
        };
        ProcessIo::Stdio([i, o, e])
    };
    let mounts = req
        .mounts
        .iter()
        .map(|m| m.to_spec())
        .collect::<Result<Vec<_>, _>>()?;
    let overlay = if req.overlay_memory {
        crate::fs::RootOverlay::Memory
    } else {
        crate::fs::RootOverlay::None
    };
    let spawner = subcontainer::mount_tree(
        &shared.kernel,
        RootConfig {
            gofer,
            overlay,
            gofer_writable: req.gofer_writable,
            read_only_root: req.read_only_root,
            mounts,
        },
    )
    .map_err(describe)?;
    let spec = ProcessSpec {
        argv: req.args,
        envp: req.env,
        cwd: req.cwd,
        uid: req.uid,
        gid: req.gid,
        groups: req.additional_gids,
        umask: req.umask,
        security: *req.security,
    };
    let listener = UnixListener::from(listener);
    let kernel = shared.kernel.clone();
    let id = req.id;
    let (tx, rx) = std::sync::mpsc::channel::<Result<i32, String>>();
    std::thread::Builder::new()
        .name("container".into())
        .spawn(move || {
            let init = match spawner.load_init(spec, io) {
                Ok(init) => init,
                Err(e) => {
                    let _ = tx.send(Err(describe(e)));
                    return;
                }
            };
            let pid = init.pid();
            let container = spawner.container();
            let control =
                match ControlServer::spawn_for(listener, kernel, Some(spawner), container, pid) {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = tx.send(Err(format!("control socket: {e}")));
                        init.kill_and_run(libc::SIGKILL);
                        return;
                    }
                };
            tracing::info!("container {id}: init is pid {pid}");
            let _ = tx.send(Ok(pid));
            let status = match control.wait_for_start() {
                StartDecision::Start => init.run(),
                StartDecision::Killed(signo) => init.kill_and_run(signo),
            };
            tracing::info!("container {id}: init exited: {status:?}");
            control.finish(status);
        })
        .map_err(|e| format!("cannot start a host thread: {e}"))?;
    rx.recv()
        .unwrap_or_else(|_| Err("the container's thread died".into()))
}

fn describe(e: BootError) -> String {
    match e {
        BootError::NotFound(cmd) => format!("exec: {cmd:?}: executable file not found in $PATH"),
        BootError::CannotExecute(cmd, err) => format!("exec: {cmd:?}: {err}"),
        BootError::Setup(msg) => format!("container setup failed: {msg}"),
    }
}
