/* inotify(7): events for changes made by this program (create, open, access, modify,
 * attrib, close, moves with cookies, delete, self events), the order Linux delivers them
 * in, merging of identical events, IN_ONESHOT, IN_MASK_ADD/IN_MASK_CREATE, IN_ONLYDIR,
 * IN_DONT_FOLLOW, IN_EXCL_UNLINK, IN_Q_OVERFLOW, FIONREAD, poll/epoll readiness, a blocking
 * read woken by another process, and the errors. */
#include "child.h"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/xattr.h>

struct ev {
    int wd;
    uint32_t mask;
    uint32_t cookie;
    char name[64];
};

/* Reads every queued event (the fd is non-blocking) into `out`; returns how many. */
static int drain(int fd, struct ev *out, int max)
{
    static char buf[1 << 16] __attribute__((aligned(8)));
    int n = 0;
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r <= 0)
            return n;
        for (char *p = buf; p < buf + r;) {
            struct inotify_event *e = (struct inotify_event *)p;
            if (n < max) {
                out[n].wd = e->wd;
                out[n].mask = e->mask;
                out[n].cookie = e->cookie;
                snprintf(out[n].name, sizeof out[n].name, "%s", e->len ? e->name : "");
            }
            n++;
            p += sizeof *e + e->len;
        }
    }
}

#define CHECK_EV(e, WD, MASK, NAME)                                                       \
    do {                                                                                  \
        CHECK_EQ((e).wd, (WD));                                                           \
        CHECK_EQ((e).mask, (MASK));                                                       \
        CHECK_STREQ((e).name, (NAME));                                                    \
    } while (0)

