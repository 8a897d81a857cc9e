/* Pseudo-terminals: posix_openpt/grantpt/unlockpt/ptsname and the /dev/pts node, the
 * line discipline as the master sees it (canonical editing with erase, kill and word
 * erase, echo, ICRNL/ONLCR, EOF with ^D, raw mode, VMIN 0 with and without VTIME),
 * window size, packet mode, controlling terminals (TIOCSCTTY and its rules, /dev/tty,
 * TIOCSPGRP's errors, a background reader stopped by SIGTTIN), another user kept out of
 * our slave, ^C on the master delivering SIGINT to the foreground group, and hang-up:
 * master close gives the session leader SIGHUP and the slave EOF, and the session
 * leader's exit gives the foreground group SIGHUP.
 *
 * Natively the ldisc runs asynchronously after a master write, so everything read back
 * is awaited (poll with a generous deadline), never assumed to be there at once. */
#include "child.h"

#include <dirent.h>
#include <grp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <termios.h>

/* Reads from fd until `want` bytes came or nothing more arrives within 5 s; returns the
 * count (NUL-terminates buf, which must hold want + 1). */
static size_t read_n(int fd, char *buf, size_t want)
{
    size_t got = 0;
    while (got < want) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 5000) <= 0 || !(p.revents & POLLIN))
            break;
        ssize_t n = read(fd, buf + got, want - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    buf[got] = 0;
    return got;
}

/* A new pty: master (O_NOCTTY) and its slave's name, unlocked. */
static int new_pty(char *name, size_t len)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0)
        return -1;
    if (grantpt(m) || unlockpt(m) || ptsname_r(m, name, len)) {
        close(m);
        return -1;
    }
    return m;
}

/* The bytes `s` shows on the master after being typed: echo, read back with read_n. */
static void expect_echo(int m, const char *s)
{
    char buf[256];
    read_n(m, buf, strlen(s));
    CHECK_STREQ(buf, s);
}

static void test_open_and_node(void)
{
    int m = CHECK_OK(posix_openpt(O_RDWR | O_NOCTTY));
    CHECK_OK(grantpt(m));
    char name[64];
    CHECK_EQ(ptsname_r(m, name, sizeof name), 0);
    CHECK_EQ(strncmp(name, "/dev/pts/", 9), 0);
    unsigned n = 99999;
    CHECK_OK(ioctl(m, TIOCGPTN, &n));
    char want[64];
    snprintf(want, sizeof want, "/dev/pts/%u", n);
    CHECK_STREQ(name, want);

    /* A new pty is locked: its slave cannot be opened until unlockpt. */
    int locked = 0;
    CHECK_OK(ioctl(m, TIOCGPTLCK, &locked));
    CHECK_EQ(locked, 1);
    CHECK_ERRNO(open(name, O_RDWR | O_NOCTTY), EIO);
    CHECK_OK(unlockpt(m));
    CHECK_OK(ioctl(m, TIOCGPTLCK, &locked));
    CHECK_EQ(locked, 0);
    int s = CHECK_OK(open(name, O_RDWR | O_NOCTTY));
    CHECK(isatty(s));
    CHECK(isatty(m));

    /* The node: a character device 136:N owned by us, the same inode fstat shows. */
    struct stat st, fst;
    CHECK_OK(stat(name, &st));
    CHECK_OK(fstat(s, &fst));
    CHECK(S_ISCHR(st.st_mode));
    CHECK_EQ(major(st.st_rdev), 136);
    CHECK_EQ(minor(st.st_rdev), n);
    CHECK_EQ(st.st_uid, geteuid());
    CHECK_EQ(st.st_mode & 0600, 0600);
    CHECK_EQ(st.st_ino, fst.st_ino);
    CHECK_EQ(st.st_dev, fst.st_dev);
    CHECK_EQ(st.st_rdev, fst.st_rdev);
    char tn[64] = "";
    CHECK_EQ(ttyname_r(s, tn, sizeof tn), 0);
    CHECK_STREQ(tn, name);

    /* /dev/pts lists it. */
    DIR *d = opendir("/dev/pts");
    CHECK(d != NULL);
    int listed = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        listed |= strcmp(e->d_name, name + 9) == 0;
    if (d)
        closedir(d);
    CHECK(listed);

    /* Another user may not open our slave; its own ptys are its own. */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int bad = setgroups(0, NULL) || setgid(65534) || setuid(65534);
        bad |= open(name, O_RDWR | O_NOCTTY) != -1 || errno != EACCES;
        int m2 = posix_openpt(O_RDWR | O_NOCTTY);
        char n2[64];
        struct stat st2;
        bad |= m2 < 0 || ptsname_r(m2, n2, sizeof n2) || stat(n2, &st2) || st2.st_uid != 65534;
        _exit(bad);
    }
    CHECK_EXITED(wait_status(pid, 0), 0);

    /* TIOCGPTPEER opens the slave from the master. */
    int peer = CHECK_OK(ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY));
    CHECK(isatty(peer));
    CHECK_OK(fstat(peer, &fst));
    CHECK_EQ(fst.st_rdev, st.st_rdev);
    /* Bad pointers are EFAULT, never a crash. */
    CHECK_ERRNO(ioctl(m, TIOCGWINSZ, BAD_PTR), EFAULT);
    CHECK_ERRNO(ioctl(s, TIOCSWINSZ, BAD_PTR), EFAULT);
    CHECK_ERRNO(ioctl(s, TCGETS, BAD_PTR), EFAULT);
    CHECK_ERRNO(ioctl(s, TCSETS, BAD_PTR), EFAULT);
    CHECK_ERRNO(ioctl(m, TIOCSPTLCK, BAD_PTR), EFAULT);
    CHECK_ERRNO(ioctl(m, TIOCGPTN, BAD_PTR), EFAULT);
    /* TIOCSIG sends only the signal keys' signals (nobody is in the foreground here). */
    CHECK_OK(ioctl(m, TIOCSIG, SIGINT));
    CHECK_ERRNO(ioctl(m, TIOCSIG, SIGKILL), EINVAL);
    CHECK_ERRNO(ioctl(s, TIOCSIG, SIGINT), ENOTTY);
    int ldisc = -1;
    CHECK_OK(ioctl(s, TIOCGETD, &ldisc));
    CHECK_EQ(ldisc, N_TTY);
    /* Master-only requests are not the slave's. */
    CHECK_ERRNO(ioctl(s, TIOCGPTN, &n), ENOTTY);
    close(peer);

    /* The node goes with the master, even while a slave is open. */
    close(m);
    CHECK_ERRNO(stat(name, &st), ENOENT);
    close(s);

    /* Not a terminal. */
    int fds[2];
    CHECK_OK(pipe(fds));
    CHECK_ERRNO(ioctl(fds[0], TIOCGPTN, &n), ENOTTY);
    CHECK_ERRNO(ioctl(fds[0], TIOCSCTTY, 0), ENOTTY);
    close(fds[0]);
    close(fds[1]);
}

