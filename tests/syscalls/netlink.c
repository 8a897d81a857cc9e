/* NETLINK_ROUTE and the interface ioctls, as far as they are the same natively and in a
 * sandbox whose only interface is lo: socket arguments, port ids, the RTM_GETLINK and
 * RTM_GETADDR dumps (lo, 127.0.0.1/8, ::1/128), RTM_GETLINK by index, MSG_PEEK|MSG_TRUNC
 * sizing, errors for unknown requests, getifaddrs/if_nameindex (which use netlink), and
 * SIOCGIFCONF/SIOCGIFINDEX/SIOCGIFNAME/SIOCGIFFLAGS/SIOCGIFADDR/SIOCGIFMTU. */
#include "check.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

struct req {
    struct nlmsghdr h;
    union {
        struct ifinfomsg ifi;
        struct ifaddrmsg ifa;
        struct rtgenmsg gen;
    };
};

static int send_req(int fd, int type, int flags, int family, int index, unsigned seq)
{
    struct req r;
    memset(&r, 0, sizeof r);
    r.h.nlmsg_len = NLMSG_LENGTH(sizeof r.ifi);
    r.h.nlmsg_type = (unsigned short)type;
    r.h.nlmsg_flags = (unsigned short)(NLM_F_REQUEST | flags);
    r.h.nlmsg_seq = seq;
    r.ifi.ifi_family = (unsigned char)family;
    r.ifi.ifi_index = index;
    struct sockaddr_nl k = { .nl_family = AF_NETLINK };
    return (int)sendto(fd, &r, r.h.nlmsg_len, 0, (struct sockaddr *)&k, sizeof k);
}

static char buf[1 << 16];

/* Reads replies to `seq` until NLMSG_DONE (or one reply if not a dump); counts what it saw. */
struct seen {
    int links, lo_link, lo_flags_ok, addrs, lo4, lo6, errors, last_error, done, bad_seq;
};

static void read_replies(int fd, unsigned seq, unsigned port, struct seen *s, int dump)
{
    memset(s, 0, sizeof *s);
    for (int rounds = 0; rounds < 100; rounds++) {
        struct sockaddr_nl from;
        struct iovec iov = { buf, sizeof buf };
        struct msghdr mh = { .msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov,
                             .msg_iovlen = 1 };
        ssize_t n = recvmsg(fd, &mh, 0);
        if (n <= 0)
            return;
        if (from.nl_pid != 0)
            s->bad_seq++;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
             h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_seq != seq || h->nlmsg_pid != port)
                s->bad_seq++;
            if (h->nlmsg_type == NLMSG_DONE) {
                s->done++;
                return;
            }
            if (h->nlmsg_type == NLMSG_ERROR) {
                s->errors++;
                s->last_error = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
                return;
            }
            if (h->nlmsg_type == RTM_NEWLINK) {
                struct ifinfomsg *ifi = NLMSG_DATA(h);
                s->links++;
                int len = (int)IFLA_PAYLOAD(h);
                for (struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len))
                    if (a->rta_type == IFLA_IFNAME && strcmp(RTA_DATA(a), "lo") == 0) {
                        s->lo_link = ifi->ifi_index;
                        s->lo_flags_ok = (ifi->ifi_flags & (IFF_UP | IFF_LOOPBACK)) ==
                                         (IFF_UP | IFF_LOOPBACK);
                    }
            }
            if (h->nlmsg_type == RTM_NEWADDR) {
                struct ifaddrmsg *ifa = NLMSG_DATA(h);
                s->addrs++;
                int len = (int)IFA_PAYLOAD(h);
                for (struct rtattr *a = IFA_RTA(ifa); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
                    if (a->rta_type != IFA_ADDRESS)
                        continue;
                    if (ifa->ifa_family == AF_INET && ifa->ifa_prefixlen == 8 &&
                        *(uint32_t *)RTA_DATA(a) == htonl(INADDR_LOOPBACK))
                        s->lo4++;
                    if (ifa->ifa_family == AF_INET6 && ifa->ifa_prefixlen == 128 &&
                        IN6_IS_ADDR_LOOPBACK((struct in6_addr *)RTA_DATA(a)))
                        s->lo6++;
                }
            }
        }
        if (!dump)
            return;
    }
}

