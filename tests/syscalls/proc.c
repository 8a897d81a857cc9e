/* /proc and /sys as programs read them: the calling process's own files compared with
 * what the syscalls say (getpid, getppid, getuid, getrlimit, getauxval…), the magic
 * links (exe, cwd, fd/N) and reopening through them, a mapping, a thread and a child as
 * they appear and go, and the system-wide files parsed the way procps and glibc do.
 * Holds natively (host pids, any uid) and in the sandbox (pid 1, parent 0). */
#include "check.h"
#include "child.h"

#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <sys/auxv.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>

extern char **environ;
static char **initial_environ;
static int g_argc;
static char **g_argv;

/* Reads a whole file (NUL-terminated in buf); returns its length or -1. */
static ssize_t slurp(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r <= 0)
            break;
        n += r;
        if (n == cap - 1)
            break;
    }
    close(fd);
    buf[n] = 0;
    return n;
}

/* The value after "key:" in a status-style file, or NULL. */
static const char *field(const char *text, const char *key)
{
    static char out[256];
    size_t kl = strlen(key);
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncmp(l, key, kl) == 0 && l[kl] == ':') {
            const char *v = l + kl + 1;
            while (*v == '\t' || *v == ' ')
                v++;
            size_t n = strcspn(v, "\n");
            if (n >= sizeof out)
                n = sizeof out - 1;
            memcpy(out, v, n);
            out[n] = 0;
            return out;
        }
    }
    return NULL;
}

static int has_line_prefix(const char *text, const char *prefix)
{
    size_t pl = strlen(prefix);
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (strncmp(l, prefix, pl) == 0)
            return 1;
    return 0;
}

/* Fields of a stat line after the comm: f[0] is field 3 (state). */
static int parse_stat(const char *path, int *pid, char *comm, char f[64][32])
{
    static char buf[4096];
    if (slurp(path, buf, sizeof buf) <= 0)
        return -1;
    *pid = atoi(buf);
    char *open_p = strchr(buf, '(');
    char *close_p = strrchr(buf, ')');
    if (!open_p || !close_p)
        return -1;
    size_t cl = close_p - open_p - 1;
    memcpy(comm, open_p + 1, cl);
    comm[cl] = 0;
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(close_p + 1, " \n", &save); t && n < 64;
         t = strtok_r(NULL, " \n", &save))
        snprintf(f[n++], 32, "%s", t);
    return n + 2;
}

static void test_self_links(void)
{
    char buf[64], want[64];
    ssize_t n = CHECK_OK(readlink("/proc/self", buf, sizeof buf - 1));
    buf[n < 0 ? 0 : n] = 0;
    snprintf(want, sizeof want, "%d", getpid());
    CHECK_STREQ(buf, want);
    n = CHECK_OK(readlink("/proc/thread-self", buf, sizeof buf - 1));
    buf[n < 0 ? 0 : n] = 0;
    snprintf(want, sizeof want, "%d/task/%d", getpid(), gettid());
    CHECK_STREQ(buf, want);
    struct stat a, b;
    CHECK_OK(stat("/proc/self", &a));
    snprintf(want, sizeof want, "/proc/%d", getpid());
    CHECK_OK(stat(want, &b));
    CHECK_EQ(a.st_ino, b.st_ino);
    CHECK(S_ISDIR(a.st_mode));
    /* /proc/PID is owned by the process's effective ids. */
    CHECK_EQ(b.st_uid, geteuid());
    CHECK_EQ(b.st_gid, getegid());
    CHECK_ERRNO(stat("/proc/0", &a), ENOENT);
    CHECK_ERRNO(stat("/proc/2147483647", &a), ENOENT);
}

