//! The sentry's side of the control socket.

use super::{ExecRequest, Phase, Request, Response};
use crate::boot::{BootError, ProcessIo, ProcessSpec, Spawner};
use crate::kernel::signal::{default_action, DefaultAction, SigInfo};
use crate::kernel::{ExitStatus, Kernel};
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// The longest request line the server reads: most are a few dozen bytes; an `Exec`
/// carries a command line and an environment.
const MAX_REQUEST: usize = 1 << 20;

/// The most descriptors a request may bring (an `Exec`'s stdio).
const MAX_FDS: usize = 3;

/// How long a client may take to send its request: connections are served one at a
/// time, so a silent client must not hold the others up for ever.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What ends the `created` phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartDecision {
    /// `start`: run the container's process.
    Start,
    /// A signal whose default action ends a process arrived before `start`: the
    /// container stops without running, as if its init had been killed by `signo`.
    Killed(i32),
}

struct State {
    phase: Phase,
    decision: Option<StartDecision>,
    exit: Option<ExitStatus>,
    /// Clients blocked in `Wait`, answered when init exits.
    waiters: Vec<UnixStream>,
}

struct Shared {
    kernel: Arc<Kernel>,
    /// Starts `exec`'d processes; `None` where the sandbox offers no exec.
    spawner: Option<Spawner>,
    state: Mutex<State>,
    started: Condvar,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The control server of one sandbox: a thread answering requests, plus the calls the
/// boot sequence makes to wait for `start` and to report init's exit.
pub struct ControlServer {
    shared: Arc<Shared>,
}

impl ControlServer {
    /// Serve `listener` on a new thread for the sandbox whose kernel is `kernel`; `exec`
    /// requests go to `spawner`.
    pub fn spawn(
        listener: UnixListener,
        kernel: Arc<Kernel>,
        spawner: Option<Spawner>,
    ) -> std::io::Result<ControlServer> {
        let shared = Arc::new(Shared {
            kernel,
            spawner,
            state: Mutex::new(State {
                phase: Phase::Created,
                decision: None,
                exit: None,
                waiters: Vec::new(),
            }),
            started: Condvar::new(),
        });
        let s = shared.clone();
        std::thread::Builder::new()
            .name("control".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    match conn {
                        // One thread per client: a client slow to send its request (it
                        // has up to REQUEST_TIMEOUT) must not hold up the others.
                        Ok(stream) => {
                            let s = s.clone();
                            let spawned = std::thread::Builder::new()
                                .name("control-client".into())
                                .spawn(move || serve_one(&s, stream));
                            if let Err(e) = spawned {
                                tracing::warn!("control socket: no thread for a client: {e}");
                            }
                        }
                        Err(e) => tracing::warn!("control socket: accept: {e}"),
                    }
                }
            })?;
        Ok(ControlServer { shared })
    }

    /// Block until `start` (or a fatal signal) arrives.
    pub fn wait_for_start(&self) -> StartDecision {
        let mut st = self.shared.state();
        loop {
            if let Some(d) = st.decision {
                return d;
            }
            st = self
                .shared
                .started
                .wait(st)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Init has exited with `status`: the container is stopped; answer every waiter.
    pub fn finish(&self, status: ExitStatus) {
        let waiters = {
            let mut st = self.shared.state();
            st.phase = Phase::Stopped;
            st.exit = Some(status);
            std::mem::take(&mut st.waiters)
        };
        let reply = Response::Exited {
            wait_status: status.wait_status(),
        };
        for mut w in waiters {
            let _ = send(&mut w, &reply);
        }
    }
}

fn send(stream: &mut UnixStream, r: &Response) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(r).map_err(std::io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line)
}

/// Read one request line from `stream`, with the descriptors sent beside it.
fn read_request(stream: &UnixStream) -> std::io::Result<(Vec<u8>, Vec<OwnedFd>)> {
    let mut line = Vec::new();
    let mut fds = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let (n, got) = crate::host::recv_with_fds(stream.as_fd(), &mut buf)?;
        fds.extend(got);
        if fds.len() > MAX_FDS {
            return Err(std::io::Error::other("too many descriptors"));
        }
        let data = buf.get(..n).unwrap_or_default();
        match data.iter().position(|&b| b == b'\n') {
            Some(end) => {
                line.extend_from_slice(data.get(..end).unwrap_or_default());
                return Ok((line, fds));
            }
            None if n == 0 => return Ok((line, fds)),
            None => line.extend_from_slice(data),
        }
        if line.len() > MAX_REQUEST {
            return Err(std::io::Error::other("request too long"));
        }
    }
}

