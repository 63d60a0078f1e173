// cloudflare: TXT records through the Cloudflare v4 API with a scoped API token
// (SPEC §10.4). The zone is `zone_id`, or is found with GET /zones?name=… walking up the
// labels; record ids are remembered between present and cleanup, and looked up by name and
// content when lost.
#include "acme/dns_provider.h"

#include "base/json.h"
#include "base/log.h"
#include "http_client.h"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <map>
#include <utility>

namespace sandboxd::acme {
namespace {

constexpr log::Logger kLog{"acme"};

std::string percent_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if ((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || u == '-' ||
        u == '.' || u == '_' || u == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

std::string without_dot(std::string s) {
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

class CloudflareProvider final : public DnsProvider {
 public:
  explicit CloudflareProvider(CloudflareOptions o)
      : opts_(std::move(o)),
        http_(HttpClientOptions{.ca_file = opts_.ca_bundle,
                                .system_cas = true,
                                .user_agent = opts_.user_agent,
                                .timeout = opts_.timeout,
                                .max_body = 1024 * 1024}) {
    while (!opts_.base_url.empty() && opts_.base_url.back() == '/') opts_.base_url.pop_back();
  }

  std::string_view name() const override { return "cloudflare"; }

  Status present(const std::string& fqdn, const std::string& value) override {
    auto zone = zone_of(fqdn);
    if (!zone) return zone.error();
    boost::json::object body;
    body["type"] = "TXT";
    body["name"] = without_dot(fqdn);
    body["content"] = value;
    body["ttl"] = opts_.ttl;
    auto r = call("POST", "/zones/" + *zone + "/dns_records", boost::json::serialize(body));
    if (!r) return r.error();
    const auto* result = r->if_contains("result");
    if (result == nullptr || !result->is_object() || !result->get_object().contains("id") ||
        !result->get_object().at("id").is_string()) {
      return Error{Errc::unavailable, "cloudflare: the new record has no id"};
    }
    ids_[{fqdn, value}] = std::string(result->get_object().at("id").get_string());
    return ok();
  }

  Status cleanup(const std::string& fqdn, const std::string& value) override {
    auto zone = zone_of(fqdn);
    if (!zone) return zone.error();
    std::vector<std::string> ids;
    if (auto it = ids_.find({fqdn, value}); it != ids_.end()) {
      ids.push_back(it->second);
    } else {
      auto r = call("GET", "/zones/" + *zone + "/dns_records?type=TXT&name=" +
                               percent_encode(without_dot(fqdn)) + "&content=" + percent_encode(value),
                    "");
      if (!r) return r.error();
      if (const auto* list = r->if_contains("result"); list != nullptr && list->is_array()) {
        for (const auto& rec : list->get_array()) {
          if (!rec.is_object()) continue;
          const auto* id = rec.get_object().if_contains("id");
          const auto* content = rec.get_object().if_contains("content");
          if (id != nullptr && id->is_string() && content != nullptr && content->is_string() &&
              content->get_string() == value) {
            ids.emplace_back(id->get_string());
          }
        }
      }
    }
    for (const auto& id : ids) {
      auto r = call("DELETE", "/zones/" + *zone + "/dns_records/" + percent_encode(id), "");
      if (!r) return r.error();
    }
    ids_.erase({fqdn, value});
    return ok();
  }

 private:
  // One API call; the answer's JSON object when it is 2xx with "success": true.
  Result<boost::json::object> call(const std::string& method, const std::string& path,
                                   const std::string& body) {
    HttpRequest req{.method = method, .url = opts_.base_url + path, .headers = {}, .body = body};
    req.headers.push_back({"Authorization", "Bearer " + opts_.api_token});
    if (!body.empty()) req.headers.push_back({"Content-Type", "application/json"});
    auto r = http_.send(req);
    if (!r) {
      return Error{r.error().code == Errc::cancelled ? Errc::cancelled : Errc::unavailable,
                   "cloudflare: " + r.error().detail};
    }
    auto json = parse_json_object(r->body);
    std::string messages;
    bool auth_error = r->status == 401 || r->status == 403;
    if (json) {
      if (const auto* errors = json->if_contains("errors"); errors != nullptr && errors->is_array()) {
        for (const auto& e : errors->get_array()) {
          if (!e.is_object()) continue;
          const auto* code = e.get_object().if_contains("code");
          // 9109: invalid access token; 10000: authentication error; 9103: unknown auth.
          if (code != nullptr && code->is_int64() &&
              (code->get_int64() == 9109 || code->get_int64() == 10000 || code->get_int64() == 9103)) {
            auth_error = true;
          }
          const auto* msg = e.get_object().if_contains("message");
          if (msg != nullptr && msg->is_string()) {
            if (!messages.empty()) messages += "; ";
            messages += std::string(msg->get_string());
          }
        }
      }
    }
    const bool success = json && json->contains("success") && json->at("success").is_bool() &&
                         json->at("success").get_bool();
    if (auth_error) {
      return Error{Errc::invalid_argument, "cloudflare refused the API token (HTTP " +
                                               std::to_string(r->status) +
                                               (messages.empty() ? "" : ": " + messages) +
                                               "); check acme.dns.cloudflare.api_token"};
    }
    if (r->status < 200 || r->status > 299 || !success) {
      return Error{Errc::unavailable, "cloudflare: " + method + " " + path.substr(0, path.find('?')) +
                                          " failed (HTTP " + std::to_string(r->status) +
                                          (messages.empty() ? "" : ": " + messages) + ")"};
    }
    return std::move(*json);
  }

  Result<std::string> zone_of(const std::string& fqdn) {
    if (!opts_.zone_id.empty()) return opts_.zone_id;
    std::string name = without_dot(fqdn);
    if (auto it = zones_.find(name); it != zones_.end()) return it->second;
    for (std::string candidate = name; candidate.find('.') != std::string::npos;
         candidate = candidate.substr(candidate.find('.') + 1)) {
      auto r = call("GET", "/zones?name=" + percent_encode(candidate) + "&status=active", "");
      if (!r) return r.error();
      const auto* list = r->if_contains("result");
      if (list != nullptr && list->is_array() && !list->get_array().empty()) {
        const auto& first = list->get_array().front();
        if (first.is_object() && first.get_object().contains("id") &&
            first.get_object().at("id").is_string()) {
          std::string id(first.get_object().at("id").get_string());
          kLog.debug("cloudflare zone found", {{"zone", candidate}});
          zones_[name] = id;
          return id;
        }
      }
    }
    return Error{Errc::invalid_argument,
                 "cloudflare: no active zone holds " + name + "; check acme.dns.cloudflare.zone_id"};
  }

  CloudflareOptions opts_;
  HttpClient http_;
  std::map<std::pair<std::string, std::string>, std::string> ids_;
  std::map<std::string, std::string> zones_;
};

}  // namespace

Result<std::unique_ptr<DnsProvider>> make_cloudflare_provider(CloudflareOptions options) {
  if (options.api_token.empty()) {
    return Error{Errc::invalid_argument, "acme.dns.cloudflare.api_token is required"};
  }
  if (!options.base_url.starts_with("http://") && !options.base_url.starts_with("https://")) {
    return Error{Errc::invalid_argument, "acme.dns.cloudflare.base_url must be an http(s) URL"};
  }
  return std::unique_ptr<DnsProvider>(std::make_unique<CloudflareProvider>(std::move(options)));
}

}  // namespace sandboxd::acme
