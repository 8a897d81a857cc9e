/* Process timers and accounting: alarm, setitimer/getitimer (ITIMER_REAL, ITIMER_VIRTUAL,
 * ITIMER_PROF), POSIX timers (timer_create with SIGEV_SIGNAL, SIGEV_NONE and
 * SIGEV_THREAD_ID; timer_settime/gettime/getoverrun/delete, absolute times, intervals),
 * times and getrusage (self and reaped children). Timer signals go to handlers or to
 * sigtimedwait, never to a default action (this program is the sandbox's init). */
#include "child.h"

#include <sys/time.h>
#include <sys/times.h>

static volatile sig_atomic_t alarms, vtalarms, profs;

static void on_alarm(int sig)
{
    if (sig == SIGALRM)
        alarms++;
    else if (sig == SIGVTALRM)
        vtalarms++;
    else if (sig == SIGPROF)
        profs++;
}

/* Spins until *flag is set, giving up after max_ms of real time (generous: on a loaded
 * machine the CPU time a timer counts accrues slowly). */
static void burn_cpu_until(volatile sig_atomic_t *flag, long max_ms)
{
    long long end = now_ns() + max_ms * 1000000LL;
    volatile unsigned long x = 0;
    while (!*flag && now_ns() < end)
        x++;
}

/* Uses `ms` of CPU time (measured by the process CPU clock, so a loaded machine only makes
 * it take longer), giving up after 10 s of real time. */
static void burn_cpu_ms(long ms)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    long long cpu_end = t.tv_sec * 1000000000LL + t.tv_nsec + ms * 1000000LL;
    long long wall_end = now_ns() + 10000000000LL;
    volatile unsigned long x = 0;
    for (;;) {
        for (int i = 0; i < 100000; i++)
            x++;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
        if (t.tv_sec * 1000000000LL + t.tv_nsec >= cpu_end || now_ns() >= wall_end)
            break;
    }
}

static void test_alarm(void)
{
    signal(SIGALRM, on_alarm);
    alarms = 0;
    CHECK_EQ(alarm(100), 0);
    /* alarm returns the seconds left on the previous one (rounded). */
    CHECK_EQ(alarm(0), 100);
    CHECK_EQ(alarm(0), 0);
    /* A 1 s alarm interrupts a longer sleep. */
    CHECK_EQ(alarm(1), 0);
    long long t0 = now_ns();
    struct timespec ts = { 5, 0 };
    CHECK_ERRNO(nanosleep(&ts, NULL), EINTR);
    long long took = now_ns() - t0;
    CHECK(took >= 900000000LL && took < 3000000000LL);
    CHECK_EQ(alarms, 1);
    /* A pending alarm is not inherited by a fork child. */
    CHECK_EQ(alarm(50), 0);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0)
        _exit(alarm(0) == 0 ? 0 : 1);
    CHECK_EXITED(wait_status(pid, 0), 0);
    CHECK(alarm(0) > 45);
    signal(SIGALRM, SIG_DFL);
}

static void test_itimers(void)
{
    signal(SIGALRM, on_alarm);
    signal(SIGVTALRM, on_alarm);
    signal(SIGPROF, on_alarm);

    struct itimerval it = { .it_interval = { 0, 20000 }, .it_value = { 0, 20000 } }, old;
    alarms = 0;
    CHECK_OK(setitimer(ITIMER_REAL, &it, &old));
    CHECK_EQ(old.it_value.tv_sec, 0);
    CHECK_EQ(old.it_value.tv_usec, 0);
    struct itimerval cur;
    CHECK_OK(getitimer(ITIMER_REAL, &cur));
    CHECK(cur.it_value.tv_usec > 0 && cur.it_value.tv_usec <= 20000);
    CHECK_EQ(cur.it_interval.tv_usec, 20000);
    /* A periodic timer fires repeatedly. */
    for (int i = 0; i < 500 && alarms < 3; i++)
        sleep_ms(10);
    CHECK(alarms >= 3);
    struct itimerval off = { 0 };
    CHECK_OK(setitimer(ITIMER_REAL, &off, &old));
    CHECK_EQ(old.it_interval.tv_usec, 20000);
    int n = alarms;
    sleep_ms(60);
    CHECK_EQ(alarms, n);

    /* CPU-time timers fire only while we use the CPU. */
    struct itimerval cpu = { .it_value = { 0, 50000 } };
    vtalarms = 0;
    profs = 0;
    CHECK_OK(setitimer(ITIMER_VIRTUAL, &cpu, NULL));
    burn_cpu_until(&vtalarms, 10000);
    CHECK_EQ(vtalarms, 1);
    CHECK_OK(setitimer(ITIMER_PROF, &cpu, NULL));
    burn_cpu_until(&profs, 10000);
    CHECK_EQ(profs, 1);

    CHECK_ERRNO(setitimer(42, &it, NULL), EINVAL);
    struct itimerval bad = { .it_value = { 0, 1000000 } };
    CHECK_ERRNO(setitimer(ITIMER_REAL, &bad, NULL), EINVAL);
    CHECK_ERRNO(getitimer(ITIMER_REAL, BAD_PTR), EFAULT);
    signal(SIGALRM, SIG_DFL);
    signal(SIGVTALRM, SIG_DFL);
    signal(SIGPROF, SIG_DFL);
}

