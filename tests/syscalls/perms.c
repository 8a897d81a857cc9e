/* File permissions as a non-root user: mode bits for owner, group (primary and
 * supplementary) and others; directory search and read; sticky directories; who may
 * chmod, chown and set times (EPERM); set-user/group-ID bits cleared by writes and chown;
 * set-group-ID directories; O_NOATIME; access(2) with real ids; and root without
 * CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_CHOWN, CAP_FSETID (capset)
 * treated like anyone else. Files are made as root, then children drop to other uids
 * with setgroups/setresgid/setresuid. */
#include "child.h"

#include <linux/capability.h>
#include <sys/fsuid.h>
#include <grp.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/statvfs.h>

#define U1 1001 /* owner of most files; also in group G */
#define U2 1002 /* a stranger */
#define G 2000  /* a group U1 belongs to (supplementary) */
#define G_OTHER 3000

static void become(uid_t uid, gid_t gid, int in_g)
{
    gid_t groups[1] = { G };
    if (setgroups(in_g ? 1 : 0, groups) != 0 || setresgid(gid, gid, gid) != 0 ||
        setresuid(uid, uid, uid) != 0) {
        printf("cannot become %d: %s\n", (int)uid, strerror(errno));
        _exit(2);
    }
}

static void make(const char *leaf, mode_t mode, uid_t uid, gid_t gid)
{
    CHECK_OK(write_file(tmp_path(leaf), "data", 4));
    CHECK_OK(chown(tmp_path(leaf), uid, gid));
    CHECK_OK(chmod(tmp_path(leaf), mode));
}

static void make_dir(const char *leaf, mode_t mode, uid_t uid, gid_t gid)
{
    CHECK_OK(mkdir(tmp_path(leaf), 0700));
    CHECK_OK(chown(tmp_path(leaf), uid, gid));
    CHECK_OK(chmod(tmp_path(leaf), mode));
}

static int opens(const char *leaf, int flags)
{
    int fd = open(tmp_path(leaf), flags);
    if (fd >= 0)
        close(fd);
    return fd >= 0 ? 0 : -1;
}

static mode_t mode_of(const char *leaf)
{
    struct stat st;
    if (stat(tmp_path(leaf), &st) != 0)
        return (mode_t)-1;
    return st.st_mode & 07777;
}

static gid_t gid_of(const char *leaf)
{
    struct stat st;
    if (stat(tmp_path(leaf), &st) != 0)
        return (gid_t)-1;
    return st.st_gid;
}

static void setup(void)
{
    make("owner", 0600, U1, U1);      /* U1 only */
    make("owner_denied", 0077, U1, U1); /* owner bits count for the owner, nothing else */
    make("group", 0640, 0, G);        /* readable through the supplementary group */
    make("other", 0604, 0, 0);        /* readable by others */
    make("world", 0666, 0, 0);
    make("noexec", 0644, 0, 0);
    make("rootexec", 0700, 0, 0);
    make("setuid", 04777, 0, 0);
    make("setgid", 02775, 0, G);       /* group-writable, set-group-ID, group-exec */
    make("u1_suid", 06755, U1, U1);
    make("suid_otrunc", 04666, 0, 0);
    make("suid_truncate", 04666, 0, 0);
    make("u1_sgid_foreign", 0644, U1, G_OTHER);
    make_dir("nosearch", 0766, 0, 0);
    make("nosearch/f", 0644, 0, 0);
    make_dir("noread", 0711, 0, 0);
    make("noread/f", 0644, 0, 0);
    make_dir("nowrite", 0755, 0, 0);
    make("nowrite/f", 0666, 0, 0);
    make_dir("u1dir", 0700, U1, U1);
    make("u1dir/f", 0600, U1, U1);
    make_dir("sticky", 01777, 0, 0);
    make("sticky/root_file", 0666, 0, 0);
    make_dir("sticky_u2", 01777, U2, U2);
    make_dir("sgid_dir", 02777, 0, G);
}

/* ---- U1 (in group G) ---- */

