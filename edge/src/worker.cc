#include "worker.h"

#include <boost/asio/ip/v6_only.hpp>

#include <sys/socket.h>

namespace sandboxd::edge::detail {

namespace {

constexpr std::chrono::milliseconds kAcceptBackoff{20};

}  // namespace

Worker::Worker(ServerState& s, std::size_t /*index*/)
    : state(s), options(s.options), activity(s.activity.impl().add_shard()),
      counters(s.add_counters()),
      access_log(s.options.access_log ? &s.options.access_log->add_shard() : nullptr),
      routes(s.routes),
      gate(*this), mailbox(std::make_shared<Mailbox>(ioc)),
      pool(s.options.max_idle_per_backend, s.options.upstream_idle_timeout), sweep_timer_(ioc) {}

Worker::~Worker() {
  join();
  mailbox->close();
  // Coroutine frames still pending (only after a forced stop) are destroyed with the
  // io_context, after the I/O objects declared after it and before the state they touch.
  pool.clear();
  acceptor.reset();
  https_acceptor.reset();
}

Status Worker::listen(const tcp::endpoint& endpoint, bool https) {
  error_code ec;
  std::optional<tcp::acceptor>& a = https ? https_acceptor : acceptor;
  a.emplace(ioc);
  a->open(endpoint.protocol(), ec);
  if (!ec) a->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) {
    int one = 1;
    if (::setsockopt(a->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
      ec = error_code(errno, boost::system::system_category());
    }
  }
  if (!ec && endpoint.address().is_v6()) a->set_option(asio::ip::v6_only(false), ec);
  if (!ec) a->bind(endpoint, ec);
  if (!ec) a->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    a.reset();
    return Error{Errc::unavailable, "cannot listen on " + endpoint.address().to_string() + ":" +
                                        std::to_string(endpoint.port()) + ": " + ec.message()};
  }
  return ok();
}

std::uint16_t Worker::local_port(bool https) const {
  error_code ec;
  const auto& a = https ? https_acceptor : acceptor;
  if (!a) return 0;
  auto ep = a->local_endpoint(ec);
  return ec ? 0 : ep.port();
}

void Worker::start() {
  work_.emplace(ioc.get_executor());
  asio::co_spawn(ioc, accept_loop(*acceptor, false), asio::detached);
  if (https_acceptor) asio::co_spawn(ioc, accept_loop(*https_acceptor, true), asio::detached);
  asio::co_spawn(ioc, sweep_loop(), asio::detached);
  thread_ = std::thread([this] {
    for (;;) {
      try {
        ioc.run();
        return;
      } catch (const std::exception&) {
        // A handler threw: keep serving the other connections.
      }
    }
  });
}

asio::awaitable<void> Worker::accept_loop(tcp::acceptor& listener, bool https) {
  asio::steady_timer backoff(ioc);
  while (listener.is_open()) {
    auto [ec, socket] = co_await listener.async_accept(nothrow);
    if (draining || closing || ec == asio::error::operation_aborted) co_return;
    if (ec) {
      // EMFILE and friends: keep serving the connections we have, try again shortly.
      backoff.expires_after(kAcceptBackoff);
      co_await backoff.async_wait(nothrow);
      continue;
    }
    state.accepted.fetch_add(1, std::memory_order_relaxed);
    bump(counters.connections_total[https ? 1 : 0]);
    // The connection keeps the options in force now for its whole life (SPEC §9.4).
    const EdgeOptions& now = tuning();
    if (state.open_connections.load(std::memory_order_relaxed) >= now.max_connections) {
      error_code ignored;
      socket.close(ignored);  // §3.10: closed at once, nothing written
      counters.reject(RejectReason::max_connections);
      continue;
    }
    state.open_connections.fetch_add(1, std::memory_order_relaxed);
    asio::co_spawn(ioc, serve_connection(*this, now, std::move(socket), https), asio::detached);
  }
}

asio::awaitable<void> Worker::sweep_loop() {
  while (!closing) {
    const EdgeOptions& now = tuning();  // edge.upstream.* from the next sweep on
    pool.set_limits(now.max_idle_per_backend, now.upstream_idle_timeout);
    const auto period = std::max<std::chrono::milliseconds>(std::chrono::milliseconds(100),
                                                            now.upstream_idle_timeout / 4);
    sweep_timer_.expires_after(period);
    co_await sweep_timer_.async_wait(nothrow);
    if (closing) co_return;
    pool.sweep(steady::now());
    const RouteTable& table = routes.current();
    if (pool_table != &table) {
      pool.drop_stale(table);
      pool_table = &table;
    }
  }
}

void Worker::begin_drain() {
  asio::post(ioc, [this] {
    draining = true;
    error_code ignored;
    if (acceptor) acceptor->close(ignored);
    if (https_acceptor) https_acceptor->close(ignored);
    for (ConnectionHandle* c : connections) {
      // A request whose first bytes wait unread in the socket was sent before the drain: it
      // is served like one already being read (Connection::nothing_unread).
      if (*c->idle && c->client->available(ignored) == 0) {
        c->abort();
      } else {
        c->shutdown_tunnel();
      }
    }
  });
}

void Worker::force_close() {
  asio::post(ioc, [this] {
    draining = true;
    closing = true;
    error_code ignored;
    if (acceptor) acceptor->close(ignored);
    if (https_acceptor) https_acceptor->close(ignored);
    gate.shutdown_all();
    // Held requests write their 503 first; everything else closes now.
    std::vector<ConnectionHandle*> open(connections.begin(), connections.end());
    for (ConnectionHandle* c : open) {
      if (!*c->held) c->abort();
    }
    pool.clear();
    sweep_timer_.cancel();
  });
}

void Worker::barrier(std::shared_ptr<void> token) {
  mailbox->post([token = std::move(token)] {});
}

void Worker::end_tunnels(const Ulid& id, std::shared_ptr<void> token) {
  mailbox->post([this, id, token = std::move(token)] {
    for (ConnectionHandle* c : connections) c->end_tunnel(id, token);
  });
}

void Worker::join() {
  if (!thread_.joinable()) return;
  work_.reset();
  ioc.stop();
  thread_.join();
}

}  // namespace sandboxd::edge::detail