static void test_posix_timers(void)
{
    sigset_t rt, old;
    sigemptyset(&rt);
    sigaddset(&rt, SIGRTMIN);
    sigprocmask(SIG_BLOCK, &rt, &old);

    /* SIGEV_SIGNAL with a value, one-shot. */
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = SIGRTMIN;
    sev.sigev_value.sival_int = 77;
    timer_t t;
    CHECK_OK(timer_create(CLOCK_MONOTONIC, &sev, &t));
    struct itimerspec its = { .it_value = { 0, 30 * 1000000L } };
    CHECK_OK(timer_settime(t, 0, &its, NULL));
    struct itimerspec cur;
    CHECK_OK(timer_gettime(t, &cur));
    CHECK(cur.it_value.tv_nsec > 0 || cur.it_value.tv_sec > 0);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    struct timespec limit = { 2, 0 }; /* generous: these fire within ms */
    CHECK_EQ(sigtimedwait(&rt, &si, &limit), SIGRTMIN);
    CHECK_EQ(si.si_code, SI_TIMER);
    CHECK_EQ(si.si_value.sival_int, 77);
    CHECK_OK(timer_gettime(t, &cur));
    CHECK_EQ(cur.it_value.tv_sec, 0);
    CHECK_EQ(cur.it_value.tv_nsec, 0);

    /* Periodic and blocked: the signal is queued once and the overrun counts the rest. */
    struct itimerspec per = { .it_value = { 0, 5000000 }, .it_interval = { 0, 5000000 } };
    CHECK_OK(timer_settime(t, 0, &per, NULL));
    sleep_ms(100);
    memset(&si, 0, sizeof si);
    CHECK_EQ(sigtimedwait(&rt, &si, &limit), SIGRTMIN);
    CHECK(si.si_overrun > 0);
    struct itimerspec zero = { 0 };
    CHECK_OK(timer_settime(t, 0, &zero, NULL));
    CHECK(timer_getoverrun(t) >= 0);

    /* Absolute expiry. */
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    struct itimerspec abs = { .it_value = { now.tv_sec, now.tv_nsec } };
    abs.it_value.tv_nsec += 20 * 1000000L;
    if (abs.it_value.tv_nsec >= 1000000000L) {
        abs.it_value.tv_sec++;
        abs.it_value.tv_nsec -= 1000000000L;
    }
    CHECK_OK(timer_settime(t, TIMER_ABSTIME, &abs, NULL));
    CHECK_EQ(sigtimedwait(&rt, &si, &limit), SIGRTMIN);
    CHECK_OK(timer_delete(t));
    CHECK_ERRNO(timer_delete(t), EINVAL);

    /* SIGEV_NONE: no signal, but timer_gettime counts down. */
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_NONE;
    CHECK_OK(timer_create(CLOCK_REALTIME, &sev, &t));
    struct itimerspec ten = { .it_value = { 10, 0 } };
    CHECK_OK(timer_settime(t, 0, &ten, NULL));
    CHECK_OK(timer_gettime(t, &cur));
    CHECK(cur.it_value.tv_sec >= 8 && cur.it_value.tv_sec <= 10);
    CHECK_OK(timer_delete(t));

    /* SIGEV_THREAD_ID to our own thread. */
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = SIGRTMIN;
    sev._sigev_un._tid = gettid();
    CHECK_OK(timer_create(CLOCK_MONOTONIC, &sev, &t));
    CHECK_OK(timer_settime(t, 0, &its, NULL));
    CHECK_EQ(sigtimedwait(&rt, &si, &limit), SIGRTMIN);
    CHECK_OK(timer_delete(t));

    /* Errors. */
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = 99;
    CHECK_ERRNO(timer_create(CLOCK_MONOTONIC, &sev, &t), EINVAL);
    sev.sigev_signo = SIGRTMIN;
    CHECK_ERRNO(timer_create(12345, &sev, &t), EINVAL);
    sigprocmask(SIG_SETMASK, &old, NULL);
}

static void test_times_rusage(void)
{
    struct tms before, after;
    clock_t c0 = times(&before);
    CHECK(c0 != (clock_t)-1);
    burn_cpu_ms(200);
    clock_t c1 = times(&after);
    long hz = sysconf(_SC_CLK_TCK);
    CHECK(c1 - c0 >= hz / 10);
    CHECK(after.tms_utime + after.tms_stime - before.tms_utime - before.tms_stime >= hz / 10);

    struct rusage ru;
    CHECK_OK(getrusage(RUSAGE_SELF, &ru));
    CHECK(ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec >= 100000);
    CHECK(ru.ru_maxrss > 0);
    CHECK_ERRNO(getrusage(42, &ru), EINVAL);

    /* A reaped child's CPU time shows in RUSAGE_CHILDREN and in wait4's rusage. */
    struct rusage kids0;
    CHECK_OK(getrusage(RUSAGE_CHILDREN, &kids0));
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        burn_cpu_ms(200);
        _exit(0);
    }
    struct rusage w;
    memset(&w, 0, sizeof w);
    int st;
    CHECK_EQ(wait4(pid, &st, 0, &w), pid);
    CHECK(w.ru_utime.tv_sec * 1000000 + w.ru_utime.tv_usec >= 100000);
    struct rusage kids1;
    CHECK_OK(getrusage(RUSAGE_CHILDREN, &kids1));
    long long d = (kids1.ru_utime.tv_sec - kids0.ru_utime.tv_sec) * 1000000LL +
                  (kids1.ru_utime.tv_usec - kids0.ru_utime.tv_usec);
    CHECK(d >= 100000);
}

int main(void)
{
    test_alarm();
    test_itimers();
    test_posix_timers();
    test_times_rusage();
    return check_done();
}
