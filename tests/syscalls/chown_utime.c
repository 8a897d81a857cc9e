/* Ownership and timestamps: chown/fchown/lchown/fchownat, utimensat/futimens/futimesat/
 * utimes/utime, with the permission rules for root and for an unprivileged euid. */
#include "check.h"

#include <sys/time.h>
#include <time.h>
#include <utime.h>

static void as_user(uid_t uid, gid_t gid)
{
    /* Keep the saved ids at 0 so that root can come back. */
    CHECK_OK(syscall(SYS_setresgid, -1, gid, -1));
    CHECK_OK(syscall(SYS_setresuid, -1, uid, -1));
}

static void as_root(void)
{
    CHECK_OK(syscall(SYS_setresuid, -1, 0, -1));
    CHECK_OK(syscall(SYS_setresgid, -1, 0, -1));
}

static void test_chown(void)
{
    char f[256];
    snprintf(f, sizeof f, "%s", tmp_path("owned"));
    CHECK_OK(write_file(f, "x", 1));
    CHECK_OK(chown(f, 1000, 2000));
    struct stat st;
    CHECK_OK(stat(f, &st));
    CHECK_EQ(st.st_uid, 1000);
    CHECK_EQ(st.st_gid, 2000);
    /* -1 leaves a field alone. */
    CHECK_OK(chown(f, -1, 3000));
    CHECK_OK(stat(f, &st));
    CHECK_EQ(st.st_uid, 1000);
    CHECK_EQ(st.st_gid, 3000);

    /* lchown changes the link, chown the target. */
    CHECK_OK(symlink("owned", tmp_path("olink")));
    CHECK_OK(lchown(tmp_path("olink"), 42, 43));
    struct stat lst;
    CHECK_OK(lstat(tmp_path("olink"), &lst));
    CHECK_EQ(lst.st_uid, 42);
    CHECK_OK(stat(f, &st));
    CHECK_EQ(st.st_uid, 1000);

    /* fchown, fchownat with AT_EMPTY_PATH and AT_SYMLINK_NOFOLLOW. */
    int fd = CHECK_OK(open(f, O_RDONLY));
    CHECK_OK(fchown(fd, 0, 0));
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_uid, 0);
    CHECK_OK(fchownat(fd, "", 7, 8, AT_EMPTY_PATH));
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_gid, 8);
    int dir = CHECK_OK(open(check_tmpdir_path, O_RDONLY | O_DIRECTORY));
    CHECK_OK(fchownat(dir, "olink", 9, 9, AT_SYMLINK_NOFOLLOW));
    CHECK_OK(lstat(tmp_path("olink"), &lst));
    CHECK_EQ(lst.st_uid, 9);
    CHECK_ERRNO(fchownat(dir, "olink", 9, 9, 0x4000), EINVAL);
    CHECK_ERRNO(chown(tmp_path("missing"), 1, 1), ENOENT);
    CHECK_ERRNO(fchown(-1, 1, 1), EBADF);
    close(dir);

    /* Any chown of a non-directory clears set-user-ID, and set-group-ID with group exec. */
    CHECK_OK(fchmod(fd, 06755));
    CHECK_OK(fchown(fd, 0, 0));
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_mode & 07777, 0755);
    CHECK_OK(fchmod(fd, 02644));
    CHECK_OK(fchown(fd, 0, 0));
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_mode & 07777, 02644);
    /* Directories keep theirs. */
    CHECK_OK(mkdir(tmp_path("sdir"), 02755));
    CHECK_OK(chmod(tmp_path("sdir"), 02755));
    CHECK_OK(chown(tmp_path("sdir"), 5, 5));
    CHECK_OK(stat(tmp_path("sdir"), &st));
    CHECK_EQ(st.st_mode & 07777, 02755);

    /* An unprivileged owner may change the group only to one of its own. */
    CHECK_OK(fchown(fd, 1000, 1000));
    as_user(1000, 1000);
    CHECK_OK(chown(f, -1, 1000));
    CHECK_OK(chown(f, 1000, -1));
    CHECK_ERRNO(chown(f, -1, 4242), EPERM);
    CHECK_ERRNO(chown(f, 0, -1), EPERM);
    CHECK_ERRNO(chown(tmp_path("sdir"), -1, 1000), EPERM);
    as_root();
    close(fd);
}

