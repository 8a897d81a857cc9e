//! TEMPORARY stand-in for `gofer::client`, with exactly the API the gofer crate will
//! provide, so that the gofer filesystem compiles before the client lands.
//! DELETE AT MERGE: replace `use client_shim as client` in `fs/gofer/mod.rs` by
//! `use ::gofer::client`.
#![allow(dead_code)]

use std::os::fd::OwnedFd;

pub type Handle = u64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

pub type Result<T> = std::result::Result<T, Errno>;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Attr {
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
    pub nlink: u64,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: u64,
    pub blksize: u64,
    pub blocks: u64,
    pub atime_sec: i64,
    pub atime_nsec: i64,
    pub mtime_sec: i64,
    pub mtime_nsec: i64,
    pub ctime_sec: i64,
    pub ctime_nsec: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dirent {
    pub ino: u64,
    pub d_type: u8,
    pub name: Vec<u8>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatFs {
    pub fs_type: u64,
    pub bsize: u64,
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub namelen: u64,
    pub frsize: u64,
    pub flags: u64,
}

pub struct Client {
    _sock: OwnedFd,
}

const NOSYS: Errno = Errno(libc::ENOSYS);

impl Client {
    pub fn new(sock: OwnedFd) -> Client {
        Client { _sock: sock }
    }
    pub fn attach(&self) -> Result<(Handle, Attr)> {
        Err(NOSYS)
    }
    pub fn walk(&self, _dir: Handle, _names: &[&[u8]]) -> Result<Vec<(Handle, Attr)>> {
        Err(NOSYS)
    }
    pub fn stat(&self, _h: Handle) -> Result<Attr> {
        Err(NOSYS)
    }
    pub fn open(&self, _h: Handle, _flags: i32) -> Result<OwnedFd> {
        Err(NOSYS)
    }
    pub fn readlink(&self, _h: Handle) -> Result<Vec<u8>> {
        Err(NOSYS)
    }
    pub fn getdents(&self, _h: Handle) -> Result<Vec<Dirent>> {
        Err(NOSYS)
    }
    pub fn statfs(&self, _h: Handle) -> Result<StatFs> {
        Err(NOSYS)
    }
    pub fn close(&self, _h: Handle) {}
}
