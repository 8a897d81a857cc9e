/* AF_UNIX stream sockets: socket/socketpair arguments, fstat and fcntl, options, data
 * and partial reads, MSG_PEEK/MSG_DONTWAIT/MSG_WAITALL, shutdown and EOF, EPIPE with and
 * without SIGPIPE, ECONNRESET, path and abstract names, autobind, listen backlog,
 * blocking and nonblocking accept, connect errors, send buffer limits with a blocking
 * writer, SO_RCVTIMEO, poll and epoll readiness, and client/server across fork() and
 * threads. */
#include "child.h"

#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>

static socklen_t make_addr(struct sockaddr_un *a, const char *path)
{
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    strncpy(a->sun_path, path, sizeof a->sun_path - 1);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
}

/* An abstract address: a NUL then `name` (not NUL-terminated). */
static socklen_t make_abstract(struct sockaddr_un *a, const char *name)
{
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    memcpy(a->sun_path + 1, name, strlen(name));
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
}

static int getint(int fd, int level, int name)
{
    int v = -12345;
    socklen_t len = sizeof v;
    if (getsockopt(fd, level, name, &v, &len) != 0)
        return -1000 - errno;
    return v;
}

static void test_create(void)
{
    CHECK_ERRNO(socket(AF_UNIX, SOCK_STREAM, 5), EPROTONOSUPPORT);
    CHECK_ERRNO(socket(AF_UNIX, 0, 0), ESOCKTNOSUPPORT);
    CHECK_ERRNO(socket(AF_UNIX, 42, 0), EINVAL);
    CHECK_ERRNO(socket(AF_UNIX, SOCK_STREAM | 0x100000, 0), EINVAL);
    CHECK_ERRNO(socket(1000, SOCK_STREAM, 0), EAFNOSUPPORT);
    CHECK_ERRNO(socket(-1, SOCK_STREAM, 0), EAFNOSUPPORT);

    int s = CHECK_OK(socket(AF_UNIX, SOCK_STREAM, 0));
    struct stat st;
    CHECK_OK(fstat(s, &st));
    CHECK(S_ISSOCK(st.st_mode));
    CHECK_EQ(fcntl(s, F_GETFL) & (O_ACCMODE | O_NONBLOCK), O_RDWR);
    CHECK_EQ(fcntl(s, F_GETFD), 0);
    CHECK_EQ(getint(s, SOL_SOCKET, SO_TYPE), SOCK_STREAM);
    CHECK_EQ(getint(s, SOL_SOCKET, SO_DOMAIN), AF_UNIX);
    CHECK_EQ(getint(s, SOL_SOCKET, SO_PROTOCOL), 0);
    CHECK_EQ(getint(s, SOL_SOCKET, SO_ACCEPTCONN), 0);
    CHECK_EQ(getint(s, SOL_SOCKET, SO_ERROR), 0);
    CHECK_EQ(getint(s, SOL_SOCKET, 9999), -1000 - ENOPROTOOPT);
    CHECK_EQ(getint(s, IPPROTO_TCP, 1), -1000 - EOPNOTSUPP);
    int v = 10000;
    CHECK_OK(setsockopt(s, SOL_SOCKET, SO_SNDBUF, &v, sizeof v));
    CHECK_EQ(getint(s, SOL_SOCKET, SO_SNDBUF), 20000);
    v = 30000;
    CHECK_OK(setsockopt(s, SOL_SOCKET, SO_RCVBUF, &v, sizeof v));
    CHECK_EQ(getint(s, SOL_SOCKET, SO_RCVBUF), 60000);
    v = 1;
    CHECK_OK(setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &v, sizeof v));
    CHECK_EQ(getint(s, SOL_SOCKET, SO_REUSEADDR), 1);
    CHECK_ERRNO(setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &v, 2), EINVAL);
    /* A short option buffer gets the first bytes and the length it got. */
    char small[2];
    socklen_t len = sizeof small;
    CHECK_OK(getsockopt(s, SOL_SOCKET, SO_TYPE, small, &len));
    CHECK_EQ(len, 2);
    len = (socklen_t)-1;
    CHECK_ERRNO(getsockopt(s, SOL_SOCKET, SO_TYPE, small, &len), EINVAL);
    CHECK_ERRNO(shutdown(s, 7), EINVAL);
    /* Not connected. */
    char c;
    CHECK_ERRNO(send(s, "x", 1, MSG_NOSIGNAL), ENOTCONN);
    CHECK_ERRNO(recv(s, &c, 1, MSG_DONTWAIT), EINVAL);
    struct sockaddr_un a;
    len = sizeof a;
    CHECK_ERRNO(getpeername(s, (struct sockaddr *)&a, &len), ENOTCONN);
    len = sizeof a;
    CHECK_OK(getsockname(s, (struct sockaddr *)&a, &len));
    CHECK_EQ(len, sizeof(sa_family_t));
    CHECK_EQ(a.sun_family, AF_UNIX);
    CHECK_ERRNO(listen(s, 1), EINVAL); /* unbound */
    CHECK_ERRNO(accept(s, NULL, NULL), EINVAL);
    CHECK_ERRNO(lseek(s, 0, SEEK_SET), ESPIPE);
    close(s);

    s = CHECK_OK(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    CHECK(fcntl(s, F_GETFL) & O_NONBLOCK);
    CHECK_EQ(fcntl(s, F_GETFD), FD_CLOEXEC);
    close(s);

    /* Socket calls on something that is not a socket. */
    int p[2];
    CHECK_OK(pipe(p));
    CHECK_ERRNO(listen(p[0], 1), ENOTSOCK);
    CHECK_ERRNO(shutdown(p[0], SHUT_RD), ENOTSOCK);
    CHECK_ERRNO(listen(-1, 1), EBADF);
    CHECK_ERRNO(syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, BAD_PTR), EFAULT);
    close(p[0]);
    close(p[1]);
}

