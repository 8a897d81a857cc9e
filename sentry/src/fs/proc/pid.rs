//! `/proc/PID` and `/proc/PID/task/TID`: one process (or thread) as Linux shows it.

use super::node::{detached, Builder, Entries, FileInode};
use super::{caller, ticks};
use crate::error::Result;
use crate::kernel::process::{lock, ProcView, TaskShared, ThreadGroup};
use crate::kernel::signal::{SIG_DFL, SIG_IGN};
use crate::kernel::task::Rlimits;
use crate::mm::{Backing, UserAddr};
use crate::vfs::{FileDescription, FsContext, Inode, VfsPath};
use crate::{errno, return_errno};
use std::fmt::Write as _;
use std::sync::Arc;

/// The process (and, for `task/TID` and `/proc/TID`, the thread) a directory shows.
#[derive(Clone, Copy)]
struct Target {
    tgid: i32,
    tid: Option<i32>,
}

impl Target {
    fn group(&self) -> Result<Arc<ThreadGroup>> {
        let (k, _) = caller()?;
        let g = k.pids().group(self.tgid);
        g.ok_or(errno!(ENOENT))
    }

    fn alive(&self) -> bool {
        let Ok((k, _)) = caller() else { return false };
        let p = k.pids();
        p.group(self.tgid).is_some()
            && self
                .tid
                .is_none_or(|t| p.task(t).is_some_and(|x| x.tg.tgid == self.tgid))
    }

    /// The thread shown: the one named, else the leader, else any live one; `None` for
    /// a zombie.
    fn thread(&self) -> Result<Option<Arc<TaskShared>>> {
        let (k, _) = caller()?;
        let (named, g) = {
            let p = k.pids();
            let id = self.tid.unwrap_or(self.tgid);
            (
                p.task(id).filter(|t| t.tg.tgid == self.tgid),
                p.group(self.tgid),
            )
        };
        let g = g.ok_or(errno!(ENOENT))?;
        if named.is_some() || self.tid.is_some() {
            return Ok(named);
        }
        Ok(g.threads().first().cloned())
    }

    fn view(&self) -> Result<ProcView> {
        Ok(self
            .thread()?
            .map(|t| lock(&t.proc).clone())
            .unwrap_or_default())
    }

    fn key(&self, name: &str) -> String {
        match self.tid {
            Some(t) => format!("{}/task/{t}/{name}", self.tgid),
            None => format!("{}/{name}", self.tgid),
        }
    }
}

fn fs_of(v: &ProcView) -> Result<FsContext> {
    Ok(lock(v.fs.as_ref().ok_or(errno!(ENOENT))?).clone())
}

/// The root of the task asking (paths are shown relative to it, as `d_path` does).
fn reader_root() -> Option<VfsPath> {
    let (_, t) = caller().ok()?;
    let fs = lock(&t.proc).fs.clone()?;
    let root = lock(&fs).root.clone();
    Some(root)
}

fn shown_path(p: &VfsPath) -> Vec<u8> {
    let mut out = match reader_root() {
        Some(r) => p.path_from(&r),
        None => p.absolute(),
    };
    if p.dentry.is_deleted() {
        out.extend_from_slice(b" (deleted)");
    }
    out
}

/// `/proc/PID` (with `task/`) or, with `tid`, `/proc/TID` for a thread.
pub fn process_dir(b: &Builder, tgid: i32, tid: Option<i32>) -> Arc<dyn Inode> {
    let t = Target { tgid, tid };
    let nb = node_builder(b, t);
    let bb = b.clone();
    nb.dir(&t.key(""), 0o555, move || Ok(entries(&bb, t, true)))
}

fn node_builder(b: &Builder, t: Target) -> Builder {
    b.with(
        Arc::new(move || {
            t.view()
                .map(|v| (v.creds.euid, v.creds.egid))
                .unwrap_or((0, 0))
        }),
        Arc::new(move || t.alive()),
    )
}

