// GET /llm.txt (SPEC §2.5.12): a plain-text description of this API for agents and
// integrators, built into the binary.
#pragma once

#include <string_view>

namespace sandboxd::control {

std::string_view llm_txt();

}  // namespace sandboxd::control
