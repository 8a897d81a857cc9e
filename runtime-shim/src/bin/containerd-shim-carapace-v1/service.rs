//! The task service: containerd's task API answered by running the `carapace` CLI, the way
//! containerd's runc shim runs runc.
//!
//! One shim serves one container, or all the containers of a pod (grouped by the CRI's
//! `io.kubernetes.cri.sandbox-id` annotation, as runc's shim groups them; `carapace create`
//! puts a pod's app containers into the sentry of its sandbox container). Its processes:
//! `carapace create` leaves the container's `boot` process behind (the pid in `--pid-file`;
//! for a pod's app container, its waiter); `create` exits, so `boot` is re-parented to the
//! shim, which is a child subreaper. The `containerd-shim` crate's reaper
//! reaps every child and reports the exits through its monitor; the exit of `boot` is the
//! exit of the container's init (it exits with init's status, a signal re-raised), which the
//! shim turns into the `TaskExit` event and the answer to `Wait`.
//!
//! Standard I/O: containerd's fifos are opened here and handed straight to `carapace
//! create`, whose `boot` (and so the sentry) inherits them, as runc's are. The shim keeps no
//! copy, so the readers see end-of-file when the sandbox's processes are gone.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use containerd_shim as shim;
use serde::{Deserialize, Serialize};
use shim::api;
use shim::monitor::{monitor_subscribe, wait_pid, Subject, Topic};
use shim::protos::cgroups::metrics::{
    CPUStat, CPUUsage, MemoryEntry, MemoryStat, Metrics, PidsStat,
};
use shim::protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskIO, TaskOOM, TaskPaused,
    TaskResumed, TaskStart,
};
use shim::protos::protobuf::well_known_types::any::Any;
use shim::protos::protobuf::well_known_types::timestamp::Timestamp;
use shim::protos::protobuf::{EnumOrUnknown, Message, MessageDyn, MessageField};
use shim::protos::topics;
use shim::protos::ttrpc::{self, Code};
use shim::publisher::RemotePublisher;
use shim::{Config, DeleteResponse, ExitSignal, Flags, StartOpts, TtrpcContext, TtrpcResult};

use crate::options::ShimOptions;

/// Written into the bundle at `create`, read back by the `delete` action (run by containerd
/// when a shim died) to find the container's `carapace` and its root.
const SAVED_OPTIONS: &str = "carapace-shim.json";
const PID_FILE: &str = "init.pid";

#[derive(Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

struct Inner {
    namespace: String,
    id: String,
    exit: ExitSignal,
    state: Mutex<State>,
    changed: Condvar,
    publisher: Mutex<Option<RemotePublisher>>,
    /// Held across "start + TaskStart" so that TaskExit is never published before TaskStart.
    publish_order: Mutex<()>,
}

#[derive(Default)]
struct State {
    /// The containers this shim serves, by id: one, or a pod's (grouped by
    /// `io.kubernetes.cri.sandbox-id`, as runc's shim groups them).
    tasks: HashMap<String, Task>,
    /// Exits reported before the shim knew the pid (or of processes it does not track).
    early_exits: HashMap<i32, i32>,
}

struct Task {
    bundle: PathBuf,
    init: Proc,
    /// `ctr task exec` processes by exec id, each run by `carapace exec --detach`, whose
    /// waiter (the `--pid-file` pid) stands in for the process and exits as it does.
    execs: HashMap<String, Exec>,
    runtime: Runtime,
    rootfs_mounted: bool,
    /// The container's memory cgroup file that counts OOM kills, and the count seen.
    oom: Option<(PathBuf, u64)>,
}

/// A process of the task as containerd sees it: init, or an exec.
#[derive(Clone)]
struct Proc {
    pid: i32,
    status: api::Status,
    exit_status: u32,
    exited_at: Option<Timestamp>,
    stdin: String,
    stdout: String,
    stderr: String,
    /// The master of its terminal (`ctr run -t`), copied to and from the fifos.
    console: Option<Arc<File>>,
}

impl Proc {
    fn new(stdin: &str, stdout: &str, stderr: &str) -> Proc {
        Proc {
            pid: 0,
            status: api::Status::CREATED,
            exit_status: 0,
            exited_at: None,
            stdin: stdin.to_string(),
            stdout: stdout.to_string(),
            stderr: stderr.to_string(),
            console: None,
        }
    }
}

struct Exec {
    proc: Proc,
    /// The OCI `process` (JSON) containerd sent.
    spec: Vec<u8>,
}

impl Task {
    fn proc(&self, exec_id: &str) -> TtrpcResult<&Proc> {
        if exec_id.is_empty() {
            return Ok(&self.init);
        }
        self.execs
            .get(exec_id)
            .map(|e| &e.proc)
            .ok_or_else(|| err(Code::NOT_FOUND, format!("exec {exec_id} not found")))
    }

    fn proc_mut(&mut self, exec_id: &str) -> Option<&mut Proc> {
        if exec_id.is_empty() {
            Some(&mut self.init)
        } else {
            self.execs.get_mut(exec_id).map(|e| &mut e.proc)
        }
    }
}

/// How to run `carapace` for this container.
#[derive(Clone, Serialize, Deserialize)]
struct Runtime {
    binary: PathBuf,
    global: Vec<String>,
    log: PathBuf,
    rootfs: PathBuf,
}

fn err(code: Code, msg: impl ToString) -> ttrpc::Error {
    ttrpc::Error::RpcStatus(ttrpc::get_status(code, msg))
}

fn unsupported(what: &str) -> ttrpc::Error {
    err(
        Code::UNIMPLEMENTED,
        format!("carapace: {what} is not supported yet"),
    )
}

