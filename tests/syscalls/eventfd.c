/* eventfd within one process: counter and semaphore modes, flags, short buffers,
 * overflow, readiness, fstat. */
#include "check.h"

#include <poll.h>
#include <sys/eventfd.h>

int main(void)
{
    uint64_t v;
    int fd = CHECK_OK(eventfd(5, EFD_NONBLOCK));
    CHECK_EQ(fcntl(fd, F_GETFL) & (O_ACCMODE | O_NONBLOCK), O_RDWR | O_NONBLOCK);
    CHECK_EQ(fcntl(fd, F_GETFD), 0);
    CHECK_EQ(read(fd, &v, 8), 8);
    CHECK_EQ(v, 5);
    CHECK_ERRNO(read(fd, &v, 8), EAGAIN);
    v = 3;
    CHECK_EQ(write(fd, &v, 8), 8);
    v = 4;
    CHECK_EQ(write(fd, &v, 8), 8);
    /* Longer buffers move 8 bytes; shorter ones are EINVAL. */
    char big[16];
    CHECK_EQ(read(fd, big, sizeof big), 8);
    memcpy(&v, big, 8);
    CHECK_EQ(v, 7);
    CHECK_ERRNO(read(fd, big, 4), EINVAL);
    CHECK_ERRNO(write(fd, big, 7), EINVAL);
    CHECK_ERRNO(syscall(SYS_read, fd, BAD_PTR, 8), EAGAIN);
    v = 1;
    CHECK_EQ(write(fd, &v, 8), 8);
    CHECK_ERRNO(syscall(SYS_read, fd, BAD_PTR, 8), EFAULT);
    CHECK_ERRNO(syscall(SYS_write, fd, BAD_PTR, 8), EFAULT);

    /* Writing zero is allowed and changes nothing; UINT64_MAX is never allowed. */
    v = 0;
    CHECK_EQ(write(fd, &v, 8), 8);
    CHECK_ERRNO(read(fd, &v, 8), EAGAIN);
    v = UINT64_MAX;
    CHECK_ERRNO(write(fd, &v, 8), EINVAL);
    /* The counter tops out at UINT64_MAX - 1: more would block. */
    v = UINT64_MAX - 1;
    CHECK_EQ(write(fd, &v, 8), 8);
    v = 1;
    CHECK_ERRNO(write(fd, &v, 8), EAGAIN);
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLOUT};
    CHECK_EQ(poll(&p, 1, 0), 1);
    CHECK_EQ(p.revents, POLLIN);
    CHECK_EQ(read(fd, &v, 8), 8);
    CHECK_EQ(v, UINT64_MAX - 1);
    CHECK_EQ(poll(&p, 1, 0), 1);
    CHECK_EQ(p.revents, POLLOUT);
    close(fd);

    /* Semaphore mode: each read takes one. */
    fd = CHECK_OK(eventfd(2, EFD_SEMAPHORE | EFD_NONBLOCK | EFD_CLOEXEC));
    CHECK_EQ(fcntl(fd, F_GETFD), FD_CLOEXEC);
    CHECK_EQ(read(fd, &v, 8), 8);
    CHECK_EQ(v, 1);
    CHECK_EQ(read(fd, &v, 8), 8);
    CHECK_EQ(v, 1);
    CHECK_ERRNO(read(fd, &v, 8), EAGAIN);
    close(fd);

    /* A blocking eventfd with a count does not block. */
    fd = CHECK_OK(eventfd(1, 0));
    CHECK_EQ(read(fd, &v, 8), 8);
    CHECK_EQ(v, 1);
    struct stat st;
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_mode & S_IFMT, 0);
    CHECK_EQ(lseek(fd, 0, SEEK_SET), 0); /* noop_llseek */
    close(fd);

    CHECK_ERRNO(eventfd(0, 0x8000000), EINVAL);
    CHECK_ERRNO(eventfd(0, O_APPEND), EINVAL);
    /* The old eventfd syscall takes no flags. */
    fd = CHECK_OK(syscall(SYS_eventfd, 9));
    CHECK_EQ(read(fd, &v, 8), 8);
    CHECK_EQ(v, 9);
    close(fd);
    return check_done();
}
