//! The virtual filesystem: mount tree, dentries, path walk, file descriptions, fd table.

/// A process's file descriptor table. Placeholder until the VFS lands.
#[derive(Default)]
pub struct FdTable {}

impl FdTable {
    pub fn close_on_exec(&mut self) {}
}

/// A process's filesystem context: root, working directory, umask.
pub struct FsContext {
    pub umask: u32,
}

use crate::error::Result;
use crate::mm::MappableFile;
use std::sync::Arc;

/// An open file. Placeholder until the VFS lands.
pub trait FileDescription: Send + Sync {
    fn mappable(&self) -> Option<Arc<dyn MappableFile>> {
        None
    }
    fn status_flags(&self) -> u32 {
        0
    }
    fn path_name(&self) -> String {
        String::new()
    }
}

impl FdTable {
    pub fn get(&self, _fd: i32) -> Result<Arc<dyn FileDescription>> {
        Err(crate::errno!(EBADF))
    }
}
