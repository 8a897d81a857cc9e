/* AF_UNIX datagram and seqpacket sockets: message boundaries, MSG_TRUNC (flag and
 * msg_flags), MSG_PEEK, zero-length messages, sender addresses, connect/disconnect,
 * EPERM/ECONNREFUSED/ENOTCONN/EPROTOTYPE/EMSGSIZE, send buffer limits, sendmmsg and
 * recvmmsg, poll readiness, seqpacket listen/accept/EOF/EPIPE, across fork(). */
#include "child.h"

#include <poll.h>
#include <stddef.h>
#include <sys/epoll.h>
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

static int getint(int fd, int name)
{
    int v = -12345;
    socklen_t len = sizeof v;
    if (getsockopt(fd, SOL_SOCKET, name, &v, &len) != 0)
        return -1000 - errno;
    return v;
}

static void test_pair_boundaries(void)
{
    int sv[2];
    char buf[64];
    CHECK_OK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv));
    CHECK_EQ(getint(sv[0], SO_TYPE), SOCK_DGRAM);
    struct pollfd p = { sv[1], POLLIN | POLLOUT, 0 };
    CHECK_EQ(poll(&p, 1, 0), 1);
    CHECK_EQ(p.revents, POLLOUT);
    CHECK_EQ(send(sv[0], "abc", 3, 0), 3);
    CHECK_EQ(send(sv[0], "defgh", 5, 0), 5);
    CHECK_EQ(send(sv[0], "", 0, 0), 0);
    CHECK_EQ(poll(&p, 1, 0), 1);
    CHECK_EQ(p.revents, POLLIN | POLLOUT);
    int n = -1;
    CHECK_OK(ioctl(sv[1], FIONREAD, &n));
    CHECK_EQ(n, 3);
    CHECK_EQ(recv(sv[1], buf, sizeof buf, MSG_PEEK), 3);
    CHECK_EQ(recv(sv[1], buf, sizeof buf, 0), 3);
    CHECK_MEMEQ(buf, "abc", 3);
    CHECK_EQ(read(sv[1], buf, sizeof buf), 5);
    CHECK_MEMEQ(buf, "defgh", 5);
    CHECK_EQ(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT), 0); /* the empty datagram */
    CHECK_ERRNO(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT), EAGAIN);

    /* A datagram longer than the buffer: the rest is lost; MSG_TRUNC tells its length. */
    CHECK_EQ(send(sv[0], "0123456789", 10, 0), 10);
    CHECK_EQ(send(sv[0], "0123456789", 10, 0), 10);
    CHECK_EQ(recv(sv[1], buf, 4, MSG_TRUNC), 10);
    CHECK_MEMEQ(buf, "0123", 4);
    struct iovec iov = { buf, 4 };
    struct msghdr m = { 0 };
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    CHECK_EQ(recvmsg(sv[1], &m, 0), 4);
    CHECK_EQ(m.msg_flags, MSG_TRUNC);
    CHECK_ERRNO(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT), EAGAIN);

    /* A socketpair's datagram ends name no one. */
    CHECK_EQ(send(sv[0], "x", 1, 0), 1);
    struct sockaddr_un from;
    socklen_t flen = sizeof from;
    CHECK_EQ(recvfrom(sv[1], buf, sizeof buf, 0, (struct sockaddr *)&from, &flen), 1);
    CHECK_EQ(flen, 0);
    close(sv[0]);
    /* The other end of a datagram pair is gone: ECONNREFUSED, then not connected. */
    CHECK_ERRNO(send(sv[1], "x", 1, 0), ECONNREFUSED);
    CHECK_ERRNO(send(sv[1], "x", 1, 0), ENOTCONN);
    close(sv[1]);

    /* SOCK_RAW is taken as SOCK_DGRAM. */
    int r = CHECK_OK(socket(AF_UNIX, SOCK_RAW, 0));
    CHECK_EQ(getint(r, SO_TYPE), SOCK_DGRAM);
    CHECK_ERRNO(listen(r, 1), EOPNOTSUPP);
    CHECK_ERRNO(accept(r, NULL, NULL), EOPNOTSUPP);
    close(r);
}