fn entries(base: &Builder, t: Target, with_task: bool) -> Entries {
    let b = node_builder(base, t);
    let k = |n: &str| t.key(n);
    let mut v: Vec<(&str, Arc<dyn Inode>)> = vec![
        ("stat", b.file(&k("stat"), 0o444, move || stat(t))),
        ("statm", b.file(&k("statm"), 0o444, move || statm(t))),
        ("status", b.file(&k("status"), 0o444, move || status(t))),
        ("cmdline", b.file(&k("cmdline"), 0o444, move || cmdline(t))),
        (
            "environ",
            b.file(&k("environ"), 0o400, move || {
                let v = t.view()?;
                read_range(&v, |l| (l.env_start, l.env_end))
            }),
        ),
        (
            "auxv",
            b.file(&k("auxv"), 0o400, move || {
                let v = t.view()?;
                let Some(mm) = v.mm.as_ref() else {
                    return Ok(Vec::new());
                };
                let mm = lock(mm);
                Ok(mm
                    .exec_layout
                    .auxv
                    .iter()
                    .flat_map(|(a, b)| a.to_le_bytes().into_iter().chain(b.to_le_bytes()))
                    .collect())
            }),
        ),
        (
            "comm",
            b.file_rw(
                &k("comm"),
                0o644,
                move || {
                    let mut c = comm(t)?;
                    c.push(b'\n');
                    Ok(c)
                },
                move |buf| write_comm(t, buf),
            ),
        ),
        ("exe", exe_link(&b, t)),
        ("cwd", fs_link(&b, t, "cwd", |fs| fs.cwd.clone())),
        ("root", fs_link(&b, t, "root", |fs| fs.root.clone())),
        ("fd", fd_dir(&b, t)),
        ("fdinfo", fdinfo_dir(&b, t)),
        ("maps", b.file(&k("maps"), 0o444, move || maps(t, false))),
        ("smaps", b.file(&k("smaps"), 0o444, move || maps(t, true))),
        (
            "mounts",
            b.file(&k("mounts"), 0o444, move || mounts(t, false)),
        ),
        (
            "mountinfo",
            b.file(&k("mountinfo"), 0o444, move || mounts(t, true)),
        ),
        ("cgroup", b.text(&k("cgroup"), "0::/\n")),
        ("limits", b.file(&k("limits"), 0o444, move || limits(t))),
        (
            "oom_score_adj",
            b.file_rw(
                &k("oom_score_adj"),
                0o644,
                move || Ok(format!("{}\n", t.group()?.state().oom_score_adj).into_bytes()),
                move |buf| {
                    let s = std::str::from_utf8(buf).map_err(|_| errno!(EINVAL))?;
                    let v: i32 = s.trim().parse().map_err(|_| errno!(EINVAL))?;
                    if !(-1000..=1000).contains(&v) {
                        return_errno!(EINVAL);
                    }
                    let g = t.group()?;
                    let mut st = g.state();
                    // Lowering it takes CAP_SYS_RESOURCE.
                    let (_, me) = caller()?;
                    if v < st.oom_score_adj
                        && !lock(&me.proc)
                            .creds
                            .has_cap(crate::kernel::creds::CAP_SYS_RESOURCE)
                    {
                        return_errno!(EACCES);
                    }
                    st.oom_score_adj = v;
                    Ok(())
                },
            ),
        ),
        ("oom_score", b.text(&k("oom_score"), "0\n")),
        (
            "io",
            b.text(
                &k("io"),
                "rchar: 0\nwchar: 0\nsyscr: 0\nsyscw: 0\nread_bytes: 0\nwrite_bytes: 0\n\
                 cancelled_write_bytes: 0\n",
            ),
        ),
        ("oom_adj", b.text(&k("oom_adj"), "0\n")),
        ("loginuid", b.text(&k("loginuid"), "4294967295")),
        ("sessionid", b.text(&k("sessionid"), "4294967295")),
        ("wchan", b.text(&k("wchan"), "0")),
        ("personality", b.text(&k("personality"), "00000000\n")),
        (
            "coredump_filter",
            b.text(&k("coredump_filter"), "00000033\n"),
        ),
        ("setgroups", b.text(&k("setgroups"), "allow\n")),
        ("uid_map", b.text(&k("uid_map"), ID_MAP)),
        ("gid_map", b.text(&k("gid_map"), ID_MAP)),
        ("ns", ns_dir(&b, t)),
        (
            "mem",
            b.special(&k("mem"), 0o600, move |path, flags| {
                let v = t.view()?;
                may_attach(&v)?;
                let mm = v.mm.ok_or(errno!(ENOENT))?;
                Ok(Arc::new(super::mem::MemFile::new(mm, path, flags)) as Arc<dyn FileDescription>)
            }),
        ),
    ];
    if !with_task {
        // Linux lists the children each thread forked; the sandbox keeps children per
        // process, so the main thread lists them all and the others none.
        v.push((
            "children",
            b.file(&k("children"), 0o444, move || {
                if t.tid.is_some_and(|tid| tid != t.tgid) {
                    return Ok(Vec::new());
                }
                let g = t.group()?;
                let mut pids: Vec<i32> = g.state().children.iter().map(|c| c.tgid).collect();
                pids.sort_unstable();
                Ok(pids
                    .iter()
                    .map(|p| format!("{p} "))
                    .collect::<String>()
                    .into_bytes())
            }),
        ));
    }
    if with_task {
        let base = base.clone();
        v.push((
            "task",
            b.dir(&k("task"), 0o555, move || {
                let g = t.group()?;
                let mut tids: Vec<i32> = g.threads().iter().map(|x| x.tid).collect();
                tids.sort_unstable();
                Ok(tids
                    .into_iter()
                    .map(|tid| {
                        let tt = Target {
                            tgid: t.tgid,
                            tid: Some(tid),
                        };
                        let base2 = base.clone();
                        let d = node_builder(&base, tt)
                            .dir(&tt.key(""), 0o555, move || Ok(entries(&base2, tt, false)));
                        (tid.to_string().into_bytes(), d)
                    })
                    .collect())
            }),
        ));
    }
    v.into_iter()
        .map(|(n, i)| (n.as_bytes().to_vec(), i))
        .collect()
}

/// `ptrace_may_access(PTRACE_MODE_ATTACH)` for `/proc/PID/mem`: the caller's ids all
/// match the target's (its filesystem ids against the target's real, effective and saved
/// ones), or it has `CAP_SYS_PTRACE`. (Dumpability is not checked.)
fn may_attach(target: &ProcView) -> Result<()> {
    let (_, me) = caller()?;
    let me = lock(&me.proc).creds.clone();
    let c = &target.creds;
    let same = [c.ruid, c.euid, c.suid].iter().all(|&u| u == me.fsuid)
        && [c.rgid, c.egid, c.sgid].iter().all(|&g| g == me.fsgid);
    if same || me.has_cap(crate::kernel::creds::CAP_SYS_PTRACE) {
        Ok(())
    } else {
        Err(errno!(EACCES))
    }
}

