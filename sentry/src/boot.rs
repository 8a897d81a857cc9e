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

pub mod subcontainer;

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
    /// Supplementary groups of the first process.
    pub groups: Vec<u32>,
    pub umask: u32,
    pub hostname: Vec<u8>,
    /// How the root filesystem takes writes (`--overlay`).
    pub overlay: crate::fs::RootOverlay,
    /// The gofer serves its tree read-write: without an overlay, writes reach the host.
    pub gofer_writable: bool,
    /// The root mount is read-only (OCI `root.readonly`).
    pub read_only_root: bool,
    /// The gofer serves the staged layout (`carapace gofer --staged`): the root
    /// filesystem and the sources of bind mounts (OCI containers).
    pub gofer_staged: bool,
    /// Filesystems mounted over the root, in order (OCI `mounts`).
    pub mounts: Vec<crate::fs::SpecMount>,
    /// A host terminal for the sandbox's console: when set, the first process runs on a
    /// new pty of the sandbox (its stdio and controlling terminal, `/dev/pts/0`) whose
    /// master is bridged to this fd, and `stdio` is not used. For `carapace do --tty`
    /// it is the user's terminal; for the OCI runtime's `--console-socket`, the slave of
    /// a host pty whose master the CLI sends over the socket (see
    /// `fs::devpts::bridge`).
    pub console: Option<OwnedFd>,
    /// Where inet sockets live (`--network`).
    pub network: crate::net::NetworkMode,
    /// What runs application code (`--platform`).
    pub platform: crate::platform::Kind,
    /// Capabilities, no_new_privs, rlimits and seccomp filter of the first process.
    pub security: crate::security::ProcessSecurity,
    /// maskedPaths, readonlyPaths, sysctl, cgroup limits, preserved fds (OCI).
    pub oci: crate::fs::oci::OciSetup,
    /// systrap's syscall patching (`--systrap-patch`).
    pub systrap_patch: bool,
}

impl SandboxConfig {
    /// A configuration with the defaults `carapace do` and the OCI runtime share: root
    /// (uid and gid 0) in `/`, umask 022, hostname `carapace`, the in-memory overlay, no
    /// extra mounts.
    pub fn new(gofer: OwnedFd, stdio: [OwnedFd; 3], argv: Vec<Vec<u8>>) -> SandboxConfig {
        SandboxConfig {
            strace: false,
            gofer,
            stdio,
            argv,
            envp: Vec::new(),
            cwd: b"/".to_vec(),
            uid: 0,
            gid: 0,
            groups: Vec::new(),
            umask: 0o022,
            hostname: b"carapace".to_vec(),
            overlay: crate::fs::RootOverlay::Memory,
            gofer_writable: false,
            read_only_root: false,
            gofer_staged: false,
            mounts: Vec::new(),
            console: None,
            network: crate::net::NetworkMode::None,
            platform: crate::platform::Kind::default(),
            security: Default::default(),
            oci: Default::default(),
            systrap_patch: true,
        }
    }
}

/// A sandbox set up to the first instruction of its first process: the kernel, the
/// mount tree and the init task with its program loaded. [`Sandbox::run`] runs it; the
/// OCI runtime stops here between `create` and `start`.
pub struct Sandbox {
    kernel: Arc<Kernel>,
    init: Task,
    /// What `--strace` prints for the initial exec: path, argv, environment size.
    strace_exec: Option<(Vec<u8>, Vec<Vec<u8>>, usize)>,
    /// The bridge between the console pty and the host terminal, if there is one.
    console: Option<crate::fs::devpts::bridge::ConsoleBridge>,
}

impl Sandbox {
    /// The kernel, for the control server (signals, process lists).
    pub fn kernel(&self) -> &Arc<Kernel> {
        &self.kernel
    }

    /// What `exec` starts more processes with: the kernel, and the container's root and
    /// working directory as the first process got them.
    pub fn spawner(&self) -> Spawner {
        Spawner {
            kernel: self.kernel.clone(),
            fs: self.init.fs().clone(),
            container: crate::kernel::container::SANDBOX,
        }
    }

    /// Run until the first process exits; returns how it exited. The calling thread must
    /// be the one that called [`prepare`]: it is the first task's host thread.
    pub fn run(mut self) -> ExitStatus {
        if let Some((path, argv, envc)) = &self.strace_exec {
            crate::strace::initial_exec(self.init.tid, path, argv, *envc);
        }
        let status = self.init.run();
        if let Some(bridge) = self.console {
            bridge.finish();
        }
        status
    }
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
    Ok(prepare(cfg)?.run())
}

