// httpreq: lego's HTTP request provider. POST {"fqdn","value"} to <url>/present and
// <url>/cleanup, basic auth when a username is set; any 2xx is success.
#include "acme/dns_provider.h"

#include "base/log.h"
#include "base64.h"
#include "http_client.h"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

namespace sandboxd::acme {
namespace {

constexpr log::Logger kLog{"acme"};

class HttpreqProvider final : public DnsProvider {
 public:
  explicit HttpreqProvider(HttpreqOptions o)
      : opts_(std::move(o)),
        http_(HttpClientOptions{.ca_file = opts_.ca_bundle,
                                .system_cas = true,
                                .user_agent = opts_.user_agent,
                                .timeout = opts_.timeout,
                                .max_body = 64 * 1024}) {
    while (!opts_.url.empty() && opts_.url.back() == '/') opts_.url.pop_back();
  }

  std::string_view name() const override { return "httpreq"; }
  Status present(const std::string& fqdn, const std::string& value) override {
    return call("present", fqdn, value);
  }
  Status cleanup(const std::string& fqdn, const std::string& value) override {
    return call("cleanup", fqdn, value);
  }

 private:
  Status call(const char* action, const std::string& fqdn, const std::string& value) {
    boost::json::object body;
    body["fqdn"] = fqdn;
    body["value"] = value;
    HttpRequest req{.method = "POST",
                    .url = opts_.url + "/" + action,
                    .headers = {{"Content-Type", "application/json"}},
                    .body = boost::json::serialize(body)};
    if (!opts_.username.empty()) {
      req.headers.push_back(
          {"Authorization", "Basic " + base64_encode(opts_.username + ":" + opts_.password)});
    }
    auto r = http_.send(req);
    if (!r) {
      return Error{r.error().code == Errc::cancelled ? Errc::cancelled : Errc::unavailable,
                   "httpreq: " + std::string(action) + ": " + r.error().detail};
    }
    if (r->status == 401 || r->status == 403) {
      return Error{Errc::invalid_argument,
                   "httpreq: " + req.url + " answered HTTP " + std::to_string(r->status) +
                       "; check acme.dns.httpreq.username and password"};
    }
    if (r->status < 200 || r->status > 299) {
      return Error{Errc::unavailable, "httpreq: " + req.url + " answered HTTP " +
                                          std::to_string(r->status) + ": " +
                                          r->body.substr(0, 200)};
    }
    kLog.debug("httpreq call done", {{"action", action}, {"fqdn", fqdn}});
    return ok();
  }

  HttpreqOptions opts_;
  HttpClient http_;
};

}  // namespace

Result<std::unique_ptr<DnsProvider>> make_httpreq_provider(HttpreqOptions options) {
  if (!options.url.starts_with("http://") && !options.url.starts_with("https://")) {
    return Error{Errc::invalid_argument, "acme.dns.httpreq.url must be an http(s) URL"};
  }
  return std::unique_ptr<DnsProvider>(std::make_unique<HttpreqProvider>(std::move(options)));
}

}  // namespace sandboxd::acme
