/* The descriptor table: dup/dup2/dup3, fcntl (F_DUPFD, F_DUPFD_CLOEXEC, F_GETFD/F_SETFD,
 * F_GETFL/F_SETFL), O_CLOEXEC, and what duplicated descriptors share. */
#include "check.h"

#include <sys/resource.h>

static int open_tmp(const char *leaf, int flags)
{
    return open(tmp_path(leaf), flags | O_CREAT, 0644);
}

static void test_dup(void)
{
    int fd = CHECK_OK(open_tmp("dup", O_RDWR | O_TRUNC));
    CHECK_EQ(write(fd, "0123456789", 10), 10);
    int d = CHECK_OK(dup(fd));
    CHECK(d != fd);
    /* Duplicates share the open file description: one offset for both. */
    CHECK_OK(lseek(fd, 3, SEEK_SET));
    CHECK_EQ(lseek(d, 0, SEEK_CUR), 3);
    char c;
    CHECK_EQ(read(d, &c, 1), 1);
    CHECK_EQ(c, '3');
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 4);
    /* ...and survive each other's close. */
    CHECK_OK(close(fd));
    CHECK_EQ(read(d, &c, 1), 1);
    CHECK_EQ(c, '4');
    /* dup picks the lowest free number: the one just closed. */
    CHECK_EQ(dup(d), fd);
    close(fd);
    close(d);
    CHECK_ERRNO(dup(-1), EBADF);
    CHECK_ERRNO(dup(4000), EBADF);
}

static void test_dup2_dup3(void)
{
    int a = CHECK_OK(open_tmp("a", O_RDWR | O_TRUNC));
    int b = CHECK_OK(open_tmp("b", O_RDWR | O_TRUNC));
    CHECK_EQ(write(a, "A", 1), 1);
    /* dup2 onto an open descriptor closes it first, silently. */
    CHECK_EQ(dup2(a, b), b);
    CHECK_EQ(lseek(b, 0, SEEK_CUR), 1);
    struct stat sa, sb;
    CHECK_OK(fstat(a, &sa));
    CHECK_OK(fstat(b, &sb));
    CHECK_EQ(sb.st_ino, sa.st_ino);
    /* dup2 to itself is a no-op that returns the fd; dup3 calls that EINVAL. */
    CHECK_EQ(dup2(a, a), a);
    CHECK_ERRNO(dup3(a, a, 0), EINVAL);
    /* dup2 to a high number. */
    CHECK_EQ(dup2(a, 200), 200);
    CHECK_OK(fcntl(200, F_GETFD));
    close(200);
    CHECK_ERRNO(dup2(4000, b), EBADF);
    CHECK_ERRNO(dup2(a, -1), EBADF);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    CHECK_ERRNO(dup2(a, (int)rl.rlim_cur), EBADF);

    /* dup3 takes only O_CLOEXEC; the new fd gets FD_CLOEXEC, the old keeps its flags. */
    CHECK_EQ(dup3(a, b, O_CLOEXEC), b);
    CHECK_EQ(fcntl(b, F_GETFD), FD_CLOEXEC);
    CHECK_EQ(fcntl(a, F_GETFD), 0);
    CHECK_EQ(dup3(a, b, 0), b);
    CHECK_EQ(fcntl(b, F_GETFD), 0);
    CHECK_ERRNO(dup3(a, b, O_APPEND), EINVAL);
    CHECK_ERRNO(dup3(4000, b, 0), EBADF);
    close(a);
    close(b);
}

static void test_fcntl_dupfd(void)
{
    int fd = CHECK_OK(open_tmp("f", O_RDWR));
    int d = CHECK_OK(fcntl(fd, F_DUPFD, 100));
    CHECK_EQ(d, 100);
    int d2 = CHECK_OK(fcntl(fd, F_DUPFD, 100));
    CHECK_EQ(d2, 101); /* the lowest free one at or above the minimum */
    CHECK_EQ(fcntl(d, F_GETFD), 0);
    int dc = CHECK_OK(fcntl(fd, F_DUPFD_CLOEXEC, 50));
    CHECK(dc >= 50 && dc < 100);
    CHECK_EQ(fcntl(dc, F_GETFD), FD_CLOEXEC);
    /* The close-on-exec flag belongs to the descriptor, not the file description. */
    CHECK_EQ(fcntl(fd, F_GETFD), 0);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    CHECK_ERRNO(fcntl(fd, F_DUPFD, (int)rl.rlim_cur), EINVAL);
    CHECK_ERRNO(fcntl(fd, F_DUPFD, -1), EINVAL);
    close(d);
    close(d2);
    close(dc);
    close(fd);
}

