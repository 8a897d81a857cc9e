/* Threads: pthread_create/join (CLONE_THREAD with CLONE_CHILD_CLEARTID wake-ups), a raw
 * clone thread joined through its cleared tid word, ids, many threads contending on a
 * futex lock, condition variables, per-thread masks, tgkill to a chosen thread, a
 * process-directed signal going to the one thread that does not block it, signals
 * interrupting threads blocked in futex waits and sleeps, exit_group from a thread, fork
 * and execve in a multithreaded process, and thousands of create/join rounds. */
#include "child.h"

#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

static const char *self;

static long futex(atomic_int *uaddr, int op, int val, const struct timespec *ts)
{
    return syscall(SYS_futex, uaddr, op, val, ts, NULL, 0);
}

/* ---- create, join, ids ---- */

static pid_t main_tid;

static void *report_ids(void *arg)
{
    long *out = arg;
    out[0] = getpid();
    out[1] = gettid();
    out[2] = getppid();
    return (void *)0x1234;
}

static void test_create_join(void)
{
    main_tid = gettid();
    long ids[8][3];
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, report_ids, ids[i]), 0);
    int same_pid = 1, distinct_tid = 1, same_ppid = 1, results = 1;
    for (int i = 0; i < 8; i++) {
        void *ret = NULL;
        CHECK_EQ(pthread_join(t[i], &ret), 0);
        results &= ret == (void *)0x1234;
        same_pid &= ids[i][0] == getpid();
        same_ppid &= ids[i][2] == getppid();
        distinct_tid &= ids[i][1] != main_tid && ids[i][1] > 0;
        for (int j = 0; j < i; j++)
            distinct_tid &= ids[i][1] != ids[j][1];
    }
    CHECK(results);
    CHECK(same_pid);
    CHECK(same_ppid);
    CHECK(distinct_tid);
}

/* A thread made with raw clone: the kernel clears and wakes the tid word at its exit. */
static atomic_int raw_tid;
static atomic_int raw_ran;

static int raw_thread(void *arg)
{
    (void)arg;
    raw_ran = gettid();
    syscall(SYS_exit, 0);
    return 0;
}

static void test_raw_clone_thread(void)
{
    size_t size = 64 * 1024;
    char *stack = malloc(size);
    int flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
                CLONE_SYSVSEM | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID;
    int tid = clone(raw_thread, stack + size, flags, NULL, &raw_tid, NULL, &raw_tid);
    CHECK(tid > 0);
    /* Wait for the tid word to go to zero (CLONE_CHILD_CLEARTID wakes us). */
    int v;
    while ((v = atomic_load(&raw_tid)) != 0)
        futex(&raw_tid, FUTEX_WAIT, v, NULL);
    CHECK_EQ(raw_ran, tid);
    /* A thread is not a child to wait for. */
    CHECK_ERRNO(waitpid(tid, NULL, __WALL | WNOHANG), ECHILD);
    free(stack);
}

/* ---- a futex lock under contention ---- */

static atomic_int lock_word;
static long counter;
#define ROUNDS 20000

static void lock(void)
{
    int c = 0;
    if (atomic_compare_exchange_strong(&lock_word, &c, 1))
        return;
    if (c != 2)
        c = atomic_exchange(&lock_word, 2);
    while (c != 0) {
        futex(&lock_word, FUTEX_WAIT_PRIVATE, 2, NULL);
        c = atomic_exchange(&lock_word, 2);
    }
}

static void unlock(void)
{
    if (atomic_fetch_sub(&lock_word, 1) != 1) {
        atomic_store(&lock_word, 0);
        futex(&lock_word, FUTEX_WAKE_PRIVATE, 1, NULL);
    }
}

static void *contend(void *arg)
{
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        lock();
        counter++;
        unlock();
    }
    return NULL;
}

static void test_futex_contention(void)
{
    pthread_t t[8];
    counter = 0;
    for (int i = 0; i < 8; i++)
        pthread_create(&t[i], NULL, contend, NULL);
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    CHECK_EQ(counter, 8L * ROUNDS);
    CHECK_EQ(lock_word, 0);
}

