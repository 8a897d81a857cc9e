/* File operations beyond read/write: fallocate, mknod(at), fsync/fdatasync/sync/syncfs/
 * sync_file_range, posix_fadvise, readahead, sendfile, copy_file_range,
 * name_to_handle_at and chroot. Works under /tmp only. */
#include "check.h"

#include <sys/sendfile.h>
#include <sys/sysmacros.h>

static void test_fallocate(void)
{
    int fd = CHECK_OK(open(tmp_path("fa"), O_CREAT | O_RDWR, 0644));
    struct stat st;
    CHECK_OK(fallocate(fd, 0, 0, 8192));
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_size, 8192);
    CHECK_OK(fallocate(fd, FALLOC_FL_KEEP_SIZE, 8192, 8192));
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_size, 8192);
    /* A hole reads back as zeros, and the size stays. */
    CHECK_EQ(pwrite(fd, "abcdef", 6, 100), 6);
    CHECK_OK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 101, 2));
    char buf[6];
    CHECK_EQ(pread(fd, buf, 6, 100), 6);
    CHECK_MEMEQ(buf, "a\0\0def", 6);
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_size, 8192);
    CHECK_ERRNO(fallocate(fd, FALLOC_FL_PUNCH_HOLE, 0, 1), EOPNOTSUPP);
    CHECK_ERRNO(fallocate(fd, 0, -1, 1), EINVAL);
    CHECK_ERRNO(fallocate(fd, 0, 0, 0), EINVAL);
    CHECK_ERRNO(fallocate(fd, 0, 0x7fffffffffffffffLL, 2), EFBIG);
    CHECK_ERRNO(fallocate(-1, 0, 0, 1), EBADF);
    int ro = CHECK_OK(open(tmp_path("fa"), O_RDONLY));
    CHECK_ERRNO(fallocate(ro, 0, 0, 1), EBADF);
    close(ro);
    close(fd);
}

static void test_mknod(void)
{
    struct stat st;
    CHECK_OK(mknod(tmp_path("reg"), S_IFREG | 0640, 0));
    CHECK_OK(stat(tmp_path("reg"), &st));
    CHECK(S_ISREG(st.st_mode));
    CHECK_EQ(st.st_mode & 0777, 0640 & ~022);
    CHECK_OK(mknod(tmp_path("reg0"), 0600, 0));
    CHECK_OK(stat(tmp_path("reg0"), &st));
    CHECK(S_ISREG(st.st_mode));
    CHECK_OK(mkfifo(tmp_path("fifo"), 0644));
    CHECK_OK(stat(tmp_path("fifo"), &st));
    CHECK(S_ISFIFO(st.st_mode));
    CHECK_OK(mknod(tmp_path("sock"), S_IFSOCK | 0644, 0));
    CHECK_OK(lstat(tmp_path("sock"), &st));
    CHECK(S_ISSOCK(st.st_mode));
    /* Opening a socket node is ENXIO. */
    CHECK_ERRNO(open(tmp_path("sock"), O_RDONLY), ENXIO);
    CHECK_OK(mknod(tmp_path("null2"), S_IFCHR | 0666, makedev(1, 3)));
    CHECK_OK(stat(tmp_path("null2"), &st));
    CHECK(S_ISCHR(st.st_mode));
    CHECK_EQ(major(st.st_rdev), 1);
    CHECK_EQ(minor(st.st_rdev), 3);
    int dir = CHECK_OK(open(check_tmpdir_path, O_RDONLY | O_DIRECTORY));
    CHECK_OK(mknodat(dir, "at", S_IFIFO | 0600, 0));
    CHECK_ERRNO(mknodat(dir, "at", S_IFIFO | 0600, 0), EEXIST);
    CHECK_ERRNO(mknod(tmp_path("dir"), S_IFDIR | 0755, 0), EPERM);
    CHECK_ERRNO(mknod(tmp_path("bad"), 0170000 | 0755, 0), EINVAL);
    CHECK_ERRNO(mknod(tmp_path("nodir/x"), S_IFIFO | 0600, 0), ENOENT);
    close(dir);
    /* A device node needs CAP_MKNOD (checked after the directory permissions). */
    CHECK_OK(chmod(check_tmpdir_path, 0777));
    CHECK_OK(syscall(SYS_setresuid, -1, 1000, -1));
    CHECK_ERRNO(mknod(tmp_path("dev2"), S_IFCHR | 0666, makedev(1, 3)), EPERM);
    CHECK_OK(syscall(SYS_setresuid, -1, 0, -1));
}

static void test_sync_and_advice(void)
{
    int fd = CHECK_OK(open(tmp_path("s"), O_CREAT | O_RDWR, 0644));
    CHECK_EQ(write(fd, "data", 4), 4);
    CHECK_OK(fsync(fd));
    CHECK_OK(fdatasync(fd));
    CHECK_OK(syncfs(fd));
    sync();
    CHECK_ERRNO(fsync(-1), EBADF);
    CHECK_ERRNO(fdatasync(12345), EBADF);
    CHECK_OK(sync_file_range(fd, 0, 4, SYNC_FILE_RANGE_WRITE));
    CHECK_ERRNO(sync_file_range(fd, 0, 4, 8), EINVAL);
    CHECK_ERRNO(sync_file_range(fd, -1, 4, 0), EINVAL);
    CHECK_EQ(posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL), 0);
    CHECK_EQ(posix_fadvise(fd, 0, 0, 99), EINVAL);
    CHECK_EQ(posix_fadvise(fd, 0, -1, POSIX_FADV_NORMAL), EINVAL);
    CHECK_EQ(posix_fadvise(-1, 0, 0, POSIX_FADV_NORMAL), EBADF);
    CHECK_OK(readahead(fd, 0, 4096));
    int dir = CHECK_OK(open(check_tmpdir_path, O_RDONLY | O_DIRECTORY));
    CHECK_OK(fsync(dir));
    CHECK_ERRNO(readahead(dir, 0, 4096), EINVAL);
    CHECK_ERRNO(fallocate(dir, 0, 0, 1), EBADF);
    close(dir);
    int wo = CHECK_OK(open(tmp_path("s"), O_WRONLY));
    CHECK_ERRNO(readahead(wo, 0, 1), EBADF);
    close(wo);
    int p = CHECK_OK(open(tmp_path("s"), O_PATH));
    CHECK_ERRNO(fsync(p), EBADF);
    close(p);
    close(fd);
}

