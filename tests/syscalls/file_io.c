/* Opening and moving bytes: open/openat/openat2/creat, close/close_range, read, write,
 * pread64/pwrite64, readv/writev, preadv/pwritev, preadv2/pwritev2, lseek, ftruncate.
 * Everything written lives in a scratch directory under /tmp. */
#include "check.h"

#include <limits.h>
#include <linux/openat2.h>
#include <sys/uio.h>

#ifndef RWF_APPEND
#define RWF_APPEND 0x10
#endif

static off_t file_size(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 ? st.st_size : -1;
}

static void test_open(void)
{
    const char *f = tmp_path("open");
    CHECK_ERRNO(open(f, O_RDONLY), ENOENT);
    int fd = CHECK_OK(open(f, O_RDWR | O_CREAT | O_EXCL, 0644));
    CHECK(fd >= 3);
    CHECK_EQ(write(fd, "hello", 5), 5);
    CHECK_OK(close(fd));
    CHECK_ERRNO(open(f, O_RDWR | O_CREAT | O_EXCL, 0644), EEXIST);
    /* O_CREAT without O_EXCL opens the existing file, keeping its data. */
    fd = CHECK_OK(open(f, O_RDWR | O_CREAT, 0644));
    CHECK_EQ(file_size(fd), 5);
    close(fd);
    /* O_TRUNC empties it. */
    fd = CHECK_OK(open(f, O_WRONLY | O_TRUNC));
    CHECK_EQ(file_size(fd), 0);
    close(fd);
    /* The lowest free descriptor is used. */
    int a = CHECK_OK(open(f, O_RDONLY));
    int b = CHECK_OK(open(f, O_RDONLY));
    CHECK_EQ(b, a + 1);
    close(a);
    int c = CHECK_OK(open(f, O_RDONLY));
    CHECK_EQ(c, a);
    close(b);
    close(c);

    CHECK_ERRNO(open(tmp_path("missing-dir/file"), O_RDWR | O_CREAT, 0644), ENOENT);
    CHECK_ERRNO(open("/tmp", O_WRONLY), EISDIR);
    CHECK_ERRNO(open("/tmp", O_RDWR), EISDIR);
    CHECK_ERRNO(syscall(SYS_open, BAD_PTR, O_RDONLY), EFAULT);
    CHECK_ERRNO(open("", O_RDONLY), ENOENT);
}

static void test_openat_and_creat(void)
{
    int dir = CHECK_OK(open(check_tmpdir_path, O_RDONLY | O_DIRECTORY));
    int fd = CHECK_OK(openat(dir, "rel", O_RDWR | O_CREAT | O_EXCL, 0600));
    CHECK_EQ(write(fd, "abc", 3), 3);
    close(fd);
    /* The relative name resolved inside `dir`, not in the working directory. */
    CHECK_OK(access(tmp_path("rel"), F_OK));
    fd = CHECK_OK(openat(AT_FDCWD, tmp_path("rel"), O_RDONLY));
    close(fd);
    /* An absolute path ignores dirfd, even a bad one. */
    fd = CHECK_OK(openat(12345, tmp_path("rel"), O_RDONLY));
    close(fd);
    CHECK_ERRNO(openat(12345, "rel", O_RDONLY), EBADF);
    int file = CHECK_OK(open(tmp_path("rel"), O_RDONLY));
    CHECK_ERRNO(openat(file, "x", O_RDONLY), ENOTDIR);
    close(file);

    /* creat = open(O_WRONLY | O_CREAT | O_TRUNC). */
    fd = CHECK_OK(creat(tmp_path("rel"), 0644));
    CHECK_EQ(fcntl(fd, F_GETFL) & O_ACCMODE, O_WRONLY);
    CHECK_EQ(file_size(fd), 0);
    CHECK_ERRNO(read(fd, &file, 1), EBADF);
    close(fd);
    close(dir);
}

static long openat2(int dirfd, const char *path, struct open_how *how, size_t size)
{
    return syscall(SYS_openat2, dirfd, path, how, size);
}