static void test_netlink(void)
{
    CHECK_ERRNO(socket(AF_NETLINK, SOCK_STREAM, NETLINK_ROUTE), ESOCKTNOSUPPORT);
    int fd = CHECK_OK(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
    struct sockaddr_nl me = { .nl_family = AF_NETLINK };
    CHECK_ERRNO(bind(fd, (struct sockaddr *)&me, 4), EINVAL);
    CHECK_OK(bind(fd, (struct sockaddr *)&me, sizeof me));
    socklen_t len = sizeof me;
    CHECK_OK(getsockname(fd, (struct sockaddr *)&me, &len));
    CHECK_EQ(len, sizeof me);
    CHECK_EQ(me.nl_family, AF_NETLINK);
    CHECK(me.nl_pid != 0);
    int v = 0;
    len = sizeof v;
    CHECK_OK(getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &len));
    CHECK_EQ(v, NETLINK_ROUTE);
    int one = 1;
    CHECK_OK(setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one));

    struct seen s;
    CHECK_EQ(send_req(fd, RTM_GETLINK, NLM_F_DUMP, AF_UNSPEC, 0, 1), NLMSG_LENGTH(sizeof(struct ifinfomsg)));
    read_replies(fd, 1, me.nl_pid, &s, 1);
    CHECK(s.links >= 1);
    CHECK_EQ(s.lo_link, 1);
    CHECK_EQ(s.lo_flags_ok, 1);
    CHECK_EQ(s.done, 1);
    CHECK_EQ(s.bad_seq, 0);

    CHECK_OK(send_req(fd, RTM_GETADDR, NLM_F_DUMP, AF_UNSPEC, 0, 2));
    read_replies(fd, 2, me.nl_pid, &s, 1);
    CHECK_EQ(s.lo4, 1);
    CHECK_EQ(s.lo6, 1);
    CHECK_EQ(s.done, 1);
    CHECK_OK(send_req(fd, RTM_GETADDR, NLM_F_DUMP, AF_INET6, 0, 3));
    read_replies(fd, 3, me.nl_pid, &s, 1);
    CHECK_EQ(s.lo4, 0);
    CHECK_EQ(s.lo6, 1);

    /* One link by index; iproute2 sizes its buffer with MSG_PEEK|MSG_TRUNC first. */
    CHECK_OK(send_req(fd, RTM_GETLINK, 0, AF_UNSPEC, 1, 4));
    char small[4];
    ssize_t want = recv(fd, small, sizeof small, MSG_PEEK | MSG_TRUNC);
    CHECK(want > (ssize_t)sizeof small);
    read_replies(fd, 4, me.nl_pid, &s, 0);
    CHECK_EQ(s.links, 1);
    CHECK_EQ(s.lo_link, 1);
    CHECK_OK(send_req(fd, RTM_GETLINK, NLM_F_ACK, AF_UNSPEC, 1000000, 5));
    read_replies(fd, 5, me.nl_pid, &s, 0);
    CHECK_EQ(s.errors, 1);
    CHECK_EQ(s.last_error, -ENODEV);
    /* A request that is not a request gets nothing back. */
    struct req r = { .h = { .nlmsg_len = NLMSG_LENGTH(0), .nlmsg_type = RTM_GETLINK } };
    CHECK_EQ(send(fd, &r, r.h.nlmsg_len, 0), NLMSG_LENGTH(0));
    CHECK_ERRNO(recv(fd, buf, sizeof buf, MSG_DONTWAIT), EAGAIN);
    close(fd);

    /* glibc's own netlink users. */
    struct ifaddrs *ifa;
    CHECK_OK(getifaddrs(&ifa));
    int lo4 = 0, lo6 = 0;
    for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
        if (!i->ifa_addr || strcmp(i->ifa_name, "lo") != 0)
            continue;
        if (i->ifa_addr->sa_family == AF_INET)
            lo4 += ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
        if (i->ifa_addr->sa_family == AF_INET6)
            lo6 += IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr);
    }
    freeifaddrs(ifa);
    CHECK_EQ(lo4, 1);
    CHECK_EQ(lo6, 1);
    CHECK_EQ(if_nametoindex("lo"), 1);
    char name[IF_NAMESIZE];
    CHECK(if_indextoname(1, name) != NULL);
    CHECK_STREQ(name, "lo");
    CHECK_EQ(if_nametoindex("no-such-if0"), 0);
}

