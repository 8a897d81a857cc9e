//! The virtual filesystem: mount tree, dentries, path walk, file descriptions, fd table.

/// A process's file descriptor table. Placeholder until the VFS lands.
#[derive(Default)]
pub struct FdTable {}

/// A process's filesystem context: root, working directory, umask.
pub struct FsContext {
    pub umask: u32,
}
