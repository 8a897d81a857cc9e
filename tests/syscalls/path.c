/* Path walking and directories: getcwd/chdir/fchdir, ".", "..", trailing slashes,
 * symlinks (readlink, loops, the 40-link limit, O_NOFOLLOW), O_DIRECTORY, name length
 * limits, mkdir/rmdir/unlink/rename basics, getdents64, and reading host files. */
#include "check.h"

#include <dirent.h>
#include <limits.h>

static void test_cwd(void)
{
    char buf[PATH_MAX];
    CHECK_OK(chdir(check_tmpdir_path));
    CHECK(getcwd(buf, sizeof buf) != NULL);
    CHECK_STREQ(buf, check_tmpdir_path);
    /* The raw syscall returns the length including the NUL. */
    CHECK_EQ(syscall(SYS_getcwd, buf, sizeof buf), strlen(check_tmpdir_path) + 1);
    CHECK_ERRNO(syscall(SYS_getcwd, buf, 5), ERANGE);
    CHECK_ERRNO(syscall(SYS_getcwd, buf, 0), ERANGE);
    CHECK_ERRNO(syscall(SYS_getcwd, BAD_PTR, sizeof buf), EFAULT);

    CHECK_OK(mkdir("sub", 0755));
    CHECK_OK(chdir("sub"));
    CHECK(getcwd(buf, sizeof buf) != NULL);
    CHECK_STREQ(buf, tmp_path("sub"));
    CHECK_OK(chdir(".."));
    CHECK(getcwd(buf, sizeof buf) != NULL);
    CHECK_STREQ(buf, check_tmpdir_path);

    CHECK_OK(write_file("file", "x", 1));
    CHECK_ERRNO(chdir("missing"), ENOENT);
    CHECK_ERRNO(chdir("file"), ENOTDIR);
    CHECK_ERRNO(syscall(SYS_chdir, BAD_PTR), EFAULT);

    int root = CHECK_OK(open("/", O_RDONLY | O_DIRECTORY));
    CHECK_OK(fchdir(root));
    CHECK(getcwd(buf, sizeof buf) != NULL);
    CHECK_STREQ(buf, "/");
    /* ".." of the root is the root. */
    CHECK_OK(chdir(".."));
    CHECK(getcwd(buf, sizeof buf) != NULL);
    CHECK_STREQ(buf, "/");
    int file = CHECK_OK(open(tmp_path("file"), O_RDONLY));
    CHECK_ERRNO(fchdir(file), ENOTDIR);
    CHECK_ERRNO(fchdir(4000), EBADF);
    close(file);
    close(root);
    CHECK_OK(chdir(check_tmpdir_path));
}

static void test_dots_and_slashes(void)
{
    CHECK_OK(mkdir(tmp_path("a"), 0755));
    CHECK_OK(mkdir(tmp_path("a/b"), 0755));
    CHECK_OK(write_file(tmp_path("a/b/f"), "data", 4));
    struct stat want, st;
    CHECK_OK(stat(tmp_path("a/b/f"), &want));
    CHECK_OK(stat(tmp_path("a/./b/../b/./f"), &st));
    CHECK_EQ(st.st_ino, want.st_ino);
    CHECK_OK(stat(tmp_path("a//b///f"), &st));
    CHECK_EQ(st.st_ino, want.st_ino);
    /* "/.." is "/", and so is "/../../..". */
    struct stat root, up;
    CHECK_OK(stat("/", &root));
    CHECK_OK(stat("/../../..", &up));
    CHECK_EQ(up.st_ino, root.st_ino);
    /* A trailing slash (or "/.") demands a directory. */
    CHECK_ERRNO(stat(tmp_path("a/b/f/"), &st), ENOTDIR);
    CHECK_ERRNO(stat(tmp_path("a/b/f/."), &st), ENOTDIR);
    CHECK_ERRNO(open(tmp_path("a/b/f/"), O_RDONLY), ENOTDIR);
    CHECK_OK(stat(tmp_path("a/b/"), &st));
    CHECK(S_ISDIR(st.st_mode));
    /* ".." through a file is ENOTDIR, not a silent step back. */
    CHECK_ERRNO(stat(tmp_path("a/b/f/.."), &st), ENOTDIR);
    CHECK_ERRNO(open(tmp_path("a/b/f"), O_RDONLY | O_DIRECTORY), ENOTDIR);
    int d = CHECK_OK(open(tmp_path("a/b"), O_RDONLY | O_DIRECTORY));
    close(d);
}