static void test_pair_data(void)
{
    int sv[2];
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    char buf[64];

    CHECK_EQ(write(sv[0], "hello world", 11), 11);
    int n = -1;
    CHECK_OK(ioctl(sv[1], FIONREAD, &n));
    CHECK_EQ(n, 11);
    CHECK_EQ(recv(sv[1], buf, 5, MSG_PEEK), 5);
    CHECK_MEMEQ(buf, "hello", 5);
    /* Stream reads are partial and cross write boundaries. */
    CHECK_EQ(read(sv[1], buf, 4), 4);
    CHECK_MEMEQ(buf, "hell", 4);
    CHECK_EQ(write(sv[0], "!!", 2), 2);
    CHECK_EQ(read(sv[1], buf, sizeof buf), 9);
    CHECK_MEMEQ(buf, "o world!!", 9);
    CHECK_ERRNO(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT), EAGAIN);

    /* readv/writev and sendmsg/recvmsg with several buffers. */
    struct iovec w[2] = { { "abc", 3 }, { "defg", 4 } };
    CHECK_EQ(writev(sv[1], w, 2), 7);
    char r1[2], r2[10];
    struct iovec r[2] = { { r1, 2 }, { r2, 10 } };
    CHECK_EQ(readv(sv[0], r, 2), 7);
    CHECK_MEMEQ(r1, "ab", 2);
    CHECK_MEMEQ(r2, "cdefg", 5);
    struct msghdr m = { 0 };
    m.msg_iov = w;
    m.msg_iovlen = 2;
    CHECK_EQ(sendmsg(sv[0], &m, 0), 7);
    memset(r2, 0, sizeof r2);
    struct msghdr rm = { 0 };
    rm.msg_iov = r;
    rm.msg_iovlen = 2;
    CHECK_EQ(recvmsg(sv[1], &rm, 0), 7);
    CHECK_EQ(rm.msg_flags, 0);
    CHECK_MEMEQ(r2, "cdefg", 5);
    /* An address on a connected stream socket: EISCONN. */
    struct sockaddr_un a;
    socklen_t alen = make_addr(&a, "/nonexistent");
    CHECK_ERRNO(sendto(sv[0], "x", 1, 0, (struct sockaddr *)&a, alen), EISCONN);
    /* Zero bytes is a no-op. */
    CHECK_EQ(send(sv[0], "", 0, 0), 0);
    CHECK_ERRNO(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT), EAGAIN);
    CHECK_ERRNO(pread(sv[1], buf, 1, 0), ESPIPE);

    /* Both ends unnamed: names of length 2. */
    socklen_t len = sizeof a;
    CHECK_OK(getpeername(sv[0], (struct sockaddr *)&a, &len));
    CHECK_EQ(len, sizeof(sa_family_t));

    /* SO_PEERCRED of a pair: the creator. */
    struct ucred uc;
    len = sizeof uc;
    CHECK_OK(getsockopt(sv[0], SOL_SOCKET, SO_PEERCRED, &uc, &len));
    CHECK_EQ(len, sizeof uc);
    CHECK_EQ(uc.pid, getpid());
    CHECK_EQ(uc.uid, geteuid());
    CHECK_EQ(uc.gid, getegid());

    /* Nonblocking through fcntl. */
    CHECK_OK(fcntl(sv[1], F_SETFL, O_NONBLOCK));
    CHECK_ERRNO(read(sv[1], buf, 1), EAGAIN);
    close(sv[0]);
    close(sv[1]);
}

