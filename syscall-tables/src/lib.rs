//! Linux syscall and errno tables.

pub mod errno {
    /// The name of errno `n` (`"ENOENT"` for 2).
    pub fn name(_n: i32) -> Option<&'static str> {
        None
    }
}