static void test_openat2(void)
{
    CHECK_OK(write_file(tmp_path("target"), "t", 1));
    CHECK_OK(symlink(tmp_path("target"), tmp_path("abs-link")));
    CHECK_OK(symlink("target", tmp_path("rel-link")));
    int dir = CHECK_OK(open(check_tmpdir_path, O_RDONLY | O_DIRECTORY));

    struct open_how how = { .flags = O_RDONLY };
    long fd = CHECK_OK(openat2(dir, "target", &how, sizeof how));
    close(fd);
    fd = CHECK_OK(openat2(dir, "rel-link", &how, sizeof how));
    close(fd);

    how.resolve = RESOLVE_NO_SYMLINKS;
    CHECK_ERRNO(openat2(dir, "rel-link", &how, sizeof how), ELOOP);
    fd = CHECK_OK(openat2(dir, "target", &how, sizeof how));
    close(fd);

    /* RESOLVE_BENEATH: no absolute paths, no escaping with "..". */
    how.resolve = RESOLVE_BENEATH;
    fd = CHECK_OK(openat2(dir, "rel-link", &how, sizeof how));
    close(fd);
    CHECK_ERRNO(openat2(dir, "../", &how, sizeof how), EXDEV);
    CHECK_ERRNO(openat2(dir, "/etc/passwd", &how, sizeof how), EXDEV);
    CHECK_ERRNO(openat2(dir, "abs-link", &how, sizeof how), EXDEV);

    /* RESOLVE_IN_ROOT: ".." and absolute names stay inside dirfd. */
    how.resolve = RESOLVE_IN_ROOT;
    fd = CHECK_OK(openat2(dir, "/target", &how, sizeof how));
    close(fd);
    fd = CHECK_OK(openat2(dir, "../../target", &how, sizeof how));
    close(fd);

    /* Structure size: smaller than version 0 is EINVAL; larger is accepted only if the
     * extra bytes are zero, else E2BIG. */
    struct {
        struct open_how how;
        unsigned long long extra;
    } big = { .how = { .flags = O_RDONLY } };
    fd = CHECK_OK(openat2(dir, "target", &big.how, sizeof big));
    close(fd);
    big.extra = 1;
    CHECK_ERRNO(openat2(dir, "target", &big.how, sizeof big), E2BIG);
    CHECK_ERRNO(openat2(dir, "target", &how, 16), EINVAL);
    CHECK_ERRNO(openat2(dir, "target", BAD_PTR, sizeof how), EFAULT);

    struct open_how bad = { .flags = O_RDONLY, .resolve = 0x1000 };
    CHECK_ERRNO(openat2(dir, "target", &bad, sizeof bad), EINVAL);
    /* Unlike open, openat2 rejects a mode without O_CREAT and unknown flag bits. */
    struct open_how mode_without_creat = { .flags = O_RDONLY, .mode = 0644 };
    CHECK_ERRNO(openat2(dir, "target", &mode_without_creat, sizeof how), EINVAL);
    struct open_how unknown_flag = { .flags = O_RDONLY | (1ULL << 40) };
    CHECK_ERRNO(openat2(dir, "target", &unknown_flag, sizeof how), EINVAL);
    close(dir);
}

static void test_close_and_close_range(void)
{
    CHECK_ERRNO(close(-1), EBADF);
    CHECK_ERRNO(close(4000), EBADF);
    int fds[4];
    for (int i = 0; i < 4; i++)
        fds[i] = CHECK_OK(open("/dev/null", O_RDONLY));
    CHECK_OK(close(fds[0]));
    CHECK_ERRNO(close(fds[0]), EBADF);
    /* close_range closes what is open in the range and ignores gaps. */
    CHECK_OK(syscall(SYS_close_range, fds[0], fds[2], 0));
    CHECK_ERRNO(fcntl(fds[1], F_GETFD), EBADF);
    CHECK_ERRNO(fcntl(fds[2], F_GETFD), EBADF);
    CHECK_OK(fcntl(fds[3], F_GETFD));
    /* CLOSE_RANGE_CLOEXEC marks instead of closing. */
    CHECK_OK(syscall(SYS_close_range, fds[3], fds[3], CLOSE_RANGE_CLOEXEC));
    CHECK_EQ(fcntl(fds[3], F_GETFD), FD_CLOEXEC);
    CHECK_ERRNO(syscall(SYS_close_range, fds[3], fds[3], 0x80), EINVAL);
    CHECK_ERRNO(syscall(SYS_close_range, 10, 5, 0), EINVAL);
    /* A range far above every open descriptor is fine. */
    CHECK_OK(syscall(SYS_close_range, 100000, ~0U, 0));
    close(fds[3]);
}

