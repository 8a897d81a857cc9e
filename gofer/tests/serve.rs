//! End-to-end tests: a real tree, `serve` on a thread, the client on the other end.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use gofer::client::{Attr, Client, Errno, SetAttr};
use gofer::protocol::{
    self, Request, Response, HEADER_LEN, MAX_WALK_NAMES, SETATTR_MODE, SETATTR_MTIME, SETATTR_SIZE,
};
use gofer::{serve, ServeOptions};
use nix::fcntl::OFlag;
use nix::sys::socket::{socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use nix::sys::stat::Mode;

fn errno(e: i32) -> Errno {
    Errno(e)
}

/// A scratch tree removed on drop.
struct Tree {
    path: PathBuf,
}

impl Tree {
    fn new() -> Tree {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("gofer-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(path.join("dir/sub")).unwrap();
        std::fs::write(path.join("file.txt"), b"hello gofer").unwrap();
        std::fs::write(path.join("dir/inner.txt"), b"inner").unwrap();
        std::fs::write(path.join("dir/sub/deep.txt"), b"deep").unwrap();
        symlink("/etc/passwd", path.join("passwd_link")).unwrap();
        symlink("../../x", path.join("escape")).unwrap();
        symlink("/etc", path.join("etc_link")).unwrap();
        symlink("dir", path.join("dir_link")).unwrap();
        nix::unistd::mkfifo(&path.join("fifo"), Mode::from_bits_truncate(0o644)).unwrap();
        Tree { path }
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.path.join(rel)
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn open_root(path: &Path) -> OwnedFd {
    nix::fcntl::open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .unwrap()
}

fn pair() -> (OwnedFd, OwnedFd) {
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .unwrap()
}

/// A running gofer over `tree` and the sentry's end of its socket.
fn start(tree: &Tree, read_only: bool) -> (OwnedFd, JoinHandle<std::io::Result<()>>) {
    let (ours, theirs) = pair();
    let root = open_root(&tree.path);
    let server = std::thread::spawn(move || serve(root, theirs, ServeOptions { read_only }));
    (ours, server)
}

struct Gofer {
    tree: Tree,
    client: Client,
    server: JoinHandle<std::io::Result<()>>,
}

impl Gofer {
    fn new(read_only: bool) -> Gofer {
        let tree = Tree::new();
        let (sock, server) = start(&tree, read_only);
        Gofer {
            tree,
            client: Client::new(sock),
            server,
        }
    }

    /// Hangs up and checks the server ended cleanly.
    fn finish(self) {
        drop(self.client);
        self.server.join().unwrap().unwrap();
    }

    fn walk1(&self, path: &[&str]) -> (u64, Attr) {
        let (root, _) = self.client.attach().unwrap();
        let names: Vec<&[u8]> = path.iter().map(|s| s.as_bytes()).collect();
        let got = self.client.walk(root, &names).unwrap();
        assert_eq!(got.len(), names.len(), "walk {path:?}");
        *got.last().unwrap()
    }
}

fn is_symlink(a: &Attr) -> bool {
    a.mode & libc::S_IFMT == libc::S_IFLNK
}

fn assert_matches_host(attr: &Attr, path: &Path) {
    let md = std::fs::symlink_metadata(path).unwrap();
    assert_eq!(attr.dev, md.dev(), "{path:?}");
    assert_eq!(attr.ino, md.ino(), "{path:?}");
    assert_eq!(attr.mode, md.mode(), "{path:?}");
    assert_eq!(attr.nlink, md.nlink(), "{path:?}");
    assert_eq!(attr.uid, md.uid(), "{path:?}");
    assert_eq!(attr.gid, md.gid(), "{path:?}");
    assert_eq!(attr.rdev, md.rdev(), "{path:?}");
    assert_eq!(attr.size, md.size(), "{path:?}");
    assert_eq!(attr.blocks, md.blocks(), "{path:?}");
    assert_eq!(
        (attr.mtime_sec, attr.mtime_nsec),
        (md.mtime(), md.mtime_nsec()),
        "{path:?}"
    );
    assert_eq!(
        (attr.ctime_sec, attr.ctime_nsec),
        (md.ctime(), md.ctime_nsec()),
        "{path:?}"
    );
}

#[test]
fn attach_and_walk_through_directories() {
    let g = Gofer::new(true);
    let (root, attr) = g.client.attach().unwrap();
    assert_matches_host(&attr, &g.tree.path);
    let got = g.client.walk(root, &[b"dir", b"sub", b"deep.txt"]).unwrap();
    assert_eq!(got.len(), 3);
    assert_matches_host(&got[0].1, &g.tree.p("dir"));
    assert_matches_host(&got[1].1, &g.tree.p("dir/sub"));
    assert_matches_host(&got[2].1, &g.tree.p("dir/sub/deep.txt"));
    // Walking on from a returned directory handle.
    let more = g.client.walk(got[0].0, &[b"inner.txt"]).unwrap();
    assert_matches_host(&more[0].1, &g.tree.p("dir/inner.txt"));
    assert_eq!(g.client.walk(root, &[]).unwrap(), vec![]);
    g.finish();
}

#[test]
fn walk_stops_early_but_fails_only_on_the_first_component() {
    let g = Gofer::new(true);
    let (root, _) = g.client.attach().unwrap();
    assert_eq!(
        g.client.walk(root, &[b"missing", b"x"]),
        Err(errno(libc::ENOENT))
    );
    let got = g.client.walk(root, &[b"dir", b"missing", b"x"]).unwrap();
    assert_eq!(got.len(), 1);
    // The errno of the stopping component is learnt by walking on from the last handle.
    assert_eq!(
        g.client.walk(got[0].0, &[b"missing"]),
        Err(errno(libc::ENOENT))
    );
    // A regular file ends the walk and is included.
    let got = g.client.walk(root, &[b"file.txt", b"x"]).unwrap();
    assert_eq!(got.len(), 1);
    assert_matches_host(&got[0].1, &g.tree.p("file.txt"));
    // Walking from a non-directory handle.
    assert_eq!(g.client.walk(got[0].0, &[b"x"]), Err(errno(libc::ENOTDIR)));
    g.finish();
}

#[test]
fn walk_stops_at_a_symlink_and_never_follows_it() {
    let g = Gofer::new(true);
    let (root, _) = g.client.attach().unwrap();
    for (name, target) in [("passwd_link", "/etc/passwd"), ("escape", "../../x")] {
        let got = g.client.walk(root, &[name.as_bytes(), b"more"]).unwrap();
        assert_eq!(got.len(), 1, "{name}");
        let (h, attr) = got[0];
        assert!(is_symlink(&attr), "{name}");
        assert_matches_host(&attr, &g.tree.p(name));
        assert_eq!(g.client.readlink(h).unwrap(), target.as_bytes());
        assert_matches_host(&g.client.stat(h).unwrap(), &g.tree.p(name));
        // Opening the link itself is refused, never resolved to its target.
        assert_eq!(
            g.client.open(h, libc::O_RDONLY).err(),
            Some(errno(libc::ELOOP))
        );
        assert_eq!(g.client.walk(h, &[b"x"]), Err(errno(libc::ENOTDIR)));
    }
    // readlink of something that is not a link.
    let (file, _) = g.walk1(&["file.txt"]);
    assert_eq!(g.client.readlink(file), Err(errno(libc::EINVAL)));
    g.finish();
}

#[test]
fn walk_never_follows_a_symlinked_directory() {
    let g = Gofer::new(true);
    let (root, _) = g.client.attach().unwrap();
    // etc_link -> /etc would leave the tree; dir_link -> dir would stay in it. Neither is
    // followed: the walk ends at the link.
    for link in [&b"etc_link"[..], b"dir_link"] {
        for next in [&b"passwd"[..], b"inner.txt"] {
            let got = g.client.walk(root, &[link, next]).unwrap();
            assert_eq!(got.len(), 1);
            assert!(is_symlink(&got[0].1));
            assert_eq!(
                g.client.getdents(got[0].0).err(),
                Some(errno(libc::ENOTDIR))
            );
        }
    }
    g.finish();
}

#[test]
fn walk_refuses_names_that_are_not_single_components() {
    let g = Gofer::new(true);
    let (root, _) = g.client.attach().unwrap();
    for bad in [&b".."[..], b".", b"", b"dir/inner.txt", b"/etc", b"a\0b"] {
        assert_eq!(
            g.client.walk(root, &[bad]),
            Err(errno(libc::EINVAL)),
            "{bad:?}"
        );
        // Also when hidden after a good component: nothing is walked.
        assert_eq!(
            g.client.walk(root, &[b"dir", bad]),
            Err(errno(libc::EINVAL)),
            "{bad:?}"
        );
    }
    assert_eq!(
        g.client.walk(root, &[&[b'a'; 256]]),
        Err(errno(libc::ENAMETOOLONG))
    );
    g.finish();
}

#[test]
fn long_walks_are_split_and_still_stop_at_symlinks() {
    let g = Gofer::new(true);
    let depth = MAX_WALK_NAMES * 2 + 3;
    let mut p = g.tree.p("deep");
    for _ in 0..depth {
        p.push("d");
    }
    std::fs::create_dir_all(&p).unwrap();
    symlink("/", p.join("l")).unwrap();
    let (root, _) = g.client.attach().unwrap();
    let mut names: Vec<&[u8]> = vec![b"deep"];
    names.extend(std::iter::repeat_n(&b"d"[..], depth));
    let got = g.client.walk(root, &names).unwrap();
    assert_eq!(got.len(), depth + 1);
    names.extend([&b"l"[..], b"etc"]);
    let got = g.client.walk(root, &names).unwrap();
    assert_eq!(got.len(), depth + 2);
    assert!(is_symlink(&got.last().unwrap().1));
    g.finish();
}

#[test]
fn open_reads_through_the_donated_fd() {
    let g = Gofer::new(true);
    let (file, _) = g.walk1(&["file.txt"]);
    let fd = g.client.open(file, libc::O_RDONLY).unwrap();
    let mut s = String::new();
    std::fs::File::from(fd).read_to_string(&mut s).unwrap();
    assert_eq!(s, "hello gofer");
    let (deep, _) = g.walk1(&["dir", "sub", "deep.txt"]);
    let mut f = std::fs::File::from(g.client.open(deep, libc::O_RDONLY).unwrap());
    s.clear();
    f.read_to_string(&mut s).unwrap();
    assert_eq!(s, "deep");
    // Directories open too (the root included), and the fd is the directory.
    let (root, rattr) = g.client.attach().unwrap();
    let d = g
        .client
        .open(root, libc::O_RDONLY | libc::O_DIRECTORY)
        .unwrap();
    assert_eq!(nix::sys::stat::fstat(&d).unwrap().st_ino, rattr.ino);
    // Donated fds are close-on-exec.
    let flags = nix::fcntl::fcntl(&d, nix::fcntl::FcntlArg::F_GETFD).unwrap();
    assert_ne!(flags & libc::FD_CLOEXEC, 0);
    // O_DIRECTORY on a file, O_PATH and nonsense flags.
    assert_eq!(
        g.client.open(file, libc::O_DIRECTORY).err(),
        Some(errno(libc::ENOTDIR))
    );
    assert_eq!(
        g.client.open(file, libc::O_PATH).err(),
        Some(errno(libc::EINVAL))
    );
    assert_eq!(
        g.client.open(file, libc::O_ACCMODE).err(),
        Some(errno(libc::EINVAL))
    );
    g.finish();
}

#[test]
fn opening_a_fifo_does_not_block_the_gofer() {
    let g = Gofer::new(true);
    let (fifo, attr) = g.walk1(&["fifo"]);
    assert_eq!(attr.mode & libc::S_IFMT, libc::S_IFIFO);
    let fd = g.client.open(fifo, libc::O_RDONLY).unwrap();
    let fl = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_GETFL).unwrap();
    assert_ne!(fl & libc::O_NONBLOCK, 0);
    // The gofer still answers.
    g.client.stat(fifo).unwrap();
    g.finish();
}

#[test]
fn read_only_refuses_every_write() {
    let g = Gofer::new(true);
    let (file, _) = g.walk1(&["file.txt"]);
    let (root, _) = g.client.attach().unwrap();
    for flags in [
        libc::O_WRONLY,
        libc::O_RDWR,
        libc::O_RDONLY | libc::O_CREAT,
        libc::O_RDONLY | libc::O_TRUNC,
        libc::O_WRONLY | libc::O_APPEND,
    ] {
        assert_eq!(
            g.client.open(file, flags).err(),
            Some(errno(libc::EROFS)),
            "{flags:#x}"
        );
    }
    let e = Some(errno(libc::EROFS));
    assert_eq!(g.client.create(root, b"new", libc::O_RDWR, 0o644).err(), e);
    assert_eq!(g.client.mkdir(root, b"newdir", 0o755).err(), e);
    assert_eq!(g.client.unlink(root, b"file.txt", 0).err(), e);
    assert_eq!(
        g.client.rename(root, b"file.txt", root, b"moved", 0).err(),
        e
    );
    assert_eq!(
        g.client.mknod(root, b"f2", libc::S_IFIFO | 0o644, 0).err(),
        e
    );
    assert_eq!(g.client.setxattr(file, b"user.a", b"v", 0).err(), e);
    assert_eq!(g.client.removexattr(file, b"user.a").err(), e);
    assert_eq!(g.client.fallocate(file, 0, 0, 4096).err(), e);
    assert_eq!(g.client.symlink(root, b"l", b"/").err(), e);
    assert_eq!(g.client.link(root, b"hard", file).err(), e);
    let chmod = SetAttr {
        mask: SETATTR_MODE,
        mode: 0o600,
        ..Default::default()
    };
    assert_eq!(g.client.setstat(file, &chmod).err(), e);
    assert_eq!(std::fs::read(g.tree.p("file.txt")).unwrap(), b"hello gofer");
    g.finish();
}

#[test]
fn getdents_lists_every_entry() {
    let g = Gofer::new(true);
    let (root, _) = g.client.attach().unwrap();
    let got = g.client.getdents(root).unwrap();
    let names: BTreeSet<String> = got
        .iter()
        .map(|d| String::from_utf8(d.name.clone()).unwrap())
        .collect();
    let want: BTreeSet<String> = [
        "file.txt",
        "dir",
        "passwd_link",
        "escape",
        "etc_link",
        "dir_link",
        "fifo",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(names, want);
    for d in &got {
        let md = std::fs::symlink_metadata(g.tree.path.join(std::str::from_utf8(&d.name).unwrap()))
            .unwrap();
        assert_eq!(d.ino, md.ino());
        let want_type = match md.mode() & libc::S_IFMT {
            libc::S_IFREG => libc::DT_REG,
            libc::S_IFDIR => libc::DT_DIR,
            libc::S_IFLNK => libc::DT_LNK,
            libc::S_IFIFO => libc::DT_FIFO,
            _ => unreachable!(),
        };
        assert_eq!(d.d_type, want_type);
    }
    let (file, _) = g.walk1(&["file.txt"]);
    assert_eq!(g.client.getdents(file).err(), Some(errno(libc::ENOTDIR)));
    g.finish();
}

#[test]
fn getdents_pages_a_large_directory() {
    let g = Gofer::new(true);
    let big = g.tree.p("big");
    std::fs::create_dir(&big).unwrap();
    // ~3000 names of 100+ bytes: several 64 KiB pages.
    let mut want = BTreeSet::new();
    for i in 0..3000 {
        let name = format!("{i:05}-{}", "n".repeat(100));
        std::fs::write(big.join(&name), b"").unwrap();
        want.insert(name.into_bytes());
    }
    let (h, _) = g.walk1(&["big"]);
    let (first, next) = g.client.getdents_page(h, 0).unwrap();
    assert!(next.is_some() && first.len() < 3000);
    let all = g.client.getdents(h).unwrap();
    assert_eq!(all.len(), 3000);
    let got: BTreeSet<Vec<u8>> = all.into_iter().map(|d| d.name).collect();
    assert_eq!(got, want);
    g.finish();
}

#[test]
fn statfs_matches_the_host() {
    let g = Gofer::new(true);
    let (root, _) = g.client.attach().unwrap();
    let s = g.client.statfs(root).unwrap();
    let host = nix::sys::statfs::statfs(&g.tree.path).unwrap();
    assert_eq!(s.fs_type, host.filesystem_type().0 as u64);
    assert_eq!(s.bsize, host.block_size() as u64);
    assert_eq!(s.namelen, host.maximum_name_length() as u64);
    assert!(s.blocks > 0);
    // Works on a symlink handle too (O_PATH fds allow fstatfs).
    let (link, _) = g.walk1(&["escape"]);
    assert_eq!(g.client.statfs(link).unwrap().fs_type, s.fs_type);
    g.finish();
}

#[test]
fn stat_matches_symlink_metadata() {
    let g = Gofer::new(true);
    for path in [
        &["file.txt"][..],
        &["dir"],
        &["dir", "sub", "deep.txt"],
        &["fifo"],
        &["escape"],
    ] {
        let (h, walked) = g.walk1(path);
        let rel: PathBuf = path.iter().collect();
        assert_matches_host(&walked, &g.tree.path.join(&rel));
        assert_matches_host(&g.client.stat(h).unwrap(), &g.tree.path.join(&rel));
    }
    g.finish();
}

#[test]
fn unknown_and_closed_handles_are_ebadf() {
    let g = Gofer::new(true);
    let bad = 0xdead_beef;
    let e = errno(libc::EBADF);
    assert_eq!(g.client.stat(bad), Err(e));
    assert_eq!(g.client.open(bad, libc::O_RDONLY).err(), Some(e));
    assert_eq!(g.client.readlink(bad), Err(e));
    assert_eq!(g.client.getdents(bad).err(), Some(e));
    assert_eq!(g.client.statfs(bad), Err(e));
    assert_eq!(g.client.walk(bad, &[b"dir"]), Err(e));
    let (file, _) = g.walk1(&["file.txt"]);
    let fd = g.client.open(file, libc::O_RDONLY).unwrap();
    g.client.close(file);
    g.client.close(file); // closing twice is harmless
    assert_eq!(g.client.stat(file), Err(e));
    // A file opened before the close stays usable.
    let mut s = String::new();
    std::fs::File::from(fd).read_to_string(&mut s).unwrap();
    assert_eq!(s, "hello gofer");
    // Closing one root handle leaves another one working.
    let (r1, _) = g.client.attach().unwrap();
    let (r2, _) = g.client.attach().unwrap();
    assert_ne!(r1, r2);
    g.client.close(r1);
    g.client.walk(r2, &[b"dir"]).unwrap();
    g.finish();
}

#[test]
fn the_client_is_shared_between_threads() {
    let g = Gofer::new(true);
    let client = Arc::new(g.client);
    let (root, _) = client.attach().unwrap();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let c = Arc::clone(&client);
            std::thread::spawn(move || {
                for _ in 0..200 {
                    let got = c.walk(root, &[b"dir", b"inner.txt"]).unwrap();
                    assert_eq!(got.len(), 2);
                    c.stat(got[1].0).unwrap();
                    for (h, _) in got {
                        c.close(h);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    drop(client);
    g.server.join().unwrap().unwrap();
}

// ---- Raw packets: the server must answer or hang up, never panic. ----

fn send_raw(sock: &OwnedFd, bytes: &[u8]) {
    nix::sys::socket::send(sock.as_raw_fd(), bytes, MsgFlags::empty()).unwrap();
}

fn recv_raw(sock: &OwnedFd) -> (u32, Response) {
    let mut buf = vec![0u8; protocol::MAX_PACKET];
    let n = nix::sys::socket::recv(sock.as_raw_fd(), &mut buf, MsgFlags::empty()).unwrap();
    Response::decode(&buf[..n]).unwrap()
}

fn with_len(mut p: Vec<u8>) -> Vec<u8> {
    let len = (p.len() - HEADER_LEN) as u32;
    p[6..10].copy_from_slice(&len.to_le_bytes());
    p
}

#[test]
fn malformed_packets_get_error_replies() {
    let tree = Tree::new();
    let (sock, server) = start(&tree, false);
    let einval = Response::Error(errno(libc::EINVAL));

    // Shorter than a header: tag 0 if not even 4 bytes are there.
    send_raw(&sock, &[1, 2, 3]);
    assert_eq!(recv_raw(&sock), (0, einval.clone()));
    send_raw(&sock, &[7, 0, 0, 0, 1]);
    assert_eq!(recv_raw(&sock), (7, einval.clone()));

    // Length field disagreeing with the packet.
    let mut p = Request::Stat { handle: 1 }.encode(11).unwrap();
    p[6..10].copy_from_slice(&1000u32.to_le_bytes());
    send_raw(&sock, &p);
    assert_eq!(recv_raw(&sock), (11, einval.clone()));

    // Unknown kind, and a reply kind sent as a request.
    for kind in [0u16, 999, protocol::RESP_OK] {
        let mut p = Request::Attach.encode(12).unwrap();
        p[4..6].copy_from_slice(&kind.to_le_bytes());
        send_raw(&sock, &p);
        assert_eq!(recv_raw(&sock), (12, einval.clone()));
    }

    // A walk of "..", of "a/b", of an empty name, and one claiming 2^32-1 names.
    for bad in [&b".."[..], b"a/b", b"", b"."] {
        let mut p = Request::Walk {
            dir: 1,
            names: vec![protocol::Name::new(b"x").unwrap()],
        }
        .encode(13)
        .unwrap();
        p.truncate(HEADER_LEN + 12);
        p.push(bad.len() as u8);
        p.extend_from_slice(bad);
        send_raw(&sock, &with_len(p));
        assert_eq!(recv_raw(&sock), (13, einval.clone()), "{bad:?}");
    }
    let mut p = Request::Walk {
        dir: 1,
        names: vec![protocol::Name::new(b"x").unwrap()],
    }
    .encode(14)
    .unwrap();
    p[HEADER_LEN + 8..HEADER_LEN + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    send_raw(&sock, &p);
    assert_eq!(recv_raw(&sock), (14, einval.clone()));

    // A name length running past the end; trailing garbage.
    let mut p = Request::Walk {
        dir: 1,
        names: vec![protocol::Name::new(b"x").unwrap()],
    }
    .encode(15)
    .unwrap();
    p[HEADER_LEN + 12] = 200;
    send_raw(&sock, &p);
    assert_eq!(recv_raw(&sock), (15, einval.clone()));
    let mut p = Request::Attach.encode(16).unwrap();
    p.extend_from_slice(b"junk");
    send_raw(&sock, &with_len(p));
    assert_eq!(recv_raw(&sock), (16, einval.clone()));

    // Bad open flags and unlink flags get errnos, not crashes.
    send_raw(&sock, &Request::Attach.encode(17).unwrap());
    let (_, Response::Node { handle: root, .. }) = recv_raw(&sock) else {
        panic!()
    };
    send_raw(
        &sock,
        &Request::Open {
            handle: root,
            flags: -1,
        }
        .encode(18)
        .unwrap(),
    );
    assert_eq!(recv_raw(&sock), (18, einval.clone()));
    let name = protocol::Name::new(b"file.txt").unwrap();
    send_raw(
        &sock,
        &Request::Unlink {
            dir: root,
            name,
            flags: -1,
        }
        .encode(19)
        .unwrap(),
    );
    assert_eq!(recv_raw(&sock), (19, einval.clone()));

    // A packet over 64 KiB.
    let mut huge = Request::Attach.encode(20).unwrap();
    huge.resize(protocol::MAX_PACKET + 100, 0xaa);
    send_raw(&sock, &with_len(huge));
    assert_eq!(
        recv_raw(&sock),
        (20, Response::Error(errno(libc::EMSGSIZE)))
    );

    // An fd sent to the server is refused (closed by the kernel), and the request still works.
    let extra = open_root(&tree.path);
    let p = Request::Stat { handle: root }.encode(21).unwrap();
    let fds = [extra.as_raw_fd()];
    nix::sys::socket::sendmsg::<()>(
        sock.as_raw_fd(),
        &[std::io::IoSlice::new(&p)],
        &[nix::sys::socket::ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .unwrap();
    assert!(matches!(recv_raw(&sock), (21, Response::Attr(_))));

    // Random garbage: every packet gets some reply, and the server is still alive after.
    let mut x: u32 = 12345;
    for i in 0..2000u32 {
        let len = (i % 97) as usize + 1;
        let p: Vec<u8> = (0..len)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect();
        send_raw(&sock, &p);
        let _ = recv_raw(&sock);
    }

    // Still serving.
    let client = Client::new(sock);
    let (root, _) = client.attach().unwrap();
    assert_eq!(client.walk(root, &[b"dir"]).unwrap().len(), 1);
    drop(client);
    server.join().unwrap().unwrap();
}

#[test]
fn an_empty_packet_ends_the_session() {
    let tree = Tree::new();
    let (sock, server) = start(&tree, true);
    send_raw(&sock, &[]);
    server.join().unwrap().unwrap();
}

#[test]
fn a_server_that_is_not_a_gofer_gives_eio() {
    // The "server" here answers with garbage and with the wrong tag.
    let (ours, theirs) = pair();
    let fake = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1024];
        let recv = |b: &mut [u8]| nix::sys::socket::recv(theirs.as_raw_fd(), b, MsgFlags::empty());
        recv(&mut buf).unwrap();
        send_raw(&theirs, b"nonsense");
        recv(&mut buf).unwrap();
        send_raw(&theirs, &Response::Ok.encode(9999).unwrap());
        recv(&mut buf).unwrap();
        // Right tag (the third request), wrong kind.
        send_raw(&theirs, &Response::Ok.encode(3).unwrap());
        recv(&mut buf).unwrap();
        send_raw(&theirs, &Response::Opened.encode(4).unwrap());
    });
    let c = Client::new(ours);
    let eio = Err(errno(libc::EIO));
    assert_eq!(c.stat(1), eio);
    assert_eq!(c.stat(1), eio);
    assert_eq!(c.stat(1), eio);
    // Opened without an fd.
    assert_eq!(c.open(1, 0).err(), Some(errno(libc::EIO)));
    fake.join().unwrap();
    // The peer is gone.
    assert_eq!(c.stat(1), eio);
}

// ---- Read-write mode ----

#[test]
fn read_write_mode_creates_and_changes_files() {
    let g = Gofer::new(false);
    let c = &g.client;
    let (root, _) = c.attach().unwrap();

    // Create, write through the donated fd, read back from the host. The mode is exact
    // whatever the gofer's umask (the test process's, usually 022).
    let (h, attr, fd) = c.create(root, b"new.txt", libc::O_RDWR, 0o666).unwrap();
    assert_eq!(attr.mode, libc::S_IFREG | 0o666);
    assert_matches_host(&attr, &g.tree.p("new.txt"));
    std::fs::File::from(fd).write_all(b"written").unwrap();
    assert_eq!(std::fs::read(g.tree.p("new.txt")).unwrap(), b"written");
    assert_eq!(
        c.create(root, b"new.txt", libc::O_RDWR, 0o640).err(),
        Some(errno(libc::EEXIST))
    );
    // Create never writes through a symlink.
    assert_eq!(
        c.create(root, b"escape", libc::O_RDWR, 0o640).err(),
        Some(errno(libc::EEXIST))
    );

    // O_TRUNC on an existing file.
    let fd = c.open(h, libc::O_WRONLY | libc::O_TRUNC).unwrap();
    drop(fd);
    assert_eq!(std::fs::read(g.tree.p("new.txt")).unwrap(), b"");

    // mkdir with an exact mode whatever the umask.
    let (d, dattr) = c.mkdir(root, b"newdir", 0o777).unwrap();
    assert_eq!(dattr.mode, libc::S_IFDIR | 0o777);
    assert_matches_host(&dattr, &g.tree.p("newdir"));
    c.create(d, b"inside", libc::O_WRONLY, 0o600).unwrap();

    // Symlink and hard link.
    let (l, lattr) = c.symlink(root, b"lnk", b"../outside").unwrap();
    assert!(is_symlink(&lattr));
    assert_eq!(c.readlink(l).unwrap(), b"../outside");
    let (hl, hattr) = c.link(d, b"hard", h).unwrap();
    assert_eq!(hattr.ino, attr.ino);
    assert_eq!(hattr.nlink, 2);
    c.close(hl);

    // Rename: the handle follows the file.
    c.rename(root, b"new.txt", d, b"moved.txt", 0).unwrap();
    assert!(!g.tree.p("new.txt").exists());
    let mut s = String::new();
    std::fs::write(g.tree.p("newdir/moved.txt"), b"after move").unwrap();
    std::fs::File::from(c.open(h, libc::O_RDONLY).unwrap())
        .read_to_string(&mut s)
        .unwrap();
    assert_eq!(s, "after move");

    // SetStat: size, mode, mtime; chmod of a symlink is refused like lchmod.
    let set = SetAttr {
        mask: SETATTR_SIZE | SETATTR_MODE | SETATTR_MTIME,
        size: 3,
        mode: 0o604,
        mtime_sec: 1_000_000,
        mtime_nsec: 5,
        ..Default::default()
    };
    c.setstat(h, &set).unwrap();
    let a = c.stat(h).unwrap();
    assert_eq!(
        (a.size, a.mode & 0o7777, a.mtime_sec, a.mtime_nsec),
        (3, 0o604, 1_000_000, 5)
    );
    assert_matches_host(&a, &g.tree.p("newdir/moved.txt"));
    let chmod = SetAttr {
        mask: SETATTR_MODE,
        mode: 0o600,
        ..Default::default()
    };
    assert_eq!(c.setstat(l, &chmod), Err(errno(libc::EOPNOTSUPP)));
    let trunc = SetAttr {
        mask: SETATTR_SIZE,
        ..Default::default()
    };
    assert_eq!(c.setstat(d, &trunc), Err(errno(libc::EISDIR)));

    // Unlink and rmdir.
    assert_eq!(c.unlink(root, b"newdir", 0), Err(errno(libc::EISDIR)));
    c.unlink(d, b"moved.txt", 0).unwrap();
    c.unlink(d, b"hard", 0).unwrap();
    c.unlink(d, b"inside", 0).unwrap();
    c.unlink(root, b"newdir", libc::AT_REMOVEDIR).unwrap();
    assert!(!g.tree.p("newdir").exists());
    // Names are checked for mutating ops too.
    assert_eq!(c.unlink(root, b"..", 0), Err(errno(libc::EINVAL)));
    assert_eq!(
        c.mkdir(root, b"a/b", 0o755).err(),
        Some(errno(libc::EINVAL))
    );
    g.finish();
}

#[test]
fn open_notices_a_name_replaced_since_the_walk() {
    let g = Gofer::new(false);
    let (h, _) = g.walk1(&["file.txt"]);
    std::fs::remove_file(g.tree.p("file.txt")).unwrap();
    std::fs::write(g.tree.p("file.txt"), b"impostor").unwrap();
    assert_eq!(
        g.client.open(h, libc::O_RDONLY).err(),
        Some(errno(libc::ESTALE))
    );
    // Replaced by a symlink: refused without following it.
    std::fs::remove_file(g.tree.p("file.txt")).unwrap();
    symlink("/etc/passwd", g.tree.p("file.txt")).unwrap();
    assert_eq!(
        g.client.open(h, libc::O_RDONLY).err(),
        Some(errno(libc::ELOOP))
    );
    // The handle itself still names the original (now unlinked) file.
    assert_eq!(g.client.stat(h).unwrap().nlink, 0);
    g.finish();
}

#[test]
fn mknod_makes_fifos_and_sockets_but_never_devices() {
    let g = Gofer::new(false);
    let c = &g.client;
    let (root, _) = c.attach().unwrap();
    let (_, a) = c.mknod(root, b"p", libc::S_IFIFO | 0o666, 0).unwrap();
    assert_eq!(
        a.mode,
        libc::S_IFIFO | 0o666,
        "exact mode whatever the umask"
    );
    assert_matches_host(&a, &g.tree.p("p"));
    let (s, a) = c.mknod(root, b"s", libc::S_IFSOCK | 0o600, 0).unwrap();
    assert_eq!(a.mode, libc::S_IFSOCK | 0o600);
    assert_eq!(c.stat(s).unwrap().ino, a.ino);
    let eperm = Some(errno(libc::EPERM));
    let null_dev = libc::makedev(1, 3);
    assert_eq!(
        c.mknod(root, b"null", libc::S_IFCHR | 0o666, null_dev)
            .err(),
        eperm
    );
    assert_eq!(
        c.mknod(root, b"blk", libc::S_IFBLK | 0o600, null_dev).err(),
        eperm
    );
    assert!(!g.tree.p("null").exists() && !g.tree.p("blk").exists());
    for bad in [libc::S_IFREG, libc::S_IFDIR, libc::S_IFLNK, 0] {
        assert_eq!(
            c.mknod(root, b"x", bad | 0o644, 0).err(),
            Some(errno(libc::EINVAL)),
            "{bad:o}"
        );
    }
    // An existing name, a symlink included, is never replaced or followed.
    assert_eq!(
        c.mknod(root, b"escape", libc::S_IFIFO | 0o644, 0).err(),
        Some(errno(libc::EEXIST))
    );
    assert_eq!(
        c.mknod(root, b"../p2", libc::S_IFIFO | 0o644, 0).err(),
        Some(errno(libc::EINVAL))
    );
    g.finish();
}

fn host_xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = vec![0u8; 256];
    // SAFETY: test-only call with live NUL-terminated strings and a live buffer.
    let r = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        return None;
    }
    buf.truncate(r as usize);
    Some(buf)
}

#[test]
fn xattrs_are_served_for_user_and_trusted_names() {
    let g = Gofer::new(false);
    let c = &g.client;
    let (file, _) = g.walk1(&["file.txt"]);
    let (dir, _) = g.walk1(&["dir"]);
    assert_eq!(
        c.getxattr(file, b"user.k").err(),
        Some(errno(libc::ENODATA))
    );
    c.setxattr(file, b"user.k", b"value", 0).unwrap();
    assert_eq!(
        host_xattr(&g.tree.p("file.txt"), "user.k").unwrap(),
        b"value"
    );
    assert_eq!(c.getxattr(file, b"user.k").unwrap(), b"value");
    // XATTR_CREATE on an existing name, XATTR_REPLACE on a missing one.
    assert_eq!(
        c.setxattr(file, b"user.k", b"x", libc::XATTR_CREATE as u32)
            .err(),
        Some(errno(libc::EEXIST))
    );
    assert_eq!(
        c.setxattr(file, b"user.none", b"x", libc::XATTR_REPLACE as u32)
            .err(),
        Some(errno(libc::ENODATA))
    );
    c.setxattr(file, b"user.k", b"", libc::XATTR_REPLACE as u32)
        .unwrap();
    assert_eq!(c.getxattr(file, b"user.k").unwrap(), b"");
    c.setxattr(file, b"trusted.t", b"root only", 0).unwrap();
    c.setxattr(dir, b"user.d", b"on a dir", 0).unwrap();
    assert_eq!(host_xattr(&g.tree.p("dir"), "user.d").unwrap(), b"on a dir");
    let mut names = c.listxattr(file).unwrap();
    names.sort();
    assert_eq!(names, vec![b"trusted.t".to_vec(), b"user.k".to_vec()]);
    c.removexattr(file, b"user.k").unwrap();
    assert_eq!(
        c.removexattr(file, b"user.k").err(),
        Some(errno(libc::ENODATA))
    );
    assert_eq!(host_xattr(&g.tree.p("file.txt"), "user.k"), None);
    // security.* would change what the host grants (file capabilities): never written.
    assert_eq!(
        c.setxattr(file, b"security.capability", b"\x01\0\0\x02", 0)
            .err(),
        Some(errno(libc::EPERM))
    );
    assert_eq!(
        host_xattr(&g.tree.p("file.txt"), "security.capability"),
        None
    );
    assert_eq!(
        c.removexattr(file, b"security.x").err(),
        Some(errno(libc::EPERM))
    );
    assert_eq!(
        c.setxattr(file, b"system.posix_acl_access", b"x", 0).err(),
        Some(errno(libc::EOPNOTSUPP))
    );
    assert_eq!(
        c.getxattr(file, b"bogus.x").err(),
        Some(errno(libc::EOPNOTSUPP))
    );
    assert_eq!(
        c.getxattr(file, b"user.").err(),
        Some(errno(libc::EOPNOTSUPP))
    );
    assert_eq!(
        c.setxattr(file, b"", b"x", 0).err(),
        Some(errno(libc::ERANGE))
    );
    // A symlink is never opened (or followed) for its attributes.
    let (link, _) = g.walk1(&["passwd_link"]);
    assert_eq!(
        c.getxattr(link, b"user.k").err(),
        Some(errno(libc::ENODATA))
    );
    assert_eq!(
        c.setxattr(link, b"user.k", b"v", 0).err(),
        Some(errno(libc::EPERM))
    );
    assert_eq!(c.listxattr(link).unwrap(), Vec::<Vec<u8>>::new());
    // A large value round-trips; one over the protocol's limit is refused before sending.
    let big = vec![b'z'; 3000];
    c.setxattr(file, b"user.big", &big, 0).unwrap();
    assert_eq!(c.getxattr(file, b"user.big").unwrap(), big);
    assert_eq!(
        c.setxattr(
            file,
            b"user.huge",
            &vec![0; protocol::XATTR_VALUE_MAX + 1],
            0
        )
        .err(),
        Some(errno(libc::E2BIG))
    );
    g.finish();
}

#[test]
fn read_only_gofers_still_read_xattrs() {
    let tree = Tree::new();
    let p = std::ffi::CString::new(tree.p("file.txt").as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: test-only call with live NUL-terminated strings and value.
    let r = unsafe { libc::setxattr(p.as_ptr(), c"user.img".as_ptr(), b"1".as_ptr().cast(), 1, 0) };
    assert_eq!(r, 0);
    let (sock, server) = start(&tree, true);
    let c = Client::new(sock);
    let (root, _) = c.attach().unwrap();
    let (file, _) = c.walk(root, &[b"file.txt"]).unwrap()[0];
    assert_eq!(c.getxattr(file, b"user.img").unwrap(), b"1");
    assert_eq!(c.listxattr(file).unwrap(), vec![b"user.img".to_vec()]);
    c.fsync(file, false).unwrap();
    drop(c);
    server.join().unwrap().unwrap();
}

#[test]
fn rename_noreplace_and_exchange() {
    let g = Gofer::new(false);
    let c = &g.client;
    let (root, _) = c.attach().unwrap();
    let (dir, _) = g.walk1(&["dir"]);
    let (file, _) = g.walk1(&["file.txt"]);
    let (inner, _) = g.walk1(&["dir", "inner.txt"]);
    let noreplace = protocol::RENAME_NOREPLACE;
    let exchange = protocol::RENAME_EXCHANGE;
    assert_eq!(
        c.rename(root, b"file.txt", dir, b"inner.txt", noreplace)
            .err(),
        Some(errno(libc::EEXIST))
    );
    assert_eq!(std::fs::read(g.tree.p("dir/inner.txt")).unwrap(), b"inner");
    c.rename(root, b"file.txt", dir, b"fresh", noreplace)
        .unwrap();
    c.rename(dir, b"fresh", root, b"file.txt", 0).unwrap();
    assert_eq!(
        c.rename(root, b"file.txt", dir, b"nothing", exchange).err(),
        Some(errno(libc::ENOENT))
    );
    assert_eq!(
        c.rename(root, b"file.txt", dir, b"inner.txt", exchange | noreplace)
            .err(),
        Some(errno(libc::EINVAL))
    );
    assert_eq!(
        c.rename(root, b"file.txt", dir, b"inner.txt", 8).err(),
        Some(errno(libc::EINVAL))
    );
    c.rename(root, b"file.txt", dir, b"inner.txt", exchange)
        .unwrap();
    assert_eq!(std::fs::read(g.tree.p("file.txt")).unwrap(), b"inner");
    assert_eq!(
        std::fs::read(g.tree.p("dir/inner.txt")).unwrap(),
        b"hello gofer"
    );
    // Both handles followed their files.
    let read = |h| {
        let mut s = String::new();
        std::fs::File::from(c.open(h, libc::O_RDONLY).unwrap())
            .read_to_string(&mut s)
            .unwrap();
        s
    };
    assert_eq!(read(file), "hello gofer");
    assert_eq!(read(inner), "inner");
    g.finish();
}

#[test]
fn fsync_and_fallocate() {
    let g = Gofer::new(false);
    let c = &g.client;
    let (root, _) = c.attach().unwrap();
    let (file, _) = g.walk1(&["file.txt"]);
    let (dir, _) = g.walk1(&["dir"]);
    c.fsync(file, false).unwrap();
    c.fsync(file, true).unwrap();
    c.fsync(dir, false).unwrap();
    let (fifo, _) = g.walk1(&["fifo"]);
    assert_eq!(c.fsync(fifo, false).err(), Some(errno(libc::EINVAL)));
    c.fallocate(file, 0, 0, 100_000).unwrap();
    assert_eq!(
        std::fs::metadata(g.tree.p("file.txt")).unwrap().len(),
        100_000
    );
    c.fallocate(file, 1, 0, 300_000).unwrap();
    assert_eq!(
        std::fs::metadata(g.tree.p("file.txt")).unwrap().len(),
        100_000
    );
    c.fallocate(file, 3, 0, 5).unwrap();
    assert_eq!(
        &std::fs::read(g.tree.p("file.txt")).unwrap()[..11],
        b"\0\0\0\0\0 gofer"
    );
    assert_eq!(
        c.fallocate(file, 0x10, 0, 1).err(),
        Some(errno(libc::EOPNOTSUPP))
    );
    assert_eq!(c.fallocate(dir, 0, 0, 1).err(), Some(errno(libc::EISDIR)));
    assert_eq!(c.fallocate(fifo, 0, 0, 1).err(), Some(errno(libc::ENODEV)));
    assert_eq!(
        c.fallocate(file, 0, u64::MAX, 1).err(),
        Some(errno(libc::EFBIG))
    );
    let _ = root;
    g.finish();
}

#[test]
fn setstat_utime_now_omit_and_owner() {
    let g = Gofer::new(false);
    let c = &g.client;
    let (file, _) = g.walk1(&["file.txt"]);
    let old = c
        .setstat(
            file,
            &SetAttr {
                mask: protocol::SETATTR_ATIME | SETATTR_MTIME,
                atime_sec: 7,
                mtime_sec: 9,
                ..Default::default()
            },
        )
        .and_then(|_| c.stat(file))
        .unwrap();
    assert_eq!((old.atime_sec, old.mtime_sec), (7, 9));
    // mtime now, atime omitted (UTIME_OMIT through a mask bit left clear).
    c.setstat(
        file,
        &SetAttr {
            mask: SETATTR_MTIME,
            mtime_nsec: libc::UTIME_NOW,
            ..Default::default()
        },
    )
    .unwrap();
    let a = c.stat(file).unwrap();
    assert_eq!(a.atime_sec, 7);
    assert!(a.mtime_sec > 9);
    // Explicit UTIME_OMIT leaves the time alone too.
    c.setstat(
        file,
        &SetAttr {
            mask: protocol::SETATTR_ATIME,
            atime_nsec: libc::UTIME_OMIT,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(c.stat(file).unwrap().atime_sec, 7);
    c.setstat(
        file,
        &SetAttr {
            mask: protocol::SETATTR_UID | protocol::SETATTR_GID,
            uid: 4321,
            gid: 8765,
            ..Default::default()
        },
    )
    .unwrap();
    assert_matches_host(&c.stat(file).unwrap(), &g.tree.p("file.txt"));
    assert_eq!(c.stat(file).unwrap().uid, 4321);
    g.finish();
}
