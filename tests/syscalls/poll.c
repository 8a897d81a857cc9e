/* poll, ppoll, select and pselect6 on pipes and /dev/null within one process: readiness
 * bits, POLLNVAL, POLLHUP and POLLERR, timeouts (and the time left that select and ppoll
 * write back), and the error cases. */
#include "check.h"

#include <poll.h>
#include <signal.h>
#include <sys/select.h>
#include <time.h>

static long long mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

static void test_poll(void)
{
    int p[2];
    CHECK_OK(pipe(p));
    struct pollfd fds[3] = {
        {.fd = p[0], .events = POLLIN},
        {.fd = p[1], .events = POLLOUT},
        {.fd = -1, .events = POLLIN},
    };
    /* Only the write end is ready. */
    CHECK_EQ(poll(fds, 3, 0), 1);
    CHECK_EQ(fds[0].revents, 0);
    CHECK_EQ(fds[1].revents, POLLOUT);
    CHECK_EQ(fds[2].revents, 0);
    CHECK_EQ(write(p[1], "x", 1), 1);
    CHECK_EQ(poll(fds, 3, 0), 2);
    CHECK_EQ(fds[0].revents, POLLIN);
    /* Events not asked for are not reported (but POLLRDNORM is asked for separately). */
    fds[0].events = POLLRDNORM;
    CHECK_EQ(poll(fds, 1, 0), 1);
    CHECK_EQ(fds[0].revents, POLLRDNORM);
    fds[0].events = POLLOUT;
    CHECK_EQ(poll(fds, 1, 0), 0);
    CHECK_EQ(fds[0].revents, 0);
    /* A closed writer hangs up the reader: POLLHUP is reported even if not asked. */
    fds[0].events = POLLIN;
    close(p[1]);
    CHECK_EQ(poll(fds, 1, 0), 1);
    CHECK_EQ(fds[0].revents, POLLIN | POLLHUP);
    char c;
    CHECK_EQ(read(p[0], &c, 1), 1);
    CHECK_EQ(poll(fds, 1, 0), 1);
    CHECK_EQ(fds[0].revents, POLLHUP);
    /* The timeout still returns at once: hang-up counts as ready. */
    CHECK_EQ(poll(fds, 1, 1000), 1);
    close(p[0]);

    /* A closed reader: POLLERR on the write end. */
    CHECK_OK(pipe(p));
    close(p[0]);
    struct pollfd w = {.fd = p[1], .events = POLLOUT};
    CHECK_EQ(poll(&w, 1, 0), 1);
    CHECK_EQ(w.revents, POLLOUT | POLLERR);
    close(p[1]);

    /* A closed descriptor is POLLNVAL, and counts. */
    struct pollfd bad = {.fd = p[1], .events = POLLIN};
    CHECK_EQ(poll(&bad, 1, 0), 1);
    CHECK_EQ(bad.revents, POLLNVAL);
    /* Files that never block are always ready. */
    int null = CHECK_OK(open("/dev/null", O_RDWR));
    struct pollfd n = {.fd = null, .events = POLLIN | POLLOUT};
    CHECK_EQ(poll(&n, 1, -1), 1);
    CHECK_EQ(n.revents, POLLIN | POLLOUT);
    close(null);

    /* Errors. */
    CHECK_ERRNO(syscall(SYS_poll, BAD_PTR, 1, 0), EFAULT);
    CHECK_ERRNO(syscall(SYS_poll, NULL, 1 << 24, 0), EINVAL);
    CHECK_EQ(poll(NULL, 0, 0), 0);
}

static void test_poll_timeout(void)
{
    int p[2];
    CHECK_OK(pipe(p));
    struct pollfd fd = {.fd = p[0], .events = POLLIN};
    long long t0 = mono_ms();
    CHECK_EQ(poll(&fd, 1, 50), 0);
    long long took = mono_ms() - t0;
    CHECK(took >= 45 && took < 2000);
    /* Nothing at all to wait for: poll is a sleep. */
    t0 = mono_ms();
    CHECK_EQ(poll(NULL, 0, 30), 0);
    CHECK(mono_ms() - t0 >= 25);

    struct timespec ts = {0, 20 * 1000 * 1000};
    t0 = mono_ms();
    CHECK_EQ(ppoll(&fd, 1, &ts, NULL), 0);
    CHECK(mono_ms() - t0 >= 15);
    struct timespec badts = {0, 1000000000};
    CHECK_ERRNO(ppoll(&fd, 1, &badts, NULL), EINVAL);
    badts.tv_sec = -1;
    badts.tv_nsec = 0;
    CHECK_ERRNO(ppoll(&fd, 1, &badts, NULL), EINVAL);
    /* ppoll with a signal mask: the mask is the caller's again afterwards. */
    sigset_t set, old, now;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_SETMASK, NULL, &old);
    ts.tv_nsec = 0;
    CHECK_EQ(write(p[1], "x", 1), 1);
    CHECK_EQ(ppoll(&fd, 1, &ts, &set), 1);
    sigprocmask(SIG_SETMASK, NULL, &now);
    CHECK_EQ(sigismember(&now, SIGUSR1), sigismember(&old, SIGUSR1));
    /* The raw call checks the sigset size. */
    CHECK_ERRNO(syscall(SYS_ppoll, &fd, 1, &ts, &set, 4), EINVAL);
    close(p[0]);
    close(p[1]);
}