static void test_name_limits(void)
{
    /* A component may be 255 bytes, not 256. (tmp_path's buffer is too small here.) */
    char name[300], path[600];
    memset(name, 'n', 256);
    name[256] = 0;
    snprintf(path, sizeof path, "%s/%s", check_tmpdir_path, name);
    CHECK_ERRNO(open(path, O_RDONLY | O_CREAT, 0644), ENAMETOOLONG);
    name[255] = 0;
    snprintf(path, sizeof path, "%s/%s", check_tmpdir_path, name);
    int fd = CHECK_OK(open(path, O_RDONLY | O_CREAT, 0644));
    close(fd);
    static char longpath[PATH_MAX + 10];
    memset(longpath, '/', sizeof longpath - 1);
    longpath[sizeof longpath - 1] = 0;
    CHECK_ERRNO(open(longpath, O_RDONLY), ENAMETOOLONG);
}

static void test_symlinks(void)
{
    CHECK_OK(write_file(tmp_path("real"), "real", 4));
    CHECK_OK(symlink("real", tmp_path("rel")));
    CHECK_OK(symlink(tmp_path("real"), tmp_path("abs")));
    CHECK_OK(symlink(check_tmpdir_path, tmp_path("dirlink")));
    CHECK_ERRNO(symlink("x", tmp_path("rel")), EEXIST);

    char buf[256];
    CHECK_EQ(readlink(tmp_path("rel"), buf, sizeof buf), 4);
    CHECK_MEMEQ(buf, "real", 4);
    /* A short buffer truncates, without a NUL and without an error. */
    CHECK_EQ(readlink(tmp_path("rel"), buf, 2), 2);
    CHECK_MEMEQ(buf, "re", 2);
    CHECK_EQ(readlink(tmp_path("abs"), buf, sizeof buf), strlen(tmp_path("real")));
    int dir = CHECK_OK(open(check_tmpdir_path, O_RDONLY | O_DIRECTORY));
    CHECK_EQ(readlinkat(dir, "rel", buf, sizeof buf), 4);
    /* readlink of a non-link is EINVAL; a zero-sized buffer is EINVAL too. */
    CHECK_ERRNO(readlink(tmp_path("real"), buf, sizeof buf), EINVAL);
    CHECK_ERRNO(readlink("/", buf, sizeof buf), EINVAL);
    CHECK_ERRNO(syscall(SYS_readlink, tmp_path("rel"), buf, 0), EINVAL);
    CHECK_ERRNO(readlink(tmp_path("missing"), buf, sizeof buf), ENOENT);
    CHECK_ERRNO(syscall(SYS_readlink, tmp_path("rel"), BAD_PTR, 10), EFAULT);

    /* Links resolve, in the middle of a path too. */
    char got[8] = { 0 };
    int fd = CHECK_OK(open(tmp_path("rel"), O_RDONLY));
    CHECK_EQ(read(fd, got, sizeof got), 4);
    CHECK_STREQ(got, "real");
    close(fd);
    fd = CHECK_OK(open(tmp_path("dirlink/dirlink/abs"), O_RDONLY));
    close(fd);

    /* O_NOFOLLOW refuses a final symlink (but not one earlier in the path). */
    CHECK_ERRNO(open(tmp_path("rel"), O_RDONLY | O_NOFOLLOW), ELOOP);
    fd = CHECK_OK(open(tmp_path("dirlink/real"), O_RDONLY | O_NOFOLLOW));
    close(fd);
    /* ...while O_PATH | O_NOFOLLOW opens the link itself. */
    fd = CHECK_OK(open(tmp_path("rel"), O_PATH | O_NOFOLLOW));
    struct stat st;
    CHECK_OK(fstat(fd, &st));
    CHECK(S_ISLNK(st.st_mode));
    CHECK_EQ(readlinkat(fd, "", buf, sizeof buf), 4);
    close(fd);

    /* Loops. */
    CHECK_OK(symlink("loop-b", tmp_path("loop-a")));
    CHECK_OK(symlink("loop-a", tmp_path("loop-b")));
    CHECK_OK(symlink("self", tmp_path("self")));
    CHECK_ERRNO(open(tmp_path("loop-a"), O_RDONLY), ELOOP);
    CHECK_ERRNO(open(tmp_path("self"), O_RDONLY), ELOOP);
    CHECK_ERRNO(stat(tmp_path("self"), &st), ELOOP);
    CHECK_ERRNO(open(tmp_path("loop-a/x"), O_RDONLY), ELOOP);
    CHECK_OK(lstat(tmp_path("self"), &st));
    /* O_CREAT through a dangling link creates the target. */
    CHECK_OK(symlink("created-through-link", tmp_path("dangling")));
    fd = CHECK_OK(open(tmp_path("dangling"), O_WRONLY | O_CREAT, 0644));
    close(fd);
    CHECK_OK(access(tmp_path("created-through-link"), F_OK));
    /* ...but O_CREAT | O_EXCL never follows it. */
    CHECK_ERRNO(open(tmp_path("self"), O_WRONLY | O_CREAT | O_EXCL, 0644), EEXIST);

    /* A chain of 40 links resolves; 41 is one too many. */
    char prev[32] = "real", cur[32];
    for (int i = 1; i <= 41; i++) {
        snprintf(cur, sizeof cur, "chain%d", i);
        CHECK_OK(symlink(prev, tmp_path(cur)));
        strcpy(prev, cur);
    }
    fd = CHECK_OK(open(tmp_path("chain40"), O_RDONLY));
    close(fd);
    CHECK_ERRNO(open(tmp_path("chain41"), O_RDONLY), ELOOP);
    close(dir);
}

