//! The host-call layer: the few host calls that need `unsafe`, each behind a safe function.
//! Everything else uses `nix`.

use crate::error::{Error, Result};

/// A value from the sentry's own auxiliary vector (0 if absent).
pub fn getauxval(key: u64) -> u64 {
    // SAFETY: getauxval only reads the process's auxiliary vector.
    unsafe { libc::getauxval(key) }
}

/// Fill `buf` from the host's entropy pool.
pub fn getrandom(buf: &mut [u8], flags: u32) -> Result<usize> {
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`, which we own.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), flags) };
    if n < 0 {
        Err(Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}
