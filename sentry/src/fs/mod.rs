//! Filesystem implementations: tmpfs, overlay, dev, devpts, the gofer client filesystem,
//! host fds.

pub mod cgroup;
pub mod dev;
pub mod devpts;
pub mod epoll;
pub mod eventfd;
pub mod gofer;
pub mod host;
pub mod inotify;
pub mod mqueue;
pub mod oci;
pub mod overlay;
pub mod pipe;
pub mod proc;
pub mod signalfd;
pub mod sys;
pub mod timerfd;
pub mod tmpfs;

mod root;

pub use root::{
    build_root, build_root_rw, build_root_staged, build_root_with, initial_fd_table, mount_console,
    mount_spec, new_vfs_with_root, RootOverlay, SpecFs, SpecMount,
};
