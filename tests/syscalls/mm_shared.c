/* MAP_SHARED memory that is really shared: anonymous shared memory and tmpfs files
 * mapped in a parent and its forked child, write(2) and stores through mappings seeing
 * each other, truncation, unlinked files, madvise/mremap/mprotect on shared mappings, and
 * POSIX semaphores (named in /dev/shm, and unnamed in shared memory) between processes.
 *
 * A child never calls CHECK: it reports through its exit status (0, or the number of the
 * first thing that went wrong), which the parent checks, so the counts stay the same
 * natively and in the sandbox. Children leave with _exit so that the scratch directory
 * and stdio buffers stay the parent's. No pipes: processes meet through shared memory. */
#include "check.h"

#include <semaphore.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

static long page;

/* Waits (at most ~10 s) until *flag == want. Returns 1 if it got there. */
static int wait_for(volatile int *flag, int want)
{
    for (int i = 0; i < 10000; i++) {
        if (__atomic_load_n(flag, __ATOMIC_SEQ_CST) == want)
            return 1;
        usleep(1000);
    }
    return 0;
}

static void set_flag(volatile int *flag, int v)
{
    __atomic_store_n(flag, v, __ATOMIC_SEQ_CST);
}

/* Waits for `pid` and checks that it exited with status 0. */
static void check_child(pid_t pid)
{
    int st = 0;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    CHECK(WIFEXITED(st));
    CHECK_EQ(WEXITSTATUS(st), 0);
}

static void test_anonymous_shared_with_child(void)
{
    /* 4 MiB, so that pages far apart are not populated together: the first page is
     * touched before fork, pages 400 and 800 only after (by the child and the parent). */
    const long n = 1024;
    char *p = mmap(NULL, n * page, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    volatile int *flag = (volatile int *)(p + 64);
    char *child_page = p + 400 * page, *parent_page = p + 800 * page;
    p[0] = 'P';
    fflush(stdout);
    pid_t pid = CHECK_OK(fork());
    if (pid == 0) {
        if (p[0] != 'P')
            _exit(1);
        p[1] = 'c';
        child_page[0] = 'C';
        set_flag(flag, 1);
        /* The other way: the parent writes a page the child has not touched yet. */
        if (!wait_for(flag, 2))
            _exit(2);
        if (parent_page[0] != 'Q' || p[1] != 'd')
            _exit(3);
        _exit(0);
    }
    CHECK(wait_for(flag, 1));
    CHECK_EQ(p[1], 'c');
    CHECK_EQ(child_page[0], 'C');
    parent_page[0] = 'Q';
    p[1] = 'd';
    set_flag(flag, 2);
    check_child(pid);
    /* The child's exit leaves the memory to the parent. */
    CHECK_EQ(p[0], 'P');
    CHECK_EQ(child_page[0], 'C');
    CHECK_OK(munmap(p, n * page));
}

static void test_private_is_not_shared(void)
{
    /* The control: MAP_PRIVATE memory is copied at fork. */
    char *p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    p[0] = 'P';
    fflush(stdout);
    pid_t pid = CHECK_OK(fork());
    if (pid == 0) {
        p[0] = 'C';
        _exit(p[0] == 'C' ? 0 : 1);
    }
    check_child(pid);
    CHECK_EQ(p[0], 'P');
    CHECK_OK(munmap(p, page));
}

static void test_file_shared_with_child(void)
{
    int fd = CHECK_OK(open(tmp_path("fork"), O_RDWR | O_CREAT | O_TRUNC, 0600));
    CHECK_OK(ftruncate(fd, 3 * page));
    char *p = mmap(NULL, 3 * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED);
    volatile int *flag = (volatile int *)(p + 2 * page);
    p[0] = 'P';
    fflush(stdout);
    pid_t pid = CHECK_OK(fork());
    if (pid == 0) {
        /* Through the inherited mapping, and through a mapping of its own. */
        p[page] = 'i';
        int cfd = open(tmp_path("fork"), O_RDWR);
        if (cfd < 0)
            _exit(1);
        char *q = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_SHARED, cfd, 0);
        if (q == MAP_FAILED)
            _exit(2);
        if (q[0] != 'P' || q[page] != 'i')
            _exit(3);
        q[page + 1] = 'o';
        if (pwrite(cfd, "w", 1, page + 2) != 1)
            _exit(4);
        set_flag(flag, 1);
        _exit(0);
    }
    check_child(pid);
    CHECK_EQ(*flag, 1);
    CHECK_MEMEQ(p + page, "iow", 3);
    char buf[3] = {0};
    CHECK_EQ(pread(fd, buf, 3, page), 3);
    CHECK_MEMEQ(buf, "iow", 3);
    CHECK_OK(munmap(p, 3 * page));
    close(fd);
}

