#include <unistd.h>

#include <cerrno>

#include "cli/requests.h"
#include "commands.h"

namespace sandboxd::cli {

CliStatus write_fd(int fd, std::string_view text) {
  while (!text.empty()) {
    ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EPIPE) {
        CliError e;
        e.kind = ErrorKind::broken_pipe;
        return e;
      }
      return CliError::local(std::string("writing to ") +
                             (fd == 1   ? "stdout"
                              : fd == 2 ? "stderr"
                                        : "a file") +
                             " failed: " + errno_text(errno));
    }
    text.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

CliStatus Context::out(std::string_view text) const { return write_fd(1, text); }
CliStatus Context::err(std::string_view text) const { return write_fd(2, text); }

CliStatus Context::out_document(std::string_view body) const {
  if (body.empty() || body.back() != '\n') return out(std::string(body) + "\n");
  return out(body);
}

CliResult<std::string> Context::id(std::size_t i, std::string_view what) const {
  if (i >= inv.args.size()) return CliError::usage("missing " + std::string(what));
  return id_arg(inv.args[i], what);
}

CliResult<boost::json::object> Context::object_of(const ApiReply& reply) const {
  if (!reply.json.is_object())
    return CliError::protocol("the server's answer is not a JSON object");
  return reply.json.get_object();
}

}  // namespace sandboxd::cli
