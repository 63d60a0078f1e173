// Reading a YAML document into a Config (schema.cc) and the cross-key rules of §9.3
// (checks.cc).
#pragma once

#include "reader.h"
#include "yaml_tree.h"

namespace sandboxd::config::detail {

// Reads every key of §9.2 from `root` (nullptr = empty document) into r.cfg(), reporting
// value problems and declaring the whole schema.
void read_document(Reader& r, const YamlNode* root);

// The rules that involve more than one key, run on the values read so far.
void check_document(Reader& r);

}  // namespace sandboxd::config::detail
