/* Extended attributes: set/get/list/remove in the user.* and trusted.* namespaces, the
 * l* and f* forms, XATTR_CREATE/XATTR_REPLACE, ERANGE on small buffers, size limits,
 * permission rules. Runs under /tmp (tmpfs in the sandbox, any xattr-capable fs natively). */
#include "check.h"

#include <sys/xattr.h>

static void test_basic(void)
{
    char f[256];
    snprintf(f, sizeof f, "%s", tmp_path("x"));
    CHECK_OK(write_file(f, "x", 1));
    char buf[256];
    CHECK_ERRNO(getxattr(f, "user.a", buf, sizeof buf), ENODATA);
    CHECK_OK(setxattr(f, "user.a", "hello", 5, 0));
    CHECK_EQ(getxattr(f, "user.a", buf, sizeof buf), 5);
    CHECK_MEMEQ(buf, "hello", 5);
    /* size 0 asks for the length; a short buffer is ERANGE. */
    CHECK_EQ(getxattr(f, "user.a", NULL, 0), 5);
    CHECK_ERRNO(getxattr(f, "user.a", buf, 2), ERANGE);
    /* Empty values are values. */
    CHECK_OK(setxattr(f, "user.empty", "", 0, 0));
    CHECK_EQ(getxattr(f, "user.empty", buf, sizeof buf), 0);
    /* CREATE fails on an existing name, REPLACE on a missing one. */
    CHECK_ERRNO(setxattr(f, "user.a", "x", 1, XATTR_CREATE), EEXIST);
    CHECK_ERRNO(setxattr(f, "user.b", "x", 1, XATTR_REPLACE), ENODATA);
    CHECK_OK(setxattr(f, "user.a", "bye", 3, XATTR_REPLACE));
    CHECK_EQ(getxattr(f, "user.a", buf, sizeof buf), 3);
    CHECK_OK(setxattr(f, "user.b", "2", 1, XATTR_CREATE));
    CHECK_ERRNO(setxattr(f, "user.b", "2", 1, 4), EINVAL);
    CHECK_OK(setxattr(f, "trusted.t", "t", 1, 0));

    /* The list has every name once, NUL-terminated. */
    ssize_t n = listxattr(f, NULL, 0);
    CHECK(n > 0);
    char list[1024];
    CHECK_EQ(listxattr(f, list, sizeof list), n);
    int seen_a = 0, seen_b = 0, seen_t = 0, seen_e = 0;
    for (char *p = list; p < list + n; p += strlen(p) + 1) {
        seen_a += !strcmp(p, "user.a");
        seen_b += !strcmp(p, "user.b");
        seen_t += !strcmp(p, "trusted.t");
        seen_e += !strcmp(p, "user.empty");
    }
    CHECK_EQ(seen_a, 1);
    CHECK_EQ(seen_b, 1);
    CHECK_EQ(seen_t, 1);
    CHECK_EQ(seen_e, 1);
    CHECK_ERRNO(listxattr(f, list, 3), ERANGE);

    CHECK_OK(removexattr(f, "user.b"));
    CHECK_ERRNO(removexattr(f, "user.b"), ENODATA);
    CHECK_ERRNO(getxattr(f, "user.b", buf, sizeof buf), ENODATA);

    /* The f* forms. */
    int fd = CHECK_OK(open(f, O_RDONLY));
    CHECK_OK(fsetxattr(fd, "user.f", "ff", 2, 0));
    CHECK_EQ(fgetxattr(fd, "user.f", buf, sizeof buf), 2);
    CHECK(flistxattr(fd, list, sizeof list) > 0);
    CHECK_OK(fremovexattr(fd, "user.f"));
    CHECK_ERRNO(fgetxattr(fd, "user.f", buf, sizeof buf), ENODATA);
    CHECK_ERRNO(fgetxattr(-1, "user.f", buf, sizeof buf), EBADF);
    close(fd);

    /* Names: unknown namespaces, bare prefixes, empty and overlong names. */
    CHECK_ERRNO(setxattr(f, "foo.bar", "x", 1, 0), EOPNOTSUPP);
    CHECK_ERRNO(getxattr(f, "foo.bar", buf, sizeof buf), EOPNOTSUPP);
    CHECK_ERRNO(setxattr(f, "", "x", 1, 0), ERANGE);
    char longname[300];
    memset(longname, 'a', sizeof longname);
    memcpy(longname, "user.", 5);
    longname[299] = 0;
    CHECK_ERRNO(setxattr(f, longname, "x", 1, 0), ERANGE);
    CHECK_ERRNO(getxattr(f, BAD_PTR, buf, sizeof buf), EFAULT);
    CHECK_ERRNO(syscall(SYS_setxattr, f, "user.v", BAD_PTR, 4, 0), EFAULT);
    /* Values over XATTR_SIZE_MAX. */
    static char big[65537];
    CHECK_ERRNO(setxattr(f, "user.big", big, sizeof big, 0), E2BIG);
    CHECK_OK(setxattr(f, "user.ok", big, 4000, 0));
    CHECK_EQ(getxattr(f, "user.ok", NULL, 0), 4000);
    CHECK_ERRNO(getxattr(tmp_path("missing"), "user.a", buf, sizeof buf), ENOENT);
}

