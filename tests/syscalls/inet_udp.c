/* UDP over loopback (127.0.0.1 and ::1): socket arguments, EDESTADDRREQ, bind and
 * ephemeral ports, EADDRINUSE and SO_REUSEADDR, sendto/recvfrom with source addresses,
 * MSG_PEEK, MSG_TRUNC, MSG_DONTWAIT, FIONREAD, empty datagrams, EMSGSIZE, connect (and
 * AF_UNSPEC to dissolve it), a connected socket ignoring other senders, shutdown, poll,
 * and a sender and receiver in separate processes. */
#include "child.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

union addr {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
    struct sockaddr_storage ss;
};

static socklen_t loop_addr(union addr *a, int family, int port)
{
    memset(a, 0, sizeof *a);
    if (family == AF_INET) {
        a->in.sin_family = AF_INET;
        a->in.sin_port = htons(port);
        a->in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return sizeof a->in;
    }
    a->in6.sin6_family = AF_INET6;
    a->in6.sin6_port = htons(port);
    a->in6.sin6_addr = in6addr_loopback;
    return sizeof a->in6;
}

static int port_of(int fd)
{
    union addr a;
    socklen_t len = sizeof a;
    if (getsockname(fd, &a.sa, &len) != 0)
        return -1;
    return ntohs(a.sa.sa_family == AF_INET ? a.in.sin_port : a.in6.sin6_port);
}

static int bound(int family)
{
    int s = socket(family, SOCK_DGRAM, 0);
    union addr a;
    socklen_t len = loop_addr(&a, family, 0);
    if (s < 0 || bind(s, &a.sa, len) != 0)
        return -1;
    return s;
}

static short revents(int fd, short events)
{
    struct pollfd p = { .fd = fd, .events = events };
    if (poll(&p, 1, 0) < 0)
        return -1;
    return p.revents;
}

