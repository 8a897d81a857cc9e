/* mount/umount2 inside the sandbox: tmpfs mounts with options, bind mounts of directories
 * and files, read-only remounts (per bind mount and per filesystem), stacked mounts,
 * EBUSY for a mount in use, MNT_DETACH, propagation flags, the errors, and that both
 * mount and chroot need their capability (EPERM without).
 *
 * Natively the program first moves into a private mount namespace so nothing it mounts
 * is seen by (or left behind on) the host; in the sandbox that call is not needed (the
 * sandbox's mounts are its own) and its result is not checked. */
#include "child.h"

#include <linux/capability.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/mman.h>

#define TMPFS_MAGIC 0x01021994

static int exists(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0;
}

static void test_tmpfs(void)
{
    char d[256];
    snprintf(d, sizeof d, "%s", tmp_path("t"));
    CHECK_OK(mkdir(d, 0755));
    CHECK_OK(write_file(tmp_path("t/under"), "u", 1));
    CHECK_OK(mount("none", d, "tmpfs", 0, "mode=0700,size=1m"));
    struct stat st;
    CHECK_OK(stat(d, &st));
    CHECK_EQ(st.st_mode & 07777, 0700);
    struct statfs sf;
    CHECK_OK(statfs(d, &sf));
    CHECK_EQ(sf.f_type, TMPFS_MAGIC);
    /* The mount hides what was below it. */
    CHECK(!exists(tmp_path("t/under")));
    CHECK_OK(write_file(tmp_path("t/x"), "x", 1));

    /* In use: an open file, then a working directory. */
    int fd = CHECK_OK(open(tmp_path("t/x"), O_RDONLY));
    CHECK_ERRNO(umount(d), EBUSY);
    close(fd);
    int here = CHECK_OK(open(".", O_RDONLY | O_DIRECTORY));
    CHECK_OK(chdir(d));
    CHECK_ERRNO(umount(d), EBUSY);
    CHECK_OK(fchdir(here));
    close(here);
    /* A mount on top of it: busy too; the top one hides it until unmounted. */
    CHECK_OK(mount("none", d, "tmpfs", 0, NULL));
    CHECK(!exists(tmp_path("t/x")));
    CHECK_OK(stat(d, &st));
    CHECK_EQ(st.st_mode & 07777, 01777);
    CHECK_OK(umount(d));
    CHECK(exists(tmp_path("t/x")));
    CHECK_OK(umount(d));
    CHECK(!exists(tmp_path("t/x")));
    CHECK(exists(tmp_path("t/under")));
    CHECK_ERRNO(umount(d), EINVAL);

    /* MNT_DETACH: gone from the tree at once, open files keep working. */
    CHECK_OK(mount("none", d, "tmpfs", 0, NULL));
    CHECK_OK(write_file(tmp_path("t/kept"), "kept", 4));
    fd = CHECK_OK(open(tmp_path("t/kept"), O_RDONLY));
    CHECK_OK(umount2(d, MNT_DETACH));
    CHECK(!exists(tmp_path("t/kept")));
    char buf[8] = {0};
    CHECK_EQ(read(fd, buf, sizeof buf), 4);
    CHECK_STREQ(buf, "kept");
    close(fd);

    /* Read-only at mount time, then remounted read-write and back. */
    CHECK_OK(mount("none", d, "tmpfs", MS_RDONLY, NULL));
    CHECK_ERRNO(open(tmp_path("t/f"), O_CREAT | O_WRONLY, 0644), EROFS);
    struct statvfs sv;
    CHECK_OK(statvfs(d, &sv));
    CHECK_EQ(sv.f_flag & ST_RDONLY, ST_RDONLY);
    CHECK_OK(mount(NULL, d, NULL, MS_REMOUNT, NULL));
    CHECK_OK(write_file(tmp_path("t/f"), "f", 1));
    CHECK_OK(mount(NULL, d, NULL, MS_REMOUNT | MS_RDONLY, NULL));
    CHECK_ERRNO(mkdir(tmp_path("t/dir"), 0755), EROFS);
    CHECK_ERRNO(unlink(tmp_path("t/f")), EROFS);
    CHECK_OK(umount(d));
}

