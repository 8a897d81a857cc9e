/* TCP over loopback (127.0.0.1 and ::1): socket arguments, bind (ephemeral ports,
 * EADDRINUSE, SO_REUSEADDR, SO_REUSEPORT), listen backlog, blocking and nonblocking
 * connect (ECONNREFUSED, EINPROGRESS + SO_ERROR), data with MSG_PEEK/MSG_DONTWAIT/
 * MSG_WAITALL, FIONREAD, half-close and EOF, EPIPE and SIGPIPE, resets (unread data,
 * SO_LINGER 0), names, options, poll/epoll readiness, dual-stack IPv6, and a client and
 * server in separate processes. */
#include "child.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
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

static int getint(int fd, int level, int name)
{
    int v = -12345;
    socklen_t len = sizeof v;
    if (getsockopt(fd, level, name, &v, &len) != 0)
        return -1000 - errno;
    return v;
}

static int setint(int fd, int level, int name, int v)
{
    return setsockopt(fd, level, name, &v, sizeof v);
}

/* A listening socket on loopback with an ephemeral port. */
static int listener(int family, int backlog, int *port)
{
    int s = socket(family, SOCK_STREAM, 0);
    union addr a;
    socklen_t len = loop_addr(&a, family, 0);
    if (s < 0 || bind(s, &a.sa, len) != 0 || listen(s, backlog) != 0)
        return -1;
    *port = port_of(s);
    return s;
}

static int connect_to(int family, int port, int flags)
{
    int c = socket(family, SOCK_STREAM | flags, 0);
    union addr a;
    socklen_t len = loop_addr(&a, family, port);
    if (c < 0)
        return -1;
    if (connect(c, &a.sa, len) != 0 && errno != EINPROGRESS) {
        close(c);
        return -1;
    }
    return c;
}

/* A port nobody listens on: bound, then closed. */
static int closed_port(int family)
{
    int s = socket(family, SOCK_STREAM, 0);
    union addr a;
    socklen_t len = loop_addr(&a, family, 0);
    bind(s, &a.sa, len);
    int p = port_of(s);
    close(s);
    return p;
}

static short revents(int fd, short events)
{
    struct pollfd p = { .fd = fd, .events = events };
    if (poll(&p, 1, 0) < 0)
        return -1;
    return p.revents;
}

static void test_create(void)
{
    CHECK_ERRNO(socket(AF_INET, SOCK_STREAM, IPPROTO_UDP), EPROTONOSUPPORT);
    CHECK_ERRNO(socket(AF_INET6, SOCK_STREAM, IPPROTO_UDP), EPROTONOSUPPORT);
    CHECK_ERRNO(socket(AF_INET, SOCK_SEQPACKET, 0), ESOCKTNOSUPPORT);
    int sv[2];
    CHECK_ERRNO(socketpair(AF_INET, SOCK_STREAM, 0, sv), EOPNOTSUPP);

    int s = CHECK_OK(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP));
    struct stat st;
    CHECK_OK(fstat(s, &st));
    CHECK(S_ISSOCK(st.st_mode));
    CHECK_EQ(fcntl(s, F_GETFL) & O_NONBLOCK, O_NONBLOCK);
    CHECK_EQ(fcntl(s, F_GETFD), FD_CLOEXEC);
    CHECK_EQ(getint(s, SOL_SOCKET, SO_TYPE), SOCK_STREAM);
    CHECK_EQ(getint(s, SOL_SOCKET, SO_DOMAIN), AF_INET);
    CHECK_EQ(getint(s, SOL_SOCKET, SO_PROTOCOL), IPPROTO_TCP);
    CHECK_EQ(getint(s, SOL_SOCKET, SO_ACCEPTCONN), 0);
    /* A new TCP socket polls as writable and hung up, as in Linux. */
    CHECK_EQ(revents(s, POLLIN | POLLOUT), POLLOUT | POLLHUP);
    CHECK_ERRNO(send(s, "x", 1, MSG_NOSIGNAL), EPIPE);
    char b[4];
    CHECK_ERRNO(recv(s, b, sizeof b, 0), ENOTCONN);
    CHECK_ERRNO(shutdown(s, SHUT_WR), ENOTCONN);
    union addr a;
    socklen_t len = sizeof a;
    CHECK_ERRNO(getpeername(s, &a.sa, &len), ENOTCONN);
    len = sizeof a;
    CHECK_OK(getsockname(s, &a.sa, &len));
    CHECK_EQ(len, sizeof a.in);
    CHECK_EQ(a.in.sin_family, AF_INET);
    CHECK_EQ(a.in.sin_port, 0);
    CHECK_EQ(a.in.sin_addr.s_addr, 0);
    close(s);

    int s6 = CHECK_OK(socket(AF_INET6, SOCK_STREAM, 0));
    len = sizeof a;
    CHECK_OK(getsockname(s6, &a.sa, &len));
    CHECK_EQ(len, sizeof a.in6);
    CHECK_EQ(a.in6.sin6_family, AF_INET6);
    CHECK_EQ(getint(s6, IPPROTO_IPV6, IPV6_V6ONLY), 0);
    close(s6);
}

