#include "cli/streams.h"

#include <boost/json/value.hpp>

#include "base/json.h"

namespace sandboxd::cli {

namespace json = boost::json;

CliStatus LineSplitter::feed(std::string_view bytes, std::vector<std::string>& out) {
  while (!bytes.empty()) {
    std::size_t nl = bytes.find('\n');
    std::size_t take = nl == std::string_view::npos ? bytes.size() : nl;
    if (buffer_.size() + take > max_line_) {
      buffer_.clear();
      return CliError::protocol("a line of the stream is longer than " + std::to_string(max_line_) +
                                " bytes");
    }
    buffer_.append(bytes.substr(0, take));
    if (nl == std::string_view::npos) break;
    bytes.remove_prefix(nl + 1);
    if (!buffer_.empty() && buffer_.back() == '\r') buffer_.pop_back();
    out.push_back(std::move(buffer_));
    buffer_.clear();
  }
  return {};
}

std::optional<std::string> LineSplitter::finish() {
  if (buffer_.empty()) return std::nullopt;
  std::string last = std::move(buffer_);
  buffer_.clear();
  if (!last.empty() && last.back() == '\r') last.pop_back();
  return last;
}

void SseParser::reset() {
  line_.clear();
  skip_lf_ = false;
  current_ = SseEvent{};
  has_data_ = false;
}

CliStatus SseParser::feed(std::string_view bytes, std::vector<SseEvent>& out) {
  for (char c : bytes) {
    if (skip_lf_) {
      skip_lf_ = false;
      if (c == '\n') continue;
    }
    if (c == '\r' || c == '\n') {
      skip_lf_ = c == '\r';
      std::string l = std::move(line_);
      line_.clear();
      if (auto st = line(l, out); !st) return st;
      continue;
    }
    if (line_.size() + current_.data.size() >= max_event_) {
      reset();
      return CliError::protocol("an event of the stream is larger than " +
                                std::to_string(max_event_) + " bytes");
    }
    line_ += c;
  }
  return {};
}

CliStatus SseParser::line(std::string_view l, std::vector<SseEvent>& out) {
  if (l.empty()) {
    if (has_data_) {
      if (current_.event.empty()) current_.event = "message";
      out.push_back(std::move(current_));
    }
    current_ = SseEvent{};
    has_data_ = false;
    return {};
  }
  if (l.front() == ':') return {};  // comment (": ping")
  std::size_t colon = l.find(':');
  std::string_view field = l.substr(0, colon);
  std::string_view value =
      colon == std::string_view::npos ? std::string_view() : l.substr(colon + 1);
  if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  if (field == "data") {
    if (has_data_) current_.data += '\n';
    if (current_.data.size() + value.size() > max_event_) {
      reset();
      return CliError::protocol("an event of the stream is larger than " +
                                std::to_string(max_event_) + " bytes");
    }
    current_.data.append(value);
    has_data_ = true;
  } else if (field == "event") {
    current_.event = std::string(value);
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) {
      current_.id = std::string(value);
      last_id_ = current_.id;
    }
  } else if (field == "retry") {
    bool digits = !value.empty() && value.size() <= 12;
    for (char c : value) digits = digits && c >= '0' && c <= '9';
    if (digits) retry_ms_ = std::stoull(std::string(value));
  }
  return {};
}

namespace {

const json::value* field(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  return it == o.end() ? nullptr : &it->value();
}

CliError bad_frame(std::string what) { return CliError::protocol("malformed exec frame: " + what); }

}  // namespace

CliResult<ExecFrame> parse_exec_frame(std::string_view line) {
  auto v = parse_json(line);
  if (!v) return bad_frame(v.error().detail);
  if (!v->is_object()) return bad_frame("not a JSON object");
  const json::object& o = v->get_object();
  const json::value* type = field(o, "type");
  if (!type || !type->is_string()) return bad_frame("no type");
  ExecFrame f;
  std::string_view t = type->get_string();
  if (t == "start") {
    f.type = ExecFrame::Type::start;
    if (const json::value* id = field(o, "exec_id"); id && id->is_string())
      f.exec_id = id->get_string();
  } else if (t == "stdout" || t == "stderr") {
    f.type = t == "stdout" ? ExecFrame::Type::stdout_ : ExecFrame::Type::stderr_;
    if (const json::value* d = field(o, "data"); d && d->is_string()) {
      f.data = d->get_string();
    } else if (const json::value* b = field(o, "data_b64"); b && b->is_string()) {
      auto bytes = base64_decode(b->get_string());
      if (!bytes) return bad_frame("data_b64 is not base64");
      f.data = std::move(*bytes);
      f.binary = true;
    } else {
      return bad_frame("an output frame without data");
    }
  } else if (t == "heartbeat") {
    f.type = ExecFrame::Type::heartbeat;
  } else if (t == "exit") {
    f.type = ExecFrame::Type::exit;
    const json::value* code = field(o, "exit_code");
    if (!code) return bad_frame("an exit frame without exit_code");
    if (code->is_int64()) {
      std::int64_t c = code->get_int64();
      if (c < -1'000'000 || c > 1'000'000) return bad_frame("exit_code out of range");
      f.exit_code = static_cast<int>(c);
    } else if (!code->is_null()) {
      return bad_frame("exit_code is not an integer");
    }
    if (const json::value* to = field(o, "timed_out"); to && to->is_bool())
      f.timed_out = to->get_bool();
    if (const json::value* d = field(o, "duration_ms"); d && d->is_int64())
      f.duration_ms = d->get_int64();
  } else if (t == "error") {
    f.type = ExecFrame::Type::error;
    if (const json::value* c = field(o, "code"); c && c->is_string()) f.code = c->get_string();
    if (const json::value* m = field(o, "message"); m && m->is_string())
      f.message = m->get_string();
  }
  return f;
}

}  // namespace sandboxd::cli
