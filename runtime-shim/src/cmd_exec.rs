//! `carapace exec`: a new process in a running container, through the sentry's control
//! socket. The process is described by `--process process.json` or by the trailing
//! arguments on top of the container's own `process` (env, cwd, user), adjusted by
//! `--env`, `--cwd`, `--user`, `--additional-gids`. Its standard I/O is ours: our fds 0-2
//! (or, with a terminal, one host terminal) go to the sentry with `SCM_RIGHTS`, since the
//! confined sentry can open nothing itself.
//!
//! Waiting: the sentry is one host process for the whole sandbox, so the exec'd process
//! has no host pid of its own. The `exec` process stands in for it: it stays until the
//! sentry reports the exit and ends the same way (exit code, or the same signal), and its
//! pid is what `--pid-file` gets. With `--detach` a forked waiter, in its own session and
//! with its stdio on `/dev/null`, does that instead and `exec` returns at once, which is
//! what conmon and containerd's shim (subreapers that wait on the `--pid-file` pid) need.

use crate::container::{Root, Status};
use anyhow::{bail, Context};
use sentry::control::{ExecRequest, Request, Response};
use sentry::kernel::ExitStatus;
use std::io::{BufRead, BufReader};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;

pub fn exec(args: liboci_cli::Exec, opts: &crate::RuntimeOpts) -> anyhow::Result<u8> {
    if args.preserve_fds != 0 {
        bail!(
            "--preserve-fds {}: passing extra descriptors is not supported yet",
            args.preserve_fds
        );
    }
    if args.apparmor.is_some() || args.process_label.is_some() || args.cgroup.is_some() {
        tracing::warn!("exec: --apparmor, --process-label and --cgroup are ignored");
    }
    let c = Root::new(opts.root.clone()).load(&args.container_id)?;
    match c.status() {
        Status::Running => {}
        Status::Created => bail!("cannot exec in a container that has not started"),
        Status::Stopped => bail!("cannot exec in a stopped container"),
        // Its sentry is frozen and cannot answer.
        Status::Paused => bail!("cannot exec in a paused container"),
    }
    let (mut req, console_size) = request_for(&args, &c.saved.bundle)?;
    crate::security::exec_flags(&mut req.security, &args.cap, args.no_new_privs)?;
    // Signals sent to the process that stands in for the exec'd one go to it, as with
    // runc; blocked now, while this process has one thread, so that the forwarder alone
    // takes them (a forked waiter inherits the mask).
    let forwarded = crate::cmd_create::forwarded_signals();
    forwarded
        .thread_block()
        .context("cannot block the forwarded signals")?;

    // What the sentry gets: our stdio, or one terminal.
    let fds: Vec<OwnedFd> = if req.terminal {
        match &args.console_socket {
            Some(path) => {
                let (master, slave) = crate::console::open_pty(console_size)?;
                crate::console::send_console(path, &master)?;
                vec![slave]
            }
            None if args.detach => {
                bail!("cannot allocate a tty when detaching without --console-socket")
            }
            None => {
                if !nix::unistd::isatty(std::io::stdin()).unwrap_or(false) {
                    bail!("--tty: standard input is not a terminal (use --console-socket)");
                }
                vec![crate::host::dup_stdio(0)?]
            }
        }
    } else {
        if args.console_socket.is_some() {
            bail!("--console-socket given but the process has no terminal (--tty)");
        }
        vec![
            crate::host::dup_stdio(0)?,
            crate::host::dup_stdio(1)?,
            crate::host::dup_stdio(2)?,
        ]
    };
    let saved_termios = (req.terminal && args.console_socket.is_none())
        .then(|| nix::sys::termios::tcgetattr(std::io::stdin()).ok())
        .flatten();

    let control = c.control_path();
    let stream = UnixStream::connect(&control)
        .with_context(|| format!("cannot reach the sandbox at {}", control.display()))?;
    let mut line = serde_json::to_vec(&Request::Exec(req))?;
    line.push(b'\n');
    let borrowed: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
    crate::console::send_with_fds(&stream, &line, &borrowed).context("control socket: write")?;
    drop(borrowed);
    drop(fds);
    let mut reader = BufReader::new(stream);
    let pid = match read_response(&mut reader)? {
        Response::Started { pid } => pid,
        Response::Error { message } => bail!("{message}"),
        other => bail!("unexpected answer from the sandbox: {other:?}"),
    };
    let forward = move || {
        crate::cmd_create::forward_signals(forwarded, control, move |signo| {
            Request::SignalProcess { pid, signo }
        })
    };

    if args.detach {
        return detach(reader, args.pid_file.as_deref(), forward);
    }
    forward();
    if let Some(p) = &args.pid_file {
        crate::cmd_create::write_atomically(p, std::process::id().to_string().as_bytes())
            .with_context(|| format!("--pid-file {}", p.display()))?;
    }
    let status = wait_exit(&mut reader);
    if let Some(t) = &saved_termios {
        let _ =
            nix::sys::termios::tcsetattr(std::io::stdin(), nix::sys::termios::SetArg::TCSADRAIN, t);
    }
    // As runc exec: the exit code, or 128 + N for signal N.
    Ok((status?.shell_code() & 0xff) as u8)
}