static void test_read_write(void)
{
    int fd = CHECK_OK(open(tmp_path("rw"), O_RDWR | O_CREAT | O_TRUNC, 0644));
    CHECK_EQ(write(fd, "0123456789", 10), 10);
    CHECK_EQ(write(fd, "", 0), 0);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 10);
    char buf[32] = { 0 };
    CHECK_EQ(read(fd, buf, sizeof buf), 0); /* at end of file */
    CHECK_OK(lseek(fd, 0, SEEK_SET));
    CHECK_EQ(read(fd, buf, 4), 4);
    CHECK_MEMEQ(buf, "0123", 4);
    CHECK_EQ(read(fd, buf, sizeof buf), 6);
    CHECK_MEMEQ(buf, "456789", 6);

    /* At end of file there is nothing to copy, so Linux never looks at the buffer. */
    CHECK_EQ(syscall(SYS_read, fd, BAD_PTR, 4), 0);
    CHECK_OK(lseek(fd, 0, SEEK_SET));
    CHECK_ERRNO(syscall(SYS_read, fd, BAD_PTR, 4), EFAULT);
    CHECK_ERRNO(syscall(SYS_write, fd, BAD_PTR, 4), EFAULT);
    CHECK_EQ(file_size(fd), 10);
    CHECK_ERRNO(read(-1, buf, 1), EBADF);
    CHECK_ERRNO(write(4000, buf, 1), EBADF);
    close(fd);

    int ro = CHECK_OK(open(tmp_path("rw"), O_RDONLY));
    CHECK_ERRNO(write(ro, "x", 1), EBADF);
    close(ro);
    int wo = CHECK_OK(open(tmp_path("rw"), O_WRONLY));
    CHECK_ERRNO(read(wo, buf, 1), EBADF);
    close(wo);
    int dir = CHECK_OK(open("/tmp", O_RDONLY | O_DIRECTORY));
    CHECK_ERRNO(read(dir, buf, 1), EISDIR);
    close(dir);

    /* O_APPEND: every write lands at the end whatever the offset. */
    int ap = CHECK_OK(open(tmp_path("rw"), O_WRONLY | O_APPEND));
    CHECK_OK(lseek(ap, 0, SEEK_SET));
    CHECK_EQ(write(ap, "AB", 2), 2);
    CHECK_EQ(lseek(ap, 0, SEEK_CUR), 12);
    close(ap);

    /* A larger transfer, crossing pages. */
    static char big[100000], back[100000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)(i * 7);
    int bf = CHECK_OK(open(tmp_path("big"), O_RDWR | O_CREAT | O_TRUNC, 0644));
    CHECK_EQ(write(bf, big, sizeof big), sizeof big);
    CHECK_EQ(pread(bf, back, sizeof back, 0), sizeof back);
    CHECK_MEMEQ(big, back, sizeof big);
    close(bf);
}