static void test_bind(void)
{
    char buf[16] = {0};
    CHECK_OK(mkdir(tmp_path("src"), 0755));
    CHECK_OK(mkdir(tmp_path("dst"), 0755));
    CHECK_OK(write_file(tmp_path("src/f"), "bind", 4));
    CHECK_OK(mount(tmp_path("src"), tmp_path("dst"), NULL, MS_BIND, NULL));
    int fd = CHECK_OK(open(tmp_path("dst/f"), O_RDONLY));
    CHECK_EQ(read(fd, buf, sizeof buf), 4);
    CHECK_STREQ(buf, "bind");
    close(fd);
    struct stat a, b;
    CHECK_OK(stat(tmp_path("src/f"), &a));
    CHECK_OK(stat(tmp_path("dst/f"), &b));
    CHECK_EQ(a.st_ino, b.st_ino);
    /* Changes through either name are one tree. */
    CHECK_OK(write_file(tmp_path("dst/g"), "g", 1));
    CHECK(exists(tmp_path("src/g")));
    /* Read-only for this mount only. */
    CHECK_OK(mount(NULL, tmp_path("dst"), NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL));
    CHECK_ERRNO(open(tmp_path("dst/h"), O_CREAT | O_WRONLY, 0644), EROFS);
    CHECK_ERRNO(unlink(tmp_path("dst/g")), EROFS);
    CHECK_OK(write_file(tmp_path("src/h"), "h", 1));
    CHECK(exists(tmp_path("dst/h")));
    CHECK_OK(mount(NULL, tmp_path("dst"), NULL, MS_REMOUNT | MS_BIND, NULL));
    CHECK_OK(unlink(tmp_path("dst/h")));
    /* Propagation changes on a mount root. */
    CHECK_OK(mount(NULL, tmp_path("dst"), NULL, MS_PRIVATE, NULL));
    CHECK_OK(mount(NULL, tmp_path("dst"), NULL, MS_REC | MS_SLAVE, NULL));
    CHECK_ERRNO(mount(NULL, tmp_path("dst"), NULL, MS_PRIVATE | MS_SHARED, NULL), EINVAL);
    CHECK_ERRNO(mount(NULL, tmp_path("dst/g"), NULL, MS_PRIVATE, NULL), EINVAL);
    CHECK_OK(umount(tmp_path("dst")));
    CHECK(!exists(tmp_path("dst/f")));

    /* A mount inside the source: a plain bind shows what is under it, a recursive one
     * (MS_REC) the mount itself; a copy with mounts inside is busy until detached. */
    CHECK_OK(mkdir(tmp_path("src/sub"), 0755));
    CHECK_OK(write_file(tmp_path("src/sub/below"), "", 0));
    CHECK_OK(mount("none", tmp_path("src/sub"), "tmpfs", 0, NULL));
    CHECK_OK(write_file(tmp_path("src/sub/on-tmpfs"), "", 0));
    CHECK_OK(mount(tmp_path("src"), tmp_path("dst"), NULL, MS_BIND, NULL));
    CHECK(exists(tmp_path("dst/sub/below")));
    CHECK(!exists(tmp_path("dst/sub/on-tmpfs")));
    CHECK_OK(umount(tmp_path("dst")));
    CHECK_OK(mount(tmp_path("src"), tmp_path("dst"), NULL, MS_BIND | MS_REC, NULL));
    CHECK(exists(tmp_path("dst/sub/on-tmpfs")));
    CHECK(!exists(tmp_path("dst/sub/below")));
    CHECK_ERRNO(umount(tmp_path("dst")), EBUSY);
    CHECK_OK(umount2(tmp_path("dst"), MNT_DETACH));
    CHECK(!exists(tmp_path("dst/sub")));
    /* A tree bound recursively into itself is copied once. */
    CHECK_OK(mkdir(tmp_path("src/self"), 0755));
    CHECK_OK(mount(tmp_path("src"), tmp_path("src/self"), NULL, MS_BIND | MS_REC, NULL));
    CHECK(exists(tmp_path("src/self/sub/on-tmpfs")));
    CHECK(exists(tmp_path("src/self/self")));
    CHECK(!exists(tmp_path("src/self/self/f")));
    CHECK_OK(umount2(tmp_path("src/self"), MNT_DETACH));
    CHECK_OK(umount(tmp_path("src/sub")));

    /* A file bound over a file. */
    CHECK_OK(write_file(tmp_path("over"), "old", 3));
    CHECK_OK(mount(tmp_path("src/f"), tmp_path("over"), NULL, MS_BIND, NULL));
    memset(buf, 0, sizeof buf);
    fd = CHECK_OK(open(tmp_path("over"), O_RDONLY));
    CHECK_EQ(read(fd, buf, sizeof buf), 4);
    CHECK_STREQ(buf, "bind");
    close(fd);
    CHECK_ERRNO(mount(tmp_path("src/f"), tmp_path("dst"), NULL, MS_BIND, NULL), ENOTDIR);
    CHECK_OK(umount(tmp_path("over")));
}