static volatile sig_atomic_t sigpipes;
static void on_sigpipe(int sig)
{
    (void)sig;
    sigpipes++;
}

static void test_shutdown_and_close(void)
{
    int sv[2];
    char buf[16];
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    CHECK_EQ(write(sv[0], "bye", 3), 3);
    CHECK_OK(shutdown(sv[0], SHUT_WR));
    struct pollfd p = { sv[1], POLLIN | POLLOUT | POLLRDHUP, 0 };
    CHECK_EQ(poll(&p, 1, 0), 1);
    CHECK_EQ(p.revents, POLLIN | POLLOUT | POLLRDHUP);
    CHECK_EQ(read(sv[1], buf, sizeof buf), 3);
    CHECK_EQ(read(sv[1], buf, sizeof buf), 0);
    CHECK_EQ(read(sv[1], buf, sizeof buf), 0);
    /* The shut side may still read what the other sends. */
    CHECK_EQ(write(sv[1], "back", 4), 4);
    CHECK_EQ(read(sv[0], buf, sizeof buf), 4);
    CHECK_ERRNO(send(sv[0], "x", 1, MSG_NOSIGNAL), EPIPE);
    struct sigaction sa = { 0 };
    sa.sa_handler = on_sigpipe;
    CHECK_OK(sigaction(SIGPIPE, &sa, NULL));
    sigpipes = 0;
    CHECK_ERRNO(write(sv[0], "x", 1), EPIPE);
    CHECK_EQ(sigpipes, 1);
    CHECK_ERRNO(send(sv[0], "x", 1, MSG_NOSIGNAL), EPIPE);
    CHECK_EQ(sigpipes, 1);
    /* Both directions shut: POLLHUP. */
    CHECK_OK(shutdown(sv[1], SHUT_WR));
    p.fd = sv[0];
    CHECK_EQ(poll(&p, 1, 0), 1);
    CHECK(p.revents & POLLHUP);
    close(sv[0]);
    close(sv[1]);

    /* Closing one end: EOF and POLLHUP on the other, EPIPE for writes. */
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    CHECK_EQ(write(sv[0], "last", 4), 4);
    close(sv[0]);
    p.fd = sv[1];
    p.events = POLLIN | POLLRDHUP;
    CHECK_EQ(poll(&p, 1, 0), 1);
    CHECK_EQ(p.revents, POLLIN | POLLRDHUP | POLLHUP);
    CHECK_EQ(read(sv[1], buf, sizeof buf), 4);
    CHECK_EQ(read(sv[1], buf, sizeof buf), 0);
    sigpipes = 0;
    CHECK_ERRNO(write(sv[1], "x", 1), EPIPE);
    CHECK_EQ(sigpipes, 1);
    close(sv[1]);

    /* Closing with unread data resets the peer: ECONNRESET once, then EOF. */
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    CHECK_EQ(write(sv[0], "unread", 6), 6);
    close(sv[1]);
    CHECK_EQ(getint(sv[0], SOL_SOCKET, SO_ERROR), ECONNRESET);
    CHECK_EQ(getint(sv[0], SOL_SOCKET, SO_ERROR), 0);
    close(sv[0]);
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    CHECK_EQ(write(sv[0], "unread", 6), 6);
    close(sv[1]);
    CHECK_ERRNO(read(sv[0], buf, sizeof buf), ECONNRESET);
    CHECK_EQ(read(sv[0], buf, sizeof buf), 0);
    close(sv[0]);
    signal(SIGPIPE, SIG_DFL);
}

/* SIGPIPE's default action kills a writer to a closed socket. */
static void write_to_closed(void *arg)
{
    (void)arg;
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    close(sv[1]);
    write(sv[0], "x", 1);
    _exit(0);
}

static void test_sigpipe_kills(void)
{
    CHECK_KILLED(run_in_child(write_to_closed, NULL), SIGPIPE);
}

