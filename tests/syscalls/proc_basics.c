/* Process basics: ids, credentials, uname, arch_prctl, robust lists, rlimits, getrandom,
 * sysinfo, umask, prctl, scheduling. Only what holds both natively (any pid, maybe root)
 * and as the sandbox's init (pid 1, parent pid 0). */
#include "check.h"

#include <asm/prctl.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>

static void test_ids(void)
{
    pid_t pid = getpid();
    CHECK(pid > 0);
    CHECK_EQ(syscall(SYS_getpid), pid);
    /* A single-threaded process: its only thread's id is the process id. */
    CHECK_EQ(gettid(), pid);
    CHECK_EQ(syscall(SYS_gettid), pid);
    /* The sandbox's init has parent 0 (as in a pid namespace), so only >= 0 holds. */
    CHECK(getppid() >= 0);
    CHECK_EQ(syscall(SYS_getppid), getppid());
}

static void test_credentials(void)
{
    uid_t uid = getuid(), euid = geteuid();
    gid_t gid = getgid(), egid = getegid();
    /* Not a set-id binary: real and effective ids agree. */
    CHECK_EQ(euid, uid);
    CHECK_EQ(egid, gid);

    uid_t r, e, s;
    CHECK_OK(getresuid(&r, &e, &s));
    CHECK_EQ(r, uid);
    CHECK_EQ(e, euid);
    CHECK_EQ(s, euid);
    gid_t rg, eg, sg;
    CHECK_OK(getresgid(&rg, &eg, &sg));
    CHECK_EQ(rg, gid);
    CHECK_EQ(eg, egid);
    CHECK_EQ(sg, egid);
    CHECK_ERRNO(syscall(SYS_getresuid, BAD_PTR, &e, &s), EFAULT);

    /* Setting an id to its current value is always allowed. */
    CHECK_OK(setuid(uid));
    CHECK_OK(setgid(gid));
    CHECK_OK(setresuid(-1, -1, -1));
    CHECK_OK(setresgid(-1, -1, -1));
    CHECK_EQ(getuid(), uid);
    CHECK_EQ(getgid(), gid);

    /* getgroups(0, NULL) returns the count; asking for fewer than that is EINVAL. */
    int n = CHECK_OK(getgroups(0, NULL));
    gid_t groups[256];
    CHECK_EQ(getgroups(256, groups), n);
    CHECK_ERRNO(syscall(SYS_getgroups, -1, groups), EINVAL);
}

static int nul_within(const char *s, size_t n)
{
    return memchr(s, 0, n) != NULL;
}

static void test_uname(void)
{
    struct utsname u;
    memset(&u, 'x', sizeof u);
    CHECK_OK(uname(&u));
    CHECK(nul_within(u.sysname, sizeof u.sysname));
    CHECK(nul_within(u.nodename, sizeof u.nodename));
    CHECK(nul_within(u.release, sizeof u.release));
    CHECK(nul_within(u.version, sizeof u.version));
    CHECK(nul_within(u.machine, sizeof u.machine));
    CHECK_STREQ(u.sysname, "Linux");
    CHECK_STREQ(u.machine, "x86_64");
    CHECK(u.release[0] >= '0' && u.release[0] <= '9');
    CHECK(u.version[0] != 0);
    CHECK(u.nodename[0] != 0);
    CHECK_ERRNO(syscall(SYS_uname, BAD_PTR), EFAULT);
}

static void test_arch_prctl(void)
{
    unsigned long fs = 0;
    CHECK_OK(syscall(SYS_arch_prctl, ARCH_GET_FS, &fs));
    /* glibc's thread control block starts with a pointer to itself, at %fs:0. */
    unsigned long self;
    __asm__ volatile("mov %%fs:0, %0" : "=r"(self));
    CHECK_EQ(fs, self);
    CHECK(fs != 0);
    /* Setting it to the value it has is harmless and must stick. */
    CHECK_OK(syscall(SYS_arch_prctl, ARCH_SET_FS, fs));
    unsigned long again = 0;
    CHECK_OK(syscall(SYS_arch_prctl, ARCH_GET_FS, &again));
    CHECK_EQ(again, fs);
    CHECK_ERRNO(syscall(SYS_arch_prctl, 0x7777, &fs), EINVAL);
    CHECK_ERRNO(syscall(SYS_arch_prctl, ARCH_GET_FS, BAD_PTR), EFAULT);
}

