// Network setup inside the jail's own network namespace.
#pragma once

namespace stockade::sandbox {

// Brings the namespace's loopback interface up (via rtnetlink); it starts down.
void loopback_up();

}  // namespace stockade::sandbox
