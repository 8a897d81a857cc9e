/* Control messages on AF_UNIX sockets: SCM_RIGHTS (in one process and across fork(),
 * the shared open file description, MSG_CTRUNC with too little room, files closed when
 * a message is dropped unreceived or read with read(2), MSG_CMSG_CLOEXEC, bad
 * descriptors and lengths), SCM_CREDENTIALS with SO_PASSCRED (implicit and explicit,
 * EPERM for another's ids), SO_PEERCRED across fork(), and the autobind of an unnamed
 * SO_PASSCRED sender. */
#include "child.h"

#include <poll.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>

/* Send `len` bytes with `nfds` descriptors in one SCM_RIGHTS message. */
static ssize_t send_fds(int s, const void *data, size_t len, const int *fds, int nfds)
{
    char ctl[CMSG_SPACE(sizeof(int) * 8)];
    memset(ctl, 0, sizeof ctl);
    struct iovec iov = { (void *)data, len };
    struct msghdr m = { 0 };
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    if (nfds > 0) {
        m.msg_control = ctl;
        m.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
    }
    return sendmsg(s, &m, 0);
}

/* Receive into buf with `ctllen` bytes of control space; the descriptors that came are
 * stored in fds (up to 8), their count in *nfds, msg_flags in *flags. */
static ssize_t recv_fds(int s, void *buf, size_t len, size_t ctllen, int recv_flags,
                        int *fds, int *nfds, int *flags)
{
    char ctl[256];
    memset(ctl, 0, sizeof ctl);
    struct iovec iov = { buf, len };
    struct msghdr m = { 0 };
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctllen ? ctl : NULL;
    m.msg_controllen = ctllen;
    ssize_t n = recvmsg(s, &m, recv_flags);
    *nfds = 0;
    if (n < 0)
        return n;
    *flags = m.msg_flags;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            for (int i = 0; i < k && *nfds < 8; i++)
                memcpy(&fds[(*nfds)++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        }
    }
    return n;
}

