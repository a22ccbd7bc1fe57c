// Partitioned tensors: OrderedCode slice keys (TF's vectors and the real V1
// file's key), AddSlice/ReadTensor round trips, and slices that overlap,
// leave gaps or are missing.
#include <algorithm>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/tfbundle/bundle_reader.h"
#include "meshckpt/tfbundle/bundle_writer.h"
#include "meshckpt/tfbundle/crc32c.h"
#include "meshckpt/tfbundle/slice_key.h"
#include "meshckpt/tfbundle/table.h"
#include "tests/tfbundle/tf_test_util.h"

namespace meshckpt::tf {
namespace {

std::string Num(uint64_t v) {
  std::string s;
  OrderedCodeWriteNumIncreasing(&s, v);
  return s;
}
std::string Signed(int64_t v) {
  std::string s;
  OrderedCodeWriteSignedNumIncreasing(&s, v);
  return s;
}

TEST(SliceKeyTest, OrderedCodeVectors) {
  EXPECT_EQ(Num(0), std::string("\x00", 1));
  EXPECT_EQ(Num(1), std::string("\x01\x01", 2));
  EXPECT_EQ(Num(256), std::string("\x02\x01\x00", 3));
  std::string s;
  OrderedCodeWriteString(&s, std::string("a\0b\xff", 4));
  EXPECT_EQ(s, std::string("a\x00\xff"
                           "b\xff\x00\x00\x01",
                           8));
  // Single bytes cover [-64, 64): 0x80 ^ value.
  EXPECT_EQ(Signed(0), "\x80");
  EXPECT_EQ(Signed(-1), "\x7f");
  EXPECT_EQ(Signed(63), "\xbf");
  EXPECT_EQ(Signed(-64), "\x40");
  EXPECT_EQ(Signed(64), "\xc0\x40");
  // The two examples in TF's ordered_code.cc.
  EXPECT_EQ(Signed(0x424242), "\xf0\x42\x42\x42");
  EXPECT_EQ(Signed(-0x800), std::string("\x38\x00", 2));
  EXPECT_EQ(Signed(INT64_MAX).size(), 10u);
  EXPECT_EQ(Signed(INT64_MIN).size(), 10u);
  // Order is preserved: that is what the encoding is for.
  const std::vector<int64_t> values = {INT64_MIN, -1000000, -8193, -8192,   -65,
                                       -64,       -1,       0,     1,       63,
                                       64,        8191,     8192,  1 << 20, INT64_MAX};
  for (size_t i = 1; i < values.size(); ++i) {
    EXPECT_LT(Signed(values[i - 1]), Signed(values[i])) << values[i];
  }
}

TEST(SliceKeyTest, MatchesTheKeyOfARealTensorFlowFile) {
  // The V1 file keys its scalar "Variable" by the same encoding (rank 0).
  absl::StatusOr<std::vector<TableEntry>> t = ReadTable(
      ReadFileBytesForTest(TfTestdata("serving_bad_half_plus_two_v1/export")), "export");
  ASSERT_TRUE(t.ok()) << t.status();
  std::vector<std::string> keys;
  for (const TableEntry& e : *t) keys.push_back(e.key);
  EXPECT_THAT(keys, ::testing::Contains(EncodeTensorNameSlice("Variable", {})));
  EXPECT_THAT(keys, ::testing::Contains(EncodeTensorNameSlice("Variable_1", {})));
}

TEST(PartitionedTest, AddSliceThenReadTensorAssemblesTheWhole) {
  TempDir dir;
  absl::StatusOr<std::unique_ptr<BundleWriter>> w = BundleWriter::Create(dir.file("p"));
  ASSERT_TRUE(w.ok());
  // A 4x3 float tensor split along dimension 0 into rows [0,2), [2,3), [3,4).
  std::vector<float> all;
  for (int i = 0; i < 12; ++i) all.push_back(0.5f * i);
  const auto rows = [&](int from, int n) {
    return *TensorValue::FromBytes(
        TfDType::kFloat, {n, 3},
        Pack(std::vector<float>(all.begin() + 3 * from, all.begin() + 3 * (from + n))));
  };
  ASSERT_TRUE((*w)->AddSlice("emb", {4, 3}, {{2, 1}, {0, -1}}, rows(2, 1)).ok());
  ASSERT_TRUE((*w)->AddSlice("emb", {4, 3}, {{0, 2}, {0, -1}}, rows(0, 2)).ok());
  ASSERT_TRUE((*w)->AddSlice("emb", {4, 3}, {{3, 1}, {0, 3}}, rows(3, 1)).ok());
  EXPECT_EQ((*w)->AddSlice("emb", {4, 3}, {{3, 1}, {0, 3}}, rows(3, 1)).code(),
            absl::StatusCode::kInvalidArgument);  // the same slice twice
  EXPECT_EQ((*w)->AddSlice("emb", {4, 3}, {{3, 2}, {0, 3}}, rows(3, 1)).code(),
            absl::StatusCode::kInvalidArgument);  // outside the shape
  EXPECT_EQ((*w)->AddSlice("emb", {5, 3}, {{4, 1}, {0, 3}}, rows(3, 1)).code(),
            absl::StatusCode::kInvalidArgument);  // another full shape
  // Strings split along dimension 1.
  ASSERT_TRUE((*w)->AddSlice("words", {1, 3}, {{0, -1}, {0, 2}},
                             *TensorValue::FromStrings({1, 2}, {"a", "bb"}))
                  .ok());
  ASSERT_TRUE((*w)->AddSlice("words", {1, 3}, {{0, -1}, {2, 1}},
                             *TensorValue::FromStrings({1, 1}, {""}))
                  .ok());
  ASSERT_TRUE((*w)->Finish().ok());

  absl::StatusOr<std::unique_ptr<BundleReader>> r = BundleReader::Open(dir.file("p"));
  ASSERT_TRUE(r.ok()) << r.status();
  const BundleEntry* emb = (*r)->Find("emb");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->slices().size(), 3u);
  EXPECT_EQ(emb->shape(), (std::vector<int64_t>{4, 3}));
  absl::StatusOr<TensorValue> v = (*r)->ReadTensor("emb");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(Unpack<float>(v->bytes()), all);
  absl::StatusOr<TensorValue> words = (*r)->ReadTensor("words");
  ASSERT_TRUE(words.ok()) << words.status();
  EXPECT_THAT(words->strings(), ::testing::ElementsAre("a", "bb", ""));
  // Each slice is an entry of its own under its TF key.
  EXPECT_NE((*r)->Find(EncodeTensorNameSlice("emb", {{0, 2}, {0, -1}})), nullptr);
  EXPECT_EQ((*r)->entries().size(), 2u + 5u);
  EXPECT_TRUE((*r)->VerifyAll().ok());
  char buf[12];
  EXPECT_EQ((*r)->ReadBytes("emb", 0, absl::MakeSpan(buf, 12)).code(),
            absl::StatusCode::kUnimplemented);  // partial reads: read the slices
}

// A bundle whose partitioned entry "t" (shape {4}) lists `specs`, with the
// slices in `stored` present as entries.
std::string WritePartitioned(const TempDir& dir,
                             const std::vector<TensorSliceSpec>& specs,
                             const std::vector<TensorSliceSpec>& stored) {
  std::vector<TableEntry> table = {{"", SerializeBundleHeader({})}};
  BundleEntry::Fields full;
  full.key = "t";
  full.dtype = static_cast<int>(TfDType::kInt8);
  full.shape = {4};
  full.slices = specs;
  table.push_back({"t", BundleEntry::Create(full, 1, "t")->Serialize()});
  std::string data;
  for (const TensorSliceSpec& s : stored) {
    BundleEntry::Fields f;
    f.key = EncodeTensorNameSlice("t", s);
    f.dtype = full.dtype;
    f.shape = {s[0].length};
    f.offset = static_cast<int64_t>(data.size());
    const std::string bytes(s[0].length, 'x');
    f.size = static_cast<int64_t>(bytes.size());
    f.masked_crc32c = crc32c::Mask(crc32c::Value(bytes.data(), bytes.size()));
    data += bytes;
    table.push_back({f.key, BundleEntry::Create(f, 1, "t")->Serialize()});
  }
  std::sort(table.begin(), table.end(),
            [](const TableEntry& a, const TableEntry& b) { return a.key < b.key; });
  const std::string prefix = dir.file("t");
  WriteFileBytesForTest(prefix + ".index", *BuildTable(table));
  WriteFileBytesForTest(DataFilename(prefix, 0, 1), data);
  return prefix;
}

TEST(PartitionedTest, BadTilingsAreDataLoss) {
  const TensorSliceSpec a = {{0, 2}}, b = {{2, 2}}, c = {{1, 2}}, d = {{3, 1}};
  struct Case {
    std::vector<TensorSliceSpec> specs, stored;
    const char* why;
  };
  const Case cases[] = {
      {{a, b}, {a}, "missing"},
      {{a, c}, {a, c}, "overlap"},  // four elements, but overlapping (and a gap)
      {{a, c, d}, {a, c, d}, "hold"},
      {{a, d}, {a, d}, "hold 3"},
  };
  for (const Case& k : cases) {
    TempDir dir;
    const std::string prefix = WritePartitioned(dir, k.specs, k.stored);
    absl::StatusOr<std::unique_ptr<BundleReader>> r = BundleReader::Open(prefix);
    ASSERT_TRUE(r.ok()) << r.status();
    absl::Status s = (*r)->ReadTensor("t").status();
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << k.why << ": " << s;
  }
  TempDir dir;
  const std::string ok = WritePartitioned(dir, {a, b}, {a, b});
  absl::StatusOr<std::unique_ptr<BundleReader>> r = BundleReader::Open(ok);
  ASSERT_TRUE(r.ok());
  absl::StatusOr<TensorValue> v = (*r)->ReadTensor("t");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->bytes(), "xxxx");
}

}  // namespace
}  // namespace meshckpt::tf
