#include "api_client.h"

#include <unistd.h>

#include "base/json.h"

namespace sandboxd::cli {

namespace {

constexpr std::size_t kMaxJsonAnswer = 64 * 1024 * 1024;
constexpr std::size_t kMaxErrorBody = 1024 * 1024;

void say(const std::string& line) {
  std::string l = line + "\n";
  [[maybe_unused]] ssize_t n = ::write(2, l.data(), l.size());
}

std::string route_of(const ApiRequest& r) {
  std::string path = r.path.substr(0, r.path.find('?'));
  return r.method + " " + path;
}

}  // namespace

ApiClient::ApiClient(const GlobalOptions& options) : options_(options) {}

Clock::time_point ApiClient::deadline() const {
  return deadline_ ? *deadline_ : Clock::now() + options_.timeout;
}

HttpRequest ApiClient::to_http(const ApiRequest& r) const {
  HttpRequest h;
  h.method = r.method;
  h.target = options_.server.prefix + r.path;
  h.headers.emplace_back("Accept", r.accept);
  if (options_.token) h.headers.emplace_back("Authorization", "Bearer " + *options_.token);
  for (const auto& kv : r.headers) h.headers.push_back(kv);
  if (r.json) {
    h.headers.emplace_back("Content-Type", "application/json");
    h.body = *r.json;
  }
  h.body_fd = r.body_fd;
  h.body_length = r.body_length;
  return h;
}

CliResult<HttpResponse> ApiClient::exchange(const ApiRequest& r, Deadline connect, Deadline head) {
  auto started = Clock::now();
  if (options_.verbose) say("> " + r.method + " " + options_.server_text + r.path);
  TlsOptions tls{options_.cacert};
  auto res = http_exchange(options_.server, options_.server_text, tls, to_http(r), connect, head,
                           describe_duration(options_.timeout));
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
  if (options_.verbose) {
    if (res) {
      say("< " + std::to_string(res->status()) + " " + res->head().reason + " (" +
          std::to_string(ms) + " ms)");
    } else {
      say("< no answer (" + std::to_string(ms) + " ms)");
    }
  }
  return res;
}

CliError ApiClient::error_from(HttpResponse& res, const ApiRequest& r, Deadline deadline) {
  auto body = res.read_all(kMaxErrorBody, deadline);
  return api_error(res.status(), body ? *body : std::string(), options_.token.has_value(),
                   route_of(r));
}

CliResult<ApiReply> ApiClient::call(const ApiRequest& r) {
  Deadline d = deadline();
  auto res = exchange(r, d, d);
  if (!res) return res.error();
  if (res->status() >= 400) return error_from(*res, r, d);
  auto body = res->read_all(kMaxJsonAnswer, d);
  if (!body) return body.error();
  ApiReply reply;
  reply.status = res->status();
  reply.body = std::move(*body);
  if (auto v = parse_json(reply.body, JsonLimits{64})) reply.json = std::move(*v);
  return reply;
}

CliResult<HttpResponse> ApiClient::open(const ApiRequest& r) {
  Deadline d = deadline();
  auto res = exchange(r, d, r.unbounded_upload ? Deadline() : d);
  if (!res) return res.error();
  if (res->status() >= 400) return error_from(*res, r, d);
  return res;
}

}  // namespace sandboxd::cli