fn not_created(id: &str) -> ttrpc::Error {
    err(Code::NOT_FOUND, format!("container {id} not created"))
}

fn internal(e: anyhow::Error) -> ttrpc::Error {
    err(Code::INTERNAL, format!("{e:#}"))
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(&self, topic: &str, event: Box<dyn MessageDyn>) {
        let guard = self.publisher.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = guard.as_ref() {
            if let Err(e) = p.publish(shim::Context::default(), topic, &self.namespace, event) {
                shim::warn!("cannot publish {topic}: {e}");
            }
        }
    }

    /// Publishes TaskOOM if the container's cgroup counted a new OOM kill.
    fn check_oom(&self, id: &str) {
        let new = {
            let mut st = self.state();
            let Some((file, seen)) = st.tasks.get_mut(id).and_then(|t| t.oom.as_mut()) else {
                return;
            };
            match oom_kills(file) {
                Some(n) if n > *seen => {
                    *seen = n;
                    true
                }
                _ => false,
            }
        };
        if new {
            self.publish(
                topics::TASK_OOM_EVENT_TOPIC,
                Box::new(TaskOOM {
                    container_id: id.to_string(),
                    ..Default::default()
                }),
            );
        }
    }

    /// Records an exit reported by the reaper; publishes TaskExit when it is init's or an
    /// exec's.
    fn on_exit(&self, pid: i32, code: i32) {
        // An OOM kill is reported before the exit it caused, as containerd expects.
        let init_of = self
            .state()
            .tasks
            .iter()
            .find(|(_, t)| t.init.pid == pid)
            .map(|(id, _)| id.clone());
        if let Some(id) = &init_of {
            self.check_oom(id);
        }
        let exit = {
            let mut st = self.state();
            let live = |p: &Proc| p.pid == pid && p.status != api::Status::STOPPED;
            let found = st.tasks.iter_mut().find_map(|(cid, t)| {
                if live(&t.init) {
                    return Some((cid.clone(), cid.clone(), &mut t.init));
                }
                t.execs
                    .iter_mut()
                    .find(|(_, e)| live(&e.proc))
                    .map(|(id, e)| (cid.clone(), id.clone(), &mut e.proc))
            });
            match found {
                Some((cid, id, p)) => {
                    p.status = api::Status::STOPPED;
                    p.exit_status = u32::try_from(code).unwrap_or(255);
                    let now = Timestamp::now();
                    p.exited_at = Some(now.clone());
                    self.changed.notify_all();
                    Some(TaskExit {
                        container_id: cid,
                        id,
                        pid: u32::try_from(pid).unwrap_or(0),
                        exit_status: p.exit_status,
                        exited_at: MessageField::some(now),
                        ..Default::default()
                    })
                }
                None => {
                    // Keep only a bounded record of exits nobody asked for yet.
                    if st.early_exits.len() > 1024 {
                        st.early_exits.clear();
                    }
                    st.early_exits.insert(pid, code);
                    None
                }
            }
        };
        if let Some(ev) = exit {
            let _order = self.publish_order.lock().unwrap_or_else(|e| e.into_inner());
            self.publish(topics::TASK_EXIT_EVENT_TOPIC, Box::new(ev));
        }
    }
}

impl Runtime {
    fn load(bundle: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read(bundle.join(SAVED_OPTIONS))?;
        Ok(serde_json::from_slice(&text)?)
    }

    /// Runs `carapace GLOBAL ARGS…` and waits for it through the reaper's monitor (the
    /// reaper takes every child's status, so `Child::wait` cannot be used). Without `stdio`
    /// its output is captured; errors carry what it printed or logged.
    fn run(&self, args: &[&str], stdio: Option<[Stdio; 3]>) -> anyhow::Result<String> {
        let mut cmd = Command::new(&self.binary);
        cmd.args(&self.global).args(args);
        let capture = stdio.is_none();
        match stdio {
            Some([i, o, e]) => cmd.stdin(i).stdout(o).stderr(e),
            None => cmd
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        };
        let sub = monitor_subscribe(Topic::Pid)
            .map_err(|e| anyhow::anyhow!("cannot watch for exits: {e}"))?;
        let mut child = cmd
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot run {}: {e}", self.binary.display()))?;
        let pid = i32::try_from(child.id()).unwrap_or(-1);
        let (mut out, mut errout) = (String::new(), String::new());
        if capture {
            let stderr = child.stderr.take();
            let reader = std::thread::spawn(move || {
                let mut s = String::new();
                if let Some(mut e) = stderr {
                    let _ = e.read_to_string(&mut s);
                }
                s
            });
            if let Some(mut o) = child.stdout.take() {
                let _ = o.read_to_string(&mut out);
            }
            errout = reader.join().unwrap_or_default();
        }
        let code = wait_pid(pid, sub);
        if code == 0 {
            return Ok(out);
        }
        let mut msg = errout.trim().to_string();
        if msg.is_empty() {
            msg = self.last_logged_error().unwrap_or_default();
        }
        if msg.is_empty() {
            msg = format!("exit status {code}");
        }
        anyhow::bail!("carapace {}: {msg}", args.first().copied().unwrap_or(""))
    }

    /// The last `"level":"error"` message of the json log, as runc's shim reports runc's.
    fn last_logged_error(&self) -> Option<String> {
        let text = std::fs::read_to_string(&self.log).ok()?;
        text.lines().rev().find_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            if v.get("level")?.as_str()? != "error" {
                return None;
            }
            Some(v.get("msg")?.as_str()?.to_string())
        })
    }

    fn unmount_rootfs(&self) {
        if let Err(e) = shim::mount::umount_recursive(self.rootfs.to_str(), libc::MNT_DETACH) {
            shim::warn!("cannot unmount {}: {e}", self.rootfs.display());
        }
    }
}

