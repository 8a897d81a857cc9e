/* Fork under load: thousands of fork/exit/wait rounds, many children at once, vfork
 * rounds, and fork/wait while another process keeps signalling us (SA_RESTART handlers
 * must make wait4 carry on; without it every EINTR is retried), with no hang, no lost
 * child, no wrong status. Iteration counts stay modest: a fork costs about 1 ms on the
 * ptrace platform. The time taken is printed, never checked (speed is for bench/); a hang
 * is caught by the harness's timeout. */
#include "child.h"

#define ROUNDS 1000
#define WIDE 50
#define NOISY_ROUNDS 300

static void test_fork_rounds(void)
{
    int bad = 0;
    for (int i = 0; i < ROUNDS; i++) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(i & 0xff);
        int st = -1;
        if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
            WEXITSTATUS(st) != (i & 0xff))
            bad++;
    }
    CHECK_EQ(bad, 0);
    CHECK_ERRNO(waitpid(-1, NULL, WNOHANG), ECHILD);
}

static void test_wide(void)
{
    pid_t pids[WIDE];
    for (int i = 0; i < WIDE; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            sleep_ms(i % 5);
            _exit(i);
        }
    }
    int seen[WIDE] = { 0 }, bad = 0;
    for (int n = 0; n < WIDE; n++) {
        int st = -1;
        pid_t r = waitpid(-1, &st, 0);
        int found = 0;
        for (int i = 0; i < WIDE; i++) {
            if (pids[i] == r) {
                found = 1;
                seen[i]++;
                bad += !WIFEXITED(st) || WEXITSTATUS(st) != i;
            }
        }
        bad += !found;
    }
    for (int i = 0; i < WIDE; i++)
        bad += seen[i] != 1;
    CHECK_EQ(bad, 0);
    CHECK_ERRNO(waitpid(-1, NULL, WNOHANG), ECHILD);
}

static void test_vfork_rounds(void)
{
    int bad = 0;
    for (int i = 0; i < NOISY_ROUNDS; i++) {
        pid_t pid = vfork();
        if (pid == 0)
            _exit(i & 0x7f);
        int st = -1;
        if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
            WEXITSTATUS(st) != (i & 0x7f))
            bad++;
    }
    CHECK_EQ(bad, 0);
}

static volatile sig_atomic_t hits;

static void count(int sig)
{
    (void)sig;
    hits++;
}

/* A child that signals us every 200 us until killed. */
static pid_t spawn_noise(void)
{
    pid_t parent = getpid();
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        for (;;) {
            kill(parent, SIGUSR1);
            struct timespec t = { 0, 200 * 1000 };
            nanosleep(&t, NULL);
        }
    }
    return pid;
}

static void noisy_rounds(int sa_flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = count;
    sa.sa_flags = sa_flags;
    sigaction(SIGUSR1, &sa, NULL);
    hits = 0;
    pid_t noise = spawn_noise();
    int bad = 0, eintr = 0;
    for (int i = 0; i < NOISY_ROUNDS; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            /* Children must not count: they get no signals, but keep them away. */
            signal(SIGUSR1, SIG_IGN);
            _exit(i & 0xff);
        }
        int st = -1;
        pid_t r;
        while ((r = waitpid(pid, &st, 0)) == -1 && errno == EINTR)
            eintr++;
        if (pid < 0 || r != pid || !WIFEXITED(st) || WEXITSTATUS(st) != (i & 0xff))
            bad++;
    }
    kill(noise, SIGKILL);
    int st = -1;
    while (waitpid(noise, &st, 0) == -1 && errno == EINTR)
        ;
    CHECK_KILLED(st, SIGKILL);
    CHECK_EQ(bad, 0);
    CHECK(hits > 0);
    /* With SA_RESTART a wait is never cut short. */
    if (sa_flags & SA_RESTART)
        CHECK_EQ(eintr, 0);
    else
        CHECK(eintr >= 0);
    signal(SIGUSR1, SIG_DFL);
}

int main(void)
{
    long long t0 = now_ns();
    test_fork_rounds();
    test_wide();
    test_vfork_rounds();
    noisy_rounds(SA_RESTART);
    noisy_rounds(0);
    long long secs = (now_ns() - t0) / 1000000000LL;
    printf("stress_fork: %lld s\n", secs);
    return check_done();
}