/* ---- condition variables: a ping-pong ---- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int turn, volleys;

static void *ponger(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    for (int i = 0; i < 1000; i++) {
        while (turn != 1)
            pthread_cond_wait(&cv, &mu);
        turn = 0;
        volleys++;
        pthread_cond_signal(&cv);
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

static void test_condvar(void)
{
    pthread_t t;
    pthread_create(&t, NULL, ponger, NULL);
    pthread_mutex_lock(&mu);
    for (int i = 0; i < 1000; i++) {
        turn = 1;
        pthread_cond_signal(&cv);
        while (turn != 0)
            pthread_cond_wait(&cv, &mu);
    }
    pthread_mutex_unlock(&mu);
    pthread_join(t, NULL);
    CHECK_EQ(volleys, 1000);
}

/* ---- signals and threads ---- */

static _Thread_local int handled_here;
static atomic_int handler_tid;

static void note_tid(int sig)
{
    (void)sig;
    handled_here++;
    handler_tid = gettid();
}

static atomic_int worker_tid;
static atomic_int stop_worker;

static void *blocked_worker(void *arg)
{
    /* arg: block SIGUSR1 in this thread? */
    if (arg) {
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGUSR1);
        pthread_sigmask(SIG_BLOCK, &s, NULL);
    }
    worker_tid = gettid();
    while (!stop_worker)
        sleep_ms(1);
    return NULL;
}

static void test_thread_signals(void)
{
    signal(SIGUSR1, note_tid);

    /* tgkill reaches exactly the thread named. */
    stop_worker = 0;
    worker_tid = 0;
    pthread_t t;
    pthread_create(&t, NULL, blocked_worker, NULL);
    while (!worker_tid)
        sleep_ms(1);
    handler_tid = 0;
    CHECK_OK(syscall(SYS_tgkill, getpid(), worker_tid, SIGUSR1));
    for (int i = 0; i < 2000 && !handler_tid; i++)
        sleep_ms(1);
    CHECK_EQ(handler_tid, worker_tid);
    CHECK_EQ(handled_here, 0);
    stop_worker = 1;
    pthread_join(t, NULL);

    /* A process-directed signal goes to a thread that does not block it: the main
     * thread blocks SIGUSR1, the worker does not. */
    stop_worker = 0;
    worker_tid = 0;
    sigset_t s, old;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &s, &old);
    pthread_create(&t, NULL, blocked_worker, NULL); /* inherits the block... */
    while (!worker_tid)
        sleep_ms(1);
    stop_worker = 1;
    pthread_join(t, NULL);
    /* ... so start one that unblocks it. */
    stop_worker = 0;
    worker_tid = 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_create(&t, NULL, blocked_worker, NULL);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    while (!worker_tid)
        sleep_ms(1);
    handler_tid = 0;
    CHECK_OK(kill(getpid(), SIGUSR1));
    for (int i = 0; i < 2000 && !handler_tid; i++)
        sleep_ms(1);
    CHECK_EQ(handler_tid, worker_tid);
    stop_worker = 1;
    pthread_join(t, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    /* A thread-directed signal blocked by its thread is pending for that thread only. */
    stop_worker = 0;
    worker_tid = 0;
    pthread_create(&t, NULL, blocked_worker, (void *)1);
    while (!worker_tid)
        sleep_ms(1);
    handler_tid = 0;
    CHECK_OK(syscall(SYS_tgkill, getpid(), worker_tid, SIGUSR1));
    sleep_ms(20);
    CHECK_EQ(handler_tid, 0);
    sigset_t pending;
    sigpending(&pending);
    CHECK(!sigismember(&pending, SIGUSR1));
    stop_worker = 1;
    pthread_join(t, NULL);
    signal(SIGUSR1, SIG_DFL);
}

/* Threads blocked in a futex wait and in nanosleep are interrupted by a signal for them. */
static atomic_int never;
static atomic_int wait_result, wait_errno;

static void *futex_waiter(void *arg)
{
    (void)arg;
    worker_tid = gettid();
    long r = futex(&never, FUTEX_WAIT_PRIVATE, 0, NULL);
    wait_errno = errno;
    wait_result = (int)r;
    return NULL;
}

static void *sleeper(void *arg)
{
    (void)arg;
    worker_tid = gettid();
    struct timespec ts = { 10, 0 };
    long r = nanosleep(&ts, NULL);
    wait_errno = errno;
    wait_result = (int)r;
    return NULL;
}