static void test_paths(void)
{
    struct sockaddr_un a, got;
    const char *path = tmp_path("srv.sock");
    socklen_t alen = make_addr(&a, path);
    int srv = CHECK_OK(socket(AF_UNIX, SOCK_STREAM, 0));
    CHECK_OK(bind(srv, (struct sockaddr *)&a, alen));
    struct stat st;
    CHECK_OK(stat(path, &st));
    CHECK(S_ISSOCK(st.st_mode));
    CHECK_ERRNO(open(path, O_RDONLY), ENXIO);
    /* Binding a bound socket: the name is tried first (Linux's unix_bind_bsd). */
    CHECK_ERRNO(bind(srv, (struct sockaddr *)&a, alen), EADDRINUSE);
    struct sockaddr_un a2;
    socklen_t a2len = make_addr(&a2, tmp_path("second.sock"));
    CHECK_ERRNO(bind(srv, (struct sockaddr *)&a2, a2len), EINVAL);
    CHECK_ERRNO(access(a2.sun_path, F_OK), ENOENT);
    int other = CHECK_OK(socket(AF_UNIX, SOCK_STREAM, 0));
    CHECK_ERRNO(bind(other, (struct sockaddr *)&a, alen), EADDRINUSE);
    struct sockaddr_un missing;
    socklen_t mlen = make_addr(&missing, tmp_path("no/such/dir.sock"));
    CHECK_ERRNO(bind(other, (struct sockaddr *)&missing, mlen), ENOENT);
    CHECK_ERRNO(bind(other, (struct sockaddr *)&a, 1), EINVAL);
    struct sockaddr_in in = { .sin_family = AF_INET };
    CHECK_ERRNO(bind(other, (struct sockaddr *)&in, sizeof in), EINVAL);
    CHECK_ERRNO(bind(other, (struct sockaddr *)&a, 200), EINVAL);
    CHECK_ERRNO(bind(other, BAD_PTR, alen), EFAULT);

    socklen_t len = sizeof got;
    CHECK_OK(getsockname(srv, (struct sockaddr *)&got, &len));
    CHECK_EQ(len, alen);
    CHECK_STREQ(got.sun_path, path);

    /* Connecting before listen: ECONNREFUSED; to nothing: ENOENT; to a file too. */
    CHECK_ERRNO(connect(other, (struct sockaddr *)&a, alen), ECONNREFUSED);
    mlen = make_addr(&missing, tmp_path("missing.sock"));
    CHECK_ERRNO(connect(other, (struct sockaddr *)&missing, mlen), ENOENT);
    CHECK_OK(write_file(tmp_path("plain"), "x", 1));
    mlen = make_addr(&missing, tmp_path("plain"));
    CHECK_ERRNO(connect(other, (struct sockaddr *)&missing, mlen), ECONNREFUSED);
    int dg = CHECK_OK(socket(AF_UNIX, SOCK_DGRAM, 0));
    mlen = make_addr(&missing, tmp_path("dgram.sock"));
    CHECK_OK(bind(dg, (struct sockaddr *)&missing, mlen));
    CHECK_ERRNO(connect(other, (struct sockaddr *)&missing, mlen), EPROTOTYPE);
    close(dg);

    CHECK_OK(listen(srv, 5));
    CHECK_EQ(getint(srv, SOL_SOCKET, SO_ACCEPTCONN), 1);
    CHECK_ERRNO(connect(srv, (struct sockaddr *)&a, alen), EINVAL);
    int fl = fcntl(srv, F_GETFL);
    CHECK_OK(fcntl(srv, F_SETFL, fl | O_NONBLOCK));
    CHECK_ERRNO(accept(srv, NULL, NULL), EAGAIN);
    CHECK_ERRNO(accept4(srv, NULL, NULL, 0x40), EINVAL);
    struct pollfd p = { srv, POLLIN | POLLOUT, 0 };
    CHECK_EQ(poll(&p, 1, 0), 0);

    CHECK_OK(connect(other, (struct sockaddr *)&a, alen));
    CHECK_ERRNO(connect(other, (struct sockaddr *)&a, alen), EISCONN);
    CHECK_EQ(poll(&p, 1, 0), 1);
    CHECK_EQ(p.revents, POLLIN);
    len = sizeof got;
    CHECK_OK(getpeername(other, (struct sockaddr *)&got, &len));
    CHECK_EQ(len, alen);
    CHECK_STREQ(got.sun_path, path);
    /* Data sent before accept waits for the accepted socket. */
    CHECK_EQ(write(other, "early", 5), 5);
    len = sizeof got;
    memset(&got, 0x55, sizeof got);
    int conn = CHECK_OK(accept4(srv, (struct sockaddr *)&got, &len, SOCK_CLOEXEC | SOCK_NONBLOCK));
    CHECK_EQ(len, sizeof(sa_family_t)); /* the client is unnamed */
    CHECK_EQ(got.sun_family, AF_UNIX);
    CHECK_EQ(fcntl(conn, F_GETFD), FD_CLOEXEC);
    CHECK(fcntl(conn, F_GETFL) & O_NONBLOCK);
    len = sizeof got;
    CHECK_OK(getsockname(conn, (struct sockaddr *)&got, &len));
    CHECK_EQ(len, alen);
    CHECK_STREQ(got.sun_path, path);
    char buf[16];
    CHECK_EQ(read(conn, buf, sizeof buf), 5);
    CHECK_MEMEQ(buf, "early", 5);
    CHECK_ERRNO(read(conn, buf, sizeof buf), EAGAIN);

    /* Removing the name stops new connections, not the existing ones. */
    CHECK_OK(unlink(path));
    int late = CHECK_OK(socket(AF_UNIX, SOCK_STREAM, 0));
    CHECK_ERRNO(connect(late, (struct sockaddr *)&a, alen), ENOENT);
    CHECK_EQ(write(conn, "still", 5), 5);
    CHECK_EQ(read(other, buf, sizeof buf), 5);
    /* A new socket can take the name again. */
    CHECK_OK(bind(late, (struct sockaddr *)&a, alen));
    CHECK_OK(unlink(path));
    close(late);
    close(conn);
    close(other);
    close(srv);

    /* A listener's pending connections die with it. */
    srv = CHECK_OK(socket(AF_UNIX, SOCK_STREAM, 0));
    CHECK_OK(bind(srv, (struct sockaddr *)&a, alen));
    CHECK_OK(listen(srv, 5));
    other = CHECK_OK(socket(AF_UNIX, SOCK_STREAM, 0));
    CHECK_OK(connect(other, (struct sockaddr *)&a, alen));
    close(srv);
    CHECK_ERRNO(read(other, buf, sizeof buf), ECONNRESET);
    CHECK_EQ(read(other, buf, sizeof buf), 0);
    close(other);
    unlink(path);
}

