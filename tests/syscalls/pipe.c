/* Pipes within one process: pipe/pipe2 flags and errors, data order, capacity,
 * PIPE_BUF atomicity, packet mode (O_DIRECT), EOF and EPIPE, F_GETPIPE_SZ/F_SETPIPE_SZ,
 * FIONREAD, fstat, and ESPIPE for positioned I/O. */
#include "check.h"

#include <signal.h>
#include <sys/ioctl.h>
#include <sys/uio.h>

static void test_create(void)
{
    int p[2];
    CHECK_OK(pipe(p));
    CHECK(p[0] >= 0 && p[1] >= 0 && p[0] != p[1]);
    CHECK_EQ(fcntl(p[0], F_GETFL) & O_ACCMODE, O_RDONLY);
    CHECK_EQ(fcntl(p[1], F_GETFL) & O_ACCMODE, O_WRONLY);
    CHECK_EQ(fcntl(p[0], F_GETFD), 0);
    close(p[0]);
    close(p[1]);

    CHECK_OK(pipe2(p, O_CLOEXEC | O_NONBLOCK));
    CHECK_EQ(fcntl(p[0], F_GETFD), FD_CLOEXEC);
    CHECK_EQ(fcntl(p[1], F_GETFD), FD_CLOEXEC);
    CHECK(fcntl(p[0], F_GETFL) & O_NONBLOCK);
    CHECK(fcntl(p[1], F_GETFL) & O_NONBLOCK);
    close(p[0]);
    close(p[1]);

    CHECK_ERRNO(pipe2(p, O_APPEND), EINVAL);
    CHECK_ERRNO(pipe2(p, 0x40000000), EINVAL);
    CHECK_ERRNO(syscall(SYS_pipe, BAD_PTR), EFAULT);
    CHECK_ERRNO(syscall(SYS_pipe2, BAD_PTR, 0), EFAULT);
    /* A failed pipe2 leaves no descriptors behind: the next fd is the lowest free. */
    int probe = CHECK_OK(dup(0));
    CHECK_OK(pipe(p));
    CHECK_EQ(p[0], probe + 1);
    close(probe);
    close(p[0]);
    close(p[1]);
}

static void test_data(void)
{
    int p[2];
    char buf[64];
    CHECK_OK(pipe2(p, O_NONBLOCK));
    CHECK_EQ(write(p[1], "hello ", 6), 6);
    CHECK_EQ(write(p[1], "world", 5), 5);
    int avail = -1;
    CHECK_OK(ioctl(p[0], FIONREAD, &avail));
    CHECK_EQ(avail, 11);
    CHECK_EQ(read(p[0], buf, 3), 3);
    CHECK_MEMEQ(buf, "hel", 3);
    CHECK_EQ(read(p[0], buf, sizeof buf), 8);
    CHECK_MEMEQ(buf, "lo world", 8);
    CHECK_ERRNO(read(p[0], buf, sizeof buf), EAGAIN);
    CHECK_EQ(read(p[0], buf, 0), 0);
    /* Wrong direction. */
    CHECK_ERRNO(write(p[0], "x", 1), EBADF);
    CHECK_ERRNO(read(p[1], buf, 1), EBADF);
    /* Positioned I/O and seeking make no sense on a pipe. */
    CHECK_ERRNO(pread(p[0], buf, 1, 0), ESPIPE);
    CHECK_ERRNO(pwrite(p[1], "x", 1, 0), ESPIPE);
    CHECK_ERRNO(lseek(p[0], 0, SEEK_CUR), ESPIPE);
    /* A bad buffer is EFAULT, and the data stays. */
    CHECK_EQ(write(p[1], "abc", 3), 3);
    CHECK_ERRNO(syscall(SYS_write, p[1], BAD_PTR, 3), EFAULT);
    CHECK_EQ(read(p[0], buf, sizeof buf), 3);
    /* readv across buffers, writev gathers. */
    struct iovec wv[2] = {{"ab", 2}, {"cde", 3}};
    CHECK_EQ(writev(p[1], wv, 2), 5);
    char a[2], b[8];
    struct iovec rv[2] = {{a, 2}, {b, 8}};
    CHECK_EQ(readv(p[0], rv, 2), 5);
    CHECK_MEMEQ(a, "ab", 2);
    CHECK_MEMEQ(b, "cde", 3);
    close(p[0]);
    close(p[1]);
}

static void test_eof_and_epipe(void)
{
    int p[2];
    char buf[8];
    CHECK_OK(pipe(p));
    CHECK_EQ(write(p[1], "z", 1), 1);
    close(p[1]);
    /* Data first, then end of file: a blocking read with no writer does not block. */
    CHECK_EQ(read(p[0], buf, sizeof buf), 1);
    CHECK_EQ(read(p[0], buf, sizeof buf), 0);
    close(p[0]);

    signal(SIGPIPE, SIG_IGN);
    CHECK_OK(pipe(p));
    close(p[0]);
    CHECK_ERRNO(write(p[1], "x", 1), EPIPE);
    close(p[1]);
}

