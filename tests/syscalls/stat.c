/* File metadata: stat/lstat/fstat/newfstatat/statx, access/faccessat/faccessat2,
 * statfs/fstatfs. */
#include "check.h"

#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <time.h>

static void test_stat_family(void)
{
    CHECK_OK(write_file(tmp_path("f"), "12345", 5));
    CHECK_OK(symlink("f", tmp_path("link")));

    struct stat st, lst, fst;
    CHECK_OK(stat(tmp_path("f"), &st));
    CHECK(S_ISREG(st.st_mode));
    CHECK_EQ(st.st_size, 5);
    CHECK_EQ(st.st_nlink, 1);
    CHECK_EQ(st.st_uid, geteuid());
    CHECK(st.st_ino != 0);
    CHECK(st.st_blksize > 0);

    /* stat follows the link, lstat describes the link itself. */
    struct stat via_link;
    CHECK_OK(stat(tmp_path("link"), &via_link));
    CHECK_EQ(via_link.st_ino, st.st_ino);
    CHECK_OK(lstat(tmp_path("link"), &lst));
    CHECK(S_ISLNK(lst.st_mode));
    CHECK_EQ(lst.st_size, 1); /* the length of the target "f" */
    CHECK(lst.st_ino != st.st_ino);

    int fd = CHECK_OK(open(tmp_path("f"), O_RDONLY));
    CHECK_OK(fstat(fd, &fst));
    CHECK_EQ(fst.st_ino, st.st_ino);
    CHECK_EQ(fst.st_dev, st.st_dev);
    CHECK_EQ(fst.st_size, 5);

    /* newfstatat: relative to a directory, AT_EMPTY_PATH on the fd itself,
     * AT_SYMLINK_NOFOLLOW for lstat. */
    int dir = CHECK_OK(open(check_tmpdir_path, O_RDONLY | O_DIRECTORY));
    struct stat at;
    CHECK_OK(fstatat(dir, "f", &at, 0));
    CHECK_EQ(at.st_ino, st.st_ino);
    CHECK_OK(fstatat(fd, "", &at, AT_EMPTY_PATH));
    CHECK_EQ(at.st_ino, st.st_ino);
    CHECK_OK(fstatat(dir, "link", &at, AT_SYMLINK_NOFOLLOW));
    CHECK(S_ISLNK(at.st_mode));
    CHECK_OK(fstatat(dir, "link", &at, 0));
    CHECK(S_ISREG(at.st_mode));
    CHECK_ERRNO(fstatat(fd, "", &at, 0), ENOENT);
    CHECK_ERRNO(fstatat(dir, "f", &at, 0x40000000), EINVAL);
    CHECK_ERRNO(fstatat(fd, "f", &at, 0), ENOTDIR);
    CHECK_ERRNO(fstatat(4000, "f", &at, 0), EBADF);

    CHECK_ERRNO(stat(tmp_path("nope"), &st), ENOENT);
    CHECK_ERRNO(stat(tmp_path("f/x"), &st), ENOTDIR);
    CHECK_ERRNO(syscall(SYS_stat, tmp_path("f"), BAD_PTR), EFAULT);
    CHECK_ERRNO(syscall(SYS_stat, BAD_PTR, &st), EFAULT);
    CHECK_ERRNO(syscall(SYS_fstat, fd, BAD_PTR), EFAULT);
    CHECK_ERRNO(fstat(-1, &st), EBADF);

    /* Directories: "/" and a fresh one, whose mode is the requested one less the umask. */
    CHECK_OK(stat("/", &st));
    CHECK(S_ISDIR(st.st_mode));
    CHECK_OK(mkdir(tmp_path("d"), 0755));
    CHECK_OK(stat(tmp_path("d"), &st));
    CHECK(S_ISDIR(st.st_mode));
    CHECK_EQ(st.st_mode & 07777, 0755 & ~022);
    close(fd);
    close(dir);
}

