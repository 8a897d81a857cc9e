use super::*;
use crate::error::Errno;
use crate::kernel::wait::events;
use crate::vfs::OpenHow;

/// A sandbox tree whose /etc/group has `group_file`.
fn sandbox_fs_with(group_file: &[u8]) -> FsContext {
    let mf = Arc::new(crate::mm::MemoryFile::new().unwrap());
    let root = crate::fs::tmpfs::Tmpfs::new_root(&mf, 0o755);
    let vfs = crate::fs::new_vfs_with_root("tmpfs", root, false, &mf).unwrap();
    let ctx = FsContext::new(vfs);
    ctx.mkdir(&ctx.root, b"/etc", 0o755, &Creds::root())
        .unwrap();
    let how = OpenHow {
        flags: (libc::O_WRONLY | libc::O_CREAT) as u32,
        mode: 0o644,
        ..OpenHow::default()
    };
    let f = ctx
        .open(&ctx.root, b"/etc/group", &how, &Creds::root())
        .unwrap();
    assert_eq!(f.write(group_file, None).unwrap(), group_file.len());
    ctx
}

fn sandbox_fs() -> FsContext {
    sandbox_fs_with(b"root:x:0:\nttyx:x:9:\ntty:x:7:\n")
}

fn open_master(ctx: &FsContext, path: &str, uid: u32) -> MasterFile {
    let p = ctx.lookup(&ctx.root, path.as_bytes(), true).unwrap();
    MasterFile {
        pty: new_pty_at(ctx, &p, uid, 1234).unwrap(),
        flags: StatusFlags::new(libc::O_RDWR as u32),
        path: p,
    }
}

fn open_path(ctx: &FsContext, path: &str) -> Result<Arc<dyn FileDescription>> {
    let how = OpenHow {
        flags: (libc::O_RDWR | libc::O_NOCTTY) as u32,
        ..OpenHow::default()
    };
    ctx.open(&ctx.root, path.as_bytes(), &how, &Creds::root())
}

#[test]
fn ptmx_nodes_and_slave_nodes() {
    let ctx = sandbox_fs();
    // Both ptmx nodes reach the devpts mounted on /dev/pts.
    let a = ctx.lookup(&ctx.root, b"/dev/ptmx", true).unwrap();
    let b = ctx.lookup(&ctx.root, b"/dev/pts/ptmx", true).unwrap();
    let (fa, fb) = (
        devpts_for_ptmx(&ctx, &a).map(|f| f.0),
        devpts_for_ptmx(&ctx, &b).map(|f| f.0),
    );
    assert!(fa.is_some() && Arc::ptr_eq(&fa.unwrap(), &fb.unwrap()));
    let st = b.inode().stat().unwrap();
    assert_eq!(st.mode, libc::S_IFCHR | 0o666);
    assert_eq!((major(st.rdev), minor(st.rdev)), (5, 2));
    // Opening them is the syscall layer's job (it has the caller).
    assert_eq!(
        open_path(&ctx, "/dev/ptmx").err().map(|e| e.errno),
        Some(Errno::ENXIO)
    );

    let m = open_master(&ctx, "/dev/ptmx", 1000);
    assert_eq!(m.pty.index(), 0);
    let st = ctx
        .lookup(&ctx.root, b"/dev/pts/0", true)
        .unwrap()
        .inode()
        .stat()
        .unwrap();
    assert_eq!(st.mode, libc::S_IFCHR | 0o620);
    // Group tty from the sandbox's /etc/group.
    assert_eq!((st.uid, st.gid), (1000, 7));
    assert_eq!((major(st.rdev), minor(st.rdev)), (136, 0));
    // Locked until TIOCSPTLCK 0.
    assert_eq!(
        open_path(&ctx, "/dev/pts/0").err().map(|e| e.errno),
        Some(Errno::EIO)
    );
    m.pty.lock().locked = false;
    let s = open_path(&ctx, "/dev/pts/0").unwrap();
    assert_eq!(s.stat().unwrap().ino, st.ino);
    assert!(s.tty().is_some());
    // Typed at the master, read at the slave; the echo comes back.
    assert_eq!(
        s.read(&mut [0u8; 8], None).unwrap_err().errno,
        Errno::EAGAIN
    );
    assert_eq!(m.write(b"hi\n", None).unwrap(), 3);
    assert_ne!(s.readiness() & events::IN, 0);
    let mut buf = [0u8; 8];
    assert_eq!(s.read(&mut buf, None).unwrap(), 3);
    assert_eq!(m.read(&mut buf, None).unwrap(), 4);
    assert_eq!(&buf[..4], b"hi\r\n");
    assert_eq!(m.readiness() & events::IN, 0);

    let names: Vec<_> = ctx
        .lookup(&ctx.root, b"/dev/pts", true)
        .unwrap()
        .inode()
        .readdir()
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, vec![b"ptmx".to_vec(), b"0".to_vec()]);

    // The master closes: the node goes (the cached dentry no longer stats), the slave is
    // hung up, and index 0 stays taken while the slave is open.
    drop(m);
    let stale = ctx.lookup(&ctx.root, b"/dev/pts/0", true).unwrap();
    assert_eq!(
        stale.inode().stat().err().map(|e| e.errno),
        Some(Errno::ENOENT)
    );
    assert_eq!(
        open_path(&ctx, "/dev/pts/0").err().map(|e| e.errno),
        Some(Errno::ENOENT)
    );
    assert_eq!(s.read(&mut buf, None).unwrap(), 0);
    assert_eq!(s.write(b"x", None).unwrap_err().errno, Errno::EIO);
    assert_ne!(s.readiness() & events::HUP, 0);
    assert!(s.tty().is_none());
    let m2 = open_master(&ctx, "/dev/pts/ptmx", 0);
    assert_eq!(m2.pty.index(), 1);
    drop(s);
    let m3 = open_master(&ctx, "/dev/ptmx", 0);
    assert_eq!(m3.pty.index(), 0, "a free index is used again");
    let st = ctx
        .lookup(&ctx.root, b"/dev/pts/0", true)
        .unwrap()
        .inode()
        .stat()
        .unwrap();
    assert_eq!(st.uid, 0, "the node shows the new pty");
    assert!(parse_index(b"01").is_none());
    assert!(parse_index(b"x").is_none());
}

#[test]
fn without_a_tty_group_slaves_get_the_openers_group() {
    let ctx = sandbox_fs_with(b"root:x:0:\n");
    let m = open_master(&ctx, "/dev/ptmx", 1000);
    assert_eq!(m.pty.stat().gid, 1234);
}

#[test]
fn master_sees_eio_and_hup_once_slaves_close() {
    let ctx = sandbox_fs();
    let m = open_master(&ctx, "/dev/ptmx", 0);
    // Never opened: the master just waits.
    assert_eq!(
        m.read(&mut [0u8; 4], None).unwrap_err().errno,
        Errno::EAGAIN
    );
    assert_eq!(m.readiness() & events::HUP, 0);
    m.pty.lock().locked = false;
    let s = open_path(&ctx, "/dev/pts/0").unwrap();
    assert_eq!(s.write(b"bye", None).unwrap(), 3);
    drop(s);
    let mut buf = [0u8; 8];
    // What the slave wrote is still there, then EIO.
    assert_eq!(m.read(&mut buf, None).unwrap(), 3);
    assert_eq!(m.read(&mut buf, None).unwrap_err().errno, Errno::EIO);
    assert_ne!(m.readiness() & events::HUP, 0);
}
