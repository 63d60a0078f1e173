#include "wake_gate.h"

#include "worker.h"

#include <cstring>
#include <vector>

namespace sandboxd::edge::detail {

namespace {

constexpr std::chrono::milliseconds kProbeAttempt{250};  // §3.6 rule 4

tcp::endpoint endpoint_of(const IpAddress& ip, std::uint16_t port) {
  const auto& b = ip.bytes();
  if (ip.family() == IpAddress::Family::v4) {
    asio::ip::address_v4::bytes_type v4{b[0], b[1], b[2], b[3]};
    return {asio::ip::address_v4(v4), port};
  }
  asio::ip::address_v6::bytes_type v6;
  std::memcpy(v6.data(), b.data(), 16);
  return {asio::ip::address_v6(v6), port};
}

}  // namespace

void WakeGate::add(HeldRequest& r) {
  Pending& p = pending_[r.id];
  r.pos = p.held.insert(p.held.end(), &r);
  r.linked = true;
  if (r.wake && !p.cycle) {
    p.cycle = true;
    p.started = false;
    p.cycle_began = r.arrival;
    p.port_opened = false;
    std::shared_ptr<Mailbox> mailbox = w_.mailbox;
    WakeGate* gate = this;
    const Ulid id = r.id;
    w_.state.wake->join(id, [mailbox, gate, id](const WakeOutcome& outcome) {
      mailbox->post([gate, id, outcome] { gate->on_outcome(id, outcome); });
    });
  }
  if (eligible(p, r)) ensure_prober(r.id, p);
}

void WakeGate::unlink(Pending& p, HeldRequest& r) {
  if (!r.linked) return;
  p.held.erase(r.pos);
  r.linked = false;
}

void WakeGate::remove(HeldRequest& r) {
  if (!r.linked) return;
  auto it = pending_.find(r.id);
  if (it == pending_.end()) return;
  unlink(it->second, r);
  erase_if_idle(r.id);
}

void WakeGate::erase_if_idle(const Ulid& id) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  const Pending& p = it->second;
  if (p.held.empty() && !p.cycle && !p.probing) pending_.erase(it);
}

void WakeGate::answer(HeldRequest& r, std::string_view code, int retry_after,
                      std::string message) {
  r.verdict = HeldRequest::Verdict::answer;
  r.code = code;
  r.retry_after = retry_after;
  r.message = std::move(message);
  r.timer.cancel();
}

void WakeGate::release(HeldRequest& r, const IpAddress& address,
                       std::optional<tcp::socket> probed) {
  r.verdict = HeldRequest::Verdict::dispatch;
  r.address = address;
  if (probed) r.probed.emplace(std::move(*probed));
  r.timer.cancel();
}

void WakeGate::on_outcome(const Ulid& id, const WakeOutcome& outcome) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  Pending& p = it->second;
  p.cycle = false;
  if (outcome.kind == WakeOutcome::Kind::ok) {
    p.started = true;
    p.started_at = steady::now();
    ensure_prober(id, p);
    erase_if_idle(id);
    return;
  }
  std::string_view code;
  int retry_after = -1;
  std::string message;
  switch (outcome.kind) {
    case WakeOutcome::Kind::timeout:
      code = "wake_timeout";
      break;
    case WakeOutcome::Kind::refused:
      code = "wake_refused";
      if (outcome.retry_after_s > 0) retry_after = outcome.retry_after_s;
      break;
    case WakeOutcome::Kind::failed:
      code = "wake_failed";
      message = outcome.message.substr(0, 200);
      break;
    case WakeOutcome::Kind::gone:
    case WakeOutcome::Kind::ok:
      code = "no_such_sandbox";
      break;
  }
  for (auto r = p.held.begin(); r != p.held.end();) {
    HeldRequest& held = **r;
    if (!held.wake) {
      ++r;
      continue;
    }
    r = p.held.erase(r);
    held.linked = false;
    answer(held, code, retry_after, message);
  }
  if (!p.held.empty()) ensure_prober(id, p);
  erase_if_idle(id);
}

void WakeGate::ensure_prober(const Ulid& id, Pending& p) {
  if (p.probing || stopped_) return;
  p.probing = true;
  asio::co_spawn(w_.ioc, probe(id), asio::detached);
}

void WakeGate::shutdown_all() {
  stopped_ = true;
  for (auto& [id, p] : pending_) {
    for (HeldRequest* r : p.held) {
      r->linked = false;
      answer(*r, "shutting_down", -1, {});
    }
    p.held.clear();
  }
}

asio::awaitable<void> WakeGate::probe(Ulid id) {
  asio::steady_timer pause(w_.ioc);
  for (;;) {
    auto it = pending_.find(id);
    if (it == pending_.end()) co_return;
    bool any = false;
    for (HeldRequest* r : it->second.held) any = any || eligible(it->second, *r);
    if (!any || stopped_) {
      it->second.probing = false;
      erase_if_idle(id);
      co_return;
    }

    RouteState state = RouteState::stopped;
    IpAddress address;
    std::string reason;
    bool exists = false;
    {
      const Route* route = w_.routes.current().find(id);
      if (route != nullptr) {
        exists = true;
        state = route->state;
        address = route->address;
        reason = route->error_reason.substr(0, 200);
      }
    }
    if (!exists || state == RouteState::error) {
      // Destroyed, or turned to error, while held (§3.6 table).
      Pending& p = it->second;
      for (HeldRequest* r : p.held) {
        r->linked = false;
        if (exists) {
          answer(*r, "sandbox_error", -1, reason);
        } else {
          answer(*r, "no_such_sandbox", -1, {});
        }
      }
      p.held.clear();
      p.probing = false;
      erase_if_idle(id);
      co_return;
    }

    if (state == RouteState::running && !address.empty()) {
      std::vector<std::uint16_t> ports;
      for (HeldRequest* r : it->second.held) {
        if (!eligible(it->second, *r)) continue;
        if (std::find(ports.begin(), ports.end(), r->port) == ports.end()) ports.push_back(r->port);
      }
      for (std::uint16_t port : ports) {
        tcp::socket socket(w_.ioc);
        const tcp::endpoint to = endpoint_of(address, port);
        const ConnectResult result = co_await connect_within(socket, to, kProbeAttempt);
        w_.state.upstream_connects.fetch_add(1, std::memory_order_relaxed);
        if (result != ConnectResult::ok) continue;
        auto again = pending_.find(id);
        if (again == pending_.end()) break;
        Pending& p = again->second;
        if (p.started && !p.port_opened) {
          p.port_opened = true;
          const auto now = steady::now();
          w_.counters.wake_duration.observe(now - p.cycle_began);
          w_.counters.wake_phases[idx(EdgeWakePhase::port_open)].observe(now - p.started_at);
        }
        std::optional<tcp::socket> first(std::move(socket));
        for (auto r = p.held.begin(); r != p.held.end();) {
          HeldRequest& held = **r;
          if (held.port != port || !eligible(p, held)) {
            ++r;
            continue;
          }
          r = p.held.erase(r);
          held.linked = false;
          release(held, address, std::move(first));
          first.reset();
        }
      }
    }
    pause.expires_after(w_.tuning().probe_interval);
    co_await pause.async_wait(nothrow);
  }
}

}  // namespace sandboxd::edge::detail