static void test_canonical(void)
{
    char name[64], buf[256];
    int m = CHECK_OK(new_pty(name, sizeof name));
    int s = CHECK_OK(open(name, O_RDWR | O_NOCTTY));

    /* The default settings of a new pty. */
    struct termios t;
    CHECK_OK(tcgetattr(s, &t));
    CHECK(t.c_lflag & ICANON);
    CHECK(t.c_lflag & ECHO);
    CHECK(t.c_lflag & ISIG);
    CHECK(t.c_iflag & ICRNL);
    CHECK(t.c_oflag & ONLCR);
    CHECK_EQ(t.c_cc[VERASE], 0177);
    CHECK_EQ(t.c_cc[VKILL], 025);
    CHECK_EQ(t.c_cc[VEOF], 4);
    CHECK_EQ(t.c_cc[VINTR], 3);

    /* Erase: DEL takes back a character; the echo shows it being rubbed out, and the
     * newline comes back as CR LF. */
    CHECK_EQ(write(m, "abc\177d\n", 6), 6);
    CHECK_EQ(read(s, buf, sizeof buf), 4);
    CHECK_MEMEQ(buf, "abd\n", 4);
    expect_echo(m, "abc\b \bd\r\n");

    /* Kill (^U) erases the line, word erase (^W) the last word. */
    CHECK_EQ(write(m, "xyz\025ok\n", 7), 7);
    CHECK_EQ(read(s, buf, sizeof buf), 3);
    CHECK_MEMEQ(buf, "ok\n", 3);
    expect_echo(m, "xyz\b \b\b \b\b \bok\r\n");
    CHECK_EQ(write(m, "foo bar\027baz\n", 12), 12);
    CHECK_EQ(read(s, buf, sizeof buf), 8);
    CHECK_MEMEQ(buf, "foo baz\n", 8);
    expect_echo(m, "foo bar\b \b\b \b\b \bbaz\r\n");

    /* CR becomes NL (ICRNL); a control character echoes as ^X (ECHOCTL). */
    CHECK_EQ(write(m, "c\001\r", 3), 3);
    CHECK_EQ(read(s, buf, sizeof buf), 3);
    CHECK_MEMEQ(buf, "c\001\n", 3);
    expect_echo(m, "c^A\r\n");

    /* A line is not readable before its end; then FIONREAD counts it, and a short read
     * leaves the rest of the line for the next one. epoll sees it as poll does. */
    int ep = CHECK_OK(epoll_create1(EPOLL_CLOEXEC));
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = s };
    CHECK_OK(epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev));
    CHECK_EQ(write(m, "part", 4), 4);
    expect_echo(m, "part");
    struct pollfd p = { .fd = s, .events = POLLIN };
    CHECK_EQ(poll(&p, 1, 0), 0);
    CHECK_EQ(epoll_wait(ep, &ev, 1, 0), 0);
    int avail = -1;
    CHECK_OK(ioctl(s, FIONREAD, &avail));
    CHECK_EQ(avail, 0);
    CHECK_EQ(write(m, "\n", 1), 1);
    expect_echo(m, "\r\n");
    CHECK_OK(ioctl(s, FIONREAD, &avail));
    CHECK_EQ(avail, 5);
    CHECK_EQ(poll(&p, 1, 5000), 1);
    CHECK_EQ(epoll_wait(ep, &ev, 1, 5000), 1);
    CHECK_EQ(ev.data.fd, s);
    close(ep);
    CHECK_EQ(read(s, buf, 2), 2);
    CHECK_MEMEQ(buf, "pa", 2);
    CHECK_EQ(read(s, buf, sizeof buf), 3);
    CHECK_MEMEQ(buf, "rt\n", 3);

    /* ^D ends a line without a newline; on an empty line it is end of file. */
    CHECK_EQ(write(m, "hi\004", 3), 3);
    CHECK_EQ(read(s, buf, sizeof buf), 2);
    CHECK_MEMEQ(buf, "hi", 2);
    CHECK_EQ(write(m, "\004", 1), 1);
    CHECK_EQ(read(s, buf, sizeof buf), 0);
    expect_echo(m, "hi");

    /* Output: NL becomes CR NL (ONLCR) on the way to the master. */
    CHECK_EQ(write(s, "out\n", 4), 4);
    read_n(m, buf, 5);
    CHECK_STREQ(buf, "out\r\n");
    CHECK_OK(ioctl(m, FIONREAD, &avail));
    CHECK_EQ(avail, 0);

    /* ECHO off: nothing comes back, the line still does. */
    t.c_lflag &= ~ECHO;
    CHECK_OK(tcsetattr(s, TCSANOW, &t));
    CHECK_EQ(write(m, "pw\n", 3), 3);
    CHECK_EQ(read(s, buf, sizeof buf), 3);
    CHECK_OK(ioctl(m, FIONREAD, &avail));
    CHECK_EQ(avail, 0);

    /* TCFLSH drops typed input. */
    CHECK_EQ(write(m, "gone\n", 5), 5);
    CHECK_EQ(poll(&p, 1, 5000), 1);
    CHECK_OK(tcflush(s, TCIFLUSH));
    CHECK_OK(ioctl(s, FIONREAD, &avail));
    CHECK_EQ(avail, 0);
    CHECK_ERRNO(ioctl(s, TCFLSH, 7), EINVAL);
    CHECK_OK(tcdrain(s));
    close(s);
    close(m);
}

