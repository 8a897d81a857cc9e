/* Clocks and sleeps: clock_gettime/clock_getres on every common clock, gettimeofday,
 * time, nanosleep and clock_nanosleep. Raw syscalls are used where glibc would answer
 * from the vDSO instead of the kernel (and so never report EFAULT). */
#include "check.h"

#include <time.h>
#include <sys/time.h>

static const clockid_t clocks[] = {
    CLOCK_REALTIME,       CLOCK_MONOTONIC,       CLOCK_PROCESS_CPUTIME_ID,
    CLOCK_THREAD_CPUTIME_ID, CLOCK_MONOTONIC_RAW, CLOCK_REALTIME_COARSE,
    CLOCK_MONOTONIC_COARSE, CLOCK_BOOTTIME,      CLOCK_TAI,
};
#define NCLOCKS (sizeof clocks / sizeof clocks[0])

static long long ns_of(struct timespec t)
{
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static long long mono_ns(void)
{
    struct timespec t;
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &t);
    return ns_of(t);
}

static void test_clock_gettime(void)
{
    for (size_t i = 0; i < NCLOCKS; i++) {
        struct timespec a = { -1, -1 }, b = { -1, -1 };
        CHECK_OK(syscall(SYS_clock_gettime, clocks[i], &a));
        CHECK_OK(syscall(SYS_clock_gettime, clocks[i], &b));
        CHECK(a.tv_sec >= 0 && a.tv_nsec >= 0 && a.tv_nsec < 1000000000);
        /* Every one of these clocks is monotonic over two back-to-back reads, barring a
         * clock_settime in between (REALTIME, TAI), which the test machine does not do. */
        CHECK(ns_of(b) >= ns_of(a));
        /* The vDSO path (glibc) and the syscall agree on the order of events. */
        struct timespec v;
        CHECK_OK(clock_gettime(clocks[i], &v));
        CHECK(ns_of(v) >= ns_of(b) || clocks[i] == CLOCK_THREAD_CPUTIME_ID ||
              clocks[i] == CLOCK_PROCESS_CPUTIME_ID);
    }
    struct timespec now;
    CHECK_OK(syscall(SYS_clock_gettime, CLOCK_REALTIME, &now));
    CHECK(now.tv_sec > 1577836800); /* after 2020-01-01 */
    CHECK_ERRNO(syscall(SYS_clock_gettime, 100, &now), EINVAL);
    CHECK_ERRNO(syscall(SYS_clock_gettime, -1000, &now), EINVAL);
    CHECK_ERRNO(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, BAD_PTR), EFAULT);
    CHECK_ERRNO(syscall(SYS_clock_gettime, CLOCK_REALTIME, BAD_PTR), EFAULT);
}

static void test_clock_getres(void)
{
    for (size_t i = 0; i < NCLOCKS; i++) {
        struct timespec r = { -1, -1 };
        CHECK_OK(syscall(SYS_clock_getres, clocks[i], &r));
        CHECK(r.tv_sec == 0 && r.tv_nsec > 0);
    }
    /* A NULL result pointer is allowed: the call then only validates the clock. */
    CHECK_OK(syscall(SYS_clock_getres, CLOCK_MONOTONIC, NULL));
    struct timespec r;
    CHECK_ERRNO(syscall(SYS_clock_getres, 100, &r), EINVAL);
    CHECK_ERRNO(syscall(SYS_clock_getres, CLOCK_MONOTONIC, BAD_PTR), EFAULT);
}

static void test_cputime_advances(void)
{
    struct timespec a, b;
    CHECK_OK(syscall(SYS_clock_gettime, CLOCK_PROCESS_CPUTIME_ID, &a));
    /* Spin for 5 ms of wall time: CPU time must move. */
    long long until = mono_ns() + 5000000;
    volatile unsigned long spin = 0;
    while (mono_ns() < until)
        spin++;
    CHECK_OK(syscall(SYS_clock_gettime, CLOCK_PROCESS_CPUTIME_ID, &b));
    CHECK(ns_of(b) > ns_of(a));
}

