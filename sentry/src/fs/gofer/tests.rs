//! The gofer filesystem over a real gofer server on a temporary directory.

use crate::error::Errno;
use crate::fs::{build_root, build_root_rw, RootOverlay};
use crate::vfs::{Creds, DirentFormat, DirentSink, FsContext, OpenHow};
use ::gofer::client::Client;
use ::gofer::{serve, ServeOptions};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::sync::Arc;

struct TempTree(PathBuf);

impl Drop for TempTree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn served_tree() -> (TempTree, FsContext) {
    served(true, RootOverlay::None, "ro")
}

/// A temporary tree served by a real gofer, `read_only` or not, mounted with `overlay`.
fn served(read_only: bool, overlay: RootOverlay, tag: &str) -> (TempTree, FsContext) {
    let path = std::env::temp_dir().join(format!("sentry-gofer-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(path.join("etc")).unwrap();
    std::fs::create_dir_all(path.join("tmp")).unwrap();
    std::fs::create_dir_all(path.join("dev")).unwrap();
    std::fs::write(path.join("etc/hostname"), b"sandbox\n").unwrap();
    symlink("etc/hostname", path.join("link")).unwrap();
    symlink("/etc", path.join("abs_etc")).unwrap();
    let root = nix::fcntl::open(
        &path,
        nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_RDONLY,
        nix::sys::stat::Mode::empty(),
    )
    .unwrap();
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .unwrap();
    std::thread::spawn(move || serve(root, a, ServeOptions { read_only }));
    let client = Arc::new(Client::new(b));
    let mf = Arc::new(crate::mm::MemoryFile::new().unwrap());
    let vfs = if read_only {
        build_root(client, overlay, &mf).unwrap()
    } else {
        build_root_rw(client, overlay, true, &mf).unwrap()
    };
    (TempTree(path), FsContext::new(vfs))
}

fn open(
    ctx: &FsContext,
    path: &str,
    flags: i32,
) -> crate::Result<Arc<dyn crate::vfs::FileDescription>> {
    let how = OpenHow {
        flags: flags as u32,
        mode: 0o644,
        ..OpenHow::default()
    };
    ctx.open(&ctx.cwd, path.as_bytes(), &how, &Creds::root())
}

fn open_err(ctx: &FsContext, path: &str, flags: i32) -> Errno {
    match open(ctx, path, flags) {
        Ok(_) => panic!("{path}: expected an error"),
        Err(e) => e.errno,
    }
}

#[test]
fn gofer_root_read_only() {
    let (_tree, ctx) = served_tree();
    let f = open(&ctx, "/link", libc::O_RDONLY).unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(f.read(&mut buf, None).unwrap(), 8);
    assert_eq!(&buf[..8], b"sandbox\n");
    assert_eq!(f.read(&mut buf, None).unwrap(), 0);
    assert_eq!(f.read(&mut buf[..3], Some(1)).unwrap(), 3);
    assert_eq!(&buf[..3], b"and");
    let st = f.stat().unwrap();
    assert!(st.is_reg());
    assert_eq!(st.size, 8);
    let mut m = [0u8; 4];
    assert_eq!(f.mappable().unwrap().read_at(&mut m, 4).unwrap(), 4);
    assert_eq!(&m, b"box\n");
    assert_eq!(ctx.readlink(&ctx.cwd, b"/abs_etc").unwrap(), b"/etc");
    let p = ctx
        .lookup(&ctx.cwd, b"/abs_etc/../etc/hostname", true)
        .unwrap();
    assert_eq!(p.path_from(&ctx.root), b"/etc/hostname");
    // Every change is EROFS; lookups still say ENOENT/EEXIST first where Linux does.
    assert_eq!(
        open_err(&ctx, "/etc/hostname", libc::O_WRONLY),
        Errno::EROFS
    );
    assert_eq!(
        open_err(&ctx, "/new", libc::O_CREAT | libc::O_WRONLY),
        Errno::EROFS
    );
    assert_eq!(
        ctx.mkdir(&ctx.cwd, b"/x", 0o755, &Creds::root())
            .unwrap_err()
            .errno,
        Errno::EROFS
    );
    assert_eq!(
        ctx.mkdir(&ctx.cwd, b"/etc", 0o755, &Creds::root())
            .unwrap_err()
            .errno,
        Errno::EEXIST
    );
    assert_eq!(
        ctx.unlink(&ctx.cwd, b"/link", &Creds::root())
            .unwrap_err()
            .errno,
        Errno::EROFS
    );
    assert_eq!(open_err(&ctx, "/missing", libc::O_RDONLY), Errno::ENOENT);
    assert_eq!(
        open_err(&ctx, "/etc/hostname/x", libc::O_RDONLY),
        Errno::ENOTDIR
    );
    // The directory listing, and the tmpfs mounted on /tmp is writable.
    let d = open(&ctx, "/", libc::O_RDONLY | libc::O_DIRECTORY).unwrap();
    let mut sink = DirentSink::new(4096, DirentFormat::Dirent64);
    d.getdents(&mut sink).unwrap();
    let text = String::from_utf8_lossy(sink.bytes()).into_owned();
    for n in ["etc", "tmp", "dev", "link", "abs_etc"] {
        assert!(text.contains(n), "{n} missing from the listing");
    }
    let t = open(&ctx, "/tmp/scratch", libc::O_CREAT | libc::O_RDWR).unwrap();
    assert_eq!(t.write(b"ok", None).unwrap(), 2);
    assert!(open(&ctx, "/dev/null", libc::O_WRONLY).is_ok());
    let s = ctx.root.inode().statfs().unwrap();
    assert_eq!(s.flags & libc::ST_RDONLY as i64, libc::ST_RDONLY as i64);
}

fn host_read(tree: &TempTree, rel: &str) -> std::io::Result<Vec<u8>> {
    std::fs::read(tree.0.join(rel))
}

#[test]
fn gofer_read_write_changes_the_served_tree() {
    use std::os::unix::fs::MetadataExt;
    let (tree, ctx) = served(false, RootOverlay::None, "rw");
    let c = Creds::root();
    // Create, write, append, read back; the host sees it.
    let f = open(&ctx, "/etc/new", libc::O_CREAT | libc::O_RDWR).unwrap();
    assert_eq!(f.write(b"hello", None).unwrap(), 5);
    let a = open(&ctx, "/etc/new", libc::O_WRONLY | libc::O_APPEND).unwrap();
    assert_eq!(a.write(b"!", None).unwrap(), 1);
    assert_eq!(host_read(&tree, "etc/new").unwrap(), b"hello!");
    assert_eq!(f.stat().unwrap().size, 6);
    let mut buf = [0u8; 8];
    assert_eq!(f.read(&mut buf, Some(0)).unwrap(), 6);
    // O_TRUNC and ftruncate.
    open(&ctx, "/etc/hostname", libc::O_WRONLY | libc::O_TRUNC).unwrap();
    assert_eq!(host_read(&tree, "etc/hostname").unwrap(), b"");
    f.truncate(2).unwrap();
    assert_eq!(host_read(&tree, "etc/new").unwrap(), b"he");
    // mkdir, symlink, link, rename, unlink, rmdir.
    ctx.mkdir(&ctx.cwd, b"/d", 0o750, &c).unwrap();
    assert!(tree.0.join("d").is_dir());
    ctx.symlink(b"etc/new", &ctx.cwd, b"/d/s", &c).unwrap();
    assert_eq!(
        std::fs::read_link(tree.0.join("d/s")).unwrap(),
        PathBuf::from("etc/new")
    );
    let old = ctx.lookup(&ctx.cwd, b"/etc/new", true).unwrap();
    ctx.link(&old, &ctx.cwd, b"/d/hard", &c).unwrap();
    assert_eq!(
        std::fs::metadata(tree.0.join("etc/new")).unwrap().nlink(),
        2
    );
    assert_eq!(old.inode().stat().unwrap().nlink, 2);
    ctx.rename(
        &ctx.cwd,
        b"/d/hard",
        &ctx.cwd,
        b"/moved",
        0,
        &crate::vfs::Creds::root(),
    )
    .unwrap();
    assert_eq!(host_read(&tree, "moved").unwrap(), b"he");
    assert_eq!(read_via(&ctx, "/moved"), b"he");
    ctx.unlink(&ctx.cwd, b"/moved", &c).unwrap();
    ctx.unlink(&ctx.cwd, b"/d/s", &c).unwrap();
    assert!(!tree.0.join("moved").exists());
    ctx.rmdir(&ctx.cwd, b"/d", &c).unwrap();
    assert!(!tree.0.join("d").exists());
    // Attributes: mode, owner, times.
    let p = ctx.lookup(&ctx.cwd, b"/etc/new", true).unwrap();
    p.inode().set_mode(0o600).unwrap();
    p.inode().set_owner(Some(1234), Some(5678), None).unwrap();
    let t = crate::vfs::Timespec { sec: 1000, nsec: 5 };
    p.inode().set_times(Some(t), Some(t)).unwrap();
    let m = std::fs::metadata(tree.0.join("etc/new")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o600);
    assert_eq!((m.uid(), m.gid()), (1234, 5678));
    assert_eq!((m.mtime(), m.mtime_nsec()), (1000, 5));
    let st = p.inode().stat().unwrap();
    assert_eq!((st.uid, st.mtime), (1234, t));
    p.inode().fsync(false).unwrap();
    let s = ctx.root.inode().statfs().unwrap();
    assert_eq!(s.flags & libc::ST_RDONLY as i64, 0);
}

fn read_via(ctx: &FsContext, path: &str) -> Vec<u8> {
    let f = open(ctx, path, libc::O_RDONLY).unwrap();
    let mut buf = vec![0u8; 64];
    let n = f.read(&mut buf, Some(0)).unwrap();
    buf.truncate(n);
    buf
}

#[test]
fn overlay_over_a_real_gofer_leaves_the_tree_alone() {
    let (tree, ctx) = served(true, RootOverlay::Memory, "ov");
    let c = Creds::root();
    let f = open(&ctx, "/etc/probe", libc::O_CREAT | libc::O_WRONLY).unwrap();
    f.write(b"hi\n", None).unwrap();
    assert_eq!(read_via(&ctx, "/etc/probe"), b"hi\n");
    assert!(!tree.0.join("etc/probe").exists());
    let w = open(&ctx, "/etc/hostname", libc::O_WRONLY | libc::O_APPEND).unwrap();
    w.write(b"more\n", None).unwrap();
    assert_eq!(read_via(&ctx, "/etc/hostname"), b"sandbox\nmore\n");
    assert_eq!(host_read(&tree, "etc/hostname").unwrap(), b"sandbox\n");
    ctx.unlink(&ctx.cwd, b"/link", &c).unwrap();
    assert_eq!(open_err(&ctx, "/link", libc::O_RDONLY), Errno::ENOENT);
    assert!(tree.0.join("link").symlink_metadata().is_ok());
    let s = ctx.root.inode().statfs().unwrap();
    assert_eq!(s.flags & libc::ST_RDONLY as i64, 0);
}

/// A second, writable gofer on the same host tree: sets (`Some`) or reads an attribute of
/// `rel` on the host without the sandbox's VFS in between.
fn host_xattr(tree: &TempTree, rel: &[&[u8]], name: &[u8], set: Option<&[u8]>) -> Option<Vec<u8>> {
    let root = nix::fcntl::open(
        &tree.0,
        nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_RDONLY,
        nix::sys::stat::Mode::empty(),
    )
    .unwrap();
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .unwrap();
    let server = std::thread::spawn(move || serve(root, a, ServeOptions { read_only: false }));
    let client = Client::new(b);
    let (r, _) = client.attach().unwrap();
    let (h, _) = *client.walk(r, rel).unwrap().last().unwrap();
    let out = match set {
        Some(v) => {
            client.setxattr(h, name, v, 0).unwrap();
            Some(v.to_vec())
        }
        None => client.getxattr(h, name).ok(),
    };
    drop(client);
    server.join().unwrap().unwrap();
    out
}

#[test]
fn gofer_read_write_special_files_xattrs_and_exchange() {
    use std::os::unix::fs::FileTypeExt;
    let (tree, ctx) = served(false, RootOverlay::None, "rw2");
    let c = Creds::root();
    // FIFOs and sockets are made on the host; device nodes never are.
    ctx.mknod(&ctx.cwd, b"/fifo", libc::S_IFIFO | 0o640, 0, &c, true)
        .unwrap();
    assert!(std::fs::symlink_metadata(tree.0.join("fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    ctx.mknod(&ctx.cwd, b"/sock", libc::S_IFSOCK | 0o600, 0, &c, true)
        .unwrap();
    assert!(std::fs::symlink_metadata(tree.0.join("sock"))
        .unwrap()
        .file_type()
        .is_socket());
    let dev = ctx.mknod(
        &ctx.cwd,
        b"/null",
        libc::S_IFCHR | 0o666,
        libc::makedev(1, 3),
        &c,
        true,
    );
    assert_eq!(dev.unwrap_err().errno, Errno::EPERM);
    assert!(!tree.0.join("null").exists());
    // A FIFO opens as a sentry pipe (the VFS gets ENXIO and the syscall layer takes over).
    assert_eq!(open_err(&ctx, "/fifo", libc::O_RDONLY), Errno::ENXIO);

    // xattrs land on the host file.
    let p = ctx.lookup(&ctx.cwd, b"/etc/hostname", true).unwrap();
    p.inode().setxattr(b"user.k", b"v1", 0).unwrap();
    assert_eq!(p.inode().getxattr(b"user.k").unwrap(), b"v1");
    assert_eq!(p.inode().listxattr().unwrap(), vec![b"user.k".to_vec()]);
    p.inode().removexattr(b"user.k").unwrap();
    assert_eq!(
        p.inode().getxattr(b"user.k").unwrap_err().errno,
        Errno::ENODATA
    );
    assert_eq!(
        p.inode()
            .setxattr(b"security.capability", b"x", 0)
            .unwrap_err()
            .errno,
        Errno::EPERM
    );

    // fallocate and fsync of a directory.
    p.inode().fallocate(0, 0, 8192).unwrap();
    assert_eq!(p.inode().stat().unwrap().size, 8192);
    ctx.root.inode().fsync(false).unwrap();

    // renameat2: NOREPLACE and EXCHANGE through the gofer.
    std::fs::write(tree.0.join("a"), b"A").unwrap();
    std::fs::write(tree.0.join("b"), b"B").unwrap();
    let err = ctx
        .rename(
            &ctx.cwd,
            b"/a",
            &ctx.cwd,
            b"/b",
            1,
            &crate::vfs::Creds::root(),
        )
        .unwrap_err();
    assert_eq!(err.errno, Errno::EEXIST);
    ctx.rename(
        &ctx.cwd,
        b"/a",
        &ctx.cwd,
        b"/b",
        2,
        &crate::vfs::Creds::root(),
    )
    .unwrap();
    assert_eq!(host_read(&tree, "a").unwrap(), b"B");
    assert_eq!(host_read(&tree, "b").unwrap(), b"A");
    assert_eq!(read_via(&ctx, "/a"), b"B");
    assert_eq!(read_via(&ctx, "/b"), b"A");
}

#[test]
fn overlay_copy_up_carries_xattrs_from_the_gofer() {
    let (tree, ctx) = served(true, RootOverlay::Memory, "ovx");
    let rel: &[&[u8]] = &[b"etc", b"hostname"];
    host_xattr(&tree, rel, b"user.origin", Some(b"image"));
    let p = ctx.lookup(&ctx.cwd, b"/etc/hostname", true).unwrap();
    assert_eq!(p.inode().getxattr(b"user.origin").unwrap(), b"image");
    // A change copies the file up; the attribute comes along and the host keeps its own.
    p.inode().setxattr(b"user.added", b"sandbox", 0).unwrap();
    let mut names = p.inode().listxattr().unwrap();
    names.sort();
    assert_eq!(names, vec![b"user.added".to_vec(), b"user.origin".to_vec()]);
    assert_eq!(p.inode().getxattr(b"user.origin").unwrap(), b"image");
    p.inode().removexattr(b"user.origin").unwrap();
    assert_eq!(
        host_xattr(&tree, rel, b"user.origin", None).as_deref(),
        Some(&b"image"[..]),
        "the host file keeps its attribute"
    );
    assert_eq!(host_xattr(&tree, rel, b"user.added", None), None);
    // Data copy-up with an attribute set on the lower file.
    let w = open(&ctx, "/etc/hostname", libc::O_WRONLY | libc::O_APPEND).unwrap();
    w.write(b"x", None).unwrap();
    assert_eq!(host_read(&tree, "etc/hostname").unwrap(), b"sandbox\n");
}

#[test]
fn inotify_sees_changes_on_a_gofer_tree() {
    use crate::fs::inotify::Inotify;
    use crate::vfs::notify::{IN_ALL_EVENTS, IN_CREATE, IN_ISDIR, IN_MOVED_FROM, IN_MOVED_TO};
    use crate::vfs::FileDescription;
    let (_tree, ctx) = served(false, RootOverlay::None, "ino");
    let c = Creds::root();
    let ino = Inotify::new(true);
    let etc = ctx.lookup(&ctx.cwd, b"/etc", true).unwrap();
    let wd = ino.add_watch(etc.inode().clone(), IN_ALL_EVENTS).unwrap();
    ctx.mkdir(&ctx.cwd, b"/etc/d", 0o755, &c).unwrap();
    ctx.rename(
        &ctx.cwd,
        b"/etc/hostname",
        &ctx.cwd,
        b"/etc/h2",
        0,
        &crate::vfs::Creds::root(),
    )
    .unwrap();
    let mut buf = [0u8; 256];
    let n = ino.read(&mut buf, None).unwrap();
    let field = |at: usize| u32::from_ne_bytes(buf[at..at + 4].try_into().unwrap());
    assert_eq!(n, 3 * 32);
    assert_eq!((field(0) as i32, field(4)), (wd, IN_CREATE | IN_ISDIR));
    assert_eq!(&buf[16..18], b"d\0");
    assert_eq!(field(36), IN_MOVED_FROM);
    assert_eq!(field(68), IN_MOVED_TO);
    assert_eq!(field(40), field(72), "one cookie for both names");
    assert_eq!(&buf[80..83], b"h2\0");
}

#[test]
fn a_read_only_tree_remembers_names_it_lacks() {
    for (read_only, tag) in [(true, "neg-ro"), (false, "neg-rw")] {
        let (tree, ctx) = served(read_only, RootOverlay::None, tag);
        assert_eq!(open_err(&ctx, "/etc/later", libc::O_RDONLY), Errno::ENOENT);
        // The name appears on the host afterwards. A read-only tree is taken not to
        // change (as its attributes are), so it stays missing; a read-write one asks.
        std::fs::write(tree.0.join("etc/later"), b"x").unwrap();
        let again = open(&ctx, "/etc/later", libc::O_RDONLY).map_err(|e| e.errno);
        assert_eq!(again.is_ok(), !read_only, "{tag}");
        if read_only {
            assert_eq!(again.err(), Some(Errno::ENOENT));
        }
        // Other names of the directory are unaffected.
        assert_eq!(read_via(&ctx, "/etc/hostname"), b"sandbox\n");
    }
}