static void test_copies(void)
{
    CHECK_OK(write_file(tmp_path("src"), "0123456789", 10));
    int in = CHECK_OK(open(tmp_path("src"), O_RDONLY));
    int out = CHECK_OK(open(tmp_path("dst"), O_CREAT | O_RDWR | O_TRUNC, 0644));
    /* sendfile from the file offset, then from an explicit one. */
    CHECK_EQ(sendfile(out, in, NULL, 4), 4);
    CHECK_EQ(lseek(in, 0, SEEK_CUR), 4);
    off_t off = 8;
    CHECK_EQ(sendfile(out, in, &off, 100), 2);
    CHECK_EQ(off, 10);
    CHECK_EQ(lseek(in, 0, SEEK_CUR), 4);
    char buf[16] = {0};
    CHECK_EQ(pread(out, buf, sizeof buf, 0), 6);
    CHECK_MEMEQ(buf, "012389", 6);
    CHECK_EQ(sendfile(out, in, &off, 10), 0);
    CHECK_ERRNO(sendfile(in, out, NULL, 1), EBADF);
    CHECK_ERRNO(sendfile(-1, in, NULL, 1), EBADF);
    off = -1;
    CHECK_ERRNO(sendfile(out, in, &off, 1), EINVAL);
    CHECK_ERRNO(sendfile(out, in, BAD_PTR, 1), EFAULT);

    /* copy_file_range with and without explicit offsets. */
    int out2 = CHECK_OK(open(tmp_path("dst2"), O_CREAT | O_RDWR | O_TRUNC, 0644));
    loff_t oi = 2, oo = 0;
    CHECK_EQ(copy_file_range(in, &oi, out2, &oo, 3, 0), 3);
    CHECK_EQ(oi, 5);
    CHECK_EQ(oo, 3);
    CHECK_EQ(lseek(in, 0, SEEK_CUR), 4);
    CHECK_EQ(copy_file_range(in, NULL, out2, NULL, 100, 0), 6);
    CHECK_EQ(lseek(in, 0, SEEK_CUR), 10);
    CHECK_EQ(lseek(out2, 0, SEEK_CUR), 6);
    memset(buf, 0, sizeof buf);
    CHECK_EQ(pread(out2, buf, sizeof buf, 0), 6);
    CHECK_MEMEQ(buf, "456789", 6);
    CHECK_ERRNO(copy_file_range(in, NULL, out2, NULL, 1, 1), EINVAL);
    CHECK_ERRNO(copy_file_range(out2, NULL, in, NULL, 1, 0), EBADF);
    /* Overlapping ranges in one file. */
    loff_t a = 0, b = 2;
    CHECK_ERRNO(copy_file_range(out2, &a, out2, &b, 4, 0), EINVAL);
    int dir = CHECK_OK(open(check_tmpdir_path, O_RDONLY | O_DIRECTORY));
    CHECK_ERRNO(copy_file_range(dir, NULL, out2, NULL, 1, 0), EISDIR);
    close(dir);
    close(in);
    close(out);
    close(out2);
}

static void test_handles_and_chroot(void)
{
    struct file_handle *h = malloc(sizeof(*h) + 128);
    h->handle_bytes = 128;
    int mount_id;
    long r = name_to_handle_at(AT_FDCWD, tmp_path("src"), h, &mount_id, 0);
    /* Filesystems may or may not export handles; the sandbox's do not. */
    CHECK(r == 0 || errno == EOPNOTSUPP);
    CHECK_ERRNO(name_to_handle_at(AT_FDCWD, tmp_path("nope"), h, &mount_id, 0), ENOENT);
    free(h);

    /* chroot into the scratch directory and back out through a saved fd. */
    CHECK_OK(mkdir(tmp_path("jail"), 0755));
    CHECK_OK(write_file(tmp_path("jail/inside"), "in", 2));
    int oldroot = CHECK_OK(open("/", O_RDONLY | O_DIRECTORY));
    CHECK_ERRNO(chroot(tmp_path("src")), ENOTDIR);
    CHECK_ERRNO(chroot(tmp_path("nope")), ENOENT);
    CHECK_OK(chroot(tmp_path("jail")));
    CHECK_OK(chdir("/"));
    struct stat st;
    CHECK_OK(stat("/inside", &st));
    CHECK_EQ(st.st_size, 2);
    CHECK_ERRNO(stat("/etc", &st), ENOENT);
    CHECK_OK(stat("/../../inside", &st));
    CHECK_OK(fchdir(oldroot));
    CHECK_OK(chroot("."));
    CHECK_OK(stat(check_tmpdir_path, &st));
    close(oldroot);
    /* Unprivileged: EPERM. */
    CHECK_OK(syscall(SYS_setresuid, -1, 1000, -1));
    CHECK_ERRNO(chroot("/"), EPERM);
    CHECK_OK(syscall(SYS_setresuid, -1, 0, -1));
}

int main(void)
{
    check_tmpdir("fileops");
    test_fallocate();
    test_mknod();
    test_sync_and_advice();
    test_copies();
    test_handles_and_chroot();
    return check_done();
}