static void test_gettimeofday_and_time(void)
{
    struct timeval tv;
    struct timespec ts;
    CHECK_OK(syscall(SYS_gettimeofday, &tv, NULL));
    CHECK_OK(syscall(SYS_clock_gettime, CLOCK_REALTIME, &ts));
    CHECK(tv.tv_usec >= 0 && tv.tv_usec < 1000000);
    long long diff = ns_of(ts) - (tv.tv_sec * 1000000000LL + tv.tv_usec * 1000LL);
    CHECK(diff >= 0 && diff < 1000000000LL);
    CHECK_OK(gettimeofday(&tv, NULL));
    /* Both arguments may be NULL. */
    CHECK_OK(syscall(SYS_gettimeofday, NULL, NULL));
    CHECK_ERRNO(syscall(SYS_gettimeofday, BAD_PTR, NULL), EFAULT);

    time_t t1 = 0;
    long t0 = syscall(SYS_time, NULL);
    long r = syscall(SYS_time, &t1);
    CHECK(t0 > 1577836800);
    CHECK_EQ(r, t1);
    CHECK(t1 - t0 >= 0 && t1 - t0 <= 1);
    CHECK(t1 - ts.tv_sec >= 0 && t1 - ts.tv_sec <= 1);
    CHECK_ERRNO(syscall(SYS_time, BAD_PTR), EFAULT);
}

static void test_nanosleep(void)
{
    struct timespec ten_ms = { 0, 10000000 };
    long long start = mono_ns();
    CHECK_OK(syscall(SYS_nanosleep, &ten_ms, NULL));
    long long slept = mono_ns() - start;
    CHECK(slept >= 10000000);
    CHECK(slept < 5000000000LL);

    struct timespec rem = { 7, 7 };
    CHECK_OK(syscall(SYS_nanosleep, &ten_ms, &rem));
    struct timespec zero = { 0, 0 };
    CHECK_OK(syscall(SYS_nanosleep, &zero, NULL));

    struct timespec neg_ns = { 0, -1 }, big_ns = { 0, 1000000000 }, neg_s = { -1, 0 };
    CHECK_ERRNO(syscall(SYS_nanosleep, &neg_ns, NULL), EINVAL);
    CHECK_ERRNO(syscall(SYS_nanosleep, &big_ns, NULL), EINVAL);
    CHECK_ERRNO(syscall(SYS_nanosleep, &neg_s, NULL), EINVAL);
    CHECK_ERRNO(syscall(SYS_nanosleep, BAD_PTR, NULL), EFAULT);
}

static void test_clock_nanosleep(void)
{
    struct timespec ten_ms = { 0, 10000000 };
    long long start = mono_ns();
    /* The raw syscall, like nanosleep, returns -1/errno (glibc's wrapper returns the
     * error number instead). */
    CHECK_OK(syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &ten_ms, NULL));
    CHECK(mono_ns() - start >= 10000000);

    start = mono_ns();
    CHECK_OK(syscall(SYS_clock_nanosleep, CLOCK_REALTIME, 0, &ten_ms, NULL));
    CHECK(mono_ns() - start >= 10000000);

    /* An absolute deadline 10 ms ahead on the monotonic clock. */
    struct timespec now, deadline;
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &now);
    long long d = ns_of(now) + 10000000;
    deadline.tv_sec = d / 1000000000;
    deadline.tv_nsec = d % 1000000000;
    CHECK_OK(syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL));
    CHECK(mono_ns() >= d);

    /* A deadline in the past returns at once. */
    struct timespec past = { 1, 0 };
    start = mono_ns();
    CHECK_OK(syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, TIMER_ABSTIME, &past, NULL));
    CHECK(mono_ns() - start < 1000000000LL);

    struct timespec neg_ns = { 0, -1 };
    CHECK_ERRNO(syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &neg_ns, NULL), EINVAL);
    CHECK_ERRNO(syscall(SYS_clock_nanosleep, 100, 0, &ten_ms, NULL), EINVAL);
    /* Sleeping on the calling thread's own CPU clock could never end. The man page says
     * EINVAL; Linux 6.x answers EOPNOTSUPP, and the kernel is what we match. */
    CHECK_ERRNO(syscall(SYS_clock_nanosleep, CLOCK_THREAD_CPUTIME_ID, 0, &ten_ms, NULL),
                EOPNOTSUPP);
    CHECK_ERRNO(syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, BAD_PTR, NULL), EFAULT);
}

static void test_clock_settime(void)
{
    /* The monotonic clock cannot be set, by anyone: EINVAL comes before any privilege
     * check. (CLOCK_REALTIME is not tried: as root that would really set the clock.) */
    struct timespec t = { 100, 0 };
    CHECK_ERRNO(syscall(SYS_clock_settime, CLOCK_MONOTONIC, &t), EINVAL);
    CHECK_ERRNO(syscall(SYS_clock_settime, 100, &t), EINVAL);
}

int main(void)
{
    test_clock_gettime();
    test_clock_getres();
    test_cputime_advances();
    test_gettimeofday_and_time();
    test_nanosleep();
    test_clock_nanosleep();
    test_clock_settime();
    return check_done();
}
