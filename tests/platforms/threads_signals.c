/* Many threads making syscalls and taking signals at once, for argv[1] seconds
 * (default 5): the platform's hand-over between application threads and the sentry
 * under load. Every thread makes syscalls in a loop and is sent queued real-time signals
 * by the main thread (a few in flight per thread at most); at the end every signal sent
 * must have been handled, every thread must have run, and nothing may hang (the
 * harness's timeout catches that). */
#include "check.h"
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>

#define NTHREADS 64

static atomic_int stop;
static atomic_long handled[NTHREADS];
static long iterations[NTHREADS];
static pid_t tids[NTHREADS];
static atomic_int started;
static __thread int my_index;

static void on_signal(int sig)
{
    (void)sig;
    /* A syscall inside the handler too. */
    (void)syscall(SYS_getppid);
    atomic_fetch_add(&handled[my_index], 1);
}

static void *worker(void *arg)
{
    int i = (int)(long)arg;
    my_index = i;
    tids[i] = (pid_t)syscall(SYS_gettid);
    atomic_fetch_add(&started, 1);
    int fds[2];
    if (pipe(fds) != 0)
        return (void *)1;
    char c = (char)i;
    while (!atomic_load(&stop)) {
        (void)syscall(SYS_getpid);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        if (write(fds[1], &c, 1) != 1 || read(fds[0], &c, 1) != 1)
            return (void *)2;
        if (iterations[i] % 64 == 0)
            sched_yield();
        iterations[i]++;
    }
    close(fds[0]);
    close(fds[1]);
    return NULL;
}

int main(int argc, char **argv)
{
    int secs = argc > 1 ? atoi(argv[1]) : 5;
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    CHECK_OK(sigaction(SIGRTMIN, &sa, NULL));

    pthread_t t[NTHREADS];
    for (long i = 0; i < NTHREADS; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, worker, (void *)i), 0);
    while (atomic_load(&started) < NTHREADS)
        sched_yield();

    long sent[NTHREADS] = {0};
    time_t end = time(NULL) + secs;
    long rounds = 0;
    while (time(NULL) < end) {
        for (int i = 0; i < NTHREADS; i++) {
            /* At most a few signals in flight per thread: the run measures hand-overs
             * under load, not how long a backlog of queued signals takes to drain. */
            if (sent[i] - atomic_load(&handled[i]) >= 4)
                continue;
            if (syscall(SYS_tgkill, getpid(), tids[i], SIGRTMIN) == 0)
                sent[i]++;
            else
                CHECK_EQ(errno, EAGAIN);
        }
        rounds++;
        struct timespec nap = {0, 1000000};
        nanosleep(&nap, NULL);
    }
    /* Queued signals are all delivered before the threads are told to stop. */
    for (int i = 0; i < NTHREADS; i++)
        while (atomic_load(&handled[i]) < sent[i])
            sched_yield();
    atomic_store(&stop, 1);
    long total = 0;
    int all_ran = 1, all_handled = 1;
    for (int i = 0; i < NTHREADS; i++) {
        void *ret = (void *)-1;
        CHECK_EQ(pthread_join(t[i], &ret), 0);
        CHECK(ret == NULL);
        if (iterations[i] == 0)
            all_ran = 0;
        if (atomic_load(&handled[i]) != sent[i] || sent[i] == 0)
            all_handled = 0;
        total += iterations[i];
    }
    CHECK(all_ran);
    CHECK(all_handled);
    CHECK(rounds > 0);
    fprintf(stderr, "%d threads, %d s: %ld loop iterations, %ld signal rounds\n", NTHREADS,
            secs, total, rounds);
    return check_done();
}