static void test_stat_status(void)
{
    char comm[64], f[64][32], name[17] = {0};
    int pid = 0;
    prctl(PR_GET_NAME, name);
    int nf = parse_stat("/proc/self/stat", &pid, comm, f);
    CHECK_EQ(nf, 52);
    CHECK_EQ(pid, getpid());
    CHECK_STREQ(comm, name);
    CHECK_STREQ(f[0], "R");
    CHECK_EQ(atoi(f[1]), getppid());
    CHECK_EQ(atoi(f[2]), getpgrp());
    CHECK_EQ(atoi(f[17]), 1); /* num_threads */
    CHECK(strtoull(f[20], NULL, 10) > 0); /* vsize */
    CHECK(strtoull(f[21], NULL, 10) > 0); /* rss */

    static char st[8192];
    char want[64];
    CHECK(slurp("/proc/self/status", st, sizeof st) > 0);
    const char *v = field(st, "Name");
    CHECK_STREQ(v ? v : "", name);
    snprintf(want, sizeof want, "%d", getpid());
    v = field(st, "Pid");
    CHECK_STREQ(v ? v : "", want);
    v = field(st, "Tgid");
    CHECK_STREQ(v ? v : "", want);
    snprintf(want, sizeof want, "%d", getppid());
    v = field(st, "PPid");
    CHECK_STREQ(v ? v : "", want);
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    getresuid(&ru, &eu, &su);
    getresgid(&rg, &eg, &sg);
    snprintf(want, sizeof want, "%u\t%u\t%u\t%u", ru, eu, su, eu);
    v = field(st, "Uid");
    CHECK_STREQ(v ? v : "", want);
    snprintf(want, sizeof want, "%u\t%u\t%u\t%u", rg, eg, sg, eg);
    v = field(st, "Gid");
    CHECK_STREQ(v ? v : "", want);
    /* Groups: the supplementary groups, each followed by a space (Linux's format). */
    gid_t gl[64];
    int ng = getgroups(64, gl);
    char gw[1024] = "";
    for (int i = 0; i < ng; i++)
        snprintf(gw + strlen(gw), sizeof gw - strlen(gw), "%s%u", i ? " " : "", gl[i]);
    strcat(gw, " ");
    const char *gline = strstr(st, "\nGroups:\t");
    char gv[1024] = "";
    if (gline)
        sscanf(gline + 9, "%1023[^\n]", gv);
    CHECK_STREQ(gv, gw);
    v = field(st, "Threads");
    CHECK_STREQ(v ? v : "", "1");
    v = field(st, "State");
    CHECK_STREQ(v ? v : "", "R (running)");
    v = field(st, "VmRSS");
    CHECK(v && atol(v) > 0 && strstr(v, " kB"));
    mode_t old = umask(027);
    CHECK(slurp("/proc/self/status", st, sizeof st) > 0);
    umask(old);
    v = field(st, "Umask");
    CHECK_STREQ(v ? v : "", "0027");
    /* SigBlk follows sigprocmask. */
    sigset_t set, prev;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, &prev);
    CHECK(slurp("/proc/self/status", st, sizeof st) > 0);
    sigprocmask(SIG_SETMASK, &prev, NULL);
    v = field(st, "SigBlk");
    CHECK(v && strtoull(v, NULL, 16) & (1ull << (SIGUSR1 - 1)));

    char sm[256];
    CHECK(slurp("/proc/self/statm", sm, sizeof sm) > 0);
    unsigned long s[7] = {0};
    CHECK_EQ(sscanf(sm, "%lu %lu %lu %lu %lu %lu %lu", &s[0], &s[1], &s[2], &s[3], &s[4],
                    &s[5], &s[6]),
             7);
    CHECK(s[0] > 0 && s[1] > 0 && s[1] <= s[0]);
}

static void test_cmdline_environ_auxv(void)
{
    static char buf[65536], want[65536];
    size_t wl = 0;
    for (int i = 0; i < g_argc; i++) {
        size_t l = strlen(g_argv[i]) + 1;
        memcpy(want + wl, g_argv[i], l);
        wl += l;
    }
    ssize_t n = slurp("/proc/self/cmdline", buf, sizeof buf);
    CHECK_EQ(n, (ssize_t)wl);
    CHECK_MEMEQ(buf, want, wl);
    /* setproctitle-style rewriting: with the final NUL of the argument area gone, the
     * line is the one string from the start of the area (running on into the
     * environment), with its NUL, at most a page. */
    char *last_nul = g_argv[g_argc - 1] + strlen(g_argv[g_argc - 1]);
    *last_nul = 'X';
    size_t title = strnlen(g_argv[0], 4095) + 1;
    memcpy(want, g_argv[0], title);
    n = slurp("/proc/self/cmdline", buf, sizeof buf);
    *last_nul = 0;
    CHECK_EQ(n, (ssize_t)title);
    CHECK_MEMEQ(buf, want, title);

    wl = 0;
    for (char **e = initial_environ; *e && wl + strlen(*e) + 1 < sizeof want; e++) {
        size_t l = strlen(*e) + 1;
        memcpy(want + wl, *e, l);
        wl += l;
    }
    n = slurp("/proc/self/environ", buf, sizeof buf);
    CHECK_EQ(n, (ssize_t)wl);
    CHECK_MEMEQ(buf, want, wl);

    n = slurp("/proc/self/auxv", buf, sizeof buf);
    CHECK(n > 0 && n % 16 == 0);
    unsigned long *av = (unsigned long *)buf;
    int seen = 0;
    for (ssize_t i = 0; i + 1 < n / 8; i += 2) {
        if (av[i] == AT_PAGESZ)
            seen += av[i + 1] == 4096;
        if (av[i] == AT_UID)
            seen += av[i + 1] == getuid();
        if (av[i] == AT_ENTRY)
            seen += av[i + 1] == getauxval(AT_ENTRY);
    }
    CHECK_EQ(seen, 3);
    CHECK_EQ(av[n / 8 - 2], AT_NULL);
}

