#include "sandbox/net.hpp"

#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>

#include <memory>
#include <string>

#include "util/error.hpp"

namespace stockade::sandbox {
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

}  // namespace stockade::sandbox
