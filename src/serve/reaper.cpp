#include "serve/reaper.hpp"

#include <poll.h>

namespace stockade::serve {

void Reaper::bury(std::unique_ptr<WarmJail> j) {
    const int fd = j->supervisor().pidfd();
    pollfd p{fd, POLLIN, 0};
    if (fd < 0 || ::poll(&p, 1, 0) != 0) return;  // gone (or unpollable): destroyed here, as before
    auto it = dying_.insert(dying_.end(), Dying{std::move(j), IoWatch()});
    it->gone = IoWatch(loop_, fd, POLLIN, [this, it](short) { dying_.erase(it); });
}

bool Reaper::reap_one() {
    if (dying_.empty()) return false;
    dying_.pop_front();
    return true;
}

}  // namespace stockade::serve
