/* getpriority(2), setpriority(2) and nice(3): per-thread nice values, the -20..19 clamp,
 * the raw syscall's 20 - nice return that glibc undoes, PRIO_PROCESS/PGRP/USER,
 * inheritance across fork, EACCES for lowering without CAP_SYS_NICE and EPERM for
 * another user's process. Everything runs in children so the test leaves its own nice
 * value alone. */
#include "child.h"

#include <sys/resource.h>

static long raw_getpriority(int which, int who)
{
    return syscall(SYS_getpriority, which, who);
}

static int prio(int which, int who)
{
    errno = 0;
    return getpriority(which, who);
}

/* Fields 18 (priority) and 19 (nice) of /proc/self/stat. */
static int stat_prio(long *prio_out, long *nice_out)
{
    char buf[1024];
    int fd = open("/proc/self/stat", O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    p += 2; /* field 3 */
    for (int field = 3; field < 18; field++) {
        p = strchr(p, ' ');
        if (!p)
            return -1;
        p++;
    }
    return sscanf(p, "%ld %ld", prio_out, nice_out) == 2 ? 0 : -1;
}

static void as_root(void *arg)
{
    (void)arg;
    CHECK_OK(setpriority(PRIO_PROCESS, 0, 0));
    CHECK_EQ(prio(PRIO_PROCESS, 0), 0);
    CHECK_EQ(errno, 0);
    CHECK_EQ(raw_getpriority(PRIO_PROCESS, 0), 20);
    CHECK_OK(setpriority(PRIO_PROCESS, 0, 5));
    CHECK_EQ(prio(PRIO_PROCESS, 0), 5);
    CHECK_EQ(prio(PRIO_PROCESS, getpid()), 5);
    CHECK_EQ(raw_getpriority(PRIO_PROCESS, 0), 15);
    long sp = -1, sn = -1;
    CHECK_OK(stat_prio(&sp, &sn));
    CHECK_EQ(sp, 25);
    CHECK_EQ(sn, 5);
    /* nice() adds and returns the new value; out-of-range values are clamped. */
    errno = 0;
    CHECK_EQ(nice(2), 7);
    CHECK_EQ(errno, 0);
    CHECK_EQ(nice(100), 19);
    CHECK_OK(setpriority(PRIO_PROCESS, 0, 1000));
    CHECK_EQ(prio(PRIO_PROCESS, 0), 19);
    /* Root (CAP_SYS_NICE) may lower it, down to -20. */
    CHECK_OK(setpriority(PRIO_PROCESS, 0, -1000));
    CHECK_EQ(prio(PRIO_PROCESS, 0), -20);
    CHECK_EQ(raw_getpriority(PRIO_PROCESS, 0), 40);
    CHECK_OK(setpriority(PRIO_PROCESS, 0, 3));

    /* Bad arguments. */
    CHECK_ERRNO(getpriority(7, 0), EINVAL);
    CHECK_ERRNO(setpriority(7, 0, 0), EINVAL);
    CHECK_ERRNO(getpriority(PRIO_PROCESS, 0x3ffffff0), ESRCH);
    CHECK_ERRNO(setpriority(PRIO_PROCESS, 0x3ffffff0, 1), ESRCH);
    CHECK_ERRNO(getpriority(PRIO_PROCESS, -5), ESRCH);

    /* A child inherits the value; its changes stay its own. */
    pid_t pid = fork();
    if (pid == 0) {
        int ok = getpriority(PRIO_PROCESS, 0) == 3;
        ok &= setpriority(PRIO_PROCESS, 0, 9) == 0;
        _exit(ok ? 0 : 1);
    }
    int st = -1;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    CHECK_EXITED(st, 0);
    CHECK_EQ(prio(PRIO_PROCESS, 0), 3);

    /* Another process by pid. */
    int ready[2], go[2];
    CHECK_OK(pipe(ready));
    CHECK_OK(pipe(go));
    pid = fork();
    if (pid == 0) {
        char c;
        setpriority(PRIO_PROCESS, 0, 11);
        write(ready[1], "r", 1);
        read(go[0], &c, 1);
        _exit(getpriority(PRIO_PROCESS, 0) == 13 ? 0 : 1);
    }
    char c;
    CHECK_EQ(read(ready[0], &c, 1), 1);
    CHECK_EQ(prio(PRIO_PROCESS, pid), 11);
    CHECK_OK(setpriority(PRIO_PROCESS, pid, 13));
    CHECK_EQ(write(go[1], "g", 1), 1);
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    CHECK_EXITED(st, 0);
    close(ready[0]);
    close(ready[1]);
    close(go[0]);
    close(go[1]);
}

static void process_group(void *arg)
{
    (void)arg;
    CHECK_OK(setpgid(0, 0));
    CHECK_OK(setpriority(PRIO_PGRP, 0, 6));
    CHECK_EQ(prio(PRIO_PROCESS, 0), 6);
    CHECK_EQ(prio(PRIO_PGRP, 0), 6);
    CHECK_EQ(prio(PRIO_PGRP, getpgrp()), 6);
    /* A member with a higher nice value does not change the group's answer (the lowest
     * nice value counts); one with a lower value does. */
    int ready[2], go[2];
    CHECK_OK(pipe(ready));
    CHECK_OK(pipe(go));
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        setpriority(PRIO_PROCESS, 0, 10);
        write(ready[1], "r", 1);
        read(go[0], &c, 1);
        setpriority(PRIO_PROCESS, 0, 2);
        write(ready[1], "r", 1);
        read(go[0], &c, 1);
        _exit(0);
    }
    char c;
    CHECK_EQ(read(ready[0], &c, 1), 1);
    CHECK_EQ(prio(PRIO_PGRP, 0), 6);
    CHECK_EQ(write(go[1], "g", 1), 1);
    CHECK_EQ(read(ready[0], &c, 1), 1);
    CHECK_EQ(prio(PRIO_PGRP, 0), 2);
    /* Setting the group sets every member. */
    CHECK_OK(setpriority(PRIO_PGRP, 0, 8));
    CHECK_EQ(prio(PRIO_PROCESS, pid), 8);
    CHECK_EQ(write(go[1], "g", 1), 1);
    int st = -1;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    CHECK_EXITED(st, 0);
    CHECK_ERRNO(getpriority(PRIO_PGRP, 0x3ffffff0), ESRCH);
}