static void test_bind(void)
{
    int s = CHECK_OK(socket(AF_INET, SOCK_STREAM, 0));
    union addr a;
    socklen_t len = loop_addr(&a, AF_INET, 0);
    CHECK_ERRNO(bind(s, &a.sa, 8), EINVAL);
    a.in.sin_family = AF_INET6;
    CHECK_ERRNO(bind(s, &a.sa, len), EAFNOSUPPORT);
    loop_addr(&a, AF_INET, 0);
    a.in.sin_addr.s_addr = inet_addr("198.51.100.1"); /* TEST-NET-2: nobody's address */
    CHECK_ERRNO(bind(s, &a.sa, len), EADDRNOTAVAIL);
    loop_addr(&a, AF_INET, 0);
    CHECK_OK(bind(s, &a.sa, len));
    int port = port_of(s);
    CHECK(port > 0);
    CHECK_ERRNO(bind(s, &a.sa, len), EINVAL);

    /* The port is taken, whatever the address family asks. */
    int t = CHECK_OK(socket(AF_INET, SOCK_STREAM, 0));
    loop_addr(&a, AF_INET, port);
    CHECK_ERRNO(bind(t, &a.sa, len), EADDRINUSE);
    a.in.sin_addr.s_addr = htonl(INADDR_ANY);
    CHECK_ERRNO(bind(t, &a.sa, len), EADDRINUSE);
    int t6 = CHECK_OK(socket(AF_INET6, SOCK_STREAM, 0));
    union addr any6;
    socklen_t len6 = loop_addr(&any6, AF_INET6, port);
    any6.in6.sin6_addr = in6addr_any;
    CHECK_ERRNO(bind(t6, &any6.sa, len6), EADDRINUSE);
    close(t6);
    close(t);
    close(s);

    /* An IPv6-only socket does not share IPv4's ports. On the host's network another
     * program may hold the port IPv4 gave us for IPv6 only: then try another. */
    int v6only_bound = 0;
    for (int tries = 0; tries < 20 && !v6only_bound; tries++) {
        int s4 = CHECK_OK(socket(AF_INET, SOCK_STREAM, 0));
        loop_addr(&a, AF_INET, 0);
        CHECK_OK(bind(s4, &a.sa, len));
        int u6 = CHECK_OK(socket(AF_INET6, SOCK_STREAM, 0));
        CHECK_OK(setint(u6, IPPROTO_IPV6, IPV6_V6ONLY, 1));
        loop_addr(&any6, AF_INET6, port_of(s4));
        any6.in6.sin6_addr = in6addr_any;
        if (bind(u6, &any6.sa, len6) == 0) {
            v6only_bound = 1;
            CHECK_ERRNO(setint(u6, IPPROTO_IPV6, IPV6_V6ONLY, 0), EINVAL);
        } else {
            CHECK_EQ(errno, EADDRINUSE);
        }
        close(u6);
        close(s4);
    }
    CHECK(v6only_bound);

    /* SO_REUSEADDR on both: a port held by a socket that does not listen is shared, one
     * held by a listener is not. */
    int r1 = CHECK_OK(socket(AF_INET, SOCK_STREAM, 0));
    int r2 = CHECK_OK(socket(AF_INET, SOCK_STREAM, 0));
    int r3 = CHECK_OK(socket(AF_INET, SOCK_STREAM, 0));
    CHECK_OK(setint(r1, SOL_SOCKET, SO_REUSEADDR, 1));
    CHECK_OK(setint(r2, SOL_SOCKET, SO_REUSEADDR, 1));
    CHECK_OK(setint(r3, SOL_SOCKET, SO_REUSEADDR, 1));
    CHECK_EQ(getint(r1, SOL_SOCKET, SO_REUSEADDR), 1);
    loop_addr(&a, AF_INET, 0);
    CHECK_OK(bind(r1, &a.sa, len));
    port = port_of(r1);
    loop_addr(&a, AF_INET, port);
    CHECK_OK(bind(r2, &a.sa, len));
    CHECK_OK(listen(r1, 1));
    CHECK_ERRNO(listen(r2, 1), EADDRINUSE);
    CHECK_ERRNO(bind(r3, &a.sa, len), EADDRINUSE);
    close(r1);
    close(r2);
    close(r3);

    /* SO_REUSEPORT: several listeners on one port. */
    int p1 = CHECK_OK(socket(AF_INET, SOCK_STREAM, 0));
    int p2 = CHECK_OK(socket(AF_INET, SOCK_STREAM, 0));
    CHECK_OK(setint(p1, SOL_SOCKET, SO_REUSEPORT, 1));
    CHECK_OK(setint(p2, SOL_SOCKET, SO_REUSEPORT, 1));
    loop_addr(&a, AF_INET, 0);
    CHECK_OK(bind(p1, &a.sa, len));
    loop_addr(&a, AF_INET, port_of(p1));
    CHECK_OK(bind(p2, &a.sa, len));
    CHECK_OK(listen(p1, 4));
    CHECK_OK(listen(p2, 4));
    int c = CHECK_OK(connect_to(AF_INET, port_of(p1), 0));
    struct pollfd pf[2] = { { .fd = p1, .events = POLLIN }, { .fd = p2, .events = POLLIN } };
    CHECK_EQ(poll(pf, 2, -1), 1);
    close(c);
    close(p1);
    close(p2);

    /* listen binds an unbound socket to an ephemeral port on the wildcard. */
    int l = CHECK_OK(socket(AF_INET, SOCK_STREAM, 0));
    CHECK_OK(listen(l, 1));
    union addr got;
    socklen_t glen = sizeof got;
    CHECK_OK(getsockname(l, &got.sa, &glen));
    CHECK(ntohs(got.in.sin_port) > 0);
    CHECK_EQ(got.in.sin_addr.s_addr, htonl(INADDR_ANY));
    CHECK_EQ(getint(l, SOL_SOCKET, SO_ACCEPTCONN), 1);
    close(l);
}