/* A fresh proc and sysfs where asked, showing this process. */
static void test_proc_and_sys(void)
{
    char path[256];
    CHECK_OK(mount("proc", tmp_path("src"), "proc", 0, NULL));
    snprintf(path, sizeof path, "%s/%d/status", tmp_path("src"), (int)getpid());
    CHECK_OK(access(path, R_OK));
    snprintf(path, sizeof path, "%s/self", tmp_path("src"));
    char link[32] = { 0 };
    CHECK(readlink(path, link, sizeof link - 1) > 0);
    CHECK_EQ(atoi(link), (int)getpid());
    CHECK_OK(umount(tmp_path("src")));
    CHECK_OK(mount("sysfs", tmp_path("src"), "sysfs", 0, NULL));
    snprintf(path, sizeof path, "%s/devices/system/cpu/online", tmp_path("src"));
    CHECK_OK(access(path, R_OK));
    CHECK_OK(umount(tmp_path("src")));
}

/* nosuid, nodev and noexec: kept per mount, shown by statvfs and /proc/mounts, enforced
 * on exec, executable mappings and device opens; a remount without them lifts them. */
static void test_flags(void)
{
    const char *d = tmp_path("fl");
    CHECK_OK(mkdir(d, 0755));
    CHECK_OK(mount("none", d, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL));
    struct statvfs sv;
    CHECK_OK(statvfs(d, &sv));
    CHECK_EQ(sv.f_flag & (ST_NOSUID | ST_NODEV | ST_NOEXEC | ST_RDONLY),
             ST_NOSUID | ST_NODEV | ST_NOEXEC);
    char line[512];
    int found = 0;
    FILE *m = fopen("/proc/self/mounts", "r");
    CHECK(m != NULL);
    while (m && fgets(line, sizeof line, m))
        if (strstr(line, d) && strstr(line, "nosuid") && strstr(line, "nodev") &&
            strstr(line, "noexec"))
            found = 1;
    if (m)
        fclose(m);
    CHECK(found);

    char prog[256], dev[256];
    snprintf(prog, sizeof prog, "%s/prog", d);
    snprintf(dev, sizeof dev, "%s/null", d);
    CHECK_OK(copy_file("/proc/self/exe", prog, 0755));
    CHECK_OK(mknod(dev, S_IFCHR | 0666, makedev(1, 3)));
    CHECK_ERRNO(execl(prog, "prog", "exit7", (char *)NULL), EACCES);
    int fd = CHECK_OK(open(prog, O_RDONLY));
    CHECK(mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0) == MAP_FAILED);
    CHECK_EQ(errno, EPERM);
    void *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
    CHECK(p != MAP_FAILED);
    if (p != MAP_FAILED)
        munmap(p, 4096);
    close(fd);
    CHECK_ERRNO(open(dev, O_RDWR), EACCES);

    CHECK_OK(mount(NULL, d, NULL, MS_REMOUNT, NULL));
    CHECK_OK(statvfs(d, &sv));
    CHECK_EQ(sv.f_flag & (ST_NOSUID | ST_NODEV | ST_NOEXEC), 0);
    fd = CHECK_OK(open(dev, O_RDWR));
    CHECK_EQ(write(fd, "x", 1), 1);
    close(fd);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        execl(prog, "prog", "exit7", (char *)NULL);
        _exit(99);
    }
    int st = wait_status(pid, 0);
    CHECK_EXITED(st, 7);
    CHECK_OK(umount(d));
}