/// Opens one of containerd's fifos. The writer side waits (up to a minute) for the reader,
/// which containerd opens in the background; blocking mode is restored afterwards.
fn open_fifo(path: &str, write: bool) -> anyhow::Result<Stdio> {
    Ok(open_fifo_file(path, write)?.map_or_else(Stdio::null, Stdio::from))
}

/// [`open_fifo`] as a file; `None` for a stream containerd did not ask for.
fn open_fifo_file(path: &str, write: bool) -> anyhow::Result<Option<File>> {
    if path.is_empty() {
        return Ok(None);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let file: File = loop {
        let r = OpenOptions::new()
            .read(!write)
            .write(write)
            .custom_flags(libc::O_NONBLOCK)
            .open(path);
        match r {
            Ok(f) => break f,
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => anyhow::bail!("cannot open {path}: {e}"),
        }
    };
    let flags = nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_GETFL)
        .map_err(|e| anyhow::anyhow!("fcntl {path}: {e}"))?;
    let flags = nix::fcntl::OFlag::from_bits_truncate(flags) & !nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_SETFL(flags))
        .map_err(|e| anyhow::anyhow!("fcntl {path}: {e}"))?;
    Ok(Some(file))
}

/// Run `carapace ARGS…` for a process with a terminal: `--console-socket` is inserted
/// after `args[0]`; the master it sends is copied to and from the process's fifos.
fn run_with_console(
    rt: &Runtime,
    args: &[&str],
    stdin: &str,
    stdout: &str,
) -> anyhow::Result<Arc<File>> {
    let sock = crate::console::ConsoleSocket::new()?;
    let path = sock.path();
    let mut full: Vec<&str> = Vec::with_capacity(args.len() + 2);
    full.extend(args.first());
    full.extend(["--console-socket", path.as_str()]);
    full.extend(args.iter().skip(1));
    let input = open_fifo_file(stdin, false)?;
    let output = open_fifo_file(stdout, true)?;
    rt.run(&full, Some([Stdio::null(), Stdio::null(), Stdio::null()]))?;
    let master = Arc::new(File::from(sock.receive()?));
    crate::console::copy(&master, input, output);
    Ok(master)
}

/// The file counting the container's OOM kills: its cgroup is the spec's
/// `linux.cgroupsPath` (else `/carapace/ID`), as `carapace create` makes it.
fn oom_file(bundle: &Path, id: &str) -> Option<PathBuf> {
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).ok()?).ok()?;
    let rel = spec["linux"]["cgroupsPath"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("/carapace/{id}"));
    let rel = rel.trim_start_matches('/');
    if rel.split('/').any(|c| c == "..") {
        return None;
    }
    let v1 = Path::new("/sys/fs/cgroup/memory")
        .join(rel)
        .join("memory.oom_control");
    if v1.exists() {
        return Some(v1);
    }
    let v2 = Path::new("/sys/fs/cgroup").join(rel).join("memory.events");
    v2.exists().then_some(v2)
}

/// The `oom_kill` count of `memory.oom_control` (v1) or `memory.events` (v2).
fn oom_kills(file: &Path) -> Option<u64> {
    std::fs::read_to_string(file)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok())
}

fn default_root(namespace: &str) -> PathBuf {
    Path::new("/run/containerd/carapace").join(namespace)
}

impl shim::Shim for Service {
    type T = Service;

    fn new(_runtime_id: &str, args: &Flags, _config: &mut Config) -> Self {
        Service {
            inner: Arc::new(Inner {
                namespace: args.namespace.clone(),
                id: args.id.clone(),
                exit: ExitSignal::default(),
                state: Mutex::new(State::default()),
                changed: Condvar::new(),
                publisher: Mutex::new(None),
                publish_order: Mutex::new(()),
            }),
        }
    }

    /// One shim per pod, as runc's shim: containers whose spec names a CRI sandbox share
    /// its shim (a second `start` finds the socket in use and answers its address).
    fn start_shim(&mut self, opts: StartOpts) -> shim::Result<String> {
        // containerd runs `start` in the container's bundle.
        let grouping = std::fs::read("config.json")
            .ok()
            .and_then(|t| serde_json::from_slice::<serde_json::Value>(&t).ok())
            .and_then(|spec| {
                spec["annotations"]["io.kubernetes.cri.sandbox-id"]
                    .as_str()
                    .map(str::to_string)
            })
            .filter(|g| !g.is_empty())
            .unwrap_or_else(|| opts.id.clone());
        let (_pid, address) = shim::spawn(opts, &grouping, Vec::new())?;
        shim::synchronous::util::write_address(&address)?;
        // Answer containerd and exit here rather than return: on return the crate drops
        // its signal iterator, closing the read end of signal-hook's wake-up pipe before
        // the handlers are unregistered. A SIGCHLD in that window makes the handler's
        // `send` fail with EPIPE and raise SIGPIPE, whose own handler sends again: the
        // process spins forever and containerd's create hangs (seen under load in the
        // CRI tests, caught with gdb).
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        if out
            .write_all(address.as_bytes())
            .and_then(|()| out.flush())
            .is_ok()
        {
            std::process::exit(0);
        }
        Ok(address)
    }