static void as_u1(void *arg)
{
    (void)arg;
    become(U1, U1, 1);
    /* Owner, group, other classes. */
    CHECK_OK(opens("owner", O_RDWR));
    CHECK_ERRNO(opens("owner_denied", O_RDONLY), EACCES);
    CHECK_OK(opens("group", O_RDONLY));
    CHECK_ERRNO(opens("group", O_WRONLY), EACCES);
    CHECK_OK(opens("other", O_RDONLY));
    CHECK_ERRNO(opens("other", O_WRONLY), EACCES);
    CHECK_ERRNO(access(tmp_path("rootexec"), X_OK), EACCES);
    CHECK_ERRNO(access(tmp_path("rootexec"), R_OK), EACCES);
    char *argv[] = { "x", NULL };
    CHECK_ERRNO(execve(tmp_path("rootexec"), argv, NULL), EACCES);
    CHECK_ERRNO(execve(tmp_path("noexec"), argv, NULL), EACCES);

    /* Directories: search needs x, listing needs r, changing needs w and x. */
    struct stat st;
    CHECK_ERRNO(stat(tmp_path("nosearch/f"), &st), EACCES);
    CHECK_ERRNO(open(tmp_path("nosearch/f"), O_RDONLY), EACCES);
    CHECK_ERRNO(chdir(tmp_path("nosearch")), EACCES);
    CHECK_OK(opens("nosearch", O_RDONLY | O_DIRECTORY));
    CHECK_OK(stat(tmp_path("noread/f"), &st));
    CHECK_OK(opens("noread/f", O_RDONLY));
    CHECK_ERRNO(opens("noread", O_RDONLY | O_DIRECTORY), EACCES);
    CHECK_ERRNO(open(tmp_path("nowrite/new"), O_CREAT | O_WRONLY, 0644), EACCES);
    CHECK_ERRNO(unlink(tmp_path("nowrite/f")), EACCES);
    CHECK_ERRNO(mkdir(tmp_path("nowrite/d"), 0755), EACCES);
    CHECK_ERRNO(rename(tmp_path("nowrite/f"), tmp_path("sticky/moved")), EACCES);
    CHECK_OK(opens("nowrite/f", O_RDWR)); /* the file itself is writable */
    CHECK_OK(opens("u1dir/f", O_RDONLY));

    /* Sticky directory: one's own entries only. */
    CHECK_OK(write_file(tmp_path("sticky/u1_file"), "u1", 2));
    CHECK_ERRNO(unlink(tmp_path("sticky/root_file")), EPERM);
    CHECK_ERRNO(rename(tmp_path("sticky/root_file"), tmp_path("sticky/x")), EPERM);
    CHECK_ERRNO(rename(tmp_path("sticky/u1_file"), tmp_path("sticky/root_file")), EPERM);
    CHECK_OK(opens("sticky/root_file", O_RDWR)); /* writing it is fine */
    CHECK_OK(rename(tmp_path("sticky/u1_file"), tmp_path("sticky/u1_renamed")));
    CHECK_OK(write_file(tmp_path("sticky_u2/u1_file"), "u1", 2));
    CHECK_OK(mkdir(tmp_path("sticky/u1_dir"), 0755));
    CHECK_OK(write_file(tmp_path("sticky/u1_keep"), "u1", 2));

    /* chmod: the owner may; set-group-ID is dropped for a group U1 is not in. */
    CHECK_ERRNO(chmod(tmp_path("other"), 0666), EPERM);
    CHECK_OK(chmod(tmp_path("u1_sgid_foreign"), 02755));
    CHECK_EQ(mode_of("u1_sgid_foreign"), 0755);
    CHECK_OK(chmod(tmp_path("owner"), 02640));
    CHECK_EQ(mode_of("owner"), 02640);

    /* chown: to oneself and to one's groups only. */
    CHECK_ERRNO(chown(tmp_path("owner"), U2, -1), EPERM);
    CHECK_ERRNO(chown(tmp_path("owner"), -1, G_OTHER), EPERM);
    CHECK_ERRNO(chown(tmp_path("other"), -1, G), EPERM);
    CHECK_OK(chown(tmp_path("owner"), U1, -1));
    CHECK_OK(chown(tmp_path("u1_suid"), -1, G));
    CHECK_EQ(gid_of("u1_suid"), G);
    /* Set-user-ID always goes; set-group-ID goes with group-execute set. */
    CHECK_EQ(mode_of("u1_suid"), 0755);

    /* Times: explicit ones need ownership, "now" needs write permission. */
    struct timespec ts[2] = { { 1000, 0 }, { 2000, 0 } };
    CHECK_ERRNO(utimensat(AT_FDCWD, tmp_path("world"), ts, 0), EPERM);
    CHECK_OK(utimensat(AT_FDCWD, tmp_path("world"), NULL, 0));
    CHECK_ERRNO(utimensat(AT_FDCWD, tmp_path("other"), NULL, 0), EACCES);
    CHECK_OK(utimensat(AT_FDCWD, tmp_path("owner"), ts, 0));

    /* Writing clears set-user-ID and (with group-execute) set-group-ID. */
    int fd = CHECK_OK(open(tmp_path("setuid"), O_WRONLY));
    CHECK_EQ(mode_of("setuid"), 04777); /* opening is not writing */
    CHECK_EQ(write(fd, "w", 1), 1);
    close(fd);
    CHECK_EQ(mode_of("setuid"), 0777);
    fd = CHECK_OK(open(tmp_path("setgid"), O_WRONLY));
    CHECK_EQ(write(fd, "w", 1), 1);
    close(fd);
    CHECK_EQ(mode_of("setgid"), 0775);
    /* So does truncation, by O_TRUNC or truncate(2). */
    CHECK_OK(opens("suid_otrunc", O_WRONLY | O_TRUNC));
    CHECK_EQ(mode_of("suid_otrunc"), 0666);
    CHECK_OK(truncate(tmp_path("suid_truncate"), 1));
    CHECK_EQ(mode_of("suid_truncate"), 0666);

    /* O_NOATIME: owner only. */
    CHECK_OK(opens("owner", O_RDONLY | O_NOATIME));
    CHECK_ERRNO(opens("other", O_RDONLY | O_NOATIME), EPERM);
    fd = CHECK_OK(open(tmp_path("other"), O_RDONLY));
    CHECK_ERRNO(fcntl(fd, F_SETFL, O_NOATIME), EPERM);
    close(fd);

    /* Set-group-ID directory: new entries take its group; directories the bit too. */
    CHECK_OK(write_file(tmp_path("sgid_dir/f"), "x", 1));
    CHECK_EQ(gid_of("sgid_dir/f"), G);
    CHECK_OK(mkdir(tmp_path("sgid_dir/d"), 0755));
    CHECK_EQ(gid_of("sgid_dir/d"), G);
    CHECK_EQ(mode_of("sgid_dir/d") & 02000, 02000);

    /* No capabilities left after leaving uid 0. */
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct d[2];
    CHECK_OK(syscall(SYS_capget, &h, d));
    CHECK_EQ(d[0].effective | d[0].permitted | d[1].effective | d[1].permitted, 0);
}