static void test_raw(void)
{
    char name[64], buf[64];
    int m = CHECK_OK(new_pty(name, sizeof name));
    int s = CHECK_OK(open(name, O_RDWR | O_NOCTTY));
    struct termios t;
    CHECK_OK(tcgetattr(s, &t));
    cfmakeraw(&t);
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    CHECK_OK(tcsetattr(s, TCSANOW, &t));
    struct termios back;
    CHECK_OK(tcgetattr(s, &back));
    CHECK_EQ(back.c_lflag & (ICANON | ECHO | ISIG), 0);
    CHECK_EQ(back.c_cc[VMIN], 1);

    /* Bytes arrive as typed: no line editing, no CR translation, no signal, no echo. */
    CHECK_EQ(write(m, "a\rb\003\177", 5), 5);
    CHECK_EQ(read_n(s, buf, 5), 5);
    CHECK_MEMEQ(buf, "a\rb\003\177", 5);
    int avail = -1;
    CHECK_OK(ioctl(m, FIONREAD, &avail));
    CHECK_EQ(avail, 0);
    /* Output is not processed either. */
    CHECK_EQ(write(s, "x\n", 2), 2);
    CHECK_EQ(read_n(m, buf, 2), 2);
    CHECK_MEMEQ(buf, "x\n", 2);

    /* VMIN 1: a nonblocking read with nothing there is EAGAIN; VMIN 0, VTIME 0: 0. */
    int fl = fcntl(s, F_GETFL);
    CHECK_OK(fcntl(s, F_SETFL, fl | O_NONBLOCK));
    CHECK_ERRNO(read(s, buf, sizeof buf), EAGAIN);
    CHECK_OK(fcntl(s, F_SETFL, fl));
    t.c_cc[VMIN] = 0;
    CHECK_OK(tcsetattr(s, TCSANOW, &t));
    CHECK_EQ(read(s, buf, sizeof buf), 0);
    /* VMIN 0, VTIME 1: a tenth of a second for a byte, then 0; with a byte typed within
     * VTIME (10 s here) the read returns it. */
    t.c_cc[VTIME] = 1;
    CHECK_OK(tcsetattr(s, TCSANOW, &t));
    CHECK_EQ(read(s, buf, sizeof buf), 0);
    t.c_cc[VTIME] = 100;
    CHECK_OK(tcsetattr(s, TCSANOW, &t));
    CHECK_EQ(write(m, "z", 1), 1);
    CHECK_EQ(read(s, buf, sizeof buf), 1);
    CHECK_EQ(buf[0], 'z');
    close(s);
    close(m);
}

