// Error messages and exit codes (SPEC §12 "Errors", "Exit codes").
#include "cli/errors.h"

#include <gtest/gtest.h>

#include <cerrno>

namespace sandboxd::cli {
namespace {

CliError api(int status, const std::string& body = "", bool token = false) {
  return api_error(status, body, token, "GET /v1/sandboxes/X");
}

TEST(Errors, ExitCodeTable) {
  EXPECT_EQ(exit_code_of(CliError::usage("x")), 2);
  EXPECT_EQ(exit_code_of(CliError::local("x")), 1);
  EXPECT_EQ(exit_code_of(CliError::protocol("x")), 1);
  EXPECT_EQ(exit_code_of(CliError::deadline("x")), 7);
  EXPECT_EQ(exit_code_of(unreachable("http://h", "connection refused")), 6);
  CliError failed;
  failed.kind = ErrorKind::failed;
  EXPECT_EQ(exit_code_of(failed), 1);
  CliError pipe;
  pipe.kind = ErrorKind::broken_pipe;
  EXPECT_EQ(exit_code_of(pipe), 141);
  EXPECT_EQ(exit_code_of(pipe, true), 141);
  EXPECT_EQ(format_error(pipe), "");

  struct Row {
    int status;
    std::string code;
    int exit;
  };
  for (const Row& r : std::vector<Row>{{400, "invalid_request", 1},
                                       {401, "unauthorized", 4},
                                       {403, "forbidden", 4},
                                       {404, "not_found", 3},
                                       {405, "method_not_allowed", 1},
                                       {409, "conflict", 5},
                                       {409, "task_in_progress", 5},
                                       {413, "payload_too_large", 1},
                                       {415, "unsupported_media_type", 1},
                                       {429, "rate_limited", 1},
                                       {500, "internal", 6},
                                       {501, "not_implemented", 6},
                                       {502, "sandbox_unavailable", 6},
                                       {503, "sandbox_capacity", 6},
                                       {503, "unavailable", 6},
                                       {504, "timeout", 7},
                                       {504, "", 6},
                                       {507, "insufficient_storage", 6}}) {
    std::string body = R"({"error":{"code":")" + r.code + R"(","message":"m","retryable":false}})";
    CliError e = api(r.status, r.code.empty() ? "" : body);
    EXPECT_EQ(exit_code_of(e), r.exit) << r.status << " " << r.code;
    // exec and the like: every failure of their own is 125.
    EXPECT_EQ(exit_code_of(e, true), 125) << r.status;
  }
  EXPECT_EQ(exit_code_of(CliError::usage("x"), true), 125);
}

TEST(Errors, EnvelopeMessages) {
  CliError v1 = api(
      404, R"({"error":{"code":"not_found","message":"no such sandbox 01J9","retryable":false}})");
  EXPECT_EQ(v1.message, "no such sandbox 01J9 (not_found, HTTP 404)");
  EXPECT_EQ(v1.hint, "");
  EXPECT_EQ(format_error(v1), "sandboxctl: no such sandbox 01J9 (not_found, HTTP 404)\n");
  CliError legacy = api(409, R"({"error":"id collision","code":"conflict"})");
  EXPECT_EQ(legacy.message, "id collision (conflict, HTTP 409)");
  EXPECT_EQ(legacy.code, "conflict");
  CliError text = api(502, "<html>bad gateway</html>");
  EXPECT_EQ(text.message, "the server answered bad gateway (HTTP 502)");
  CliError odd = api(418, R"({"error":{"code":7}})");
  EXPECT_EQ(odd.message, "the server answered an error (HTTP 418)");
}

TEST(Errors, UnknownRoutesHintAtAnOlderServer) {
  CliError e =
      api(404, R"({"error":{"code":"not_found","message":"not found","retryable":false}})");
  EXPECT_EQ(
      format_error(e),
      "sandboxctl: not found (not_found, HTTP 404)\n"
      "hint: this sandboxd does not serve GET /v1/sandboxes/X; it may be older than sandboxctl\n");
  CliError m = api(
      405,
      R"({"error":{"code":"method_not_allowed","message":"method not allowed","retryable":false}})");
  EXPECT_NE(m.hint.find("does not serve"), std::string::npos);
  EXPECT_EQ(exit_code_of(m), 1);
}

TEST(Errors, Unauthorized) {
  std::string body =
      R"({"error":{"code":"unauthorized","message":"a valid bearer token is required","retryable":false}})";
  EXPECT_EQ(format_error(api(401, body, false)),
            "sandboxctl: the server requires a token\n"
            "hint: set --token or SANDBOXD_TOKEN\n");
  EXPECT_EQ(format_error(api(401, body, true)),
            "sandboxctl: the server did not accept the token\n"
            "hint: check --token or SANDBOXD_TOKEN\n");
  EXPECT_EQ(exit_code_of(api(401, "", false)), 4);
}

TEST(Errors, ConnectFailure) {
  EXPECT_EQ(format_error(unreachable("http://127.0.0.1:9090", errno_text(ECONNREFUSED))),
            "sandboxctl: cannot reach sandboxd at http://127.0.0.1:9090: connection refused\n"
            "hint: is sandboxd running? set --server or SANDBOXD_URL\n");
}

TEST(Errors, Signals) {
  EXPECT_EQ(signal_number("SIGKILL"), 9);
  EXPECT_EQ(signal_number("TERM"), 15);
  EXPECT_EQ(signal_number("SIGWHAT"), std::nullopt);
  EXPECT_EQ(exit_code_of_signal(9), 137);
}

}  // namespace
}  // namespace sandboxd::cli
