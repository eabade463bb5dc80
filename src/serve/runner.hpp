// The Python source of the runner (src/serve/runner.py), compiled in.
#pragma once

namespace stockade::serve {
const char* runner_source();
}
