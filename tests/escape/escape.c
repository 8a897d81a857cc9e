/* Classic container escapes, tried from inside the sandbox. Each attempt prints
 * "<name>: blocked (<errno name>)" or "<name>: ESCAPED (<what worked>)"; the program exits 0
 * only if every attempt was blocked. It is meant to run ONLY inside a sandbox: run as root
 * on a host, several attempts would really happen (mounting the disk, loading BPF).
 *
 * argv[1]: a host pid (the test's own) that must be invisible from inside.
 * Attempts that change files (the probe file at /, /proc/self/exe) are judged by the test
 * afterwards too: the host must be unchanged whatever the sandbox believes it did. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <linux/bpf.h>
#include <linux/kexec.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

static int escaped;

/* r < 0: blocked with errno; otherwise the attempt worked. */
static void report(const char *name, long r, const char *what)
{
    if (r < 0) {
        printf("%s: blocked (%s)\n", name, strerrorname_np(errno));
    } else {
        printf("%s: ESCAPED (%s)\n", name, what);
        escaped = 1;
    }
}

static pid_t host_pid;

static void signal_host_process(void)
{
    report("signal-host-pid", kill(host_pid, 0), "kill(host pid, 0) succeeded");
}

static void ptrace_host_process(void)
{
    report("ptrace-host-pid", ptrace(PTRACE_ATTACH, host_pid, 0, 0), "attached");
}

static void read_host_process_memory(void)
{
    char buf[8];
    struct iovec local = { buf, sizeof buf }, remote = { (void *)0x400000, sizeof buf };
    report("process-vm-readv-host", process_vm_readv(host_pid, &local, 1, &remote, 1, 0),
           "read another process's memory");
}

static void host_proc_root(void)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/root/", (int)host_pid);
    report("proc-host-root", open(path, O_RDONLY | O_DIRECTORY), path);
}

static void mount_host_disk(void)
{
    mkdir("/tmp/escape-mnt", 0700);
    long r = -1;
    const char *disks[] = { "/dev/vda", "/dev/sda", "/dev/nvme0n1", "/dev/vda1", "/dev/sda1" };
    int last_errno = ENOENT;
    for (size_t i = 0; i < sizeof disks / sizeof *disks && r < 0; i++) {
        r = mount(disks[i], "/tmp/escape-mnt", "ext4", MS_RDONLY, NULL);
        if (r < 0)
            last_errno = errno;
    }
    errno = last_errno;
    report("mount-host-disk", r, "mounted a disk device");
}

/* A block device node made inside (the host's disk is usually 253:0 or 8:0). */
static void device_node(void)
{
    long r = mknod("/tmp/escape-disk", S_IFBLK | 0600, makedev(253, 0));
    if (r == 0) {
        r = open("/tmp/escape-disk", O_RDONLY);
        report("open-made-block-device", r, "opened a block device it made");
        return;
    }
    report("mknod-block-device", r, "made a block device node");
}

static void dev_mem(void)
{
    report("open-dev-mem", open("/dev/mem", O_RDONLY), "opened /dev/mem");
}

/* CVE-2019-5736: overwrite the binary the runtime executes, through /proc/self/exe. */
static void overwrite_proc_self_exe(void)
{
    int fd = open("/proc/self/exe", O_WRONLY);
    if (fd < 0) {
        report("overwrite-proc-self-exe", -1, "");
        return;
    }
    /* The sandbox may give a private copy (overlay copy-up); the test checks the host
     * binary is unchanged. Writing into the running text fails on Linux with ETXTBSY. */
    long r = write(fd, "\x7f" "ELF", 4);
    close(fd);
    if (r < 0)
        report("overwrite-proc-self-exe", -1, "");
    else
        printf("overwrite-proc-self-exe: wrote a private copy (the test checks the host file)\n");
}

