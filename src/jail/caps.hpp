// Credentials inside the jail: switching to the jail's ids while setup still
// needs its capabilities, and dropping every capability before the program runs.
#pragma once
#include <cstdint>

namespace stockade::jail {

// setresgid/setresuid to the jail's ids, keeping the user-namespace capabilities
// that building the root still needs.
void switch_ids(uint32_t uid, uint32_t gid);

// Empties the bounding, ambient, inheritable, permitted and effective sets, and
// locks the securebits so nothing (not uid 0, not file caps) can bring any back.
void drop_all_capabilities();

}  // namespace stockade::jail