/// Set the sandbox up to the point where its first process would run its first
/// instruction: kernel, root filesystem and spec mounts, stdio, the program loaded.
pub fn prepare(mut cfg: SandboxConfig) -> Result<Sandbox, BootError> {
    // A no-op when the caller read them before confining this process.
    read_host_facts();
    crate::net::set_mode(cfg.network);
    // Checked before any setup; `launch` needs it too.
    if cfg.argv.is_empty() {
        return Err(BootError::Setup("empty command".into()));
    }
    // The MemoryFile comes first: tmpfs file data lives in it.
    let memory_file = Arc::new(MemoryFile::new().map_err(setup("memory file"))?);
    let client = Arc::new(gofer::client::Client::new(cfg.gofer));
    let (vfs, staged) = if cfg.gofer_staged {
        let (vfs, staged) = crate::fs::build_root_staged(
            client,
            cfg.overlay,
            cfg.gofer_writable,
            cfg.read_only_root,
            &memory_file,
        )
        .map_err(setup("root filesystem"))?;
        (vfs, Some(staged))
    } else {
        let vfs = crate::fs::build_root_with(
            client,
            cfg.overlay,
            cfg.gofer_writable,
            cfg.read_only_root,
            &memory_file,
        )
        .map_err(setup("root filesystem"))?;
        (vfs, None)
    };
    for m in &cfg.mounts {
        crate::fs::mount_spec(&vfs, m, &memory_file, staged.as_ref()).map_err(|e| {
            BootError::Setup(format!(
                "mount on {}: {e}",
                String::from_utf8_lossy(&m.destination)
            ))
        })?;
    }
    let mut fs = FsContext::new(vfs);
    crate::fs::oci::apply_paths(&fs, &cfg.oci, &memory_file)
        .map_err(setup("maskedPaths/readonlyPaths"))?;
    crate::fs::cgroup::set_limits(cfg.oci.cgroup);
    fs.umask = cfg.umask & 0o777;
    match fs.lookup(&fs.root, &cfg.cwd, true) {
        Ok(dir) if dir.inode().is_dir() => fs.cwd = dir,
        _ => tracing::warn!(
            "working directory {} does not exist in the sandbox; using /",
            String::from_utf8_lossy(&cfg.cwd)
        ),
    }
    let io = match cfg.console {
        Some(host) => ProcessIo::Console(host),
        None => ProcessIo::Stdio(cfg.stdio),
    };
    let (mut files, console) = process_files(&fs, io, cfg.uid, cfg.gid)?;
    crate::fs::oci::preserve_fds(&mut files, std::mem::take(&mut cfg.oci.extra_fds))
        .map_err(setup("--preserve-fds"))?;
    if let Some(slave) = console.as_ref().and_then(|c| c.slave_path()) {
        crate::fs::mount_console(&fs.vfs, &slave).map_err(setup("/dev/console"))?;
    }
    let kernel = Kernel::new(
        cfg.platform.create_with(cfg.systrap_patch),
        memory_file,
        cfg.strace,
    );
    if let Ok(mut h) = kernel.hostname.lock() {
        *h = cfg.hostname;
    }
    crate::fs::oci::apply_sysctl(&kernel, &cfg.oci).map_err(setup("sysctl"))?;
    let kernel = Arc::new(kernel);
    let mut creds = Credentials::new(cfg.uid, cfg.gid);
    creds.groups = cfg.groups.clone();
    let strace_exec = cfg.strace.then(|| (cfg.argv.clone(), cfg.envp.len()));
    let (init, path) = launch(
        &kernel,
        &fs,
        files,
        creds,
        (cfg.argv, cfg.envp),
        &cfg.security,
    )?;
    let strace_exec = strace_exec.map(|(argv, envc)| (path, argv, envc));
    Ok(Sandbox {
        kernel,
        init,
        strace_exec,
        console,
    })
}

/// Starts processes in a running sandbox for `carapace exec`: each is a new thread group
/// with no parent in the sandbox (its `getppid` is 0, as for a process entered from
/// outside the pid namespace), leading its own session, with the container's root.
#[derive(Clone)]
pub struct Spawner {
    kernel: Arc<Kernel>,
    fs: FsContext,
    /// The container its processes join (`kernel::container`).
    container: u32,
}

/// A process for [`Spawner::spawn`].
pub struct ProcessSpec {
    pub argv: Vec<Vec<u8>>,
    pub envp: Vec<Vec<u8>>,
    pub cwd: Vec<u8>,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub umask: u32,
    pub security: crate::security::ProcessSecurity,
}

/// Where a spawned process's standard I/O goes.
pub enum ProcessIo {
    /// Host descriptors that become its fds 0, 1 and 2.
    Stdio([OwnedFd; 3]),
    /// A host terminal: the process gets a new pty of the sandbox (stdio and controlling
    /// terminal) whose master is bridged to it, as the console of [`SandboxConfig`].
    Console(OwnedFd),
}