static void test_errors(void)
{
    CHECK_ERRNO(mount("none", tmp_path("missing"), "tmpfs", 0, NULL), ENOENT);
    CHECK_ERRNO(mount("none", tmp_path("src"), "nosuchfs", 0, NULL), ENODEV);
    CHECK_ERRNO(mount("none", tmp_path("src"), "tmpfs", 0, "bogus=1"), EINVAL);
    CHECK_ERRNO(mount("none", tmp_path("src"), "tmpfs", 0, "mode=abc"), EINVAL);
    CHECK_ERRNO(mount("none", tmp_path("src/f"), "tmpfs", 0, NULL), ENOTDIR);
    CHECK_ERRNO(mount(tmp_path("missing"), tmp_path("dst"), NULL, MS_BIND, NULL), ENOENT);
    CHECK_ERRNO(mount(NULL, tmp_path("src"), NULL, MS_REMOUNT, NULL), EINVAL);
    CHECK_ERRNO(mount("none", BAD_PTR, "tmpfs", 0, NULL), EFAULT);
    CHECK_ERRNO(mount("none", tmp_path("src"), BAD_PTR, 0, NULL), EFAULT);
    CHECK_ERRNO(umount(tmp_path("src")), EINVAL);
    CHECK_ERRNO(umount(tmp_path("missing")), ENOENT);
    CHECK_ERRNO(umount2(tmp_path("src"), 0x100), EINVAL);
    CHECK_ERRNO(umount2(tmp_path("src"), MNT_EXPIRE | MNT_DETACH), EINVAL);
}

/* Drops one capability from the effective set. */
static int drop_cap(int cap)
{
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct c[2];
    if (syscall(SYS_capget, &h, c) != 0)
        return -1;
    c[cap / 32].effective &= ~(1u << (cap % 32));
    return syscall(SYS_capset, &h, c);
}

static void no_sys_admin(void *arg)
{
    (void)arg;
    CHECK_OK(drop_cap(CAP_SYS_ADMIN));
    CHECK_ERRNO(mount("none", tmp_path("dst"), "tmpfs", 0, NULL), EPERM);
    CHECK_ERRNO(mount(tmp_path("src"), tmp_path("dst"), NULL, MS_BIND, NULL), EPERM);
    CHECK_ERRNO(umount(tmp_path("dst")), EPERM);
    /* The path is looked up first. */
    CHECK_ERRNO(mount("none", tmp_path("missing"), "tmpfs", 0, NULL), ENOENT);
    CHECK_OK(chroot(tmp_path("src")));
}

static void no_sys_chroot(void *arg)
{
    (void)arg;
    CHECK_OK(drop_cap(CAP_SYS_CHROOT));
    CHECK_ERRNO(chroot(tmp_path("src")), EPERM);
    CHECK_ERRNO(chroot(tmp_path("missing")), ENOENT);
}

static void not_root(void *arg)
{
    (void)arg;
    CHECK_OK(syscall(SYS_setresuid, -1, 1000, -1));
    CHECK_ERRNO(mount("none", tmp_path("dst"), "tmpfs", 0, NULL), EPERM);
    CHECK_ERRNO(chroot(tmp_path("src")), EPERM);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "exit7") == 0)
        return 7;
    (void)unshare(CLONE_NEWNS);
    (void)mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
    check_tmpdir("mount");
    test_tmpfs();
    test_bind();
    test_proc_and_sys();
    test_flags();
    test_errors();
    /* The mount that no_sys_admin must not be able to undo. */
    CHECK_OK(mount("none", tmp_path("dst"), "tmpfs", 0, NULL));
    int st;
    st = run_in_child(no_sys_admin, NULL);
    CHECK_EXITED(st, 0);
    st = run_in_child(no_sys_chroot, NULL);
    CHECK_EXITED(st, 0);
    st = run_in_child(not_root, NULL);
    CHECK_EXITED(st, 0);
    CHECK_OK(umount(tmp_path("dst")));
    return check_done();
}