static void test_comm(void)
{
    char buf[64], name[17] = {0}, saved[17] = {0};
    prctl(PR_GET_NAME, saved);
    CHECK(slurp("/proc/self/comm", buf, sizeof buf) > 0);
    char want[32];
    snprintf(want, sizeof want, "%s\n", saved);
    CHECK_STREQ(buf, want);
    int fd = CHECK_OK(open("/proc/thread-self/comm", O_WRONLY | O_TRUNC));
    CHECK_EQ(write(fd, "renamed-by-proc-and-cut\n", 24), 24);
    close(fd);
    prctl(PR_GET_NAME, name);
    CHECK_STREQ(name, "renamed-by-proc");
    prctl(PR_SET_NAME, saved);
    CHECK(slurp("/proc/self/comm", buf, sizeof buf) > 0);
    CHECK_STREQ(buf, want);
}

static void test_exe_cwd_root(void)
{
    char buf[PATH_MAX], real[PATH_MAX];
    ssize_t n = CHECK_OK(readlink("/proc/self/exe", buf, sizeof buf - 1));
    buf[n < 0 ? 0 : n] = 0;
    CHECK(realpath(g_argv[0], real) != NULL);
    CHECK_STREQ(buf, real);
    /* Opening the link opens the executable itself. */
    struct stat a, b;
    int fd = CHECK_OK(open("/proc/self/exe", O_RDONLY));
    CHECK_OK(fstat(fd, &a));
    CHECK_OK(stat(real, &b));
    CHECK_EQ(a.st_ino, b.st_ino);
    CHECK_EQ(a.st_dev, b.st_dev);
    char head[4] = {0};
    CHECK_EQ(read(fd, head, 4), 4);
    CHECK_MEMEQ(head, "\177ELF", 4);
    close(fd);

    const char *dir = check_tmpdir("proc");
    char cwd[PATH_MAX];
    int back = open(".", O_RDONLY | O_DIRECTORY);
    CHECK_OK(chdir(dir));
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    n = CHECK_OK(readlink("/proc/self/cwd", buf, sizeof buf - 1));
    buf[n < 0 ? 0 : n] = 0;
    CHECK_STREQ(buf, cwd);
    fd = CHECK_OK(open("/proc/self/cwd", O_RDONLY | O_DIRECTORY));
    CHECK_OK(fstat(fd, &a));
    CHECK_OK(stat(".", &b));
    CHECK_EQ(a.st_ino, b.st_ino);
    close(fd);
    /* Paths through the link resolve from the directory it names. */
    CHECK_OK(write_file(tmp_path("through-cwd"), "x", 1));
    CHECK_OK(stat("/proc/self/cwd/through-cwd", &a));
    CHECK_OK(fchdir(back));
    close(back);
    n = CHECK_OK(readlink("/proc/self/root", buf, sizeof buf - 1));
    buf[n < 0 ? 0 : n] = 0;
    CHECK_STREQ(buf, "/");
    CHECK(lstat("/proc/self/exe", &a) == 0 && S_ISLNK(a.st_mode));
}

static int dir_has(const char *path, const char *name)
{
    DIR *d = opendir(path);
    if (!d)
        return 0;
    int found = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, name) == 0)
            found = 1;
    closedir(d);
    return found;
}

