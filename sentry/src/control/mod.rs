//! The control socket: how `carapace start/kill/state/ps/wait` reach a running sandbox.
//!
//! The sentry (`carapace boot`) listens on `<root>/<id>/control.sock`, a unix stream
//! socket. Each connection carries one [`Request`] as a line of JSON and gets one
//! [`Response`] line back (`Wait` answers only when the container's init has exited).
//! `Exec` is the exception: its descriptors come with the request line (`SCM_RIGHTS`),
//! and it is answered twice on the same connection, `Started` when the new process runs
//! and `Exited` when it is gone.
#![deny(unsafe_code)]

mod server;
mod subcontainer;

pub use server::{ControlServer, StartDecision};

use serde::{Deserialize, Serialize};

/// What a client asks of the sandbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Run the container's process (the sandbox is `created`).
    Start,
    /// Send `signo` to init, or to every process of the sandbox with `all`.
    Signal { signo: i32, all: bool },
    /// Send `signo` to the process `pid` (a sandbox pid), e.g. one started by `Exec`.
    SignalProcess { pid: i32, signo: i32 },
    /// The container's status.
    State,
    /// The sandbox's processes.
    Ps,
    /// Block until init exits.
    Wait,
    /// Start a new process in the running container (`carapace exec`).
    Exec(ExecRequest),
    /// `carapace update`: the limits its cgroupfs shows; the fields set replace those
    /// shown, the others stay.
    UpdateCgroup(crate::fs::cgroup::Limits),
    /// Add a pod's app container to this sandbox (`carapace create` of a container whose
    /// annotations name this sandbox): answered `Started` with its init's pid, loaded and
    /// held until `start` arrives on the new container's own control socket.
    AddContainer(AddContainerRequest),
    /// On a sub-container's control socket: kill its processes, drop its mount tree and
    /// stop serving it (`carapace delete`).
    Remove,
}

/// A sub-container for `AddContainer`. Its descriptors come with the request, in order:
/// the listening control socket the new container is served on, the sentry's end of its
/// gofer socket, then its stdin, stdout and stderr (or, with `terminal`, one host
/// terminal its console pty is bridged to).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddContainerRequest {
    /// The container's id, for messages.
    pub id: String,
    pub args: Vec<Vec<u8>>,
    pub env: Vec<Vec<u8>>,
    pub cwd: Vec<u8>,
    pub uid: u32,
    pub gid: u32,
    #[serde(default)]
    pub additional_gids: Vec<u32>,
    pub umask: u32,
    #[serde(default)]
    pub terminal: bool,
    /// Writes to the root go to an in-memory overlay (else through the gofer).
    pub overlay_memory: bool,
    pub gofer_writable: bool,
    pub read_only_root: bool,
    pub mounts: Vec<MountSpec>,
    /// Capabilities, no_new_privs, rlimits and seccomp of its init (`process`).
    #[serde(default)]
    pub security: Box<crate::security::ProcessSecurity>,
}

/// One of the spec's `mounts` (`fs::SpecMount` on the wire).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    pub destination: Vec<u8>,
    /// tmpfs, proc, sysfs, devpts, mqueue, cgroup or bind.
    pub fs: String,
    #[serde(default)]
    pub mode: u32,
    /// For bind: the entry of the gofer's staged root.
    #[serde(default)]
    pub name: Vec<u8>,
    #[serde(default)]
    pub file: bool,
    pub read_only: bool,
    #[serde(default)]
    pub nosuid: bool,
    #[serde(default)]
    pub nodev: bool,
    #[serde(default)]
    pub noexec: bool,
}

impl MountSpec {
    pub fn from_spec(m: &crate::fs::SpecMount) -> MountSpec {
        use crate::fs::SpecFs;
        let (fs, mode, name, file) = match &m.fs {
            SpecFs::Tmpfs { mode } => ("tmpfs", *mode, Vec::new(), false),
            SpecFs::Proc => ("proc", 0, Vec::new(), false),
            SpecFs::Sysfs => ("sysfs", 0, Vec::new(), false),
            SpecFs::Devpts => ("devpts", 0, Vec::new(), false),
            SpecFs::Mqueue => ("mqueue", 0, Vec::new(), false),
            SpecFs::Cgroup => ("cgroup", 0, Vec::new(), false),
            SpecFs::Bind { name, file } => ("bind", 0, name.clone(), *file),
        };
        MountSpec {
            destination: m.destination.clone(),
            fs: fs.into(),
            mode,
            name,
            file,
            read_only: m.read_only,
            nosuid: m.flags.nosuid,
            nodev: m.flags.nodev,
            noexec: m.flags.noexec,
        }
    }

    pub fn to_spec(&self) -> Result<crate::fs::SpecMount, String> {
        use crate::fs::SpecFs;
        let fs = match self.fs.as_str() {
            "tmpfs" => SpecFs::Tmpfs { mode: self.mode },
            "proc" => SpecFs::Proc,
            "sysfs" => SpecFs::Sysfs,
            "devpts" => SpecFs::Devpts,
            "mqueue" => SpecFs::Mqueue,
            "cgroup" => SpecFs::Cgroup,
            "bind" => SpecFs::Bind {
                name: self.name.clone(),
                file: self.file,
            },
            other => return Err(format!("mount type {other:?} unknown")),
        };
        Ok(crate::fs::SpecMount {
            destination: self.destination.clone(),
            fs,
            read_only: self.read_only,
            flags: crate::vfs::MountFlags {
                nosuid: self.nosuid,
                nodev: self.nodev,
                noexec: self.noexec,
            },
        })
    }
}

/// A process for `exec`. The descriptors come with the request: the new process's fds 0,
/// 1 and 2, or with `terminal` one host terminal that its console pty is bridged to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRequest {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    #[serde(default)]
    pub additional_gids: Vec<u32>,
    pub umask: u32,
    #[serde(default)]
    pub terminal: bool,
    /// Capabilities, no_new_privs, rlimits and seccomp filter of the new process.
    #[serde(default)]
    pub security: Box<crate::security::ProcessSecurity>,
}

/// Where the container is in its life, as `state` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Created,
    Running,
    Stopped,
}

/// The sandbox's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Response {
    Ok,
    State {
        phase: Phase,
    },
    /// Sandbox pids (the container's own pid namespace), ascending.
    Ps {
        pids: Vec<i32>,
    },
    /// An `exec`'d process runs, with this sandbox pid.
    Started {
        pid: i32,
    },
    /// Init's (or an `exec`'d process's) exit: the `wait(2)` status word.
    Exited {
        wait_status: i32,
    },
    /// The request cannot be served; `message` is what the CLI prints.
    Error {
        message: String,
    },
}
