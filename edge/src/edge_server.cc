#include "edge/edge_server.h"

#include "server_state.h"
#include "worker.h"

#include <thread>

namespace sandboxd::edge {

using detail::ServerState;
using detail::Worker;
namespace asio = detail::asio;
using tcp = detail::tcp;

namespace {

constexpr std::chrono::seconds kCloseWait{2};  // after the grace: held answers, sockets close

Result<asio::ip::address> listen_address(const std::string& host) {
  if (host.empty()) return asio::ip::address(asio::ip::address_v6::any());
  if (host == "localhost") return asio::ip::address(asio::ip::address_v4::loopback());
  std::string literal = host;
  if (literal.size() > 2 && literal.front() == '[' && literal.back() == ']') {
    literal = literal.substr(1, literal.size() - 2);
  }
  detail::error_code ec;
  auto address = asio::ip::make_address(literal, ec);
  if (ec) return Error{Errc::invalid_argument, "edge listen host is not an IP address: " + host};
  return address;
}

}  // namespace

struct EdgeServer::Impl {
  std::unique_ptr<ServerState> state;
  std::vector<std::unique_ptr<Worker>> workers;
  bool stopped = false;

  ~Impl() { workers.clear(); }
};

EdgeServer::EdgeServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

EdgeServer::~EdgeServer() { stop(std::chrono::milliseconds(0)); }

Result<std::unique_ptr<EdgeServer>> EdgeServer::start(EdgeOptions options,
                                                      RouteTablePublisher& routes, Waker& waker,
                                                      ActivityTable& activity) {
  if (options.preview_suffix.empty()) {
    return Error{Errc::invalid_argument, "the preview suffix is empty"};
  }
  std::size_t count = options.workers;
  if (count == 0) count = std::max(1u, std::thread::hardware_concurrency());
  auto address = listen_address(options.listen_host);
  if (!address) return address.error();
  const bool any = options.listen_host.empty();
  auto https_address = listen_address(options.https_listen_host);
  if (!https_address) return https_address.error();
  const bool https_any = options.https_listen_host.empty();
  const TlsCertificates first = std::move(options.certificates);
  options.certificates = {};

  auto impl = std::make_unique<Impl>();
  impl->state = std::make_unique<ServerState>(std::move(options), routes, waker, activity);
  ServerState& st = *impl->state;
  st.preview_auth.publish(std::make_shared<const PreviewAuthSettings>(st.options.preview_auth));
  if (st.options.tls) {
    auto set = detail::TlsContexts::build(first, st.options.tls13_only, st.tickets);
    if (!set) return set.error();
    st.tls.publish(std::move(*set));
    st.tls_source = first;
    st.tls_reloads_ok.fetch_add(1, std::memory_order_relaxed);
  }
  std::uint16_t port = st.options.listen_port;
  std::uint16_t https_port = st.options.https_listen_port;
  for (std::size_t i = 0; i < count; ++i) {
    auto worker = std::make_unique<Worker>(st, i);
    Status bound = worker->listen(tcp::endpoint(*address, port), false);
    if (!bound && any && i == 0) {
      // No IPv6 on this host: every IPv4 interface instead.
      *address = asio::ip::address_v4::any();
      bound = worker->listen(tcp::endpoint(*address, port), false);
    }
    if (!bound) return bound.error();
    if (i == 0) port = worker->local_port(false);
    if (st.options.tls) {
      bound = worker->listen(tcp::endpoint(*https_address, https_port), true);
      if (!bound && https_any && i == 0) {
        *https_address = asio::ip::address_v4::any();
        bound = worker->listen(tcp::endpoint(*https_address, https_port), true);
      }
      if (!bound) return bound.error();
      if (i == 0) https_port = worker->local_port(true);
    }
    impl->workers.push_back(std::move(worker));
  }
  st.port = port;
  st.https_port = st.options.tls ? https_port : 0;
  for (auto& worker : impl->workers) worker->start();
  return std::unique_ptr<EdgeServer>(new EdgeServer(std::move(impl)));
}

std::uint16_t EdgeServer::port() const { return impl_->state->port; }

std::uint16_t EdgeServer::https_port() const { return impl_->state->https_port; }

void EdgeServer::set_preview_auth(PreviewAuthSettings settings) {
  impl_->state->preview_auth.publish(std::make_shared<const PreviewAuthSettings>(std::move(settings)));
}

void EdgeServer::reconfigure(EdgeOptions next) {
  ServerState& s = *impl_->state;
  const EdgeOptions& started = s.options;
  next.listen_host = started.listen_host;
  next.listen_port = started.listen_port;
  next.tls = started.tls;
  next.https_listen_host = started.https_listen_host;
  next.https_listen_port = started.https_listen_port;
  next.workers = started.workers;
  next.preview_suffix = started.preview_suffix;
  next.certificates = {};
  next.access_log = started.access_log;
  set_preview_auth(next.preview_auth);
  std::lock_guard lock(s.tls_mu);  // orders this with set_certificates
  const bool tls13_changed = next.tls13_only != s.tuning.current().tls13_only;
  s.tuning.publish(std::move(next));
  if (!s.options.tls || !tls13_changed) return;
  auto set = detail::TlsContexts::build(s.tls_source, s.tuning.current().tls13_only, s.tickets);
  if (!set) {
    s.tls_reloads_error.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  s.tls.publish(std::move(*set));
  s.tls_reloads_ok.fetch_add(1, std::memory_order_relaxed);
}

Status EdgeServer::set_certificates(const TlsCertificates& certificates) {
  ServerState& s = *impl_->state;
  if (!s.options.tls) return Error{Errc::invalid_argument, "TLS is off"};
  std::lock_guard lock(s.tls_mu);
  auto set = detail::TlsContexts::build(certificates, s.tuning.current().tls13_only, s.tickets);
  if (!set) {
    s.tls_reloads_error.fetch_add(1, std::memory_order_relaxed);
    return set.error();
  }
  s.tls.publish(std::move(*set));
  s.tls_source = certificates;
  s.tls_reloads_ok.fetch_add(1, std::memory_order_relaxed);
  return ok();
}

EdgeStats EdgeServer::stats() const {
  const ServerState& s = *impl_->state;
  EdgeStats out;
  out.open_connections = s.open_connections.load(std::memory_order_relaxed);
  out.accepted = s.accepted.load(std::memory_order_relaxed);
  out.held = s.held.load(std::memory_order_relaxed);
  out.upstream_connects = s.upstream_connects.load(std::memory_order_relaxed);
  out.upstream_reuses = s.upstream_reuses.load(std::memory_order_relaxed);
  out.wake_calls = s.wake->calls();
  return out;
}

EdgeMetrics EdgeServer::metrics() const {
  const ServerState& s = *impl_->state;
  EdgeMetrics out;
  out.tls_reloads_ok = s.tls_reloads_ok.load(std::memory_order_relaxed);
  out.tls_reloads_error = s.tls_reloads_error.load(std::memory_order_relaxed);
  out.held_requests = s.held.load(std::memory_order_relaxed);
  for (const auto& block : s.counters) block->add_to(out);
  if (s.options.access_log) out.access_log_dropped = s.options.access_log->dropped();
  return out;
}

Status EdgeServer::reopen_access_log() {
  const auto& writer = impl_->state->options.access_log;
  return writer ? writer->reopen() : ok();
}

Status EdgeServer::set_access_log(std::string target) {
  const auto& writer = impl_->state->options.access_log;
  if (!writer) return Error{Errc::invalid_argument, "this edge was started without an access log writer"};
  return writer->retarget(std::move(target));
}

namespace {
// Shared by every worker a call reaches; `done` runs when the last one lets go.
std::shared_ptr<void> completion_token(std::function<void()> done) {
  return std::shared_ptr<void>(nullptr, [done = std::move(done)](void*) { done(); });
}
}  // namespace

void EdgeServer::barrier(std::function<void()> done) {
  auto token = completion_token(std::move(done));
  for (auto& w : impl_->workers) w->barrier(token);
}

void EdgeServer::end_tunnels(const Ulid& id, std::function<void()> done) {
  auto token = completion_token(std::move(done));
  for (auto& w : impl_->workers) w->end_tunnels(id, token);
}

void EdgeServer::stop(std::chrono::milliseconds grace) {
  if (impl_->stopped) return;
  impl_->stopped = true;
  ServerState& s = *impl_->state;
  s.draining = true;
  for (auto& w : impl_->workers) w->begin_drain();
  s.wait_connections_below(1, detail::steady::now() + grace);
  for (auto& w : impl_->workers) w->force_close();
  s.wait_connections_below(1, detail::steady::now() + kCloseWait);
  for (auto& w : impl_->workers) w->join();
  impl_->workers.clear();
  // The last requests' lines reach the log before stop returns.
  if (s.options.access_log) s.options.access_log->flush(kCloseWait);
}

}  // namespace sandboxd::edge