static void test_write_and_store_coherence(void)
{
    int fd = CHECK_OK(open(tmp_path("coherent"), O_RDWR | O_CREAT | O_TRUNC, 0600));
    char hundred[100];
    memset(hundred, 'h', sizeof hundred);
    CHECK_EQ(write(fd, hundred, sizeof hundred), 100);
    /* Two pages over a 100-byte file. */
    char *p = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED);
    CHECK_EQ(p[99], 'h');
    /* The rest of the last page reads as zeros. */
    CHECK_EQ(p[100], 0);
    CHECK_EQ(p[page - 1], 0);

    /* write(2) reaches an existing mapping, also on a page past the old end. */
    CHECK_EQ(pwrite(fd, "xyz", 3, 10), 3);
    CHECK_MEMEQ(p + 10, "xyz", 3);
    CHECK_EQ(pwrite(fd, "far", 3, page + 5), 3);
    CHECK_MEMEQ(p + page + 5, "far", 3);
    CHECK_EQ(p[page + 4], 0);

    /* Stores reach read(2) and the size stays the file's. */
    memcpy(p + 50, "store", 5);
    p[page + 1] = 'S';
    char buf[8] = {0};
    CHECK_EQ(pread(fd, buf, 5, 50), 5);
    CHECK_MEMEQ(buf, "store", 5);
    CHECK_EQ(pread(fd, buf, 1, page + 1), 1);
    CHECK_EQ(buf[0], 'S');
    struct stat st;
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_size, page + 8);
    CHECK_OK(msync(p, 2 * page, MS_SYNC));
    CHECK_OK(msync(p, page, MS_ASYNC | MS_INVALIDATE));

    /* ftruncate: the partial last page reads zeros past the new end, and growing back
     * shows zeros, not the old bytes. (Pages wholly past the end are not touched: Linux
     * raises SIGBUS there.) */
    CHECK_OK(ftruncate(fd, 20));
    CHECK_MEMEQ(p + 10, "xyz", 3);
    CHECK_EQ(p[50], 0);
    CHECK_OK(ftruncate(fd, 2 * page));
    CHECK_EQ(p[50], 0);
    CHECK_EQ(p[page + 5], 0);
    p[page + 5] = 'G';
    CHECK_EQ(pread(fd, buf, 1, page + 5), 1);
    CHECK_EQ(buf[0], 'G');

    /* A second mapping of the same page, at another address, is the same memory. */
    char *q = mmap(NULL, page, PROT_READ, MAP_SHARED, fd, page);
    CHECK(q != MAP_FAILED);
    CHECK_EQ(q[5], 'G');
    p[page + 6] = 'H';
    CHECK_EQ(q[6], 'H');
    CHECK_OK(munmap(q, page));

    /* MAP_PRIVATE copies on write and leaves the file alone. */
    char *r = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    CHECK(r != MAP_FAILED);
    CHECK_MEMEQ(r + 10, "xyz", 3);
    r[10] = 'R';
    CHECK_EQ(p[10], 'x');
    CHECK_OK(munmap(r, page));

    CHECK_OK(munmap(p, 2 * page));
    close(fd);
}

