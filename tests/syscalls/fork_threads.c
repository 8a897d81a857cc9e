/* Fork from a multithreaded process while the other threads keep writing the same pages.
 *
 * After each fork every private page of the parent is copy-on-write, so the busy threads
 * fault on their next write to it, several of them on the same page at once. The first
 * fault handled gives the page its own copy; the others were reported before that and
 * must simply be retried. Treating such a stale fault as an access violation killed the
 * parent with SIGSEGV (seen running a Python server test under load).
 *
 * Each round checks: the parent survives, the child exits cleanly, the child's writes
 * never show in the parent, and no thread's write is lost (each thread's counter in
 * memory matches the count it kept in a register). The loop is long enough to hit the
 * race most of the time on the ptrace platform, with no timing assumption.
 */
#include "child.h"

#include <pthread.h>
#include <sys/mman.h>

#define THREADS 3
#define PAGES 16
#define ROUNDS 120

/* One word per writer in every page: all writers share the same pages. */
static volatile long pages[PAGES][4096 / sizeof(long)] __attribute__((aligned(4096)));
static volatile int stop;
static long final_count[THREADS];
static int lost[THREADS];

static void *writer(void *arg)
{
    long slot = (long)arg;
    long n = 0;
    while (!stop) {
        n++;
        for (int p = 0; p < PAGES; p++) {
            pages[p][slot] = n;
        }
        for (int p = 0; p < PAGES; p++) {
            if (pages[p][slot] != n)
                lost[slot]++;
        }
        if ((n & 63) == 0)
            syscall(SYS_getpid);
    }
    final_count[slot] = n;
    return NULL;
}

/* Maps, writes and unmaps memory in a loop: mapping changes during the forks. */
static void *mapper(void *arg)
{
    (void)arg;
    while (!stop) {
        char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            continue;
        m[0] = 1;
        m[4096] = 2;
        munmap(m, 8192);
    }
    return NULL;
}

static void test_fork_while_threads_write(void)
{
    pthread_t t[THREADS + 1];
    for (long i = 0; i < THREADS; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, writer, (void *)i), 0);
    CHECK_EQ(pthread_create(&t[THREADS], NULL, mapper, NULL), 0);

    /* The child's marker slot is one no thread writes. */
    const int marker = THREADS;
    int bad_status = 0, leaked = 0, failed_forks = 0;
    for (int i = 0; i < ROUNDS; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            for (int p = 0; p < PAGES; p++)
                pages[p][marker] = 1000 + i;
            _exit(i & 0x7f);
        }
        if (pid < 0) {
            failed_forks++;
            continue;
        }
        /* The parent writes too, racing its threads for the same copy-on-write pages. */
        for (int p = 0; p < PAGES; p++)
            pages[p][marker + 1] = i;
        int st = -1;
        if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != (i & 0x7f))
            bad_status++;
        for (int p = 0; p < PAGES; p++)
            leaked += pages[p][marker] != 0;
    }
    stop = 1;
    for (int i = 0; i <= THREADS; i++)
        CHECK_EQ(pthread_join(t[i], NULL), 0);

    CHECK_EQ(failed_forks, 0);
    CHECK_EQ(bad_status, 0);
    CHECK_EQ(leaked, 0);
    int lost_total = 0, wrong = 0;
    for (int s = 0; s < THREADS; s++) {
        lost_total += lost[s];
        for (int p = 0; p < PAGES; p++)
            wrong += pages[p][s] != final_count[s];
    }
    CHECK_EQ(lost_total, 0);
    CHECK_EQ(wrong, 0);
}

int main(void)
{
    /* Run the whole thing in a child so that a crash of the forking process is reported
     * as a failed check rather than a missing summary line. */
    for (int round = 0; round < 2; round++) {
        pid_t pid = fork();
        if (pid == 0) {
            test_fork_while_threads_write();
            _exit(check_failed_count == 0 ? 0 : 1);
        }
        int st = -1;
        CHECK_EQ(waitpid(pid, &st, 0), pid);
        CHECK_EXITED(st, 0);
    }
    return check_done();
}