static void test_backlog(void)
{
    struct sockaddr_un a;
    socklen_t alen = make_addr(&a, tmp_path("backlog.sock"));
    int srv = CHECK_OK(socket(AF_UNIX, SOCK_STREAM, 0));
    CHECK_OK(bind(srv, (struct sockaddr *)&a, alen));
    CHECK_OK(listen(srv, 1));
    int c[3];
    for (int i = 0; i < 3; i++)
        c[i] = CHECK_OK(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0));
    /* Linux takes backlog + 1 connections before refusing to queue more. */
    CHECK_OK(connect(c[0], (struct sockaddr *)&a, alen));
    CHECK_OK(connect(c[1], (struct sockaddr *)&a, alen));
    CHECK_ERRNO(connect(c[2], (struct sockaddr *)&a, alen), EAGAIN);
    int conn = CHECK_OK(accept(srv, NULL, NULL));
    CHECK_OK(connect(c[2], (struct sockaddr *)&a, alen));
    close(conn);
    for (int i = 0; i < 3; i++)
        close(c[i]);
    close(srv);
}

static void test_abstract_and_autobind(void)
{
    char name[64];
    snprintf(name, sizeof name, "carapace-unix-stream-%d", (int)getpid());
    struct sockaddr_un a, got;
    socklen_t alen = make_abstract(&a, name);
    int srv = CHECK_OK(socket(AF_UNIX, SOCK_STREAM, 0));
    CHECK_OK(bind(srv, (struct sockaddr *)&a, alen));
    int dup_name = CHECK_OK(socket(AF_UNIX, SOCK_STREAM, 0));
    CHECK_ERRNO(bind(dup_name, (struct sockaddr *)&a, alen), EADDRINUSE);
    socklen_t len = sizeof got;
    CHECK_OK(getsockname(srv, (struct sockaddr *)&got, &len));
    CHECK_EQ(len, alen);
    CHECK_EQ(got.sun_path[0], 0);
    CHECK_MEMEQ(got.sun_path + 1, name, strlen(name));
    CHECK_OK(listen(srv, 1));
    CHECK_OK(connect(dup_name, (struct sockaddr *)&a, alen));
    int conn = CHECK_OK(accept(srv, NULL, NULL));
    CHECK_EQ(write(dup_name, "abs", 3), 3);
    char buf[8];
    CHECK_EQ(read(conn, buf, sizeof buf), 3);
    close(conn);
    close(dup_name);
    close(srv);
    /* The name is free again once its socket is closed. */
    srv = CHECK_OK(socket(AF_UNIX, SOCK_STREAM, 0));
    CHECK_OK(bind(srv, (struct sockaddr *)&a, alen));
    close(srv);

    /* Autobind: only sun_family gives a five-hex-digit abstract name. */
    int s = CHECK_OK(socket(AF_UNIX, SOCK_STREAM, 0));
    struct sockaddr_un fam = { .sun_family = AF_UNIX };
    CHECK_OK(bind(s, (struct sockaddr *)&fam, sizeof(sa_family_t)));
    len = sizeof got;
    CHECK_OK(getsockname(s, (struct sockaddr *)&got, &len));
    CHECK_EQ(len, sizeof(sa_family_t) + 6);
    CHECK_EQ(got.sun_path[0], 0);
    int hex = 1;
    for (int i = 1; i <= 5; i++)
        hex &= !!strchr("0123456789abcdef", got.sun_path[i]);
    CHECK(hex);
    close(s);
}

