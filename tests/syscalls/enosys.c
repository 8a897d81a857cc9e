/* Syscall numbers that do not exist must fail with ENOSYS and change nothing; the
 * process carries on normally afterwards. (Numbers that exist but are unimplemented in
 * the sandbox are the end-to-end tests' business: natively they do work.) */
#include "check.h"

int main(void)
{
    /* 335..423 is the unassigned gap in the upstream x86_64 table. Its start is not
     * safe to probe: the test machine's patched kernel answers 335 and 336 itself (335
     * even kills the caller with SIGILL), so only numbers well inside the gap are used. */
    CHECK_ERRNO(syscall(400), ENOSYS);
    CHECK_ERRNO(syscall(423), ENOSYS);
    /* Far past the end of the table, with arguments that would be harmful if used. */
    CHECK_ERRNO(syscall(1000, BAD_PTR, -1, -1, -1, -1, -1), ENOSYS);
    CHECK_ERRNO(syscall(100000), ENOSYS);
    CHECK_ERRNO(syscall(-1), ENOSYS);
    CHECK_ERRNO(syscall(0x7fffffff), ENOSYS);
    /* The process is intact: a real syscall still works. */
    CHECK(syscall(SYS_getpid) > 0);
    /* Repeating the same unknown number gives the same answer every time. */
    int same = 1;
    for (int i = 0; i < 100; i++)
        same &= syscall(400) == -1 && errno == ENOSYS;
    CHECK(same);
    return check_done();
}
