//! `carapace create` and `carapace run`: check the bundle, start the gofer and the sandbox
//! (`carapace boot`), wait until the sandbox reports that the container is created, and
//! record it under `--root`. Anything that fails on the way is undone.

use crate::container::{HostProcess, Root, Saved};
use anyhow::{bail, Context};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use sentry::control::{Request, Response};
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub fn create(args: liboci_cli::Create, opts: &crate::RuntimeOpts) -> anyhow::Result<u8> {
    let created = create_container(
        opts,
        &args.container_id,
        &args.bundle,
        args.pid_file.as_deref(),
        args.console_socket.as_deref(),
        false,
        args.preserve_fds,
    )?;
    // The sandbox outlives us: it is reparented, like runc's container init.
    drop(created.boot);
    Ok(0)
}

/// `run`: create, start, and (unless `--detach`) wait for the container's init and exit
/// with its status (a signal N gives 128 + N, as runc does); the container is deleted
/// afterwards unless `--keep`.
pub fn run(args: liboci_cli::Run, opts: &crate::RuntimeOpts) -> anyhow::Result<u8> {
    // Block the signals `run` forwards before any thread exists, so that they all wait
    // for the forwarder (children get an empty mask: std resets it at spawn).
    let forwarded = forwarded_signals();
    if !args.detach {
        forwarded
            .thread_block()
            .context("cannot block the forwarded signals")?;
    }
    let Created {
        mut boot,
        container,
    } = create_container(
        opts,
        &args.container_id,
        &args.bundle,
        args.pid_file.as_deref(),
        args.console_socket.as_deref(),
        !args.detach,
        args.preserve_fds,
    )?;
    // On the caller's own terminal, the sentry puts it in raw mode and back; this is for
    // when it cannot (killed), so the user's shell is not left in raw mode.
    let saved_termios = (!args.detach && args.console_socket.is_none())
        .then(|| nix::sys::termios::tcgetattr(std::io::stdin()).ok())
        .flatten();
    match crate::hooks::start(&container, || container.request(&Request::Start)) {
        Ok(Response::Ok) => {}
        other => {
            let _ = container.destroy();
            let _ = boot.wait();
            match other {
                Ok(Response::Error { message }) => bail!("{message}"),
                Ok(r) => bail!("unexpected answer to start: {r:?}"),
                Err(e) => return Err(e),
            }
        }
    }
    if args.detach {
        return Ok(0);
    }
    forward_signals(forwarded, container.control_path(), |signo| {
        Request::Signal { signo, all: false }
    });
    let status = boot.wait().context("waiting for the container")?;
    if let Some(t) = &saved_termios {
        let _ =
            nix::sys::termios::tcsetattr(std::io::stdin(), nix::sys::termios::SetArg::TCSADRAIN, t);
    }
    if !args.keep {
        container.destroy()?;
    }
    use std::os::unix::process::ExitStatusExt;
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => (code & 0xff) as u8,
        (None, Some(sig)) => (128 + (sig & 0x7f)) as u8,
        _ => 255,
    })
}

/// The signals `run` passes on to the container's init, as runc does.
pub fn forwarded_signals() -> nix::sys::signal::SigSet {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGTERM,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
    ] {
        set.add(s);
    }
    set
}