static void test_utimens(void)
{
    char f[256];
    snprintf(f, sizeof f, "%s", tmp_path("times"));
    CHECK_OK(write_file(f, "x", 1));
    struct timespec ts[2] = {{1000, 111}, {2000, 222}};
    CHECK_OK(utimensat(AT_FDCWD, f, ts, 0));
    struct stat st;
    CHECK_OK(stat(f, &st));
    CHECK_EQ(st.st_atim.tv_sec, 1000);
    CHECK_EQ(st.st_atim.tv_nsec, 111);
    CHECK_EQ(st.st_mtim.tv_sec, 2000);
    CHECK_EQ(st.st_mtim.tv_nsec, 222);

    /* UTIME_OMIT leaves one alone, UTIME_NOW is now. */
    struct timespec omit_now[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
    time_t before = time(NULL);
    CHECK_OK(utimensat(AT_FDCWD, f, omit_now, 0));
    CHECK_OK(stat(f, &st));
    CHECK_EQ(st.st_atim.tv_sec, 1000);
    CHECK(st.st_mtim.tv_sec >= before);
    /* Both omitted: success even for a missing file. */
    struct timespec omit2[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
    CHECK_OK(utimensat(AT_FDCWD, tmp_path("missing"), omit2, 0));
    /* Bad nanoseconds. */
    struct timespec bad[2] = {{0, 1000000000}, {0, 0}};
    CHECK_ERRNO(utimensat(AT_FDCWD, f, bad, 0), EINVAL);
    CHECK_ERRNO(utimensat(AT_FDCWD, f, ts, 0x4000), EINVAL);
    CHECK_ERRNO(syscall(SYS_utimensat, AT_FDCWD, f, BAD_PTR, 0), EFAULT);

    /* futimens (NULL path) and NULL times. */
    int fd = CHECK_OK(open(f, O_RDONLY));
    CHECK_OK(futimens(fd, ts));
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_mtim.tv_sec, 2000);
    CHECK_OK(futimens(fd, NULL));
    CHECK_OK(fstat(fd, &st));
    CHECK(st.st_mtim.tv_sec >= before);
    CHECK_ERRNO(syscall(SYS_utimensat, AT_FDCWD, NULL, ts, 0), EFAULT);
    CHECK_ERRNO(syscall(SYS_utimensat, fd, NULL, ts, AT_SYMLINK_NOFOLLOW), EINVAL);

    /* A symlink's own times with AT_SYMLINK_NOFOLLOW. */
    CHECK_OK(symlink("times", tmp_path("tlink")));
    CHECK_OK(utimensat(AT_FDCWD, tmp_path("tlink"), ts, AT_SYMLINK_NOFOLLOW));
    struct stat lst;
    CHECK_OK(lstat(tmp_path("tlink"), &lst));
    CHECK_EQ(lst.st_mtim.tv_sec, 2000);

    /* utimes / futimesat / utime. */
    struct timeval tv[2] = {{3000, 5}, {4000, 6}};
    CHECK_OK(utimes(f, tv));
    CHECK_OK(stat(f, &st));
    CHECK_EQ(st.st_mtim.tv_sec, 4000);
    CHECK_EQ(st.st_mtim.tv_nsec, 6000);
    struct timeval badtv[2] = {{0, 1000000}, {0, 0}};
    CHECK_ERRNO(utimes(f, badtv), EINVAL);
    int dir = CHECK_OK(open(check_tmpdir_path, O_RDONLY | O_DIRECTORY));
    CHECK_OK(syscall(SYS_futimesat, dir, "times", tv));
    struct utimbuf ub = {5000, 6000};
    CHECK_OK(utime(f, &ub));
    CHECK_OK(stat(f, &st));
    CHECK_EQ(st.st_atim.tv_sec, 5000);
    CHECK_EQ(st.st_mtim.tv_sec, 6000);
    CHECK_EQ(st.st_mtim.tv_nsec, 0);
    CHECK_OK(utime(f, NULL));
    CHECK_OK(stat(f, &st));
    CHECK(st.st_mtim.tv_sec >= before);
    close(dir);

    /* Permissions: not the owner. Writable: may touch to now, not set times. */
    CHECK_OK(chmod(f, 0666));
    as_user(1000, 1000);
    CHECK_OK(utimensat(AT_FDCWD, f, NULL, 0));
    CHECK_ERRNO(utimensat(AT_FDCWD, f, ts, 0), EPERM);
    as_root();
    CHECK_OK(chmod(f, 0644));
    as_user(1000, 1000);
    CHECK_ERRNO(utimensat(AT_FDCWD, f, NULL, 0), EACCES);
    as_root();
    close(fd);
}

int main(void)
{
    check_tmpdir("chown_utime");
    test_chown();
    test_utimens();
    return check_done();
}