static void test_addresses(void)
{
    struct sockaddr_un sa, ca, from;
    socklen_t salen = make_addr(&sa, tmp_path("dsrv.sock"));
    socklen_t calen = make_addr(&ca, tmp_path("dcli.sock"));
    int srv = CHECK_OK(socket(AF_UNIX, SOCK_DGRAM, 0));
    CHECK_OK(bind(srv, (struct sockaddr *)&sa, salen));
    int cli = CHECK_OK(socket(AF_UNIX, SOCK_DGRAM, 0));
    char buf[64];

    CHECK_ERRNO(send(cli, "x", 1, 0), ENOTCONN);
    /* From an unnamed sender: no address. */
    CHECK_EQ(sendto(cli, "anon", 4, 0, (struct sockaddr *)&sa, salen), 4);
    socklen_t flen = sizeof from;
    CHECK_EQ(recvfrom(srv, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen), 4);
    CHECK_EQ(flen, 0);
    /* From a named one: its path, with its length. */
    CHECK_OK(bind(cli, (struct sockaddr *)&ca, calen));
    CHECK_EQ(sendto(cli, "named", 5, 0, (struct sockaddr *)&sa, salen), 5);
    flen = sizeof from;
    CHECK_EQ(recvfrom(srv, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen), 5);
    CHECK_EQ(flen, calen);
    CHECK_STREQ(from.sun_path, ca.sun_path);
    /* ... and through recvmsg. */
    CHECK_EQ(sendto(cli, "again", 5, 0, (struct sockaddr *)&sa, salen), 5);
    struct iovec iov = { buf, sizeof buf };
    struct msghdr m = { 0 };
    m.msg_name = &from;
    m.msg_namelen = sizeof from;
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    CHECK_EQ(recvmsg(srv, &m, 0), 5);
    CHECK_EQ(m.msg_namelen, calen);
    /* The server answers to the address it got. */
    CHECK_EQ(sendto(srv, "reply", 5, 0, (struct sockaddr *)&from, m.msg_namelen), 5);
    CHECK_EQ(recv(cli, buf, sizeof buf, 0), 5);
    CHECK_MEMEQ(buf, "reply", 5);

    /* Errors naming the destination. */
    struct sockaddr_un bad;
    socklen_t blen = make_addr(&bad, tmp_path("nothing.sock"));
    CHECK_ERRNO(sendto(cli, "x", 1, 0, (struct sockaddr *)&bad, blen), ENOENT);
    int st = CHECK_OK(socket(AF_UNIX, SOCK_STREAM, 0));
    blen = make_addr(&bad, tmp_path("stream.sock"));
    CHECK_OK(bind(st, (struct sockaddr *)&bad, blen));
    CHECK_ERRNO(sendto(cli, "x", 1, 0, (struct sockaddr *)&bad, blen), EPROTOTYPE);
    close(st);

    /* connect sets the default destination; AF_UNSPEC undoes it. */
    CHECK_OK(connect(cli, (struct sockaddr *)&sa, salen));
    socklen_t plen = sizeof from;
    CHECK_OK(getpeername(cli, (struct sockaddr *)&from, &plen));
    CHECK_EQ(plen, salen);
    CHECK_EQ(send(cli, "conn", 4, 0), 4);
    CHECK_EQ(recv(srv, buf, sizeof buf, 0), 4);
    struct sockaddr unspec = { .sa_family = AF_UNSPEC };
    CHECK_OK(connect(cli, &unspec, sizeof unspec));
    CHECK_ERRNO(send(cli, "x", 1, 0), ENOTCONN);
    plen = sizeof from;
    CHECK_ERRNO(getpeername(cli, (struct sockaddr *)&from, &plen), ENOTCONN);

    /* A socket connected elsewhere takes nothing from others: EPERM. */
    int third = CHECK_OK(socket(AF_UNIX, SOCK_DGRAM, 0));
    struct sockaddr_un ta;
    socklen_t talen = make_addr(&ta, tmp_path("third.sock"));
    CHECK_OK(bind(third, (struct sockaddr *)&ta, talen));
    CHECK_OK(connect(srv, (struct sockaddr *)&ta, talen));
    CHECK_ERRNO(sendto(cli, "x", 1, 0, (struct sockaddr *)&sa, salen), EPERM);
    CHECK_EQ(sendto(third, "ok", 2, 0, (struct sockaddr *)&sa, salen), 2);
    CHECK_EQ(recv(srv, buf, sizeof buf, 0), 2);

    /* The connected peer goes away: ECONNREFUSED once, then ENOTCONN. */
    CHECK_OK(connect(cli, (struct sockaddr *)&ta, talen));
    close(third);
    CHECK_ERRNO(send(cli, "x", 1, 0), ECONNREFUSED);
    CHECK_ERRNO(send(cli, "x", 1, 0), ENOTCONN);

    close(cli);
    close(srv);
}

