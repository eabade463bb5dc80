#include "jail/net.hpp"

#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>

#include <memory>
#include <string>

#include "util/error.hpp"
#include "util/fd.hpp"

#include <netinet/in.h>
#include <sys/socket.h>

namespace stockade::jail {
namespace {
[[noreturn]] void nl_fail(const char* op, int rc) { throw Error(std::string(op) + " lo: " + nl_geterror(rc)); }
}  // namespace

void loopback_up() {
    std::unique_ptr<nl_sock, void (*)(nl_sock*)> sk(nl_socket_alloc(), nl_socket_free);
    if (!sk) throw Error("netlink socket: out of memory");
    if (int rc = nl_connect(sk.get(), NETLINK_ROUTE); rc < 0) nl_fail("netlink connect", rc);
    // In a fresh namespace lo is always ifindex 1; a change request needs no lookup round trip.
    std::unique_ptr<rtnl_link, void (*)(rtnl_link*)> lo(rtnl_link_alloc(), rtnl_link_put);
    std::unique_ptr<rtnl_link, void (*)(rtnl_link*)> change(rtnl_link_alloc(), rtnl_link_put);
    if (!lo || !change) throw Error("netlink link: out of memory");
    rtnl_link_set_ifindex(lo.get(), 1);
    rtnl_link_set_flags(change.get(), IFF_UP);
    if (int rc = rtnl_link_change(sk.get(), lo.get(), change.get(), 0); rc < 0) nl_fail("bring up", rc);
}

int proxy_listener(uint16_t port) {
    UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!s) throw_sys("socket", "proxy listener");
    int one = 1;
    ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a {};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) < 0)
        throw_sys("bind", "proxy listener 127.0.0.1:" + std::to_string(port));
    check(::listen(s.get(), 128), "listen", "proxy listener");
    return s.release();
}

}  // namespace stockade::jail