static void test_select(void)
{
    int p[2];
    CHECK_OK(pipe(p));
    fd_set r, w, e;
    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_ZERO(&e);
    FD_SET(p[0], &r);
    FD_SET(p[1], &w);
    FD_SET(p[0], &e);
    struct timeval tv = {0, 0};
    int nfds = (p[0] > p[1] ? p[0] : p[1]) + 1;
    CHECK_EQ(select(nfds, &r, &w, &e, &tv), 1);
    CHECK(!FD_ISSET(p[0], &r));
    CHECK(FD_ISSET(p[1], &w));
    CHECK(!FD_ISSET(p[0], &e));

    CHECK_EQ(write(p[1], "x", 1), 1);
    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_SET(p[0], &r);
    FD_SET(p[1], &w);
    FD_SET(p[1], &r); /* a write end is never readable */
    CHECK_EQ(select(nfds, &r, &w, NULL, &tv), 2);
    CHECK(FD_ISSET(p[0], &r));
    CHECK(!FD_ISSET(p[1], &r));
    CHECK(FD_ISSET(p[1], &w));

    /* A timeout: the sets are cleared and the time left is written back. */
    char c;
    CHECK_EQ(read(p[0], &c, 1), 1);
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    tv.tv_sec = 0;
    tv.tv_usec = 30000;
    long long t0 = mono_ms();
    CHECK_EQ(select(nfds, &r, NULL, NULL, &tv), 0);
    CHECK(mono_ms() - t0 >= 25);
    CHECK(!FD_ISSET(p[0], &r));
    CHECK_EQ(tv.tv_sec, 0);
    CHECK(tv.tv_usec < 30000);
    /* Ready before the timeout: some time is left. */
    CHECK_EQ(write(p[1], "y", 1), 1);
    FD_SET(p[0], &r);
    tv.tv_sec = 5;
    tv.tv_usec = 0;
    CHECK_EQ(select(nfds, &r, NULL, NULL, &tv), 1);
    CHECK(tv.tv_sec >= 4 && tv.tv_sec <= 5);
    /* Microseconds of a second or more are folded into seconds. */
    tv.tv_sec = 0;
    tv.tv_usec = 1500000;
    CHECK_EQ(select(nfds, &r, NULL, NULL, &tv), 1);

    /* Errors: a closed fd in a set, negative nfds, negative times, bad sets. */
    int closed = CHECK_OK(dup(p[0]));
    close(closed);
    FD_ZERO(&r);
    FD_SET(closed, &r);
    tv.tv_sec = 0;
    tv.tv_usec = 0;
    CHECK_ERRNO(select(closed + 1, &r, NULL, NULL, &tv), EBADF);
    /* Bits at or above nfds are not looked at. */
    CHECK_EQ(select(closed, &r, NULL, NULL, &tv), 0);
    CHECK_ERRNO(select(-1, NULL, NULL, NULL, &tv), EINVAL);
    tv.tv_sec = -1;
    CHECK_ERRNO(select(0, NULL, NULL, NULL, &tv), EINVAL);
    tv.tv_sec = 0;
    CHECK_ERRNO(syscall(SYS_select, nfds, BAD_PTR, NULL, NULL, &tv), EFAULT);
    /* No sets: a sleep. */
    tv.tv_usec = 20000;
    t0 = mono_ms();
    CHECK_EQ(select(0, NULL, NULL, NULL, &tv), 0);
    CHECK(mono_ms() - t0 >= 15);

    /* pselect6 with a mask and a timespec; the timespec is not updated by glibc. */
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    struct timespec ts = {1, 0};
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    CHECK_EQ(pselect(nfds, &r, NULL, NULL, &ts, &set), 1);
    ts.tv_nsec = 1000000000;
    CHECK_ERRNO(pselect(nfds, &r, NULL, NULL, &ts, NULL), EINVAL);
    /* The raw call's sigset argument: {pointer, size}; a wrong size is EINVAL. */
    struct {
        sigset_t *ss;
        size_t len;
    } arg = {&set, 4};
    struct timespec zero = {0, 0};
    CHECK_ERRNO(syscall(SYS_pselect6, nfds, &r, NULL, NULL, &zero, &arg), EINVAL);
    arg.len = 8;
    CHECK_EQ(syscall(SYS_pselect6, nfds, &r, NULL, NULL, &zero, &arg), 1);
    close(p[0]);
    close(p[1]);
}

int main(void)
{
    test_poll();
    test_poll_timeout();
    test_select();
    return check_done();
}