static void test_connect_errors(void)
{
    union addr a;
    int port = closed_port(AF_INET);
    int c = CHECK_OK(socket(AF_INET, SOCK_STREAM, 0));
    socklen_t len = loop_addr(&a, AF_INET, port);
    CHECK_ERRNO(connect(c, &a.sa, len), ECONNREFUSED);
    close(c);

    c = CHECK_OK(socket(AF_INET6, SOCK_STREAM, 0));
    len = loop_addr(&a, AF_INET6, closed_port(AF_INET6));
    CHECK_ERRNO(connect(c, &a.sa, len), ECONNREFUSED);
    close(c);

    /* Nonblocking: EINPROGRESS, then the error through poll and SO_ERROR, once. */
    c = CHECK_OK(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
    len = loop_addr(&a, AF_INET, port);
    CHECK_ERRNO(connect(c, &a.sa, len), EINPROGRESS);
    struct pollfd p = { .fd = c, .events = POLLOUT };
    CHECK_EQ(poll(&p, 1, -1), 1);
    CHECK_EQ(p.revents & (POLLOUT | POLLERR | POLLHUP), POLLOUT | POLLERR | POLLHUP);
    CHECK_EQ(getint(c, SOL_SOCKET, SO_ERROR), ECONNREFUSED);
    CHECK_EQ(getint(c, SOL_SOCKET, SO_ERROR), 0);
    close(c);

    /* The second connect of a nonblocking socket reports the failure. */
    c = CHECK_OK(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
    CHECK_ERRNO(connect(c, &a.sa, len), EINPROGRESS);
    p.fd = c;
    CHECK_EQ(poll(&p, 1, -1), 1);
    CHECK_ERRNO(connect(c, &a.sa, len), ECONNREFUSED);
    close(c);

    /* A listening socket cannot connect; short and foreign addresses fail. */
    int l = CHECK_OK(listener(AF_INET, 1, &port));
    CHECK_ERRNO(connect(l, &a.sa, len), EISCONN);
    c = CHECK_OK(socket(AF_INET, SOCK_STREAM, 0));
    CHECK_ERRNO(connect(c, &a.sa, 4), EINVAL);
    union addr a6;
    socklen_t len6 = loop_addr(&a6, AF_INET6, port);
    CHECK_ERRNO(connect(c, &a6.sa, len6), EAFNOSUPPORT);
    close(c);
    close(l);
}

static void test_nonblocking_connect(void)
{
    int port;
    int l = CHECK_OK(listener(AF_INET, 4, &port));
    union addr a;
    socklen_t len = loop_addr(&a, AF_INET, port);
    int c = CHECK_OK(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
    CHECK_ERRNO(connect(c, &a.sa, len), EINPROGRESS);
    struct pollfd p = { .fd = c, .events = POLLOUT };
    CHECK_EQ(poll(&p, 1, -1), 1);
    CHECK_EQ(p.revents, POLLOUT);
    CHECK_EQ(getint(c, SOL_SOCKET, SO_ERROR), 0);
    CHECK_OK(connect(c, &a.sa, len));
    CHECK_ERRNO(connect(c, &a.sa, len), EISCONN);
    int s = CHECK_OK(accept4(l, NULL, NULL, SOCK_NONBLOCK));
    CHECK_EQ(fcntl(s, F_GETFL) & O_NONBLOCK, O_NONBLOCK);
    char b[8];
    CHECK_ERRNO(recv(s, b, sizeof b, 0), EAGAIN);
    CHECK_OK(fcntl(l, F_SETFL, O_NONBLOCK));
    CHECK_ERRNO(accept(l, NULL, NULL), EAGAIN);
    close(s);
    close(c);
    close(l);
}

static void test_backlog(void)
{
    int port;
    int l = CHECK_OK(listener(AF_INET, 1, &port));
    CHECK_OK(fcntl(l, F_SETFL, O_NONBLOCK));
    /* backlog + 1 connections complete without accept; the next waits for room. */
    int c1 = CHECK_OK(connect_to(AF_INET, port, SOCK_NONBLOCK));
    int c2 = CHECK_OK(connect_to(AF_INET, port, SOCK_NONBLOCK));
    struct pollfd p[2] = { { .fd = c1, .events = POLLOUT }, { .fd = c2, .events = POLLOUT } };
    CHECK_EQ(poll(p, 2, -1), 2);
    int c3 = CHECK_OK(connect_to(AF_INET, port, SOCK_NONBLOCK));
    CHECK_EQ(revents(c3, POLLOUT), 0);
    CHECK_EQ(revents(l, POLLIN), POLLIN);
    int s1 = CHECK_OK(accept(l, NULL, NULL));
    /* The client's SYN is sent again and finds room now. */
    struct pollfd p3 = { .fd = c3, .events = POLLOUT };
    CHECK_EQ(poll(&p3, 1, -1), 1);
    CHECK_EQ(getint(c3, SOL_SOCKET, SO_ERROR), 0);
    int s2 = CHECK_OK(accept(l, NULL, NULL));
    int s3 = CHECK_OK(accept(l, NULL, NULL));
    CHECK_ERRNO(accept(l, NULL, NULL), EAGAIN);
    close(s1);
    close(s2);
    close(s3);
    close(c1);
    close(c2);
    close(c3);
    close(l);
}

/* Client in a child process, server here: names, data both ways, big transfers, peek,
 * waitall, half-close, EOF. */
static void test_across_fork(int family)
{
    int port;
    int l = CHECK_OK(listener(family, 8, &port));
    pid_t pid = fork();
    if (pid == 0) {
        int c = connect_to(family, port, 0);
        if (c < 0)
            _exit(10);
        /* Two small writes that MSG_WAITALL must join. */
        if (send(c, "hel", 3, 0) != 3)
            _exit(11);
        usleep(1000);
        if (send(c, "lo", 2, 0) != 2)
            _exit(12);
        /* A megabyte, then the end of our half. */
        static char big[1 << 20];
        for (size_t i = 0; i < sizeof big; i++)
            big[i] = (char)(i * 7);
        size_t off = 0;
        while (off < sizeof big) {
            ssize_t n = send(c, big + off, sizeof big - off, 0);
            if (n <= 0)
                _exit(13);
            off += (size_t)n;
        }
        if (shutdown(c, SHUT_WR) != 0)
            _exit(14);
        char b[16];
        ssize_t n = recv(c, b, sizeof b, MSG_WAITALL);
        if (n != 6 || memcmp(b, "thanks", 6) != 0)
            _exit(15);
        if (recv(c, b, sizeof b, 0) != 0)
            _exit(16);
        close(c);
        _exit(0);
    }
    union addr peer, mine;
    socklen_t plen = sizeof peer;
    int s = CHECK_OK(accept(l, &peer.sa, &plen));
    CHECK_EQ(plen, family == AF_INET ? sizeof peer.in : sizeof peer.in6);
    CHECK_EQ(peer.sa.sa_family, family);
    socklen_t mlen = sizeof mine;
    CHECK_OK(getpeername(s, &mine.sa, &mlen));
    CHECK_MEMEQ(&mine, &peer, plen);
    mlen = sizeof mine;
    CHECK_OK(getsockname(s, &mine.sa, &mlen));
    CHECK_EQ(port_of(s), port);
    if (family == AF_INET)
        CHECK_EQ(mine.in.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
    else
        CHECK(IN6_IS_ADDR_LOOPBACK(&mine.in6.sin6_addr));

    char b[8];
    CHECK_EQ(recv(s, b, 5, MSG_WAITALL), 5);
    CHECK_MEMEQ(b, "hello", 5);
    char *big = malloc(1 << 20);
    size_t got = 0;
    int peeked = 0, avail = -1;
    while (got < (1 << 20)) {
        if (!peeked) {
            char p;
            CHECK_EQ(recv(s, &p, 1, MSG_PEEK), 1);
            CHECK_EQ(p, (char)(got * 7));
            CHECK_OK(ioctl(s, FIONREAD, &avail));
            CHECK(avail >= 1);
            peeked = 1;
        }
        ssize_t n = recv(s, big + got, (1 << 20) - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    CHECK_EQ(got, 1 << 20);
    int same = 1;
    for (size_t i = 0; i < got; i++)
        same &= big[i] == (char)(i * 7);
    CHECK(same);
    free(big);
    /* The client's half is closed: EOF, and readable as such. */
    CHECK_EQ(recv(s, b, sizeof b, 0), 0);
    CHECK_EQ(revents(s, POLLIN | POLLRDHUP) & (POLLIN | POLLRDHUP), POLLIN | POLLRDHUP);
    /* Ours is still open. */
    CHECK_EQ(send(s, "thanks", 6, 0), 6);
    CHECK_OK(shutdown(s, SHUT_WR));
    int st;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    CHECK_EXITED(st, 0);
    close(s);
    close(l);
}

static void test_pipe_and_reset(void)
{
    int port;
    int l = CHECK_OK(listener(AF_INET, 4, &port));

    /* The peer is gone: the first send is answered by a reset, the next fails. */
    int c = CHECK_OK(connect_to(AF_INET, port, 0));
    int s = CHECK_OK(accept(l, NULL, NULL));
    close(s);
    char b[8];
    CHECK_EQ(recv(c, b, sizeof b, 0), 0);
    CHECK_EQ(send(c, "a", 1, 0), 1);
    struct pollfd p = { .fd = c, .events = POLLIN };
    CHECK_EQ(poll(&p, 1, -1), 1);
    CHECK_ERRNO(send(c, "b", 1, MSG_NOSIGNAL), EPIPE);
    CHECK_ERRNO(send(c, "b", 1, MSG_NOSIGNAL), EPIPE);
    pid_t pid = fork();
    if (pid == 0) {
        send(c, "c", 1, 0);
        _exit(0);
    }
    int st;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    CHECK_KILLED(st, SIGPIPE);
    close(c);

    /* Closing with unread data resets the connection. */
    c = CHECK_OK(connect_to(AF_INET, port, 0));
    s = CHECK_OK(accept(l, NULL, NULL));
    CHECK_EQ(send(c, "unread", 6, 0), 6);
    p.fd = s;
    CHECK_EQ(poll(&p, 1, -1), 1);
    close(s);
    p.fd = c;
    CHECK_EQ(poll(&p, 1, -1), 1);
    CHECK_ERRNO(recv(c, b, sizeof b, 0), ECONNRESET);
    CHECK_EQ(recv(c, b, sizeof b, 0), 0);
    close(c);

    /* So does SO_LINGER with a zero time. */
    c = CHECK_OK(connect_to(AF_INET, port, 0));
    s = CHECK_OK(accept(l, NULL, NULL));
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    CHECK_OK(setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
    struct linger lg2;
    socklen_t lglen = sizeof lg2;
    CHECK_OK(getsockopt(s, SOL_SOCKET, SO_LINGER, &lg2, &lglen));
    CHECK_EQ(lg2.l_onoff, 1);
    CHECK_EQ(lg2.l_linger, 0);
    close(s);
    CHECK_EQ(poll(&p, 1, -1), 1);
    CHECK_EQ(p.revents & (POLLERR | POLLHUP), POLLERR | POLLHUP);
    CHECK_EQ(getint(c, SOL_SOCKET, SO_ERROR), ECONNRESET);
    close(c);
    close(l);
}

static void test_flags_and_options(void)
{
    int port;
    int l = CHECK_OK(listener(AF_INET, 4, &port));
    int c = CHECK_OK(connect_to(AF_INET, port, 0));
    int s = CHECK_OK(accept(l, NULL, NULL));
    char b[16];
    CHECK_ERRNO(recv(s, b, sizeof b, MSG_DONTWAIT), EAGAIN);
    int n = -1;
    CHECK_OK(ioctl(s, FIONREAD, &n));
    CHECK_EQ(n, 0);
    CHECK_EQ(send(c, "abcdef", 6, MSG_NOSIGNAL), 6);
    struct pollfd p = { .fd = s, .events = POLLIN };
    CHECK_EQ(poll(&p, 1, -1), 1);
    CHECK_OK(ioctl(s, FIONREAD, &n));
    CHECK_EQ(n, 6);
    CHECK_EQ(recv(s, b, 3, MSG_PEEK), 3);
    CHECK_MEMEQ(b, "abc", 3);
    CHECK_EQ(recv(s, b, 4, 0), 4);
    CHECK_MEMEQ(b, "abcd", 4);
    CHECK_EQ(read(s, b, sizeof b), 2);
    CHECK_MEMEQ(b, "ef", 2);
    CHECK_EQ(write(s, "xyz", 3), 3);
    CHECK_EQ(read(c, b, sizeof b), 3);

    CHECK_EQ(getint(c, IPPROTO_TCP, TCP_NODELAY), 0);
    CHECK_OK(setint(c, IPPROTO_TCP, TCP_NODELAY, 1));
    CHECK_EQ(getint(c, IPPROTO_TCP, TCP_NODELAY), 1);
    CHECK_EQ(getint(c, SOL_SOCKET, SO_KEEPALIVE), 0);
    CHECK_OK(setint(c, SOL_SOCKET, SO_KEEPALIVE, 1));
    CHECK_EQ(getint(c, SOL_SOCKET, SO_KEEPALIVE), 1);
    CHECK_OK(setint(c, IPPROTO_TCP, TCP_KEEPIDLE, 30));
    CHECK_EQ(getint(c, IPPROTO_TCP, TCP_KEEPIDLE), 30);
    CHECK_ERRNO(setint(c, IPPROTO_TCP, TCP_KEEPIDLE, 0), EINVAL);
    CHECK_OK(setint(c, SOL_SOCKET, SO_RCVBUF, 8192));
    CHECK_EQ(getint(c, SOL_SOCKET, SO_RCVBUF), 16384);
    CHECK_OK(setint(c, SOL_SOCKET, SO_SNDBUF, 8192));
    CHECK_EQ(getint(c, SOL_SOCKET, SO_SNDBUF), 16384);
    CHECK_EQ(getint(c, IPPROTO_TCP, 9999), -1000 - ENOPROTOOPT);
    CHECK_EQ(getint(c, SOL_SOCKET, SO_ERROR), 0);
    /* Data still flows with the new options. */
    CHECK_EQ(send(c, "1", 1, 0), 1);
    CHECK_EQ(recv(s, b, sizeof b, 0), 1);

    /* epoll: readable on data, RDHUP and IN when the peer shuts its side. */
    int ep = CHECK_OK(epoll_create1(0));
    struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.fd = s };
    CHECK_OK(epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev));
    struct epoll_event out[2];
    CHECK_EQ(epoll_wait(ep, out, 2, 0), 0);
    CHECK_EQ(send(c, "2", 1, 0), 1);
    CHECK_EQ(epoll_wait(ep, out, 2, -1), 1);
    CHECK_EQ(out[0].events, EPOLLIN);
    CHECK_EQ(recv(s, b, sizeof b, 0), 1);
    CHECK_OK(shutdown(c, SHUT_WR));
    CHECK_EQ(epoll_wait(ep, out, 2, -1), 1);
    CHECK_EQ(out[0].events, EPOLLIN | EPOLLRDHUP);
    CHECK_EQ(recv(s, b, sizeof b, 0), 0);
    close(ep);

    /* A listener is readable when a connection waits. */
    ep = CHECK_OK(epoll_create1(0));
    ev.events = EPOLLIN;
    ev.data.fd = l;
    CHECK_OK(epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev));
    CHECK_EQ(epoll_wait(ep, out, 2, 0), 0);
    int c2 = CHECK_OK(connect_to(AF_INET, port, 0));
    CHECK_EQ(epoll_wait(ep, out, 2, -1), 1);
    CHECK_EQ(out[0].data.fd, l);
    int s2 = CHECK_OK(accept(l, NULL, NULL));
    CHECK_EQ(epoll_wait(ep, out, 2, 0), 0);
    close(ep);
    close(s2);
    close(c2);
    close(s);
    close(c);
    close(l);
}

/* A dual-stack IPv6 listener takes IPv4 clients and sees them as ::ffff:127.0.0.1; an
 * IPv6-only one does not. */
static void test_dual_stack(void)
{
    int l = CHECK_OK(socket(AF_INET6, SOCK_STREAM, 0));
    union addr a;
    socklen_t len = loop_addr(&a, AF_INET6, 0);
    a.in6.sin6_addr = in6addr_any;
    CHECK_OK(bind(l, &a.sa, len));
    CHECK_OK(listen(l, 4));
    int port = port_of(l);
    int c = CHECK_OK(connect_to(AF_INET, port, 0));
    union addr peer;
    socklen_t plen = sizeof peer;
    int s = CHECK_OK(accept(l, &peer.sa, &plen));
    CHECK_EQ(plen, sizeof peer.in6);
    CHECK(IN6_IS_ADDR_V4MAPPED(&peer.in6.sin6_addr));
    CHECK_EQ(ntohs(peer.in6.sin6_port), port_of(c));
    CHECK_EQ(send(c, "4", 1, 0), 1);
    char b[2];
    CHECK_EQ(recv(s, b, 1, 0), 1);
    close(s);
    close(c);
    c = CHECK_OK(connect_to(AF_INET6, port, 0));
    s = CHECK_OK(accept(l, NULL, NULL));
    CHECK_EQ(send(s, "6", 1, 0), 1);
    CHECK_EQ(recv(c, b, 1, 0), 1);
    close(s);
    close(c);
    close(l);

    l = CHECK_OK(socket(AF_INET6, SOCK_STREAM, 0));
    CHECK_OK(setint(l, IPPROTO_IPV6, IPV6_V6ONLY, 1));
    CHECK_OK(bind(l, &a.sa, len));
    CHECK_OK(listen(l, 4));
    port = port_of(l);
    c = CHECK_OK(socket(AF_INET, SOCK_STREAM, 0));
    len = loop_addr(&a, AF_INET, port);
    CHECK_ERRNO(connect(c, &a.sa, len), ECONNREFUSED);
    close(c);
    close(l);
}

/* A server blocked in accept and recv in one process is woken by a client in another. */
static void test_blocking_wakeups(void)
{
    int port;
    int l = CHECK_OK(listener(AF_INET6, 1, &port));
    pid_t pid = fork();
    if (pid == 0) {
        usleep(20000);
        int c = connect_to(AF_INET6, port, 0);
        if (c < 0)
            _exit(1);
        usleep(20000);
        if (write(c, "wake", 4) != 4)
            _exit(2);
        close(c);
        _exit(0);
    }
    int s = CHECK_OK(accept(l, NULL, NULL));
    char b[8];
    CHECK_EQ(read(s, b, sizeof b), 4);
    CHECK_EQ(read(s, b, sizeof b), 0);
    int st;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    CHECK_EXITED(st, 0);
    close(s);
    close(l);
}

int main(void)
{
    signal(SIGPIPE, SIG_DFL);
    test_create();
    test_bind();
    test_connect_errors();
    test_nonblocking_connect();
    test_backlog();
    test_across_fork(AF_INET);
    test_across_fork(AF_INET6);
    test_pipe_and_reset();
    test_flags_and_options();
    test_dual_stack();
    test_blocking_wakeups();
    return check_done();
}
