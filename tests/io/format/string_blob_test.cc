// Tests of the string blob encoding.
#include "io/format/string_blob.h"

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace meshckpt {
namespace {

TEST(StringBlob, RoundTripsAnyBytes) {
  const std::vector<std::string> values = {"", "a", std::string("x\0y", 3), "",
                                           std::string(1000, '\xff')};
  const std::string blob = EncodeStringBlob(values);
  EXPECT_EQ(blob.size(), 8 * values.size() + 1 + 3 + 1000);
  std::vector<std::string> back;
  ASSERT_TRUE(DecodeStringBlob(blob, values.size(), &back).ok());
  EXPECT_EQ(back, values);
}

TEST(StringBlob, EmptyTensor) {
  std::vector<std::string> back = {"stale"};
  ASSERT_TRUE(DecodeStringBlob(EncodeStringBlob({}), 0, &back).ok());
  EXPECT_TRUE(back.empty());
}

TEST(StringBlob, LengthsAreLittleEndian) {
  const std::string blob = EncodeStringBlob({std::string(258, 'a')});
  EXPECT_EQ(blob.substr(0, 8), std::string("\x02\x01\0\0\0\0\0\0", 8));
}

TEST(StringBlob, DamageIsDataLoss) {
  const std::string good = EncodeStringBlob({"ab", "cde"});
  std::vector<std::string> out;
  // More elements than lengths fit, and an element count that would
  // overflow 8 * n.
  EXPECT_TRUE(absl::IsDataLoss(DecodeStringBlob(good, 3, &out)));
  EXPECT_TRUE(absl::IsDataLoss(DecodeStringBlob(good, int64_t{1} << 62, &out)));
  EXPECT_TRUE(absl::IsDataLoss(DecodeStringBlob(good, -1, &out)));
  // Fewer elements than stored: the bytes are not accounted for.
  EXPECT_TRUE(absl::IsDataLoss(DecodeStringBlob(good, 1, &out)));
  // A truncated blob.
  EXPECT_TRUE(absl::IsDataLoss(DecodeStringBlob(good.substr(0, good.size() - 1), 2, &out)));
  // A length claiming everything (its sum with the next would overflow).
  std::string huge = good;
  std::memset(&huge[0], '\xff', 8);
  EXPECT_TRUE(absl::IsDataLoss(DecodeStringBlob(huge, 2, &out)));
}

// Random damage never crashes, and a decode that succeeds accounts for
// every byte.
TEST(StringBlob, RandomDamageIsCaughtOrConsistent) {
  std::mt19937_64 rng(7);
  const std::string good = EncodeStringBlob({"alpha", "", "gamma-delta", "z"});
  for (int trial = 0; trial < 2000; ++trial) {
    std::string blob = good;
    blob[rng() % blob.size()] ^= static_cast<char>(1 + rng() % 255);
    if (trial % 3 == 0) blob.resize(rng() % (blob.size() + 1));
    std::vector<std::string> out;
    if (DecodeStringBlob(blob, 4, &out).ok()) {
      size_t bytes = 0;
      for (const std::string& s : out) bytes += s.size();
      EXPECT_EQ(bytes + 32, blob.size());
    }
  }
}

}  // namespace
}  // namespace meshckpt
