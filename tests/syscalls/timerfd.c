/* timerfd within one process: one-shot and periodic timers on the monotonic and
 * realtime clocks, absolute times, gettime, blocking and non-blocking reads, poll, and
 * the error cases. */
#include "check.h"

#include <poll.h>
#include <sys/timerfd.h>
#include <time.h>

static long long mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

static struct itimerspec its(long value_ms, long interval_ms)
{
    struct itimerspec s;
    s.it_value.tv_sec = value_ms / 1000;
    s.it_value.tv_nsec = (value_ms % 1000) * 1000000L;
    s.it_interval.tv_sec = interval_ms / 1000;
    s.it_interval.tv_nsec = (interval_ms % 1000) * 1000000L;
    return s;
}

int main(void)
{
    uint64_t n;
    int fd = CHECK_OK(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK));
    CHECK_EQ(fcntl(fd, F_GETFD), 0);
    /* Disarmed: nothing to read, gettime is zero. */
    CHECK_ERRNO(read(fd, &n, 8), EAGAIN);
    struct itimerspec cur;
    CHECK_OK(timerfd_gettime(fd, &cur));
    CHECK_EQ(cur.it_value.tv_sec + cur.it_value.tv_nsec, 0);

    /* One-shot, relative. */
    struct itimerspec s = its(30, 0), old;
    CHECK_OK(timerfd_settime(fd, 0, &s, &old));
    CHECK_EQ(old.it_value.tv_sec + old.it_value.tv_nsec, 0);
    CHECK_OK(timerfd_gettime(fd, &cur));
    CHECK(cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec > 0 &&
          cur.it_value.tv_nsec <= 30000000);
    CHECK_ERRNO(read(fd, &n, 8), EAGAIN);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    long long t0 = mono_ms();
    CHECK_EQ(poll(&p, 1, 2000), 1);
    CHECK(mono_ms() - t0 < 1500);
    CHECK_EQ(read(fd, &n, 8), 8);
    CHECK_EQ(n, 1);
    CHECK_ERRNO(read(fd, &n, 8), EAGAIN);
    CHECK_ERRNO(read(fd, &n, 4), EINVAL);
    close(fd);

    /* Periodic, blocking reads: each read waits for the next expiry. */
    fd = CHECK_OK(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC));
    CHECK_EQ(fcntl(fd, F_GETFD), FD_CLOEXEC);
    s = its(20, 20);
    /* Read the clock before arming: a preemption between the two must not shorten
     * the interval measured (the second expiry is 40 ms after the arming). */
    t0 = mono_ms();
    CHECK_OK(timerfd_settime(fd, 0, &s, NULL));
    CHECK_EQ(read(fd, &n, 8), 8);
    CHECK(n >= 1);
    CHECK_EQ(read(fd, &n, 8), 8);
    CHECK(n >= 1);
    CHECK(mono_ms() - t0 >= 35);
    /* Expirations pile up while nobody reads. */
    struct timespec nap = {0, 70 * 1000000};
    nanosleep(&nap, NULL);
    CHECK_EQ(read(fd, &n, 8), 8);
    CHECK(n >= 3);
    CHECK_OK(timerfd_gettime(fd, &cur));
    CHECK_EQ(cur.it_interval.tv_nsec, 20000000);
    /* Re-arming returns the old setting; disarming with a zero value. */
    s = its(0, 0);
    CHECK_OK(timerfd_settime(fd, 0, &s, &old));
    CHECK_EQ(old.it_interval.tv_nsec, 20000000);
    CHECK_OK(timerfd_gettime(fd, &cur));
    CHECK_EQ(cur.it_value.tv_sec + cur.it_value.tv_nsec + cur.it_interval.tv_nsec, 0);
    close(fd);

    /* Absolute times on the realtime clock; a time in the past fires at once. */
    fd = CHECK_OK(timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK));
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    s = its(0, 0);
    s.it_value.tv_sec = now.tv_sec - 10;
    CHECK_OK(timerfd_settime(fd, TFD_TIMER_ABSTIME, &s, NULL));
    CHECK_EQ(read(fd, &n, 8), 8);
    CHECK_EQ(n, 1);
    s.it_value.tv_sec = now.tv_sec + 100;
    CHECK_OK(timerfd_settime(fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &s, NULL));
    CHECK_OK(timerfd_gettime(fd, &cur));
    CHECK(cur.it_value.tv_sec >= 98 && cur.it_value.tv_sec <= 100);
    close(fd);

    /* Absolute on the monotonic clock. */
    fd = CHECK_OK(timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK));
    clock_gettime(CLOCK_BOOTTIME, &now);
    s = its(0, 0);
    s.it_value = now;
    s.it_value.tv_nsec += 20000000;
    if (s.it_value.tv_nsec >= 1000000000) {
        s.it_value.tv_sec++;
        s.it_value.tv_nsec -= 1000000000;
    }
    CHECK_OK(timerfd_settime(fd, TFD_TIMER_ABSTIME, &s, NULL));
    CHECK_EQ(poll(&p, 0, 0), 0);
    p.fd = fd;
    CHECK_EQ(poll(&p, 1, 2000), 1);
    CHECK_EQ(read(fd, &n, 8), 8);
    CHECK_EQ(n, 1);

    /* Errors. */
    s = its(10, 0);
    s.it_value.tv_nsec = 1000000000;
    CHECK_ERRNO(timerfd_settime(fd, 0, &s, NULL), EINVAL);
    s = its(10, 0);
    CHECK_ERRNO(timerfd_settime(fd, 0x10, &s, NULL), EINVAL);
    CHECK_ERRNO(syscall(SYS_timerfd_settime, fd, 0, BAD_PTR, NULL), EFAULT);
    CHECK_ERRNO(syscall(SYS_timerfd_gettime, fd, BAD_PTR), EFAULT);
    CHECK_ERRNO(timerfd_settime(-1, 0, &s, NULL), EBADF);
    int null = CHECK_OK(open("/dev/null", O_RDONLY));
    CHECK_ERRNO(timerfd_settime(null, 0, &s, NULL), EINVAL);
    CHECK_ERRNO(timerfd_gettime(null, &cur), EINVAL);
    close(null);
    close(fd);
    CHECK_ERRNO(timerfd_create(CLOCK_PROCESS_CPUTIME_ID, 0), EINVAL);
    CHECK_ERRNO(timerfd_create(12345, 0), EINVAL);
    CHECK_ERRNO(timerfd_create(CLOCK_MONOTONIC, O_APPEND), EINVAL);
    return check_done();
}
