// The edge's metric families (SPEC §11), as a plain snapshot: `EdgeServer::metrics()` sums
// every worker's counters into one `EdgeMetrics` at the moment it is called.
//
// Each worker counts into its own block of relaxed atomics that only its thread writes, so
// the request path takes no lock and shares no cache line; a reader adds the blocks up. A
// snapshot is a moment's view, exact per counter but not across counters (a histogram's
// buckets and its sum may be an observation apart). Every label is an index into one of the
// fixed name lists below, so the label sets are bounded and known in advance.
//
// What counts when:
//  - a request counts once, when it ends (where its access line is written, whether or not
//    the access log is on), under its status class and `source`: `edge` when the edge wrote
//    the answer (an error page, /healthz, a §3.3 rejection), `upstream` otherwise. A request
//    that ended before any status was sent (the client left) counts in no class. Tunnels
//    count as requests (status 101) but not in the duration histogram.
//  - `errors` counts the answers the edge wrote itself: §3.13 codes, and `http_<status>` for
//    the §3.3 rejections and the per-client 429 (§3.10).
//  - `rejected`: `max_connections` (closed at accept), `per_client` (the 429), `header_timeout`
//    (header_read ran out: 408 or a silent close), `bad_request` (any other §3.3 rejection
//    that closed the connection, the HTTP/2 preface included), `tls_handshake` (a failed or
//    timed-out handshake; it also counts in tls_handshakes_failed).
//  - `bytes`: request and response body bytes and tunnel bytes, from and to clients, counted
//    as they move (the access log's bytes_in/bytes_out).
//  - `held_seconds`: once per request that was held, when it ends, with the time since it
//    arrived and its last hold's outcome; a request refused by the hold caps counts as
//    `refused` with 0 s.
//  - `port_waits`: once per port wait (a hold without a wake, §3.6 rule 6).
//  - `wake_duration`: per wake cycle and worker with held requests, from the first held
//    request until the first port answered; `wake_phases`: `port_open`, from the wake's
//    `ok` until that port answered, and `first_byte`, per woken request, from its dispatch
//    until the first byte of the upstream's answer. (Control measures `queue` and `start`.)
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sandboxd::edge {

// SPEC §11 buckets for request, wake and hold durations, in seconds.
inline constexpr std::array<double, 15> kDurationBuckets{.005, .01, .025, .05, .1, .25, .5, 1,
                                                         2,    4,   8,    15,  30, 60,  120};

// `source` of sandboxd_edge_requests_total and sandboxd_edge_request_duration_seconds.
inline constexpr std::array<std::string_view, 2> kSourceNames{"upstream", "edge"};
enum class Source : std::uint8_t { upstream, edge };

// `class`: 1xx … 5xx.
inline constexpr std::array<std::string_view, 5> kClassNames{"1xx", "2xx", "3xx", "4xx", "5xx"};

// `listener`: the plain and the TLS listener (SPEC §3.1).
inline constexpr std::array<std::string_view, 2> kListenerNames{"http", "https"};
enum class Listener : std::uint8_t { http, https };

// `version` of sandboxd_tls_handshakes_total{result="ok"}; failed handshakes have none.
inline constexpr std::array<std::string_view, 3> kTlsVersionNames{"TLSv1.2", "TLSv1.3", "other"};

// sandboxd_preview_auth_total: `result` × `via` × `reason` (edge/preview_auth.h's names).
inline constexpr std::array<std::string_view, 2> kPreviewResultNames{"allowed", "denied"};
inline constexpr std::array<std::string_view, 4> kPreviewViaNames{"cookie", "query", "bearer",
                                                                  "none"};
enum class PreviewVia : std::uint8_t { cookie, query, bearer, none };
inline constexpr std::size_t kPreviewReasons = 10;  // kTokenCheckNames.size()

inline constexpr std::array<std::string_view, 5> kRejectNames{
    "max_connections", "per_client", "tls_handshake", "header_timeout", "bad_request"};
enum class RejectReason : std::uint8_t {
  max_connections,
  per_client,
  tls_handshake,
  header_timeout,
  bad_request
};

inline constexpr std::array<std::string_view, 2> kTunnelProtocolNames{"websocket", "other"};
enum class TunnelProtocol : std::uint8_t { websocket, other };

// `by` of sandboxd_edge_tunnels_closed_total: the side, or the edge's reason, that ended it.
inline constexpr std::array<std::string_view, 5> kTunnelEndNames{"client", "upstream", "idle",
                                                                 "sandbox_stop", "shutdown"};
enum class TunnelEnd : std::uint8_t { client, upstream, idle, sandbox_stop, shutdown };

inline constexpr std::array<std::string_view, 3> kPortWaitNames{"ok", "timeout", "cancelled"};
enum class PortWaitResult : std::uint8_t { ok, timeout, cancelled };

inline constexpr std::array<std::string_view, 5> kHeldResultNames{"forwarded", "timeout", "refused",
                                                                  "failed", "gone"};
enum class HeldResult : std::uint8_t { forwarded, timeout, refused, failed, gone };

// The `phase` values of sandboxd_wake_phase_seconds that the edge measures.
inline constexpr std::array<std::string_view, 2> kEdgeWakePhaseNames{"port_open", "first_byte"};
enum class EdgeWakePhase : std::uint8_t { port_open, first_byte };

// `code` of sandboxd_edge_errors_total: the §3.13 codes (and `internal`, the edge's answer to
// a bug), then the statuses of the answers written without negotiation (§3.3, §3.10).
inline constexpr std::array<std::string_view, 27> kEdgeErrorCodes{
    // §3.13
    "unknown_host", "no_such_sandbox", "port_not_exposed", "preview_auth_required",
    "sandbox_error", "wake_failed", "upstream_unreachable", "upstream_reset",
    "upstream_protocol_error", "upstream_timeout", "wake_timeout", "port_not_open",
    "wake_refused", "too_many_held", "sandbox_busy", "shutting_down", "internal",
    // §3.3 and §3.10
    "http_400", "http_405", "http_408", "http_413", "http_414", "http_417", "http_429",
    "http_431", "http_501", "http_505"};

// The index of `code` in kEdgeErrorCodes; `internal`'s for a code not in the list.
std::size_t edge_error_index(std::string_view code);
// The index of `http_<status>`; `http_400`'s for a status not in the list.
std::size_t edge_rejection_index(int status);

struct DurationHistogram {
  std::array<std::uint64_t, kDurationBuckets.size() + 1> counts{};  // per bucket, +Inf last;
                                                                    // not cumulated
  double sum = 0;                                                   // seconds
  std::uint64_t count() const;
};

struct EdgeMetrics {
  // Gauges.
  std::array<std::uint64_t, kListenerNames.size()> connections_open{};
  std::uint64_t held_requests = 0;
  std::array<std::int64_t, kTunnelProtocolNames.size()> tunnels_open{};
  std::int64_t upstream_connections_open = 0;  // busy and pooled

  // Counters.
  std::array<std::uint64_t, kListenerNames.size()> connections_total{};
  // [listener][class][source]
  std::array<std::array<std::array<std::uint64_t, kSourceNames.size()>, kClassNames.size()>,
             kListenerNames.size()>
      requests{};
  std::array<DurationHistogram, kSourceNames.size()> request_duration{};
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::array<std::uint64_t, kRejectNames.size()> rejected{};
  std::array<std::uint64_t, kTunnelEndNames.size()> tunnels_closed{};
  std::array<std::uint64_t, kEdgeErrorCodes.size()> errors{};
  std::uint64_t upstream_retries = 0;
  std::uint64_t access_log_dropped = 0;
  std::array<std::uint64_t, kPortWaitNames.size()> port_waits{};
  std::array<DurationHistogram, kHeldResultNames.size()> held_seconds{};
  std::array<std::uint64_t, kTlsVersionNames.size()> tls_handshakes_ok{};
  std::uint64_t tls_handshakes_failed = 0;
  // [result][via][reason]
  std::array<std::array<std::array<std::uint64_t, kPreviewReasons>, kPreviewViaNames.size()>,
             kPreviewResultNames.size()>
      preview_auth{};
  std::uint64_t tls_reloads_ok = 0;     // certificate sets swapped in (the first one included)
  std::uint64_t tls_reloads_error = 0;  // sets refused by set_certificates
  DurationHistogram wake_duration{};
  std::array<DurationHistogram, kEdgeWakePhaseNames.size()> wake_phases{};
};

}  // namespace sandboxd::edge
