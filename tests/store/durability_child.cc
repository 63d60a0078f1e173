// Helper for the SIGKILL durability proof (SPEC §8 "Proof"): streams writes into the store
// under argv[1] from several threads and prints each sandbox id to stdout only after its
// write was acknowledged. Each write is one sandbox row plus two port rows in one job, so a
// torn transaction would show as a row with fewer than two ports. Runs until killed; exits
// on its own only after kMaxWrites or when stdout goes away (SIGPIPE).
#include <unistd.h>

#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "base/ulid.h"
#include "store/sandbox_repo.h"
#include "store/store.h"

namespace {

constexpr int kThreads = 4;
constexpr int kMaxWrites = 200000;

}  // namespace

int main(int argc, char** argv) {
  using namespace sandboxd;
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DATA_DIR\n", argv[0]);
    return 2;
  }
  store::StoreOptions options;
  options.data_dir = argv[1];
  auto opened = store::Store::open(options);
  if (!opened) {
    std::fprintf(stderr, "open: %s\n", opened.error().message().c_str());
    return 1;
  }
  store::Store& db = **opened;

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&db] {
      for (int i = 0; i < kMaxWrites / kThreads; ++i) {
        store::SandboxRow row;
        row.id = new_ulid().str();
        row.status = "running";
        row.image = "durability";
        row.ports = {3000, 8080};
        Status st =
            db.write([&row](store::Tx& tx) { return store::sandbox_repo::insert(tx, row); });
        if (!st) {
          std::fprintf(stderr, "write: %s\n", st.error().message().c_str());
          std::_Exit(1);
        }
        // One write(2) per line: lines from different threads never interleave in the pipe.
        const std::string line = row.id + "\n";
        if (::write(STDOUT_FILENO, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
          std::_Exit(1);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  return 0;
}
