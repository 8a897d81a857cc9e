/* memfd_create(2) and file seals (fcntl F_ADD_SEALS / F_GET_SEALS): an anonymous,
 * unlinked tmpfs file whose seals forbid shrinking, growing, writing, or changing its
 * execute bits, enforced on write, truncation, fallocate, mmap and chmod. */
#include "child.h"

#include <sys/mman.h>

#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif

static int memfd(const char *name, unsigned flags)
{
    return (int)syscall(SYS_memfd_create, name, flags);
}

static void fd_link(int fd, char *out, size_t n)
{
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    ssize_t r = readlink(p, out, n - 1);
    out[r < 0 ? 0 : r] = 0;
}

static void test_basics(void)
{
    int fd = CHECK_OK(memfd("hello", MFD_CLOEXEC));
    CHECK_EQ(fcntl(fd, F_GETFD), FD_CLOEXEC);
    CHECK_EQ(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDWR);
    char link[256];
    fd_link(fd, link, sizeof link);
    CHECK_STREQ(link, "/memfd:hello (deleted)");
    struct stat st;
    CHECK_OK(fstat(fd, &st));
    CHECK(S_ISREG(st.st_mode));
    CHECK_EQ(st.st_mode & 07777, 0777);
    CHECK_EQ(st.st_nlink, 0);
    CHECK_EQ(st.st_size, 0);
    CHECK_EQ(st.st_uid, getuid());
    /* Without MFD_ALLOW_SEALING the file is sealed against further seals. */
    CHECK_EQ(fcntl(fd, F_GET_SEALS), F_SEAL_SEAL);
    CHECK_ERRNO(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), EPERM);

    CHECK_EQ(write(fd, "memfd data", 10), 10);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 10);
    char buf[16] = { 0 };
    CHECK_EQ(pread(fd, buf, sizeof buf, 0), 10);
    CHECK_MEMEQ(buf, "memfd data", 10);
    CHECK_OK(ftruncate(fd, 8192));
    char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(m != MAP_FAILED);
    if (m != MAP_FAILED) {
        CHECK_MEMEQ(m, "memfd data", 10);
        memcpy(m + 4096, "mapped", 6);
        CHECK_EQ(pread(fd, buf, 6, 4096), 6);
        CHECK_MEMEQ(buf, "mapped", 6);
        munmap(m, 8192);
    }

    /* Reopening through /proc reaches the same file. */
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    int again = CHECK_OK(open(p, O_RDONLY));
    CHECK_EQ(pread(again, buf, 5, 0), 5);
    CHECK_MEMEQ(buf, "memfd", 5);
    close(again);

    /* A child sees the same data. */
    pid_t pid = fork();
    if (pid == 0) {
        char c[6];
        _exit(pread(fd, c, 6, 4096) == 6 && memcmp(c, "mapped", 6) == 0 ? 0 : 1);
    }
    int ws = -1;
    CHECK_EQ(waitpid(pid, &ws, 0), pid);
    CHECK_EXITED(ws, 0);
    close(fd);

    int fd2 = CHECK_OK(memfd("second", 0));
    CHECK_EQ(fcntl(fd2, F_GETFD), 0);
    close(fd2);
}

static void test_bad_args(void)
{
    CHECK_ERRNO(memfd("x", 0x100), EINVAL);
    CHECK_ERRNO(memfd("x", MFD_NOEXEC_SEAL | MFD_EXEC), EINVAL);
    CHECK_ERRNO(memfd(BAD_PTR, 0), EFAULT);
    char name[300];
    memset(name, 'n', sizeof name);
    name[250] = 0; /* 250 bytes: one more than the 249 allowed */
    CHECK_ERRNO(memfd(name, 0), EINVAL);
    name[249] = 0;
    int fd = CHECK_OK(memfd(name, 0));
    close(fd);
    /* Seals are for shmem files: a pipe has none. */
    int p[2];
    CHECK_OK(pipe(p));
    CHECK_ERRNO(fcntl(p[0], F_GET_SEALS), EINVAL);
    close(p[0]);
    close(p[1]);
}

