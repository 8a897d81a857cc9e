//! Booting a sandbox: the kernel, the root filesystem from the gofer, the first process.
#![deny(unsafe_code)]

use crate::kernel::ExitStatus;
use std::os::fd::OwnedFd;

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
}

/// Why the sandbox did not run its command.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error("{0}: command not found")]
    NotFound(String),
    #[error("{0}: cannot execute: {1}")]
    CannotExecute(String, crate::Error),
    #[error("{0}")]
    Setup(String),
}

/// Run the sandbox until its first process exits; returns how it exited.
pub fn run(_cfg: SandboxConfig) -> Result<ExitStatus, BootError> {
    Err(BootError::Setup("the VFS has not landed yet".into()))
}
