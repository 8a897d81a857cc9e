//! The overlay over a tmpfs lower layer, through the VFS as the syscalls use it.

use super::*;
use crate::vfs::{Creds, DirentFormat, FsContext, OpenHow, Vfs};

/// A lower tmpfs with `/etc/hostname`, `/etc/dir/a`, `/etc/link` → `hostname`, and an
/// overlay over it; returns the lower root and the context.
fn setup() -> (Arc<TmpfsInode>, FsContext) {
    let c = Creds::root();
    let mf = Arc::new(MemoryFile::new().unwrap());
    let lower = Tmpfs::new_root(&mf, 0o755);
    let etc = to_tmpfs(lower.mkdir(b"etc", 0o755, &c).unwrap()).unwrap();
    let host = to_tmpfs(etc.create(b"hostname", 0o644, &c).unwrap()).unwrap();
    host.write_at(b"lower\n", 0).unwrap();
    host.setxattr(b"user.k", b"v", 0).unwrap();
    host.set_owner(Some(7), Some(8), None).unwrap();
    let dir = etc.mkdir(b"dir", 0o750, &c).unwrap();
    dir.create(b"a", 0o600, &c).unwrap();
    etc.symlink(b"link", b"hostname", &c).unwrap();
    let root = OverlayFs::new_root(lower.clone(), &mf).unwrap();
    let vfs = Vfs::new("overlay", root, false);
    (lower, FsContext::new(vfs))
}

fn open(ctx: &FsContext, path: &str, flags: i32) -> crate::Result<Arc<dyn FileDescription>> {
    let how = OpenHow {
        flags: flags as u32,
        mode: 0o644,
        ..OpenHow::default()
    };
    ctx.open(&ctx.cwd, path.as_bytes(), &how, &Creds::root())
}

fn read_all(ctx: &FsContext, path: &str) -> Vec<u8> {
    let f = open(ctx, path, libc::O_RDONLY).unwrap();
    let mut buf = vec![0u8; 4096];
    let n = f.read(&mut buf, Some(0)).unwrap();
    buf.truncate(n);
    buf
}

fn names(ctx: &FsContext, path: &str) -> Vec<String> {
    let p = ctx.lookup(&ctx.cwd, path.as_bytes(), true).unwrap();
    let mut v: Vec<String> = p
        .inode()
        .readdir()
        .unwrap()
        .into_iter()
        .map(|e| String::from_utf8_lossy(&e.name).into_owned())
        .collect();
    v.sort();
    v
}

fn stat(ctx: &FsContext, path: &str) -> crate::Result<Stat> {
    ctx.lookup(&ctx.cwd, path.as_bytes(), false)?.inode().stat()
}

fn errno_of<T>(r: crate::Result<T>) -> Errno {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.errno,
    }
}

fn lower_file(lower: &Arc<TmpfsInode>, dir: &[u8], name: &[u8]) -> Vec<u8> {
    let f = to_tmpfs(lower.lookup(dir).unwrap().lookup(name).unwrap()).unwrap();
    let mut buf = vec![0u8; 64];
    let n = f.read_at(&mut buf, 0).unwrap();
    buf.truncate(n);
    buf
}

#[test]
fn copy_up_on_write_keeps_lower_and_attributes() {
    let (lower, ctx) = setup();
    let before = stat(&ctx, "/etc/hostname").unwrap();
    assert_eq!(read_all(&ctx, "/etc/hostname"), b"lower\n");
    let f = open(&ctx, "/etc/hostname", libc::O_WRONLY | libc::O_APPEND).unwrap();
    f.write(b"upper\n", None).unwrap();
    assert_eq!(read_all(&ctx, "/etc/hostname"), b"lower\nupper\n");
    assert_eq!(lower_file(&lower, b"etc", b"hostname"), b"lower\n");
    let after = stat(&ctx, "/etc/hostname").unwrap();
    assert_eq!(after.ino, before.ino, "inode number survives copy-up");
    assert_eq!(after.dev, before.dev);
    assert_eq!(
        (after.uid, after.gid, after.mode),
        (7, 8, libc::S_IFREG | 0o644)
    );
    assert_eq!(f.stat().unwrap().ino, before.ino, "fstat agrees with stat");
    let p = ctx.lookup(&ctx.cwd, b"/etc/hostname", true).unwrap();
    assert_eq!(p.inode().getxattr(b"user.k").unwrap(), b"v");
    // The parent was copied up with its mode; the lower one is untouched.
    assert_eq!(stat(&ctx, "/etc").unwrap().mode, libc::S_IFDIR | 0o755);
    // readdir's d_ino matches stat's st_ino.
    let p = ctx.lookup(&ctx.cwd, b"/etc", true).unwrap();
    let e = p
        .inode()
        .readdir()
        .unwrap()
        .into_iter()
        .find(|e| e.name == b"hostname")
        .unwrap();
    assert_eq!(e.ino, before.ino);
}