static void test_limits(void)
{
    int sv[2];
    CHECK_OK(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, sv));
    int v = 4096;
    CHECK_OK(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, sizeof v));
    CHECK_EQ(getint(sv[0], SO_SNDBUF), 8192);
    static char big[16384];
    CHECK_ERRNO(send(sv[0], big, 9000, 0), EMSGSIZE);
    /* Refused by its length alone, before the buffer is read. */
    CHECK_ERRNO(send(sv[0], BAD_PTR, (size_t)1 << 40, 0), EMSGSIZE);
    /* Datagrams queue until the sender's buffer is spent. */
    int sent = 0;
    while (send(sv[0], big, 1000, 0) == 1000)
        sent++;
    CHECK_EQ(errno, EAGAIN);
    CHECK(sent >= 1 && sent < 100);
    struct pollfd p = { sv[0], POLLOUT, 0 };
    CHECK_EQ(poll(&p, 1, 0), 0);
    int got = 0;
    char buf[2000];
    while (recv(sv[1], buf, sizeof buf, 0) == 1000)
        got++;
    CHECK_EQ(got, sent);
    CHECK_EQ(poll(&p, 1, 0), 1);
    CHECK_EQ(send(sv[0], big, 1000, 0), 1000);
    close(sv[0]);
    close(sv[1]);

    /* Empty datagrams count against the buffer too. */
    CHECK_OK(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, sv));
    CHECK_OK(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, sizeof v));
    sent = 0;
    while (send(sv[0], big, 0, 0) == 0 && sent < 100000)
        sent++;
    CHECK_EQ(errno, EAGAIN);
    CHECK(sent < 100000);
    close(sv[0]);
    close(sv[1]);
}

/* Senders a datagram socket is not connected to may fill its queue only so far
 * (net.unix.max_dgram_qlen, 10 by default: eleven messages), then wait. */
static struct sockaddr_un q_addr;
static socklen_t q_alen;
static int q_inherited[2];
static void queue_filler(void *arg)
{
    (void)arg;
    /* The receiver must really close when the parent closes it. */
    close(q_inherited[0]);
    close(q_inherited[1]);
    int c = CHECK_OK(socket(AF_UNIX, SOCK_DGRAM, 0));
    /* Blocking sends until the receiver goes away: it takes 20 of them first, then its
     * queue fills, this sender waits, and the receiver's close ends the wait. */
    int n = 0;
    while (sendto(c, "m", 1, 0, (struct sockaddr *)&q_addr, q_alen) == 1)
        n++;
    CHECK_EQ(errno, ECONNREFUSED);
    CHECK(n >= 20);
    close(c);
}

static void test_queue_length(void)
{
    q_alen = make_addr(&q_addr, tmp_path("queue.sock"));
    int srv = CHECK_OK(socket(AF_UNIX, SOCK_DGRAM, 0));
    CHECK_OK(bind(srv, (struct sockaddr *)&q_addr, q_alen));
    int cli = CHECK_OK(socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0));
    int sent = 0;
    while (sendto(cli, "q", 1, 0, (struct sockaddr *)&q_addr, q_alen) == 1 && sent < 1000)
        sent++;
    CHECK_EQ(errno, EAGAIN);
    CHECK_EQ(sent, 11);
    char buf[4];
    CHECK_EQ(recv(srv, buf, sizeof buf, 0), 1);
    CHECK_EQ(sendto(cli, "q", 1, 0, (struct sockaddr *)&q_addr, q_alen), 1);
    CHECK_ERRNO(sendto(cli, "q", 1, 0, (struct sockaddr *)&q_addr, q_alen), EAGAIN);
    /* A blocking sender waits until the receiver takes some. */
    q_inherited[0] = srv;
    q_inherited[1] = cli;
    pid_t pid = spawn_checks(queue_filler, NULL);
    int got = 0;
    while (got < 11 + 20 && recv(srv, buf, sizeof buf, 0) == 1)
        got++;
    CHECK_EQ(got, 31);
    close(srv);
    CHECK_EXITED(wait_status(pid, 0), 0);
    close(cli);
    unlink(q_addr.sun_path);
}

