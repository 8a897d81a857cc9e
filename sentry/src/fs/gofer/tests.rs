//! The gofer filesystem over a real gofer server on a temporary directory.

use crate::error::Errno;
use crate::fs::build_root;
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
    let path = std::env::temp_dir().join(format!("sentry-gofer-{}", std::process::id()));
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
    std::thread::spawn(move || serve(root, a, ServeOptions { read_only: true }));
    let vfs = build_root(Arc::new(Client::new(b))).unwrap();
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