static void test_errors(void)
{
    CHECK_ERRNO(inotify_init1(0x1234), EINVAL);
    int fd = CHECK_OK(inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    CHECK_EQ(fcntl(fd, F_GETFD), FD_CLOEXEC);
    CHECK_EQ(fcntl(fd, F_GETFL) & O_NONBLOCK, O_NONBLOCK);
    char buf[256];
    CHECK_ERRNO(read(fd, buf, sizeof buf), EAGAIN);
    CHECK_ERRNO(inotify_add_watch(fd, tmp_path(""), 0), EINVAL);
    CHECK_ERRNO(inotify_add_watch(fd, tmp_path(""), IN_MODIFY | IN_MASK_ADD | IN_MASK_CREATE),
                EINVAL);
    CHECK_ERRNO(inotify_add_watch(fd, tmp_path("missing"), IN_MODIFY), ENOENT);
    CHECK_ERRNO(inotify_add_watch(-1, tmp_path(""), IN_MODIFY), EBADF);
    int notify_fd = CHECK_OK(open(tmp_path(""), O_RDONLY | O_DIRECTORY));
    CHECK_ERRNO(inotify_add_watch(notify_fd, tmp_path(""), IN_MODIFY), EINVAL);
    CHECK_ERRNO(inotify_rm_watch(notify_fd, 1), EINVAL);
    CHECK_ERRNO(inotify_add_watch(fd, BAD_PTR, IN_MODIFY), EFAULT);
    CHECK_ERRNO(inotify_rm_watch(fd, 12345), EINVAL);
    CHECK_OK(write_file(tmp_path("plain"), "x", 1));
    CHECK_ERRNO(inotify_add_watch(fd, tmp_path("plain"), IN_MODIFY | IN_ONLYDIR), ENOTDIR);
    CHECK_ERRNO(write(fd, "x", 1), EBADF);
    CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
    close(notify_fd);
    close(fd);
    int old = CHECK_OK(inotify_init());
    CHECK_EQ(fcntl(old, F_GETFD), 0);
    close(old);
}

static void test_file_lifecycle(void)
{
    struct ev e[32];
    int fd = CHECK_OK(inotify_init1(IN_NONBLOCK));
    CHECK_OK(mkdir(tmp_path("d"), 0755));
    int wd = CHECK_OK(inotify_add_watch(fd, tmp_path("d"), IN_ALL_EVENTS));
    CHECK(wd > 0);

    /* Create, two writes (merged into one IN_MODIFY), close. */
    int f = CHECK_OK(open(tmp_path("d/f"), O_CREAT | O_RDWR, 0644));
    CHECK_EQ(write(f, "ab", 2), 2);
    CHECK_EQ(write(f, "cd", 2), 2);
    int queued = -1;
    CHECK_OK(ioctl(fd, FIONREAD, &queued));
    CHECK_EQ(queued, 3 * (int)(sizeof(struct inotify_event) + 16));
    CHECK_OK(close(f));
    int n = drain(fd, e, 32);
    CHECK_EQ(n, 4);
    CHECK_EV(e[0], wd, IN_CREATE, "f");
    CHECK_EV(e[1], wd, IN_OPEN, "f");
    CHECK_EV(e[2], wd, IN_MODIFY, "f");
    CHECK_EV(e[3], wd, IN_CLOSE_WRITE, "f");
    CHECK_OK(ioctl(fd, FIONREAD, &queued));
    CHECK_EQ(queued, 0);

    /* Read-only: open, access, close-nowrite. */
    f = CHECK_OK(open(tmp_path("d/f"), O_RDONLY));
    char c;
    CHECK_EQ(read(f, &c, 1), 1);
    CHECK_OK(close(f));
    n = drain(fd, e, 32);
    CHECK_EQ(n, 3);
    CHECK_EV(e[0], wd, IN_OPEN, "f");
    CHECK_EV(e[1], wd, IN_ACCESS, "f");
    CHECK_EV(e[2], wd, IN_CLOSE_NOWRITE, "f");

    /* Attributes and sizes. */
    CHECK_OK(chmod(tmp_path("d/f"), 0600));
    CHECK_OK(truncate(tmp_path("d/f"), 1));
    struct timespec both[2] = {{1, 0}, {2, 0}};
    CHECK_OK(utimensat(AT_FDCWD, tmp_path("d/f"), both, 0));
    n = drain(fd, e, 32);
    CHECK_EQ(n, 3);
    CHECK_EV(e[0], wd, IN_ATTRIB, "f");
    CHECK_EV(e[1], wd, IN_MODIFY, "f");
    CHECK_EV(e[2], wd, IN_ATTRIB, "f");
    /* Extended attributes and owners are attributes too; so is one time alone, which
     * reads as an access or a modification. */
    CHECK_OK(setxattr(tmp_path("d/f"), "user.n", "1", 1, 0));
    CHECK_OK(chown(tmp_path("d/f"), 0, 0));
    struct timespec atime_only[2] = {{5, 0}, {0, UTIME_OMIT}};
    CHECK_OK(utimensat(AT_FDCWD, tmp_path("d/f"), atime_only, 0));
    CHECK_OK(removexattr(tmp_path("d/f"), "user.n"));
    n = drain(fd, e, 32);
    CHECK_EQ(n, 3);
    CHECK_EV(e[0], wd, IN_ATTRIB, "f");
    CHECK_EV(e[1], wd, IN_ACCESS, "f");
    CHECK_EV(e[2], wd, IN_ATTRIB, "f");

    /* A directory child: IN_ISDIR; the directory's own open and listing have no name
     * (the listing's accesses, the last empty read included, merge into one). */
    CHECK_OK(mkdir(tmp_path("d/sub"), 0755));
    int dfd = CHECK_OK(open(tmp_path("d"), O_RDONLY | O_DIRECTORY));
    char dents[1024];
    CHECK(syscall(SYS_getdents64, dfd, dents, sizeof dents) > 0);
    CHECK_EQ(syscall(SYS_getdents64, dfd, dents, sizeof dents), 0);
    CHECK_OK(close(dfd));
    n = drain(fd, e, 32);
    CHECK_EQ(n, 4);
    CHECK_EV(e[0], wd, IN_CREATE | IN_ISDIR, "sub");
    CHECK_EV(e[1], wd, IN_OPEN | IN_ISDIR, "");
    CHECK_EV(e[2], wd, IN_ACCESS | IN_ISDIR, "");
    CHECK_EV(e[3], wd, IN_CLOSE_NOWRITE | IN_ISDIR, "");

    /* A watch on the file too: a rename is MOVED_FROM/MOVED_TO with one cookie, then
     * MOVE_SELF; re-adding the same inode under its new name gives the same wd. */
    int wf = CHECK_OK(inotify_add_watch(fd, tmp_path("d/f"), IN_ALL_EVENTS));
    CHECK(wf != wd);
    CHECK_OK(rename(tmp_path("d/f"), tmp_path("d/g")));
    n = drain(fd, e, 32);
    CHECK_EQ(n, 3);
    CHECK_EV(e[0], wd, IN_MOVED_FROM, "f");
    CHECK_EV(e[1], wd, IN_MOVED_TO, "g");
    CHECK(e[0].cookie != 0);
    CHECK_EQ(e[1].cookie, e[0].cookie);
    CHECK_EV(e[2], wf, IN_MOVE_SELF, "");
    CHECK_EQ(inotify_add_watch(fd, tmp_path("d/g"), IN_ALL_EVENTS), wf);

    /* Link: the directory sees the new name (the file's link count changes too). */
    CHECK_OK(link(tmp_path("d/g"), tmp_path("d/h")));
    n = drain(fd, e, 32);
    CHECK_EQ(n, 2);
    CHECK_EV(e[0], wf, IN_ATTRIB, "");
    CHECK_EV(e[1], wd, IN_CREATE, "h");
    CHECK_OK(unlink(tmp_path("d/h")));
    n = drain(fd, e, 32);
    CHECK_EQ(n, 2);
    CHECK_EV(e[0], wf, IN_ATTRIB, "");
    CHECK_EV(e[1], wd, IN_DELETE, "h");

    /* Unlinking the last name: the file's ATTRIB, DELETE_SELF, IGNORED, then the
     * directory's DELETE. */
    CHECK_OK(unlink(tmp_path("d/g")));
    n = drain(fd, e, 32);
    CHECK_EQ(n, 4);
    CHECK_EV(e[0], wf, IN_ATTRIB, "");
    CHECK_EV(e[1], wf, IN_DELETE_SELF, "");
    CHECK_EV(e[2], wf, IN_IGNORED, "");
    CHECK_EV(e[3], wd, IN_DELETE, "g");
    CHECK_ERRNO(inotify_rm_watch(fd, wf), EINVAL);

    /* Unlinked while open: the file is deleted (DELETE_SELF) only at the last close. */
    int o = CHECK_OK(open(tmp_path("d/open"), O_CREAT | O_RDWR, 0644));
    int wo = CHECK_OK(inotify_add_watch(fd, tmp_path("d/open"), IN_ALL_EVENTS));
    int o2 = CHECK_OK(dup(o));
    CHECK_OK(unlink(tmp_path("d/open")));
    CHECK_EQ(write(o, "x", 1), 1);
    CHECK_OK(close(o));
    n = drain(fd, e, 32);
    CHECK_EQ(n, 6);
    CHECK_EV(e[0], wd, IN_CREATE, "open");
    CHECK_EV(e[1], wd, IN_OPEN, "open");
    CHECK_EV(e[2], wo, IN_ATTRIB, "");
    CHECK_EV(e[3], wd, IN_DELETE, "open");
    CHECK_EV(e[4], wd, IN_MODIFY, "open");
    CHECK_EV(e[5], wo, IN_MODIFY, "");
    CHECK_OK(close(o2));
    n = drain(fd, e, 32);
    CHECK_EQ(n, 4);
    CHECK_EV(e[0], wd, IN_CLOSE_WRITE, "open");
    CHECK_EV(e[1], wo, IN_CLOSE_WRITE, "");
    CHECK_EV(e[2], wo, IN_DELETE_SELF, "");
    CHECK_EV(e[3], wo, IN_IGNORED, "");

    /* A watched directory moved and removed. */
    int ws = CHECK_OK(inotify_add_watch(fd, tmp_path("d/sub"), IN_ALL_EVENTS));
    CHECK_OK(rename(tmp_path("d/sub"), tmp_path("d/sub2")));
    CHECK_OK(rmdir(tmp_path("d/sub2")));
    n = drain(fd, e, 32);
    CHECK_EQ(n, 6);
    CHECK_EV(e[0], wd, IN_MOVED_FROM | IN_ISDIR, "sub");
    CHECK_EV(e[1], wd, IN_MOVED_TO | IN_ISDIR, "sub2");
    CHECK_EV(e[2], ws, IN_MOVE_SELF, "");
    CHECK_EV(e[3], ws, IN_DELETE_SELF, "");
    CHECK_EV(e[4], ws, IN_IGNORED, "");
    CHECK_EV(e[5], wd, IN_DELETE | IN_ISDIR, "sub2");

    /* rm_watch: IN_IGNORED, and nothing more from that directory. */
    CHECK_OK(inotify_rm_watch(fd, wd));
    CHECK_OK(write_file(tmp_path("d/after"), "", 0));
    n = drain(fd, e, 32);
    CHECK_EQ(n, 1);
    CHECK_EV(e[0], wd, IN_IGNORED, "");
    close(fd);
}

static void test_mask_flags(void)
{
    struct ev e[8];
    int fd = CHECK_OK(inotify_init1(IN_NONBLOCK));
    CHECK_OK(write_file(tmp_path("m"), "", 0));
    /* A mask replaces the old one; IN_MASK_ADD extends it; IN_MASK_CREATE refuses. */
    int w = CHECK_OK(inotify_add_watch(fd, tmp_path("m"), IN_MODIFY));
    CHECK_EQ(inotify_add_watch(fd, tmp_path("m"), IN_ATTRIB), w);
    CHECK_ERRNO(inotify_add_watch(fd, tmp_path("m"), IN_ATTRIB | IN_MASK_CREATE), EEXIST);
    int f = CHECK_OK(open(tmp_path("m"), O_WRONLY));
    CHECK_EQ(write(f, "x", 1), 1);
    CHECK_OK(fchmod(f, 0640));
    int n = drain(fd, e, 8);
    CHECK_EQ(n, 1);
    CHECK_EV(e[0], w, IN_ATTRIB, "");
    CHECK_EQ(inotify_add_watch(fd, tmp_path("m"), IN_MODIFY | IN_MASK_ADD), w);
    CHECK_EQ(write(f, "x", 1), 1);
    CHECK_OK(fchmod(f, 0600));
    n = drain(fd, e, 8);
    CHECK_EQ(n, 2);
    CHECK_EV(e[0], w, IN_MODIFY, "");
    CHECK_EV(e[1], w, IN_ATTRIB, "");

    /* IN_ONESHOT: one event, then IN_IGNORED, then silence. */
    CHECK_EQ(inotify_add_watch(fd, tmp_path("m"), IN_MODIFY | IN_ONESHOT), w);
    CHECK_EQ(write(f, "x", 1), 1);
    CHECK_OK(fchmod(f, 0644));
    CHECK_EQ(write(f, "x", 1), 1);
    n = drain(fd, e, 8);
    CHECK_EQ(n, 2);
    CHECK_EV(e[0], w, IN_MODIFY, "");
    CHECK_EV(e[1], w, IN_IGNORED, "");
    close(f);

    /* IN_DONT_FOLLOW watches the link itself; without it, the target. */
    CHECK_OK(symlink("m", tmp_path("ml")));
    int wt = CHECK_OK(inotify_add_watch(fd, tmp_path("m"), IN_ATTRIB));
    CHECK_EQ(inotify_add_watch(fd, tmp_path("ml"), IN_ATTRIB), wt);
    int wl = CHECK_OK(inotify_add_watch(fd, tmp_path("ml"), IN_ATTRIB | IN_DONT_FOLLOW));
    CHECK(wl != wt);
    CHECK_ERRNO(inotify_add_watch(fd, tmp_path("ml"), IN_ATTRIB | IN_DONT_FOLLOW | IN_ONLYDIR),
                ENOTDIR);
    close(fd);
}

static void test_excl_unlink(void)
{
    struct ev e[8];
    CHECK_OK(mkdir(tmp_path("x"), 0755));
    int plain = CHECK_OK(inotify_init1(IN_NONBLOCK));
    int excl = CHECK_OK(inotify_init1(IN_NONBLOCK));
    int wp = CHECK_OK(inotify_add_watch(plain, tmp_path("x"), IN_MODIFY));
    int we = CHECK_OK(inotify_add_watch(excl, tmp_path("x"), IN_MODIFY | IN_EXCL_UNLINK));
    int f = CHECK_OK(open(tmp_path("x/f"), O_CREAT | O_RDWR, 0644));
    CHECK_OK(unlink(tmp_path("x/f")));
    CHECK_EQ(write(f, "x", 1), 1);
    close(f);
    int n = drain(plain, e, 8);
    CHECK_EQ(n, 1);
    CHECK_EV(e[0], wp, IN_MODIFY, "f");
    CHECK_EQ(drain(excl, e, 8), 0);
    (void)we;
    close(plain);
    close(excl);
}

static void test_overflow_and_small_buffers(void)
{
    int fd = CHECK_OK(inotify_init1(IN_NONBLOCK));
    CHECK_OK(write_file(tmp_path("o"), "", 0));
    int w = CHECK_OK(inotify_add_watch(fd, tmp_path("o"), IN_MODIFY | IN_ATTRIB));
    int f = CHECK_OK(open(tmp_path("o"), O_WRONLY));
    /* Alternating events never merge: 16384 (max_queued_events) and more. */
    for (int i = 0; i < 8200; i++) {
        if (write(f, "x", 1) != 1 || fchmod(f, i % 2 ? 0644 : 0600) != 0)
            break;
    }
    close(f);
    static struct ev e[16400];
    int n = drain(fd, e, 16400);
    CHECK_EQ(n, 16385);
    CHECK_EQ(e[16383].wd, w);
    CHECK_EQ(e[16384].wd, -1);
    CHECK_EQ(e[16384].mask, IN_Q_OVERFLOW);

    /* A buffer too small for the first event is EINVAL; whole events only. */
    CHECK_OK(write_file(tmp_path("named-entry"), "", 0));
    int d = CHECK_OK(inotify_init1(IN_NONBLOCK));
    int wd = CHECK_OK(inotify_add_watch(d, tmp_path(""), IN_ATTRIB));
    CHECK_OK(chmod(tmp_path("named-entry"), 0600));
    CHECK_OK(chmod(tmp_path("o"), 0600));
    char buf[sizeof(struct inotify_event) + 32];
    CHECK_ERRNO(read(d, buf, sizeof(struct inotify_event)), EINVAL);
    CHECK_EQ(read(d, buf, sizeof buf), (ssize_t)(sizeof(struct inotify_event) + 16));
    struct inotify_event *ie = (struct inotify_event *)buf;
    CHECK_EQ(ie->wd, wd);
    CHECK_STREQ(ie->name, "named-entry");
    CHECK_EQ(ie->len, 16);
    CHECK_EQ(read(d, buf, sizeof buf), (ssize_t)(sizeof(struct inotify_event) + 16));
    CHECK_STREQ(ie->name, "o");
    close(d);
    close(fd);
}

static void test_readiness_and_blocking(void)
{
    int fd = CHECK_OK(inotify_init1(IN_NONBLOCK));
    CHECK_OK(mkdir(tmp_path("p"), 0755));
    int w = CHECK_OK(inotify_add_watch(fd, tmp_path("p"), IN_CREATE));
    struct pollfd p = {.fd = fd, .events = POLLIN};
    CHECK_EQ(poll(&p, 1, 0), 0);
    int ep = CHECK_OK(epoll_create1(0));
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 7};
    CHECK_OK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
    struct epoll_event got;
    CHECK_EQ(epoll_wait(ep, &got, 1, 0), 0);
    CHECK_OK(write_file(tmp_path("p/new"), "", 0));
    CHECK_EQ(poll(&p, 1, 0), 1);
    CHECK_EQ(p.revents, POLLIN);
    CHECK_EQ(epoll_wait(ep, &got, 1, 0), 1);
    CHECK_EQ(got.data.u32, 7);
    struct ev e[4];
    CHECK_EQ(drain(fd, e, 4), 1);
    CHECK_EV(e[0], w, IN_CREATE, "new");
    close(ep);
    close(fd);

    /* A blocking read waits until another process makes a change. */
    int b = CHECK_OK(inotify_init());
    int wb = CHECK_OK(inotify_add_watch(b, tmp_path("p"), IN_CREATE));
    pid_t pid = fork();
    if (pid == 0) {
        usleep(50 * 1000);
        _exit(write_file(tmp_path("p/from-child"), "", 0) == 0 ? 0 : 1);
    }
    char buf[256];
    ssize_t n = read(b, buf, sizeof buf);
    CHECK_EQ(n, (ssize_t)(sizeof(struct inotify_event) + 16));
    struct inotify_event *ie = (struct inotify_event *)buf;
    CHECK_EQ(ie->wd, wb);
    CHECK_EQ(ie->mask, IN_CREATE);
    CHECK_STREQ(ie->name, "from-child");
    int st;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    CHECK_EXITED(st, 0);
    close(b);
}

int main(void)
{
    check_tmpdir("inotify");
    test_errors();
    test_file_lifecycle();
    test_mask_flags();
    test_excl_unlink();
    test_overflow_and_small_buffers();
    test_readiness_and_blocking();
    return check_done();
}