static void test_buffer_limits(void)
{
    int sv[2];
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv));
    int v = 8192;
    CHECK_OK(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, sizeof v));
    static char chunk[4096];
    memset(chunk, 'z', sizeof chunk);
    long total = 0;
    ssize_t n;
    while ((n = write(sv[0], chunk, sizeof chunk)) > 0)
        total += n;
    CHECK_EQ(n, -1);
    CHECK_EQ(errno, EAGAIN);
    CHECK(total >= 4096 && total < (1 << 20));
    struct pollfd p = { sv[0], POLLOUT, 0 };
    CHECK_EQ(poll(&p, 1, 0), 0);
    static char sink[1 << 16];
    long got = 0;
    while ((n = read(sv[1], sink, sizeof sink)) > 0)
        got += n;
    CHECK_EQ(got, total);
    CHECK_EQ(poll(&p, 1, 0), 1);
    CHECK_EQ(p.revents, POLLOUT);
    close(sv[0]);
    close(sv[1]);
}

/* A blocking writer of 1 MiB through a small buffer, read by the parent. */
static int big_sv[2];
static void big_writer(void *arg)
{
    (void)arg;
    close(big_sv[1]);
    static char data[1 << 20];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (char)(i * 7);
    CHECK_EQ(write(big_sv[0], data, sizeof data), (long)sizeof data);
    close(big_sv[0]);
}

static void test_blocking_writer(void)
{
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, big_sv));
    int v = 4096;
    CHECK_OK(setsockopt(big_sv[0], SOL_SOCKET, SO_SNDBUF, &v, sizeof v));
    pid_t pid = spawn_checks(big_writer, NULL);
    close(big_sv[0]);
    static char buf[1 << 20];
    size_t got = 0;
    ssize_t n;
    while (got < sizeof buf && (n = read(big_sv[1], buf + got, 4000)) > 0)
        got += (size_t)n;
    CHECK_EQ(got, sizeof buf);
    int ok = 1;
    for (size_t i = 0; i < got; i++)
        ok &= buf[i] == (char)(i * 7);
    CHECK(ok);
    CHECK_EQ(read(big_sv[1], buf, 1), 0);
    CHECK_EXITED(wait_status(pid, 0), 0);
    close(big_sv[1]);
}

/* A signal during a blocking receive: with SA_RESTART the receive goes on, unless a
 * receive timeout is set, which makes it EINTR (Linux's sock_intr_errno). */
static int intr_sv[2];
static void on_usr1(int sig)
{
    (void)sig;
}

static void restarting_reader(void *arg)
{
    int with_timeout = *(int *)arg;
    struct sigaction sa = { 0 };
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    CHECK_OK(sigaction(SIGUSR1, &sa, NULL));
    if (with_timeout) {
        struct timeval tv = { 100, 0 };
        CHECK_OK(setsockopt(intr_sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    }
    CHECK_EQ(write(intr_sv[1], "r", 1), 1);
    char c;
    if (with_timeout)
        CHECK_ERRNO(recv(intr_sv[1], &c, 1, 0), EINTR);
    else
        CHECK_EQ(recv(intr_sv[1], &c, 1, 0), 1);
}

static void test_signal_interrupts(void)
{
    for (int with_timeout = 0; with_timeout <= 1; with_timeout++) {
        CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, intr_sv));
        pid_t pid = spawn_checks(restarting_reader, &with_timeout);
        char c;
        CHECK_EQ(read(intr_sv[0], &c, 1), 1); /* the handler is in place */
        /* Signal until the child is done; without a timeout it needs data too. */
        int st = -1;
        for (int i = 0; i < 100000; i++) {
            kill(pid, SIGUSR1);
            sleep_ms(10);
            if (i == 10 && !with_timeout)
                write(intr_sv[0], "d", 1);
            if (waitpid(pid, &st, WNOHANG) == pid)
                break;
        }
        CHECK_EXITED(st, 0);
        close(intr_sv[0]);
        close(intr_sv[1]);
    }
}

/* sendfile into a blocking socket waits for room until it has sent everything. */
static int sf_sv[2];
static void sendfile_reader(void *arg)
{
    (void)arg;
    close(sf_sv[0]);
    static char buf[1 << 20];
    size_t got = 0;
    ssize_t n;
    while (got < sizeof buf && (n = read(sf_sv[1], buf + got, 5000)) > 0)
        got += (size_t)n;
    CHECK_EQ(got, sizeof buf);
    int ok = 1;
    for (size_t i = 0; i < got; i++)
        ok &= buf[i] == (char)(i * 3);
    CHECK(ok);
}