/// The sandbox is not a user namespace of the host: its ids map to themselves.
const ID_MAP: &str = "         0          0 4294967295\n";

fn comm(t: Target) -> Result<Vec<u8>> {
    match t.thread()? {
        Some(th) => Ok(lock(&th.comm).clone()),
        None => Ok(t.group()?.state().zombie_comm.clone()),
    }
}

/// Writing `comm` renames the thread; only threads of the writer's own process may be
/// renamed (Linux's `same_thread_group` check).
fn write_comm(t: Target, buf: &[u8]) -> Result<()> {
    let (_, me) = caller()?;
    if me.tg.tgid != t.tgid {
        return_errno!(EINVAL);
    }
    let th = t.thread()?.ok_or(errno!(ESRCH))?;
    let name = buf.strip_suffix(b"\n").unwrap_or(buf);
    *lock(&th.comm) = name.iter().take(15).copied().collect();
    Ok(())
}

/// Bytes of the process's memory in the range `pick` takes from its exec layout.
fn read_range(
    v: &ProcView,
    pick: impl Fn(&crate::mm::ExecLayout) -> (u64, u64),
) -> Result<Vec<u8>> {
    let Some(mm) = v.mm.as_ref() else {
        return Ok(Vec::new());
    };
    let mut mm = lock(mm);
    let (start, end) = pick(&mm.exec_layout);
    let len = usize::try_from(end.saturating_sub(start)).map_err(|_| errno!(EIO))?;
    let mut buf = vec![0u8; len];
    if len > 0 && mm.copy_in(UserAddr(start), &mut buf).is_err() {
        buf.clear();
    }
    Ok(buf)
}

/// The argument area. A process that overwrote its final NUL (setproctitle) gets, as
/// from Linux, the one string at the start of the area, running on into the environment
/// area, with its NUL, at most a page.
fn cmdline(t: Target) -> Result<Vec<u8>> {
    let v = t.view()?;
    let args = read_range(&v, |l| (l.arg_start, l.arg_end))?;
    if args.last().is_none_or(|&c| c == 0) {
        return Ok(args);
    }
    let page = crate::mm::PAGE_SIZE;
    let mut title = read_range(&v, |l| {
        let end = if l.env_start == l.arg_end {
            l.env_end
        } else {
            l.arg_end
        };
        (l.arg_start, end.min(l.arg_start.saturating_add(page)))
    })?;
    if let Some(nul) = title.iter().position(|&c| c == 0) {
        title.truncate(nul + 1);
    }
    Ok(title)
}

fn exe_link(b: &Builder, t: Target) -> Arc<dyn Inode> {
    b.link(
        &t.key("exe"),
        0o777,
        move || {
            let v = t.view()?;
            if v.exe_path.is_empty() {
                return_errno!(ENOENT);
            }
            Ok(v.exe_path)
        },
        Some(Box::new(move |_link| {
            let v = t.view()?;
            if v.exe_path.is_empty() {
                return_errno!(ENOENT);
            }
            let fs = fs_of(&v)?;
            fs.lookup(&fs.root, &v.exe_path, true)
        })),
    )
}

fn fs_link(b: &Builder, t: Target, name: &str, pick: fn(&FsContext) -> VfsPath) -> Arc<dyn Inode> {
    b.link(
        &t.key(name),
        0o777,
        move || Ok(shown_path(&pick(&fs_of(&t.view()?)?))),
        Some(Box::new(move |_link| Ok(pick(&fs_of(&t.view()?)?)))),
    )
}

fn file_of(t: Target, fd: i32) -> Result<Arc<dyn FileDescription>> {
    let v = t.view()?;
    let files = v.files.as_ref().ok_or(errno!(ENOENT))?;
    let f = lock(files).get(fd).map_err(|_| errno!(ENOENT))?;
    Ok(f)
}

fn fds_of(t: Target) -> Result<Vec<i32>> {
    let v = t.view()?;
    let Some(files) = v.files.as_ref() else {
        return Ok(Vec::new());
    };
    let mut fds = lock(files).fds();
    fds.sort_unstable();
    Ok(fds)
}

/// What `readlink` shows for an open file: its path, or `pipe:[N]`, `socket:[N]`,
/// `anon_inode:[eventfd]`… for files without one.
fn fd_name(f: &Arc<dyn FileDescription>) -> Vec<u8> {
    if let Some(p) = f.path() {
        return shown_path(&p);
    }
    let st = f.stat().unwrap_or_default();
    let any = f.as_any();
    let is = |pred: fn(&dyn std::any::Any) -> bool| any.is_some_and(pred);
    let name = match st.file_type() {
        libc::S_IFIFO => format!("pipe:[{}]", st.ino),
        libc::S_IFSOCK => format!("socket:[{}]", st.ino),
        // A host device handed in as stdio, by its conventional name.
        libc::S_IFCHR => {
            let (maj, min) = (
                crate::fs::dev::major(st.rdev),
                crate::fs::dev::minor(st.rdev),
            );
            match (maj, min) {
                (136, n) => format!("/dev/pts/{n}"),
                (1, 3) => "/dev/null".into(),
                (1, 5) => "/dev/zero".into(),
                (1, 7) => "/dev/full".into(),
                (1, 8) => "/dev/random".into(),
                (1, 9) => "/dev/urandom".into(),
                (5, 0) => "/dev/tty".into(),
                (5, 1) => "/dev/console".into(),
                _ => format!("anon_inode:[{}]", st.ino),
            }
        }
        _ if is(|a| a.is::<crate::fs::eventfd::EventFd>()) => "anon_inode:[eventfd]".into(),
        _ if is(|a| a.is::<crate::fs::epoll::EpollFile>()) => "anon_inode:[eventpoll]".into(),
        _ if is(|a| a.is::<crate::fs::timerfd::TimerFd>()) => "anon_inode:[timerfd]".into(),
        _ if is(|a| a.is::<crate::fs::signalfd::SignalFd>()) => "anon_inode:[signalfd]".into(),
        _ => format!("anon_inode:[{}]", st.ino),
    };
    name.into_bytes()
}