static void test_capacity(void)
{
    int p[2];
    static char big[1 << 17];
    memset(big, 'q', sizeof big);
    CHECK_OK(pipe2(p, O_NONBLOCK));
    CHECK_EQ(fcntl(p[0], F_GETPIPE_SZ), 65536);
    CHECK_EQ(fcntl(p[1], F_GETPIPE_SZ), 65536);
    /* A large write into a non-blocking pipe is partial... */
    CHECK_EQ(write(p[1], big, sizeof big), 65536);
    /* ...and once full, even one byte would block. */
    CHECK_ERRNO(write(p[1], "x", 1), EAGAIN);
    int avail = 0;
    CHECK_OK(ioctl(p[0], FIONREAD, &avail));
    CHECK_EQ(avail, 65536);
    /* PIPE_BUF atomicity: with 100 bytes free, a 4096-byte write is refused whole. */
    CHECK_EQ(read(p[0], big, 100), 100);
    CHECK_ERRNO(write(p[1], big, 4096), EAGAIN);
    /* Freeing a page lets it in. */
    CHECK_EQ(read(p[0], big, 8192), 8192);
    CHECK_EQ(write(p[1], big, 4096), 4096);
    /* Merging: 65536 one-byte writes fit in a fresh pipe. */
    close(p[0]);
    close(p[1]);
    CHECK_OK(pipe2(p, O_NONBLOCK));
    int ok = 1;
    for (int i = 0; i < 65536; i++)
        ok &= write(p[1], "m", 1) == 1;
    CHECK(ok);
    CHECK_ERRNO(write(p[1], "m", 1), EAGAIN);

    /* Resizing: rounded up to a power of two pages; not below the data. */
    CHECK_ERRNO(fcntl(p[1], F_SETPIPE_SZ, 4096), EBUSY);
    CHECK_EQ(fcntl(p[1], F_SETPIPE_SZ, 100000), 131072);
    CHECK_EQ(fcntl(p[0], F_GETPIPE_SZ), 131072);
    CHECK_EQ(write(p[1], "m", 1), 1);
    close(p[0]);
    close(p[1]);
    CHECK_OK(pipe(p));
    CHECK_EQ(fcntl(p[0], F_SETPIPE_SZ, 1), 4096);
    CHECK_EQ(fcntl(p[0], F_SETPIPE_SZ, 3 * 4096), 4 * 4096);
    CHECK_EQ(fcntl(p[0], F_SETPIPE_SZ, 1 << 20), 1 << 20);
    /* Above pipe-max-size only with CAP_SYS_RESOURCE, which a container root may lack. */
    int r = fcntl(p[0], F_SETPIPE_SZ, 2 << 20);
    CHECK(r == (2 << 20) || (r == -1 && errno == EPERM));
    CHECK_ERRNO(fcntl(p[0], F_SETPIPE_SZ, 0x80000001u), EINVAL);
    close(p[0]);
    close(p[1]);
    /* Only pipes have a pipe size. */
    int fd = CHECK_OK(open("/dev/null", O_RDONLY));
    CHECK_ERRNO(fcntl(fd, F_GETPIPE_SZ), EBADF);
    CHECK_ERRNO(fcntl(fd, F_SETPIPE_SZ, 4096), EBADF);
    close(fd);
}

static void test_packet_mode(void)
{
    int p[2];
    char buf[16];
    CHECK_OK(pipe2(p, O_DIRECT | O_NONBLOCK));
    CHECK(fcntl(p[1], F_GETFL) & O_DIRECT);
    CHECK_EQ(write(p[1], "abc", 3), 3);
    CHECK_EQ(write(p[1], "defg", 4), 4);
    /* One packet per read; a short read drops the rest of the packet. */
    CHECK_EQ(read(p[0], buf, sizeof buf), 3);
    CHECK_MEMEQ(buf, "abc", 3);
    CHECK_EQ(read(p[0], buf, 2), 2);
    CHECK_MEMEQ(buf, "de", 2);
    CHECK_ERRNO(read(p[0], buf, sizeof buf), EAGAIN);
    /* Sixteen packets fill the pipe, however small. */
    int ok = 1;
    for (int i = 0; i < 16; i++)
        ok &= write(p[1], "p", 1) == 1;
    CHECK(ok);
    CHECK_ERRNO(write(p[1], "p", 1), EAGAIN);
    close(p[0]);
    close(p[1]);
}

static void test_stat(void)
{
    int p[2];
    struct stat a, b;
    CHECK_OK(pipe(p));
    CHECK_OK(fstat(p[0], &a));
    CHECK_OK(fstat(p[1], &b));
    CHECK(S_ISFIFO(a.st_mode));
    CHECK_EQ(a.st_mode & 0777, 0600);
    CHECK_EQ(a.st_ino, b.st_ino);
    CHECK_EQ(a.st_dev, b.st_dev);
    CHECK_EQ(a.st_nlink, 1);
    CHECK_EQ(a.st_uid, geteuid());
    int q[2];
    CHECK_OK(pipe(q));
    struct stat c;
    CHECK_OK(fstat(q[0], &c));
    CHECK(c.st_ino != a.st_ino);
    CHECK_EQ(c.st_dev, a.st_dev);
    close(p[0]);
    close(p[1]);
    close(q[0]);
    close(q[1]);
}

static void test_blocking_ok_when_ready(void)
{
    /* Blocking descriptors must not block when they can proceed. */
    int p[2];
    char buf[8];
    CHECK_OK(pipe(p));
    CHECK_EQ(write(p[1], "ready", 5), 5);
    CHECK_EQ(read(p[0], buf, sizeof buf), 5);
    /* Switching to non-blocking with F_SETFL takes effect. */
    CHECK_OK(fcntl(p[0], F_SETFL, O_NONBLOCK));
    CHECK_ERRNO(read(p[0], buf, sizeof buf), EAGAIN);
    int on = 0;
    CHECK_OK(ioctl(p[0], FIONBIO, &on));
    CHECK_EQ(fcntl(p[0], F_GETFL) & O_NONBLOCK, 0);
    close(p[0]);
    close(p[1]);
}

int main(void)
{
    test_create();
    test_data();
    test_eof_and_epipe();
    test_capacity();
    test_packet_mode();
    test_stat();
    test_blocking_ok_when_ready();
    return check_done();
}