static void test_tid_address_and_robust_list(void)
{
    static int tid_word;
    /* set_tid_address returns the caller's thread id. glibc registered its own word at
     * start-up; pointing the kernel at ours is harmless while we do not exit a thread. */
    CHECK_EQ(syscall(SYS_set_tid_address, &tid_word), gettid());

    static struct robust_list_head head;
    head.list.next = &head.list;
    head.futex_offset = 0;
    head.list_op_pending = NULL;
    CHECK_OK(syscall(SYS_set_robust_list, &head, sizeof head));
    struct robust_list_head *got = NULL;
    size_t len = 0;
    CHECK_OK(syscall(SYS_get_robust_list, 0, &got, &len));
    CHECK_EQ(got, &head);
    CHECK_EQ(len, sizeof head);
    CHECK_ERRNO(syscall(SYS_set_robust_list, &head, sizeof head + 1), EINVAL);
    CHECK_ERRNO(syscall(SYS_set_robust_list, &head, 0), EINVAL);
}

static void test_rlimits(void)
{
    struct rlimit rl;
    CHECK_OK(getrlimit(RLIMIT_NOFILE, &rl));
    CHECK(rl.rlim_cur <= rl.rlim_max);
    CHECK(rl.rlim_cur >= 3);

    /* prlimit64 with pid 0 is the caller, and agrees with getrlimit. */
    struct rlimit old;
    CHECK_OK(syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, &old));
    CHECK_EQ(old.rlim_cur, rl.rlim_cur);
    CHECK_EQ(old.rlim_max, rl.rlim_max);

    /* Lowering the soft limit is always allowed, and is read back. */
    struct rlimit core;
    CHECK_OK(getrlimit(RLIMIT_CORE, &core));
    struct rlimit lower = { .rlim_cur = 0, .rlim_max = core.rlim_max };
    CHECK_OK(setrlimit(RLIMIT_CORE, &lower));
    struct rlimit back;
    CHECK_OK(getrlimit(RLIMIT_CORE, &back));
    CHECK_EQ(back.rlim_cur, 0);
    CHECK_EQ(back.rlim_max, core.rlim_max);

    /* prlimit64 sets and returns the old value in one call. */
    struct rlimit new_lim = { .rlim_cur = 4096, .rlim_max = core.rlim_max };
    struct rlimit prev;
    if (core.rlim_max != RLIM_INFINITY && core.rlim_max < 4096)
        new_lim.rlim_cur = core.rlim_max;
    CHECK_OK(syscall(SYS_prlimit64, 0, RLIMIT_CORE, &new_lim, &prev));
    CHECK_EQ(prev.rlim_cur, 0);
    CHECK_OK(getrlimit(RLIMIT_CORE, &back));
    CHECK_EQ(back.rlim_cur, new_lim.rlim_cur);

    /* A soft limit above the hard limit is EINVAL for everyone, root included. */
    struct rlimit bad = { .rlim_cur = 200, .rlim_max = 100 };
    CHECK_ERRNO(setrlimit(RLIMIT_CORE, &bad), EINVAL);
    CHECK_ERRNO(syscall(SYS_prlimit64, 0, 9999, NULL, &old), EINVAL);
    CHECK_ERRNO(syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, BAD_PTR), EFAULT);
    CHECK_ERRNO(syscall(SYS_prlimit64, INT_MAX, RLIMIT_NOFILE, NULL, &old), ESRCH);
    CHECK_OK(setrlimit(RLIMIT_CORE, &core));

    /* A lowered RLIMIT_NOFILE is enforced: descriptors at or above it are refused. */
    struct rlimit few = { .rlim_cur = 20, .rlim_max = rl.rlim_max };
    CHECK_OK(setrlimit(RLIMIT_NOFILE, &few));
    CHECK_ERRNO(dup2(0, 20), EBADF);
    CHECK_ERRNO(fcntl(0, F_DUPFD, 20), EINVAL);
    CHECK_EQ(dup2(0, 19), 19);
    close(19);
    CHECK_OK(setrlimit(RLIMIT_NOFILE, &rl));
    CHECK_EQ(dup2(0, 20), 20);
    close(20);
}

static void test_getrandom(void)
{
    unsigned char a[32], b[32];
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    CHECK_EQ(syscall(SYS_getrandom, a, sizeof a, 0), sizeof a);
    CHECK_EQ(syscall(SYS_getrandom, b, sizeof b, GRND_NONBLOCK), sizeof b);
    /* Two 256-bit draws are equal with probability 2^-256. */
    CHECK(memcmp(a, b, sizeof a) != 0);
    CHECK_EQ(syscall(SYS_getrandom, a, 0, 0), 0);
    CHECK_EQ(syscall(SYS_getrandom, a, sizeof a, GRND_RANDOM | GRND_NONBLOCK), sizeof a);
    CHECK_ERRNO(syscall(SYS_getrandom, a, sizeof a, 0x80), EINVAL);
    CHECK_ERRNO(syscall(SYS_getrandom, a, sizeof a, GRND_INSECURE | GRND_RANDOM), EINVAL);
    CHECK_ERRNO(syscall(SYS_getrandom, BAD_PTR, 16, 0), EFAULT);
}