/// A thread that takes each signal of `set` sent to this process and sends the request
/// `req` makes of it over the control socket (to init for `run`, to the process for
/// `exec`). It ends with the process.
pub fn forward_signals(
    set: nix::sys::signal::SigSet,
    control: PathBuf,
    req: impl Fn(i32) -> Request + Send + 'static,
) {
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || loop {
            let Ok(sig) = set.wait() else { return };
            if let Err(e) = crate::container::request(&control, &req(sig as i32)) {
                tracing::debug!("forwarding {sig}: {e:#}");
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("signals will not reach the container: {e}");
    }
}

/// `--preserve-fds N`: this process's fds 3..3+N, which become the container init's fds
/// 3.. (as runc passes them). Taken here and made close-on-exec, so that the gofer does
/// not inherit them; `boot` gets duplicates.
fn preserved_fds(n: i32) -> anyhow::Result<Vec<OwnedFd>> {
    if !(0..=1024).contains(&n) {
        bail!("--preserve-fds {n}: expected a count from 0 to 1024");
    }
    let mut fds = Vec::new();
    for fd in 3..n.saturating_add(3) {
        let owned =
            crate::host::take_inherited_fd(fd).with_context(|| format!("--preserve-fds {n}"))?;
        nix::fcntl::fcntl(
            &owned,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
        .with_context(|| format!("--preserve-fds {n}: fd {fd}"))?;
        fds.push(owned);
    }
    Ok(fds)
}

/// The container's terminal (`process.terminal`).
enum Console {
    /// A host pty: the master goes to the `--console-socket`, the slave to the sentry.
    Socket {
        path: PathBuf,
        master: OwnedFd,
        slave: OwnedFd,
    },
    /// `run` in the foreground without a console socket: the caller's own terminal.
    OwnTty(OwnedFd),
}

impl Console {
    /// The host terminal the sentry bridges its console pty to.
    fn sentry_end(&self) -> &OwnedFd {
        match self {
            Console::Socket { slave, .. } => slave,
            Console::OwnTty(fd) => fd,
        }
    }
}

/// Work out the console from `process.terminal`, `--console-socket` and whether the
/// caller's own terminal may serve (`run` in the foreground), with runc's rules.
fn console_for(
    b: &crate::bundle::Bundle,
    console_socket: Option<&Path>,
    own_tty: bool,
) -> anyhow::Result<Option<Console>> {
    match (b.terminal, console_socket) {
        (true, Some(path)) => {
            let (master, slave) = crate::console::open_pty(b.console_size)?;
            Ok(Some(Console::Socket {
                path: path.to_path_buf(),
                master,
                slave,
            }))
        }
        (true, None) if own_tty => {
            if !nix::unistd::isatty(std::io::stdin()).unwrap_or(false) {
                bail!("process.terminal is true but standard input is not a terminal (use --console-socket)");
            }
            Ok(Some(Console::OwnTty(crate::host::dup_stdio(0)?)))
        }
        (true, None) => {
            bail!("process.terminal is true: --console-socket is required")
        }
        (false, Some(_)) => {
            bail!("--console-socket given but process.terminal is false")
        }
        (false, None) => Ok(None),
    }
}

/// A container just created: its sandbox process (our child) and its record.
pub struct Created {
    pub boot: Child,
    pub container: crate::container::Container,
}

fn create_container(
    opts: &crate::RuntimeOpts,
    id: &str,
    bundle: &Path,
    pid_file: Option<&Path>,
    console_socket: Option<&Path>,
    own_tty: bool,
    preserve_fds: i32,
) -> anyhow::Result<Created> {
    let preserved = preserved_fds(preserve_fds)?;
    let root = Root::new(opts.root.clone());
    let dir = root.container_dir(id)?;
    let b = crate::bundle::load(bundle)?;
    let console = console_for(&b, console_socket, own_tty)?;
    // Only the runtime's user may reach the control sockets inside.
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&root.dir)
        .with_context(|| format!("cannot create --root {}", root.dir.display()))?;
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("container with id {id} already exists")
        }
        Err(e) => return Err(e).context(format!("cannot create {}", dir.display())),
    }
    let mut procs = Vec::new();
    match start_sandbox(
        opts, id, &b, &dir, pid_file, console, &preserved, &mut procs,
    ) {
        Ok(created) => Ok(created),
        Err(e) => {
            let hosts: Vec<HostProcess> = procs
                .iter()
                .filter_map(|c: &Child| HostProcess::of(c.id() as i32).ok())
                .collect();
            let _ = crate::container::destroy(&dir, &hosts);
            for mut c in procs {
                let _ = c.kill();
                let _ = c.wait();
            }
            if let Some(p) = pid_file {
                let _ = std::fs::remove_file(p);
            }
            crate::hooks::create_failed(&b, id);
            Err(e)
        }
    }
}