static void test_winsize_and_packet(void)
{
    char name[64], buf[64];
    int m = CHECK_OK(new_pty(name, sizeof name));
    int s = CHECK_OK(open(name, O_RDWR | O_NOCTTY));
    struct winsize w = { .ws_row = 24, .ws_col = 80 };
    CHECK_OK(ioctl(m, TIOCSWINSZ, &w));
    struct winsize r = { 0 };
    CHECK_OK(ioctl(s, TIOCGWINSZ, &r));
    CHECK_EQ(r.ws_row, 24);
    CHECK_EQ(r.ws_col, 80);
    w.ws_col = 132;
    CHECK_OK(ioctl(s, TIOCSWINSZ, &w));
    CHECK_OK(ioctl(m, TIOCGWINSZ, &r));
    CHECK_EQ(r.ws_col, 132);

    /* Packet mode: each read of the master starts with a status byte, 0 for data. */
    int on = 1;
    CHECK_OK(ioctl(m, TIOCPKT, &on));
    CHECK_EQ(write(s, "k", 1), 1);
    struct pollfd p = { .fd = m, .events = POLLIN };
    CHECK_EQ(poll(&p, 1, 5000), 1);
    CHECK_EQ(read(m, buf, sizeof buf), 2);
    CHECK_MEMEQ(buf, "\0k", 2);
    on = 0;
    CHECK_OK(ioctl(m, TIOCPKT, &on));
    CHECK_ERRNO(ioctl(s, TIOCPKT, &on), ENOTTY);
    close(s);

    /* Every slave closed: the master reads EIO and polls POLLHUP. */
    CHECK_ERRNO(read(m, buf, sizeof buf), EIO);
    CHECK_EQ(poll(&p, 1, 5000), 1);
    CHECK(p.revents & POLLHUP);
    close(m);
}

/* ---- sessions ---- */

static sigset_t just(int sig)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    return s;
}

static int await_signal(int sig)
{
    sigset_t s = just(sig);
    struct timespec five = { 5, 0 };
    return sigtimedwait(&s, NULL, &five);
}

struct pty_arg {
    char name[64];
    int master; /* the parent's: the child closes its copy */
    int ready;  /* write end of a pipe to the parent */
};

/* Child: a session leader with the pty as controlling terminal; reports each step on
 * the pipe and waits for the parent's ^C, resize and hang-up. */