static void test_pread_pwrite(void)
{
    int fd = CHECK_OK(open(tmp_path("p"), O_RDWR | O_CREAT | O_TRUNC, 0644));
    CHECK_EQ(pwrite(fd, "abcdef", 6, 0), 6);
    /* pread/pwrite do not move the file offset. */
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 0);
    char buf[8] = { 0 };
    CHECK_EQ(pread(fd, buf, 3, 2), 3);
    CHECK_MEMEQ(buf, "cde", 3);
    CHECK_EQ(pread(fd, buf, 8, 6), 0);
    /* Writing past the end leaves a hole that reads as zeros. */
    CHECK_EQ(pwrite(fd, "Z", 1, 10), 1);
    CHECK_EQ(file_size(fd), 11);
    CHECK_EQ(pread(fd, buf, 8, 4), 7);
    CHECK_MEMEQ(buf, "ef\0\0\0\0Z", 7);
    CHECK_ERRNO(pread(fd, buf, 1, -1), EINVAL);
    CHECK_ERRNO(pwrite(fd, buf, 1, -1), EINVAL);
    CHECK_ERRNO(syscall(SYS_pread64, fd, BAD_PTR, 4, 0), EFAULT);
    CHECK_ERRNO(pread(-1, buf, 1, 0), EBADF);
    close(fd);
}

static void test_vectored(void)
{
    int fd = CHECK_OK(open(tmp_path("v"), O_RDWR | O_CREAT | O_TRUNC, 0644));
    char a[] = "hello ", b[] = "vectored ", c[] = "world";
    struct iovec w[3] = { { a, 6 }, { b, 9 }, { c, 5 } };
    CHECK_EQ(writev(fd, w, 3), 20);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 20);

    char x[4], y[32];
    memset(y, 0, sizeof y);
    struct iovec r[2] = { { x, 4 }, { y, sizeof y } };
    CHECK_OK(lseek(fd, 0, SEEK_SET));
    CHECK_EQ(readv(fd, r, 2), 20);
    CHECK_MEMEQ(x, "hell", 4);
    CHECK_STREQ(y, "o vectored world");
    /* Zero-length segments are skipped. */
    struct iovec z[2] = { { NULL, 0 }, { x, 2 } };
    CHECK_EQ(preadv(fd, z, 2, 6), 2);
    CHECK_MEMEQ(x, "ve", 2);

    /* preadv/pwritev at an offset, file offset untouched. */
    CHECK_OK(lseek(fd, 3, SEEK_SET));
    struct iovec pw[1] = { { "HELLO", 5 } };
    CHECK_EQ(pwritev(fd, pw, 1, 0), 5);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 3);
    CHECK_EQ(preadv(fd, r, 1, 0), 4);
    CHECK_MEMEQ(x, "HELL", 4);

    /* preadv2/pwritev2: offset -1 means "at and advancing the file offset". */
    CHECK_EQ(preadv2(fd, r, 1, -1, 0), 4);
    CHECK_MEMEQ(x, "LO v", 4);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 7);
    CHECK_EQ(pwritev2(fd, pw, 1, -1, 0), 5);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 12);
    CHECK_EQ(preadv2(fd, r, 1, 0, 0), 4);
    /* RWF_APPEND writes at the end. */
    struct iovec tail[1] = { { "!", 1 } };
    CHECK_EQ(pwritev2(fd, tail, 1, 0, RWF_APPEND), 1);
    CHECK_EQ(file_size(fd), 21);
    CHECK_EQ(preadv2(fd, r, 1, 17, 0), 4);
    CHECK_MEMEQ(x, "rld!", 4);
    CHECK_ERRNO(preadv2(fd, r, 1, 0, 0x4000000), EOPNOTSUPP);
    CHECK_ERRNO(pwritev2(fd, pw, 1, 0, 0x4000000), EOPNOTSUPP);

    CHECK_ERRNO(syscall(SYS_readv, fd, r, -1), EINVAL);
    CHECK_ERRNO(syscall(SYS_readv, fd, r, IOV_MAX + 1), EINVAL);
    CHECK_ERRNO(syscall(SYS_writev, fd, w, IOV_MAX + 1), EINVAL);
    CHECK_ERRNO(syscall(SYS_readv, fd, BAD_PTR, 1), EFAULT);
    struct iovec badbuf[1] = { { BAD_PTR, 4 } };
    CHECK_OK(lseek(fd, 0, SEEK_SET));
    CHECK_ERRNO(syscall(SYS_readv, fd, badbuf, 1), EFAULT);
    CHECK_ERRNO(syscall(SYS_writev, fd, badbuf, 1), EFAULT);
    CHECK_ERRNO(preadv(fd, r, 1, -5), EINVAL);
    CHECK_ERRNO(writev(-1, w, 1), EBADF);
    /* A segment length that is negative as an ssize_t is EINVAL. */
    struct iovec huge[1] = { { x, (size_t)-1 } };
    CHECK_ERRNO(readv(fd, huge, 1), EINVAL);
    close(fd);
}