static const char *fd_link(int fd)
{
    static char buf[PATH_MAX];
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(p, buf, sizeof buf - 1);
    buf[n < 0 ? 0 : n] = 0;
    return buf;
}

static void test_fds(void)
{
    const char *path = tmp_path("data");
    CHECK_OK(write_file(path, "hello world", 11));
    int fd = CHECK_OK(open(path, O_RDWR | O_CLOEXEC));
    int p[2];
    CHECK_OK(pipe(p));
    int ev = CHECK_OK(eventfd(0, 0));
    char name[16];

    CHECK_STREQ(fd_link(fd), path);
    CHECK(strncmp(fd_link(p[0]), "pipe:[", 6) == 0);
    char pipe_name[64];
    snprintf(pipe_name, sizeof pipe_name, "%s", fd_link(p[0]));
    CHECK_STREQ(fd_link(p[1]), pipe_name);
    CHECK_STREQ(fd_link(ev), "anon_inode:[eventfd]");
    snprintf(name, sizeof name, "%d", fd);
    CHECK(dir_has("/proc/self/fd", name));
    snprintf(name, sizeof name, "%d", p[1]);
    CHECK(dir_has("/proc/self/fd", name));
    CHECK(dir_has("/proc/self/fd", "0"));
    CHECK(dir_has("/proc/self/fdinfo", name));
    struct stat st;
    CHECK(lstat(tmp_path("data"), &st) == 0);
    /* The link's mode says how the file is open. */
    char lp[64];
    snprintf(lp, sizeof lp, "/proc/self/fd/%d", p[0]);
    CHECK_OK(lstat(lp, &st));
    CHECK_EQ(st.st_mode & 0777, 0500);
    snprintf(lp, sizeof lp, "/proc/self/fd/%d", fd);
    CHECK_OK(lstat(lp, &st));
    CHECK_EQ(st.st_mode & 0777, 0700);

    /* Reopening through the link: the same file, a new description (own offset). */
    char buf[16] = {0};
    CHECK_EQ(read(fd, buf, 2), 2);
    int again = CHECK_OK(open(lp, O_RDONLY));
    CHECK_EQ(read(again, buf, 5), 5);
    CHECK_MEMEQ(buf, "hello", 5);
    close(again);
    char info[512];
    snprintf(lp, sizeof lp, "/proc/self/fdinfo/%d", fd);
    CHECK(slurp(lp, info, sizeof info) > 0);
    const char *v = field(info, "pos");
    CHECK_STREQ(v ? v : "", "2");
    v = field(info, "flags");
    long fl = v ? strtol(v, NULL, 8) : 0;
    CHECK_EQ(fl & O_ACCMODE, O_RDWR);
    CHECK(fl & O_CLOEXEC);

    /* The write end of a pipe reopened through its link writes into the same pipe. */
    snprintf(lp, sizeof lp, "/proc/self/fd/%d", p[1]);
    int w = CHECK_OK(open(lp, O_WRONLY));
    CHECK_EQ(write(w, "pi", 2), 2);
    close(w);
    CHECK_EQ(read(p[0], buf, 2), 2);
    CHECK_MEMEQ(buf, "pi", 2);

    /* A closed fd is gone from the directory. */
    int closed = p[1];
    close(p[1]);
    snprintf(lp, sizeof lp, "/proc/self/fd/%d", closed);
    CHECK_ERRNO(lstat(lp, &st), ENOENT);
    close(p[0]);
    close(ev);
    close(fd);
}

