#include "runtimed/agent_output.h"

#include "base/json.h"
#include "runtimed/paths.h"
#include "runtimed/text.h"

#include <boost/json.hpp>

#include <map>
#include <set>

namespace sandboxd::runtimed {

namespace json = boost::json;

namespace {

constexpr std::size_t kSummaryChars = 200;
constexpr std::size_t kMaxErrorBytes = 4096;
constexpr std::size_t kMaxPathBytes = 4096;
// Agent JSON can nest deeper than request bodies do (tool inputs).
constexpr JsonLimits kAgentJson{.max_depth = 128};

const json::object* object_at(const json::object* o, std::string_view key) {
  if (!o) return nullptr;
  const json::value* v = o->if_contains(key);
  return v && v->is_object() ? &v->get_object() : nullptr;
}

std::optional<std::string_view> string_at(const json::object* o, std::string_view key) {
  if (!o) return std::nullopt;
  const json::value* v = o->if_contains(key);
  if (!v || !v->is_string()) return std::nullopt;
  return std::string_view(v->get_string());
}

std::int64_t int_at(const json::object* o, std::string_view key) {
  if (!o) return 0;
  const json::value* v = o->if_contains(key);
  if (!v) return 0;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(v->get_uint64());
  if (v->is_double()) return static_cast<std::int64_t>(v->get_double());
  return 0;
}

double number_at(const json::object* o, std::string_view key) {
  if (!o) return 0;
  const json::value* v = o->if_contains(key);
  if (!v) return 0;
  if (v->is_double()) return v->get_double();
  if (v->is_int64()) return static_cast<double>(v->get_int64());
  if (v->is_uint64()) return static_cast<double>(v->get_uint64());
  return 0;
}

AgentEvent stdout_event(std::string_view line) {
  json::object d;
  d["text"] = valid_utf8(line);
  return {"stdout", std::move(d)};
}

AgentEvent message_event(std::string_view role, std::string_view text) {
  json::object d;
  d["role"] = role;
  d["text"] = valid_utf8(text);
  return {"message", std::move(d)};
}

AgentEvent tool_event(std::string_view call_id, std::string_view name, std::string_view status,
                      std::string summary) {
  json::object d;
  d["call_id"] = valid_utf8(call_id);
  d["name"] = valid_utf8(name);
  d["status"] = status;
  d["summary"] = std::move(summary);
  return {"tool", std::move(d)};
}

AgentEvent error_event(std::string_view code, std::string_view message) {
  json::object d;
  d["code"] = code;
  d["message"] = valid_utf8(message.substr(0, utf8_cut(message, kMaxErrorBytes)));
  return {"error", std::move(d)};
}

std::string exit_words(std::string_view program, std::optional<int> exit_code) {
  if (exit_code) return std::string(program) + " exited with code " + std::to_string(*exit_code);
  return std::string(program) + " was killed by a signal";
}

class CommandParser final : public OutputParser {
 public:
  void on_line(std::string_view line, std::vector<AgentEvent>& out) override {
    out.push_back(stdout_event(line));
  }
  Outcome finish(std::optional<int> exit_code, std::vector<AgentEvent>&) override {
    Outcome o;
    o.succeeded = exit_code && *exit_code == 0;
    return o;
  }
};

class FileEvents {
 public:
  FileEvents(std::string root, std::string cwd) : root_(std::move(root)), cwd_(std::move(cwd)) {}
  AgentEvent make(std::string_view path, std::string_view op) const {
    json::object d;
    std::string rel = workspace_relative(path, root_, cwd_);
    rel.resize(utf8_cut(rel, kMaxPathBytes));
    d["path"] = valid_utf8(rel);
    d["op"] = op;
    return {"file", std::move(d)};
  }

 private:
  std::string root_;
  std::string cwd_;
};

// opencode run --format json
class OpencodeParser final : public OutputParser {
 public:
  explicit OpencodeParser(FileEvents files) : files_(std::move(files)) {}