static void test_basics(int family)
{
    CHECK_ERRNO(socket(family, SOCK_DGRAM, IPPROTO_TCP), EPROTONOSUPPORT);
    int s = CHECK_OK(socket(family, SOCK_DGRAM, 0));
    int v = 0;
    socklen_t vl = sizeof v;
    CHECK_OK(getsockopt(s, SOL_SOCKET, SO_PROTOCOL, &v, &vl));
    CHECK_EQ(v, IPPROTO_UDP);
    CHECK_EQ(revents(s, POLLIN | POLLOUT), POLLOUT);
    CHECK_ERRNO(send(s, "x", 1, 0), EDESTADDRREQ);
    char b[64];
    CHECK_ERRNO(recv(s, b, sizeof b, MSG_DONTWAIT), EAGAIN);
    CHECK_ERRNO(shutdown(s, SHUT_RD), ENOTCONN);
    union addr a;
    socklen_t len = sizeof a;
    CHECK_ERRNO(getpeername(s, &a.sa, &len), ENOTCONN);

    int r = CHECK_OK(bound(family));
    int port = port_of(r);
    CHECK(port > 0);
    union addr to;
    socklen_t tolen = loop_addr(&to, family, port);
    /* sendto binds the sender to an ephemeral port. */
    CHECK_EQ(sendto(s, "one", 3, 0, &to.sa, tolen), 3);
    int sport = port_of(s);
    CHECK(sport > 0);
    CHECK_EQ(sendto(s, "", 0, 0, &to.sa, tolen), 0);
    CHECK_EQ(sendto(s, "three!", 6, 0, &to.sa, tolen), 6);
    struct pollfd p = { .fd = r, .events = POLLIN };
    CHECK_EQ(poll(&p, 1, -1), 1);
    int n = -1;
    CHECK_OK(ioctl(r, FIONREAD, &n));
    CHECK_EQ(n, 3);
    CHECK_EQ(recv(r, b, sizeof b, MSG_PEEK), 3);
    union addr from;
    socklen_t flen = sizeof from;
    CHECK_EQ(recvfrom(r, b, sizeof b, 0, &from.sa, &flen), 3);
    CHECK_MEMEQ(b, "one", 3);
    CHECK_EQ(flen, tolen);
    CHECK_EQ(from.sa.sa_family, family);
    CHECK_EQ(ntohs(family == AF_INET ? from.in.sin_port : from.in6.sin6_port), sport);
    CHECK_EQ(recv(r, b, sizeof b, 0), 0);
    /* A short buffer truncates the datagram; MSG_TRUNC gives its real length. */
    CHECK_EQ(recv(r, b, 2, MSG_PEEK | MSG_TRUNC), 6);
    struct iovec iov = { .iov_base = b, .iov_len = 2 };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    CHECK_EQ(recvmsg(r, &mh, 0), 2);
    CHECK_EQ(mh.msg_flags & MSG_TRUNC, MSG_TRUNC);
    CHECK_MEMEQ(b, "th", 2);
    CHECK_ERRNO(recv(r, b, sizeof b, MSG_DONTWAIT), EAGAIN);
    CHECK_EQ(revents(r, POLLIN), 0);

    /* The largest datagram fits; one byte more does not. */
    int maxlen = family == AF_INET ? 65507 : 65527;
    char *big = calloc(1, (size_t)maxlen + 1);
    int sz = 1 << 20;
    CHECK_OK(setsockopt(r, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz));
    CHECK_ERRNO(sendto(s, big, (size_t)maxlen + 1, 0, &to.sa, tolen), EMSGSIZE);
    CHECK_EQ(sendto(s, big, (size_t)maxlen, 0, &to.sa, tolen), maxlen);
    CHECK_EQ(poll(&p, 1, -1), 1);
    CHECK_EQ(recv(r, big, (size_t)maxlen + 1, 0), maxlen);
    free(big);

    /* Port in use; SO_REUSEADDR on both shares it. */
    int t = CHECK_OK(socket(family, SOCK_DGRAM, 0));
    CHECK_ERRNO(bind(t, &to.sa, tolen), EADDRINUSE);
    close(t);
    close(s);
    close(r);
    int u1 = CHECK_OK(socket(family, SOCK_DGRAM, 0));
    int u2 = CHECK_OK(socket(family, SOCK_DGRAM, 0));
    int one = 1;
    CHECK_OK(setsockopt(u1, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
    CHECK_OK(setsockopt(u2, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
    len = loop_addr(&a, family, 0);
    CHECK_OK(bind(u1, &a.sa, len));
    len = loop_addr(&a, family, port_of(u1));
    CHECK_OK(bind(u2, &a.sa, len));
    close(u1);
    close(u2);
}

static void test_connected(int family)
{
    int a = CHECK_OK(bound(family));
    int b = CHECK_OK(bound(family));
    int other = CHECK_OK(bound(family));
    union addr aa, ba;
    socklen_t alen = loop_addr(&aa, family, port_of(a));
    socklen_t blen = loop_addr(&ba, family, port_of(b));
    CHECK_OK(connect(a, &ba.sa, blen));
    CHECK_OK(connect(b, &aa.sa, alen));
    union addr peer;
    socklen_t plen = sizeof peer;
    CHECK_OK(getpeername(a, &peer.sa, &plen));
    CHECK_EQ(plen, blen);
    CHECK_MEMEQ(&peer, &ba, blen);
    /* A connected socket takes datagrams from its peer only. */
    CHECK_EQ(sendto(other, "stranger", 8, 0, &aa.sa, alen), 8);
    CHECK_EQ(send(b, "peer", 4, 0), 4);
    char buf[16];
    struct pollfd p = { .fd = a, .events = POLLIN };
    CHECK_EQ(poll(&p, 1, -1), 1);
    CHECK_EQ(recv(a, buf, sizeof buf, 0), 4);
    CHECK_MEMEQ(buf, "peer", 4);
    CHECK_ERRNO(recv(a, buf, sizeof buf, MSG_DONTWAIT), EAGAIN);
    CHECK_EQ(write(a, "w", 1), 1);
    CHECK_EQ(read(b, buf, sizeof buf), 1);
    /* AF_UNSPEC dissolves the association. */
    struct sockaddr unspec = { .sa_family = AF_UNSPEC };
    CHECK_OK(connect(a, &unspec, sizeof unspec));
    plen = sizeof peer;
    CHECK_ERRNO(getpeername(a, &peer.sa, &plen), ENOTCONN);
    CHECK_ERRNO(send(a, "x", 1, 0), EDESTADDRREQ);
    close(a);
    close(b);
    close(other);
}

/* A connected socket hears of a closed port through ICMP: the next receive fails with
 * ECONNREFUSED, once. */
static void test_refused(int family)
{
    int gone = CHECK_OK(bound(family));
    int port = port_of(gone);
    close(gone);
    int s = CHECK_OK(socket(family, SOCK_DGRAM, 0));
    union addr to;
    socklen_t tolen = loop_addr(&to, family, port);
    CHECK_OK(connect(s, &to.sa, tolen));
    CHECK_EQ(send(s, "anyone?", 7, 0), 7);
    struct pollfd p = { .fd = s, .events = POLLIN };
    CHECK_EQ(poll(&p, 1, -1), 1);
    CHECK_EQ(p.revents & POLLERR, POLLERR);
    char b[8];
    CHECK_ERRNO(recv(s, b, sizeof b, MSG_DONTWAIT), ECONNREFUSED);
    CHECK_ERRNO(recv(s, b, sizeof b, MSG_DONTWAIT), EAGAIN);
    close(s);
}

/* A blocked receiver is woken by a sender in another process; shutdown(SHUT_RD) wakes a
 * connected one with an empty read. */
static void test_across_fork(int family)
{
    int r = CHECK_OK(bound(family));
    int port = port_of(r);
    pid_t pid = fork();
    if (pid == 0) {
        int s = socket(family, SOCK_DGRAM, 0);
        union addr to;
        socklen_t tolen = loop_addr(&to, family, port);
        for (int i = 0; i < 50; i++) {
            char m[8];
            snprintf(m, sizeof m, "m%d", i);
            if (i % 10 == 0)
                usleep(2000);
            if (sendto(s, m, strlen(m), 0, &to.sa, tolen) != (ssize_t)strlen(m))
                _exit(1);
        }
        _exit(0);
    }
    int ok = 1;
    for (int i = 0; i < 50; i++) {
        char m[8], want[8];
        ssize_t n = recv(r, m, sizeof m - 1, 0);
        snprintf(want, sizeof want, "m%d", i);
        ok &= n == (ssize_t)strlen(want) && memcmp(m, want, (size_t)n) == 0;
    }
    CHECK(ok);
    int st;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    CHECK_EXITED(st, 0);
    close(r);
}

int main(void)
{
    test_basics(AF_INET);
    test_basics(AF_INET6);
    test_connected(AF_INET);
    test_connected(AF_INET6);
    test_refused(AF_INET);
    test_refused(AF_INET6);
    test_across_fork(AF_INET);
    test_across_fork(AF_INET6);
    return check_done();
}