static void test_maps(void)
{
    long pg = sysconf(_SC_PAGESIZE);
    char *m = mmap(NULL, 3 * pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED);
    const char *path = tmp_path("mapped");
    CHECK_OK(write_file(path, "0123456789", 10));
    int fd = CHECK_OK(open(path, O_RDONLY));
    char *fm = mmap(NULL, pg, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(fm != MAP_FAILED);
    close(fd);
    static char maps[1 << 17];
    CHECK(slurp("/proc/self/maps", maps, sizeof maps) > 0);
    int anon = 0, file = 0, stack = 0, lines = 0, sorted = 1, padded = 1;
    unsigned long prev_end = 0;
    for (char *l = maps; *l;) {
        char *nl = strchr(l, '\n');
        if (!nl)
            break;
        *nl = 0;
        unsigned long s, e, off, ino;
        char perms[5];
        unsigned maj, min;
        int name_at = 0;
        if (sscanf(l, "%lx-%lx %4s %lx %x:%x %lu %n", &s, &e, perms, &off, &maj, &min, &ino,
                   &name_at) >= 7) {
            lines++;
            sorted &= s >= prev_end;
            prev_end = e;
            const char *name = l + name_at;
            if (s == (unsigned long)m && e == (unsigned long)m + 3 * pg &&
                strcmp(perms, "r--p") == 0 && *name == 0)
                anon++;
            if (s == (unsigned long)fm && strcmp(perms, "r--s") == 0 &&
                strcmp(name, path) == 0)
                file++;
            if (strcmp(name, "[stack]") == 0 && strchr(perms, 'w'))
                stack++;
            /* A name starts at column 73, as Linux pads it. */
            if (*name && name_at != 73)
                padded = 0;
        }
        *nl = '\n';
        l = nl + 1;
    }
    CHECK(lines > 3);
    CHECK(sorted);
    CHECK(padded);
    CHECK_EQ(anon, 1);
    CHECK_EQ(file, 1);
    CHECK_EQ(stack, 1);
    static char smaps[1 << 18];
    CHECK(slurp("/proc/self/smaps", smaps, sizeof smaps) > 0);
    CHECK(strstr(smaps, "\nRss:") != NULL);
    CHECK(strstr(smaps, "\nVmFlags:") != NULL);
    munmap(m, 3 * pg);
    munmap(fm, pg);
}

static int thread_pipe[2];
static volatile pid_t thread_tid;

static void *sleeper(void *arg)
{
    (void)arg;
    thread_tid = gettid();
    char c;
    /* Wait for the main thread to be done looking. */
    while (read(thread_pipe[0], &c, 1) < 0 && errno == EINTR)
        ;
    return NULL;
}

static void test_threads(void)
{
    CHECK_OK(pipe(thread_pipe));
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, sleeper, NULL), 0);
    while (thread_tid == 0)
        sched_yield();
    char name[32], path[96];
    snprintf(name, sizeof name, "%d", thread_tid);
    CHECK(dir_has("/proc/self/task", name));
    snprintf(name, sizeof name, "%d", getpid());
    CHECK(dir_has("/proc/self/task", name));
    /* A thread id is not listed in /proc but can be looked up there. */
    snprintf(name, sizeof name, "%d", thread_tid);
    CHECK(!dir_has("/proc", name));
    struct stat st;
    snprintf(path, sizeof path, "/proc/%d", thread_tid);
    CHECK_OK(stat(path, &st));
    char comm[64], f[64][32];
    int pid = 0;
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", thread_tid);
    CHECK_EQ(parse_stat(path, &pid, comm, f), 52);
    CHECK_EQ(pid, thread_tid);
    CHECK_EQ(atoi(f[17]), 2);
    static char status[8192];
    CHECK(slurp("/proc/self/status", status, sizeof status) > 0);
    const char *v = field(status, "Threads");
    CHECK_STREQ(v ? v : "", "2");
    /* Renaming a sibling thread through its comm file. */
    snprintf(path, sizeof path, "/proc/self/task/%d/comm", thread_tid);
    int fd = CHECK_OK(open(path, O_WRONLY));
    CHECK_EQ(write(fd, "sibling", 7), 7);
    close(fd);
    char got[32] = {0};
    CHECK_EQ(pthread_getname_np(t, got, sizeof got), 0);
    CHECK_STREQ(got, "sibling");
    CHECK_EQ(write(thread_pipe[1], "x", 1), 1);
    pthread_join(t, NULL);
    close(thread_pipe[0]);
    close(thread_pipe[1]);
}

