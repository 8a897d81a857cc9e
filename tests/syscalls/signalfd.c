/* signalfd: blocked signals read as data, with poll readiness. */
#include "check.h"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/wait.h>

int main(void)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    sigaddset(&s, SIGUSR2);
    CHECK_OK(sigprocmask(SIG_BLOCK, &s, NULL));
    int fd = CHECK_OK(signalfd(-1, &s, SFD_NONBLOCK | SFD_CLOEXEC));
    struct signalfd_siginfo si[2];
    CHECK_ERRNO(read(fd, si, sizeof si), EAGAIN);
    CHECK_ERRNO(read(fd, si, 8), EINVAL);
    struct pollfd p = { fd, POLLIN, 0 };
    CHECK_EQ(poll(&p, 1, 0), 0);

    CHECK_OK(kill(getpid(), SIGUSR1));
    CHECK_OK(raise(SIGUSR2));
    CHECK_EQ(poll(&p, 1, 1000), 1);
    CHECK(p.revents & POLLIN);
    CHECK_EQ(read(fd, si, sizeof si), 2 * (ssize_t)sizeof si[0]);
    /* Linux takes the thread's own signals (raise) before the process's (kill). */
    CHECK_EQ(si[0].ssi_signo, SIGUSR2);
    CHECK_EQ(si[0].ssi_code, SI_TKILL);
    CHECK_EQ(si[1].ssi_signo, SIGUSR1);
    CHECK_EQ(si[1].ssi_code, SI_USER);
    CHECK_EQ((pid_t)si[1].ssi_pid, getpid());
    CHECK_ERRNO(read(fd, si, sizeof si), EAGAIN);

    /* sigqueue's value arrives in ssi_int. */
    union sigval v = { .sival_int = 4242 };
    CHECK_OK(sigqueue(getpid(), SIGUSR1, v));
    CHECK_EQ(read(fd, si, sizeof si[0]), (ssize_t)sizeof si[0]);
    CHECK_EQ(si[0].ssi_code, SI_QUEUE);
    CHECK_EQ(si[0].ssi_int, 4242);

    /* A child's exit: SIGCHLD with its pid and exit status (ssi_status). */
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    CHECK_OK(sigprocmask(SIG_BLOCK, &chld, NULL));
    int cfd = CHECK_OK(signalfd(-1, &chld, 0));
    fflush(stdout);
    pid_t child = fork();
    if (child == 0)
        _exit(42);
    CHECK_EQ(read(cfd, si, sizeof si[0]), (ssize_t)sizeof si[0]);
    CHECK_EQ(si[0].ssi_signo, SIGCHLD);
    CHECK_EQ(si[0].ssi_code, CLD_EXITED);
    CHECK_EQ((pid_t)si[0].ssi_pid, child);
    CHECK_EQ(si[0].ssi_status, 42);
    CHECK_EQ(waitpid(child, NULL, 0), child);
    close(cfd);

    /* A new mask through the same fd: SIGUSR2 no longer reported. */
    sigset_t only1;
    sigemptyset(&only1);
    sigaddset(&only1, SIGUSR1);
    CHECK_EQ(signalfd(fd, &only1, 0), fd);
    CHECK_OK(raise(SIGUSR2));
    CHECK_ERRNO(read(fd, si, sizeof si), EAGAIN);
    sigset_t pend;
    CHECK_OK(sigpending(&pend));
    CHECK(sigismember(&pend, SIGUSR2));
    CHECK_ERRNO(signalfd(-1, &s, 0x1234), EINVAL);
    CHECK_ERRNO(signalfd(0, &s, 0), EINVAL);
    close(fd);
    return check_done();
}
