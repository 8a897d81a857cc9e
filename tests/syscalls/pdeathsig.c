/* PR_SET_PDEATHSIG: a process asks for a signal when its parent dies. Set and read back,
 * not inherited over fork, and delivered: a grandchild with SIGTERM as its parent-death
 * signal dies of it when its parent exits (it then comes back to us, a subreaper). */
#include "child.h"

#include <sys/prctl.h>

static void test_get_set(void)
{
    int sig = -1;
    CHECK_OK(prctl(PR_GET_PDEATHSIG, &sig));
    CHECK_EQ(sig, 0);
    CHECK_OK(prctl(PR_SET_PDEATHSIG, SIGUSR2));
    CHECK_OK(prctl(PR_GET_PDEATHSIG, &sig));
    CHECK_EQ(sig, SIGUSR2);
    CHECK_ERRNO(prctl(PR_SET_PDEATHSIG, 65), EINVAL);
    CHECK_ERRNO(prctl(PR_GET_PDEATHSIG, BAD_PTR), EFAULT);
    /* A child starts without one. */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int s = -1;
        _exit(prctl(PR_GET_PDEATHSIG, &s) == 0 && s == 0 ? 0 : 1);
    }
    CHECK_EXITED(wait_status(pid, 0), 0);
    CHECK_OK(prctl(PR_SET_PDEATHSIG, 0));
}

static void test_delivery(void)
{
    CHECK_OK(prctl(PR_SET_CHILD_SUBREAPER, 1));
    fflush(stdout);
    pid_t middle = fork();
    if (middle == 0) {
        sigset_t u1, old;
        sigemptyset(&u1);
        sigaddset(&u1, SIGUSR1);
        sigprocmask(SIG_BLOCK, &u1, &old);
        pid_t child = fork();
        if (child == 0) {
            sigprocmask(SIG_SETMASK, &old, NULL);
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            kill(getppid(), SIGUSR1);
            /* Wait (at most 10 s) to be killed. */
            sleep_ms(10000);
            _exit(9);
        }
        struct timespec t = { 5, 0 };
        siginfo_t si;
        _exit(sigtimedwait(&u1, &si, &t) == SIGUSR1 ? 0 : 1);
    }
    CHECK_EXITED(wait_status(middle, 0), 0);
    int st = -1;
    pid_t r = waitpid(-1, &st, 0);
    CHECK(r > 0);
    CHECK_KILLED(st, SIGTERM);
}

int main(void)
{
    test_get_set();
    test_delivery();
    return check_done();
}
