//! The Carapace sentry: a Linux kernel in user space.
//!
//! Application code runs in stub processes driven by a [`platform`]; every system call it
//! makes stops there and is emulated by the [`kernel`] through [`syscalls`]. Application
//! memory lives in one [`mm::MemoryFile`]; files are reached through the [`vfs`], whose
//! host-backed filesystems talk to the gofer. See `DESIGN.md` §2–3.

pub mod boot;
pub mod control;
pub mod error;
pub mod fs;
pub mod host;
pub mod kernel;
pub mod loader;
pub mod mm;
pub mod net;
pub mod platform;
pub mod security;
pub mod strace;
pub mod syscalls;
pub mod vfs;

pub use error::{Errno, Error, Result};
