use super::*;
use crate::error::Errno;

fn err<T>(r: Result<T>) -> Errno {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.errno,
    }
}

#[test]
fn create_link_unlink_counts() {
    let root = Tmpfs::new_root(&Arc::new(crate::mm::MemoryFile::new().unwrap()), 0o755);
    let c = Creds::root();
    let f = root.create(b"f", 0o644, &c).unwrap();
    assert_eq!(err(root.create(b"f", 0o644, &c)), Errno::EEXIST);
    root.link(b"g", &f).unwrap();
    assert_eq!(f.stat().unwrap().nlink, 2);
    root.unlink(b"f").unwrap();
    assert_eq!(f.stat().unwrap().nlink, 1);
    assert_eq!(err(root.unlink(b"f")), Errno::ENOENT);
    let d = root.mkdir(b"d", 0o755, &c).unwrap();
    assert_eq!(root.stat().unwrap().nlink, 3);
    assert_eq!(d.stat().unwrap().mode, libc::S_IFDIR | 0o755);
    assert_eq!(err(root.unlink(b"d")), Errno::EISDIR);
    assert_eq!(err(root.link(b"d2", &d)), Errno::EPERM);
    d.create(b"x", 0o600, &c).unwrap();
    assert_eq!(err(root.rmdir(b"d")), Errno::ENOTEMPTY);
    d.unlink(b"x").unwrap();
    root.rmdir(b"d").unwrap();
    assert_eq!(root.stat().unwrap().nlink, 2);
    assert_eq!(err(d.create(b"y", 0o600, &c)), Errno::ENOENT);
    let names: Vec<_> = root
        .readdir()
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, [b"g".to_vec()]);
}

#[test]
fn rename_moves_and_counts() {
    let root = Tmpfs::new_root(&Arc::new(crate::mm::MemoryFile::new().unwrap()), 0o755);
    let c = Creds::root();
    let a = root.mkdir(b"a", 0o755, &c).unwrap();
    let b = root.mkdir(b"b", 0o755, &c).unwrap();
    a.mkdir(b"sub", 0o755, &c).unwrap();
    let b_dyn: Arc<dyn Inode> = b.clone();
    a.rename(b"sub", &b_dyn, b"sub2", 0).unwrap();
    assert_eq!(a.stat().unwrap().nlink, 2);
    assert_eq!(b.stat().unwrap().nlink, 3);
    assert!(b.lookup(b"sub2").is_ok());
    // Same directory, exchange.
    root.create(b"f", 0o644, &c).unwrap();
    let root_dyn: Arc<dyn Inode> = root.clone();
    root.rename(b"f", &root_dyn, b"a", 2).unwrap();
    assert!(root.lookup(b"a").unwrap().stat().unwrap().is_reg());
    assert!(root.lookup(b"f").unwrap().is_dir());
    assert_eq!(err(root.rename(b"nope", &root_dyn, b"x", 0)), Errno::ENOENT);
}

#[test]
fn file_data_limits() {
    let root = Tmpfs::new_root(&Arc::new(crate::mm::MemoryFile::new().unwrap()), 0o755);
    let f = root.create(b"f", 0o644, &Creds::root()).unwrap();
    let f = f.as_any_arc().downcast::<TmpfsInode>().unwrap();
    assert_eq!(f.write_data(b"abc", Some(5)).unwrap(), (3, 8));
    let mut b = [9u8; 10];
    assert_eq!(f.read_data(&mut b, 0).unwrap(), 8);
    assert_eq!(&b[..8], b"\0\0\0\0\0abc");
    assert_eq!(f.read_data(&mut b, 100).unwrap(), 0);
    assert_eq!(f.read_data(&mut b, u64::MAX).unwrap(), 0);
    assert_eq!(err(f.write_data(b"x", Some(MAX_FILE_SIZE))), Errno::EFBIG);
    assert_eq!(err(f.write_data(b"x", Some(u64::MAX))), Errno::EFBIG);
    assert_eq!(err(f.truncate(u64::MAX)), Errno::EFBIG);
    f.truncate(2).unwrap();
    assert_eq!(f.stat().unwrap().size, 2);
    assert_eq!(f.fs.used.load(Ordering::Relaxed), 2);
}

#[test]
fn file_data_is_the_page_cache() {
    let mf = Arc::new(crate::mm::MemoryFile::new().unwrap());
    let root = Tmpfs::new_root(&mf, 0o755);
    let f = root.create(b"f", 0o644, &Creds::root()).unwrap();
    let f = f.as_any_arc().downcast::<TmpfsInode>().unwrap();
    f.write_at(b"hello", 0).unwrap();
    let cache = f.page_cache().unwrap();
    // A mapping's frame and the file are the same bytes.
    let frame = cache.frame_for(0).unwrap();
    mf.write(frame, b"J").unwrap();
    let mut b = [0u8; 5];
    f.read_data(&mut b, 0).unwrap();
    assert_eq!(&b, b"Jello");
    // Space is accounted by size, and the limit holds for growth through the cache.
    assert_eq!(f.fs.used.load(Ordering::Relaxed), 5);
    assert_eq!(f.fs.size_limit, 2 * MAX_FILE_SIZE);
    let g = root.create(b"g", 0o644, &Creds::root()).unwrap();
    g.truncate(MAX_FILE_SIZE).unwrap();
    let h = root.create(b"h", 0o644, &Creds::root()).unwrap();
    let h = h.as_any_arc().downcast::<TmpfsInode>().unwrap();
    assert_eq!(err(h.truncate(MAX_FILE_SIZE)), Errno::ENOSPC);
    assert_eq!(err(h.write_at(b"x", MAX_FILE_SIZE - 1)), Errno::ENOSPC);
    assert_eq!(f.fs.used.load(Ordering::Relaxed), MAX_FILE_SIZE + 5);
    assert_eq!(h.stat().unwrap().size, 0);
    root.unlink(b"g").unwrap();
    root.unlink(b"h").unwrap();
    drop((g, h));
    // Punching a hole zeroes what is mapped too.
    f.fallocate(
        crate::vfs::FALLOC_FL_KEEP_SIZE | crate::vfs::FALLOC_FL_PUNCH_HOLE,
        1,
        2,
    )
    .unwrap();
    mf.read(frame, &mut b).unwrap();
    assert_eq!(&b, b"J\0\0lo");
    mf.dec_ref(frame);
    // Unlinked and dropped, the file gives its space back.
    root.unlink(b"f").unwrap();
    let fs = f.fs.clone();
    drop((f, cache));
    assert_eq!(fs.used.load(Ordering::Relaxed), 0);
}