static void test_child(void)
{
    /* oom_score_adj is inherited: raise ours (lowering it takes privilege) and fork. */
    char adj[32], cadj[32];
    CHECK(slurp("/proc/self/oom_score_adj", adj, sizeof adj) > 0);
    int raised = atoi(adj) < 1000 ? atoi(adj) + 1 : 1000;
    snprintf(adj, sizeof adj, "%d\n", raised);
    int afd = CHECK_OK(open("/proc/self/oom_score_adj", O_WRONLY));
    CHECK_EQ(write(afd, adj, strlen(adj)), (ssize_t)strlen(adj));
    close(afd);
    int go[2];
    CHECK_OK(pipe(go));
    pid_t c = fork();
    if (c == 0) {
        char ch;
        close(go[1]);
        while (read(go[0], &ch, 1) < 0 && errno == EINTR)
            ;
        _exit(7);
    }
    close(go[0]);
    char name[32], path[96];
    snprintf(name, sizeof name, "%d", c);
    CHECK(dir_has("/proc", name));
    char comm[64], f[64][32];
    int pid = 0;
    snprintf(path, sizeof path, "/proc/%d/stat", c);
    CHECK_EQ(parse_stat(path, &pid, comm, f), 52);
    CHECK_EQ(pid, c);
    CHECK_EQ(atoi(f[1]), getpid());
    CHECK(strcmp(f[0], "S") == 0 || strcmp(f[0], "R") == 0);
    snprintf(path, sizeof path, "/proc/%d/oom_score_adj", c);
    CHECK(slurp(path, cadj, sizeof cadj) > 0);
    CHECK_STREQ(cadj, adj);
    /* Only threads of the writer's own process may be renamed. */
    snprintf(path, sizeof path, "/proc/%d/comm", c);
    int cfd = CHECK_OK(open(path, O_WRONLY));
    CHECK_ERRNO(write(cfd, "other", 5), EINVAL);
    close(cfd);
    /* The main thread's children file lists it ("PID " each). */
    char kids[256] = { 0 };
    snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
    CHECK(slurp(path, kids, sizeof kids) > 0);
    snprintf(name, sizeof name, "%d ", c);
    CHECK(strstr(kids, name) != NULL);
    CHECK_EQ(write(go[1], "x", 1), 1);
    close(go[1]);
    /* Exited but not reaped: a zombie. */
    siginfo_t si;
    CHECK_OK(waitid(P_PID, c, &si, WEXITED | WNOWAIT));
    snprintf(path, sizeof path, "/proc/%d/stat", c);
    CHECK_EQ(parse_stat(path, &pid, comm, f), 52);
    CHECK_STREQ(f[0], "Z");
    int st = 0;
    CHECK_EQ(waitpid(c, &st, 0), c);
    CHECK_EXITED(st, 7);
    struct stat sb;
    snprintf(path, sizeof path, "/proc/%d", c);
    CHECK_ERRNO(stat(path, &sb), ENOENT);
    snprintf(path, sizeof path, "/proc/%d/stat", c);
    CHECK_ERRNO(open(path, O_RDONLY), ENOENT);
    CHECK(!dir_has("/proc", name));
}

/* /proc/PID/mem: the offset is the address; reads and writes reach the memory of the
 * process, and an unmapped address is EIO. */
static volatile char mem_probe[64] = "before";

static void test_mem(void)
{
    int fd = CHECK_OK(open("/proc/self/mem", O_RDWR));
    char buf[16] = { 0 };
    CHECK_EQ(pread(fd, buf, 6, (off_t)(uintptr_t)mem_probe), 6);
    CHECK_STREQ(buf, "before");
    CHECK_EQ(pwrite(fd, "after!", 6, (off_t)(uintptr_t)mem_probe), 6);
    CHECK_EQ(memcmp((const char *)mem_probe, "after!", 6), 0);
    /* A read across into an unmapped page stops at its start. */
    char *two = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(two != MAP_FAILED);
    CHECK_OK(munmap(two + 4096, 4096));
    char big[64];
    CHECK_EQ(pread(fd, big, sizeof big, (off_t)(uintptr_t)(two + 4096 - 16)), 16);
    CHECK_ERRNO(pread(fd, big, sizeof big, (off_t)(uintptr_t)(two + 4096)), EIO);
    munmap(two, 4096);
    /* lseek takes any address, and read follows the offset. */
    CHECK_EQ(lseek(fd, (off_t)(uintptr_t)mem_probe, SEEK_SET), (off_t)(uintptr_t)mem_probe);
    memset(buf, 0, sizeof buf);
    CHECK_EQ(read(fd, buf, 6), 6);
    CHECK_STREQ(buf, "after!");
    close(fd);
    /* Another user's process's memory is out of reach without CAP_SYS_PTRACE. */
    pid_t c = fork();
    if (c == 0) {
        if (setresuid(65534, 65534, 65534) != 0)
            _exit(3);
        char p[64];
        snprintf(p, sizeof p, "/proc/%d/mem", (int)getppid());
        _exit(open(p, O_RDONLY) == -1 && errno == EACCES ? 0 : 4);
    }
    CHECK_EXITED(wait_status(c, 0), 0);
}

