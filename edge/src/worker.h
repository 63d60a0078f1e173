// One edge worker (SPEC §3.2): a thread with its own event loop, its own SO_REUSEPORT
// listener, upstream pool, wake gate, route reader and activity shard. A connection lives
// its whole life on the worker that accepted it, so nothing here takes a lock.
//
// Member order matters for teardown: the io_context is destroyed after the I/O objects
// that use it (declared after it) and before the state that coroutine frames still touch
// when they are destroyed (declared before it).
#pragma once

#include "activity_internal.h"
#include "base/ulid.h"
#include "io.h"
#include "server_state.h"
#include "tls_context.h"
#include "upstream_pool.h"
#include "wake_gate.h"

#include <boost/asio/executor_work_guard.hpp>

#include <list>
#include <memory>
#include <optional>
#include <thread>

namespace sandboxd::edge::detail {

// The part of a client connection that the worker can reach from outside its coroutine.
struct ConnectionHandle {
  tcp::socket* client = nullptr;
  bool* idle = nullptr;  // waiting for the next request, no byte of it received
  bool* held = nullptr;  // a request of this connection is held by the wake gate
  std::function<void()> abort;  // cancels every socket of the connection
  // Ends the connection's tunnel if it belongs to the sandbox; holds the token meanwhile.
  std::function<void(const Ulid&, std::shared_ptr<void>)> end_tunnel;
  // Ends the connection's tunnel, if any, because the server shuts down.
  std::function<void()> shutdown_tunnel;
};

class Worker {
 public:
  Worker(ServerState& state, std::size_t index);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Binds the plain (`https` false) or the TLS listener of this worker.
  Status listen(const tcp::endpoint& endpoint, bool https);
  std::uint16_t local_port(bool https) const;
  void start();

  // From any thread. Drain: stop accepting, close idle connections, mark the rest.
  void begin_drain();
  // From any thread. Answer held requests (shutting_down) and close every connection.
  void force_close();
  // From any thread. The worker keeps `token` until it has run everything queued before.
  void barrier(std::shared_ptr<void> token);
  // From any thread. Ends the sandbox's tunnels (SPEC §3.9); each holds `token` until done.
  void end_tunnels(const Ulid& id, std::shared_ptr<void> token);
  // From any thread: stop the loop and join the thread.
  void join();

  // The certificate set new handshakes use (null before the first), and the preview-auth
  // settings; cached per worker, refreshed when the server publishes new ones.
  const std::shared_ptr<const TlsContexts>& tls_contexts() { return tls_.get(state.tls); }
  const std::shared_ptr<const PreviewAuthSettings>& preview_auth() {
    return preview_auth_.get(state.preview_auth);
  }

  // The options in force for a connection accepted now (SIGHUP replaces them); `options`
  // are those the server started with, for what only a restart changes.
  const EdgeOptions& tuning() const { return state.tuning.current(); }

  ServerState& state;
  const EdgeOptions& options;
  ActivityShard& activity;
  WorkerCounters& counters;
  AccessLogWriter::Shard* access_log;  // null: no access log
  RouteTableReader routes;
  UlidGenerator ids;
  std::list<ConnectionHandle*> connections;
  WakeGate gate;
  bool draining = false;
  bool closing = false;
  const RouteTable* pool_table = nullptr;  // the snapshot the pool was last checked against

  asio::io_context ioc{1};

  std::shared_ptr<Mailbox> mailbox;
  std::optional<tcp::acceptor> acceptor;
  std::optional<tcp::acceptor> https_acceptor;
  UpstreamPool pool;

 private:
  asio::awaitable<void> accept_loop(tcp::acceptor& listener, bool https);
  asio::awaitable<void> sweep_loop();

  asio::steady_timer sweep_timer_;
  SwapCache<TlsContexts> tls_;
  SwapCache<PreviewAuthSettings> preview_auth_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::thread thread_;
};

// A client connection's whole life (connection.cc), with the options `tuning` (a snapshot
// that outlives the server's connections).
asio::awaitable<void> serve_connection(Worker& worker, const EdgeOptions& tuning,
                                       tcp::socket socket, bool https);

}  // namespace sandboxd::edge::detail