static void leader_main(void *p)
{
    struct pty_arg *a = p;
    close(a->master);
    sigset_t all;
    sigemptyset(&all);
    sigaddset(&all, SIGINT);
    sigaddset(&all, SIGWINCH);
    sigaddset(&all, SIGHUP);
    sigaddset(&all, SIGQUIT);
    sigprocmask(SIG_BLOCK, &all, NULL);
    CHECK_EQ(setsid(), getpid());
    /* Opening it without O_NOCTTY makes it our controlling terminal. */
    int s = CHECK_OK(open(a->name, O_RDWR));
    CHECK_EQ(tcgetsid(s), getpid());
    CHECK_EQ(tcgetpgrp(s), getpid());
    int tty = CHECK_OK(open("/dev/tty", O_RDWR));
    CHECK(isatty(tty));
    close(tty);
    CHECK_EQ(write(a->ready, "r", 1), 1);
    CHECK_EQ(await_signal(SIGINT), SIGINT);
    CHECK_EQ(write(a->ready, "i", 1), 1);
    CHECK_EQ(await_signal(SIGQUIT), SIGQUIT);
    CHECK_EQ(await_signal(SIGWINCH), SIGWINCH);
    struct winsize w = { 0 };
    CHECK_OK(ioctl(s, TIOCGWINSZ, &w));
    CHECK_EQ(w.ws_row, 30);
    CHECK_EQ(w.ws_col, 100);
    CHECK_EQ(write(a->ready, "w", 1), 1);
    /* The master closes: we are hung up. */
    CHECK_EQ(await_signal(SIGHUP), SIGHUP);
    char c;
    ssize_t n = read(s, &c, 1);
    CHECK(n == 0 || (n == -1 && errno == EIO));
    CHECK_ERRNO(write(s, "x", 1), EIO);
    struct termios t;
    CHECK_ERRNO(tcgetattr(s, &t), EIO);
    CHECK_ERRNO(tcsetpgrp(s, getpid()), ENOTTY);
    /* And no longer have a controlling terminal. */
    CHECK_ERRNO(open("/dev/tty", O_RDWR), ENXIO);
}

static void test_signals_and_hangup(void)
{
    struct pty_arg a;
    int m = CHECK_OK(new_pty(a.name, sizeof a.name));
    a.master = m;
    int fds[2];
    CHECK_OK(pipe(fds));
    a.ready = fds[1];
    pid_t pid = spawn_checks(leader_main, &a);
    close(fds[1]);
    char c = 0, buf[16];
    CHECK_EQ(read(fds[0], &c, 1), 1);
    CHECK_EQ(c, 'r');
    CHECK_EQ(write(m, "\003", 1), 1);
    CHECK_EQ(read(fds[0], &c, 1), 1);
    CHECK_EQ(c, 'i');
    expect_echo(m, "^C");
    /* TIOCSIG: the same without typing. */
    CHECK_OK(ioctl(m, TIOCSIG, SIGQUIT));
    struct winsize w = { .ws_row = 30, .ws_col = 100 };
    CHECK_OK(ioctl(m, TIOCSWINSZ, &w));
    CHECK_EQ(read(fds[0], &c, 1), 1);
    CHECK_EQ(c, 'w');
    /* The master sees the slave's session and foreground group. */
    pid_t sid = -1;
    CHECK_OK(ioctl(m, TIOCGSID, &sid));
    CHECK_EQ(sid, pid);
    close(m);
    CHECK_EXITED(wait_status(pid, 0), 0);
    (void)buf;
    close(fds[0]);
}