#[test]
fn truncate_chmod_and_times_copy_up() {
    let (lower, ctx) = setup();
    open(&ctx, "/etc/hostname", libc::O_WRONLY | libc::O_TRUNC).unwrap();
    assert_eq!(stat(&ctx, "/etc/hostname").unwrap().size, 0);
    assert_eq!(lower_file(&lower, b"etc", b"hostname"), b"lower\n");
    let p = ctx.lookup(&ctx.cwd, b"/etc/dir/a", true).unwrap();
    p.inode().set_mode(0o640).unwrap();
    assert_eq!(stat(&ctx, "/etc/dir/a").unwrap().mode & 0o7777, 0o640);
    let la = lower.lookup(b"etc").unwrap().lookup(b"dir").unwrap();
    assert_eq!(la.lookup(b"a").unwrap().mode() & 0o7777, 0o600);
    let t = Timespec { sec: 5, nsec: 6 };
    let l = ctx.lookup(&ctx.cwd, b"/etc/link", false).unwrap();
    l.inode().set_times(Some(t), Some(t)).unwrap();
    assert_eq!(stat(&ctx, "/etc/link").unwrap().mtime, t);
    assert_eq!(ctx.readlink(&ctx.cwd, b"/etc/link").unwrap(), b"hostname");
}

#[test]
fn whiteout_hides_lower_and_create_replaces_it() {
    let (lower, ctx) = setup();
    ctx.unlink(&ctx.cwd, b"/etc/hostname", &Creds::root())
        .unwrap();
    assert_eq!(errno_of(stat(&ctx, "/etc/hostname")), Errno::ENOENT);
    assert_eq!(names(&ctx, "/etc"), ["dir", "link"]);
    assert!(lower.lookup(b"etc").unwrap().lookup(b"hostname").is_ok());
    // A new file over the whiteout is a new object.
    let f = open(&ctx, "/etc/hostname", libc::O_WRONLY | libc::O_CREAT).unwrap();
    f.write(b"new", None).unwrap();
    assert_eq!(read_all(&ctx, "/etc/hostname"), b"new");
    assert_eq!(names(&ctx, "/etc"), ["dir", "hostname", "link"]);
    // Removing it again leaves the whiteout in place.
    ctx.unlink(&ctx.cwd, b"/etc/hostname", &Creds::root())
        .unwrap();
    assert_eq!(names(&ctx, "/etc"), ["dir", "link"]);
}

#[test]
fn rmdir_then_mkdir_is_opaque() {
    let (_lower, ctx) = setup();
    let c = Creds::root();
    assert_eq!(
        errno_of(ctx.rmdir(&ctx.cwd, b"/etc/dir", &c)),
        Errno::ENOTEMPTY
    );
    ctx.unlink(&ctx.cwd, b"/etc/dir/a", &c).unwrap();
    assert!(names(&ctx, "/etc/dir").is_empty());
    ctx.rmdir(&ctx.cwd, b"/etc/dir", &c).unwrap();
    assert_eq!(errno_of(stat(&ctx, "/etc/dir")), Errno::ENOENT);
    ctx.mkdir(&ctx.cwd, b"/etc/dir", 0o700, &c).unwrap();
    assert!(
        names(&ctx, "/etc/dir").is_empty(),
        "opaque: no lower entries"
    );
    assert_eq!(errno_of(stat(&ctx, "/etc/dir/a")), Errno::ENOENT);
    assert_eq!(stat(&ctx, "/etc/dir").unwrap().mode, libc::S_IFDIR | 0o700);
}

#[test]
fn readdir_merges_upper_over_lower() {
    let (_lower, ctx) = setup();
    let c = Creds::root();
    ctx.mkdir(&ctx.cwd, b"/etc/new", 0o755, &c).unwrap();
    open(&ctx, "/etc/dir/b", libc::O_CREAT | libc::O_WRONLY).unwrap();
    assert_eq!(names(&ctx, "/etc"), ["dir", "hostname", "link", "new"]);
    assert_eq!(names(&ctx, "/etc/dir"), ["a", "b"]);
    // getdents through a directory file gives the same, plus . and ..
    let d = open(&ctx, "/etc/dir", libc::O_RDONLY | libc::O_DIRECTORY).unwrap();
    let mut sink = DirentSink::new(4096, DirentFormat::Dirent64);
    d.getdents(&mut sink).unwrap();
    assert!(!sink.is_empty());
    // Inode numbers are unique across the listing.
    let p = ctx.lookup(&ctx.cwd, b"/etc", true).unwrap();
    let inos: HashSet<u64> = p.inode().readdir().unwrap().iter().map(|e| e.ino).collect();
    assert_eq!(inos.len(), 4);
}