/* ---- U1 without its supplementary group ---- */

static void as_u1_no_groups(void *arg)
{
    (void)arg;
    become(U1, U1, 0);
    CHECK_ERRNO(opens("group", O_RDONLY), EACCES);
    CHECK_ERRNO(chown(tmp_path("owner"), -1, G), EPERM);
}

/* ---- U2: a stranger to U1's files ---- */

static void as_u2(void *arg)
{
    (void)arg;
    become(U2, U2, 0);
    CHECK_ERRNO(opens("owner", O_RDONLY), EACCES);
    CHECK_OK(opens("owner_denied", O_RDONLY)); /* the other bits are U2's */
    CHECK_ERRNO(opens("group", O_RDONLY), EACCES);
    struct stat st;
    CHECK_ERRNO(stat(tmp_path("u1dir/f"), &st), EACCES);
    CHECK_ERRNO(unlink(tmp_path("sticky/u1_renamed")), EPERM);
    CHECK_ERRNO(rmdir(tmp_path("sticky/u1_dir")), EPERM);
    CHECK_ERRNO(rename(tmp_path("sticky/u1_keep"), tmp_path("sticky/u2_has_it")), EPERM);
    /* The sticky directory's owner may remove anyone's entries. */
    CHECK_OK(unlink(tmp_path("sticky_u2/u1_file")));
    CHECK_ERRNO(chmod(tmp_path("owner"), 0666), EPERM);
    CHECK_ERRNO(chown(tmp_path("owner"), -1, U2), EPERM);
}

static int exec_report(void);

