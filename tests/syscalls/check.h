/*
 * check.h: the tiny assertion library shared by every program in tests/syscalls/.
 *
 * Each program runs natively and under `carapace do`, so it must not rely on anything the
 * sentry may lack: output only through stdio. Programs that fork check in children through
 * child.h, which turns a child's checks into one check of its exit status.
 *
 * A failed check prints one line: `file:line: what: expected X, got Y (errno ENAME)`.
 * A program ends with `return check_done();`, which prints exactly `N passed, N failed`
 * on its own line and returns the exit status (0 iff nothing failed). The harness in
 * tests/tests/syscalls.rs parses that line.
 *
 * Every check counts once whether it passes or fails, and programs never skip checks
 * conditionally, so a program that passes runs the same number of checks natively and
 * in the sandbox; the harness compares the two counts.
 */
#ifndef CARAPACE_CHECK_H
#define CARAPACE_CHECK_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int check_passed_count;
static int check_failed_count;

/* An address that is never mapped in a Linux process: the first page is kept unmapped
 * (vm.mmap_min_addr). The kernel must answer EFAULT, never crash, when handed it. */
#define BAD_PTR ((void *)0x10)

static inline const char *check_errno_name(int e)
{
    const char *name = e ? strerrorname_np(e) : "0";
    return name ? name : "E?";
}

static inline void check_record(int ok, const char *file, int line, const char *what,
                                const char *detail, int saved_errno)
{
    if (ok) {
        check_passed_count++;
        return;
    }
    check_failed_count++;
    printf("%s:%d: %s: %s (errno %s)\n", file, line, what, detail,
           check_errno_name(saved_errno));
    fflush(stdout);
}

/* CHECK(cond): cond must be true. */
#define CHECK(cond)                                                                       \
    do {                                                                                  \
        int check_ok_ = !!(cond);                                                         \
        int check_e_ = errno;                                                             \
        check_record(check_ok_, __FILE__, __LINE__, "CHECK(" #cond ")", "false", check_e_); \
    } while (0)

/* CHECK_EQ(a, b): two integers (or pointers, as integers) are equal; b is the expected
 * value. Both are evaluated exactly once. */
#define CHECK_EQ(a, b)                                                                    \
    do {                                                                                  \
        long long check_a_ = (long long)(a);                                              \
        int check_e_ = errno;                                                             \
        long long check_b_ = (long long)(b);                                              \
        char check_d_[128];                                                               \
        snprintf(check_d_, sizeof check_d_, "expected %lld (%#llx), got %lld (%#llx)",    \
                 check_b_, check_b_, check_a_, check_a_);                                 \
        check_record(check_a_ == check_b_, __FILE__, __LINE__, "CHECK_EQ(" #a ", " #b ")", \
                     check_d_, check_e_);                                                 \
    } while (0)

/* CHECK_OK(call): call must not return -1; evaluates to the call's result, so that
 * `int fd = CHECK_OK(open(...));` checks and keeps the value. */
#define CHECK_OK(call)                                                                    \
    ({                                                                                    \
        errno = 0;                                                                        \
        long check_r_ = (long)(call);                                                     \
        int check_e_ = errno;                                                             \
        check_record(check_r_ != -1, __FILE__, __LINE__, #call, "expected success, got -1", \
                     check_e_);                                                           \
        errno = check_e_;                                                                 \
        check_r_;                                                                         \
    })

/* CHECK_ERRNO(call, E): call must fail with -1 and errno E. Works for calls returning a
 * pointer too (MAP_FAILED is (void *)-1). */
#define CHECK_ERRNO(call, E)                                                              \
    do {                                                                                  \
        errno = 0;                                                                        \
        long check_r_ = (long)(call);                                                     \
        int check_e_ = errno;                                                             \
        char check_d_[128];                                                               \
        snprintf(check_d_, sizeof check_d_, "expected -1 with %s, got %ld",               \
                 check_errno_name(E), check_r_);                                          \
        check_record(check_r_ == -1 && check_e_ == (E), __FILE__, __LINE__, #call,        \
                     check_d_, check_e_);                                                 \
    } while (0)

/* CHECK_STREQ(a, b): two NUL-terminated strings are equal; b is the expected one. */
#define CHECK_STREQ(a, b)                                                                 \
    do {                                                                                  \
        const char *check_a_ = (a), *check_b_ = (b);                                      \
        int check_e_ = errno;                                                             \
        char check_d_[256];                                                               \
        snprintf(check_d_, sizeof check_d_, "expected \"%.100s\", got \"%.100s\"",        \
                 check_b_, check_a_);                                                     \
        check_record(strcmp(check_a_, check_b_) == 0, __FILE__, __LINE__,                 \
                     "CHECK_STREQ(" #a ", " #b ")", check_d_, check_e_);                  \
    } while (0)

/* CHECK_MEMEQ(a, b, n): n bytes at a and b are equal. */
#define CHECK_MEMEQ(a, b, n)                                                              \
    do {                                                                                  \
        int check_e_ = errno;                                                             \
        check_record(memcmp((a), (b), (n)) == 0, __FILE__, __LINE__,                      \
                     "CHECK_MEMEQ(" #a ", " #b ", " #n ")", "bytes differ", check_e_);    \
    } while (0)

/* Prints the closing line and returns the exit status for main. */
static inline int check_done(void)
{
    printf("%d passed, %d failed\n", check_passed_count, check_failed_count);
    fflush(stdout);
    return check_failed_count == 0 ? 0 : 1;
}

/* ---- scratch directories under /tmp (the only writable place in the sandbox) ---- */

static char check_tmpdir_path[128];

static int check_rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return type == FTW_DP ? rmdir(path) : unlink(path);
}

static void check_rm_tmpdir(void)
{
    if (check_tmpdir_path[0])
        nftw(check_tmpdir_path, check_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Creates /tmp/carapace-<name>-<pid> (pid keeps parallel native runs apart), removed
 * again at exit. Aborts the program if that fails: nothing else could be checked. */
static inline const char *check_tmpdir(const char *name)
{
    snprintf(check_tmpdir_path, sizeof check_tmpdir_path, "/tmp/carapace-%s-%d", name,
             (int)getpid());
    check_rm_tmpdir();
    if (mkdir(check_tmpdir_path, 0755) != 0) {
        printf("%s: cannot create %s: %s\n", name, check_tmpdir_path,
               check_errno_name(errno));
        printf("0 passed, 1 failed\n");
        exit(1);
    }
    atexit(check_rm_tmpdir);
    return check_tmpdir_path;
}

/* Path of `leaf` inside the scratch directory, in a rotating static buffer. */
static inline const char *tmp_path(const char *leaf)
{
    static char bufs[8][256];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", check_tmpdir_path, leaf);
    return b;
}

/* Writes `len` bytes of `data` to a new file at `path` (mode 0644). */
static inline int write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, data, len);
    close(fd);
    return n == (ssize_t)len ? 0 : -1;
}

/* Copies the file `from` to a new file `to` with `mode` (e.g. this program, to run it
 * from somewhere else). */
static inline int copy_file(const char *from, const char *to, mode_t mode)
{
    int in = open(from, O_RDONLY);
    if (in < 0)
        return -1;
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (out < 0) {
        close(in);
        return -1;
    }
    char buf[65536];
    ssize_t n;
    int ok = 0;
    while ((n = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, n) != n) {
            ok = -1;
            break;
        }
    if (n < 0)
        ok = -1;
    close(in);
    close(out);
    return ok;
}

#endif