static void test_lseek(void)
{
    int fd = CHECK_OK(open(tmp_path("seek"), O_RDWR | O_CREAT | O_TRUNC, 0644));
    CHECK_EQ(write(fd, "0123456789", 10), 10);
    CHECK_EQ(lseek(fd, 3, SEEK_SET), 3);
    CHECK_EQ(lseek(fd, 2, SEEK_CUR), 5);
    CHECK_EQ(lseek(fd, -1, SEEK_CUR), 4);
    CHECK_EQ(lseek(fd, -2, SEEK_END), 8);
    CHECK_EQ(lseek(fd, 0, SEEK_END), 10);
    char c;
    CHECK_OK(lseek(fd, 7, SEEK_SET));
    CHECK_EQ(read(fd, &c, 1), 1);
    CHECK_EQ(c, '7');
    CHECK_ERRNO(lseek(fd, -1, SEEK_SET), EINVAL);
    CHECK_ERRNO(lseek(fd, -11, SEEK_END), EINVAL);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 8); /* unchanged by the failures */
    CHECK_ERRNO(lseek(fd, 0, 77), EINVAL);
    CHECK_ERRNO(lseek(-1, 0, SEEK_SET), EBADF);
    /* Seeking past the end is allowed; a write there leaves a zero-filled hole. */
    CHECK_EQ(lseek(fd, 100, SEEK_SET), 100);
    CHECK_EQ(file_size(fd), 10);
    CHECK_EQ(write(fd, "x", 1), 1);
    CHECK_EQ(file_size(fd), 101);
    CHECK_EQ(pread(fd, &c, 1, 50), 1);
    CHECK_EQ(c, 0);
    /* SEEK_DATA/SEEK_HOLE: data at 0, a hole (or the end) somewhere after; nothing past
     * the end. Filesystems may report holes coarsely, so only the bounds are checked. */
    CHECK_EQ(lseek(fd, 0, SEEK_DATA), 0);
    off_t hole = lseek(fd, 0, SEEK_HOLE);
    CHECK(hole >= 10 && hole <= 101);
    CHECK_ERRNO(lseek(fd, 200, SEEK_DATA), ENXIO);
    CHECK_ERRNO(lseek(fd, 200, SEEK_HOLE), ENXIO);
    close(fd);
}

static void test_ftruncate(void)
{
    int fd = CHECK_OK(open(tmp_path("trunc"), O_RDWR | O_CREAT | O_TRUNC, 0644));
    CHECK_EQ(write(fd, "abcdef", 6), 6);
    CHECK_OK(ftruncate(fd, 3));
    CHECK_EQ(file_size(fd), 3);
    CHECK_OK(ftruncate(fd, 8));
    char buf[8];
    CHECK_EQ(pread(fd, buf, 8, 0), 8);
    CHECK_MEMEQ(buf, "abc\0\0\0\0\0", 8);
    CHECK_ERRNO(ftruncate(fd, -1), EINVAL);
    CHECK_OK(truncate(tmp_path("trunc"), 1));
    CHECK_EQ(file_size(fd), 1);
    close(fd);
    int ro = CHECK_OK(open(tmp_path("trunc"), O_RDONLY));
    CHECK_ERRNO(ftruncate(ro, 0), EINVAL);
    close(ro);
}

int main(void)
{
    check_tmpdir("file_io");
    test_open();
    test_openat_and_creat();
    test_openat2();
    test_close_and_close_range();
    test_read_write();
    test_pread_pwrite();
    test_vectored();
    test_lseek();
    test_ftruncate();
    return check_done();
}
