/* epoll within one process: create flags, ctl errors, level- and edge-triggered and
 * one-shot reporting, maxevents and round-robin, closing watched files, nested epoll,
 * timeouts, and the pwait forms. */
#include "check.h"

#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>

static long long mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

static int add(int ep, int fd, uint32_t events, uint64_t data)
{
    struct epoll_event ev = {.events = events, .data.u64 = data};
    return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

static void test_create_and_ctl(void)
{
    int ep = CHECK_OK(epoll_create1(0));
    CHECK_EQ(fcntl(ep, F_GETFD), 0);
    close(ep);
    ep = CHECK_OK(epoll_create1(EPOLL_CLOEXEC));
    CHECK_EQ(fcntl(ep, F_GETFD), FD_CLOEXEC);
    CHECK_ERRNO(epoll_create1(1), EINVAL);
    CHECK_ERRNO(epoll_create(0), EINVAL);
    CHECK_ERRNO(epoll_create(-1), EINVAL);
    int old = CHECK_OK(epoll_create(1));
    close(old);

    int p[2];
    CHECK_OK(pipe(p));
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 1};
    CHECK_OK(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
    CHECK_ERRNO(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev), EEXIST);
    CHECK_ERRNO(epoll_ctl(ep, EPOLL_CTL_MOD, p[1], &ev), ENOENT);
    CHECK_ERRNO(epoll_ctl(ep, EPOLL_CTL_DEL, p[1], NULL), ENOENT);
    CHECK_ERRNO(epoll_ctl(ep, 99, p[0], &ev), EINVAL);
    CHECK_ERRNO(epoll_ctl(ep, EPOLL_CTL_ADD, ep, &ev), EINVAL);
    CHECK_ERRNO(epoll_ctl(ep, EPOLL_CTL_ADD, 999, &ev), EBADF);
    CHECK_ERRNO(epoll_ctl(999, EPOLL_CTL_ADD, p[0], &ev), EBADF);
    CHECK_ERRNO(epoll_ctl(p[1], EPOLL_CTL_ADD, p[0], &ev), EINVAL);
    CHECK_ERRNO(epoll_ctl(ep, EPOLL_CTL_ADD, p[1], BAD_PTR), EFAULT);
    /* Regular files and directories cannot be watched. */
    const char *dir = check_tmpdir("epoll");
    CHECK_OK(write_file(tmp_path("f"), "x", 1));
    int reg = CHECK_OK(open(tmp_path("f"), O_RDONLY));
    CHECK_ERRNO(epoll_ctl(ep, EPOLL_CTL_ADD, reg, &ev), EPERM);
    close(reg);
    int d = CHECK_OK(open(dir, O_RDONLY | O_DIRECTORY));
    CHECK_ERRNO(epoll_ctl(ep, EPOLL_CTL_ADD, d, &ev), EPERM);
    close(d);
    /* EPOLLEXCLUSIVE: only with ADD, and not with EPOLLONESHOT. */
    ev.events = EPOLLOUT | EPOLLEXCLUSIVE;
    CHECK_OK(epoll_ctl(ep, EPOLL_CTL_ADD, p[1], &ev));
    CHECK_ERRNO(epoll_ctl(ep, EPOLL_CTL_MOD, p[1], &ev), EINVAL);
    ev.events = EPOLLIN;
    CHECK_ERRNO(epoll_ctl(ep, EPOLL_CTL_MOD, p[1], &ev), EINVAL);
    CHECK_OK(epoll_ctl(ep, EPOLL_CTL_DEL, p[1], NULL));
    ev.events = EPOLLOUT | EPOLLEXCLUSIVE | EPOLLONESHOT;
    CHECK_ERRNO(epoll_ctl(ep, EPOLL_CTL_ADD, p[1], &ev), EINVAL);
    CHECK_OK(epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL));
    close(p[0]);
    close(p[1]);
    close(ep);
}

