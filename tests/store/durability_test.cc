// SPEC §8 "Proof": a child streaming writes is killed with SIGKILL; on reopen the database
// passes integrity_check, holds every acknowledged write and no partial transaction.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <string>

#include "store/sandbox_repo.h"
#include "test_util.h"

extern char** environ;

namespace sandboxd::store {
namespace {

using testing::query_int;
using testing::query_text;
using testing::TempDir;

// Starts the child on `dir`, collects the ids it acknowledges, SIGKILLs it once
// `kill_after` new acknowledgements arrived, then drains the pipe: an id already in the
// pipe was acknowledged before the kill, so it must be durable too. Only complete lines
// count; each line is one write(2) of less than PIPE_BUF, so lines are never torn.
void run_child_until_killed(const TempDir& dir, std::size_t kill_after,
                            std::set<std::string>& acked) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);  // dup2 clears CLOEXEC
  std::string child_path = STORE_DURABILITY_CHILD;
  std::string data_dir = dir.path().string();
  char* argv[] = {child_path.data(), data_dir.data(), nullptr};
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, child_path.c_str(), &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  ASSERT_EQ(rc, 0) << "spawn " << child_path;

  std::size_t fresh = 0;
  std::string pending;
  bool killed = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd pfd{fds[0], POLLIN, 0};
    int ready = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) break;
    char buf[4096];
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF: the child is gone and the pipe is drained
    pending.append(buf, static_cast<std::size_t>(n));
    for (std::size_t nl; (nl = pending.find('\n')) != std::string::npos;) {
      if (acked.insert(pending.substr(0, nl)).second) ++fresh;
      pending.erase(0, nl + 1);
    }
    if (!killed && fresh >= kill_after) {
      ASSERT_EQ(::kill(pid, SIGKILL), 0);
      killed = true;
    }
  }
  ::close(fds[0]);
  if (!killed) ::kill(pid, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(killed) << "only " << fresh << " acknowledgements before the deadline";
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "the child ended on its own (status " << status << ")";
}

// Reopens the store and checks the three claims of the proof.
void verify_after_crash(const TempDir& dir, const std::set<std::string>& acked) {
  auto opened = Store::open(testing::options_for(dir));
  ASSERT_TRUE(opened) << opened.error().message();
  Store& store = **opened;
  EXPECT_EQ(*query_text(store, "PRAGMA integrity_check"), "ok");
  EXPECT_EQ(query_int(store, "SELECT count(*) FROM pragma_foreign_key_check"), 0);

  auto rows = sandbox_repo::list(store);
  ASSERT_TRUE(rows) << rows.error().message();
  std::set<std::string> present;
  for (const auto& row : *rows) {
    present.insert(row.id);
    // No partial transaction: every row has exactly the two ports written with it.
    EXPECT_EQ(row.ports, (std::vector<int>{3000, 8080})) << row.id;
  }
  EXPECT_EQ(query_int(store, "SELECT count(*) FROM sandbox_port"),
            2 * static_cast<std::int64_t>(rows->size()));
  std::size_t missing = 0;
  for (const auto& id : acked) {
    if (!present.count(id)) ++missing;
  }
  EXPECT_EQ(missing, 0u) << "of " << acked.size() << " acknowledged writes";
  EXPECT_GE(present.size(), acked.size());
  ::testing::Test::RecordProperty("acknowledged", static_cast<int>(acked.size()));
  ::testing::Test::RecordProperty("present", static_cast<int>(present.size()));
}

// Three rounds on one database, killed after a different number of acknowledgements each
// time, so the kill lands at different points of the group-commit cycle and recovery
// itself is crashed into.
TEST(StoreDurability, SigkillMidStreamKeepsEveryAcknowledgedWrite) {
  TempDir dir;
  std::set<std::string> acked;
  for (std::size_t kill_after : {300u, 217u, 451u}) {
    SCOPED_TRACE("killed after " + std::to_string(kill_after) + " acknowledgements");
    run_child_until_killed(dir, kill_after, acked);
    if (HasFatalFailure()) return;
    verify_after_crash(dir, acked);
  }
}

}  // namespace
}  // namespace sandboxd::store