static void test_dir_ops(void)
{
    CHECK_OK(mkdir(tmp_path("ops"), 0755));
    CHECK_ERRNO(mkdir(tmp_path("ops"), 0755), EEXIST);
    CHECK_ERRNO(mkdir(tmp_path("no/such"), 0755), ENOENT);
    CHECK_OK(write_file(tmp_path("ops/f"), "1", 1));
    CHECK_ERRNO(rmdir(tmp_path("ops")), ENOTEMPTY);
    CHECK_ERRNO(unlink(tmp_path("ops")), EISDIR);
    CHECK_ERRNO(rmdir(tmp_path("ops/f")), ENOTDIR);
    CHECK_ERRNO(rmdir(tmp_path("ops/.")), EINVAL);
    CHECK_OK(rename(tmp_path("ops/f"), tmp_path("ops/g")));
    CHECK_ERRNO(access(tmp_path("ops/f"), F_OK), ENOENT);
    CHECK_OK(access(tmp_path("ops/g"), F_OK));
    CHECK_ERRNO(rename(tmp_path("ops/missing"), tmp_path("ops/h")), ENOENT);
    CHECK_OK(unlink(tmp_path("ops/g")));
    CHECK_ERRNO(unlink(tmp_path("ops/g")), ENOENT);
    CHECK_OK(rmdir(tmp_path("ops")));
}

struct entry {
    char name[256];
    unsigned char type;
};

/* Reads a whole directory with getdents64; returns the number of entries (max `cap`). */
static int read_dir(const char *path, struct entry *out, int cap)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return -1;
    static char buf[4096];
    int count = 0;
    for (;;) {
        long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
        if (n <= 0)
            break;
        for (long off = 0; off < n;) {
            struct dirent64 *d = (struct dirent64 *)(buf + off);
            if (count < cap) {
                snprintf(out[count].name, sizeof out[count].name, "%s", d->d_name);
                out[count].type = d->d_type;
            }
            count++;
            off += d->d_reclen;
        }
    }
    close(fd);
    return count;
}

/* The d_type of `name` among `n` entries, or -1 if absent. */
static int type_of(struct entry *e, int n, const char *name)
{
    for (int i = 0; i < n && i < 256; i++)
        if (strcmp(e[i].name, name) == 0)
            return e[i].type;
    return -1;
}

