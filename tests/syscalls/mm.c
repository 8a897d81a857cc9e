/* Memory management: mmap (anonymous, file, fixed), munmap, mprotect, brk, mremap,
 * madvise, mincore, msync. Without signals, protections are observed through the kernel:
 * a read(2) into a page the process may not write fails with EFAULT. */
#include "check.h"

#include <sys/mman.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

static long page;

static void *map_anon(size_t len, int prot)
{
    return mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

/* 1 if the page at addr is mapped (mincore succeeds), 0 if not (ENOMEM). */
static int is_mapped(void *addr)
{
    unsigned char v;
    return syscall(SYS_mincore, addr, page, &v) == 0;
}

static void test_mmap_anonymous(void)
{
    char *p = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_EQ((uintptr_t)p % page, 0);
    /* Fresh anonymous memory reads as zeros and keeps what is written. */
    CHECK(p[0] == 0 && p[2 * page - 1] == 0);
    memset(p, 0x5a, 2 * page);
    CHECK(p[0] == 0x5a && p[2 * page - 1] == 0x5a);

    char *s = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(s != MAP_FAILED);
    CHECK(s[0] == 0);
    s[100] = 7;
    CHECK(s[100] == 7);
    CHECK_OK(munmap(s, page));

    /* MAP_FIXED replaces whatever was there. */
    char *f = mmap(p + page, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                   -1, 0);
    CHECK_EQ(f, p + page);
    CHECK(f[0] == 0);
    CHECK(p[0] == 0x5a);

    /* MAP_FIXED_NOREPLACE refuses to clobber an existing mapping. */
    CHECK_ERRNO(mmap(p, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0),
                EEXIST);
    CHECK(p[0] == 0x5a);

    /* A hint that is free is honoured by MAP_FIXED_NOREPLACE. */
    CHECK_OK(munmap(p + page, page));
    char *n = mmap(p + page, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
                   -1, 0);
    CHECK_EQ(n, p + page);
    CHECK_OK(munmap(p, 2 * page));

    /* Error cases. */
    CHECK_ERRNO(mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), EINVAL);
    CHECK_ERRNO(mmap(NULL, page, PROT_READ, MAP_ANONYMOUS, -1, 0), EINVAL);
    CHECK_ERRNO(mmap(NULL, page, PROT_READ, MAP_PRIVATE | MAP_SHARED | MAP_ANONYMOUS, -1, 0),
                EINVAL);
    CHECK_ERRNO(mmap((void *)0x10000001, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                     -1, 0),
                EINVAL);
    CHECK_ERRNO(mmap(NULL, page, PROT_READ, MAP_PRIVATE, -1, 0), EBADF);
    CHECK_ERRNO(mmap(NULL, page, PROT_READ, MAP_PRIVATE, 999, 0), EBADF);
    /* A length that overflows when rounded up to whole pages. */
    CHECK_ERRNO(mmap(NULL, (size_t)-page + 1, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
                ENOMEM);
}

static void test_munmap(void)
{
    char *p = map_anon(3 * page, PROT_READ | PROT_WRITE);
    CHECK(p != MAP_FAILED);
    memset(p, 1, 3 * page);
    /* Unmapping the middle page splits the mapping in two. */
    CHECK_OK(munmap(p + page, page));
    CHECK(is_mapped(p));
    CHECK(!is_mapped(p + page));
    CHECK(is_mapped(p + 2 * page));
    CHECK(p[0] == 1 && p[2 * page] == 1);
    /* Unmapping a range that is already unmapped is fine. */
    CHECK_OK(munmap(p + page, page));
    CHECK_ERRNO(munmap(p + 1, page), EINVAL);
    CHECK_ERRNO(munmap(p, 0), EINVAL);
    /* The length need not be page aligned: it is rounded up. */
    CHECK_OK(munmap(p, 1));
    CHECK(!is_mapped(p));
    CHECK_OK(munmap(p, 3 * page));
    CHECK(!is_mapped(p + 2 * page));
}

static void test_mprotect(void)
{
    int zero = CHECK_OK(open("/dev/zero", O_RDONLY));
    char *p = map_anon(2 * page, PROT_READ | PROT_WRITE);
    CHECK(p != MAP_FAILED);
    memset(p, 3, 2 * page);
    /* Writable: the kernel can read(2) into it. */
    CHECK_EQ(read(zero, p, 16), 16);
    CHECK(p[0] == 0);

    CHECK_OK(mprotect(p, page, PROT_READ));
    CHECK_ERRNO(syscall(SYS_read, zero, p, 16), EFAULT);
    /* Reading is still allowed: write(2) from it works and the data is intact. */
    int null = CHECK_OK(open("/dev/null", O_WRONLY));
    CHECK_EQ(write(null, p, 16), 16);
    CHECK(p[16] == 3);
    /* The second page kept its protection. */
    CHECK_EQ(read(zero, p + page, 16), 16);

    /* /dev/null never touches the buffer, so a file is needed to see PROT_NONE. */
    CHECK_OK(mprotect(p, page, PROT_NONE));
    int file = CHECK_OK(open(tmp_path("prot"), O_RDWR | O_CREAT | O_TRUNC, 0600));
    CHECK_ERRNO(syscall(SYS_write, file, p, 16), EFAULT);
    CHECK_ERRNO(syscall(SYS_read, zero, p, 16), EFAULT);
    close(file);
    CHECK_OK(mprotect(p, page, PROT_READ | PROT_WRITE));
    CHECK_EQ(read(zero, p, 16), 16);
    CHECK(p[16] == 3); /* mprotect kept the contents */

    CHECK_ERRNO(mprotect(p + 1, page, PROT_READ), EINVAL);
    CHECK_ERRNO(mprotect(p, page, 0x1000), EINVAL);
    CHECK_OK(munmap(p, 2 * page));
    CHECK_ERRNO(mprotect(p, page, PROT_READ), ENOMEM);
    close(zero);
    close(null);
}

static void test_brk(void)
{
    /* brk(0) cannot move the break, so it returns the current one. */
    char *start = (char *)syscall(SYS_brk, 0);
    CHECK(start != NULL && start != (char *)-1);
    char *grown = (char *)syscall(SYS_brk, start + 16 * page);
    CHECK_EQ(grown, start + 16 * page);
    /* New heap memory is zeroed and usable. */
    CHECK(start[0] == 0 && start[16 * page - 1] == 0);
    memset(start, 9, 16 * page);
    CHECK(start[16 * page - 1] == 9);
    CHECK_EQ(syscall(SYS_brk, 0), start + 16 * page);
    /* Shrinking releases the pages; growing again gives fresh zeroed ones. */
    CHECK_EQ(syscall(SYS_brk, start + page), start + page);
    CHECK(!is_mapped(start + 8 * page));
    CHECK_EQ(syscall(SYS_brk, start + 16 * page), start + 16 * page);
    CHECK(start[8 * page] == 0);
    CHECK(start[0] == 9);
    /* A request that cannot be met (below the data segment) leaves the break as it was:
     * the syscall returns the old break, not an error. */
    CHECK_EQ(syscall(SYS_brk, 0x1000), start + 16 * page);
    CHECK_EQ(syscall(SYS_brk, start), start);
}

static void test_mremap(void)
{
    /* Work inside a 4-page reservation of our own, so that the pages next to the mapping
     * are known to be free or ours (the page above an arbitrary mapping may be a special
     * one that MAP_FIXED cannot replace). */
    char *res = map_anon(4 * page, PROT_NONE);
    CHECK(res != MAP_FAILED);
    CHECK_OK(munmap(res + page, 3 * page));
    char *p = mmap(res, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
                   0);
    CHECK_EQ(p, res);
    /* Grow in place into the free page above. */
    p[0] = 42;
    char *q = mremap(p, page, 2 * page, 0);
    CHECK_EQ(q, p);
    CHECK(q[0] == 42 && q[2 * page - 1] == 0);

    /* Grow where the next page is taken: without MREMAP_MAYMOVE that fails... */
    char *blocker = mmap(p + 2 * page, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                         -1, 0);
    CHECK_EQ(blocker, p + 2 * page);
    CHECK_ERRNO(mremap(p, 2 * page, 4 * page, 0), ENOMEM);
    /* ...and with it the mapping moves, contents and all. */
    q[page] = 43;
    char *m = mremap(p, 2 * page, 4 * page, MREMAP_MAYMOVE);
    CHECK(m != MAP_FAILED);
    CHECK(m != p);
    CHECK(m[0] == 42 && m[page] == 43 && m[4 * page - 1] == 0);
    CHECK(!is_mapped(p));

    /* Shrink: the tail goes away, the head stays. */
    char *s = mremap(m, 4 * page, page, 0);
    CHECK_EQ(s, m);
    CHECK(!is_mapped(m + page));
    CHECK(m[0] == 42);

    /* MREMAP_FIXED moves to a chosen address. */
    char *target = map_anon(page, PROT_NONE);
    CHECK(target != MAP_FAILED);
    char *f = mremap(m, page, page, MREMAP_MAYMOVE | MREMAP_FIXED, target);
    CHECK_EQ(f, target);
    CHECK(f[0] == 42);

    CHECK_ERRNO(mremap(f + 1, page, page, 0), EINVAL);
    CHECK_ERRNO(mremap(f, page, page, 0x80), EINVAL);
    CHECK_ERRNO(mremap(f, page, 0, MREMAP_MAYMOVE), EINVAL);
    /* MREMAP_FIXED requires MREMAP_MAYMOVE. */
    CHECK_ERRNO(mremap(f, page, page, MREMAP_FIXED, target), EINVAL);
    CHECK_OK(munmap(f, page));
    CHECK_ERRNO(mremap(f, page, 2 * page, MREMAP_MAYMOVE), EFAULT);
    munmap(blocker, page);
}

static void test_madvise(void)
{
    char *p = map_anon(4 * page, PROT_READ | PROT_WRITE);
    CHECK(p != MAP_FAILED);
    memset(p, 0x77, 4 * page);
    /* MADV_DONTNEED on private anonymous memory: the next touch sees zero pages. */
    CHECK_OK(madvise(p + page, 2 * page, MADV_DONTNEED));
    CHECK(p[0] == 0x77);
    CHECK(p[page] == 0 && p[3 * page - 1] == 0);
    CHECK(p[3 * page] == 0x77);
    /* Advice that changes nothing visible. */
    CHECK_OK(madvise(p, 4 * page, MADV_NORMAL));
    CHECK_OK(madvise(p, 4 * page, MADV_WILLNEED));
    CHECK_OK(madvise(p, 4 * page, MADV_SEQUENTIAL));
    CHECK_OK(madvise(p, 4 * page, MADV_RANDOM));
    CHECK(p[0] == 0x77);
    CHECK_ERRNO(madvise(p + 1, page, MADV_NORMAL), EINVAL);
    CHECK_ERRNO(madvise(p, page, 12345), EINVAL);
    CHECK_OK(munmap(p, 4 * page));
    CHECK_ERRNO(madvise(p, page, MADV_NORMAL), ENOMEM);
}

static void test_mincore(void)
{
    char *p = map_anon(4 * page, PROT_READ | PROT_WRITE);
    CHECK(p != MAP_FAILED);
    p[0] = 1;
    p[2 * page] = 1;
    unsigned char v[4] = { 0xff, 0xff, 0xff, 0xff };
    CHECK_OK(mincore(p, 4 * page, v));
    /* Pages just written are resident. Untouched ones may or may not be, so only the
     * low bit's range is checked for them (the other bits are reserved, zero). */
    CHECK_EQ(v[0], 1);
    CHECK_EQ(v[2], 1);
    CHECK((v[1] & ~1) == 0 && (v[3] & ~1) == 0);
    CHECK_ERRNO(mincore(p + 1, page, v), EINVAL);
    CHECK_ERRNO(syscall(SYS_mincore, p, page, BAD_PTR), EFAULT);
    CHECK_OK(munmap(p, 4 * page));
    CHECK_ERRNO(mincore(p, page, v), ENOMEM);
}

static void test_msync(void)
{
    char *p = map_anon(page, PROT_READ | PROT_WRITE);
    CHECK(p != MAP_FAILED);
    CHECK_OK(msync(p, page, MS_SYNC));
    CHECK_OK(msync(p, page, MS_ASYNC));
    CHECK_OK(msync(p, page, MS_INVALIDATE));
    CHECK_ERRNO(msync(p, page, MS_SYNC | MS_ASYNC), EINVAL);
    CHECK_ERRNO(msync(p, page, 0x100), EINVAL);
    CHECK_ERRNO(msync(p + 1, page, MS_SYNC), EINVAL);
    CHECK_OK(munmap(p, page));
    CHECK_ERRNO(msync(p, page, MS_SYNC), ENOMEM);
}

/* Maps `path` read-only and private, and compares its first bytes with read(2). */
static void check_file_mapping(const char *path)
{
    int fd = CHECK_OK(open(path, O_RDONLY));
    struct stat st;
    CHECK_OK(fstat(fd, &st));
    size_t len = st.st_size < 3 * page ? (size_t)st.st_size : 3 * page;
    CHECK(len > 0);
    char *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    CHECK(m != MAP_FAILED);
    static char buf[3 * 65536];
    CHECK_EQ(pread(fd, buf, len, 0), len);
    CHECK_MEMEQ(m, buf, len);
    /* At a page-aligned file offset too. */
    if (st.st_size > page) {
        char *o = mmap(NULL, page, PROT_READ, MAP_PRIVATE, fd, page);
        CHECK(o != MAP_FAILED);
        CHECK_MEMEQ(o, buf + page, st.st_size - page < page ? st.st_size - page : page);
        munmap(o, page);
    } else {
        CHECK(1);
        CHECK(1);
    }
    CHECK_OK(munmap(m, len));
    /* A shared writable mapping needs a file opened for writing. */
    CHECK_ERRNO(mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), EACCES);
    CHECK_ERRNO(mmap(NULL, page, PROT_READ, MAP_PRIVATE, fd, 1), EINVAL);
    close(fd);
}

