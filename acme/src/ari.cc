#include "ari.h"

#include "base/json.h"
#include "base64.h"
#include "http_client.h"
#include "acme/renewal.h"

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <charconv>
#include <ctime>
#include <memory>

namespace sandboxd::acme {

namespace {

constexpr std::chrono::seconds kMinPoll = std::chrono::hours(1);
constexpr std::chrono::seconds kMaxPoll = std::chrono::hours(24);
constexpr std::chrono::seconds kDefaultPoll = std::chrono::hours(6);

bool digits(std::string_view s, std::size_t at, std::size_t n, int* out) {
  if (at + n > s.size()) return false;
  int v = 0;
  for (std::size_t i = at; i < at + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

std::string member_string(const boost::json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

}  // namespace

std::optional<Clock::WallTime> parse_rfc3339_time(std::string_view t) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  if (!digits(t, 0, 4, &y) || t.size() < 20 || t[4] != '-' || !digits(t, 5, 2, &mo) ||
      t[7] != '-' || !digits(t, 8, 2, &d) || (t[10] != 'T' && t[10] != 't') ||
      !digits(t, 11, 2, &h) || t[13] != ':' || !digits(t, 14, 2, &mi) || t[16] != ':' ||
      !digits(t, 17, 2, &s)) {
    return std::nullopt;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return std::nullopt;
  std::size_t i = 19;
  std::int64_t nanos = 0;
  if (i < t.size() && t[i] == '.') {
    ++i;
    std::int64_t scale = 100'000'000;
    const std::size_t first = i;
    while (i < t.size() && t[i] >= '0' && t[i] <= '9') {
      nanos += (t[i] - '0') * scale;
      scale /= 10;
      ++i;
    }
    if (i == first) return std::nullopt;
  }
  int offset_s = 0;
  if (i < t.size() && (t[i] == 'Z' || t[i] == 'z')) {
    ++i;
  } else if (i < t.size() && (t[i] == '+' || t[i] == '-')) {
    int oh = 0, om = 0;
    if (!digits(t, i + 1, 2, &oh) || i + 3 >= t.size() || t[i + 3] != ':' ||
        !digits(t, i + 4, 2, &om) || oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset_s = (oh * 3600 + om * 60) * (t[i] == '+' ? 1 : -1);
    i += 6;
  } else {
    return std::nullopt;
  }
  if (i != t.size()) return std::nullopt;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = std::min(s, 59);
  const std::time_t base = timegm(&tm);
  return std::chrono::system_clock::from_time_t(base - offset_s) +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::nanoseconds(nanos));
}

Result<std::string> ari_cert_id(const std::string& chain_pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(chain_pem.data(), static_cast<int>(chain_pem.size())), &BIO_free);
  if (!bio) return Error{Errc::internal, "out of memory"};
  std::unique_ptr<X509, decltype(&X509_free)> leaf(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr),
                                                   &X509_free);
  if (!leaf) return Error{Errc::invalid_argument, "the chain has no certificate"};
  std::unique_ptr<AUTHORITY_KEYID, decltype(&AUTHORITY_KEYID_free)> aki(
      static_cast<AUTHORITY_KEYID*>(X509_get_ext_d2i(leaf.get(), NID_authority_key_identifier, nullptr, nullptr)),
      &AUTHORITY_KEYID_free);
  if (!aki || aki->keyid == nullptr) {
    return Error{Errc::invalid_argument, "the certificate has no authority key identifier"};
  }
  const std::string key_id(reinterpret_cast<const char*>(ASN1_STRING_get0_data(aki->keyid)),
                           static_cast<std::size_t>(ASN1_STRING_length(aki->keyid)));
  // The serial's DER INTEGER content octets (two's complement, leading 0x00 kept).
  unsigned char* der = nullptr;
  const int n = i2d_ASN1_INTEGER(X509_get0_serialNumber(leaf.get()), &der);
  if (n <= 2) {
    OPENSSL_free(der);
    return Error{Errc::invalid_argument, "the certificate's serial does not encode"};
  }
  std::size_t header = 2;
  if ((der[1] & 0x80) != 0) header += static_cast<std::size_t>(der[1] & 0x7f);
  const std::string serial(reinterpret_cast<const char*>(der) + header, static_cast<std::size_t>(n) - header);
  OPENSSL_free(der);
  return base64url_encode(key_id) + "." + base64url_encode(serial);
}

Result<RenewalWindow> parse_renewal_window(std::string_view body) {
  auto json = parse_json_object(body);
  if (!json) return Error{Errc::invalid_argument, "renewalInfo is not a JSON object"};
  const auto* w = json->if_contains("suggestedWindow");
  if (w == nullptr || !w->is_object()) {
    return Error{Errc::invalid_argument, "renewalInfo has no suggestedWindow"};
  }
  const auto start = parse_rfc3339_time(member_string(w->get_object(), "start"));
  const auto end = parse_rfc3339_time(member_string(w->get_object(), "end"));
  if (!start || !end) return Error{Errc::invalid_argument, "suggestedWindow times do not parse"};
  if (*end <= *start) return Error{Errc::invalid_argument, "suggestedWindow ends before it starts"};
  return RenewalWindow{*start, *end};
}

Result<RenewalInfo> fetch_renewal_info(HttpClient& http, const std::string& directory_url,
                                       const std::string& chain_pem, Clock::WallTime now) {
  auto id = ari_cert_id(chain_pem);
  if (!id) return id.error();
  auto dir = http.send({.method = "GET", .url = directory_url, .headers = {}, .body = {}});
  if (!dir) return dir.error();
  if (dir->status != 200) {
    return Error{Errc::unavailable, "directory answered HTTP " + std::to_string(dir->status)};
  }
  auto json = parse_json_object(dir->body);
  if (!json) return Error{Errc::unavailable, "directory is not a JSON object"};
  std::string base = member_string(*json, "renewalInfo");
  if (base.empty()) return Error{Errc::not_found, "the CA offers no renewalInfo"};
  if (base.back() != '/') base.push_back('/');
  auto r = http.send({.method = "GET", .url = base + *id, .headers = {}, .body = {}});
  if (!r) return r.error();
  if (r->status != 200) {
    return Error{Errc::unavailable, "renewalInfo answered HTTP " + std::to_string(r->status)};
  }
  auto window = parse_renewal_window(r->body);
  if (!window) return window.error();
  RenewalInfo info;
  info.window = *window;
  info.poll_after = kDefaultPoll;
  if (const std::string ra = r->header("Retry-After"); !ra.empty()) {
    if (auto s = parse_retry_after(ra, now)) info.poll_after = std::clamp(*s, kMinPoll, kMaxPoll);
  }
  return info;
}

Clock::WallTime ari_renewal_time(const RenewalWindow& window, double random01) {
  const auto span = window.end - window.start;
  return window.start + std::chrono::duration_cast<Clock::WallTime::duration>(span * std::clamp(random01, 0.0, 1.0));
}

}  // namespace sandboxd::acme