#define USER 23456

static void unprivileged(void *arg)
{
    (void)arg;
    int parent = prio(PRIO_PROCESS, getppid());
    CHECK_OK(setpriority(PRIO_PROCESS, 0, 4));
    CHECK_OK(setresuid(USER, USER, USER));
    /* Raising one's own nice value is always allowed; lowering it needs CAP_SYS_NICE
     * (RLIMIT_NICE is 0). */
    CHECK_OK(setpriority(PRIO_PROCESS, 0, 6));
    CHECK_EQ(prio(PRIO_PROCESS, 0), 6);
    CHECK_ERRNO(setpriority(PRIO_PROCESS, 0, 5), EACCES);
    CHECK_OK(setpriority(PRIO_PROCESS, 0, 6));
    CHECK_EQ(prio(PRIO_PROCESS, 0), 6);
    /* nice() reports EPERM where setpriority says EACCES (glibc). */
    errno = 0;
    CHECK_EQ(nice(-1), -1);
    CHECK_EQ(errno, EPERM);
    CHECK_EQ(nice(1), 7);
    /* PRIO_USER: the tasks of this real uid, here only this one. */
    CHECK_EQ(prio(PRIO_USER, 0), 7);
    CHECK_EQ(prio(PRIO_USER, USER), 7);
    CHECK_OK(setpriority(PRIO_USER, 0, 9));
    CHECK_EQ(prio(PRIO_PROCESS, 0), 9);
    CHECK_ERRNO(getpriority(PRIO_USER, USER + 1), ESRCH);
    /* Another user's process (the parent, still root): EPERM. */
    CHECK_ERRNO(setpriority(PRIO_PROCESS, getppid(), 10), EPERM);
    CHECK_EQ(prio(PRIO_PROCESS, getppid()), parent);
}

int main(void)
{
    CHECK_EXITED(run_in_child(as_root, NULL), 0);
    CHECK_EXITED(run_in_child(process_group, NULL), 0);
    CHECK_EXITED(run_in_child(unprivileged, NULL), 0);
    return check_done();
}