/// Read one request from `stream` and answer it (or park it, for `Wait` and `Exec`).
fn serve_one(shared: &Shared, mut stream: UnixStream) {
    let _ = stream.set_read_timeout(Some(REQUEST_TIMEOUT));
    let (line, fds) = match read_request(&stream) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("control socket: read: {e}");
            return;
        }
    };
    let reply = match serde_json::from_slice::<Request>(&line) {
        Ok(Request::Wait) => {
            let mut st = shared.state();
            match st.exit {
                Some(status) => Response::Exited {
                    wait_status: status.wait_status(),
                },
                None => {
                    st.waiters.push(stream);
                    return;
                }
            }
        }
        Ok(Request::Exec(req)) => match exec(shared, req, fds, &stream) {
            Ok(()) => return,
            Err(message) => error(message),
        },
        Ok(req) => handle(shared, req),
        Err(e) => Response::Error {
            message: format!("bad control request: {e}"),
        },
    };
    if let Err(e) = send(&mut stream, &reply) {
        tracing::warn!("control socket: write: {e}");
    }
}

/// `Exec`: start the process and answer `Started`; its thread answers `Exited` on the
/// same connection when it is gone (never before `Started` is out).
fn exec(
    shared: &Shared,
    req: ExecRequest,
    fds: Vec<OwnedFd>,
    stream: &UnixStream,
) -> Result<(), String> {
    match shared.state().phase {
        Phase::Running => {}
        Phase::Created => return Err("cannot exec in a container that has not started".into()),
        Phase::Stopped => return Err("cannot exec in a stopped container".into()),
    }
    let Some(spawner) = &shared.spawner else {
        return Err("this sandbox cannot exec".into());
    };
    let io = if req.terminal {
        let [console]: [OwnedFd; 1] = fds
            .try_into()
            .map_err(|_| "exec with a terminal takes exactly one descriptor".to_string())?;
        ProcessIo::Console(console)
    } else {
        let stdio: [OwnedFd; 3] = fds
            .try_into()
            .map_err(|_| "exec takes three descriptors (stdin, stdout, stderr)".to_string())?;
        ProcessIo::Stdio(stdio)
    };
    if req.args.is_empty() {
        return Err("exec: args must not be empty".into());
    }
    let bytes =
        |v: Vec<String>| -> Vec<Vec<u8>> { v.into_iter().map(String::into_bytes).collect() };
    let spec = ProcessSpec {
        argv: bytes(req.args),
        envp: bytes(req.env),
        cwd: req.cwd.into_bytes(),
        uid: req.uid,
        gid: req.gid,
        groups: req.additional_gids,
        umask: req.umask,
        security: *req.security,
    };
    let mut reply = stream
        .try_clone()
        .map_err(|e| format!("control socket: {e}"))?;
    let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
    let on_exit = move |status: ExitStatus| {
        // An Err means `Started` was never sent: the client has gone already.
        if started_rx.recv().is_ok() {
            let _ = send(
                &mut reply,
                &Response::Exited {
                    wait_status: status.wait_status(),
                },
            );
        }
    };
    let pid = spawner.spawn(spec, io, on_exit).map_err(|e| match e {
        BootError::NotFound(cmd) => {
            format!("exec: {cmd:?}: executable file not found in $PATH")
        }
        BootError::CannotExecute(cmd, err) => format!("exec: {cmd:?}: {err}"),
        BootError::Setup(msg) => format!("exec failed: {msg}"),
    })?;
    let mut out = stream
        .try_clone()
        .map_err(|e| format!("control socket: {e}"))?;
    if let Err(e) = send(&mut out, &Response::Started { pid }) {
        tracing::warn!("control socket: write: {e}");
        return Ok(());
    }
    let _ = started_tx.send(());
    kill_when_client_goes(&shared.kernel, pid, stream);
    Ok(())
}