fn fd_node(b: &Builder, t: Target, fd: i32) -> Option<Arc<dyn Inode>> {
    let f = file_of(t, fd).ok()?;
    let perm = match f.status_flags() & libc::O_ACCMODE as u32 {
        a if a == libc::O_RDONLY as u32 => 0o500,
        a if a == libc::O_WRONLY as u32 => 0o300,
        _ => 0o700,
    };
    let alive = Arc::new(move || t.alive() && file_of(t, fd).is_ok());
    let owner = b.owner.clone().unwrap_or_else(|| Arc::new(|| (0, 0)));
    Some(b.with(owner, alive).link(
        &t.key(&format!("fd/{fd}")),
        perm,
        move || Ok(fd_name(&file_of(t, fd)?)),
        Some(Box::new(move |link: &VfsPath| {
            let f = file_of(t, fd)?;
            Ok(match f.path() {
                Some(p) => p,
                None => {
                    let c = t.view()?.creds;
                    let owner = (c.euid, c.egid);
                    detached(link, Arc::new(FileInode { file: f, owner }))
                }
            })
        })),
    ))
}

fn fdinfo_node(b: &Builder, t: Target, fd: i32) -> Option<Arc<dyn Inode>> {
    file_of(t, fd).ok()?;
    let alive = Arc::new(move || t.alive() && file_of(t, fd).is_ok());
    let owner = b.owner.clone().unwrap_or_else(|| Arc::new(|| (0, 0)));
    Some(
        b.with(owner, alive)
            .file(&t.key(&format!("fdinfo/{fd}")), 0o444, move || {
                fdinfo(t, fd)
            }),
    )
}

/// `fd/` or `fdinfo/`: one entry per open fd, each made by `node`. Lookups make only
/// the one asked for.
fn fds_dir(
    b: &Builder,
    t: Target,
    name: &str,
    node: fn(&Builder, Target, i32) -> Option<Arc<dyn Inode>>,
) -> Arc<dyn Inode> {
    let (bl, bf) = (b.clone(), b.clone());
    b.dir_find(
        &t.key(name),
        0o500,
        move || {
            Ok(fds_of(t)?
                .into_iter()
                .filter_map(|fd| Some((fd.to_string().into_bytes(), node(&bl, t, fd)?)))
                .collect())
        },
        move |n| {
            let fd = super::parse_id(n).ok_or(errno!(ENOENT))?;
            node(&bf, t, fd).ok_or(errno!(ENOENT))
        },
    )
}

fn fd_dir(b: &Builder, t: Target) -> Arc<dyn Inode> {
    fds_dir(b, t, "fd", fd_node)
}

fn fdinfo_dir(b: &Builder, t: Target) -> Arc<dyn Inode> {
    fds_dir(b, t, "fdinfo", fdinfo_node)
}

fn fdinfo(t: Target, fd: i32) -> Result<Vec<u8>> {
    let v = t.view()?;
    let files = v.files.as_ref().ok_or(errno!(ENOENT))?;
    let (f, cloexec) = {
        let table = lock(files);
        let f = table.get(fd).map_err(|_| errno!(ENOENT))?;
        (f, table.flags(fd).map(|x| x.cloexec).unwrap_or(false))
    };
    // A relative seek of 0 reads the offset without moving it; files without one are 0.
    let pos = f.seek(0, libc::SEEK_CUR).unwrap_or(0);
    let mut flags = f.status_flags();
    if cloexec {
        flags |= libc::O_CLOEXEC as u32;
    }
    let mnt = f.path().map(|p| p.mount.id).unwrap_or(0);
    let ino = f.stat().map(|s| s.ino).unwrap_or(0);
    Ok(format!("pos:\t{pos}\nflags:\t0{flags:o}\nmnt_id:\t{mnt}\nino:\t{ino}\n").into_bytes())
}

/// The sandbox's namespaces: one of each, shared by every process.
const NAMESPACES: [(&str, u64); 9] = [
    ("cgroup", 4026532835),
    ("ipc", 4026532839),
    ("mnt", 4026532840),
    ("net", 4026532842),
    ("pid", 4026532836),
    ("pid_for_children", 4026532836),
    ("time", 4026532834),
    ("time_for_children", 4026532834),
    ("user", 4026532837),
];

fn ns_dir(b: &Builder, t: Target) -> Arc<dyn Inode> {
    let mut v: Vec<(&str, Arc<dyn Inode>)> = Vec::new();
    for (name, ino) in NAMESPACES.into_iter().chain([("uts", 4026532838)]) {
        let kind = name.trim_end_matches("_for_children");
        let text = format!("{kind}:[{ino}]").into_bytes();
        let nsb = Builder {
            owner: None,
            alive: None,
            ..b.clone()
        };
        v.push((
            name,
            b.link(
                &t.key(&format!("ns/{name}")),
                0o777,
                move || Ok(text.clone()),
                Some(Box::new(move |link: &VfsPath| {
                    // An nsfs file: identified by its inode; setns is not supported.
                    let node = nsb.file(&format!("nsfs/{ino}"), 0o444, || Ok(Vec::new()));
                    let ns = NsInode { inner: node, ino };
                    Ok(detached(link, Arc::new(ns)))
                })),
            ),
        ));
    }
    b.static_dir(&t.key("ns"), v)
}