static void test_mmsg(void)
{
    int sv[2];
    CHECK_OK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv));
    struct iovec out[3] = { { "one", 3 }, { "three", 5 }, { "sixteen", 7 } };
    struct mmsghdr mm[4];
    memset(mm, 0, sizeof mm);
    for (int i = 0; i < 3; i++) {
        mm[i].msg_hdr.msg_iov = &out[i];
        mm[i].msg_hdr.msg_iovlen = 1;
    }
    CHECK_EQ(sendmmsg(sv[0], mm, 3, 0), 3);
    CHECK_EQ(mm[0].msg_len, 3);
    CHECK_EQ(mm[2].msg_len, 7);
    char bufs[4][16];
    struct iovec in[4];
    memset(mm, 0, sizeof mm);
    for (int i = 0; i < 4; i++) {
        in[i].iov_base = bufs[i];
        in[i].iov_len = sizeof bufs[i];
        mm[i].msg_hdr.msg_iov = &in[i];
        mm[i].msg_hdr.msg_iovlen = 1;
    }
    CHECK_EQ(recvmmsg(sv[1], mm, 4, MSG_DONTWAIT, NULL), 3);
    CHECK_EQ(mm[0].msg_len, 3);
    CHECK_EQ(mm[1].msg_len, 5);
    CHECK_EQ(mm[2].msg_len, 7);
    CHECK_MEMEQ(bufs[1], "three", 5);
    CHECK_ERRNO(recvmmsg(sv[1], mm, 4, MSG_DONTWAIT, NULL), EAGAIN);
    /* MSG_WAITFORONE: block for the first only. */
    CHECK_EQ(send(sv[0], "w", 1, 0), 1);
    CHECK_EQ(recvmmsg(sv[1], mm, 4, MSG_WAITFORONE, NULL), 1);
    struct timespec bad = { 0, 2000000000 };
    CHECK_ERRNO(recvmmsg(sv[1], mm, 4, 0, &bad), EINVAL);
    close(sv[0]);
    close(sv[1]);
}

static volatile sig_atomic_t sigpipes;
static void on_sigpipe(int sig)
{
    (void)sig;
    sigpipes++;
}

static void test_seqpacket(void)
{
    int sv[2];
    char buf[64];
    CHECK_OK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv));
    CHECK_EQ(getint(sv[0], SO_TYPE), SOCK_SEQPACKET);
    CHECK_EQ(write(sv[0], "rec1", 4), 4);
    CHECK_EQ(write(sv[0], "record2", 7), 7);
    CHECK_EQ(read(sv[1], buf, sizeof buf), 4);
    CHECK_EQ(recv(sv[1], buf, 3, 0), 3); /* truncated */
    CHECK_ERRNO(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT), EAGAIN);
    CHECK_EQ(write(sv[0], "record3", 7), 7);
    struct iovec iov = { buf, 2 };
    struct msghdr m = { 0 };
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    CHECK_EQ(recvmsg(sv[1], &m, 0), 2);
    CHECK(m.msg_flags & MSG_TRUNC);
    close(sv[0]);
    CHECK_EQ(read(sv[1], buf, sizeof buf), 0);
    CHECK_ERRNO(send(sv[1], "x", 1, MSG_NOSIGNAL), EPIPE);
    /* Unlike a stream, a seqpacket socket gets no SIGPIPE with its EPIPE. */
    struct sigaction sa = { 0 };
    sa.sa_handler = on_sigpipe;
    CHECK_OK(sigaction(SIGPIPE, &sa, NULL));
    sigpipes = 0;
    CHECK_ERRNO(send(sv[1], "x", 1, 0), EPIPE);
    CHECK_ERRNO(write(sv[1], "x", 1), EPIPE);
    CHECK_EQ(sigpipes, 0);
    signal(SIGPIPE, SIG_DFL);
    struct pollfd p = { sv[1], POLLIN | POLLRDHUP, 0 };
    CHECK_EQ(poll(&p, 1, 0), 1);
    CHECK(p.revents & POLLHUP);
    close(sv[1]);

    /* Unconnected: ENOTCONN both ways. */
    int s = CHECK_OK(socket(AF_UNIX, SOCK_SEQPACKET, 0));
    CHECK_ERRNO(send(s, "x", 1, MSG_NOSIGNAL), ENOTCONN);
    CHECK_ERRNO(recv(s, buf, 1, MSG_DONTWAIT), ENOTCONN);
    close(s);
}