/* The bounding set limits what execve gives root back. */
static void bounding_set(void *arg)
{
    (void)arg;
    CHECK_EQ(prctl(PR_CAPBSET_READ, CAP_DAC_OVERRIDE, 0, 0, 0), 1);
    CHECK_ERRNO(prctl(PR_CAPBSET_READ, 1000, 0, 0, 0), EINVAL);
    CHECK_OK(prctl(PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, 0, 0, 0));
    CHECK_EQ(prctl(PR_CAPBSET_READ, CAP_DAC_OVERRIDE, 0, 0, 0), 0);
    /* Still effective until exec; gone after it. */
    CHECK_OK(opens("u1dir/f", O_RDWR));
    CHECK_EQ(exec_report(), 2);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/proc/self/exe", "perms", "open", tmp_path("u1dir/f"), (char *)NULL);
        _exit(4);
    }
    int st = wait_status(pid, 0);
    CHECK_EXITED(st, 1);
    /* Dropping needs CAP_SETPCAP. */
    CHECK_OK(setresuid(U1, U1, U1));
    CHECK_ERRNO(prctl(PR_CAPBSET_DROP, CAP_CHOWN, 0, 0, 0), EPERM);
}

/* Exec'd as `perms ids`: one bit per fact about the ids it runs with. */
static int report_ids(void)
{
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct d[2] = { 0 };
    syscall(SYS_capget, &h, d);
    uid_t r, e, sv;
    getresuid(&r, &e, &sv);
    return (e == 0) | (r == U1) << 1 | (getegid() == G) << 2 | (getauxval(AT_SECURE) == 1) << 3 |
           !!(d[0].effective & (1u << CAP_DAC_OVERRIDE)) << 4 | (sv == 0) << 5;
}

/* A set-user-ID root, set-group-ID G program run by U1 gets euid 0 (and root's
 * capabilities), egid G, the saved uid 0 and AT_SECURE; with PR_SET_NO_NEW_PRIVS,
 * none of it. (On a nosuid mount, nowhere: the expectation follows the mount.) */
static void setid_exec(void *arg)
{
    (void)arg;
    char path[128];
    snprintf(path, sizeof path, "/var/tmp/carapace-perms-suid-%d", (int)getpid());
    CHECK_OK(copy_file("/proc/self/exe", path, 0700));
    CHECK_OK(chown(path, 0, G));
    CHECK_OK(chmod(path, 06755));
    struct statvfs sv;
    CHECK_OK(statvfs(path, &sv));
    int honored = !(sv.f_flag & ST_NOSUID);
    for (int nnp = 0; nnp < 2; nnp++) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            become(U1, U1, 0);
            if (nnp)
                prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
            execl(path, "perms", "ids", (char *)NULL);
            _exit(99);
        }
        int st = wait_status(pid, 0);
        CHECK_EXITED(st, honored && !nnp ? 63 : 2);
    }
    unlink(path);
}

/* ---- signals: same user or CAP_KILL ---- */

static void signals_as_user(void *arg)
{
    (void)arg;
    pid_t root_parent = getppid();
    become(U2, U2, 0);
    CHECK_ERRNO(kill(root_parent, 0), EPERM);
    CHECK_ERRNO(kill(root_parent, SIGUSR1), EPERM);
    /* SIGCONT may go to any process of the same session. */
    CHECK_OK(kill(root_parent, SIGCONT));
    CHECK_OK(kill(getpid(), 0));
    /* A process of the same user may be signalled. */
    pid_t child = spawn_pauser();
    CHECK_OK(kill(child, 0));
    CHECK_OK(kill(child, SIGKILL));
    CHECK(wait_status(child, 0) != -1);
}

/* Root without CAP_KILL may not signal another user's process. */
static void root_without_kill(void *arg)
{
    (void)arg;
    int ready[2];
    CHECK_OK(pipe(ready));
    fflush(stdout);
    pid_t other = fork();
    if (other == 0) {
        become(U2, U2, 0);
        write(ready[1], "r", 1);
        for (;;)
            pause();
    }
    char c;
    CHECK_EQ(read(ready[0], &c, 1), 1);
    pid_t tester = fork();
    if (tester == 0) {
        struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
        struct __user_cap_data_struct d[2];
        int ok = syscall(SYS_capget, &h, d) == 0;
        d[0].effective &= ~(1u << CAP_KILL);
        d[0].permitted &= ~(1u << CAP_KILL);
        ok &= syscall(SYS_capset, &h, d) == 0;
        ok &= kill(other, 0) == -1 && errno == EPERM;
        ok &= kill(other, SIGTERM) == -1 && errno == EPERM;
        _exit(ok ? 0 : 1);
    }
    CHECK_EXITED(wait_status(tester, 0), 0);
    CHECK_OK(kill(other, SIGKILL));
    CHECK(wait_status(other, 0) != -1);
}