#[test]
fn rename_files_and_exdev_for_lower_dirs() {
    let (lower, ctx) = setup();
    let c = Creds::root();
    let ino = stat(&ctx, "/etc/hostname").unwrap().ino;
    ctx.rename(
        &ctx.cwd,
        b"/etc/hostname",
        &ctx.cwd,
        b"/etc/dir/h",
        0,
        &crate::vfs::Creds::root(),
    )
    .unwrap();
    assert_eq!(errno_of(stat(&ctx, "/etc/hostname")), Errno::ENOENT);
    assert_eq!(read_all(&ctx, "/etc/dir/h"), b"lower\n");
    assert_eq!(stat(&ctx, "/etc/dir/h").unwrap().ino, ino);
    assert_eq!(names(&ctx, "/etc"), ["dir", "link"]);
    assert!(lower.lookup(b"etc").unwrap().lookup(b"hostname").is_ok());
    // Over an existing lower file: it is replaced.
    ctx.rename(
        &ctx.cwd,
        b"/etc/dir/h",
        &ctx.cwd,
        b"/etc/dir/a",
        0,
        &crate::vfs::Creds::root(),
    )
    .unwrap();
    assert_eq!(names(&ctx, "/etc/dir"), ["a"]);
    assert_eq!(read_all(&ctx, "/etc/dir/a"), b"lower\n");
    assert_eq!(
        errno_of(ctx.rename(
            &ctx.cwd,
            b"/etc/dir",
            &ctx.cwd,
            b"/d2",
            0,
            &crate::vfs::Creds::root()
        )),
        Errno::EXDEV
    );
    // Upper-only directories move.
    ctx.mkdir(&ctx.cwd, b"/u", 0o755, &c).unwrap();
    open(&ctx, "/u/f", libc::O_CREAT | libc::O_WRONLY).unwrap();
    ctx.rename(
        &ctx.cwd,
        b"/u",
        &ctx.cwd,
        b"/etc/u2",
        0,
        &crate::vfs::Creds::root(),
    )
    .unwrap();
    assert_eq!(names(&ctx, "/etc/u2"), ["f"]);
    // Exchange of two files.
    open(&ctx, "/x", libc::O_CREAT | libc::O_WRONLY)
        .unwrap()
        .write(b"x", None)
        .unwrap();
    ctx.rename(
        &ctx.cwd,
        b"/x",
        &ctx.cwd,
        b"/etc/dir/a",
        RENAME_EXCHANGE,
        &crate::vfs::Creds::root(),
    )
    .unwrap();
    assert_eq!(read_all(&ctx, "/x"), b"lower\n");
    assert_eq!(read_all(&ctx, "/etc/dir/a"), b"x");
}

#[test]
fn hard_link_to_lower_file_shares_the_copy() {
    let (_lower, ctx) = setup();
    let c = Creds::root();
    let old = ctx.lookup(&ctx.cwd, b"/etc/hostname", true).unwrap();
    ctx.link(&old, &ctx.cwd, b"/etc/h2", &c).unwrap();
    let (a, b) = (
        stat(&ctx, "/etc/hostname").unwrap(),
        stat(&ctx, "/etc/h2").unwrap(),
    );
    assert_eq!((a.ino, a.nlink), (b.ino, 2));
    open(&ctx, "/etc/h2", libc::O_WRONLY | libc::O_TRUNC).unwrap();
    assert_eq!(read_all(&ctx, "/etc/hostname"), b"");
}

#[test]
fn xattrs_and_special_files_in_the_upper_layer() {
    let (_lower, ctx) = setup();
    let c = Creds::root();
    let p = ctx.lookup(&ctx.cwd, b"/etc/dir", true).unwrap();
    p.inode().setxattr(b"user.x", b"1", 0).unwrap();
    let mut l = p.inode().listxattr().unwrap();
    l.sort();
    assert_eq!(l, [b"user.x".to_vec()]);
    assert_eq!(
        errno_of(p.inode().removexattr(b"user.nope")),
        Errno::ENODATA
    );
    p.inode()
        .mknod(b"fifo", libc::S_IFIFO | 0o644, 0, &c)
        .unwrap();
    assert_eq!(
        stat(&ctx, "/etc/dir/fifo").unwrap().mode,
        libc::S_IFIFO | 0o644
    );
    assert_eq!(
        errno_of(open(&ctx, "/etc/dir/fifo", libc::O_RDONLY)),
        Errno::ENXIO
    );
}
