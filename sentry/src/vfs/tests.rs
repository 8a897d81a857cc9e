//! VFS tests over a tmpfs root with the standard mounts (/tmp, /dev, /dev/shm, /proc,
//! /sys).

use super::*;
use crate::error::{Errno, Result};
use crate::fs::new_vfs_with_root;
use crate::fs::tmpfs::Tmpfs;
use std::sync::Arc;

const O_RDONLY: u32 = libc::O_RDONLY as u32;
const O_WRONLY: u32 = libc::O_WRONLY as u32;
const O_RDWR: u32 = libc::O_RDWR as u32;
const O_CREAT: u32 = libc::O_CREAT as u32;
const O_EXCL: u32 = libc::O_EXCL as u32;
const O_TRUNC: u32 = libc::O_TRUNC as u32;
const O_APPEND: u32 = libc::O_APPEND as u32;
const O_DIRECTORY: u32 = libc::O_DIRECTORY as u32;
const O_NOFOLLOW: u32 = libc::O_NOFOLLOW as u32;
const O_PATH: u32 = libc::O_PATH as u32;

fn mf() -> Arc<crate::mm::MemoryFile> {
    Arc::new(crate::mm::MemoryFile::new().unwrap())
}

fn setup() -> FsContext {
    let vfs = {
        let mf = mf();
        new_vfs_with_root("tmpfs", Tmpfs::new_root(&mf, 0o755), false, &mf).unwrap()
    };
    FsContext::new(vfs)
}

fn root() -> Creds {
    Creds::root()
}

fn open(ctx: &FsContext, path: &str, flags: u32) -> Result<Arc<dyn FileDescription>> {
    let how = OpenHow {
        flags,
        mode: 0o644,
        resolve: ResolveFlags::default(),
    };
    ctx.open(&ctx.cwd, path.as_bytes(), &how, &root())
}

fn open_res(ctx: &FsContext, dir: &VfsPath, path: &str, resolve: u64) -> Result<VfsPath> {
    let how = OpenHow {
        flags: O_PATH,
        mode: 0,
        resolve: ResolveFlags(resolve),
    };
    let f = ctx.open(dir, path.as_bytes(), &how, &root())?;
    Ok(f.path().unwrap())
}

fn err<T>(r: Result<T>) -> Errno {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.errno,
    }
}

fn lookup(ctx: &FsContext, path: &str) -> Result<VfsPath> {
    ctx.lookup(&ctx.cwd, path.as_bytes(), true)
}

fn name(ctx: &FsContext, path: &str) -> String {
    String::from_utf8(lookup(ctx, path).unwrap().path_from(&ctx.root)).unwrap()
}

fn write_file(ctx: &FsContext, path: &str, data: &[u8]) {
    let f = open(ctx, path, O_WRONLY | O_CREAT | O_TRUNC).unwrap();
    assert_eq!(f.write(data, None).unwrap(), data.len());
}

