#include "admission.h"

#include "base/log.h"

#include <algorithm>
#include <cmath>

namespace sandboxd::control {

namespace {

constexpr log::Logger kLog{"admission"};

std::string_view kind_name(AdmissionKind k) { return k == AdmissionKind::wake ? "wake" : "create"; }

double percent_of(std::uint64_t part, std::uint64_t total) {
  return total == 0 ? 0 : 100.0 * static_cast<double>(part) / static_cast<double>(total);
}

}  // namespace

std::uint64_t memory_floor_bytes(const config::AdmissionConfig& a, std::uint64_t total_bytes) {
  const auto& floor = a.min_available_memory;
  if (!floor.is_percent) return floor.bytes;
  return static_cast<std::uint64_t>(std::ceil(static_cast<double>(total_bytes) * floor.percent / 100.0));
}

bool memory_admits(std::uint64_t available_bytes, std::uint64_t total_bytes,
                   const config::AdmissionConfig& a) {
  const std::uint64_t estimate = a.estimate_per_sandbox;
  if (available_bytes < estimate) return false;
  return available_bytes - estimate >= memory_floor_bytes(a, total_bytes);
}

ApiError low_memory_refusal(double available_percent) {
  const auto shown = static_cast<long long>(std::floor(available_percent));
  ApiError e{503, "sandbox_capacity",
             "not enough free memory to start a sandbox (" + std::to_string(shown) +
                 "% available); try again later",
             {{"Retry-After", "30"}}};
  e.legacy_body = R"({"error":"low_memory","code":"sandbox_capacity","mem_available_percent":)" +
                  std::to_string(shown) + "}";
  return e;
}

Admission::Admission(const config::Config& config, ReadMemory read_memory)
    : config_(config),
      read_memory_(std::move(read_memory)),
      slots_(std::max<std::size_t>(1, config.wake.max_concurrent)) {}

asio::awaitable<ApiResult<Admission::Ticket>> Admission::admit(AdmissionKind kind) {
  Ticket ticket(co_await slots_.acquire());
  // Copied: a reload may replace the config while the pressure pass runs.
  const config::AdmissionConfig a = config_.wake.admission;
  const std::optional<HostMemory> mem = read_memory_();
  if (!mem || mem->total_bytes == 0) co_return ticket;
  if (memory_admits(mem->available_bytes, mem->total_bytes, a)) co_return ticket;

  std::uint64_t available = mem->available_bytes;
  const auto& pressure = config_.pressure;
  if (pressure.enabled && !pressure.bands.empty() && pressure_pass_) {
    // The band with the highest `below` (the bands are validated in decreasing order).
    const config::PressureBand band = *std::max_element(
        pressure.bands.begin(), pressure.bands.end(),
        [](const auto& x, const auto& y) { return x.below < y.below; });
    const std::uint64_t target = memory_floor_bytes(a, mem->total_bytes) + a.estimate_per_sandbox;
    const std::uint64_t freed = co_await pressure_pass_(band, *mem, target);
    // Memory a stop frees reaches MemAvailable only as the kernel releases the container's
    // pages; until then the pass's own estimate (§4.6 step 4) stands in for it.
    const std::optional<HostMemory> after = read_memory_();
    available = std::max(after ? after->available_bytes : 0, mem->available_bytes + freed);
    if (memory_admits(available, mem->total_bytes, a)) co_return ticket;
  }
  refusals_[static_cast<std::size_t>(kind)].fetch_add(1, std::memory_order_relaxed);
  const double pct = percent_of(available, mem->total_bytes);
  kLog.warn("admission refused", {{"kind", kind_name(kind)}, {"reason", "low_memory"},
                                   {"avail_pct", pct},
                                   {"estimate_bytes", a.estimate_per_sandbox}});
  co_return low_memory_refusal(pct);
}

void Admission::write_metrics(TextWriter& w) const {
  w.family("sandboxd_admission_refusals_total", "counter", "Admission refusals.");
  for (AdmissionKind k : {AdmissionKind::wake, AdmissionKind::create}) {
    w.sample("sandboxd_admission_refusals_total", {{"kind", kind_name(k)}, {"reason", "low_memory"}},
             static_cast<double>(refusals_[static_cast<std::size_t>(k)].load(std::memory_order_relaxed)));
  }
}

}  // namespace sandboxd::control