static void test_rights_local(void)
{
    int sv[2], p[2], fds[8], nfds = 0, flags = 0;
    char buf[16];
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    CHECK_OK(pipe(p));
    CHECK_EQ(send_fds(sv[0], "F", 1, &p[1], 1), 1);
    CHECK_EQ(recv_fds(sv[1], buf, sizeof buf, CMSG_SPACE(sizeof(int)), 0, fds, &nfds, &flags), 1);
    CHECK_EQ(nfds, 1);
    CHECK_EQ(flags, 0);
    CHECK(fds[0] != p[1]);
    CHECK_EQ(fcntl(fds[0], F_GETFD), 0);
    /* The received descriptor is the same pipe end. */
    CHECK_EQ(write(fds[0], "via", 3), 3);
    CHECK_EQ(read(p[0], buf, sizeof buf), 3);
    close(fds[0]);

    /* MSG_CMSG_CLOEXEC marks received descriptors close-on-exec. */
    CHECK_EQ(send_fds(sv[0], "G", 1, &p[1], 1), 1);
    CHECK_EQ(recv_fds(sv[1], buf, sizeof buf, CMSG_SPACE(sizeof(int)), MSG_CMSG_CLOEXEC, fds,
                      &nfds, &flags), 1);
    CHECK_EQ(nfds, 1);
    CHECK_EQ(fcntl(fds[0], F_GETFD), FD_CLOEXEC);
    close(fds[0]);

    /* Room for one of three: one arrives, MSG_CTRUNC, the rest are closed. */
    int three[3] = { p[1], p[1], p[1] };
    CHECK_EQ(send_fds(sv[0], "H", 1, three, 3), 1);
    CHECK_EQ(recv_fds(sv[1], buf, sizeof buf, CMSG_LEN(sizeof(int)), 0, fds, &nfds, &flags), 1);
    CHECK_EQ(nfds, 1);
    CHECK_EQ(flags, MSG_CTRUNC);
    close(fds[0]);
    /* No control buffer at all. */
    CHECK_EQ(send_fds(sv[0], "I", 1, &p[1], 1), 1);
    CHECK_EQ(recv_fds(sv[1], buf, sizeof buf, 0, 0, fds, &nfds, &flags), 1);
    CHECK_EQ(nfds, 0);
    CHECK_EQ(flags, MSG_CTRUNC);

    /* On a stream, a read ends after the bytes that carried descriptors. */
    CHECK_EQ(send_fds(sv[0], "ab", 2, &p[1], 1), 2);
    CHECK_EQ(write(sv[0], "cd", 2), 2);
    CHECK_EQ(recv_fds(sv[1], buf, sizeof buf, CMSG_SPACE(sizeof(int)), 0, fds, &nfds, &flags), 2);
    CHECK_EQ(nfds, 1);
    close(fds[0]);
    CHECK_EQ(read(sv[1], buf, sizeof buf), 2);
    CHECK_MEMEQ(buf, "cd", 2);

    /* Bad descriptors and bad control messages. */
    int bad = 999;
    CHECK_ERRNO(send_fds(sv[0], "x", 1, &bad, 1), EBADF);
    char ctl[CMSG_SPACE(sizeof(int))];
    memset(ctl, 0, sizeof ctl);
    struct iovec iov = { "x", 1 };
    struct msghdr m = { 0 };
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctl;
    m.msg_controllen = sizeof ctl;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = 8;
    CHECK_ERRNO(sendmsg(sv[0], &m, 0), EINVAL);
    c->cmsg_len = CMSG_LEN(sizeof(int));
    c->cmsg_type = 77;
    CHECK_ERRNO(sendmsg(sv[0], &m, 0), EINVAL);
    CHECK_ERRNO(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT), EAGAIN);
    close(sv[0]);
    close(sv[1]);

    /* Files in messages dropped unreceived are closed: the pipe sees its last writer go. */
    CHECK_OK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv));
    CHECK_EQ(send_fds(sv[0], "J", 1, &p[1], 1), 1);
    close(p[1]);
    char one;
    CHECK_OK(fcntl(p[0], F_SETFL, O_NONBLOCK));
    CHECK_ERRNO(read(p[0], &one, 1), EAGAIN); /* the queued copy still writes */
    close(sv[1]);
    close(sv[0]);
    CHECK_EQ(read(p[0], &one, 1), 0);
    close(p[0]);

    /* read(2) of a message with descriptors drops (closes) them. */
    CHECK_OK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv));
    CHECK_OK(pipe(p));
    CHECK_EQ(send_fds(sv[0], "K", 1, &p[1], 1), 1);
    close(p[1]);
    CHECK_EQ(read(sv[1], buf, sizeof buf), 1);
    CHECK_EQ(read(p[0], &one, 1), 0);
    close(p[0]);
    close(sv[0]);
    close(sv[1]);
}

/* The child opens a file, writes to it and passes it over the socket. */
static int fork_sv[2];
static void rights_child(void *arg)
{
    (void)arg;
    close(fork_sv[1]);
    int fd = CHECK_OK(open(tmp_path("passed"), O_RDWR | O_CREAT | O_TRUNC, 0600));
    CHECK_EQ(write(fd, "from child", 10), 10);
    CHECK_EQ(send_fds(fork_sv[0], "f", 1, &fd, 1), 1);
    close(fd);
    /* Wait for the parent to read through it, then check the shared offset moved. */
    char b;
    CHECK_EQ(read(fork_sv[0], &b, 1), 1);
    close(fork_sv[0]);
}

static void test_rights_fork(void)
{
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, fork_sv));
    pid_t pid = spawn_checks(rights_child, NULL);
    close(fork_sv[0]);
    int fds[8], nfds = 0, flags = 0;
    char buf[32];
    CHECK_EQ(recv_fds(fork_sv[1], buf, sizeof buf, CMSG_SPACE(sizeof(int)), 0, fds, &nfds,
                      &flags), 1);
    CHECK_EQ(nfds, 1);
    /* The same open file description: its offset is where the child left it. */
    CHECK_EQ(lseek(fds[0], 0, SEEK_CUR), 10);
    CHECK_EQ(pread(fds[0], buf, sizeof buf, 0), 10);
    CHECK_MEMEQ(buf, "from child", 10);
    CHECK_EQ(write(fork_sv[1], "k", 1), 1);
    CHECK_EXITED(wait_status(pid, 0), 0);
    close(fds[0]);
    close(fork_sv[1]);
}

