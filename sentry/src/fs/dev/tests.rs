use super::*;
use crate::error::Errno;
use crate::vfs::{FsContext, OpenHow};

fn open(ctx: &FsContext, path: &str, flags: i32) -> Arc<dyn FileDescription> {
    let how = OpenHow {
        flags: flags as u32,
        ..OpenHow::default()
    };
    ctx.open(&ctx.cwd, path.as_bytes(), &how, &Creds::root())
        .unwrap()
}

#[test]
fn memory_devices() {
    let mf = std::sync::Arc::new(crate::mm::MemoryFile::new().unwrap());
    let root = crate::fs::tmpfs::Tmpfs::new_root(&mf, 0o755);
    let vfs = crate::fs::new_vfs_with_root("tmpfs", root, false, &mf).unwrap();
    let ctx = FsContext::new(vfs);
    let mut buf = [7u8; 64];
    let null = open(&ctx, "/dev/null", libc::O_RDWR);
    assert_eq!(null.read(&mut buf, None).unwrap(), 0);
    assert_eq!(null.write(&buf, None).unwrap(), 64);
    let st = null.stat().unwrap();
    assert_eq!(st.mode, libc::S_IFCHR | 0o666);
    assert_eq!((major(st.rdev), minor(st.rdev)), (1, 3));
    let zero = open(&ctx, "/dev/zero", libc::O_RDONLY);
    assert_eq!(zero.read(&mut buf, None).unwrap(), 64);
    assert!(buf.iter().all(|&b| b == 0));
    let full = open(&ctx, "/dev/full", libc::O_WRONLY);
    assert_eq!(full.write(b"x", None).unwrap_err().errno, Errno::ENOSPC);
    let urandom = open(&ctx, "/dev/urandom", libc::O_RDONLY);
    let mut r = [0u8; 256];
    assert_eq!(urandom.read(&mut r, None).unwrap(), 256);
    assert!(r.iter().any(|&b| b != 0));
    assert_eq!(urandom.seek(10, libc::SEEK_SET).unwrap(), 0);
    // /dev/shm is its own tmpfs.
    let shm = ctx.lookup(&ctx.cwd, b"/dev/shm", true).unwrap();
    assert!(shm.is_mount_root());
    assert_eq!(
        makedev(major(makedev(300, 70000)), minor(makedev(300, 70000))),
        makedev(300, 70000)
    );
}
