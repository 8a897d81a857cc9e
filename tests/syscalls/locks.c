/* flock and POSIX/OFD record locks between processes. */
#define _GNU_SOURCE
#include "child.h"

#include <sys/file.h>

static int setlk(int fd, int cmd, short type, off_t start, off_t len)
{
    struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };
    return fcntl(fd, cmd, &fl);
}

int main(void)
{
    check_tmpdir("locks");
    const char *f = tmp_path("file");
    CHECK_OK(write_file(f, "0123456789", 10));
    int a = CHECK_OK(open(f, O_RDWR));
    int b = CHECK_OK(open(f, O_RDWR));

    /* flock belongs to the open file description. */
    CHECK_OK(flock(a, LOCK_EX));
    CHECK_ERRNO(flock(b, LOCK_SH | LOCK_NB), EWOULDBLOCK);
    CHECK_OK(flock(a, LOCK_SH)); /* conversion */
    CHECK_OK(flock(b, LOCK_SH | LOCK_NB));
    CHECK_ERRNO(flock(b, LOCK_EX | LOCK_NB), EWOULDBLOCK);
    CHECK_OK(flock(a, LOCK_UN));
    CHECK_OK(flock(b, LOCK_EX | LOCK_NB));
    close(b); /* closing the last fd of a description releases its flock */
    CHECK_OK(flock(a, LOCK_EX | LOCK_NB));
    CHECK_OK(flock(a, LOCK_UN));
    CHECK_ERRNO(flock(a, LOCK_SH | LOCK_EX), EINVAL);

    /* POSIX locks: per process; a child sees the parent's lock through F_GETLK. */
    CHECK_OK(setlk(a, F_SETLK, F_WRLCK, 2, 3));
    /* Blocked before the fork: the child's SIGUSR1 may come before we reach sigwait. */
    sigset_t u;
    sigemptyset(&u);
    sigaddset(&u, SIGUSR1);
    sigprocmask(SIG_BLOCK, &u, NULL);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(f, O_RDWR);
        struct flock q = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
        int ok = fcntl(fd, F_GETLK, &q) == 0 && q.l_type == F_WRLCK && q.l_start == 2 &&
                 q.l_len == 3 && q.l_pid == getppid();
        ok &= setlk(fd, F_SETLK, F_RDLCK, 4, 1) == -1 && (errno == EAGAIN || errno == EACCES);
        ok &= setlk(fd, F_SETLK, F_WRLCK, 5, 5) == 0; /* no overlap */
        /* F_SETLKW waits until the parent unlocks (it does after a signal from us). */
        kill(getppid(), SIGUSR1);
        ok &= setlk(fd, F_SETLKW, F_WRLCK, 0, 5) == 0;
        _exit(ok ? 0 : 1);
    }
    int sig;
    CHECK_EQ(sigwait(&u, &sig), 0);
    usleep(50000);
    CHECK_OK(setlk(a, F_SETLK, F_UNLCK, 0, 0));
    int st;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    CHECK_EXITED(st, 0);

    /* Our own locks never conflict; unlocking the middle splits a lock. */
    CHECK_OK(setlk(a, F_SETLK, F_WRLCK, 0, 10));
    CHECK_OK(setlk(a, F_SETLK, F_RDLCK, 3, 2));
    CHECK_OK(setlk(a, F_SETLK, F_UNLCK, 4, 1));
    /* A read lock through a write-only descriptor is EBADF. */
    int w = CHECK_OK(open(f, O_WRONLY));
    CHECK_ERRNO(setlk(w, F_SETLK, F_RDLCK, 0, 1), EBADF);
    CHECK_ERRNO(setlk(a, F_SETLK, 99, 0, 1), EINVAL);
    CHECK_ERRNO(setlk(a, F_SETLK, F_WRLCK, -5, 1), EINVAL);
    /* Closing any descriptor of the file drops all of this process's POSIX locks. */
    close(w);
    struct flock q = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    int c = CHECK_OK(open(f, O_RDWR));
    CHECK_OK(fcntl(c, F_OFD_GETLK, &q));
    CHECK_EQ(q.l_type, F_UNLCK);

    /* OFD locks belong to the description: two descriptions conflict in one process. */
    struct flock o = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
    CHECK_OK(fcntl(a, F_OFD_SETLK, &o));
    CHECK_ERRNO(fcntl(c, F_OFD_SETLK, &o), EAGAIN);
    o.l_pid = 1;
    CHECK_ERRNO(fcntl(c, F_OFD_SETLK, &o), EINVAL);
    close(a);
    o.l_pid = 0;
    CHECK_OK(fcntl(c, F_OFD_SETLK, &o));
    close(c);
    return check_done();
}
