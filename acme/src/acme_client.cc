#include "acme_client.h"

#include "acme/renewal.h"
#include "base/json.h"
#include "base/log.h"
#include "crypto.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace sandboxd::acme {
namespace {

constexpr log::Logger kLog{"acme"};
constexpr std::string_view kAcmeErrorPrefix = "urn:ietf:params:acme:error:";

std::string string_member(const boost::json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || !v->is_string()) return {};
  return std::string(v->get_string());
}

bool contains_json(const std::string& content_type) {
  return content_type.find("json") != std::string::npos;
}

}  // namespace

std::string Problem::short_type() const {
  if (type.starts_with(kAcmeErrorPrefix)) return type.substr(kAcmeErrorPrefix.size());
  return type;
}

std::string Problem::describe() const {
  std::string out = short_type().empty() ? "error" : short_type();
  if (!detail.empty()) out += ": " + detail;
  out += " (HTTP " + std::to_string(status) + ")";
  return out;
}

AcmeClient::AcmeClient(HttpClient& http, EVP_PKEY* account_key, const Clock& clock,
                       int max_bad_nonce)
    : http_(http), key_(account_key), clock_(clock), max_bad_nonce_(max_bad_nonce) {
  auto jwk = ec_jwk_json(key_);
  auto tp = jwk_thumbprint(key_);
  if (!jwk || !tp) {
    key_error_ = "the account key is not an EC P-256 key";
    return;
  }
  jwk_ = *jwk;
  thumbprint_ = *tp;
}

Result<Directory> AcmeClient::fetch_directory(const std::string& url) {
  auto r = http_.send({.method = "GET", .url = url, .headers = {}, .body = {}});
  if (!r) return r.error();
  remember_nonce(*r);
  if (r->status != 200) {
    return Error{Errc::unavailable, "directory answered HTTP " + std::to_string(r->status)};
  }
  auto json = parse_json_object(r->body);
  if (!json) return Error{Errc::unavailable, "directory is not a JSON object"};
  Directory d;
  d.new_nonce = string_member(*json, "newNonce");
  d.new_account = string_member(*json, "newAccount");
  d.new_order = string_member(*json, "newOrder");
  d.renewal_info = string_member(*json, "renewalInfo");
  if (d.new_nonce.empty() || d.new_account.empty() || d.new_order.empty()) {
    return Error{Errc::unavailable, "directory lacks newNonce, newAccount or newOrder"};
  }
  if (const auto* meta = json->if_contains("meta"); meta != nullptr && meta->is_object()) {
    const auto& m = meta->get_object();
    if (const auto* e = m.if_contains("externalAccountRequired"); e != nullptr && e->is_bool()) {
      d.external_account_required = e->get_bool();
    }
    if (const auto* p = m.if_contains("profiles"); p != nullptr && p->is_object()) {
      for (const auto& kv : p->get_object()) d.profiles.emplace_back(kv.key());
    }
  }
  new_nonce_url_ = d.new_nonce;
  return d;
}

void AcmeClient::remember_nonce(const HttpResponse& r) {
  std::string n = r.header("Replay-Nonce");
  if (!n.empty()) nonce_ = std::move(n);
}

Result<std::string> AcmeClient::fresh_nonce() {
  if (!nonce_.empty()) return std::exchange(nonce_, std::string());
  if (new_nonce_url_.empty()) return Error{Errc::internal, "no directory fetched"};
  auto r = http_.send({.method = "HEAD", .url = new_nonce_url_, .headers = {}, .body = {}});
  if (!r) return r.error();
  remember_nonce(*r);
  if (nonce_.empty()) {
    return Error{Errc::unavailable, "newNonce answered HTTP " + std::to_string(r->status) +
                                        " without a Replay-Nonce"};
  }
  return std::exchange(nonce_, std::string());
}

Result<AcmeResponse> AcmeClient::post(const std::string& url, const std::string& payload,
                                      bool use_jwk, const std::string& accept) {
  if (!key_error_.empty()) return Error{Errc::invalid_argument, key_error_};
  if (!use_jwk && kid_.empty()) return Error{Errc::internal, "no account URL for a kid"};
  for (int attempt = 0;; ++attempt) {
    auto nonce = fresh_nonce();
    if (!nonce) return nonce.error();
    boost::json::object header;
    header["alg"] = "ES256";
    header["nonce"] = *nonce;
    header["url"] = url;
    if (use_jwk) {
      header["jwk"] = boost::json::parse(jwk_);
    } else {
      header["kid"] = kid_;
    }
    auto body = jws_es256(key_, boost::json::serialize(header), payload);
    if (!body) return body.error();
    HttpRequest req{.method = "POST", .url = url, .headers = {}, .body = std::move(*body)};
    req.headers.push_back({"Content-Type", "application/jose+json"});
    if (!accept.empty()) req.headers.push_back({"Accept", accept});
    auto r = http_.send(req);
    if (!r) return r.error();
    remember_nonce(*r);

    AcmeResponse out;
    out.status = r->status;
    out.location = r->header("Location");
    if (const std::string ra = r->header("Retry-After"); !ra.empty()) {
      out.retry_after = parse_retry_after(ra, clock_.wall());
    }
    if (contains_json(r->header("Content-Type"))) {
      if (auto json = parse_json(r->body)) out.json = std::move(*json);
    }
    if (r->status < 200 || r->status > 299) {
      Problem p;
      p.status = r->status;
      if (out.json.is_object()) {
        p.type = string_member(out.json.get_object(), "type");
        p.detail = string_member(out.json.get_object(), "detail");
      }
      if (p.short_type() == "badNonce" && attempt < max_bad_nonce_) {
        kLog.debug("badNonce, retrying", {{"attempt", attempt + 1}});
        continue;
      }
      out.problem = std::move(p);
    }
    out.body = std::move(r->body);
    return out;
  }
}

}  // namespace sandboxd::acme