static void test_file_mmap(void)
{
    check_file_mapping("/etc/passwd");
    check_file_mapping("/usr/bin/ls");

    /* A file of our own in /tmp: private writes stay private, shared ones reach the file. */
    char data[3000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = 'a' + i % 26;
    CHECK_OK(write_file(tmp_path("mapped"), data, sizeof data));
    check_file_mapping(tmp_path("mapped"));

    int fd = CHECK_OK(open(tmp_path("mapped"), O_RDWR));
    char *priv = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    CHECK(priv != MAP_FAILED);
    /* Bytes past the end of the file, within the last page, read as zero. */
    CHECK(priv[sizeof data] == 0 && priv[page - 1] == 0);
    priv[0] = '!';
    char c = 0;
    CHECK_EQ(pread(fd, &c, 1, 0), 1);
    CHECK_EQ(c, 'a');

    /* A write(2) to the file shows in a mapping made afterwards. (Shared writable file
     * mappings have their own program, mm_shared_file.c.) */
    CHECK_EQ(pwrite(fd, "Z", 1, 2), 1);
    munmap(priv, page);

    /* MAP_SHARED_VALIDATE rejects flags it does not know (for files; anonymous memory
     * gets EINVAL instead). */
    CHECK_ERRNO(mmap(NULL, page, PROT_READ, MAP_SHARED_VALIDATE | 0x800000, fd, 0), EOPNOTSUPP);
    char *v = mmap(NULL, page, PROT_READ, MAP_SHARED_VALIDATE, fd, 0);
    CHECK(v != MAP_FAILED);
    CHECK_EQ(v[2], 'Z');
    munmap(v, page);

    /* Directories cannot be mapped. */
    int dir = CHECK_OK(open("/tmp", O_RDONLY | O_DIRECTORY));
    CHECK_ERRNO(mmap(NULL, page, PROT_READ, MAP_PRIVATE, dir, 0), ENODEV);
    close(dir);
    close(fd);
}

static void test_sparse(void)
{
    /* Reserve 1 GiB and touch a few pages: only those pages cost memory. */
    size_t len = 1UL << 30;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    CHECK(p != MAP_FAILED);
    size_t offs[] = { 0, 4096 * 7, len / 2, len - page };
    for (size_t i = 0; i < 4; i++)
        p[offs[i]] = (char)(i + 1);
    for (size_t i = 0; i < 4; i++)
        CHECK_EQ(p[offs[i]], i + 1);
    CHECK_EQ(p[len / 4], 0);
    unsigned char v;
    CHECK_OK(mincore(p + len / 2, page, &v));
    CHECK_EQ(v & 1, 1);
    CHECK_OK(munmap(p, len));
}

int main(void)
{
    page = sysconf(_SC_PAGESIZE);
    check_tmpdir("mm");
    CHECK_EQ(page, 4096);
    test_mmap_anonymous();
    test_munmap();
    test_mprotect();
    test_brk();
    test_mremap();
    test_madvise();
    test_mincore();
    test_msync();
    test_file_mmap();
    test_sparse();
    return check_done();
}
