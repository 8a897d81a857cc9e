//! Booting a sandbox: the kernel, the root filesystem from the gofer, the first process.
#![deny(unsafe_code)]

use crate::error::Error;
use crate::kernel::{Credentials, ExitStatus, Kernel, Task};
use crate::loader::Executable;
use crate::mm::MemoryFile;
use crate::vfs::{Creds, ExecFile, FsContext};
use crate::Errno;
use std::os::fd::OwnedFd;
use std::sync::Arc;

/// Everything the sentry needs to run one sandbox.
pub struct SandboxConfig {
    pub strace: bool,
    /// The sentry's end of the gofer socketpair.
    pub gofer: OwnedFd,
    /// Host descriptors that become the application's fds 0, 1 and 2.
    pub stdio: [OwnedFd; 3],
    pub argv: Vec<Vec<u8>>,
    pub envp: Vec<Vec<u8>>,
    pub cwd: Vec<u8>,
    pub uid: u32,
    pub gid: u32,
    pub hostname: Vec<u8>,
    /// How the root filesystem takes writes (`--overlay`).
    pub overlay: crate::fs::RootOverlay,
    /// What runs application code (`--platform`).
    pub platform: crate::platform::Kind,
}

/// Why the sandbox did not run its command.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error("{0}: command not found")]
    NotFound(String),
    #[error("{0}: cannot execute: {1}")]
    CannotExecute(String, Error),
    #[error("{0}")]
    Setup(String),
}

fn setup(what: &'static str) -> impl Fn(Error) -> BootError {
    move |e| BootError::Setup(format!("{what}: {e}"))
}

/// Read the host facts the sandbox shows its applications (CPU count, cpuinfo, memory;
/// see `fs::proc::host_facts`). Call it before the sentry confines itself: afterwards it
/// can open no host file.
pub fn read_host_facts() {
    crate::fs::proc::host_facts();
}

/// The host's CPU count as the sandbox reports it.
pub fn host_cpus() -> usize {
    crate::fs::proc::host_facts().ncpus
}

/// The search path when the environment has none (glibc's `execvp` default plus sbin).
const DEFAULT_PATH: &[u8] = b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Run the sandbox until its first process exits; returns how it exited. The calling
/// thread becomes the first task's host thread.
pub fn run(cfg: SandboxConfig) -> Result<ExitStatus, BootError> {
    // A no-op when the caller read them before confining this process.
    read_host_facts();
    let argv0 = cfg
        .argv
        .first()
        .cloned()
        .ok_or(BootError::Setup("empty command".into()))?;
    // The MemoryFile comes first: tmpfs file data lives in it.
    let memory_file = Arc::new(MemoryFile::new().map_err(setup("memory file"))?);
    let client = Arc::new(gofer::client::Client::new(cfg.gofer));
    let vfs = crate::fs::build_root(client, cfg.overlay, &memory_file)
        .map_err(setup("root filesystem"))?;
    let mut fs = FsContext::new(vfs);
    match fs.lookup(&fs.root, &cfg.cwd, true) {
        Ok(dir) if dir.inode().is_dir() => fs.cwd = dir,
        _ => tracing::warn!(
            "working directory {} does not exist in the sandbox; using /",
            String::from_utf8_lossy(&cfg.cwd)
        ),
    }
    let [stdin, stdout, stderr] = cfg.stdio;
    let files = crate::fs::initial_fd_table(stdin, stdout, stderr).map_err(setup("stdio"))?;
    let kernel = Kernel::new(cfg.platform.create(), memory_file, cfg.strace);
    if let Ok(mut h) = kernel.hostname.lock() {
        *h = cfg.hostname;
    }
    let kernel = Arc::new(kernel);
    let creds = Credentials::new(cfg.uid, cfg.gid);
    let vcreds = Creds {
        uid: cfg.uid,
        gid: cfg.gid,
        groups: Vec::new(),
    };

    let name = String::from_utf8_lossy(&argv0).into_owned();
    let path = find_program(&fs, &vcreds, &argv0, &cfg.envp).map_err(|e| match e.errno {
        Errno::ENOENT | Errno::ENOTDIR => BootError::NotFound(name.clone()),
        _ => BootError::CannotExecute(name.clone(), e),
    })?;
    let open = |p: &[u8]| -> crate::Result<Executable> {
        let f = fs.open_for_exec(p, &vcreds)?;
        Ok(Executable {
            file: f.mappable,
            path: f.path,
        })
    };
    let (argv_shown, envc) = (cfg.argv.clone(), cfg.envp.len());
    let mut task = Task::new_init(
        kernel,
        fs.clone(),
        files,
        creds,
        &open,
        &path,
        cfg.argv,
        cfg.envp,
    )
    .map_err(|e| match e.errno {
        Errno::ENOENT => BootError::NotFound(name.clone()),
        _ => BootError::CannotExecute(name.clone(), e),
    })?;
    if cfg.strace {
        crate::strace::initial_exec(task.tid, &path, &argv_shown, envc);
    }
    Ok(task.run())
}

/// `execvp`'s search: a name with a slash is used as is; otherwise each `PATH` entry is
/// tried in order, remembering `EACCES` so that it wins over "not found".
fn find_program(
    fs: &FsContext,
    creds: &Creds,
    cmd: &[u8],
    envp: &[Vec<u8>],
) -> crate::Result<Vec<u8>> {
    if cmd.is_empty() {
        return Err(crate::errno!(ENOENT));
    }
    if cmd.contains(&b'/') {
        fs.open_for_exec(cmd, creds).map(|_: ExecFile| cmd.to_vec())
    } else {
        let path = envp
            .iter()
            .find_map(|e| e.strip_prefix(b"PATH="))
            .unwrap_or(DEFAULT_PATH);
        let mut last = crate::errno!(ENOENT);
        for dir in path.split(|&b| b == b':') {
            let dir: &[u8] = if dir.is_empty() { b"." } else { dir };
            let mut full = dir.to_vec();
            full.push(b'/');
            full.extend_from_slice(cmd);
            match fs.open_for_exec(&full, creds) {
                Ok(_) => return Ok(full),
                Err(e) if e.errno == Errno::EACCES => last = e,
                Err(_) => {}
            }
        }
        Err(last)
    }
}