/* Child: TIOCSCTTY and TIOCSPGRP rules, /dev/tty, a background reader. */
static void ctty_rules_main(void *p)
{
    struct pty_arg *a = p;
    close(a->master);
    pid_t outer_pgrp = getpgrp();
    CHECK_EQ(setsid(), getpid());
    /* A new session has no controlling terminal. */
    CHECK_ERRNO(open("/dev/tty", O_RDWR), ENXIO);
    int s = CHECK_OK(open(a->name, O_RDWR | O_NOCTTY));
    CHECK_ERRNO(open("/dev/tty", O_RDWR), ENXIO);
    pid_t pg;
    CHECK_ERRNO(ioctl(s, TIOCGPGRP, &pg), ENOTTY);
    CHECK_ERRNO(tcsetpgrp(s, getpid()), ENOTTY);
    CHECK_OK(ioctl(s, TIOCSCTTY, 0));
    /* Again: already ours. */
    CHECK_OK(ioctl(s, TIOCSCTTY, 0));
    CHECK_EQ(tcgetpgrp(s), getpid());
    int tty = CHECK_OK(open("/dev/tty", O_RDWR));
    close(tty);

    /* TIOCSPGRP: negative, unknown, or another session's group. */
    CHECK_ERRNO(tcsetpgrp(s, -5), EINVAL);
    CHECK_ERRNO(tcsetpgrp(s, 0x7ffffff0), ESRCH);
    CHECK_ERRNO(tcsetpgrp(s, outer_pgrp), EPERM);

    /* A child that is not a session leader cannot take it; one that starts its own
     * session cannot take it from us without CAP_SYS_ADMIN and arg 1. */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int bad = 0;
        bad |= ioctl(s, TIOCSCTTY, 0) != -1 || errno != EPERM;
        bad |= setsid() == -1;
        bad |= open("/dev/tty", O_RDWR) != -1 || errno != ENXIO;
        bad |= ioctl(s, TIOCSCTTY, 0) != -1 || errno != EPERM;
        bad |= ioctl(s, TIOCSCTTY, 1) != 0;  /* we are root with every capability */
        bad |= tcgetsid(s) != getpid();
        _exit(bad);
    }
    CHECK_EXITED(wait_status(pid, 0), 0);
    /* It was stolen: ours is gone. */
    CHECK_ERRNO(open("/dev/tty", O_RDWR), ENXIO);
    CHECK_ERRNO(ioctl(s, TIOCNOTTY), ENOTTY);
    /* The thief has exited, so it is free again. */
    CHECK_OK(ioctl(s, TIOCSCTTY, 0));

    /* A background group that reads its terminal is stopped by SIGTTIN (its parent,
     * us, is in the same session: the group is not orphaned). */
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        char c;
        read(s, &c, 1);
        _exit(3);
    }
    setpgid(pid, pid);
    CHECK_STOPPED(wait_status(pid, WUNTRACED), SIGTTIN);
    /* In the foreground it reads. */
    CHECK_OK(tcsetpgrp(s, pid));
    CHECK_EQ(tcgetpgrp(s), pid);
    kill(pid, SIGKILL);
    CHECK_KILLED(wait_status(pid, 0), SIGKILL);

    /* We are now in the background ourselves, in an orphaned group (our parent is in
     * another session): reading is EIO rather than a stop, and so is tcsetpgrp. */
    char c;
    CHECK_ERRNO(read(s, &c, 1), EIO);
    /* TIOCNOTTY from the leader: the foreground group gets SIGHUP (ours is not it). */
    CHECK_OK(ioctl(s, TIOCNOTTY));
    CHECK_ERRNO(open("/dev/tty", O_RDWR), ENXIO);
    close(s);
}

/* Child: a session leader with the pty as controlling terminal whose foreground group
 * is a child's; the leader exits and the foreground group gets SIGHUP. The grandchild
 * (re-parented to us, a subreaper) reports through its exit status. */
static void leader_exit_main(void *p)
{
    struct pty_arg *a = p;
    close(a->master);
    CHECK_EQ(setsid(), getpid());
    int s = CHECK_OK(open(a->name, O_RDWR));
    int go[2];
    CHECK_OK(pipe(go));
    /* Blocked before the fork: the SIGHUP may come before the child runs at all. */
    sigset_t hup = just(SIGHUP);
    sigprocmask(SIG_BLOCK, &hup, NULL);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        close(go[1]);
        char c;
        /* Wait until the leader has made us the foreground group and left. */
        read(go[0], &c, 1);
        int got = await_signal(SIGHUP);
        _exit(got == SIGHUP ? 0 : 1);
    }
    setpgid(pid, pid);
    CHECK_OK(tcsetpgrp(s, pid));
    close(go[0]);
    /* Our exit closes the pipe: the child then waits for its SIGHUP. */
}

static void test_leader_exit(void)
{
    struct pty_arg a;
    int m = CHECK_OK(new_pty(a.name, sizeof a.name));
    a.master = m;
    CHECK_OK(prctl(PR_SET_CHILD_SUBREAPER, 1));
    CHECK_EXITED(run_in_child(leader_exit_main, &a), 0);
    /* The grandchild is ours now. */
    int st;
    pid_t r;
    do
        r = waitpid(-1, &st, 0);
    while (r == -1 && errno == EINTR);
    CHECK(r > 0);
    CHECK_EXITED(st, 0);
    CHECK_OK(prctl(PR_SET_CHILD_SUBREAPER, 0));
    close(m);
}

static void test_ctty_rules(void)
{
    struct pty_arg a;
    int m = CHECK_OK(new_pty(a.name, sizeof a.name));
    a.master = m;
    CHECK_EXITED(run_in_child(ctty_rules_main, &a), 0);
    close(m);
}

int main(void)
{
    test_open_and_node();
    test_canonical();
    test_raw();
    test_winsize_and_packet();
    test_signals_and_hangup();
    test_ctty_rules();
    test_leader_exit();
    return check_done();
}
