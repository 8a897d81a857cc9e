//! The control socket: how `carapace start/kill/state/ps/wait` reach a running sandbox.
//!
//! The sentry (`carapace boot`) listens on `<root>/<id>/control.sock`, a unix stream
//! socket. Each connection carries one [`Request`] as a line of JSON and gets one
//! [`Response`] line back (`Wait` answers only when the container's init has exited).
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
    /// The container's status.
    State,
    /// The sandbox's processes.
    Ps,
    /// Block until init exits.
    Wait,
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
    /// Init's exit: the `wait(2)` status word.
    Exited {
        wait_status: i32,
    },
    /// The request cannot be served; `message` is what the CLI prints.
    Error {
        message: String,
    },
}