static int get_creds(int s, void *buf, size_t len, struct ucred *uc, int *flags)
{
    char ctl[CMSG_SPACE(sizeof(struct ucred))];
    struct iovec iov = { buf, len };
    struct msghdr m = { 0 };
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctl;
    m.msg_controllen = sizeof ctl;
    if (recvmsg(s, &m, 0) < 0)
        return -1;
    *flags = m.msg_flags;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
            memcpy(uc, CMSG_DATA(c), sizeof *uc);
            return 1;
        }
    return 0;
}

static ssize_t send_creds(int s, const struct ucred *uc)
{
    char ctl[CMSG_SPACE(sizeof(struct ucred))];
    memset(ctl, 0, sizeof ctl);
    struct iovec iov = { "c", 1 };
    struct msghdr m = { 0 };
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctl;
    m.msg_controllen = sizeof ctl;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_CREDENTIALS;
    c->cmsg_len = CMSG_LEN(sizeof *uc);
    memcpy(CMSG_DATA(c), uc, sizeof *uc);
    return sendmsg(s, &m, 0);
}

static int cred_sv[2];
static void creds_child(void *arg)
{
    (void)arg;
    CHECK_EQ(write(cred_sv[0], "z", 1), 1);
    /* As an unprivileged user, another's ids or pid are refused. */
    CHECK_OK(setresgid(65534, 65534, 65534));
    CHECK_OK(setresuid(65534, 65534, 65534));
    struct ucred mine = { getpid(), 65534, 65534 };
    CHECK_EQ(send_creds(cred_sv[0], &mine), 1);
    struct ucred root = { getpid(), 0, 65534 };
    CHECK_ERRNO(send_creds(cred_sv[0], &root), EPERM);
    struct ucred other_pid = { getppid(), 65534, 65534 };
    CHECK_ERRNO(send_creds(cred_sv[0], &other_pid), EPERM);
}

static void test_credentials(void)
{
    CHECK_OK(socketpair(AF_UNIX, SOCK_DGRAM, 0, cred_sv));
    int on = 1;
    CHECK_OK(setsockopt(cred_sv[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof on));
    int v = 0;
    socklen_t len = sizeof v;
    CHECK_OK(getsockopt(cred_sv[1], SOL_SOCKET, SO_PASSCRED, &v, &len));
    CHECK_EQ(v, 1);
    char buf[8];
    struct ucred uc = { 0 };
    int flags = -1;
    /* Without SCM_CREDENTIALS the sender's own are reported. */
    CHECK_EQ(write(cred_sv[0], "a", 1), 1);
    CHECK_EQ(get_creds(cred_sv[1], buf, sizeof buf, &uc, &flags), 1);
    CHECK_EQ(uc.pid, getpid());
    CHECK_EQ(uc.uid, getuid());
    CHECK_EQ(uc.gid, getgid());
    CHECK_EQ(flags, 0);
    struct ucred mine = { getpid(), getuid(), getgid() };
    CHECK_EQ(send_creds(cred_sv[0], &mine), 1);
    CHECK_EQ(get_creds(cred_sv[1], buf, sizeof buf, &uc, &flags), 1);
    CHECK_EQ(uc.pid, getpid());
    /* A wrong length is EINVAL. */
    char ctl[CMSG_SPACE(8)];
    memset(ctl, 0, sizeof ctl);
    struct iovec iov = { "c", 1 };
    struct msghdr m = { 0 };
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctl;
    m.msg_controllen = sizeof ctl;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_CREDENTIALS;
    c->cmsg_len = CMSG_LEN(8);
    CHECK_ERRNO(sendmsg(cred_sv[0], &m, 0), EINVAL);

    /* Across fork: the child's pid, and its unprivileged attempts. */
    pid_t pid = spawn_checks(creds_child, NULL);
    CHECK_EQ(get_creds(cred_sv[1], buf, sizeof buf, &uc, &flags), 1);
    CHECK_EQ(uc.pid, pid);
    CHECK_EQ(get_creds(cred_sv[1], buf, sizeof buf, &uc, &flags), 1);
    CHECK_EQ(uc.pid, pid);
    CHECK_EQ(uc.uid, 65534);
    CHECK_EXITED(wait_status(pid, 0), 0);
    close(cred_sv[0]);
    close(cred_sv[1]);
}

/* An unnamed SO_PASSCRED sender is given an abstract name when it sends. */
static void test_passcred_autobind(void)
{
    struct sockaddr_un sa, from;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", tmp_path("cred.sock"));
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(sa.sun_path) + 1);
    int srv = CHECK_OK(socket(AF_UNIX, SOCK_DGRAM, 0));
    CHECK_OK(bind(srv, (struct sockaddr *)&sa, salen));
    int cli = CHECK_OK(socket(AF_UNIX, SOCK_DGRAM, 0));
    int on = 1;
    CHECK_OK(setsockopt(cli, SOL_SOCKET, SO_PASSCRED, &on, sizeof on));
    CHECK_EQ(sendto(cli, "q", 1, 0, (struct sockaddr *)&sa, salen), 1);
    char buf[4];
    socklen_t flen = sizeof from;
    CHECK_EQ(recvfrom(srv, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen), 1);
    CHECK_EQ(flen, sizeof(sa_family_t) + 6);
    CHECK_EQ(from.sun_path[0], 0);
    struct sockaddr_un me;
    socklen_t mlen = sizeof me;
    CHECK_OK(getsockname(cli, (struct sockaddr *)&me, &mlen));
    CHECK_EQ(mlen, flen);
    CHECK_MEMEQ(me.sun_path, from.sun_path, 6);
    close(cli);
    close(srv);
}

