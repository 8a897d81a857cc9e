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
