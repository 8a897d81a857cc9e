/* /proc/net: a listening TCP socket and a bound UDP6 socket appear in /proc/net/tcp and
 * /proc/net/udp6 under the inode fstat gives their descriptor, with their address, port
 * and state in Linux's format; /proc/net/dev lists lo; /proc/net/if_inet6 has ::1. */
#include "check.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* The line of /proc/net/NAME whose inode column is `ino`, copied into `line`. */
static int find_inode(const char *name, unsigned long ino, char *line, size_t len)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/net/%s", name);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int found = 0;
    while (!found && fgets(line, len, f)) {
        unsigned long col = 0;
        /* The inode is the tenth field. */
        char *save = NULL, copy[512];
        snprintf(copy, sizeof copy, "%s", line);
        char *tok = strtok_r(copy, " \t\n", &save);
        for (int i = 0; tok && i < 9; i++)
            tok = strtok_r(NULL, " \t\n", &save);
        if (tok && sscanf(tok, "%lu", &col) == 1 && col == ino)
            found = 1;
    }
    fclose(f);
    return found;
}

static int file_has(const char *path, const char *needle)
{
    char buf[65536];
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n < 0)
        return 0;
    buf[n] = 0;
    return strstr(buf, needle) != NULL;
}

int main(void)
{
    char line[512], want[64];
    struct stat st;

    int t = CHECK_OK(socket(AF_INET, SOCK_STREAM, 0));
    struct sockaddr_in a = { .sin_family = AF_INET };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_OK(bind(t, (struct sockaddr *)&a, sizeof a));
    CHECK_OK(listen(t, 4));
    socklen_t len = sizeof a;
    CHECK_OK(getsockname(t, (struct sockaddr *)&a, &len));
    CHECK_OK(fstat(t, &st));
    CHECK(find_inode("tcp", st.st_ino, line, sizeof line));
    snprintf(want, sizeof want, "0100007F:%04X 00000000:0000 0A", ntohs(a.sin_port));
    CHECK(strstr(line, want) != NULL);

    int u = CHECK_OK(socket(AF_INET6, SOCK_DGRAM, 0));
    struct sockaddr_in6 b = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    CHECK_OK(bind(u, (struct sockaddr *)&b, sizeof b));
    len = sizeof b;
    CHECK_OK(getsockname(u, (struct sockaddr *)&b, &len));
    CHECK_OK(fstat(u, &st));
    CHECK(find_inode("udp6", st.st_ino, line, sizeof line));
    snprintf(want, sizeof want, "00000000000000000000000001000000:%04X", ntohs(b.sin6_port));
    CHECK(strstr(line, want) != NULL);
    CHECK(strstr(line, " 07 ") != NULL);
    /* Not in the other tables. */
    CHECK(!find_inode("tcp6", st.st_ino, line, sizeof line));
    CHECK(!find_inode("udp", st.st_ino, line, sizeof line));

    CHECK(file_has("/proc/net/dev", "lo:"));
    CHECK(file_has("/proc/net/if_inet6", "00000000000000000000000000000001 01 80 10 80"));
    CHECK(file_has("/proc/net/route", "Iface\tDestination\tGateway"));
    close(t);
    close(u);
    return check_done();
}
