/* The device files every sandbox provides: /dev/null, /dev/zero, /dev/full, /dev/random,
 * /dev/urandom; their device numbers; ioctl(TCGETS) on things that are not terminals. */
#include "check.h"

#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>
#include <termios.h>

static void check_chardev(const char *path, unsigned maj, unsigned min)
{
    struct stat st;
    CHECK_OK(stat(path, &st));
    CHECK(S_ISCHR(st.st_mode));
    CHECK_EQ(major(st.st_rdev), maj);
    CHECK_EQ(minor(st.st_rdev), min);
    /* Everyone may read and write these. */
    CHECK_EQ(st.st_mode & 0666, 0666);
}

static int all_zero(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

static void test_null(void)
{
    int fd = CHECK_OK(open("/dev/null", O_RDWR));
    char buf[16] = "unchanged";
    CHECK_EQ(read(fd, buf, sizeof buf), 0);
    CHECK_STREQ(buf, "unchanged");
    CHECK_EQ(write(fd, "discard", 7), 7);
    /* /dev/null never touches the buffer, so even a bad pointer "works". */
    CHECK_EQ(syscall(SYS_write, fd, BAD_PTR, 7), 7);
    CHECK_EQ(lseek(fd, 100, SEEK_SET), 0);
    CHECK_ERRNO(ioctl(fd, TCGETS, &(struct termios){ 0 }), ENOTTY);
    close(fd);
}

static void test_zero(void)
{
    int fd = CHECK_OK(open("/dev/zero", O_RDWR));
    char buf[5000];
    memset(buf, 'x', sizeof buf);
    CHECK_EQ(read(fd, buf, sizeof buf), sizeof buf);
    CHECK(all_zero(buf, sizeof buf));
    CHECK_EQ(write(fd, "x", 1), 1);
    CHECK_ERRNO(syscall(SYS_read, fd, BAD_PTR, 8), EFAULT);
    /* A private mapping of /dev/zero is zeroed anonymous memory. */
    char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    CHECK(m != MAP_FAILED);
    CHECK(all_zero(m, 8192));
    m[5] = 1;
    CHECK_EQ(m[5], 1);
    munmap(m, 8192);
    close(fd);
}

static void test_full(void)
{
    int fd = CHECK_OK(open("/dev/full", O_RDWR));
    CHECK_ERRNO(write(fd, "x", 1), ENOSPC);
    char buf[64];
    memset(buf, 'x', sizeof buf);
    CHECK_EQ(read(fd, buf, sizeof buf), sizeof buf);
    CHECK(all_zero(buf, sizeof buf));
    close(fd);
}

static void test_random(const char *path)
{
    int fd = CHECK_OK(open(path, O_RDONLY));
    unsigned char a[64], b[64];
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    CHECK_EQ(read(fd, a, sizeof a), sizeof a);
    CHECK_EQ(read(fd, b, sizeof b), sizeof b);
    CHECK(!all_zero((char *)a, sizeof a));
    CHECK(memcmp(a, b, sizeof a) != 0);
    static char big[1 << 16];
    CHECK_EQ(read(fd, big, sizeof big), sizeof big);
    close(fd);
    /* Writing adds entropy (or is ignored); it is allowed for everyone. */
    int w = CHECK_OK(open(path, O_WRONLY));
    CHECK_EQ(write(w, "seed", 4), 4);
    close(w);
}

static void test_not_a_tty(void)
{
    struct termios t;
    int fd = CHECK_OK(open(tmp_path("plain"), O_RDWR | O_CREAT, 0644));
    CHECK_ERRNO(ioctl(fd, TCGETS, &t), ENOTTY);
    int dir = CHECK_OK(open("/tmp", O_RDONLY | O_DIRECTORY));
    CHECK_ERRNO(ioctl(dir, TCGETS, &t), ENOTTY);
    CHECK_ERRNO(ioctl(4000, TCGETS, &t), EBADF);
    /* isatty is TCGETS underneath. */
    CHECK(!isatty(fd));
    close(fd);
    close(dir);
}

int main(void)
{
    check_tmpdir("dev");
    check_chardev("/dev/null", 1, 3);
    check_chardev("/dev/zero", 1, 5);
    check_chardev("/dev/full", 1, 7);
    check_chardev("/dev/random", 1, 8);
    check_chardev("/dev/urandom", 1, 9);
    test_null();
    test_zero();
    test_full();
    test_random("/dev/urandom");
    test_random("/dev/random");
    test_not_a_tty();
    return check_done();
}