static void test_system_files(void)
{
    static char buf[1 << 16];
    struct sysinfo si;
    CHECK_OK(sysinfo(&si));

    CHECK(slurp("/proc/cpuinfo", buf, sizeof buf) > 0);
    int cpus = 0;
    for (char *l = buf; l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        cpus += strncmp(l, "processor\t:", 11) == 0;
    CHECK(cpus >= 1);
    CHECK_EQ(cpus, sysconf(_SC_NPROCESSORS_CONF));
    CHECK(has_line_prefix(buf, "model name\t:"));

    CHECK(slurp("/proc/meminfo", buf, sizeof buf) > 0);
    const char *v = field(buf, "MemTotal");
    CHECK(v && strstr(v, " kB"));
    CHECK_EQ(v ? atoll(v) : 0, (long long)si.totalram * si.mem_unit / 1024);
    CHECK(field(buf, "MemFree") != NULL);
    CHECK(field(buf, "MemAvailable") != NULL);

    double up = -1, idle = -1;
    CHECK(slurp("/proc/uptime", buf, sizeof buf) > 0);
    CHECK_EQ(sscanf(buf, "%lf %lf", &up, &idle), 2);
    CHECK(up > 0 && idle >= 0);
    /* This process started after boot. */
    char comm[64], f[64][32];
    int pid;
    parse_stat("/proc/self/stat", &pid, comm, f);
    CHECK(strtoull(f[19], NULL, 10) <= (unsigned long long)(up * sysconf(_SC_CLK_TCK)) + 1);

    double l1, l5, l15;
    int run, total, last;
    CHECK(slurp("/proc/loadavg", buf, sizeof buf) > 0);
    CHECK_EQ(sscanf(buf, "%lf %lf %lf %d/%d %d", &l1, &l5, &l15, &run, &total, &last), 6);
    CHECK(total >= 1);

    CHECK(slurp("/proc/stat", buf, sizeof buf) > 0);
    CHECK(strncmp(buf, "cpu ", 4) == 0);
    CHECK(has_line_prefix(buf, "cpu0 "));
    CHECK(has_line_prefix(buf, "btime "));
    CHECK(has_line_prefix(buf, "processes "));

    struct utsname u;
    uname(&u);
    CHECK(slurp("/proc/version", buf, sizeof buf) > 0);
    char want[512];
    snprintf(want, sizeof want, "Linux version %s ", u.release);
    CHECK(strncmp(buf, want, strlen(want)) == 0);
    snprintf(want, sizeof want, "%s\n", u.release);
    CHECK(slurp("/proc/sys/kernel/osrelease", buf, sizeof buf) > 0);
    CHECK_STREQ(buf, want);
    snprintf(want, sizeof want, "%s\n", u.nodename);
    CHECK(slurp("/proc/sys/kernel/hostname", buf, sizeof buf) > 0);
    CHECK_STREQ(buf, want);
    CHECK(slurp("/proc/sys/kernel/ostype", buf, sizeof buf) > 0);
    CHECK_STREQ(buf, "Linux\n");
    CHECK(slurp("/proc/sys/kernel/pid_max", buf, sizeof buf) > 0);
    CHECK(atol(buf) >= 32768);
    CHECK(slurp("/proc/sys/kernel/ngroups_max", buf, sizeof buf) > 0);
    CHECK_EQ(atol(buf), sysconf(_SC_NGROUPS_MAX));
    char id1[64], id2[64];
    CHECK(slurp("/proc/sys/kernel/random/boot_id", id1, sizeof id1) == 37);
    CHECK(slurp("/proc/sys/kernel/random/boot_id", id2, sizeof id2) == 37);
    CHECK_STREQ(id1, id2);
    CHECK(slurp("/proc/sys/kernel/random/uuid", id1, sizeof id1) == 37);
    CHECK(slurp("/proc/sys/kernel/random/uuid", id2, sizeof id2) == 37);
    CHECK(strcmp(id1, id2) != 0);
    CHECK(slurp("/proc/sys/vm/overcommit_memory", buf, sizeof buf) > 0);
    CHECK(atoi(buf) >= 0 && atoi(buf) <= 2);
    CHECK(slurp("/proc/sys/vm/max_map_count", buf, sizeof buf) > 0);
    CHECK(atol(buf) > 0);
    CHECK(slurp("/proc/sys/fs/file-max", buf, sizeof buf) > 0);
    CHECK(atoll(buf) > 0);
    CHECK(slurp("/proc/sys/fs/nr_open", buf, sizeof buf) > 0);
    CHECK(atol(buf) >= 1024);
    CHECK(slurp("/proc/filesystems", buf, sizeof buf) > 0);
    CHECK(strstr(buf, "\tproc\n") != NULL);
}

static void test_process_files(void)
{
    static char buf[1 << 16];
    char target[64];
    ssize_t n = CHECK_OK(readlink("/proc/mounts", target, sizeof target - 1));
    target[n < 0 ? 0 : n] = 0;
    CHECK_STREQ(target, "self/mounts");
    CHECK(slurp("/proc/mounts", buf, sizeof buf) > 0);
    CHECK(strstr(buf, " /proc proc ") != NULL);
    CHECK(slurp("/proc/self/mountinfo", buf, sizeof buf) > 0);
    CHECK(strstr(buf, " - proc ") != NULL);

    CHECK(slurp("/proc/self/cgroup", buf, sizeof buf) > 0);
    int ok = 1;
    for (char *l = buf; *l;) {
        char *nl = strchr(l, '\n');
        char *c1 = strchr(l, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        ok &= nl && c1 && c2 && c2 < nl && c2[1] == '/';
        if (!nl)
            break;
        l = nl + 1;
    }
    CHECK(ok);

    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    CHECK(slurp("/proc/self/limits", buf, sizeof buf) > 0);
    CHECK(strncmp(buf, "Limit                     Soft Limit", 36) == 0);
    char *line = strstr(buf, "\nMax open files");
    unsigned long soft = 0, hard = 0;
    CHECK(line && sscanf(line + 1, "Max open files %lu %lu", &soft, &hard) == 2);
    CHECK_EQ(soft, rl.rlim_cur);
    CHECK_EQ(hard, rl.rlim_max);

    CHECK(slurp("/proc/self/oom_score_adj", buf, sizeof buf) > 0);
    int adj = atoi(buf);
    int fd = CHECK_OK(open("/proc/self/oom_score_adj", O_WRONLY));
    char val[16];
    snprintf(val, sizeof val, "%d\n", adj);
    CHECK_EQ(write(fd, val, strlen(val)), (ssize_t)strlen(val));
    CHECK_ERRNO(write(fd, "1001", 4), EINVAL);
    close(fd);

    CHECK(slurp("/proc/self/uid_map", buf, sizeof buf) > 0);
    unsigned long a, b, c;
    CHECK_EQ(sscanf(buf, "%lu %lu %lu", &a, &b, &c), 3);

    n = CHECK_OK(readlink("/proc/self/ns/pid", target, sizeof target - 1));
    target[n < 0 ? 0 : n] = 0;
    CHECK(strncmp(target, "pid:[", 5) == 0);
    struct stat st;
    CHECK_OK(stat("/proc/self/ns/pid", &st));
    CHECK_EQ(st.st_ino, strtoull(target + 5, NULL, 10));
}

static void test_sysfs(void)
{
    char buf[256];
    CHECK(slurp("/sys/devices/system/cpu/online", buf, sizeof buf) > 0);
    CHECK(buf[0] == '0' && buf[strlen(buf) - 1] == '\n');
    CHECK(slurp("/sys/devices/system/cpu/possible", buf, sizeof buf) > 0);
    CHECK(slurp("/sys/devices/system/cpu/present", buf, sizeof buf) > 0);
    struct stat st;
    CHECK_OK(stat("/sys/devices/system/cpu/cpu0", &st));
    CHECK(S_ISDIR(st.st_mode));
    CHECK_OK(stat("/sys/fs/cgroup", &st));
    CHECK(S_ISDIR(st.st_mode));
}

int main(int argc, char **argv)
{
    g_argc = argc;
    g_argv = argv;
    initial_environ = environ;
    test_self_links();
    test_stat_status();
    test_cmdline_environ_auxv();
    test_comm();
    test_exe_cwd_root();
    test_fds();
    test_maps();
    test_threads();
    test_child();
    test_mem();
    test_system_files();
    test_process_files();
    test_sysfs();
    return check_done();
}
