/* Calls getpid (glibc's `mov $39,%eax; syscall`) many times from one site and checks
 * every answer: under systrap the site is patched after its first trap. */
#include "check.h"

int main(void)
{
    pid_t want = (pid_t)syscall(SYS_getpid);
    long bad = 0;
    for (int i = 0; i < 20000; i++)
        bad += getpid() != want;
    CHECK_EQ(bad, 0);
    return check_done();
}
