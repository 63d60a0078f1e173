#include "gzip.h"

#include <zlib.h>

#include <array>

namespace sandboxd::control {

struct GzipEncoder::State {
  z_stream zs{};
  bool finished = false;
  ~State() { deflateEnd(&zs); }
};

Result<GzipEncoder> GzipEncoder::make(int level) {
  auto state = std::make_unique<State>();
  // windowBits 15 + 16: a gzip header and trailer instead of zlib's.
  if (deflateInit2(&state->zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return Error{Errc::internal, "cannot start gzip compression"};
  }
  return GzipEncoder(std::move(state));
}

GzipEncoder::GzipEncoder(std::unique_ptr<State> state) : state_(std::move(state)) {}
GzipEncoder::GzipEncoder(GzipEncoder&&) noexcept = default;
GzipEncoder& GzipEncoder::operator=(GzipEncoder&&) noexcept = default;
GzipEncoder::~GzipEncoder() = default;

Status GzipEncoder::add(std::string_view in, std::string& out) { return run(in, false, out); }

Status GzipEncoder::finish(std::string& out) { return run({}, true, out); }

Status GzipEncoder::run(std::string_view in, bool finish, std::string& out) {
  if (!state_ || state_->finished) return Error{Errc::internal, "gzip stream already finished"};
  z_stream& zs = state_->zs;
  // zlib's API is not const-correct; deflate never writes through next_in.
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  std::array<unsigned char, 64 * 1024> buffer;
  for (;;) {
    zs.next_out = buffer.data();
    zs.avail_out = static_cast<uInt>(buffer.size());
    const int rc = deflate(&zs, finish ? Z_FINISH : Z_NO_FLUSH);
    if (rc == Z_STREAM_ERROR) return Error{Errc::internal, "gzip compression failed"};
    const std::size_t produced = buffer.size() - zs.avail_out;
    out.append(reinterpret_cast<const char*>(buffer.data()), produced);
    if (finish) {
      if (rc == Z_STREAM_END) {
        state_->finished = true;
        return ok();
      }
      continue;
    }
    // Without a flush, deflate is done with this input once it has room left over.
    if (zs.avail_in == 0 && zs.avail_out != 0) return ok();
  }
}

}  // namespace sandboxd::control