static void test_unlinked_and_advice(void)
{
    int fd = CHECK_OK(open(tmp_path("gone"), O_RDWR | O_CREAT | O_TRUNC, 0600));
    CHECK_OK(ftruncate(fd, 4 * page));
    char *p = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED);
    memcpy(p, "keep", 4);
    memcpy(p + 3 * page, "tail", 4);
    /* Unlinked and closed: the mapping keeps the file alive. */
    CHECK_OK(unlink(tmp_path("gone")));
    close(fd);
    CHECK_MEMEQ(p, "keep", 4);
    p[2 * page] = 'u';
    CHECK_EQ(p[2 * page], 'u');

    /* MADV_DONTNEED on shared memory only drops the mapping: the data is the file's. */
    CHECK_OK(madvise(p, 4 * page, MADV_DONTNEED));
    CHECK_MEMEQ(p, "keep", 4);
    CHECK_EQ(p[2 * page], 'u');

    /* mremap moves the mapping with its file offset. */
    char *m = mremap(p + 2 * page, 2 * page, 2 * page, MREMAP_MAYMOVE);
    CHECK(m != MAP_FAILED);
    char *target = mmap(NULL, 8 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(target != MAP_FAILED);
    char *moved = mremap(m, 2 * page, 2 * page, MREMAP_MAYMOVE | MREMAP_FIXED, target + 4 * page);
    CHECK_EQ(moved, target + 4 * page);
    CHECK_EQ(moved[0], 'u');
    CHECK_MEMEQ(moved + page, "tail", 4);
    moved[1] = 'v';
    CHECK_EQ(p[0], 'k');
    CHECK_OK(munmap(target, 8 * page));
    CHECK_OK(munmap(p, 2 * page));

    /* The same for anonymous shared memory. */
    char *a = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(a != MAP_FAILED);
    a[7] = 7;
    CHECK_OK(madvise(a, page, MADV_DONTNEED));
    CHECK_EQ(a[7], 7);
    CHECK_OK(munmap(a, page));
}

static void test_protection(void)
{
    CHECK_OK(write_file(tmp_path("ro"), "read only", 9));
    int ro = CHECK_OK(open(tmp_path("ro"), O_RDONLY));
    CHECK_ERRNO(mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0), EACCES);
    char *p = mmap(NULL, page, PROT_READ, MAP_SHARED, ro, 0);
    CHECK(p != MAP_FAILED);
    CHECK_MEMEQ(p, "read only", 9);
    /* A shared mapping of a read-only file can never become writable. */
    CHECK_ERRNO(mprotect(p, page, PROT_READ | PROT_WRITE), EACCES);
    CHECK_OK(mprotect(p, page, PROT_NONE));
    CHECK_OK(mprotect(p, page, PROT_READ));
    /* Another process writing the file is still seen. */
    int rw = CHECK_OK(open(tmp_path("ro"), O_RDWR));
    CHECK_EQ(pwrite(rw, "R", 1, 0), 1);
    CHECK_EQ(p[0], 'R');
    CHECK_OK(munmap(p, page));
    /* Private mappings of it may be made writable: they are copies. */
    p = mmap(NULL, page, PROT_READ, MAP_PRIVATE, ro, 0);
    CHECK(p != MAP_FAILED);
    CHECK_OK(mprotect(p, page, PROT_READ | PROT_WRITE));
    CHECK_OK(munmap(p, page));
    /* Opened read-write, a read-only shared mapping may be made writable. */
    p = mmap(NULL, page, PROT_READ, MAP_SHARED, rw, 0);
    CHECK(p != MAP_FAILED);
    CHECK_OK(mprotect(p, page, PROT_READ | PROT_WRITE));
    p[1] = 'E';
    char c = 0;
    CHECK_EQ(pread(ro, &c, 1, 1), 1);
    CHECK_EQ(c, 'E');
    CHECK_OK(munmap(p, page));
    /* MAP_SHARED_VALIDATE behaves as MAP_SHARED for known flags. */
    p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED_VALIDATE, rw, 0);
    CHECK(p != MAP_FAILED);
    p[2] = 'V';
    CHECK_EQ(pread(ro, &c, 1, 2), 1);
    CHECK_EQ(c, 'V');
    CHECK_OK(munmap(p, page));
    close(rw);
    close(ro);
}