static void test_interrupt_blocked_threads(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = note_tid; /* no SA_RESTART */
    sigaction(SIGUSR2, &sa, NULL);
    void *(*fns[])(void *) = { futex_waiter, sleeper };
    for (int i = 0; i < 2; i++) {
        worker_tid = 0;
        wait_result = 1;
        pthread_t t;
        pthread_create(&t, NULL, fns[i], NULL);
        while (!worker_tid)
            sleep_ms(1);
        sleep_ms(50); /* let it block */
        long long t0 = now_ns();
        syscall(SYS_tgkill, getpid(), worker_tid, SIGUSR2);
        pthread_join(t, NULL);
        CHECK(now_ns() - t0 < 5000000000LL);
        CHECK_EQ(wait_result, -1);
        CHECK_EQ(wait_errno, EINTR);
    }
    signal(SIGUSR2, SIG_DFL);
}

/* ---- exit_group, fork and exec with threads (in children) ---- */

static void *exit_three(void *arg)
{
    (void)arg;
    sleep_ms(20);
    exit(3);
}

static void child_exit_from_thread(void *arg)
{
    (void)arg;
    pthread_t t;
    pthread_create(&t, NULL, exit_three, NULL);
    for (;;)
        pause();
}

static void *spin(void *arg)
{
    (void)arg;
    for (;;)
        sleep_ms(1);
    return NULL;
}

static void *exec_from_thread(void *arg)
{
    (void)arg;
    char *argv[] = { (char *)self, "exit-with-pid", NULL };
    char *envp[] = { NULL };
    execve(self, argv, envp);
    _exit(98);
}

static void test_process_wide(void)
{
    /* exit() in any thread ends the process with that code. */
    int st = run_in_child(child_exit_from_thread, NULL);
    CHECK_EXITED(st, 3);

    /* fork in a multithreaded process: the child has only the forking thread. */
    pthread_t t;
    pthread_create(&t, NULL, spin, NULL);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        pthread_t t2;
        void *r;
        int ok = pthread_create(&t2, NULL, report_ids, (long[3]){ 0 }) == 0 &&
                 pthread_join(t2, &r) == 0 && r == (void *)0x1234;
        _exit(ok ? 0 : 1);
    }
    CHECK_EXITED(wait_status(pid, 0), 0);

    /* execve from a second thread: the other threads go, the process (same pid) runs the
     * new program. */
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        pthread_t a, b;
        pthread_create(&a, NULL, spin, NULL);
        pthread_create(&b, NULL, exec_from_thread, NULL);
        for (;;)
            pause();
    }
    /* The new program exits with its pid's low byte. */
    CHECK_EXITED(wait_status(pid, 0), pid & 0xff);
    (void)t;
}

/* ---- many rounds ---- */

static void *nothing(void *arg)
{
    return arg;
}

static void test_many_threads(void)
{
    int ok = 1;
    for (int i = 0; i < 2000; i++) {
        pthread_t t[4];
        for (int j = 0; j < 4; j++)
            ok &= pthread_create(&t[j], NULL, nothing, (void *)(long)(i + j)) == 0;
        for (int j = 0; j < 4; j++) {
            void *r = NULL;
            ok &= pthread_join(t[j], &r) == 0 && r == (void *)(long)(i + j);
        }
    }
    CHECK(ok);
}

static void *exit_at_once(void *arg)
{
    return arg;
}

/* A child belongs to the whole thread group: another thread exiting does not take it
 * away from the thread that waits. */
static void test_children_outlive_a_thread(void)
{
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, exit_at_once, NULL), 0);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0)
        _exit(3);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EXITED(wait_status(pid, 0), 3);
}

int main(int argc, char **argv)
{
    self = argv[0];
    if (argc >= 2 && strcmp(argv[1], "exit-with-pid") == 0)
        return getpid() & 0xff;

    test_create_join();
    if (check_failed_count) {
        /* Without working threads the rest would hang (a condition variable waiting for
         * a thread that never started) rather than fail. */
        printf("threads do not work: stopping here\n");
        return check_done();
    }
    test_raw_clone_thread();
    test_futex_contention();
    test_condvar();
    test_thread_signals();
    test_interrupt_blocked_threads();
    test_process_wide();
    test_many_threads();
    test_children_outlive_a_thread();
    return check_done();
}