/// `--detach`: fork the waiter that stands in for the process, give its pid to
/// `--pid-file`, and return.
fn detach(
    mut reader: BufReader<UnixStream>,
    pid_file: Option<&std::path::Path>,
    forward: impl FnOnce(),
) -> anyhow::Result<u8> {
    use nix::unistd::ForkResult;
    // Single-threaded here: nothing in the CLI has started a thread.
    match crate::host::fork().context("cannot fork the exec waiter")? {
        ForkResult::Parent { child } => {
            if let Some(p) = pid_file {
                crate::cmd_create::write_atomically(p, child.as_raw().to_string().as_bytes())
                    .with_context(|| format!("--pid-file {}", p.display()))?;
            }
            Ok(0)
        }
        ForkResult::Child => {
            // Out of the caller's session and off its pipes, so nobody waits for EOF on
            // them because of us.
            let _ = nix::unistd::setsid();
            if let Ok(null) = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
            {
                let _ = nix::unistd::dup2_stdin(&null);
                let _ = nix::unistd::dup2_stdout(&null);
                let _ = nix::unistd::dup2_stderr(&null);
            }
            forward();
            let status = match wait_exit(&mut reader) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!("exec: {e:#}");
                    return Ok(255);
                }
            };
            Ok(crate::host::exit_like(status))
        }
    }
}

/// The second answer of an `Exec`: how the process ended. A sandbox that goes away
/// first (its init exited, or it was killed) took the process with it, as the end of a
/// pid namespace kills its processes: that is SIGKILL, as runc reports it.
fn wait_exit(reader: &mut BufReader<UnixStream>) -> anyhow::Result<ExitStatus> {
    let mut answer = String::new();
    let n = reader.read_line(&mut answer).unwrap_or(0);
    if n == 0 {
        return Ok(ExitStatus::Signaled {
            signo: libc::SIGKILL,
            core: false,
        });
    }
    let response: Response = serde_json::from_str(&answer).context("control socket: bad answer")?;
    match response {
        Response::Exited { wait_status } => Ok(from_wait_status(wait_status)),
        Response::Error { message } => bail!("{message}"),
        other => bail!("unexpected answer from the sandbox: {other:?}"),
    }
}

fn from_wait_status(ws: i32) -> ExitStatus {
    if ws & 0x7f == 0 {
        ExitStatus::Exited((ws >> 8) & 0xff)
    } else {
        ExitStatus::Signaled {
            signo: ws & 0x7f,
            core: ws & 0x80 != 0,
        }
    }
}

fn read_response(reader: &mut BufReader<UnixStream>) -> anyhow::Result<Response> {
    let mut answer = String::new();
    reader
        .read_line(&mut answer)
        .context("control socket: read")?;
    if answer.is_empty() {
        bail!("the sandbox closed the control socket without answering");
    }
    serde_json::from_str(&answer).context("control socket: bad answer")
}