static void test_stat_times(void)
{
    int fd = CHECK_OK(open(tmp_path("times"), O_RDWR | O_CREAT | O_TRUNC, 0644));
    struct stat a, b;
    CHECK_OK(fstat(fd, &a));
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    /* Timestamps are recent (coarse clocks may lag the fine one by a tick). */
    CHECK(a.st_mtim.tv_sec <= now.tv_sec && a.st_mtim.tv_sec >= now.tv_sec - 5);
    struct timespec ten_ms = { 0, 10000000 };
    nanosleep(&ten_ms, NULL);
    CHECK_EQ(write(fd, "x", 1), 1);
    CHECK_OK(fstat(fd, &b));
    /* A write moves the modification time forward (or leaves it within one tick). */
    CHECK(b.st_mtim.tv_sec > a.st_mtim.tv_sec ||
          (b.st_mtim.tv_sec == a.st_mtim.tv_sec && b.st_mtim.tv_nsec >= a.st_mtim.tv_nsec));
    close(fd);
}

static void test_statx(void)
{
    CHECK_OK(write_file(tmp_path("sx"), "abcdefgh", 8));
    CHECK_OK(symlink("sx", tmp_path("sxlink")));
    struct statx sx;
    struct stat st;
    CHECK_OK(stat(tmp_path("sx"), &st));

    memset(&sx, 0xff, sizeof sx);
    CHECK_OK(statx(AT_FDCWD, tmp_path("sx"), 0, STATX_BASIC_STATS, &sx));
    CHECK_EQ(sx.stx_mask & STATX_BASIC_STATS, STATX_BASIC_STATS);
    CHECK_EQ(sx.stx_size, 8);
    CHECK_EQ(sx.stx_ino, st.st_ino);
    CHECK(S_ISREG(sx.stx_mode));
    CHECK_EQ(sx.stx_mode & 07777, st.st_mode & 07777);
    CHECK_EQ(sx.stx_uid, st.st_uid);
    CHECK_EQ(sx.stx_nlink, 1);
    CHECK_EQ(makedev(sx.stx_dev_major, sx.stx_dev_minor), st.st_dev);
    CHECK_EQ(sx.stx_mtime.tv_sec, st.st_mtim.tv_sec);
    CHECK_EQ(sx.stx_mtime.tv_nsec, st.st_mtim.tv_nsec);

    /* Asking for less still fills at least what was asked for. */
    memset(&sx, 0, sizeof sx);
    CHECK_OK(statx(AT_FDCWD, tmp_path("sx"), 0, STATX_SIZE, &sx));
    CHECK(sx.stx_mask & STATX_SIZE);
    CHECK_EQ(sx.stx_size, 8);

    CHECK_OK(statx(AT_FDCWD, tmp_path("sxlink"), AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &sx));
    CHECK(S_ISLNK(sx.stx_mode));
    CHECK_EQ(sx.stx_size, 2);
    CHECK_OK(statx(AT_FDCWD, tmp_path("sxlink"), 0, STATX_BASIC_STATS, &sx));
    CHECK(S_ISREG(sx.stx_mode));

    int fd = CHECK_OK(open(tmp_path("sx"), O_RDONLY));
    CHECK_OK(statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &sx));
    CHECK_EQ(sx.stx_ino, st.st_ino);
    CHECK_ERRNO(statx(fd, "", 0, STATX_BASIC_STATS, &sx), ENOENT);
    /* Reserved mask bits and contradictory sync flags are EINVAL. */
    CHECK_ERRNO(statx(fd, "", AT_EMPTY_PATH, 0x80000000U, &sx), EINVAL);
    CHECK_ERRNO(statx(fd, "", AT_EMPTY_PATH | AT_STATX_FORCE_SYNC | AT_STATX_DONT_SYNC,
                      STATX_BASIC_STATS, &sx),
                EINVAL);
    CHECK_ERRNO(statx(AT_FDCWD, tmp_path("sx"), 0x40000000, STATX_BASIC_STATS, &sx), EINVAL);
    CHECK_ERRNO(syscall(SYS_statx, AT_FDCWD, tmp_path("sx"), 0, STATX_BASIC_STATS, BAD_PTR),
                EFAULT);
    CHECK_ERRNO(statx(AT_FDCWD, tmp_path("none"), 0, STATX_BASIC_STATS, &sx), ENOENT);
    CHECK_ERRNO(statx(4000, "x", 0, STATX_BASIC_STATS, &sx), EBADF);
    close(fd);
}