static void test_getdents(void)
{
    CHECK_OK(mkdir(tmp_path("ls"), 0755));
    CHECK_OK(write_file(tmp_path("ls/file1"), "1", 1));
    CHECK_OK(write_file(tmp_path("ls/file2"), "2", 1));
    CHECK_OK(mkdir(tmp_path("ls/subdir"), 0755));
    CHECK_OK(symlink("file1", tmp_path("ls/link")));

    static struct entry e[256];
    int n = read_dir(tmp_path("ls"), e, 256);
    CHECK_EQ(n, 6);
    CHECK_EQ(type_of(e, n, "."), DT_DIR);
    CHECK_EQ(type_of(e, n, ".."), DT_DIR);
    CHECK_EQ(type_of(e, n, "file1"), DT_REG);
    CHECK_EQ(type_of(e, n, "file2"), DT_REG);
    CHECK_EQ(type_of(e, n, "subdir"), DT_DIR);
    CHECK_EQ(type_of(e, n, "link"), DT_LNK);

    /* The host root, seen read-only: Debian's usr-merged layout. */
    n = read_dir("/", e, 256);
    CHECK(n > 5);
    CHECK_EQ(type_of(e, n, "usr"), DT_DIR);
    CHECK_EQ(type_of(e, n, "etc"), DT_DIR);
    CHECK_EQ(type_of(e, n, "tmp"), DT_DIR);
    CHECK_EQ(type_of(e, n, "bin"), DT_LNK);

    /* A deleted entry disappears from the listing. */
    CHECK_OK(unlink(tmp_path("ls/file2")));
    n = read_dir(tmp_path("ls"), e, 256);
    CHECK_EQ(n, 5);
    CHECK_EQ(type_of(e, n, "file2"), -1);

    int fd = CHECK_OK(open(tmp_path("ls"), O_RDONLY | O_DIRECTORY));
    char small[8];
    CHECK_ERRNO(syscall(SYS_getdents64, fd, small, sizeof small), EINVAL);
    CHECK_ERRNO(syscall(SYS_getdents64, fd, BAD_PTR, 4096), EFAULT);
    /* Rewinding with lseek restarts the listing. */
    static char buf[4096];
    long first = CHECK_OK(syscall(SYS_getdents64, fd, buf, sizeof buf));
    CHECK(first > 0);
    CHECK_EQ(syscall(SYS_getdents64, fd, buf, sizeof buf), 0);
    CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
    CHECK_EQ(syscall(SYS_getdents64, fd, buf, sizeof buf), first);
    close(fd);
    int file = CHECK_OK(open(tmp_path("ls/file1"), O_RDONLY));
    CHECK_ERRNO(syscall(SYS_getdents64, file, buf, sizeof buf), ENOTDIR);
    close(file);
    CHECK_ERRNO(syscall(SYS_getdents64, 4000, buf, sizeof buf), EBADF);
}

static void test_host_files(void)
{
    char buf[8192];
    int fd = CHECK_OK(open("/etc/passwd", O_RDONLY));
    long n = CHECK_OK(read(fd, buf, sizeof buf - 1));
    CHECK(n > 5);
    CHECK(strncmp(buf, "root:", 5) == 0);
    close(fd);

    /* /usr/bin/ls, read to the end: an ELF file of the size fstat reports. */
    fd = CHECK_OK(open("/usr/bin/ls", O_RDONLY));
    struct stat st;
    CHECK_OK(fstat(fd, &st));
    long total = 0, r;
    int first = 1, elf = 0;
    while ((r = read(fd, buf, sizeof buf)) > 0) {
        if (first)
            elf = r >= 4 && memcmp(buf, "\177ELF", 4) == 0;
        first = 0;
        total += r;
    }
    CHECK_EQ(r, 0);
    CHECK(elf);
    CHECK_EQ(total, st.st_size);
    close(fd);
    /* Through the usr-merge symlink /bin -> usr/bin, the same file. */
    struct stat via_bin;
    CHECK_OK(stat("/bin/ls", &via_bin));
    CHECK_EQ(via_bin.st_ino, st.st_ino);
}

int main(void)
{
    umask(022);
    check_tmpdir("path");
    test_cwd();
    test_dots_and_slashes();
    test_name_limits();
    test_symlinks();
    test_dir_ops();
    test_getdents();
    test_host_files();
    CHECK_OK(chdir("/"));
    return check_done();
}