/// The `exec` client (the CLI, or its `--detach` waiter) stands in for the process on
/// the host: containerd and conmon kill an exec by SIGKILLing that pid, which the client
/// cannot catch and pass on. So when its connection closes before the process has
/// exited, the process is killed (a client that got `Exited` closes it afterwards, and
/// then there is nothing left to kill).
fn kill_when_client_goes(kernel: &Arc<Kernel>, pid: i32, stream: &UnixStream) {
    let Some(group) = kernel.pids().group(pid) else {
        return;
    };
    let watch = match stream.try_clone() {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!("control socket: {e}: exec {pid} is not killed with its client");
            return;
        }
    };
    let kernel = kernel.clone();
    let spawned = std::thread::Builder::new()
        .name("exec-client".into())
        .spawn(move || {
            use std::io::Read;
            let _ = watch.set_read_timeout(None);
            let mut buf = [0u8; 64];
            loop {
                match (&watch).read(&mut buf) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            if group.state().exit_status.is_none() {
                kernel.signal_group(&group, SigInfo::user(libc::SIGKILL, 0, 0));
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("{e}: exec {pid} is not killed with its client");
    }
}

fn handle(shared: &Shared, req: Request) -> Response {
    let mut st = shared.state();
    match req {
        Request::Start => match st.phase {
            Phase::Created if st.decision.is_none() => {
                st.phase = Phase::Running;
                st.decision = Some(StartDecision::Start);
                shared.started.notify_all();
                Response::Ok
            }
            Phase::Running => error("cannot start an already running container"),
            _ => error("cannot start a container that has stopped"),
        },
        Request::Signal { signo, all } => {
            if !(1..=64).contains(&signo) {
                return error(format!("invalid signal {signo}"));
            }
            match st.phase {
                Phase::Created => {
                    // Nothing has run yet: a signal that would end init ends the
                    // container; one that would not is dropped, as init ignores it.
                    if matches!(
                        default_action(signo),
                        DefaultAction::Terminate | DefaultAction::CoreDump
                    ) && st.decision.is_none()
                    {
                        st.phase = Phase::Stopped;
                        st.decision = Some(StartDecision::Killed(signo));
                        shared.started.notify_all();
                    }
                    Response::Ok
                }
                Phase::Running => {
                    drop(st);
                    signal(&shared.kernel, signo, all)
                }
                Phase::Stopped => error("container not running"),
            }
        }
        Request::SignalProcess { pid, signo } => {
            if !(1..=64).contains(&signo) {
                return error(format!("invalid signal {signo}"));
            }
            if st.phase != Phase::Running {
                return error("container not running");
            }
            drop(st);
            let group = shared.kernel.pids().group(pid);
            match group {
                Some(g) if g.state().exit_status.is_none() => {
                    shared.kernel.signal_group(&g, SigInfo::user(signo, 0, 0));
                    Response::Ok
                }
                _ => error("no such process"),
            }
        }
        Request::State => Response::State { phase: st.phase },
        Request::Ps => {
            drop(st);
            let mut pids: Vec<i32> = shared.kernel.pids().groups.keys().copied().collect();
            pids.sort_unstable();
            Response::Ps { pids }
        }
        Request::UpdateCgroup(l) => {
            crate::fs::cgroup::update_limits(l);
            Response::Ok
        }
        // Answered by the caller.
        Request::Wait | Request::Exec(_) => error("internal: wait"),
    }
}

/// A signal from outside the sandbox: from "pid 0", as the kernel reports signals sent
/// from an ancestor pid namespace.
fn signal(kernel: &Kernel, signo: i32, all: bool) -> Response {
    let groups: Vec<_> = {
        let pids = kernel.pids();
        if all {
            pids.groups.values().cloned().collect()
        } else {
            pids.group(1).into_iter().collect()
        }
    };
    if groups.is_empty() {
        return error("container not running");
    }
    for g in groups {
        kernel.signal_group(&g, SigInfo::user(signo, 0, 0));
    }
    Response::Ok
}

fn error(message: impl Into<String>) -> Response {
    Response::Error {
        message: message.into(),
    }
}