static void test_links_and_dirs(void)
{
    char buf[64];
    /* user.* on a directory works; on a symlink itself it is refused. */
    CHECK_OK(mkdir(tmp_path("d"), 0755));
    CHECK_OK(setxattr(tmp_path("d"), "user.d", "1", 1, 0));
    CHECK_EQ(getxattr(tmp_path("d"), "user.d", buf, sizeof buf), 1);
    CHECK_OK(write_file(tmp_path("target"), "", 0));
    CHECK_OK(symlink("target", tmp_path("l")));
    CHECK_ERRNO(lsetxattr(tmp_path("l"), "user.l", "1", 1, 0), EPERM);
    CHECK_ERRNO(lgetxattr(tmp_path("l"), "user.l", buf, sizeof buf), ENODATA);
    /* Through the link: the target. */
    CHECK_OK(setxattr(tmp_path("l"), "user.via", "1", 1, 0));
    CHECK_EQ(getxattr(tmp_path("target"), "user.via", buf, sizeof buf), 1);
    CHECK_EQ(llistxattr(tmp_path("l"), NULL, 0) >= 0, 1);
    CHECK_OK(lremovexattr(tmp_path("target"), "user.via"));
}

static void test_special_files_and_names(void)
{
    char buf[64];
    /* user.* exists only on regular files and directories; trusted.* anywhere. */
    CHECK_OK(mkfifo(tmp_path("fifo"), 0644));
    CHECK_ERRNO(setxattr(tmp_path("fifo"), "user.f", "1", 1, 0), EPERM);
    CHECK_ERRNO(getxattr(tmp_path("fifo"), "user.f", buf, sizeof buf), ENODATA);
    CHECK_OK(setxattr(tmp_path("fifo"), "trusted.f", "tf", 2, 0));
    CHECK_EQ(getxattr(tmp_path("fifo"), "trusted.f", buf, sizeof buf), 2);
    /* Attributes belong to the inode: they follow renames and are shared by links. */
    CHECK_OK(write_file(tmp_path("ino"), "", 0));
    CHECK_OK(setxattr(tmp_path("ino"), "user.keep", "k", 1, 0));
    CHECK_OK(rename(tmp_path("ino"), tmp_path("ino2")));
    CHECK_OK(link(tmp_path("ino2"), tmp_path("ino3")));
    CHECK_EQ(getxattr(tmp_path("ino3"), "user.keep", buf, sizeof buf), 1);
    CHECK_OK(removexattr(tmp_path("ino2"), "user.keep"));
    CHECK_ERRNO(getxattr(tmp_path("ino3"), "user.keep", buf, sizeof buf), ENODATA);
    /* A list buffer of exactly the right size; an O_PATH descriptor is EBADF. */
    CHECK_OK(setxattr(tmp_path("ino3"), "user.a", "", 0, 0));
    CHECK_EQ(listxattr(tmp_path("ino3"), buf, sizeof "user.a"), (ssize_t)sizeof "user.a");
    int p = CHECK_OK(open(tmp_path("ino3"), O_PATH));
    CHECK_ERRNO(fgetxattr(p, "user.a", buf, sizeof buf), EBADF);
    CHECK_ERRNO(fsetxattr(p, "user.a", "", 0, 0), EBADF);
    CHECK_ERRNO(flistxattr(p, buf, sizeof buf), EBADF);
    close(p);
    /* A bare namespace prefix is not a name. */
    CHECK_ERRNO(setxattr(tmp_path("ino3"), "user.", "x", 1, 0), EINVAL);
    CHECK_ERRNO(getxattr(tmp_path("ino3"), "trusted.", buf, sizeof buf), EINVAL);
}

static void test_permissions(void)
{
    char f[256];
    snprintf(f, sizeof f, "%s", tmp_path("perm"));
    CHECK_OK(write_file(f, "x", 1));
    CHECK_OK(chmod(f, 0644));
    CHECK_OK(setxattr(f, "user.p", "1", 1, 0));
    CHECK_OK(setxattr(f, "trusted.p", "1", 1, 0));
    CHECK_OK(chmod(check_tmpdir_path, 0755));
    CHECK_OK(syscall(SYS_setresuid, -1, 1000, -1));
    char buf[64];
    /* Readable: get works; not writable: set is EACCES. */
    CHECK_EQ(getxattr(f, "user.p", buf, sizeof buf), 1);
    CHECK_ERRNO(setxattr(f, "user.p", "2", 1, 0), EACCES);
    /* trusted.* is invisible and untouchable without CAP_SYS_ADMIN. */
    CHECK_ERRNO(getxattr(f, "trusted.p", buf, sizeof buf), ENODATA);
    CHECK_ERRNO(setxattr(f, "trusted.q", "1", 1, 0), EPERM);
    char list[256];
    ssize_t n = listxattr(f, list, sizeof list);
    CHECK_EQ(n, (ssize_t)sizeof("user.p"));
    CHECK_OK(syscall(SYS_setresuid, -1, 0, -1));
}

int main(void)
{
    check_tmpdir("xattr");
    test_basic();
    test_links_and_dirs();
    test_special_files_and_names();
    test_permissions();
    return check_done();
}
