/* Private mappings of a file the program did not write: itself. In the sandbox it lies on
 * the read-only host tree the gofer serves, whose pages the sentry reads once and shares
 * between every mapping and process, copy-on-write. These check that nothing written
 * through a private mapping (by a store, a syscall, a child, after mprotect) ever shows in
 * another mapping, in the file, or in a program exec'd later; that MADV_DONTNEED brings the
 * file's bytes back; and that the end of the file looks as Linux shows it.
 *
 * `mm_host_file verify` is the exec'd program: it maps itself and compares with pread. */
#include "child.h"

#include <setjmp.h>
#include <sys/mman.h>

#define SPAN 4 /* pages compared at the start of the file */

static long page;
static const char *self;
static off_t size;
static unsigned char *orig; /* the file's first SPAN pages, read with pread */

static int open_self(void)
{
    return CHECK_OK(open(self, O_RDONLY | O_CLOEXEC));
}

static unsigned char *map_self(int prot, off_t off, size_t len)
{
    int fd = open_self();
    unsigned char *m = mmap(NULL, len, prot, MAP_PRIVATE, fd, off);
    CHECK(m != MAP_FAILED);
    close(fd);
    return m;
}

static void read_orig(void)
{
    orig = malloc(SPAN * page);
    int fd = open_self();
    CHECK_EQ(pread(fd, orig, SPAN * page, 0), SPAN * page);
    close(fd);
}

static void test_stores_stay_in_their_mapping(void)
{
    unsigned char *a = map_self(PROT_READ | PROT_WRITE, 0, SPAN * page);
    unsigned char *b = map_self(PROT_READ, 0, SPAN * page);
    CHECK_MEMEQ(a, orig, SPAN * page);
    CHECK_MEMEQ(b, orig, SPAN * page);
    a[10] ^= 0xff;
    a[page + 5] ^= 0xff;
    memset(a + 2 * page, 0x5a, page);
    CHECK_EQ(a[10], orig[10] ^ 0xff);
    CHECK_EQ(b[10], orig[10]);
    CHECK_EQ(b[page + 5], orig[page + 5]);
    CHECK_MEMEQ(b + 2 * page, orig + 2 * page, page);
    /* A mapping made afterwards, and the file itself, have the file's bytes. */
    unsigned char *c = map_self(PROT_READ, 0, SPAN * page);
    CHECK_MEMEQ(c, orig, SPAN * page);
    unsigned char buf[64];
    int fd = open_self();
    CHECK_EQ(pread(fd, buf, sizeof buf, 0), sizeof buf);
    close(fd);
    CHECK_MEMEQ(buf, orig, sizeof buf);
    munmap(a, SPAN * page);
    munmap(b, SPAN * page);
    munmap(c, SPAN * page);
}

static void test_mprotect_then_write(void)
{
    unsigned char *r = map_self(PROT_READ, 0, page);
    CHECK_EQ(r[1], orig[1]); /* populated read-only first */
    CHECK_OK(mprotect(r, page, PROT_READ | PROT_WRITE));
    r[1] ^= 0xff;
    CHECK_EQ(r[1], orig[1] ^ 0xff);
    unsigned char *d = map_self(PROT_READ, 0, page);
    CHECK_EQ(d[1], orig[1]);
    munmap(r, page);
    munmap(d, page);
}

static unsigned char *shared_map;

static void child_writes(void *arg)
{
    (void)arg;
    CHECK_EQ(shared_map[3], 'p'); /* the parent's store before the fork */
    shared_map[2] = 'c';
    CHECK_EQ(shared_map[2], 'c');
    unsigned char *n = map_self(PROT_READ, 0, page);
    CHECK_EQ(n[2], orig[2]);
    CHECK_EQ(n[3], orig[3]);
}