fn read_all(f: &dyn FileDescription) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 7];
    loop {
        let n = f.read(&mut buf, None).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

fn list(f: &dyn FileDescription) -> Vec<String> {
    let mut names = Vec::new();
    loop {
        let mut sink = DirentSink::new(64, DirentFormat::Dirent64);
        f.getdents(&mut sink).unwrap();
        let b = sink.bytes();
        if b.is_empty() {
            break;
        }
        let mut i = 0;
        while i < b.len() {
            let reclen = u16::from_ne_bytes([b[i + 16], b[i + 17]]) as usize;
            let nm = &b[i + 19..i + reclen];
            let end = nm.iter().position(|&c| c == 0).unwrap();
            names.push(String::from_utf8(nm[..end].to_vec()).unwrap());
            i += reclen;
        }
    }
    names
}

#[test]
fn dot_and_dotdot_and_mount_crossing() {
    let ctx = setup();
    ctx.mkdir(&ctx.cwd, b"a", 0o755, &root()).unwrap();
    ctx.mkdir(&ctx.cwd, b"a/b", 0o755, &root()).unwrap();
    assert_eq!(name(&ctx, "/a/./b/.."), "/a");
    assert_eq!(name(&ctx, "/../../a/../.."), "/");
    assert_eq!(name(&ctx, "a/b/../../a//b/"), "/a/b");
    // Mounts: /tmp and /dev/shm are separate filesystems; `..` climbs out of them.
    let tmp = lookup(&ctx, "/tmp").unwrap();
    assert!(tmp.is_mount_root());
    assert!(!Arc::ptr_eq(&tmp.mount, &ctx.root.mount));
    assert_eq!(name(&ctx, "/dev/shm/.."), "/dev");
    assert_eq!(name(&ctx, "/dev/shm/../../a"), "/a");
    assert!(lookup(&ctx, "/dev/shm/..").unwrap().is_mount_root());
    // A process root below the real root clamps `..`.
    let mut jailed = ctx.clone();
    jailed.root = lookup(&ctx, "/a").unwrap();
    jailed.cwd = jailed.root.clone();
    let p = jailed.lookup(&jailed.cwd, b"../../b", true).unwrap();
    assert_eq!(p.path_from(&jailed.root), b"/b");
}

#[test]
fn symlinks_loops_and_trailing_slashes() {
    let ctx = setup();
    write_file(&ctx, "/file", b"x");
    ctx.mkdir(&ctx.cwd, b"d", 0o755, &root()).unwrap();
    ctx.symlink(b"/d", &ctx.cwd, b"ld", &root()).unwrap();
    ctx.symlink(b"file", &ctx.cwd, b"lf", &root()).unwrap();
    ctx.symlink(b"loop2", &ctx.cwd, b"loop1", &root()).unwrap();
    ctx.symlink(b"loop1", &ctx.cwd, b"loop2", &root()).unwrap();
    ctx.symlink(b"nowhere", &ctx.cwd, b"dangling", &root())
        .unwrap();
    assert_eq!(name(&ctx, "ld"), "/d");
    assert!(ctx
        .lookup(&ctx.cwd, b"ld", false)
        .unwrap()
        .inode()
        .is_symlink());
    assert!(ctx
        .lookup(&ctx.cwd, b"ld/", false)
        .unwrap()
        .inode()
        .is_dir());
    assert_eq!(err(lookup(&ctx, "loop1")), Errno::ELOOP);
    assert_eq!(err(lookup(&ctx, "loop1/x")), Errno::ELOOP);
    assert_eq!(err(lookup(&ctx, "file/")), Errno::ENOTDIR);
    assert_eq!(err(lookup(&ctx, "file/x")), Errno::ENOTDIR);
    assert_eq!(err(lookup(&ctx, "lf/")), Errno::ENOTDIR);
    assert_eq!(err(lookup(&ctx, "dangling")), Errno::ENOENT);
    assert_eq!(err(lookup(&ctx, "")), Errno::ENOENT);
    // A chain of 40 links resolves; 41 is ELOOP.
    let mut prev = "file".to_string();
    for i in 0..41 {
        let n = format!("c{i}");
        ctx.symlink(prev.as_bytes(), &ctx.cwd, n.as_bytes(), &root())
            .unwrap();
        prev = n;
    }
    assert!(lookup(&ctx, "c39").is_ok());
    assert_eq!(err(lookup(&ctx, "c40")), Errno::ELOOP);
    // O_NOFOLLOW on a symlink is ELOOP unless O_PATH.
    assert_eq!(err(open(&ctx, "lf", O_RDONLY | O_NOFOLLOW)), Errno::ELOOP);
    let p = open(&ctx, "lf", O_PATH | O_NOFOLLOW).unwrap();
    assert!(p.stat().unwrap().is_symlink());
    assert_eq!(err(p.read(&mut [0u8; 1], None)), Errno::EBADF);
    // O_CREAT through a dangling symlink creates its target.
    open(&ctx, "dangling", O_WRONLY | O_CREAT).unwrap();
    assert!(lookup(&ctx, "/nowhere").is_ok());
    assert_eq!(
        err(open(&ctx, "lf", O_WRONLY | O_CREAT | O_EXCL)),
        Errno::EEXIST
    );
    assert_eq!(ctx.readlink(&ctx.cwd, b"lf").unwrap(), b"file");
    assert_eq!(err(ctx.readlink(&ctx.cwd, b"file")), Errno::EINVAL);
}

#[test]
fn open_flags_and_io() {
    let ctx = setup();
    assert_eq!(err(open(&ctx, "/missing", O_RDONLY)), Errno::ENOENT);
    write_file(&ctx, "/f", b"hello");
    assert_eq!(
        err(open(&ctx, "/f", O_RDONLY | O_CREAT | O_EXCL)),
        Errno::EEXIST
    );
    assert_eq!(
        err(open(&ctx, "/f", O_RDONLY | O_DIRECTORY)),
        Errno::ENOTDIR
    );
    assert_eq!(err(open(&ctx, "/tmp", O_WRONLY)), Errno::EISDIR);
    assert_eq!(err(open(&ctx, "/tmp", O_RDONLY | O_CREAT)), Errno::EISDIR);
    assert_eq!(err(open(&ctx, "/new/", O_RDONLY | O_CREAT)), Errno::EISDIR);
    let f = open(&ctx, "/f", O_RDWR | O_APPEND).unwrap();
    f.write(b" world", Some(0)).unwrap();
    assert_eq!(read_all(&*f), b"hello world");
    let mut b = [0u8; 5];
    assert_eq!(f.read(&mut b, Some(6)).unwrap(), 5);
    assert_eq!(&b, b"world");
    assert_eq!(f.seek(-5, libc::SEEK_END).unwrap(), 6);
    assert_eq!(err(f.seek(-100, libc::SEEK_CUR)), Errno::EINVAL);
    assert_eq!(f.status_flags() & O_APPEND, O_APPEND);
    f.set_status_flags(0).unwrap();
    assert_eq!(
        f.status_flags() & (O_APPEND | libc::O_ACCMODE as u32),
        O_RDWR
    );
    // O_TRUNC empties; umask applies to created files.
    open(&ctx, "/f", O_WRONLY | O_TRUNC).unwrap();
    assert_eq!(lookup(&ctx, "/f").unwrap().inode().stat().unwrap().size, 0);
    let mut c = ctx.clone();
    c.umask = 0o077;
    c.open(
        &c.cwd,
        b"/g",
        &OpenHow {
            flags: O_CREAT | O_WRONLY,
            mode: 0o666,
            resolve: ResolveFlags(0),
        },
        &root(),
    )
    .unwrap();
    assert_eq!(
        lookup(&ctx, "/g").unwrap().inode().stat().unwrap().mode,
        libc::S_IFREG | 0o600
    );
    // Directories list `.`, `..` and their entries; reading one is EISDIR.
    let d = open(&ctx, "/", O_RDONLY | O_DIRECTORY).unwrap();
    let mut names = list(&*d);
    names.sort();
    assert_eq!(names, [".", "..", "dev", "f", "g", "proc", "sys", "tmp"]);
    assert_eq!(err(d.read(&mut b, None)), Errno::EISDIR);
    d.seek(0, libc::SEEK_SET).unwrap();
    assert_eq!(list(&*d).len(), 8);
}

#[test]
fn resolve_flags() {
    let ctx = setup();
    ctx.mkdir(&ctx.cwd, b"jail", 0o755, &root()).unwrap();
    ctx.mkdir(&ctx.cwd, b"jail/sub", 0o755, &root()).unwrap();
    write_file(&ctx, "/jail/sub/f", b"");
    write_file(&ctx, "/f", b"");
    ctx.symlink(b"/f", &ctx.cwd, b"jail/abs", &root()).unwrap();
    ctx.symlink(b"sub/f", &ctx.cwd, b"jail/rel", &root())
        .unwrap();
    let jail = lookup(&ctx, "/jail").unwrap();
    let b = ResolveFlags::BENEATH;
    assert!(open_res(&ctx, &jail, "sub/../sub/f", b).is_ok());
    assert!(open_res(&ctx, &jail, "rel", b).is_ok());
    assert_eq!(err(open_res(&ctx, &jail, "../f", b)), Errno::EXDEV);
    assert_eq!(err(open_res(&ctx, &jail, "/f", b)), Errno::EXDEV);
    assert_eq!(err(open_res(&ctx, &jail, "abs", b)), Errno::EXDEV);
    // IN_ROOT: `/` and `..` stay inside.
    let r = ResolveFlags::IN_ROOT;
    let p = open_res(&ctx, &jail, "/sub/f", r).unwrap();
    assert_eq!(p.path_from(&ctx.root), b"/jail/sub/f");
    let p = open_res(&ctx, &jail, "../../sub", r).unwrap();
    assert_eq!(p.path_from(&ctx.root), b"/jail/sub");
    assert_eq!(err(open_res(&ctx, &jail, "abs", r)), Errno::ENOENT);
    assert_eq!(
        err(open_res(&ctx, &jail, "rel", ResolveFlags::NO_SYMLINKS)),
        Errno::ELOOP
    );
    let root_dir = ctx.root.clone();
    assert_eq!(
        err(open_res(&ctx, &root_dir, "tmp", ResolveFlags::NO_XDEV)),
        Errno::EXDEV
    );
    assert!(open_res(&ctx, &root_dir, "jail", ResolveFlags::NO_XDEV).is_ok());
    let tmp = lookup(&ctx, "/tmp").unwrap();
    assert_eq!(
        err(open_res(&ctx, &tmp, "..", ResolveFlags::NO_XDEV)),
        Errno::EXDEV
    );
}

#[test]
fn namespace_changes() {
    let ctx = setup();
    let c = root();
    let cwd = ctx.cwd.clone();
    ctx.mkdir(&cwd, b"d", 0o755, &c).unwrap();
    assert_eq!(err(ctx.mkdir(&cwd, b"d", 0o755, &c)), Errno::EEXIST);
    assert_eq!(err(ctx.mkdir(&cwd, b"/", 0o755, &c)), Errno::EEXIST);
    assert_eq!(err(ctx.mkdir(&cwd, b"x/y", 0o755, &c)), Errno::ENOENT);
    write_file(&ctx, "/d/f", b"data");
    assert_eq!(err(ctx.rmdir(&cwd, b"d", &c)), Errno::ENOTEMPTY);
    assert_eq!(err(ctx.rmdir(&cwd, b"d/f", &c)), Errno::ENOTDIR);
    assert_eq!(err(ctx.rmdir(&cwd, b"d/.", &c)), Errno::EINVAL);
    assert_eq!(err(ctx.rmdir(&cwd, b"tmp", &c)), Errno::EBUSY);
    assert_eq!(err(ctx.unlink(&cwd, b"d", &c)), Errno::EISDIR);
    assert_eq!(err(ctx.unlink(&cwd, b"d/f/", &c)), Errno::ENOTDIR);
    // An unlinked file stays readable through an open description.
    let f = open(&ctx, "/d/f", O_RDONLY).unwrap();
    ctx.unlink(&cwd, b"d/f", &c).unwrap();
    assert_eq!(err(lookup(&ctx, "/d/f")), Errno::ENOENT);
    assert_eq!(read_all(&*f), b"data");
    assert_eq!(f.stat().unwrap().nlink, 0);
    ctx.rmdir(&cwd, b"d", &c).unwrap();
    // Hard links.
    write_file(&ctx, "/a", b"1");
    let a = lookup(&ctx, "/a").unwrap();
    ctx.link(&a, &cwd, b"a2", &c).unwrap();
    assert_eq!(a.inode().stat().unwrap().nlink, 2);
    assert_eq!(err(ctx.link(&a, &cwd, b"tmp/a3", &c)), Errno::EXDEV);
    assert_eq!(
        err(ctx.link(&lookup(&ctx, "/tmp").unwrap(), &cwd, b"t", &c)),
        Errno::EPERM
    );
}

#[test]
fn rename_cases() {
    let ctx = setup();
    let c = root();
    let cwd = ctx.cwd.clone();
    ctx.mkdir(&cwd, b"d1", 0o755, &c).unwrap();
    ctx.mkdir(&cwd, b"d1/sub", 0o755, &c).unwrap();
    ctx.mkdir(&cwd, b"d2", 0o755, &c).unwrap();
    write_file(&ctx, "/d2/x", b"");
    write_file(&ctx, "/a", b"A");
    write_file(&ctx, "/b", b"B");
    ctx.rename(&cwd, b"a", &cwd, b"b", 0, &root()).unwrap();
    assert_eq!(read_all(&*open(&ctx, "/b", O_RDONLY).unwrap()), b"A");
    assert_eq!(err(lookup(&ctx, "/a")), Errno::ENOENT);
    assert_eq!(
        err(ctx.rename(&cwd, b"d1", &cwd, b"d1/sub/z", 0, &root())),
        Errno::EINVAL
    );
    assert_eq!(
        err(ctx.rename(&cwd, b"d1", &cwd, b"d2", 0, &root())),
        Errno::ENOTEMPTY
    );
    assert_eq!(
        err(ctx.rename(&cwd, b"d1", &cwd, b"b", 0, &root())),
        Errno::ENOTDIR
    );
    assert_eq!(
        err(ctx.rename(&cwd, b"b", &cwd, b"d1", 0, &root())),
        Errno::EISDIR
    );
    assert_eq!(
        err(ctx.rename(&cwd, b"b", &cwd, b"tmp/b", 0, &root())),
        Errno::EXDEV
    );
    assert_eq!(
        err(ctx.rename(&cwd, b"b", &cwd, b"d2/x", 1, &root())),
        Errno::EEXIST
    );
    assert_eq!(
        err(ctx.rename(&cwd, b"b", &cwd, b"nope", 2, &root())),
        Errno::ENOENT
    );
    assert_eq!(
        err(ctx.rename(&cwd, b"b", &cwd, b"c", 7, &root())),
        Errno::EINVAL
    );
    ctx.rename(&cwd, b"b", &cwd, b"d2/x", 2, &root()).unwrap();
    assert_eq!(read_all(&*open(&ctx, "/d2/x", O_RDONLY).unwrap()), b"A");
    // A cwd inside a moved directory follows it (getcwd).
    let mut inner = ctx.clone();
    inner.cwd = lookup(&ctx, "/d1/sub").unwrap();
    ctx.rename(&cwd, b"d1", &cwd, b"d3", 0, &root()).unwrap();
    assert_eq!(inner.cwd.path_from(&inner.root), b"/d3/sub");
    // `.`, the parent's link, and dev, proc, sys, tmp, d2, d3.
    assert_eq!(lookup(&ctx, "/").unwrap().inode().stat().unwrap().nlink, 8);
}

#[test]
fn read_only_mount() {
    let vfs = {
        let mf = mf();
        new_vfs_with_root("tmpfs", Tmpfs::new_root(&mf, 0o755), true, &mf).unwrap()
    };
    let ctx = FsContext::new(vfs);
    let c = root();
    // Setup made the /tmp and /dev mount points although the mount is read-only (the
    // filesystem itself takes them), as runc does before remounting a root read-only;
    // the application cannot create anything.
    assert!(lookup(&ctx, "/tmp").is_ok());
    assert!(lookup(&ctx, "/dev/null").is_ok());
    assert_eq!(err(ctx.mkdir(&ctx.cwd, b"x", 0o755, &c)), Errno::EROFS);
    assert_eq!(err(ctx.mkdir(&ctx.cwd, b"/", 0o755, &c)), Errno::EEXIST);
    assert_eq!(err(open(&ctx, "/new", O_WRONLY | O_CREAT)), Errno::EROFS);
    assert_eq!(err(open(&ctx, "/", O_RDONLY | O_TRUNC)), Errno::EISDIR);
    assert_eq!(err(ctx.unlink(&ctx.cwd, b"x", &c)), Errno::EROFS);
    assert!(open(&ctx, "/", O_RDONLY).is_ok());
}

#[test]
fn exec_checks() {
    let ctx = setup();
    write_file(&ctx, "/prog", b"\x7fELF....");
    write_file(&ctx, "/text", b"");
    let c = root();
    let set_mode = |p: &str, mode: u32| {
        // tmpfs has no chmod yet: recreate with the mode through a umask-free context.
        let mut x = ctx.clone();
        x.umask = 0;
        x.unlink(&x.cwd, p.as_bytes(), &c).unwrap();
        let how = OpenHow {
            flags: O_CREAT | O_WRONLY,
            mode,
            resolve: ResolveFlags(0),
        };
        let f = x.open(&x.cwd, p.as_bytes(), &how, &c).unwrap();
        f.write(b"\x7fELF....", None).unwrap();
    };
    set_mode("/prog", 0o755);
    let e = ctx.open_for_exec(b"/prog", &c).unwrap();
    let mut b = [0u8; 4];
    assert_eq!(e.read_at(&mut b, 0).unwrap(), 4);
    assert_eq!(&b, b"\x7fELF");
    assert_eq!(e.path, b"/prog");
    assert_eq!(err(ctx.open_for_exec(b"/text", &c)), Errno::EACCES);
    assert_eq!(err(ctx.open_for_exec(b"/tmp", &c)), Errno::EACCES);
    assert_eq!(err(ctx.open_for_exec(b"/nope", &c)), Errno::ENOENT);
    assert_eq!(err(ctx.open_for_exec(b"/prog/x", &c)), Errno::ENOTDIR);
    assert_eq!(err(ctx.open_for_exec(b"/dev/null", &c)), Errno::EACCES);
    // A non-root user needs the execute bit for its class.
    let user = Creds {
        uid: 1000,
        gid: 1000,
        groups: vec![],
        caps: 0,
    };
    set_mode("/prog", 0o744);
    assert_eq!(err(ctx.open_for_exec(b"/prog", &user)), Errno::EACCES);
}

#[test]
fn fd_table() {
    let ctx = setup();
    let f = open(&ctx, "/", O_RDONLY).unwrap();
    let mut t = FdTable::new();
    assert_eq!(t.insert(f.clone(), FdFlags::default()).unwrap(), 0);
    assert_eq!(t.insert(f.clone(), FdFlags { cloexec: true }).unwrap(), 1);
    assert_eq!(t.insert(f.clone(), FdFlags::default()).unwrap(), 2);
    t.remove(1).unwrap();
    assert_eq!(err(t.remove(1)), Errno::EBADF);
    assert_eq!(err(t.get(1)), Errno::EBADF);
    assert_eq!(err(t.get(-1)), Errno::EBADF);
    assert_eq!(t.insert(f.clone(), FdFlags { cloexec: true }).unwrap(), 1);
    assert_eq!(
        t.insert_from(10, f.clone(), FdFlags::default()).unwrap(),
        10
    );
    assert_eq!(
        t.insert_from(10, f.clone(), FdFlags::default()).unwrap(),
        11
    );
    assert_eq!(
        err(t.insert_from(-1, f.clone(), FdFlags::default())),
        Errno::EINVAL
    );
    assert_eq!(
        err(t.insert_at(1024, f.clone(), FdFlags::default())),
        Errno::EBADF
    );
    // fork copies the table; the copies are independent.
    let mut child = t.clone();
    child.remove(0).unwrap();
    assert!(t.get(0).is_ok());
    // execve drops the close-on-exec fds.
    assert_eq!(t.close_on_exec().len(), 1);
    assert_eq!(t.fds(), [0, 2, 10, 11]);
    assert_eq!(t.close_range(2, 10, false).len(), 2);
    t.close_range(0, u32::MAX, true);
    assert!(t.flags(0).unwrap().cloexec);
    // The limit: EMFILE when full.
    let mut small = FdTable::new();
    small.limit = 3;
    for _ in 0..3 {
        small.insert(f.clone(), FdFlags::default()).unwrap();
    }
    assert_eq!(
        err(small.insert(f.clone(), FdFlags::default())),
        Errno::EMFILE
    );
}

#[test]
fn dirent_packing() {
    let mut s = DirentSink::new(64, DirentFormat::Dirent64);
    assert!(s.push(7, 1, libc::DT_REG, b"abc"));
    // 19-byte header + "abc" + NUL = 23, rounded to 24.
    assert_eq!(s.bytes().len(), 24);
    assert_eq!(s.bytes()[18], libc::DT_REG);
    assert!(s.push(8, 2, libc::DT_DIR, &[b'x'; 20]));
    assert!(!s.push(9, 3, libc::DT_DIR, b"y"));
    let mut old = DirentSink::new(64, DirentFormat::Dirent);
    assert!(old.push(7, 1, libc::DT_DIR, b"abcde"));
    assert_eq!(old.bytes().len(), 32);
    assert_eq!(old.bytes()[31], libc::DT_DIR);
    assert_eq!(seek_offset(5, 10, 0, libc::SEEK_DATA).unwrap(), 0);
    assert_eq!(seek_offset(5, 10, 3, libc::SEEK_HOLE).unwrap(), 10);
    assert_eq!(err(seek_offset(5, 10, 10, libc::SEEK_DATA)), Errno::ENXIO);
    assert_eq!(err(seek_offset(0, 0, 0, 42)), Errno::EINVAL);
    assert_eq!(
        err(seek_offset(1, 0, i64::MAX, libc::SEEK_CUR)),
        Errno::EOVERFLOW
    );
}

#[test]
fn permission_classes_and_capabilities() {
    use crate::kernel::creds::{CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER};
    let st = |mode: u32, uid: u32, gid: u32| Stat {
        mode,
        uid,
        gid,
        ..Stat::default()
    };
    let user = |uid: u32, groups: Vec<u32>, caps: u64| Creds {
        uid,
        gid: uid,
        groups,
        caps,
    };
    let file = st(libc::S_IFREG | 0o077, 1000, 50);
    // The owner gets the owner bits only, however generous the others are.
    assert_eq!(
        err(check_permission(&file, &user(1000, vec![], 0), MAY_READ)),
        Errno::EACCES
    );
    // A supplementary group counts as the group.
    assert!(check_permission(&file, &user(7, vec![50], 0), MAY_READ | MAY_WRITE).is_ok());
    // Capabilities: read-search reads files and searches directories but writes
    // nothing; override writes anything but executes no file without an x bit.
    let private = st(libc::S_IFREG | 0o600, 1000, 1000);
    let dir = st(libc::S_IFDIR | 0o700, 1000, 1000);
    let rs = user(0, vec![], 1 << CAP_DAC_READ_SEARCH);
    assert!(check_permission(&private, &rs, MAY_READ).is_ok());
    assert_eq!(
        err(check_permission(&private, &rs, MAY_WRITE)),
        Errno::EACCES
    );
    assert!(check_permission(&dir, &rs, MAY_READ | MAY_EXEC).is_ok());
    assert_eq!(
        err(check_permission(&dir, &rs, MAY_WRITE | MAY_EXEC)),
        Errno::EACCES
    );
    let ov = user(0, vec![], 1 << CAP_DAC_OVERRIDE);
    assert!(check_permission(&private, &ov, MAY_READ | MAY_WRITE).is_ok());
    assert!(check_permission(&dir, &ov, MAY_WRITE | MAY_EXEC).is_ok());
    assert_eq!(
        err(check_permission(&private, &ov, MAY_EXEC)),
        Errno::EACCES
    );
    // Root without capabilities is nobody special.
    assert_eq!(
        err(check_permission(&private, &user(0, vec![], 0), MAY_READ)),
        Errno::EACCES
    );
    // Sticky directories: the file's owner, the directory's owner, or CAP_FOWNER.
    let sticky = st(libc::S_IFDIR | 0o1777, 1, 1);
    let theirs = st(libc::S_IFREG | 0o666, 2, 2);
    assert_eq!(
        err(super::check_sticky(&sticky, &theirs, &user(3, vec![], 0))),
        Errno::EPERM
    );
    assert!(super::check_sticky(&sticky, &theirs, &user(2, vec![], 0)).is_ok());
    assert!(super::check_sticky(&sticky, &theirs, &user(1, vec![], 0)).is_ok());
    assert!(super::check_sticky(&sticky, &theirs, &user(3, vec![], 1 << CAP_FOWNER)).is_ok());
}