static void test_fcntl_flags(void)
{
    int fd = CHECK_OK(open_tmp("fl", O_RDWR));
    CHECK_EQ(fcntl(fd, F_GETFD), 0);
    CHECK_OK(fcntl(fd, F_SETFD, FD_CLOEXEC));
    CHECK_EQ(fcntl(fd, F_GETFD), FD_CLOEXEC);
    CHECK_OK(fcntl(fd, F_SETFD, 0));
    CHECK_EQ(fcntl(fd, F_GETFD), 0);

    int fl = CHECK_OK(fcntl(fd, F_GETFL));
    CHECK_EQ(fl & O_ACCMODE, O_RDWR);
    CHECK_EQ(fl & (O_APPEND | O_NONBLOCK), 0);
    CHECK_OK(fcntl(fd, F_SETFL, fl | O_APPEND | O_NONBLOCK));
    fl = CHECK_OK(fcntl(fd, F_GETFL));
    CHECK_EQ(fl & (O_APPEND | O_NONBLOCK), O_APPEND | O_NONBLOCK);
    /* Status flags live in the file description, so a duplicate sees them. */
    int d = CHECK_OK(dup(fd));
    CHECK_EQ(fcntl(d, F_GETFL) & O_APPEND, O_APPEND);
    /* O_APPEND set through F_SETFL takes effect on the next write. */
    CHECK_EQ(write(fd, "12", 2), 2);
    CHECK_OK(lseek(fd, 0, SEEK_SET));
    CHECK_EQ(write(fd, "3", 1), 1);
    char buf[4] = { 0 };
    CHECK_EQ(pread(fd, buf, 3, 0), 3);
    CHECK_STREQ(buf, "123");
    /* F_SETFL cannot change the access mode or creation flags. */
    CHECK_OK(fcntl(fd, F_SETFL, O_RDONLY));
    CHECK_EQ(fcntl(fd, F_GETFL) & (O_ACCMODE | O_APPEND), O_RDWR);
    close(d);
    CHECK_ERRNO(fcntl(fd, 9999), EINVAL);
    CHECK_ERRNO(fcntl(4000, F_GETFD), EBADF);
    CHECK_ERRNO(fcntl(-1, F_GETFL), EBADF);
    close(fd);

    /* Flags given to open show in F_GETFL and F_GETFD. */
    int ro = CHECK_OK(open(tmp_path("fl"), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    CHECK_EQ(fcntl(ro, F_GETFD), FD_CLOEXEC);
    CHECK_EQ(fcntl(ro, F_GETFL) & (O_ACCMODE | O_NONBLOCK), O_RDONLY | O_NONBLOCK);
    close(ro);
    int wo = CHECK_OK(open(tmp_path("fl"), O_WRONLY | O_APPEND));
    CHECK_EQ(fcntl(wo, F_GETFL) & (O_ACCMODE | O_APPEND), O_WRONLY | O_APPEND);
    close(wo);
    int path = CHECK_OK(open(tmp_path("fl"), O_PATH));
    CHECK_EQ(fcntl(path, F_GETFL) & O_PATH, O_PATH);
    char c;
    CHECK_ERRNO(read(path, &c, 1), EBADF);
    close(path);
}

static void test_many_fds(void)
{
    /* Fill a run of descriptors and release them. Each open takes the lowest free
     * number, so they rise (not necessarily by one: a native parent may have leaked
     * descriptors into us), and the first one is free again after the closes. */
    int fds[64];
    for (int i = 0; i < 64; i++)
        fds[i] = open("/dev/null", O_RDONLY);
    int rising = 1;
    for (int i = 1; i < 64; i++)
        rising &= fds[i] > fds[i - 1];
    CHECK(fds[0] >= 3);
    CHECK(rising);
    for (int i = 0; i < 64; i++)
        close(fds[i]);
    CHECK_ERRNO(fcntl(fds[63], F_GETFD), EBADF);
    int again = CHECK_OK(open("/dev/null", O_RDONLY));
    CHECK_EQ(again, fds[0]);
    close(again);
}

int main(void)
{
    check_tmpdir("fd");
    /* stdio is open, and standard streams are not close-on-exec. */
    CHECK_OK(fcntl(0, F_GETFD));
    CHECK_OK(fcntl(1, F_GETFD));
    CHECK_OK(fcntl(2, F_GETFD));
    test_dup();
    test_dup2_dup3();
    test_fcntl_dupfd();
    test_fcntl_flags();
    test_many_fds();
    return check_done();
}