static void test_seals(void)
{
    int fd = CHECK_OK(memfd("sealed", MFD_ALLOW_SEALING | MFD_CLOEXEC));
    CHECK_EQ(fcntl(fd, F_GET_SEALS), 0);
    CHECK_EQ(write(fd, "0123456789", 10), 10);
    CHECK_ERRNO(fcntl(fd, F_ADD_SEALS, 0x1000), EINVAL);

    /* SHRINK: smaller is refused, larger is fine. */
    CHECK_OK(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK));
    CHECK_EQ(fcntl(fd, F_GET_SEALS), F_SEAL_SHRINK);
    CHECK_ERRNO(ftruncate(fd, 5), EPERM);
    CHECK_OK(ftruncate(fd, 20));
    CHECK_OK(ftruncate(fd, 20));

    /* GROW: nothing past the end, by write, truncate or fallocate. */
    CHECK_OK(fcntl(fd, F_ADD_SEALS, F_SEAL_GROW));
    CHECK_ERRNO(ftruncate(fd, 21), EPERM);
    CHECK_ERRNO(pwrite(fd, "xyz", 3, 19), EPERM);
    CHECK_EQ(pwrite(fd, "ab", 2, 18), 2);
    CHECK_ERRNO(fallocate(fd, 0, 0, 100), EPERM);
    struct stat st;
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_size, 20);

    /* A read-only description may not add seals. */
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    int ro = CHECK_OK(open(p, O_RDONLY));
    CHECK_ERRNO(fcntl(ro, F_ADD_SEALS, F_SEAL_WRITE), EPERM);
    CHECK_EQ(fcntl(ro, F_GET_SEALS), F_SEAL_SHRINK | F_SEAL_GROW);
    close(ro);

    /* WRITE: no write, no writable shared mapping; reading and private copies stay. */
    CHECK_OK(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE));
    CHECK_ERRNO(pwrite(fd, "z", 1, 0), EPERM);
    CHECK_ERRNO(write(fd, "z", 1), EPERM);
    CHECK_ERRNO(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4), EPERM);
    CHECK_EQ(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), MAP_FAILED);
    CHECK_ERRNO(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), EPERM);
    char *ro_map = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(ro_map != MAP_FAILED);
    if (ro_map != MAP_FAILED) {
        CHECK_MEMEQ(ro_map, "0123456789", 10);
        /* The mapping may never become writable. */
        CHECK_ERRNO(mprotect(ro_map, 4096, PROT_READ | PROT_WRITE), EACCES);
        munmap(ro_map, 4096);
    }
    char *priv = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    CHECK(priv != MAP_FAILED);
    if (priv != MAP_FAILED) {
        priv[0] = 'P';
        munmap(priv, 4096);
    }
    char buf[4];
    CHECK_EQ(pread(fd, buf, 1, 0), 1);
    CHECK_EQ(buf[0], '0');

    /* SEAL: no more seals of any kind. */
    CHECK_OK(fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL));
    CHECK_EQ(fcntl(fd, F_GET_SEALS), F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE);
    CHECK_ERRNO(fcntl(fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE), EPERM);
    CHECK_ERRNO(fcntl(fd, F_ADD_SEALS, 0), EPERM);
    close(fd);
}

/* F_SEAL_WRITE waits for no one: a shared mapping that may write (any MAP_SHARED of a
 * read-write description, even PROT_READ) makes it EBUSY; private ones do not. */
static void test_write_seal_busy(void)
{
    int fd = CHECK_OK(memfd("busy", MFD_ALLOW_SEALING));
    CHECK_OK(ftruncate(fd, 8192));
    char *priv = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    CHECK(priv != MAP_FAILED);
    char *shr = mmap(NULL, 8192, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(shr != MAP_FAILED);
    CHECK_ERRNO(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), EBUSY);
    /* Half of it is still a writable shared mapping. */
    CHECK_OK(munmap(shr, 4096));
    CHECK_ERRNO(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), EBUSY);
    CHECK_OK(munmap(shr + 4096, 4096));
    CHECK_OK(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE));
    CHECK_EQ(fcntl(fd, F_GET_SEALS), F_SEAL_WRITE);
    if (priv != MAP_FAILED)
        munmap(priv, 4096);
    close(fd);
}

static void test_future_write(void)
{
    int fd = CHECK_OK(memfd("future", MFD_ALLOW_SEALING));
    CHECK_OK(ftruncate(fd, 4096));
    char *old = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(old != MAP_FAILED);
    CHECK_OK(fcntl(fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE));
    CHECK_ERRNO(write(fd, "w", 1), EPERM);
    CHECK_ERRNO(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), EPERM);
    /* A writable mapping made before the seal still writes. */
    if (old != MAP_FAILED) {
        old[0] = 'M';
        char c = 0;
        CHECK_EQ(pread(fd, &c, 1, 0), 1);
        CHECK_EQ(c, 'M');
        munmap(old, 4096);
    }
    /* Truncation is not writing. */
    CHECK_OK(ftruncate(fd, 100));
    close(fd);
}

static void test_exec_seal(void)
{
    int fd = CHECK_OK(memfd("noexec", MFD_NOEXEC_SEAL));
    struct stat st;
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_mode & 07777, 0666);
    /* MFD_NOEXEC_SEAL allows further seals and adds F_SEAL_EXEC. */
    CHECK_EQ(fcntl(fd, F_GET_SEALS), F_SEAL_EXEC);
    CHECK_ERRNO(fchmod(fd, 0777), EPERM);
    CHECK_ERRNO(fchmod(fd, 0766), EPERM);
    CHECK_OK(fchmod(fd, 0644));
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_mode & 07777, 0644);
    close(fd);

    fd = CHECK_OK(memfd("exec", MFD_EXEC));
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_mode & 07777, 0777);
    CHECK_EQ(fcntl(fd, F_GET_SEALS), F_SEAL_SEAL);
    close(fd);

    fd = CHECK_OK(memfd("exec-sealable", MFD_EXEC | MFD_ALLOW_SEALING));
    CHECK_EQ(fcntl(fd, F_GET_SEALS), 0);
    CHECK_OK(fcntl(fd, F_ADD_SEALS, F_SEAL_EXEC));
    CHECK_ERRNO(fchmod(fd, 0666), EPERM);
    CHECK_OK(fchmod(fd, 0777));
    close(fd);
}

int main(void)
{
    test_basics();
    test_bad_args();
    test_seals();
    test_write_seal_busy();
    test_future_write();
    test_exec_seal();
    return check_done();
}
