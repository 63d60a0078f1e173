#include "edge/websocket_frames.h"

#include <gtest/gtest.h>

#include <string>

namespace sandboxd::edge {
namespace {

// A frame as a peer sends it: FIN + opcode, then the length in its shortest form, an
// optional mask key, and the payload (left unmasked; the cursor never looks at it).
std::string frame(unsigned char opcode, std::size_t length, bool masked = false) {
  std::string f;
  f.push_back(static_cast<char>(0x80 | opcode));
  const unsigned char mask = masked ? 0x80 : 0;
  if (length < 126) {
    f.push_back(static_cast<char>(mask | length));
  } else if (length <= 0xFFFF) {
    f.push_back(static_cast<char>(mask | 126));
    f.push_back(static_cast<char>(length >> 8));
    f.push_back(static_cast<char>(length & 0xFF));
  } else {
    f.push_back(static_cast<char>(mask | 127));
    for (int shift = 56; shift >= 0; shift -= 8) {
      f.push_back(static_cast<char>((static_cast<std::uint64_t>(length) >> shift) & 0xFF));
    }
  }
  if (masked) f.append("\x01\x02\x03\x04", 4);
  f.append(length, 'x');
  return f;
}

TEST(FrameCursor, FollowsFramesOfEveryLengthFormInAnySplit) {
  const std::string stream = frame(0x1, 5) + frame(0x2, 300, true) + frame(0x9, 0) +
                             frame(0x2, 70000) + frame(0x1, 125, true);
  for (std::size_t step : {std::size_t{1}, std::size_t{3}, std::size_t{7}, std::size_t{4096}}) {
    FrameCursor c;
    for (std::size_t i = 0; i < stream.size(); i += step) {
      EXPECT_EQ(c.advance(std::string_view(stream).substr(i, step)),
                std::min(step, stream.size() - i));
    }
    EXPECT_TRUE(c.at_boundary()) << "step " << step;
    EXPECT_FALSE(c.saw_close());
  }
}

TEST(FrameCursor, StopsAtTheNextBoundary) {
  const std::string first = frame(0x1, 10);
  const std::string stream = first + frame(0x1, 20);
  FrameCursor c;
  EXPECT_EQ(c.advance(std::string_view(stream).substr(0, 4)), 4u);
  EXPECT_FALSE(c.at_boundary());
  // The rest of the first frame is followed, then the cursor stops before the second.
  EXPECT_EQ(c.advance(std::string_view(stream).substr(4), true), first.size() - 4);
  EXPECT_TRUE(c.at_boundary());
  EXPECT_EQ(c.advance(std::string_view(stream).substr(first.size()), true), 0u);
}

TEST(FrameCursor, MidHeaderIsNotABoundary) {
  const std::string f = frame(0x2, 70000, true);
  FrameCursor c;
  c.advance(std::string_view(f).substr(0, 5));
  EXPECT_FALSE(c.at_boundary());
  c.advance(std::string_view(f).substr(5));
  EXPECT_TRUE(c.at_boundary());
}

TEST(FrameCursor, SeesAClientsCloseFrame) {
  FrameCursor c;
  c.advance(frame(0x1, 3, true));
  EXPECT_FALSE(c.saw_close());
  c.advance(frame(0x8, 2, true).substr(0, 6));  // the header (with its mask key) is enough
  EXPECT_TRUE(c.saw_close());
}

TEST(FrameCursor, AnImpossibleLengthLosesTheStream) {
  std::string bad = "\x82\x7F";
  bad.append(8, '\xFF');
  FrameCursor c;
  EXPECT_EQ(c.advance(bad + frame(0x1, 1)), bad.size() + 3);
  EXPECT_TRUE(c.lost());
  EXPECT_FALSE(c.at_boundary());
}

TEST(CloseFrame, CarriesTheCodeAndReasonUnmasked) {
  const std::string f = close_frame(1001, "sandbox stopping");
  ASSERT_EQ(f.size(), 4u + 16u);
  EXPECT_EQ(static_cast<unsigned char>(f[0]), 0x88);
  EXPECT_EQ(static_cast<unsigned char>(f[1]), 18);
  EXPECT_EQ(static_cast<unsigned char>(f[2]), 0x03);
  EXPECT_EQ(static_cast<unsigned char>(f[3]), 0xE9);
  EXPECT_EQ(f.substr(4), "sandbox stopping");
  FrameCursor c;
  c.advance(f);
  EXPECT_TRUE(c.at_boundary());
  EXPECT_TRUE(c.saw_close());
  EXPECT_EQ(close_frame(1000, std::string(200, 'r')).size(), 4u + 123u);
}

}  // namespace
}  // namespace sandboxd::edge