/// An nsfs file: a procfs file that reports the namespace's inode number.
struct NsInode {
    inner: Arc<dyn Inode>,
    ino: u64,
}

impl Inode for NsInode {
    fn as_any_arc(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync> {
        self
    }
    fn stat(&self) -> Result<crate::vfs::Stat> {
        let mut st = self.inner.stat()?;
        st.ino = self.ino;
        Ok(st)
    }
    fn open(self: Arc<Self>, path: &VfsPath, flags: u32) -> Result<Arc<dyn FileDescription>> {
        self.inner.clone().open(path, flags)
    }
    fn statfs(&self) -> Result<crate::vfs::StatFs> {
        Ok(crate::vfs::StatFs {
            // NSFS_MAGIC
            fs_type: 0x6e736673,
            bsize: 4096,
            namelen: 255,
            ..Default::default()
        })
    }
}

// ---- memory ----

/// What `stat`, `statm` and `status` say about a process's memory, in bytes.
#[derive(Default)]
struct VmStats {
    size: u64,
    rss_pages: u64,
    rss_anon: u64,
    rss_file: u64,
    data: u64,
    stack: u64,
    exe: u64,
    lib: u64,
    start_code: u64,
    end_code: u64,
    start_stack: u64,
    brk: (u64, u64),
    layout: crate::mm::ExecLayout,
}

fn vm_stats(v: &ProcView) -> VmStats {
    let Some(mm) = v.mm.as_ref() else {
        return VmStats::default();
    };
    let mm = lock(mm);
    let exe = String::from_utf8_lossy(&v.exe_path).into_owned();
    let mut s = VmStats {
        rss_pages: mm.resident_pages(),
        start_stack: mm.stack_top(),
        brk: mm.brk_range(),
        layout: mm.exec_layout.clone(),
        ..VmStats::default()
    };
    for (start, vma) in mm.vmas() {
        let len = vma.end - start;
        s.size += len;
        let resident = mm.resident_in(start, vma.end) * crate::mm::PAGE_SIZE;
        match vma.backing {
            Backing::Anon => s.rss_anon += resident,
            _ => s.rss_file += resident,
        }
        if vma.name == "[stack]" {
            s.stack += len;
        } else if vma.prot.exec && !vma.name.is_empty() {
            if vma.name == exe {
                s.exe += len;
                if s.start_code == 0 {
                    s.start_code = start;
                    s.end_code = vma.end;
                }
            } else {
                s.lib += len;
            }
        } else if vma.prot.write && !vma.shared {
            s.data += len;
        }
    }
    s
}

fn maps(t: Target, smaps: bool) -> Result<Vec<u8>> {
    let v = t.view()?;
    let mm = match v.mm.as_ref() {
        Some(m) => m,
        None => return Ok(Vec::new()),
    };
    let mm = lock(mm);
    let mut out = String::new();
    for (start, vma) in mm.vmas() {
        let (offset, shared) = match &vma.backing {
            Backing::Anon => (0, vma.shared),
            Backing::File { offset, .. } => (*offset, false),
            Backing::Shared { offset, .. } => (*offset, true),
        };
        let line = format!(
            "{start:08x}-{:08x} {}{}{}{} {offset:08x} 00:00 0",
            vma.end,
            if vma.prot.read { 'r' } else { '-' },
            if vma.prot.write { 'w' } else { '-' },
            if vma.prot.exec { 'x' } else { '-' },
            if shared { 's' } else { 'p' },
        );
        if vma.name.is_empty() {
            let _ = writeln!(out, "{line} ");
        } else {
            // The name starts at column 73, as Linux pads it.
            let _ = writeln!(out, "{line:<72} {}", vma.name);
        }
        if smaps {
            let kb = (vma.end - start) / 1024;
            let rss = mm.resident_in(start, vma.end) * crate::mm::PAGE_SIZE / 1024;
            let anon = if matches!(vma.backing, Backing::Anon) {
                rss
            } else {
                0
            };
            let rows: [(&str, u64); 21] = [
                ("Size", kb),
                ("KernelPageSize", 4),
                ("MMUPageSize", 4),
                ("Rss", rss),
                ("Pss", rss),
                ("Pss_Dirty", rss),
                ("Shared_Clean", 0),
                ("Shared_Dirty", 0),
                ("Private_Clean", 0),
                ("Private_Dirty", rss),
                ("Referenced", rss),
                ("Anonymous", anon),
                ("LazyFree", 0),
                ("AnonHugePages", 0),
                ("ShmemPmdMapped", 0),
                ("FilePmdMapped", 0),
                ("Shared_Hugetlb", 0),
                ("Private_Hugetlb", 0),
                ("Swap", 0),
                ("SwapPss", 0),
                ("Locked", 0),
            ];
            for (name, val) in rows {
                let _ = writeln!(out, "{:<16}{val:>8} kB", format!("{name}:"));
            }
            let _ = writeln!(out, "{:<16}{:>8}", "THPeligible:", 0);
            let mut flags = String::new();
            for (on, f) in [
                (vma.prot.read, "rd"),
                (vma.prot.write, "wr"),
                (vma.prot.exec, "ex"),
                (vma.shared, "sh"),
                (true, "mr"),
                (true, "mw"),
                (true, "me"),
            ] {
                if on {
                    flags.push_str(f);
                    flags.push(' ');
                }
            }
            let _ = writeln!(out, "VmFlags: {flags}");
        }
    }
    Ok(out.into_bytes())
}

// ---- stat, statm, status ----

/// Everything the three status files print, gathered once.
struct Snap {
    tgid: i32,
    pid: i32,
    ppid: i32,
    pgid: i32,
    sid: i32,
    /// The controlling terminal's device (Linux's `new_encode_dev`) and foreground group:
    /// 0 and -1 without one.
    tty_nr: u64,
    tpgid: i32,
    comm: Vec<u8>,
    state: char,
    threads: usize,
    utime: u64,
    cutime: u64,
    start: u64,
    exit_signal: i32,
    exit_code: i32,
    pending: u64,
    shared_pending: u64,
    blocked: u64,
    ignored: u64,
    caught: u64,
    /// The thread's nice value (`setpriority`).
    nice: i32,
    /// `PR_SET_NO_NEW_PRIVS`, the seccomp mode and how many filters are attached.
    no_new_privs: bool,
    seccomp_mode: u8,
    seccomp_filters: usize,
    view: ProcView,
    vm: VmStats,
}

fn snap(t: Target) -> Result<Snap> {
    let (k, me) = caller()?;
    let g = t.group()?;
    let th = t.thread()?;
    let view = th
        .as_ref()
        .map(|x| lock(&x.proc).clone())
        .unwrap_or_default();
    let (ppid, pgid, sid, exit, stopped, threads, exit_signal, cutime, shared_pending, zcomm) = {
        let st = g.state();
        (
            st.parent.as_ref().map_or(0, |p| p.tgid),
            st.pgid,
            st.sid,
            st.exit_status,
            st.stopped,
            st.threads.len(),
            st.exit_signal,
            st.children_cpu,
            st.pending.mask(),
            st.zombie_comm.clone(),
        )
    };
    let ctty = g.state().ctty.clone();
    let (tty_nr, tpgid) = ctty.map_or((0, -1), |t| {
        let dev = t.device();
        let (maj, min) = (crate::fs::dev::major(dev), crate::fs::dev::minor(dev));
        let nr = (min & 0xff) | ((maj & 0xfff) << 8) | ((min & !0xff) << 12);
        (nr, t.job().foreground())
    });
    let state = if exit.is_some() {
        'Z'
    } else if stopped {
        'T'
    } else if th.as_ref().is_some_and(|x| Arc::ptr_eq(x, &me)) || me.tg.tgid == t.tgid {
        'R'
    } else {
        'S'
    };
    let cpu = match (t.tid, &th) {
        (Some(_), Some(x)) => lock(&x.cpu_clock).clone().map(|c| c()).unwrap_or_default(),
        _ => g.cpu_time(),
    };
    let (pending, blocked, comm) = match &th {
        Some(x) => {
            let s = lock(&x.signals);
            (s.pending.mask(), s.mask, lock(&x.comm).clone())
        }
        None => (0, 0, zcomm),
    };
    let (mut ignored, mut caught) = (0u64, 0u64);
    if let Some(x) = &th {
        let hand = x.sighand();
        let acts = lock(&hand);
        for (i, a) in acts.iter().enumerate() {
            let bit = 1u64 << (i % 64);
            match a.handler {
                SIG_DFL => {}
                SIG_IGN => ignored |= bit,
                _ => caught |= bit,
            }
        }
    }
    let started = g
        .started
        .saturating_duration_since(k.boot_time)
        .saturating_add(crate::syscalls::time::BOOT_OFFSET);
    let vm = vm_stats(&view);
    Ok(Snap {
        tgid: t.tgid,
        pid: th.as_ref().map_or(t.tid.unwrap_or(t.tgid), |x| x.tid),
        ppid,
        pgid,
        sid,
        tty_nr,
        tpgid,
        comm,
        state,
        threads,
        utime: ticks(cpu),
        cutime: ticks(cutime),
        start: ticks(started),
        exit_signal,
        exit_code: exit.map_or(0, |e| e.wait_status()),
        pending,
        shared_pending,
        blocked,
        ignored,
        caught,
        nice: th
            .as_ref()
            .map_or(0, |x| x.nice.load(std::sync::atomic::Ordering::Relaxed)),
        no_new_privs: th
            .as_ref()
            .is_some_and(|x| x.no_new_privs.load(std::sync::atomic::Ordering::Relaxed)),
        seccomp_mode: th.as_ref().map_or(0, |x| x.seccomp.mode()),
        seccomp_filters: th.as_ref().map_or(0, |x| x.seccomp.filter_count()),
        view,
        vm,
    })
}

fn stat(t: Target) -> Result<Vec<u8>> {
    let s = snap(t)?;
    let vm = &s.vm;
    let rsslim = s
        .view
        .rlimits
        .0
        .get(libc::RLIMIT_RSS as usize)
        .map_or(u64::MAX, |r| r.0);
    let l = &vm.layout;
    // Linux prints the old signal words as 31-bit decimals.
    let sig = |m: u64| (m & 0x7fff_ffff).to_string();
    let fields: Vec<String> = vec![
        s.pid.to_string(),
        format!("({})", String::from_utf8_lossy(&s.comm)),
        s.state.to_string(),
        s.ppid.to_string(),
        s.pgid.to_string(),
        s.sid.to_string(),
        s.tty_nr.to_string(),
        s.tpgid.to_string(),
        "4194304".into(),
        "0".into(),
        "0".into(),
        "0".into(),
        "0".into(),
        s.utime.to_string(),
        "0".into(),
        s.cutime.to_string(),
        "0".into(),
        // priority and nice: a normal task's priority is 20 + nice.
        (20 + s.nice).to_string(),
        s.nice.to_string(),
        s.threads.to_string(),
        "0".into(),
        s.start.to_string(),
        vm.size.to_string(),
        vm.rss_pages.to_string(),
        rsslim.to_string(),
        vm.start_code.to_string(),
        vm.end_code.to_string(),
        vm.start_stack.to_string(),
        "0".into(),
        "0".into(),
        sig(s.pending | s.shared_pending),
        sig(s.blocked),
        sig(s.ignored),
        sig(s.caught),
        "0".into(),
        "0".into(),
        "0".into(),
        s.exit_signal.to_string(),
        "0".into(),
        "0".into(),
        "0".into(),
        "0".into(),
        "0".into(),
        "0".into(),
        "0".into(), // start_data
        "0".into(), // end_data
        vm.brk.0.to_string(),
        l.arg_start.to_string(),
        l.arg_end.to_string(),
        l.env_start.to_string(),
        l.env_end.to_string(),
        s.exit_code.to_string(),
    ];
    let mut out = fields.join(" ");
    out.push('\n');
    Ok(out.into_bytes())
}

fn statm(t: Target) -> Result<Vec<u8>> {
    let v = t.view()?;
    let vm = vm_stats(&v);
    let p = crate::mm::PAGE_SIZE;
    Ok(format!(
        "{} {} {} {} 0 {} 0\n",
        vm.size / p,
        vm.rss_pages,
        vm.rss_file / p,
        vm.exe / p,
        (vm.data + vm.stack) / p
    )
    .into_bytes())
}

fn status(t: Target) -> Result<Vec<u8>> {
    let s = snap(t)?;
    let c = &s.view.creds;
    let vm = &s.vm;
    let kb = |b: u64| format!("{:>8} kB", b / 1024);
    let state = match s.state {
        'R' => "R (running)",
        'T' => "T (stopped)",
        'Z' => "Z (zombie)",
        _ => "S (sleeping)",
    };
    let umask = s.view.fs.as_ref().map(|f| lock(f).umask).unwrap_or(0o022);
    let fdsize = s
        .view
        .files
        .as_ref()
        .map(|f| lock(f).fds().into_iter().max().unwrap_or(0))
        .unwrap_or(0);
    let fdsize = u32::try_from(fdsize)
        .unwrap_or(0)
        .saturating_add(1)
        .max(64)
        .next_power_of_two();
    // Linux ends the list with a space, even an empty one.
    let groups: Vec<String> = c.groups.iter().map(|g| g.to_string()).collect();
    let groups = format!("{} ", groups.join(" "));
    let mut o = String::new();
    let _ = writeln!(o, "Name:\t{}", String::from_utf8_lossy(&s.comm));
    let _ = writeln!(o, "Umask:\t{umask:04o}");
    let _ = writeln!(o, "State:\t{state}");
    let _ = writeln!(o, "Tgid:\t{}", s.tgid);
    let _ = writeln!(o, "Ngid:\t0");
    let _ = writeln!(o, "Pid:\t{}", s.pid);
    let _ = writeln!(o, "PPid:\t{}", s.ppid);
    let _ = writeln!(o, "TracerPid:\t0");
    let _ = writeln!(o, "Uid:\t{}\t{}\t{}\t{}", c.ruid, c.euid, c.suid, c.fsuid);
    let _ = writeln!(o, "Gid:\t{}\t{}\t{}\t{}", c.rgid, c.egid, c.sgid, c.fsgid);
    let _ = writeln!(o, "FDSize:\t{fdsize}");
    let _ = writeln!(o, "Groups:\t{groups}");
    let _ = writeln!(o, "NStgid:\t{}", s.tgid);
    let _ = writeln!(o, "NSpid:\t{}", s.pid);
    let _ = writeln!(o, "NSpgid:\t{}", s.pgid);
    let _ = writeln!(o, "NSsid:\t{}", s.sid);
    if s.view.mm.is_some() {
        let rss = vm.rss_pages * crate::mm::PAGE_SIZE;
        for (name, val) in [
            ("VmPeak", vm.size),
            ("VmSize", vm.size),
            ("VmLck", 0),
            ("VmPin", 0),
            ("VmHWM", rss),
            ("VmRSS", rss),
            ("RssAnon", vm.rss_anon),
            ("RssFile", vm.rss_file),
            ("RssShmem", 0),
            ("VmData", vm.data),
            ("VmStk", vm.stack),
            ("VmExe", vm.exe),
            ("VmLib", vm.lib),
            ("VmPTE", 0),
            ("VmSwap", 0),
        ] {
            let _ = writeln!(o, "{name}:\t{}", kb(val));
        }
        let _ = writeln!(o, "HugetlbPages:\t{}", kb(0));
    }
    let _ = writeln!(o, "CoreDumping:\t0");
    let _ = writeln!(o, "THP_enabled:\t1");
    let _ = writeln!(o, "Threads:\t{}", s.threads);
    let sigq_max = s
        .view
        .rlimits
        .0
        .get(libc::RLIMIT_SIGPENDING as usize)
        .map_or(0, |r| r.0);
    let _ = writeln!(o, "SigQ:\t0/{sigq_max}");
    let _ = writeln!(o, "SigPnd:\t{:016x}", s.pending);
    let _ = writeln!(o, "ShdPnd:\t{:016x}", s.shared_pending);
    let _ = writeln!(o, "SigBlk:\t{:016x}", s.blocked);
    let _ = writeln!(o, "SigIgn:\t{:016x}", s.ignored);
    let _ = writeln!(o, "SigCgt:\t{:016x}", s.caught);
    let _ = writeln!(o, "CapInh:\t{:016x}", c.cap_inheritable);
    let _ = writeln!(o, "CapPrm:\t{:016x}", c.cap_permitted);
    let _ = writeln!(o, "CapEff:\t{:016x}", c.cap_effective);
    let _ = writeln!(o, "CapBnd:\t{:016x}", c.cap_bounding);
    let _ = writeln!(o, "CapAmb:\t{:016x}", c.cap_ambient);
    let _ = writeln!(o, "NoNewPrivs:\t{}", u8::from(s.no_new_privs));
    let _ = writeln!(o, "Seccomp:\t{}", s.seccomp_mode);
    let _ = writeln!(o, "Seccomp_filters:\t{}", s.seccomp_filters);
    let _ = writeln!(o, "Speculation_Store_Bypass:\tthread vulnerable");
    let _ = writeln!(o, "SpeculationIndirectBranch:\tconditional enabled");
    let n = super::host_facts().ncpus.min(64);
    let mask: u64 = if n >= 64 { u64::MAX } else { (1u64 << n) - 1 };
    let _ = writeln!(o, "Cpus_allowed:\t{mask:x}");
    let list = if n <= 1 {
        "0".to_string()
    } else {
        format!("0-{}", n - 1)
    };
    let _ = writeln!(o, "Cpus_allowed_list:\t{list}");
    let _ = writeln!(o, "Mems_allowed:\t00000001");
    let _ = writeln!(o, "Mems_allowed_list:\t0");
    let _ = writeln!(o, "voluntary_ctxt_switches:\t0");
    let _ = writeln!(o, "nonvoluntary_ctxt_switches:\t0");
    Ok(o.into_bytes())
}

fn limits(t: Target) -> Result<Vec<u8>> {
    let v = t.view()?;
    Ok(format_limits(&v.rlimits).into_bytes())
}

pub(super) fn format_limits(r: &Rlimits) -> String {
    const NAMES: [(&str, &str); 16] = [
        ("Max cpu time", "seconds"),
        ("Max file size", "bytes"),
        ("Max data size", "bytes"),
        ("Max stack size", "bytes"),
        ("Max core file size", "bytes"),
        ("Max resident set", "bytes"),
        ("Max processes", "processes"),
        ("Max open files", "files"),
        ("Max locked memory", "bytes"),
        ("Max address space", "bytes"),
        ("Max file locks", "locks"),
        ("Max pending signals", "signals"),
        ("Max msgqueue size", "bytes"),
        ("Max nice priority", ""),
        ("Max realtime priority", ""),
        ("Max realtime timeout", "us"),
    ];
    let show = |v: u64| {
        if v == u64::MAX {
            "unlimited".to_string()
        } else {
            v.to_string()
        }
    };
    let mut o = format!(
        "{:<25} {:<20} {:<20} {:<10}\n",
        "Limit", "Soft Limit", "Hard Limit", "Units"
    );
    for ((name, unit), (soft, hard)) in NAMES.iter().zip(r.0.iter()) {
        let _ = write!(o, "{name:<25} {:<20} {:<20} ", show(*soft), show(*hard));
        if !unit.is_empty() {
            let _ = write!(o, "{unit:<10}");
        }
        o.push('\n');
    }
    o
}

fn mounts(t: Target, info: bool) -> Result<Vec<u8>> {
    let fs = fs_of(&t.view()?)?;
    let mut o = String::new();
    for m in fs.vfs.mounts() {
        let root = VfsPath {
            mount: m.clone(),
            dentry: m.root.clone(),
        };
        let at = match &m.mountpoint {
            Some(mp) => mp.path_from(&fs.root),
            None => b"/".to_vec(),
        };
        let at = String::from_utf8_lossy(&at).replace(' ', "\\040");
        let rw = if m.is_read_only() { "ro" } else { "rw" };
        let f = m.flags();
        let mut opts = rw.to_string();
        for (set, name) in [
            (f.nosuid, "nosuid"),
            (f.nodev, "nodev"),
            (f.noexec, "noexec"),
        ] {
            if set {
                opts.push(',');
                opts.push_str(name);
            }
        }
        opts.push_str(",relatime");
        if info {
            let dev = root.inode().stat().map(|s| s.dev).unwrap_or(0);
            let parent = m.mountpoint.as_ref().map_or(m.id, |p| p.mount.id);
            let _ = writeln!(
                o,
                "{} {parent} {}:{} / {at} {opts} - {} {} {rw}",
                m.id,
                crate::fs::dev::major(dev),
                crate::fs::dev::minor(dev),
                m.fs_type,
                m.fs_type
            );
        } else {
            let _ = writeln!(o, "{} {at} {} {opts} 0 0", m.fs_type, m.fs_type);
        }
    }
    Ok(o.into_bytes())
}