static void test_fork(void)
{
    shared_map = map_self(PROT_READ | PROT_WRITE, 0, page);
    shared_map[3] = 'p';
    pid_t pid = spawn_checks(child_writes, NULL);
    CHECK(pid > 0);
    CHECK_EXITED(wait_status(pid, 0), 0);
    CHECK_EQ(shared_map[2], orig[2]);
    CHECK_EQ(shared_map[3], 'p');
    munmap(shared_map, page);
}

static void test_syscall_writes_into_a_private_mapping(void)
{
    unsigned char *m = map_self(PROT_READ | PROT_WRITE, 0, 2 * page);
    CHECK_EQ(m[0], orig[0]);
    int fd = open_self();
    /* The sentry (or kernel) writes the second page's bytes over the first page's. */
    CHECK_EQ(pread(fd, m, 64, page), 64);
    close(fd);
    CHECK_MEMEQ(m, orig + page, 64);
    unsigned char *o = map_self(PROT_READ, 0, page);
    CHECK_MEMEQ(o, orig, 64);
    munmap(m, 2 * page);
    munmap(o, page);
}

static void test_dontneed_brings_the_file_back(void)
{
    unsigned char *m = map_self(PROT_READ | PROT_WRITE, 0, page);
    m[0] ^= 1;
    CHECK_EQ(m[0], orig[0] ^ 1);
    CHECK_OK(madvise(m, page, MADV_DONTNEED));
    CHECK_EQ(m[0], orig[0]);
    munmap(m, page);
}

static sigjmp_buf jump;
static volatile int bus_seen;

static void on_bus(int sig)
{
    bus_seen = sig;
    siglongjmp(jump, 1);
}

static void test_the_end_of_the_file(void)
{
    /* The last page that holds file bytes, and the one after it. */
    off_t last = (size - 1) / page * page;
    size_t tail = size - last;
    unsigned char *m = map_self(PROT_READ, last, 2 * page);
    unsigned char *want = malloc(tail);
    int fd = open_self();
    CHECK_EQ(pread(fd, want, tail, last), (ssize_t)tail);
    close(fd);
    CHECK_MEMEQ(m, want, tail);
    int zeros = 1;
    for (size_t i = tail; i < (size_t)page; i++)
        zeros &= m[i] == 0;
    CHECK(zeros);
    signal(SIGBUS, on_bus);
    bus_seen = 0;
    if (sigsetjmp(jump, 1) == 0)
        (void)*(volatile unsigned char *)(m + page);
    CHECK_EQ(bus_seen, SIGBUS);
    signal(SIGBUS, SIG_DFL);
    free(want);
    munmap(m, 2 * page);
}

static void test_exec_after_scribbling(void)
{
    unsigned char *m = map_self(PROT_READ | PROT_WRITE, 0, SPAN * page);
    memset(m, 0xcc, SPAN * page);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        execl(self, self, "verify", (char *)NULL);
        _exit(127);
    }
    CHECK(pid > 0);
    CHECK_EXITED(wait_status(pid, 0), 0);
    munmap(m, SPAN * page);
}

/* The exec'd program: its own image and a fresh mapping show the file's bytes. */
static int verify(void)
{
    read_orig();
    unsigned char *m = map_self(PROT_READ, 0, SPAN * page);
    CHECK_MEMEQ(m, orig, SPAN * page);
    return check_failed_count ? 1 : 0;
}

int main(int argc, char **argv)
{
    page = sysconf(_SC_PAGESIZE);
    self = argv[0];
    struct stat st;
    CHECK_OK(stat(self, &st));
    size = st.st_size;
    if (argc > 1 && strcmp(argv[1], "verify") == 0)
        return verify();
    CHECK(size > SPAN * page);
    read_orig();
    test_stores_stay_in_their_mapping();
    test_mprotect_then_write();
    test_fork();
    test_syscall_writes_into_a_private_mapping();
    test_dontneed_brings_the_file_back();
    test_the_end_of_the_file();
    test_exec_after_scribbling();
    return check_done();
}