/* Passing a socket: the receiver talks through the passed end. */
static void test_pass_socket(void)
{
    int carrier[2], inner[2], fds[8], nfds = 0, flags = 0;
    char buf[8];
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, carrier));
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, inner));
    CHECK_EQ(send_fds(carrier[0], "s", 1, &inner[1], 1), 1);
    close(inner[1]);
    CHECK_EQ(recv_fds(carrier[1], buf, sizeof buf, CMSG_SPACE(sizeof(int)), 0, fds, &nfds,
                      &flags), 1);
    CHECK_EQ(nfds, 1);
    CHECK_EQ(write(inner[0], "hi", 2), 2);
    CHECK_EQ(read(fds[0], buf, sizeof buf), 2);
    close(fds[0]);
    CHECK_EQ(read(inner[0], buf, sizeof buf), 0);
    close(inner[0]);
    close(carrier[0]);
    close(carrier[1]);
}

/* A socket sent to itself and closed is unreachable: the collector frees it and what
 * its queue carried, here a pipe's last writer, when some other socket is released. */
static void test_garbage_cycle(void)
{
    int sv[2], p[2];
    CHECK_OK(pipe(p));
    CHECK_OK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv));
    int two[2] = { p[1], sv[1] };
    CHECK_EQ(send_fds(sv[0], "c", 1, two, 2), 1);
    close(p[1]);
    close(sv[0]);
    close(sv[1]);
    int other = CHECK_OK(socket(AF_UNIX, SOCK_STREAM, 0));
    close(other);
    /* Linux may collect in the background: wait for the hang-up, not for a time. */
    struct pollfd pf = { p[0], POLLIN, 0 };
    CHECK_EQ(poll(&pf, 1, 20000), 1);
    CHECK(pf.revents & POLLHUP);
    char c;
    CHECK_EQ(read(p[0], &c, 1), 0);
    close(p[0]);

    /* Two sockets holding each other, one of them still open: nothing is freed. */
    CHECK_OK(pipe(p));
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    int pair[2] = { p[1], sv[0] };
    CHECK_EQ(send_fds(sv[0], "d", 1, pair, 2), 1);
    close(p[1]);
    close(sv[0]);
    other = CHECK_OK(socket(AF_UNIX, SOCK_STREAM, 0));
    close(other);
    int fds[8], nfds = 0, flags = 0;
    char buf[4];
    CHECK_EQ(recv_fds(sv[1], buf, sizeof buf, CMSG_SPACE(2 * sizeof(int)), 0, fds, &nfds,
                      &flags), 1);
    CHECK_EQ(nfds, 2);
    CHECK_EQ(write(fds[0], "w", 1), 1);
    CHECK_EQ(read(p[0], &c, 1), 1);
    close(fds[0]);
    close(fds[1]);
    close(sv[1]);
    close(p[0]);
}

int main(void)
{
    check_tmpdir("unix_scm");
    test_rights_local();
    test_rights_fork();
    test_credentials();
    test_passcred_autobind();
    test_pass_socket();
    test_garbage_cycle();
    return check_done();
}