static void test_sysinfo(void)
{
    struct sysinfo si;
    memset(&si, 0, sizeof si);
    CHECK_OK(sysinfo(&si));
    CHECK(si.uptime >= 0);
    CHECK(si.totalram > 0);
    CHECK(si.freeram <= si.totalram);
    CHECK(si.mem_unit >= 1);
    CHECK(si.procs >= 1);
    CHECK_ERRNO(syscall(SYS_sysinfo, BAD_PTR), EFAULT);
}

static void test_umask(void)
{
    mode_t orig = umask(022);
    CHECK_EQ(umask(077), 022);
    /* The new mask applies to files created afterwards. */
    int fd = CHECK_OK(open(tmp_path("masked"), O_CREAT | O_WRONLY, 0666));
    struct stat st;
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_mode & 0777, 0600);
    close(fd);
    /* Only the permission bits are kept. */
    CHECK_EQ(umask(0177777), 077);
    CHECK_EQ(umask(orig), 0777);
}

static void test_prctl(void)
{
    char name[32];
    CHECK_OK(prctl(PR_SET_NAME, "carapace-test"));
    memset(name, 'x', sizeof name);
    CHECK_OK(prctl(PR_GET_NAME, name));
    CHECK_STREQ(name, "carapace-test");
    /* Names are cut to 15 bytes plus the NUL. */
    CHECK_OK(prctl(PR_SET_NAME, "0123456789abcdefghij"));
    CHECK_OK(prctl(PR_GET_NAME, name));
    CHECK_STREQ(name, "0123456789abcde");
    CHECK_ERRNO(prctl(PR_GET_NAME, BAD_PTR), EFAULT);
    CHECK_ERRNO(prctl(0x7fff1234, 0, 0, 0, 0), EINVAL);

    int dumpable = CHECK_OK(prctl(PR_GET_DUMPABLE));
    CHECK(dumpable == 0 || dumpable == 1);
    CHECK_OK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
    CHECK_EQ(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), 1);
}

static void test_sched(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    /* The raw syscall returns the kernel's mask size in bytes, a multiple of a long. */
    long n = CHECK_OK(syscall(SYS_sched_getaffinity, 0, sizeof set, &set));
    CHECK(n > 0 && n % sizeof(long) == 0);
    CHECK(CPU_COUNT(&set) >= 1);
    CHECK_ERRNO(syscall(SYS_sched_getaffinity, 0, 3, &set), EINVAL);
    CHECK_ERRNO(syscall(SYS_sched_getaffinity, 0, sizeof set, BAD_PTR), EFAULT);
    CHECK_OK(sched_yield());
    /* The mask set is the mask read back (by us and by our children). */
    int first = -1;
    for (int c = 0; c < CPU_SETSIZE && first < 0; c++)
        if (CPU_ISSET(c, &set))
            first = c;
    cpu_set_t one, back;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    CHECK_OK(sched_setaffinity(0, sizeof one, &one));
    CHECK_OK(sched_getaffinity(0, sizeof back, &back));
    CHECK(CPU_EQUAL(&one, &back));
    cpu_set_t none;
    CPU_ZERO(&none);
    CHECK_ERRNO(sched_setaffinity(0, sizeof none, &none), EINVAL);
    CHECK_ERRNO(sched_setaffinity(INT_MAX, sizeof one, &one), ESRCH);
    CHECK_OK(sched_setaffinity(0, sizeof set, &set));
    CHECK_EQ(sched_getscheduler(0), SCHED_OTHER);
    /* A child's policy is visible to its parent; a pid that does not exist is ESRCH. */
    fflush(stdout);
    pid_t kid = fork();
    if (kid == 0) {
        pause();
        _exit(0);
    }
    CHECK_EQ(sched_getscheduler(kid), SCHED_OTHER);
    struct timespec ts = { -1, -1 };
    CHECK_OK(sched_rr_get_interval(0, &ts));
    CHECK(ts.tv_sec == 0 && ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000);
    CHECK_OK(sched_rr_get_interval(kid, &ts));
    CHECK_ERRNO(sched_rr_get_interval(-1, &ts), EINVAL);
    CHECK_ERRNO(sched_rr_get_interval(INT_MAX, &ts), ESRCH);
    CHECK_ERRNO(sched_rr_get_interval(0, BAD_PTR), EFAULT);
    kill(kid, SIGKILL);
    waitpid(kid, NULL, 0);
}

int main(void)
{
    check_tmpdir("proc_basics");
    test_ids();
    test_credentials();
    test_uname();
    test_arch_prctl();
    test_tid_address_and_robust_list();
    test_rlimits();
    test_getrandom();
    test_sysinfo();
    test_umask();
    test_prctl();
    test_sched();
    return check_done();
}