    /// containerd's clean-up after a shim that died: remove the container and its mounts.
    fn delete_shim(&mut self) -> shim::Result<DeleteResponse> {
        let bundle = std::env::current_dir().unwrap_or_default();
        match Runtime::load(&bundle) {
            Ok(rt) => {
                if let Err(e) = rt.run(&["delete", "--force", &self.inner.id], None) {
                    shim::warn!("{e:#}");
                }
                rt.unmount_rootfs();
            }
            Err(e) => shim::warn!("no {SAVED_OPTIONS} in {}: {e}", bundle.display()),
        }
        Ok(DeleteResponse {
            exit_status: 128 + 9,
            exited_at: MessageField::some(Timestamp::now()),
            ..Default::default()
        })
    }

    fn wait(&mut self) {
        self.inner.exit.wait();
    }

    fn create_task_service(&self, publisher: RemotePublisher) -> Self::T {
        *self
            .inner
            .publisher
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(publisher);
        match monitor_subscribe(Topic::Pid) {
            Ok(sub) => {
                let inner = Arc::clone(&self.inner);
                std::thread::spawn(move || {
                    while let Ok(ev) = sub.rx.recv() {
                        if let Subject::Pid(pid) = ev.subject {
                            inner.on_exit(pid, ev.exit_code);
                        }
                    }
                });
            }
            Err(e) => shim::error!("cannot watch for exits: {e}"),
        }
        self.clone()
    }
}

impl Service {
    /// The init process went from `from` to `to` (pause/resume); any other state (it
    /// exited meanwhile) is left as it is.
    fn set_init_status(&self, id: &str, from: api::Status, to: api::Status) {
        let mut st = self.inner.state();
        if let Some(t) = st.tasks.get_mut(id) {
            if t.init.status == from {
                t.init.status = to;
            }
        }
    }

    /// The container a request names (the shim's own when it names none).
    fn cid(&self, id: &str) -> String {
        if id.is_empty() {
            self.inner.id.clone()
        } else {
            id.to_string()
        }
    }

    /// The runtime and a copy of the process (init for an empty exec id).
    fn process(&self, id: &str, exec_id: &str) -> TtrpcResult<(Runtime, Proc)> {
        let st = self.inner.state();
        let t = st.tasks.get(id).ok_or_else(|| not_created(id))?;
        Ok((t.runtime.clone(), t.proc(exec_id)?.clone()))
    }

    fn status_of(&self, id: &str, exec_id: &str) -> Option<api::Status> {
        self.process(id, exec_id).ok().map(|(_, p)| p.status)
    }

    /// Polls the container's OOM-kill count while it lives (cgroup v1 has no event for it
    /// that does not need an eventfd per container; a poll is enough for an event).
    fn watch_oom(&self, id: &str) {
        let inner = Arc::clone(&self.inner);
        let id = id.to_string();
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(500));
            let live = inner
                .state()
                .tasks
                .get(&id)
                .is_some_and(|t| t.oom.is_some() && t.init.status != api::Status::STOPPED);
            if !live {
                return;
            }
            inner.check_oom(&id);
        });
    }

    /// `carapace exec --process F --detach --pid-file P ID`, as runc's shim runs `runc exec`.
    fn start_exec(&self, id: &str, exec_id: &str) -> TtrpcResult<i32> {
        let (rt, bundle, spec, p) = {
            let st = self.inner.state();
            let t = st.tasks.get(id).ok_or_else(|| not_created(id))?;
            let e = t
                .execs
                .get(exec_id)
                .ok_or_else(|| err(Code::NOT_FOUND, format!("exec {exec_id} not found")))?;
            if e.proc.status != api::Status::CREATED {
                return Err(err(
                    Code::FAILED_PRECONDITION,
                    format!("exec {exec_id} was already started"),
                ));
            }
            (
                t.runtime.clone(),
                t.bundle.clone(),
                e.spec.clone(),
                e.proc.clone(),
            )
        };
        let terminal = serde_json::from_slice::<serde_json::Value>(&spec)
            .ok()
            .and_then(|v| v["terminal"].as_bool())
            .unwrap_or(false);
        let run = || -> anyhow::Result<(i32, Option<Arc<File>>)> {
            let spec_file = bundle.join(format!("exec-{exec_id}.json"));
            let pid_file = bundle.join(format!("exec-{exec_id}.pid"));
            std::fs::write(&spec_file, &spec)?;
            let spec_s = spec_file.display().to_string();
            let pid_s = pid_file.display().to_string();
            let args = [
                "exec",
                "--process",
                &spec_s,
                "--detach",
                "--pid-file",
                &pid_s,
                id,
            ];
            let r = if terminal {
                run_with_console(&rt, &args, &p.stdin, &p.stdout).map(Some)
            } else {
                let stdio = [
                    open_fifo(&p.stdin, false)?,
                    open_fifo(&p.stdout, true)?,
                    open_fifo(&p.stderr, true)?,
                ];
                rt.run(&args, Some(stdio)).map(|_| None)
            };
            let _ = std::fs::remove_file(&spec_file);
            let console = r?;
            let pid = std::fs::read_to_string(&pid_file)?;
            let _ = std::fs::remove_file(&pid_file);
            let pid = pid
                .trim()
                .parse::<i32>()
                .map_err(|e| anyhow::anyhow!("bad pid in {pid_s}: {e}"))?;
            Ok((pid, console))
        };
        let (pid, console) = run().map_err(internal)?;
        let mut st = self.inner.state();
        if let Some(p) = st.tasks.get_mut(id).and_then(|t| t.proc_mut(exec_id)) {
            p.pid = pid;
            p.status = api::Status::RUNNING;
            p.console = console;
        }
        Ok(pid)
    }

    fn do_create(
        &self,
        req: &api::CreateTaskRequest,
    ) -> anyhow::Result<(Runtime, i32, Option<Arc<File>>)> {
        let bundle = PathBuf::from(&req.bundle);
        let opts = match req.options.as_ref() {
            Some(any) => ShimOptions::from_any(&any.type_url, &any.value)?,
            None => ShimOptions::default(),
        };
        let root = opts
            .root
            .as_ref()
            .map(PathBuf::from)
            .unwrap_or_else(|| default_root(&self.inner.namespace));
        let log = opts
            .log
            .as_ref()
            .map(PathBuf::from)
            .unwrap_or_else(|| bundle.join("log.json"));
        let rt = Runtime {
            binary: opts.binary(),
            global: opts.global_args(&root, &log),
            log,
            rootfs: bundle.join("rootfs"),
        };
        std::fs::write(bundle.join(SAVED_OPTIONS), serde_json::to_vec(&rt)?)?;

        for m in &req.rootfs {
            std::fs::create_dir_all(&rt.rootfs)?;
            if let Err(e) = shim::mount::mount_rootfs(
                Some(m.type_.as_str()),
                Some(m.source.as_str()),
                &m.options,
                &rt.rootfs,
            ) {
                rt.unmount_rootfs();
                anyhow::bail!("cannot mount the rootfs ({} {}): {e}", m.type_, m.source);
            }
        }
        let result = (|| {
            let pid_file = bundle.join(PID_FILE);
            let bundle_s = bundle.display().to_string();
            let pid_s = pid_file.display().to_string();
            let args = [
                "create",
                "--bundle",
                &bundle_s,
                "--pid-file",
                &pid_s,
                &req.id,
            ];
            let console = if req.terminal {
                Some(run_with_console(&rt, &args, &req.stdin, &req.stdout)?)
            } else {
                let stdio = [
                    open_fifo(&req.stdin, false)?,
                    open_fifo(&req.stdout, true)?,
                    open_fifo(&req.stderr, true)?,
                ];
                rt.run(&args, Some(stdio))?;
                None
            };
            let pid = std::fs::read_to_string(&pid_file)?;
            let pid = pid
                .trim()
                .parse::<i32>()
                .map_err(|e| anyhow::anyhow!("bad pid in {pid_s}: {e}"))?;
            Ok((pid, console))
        })();
        match result {
            Ok((pid, console)) => Ok((rt, pid, console)),
            Err(e) => {
                if !req.rootfs.is_empty() {
                    rt.unmount_rootfs();
                }
                Err(e)
            }
        }
    }
}

