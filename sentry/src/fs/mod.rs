//! Filesystem implementations: tmpfs, dev, the gofer client filesystem, host fds.

pub mod dev;
pub mod epoll;
pub mod eventfd;
pub mod gofer;
pub mod host;
pub mod pipe;
pub mod timerfd;
pub mod tmpfs;

mod root;

pub use root::{build_root, initial_fd_table, new_vfs_with_root};