  void on_line(std::string_view line, std::vector<AgentEvent>& out) override {
    auto parsed = parse_json(line, kAgentJson);
    if (!parsed || !parsed->is_object()) {
      out.push_back(stdout_event(line));
      return;
    }
    const json::object& o = parsed->get_object();
    auto type = string_at(&o, "type");
    if (!type) return;
    const json::object* part = object_at(&o, "part");
    if (*type == "text") {
      auto text = string_at(part, "text");
      if (text && !text->empty()) {
        out.push_back(message_event("assistant", *text));
        final_message_ = valid_utf8(*text);
        produced_ = true;
      }
    } else if (*type == "tool_use") {
      on_tool(part, out);
    } else if (*type == "step_finish") {
      const json::object* tokens = object_at(part, "tokens");
      const json::object* cache = object_at(tokens, "cache");
      usage_.reported = true;
      usage_.input_tokens += int_at(tokens, "input");
      usage_.output_tokens += int_at(tokens, "output");
      usage_.reasoning_tokens += int_at(tokens, "reasoning");
      usage_.cache_read_tokens += int_at(cache, "read");
      usage_.cache_write_tokens += int_at(cache, "write");
      usage_.cost_usd += number_at(part, "cost");
    } else if (*type == "error") {
      const json::object* err = object_at(&o, "error");
      auto message = string_at(object_at(err, "data"), "message");
      if (!message) message = string_at(err, "name");
      std::string text(message.value_or("agent reported an error"));
      out.push_back(error_event("agent_error", text));
      if (!error_) {
        error_ = std::make_pair(std::string("agent_error"),
                                valid_utf8(text.substr(0, utf8_cut(text, kMaxErrorBytes))));
      }
    }
  }

  Outcome finish(std::optional<int> exit_code, std::vector<AgentEvent>& out) override {
    Outcome o;
    o.usage = usage_;
    if (!final_message_.empty()) o.final_message = final_message_;
    if (error_) {
      o.error = error_;
      return o;
    }
    std::string problem;
    if (!exit_code || *exit_code != 0) {
      problem = exit_words("opencode", exit_code);
    } else if (!produced_) {
      problem = "agent produced no output";
    }
    if (!problem.empty()) {
      out.push_back(error_event("agent_error", problem));
      o.error = std::make_pair(std::string("agent_error"), problem);
      return o;
    }
    o.succeeded = true;
    return o;
  }

 private:
  void on_tool(const json::object* part, std::vector<AgentEvent>& out) {
    std::string call_id(string_at(part, "callID").value_or(""));
    std::string tool(string_at(part, "tool").value_or(""));
    const json::object* state = object_at(part, "state");
    std::string status(string_at(state, "status").value_or(""));
    const json::object* input = object_at(state, "input");
    auto& seen = calls_[call_id];
    produced_ = true;
    if (status == "pending" || status == "running") {
      if (seen.count("started")) return;
      seen.insert("started");
      out.push_back(tool_event(call_id, tool, "started", tool_summary(input)));
    } else if (status == "completed" || status == "error") {
      if (seen.count(status)) return;
      seen.insert(status);
      out.push_back(tool_event(call_id, tool, status, tool_summary(input)));
      if (status == "completed" &&
          (tool == "write" || tool == "edit" || tool == "patch" || tool == "multiedit")) {
        if (auto path = string_at(input, "filePath"); path && !path->empty()) {
          out.push_back(files_.make(*path, tool == "write" ? "write" : "edit"));
        }
      }
    }
  }

  FileEvents files_;
  Usage usage_;
  std::string final_message_;
  bool produced_ = false;
  std::optional<std::pair<std::string, std::string>> error_;
  std::map<std::string, std::set<std::string>> calls_;
};

// claude -p --output-format stream-json --verbose
class ClaudeParser final : public OutputParser {
 public:
  explicit ClaudeParser(FileEvents files) : files_(std::move(files)) {}