/* ---- root that dropped its file capabilities ---- */

static int drop_caps(unsigned keep)
{
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d) != 0)
        return -1;
    unsigned drop = (1u << CAP_DAC_OVERRIDE) | (1u << CAP_DAC_READ_SEARCH) |
                    (1u << CAP_FOWNER) | (1u << CAP_CHOWN) | (1u << CAP_FSETID);
    drop &= ~keep;
    d[0].effective &= ~drop;
    d[0].permitted &= ~drop;
    d[0].inheritable &= ~drop;
    return (int)syscall(SYS_capset, &h, d);
}

static void root_without_caps(void *arg)
{
    (void)arg;
    CHECK_OK(drop_caps(0));
    CHECK_EQ(geteuid(), 0);
    CHECK_ERRNO(opens("owner", O_RDONLY), EACCES);
    CHECK_ERRNO(opens("owner", O_WRONLY), EACCES);
    struct stat st;
    CHECK_ERRNO(stat(tmp_path("u1dir/f"), &st), EACCES);
    CHECK_ERRNO(chmod(tmp_path("owner"), 0666), EPERM);
    CHECK_ERRNO(chown(tmp_path("owner"), 0, 0), EPERM);
    CHECK_ERRNO(chown(tmp_path("other"), U1, -1), EPERM);
    struct timespec ts[2] = { { 1, 0 }, { 2, 0 } };
    CHECK_ERRNO(utimensat(AT_FDCWD, tmp_path("owner"), ts, 0), EPERM);
    CHECK_ERRNO(unlink(tmp_path("sticky_u2/..")), EISDIR);
    CHECK_OK(write_file(tmp_path("sticky_u2/u1_again"), "x", 1));
    CHECK_OK(chown(tmp_path("sticky_u2/u1_again"), 0, 0)); /* root's own file */
    /* Without CAP_FSETID, root's own writes clear set-user-ID too. */
    CHECK_OK(chmod(tmp_path("noexec"), 04644));
    int fd = CHECK_OK(open(tmp_path("noexec"), O_WRONLY));
    CHECK_EQ(write(fd, "w", 1), 1);
    close(fd);
    CHECK_EQ(mode_of("noexec"), 0644);
}

static void root_with_read_search(void *arg)
{
    (void)arg;
    CHECK_OK(drop_caps(1u << CAP_DAC_READ_SEARCH));
    CHECK_OK(opens("owner", O_RDONLY));
    CHECK_ERRNO(opens("owner", O_WRONLY), EACCES);
    struct stat st;
    CHECK_OK(stat(tmp_path("u1dir/f"), &st));
    CHECK_ERRNO(open(tmp_path("u1dir/new"), O_CREAT | O_WRONLY, 0644), EACCES);
}

static void root_with_override(void *arg)
{
    (void)arg;
    CHECK_OK(drop_caps(1u << CAP_DAC_OVERRIDE));
    CHECK_OK(opens("owner", O_RDWR));
    CHECK_OK(opens("u1dir/f", O_RDWR));
    /* Not even CAP_DAC_OVERRIDE executes a file without any execute bit. */
    CHECK_ERRNO(access(tmp_path("noexec"), X_OK), EACCES);
    CHECK_OK(access(tmp_path("rootexec"), X_OK));
    /* Nor does it make root the owner. */
    CHECK_ERRNO(chmod(tmp_path("owner"), 0600), EPERM);
}

/* ---- full root, setfsuid, access with real ids ---- */