/// Start the gofer and the sandbox for bundle `b` in state directory `dir`; every process
/// started is pushed on `procs` so that the caller can undo a failure.
#[allow(clippy::too_many_arguments)]
fn start_sandbox(
    opts: &crate::RuntimeOpts,
    id: &str,
    b: &crate::bundle::Bundle,
    dir: &Path,
    pid_file: Option<&Path>,
    console: Option<Console>,
    preserved: &[OwnedFd],
    procs: &mut Vec<Child>,
) -> anyhow::Result<Created> {
    let exe = std::env::current_exe().context("cannot find the carapace binary")?;
    let (sentry_end, gofer_end) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .context("socketpair for the gofer")?;

    // The gofer may write to the rootfs only when the sentry sends writes through it.
    let (_, gofer_writable) = crate::cmd_boot::root_mode(b.readonly, opts.overlay);
    let inherited = nix::unistd::dup(&gofer_end).context("dup for the gofer")?;
    drop(gofer_end);
    // The cgroup first: the gofer and boot join it before they start anything.
    let cgroup = crate::cgroups::Cgroup::for_container(id, &opts.root, b.cgroups_path.as_deref())?;
    // Made before it is recorded: a cgroup refused as another container's must never be
    // removed by this create's clean-up.
    cgroup.create(&b.resources)?;
    if let Err(e) = cgroup.save(&dir.join("cgroup")) {
        cgroup.remove();
        return Err(e);
    }
    let mut gofer = Command::new(&exe);
    opts.pass_logging(&mut gofer);
    gofer.arg("--cgroup").arg(cgroup.path());
    // Neither helper keeps the caller's working directory busy.
    gofer
        .current_dir("/")
        .arg("gofer")
        .arg("--root")
        .arg(&b.rootfs)
        .arg("--sock-fd")
        .arg(inherited.as_raw_fd().to_string());
    if !gofer_writable {
        gofer.arg("--read-only");
    }
    // The staged layout: the rootfs and every bind mount's source, from one gofer.
    gofer.arg("--staged");
    for bind in &b.binds {
        let mut arg = std::ffi::OsString::from(if bind.read_only { "ro:" } else { "rw:" });
        arg.push(&bind.path);
        gofer.arg("--bind").arg(arg);
    }
    let g = gofer
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .context("cannot start the gofer")?;
    drop(inherited);
    let gofer_proc = HostProcess::of(g.id() as i32)?;
    procs.push(g);

    let (ready_r, ready_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe for readiness")?;
    let ready_inherited = nix::unistd::dup(&ready_w).context("dup for boot")?;
    drop(ready_w);
    let sentry_inherited = nix::unistd::dup(&sentry_end).context("dup for boot")?;
    drop(sentry_end);
    let mut boot = Command::new(&exe);
    opts.pass_logging(&mut boot);
    opts.pass_runtime(&mut boot);
    // Standard I/O is inherited: it is the container's, as with runc.
    boot.current_dir("/")
        .arg("--cgroup")
        .arg(cgroup.path())
        .arg("boot")
        .arg("--bundle")
        .arg(&b.dir)
        .arg("--state-dir")
        .arg(dir)
        .arg("--gofer-fd")
        .arg(sentry_inherited.as_raw_fd().to_string())
        .arg("--ready-fd")
        .arg(ready_inherited.as_raw_fd().to_string());
    let console_inherited = match &console {
        Some(c) => Some(nix::unistd::dup(c.sentry_end()).context("dup for boot")?),
        None => None,
    };
    if let Some(fd) = &console_inherited {
        boot.arg("--console-fd").arg(fd.as_raw_fd().to_string());
    }
    // Duplicates without close-on-exec: `boot` inherits them, the gofer (already
    // started) did not.
    let mut preserved_inherited = Vec::new();
    for fd in preserved {
        let dup = nix::unistd::dup(fd).context("dup for boot")?;
        boot.arg("--preserve-fd").arg(dup.as_raw_fd().to_string());
        preserved_inherited.push(dup);
    }
    let child = boot.spawn().context("cannot start the sandbox")?;
    drop(preserved_inherited);
    drop(ready_inherited);
    drop(sentry_inherited);
    drop(console_inherited);
    let boot_proc = HostProcess::of(child.id() as i32)?;
    procs.push(child);

    let mut line = String::new();
    std::fs::File::from(ready_r)
        .take(64 * 1024)
        .read_to_string(&mut line)
        .context("reading the sandbox's readiness")?;
    let line = line.trim_end();
    if line != crate::cmd_boot::READY {
        if line.is_empty() {
            bail!("the sandbox exited during setup");
        }
        bail!("{line}");
    }

    // As runc: the master reaches the console socket once the container is created.
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
        pid: boot_proc,
        gofer: gofer_proc,
    };
    crate::hooks::created(dir, &b.hooks, &saved)?;
    write_atomically(&dir.join("state.json"), &serde_json::to_vec(&saved)?)?;
    if let Some(p) = pid_file {
        write_atomically(p, boot_proc.pid.to_string().as_bytes())
            .with_context(|| format!("--pid-file {}", p.display()))?;
    }
    let boot = procs.pop().context("internal: no boot process")?;
    Ok(Created {
        boot,
        container: crate::container::Container {
            dir: dir.to_path_buf(),
            saved,
        },
    })
}

/// Write `data` to `path` through a temporary file and a rename, so that readers never see
/// half of it (containerd reads the pid file as soon as it appears).
pub fn write_atomically(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("{}: not a file name", path.display()))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".tmp");
    let tmp: PathBuf = path.with_file_name(tmp_name);
    std::fs::write(&tmp, data).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}