  void on_line(std::string_view line, std::vector<AgentEvent>& out) override {
    auto parsed = parse_json(line, kAgentJson);
    if (!parsed || !parsed->is_object()) {
      out.push_back(stdout_event(line));
      return;
    }
    const json::object& o = parsed->get_object();
    auto type = string_at(&o, "type");
    if (!type) return;
    if (*type == "system") {
      if (string_at(&o, "subtype") == std::optional<std::string_view>("init")) {
        std::string text = "session " + std::string(string_at(&o, "session_id").value_or("?")) +
                           ", model " + std::string(string_at(&o, "model").value_or("?"));
        out.push_back(message_event("system", text));
      }
    } else if (*type == "assistant") {
      for_each_block(o, [&](const json::object& block, std::string_view kind) {
        if (kind == "text") {
          auto text = string_at(&block, "text");
          if (text && !text->empty()) out.push_back(message_event("assistant", *text));
        } else if (kind == "tool_use") {
          std::string id(string_at(&block, "id").value_or(""));
          std::string name(string_at(&block, "name").value_or(""));
          const json::object* input = object_at(&block, "input");
          out.push_back(tool_event(id, name, "started", tool_summary(input)));
          calls_[id] = Call{name, input ? *input : json::object()};
        }
      });
    } else if (*type == "user") {
      for_each_block(o, [&](const json::object& block, std::string_view kind) {
        if (kind != "tool_result") return;
        std::string id(string_at(&block, "tool_use_id").value_or(""));
        const json::value* is_error = block.if_contains("is_error");
        bool failed = is_error && is_error->is_bool() && is_error->get_bool();
        auto it = calls_.find(id);
        std::string name = it == calls_.end() ? std::string() : it->second.name;
        const json::object* input = it == calls_.end() ? nullptr : &it->second.input;
        out.push_back(tool_event(id, name, failed ? "error" : "completed", tool_summary(input)));
        if (!failed && (name == "Write" || name == "Edit" || name == "MultiEdit" ||
                        name == "NotebookEdit")) {
          auto path = string_at(input, "file_path");
          if (!path) path = string_at(input, "notebook_path");
          if (path && !path->empty()) out.push_back(files_.make(*path, name == "Write" ? "write" : "edit"));
        }
      });
    } else if (*type == "result") {
      got_result_ = true;
      if (auto result = string_at(&o, "result")) final_message_ = valid_utf8(*result);
      const json::object* usage = object_at(&o, "usage");
      usage_.reported = true;
      usage_.input_tokens = int_at(usage, "input_tokens");
      usage_.output_tokens = int_at(usage, "output_tokens");
      usage_.cache_read_tokens = int_at(usage, "cache_read_input_tokens");
      usage_.cache_write_tokens = int_at(usage, "cache_creation_input_tokens");
      usage_.cost_usd = number_at(&o, "total_cost_usd");
      const json::value* is_error = o.if_contains("is_error");
      bool failed = is_error && is_error->is_bool() && is_error->get_bool();
      std::string subtype(string_at(&o, "subtype").value_or(""));
      if (failed || subtype != "success") {
        std::string message = final_message_ && !final_message_->empty()
                                   ? *final_message_
                                   : (subtype.empty() ? std::string("agent reported an error") : subtype);
        out.push_back(error_event("agent_error", message));
        result_error_ = std::make_pair(
            std::string("agent_error"),
            valid_utf8(std::string_view(message).substr(0, utf8_cut(message, kMaxErrorBytes))));
      } else {
        result_error_.reset();
      }
    }
  }

  Outcome finish(std::optional<int> exit_code, std::vector<AgentEvent>& out) override {
    Outcome o;
    o.usage = usage_;
    o.final_message = final_message_;
    if (!got_result_) {
      std::string message = "agent ended without a result (" +
                            (exit_code ? "exit " + std::to_string(*exit_code)
                                       : std::string("killed by a signal")) +
                            ")";
      out.push_back(error_event("agent_error", message));
      o.error = std::make_pair(std::string("agent_error"), message);
      return o;
    }
    if (result_error_) {
      o.error = result_error_;
      return o;
    }
    if (!exit_code || *exit_code != 0) {
      std::string message = exit_words("claude", exit_code);
      out.push_back(error_event("agent_error", message));
      o.error = std::make_pair(std::string("agent_error"), message);
      return o;
    }
    o.succeeded = true;
    return o;
  }

 private:
  struct Call {
    std::string name;
    json::object input;
  };

  template <class F>
  static void for_each_block(const json::object& o, F&& f) {
    const json::object* message = object_at(&o, "message");
    if (!message) return;
    const json::value* content = message->if_contains("content");
    if (!content || !content->is_array()) return;
    for (const json::value& block : content->get_array()) {
      if (!block.is_object()) continue;
      auto kind = string_at(&block.get_object(), "type");
      if (kind) f(block.get_object(), *kind);
    }
  }

  FileEvents files_;
  Usage usage_;
  std::optional<std::string> final_message_;
  bool got_result_ = false;
  std::optional<std::pair<std::string, std::string>> result_error_;
  std::map<std::string, Call> calls_;
};

}  // namespace

json::object Usage::to_json() const {
  json::object o;
  o["input_tokens"] = input_tokens;
  o["output_tokens"] = output_tokens;
  o["reasoning_tokens"] = reasoning_tokens;
  o["cache_read_tokens"] = cache_read_tokens;
  o["cache_write_tokens"] = cache_write_tokens;
  o["cost_usd"] = cost_usd;
  return o;
}

std::string tool_summary(const json::object* input) {
  for (std::string_view key : {"command", "file_path", "filePath", "path", "pattern", "url"}) {
    if (!input) break;
    const json::value* v = input->if_contains(key);
    if (!v) continue;
    std::string text = v->is_string() ? valid_utf8(v->get_string()) : json::serialize(*v);
    return first_chars(text, kSummaryChars);
  }
  return "";
}

std::unique_ptr<OutputParser> make_output_parser(Agent agent, std::string workspace_root,
                                                 std::string cwd) {
  FileEvents files(std::move(workspace_root), std::move(cwd));
  switch (agent) {
    case Agent::opencode: return std::make_unique<OpencodeParser>(std::move(files));
    case Agent::claude_code: return std::make_unique<ClaudeParser>(std::move(files));
    case Agent::command: break;
  }
  return std::make_unique<CommandParser>();
}

}  // namespace sandboxd::runtimed
