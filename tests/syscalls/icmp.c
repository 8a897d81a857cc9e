/* ICMP echo over loopback (IPv4): raw ICMP sockets (root) see whole IP packets and send
 * messages as given; ping sockets (SOCK_DGRAM/IPPROTO_ICMP, for the groups in
 * ping_group_range) send echo requests whose identifier and checksum the kernel sets
 * and receive only their replies; the checks each kind makes on what is sent; bind and
 * connect on ping sockets; ICMP_FILTER; EPERM for raw sockets without CAP_NET_RAW. */
#include "child.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

/* <linux/icmp.h>, which clashes with glibc's headers. */
#ifndef ICMP_FILTER
#define ICMP_FILTER 1
#endif

static struct sockaddr_in loopback(int port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static unsigned short cksum(const void *data, size_t len)
{
    const unsigned char *p = data;
    unsigned long sum = 0;
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += (p[i] << 8) | p[i + 1];
    if (len & 1)
        sum += p[len - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return htons(~sum & 0xffff);
}

/* An echo request: header, then the payload. */
static size_t echo(unsigned char *buf, int id, int seq, const char *payload)
{
    struct icmphdr *h = (struct icmphdr *)buf;
    memset(h, 0, sizeof *h);
    h->type = ICMP_ECHO;
    h->un.echo.id = htons(id);
    h->un.echo.sequence = htons(seq);
    size_t n = sizeof *h + strlen(payload);
    memcpy(buf + sizeof *h, payload, strlen(payload));
    h->checksum = cksum(buf, n);
    return n;
}

static int readable(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    return poll(&p, 1, 5000) == 1;
}

/* A network namespace of our own (natively; the sandbox's is its own already) where
 * loopback is up and every group may make ping sockets: Linux's default range, `1 0`,
 * allows none. Whatever these calls do, nothing is checked. */
static void setup(void)
{
    int own = unshare(CLONE_NEWNET) == 0;
    int fd = open("/proc/sys/net/ipv4/ping_group_range", O_WRONLY);
    if (fd >= 0) {
        (void)!write(fd, "0 2147483647", 12);
        close(fd);
    }
    if (!own)
        return;
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr = { 0 };
    strcpy(ifr.ifr_name, "lo");
    if (s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
        ifr.ifr_flags |= IFF_UP;
        ioctl(s, SIOCSIFFLAGS, &ifr);
    }
    if (s >= 0)
        close(s);
}

static void raw_echo(void)
{
    int s = CHECK_OK(socket(AF_INET, SOCK_RAW, IPPROTO_ICMP));
    unsigned char req[64], buf[256];
    size_t n = echo(req, 0x1234, 1, "carapace-raw");
    struct sockaddr_in to = loopback(0);
    CHECK_EQ(sendto(s, req, n, 0, (struct sockaddr *)&to, sizeof to), n);
    /* A raw socket gets every ICMP packet, the request itself too: find the reply. */
    int found = 0;
    struct sockaddr_in from;
    ssize_t got = -1;
    for (int i = 0; i < 4 && !found && readable(s); i++) {
        socklen_t flen = sizeof from;
        got = recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen);
        if (got < (ssize_t)(sizeof(struct iphdr) + 8))
            continue;
        struct iphdr *ip = (struct iphdr *)buf;
        struct icmphdr *h = (struct icmphdr *)(buf + ip->ihl * 4);
        found = h->type == ICMP_ECHOREPLY && ntohs(h->un.echo.id) == 0x1234;
    }
    CHECK(found);
    struct iphdr *ip = (struct iphdr *)buf;
    CHECK_EQ(ip->version, 4);
    CHECK_EQ(ip->protocol, IPPROTO_ICMP);
    CHECK_EQ(ntohl(ip->saddr), INADDR_LOOPBACK);
    CHECK_EQ(got, (ssize_t)(ip->ihl * 4 + n));
    CHECK_EQ(from.sin_family, AF_INET);
    CHECK_EQ(ntohl(from.sin_addr.s_addr), INADDR_LOOPBACK);
    unsigned char *icmp = buf + ip->ihl * 4;
    CHECK_EQ(ntohs(((struct icmphdr *)icmp)->un.echo.sequence), 1);
    CHECK_MEMEQ(icmp + 8, "carapace-raw", 12);
    /* The reply's checksum is right: summing over it gives zero. */
    CHECK_EQ(cksum(icmp, n), 0);

    /* ICMP_FILTER: a bit per type, read back as set. */
    unsigned int filter = 1u << ICMP_TIMESTAMP, back = 0;
    socklen_t flen = sizeof back;
    CHECK_OK(setsockopt(s, SOL_RAW, ICMP_FILTER, &filter, sizeof filter));
    CHECK_OK(getsockopt(s, SOL_RAW, ICMP_FILTER, &back, &flen));
    CHECK_EQ(back, filter);
    /* Nothing waits once the replies are read: a non-blocking read says so. */
    while (recv(s, buf, sizeof buf, MSG_DONTWAIT) > 0)
        ;
    CHECK_ERRNO(recv(s, buf, sizeof buf, MSG_DONTWAIT), EAGAIN);
    close(s);
}

static void ping_socket(void)
{
    int s = CHECK_OK(socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP));
    int type = 0;
    socklen_t tlen = sizeof type;
    CHECK_OK(getsockopt(s, SOL_SOCKET, SO_TYPE, &type, &tlen));
    CHECK_EQ(type, SOCK_DGRAM);
    unsigned char req[64], buf[256];
    /* The identifier given is replaced by the socket's; the checksum is the kernel's. */
    size_t n = echo(req, 0x9999, 7, "carapace-ping");
    ((struct icmphdr *)req)->checksum = 0xdead;
    struct sockaddr_in to = loopback(0);
    CHECK_EQ(sendto(s, req, n, 0, (struct sockaddr *)&to, sizeof to), n);
    struct sockaddr_in me;
    socklen_t mlen = sizeof me;
    CHECK_OK(getsockname(s, (struct sockaddr *)&me, &mlen));
    int ident = ntohs(me.sin_port);
    CHECK(ident != 0);
    CHECK(readable(s));
    struct sockaddr_in from;
    socklen_t flen = sizeof from;
    ssize_t got = recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen);
    /* Only the reply, without an IP header. */
    CHECK_EQ(got, n);
    struct icmphdr *h = (struct icmphdr *)buf;
    CHECK_EQ(h->type, ICMP_ECHOREPLY);
    CHECK_EQ(ntohs(h->un.echo.id), ident);
    CHECK_EQ(ntohs(h->un.echo.sequence), 7);
    CHECK_MEMEQ(buf + 8, "carapace-ping", 13);
    CHECK_EQ(ntohl(from.sin_addr.s_addr), INADDR_LOOPBACK);
    CHECK_EQ(from.sin_port, 0);
    CHECK_ERRNO(recv(s, buf, sizeof buf, MSG_DONTWAIT), EAGAIN);

    /* Only echo requests, and at least a header. */
    unsigned char bad[16] = { ICMP_TIMESTAMP, 0 };
    CHECK_ERRNO(sendto(s, bad, sizeof bad, 0, (struct sockaddr *)&to, sizeof to), EINVAL);
    CHECK_ERRNO(sendto(s, req, 4, 0, (struct sockaddr *)&to, sizeof to), EINVAL);
    /* A socket that is not connected needs a destination. */
    CHECK_ERRNO(send(s, req, n, 0), EDESTADDRREQ);
    close(s);

    /* A bound identifier, and a connected socket sending without an address. */
    s = CHECK_OK(socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP));
    struct sockaddr_in b = loopback(4242);
    CHECK_OK(bind(s, (struct sockaddr *)&b, sizeof b));
    mlen = sizeof me;
    CHECK_OK(getsockname(s, (struct sockaddr *)&me, &mlen));
    CHECK_EQ(ntohs(me.sin_port), 4242);
    CHECK_OK(connect(s, (struct sockaddr *)&to, sizeof to));
    /* Connected or not, a ping socket has no peer port: Linux says ENOTCONN. */
    struct sockaddr_in peer;
    socklen_t plen = sizeof peer;
    CHECK_ERRNO(getpeername(s, (struct sockaddr *)&peer, &plen), ENOTCONN);
    n = echo(req, 0, 8, "bound");
    CHECK_EQ(send(s, req, n, 0), n);
    CHECK(readable(s));
    CHECK_EQ(recv(s, buf, sizeof buf, 0), n);
    CHECK_EQ(ntohs(((struct icmphdr *)buf)->un.echo.id), 4242);
    /* Ping sockets are made with SO_REUSEADDR (INET_PROTOSW_REUSE): another may take the
     * same identifier, but not twice. */
    int s2 = CHECK_OK(socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP));
    CHECK_OK(bind(s2, (struct sockaddr *)&b, sizeof b));
    CHECK_ERRNO(bind(s2, (struct sockaddr *)&b, sizeof b), EINVAL);
    close(s2);
    close(s);
}

int main(void)
{
    setup();
    raw_echo();
    ping_socket();

    /* IPv6 has ICMPv6, not ICMP, for datagram sockets. */
    CHECK_ERRNO(socket(AF_INET6, SOCK_DGRAM, IPPROTO_ICMP), EPROTONOSUPPORT);

    /* Raw sockets need CAP_NET_RAW, which a user other than root lacks. */
    pid_t pid = fork();
    if (pid == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(2);
        int r = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
        _exit(r < 0 && errno == EPERM ? 0 : 1);
    }
    int st = 0;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    CHECK_EXITED(st, 0);
    return check_done();
}
