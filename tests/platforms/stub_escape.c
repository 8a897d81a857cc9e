/* Application code that jumps to the systrap stub's own `syscall` instruction, the one
 * place the stub's seccomp filter lets host system calls through, with a call the stub
 * never makes (argv[1]: "getuid", "mkdir", "mmap_private", "clone_fork"). The call must
 * not run: the stub is killed, and with it the process (SIGKILL). A call that ran comes
 * back to the site's int3 (SIGTRAP), as the control "futex" (a call the stub makes) does.
 * Only meaningful under `carapace do --platform=systrap`. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The stub's code page (sentry/src/platform/ptrace/stub.rs STUB_BASE). */
#define STUB_PAGE 0x7ff000000000UL

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    const unsigned char *page = (const unsigned char *)STUB_PAGE;
    const unsigned char *site = NULL;
    for (int i = 0; i + 2 < 4096; i++)
        if (page[i] == 0x0f && page[i + 1] == 0x05 && page[i + 2] == 0xcc) {
            site = page + i;
            break;
        }
    if (!site) {
        printf("no syscall site in the stub page\n");
        return 3;
    }
    long nr, a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = -1, a5 = 0;
    if (!strcmp(argv[1], "getuid")) {
        nr = SYS_getuid;
    } else if (!strcmp(argv[1], "mkdir")) {
        nr = SYS_mkdir;
        a0 = (long)"/carapace-stub-escape";
        a1 = 0755;
    } else if (!strcmp(argv[1], "mmap_private")) {
        nr = SYS_mmap;
        a1 = 4096;
        a2 = PROT_READ | PROT_WRITE | PROT_EXEC;
        a3 = MAP_PRIVATE | MAP_ANONYMOUS;
    } else if (!strcmp(argv[1], "futex")) {
        static int word;
        nr = SYS_futex;
        a0 = (long)&word;
        a1 = 1; /* FUTEX_WAKE */
        a2 = 1;
    } else if (!strcmp(argv[1], "clone_fork")) {
        nr = SYS_clone;
        a0 = 17; /* SIGCHLD: a plain fork */
    } else {
        return 2;
    }
    printf("jumping to %p\n", (void *)site);
    fflush(stdout);
    long ret;
    /* syscall at the site, then its int3 (SIGTRAP) if the call ever returned. */
    register long r10 __asm__("r10") = a3;
    register long r8 __asm__("r8") = a4;
    register long r9 __asm__("r9") = a5;
    __asm__ volatile("jmp *%[site]\n\t"
                     : "=a"(ret)
                     : "a"(nr), "D"(a0), "S"(a1), "d"(a2), "r"(r10), "r"(r8), "r"(r9),
                       [site] "r"(site)
                     : "rcx", "r11", "memory");
    printf("the call returned %ld\n", ret);
    return 0;
}