static void test_ioctls(int family)
{
    int fd = CHECK_OK(socket(family, SOCK_DGRAM, 0));
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    CHECK_OK(ioctl(fd, SIOCGIFINDEX, &ifr));
    CHECK_EQ(ifr.ifr_ifindex, 1);
    CHECK_OK(ioctl(fd, SIOCGIFFLAGS, &ifr));
    CHECK_EQ(ifr.ifr_flags & (IFF_UP | IFF_LOOPBACK | IFF_RUNNING), IFF_UP | IFF_LOOPBACK | IFF_RUNNING);
    CHECK_OK(ioctl(fd, SIOCGIFMTU, &ifr));
    CHECK_EQ(ifr.ifr_mtu, 65536);
    CHECK_OK(ioctl(fd, SIOCGIFHWADDR, &ifr));
    CHECK_EQ(ifr.ifr_hwaddr.sa_family, 772 /* ARPHRD_LOOPBACK */);
    if (family == AF_INET) {
        CHECK_OK(ioctl(fd, SIOCGIFADDR, &ifr));
        CHECK_EQ(((struct sockaddr_in *)&ifr.ifr_addr)->sin_family, AF_INET);
        CHECK_EQ(((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
        CHECK_OK(ioctl(fd, SIOCGIFNETMASK, &ifr));
        CHECK_EQ(((struct sockaddr_in *)&ifr.ifr_netmask)->sin_addr.s_addr, htonl(0xff000000));
    }
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_ifindex = 1;
    CHECK_OK(ioctl(fd, SIOCGIFNAME, &ifr));
    CHECK_STREQ(ifr.ifr_name, "lo");
    strcpy(ifr.ifr_name, "no-such-if0");
    CHECK_ERRNO(ioctl(fd, SIOCGIFFLAGS, &ifr), ENODEV);
    ifr.ifr_ifindex = 1000000;
    CHECK_ERRNO(ioctl(fd, SIOCGIFNAME, &ifr), ENODEV);

    struct ifconf conf = { .ifc_len = 0, .ifc_buf = NULL };
    CHECK_OK(ioctl(fd, SIOCGIFCONF, &conf));
    CHECK(conf.ifc_len >= (int)sizeof(struct ifreq));
    CHECK_EQ(conf.ifc_len % (int)sizeof(struct ifreq), 0);
    struct ifreq reqs[32];
    conf.ifc_len = sizeof reqs;
    conf.ifc_req = reqs;
    CHECK_OK(ioctl(fd, SIOCGIFCONF, &conf));
    int found = 0;
    for (int i = 0; i < conf.ifc_len / (int)sizeof(struct ifreq); i++)
        found += strcmp(reqs[i].ifr_name, "lo") == 0 &&
                 ((struct sockaddr_in *)&reqs[i].ifr_addr)->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
    CHECK_EQ(found, 1);
    /* No room for even one entry: nothing is written. */
    conf.ifc_len = sizeof(struct ifreq) - 1;
    CHECK_OK(ioctl(fd, SIOCGIFCONF, &conf));
    CHECK_EQ(conf.ifc_len, 0);
    close(fd);
}

int main(void)
{
    test_netlink();
    test_ioctls(AF_INET);
    test_ioctls(AF_INET6);
    test_ioctls(AF_UNIX);
    return check_done();
}
