// The DNS-01 propagation gate (SPEC §10.1 step 8): after `delay`, ask every authoritative
// server of the zone directly (RD=0) every `interval` until each one returns every value,
// or fail at `timeout`. The servers are `nameservers` when given, else the zone's NS set
// found through the system resolver. With check "off" only the delay is waited.
#pragma once

#include "acme/issuer.h"
#include "base/result.h"

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace sandboxd::acme {

struct TxtRecord {
  std::string fqdn;   // with the trailing dot
  std::string value;
};

// Sleeps for the duration; false when the wait was cancelled.
using SleepFn = std::function<bool(std::chrono::milliseconds)>;

// Errors: timeout (the detail says which server lacked which name, plus the hint),
// cancelled.
Status wait_for_propagation(const PropagationOptions& options,
                            const std::vector<TxtRecord>& records, const SleepFn& sleep);

}  // namespace sandboxd::acme
