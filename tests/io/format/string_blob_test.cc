// Tests of the string blob encoding.
#include "meshckpt/io/format/string_blob.h"

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "meshckpt/layout/region.h"

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
  EXPECT_TRUE(
      absl::IsDataLoss(DecodeStringBlob(good.substr(0, good.size() - 1), 2, &out)));
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

TEST(StringBlob, AppendAddsTheSameBytes) {
  std::string out = "prefix";
  AppendStringBlob({"ab", ""}, &out);
  EXPECT_EQ(out, "prefix" + EncodeStringBlob({"ab", ""}));
}

// The tensor's blob put together from its shards' blobs with the pieces.
std::string Assemble(const std::vector<StringBlobPiece>& pieces,
                     const std::vector<std::string>& blobs) {
  std::string out;
  for (const StringBlobPiece& p : pieces) {
    EXPECT_EQ(p.to, static_cast<int64_t>(out.size()));  // Ascending, no gaps.
    EXPECT_GT(p.size, 0);
    out += blobs[p.shard].substr(p.from, p.size);
  }
  return out;
}

// Element values that say where they are, of varied lengths (some empty).
std::vector<std::string> Values(const std::vector<int64_t>& shape) {
  std::vector<std::string> v(Box::FromShape(shape).num_elements());
  for (size_t i = 0; i < v.size(); ++i) {
    v[i] = i % 4 == 1 ? "" : std::string(1 + i % 5, static_cast<char>('a' + i % 26));
  }
  return v;
}

// Places the shards `boxes` of a tensor of `shape` and checks the result is
// the tensor's own blob; returns the number of pieces.
size_t ExpectPlaced(const std::vector<int64_t>& shape, const std::vector<Box>& boxes) {
  const std::vector<std::string> all = Values(shape);
  std::vector<std::string> blobs;
  std::vector<absl::string_view> views;
  for (const Box& b : boxes) {
    std::vector<std::string> mine(b.num_elements());
    CopyRegionOf(all.data(), shape, b, mine.data(), b.shape(), Box::FromShape(b.shape()));
    blobs.push_back(EncodeStringBlob(mine));
  }
  for (const std::string& b : blobs) views.push_back(b);
  absl::StatusOr<std::vector<StringBlobPiece>> pieces =
      PlaceStringShards(shape, boxes, views);
  EXPECT_TRUE(pieces.ok()) << pieces.status();
  if (!pieces.ok()) return 0;
  EXPECT_EQ(Assemble(*pieces, blobs), EncodeStringBlob(all));
  return pieces->size();
}

TEST(StringBlob, PlacesShardsAsTheWholeTensorsBlob) {
  // One shard: its blob as it is, in one piece.
  EXPECT_EQ(ExpectPlaced({5}, {Box::FromShape({5})}), 1u);
  // Row blocks: two pieces per shard, whatever the rows hold.
  EXPECT_EQ(
      ExpectPlaced({4, 3}, {*Box::Create({2, 0}, {2, 3}), *Box::Create({0, 0}, {2, 3})}),
      4u);
  // Column blocks: two pieces per row of each shard.
  EXPECT_EQ(
      ExpectPlaced({3, 4}, {*Box::Create({0, 0}, {3, 2}), *Box::Create({0, 2}, {3, 2})}),
      12u);
  // Uneven 2-D blocks, with an empty shard.
  ExpectPlaced({5, 3}, {*Box::Create({0, 0}, {3, 2}), *Box::Create({0, 2}, {3, 1}),
                        *Box::Create({3, 0}, {2, 2}), *Box::Create({3, 2}, {2, 1}),
                        *Box::Create({5, 0}, {0, 3})});
  // A scalar, and tensors without elements.
  ExpectPlaced({}, {Box::FromShape({})});
  EXPECT_EQ(ExpectPlaced({3, 0, 2}, {Box::FromShape({3, 0, 2})}), 0u);
}

TEST(StringBlob, PlacingBadShardsIsInvalidArgument) {
  const std::string two = EncodeStringBlob({"ab", "c"});
  const Box first = *Box::Create({0}, {2}), last = *Box::Create({2}, {2});
  auto place = [](std::vector<Box> boxes, std::vector<absl::string_view> blobs) {
    return PlaceStringShards({4}, boxes, blobs).status();
  };
  EXPECT_TRUE(place({first, last}, {two, two}).ok());
  // A gap, an overlap, a box outside, counts that differ.
  EXPECT_TRUE(absl::IsInvalidArgument(place({first}, {two})));
  EXPECT_TRUE(absl::IsInvalidArgument(place({first, first, last}, {two, two, two})));
  EXPECT_TRUE(
      absl::IsInvalidArgument(place({first, *Box::Create({3}, {2})}, {two, two})));
  EXPECT_TRUE(absl::IsInvalidArgument(place({first, last}, {two})));
  // Blobs that are not of their box: too short, lengths not adding up.
  EXPECT_TRUE(absl::IsInvalidArgument(place({first, last}, {two, two.substr(0, 10)})));
  EXPECT_TRUE(absl::IsInvalidArgument(place({first, last}, {two, two + "x"})));
  std::string huge = two;
  huge[7] = '\x7f';
  EXPECT_TRUE(absl::IsInvalidArgument(place({first, last}, {two, huge})));
}

}  // namespace
}  // namespace meshckpt