static void test_access(void)
{
    CHECK_OK(write_file(tmp_path("acc"), "x", 1));
    CHECK_OK(chmod(tmp_path("acc"), 0644));
    CHECK_OK(access(tmp_path("acc"), F_OK));
    CHECK_OK(access(tmp_path("acc"), R_OK));
    CHECK_OK(access(tmp_path("acc"), R_OK | W_OK));
    /* X_OK needs an execute bit somewhere, even for root. */
    CHECK_ERRNO(access(tmp_path("acc"), X_OK), EACCES);
    CHECK_OK(access("/usr/bin/ls", X_OK));
    CHECK_OK(access("/etc/passwd", R_OK));
    CHECK_ERRNO(access(tmp_path("missing"), F_OK), ENOENT);
    CHECK_ERRNO(access(tmp_path("acc/x"), F_OK), ENOTDIR);
    CHECK_ERRNO(access(tmp_path("acc"), 8), EINVAL);
    CHECK_ERRNO(syscall(SYS_access, BAD_PTR, F_OK), EFAULT);

    int dir = CHECK_OK(open(check_tmpdir_path, O_RDONLY | O_DIRECTORY));
    CHECK_OK(faccessat(dir, "acc", R_OK, 0));
    CHECK_ERRNO(syscall(SYS_faccessat, dir, "acc", X_OK), EACCES);
    CHECK_ERRNO(syscall(SYS_faccessat, dir, "missing", F_OK), ENOENT);
    /* faccessat2 takes flags; the plain faccessat syscall does not. */
    CHECK_OK(syscall(SYS_faccessat2, dir, "acc", R_OK, AT_EACCESS));
    CHECK_OK(syscall(SYS_faccessat2, dir, "", R_OK, AT_EMPTY_PATH));
    CHECK_OK(symlink("missing", tmp_path("dangling")));
    CHECK_ERRNO(syscall(SYS_faccessat2, dir, "dangling", F_OK, 0), ENOENT);
    CHECK_OK(syscall(SYS_faccessat2, dir, "dangling", F_OK, AT_SYMLINK_NOFOLLOW));
    CHECK_ERRNO(syscall(SYS_faccessat2, dir, "acc", R_OK, 0x1), EINVAL);
    CHECK_ERRNO(syscall(SYS_faccessat2, dir, "acc", 8, 0), EINVAL);
    CHECK_ERRNO(syscall(SYS_faccessat2, 4000, "acc", R_OK, 0), EBADF);
    close(dir);
}

static void test_statfs(void)
{
    struct statfs a, b;
    CHECK_OK(statfs("/tmp", &a));
    CHECK(a.f_bsize > 0);
    CHECK(a.f_namelen >= 255);
    CHECK(a.f_blocks >= a.f_bfree);
    CHECK(a.f_bfree >= a.f_bavail);
    int fd = CHECK_OK(open("/tmp", O_RDONLY | O_DIRECTORY));
    CHECK_OK(fstatfs(fd, &b));
    CHECK_EQ(b.f_type, a.f_type);
    CHECK_EQ(b.f_bsize, a.f_bsize);
    close(fd);
    CHECK_OK(statfs("/", &a));
    CHECK(a.f_bsize > 0);
    CHECK_ERRNO(statfs(tmp_path("none"), &a), ENOENT);
    CHECK_ERRNO(syscall(SYS_statfs, "/tmp", BAD_PTR), EFAULT);
    CHECK_ERRNO(fstatfs(-1, &a), EBADF);
}

int main(void)
{
    umask(022);
    check_tmpdir("stat");
    test_stat_family();
    test_stat_times();
    test_statx();
    test_access();
    test_statfs();
    return check_done();
}