impl shim::Task for Service {
    fn create(
        &self,
        _ctx: &TtrpcContext,
        req: api::CreateTaskRequest,
    ) -> TtrpcResult<api::CreateTaskResponse> {
        if !req.checkpoint.is_empty() || !req.parent_checkpoint.is_empty() {
            return Err(unsupported("restoring from a checkpoint"));
        }
        if self.inner.state().tasks.contains_key(&req.id) {
            return Err(err(
                Code::ALREADY_EXISTS,
                format!("container {} exists", req.id),
            ));
        }
        let (rt, pid, console) = self.do_create(&req).map_err(internal)?;
        {
            let mut init = Proc::new(&req.stdin, &req.stdout, &req.stderr);
            init.pid = pid;
            init.console = console;
            let mut st = self.inner.state();
            st.tasks.insert(
                req.id.clone(),
                Task {
                    bundle: PathBuf::from(&req.bundle),
                    init,
                    execs: HashMap::new(),
                    runtime: rt,
                    rootfs_mounted: !req.rootfs.is_empty(),
                    oom: oom_file(Path::new(&req.bundle), &req.id)
                        .map(|f| (f.clone(), oom_kills(&f).unwrap_or(0))),
                },
            );
        }
        self.watch_oom(&req.id);
        // An exit the reaper saw before the pid was known.
        let early = self.inner.state().early_exits.remove(&pid);
        if let Some(code) = early {
            self.inner.on_exit(pid, code);
        }
        self.inner.publish(
            topics::TASK_CREATE_EVENT_TOPIC,
            Box::new(TaskCreate {
                container_id: req.id.clone(),
                bundle: req.bundle.clone(),
                rootfs: req.rootfs.clone(),
                io: MessageField::some(TaskIO {
                    stdin: req.stdin.clone(),
                    stdout: req.stdout.clone(),
                    stderr: req.stderr.clone(),
                    terminal: req.terminal,
                    ..Default::default()
                }),
                pid: u32::try_from(pid).unwrap_or(0),
                ..Default::default()
            }),
        );
        Ok(api::CreateTaskResponse {
            pid: u32::try_from(pid).unwrap_or(0),
            ..Default::default()
        })
    }

    fn start(
        &self,
        _ctx: &TtrpcContext,
        req: api::StartRequest,
    ) -> TtrpcResult<api::StartResponse> {
        let id = self.cid(&req.id);
        let (rt, init) = self.process(&id, "")?;
        // TaskStart/TaskExecStarted go out before the process's TaskExit.
        let _order = self
            .inner
            .publish_order
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let pid = if req.exec_id.is_empty() {
            rt.run(&["start", &id], None).map_err(internal)?;
            let mut st = self.inner.state();
            if let Some(t) = st.tasks.get_mut(&id) {
                if t.init.status == api::Status::CREATED {
                    t.init.status = api::Status::RUNNING;
                }
            }
            drop(st);
            self.inner.publish(
                topics::TASK_START_EVENT_TOPIC,
                Box::new(TaskStart {
                    container_id: id.clone(),
                    pid: u32::try_from(init.pid).unwrap_or(0),
                    ..Default::default()
                }),
            );
            init.pid
        } else {
            let pid = self.start_exec(&id, &req.exec_id)?;
            let early = self.inner.state().early_exits.remove(&pid);
            self.inner.publish(
                topics::TASK_EXEC_STARTED_EVENT_TOPIC,
                Box::new(TaskExecStarted {
                    container_id: id.clone(),
                    exec_id: req.exec_id.clone(),
                    pid: u32::try_from(pid).unwrap_or(0),
                    ..Default::default()
                }),
            );
            if let Some(code) = early {
                drop(_order);
                self.inner.on_exit(pid, code);
            }
            pid
        };
        Ok(api::StartResponse {
            pid: u32::try_from(pid).unwrap_or(0),
            ..Default::default()
        })
    }