static void test_sendfile(void)
{
    static char data[1 << 20];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (char)(i * 3);
    CHECK_OK(write_file(tmp_path("sendfile.src"), data, sizeof data));
    int fd = CHECK_OK(open(tmp_path("sendfile.src"), O_RDONLY));
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sf_sv));
    int v = 4096;
    CHECK_OK(setsockopt(sf_sv[0], SOL_SOCKET, SO_SNDBUF, &v, sizeof v));
    pid_t pid = spawn_checks(sendfile_reader, NULL);
    close(sf_sv[1]);
    CHECK_EQ(sendfile(sf_sv[0], fd, NULL, sizeof data), (long)sizeof data);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), (long)sizeof data);
    CHECK_EXITED(wait_status(pid, 0), 0);
    close(sf_sv[0]);
    close(fd);
}

/* A writer blocked on a full buffer whose reader goes away: the write returns what it
 * had sent, and the next one fails with EPIPE. */
static void cut_off_writer(void *arg)
{
    (void)arg;
    close(big_sv[1]);
    signal(SIGPIPE, SIG_IGN);
    static char data[1 << 20];
    ssize_t n = write(big_sv[0], data, sizeof data);
    CHECK(n > 0 && n < (ssize_t)sizeof data);
    CHECK_ERRNO(write(big_sv[0], data, 1), EPIPE);
    close(big_sv[0]);
}

static void test_reader_goes_away(void)
{
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, big_sv));
    int v = 4096;
    CHECK_OK(setsockopt(big_sv[0], SOL_SOCKET, SO_SNDBUF, &v, sizeof v));
    pid_t pid = spawn_checks(cut_off_writer, NULL);
    close(big_sv[0]);
    char c;
    CHECK_EQ(read(big_sv[1], &c, 1), 1);
    close(big_sv[1]);
    CHECK_EXITED(wait_status(pid, 0), 0);
}

/* The child connects to the parent's listener after the parent is (likely) blocked in
 * accept, writes in pieces, and checks SO_PEERCRED. */
static struct sockaddr_un fork_addr;
static socklen_t fork_alen;
static void fork_client(void *arg)
{
    (void)arg;
    sleep_ms(20);
    int c = CHECK_OK(socket(AF_UNIX, SOCK_STREAM, 0));
    CHECK_OK(connect(c, (struct sockaddr *)&fork_addr, fork_alen));
    struct ucred uc;
    socklen_t len = sizeof uc;
    CHECK_OK(getsockopt(c, SOL_SOCKET, SO_PEERCRED, &uc, &len));
    CHECK_EQ(uc.pid, getppid());
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(write(c, "0123456789", 10), 10);
        sleep_ms(5);
    }
    char buf[4];
    CHECK_EQ(read(c, buf, sizeof buf), 2);
    CHECK_MEMEQ(buf, "ok", 2);
    close(c);
}

static void test_fork_server(void)
{
    fork_alen = make_addr(&fork_addr, tmp_path("fork.sock"));
    int srv = CHECK_OK(socket(AF_UNIX, SOCK_STREAM, 0));
    CHECK_OK(bind(srv, (struct sockaddr *)&fork_addr, fork_alen));
    CHECK_OK(listen(srv, 4));
    int ep = CHECK_OK(epoll_create1(0));
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = srv };
    CHECK_OK(epoll_ctl(ep, EPOLL_CTL_ADD, srv, &ev));
    pid_t pid = spawn_checks(fork_client, NULL);
    struct epoll_event out;
    CHECK_EQ(epoll_wait(ep, &out, 1, 10000), 1);
    CHECK_EQ(out.data.fd, srv);
    int conn = CHECK_OK(accept(srv, NULL, NULL));
    struct ucred uc;
    socklen_t len = sizeof uc;
    CHECK_OK(getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &uc, &len));
    CHECK_EQ(uc.pid, pid);
    char buf[64];
    /* MSG_WAITALL gathers the child's three writes. */
    CHECK_EQ(recv(conn, buf, 30, MSG_WAITALL), 30);
    CHECK_MEMEQ(buf + 20, "0123456789", 10);
    CHECK_EQ(write(conn, "ok", 2), 2);
    /* The child closes: EPOLLIN|EPOLLRDHUP|EPOLLHUP on the connection. */
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.fd = conn;
    CHECK_OK(epoll_ctl(ep, EPOLL_CTL_ADD, conn, &ev));
    CHECK_EXITED(wait_status(pid, 0), 0);
    int n = epoll_wait(ep, &out, 1, 10000);
    CHECK_EQ(n, 1);
    CHECK_EQ(out.data.fd, conn);
    CHECK_EQ(out.events, EPOLLIN | EPOLLRDHUP | EPOLLHUP);
    CHECK_EQ(read(conn, buf, sizeof buf), 0);
    /* MSG_WAITALL stops at EOF. */
    CHECK_EQ(recv(conn, buf, 30, MSG_WAITALL), 0);
    close(conn);
    close(ep);
    close(srv);
    unlink(fork_addr.sun_path);
}

