use super::*;

fn sandbox_fs() -> FsContext {
    let mf = Arc::new(crate::mm::MemoryFile::new().unwrap());
    let root = crate::fs::tmpfs::Tmpfs::new_root(&mf, 0o755);
    let vfs = crate::fs::new_vfs_with_root("tmpfs", root, false, &mf).unwrap();
    FsContext::new(vfs)
}

/// Read from `fd` until `want` bytes came (or 5 s passed without them).
fn read_host(fd: BorrowedFd<'_>, want: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.len() < want && Instant::now() < deadline {
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        if nix::poll::poll(&mut fds, PollTimeout::from(100u16)).unwrap_or(0) == 0 {
            continue;
        }
        let mut buf = [0u8; 256];
        match nix::unistd::read(fd, &mut buf) {
            Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    got
}

/// Read from a sandbox description until it gives something (or 5 s pass).
fn read_slave(f: &dyn FileDescription) -> crate::error::Result<Vec<u8>> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 256];
    loop {
        match f.read(&mut buf, None) {
            Ok(n) => return Ok(buf[..n].to_vec()),
            Err(e) if e.errno == Errno::EAGAIN && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    }
}

fn set_winsize(fd: BorrowedFd<'_>, rows: u16, cols: u16) {
    let mut buf = [0u8; 8];
    buf[..2].copy_from_slice(&rows.to_ne_bytes());
    buf[2..4].copy_from_slice(&cols.to_ne_bytes());
    tty_ioctl(fd, TtyIoctl::Tiocswinsz, &mut buf).unwrap();
}

#[test]
fn a_host_pty_drives_the_sandbox_console() {
    let ctx = sandbox_fs();
    let host = nix::pty::openpty(None, None).unwrap();
    set_winsize(host.master.as_fd(), 40, 120);
    let host_master = host.master;
    let bridge = ConsoleBridge::new(&ctx, host.slave, 1000, 1000).unwrap();
    assert_eq!(bridge.index(), 0);
    assert_eq!(bridge.pty.lock().winsize, [40, 120, 0, 0]);
    let slave = bridge.slave();
    assert!(slave.tty().is_some());
    assert_eq!(slave.stat().unwrap().uid, 1000);
    assert_eq!(slave.path_name(), "/dev/pts/0");

    // Typed on the host: the sandbox's line discipline edits it and echoes it; the host
    // side is raw, so the echo comes back exactly as the sandbox made it.
    nix::unistd::write(&host_master, b"hellp\x7fo\r").unwrap();
    assert_eq!(read_slave(&*slave).unwrap(), b"hello\n");
    assert_eq!(
        read_host(host_master.as_fd(), 11),
        b"hellp\x08 \x08o\r\n".to_vec()
    );
    // Written in the sandbox: ONLCR is the sandbox's.
    assert_eq!(slave.write(b"out\n", None).unwrap(), 4);
    assert_eq!(read_host(host_master.as_fd(), 5), b"out\r\n".to_vec());

    // A resize of the host terminal reaches the pty.
    set_winsize(host_master.as_fd(), 50, 132);
    let deadline = Instant::now() + Duration::from_secs(5);
    while bridge.pty.lock().winsize != [50, 132, 0, 0] && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(bridge.pty.lock().winsize, [50, 132, 0, 0]);

    // The host side goes away: the sandbox's terminal hangs up.
    drop(host_master);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !bridge.pty.lock().hung_up() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(read_slave(&*slave).unwrap(), b"");
    assert_eq!(slave.write(b"x", None).unwrap_err().errno, Errno::EIO);
    bridge.finish();
}

#[test]
fn the_console_must_be_a_terminal() {
    let ctx = sandbox_fs();
    let (r, _w) = nix::unistd::pipe().unwrap();
    let e = ConsoleBridge::new(&ctx, r, 0, 0).err().map(|e| e.errno);
    assert_eq!(e, Some(Errno::ENOTTY));
}