    fn state(
        &self,
        _ctx: &TtrpcContext,
        req: api::StateRequest,
    ) -> TtrpcResult<api::StateResponse> {
        let id = self.cid(&req.id);
        let st = self.inner.state();
        let t = st.tasks.get(&id).ok_or_else(|| not_created(&id))?;
        let p = t.proc(&req.exec_id)?;
        Ok(api::StateResponse {
            id: if req.exec_id.is_empty() {
                id.clone()
            } else {
                req.exec_id.clone()
            },
            bundle: t.bundle.display().to_string(),
            pid: u32::try_from(p.pid).unwrap_or(0),
            status: EnumOrUnknown::new(p.status),
            stdin: p.stdin.clone(),
            stdout: p.stdout.clone(),
            stderr: p.stderr.clone(),
            terminal: p.console.is_some(),
            exit_status: p.exit_status,
            exited_at: p.exited_at.clone().into(),
            exec_id: req.exec_id.clone(),
            ..Default::default()
        })
    }

    fn wait(&self, _ctx: &TtrpcContext, req: api::WaitRequest) -> TtrpcResult<api::WaitResponse> {
        let id = self.cid(&req.id);
        let mut st = self.inner.state();
        loop {
            let t = st.tasks.get(&id).ok_or_else(|| not_created(&id))?;
            let p = t.proc(&req.exec_id)?;
            if p.status == api::Status::STOPPED {
                return Ok(api::WaitResponse {
                    exit_status: p.exit_status,
                    exited_at: p.exited_at.clone().into(),
                    ..Default::default()
                });
            }
            st = self
                .inner
                .changed
                .wait(st)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    fn kill(&self, _ctx: &TtrpcContext, req: api::KillRequest) -> TtrpcResult<api::Empty> {
        let id = self.cid(&req.id);
        let (rt, p) = self.process(&id, &req.exec_id)?;
        if p.status == api::Status::STOPPED {
            return Err(err(Code::NOT_FOUND, "process already finished"));
        }
        if !req.exec_id.is_empty() {
            // The exec's waiter forwards signals to the exec'd process, as runc's shim
            // signals an exec'd process by its pid.
            if p.status == api::Status::CREATED {
                return Err(err(Code::NOT_FOUND, "process not started"));
            }
            let sig = i32::try_from(req.signal)
                .ok()
                .and_then(|s| nix::sys::signal::Signal::try_from(s).ok())
                .ok_or_else(|| err(Code::INVALID_ARGUMENT, format!("bad signal {}", req.signal)))?;
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(p.pid), sig).map_err(|e| {
                if e == nix::errno::Errno::ESRCH {
                    err(Code::NOT_FOUND, "process already finished")
                } else {
                    internal(e.into())
                }
            })?;
            return Ok(api::Empty::default());
        }
        let sig = req.signal.to_string();
        let mut args = vec!["kill"];
        if req.all {
            args.push("--all");
        }
        args.push(&id);
        args.push(&sig);
        rt.run(&args, None).map_err(|e| {
            // It may have exited between the check and the kill.
            if self.status_of(&id, "") == Some(api::Status::STOPPED) {
                err(Code::NOT_FOUND, "process already finished")
            } else {
                internal(e)
            }
        })?;
        Ok(api::Empty::default())
    }

    fn pids(&self, _ctx: &TtrpcContext, req: api::PidsRequest) -> TtrpcResult<api::PidsResponse> {
        let id = self.cid(&req.id);
        let (rt, _) = self.process(&id, "")?;
        let out = rt
            .run(&["ps", "--format", "json", &id], None)
            .map_err(internal)?;
        let pids: Vec<u32> = serde_json::from_str(out.trim())
            .map_err(|e| internal(anyhow::anyhow!("carapace ps printed {out:?}: {e}")))?;
        Ok(api::PidsResponse {
            processes: pids
                .into_iter()
                .map(|pid| shim::protos::types::task::ProcessInfo {
                    pid,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
    }

    fn delete(
        &self,
        _ctx: &TtrpcContext,
        req: api::DeleteRequest,
    ) -> TtrpcResult<api::DeleteResponse> {
        let id = self.cid(&req.id);
        if !req.exec_id.is_empty() {
            let mut st = self.inner.state();
            let t = st.tasks.get_mut(&id).ok_or_else(|| not_created(&id))?;
            let p = t.proc(&req.exec_id)?.clone();
            if p.status == api::Status::RUNNING {
                return Err(err(
                    Code::FAILED_PRECONDITION,
                    format!("cannot delete running exec {}", req.exec_id),
                ));
            }
            t.execs.remove(&req.exec_id);
            drop(st);
            let exited_at = p.exited_at.unwrap_or_else(Timestamp::now);
            self.inner.publish(
                topics::TASK_DELETE_EVENT_TOPIC,
                Box::new(TaskDelete {
                    container_id: id.clone(),
                    id: req.exec_id.clone(),
                    pid: u32::try_from(p.pid).unwrap_or(0),
                    exit_status: p.exit_status,
                    exited_at: MessageField::some(exited_at.clone()),
                    ..Default::default()
                }),
            );
            return Ok(api::DeleteResponse {
                pid: u32::try_from(p.pid).unwrap_or(0),
                exit_status: p.exit_status,
                exited_at: MessageField::some(exited_at),
                ..Default::default()
            });
        }
        let (rt, init) = self.process(&id, "")?;
        if init.status == api::Status::RUNNING {
            return Err(err(
                Code::FAILED_PRECONDITION,
                format!("cannot delete running task {}", self.inner.id),
            ));
        }
        rt.run(&["delete", "--force", &id], None)
            .map_err(internal)?;
        // A created container's boot is killed by delete: give the reaper a moment to report.
        let mut st = self.inner.state();
        let deadline = Instant::now() + Duration::from_secs(10);
        while st
            .tasks
            .get(&id)
            .is_some_and(|t| t.init.status != api::Status::STOPPED)
        {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            st = self
                .inner
                .changed
                .wait_timeout(st, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        let t = st.tasks.remove(&id).ok_or_else(|| not_created(&id))?;
        drop(st);
        if t.rootfs_mounted {
            rt.unmount_rootfs();
        }
        let _ = std::fs::remove_file(t.bundle.join(PID_FILE));
        let exited_at = t.init.exited_at.unwrap_or_else(Timestamp::now);
        self.inner.publish(
            topics::TASK_DELETE_EVENT_TOPIC,
            Box::new(TaskDelete {
                container_id: id.clone(),
                id: id.clone(),
                pid: u32::try_from(t.init.pid).unwrap_or(0),
                exit_status: t.init.exit_status,
                exited_at: MessageField::some(exited_at.clone()),
                ..Default::default()
            }),
        );
        self.inner.changed.notify_all();
        Ok(api::DeleteResponse {
            pid: u32::try_from(t.init.pid).unwrap_or(0),
            exit_status: t.init.exit_status,
            exited_at: MessageField::some(exited_at),
            ..Default::default()
        })
    }

    fn stats(
        &self,
        _ctx: &TtrpcContext,
        req: api::StatsRequest,
    ) -> TtrpcResult<api::StatsResponse> {
        let id = self.cid(&req.id);
        let (rt, _) = self.process(&id, "")?;
        let out = rt
            .run(&["events", "--stats", &id], None)
            .map_err(internal)?;
        let v: serde_json::Value = serde_json::from_str(out.trim())
            .map_err(|e| internal(anyhow::anyhow!("carapace events printed {out:?}: {e}")))?;
        let metrics = metrics_of(&v["data"]);
        Ok(api::StatsResponse {
            stats: MessageField::some(Any {
                type_url: "io.containerd.cgroups.v1.Metrics".to_string(),
                value: metrics.write_to_bytes().map_err(|e| internal(e.into()))?,
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    fn connect(
        &self,
        _ctx: &TtrpcContext,
        req: api::ConnectRequest,
    ) -> TtrpcResult<api::ConnectResponse> {
        let id = self.cid(&req.id);
        let pid = self.inner.state().tasks.get(&id).map_or(0, |t| t.init.pid);
        Ok(api::ConnectResponse {
            shim_pid: std::process::id(),
            task_pid: u32::try_from(pid).unwrap_or(0),
            version: env!("CARGO_PKG_VERSION").to_string(),
            ..Default::default()
        })
    }

    fn shutdown(&self, _ctx: &TtrpcContext, _req: api::ShutdownRequest) -> TtrpcResult<api::Empty> {
        // Like runc's shim: stay while a container is still there.
        if self.inner.state().tasks.is_empty() {
            self.inner.exit.signal();
        }
        Ok(api::Empty::default())
    }

    /// The shim holds no copy of stdin (the sandbox has the fifo), so closing it is
    /// containerd's side closing its writer: nothing to do here.
    fn close_io(&self, _ctx: &TtrpcContext, req: api::CloseIORequest) -> TtrpcResult<api::Empty> {
        let id = self.cid(&req.id);
        self.process(&id, &req.exec_id)?;
        Ok(api::Empty::default())
    }

    /// Registers an exec; `start` with its id runs it (as runc's shim does).
    fn exec(&self, _ctx: &TtrpcContext, req: api::ExecProcessRequest) -> TtrpcResult<api::Empty> {
        let id = self.cid(&req.id);
        if !valid_exec_id(&req.exec_id) {
            return Err(err(
                Code::INVALID_ARGUMENT,
                format!("exec id {:?}: letters, digits and ._- only", req.exec_id),
            ));
        }
        let spec = req
            .spec
            .as_ref()
            .map(|a| a.value.clone())
            .ok_or_else(|| err(Code::INVALID_ARGUMENT, "exec without a process spec"))?;
        {
            let mut st = self.inner.state();
            let t = st.tasks.get_mut(&id).ok_or_else(|| not_created(&id))?;
            if t.init.status != api::Status::RUNNING {
                return Err(err(
                    Code::FAILED_PRECONDITION,
                    "cannot exec in a container that is not running",
                ));
            }
            if t.execs.contains_key(&req.exec_id) {
                return Err(err(
                    Code::ALREADY_EXISTS,
                    format!("exec {} exists", req.exec_id),
                ));
            }
            t.execs.insert(
                req.exec_id.clone(),
                Exec {
                    proc: Proc::new(&req.stdin, &req.stdout, &req.stderr),
                    spec,
                },
            );
        }
        self.inner.publish(
            topics::TASK_EXEC_ADDED_EVENT_TOPIC,
            Box::new(TaskExecAdded {
                container_id: id.clone(),
                exec_id: req.exec_id.clone(),
                ..Default::default()
            }),
        );
        Ok(api::Empty::default())
    }

    fn resize_pty(
        &self,
        _ctx: &TtrpcContext,
        req: api::ResizePtyRequest,
    ) -> TtrpcResult<api::Empty> {
        let id = self.cid(&req.id);
        let (_, p) = self.process(&id, &req.exec_id)?;
        let Some(master) = p.console else {
            return Err(err(
                Code::FAILED_PRECONDITION,
                "the process has no terminal",
            ));
        };
        crate::console::resize(&master, req.width, req.height).map_err(internal)?;
        Ok(api::Empty::default())
    }

    fn pause(&self, _ctx: &TtrpcContext, req: api::PauseRequest) -> TtrpcResult<api::Empty> {
        let id = self.cid(&req.id);
        let (rt, _) = self.process(&id, "")?;
        rt.run(&["pause", &id], None).map_err(internal)?;
        self.set_init_status(&id, api::Status::RUNNING, api::Status::PAUSED);
        self.inner.publish(
            topics::TASK_PAUSED_EVENT_TOPIC,
            Box::new(TaskPaused {
                container_id: id.clone(),
                ..Default::default()
            }),
        );
        Ok(api::Empty::default())
    }

    fn resume(&self, _ctx: &TtrpcContext, req: api::ResumeRequest) -> TtrpcResult<api::Empty> {
        let id = self.cid(&req.id);
        let (rt, _) = self.process(&id, "")?;
        rt.run(&["resume", &id], None).map_err(internal)?;
        self.set_init_status(&id, api::Status::PAUSED, api::Status::RUNNING);
        self.inner.publish(
            topics::TASK_RESUMED_EVENT_TOPIC,
            Box::new(TaskResumed {
                container_id: id.clone(),
                ..Default::default()
            }),
        );
        Ok(api::Empty::default())
    }

    /// `carapace update --resources F ID`: the resources come as the OCI
    /// `LinuxResources` in JSON (containerd's typeurl encoding of the spec's type).
    fn update(&self, _ctx: &TtrpcContext, req: api::UpdateTaskRequest) -> TtrpcResult<api::Empty> {
        let id = self.cid(&req.id);
        let (rt, init) = self.process(&id, "")?;
        if init.status == api::Status::STOPPED {
            return Err(err(Code::NOT_FOUND, "process already finished"));
        }
        let Some(resources) = req.resources.as_ref() else {
            return Ok(api::Empty::default());
        };
        let bundle = self
            .inner
            .state()
            .tasks
            .get(&id)
            .map(|t| t.bundle.clone())
            .ok_or_else(|| not_created(&id))?;
        let file = bundle.join("update-resources.json");
        std::fs::write(&file, &resources.value).map_err(|e| internal(e.into()))?;
        let f = file.display().to_string();
        let r = rt.run(&["update", "--resources", &f, &id], None);
        let _ = std::fs::remove_file(&file);
        r.map_err(internal)?;
        Ok(api::Empty::default())
    }

    fn checkpoint(
        &self,
        _ctx: &TtrpcContext,
        _req: api::CheckpointTaskRequest,
    ) -> TtrpcResult<api::Empty> {
        Err(unsupported("checkpoint"))
    }
}

/// containerd's identifier rule (letters and digits, separated by single `.`, `_`, `-`),
/// which also keeps the exec's files inside the bundle.
fn valid_exec_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 76
        && id
            .split(['.', '_', '-'])
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// runc's stats record (what `carapace events --stats` prints) as cgroups v1 metrics.
fn metrics_of(data: &serde_json::Value) -> Metrics {
    let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    let mem = &data["memory"]["usage"];
    Metrics {
        cpu: MessageField::some(CPUStat {
            usage: MessageField::some(CPUUsage {
                total: n(&data["cpu"]["usage"]["total"]),
                ..Default::default()
            }),
            ..Default::default()
        }),
        memory: MessageField::some(MemoryStat {
            usage: MessageField::some(MemoryEntry {
                usage: n(&mem["usage"]),
                limit: n(&mem["limit"]),
                max: n(&mem["max"]),
                ..Default::default()
            }),
            ..Default::default()
        }),
        pids: MessageField::some(PidsStat {
            current: n(&data["pids"]["current"]),
            limit: n(&data["pids"]["limit"]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_ids_stay_inside_the_bundle() {
        for ok in ["e1", "exec-3", "a.b_c-d"] {
            assert!(valid_exec_id(ok), "{ok}");
        }
        for bad in [
            "",
            "../x",
            "a/b",
            ".",
            "..",
            "a..b",
            "-a",
            "x ",
            &"a".repeat(77),
        ] {
            assert!(!valid_exec_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn metrics_from_runc_stats() {
        let v = serde_json::json!({"cpu": {"usage": {"total": 5}},
            "memory": {"usage": {"usage": 10, "limit": 20, "max": 15}},
            "pids": {"current": 2, "limit": 0}});
        let m = metrics_of(&v);
        assert_eq!(m.cpu.usage.total, 5);
        assert_eq!(m.memory.usage.limit, 20);
        assert_eq!(m.pids.current, 2);
        // Missing fields are zero, not a panic.
        assert_eq!(metrics_of(&serde_json::json!(null)).memory.usage.usage, 0);
    }
}
