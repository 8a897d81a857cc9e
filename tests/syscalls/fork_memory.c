/* What a forked child's memory is, however the sandbox makes it.
 *
 * systrap makes a fork two ways: a process with little writable memory has it copied at
 * once and the child's stub is a host copy of the parent's (its mappings inherited, then
 * fixed up); a larger one shares it copy-on-write. This covers both sizes, data written
 * just before the fork (stack, bss, heap, a private file mapping), writes on each side
 * afterwards, memory the parent populated but never wrote, a fork from a second thread
 * (another stub slot), grandchildren, and that nothing of the parent's other threads is
 * reachable in the child: the stub keeps each thread's registers in a slot above the
 * application's half, and a child must not see its parent's.
 */
#include "child.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>

static char bss[3 * 4096];
static sigjmp_buf probe_env;

static void on_segv(int sig)
{
    (void)sig;
    siglongjmp(probe_env, 1);
}

/* 1 if reading `addr` faults (SIGSEGV), 0 if it reads. */
static int faults(volatile const char *addr)
{
    struct sigaction sa = {.sa_handler = on_segv}, old;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old);
    int r = 1;
    if (sigsetjmp(probe_env, 1) == 0) {
        (void)*addr;
        r = 0;
    }
    sigaction(SIGSEGV, &old, NULL);
    return r;
}

/* Fork with `len` bytes of heap written with `fill`; both sides then write their own. */
static void fork_with_heap(size_t len)
{
    unsigned char *heap = malloc(len);
    CHECK(heap != NULL);
    memset(heap, 0x5a, len);
    volatile int on_stack = 7;
    strcpy(bss, "bss");
    /* Populated around a fault but never written: must read as zeros in the child. */
    char *fresh = mmap(NULL, 64 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);
    CHECK(fresh != MAP_FAILED);
    CHECK_EQ(fresh[5 * 4096], 0);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int bad = 0;
        for (size_t i = 0; i < len; i += 4096)
            bad |= heap[i] != 0x5a;
        bad |= heap[len - 1] != 0x5a;
        bad |= on_stack != 7 || strcmp(bss, "bss") != 0;
        bad |= fresh[5 * 4096] != 0 || fresh[63 * 4096] != 0;
        memset(heap, 0xc3, len);
        on_stack = 9;
        strcpy(bss, "child");
        fresh[5 * 4096] = 1;
        /* Its own writes read back. */
        bad |= heap[len / 2] != 0xc3 || on_stack != 9 || fresh[5 * 4096] != 1;
        _exit(bad ? 1 : 0);
    }
    /* The parent writes too, while or after the child runs. */
    heap[0] = 0x11;
    fresh[63 * 4096] = 2;
    CHECK_EXITED(wait_status(pid, 0), 0);
    CHECK_EQ(heap[0], 0x11);
    CHECK_EQ(heap[len / 2], 0x5a);
    CHECK_EQ(heap[len - 1], 0x5a);
    CHECK_EQ(on_stack, 7);
    CHECK_STREQ(bss, "bss");
    CHECK_EQ(fresh[5 * 4096], 0);
    CHECK_EQ(fresh[63 * 4096], 2);
    munmap(fresh, 64 * 4096);
    free(heap);
}

static void test_small_and_large(void)
{
    fork_with_heap(16 * 1024);        /* a few pages: copied at fork */
    fork_with_heap(8 * 1024 * 1024);  /* 2048 pages: copy-on-write */
}

/* A private file mapping written before the fork stays each side's own. */
static void test_private_file_mapping(void)
{
    char path[] = "/tmp/fork_memory_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, "file-data", 9), 9);
    char *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    CHECK(m != MAP_FAILED);
    m[0] = 'F';
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int bad = memcmp(m, "File-data", 9) != 0;
        m[1] = 'X';
        _exit(bad ? 1 : 0);
    }
    CHECK_EXITED(wait_status(pid, 0), 0);
    CHECK(memcmp(m, "File-data", 9) == 0);
    munmap(m, 4096);
    close(fd);
    unlink(path);
}

/* Three generations: each child forks again. */
static int generations(int n)
{
    if (n == 0)
        return 0;
    static int level;
    level = n;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0)
        _exit(level == n ? generations(n - 1) : 10);
    int st = wait_status(pid, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 20;
}

static void test_grandchildren(void)
{
    CHECK_EQ(generations(3), 0);
}

/* ---- a fork from a second thread ---- */

static volatile int spin_stop;
static pthread_barrier_t ready;

static void *spinner(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&ready);
    while (!spin_stop)
        ;
    return NULL;
}

/* The sandbox's stub slots sit just above the application's half of the address space
 * (0x7ff0_0000_0000 and up, outside anything Linux gives a process here: the stack is
 * below it). Natively nothing is mapped there either. */
#define SLOT_AREA 0x7ff100000000UL
#define SLOT_SIZE 0x10000UL

static void *forker(void *arg)
{
    int *status = arg;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        /* Only this thread's copy is here: no slot of the parent's other threads (the
         * first few slots cover the main thread, the spinner and this one). */
        int readable = 0;
        for (unsigned long i = 0; i < 8; i++)
            readable += !faults((const char *)(SLOT_AREA + i * SLOT_SIZE + 256));
        _exit(readable <= 1 ? 0 : 1);
    }
    *status = wait_status(pid, 0);
    return NULL;
}

static void test_fork_from_a_thread(void)
{
    pthread_t spin, fork_thread;
    int status = -1;
    pthread_barrier_init(&ready, NULL, 2);
    CHECK_EQ(pthread_create(&spin, NULL, spinner, NULL), 0);
    pthread_barrier_wait(&ready);
    CHECK_EQ(pthread_create(&fork_thread, NULL, forker, &status), 0);
    CHECK_EQ(pthread_join(fork_thread, NULL), 0);
    spin_stop = 1;
    CHECK_EQ(pthread_join(spin, NULL), 0);
    CHECK_EXITED(status, 0);
}

int main(void)
{
    test_small_and_large();
    test_private_file_mapping();
    test_grandchildren();
    test_fork_from_a_thread();
    return check_done();
}