static struct timespec deadline(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 10;
    return ts;
}

static void test_named_semaphores(void)
{
    char name_go[64], name_done[64];
    snprintf(name_go, sizeof name_go, "/carapace-mm_shared-go-%d", (int)getpid());
    snprintf(name_done, sizeof name_done, "/carapace-mm_shared-done-%d", (int)getpid());
    sem_t *go = sem_open(name_go, O_CREAT | O_EXCL, 0600, 0);
    CHECK(go != SEM_FAILED);
    sem_t *done = sem_open(name_done, O_CREAT | O_EXCL, 0600, 0);
    CHECK(done != SEM_FAILED);
    int *box = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(box != MAP_FAILED);
    fflush(stdout);
    pid_t pid = CHECK_OK(fork());
    if (pid == 0) {
        /* The child opens the semaphores by name again, as an unrelated process would. */
        sem_t *g = sem_open(name_go, 0);
        sem_t *d = sem_open(name_done, 0);
        if (g == SEM_FAILED || d == SEM_FAILED)
            _exit(1);
        for (int i = 0; i < 3; i++) {
            struct timespec ts = deadline();
            if (sem_timedwait(g, &ts) != 0)
                _exit(2);
            box[0] += 10;
            if (sem_post(d) != 0)
                _exit(3);
        }
        _exit(0);
    }
    int ok = 1;
    for (int i = 0; i < 3; i++) {
        box[0] += 1;
        ok &= sem_post(go) == 0;
        struct timespec ts = deadline();
        ok &= sem_timedwait(done, &ts) == 0;
        ok &= box[0] == 11 * (i + 1);
    }
    CHECK(ok);
    CHECK_EQ(box[0], 33);
    check_child(pid);
    int v = -1;
    CHECK_OK(sem_getvalue(go, &v));
    CHECK_EQ(v, 0);
    CHECK_OK(sem_close(go));
    CHECK_OK(sem_close(done));
    CHECK_OK(sem_unlink(name_go));
    CHECK_OK(sem_unlink(name_done));
    errno = 0;
    CHECK(sem_open(name_go, 0) == SEM_FAILED);
    CHECK_EQ(errno, ENOENT);
    CHECK_OK(munmap(box, page));
}

static void test_unnamed_semaphore_in_shared_memory(void)
{
    struct shared {
        sem_t ready;
        int value;
    } *s = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(s != MAP_FAILED);
    CHECK_OK(sem_init(&s->ready, 1, 0));
    fflush(stdout);
    pid_t pid = CHECK_OK(fork());
    if (pid == 0) {
        s->value = 42;
        _exit(sem_post(&s->ready) == 0 ? 0 : 1);
    }
    struct timespec ts = deadline();
    CHECK_OK(sem_timedwait(&s->ready, &ts));
    CHECK_EQ(s->value, 42);
    check_child(pid);
    CHECK_OK(sem_destroy(&s->ready));
    CHECK_OK(munmap(s, page));
}

int main(void)
{
    page = sysconf(_SC_PAGESIZE);
    check_tmpdir("mm_shared");
    test_anonymous_shared_with_child();
    test_private_is_not_shared();
    test_file_shared_with_child();
    test_write_and_store_coherence();
    test_unlinked_and_advice();
    test_protection();
    test_named_semaphores();
    test_unnamed_semaphore_in_shared_memory();
    return check_done();
}
