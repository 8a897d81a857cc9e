//! A pod's app container added to a running sandbox (a *sub-container*).
//!
//! The sandbox's kernel is shared; what is the sub-container's own is its mount tree (a
//! new `Vfs` over its own gofer, with its spec mounts), its processes (tagged with a new
//! container id, see `kernel::container`) and its init, loaded here and held until
//! `start`. The control server drives the rest (`control::subcontainer`).

use super::{launch, process_files, setup, wait_group_exit, BootError, ProcessIo, ProcessSpec};
use super::{Spawner, Task};
use crate::kernel::{container, Credentials, ExitStatus, Kernel};
use crate::vfs::FsContext;
use std::os::fd::OwnedFd;
use std::sync::Arc;

/// The root filesystem of a sub-container.
pub struct RootConfig {
    /// The sentry's end of the sub-container's gofer socket (served `--staged`).
    pub gofer: OwnedFd,
    pub overlay: crate::fs::RootOverlay,
    pub gofer_writable: bool,
    pub read_only_root: bool,
    pub mounts: Vec<crate::fs::SpecMount>,
}

/// Build the sub-container's mount tree and return what starts processes in it (its
/// init first), under a new container id.
pub fn mount_tree(kernel: &Arc<Kernel>, cfg: RootConfig) -> Result<Spawner, BootError> {
    let client = Arc::new(gofer::client::Client::new(cfg.gofer));
    let (vfs, staged) = crate::fs::build_root_staged(
        client,
        cfg.overlay,
        cfg.gofer_writable,
        cfg.read_only_root,
        &kernel.memory_file,
    )
    .map_err(setup("root filesystem"))?;
    for m in &cfg.mounts {
        crate::fs::mount_spec(&vfs, m, &kernel.memory_file, Some(&staged)).map_err(|e| {
            BootError::Setup(format!(
                "mount on {}: {e}",
                String::from_utf8_lossy(&m.destination)
            ))
        })?;
    }
    Ok(Spawner {
        kernel: kernel.clone(),
        fs: FsContext::new(vfs),
        container: container::alloc_id(),
    })
}

/// A sub-container's first process, loaded and not yet run.
pub struct SubInit {
    task: Task,
    console: Option<crate::fs::devpts::bridge::ConsoleBridge>,
    container: u32,
}

impl Spawner {
    /// The container this spawner's processes join.
    pub fn container(&self) -> u32 {
        self.container
    }

    /// Load the sub-container's init on the calling thread (the one that will run it).
    /// A missing working directory falls back to `/`, as for the sandbox's own init.
    pub fn load_init(&self, spec: ProcessSpec, io: ProcessIo) -> Result<SubInit, BootError> {
        let mut fs = self.fs.clone();
        fs.umask = spec.umask & 0o777;
        match fs.lookup(&fs.root, &spec.cwd, true) {
            Ok(dir) if dir.inode().is_dir() => fs.cwd = dir,
            _ => tracing::warn!(
                "working directory {} does not exist in the container; using /",
                String::from_utf8_lossy(&spec.cwd)
            ),
        }
        let (files, console) = process_files(&fs, io, spec.uid, spec.gid)?;
        let mut creds = Credentials::new(spec.uid, spec.gid);
        creds.groups = spec.groups;
        let (task, _) = launch(
            &self.kernel,
            &fs,
            files,
            creds,
            (spec.argv, spec.envp),
            &spec.security,
        )?;
        container::assign(&task.tg, self.container);
        // Orphans of the container stay in it: its init reaps them, as the init of a
        // container's own pid namespace would.
        task.tg.state().child_subreaper = true;
        Ok(SubInit {
            task,
            console,
            container: self.container,
        })
    }
}

impl SubInit {
    /// Its sandbox pid.
    pub fn pid(&self) -> i32 {
        self.task.tgid
    }

    /// Run it until its whole thread group has exited; then the rest of the container's
    /// processes are killed (as when a pid namespace's init dies) and its status is
    /// returned. Nothing in the sandbox is its parent, so it is reaped here.
    pub fn run(mut self) -> ExitStatus {
        self.task.run();
        let status = wait_group_exit(&self.task);
        let kernel = self.task.kernel.clone();
        kernel.pids().groups.remove(&self.task.tgid);
        kill_all(&kernel, self.container);
        if let Some(bridge) = self.console {
            bridge.finish();
        }
        status
    }

    /// End it before it ran its first instruction, as if killed by `signo` (a signal
    /// whose default action ends the process): the signal is queued, then it runs.
    pub fn kill_and_run(self, signo: i32) -> ExitStatus {
        let sig = crate::kernel::signal::SigInfo::user(signo, 0, 0);
        self.task.kernel.signal_group(&self.task.tg, sig);
        self.run()
    }
}

/// SIGKILL every process of container `id`.
pub fn kill_all(kernel: &Kernel, id: u32) {
    for g in container::groups(kernel, id) {
        if g.state().exit_status.is_none() {
            kernel.signal_group(
                &g,
                crate::kernel::signal::SigInfo::user(libc::SIGKILL, 0, 0),
            );
        }
    }
}