impl Spawner {
    /// Start `spec` on a new host thread; returns its sandbox pid once it is loaded and
    /// about to run. `on_exit` is called on that thread with the process's status when
    /// its whole thread group has exited; the process is reaped then (nothing in the
    /// sandbox is its parent).
    pub fn spawn(
        &self,
        spec: ProcessSpec,
        io: ProcessIo,
        on_exit: impl FnOnce(ExitStatus) + Send + 'static,
    ) -> Result<i32, BootError> {
        if self
            .kernel
            .shutting_down
            .load(std::sync::atomic::Ordering::Acquire)
        {
            return Err(BootError::Setup("container not running".into()));
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let this = self.clone();
        std::thread::Builder::new()
            .name("exec".into())
            .spawn(move || match this.load(spec, io) {
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
                Ok((mut task, console)) => {
                    let _ = tx.send(Ok(task.tid));
                    task.run();
                    let status = wait_group_exit(&task);
                    this.kernel.pids().groups.remove(&task.tgid);
                    if let Some(bridge) = console {
                        bridge.finish();
                    }
                    on_exit(status);
                }
            })
            .map_err(|e| BootError::Setup(format!("cannot start a host thread: {e}")))?;
        rx.recv()
            .unwrap_or_else(|_| Err(BootError::Setup("the new process's thread died".into())))
    }

    /// On the thread that will run it: the new process, loaded.
    fn load(
        &self,
        spec: ProcessSpec,
        io: ProcessIo,
    ) -> Result<(Task, Option<crate::fs::devpts::bridge::ConsoleBridge>), BootError> {
        let mut fs = self.fs.clone();
        fs.umask = spec.umask & 0o777;
        match fs.lookup(&fs.root, &spec.cwd, true) {
            Ok(dir) if dir.inode().is_dir() => fs.cwd = dir,
            _ => {
                return Err(BootError::Setup(format!(
                    "cwd {}: no such directory",
                    String::from_utf8_lossy(&spec.cwd)
                )))
            }
        }
        let (files, console) = process_files(&fs, io, spec.uid, spec.gid)?;
        let mut creds = Credentials::new(spec.uid, spec.gid);
        creds.groups = spec.groups;
        // A parentless thread group with a fresh pid, leading a new session: what
        // `new_init` makes, now for a pid other than 1.
        let (task, _) = launch(
            &self.kernel,
            &fs,
            files,
            creds,
            (spec.argv, spec.envp),
            &spec.security,
        )?;
        crate::kernel::container::assign(&task.tg, self.container);
        Ok((task, console))
    }
}

/// After `task` (the leader) has left: wait until the rest of its thread group has too,
/// and return the group's status.
fn wait_group_exit(task: &Task) -> ExitStatus {
    loop {
        if let Some(s) = task.tg.state().exit_status {
            return s;
        }
        // Other threads are still running (the leader called `exit`, not `exit_group`);
        // they end on their own or when the sandbox shuts down.
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The first three descriptors of a new process: host stdio fds, or a new sandbox pty
/// bridged to a host terminal (returned too, to be finished when the process ends).
fn process_files(
    fs: &FsContext,
    io: ProcessIo,
    uid: u32,
    gid: u32,
) -> Result<
    (
        crate::vfs::FdTable,
        Option<crate::fs::devpts::bridge::ConsoleBridge>,
    ),
    BootError,
> {
    match io {
        ProcessIo::Console(host) => {
            let bridge = crate::fs::devpts::bridge::ConsoleBridge::new(fs, host, uid, gid)
                .map_err(setup("console"))?;
            let mut t = crate::vfs::FdTable::new();
            for fd in 0..3 {
                t.insert_at(fd, bridge.slave(), crate::vfs::FdFlags::default())
                    .map_err(setup("console"))?;
            }
            Ok((t, Some(bridge)))
        }
        ProcessIo::Stdio([stdin, stdout, stderr]) => Ok((
            crate::fs::initial_fd_table(stdin, stdout, stderr).map_err(setup("stdio"))?,
            None,
        )),
    }
}

/// Find `argv[0]` as `execvp` would, load it as a new process leading its own session
/// (init, or an `exec`'d process), and make a terminal on its stdio its controlling
/// terminal, with the runtime's security attributes applied. Returns the task and the
/// program's path.
fn launch(
    kernel: &Arc<Kernel>,
    fs: &FsContext,
    files: crate::vfs::FdTable,
    creds: Credentials,
    (argv, envp): (Vec<Vec<u8>>, Vec<Vec<u8>>),
    security: &crate::security::ProcessSecurity,
) -> Result<(Task, Vec<u8>), BootError> {
    let argv0 = argv
        .first()
        .cloned()
        .ok_or(BootError::Setup("empty command".into()))?;
    security.check().map_err(BootError::Setup)?;
    let vcreds: Creds = creds.fs_creds();
    let name = String::from_utf8_lossy(&argv0).into_owned();
    let path = find_program(fs, &vcreds, &argv0, &envp).map_err(|e| match e.errno {
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
    let mut task = Task::new_init(
        kernel.clone(),
        fs.clone(),
        files,
        creds,
        &open,
        &path,
        argv,
        envp,
    )
    .map_err(|e| match e.errno {
        Errno::ENOENT => BootError::NotFound(name.clone()),
        _ => BootError::CannotExecute(name, e),
    })?;
    security.apply(&mut task).map_err(BootError::Setup)?;
    // A terminal on stdio (the host console, or a console pty) is the new session's
    // controlling terminal, with the process's group in the foreground.
    let ctty = (0..3).find_map(|fd| task.files().get(fd).ok().and_then(|f| f.tty()));
    if let Some(term) = ctty {
        crate::kernel::tty::set_ctty(&task.kernel, &task.tg, term);
    }
    Ok((task, path))
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