/// The process to start, and its console size: from `--process`, or from the trailing
/// arguments on top of the container's `process`, with the flags applied.
fn request_for(
    args: &liboci_cli::Exec,
    bundle: &std::path::Path,
) -> anyhow::Result<(ExecRequest, Option<(u16, u16)>)> {
    if let Some(path) = &args.process {
        if !args.command.is_empty() {
            bail!("--process and a command cannot be given together");
        }
        let text = std::fs::read(path).with_context(|| format!("--process {}", path.display()))?;
        let value: serde_json::Value = serde_json::from_slice(&text)
            .with_context(|| format!("--process {}: malformed process", path.display()))?;
        let own = crate::security::from_process(&value, "")
            .with_context(|| format!("--process {}", path.display()))?;
        let p: oci_spec::runtime::Process = serde_json::from_value(value.clone())
            .with_context(|| format!("--process {}: malformed process", path.display()))?;
        let (mut req, size) = process_request(&p, args.tty)
            .with_context(|| format!("--process {}", path.display()))?;
        let container = crate::bundle::load(bundle)?.security;
        req.security = Box::new(crate::security::for_exec(&value, own, container));
        return Ok((req, size));
    }
    if args.command.is_empty() {
        bail!("exec: a command or --process is required");
    }
    let b = crate::bundle::load(bundle)?;
    let mut env: Vec<String> = b
        .env
        .iter()
        .map(|e| String::from_utf8_lossy(e).into_owned())
        .collect();
    for (k, v) in &args.env {
        if k.is_empty() {
            bail!("--env ={v}: empty variable name");
        }
        let prefix = format!("{k}=");
        env.retain(|e| !e.starts_with(&prefix));
        env.push(format!("{k}={v}"));
    }
    let cwd = match &args.cwd {
        Some(c) => {
            if !c.is_absolute() {
                bail!("--cwd {}: not an absolute path", c.display());
            }
            c.to_str()
                .with_context(|| format!("--cwd {}: not UTF-8", c.display()))?
                .to_string()
        }
        None => String::from_utf8_lossy(&b.cwd).into_owned(),
    };
    let (uid, gid) = match args.user {
        Some((uid, gid)) => (uid, gid.unwrap_or(b.gid)),
        None => (b.uid, b.gid),
    };
    let mut additional_gids = b.additional_gids.clone();
    additional_gids.extend(&args.additional_gids);
    Ok((
        ExecRequest {
            args: args.command.clone(),
            env,
            cwd,
            uid,
            gid,
            additional_gids,
            umask: b.umask,
            terminal: args.tty,
            security: Box::new(b.security.clone()),
        },
        None,
    ))
}

/// An `ExecRequest` from a `process.json`, checked as `create` checks `process`.
fn process_request(
    p: &oci_spec::runtime::Process,
    tty: bool,
) -> anyhow::Result<(ExecRequest, Option<(u16, u16)>)> {
    let args: Vec<String> = p.args().iter().flatten().cloned().collect();
    if args.is_empty() {
        bail!("args: missing or empty");
    }
    let env: Vec<String> = p.env().iter().flatten().cloned().collect();
    if let Some((i, e)) = env.iter().enumerate().find(|(_, e)| !e.contains('=')) {
        bail!("env[{i}] {e:?}: expected KEY=VALUE");
    }
    let cwd = p.cwd();
    if !cwd.is_absolute() {
        bail!("cwd {}: not an absolute path", cwd.display());
    }
    let cwd = cwd
        .to_str()
        .with_context(|| format!("cwd {}: not UTF-8", cwd.display()))?
        .to_string();
    let user = p.user();
    let umask = user.umask().unwrap_or(0o022);
    if umask > 0o777 {
        bail!("user.umask {umask}: more than 0777");
    }
    Ok((
        ExecRequest {
            args,
            env,
            cwd,
            uid: user.uid(),
            gid: user.gid(),
            additional_gids: user.additional_gids().clone().unwrap_or_default(),
            umask,
            terminal: p.terminal().unwrap_or(false) || tty,
            security: Default::default(),
        },
        crate::bundle::console_size(p)?,
    ))
}