/* CVE-2024-21626 and its kin: host descriptors left open in the container. */
static void leaked_fds(void)
{
    for (int fd = 3; fd < 4096; fd++) {
        if (fcntl(fd, F_GETFD) >= 0) {
            char what[64];
            snprintf(what, sizeof what, "fd %d is open", fd);
            report("leaked-host-fd", 0, what);
            return;
        }
    }
    errno = EBADF;
    report("leaked-host-fd", -1, "");
}

static void keyctl_keyring(void)
{
    report("keyctl", syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0),
           "got the session keyring");
}

static void bpf_prog(void)
{
    struct bpf_insn prog[] = {
        { .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 0 },
        { .code = BPF_JMP | BPF_EXIT },
    };
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
    attr.insns = (unsigned long)prog;
    attr.insn_cnt = 2;
    attr.license = (unsigned long)"GPL";
    report("bpf-prog-load", syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr),
           "loaded a BPF program");
}

static void perf_event(void)
{
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_CPU_CLOCK;
    report("perf-event-open", syscall(SYS_perf_event_open, &attr, -1, 0, -1, 0),
           "opened a system-wide perf event");
}

static void kexec(void)
{
    report("kexec-load", syscall(SYS_kexec_load, 0UL, 0UL, NULL, KEXEC_ARCH_DEFAULT),
           "kexec_load accepted");
}

static void kernel_module(void)
{
    report("init-module", syscall(SYS_init_module, "", 0UL, ""), "init_module accepted");
}

static void raw_sockets(void)
{
    report("raw-packet-socket", socket(AF_PACKET, SOCK_RAW, 0), "AF_PACKET socket");
    /* A raw IP socket that writes whole packets, headers included: never made. */
    report("raw-inet-socket", socket(AF_INET, SOCK_RAW, IPPROTO_RAW), "raw IP socket");
    /* Raw ICMP sockets are the sandbox's own (ping works inside), never host sockets;
     * with --network=none nothing leaves through one. */
    int s = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
    struct sockaddr_in to = { .sin_family = AF_INET };
    to.sin_addr.s_addr = htonl(0x08080808);
    unsigned char echo[8] = { 8, 0, 0xf7, 0xff, 0, 0, 0, 0 };
    report("raw-icmp-outside",
           s < 0 ? -1 : sendto(s, echo, sizeof echo, 0, (struct sockaddr *)&to, sizeof to),
           "sent ICMP to 8.8.8.8");
    if (s >= 0)
        close(s);
}

/* The "shocker" escape: open_by_handle_at with a forged handle to the host root. */
static void open_by_handle(void)
{
    struct {
        struct file_handle h;
        unsigned char bytes[8];
    } fh = { .h = { .handle_bytes = 8, .handle_type = 1 } };
    memset(fh.bytes, 0, sizeof fh.bytes);
    fh.bytes[0] = 2; /* inode 2: the root of most ext filesystems */
    report("open-by-handle-at", syscall(SYS_open_by_handle_at, AT_FDCWD, &fh.h, O_RDONLY),
           "opened a file by forged handle");
}

static void io_ports(void)
{
    report("iopl", syscall(SYS_iopl, 3), "raised the I/O privilege level");
}

/* A file written at / must not reach the host: the test looks for it afterwards. */
static void write_host_root(void)
{
    int fd = open("/carapace-escape-probe", O_CREAT | O_WRONLY, 0644);
    if (fd >= 0) {
        printf("write-host-root: created in the sandbox (the test checks the host)\n");
        close(fd);
    } else {
        report("write-host-root", -1, "");
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: escape HOST_PID\n");
        return 2;
    }
    host_pid = atoi(argv[1]);
    leaked_fds();
    signal_host_process();
    ptrace_host_process();
    read_host_process_memory();
    host_proc_root();
    mount_host_disk();
    device_node();
    dev_mem();
    overwrite_proc_self_exe();
    keyctl_keyring();
    bpf_prog();
    perf_event();
    kexec();
    kernel_module();
    raw_sockets();
    open_by_handle();
    io_ports();
    write_host_root();
    printf("%s\n", escaped ? "SOME ATTEMPT ESCAPED" : "every attempt was blocked");
    return escaped;
}