/* The child connects to a seqpacket listener and sends three records; the parent
 * accepts (blocking) and reads them back one by one. */
static struct sockaddr_un sp_addr;
static socklen_t sp_alen;
static void seq_client(void *arg)
{
    (void)arg;
    int c = CHECK_OK(socket(AF_UNIX, SOCK_SEQPACKET, 0));
    CHECK_OK(connect(c, (struct sockaddr *)&sp_addr, sp_alen));
    CHECK_EQ(send(c, "a", 1, 0), 1);
    CHECK_EQ(send(c, "bb", 2, 0), 2);
    CHECK_EQ(send(c, "ccc", 3, 0), 3);
    char buf[8];
    CHECK_EQ(recv(c, buf, sizeof buf, 0), 4);
    close(c);
}

/* The child sends datagrams to the parent's bound socket. */
static void dgram_sender(void *arg)
{
    (void)arg;
    int c = CHECK_OK(socket(AF_UNIX, SOCK_DGRAM, 0));
    sleep_ms(10);
    for (int i = 0; i < 5; i++) {
        char b = (char)('0' + i);
        CHECK_EQ(sendto(c, &b, 1, 0, (struct sockaddr *)&sp_addr, sp_alen), 1);
    }
    close(c);
}

static void test_fork(void)
{
    sp_alen = make_addr(&sp_addr, tmp_path("seq.sock"));
    int srv = CHECK_OK(socket(AF_UNIX, SOCK_SEQPACKET, 0));
    CHECK_OK(bind(srv, (struct sockaddr *)&sp_addr, sp_alen));
    CHECK_OK(listen(srv, 2));
    pid_t pid = spawn_checks(seq_client, NULL);
    int conn = CHECK_OK(accept(srv, NULL, NULL));
    char buf[8];
    CHECK_EQ(recv(conn, buf, sizeof buf, 0), 1);
    CHECK_EQ(recv(conn, buf, sizeof buf, 0), 2);
    CHECK_EQ(recv(conn, buf, sizeof buf, 0), 3);
    CHECK_MEMEQ(buf, "ccc", 3);
    CHECK_EQ(send(conn, "done", 4, 0), 4);
    CHECK_EQ(recv(conn, buf, sizeof buf, 0), 0);
    CHECK_EXITED(wait_status(pid, 0), 0);
    close(conn);
    close(srv);
    unlink(sp_addr.sun_path);

    int d = CHECK_OK(socket(AF_UNIX, SOCK_DGRAM, 0));
    CHECK_OK(bind(d, (struct sockaddr *)&sp_addr, sp_alen));
    int ep = CHECK_OK(epoll_create1(0));
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = d }, out;
    CHECK_OK(epoll_ctl(ep, EPOLL_CTL_ADD, d, &ev));
    pid = spawn_checks(dgram_sender, NULL);
    CHECK_EQ(epoll_wait(ep, &out, 1, 10000), 1);
    int ok = 1;
    for (int i = 0; i < 5; i++) {
        char b = 0;
        ok &= recv(d, &b, 1, 0) == 1 && b == '0' + i;
    }
    CHECK(ok);
    CHECK_EXITED(wait_status(pid, 0), 0);
    close(ep);
    close(d);
}

int main(void)
{
    check_tmpdir("unix_dgram");
    test_pair_boundaries();
    test_addresses();
    test_limits();
    test_queue_length();
    test_mmsg();
    test_seqpacket();
    test_fork();
    return check_done();
}