static void test_wait(void)
{
    int ep = CHECK_OK(epoll_create1(0));
    int p[2];
    CHECK_OK(pipe(p));
    struct epoll_event out[8];
    CHECK_OK(add(ep, p[0], EPOLLIN, 10));
    CHECK_EQ(epoll_wait(ep, out, 8, 0), 0);
    CHECK_ERRNO(epoll_wait(ep, out, 0, 0), EINVAL);
    CHECK_ERRNO(syscall(SYS_epoll_wait, ep, out, -1, 0), EINVAL);
    CHECK_ERRNO(epoll_wait(p[0], out, 8, 0), EINVAL);
    CHECK_ERRNO(epoll_wait(999, out, 8, 0), EBADF);
    long long t0 = mono_ms();
    CHECK_EQ(epoll_wait(ep, out, 8, 40), 0);
    CHECK(mono_ms() - t0 >= 35);

    /* Level-triggered: reported while data is there. */
    CHECK_EQ(write(p[1], "ab", 2), 2);
    CHECK_EQ(epoll_wait(ep, out, 8, -1), 1);
    CHECK_EQ(out[0].events, EPOLLIN);
    CHECK_EQ(out[0].data.u64, 10);
    CHECK_EQ(epoll_wait(ep, out, 8, 0), 1);
    CHECK_ERRNO(syscall(SYS_epoll_wait, ep, BAD_PTR, 8, 0), EFAULT);
    char buf[8];
    CHECK_EQ(read(p[0], buf, sizeof buf), 2);
    CHECK_EQ(epoll_wait(ep, out, 8, 0), 0);

    /* Edge-triggered: once per new write. */
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u64 = 11};
    CHECK_OK(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev));
    CHECK_EQ(write(p[1], "c", 1), 1);
    CHECK_EQ(epoll_wait(ep, out, 8, 0), 1);
    CHECK_EQ(out[0].data.u64, 11);
    CHECK_EQ(epoll_wait(ep, out, 8, 0), 0);
    CHECK_EQ(write(p[1], "d", 1), 1);
    CHECK_EQ(epoll_wait(ep, out, 8, 0), 1);
    CHECK_EQ(epoll_wait(ep, out, 8, 0), 0);
    CHECK_EQ(read(p[0], buf, sizeof buf), 2);

    /* One-shot: reported once, then disabled until MOD. */
    ev.events = EPOLLIN | EPOLLONESHOT;
    ev.data.u64 = 12;
    CHECK_OK(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev));
    CHECK_EQ(write(p[1], "e", 1), 1);
    CHECK_EQ(epoll_wait(ep, out, 8, 0), 1);
    CHECK_EQ(epoll_wait(ep, out, 8, 0), 0);
    CHECK_EQ(write(p[1], "f", 1), 1);
    CHECK_EQ(epoll_wait(ep, out, 8, 0), 0);
    CHECK_OK(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev));
    CHECK_EQ(epoll_wait(ep, out, 8, 0), 1);

    /* Hang-up and errors are always reported. */
    ev.events = EPOLLIN;
    ev.data.u64 = 13;
    CHECK_OK(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev));
    CHECK_OK(add(ep, p[1], EPOLLOUT, 14));
    CHECK_EQ(epoll_wait(ep, out, 8, 0), 2);
    close(p[1]);
    CHECK_EQ(epoll_wait(ep, out, 8, 0), 1);
    CHECK_EQ(out[0].events, EPOLLIN | EPOLLHUP);
    CHECK_EQ(read(p[0], buf, sizeof buf), 2);
    CHECK_EQ(epoll_wait(ep, out, 8, 0), 1);
    CHECK_EQ(out[0].events, EPOLLHUP);
    close(p[0]);
    /* Closing the last fd of a watched file removes it. */
    CHECK_EQ(epoll_wait(ep, out, 8, 0), 0);
    CHECK_OK(pipe(p));
    CHECK_OK(add(ep, p[0], EPOLLIN, 15));
    close(p[1]);
    close(p[0]);
    CHECK_EQ(epoll_wait(ep, out, 8, 0), 0);
    close(ep);
}