static void test_rcvtimeo(void)
{
    int sv[2];
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    struct timeval tv = { 0, 20000 }, back;
    CHECK_OK(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    socklen_t len = sizeof back;
    CHECK_OK(getsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &back, &len));
    CHECK_EQ(len, sizeof back);
    CHECK_EQ(back.tv_sec, 0);
    CHECK_EQ(back.tv_usec, 20000);
    char c;
    CHECK_ERRNO(read(sv[0], &c, 1), EAGAIN);
    CHECK_ERRNO(recv(sv[0], &c, 1, 0), EAGAIN);
    tv.tv_usec = 2000000;
    CHECK_ERRNO(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), EDOM);
    CHECK_ERRNO(setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, 4), EINVAL);
    close(sv[0]);
    close(sv[1]);
}

/* A thread serves a listener in the same process. */
static void *thread_server(void *arg)
{
    int srv = *(int *)arg;
    int conn = accept(srv, NULL, NULL);
    char buf[16];
    ssize_t n = read(conn, buf, sizeof buf);
    if (n > 0)
        write(conn, buf, (size_t)n);
    close(conn);
    return NULL;
}

static void test_threads(void)
{
    char name[64];
    snprintf(name, sizeof name, "carapace-unix-thread-%d", (int)getpid());
    struct sockaddr_un a;
    socklen_t alen = make_abstract(&a, name);
    int srv = CHECK_OK(socket(AF_UNIX, SOCK_STREAM, 0));
    CHECK_OK(bind(srv, (struct sockaddr *)&a, alen));
    CHECK_OK(listen(srv, 1));
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, thread_server, &srv), 0);
    int c = CHECK_OK(socket(AF_UNIX, SOCK_STREAM, 0));
    CHECK_OK(connect(c, (struct sockaddr *)&a, alen));
    CHECK_EQ(write(c, "echo", 4), 4);
    char buf[16];
    CHECK_EQ(recv(c, buf, 4, MSG_WAITALL), 4);
    CHECK_MEMEQ(buf, "echo", 4);
    CHECK_EQ(read(c, buf, sizeof buf), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    close(c);
    close(srv);
}

static void test_epoll_pair(void)
{
    int sv[2];
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv));
    int ep = CHECK_OK(epoll_create1(0));
    struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.u32 = 7 };
    CHECK_OK(epoll_ctl(ep, EPOLL_CTL_ADD, sv[1], &ev));
    struct epoll_event out;
    CHECK_EQ(epoll_wait(ep, &out, 1, 0), 0);
    CHECK_EQ(write(sv[0], "x", 1), 1);
    CHECK_EQ(epoll_wait(ep, &out, 1, 1000), 1);
    CHECK_EQ(out.events, EPOLLIN);
    CHECK_EQ(out.data.u32, 7);
    CHECK_EQ(epoll_wait(ep, &out, 1, 0), 0); /* edge-triggered */
    CHECK_EQ(write(sv[0], "y", 1), 1);
    CHECK_EQ(epoll_wait(ep, &out, 1, 1000), 1);
    close(ep);
    /* select sees the same. */
    fd_set rd, wr;
    FD_ZERO(&rd);
    FD_ZERO(&wr);
    FD_SET(sv[1], &rd);
    FD_SET(sv[1], &wr);
    struct timeval tv = { 0, 0 };
    CHECK_EQ(select(sv[1] + 1, &rd, &wr, NULL, &tv), 2);
    close(sv[0]);
    close(sv[1]);
}

int main(void)
{
    check_tmpdir("unix_stream");
    test_create();
    test_pair_data();
    test_shutdown_and_close();
    test_sigpipe_kills();
    test_paths();
    test_backlog();
    test_abstract_and_autobind();
    test_buffer_limits();
    test_blocking_writer();
    test_reader_goes_away();
    test_sendfile();
    test_signal_interrupts();
    test_fork_server();
    test_rcvtimeo();
    test_threads();
    test_epoll_pair();
    return check_done();
}