static void root_ids(void *arg)
{
    (void)arg;
    CHECK_OK(opens("owner", O_RDWR));
    /* Root keeps set-group-ID when chowning a file without group-execute (CAP_FSETID),
     * but never set-user-ID. */
    make("root_chown", 06644, 0, 0);
    CHECK_OK(chown(tmp_path("root_chown"), U1, G));
    CHECK_EQ(mode_of("root_chown"), 02644);

    /* setfsuid: file access as U2, everything else still root. */
    CHECK_EQ(setfsuid(U2), 0);
    CHECK_ERRNO(opens("owner", O_RDONLY), EACCES);
    CHECK_OK(opens("owner_denied", O_WRONLY)); /* U2 gets the other bits */
    CHECK_EQ(setfsuid(0), U2);
    CHECK_OK(opens("owner", O_RDONLY));

    /* access() checks the real ids; AT_EACCESS the effective ones. */
    CHECK_OK(setresuid(U2, 0, 0));
    CHECK_ERRNO(access(tmp_path("owner"), R_OK), EACCES);
    CHECK_OK(faccessat(AT_FDCWD, tmp_path("owner"), R_OK, AT_EACCESS));
    CHECK_OK(access(tmp_path("owner_denied"), R_OK));
    /* The walk too: U2 may not search U1's directory, the effective root may. */
    CHECK_ERRNO(access(tmp_path("u1dir/f"), F_OK), EACCES);
    CHECK_OK(faccessat(AT_FDCWD, tmp_path("u1dir/f"), F_OK, AT_EACCESS));
}

/* Exec'd as `perms caps`: exits 0 if every file capability is effective, 1 if the
 * process has no capabilities at all, 2 otherwise. */
static int report_caps(void)
{
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d) != 0)
        return 3;
    unsigned fs = (1u << CAP_DAC_OVERRIDE) | (1u << CAP_DAC_READ_SEARCH) | (1u << CAP_FOWNER) |
                  (1u << CAP_CHOWN) | (1u << CAP_FSETID);
    if ((d[0].effective & fs) == fs && (d[0].permitted & fs) == fs)
        return 0;
    if ((d[0].effective | d[0].permitted | d[1].effective | d[1].permitted) == 0)
        return 1;
    return 2;
}

static int exec_report(void)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char *argv[] = { "perms", "caps", NULL };
        execv("/proc/self/exe", argv);
        _exit(4);
    }
    int st = wait_status(pid, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* execve recomputes the capability sets: root gets them all back after capset dropped
 * some; a user that kept its permitted set over setuid (PR_SET_KEEPCAPS) loses it. */
static void caps_across_exec(void *arg)
{
    (void)arg;
    CHECK_OK(drop_caps(0));
    CHECK_EQ(exec_report(), 0);
    CHECK_OK(prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0));
    CHECK_EQ(prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0), 1);
    CHECK_OK(setresuid(U1, U1, U1));
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct d[2];
    CHECK_OK(syscall(SYS_capget, &h, d));
    CHECK_EQ(d[0].effective, 0);
    CHECK(d[0].permitted & (1u << CAP_KILL));
    CHECK_EQ(exec_report(), 1);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "caps") == 0)
        return report_caps();
    if (argc > 1 && strcmp(argv[1], "ids") == 0)
        return report_ids();
    if (argc > 2 && strcmp(argv[1], "open") == 0)
        return open(argv[2], O_RDWR) >= 0 ? 0 : 1;
    check_tmpdir("perms");
    /* The scratch directory must be searchable by the test users. */
    CHECK_OK(chmod(check_tmpdir_path, 0755));
    setup();
    fflush(stdout);
    CHECK_EXITED(run_in_child(as_u1, NULL), 0);
    CHECK_EXITED(run_in_child(as_u1_no_groups, NULL), 0);
    CHECK_EXITED(run_in_child(as_u2, NULL), 0);
    CHECK_EXITED(run_in_child(root_without_caps, NULL), 0);
    CHECK_EXITED(run_in_child(root_with_read_search, NULL), 0);
    CHECK_EXITED(run_in_child(root_with_override, NULL), 0);
    CHECK_EXITED(run_in_child(root_ids, NULL), 0);
    CHECK_EXITED(run_in_child(caps_across_exec, NULL), 0);
    CHECK_EXITED(run_in_child(signals_as_user, NULL), 0);
    CHECK_EXITED(run_in_child(bounding_set, NULL), 0);
    CHECK_EXITED(run_in_child(setid_exec, NULL), 0);
    CHECK_EXITED(run_in_child(root_without_kill, NULL), 0);
    return check_done();
}