static void test_many(void)
{
    /* maxevents smaller than the ready set: every file gets its turn. */
    int ep = CHECK_OK(epoll_create1(0));
    int fds[4];
    for (int i = 0; i < 4; i++) {
        fds[i] = CHECK_OK(eventfd(1, EFD_NONBLOCK));
        CHECK_OK(add(ep, fds[i], EPOLLIN, 100 + i));
    }
    int seen[4] = {0};
    struct epoll_event out[2];
    for (int round = 0; round < 2; round++) {
        CHECK_EQ(epoll_wait(ep, out, 2, 0), 2);
        for (int i = 0; i < 2; i++) {
            uint64_t k = out[i].data.u64 - 100;
            if (k < 4)
                seen[k]++;
        }
    }
    CHECK(seen[0] == 1 && seen[1] == 1 && seen[2] == 1 && seen[3] == 1);
    /* A dup keeps the file in the set, reported under the fd it was added with. */
    int copy = CHECK_OK(dup(fds[0]));
    close(fds[0]);
    uint64_t v;
    for (int i = 1; i < 4; i++)
        CHECK_EQ(read(fds[i], &v, 8), 8);
    CHECK_EQ(epoll_wait(ep, out, 2, 0), 1);
    CHECK_EQ(out[0].data.u64, 100);
    close(copy);
    CHECK_EQ(epoll_wait(ep, out, 2, 0), 0);
    for (int i = 1; i < 4; i++)
        close(fds[i]);
    close(ep);
}

static void test_nested_and_pollable(void)
{
    int outer = CHECK_OK(epoll_create1(0));
    int inner = CHECK_OK(epoll_create1(0));
    int efd = CHECK_OK(eventfd(0, EFD_NONBLOCK));
    CHECK_OK(add(inner, efd, EPOLLIN, 1));
    CHECK_OK(add(outer, inner, EPOLLIN, 2));
    /* No loops. */
    CHECK_ERRNO(add(inner, outer, EPOLLIN, 3), ELOOP);
    struct epoll_event out[4];
    CHECK_EQ(epoll_wait(outer, out, 4, 0), 0);
    struct pollfd p = {.fd = inner, .events = POLLIN};
    CHECK_EQ(poll(&p, 1, 0), 0);
    uint64_t one = 1;
    CHECK_EQ(write(efd, &one, 8), 8);
    CHECK_EQ(poll(&p, 1, 0), 1);
    CHECK_EQ(p.revents, POLLIN);
    CHECK_EQ(epoll_wait(outer, out, 4, 1000), 1);
    CHECK_EQ(out[0].data.u64, 2);
    CHECK_EQ(out[0].events, EPOLLIN);
    CHECK_EQ(epoll_wait(inner, out, 4, 0), 1);
    CHECK_EQ(out[0].data.u64, 1);
    close(efd);
    close(inner);
    close(outer);
}

static void test_pwait(void)
{
    int ep = CHECK_OK(epoll_create1(0));
    int efd = CHECK_OK(eventfd(1, 0));
    CHECK_OK(add(ep, efd, EPOLLIN, 7));
    struct epoll_event out[2];
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    CHECK_EQ(epoll_pwait(ep, out, 2, 0, &set), 1);
    CHECK_EQ(syscall(SYS_epoll_pwait, ep, out, 2, 0, &set, 8), 1);
    CHECK_ERRNO(syscall(SYS_epoll_pwait, ep, out, 2, 0, &set, 4), EINVAL);
    struct timespec ts = {0, 0};
    CHECK_EQ(syscall(SYS_epoll_pwait2, ep, out, 2, &ts, NULL, 8), 1);
    ts.tv_nsec = 1000000000;
    CHECK_ERRNO(syscall(SYS_epoll_pwait2, ep, out, 2, &ts, NULL, 8), EINVAL);
    uint64_t v;
    CHECK_EQ(read(efd, &v, 8), 8);
    ts.tv_nsec = 30 * 1000000;
    long long t0 = mono_ms();
    CHECK_EQ(syscall(SYS_epoll_pwait2, ep, out, 2, &ts, NULL, 8), 0);
    CHECK(mono_ms() - t0 >= 25);
    close(efd);
    close(ep);
}

int main(void)
{
    test_create_and_ctl();
    test_wait();
    test_many();
    test_nested_and_pollable();
    test_pwait();
    return check_done();
}
