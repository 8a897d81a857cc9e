/* capget/capset: reading the caller's capability sets, dropping one, not regaining it. */
#include "child.h"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

static int capget_(struct __user_cap_header_struct *h, struct __user_cap_data_struct *d)
{
    return syscall(SYS_capget, h, d);
}

static int capset_(struct __user_cap_header_struct *h, struct __user_cap_data_struct *d)
{
    return syscall(SYS_capset, h, d);
}

int main(void)
{
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct d[2];
    CHECK_OK(capget_(&h, d));
    /* The test runs as root: it holds CAP_KILL and CAP_CHOWN. */
    CHECK(d[0].effective & (1u << CAP_KILL));
    CHECK(d[0].permitted & (1u << CAP_CHOWN));

    /* An unknown version is answered with the preferred one. */
    struct __user_cap_header_struct bad = { 0x12345678, 0 };
    CHECK_OK(capget_(&bad, NULL));
    CHECK_EQ(bad.version, _LINUX_CAPABILITY_VERSION_3);
    bad.version = 0x12345678;
    CHECK_ERRNO(capget_(&bad, d), EINVAL);
    CHECK_ERRNO(capget_(&h, (void *)0x10), EFAULT);

    /* In a child: drop CAP_CHOWN from every set; it cannot come back. */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        struct __user_cap_data_struct c[2];
        int ok = capget_(&h, c) == 0;
        c[0].effective &= ~(1u << CAP_CHOWN);
        c[0].permitted &= ~(1u << CAP_CHOWN);
        c[0].inheritable &= ~(1u << CAP_CHOWN);
        ok &= capset_(&h, c) == 0;
        struct __user_cap_data_struct back[2];
        ok &= capget_(&h, back) == 0 && !(back[0].permitted & (1u << CAP_CHOWN));
        c[0].permitted |= 1u << CAP_CHOWN;
        ok &= capset_(&h, c) == -1 && errno == EPERM;
        /* Effective beyond permitted is refused too. */
        back[0].effective |= 1u << CAP_CHOWN;
        ok &= capset_(&h, back) == -1 && errno == EPERM;
        _exit(ok ? 0 : 1);
    }
    int st;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    CHECK_EXITED(st, 0);

    /* The ambient set: only what is permitted and inheritable may be raised; dropping a
     * capability from inheritable drops it from ambient. */
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        struct __user_cap_data_struct c[2];
        int ok = capget_(&h, c) == 0;
        c[0].inheritable = (1u << CAP_KILL) | (1u << CAP_FOWNER);
        ok &= capset_(&h, c) == 0;
        ok &= prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_KILL, 0, 0) == 0;
        ok &= prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_KILL, 0, 0) == 0;
        ok &= prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_FOWNER, 0, 0) == 0;
        ok &= prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_KILL, 0, 0) == 1;
        ok &= prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_CHOWN, 0, 0) == -1 && errno == EPERM;
        ok &= prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, 999, 0, 0) == -1 && errno == EINVAL;
        ok &= prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_LOWER, CAP_FOWNER, 0, 0) == 0;
        ok &= prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_FOWNER, 0, 0) == 0;
        c[0].inheritable = 0;
        ok &= capset_(&h, c) == 0;
        ok &= prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_KILL, 0, 0) == 0;
        ok &= prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) == 0;
        _exit(ok ? 0 : 1);
    }
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    CHECK_EXITED(st, 0);
    return check_done();
}
