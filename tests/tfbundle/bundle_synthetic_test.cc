// BundleReader on hand-made bundles for what the shared TF files lack:
// big-endian data, DT_VARIANT / DT_RESOURCE / unknown dtypes, a partitioned
// entry without its slices, newer versions, hostile entry sizes.
#include <algorithm>
#include <cstring>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/tfbundle/bundle_entry.h"
#include "meshckpt/tfbundle/bundle_reader.h"
#include "meshckpt/tfbundle/crc32c.h"
#include "meshckpt/tfbundle/string_tensor.h"
#include "meshckpt/tfbundle/table.h"
#include "tests/tfbundle/tf_test_util.h"

namespace meshckpt::tf {
namespace {

using ::testing::HasSubstr;

// Writes `<prefix>.index` from a header and entries, and one data file.
void WriteRaw(const std::string& prefix, const BundleHeader& header,
              const std::vector<BundleEntry>& entries, const std::string& data) {
  std::vector<TableEntry> table = {{"", SerializeBundleHeader(header)}};
  for (const BundleEntry& e : entries) table.push_back({e.key(), e.Serialize()});
  std::sort(table.begin(), table.end(),
            [](const TableEntry& a, const TableEntry& b) { return a.key < b.key; });
  WriteFileBytesForTest(prefix + ".index", *BuildTable(table));
  WriteFileBytesForTest(DataFilename(prefix, 0, header.num_shards), data);
}

BundleEntry Entry(const std::string& key, TfDType dtype, std::vector<int64_t> shape,
                  int64_t offset, const std::string& bytes,
                  std::vector<TensorSliceSpec> slices = {}) {
  BundleEntry::Fields f;
  f.key = key;
  f.dtype = static_cast<int>(dtype);
  f.shape = std::move(shape);
  f.offset = offset;
  f.size = static_cast<int64_t>(bytes.size());
  f.masked_crc32c = crc32c::Mask(crc32c::Value(bytes.data(), bytes.size()));
  f.slices = std::move(slices);
  absl::StatusOr<BundleEntry> e = BundleEntry::Create(std::move(f), 1, "test");
  EXPECT_TRUE(e.ok()) << e.status();
  return *e;
}

TEST(BundleSyntheticTest, BigEndianBundleIsConvertedAfterItsCrcIsChecked) {
  TempDir dir;
  // int32 {1, 2, 3, 258} and complex64 {(1, 2)} as a big-endian machine writes them.
  const std::string ints("\0\0\0\x01\0\0\0\x02\0\0\0\x03\0\0\x01\x02", 16);
  const std::string cplx("\x3f\x80\0\0\x40\0\0\0", 8);
  // A string tensor's length checksum and entry CRC use big-endian lengths.
  const std::string word = "hi";
  char be_len[4] = {0, 0, 0, 2};
  const uint32_t len_crc = crc32c::Value(be_len, 4);
  const uint32_t masked = crc32c::Mask(len_crc);
  std::string strs = "\x02";
  for (int i = 3; i >= 0; --i) strs.push_back(static_cast<char>(masked >> (8 * i)));
  strs += word;
  uint32_t str_crc = crc32c::Extend(len_crc, strs.data() + 1, 4);
  str_crc = crc32c::Extend(str_crc, word.data(), word.size());
  BundleEntry::Fields sf;
  sf.key = "s";
  sf.dtype = static_cast<int>(TfDType::kString);
  sf.shape = {1};
  sf.offset = 24;
  sf.size = static_cast<int64_t>(strs.size());
  sf.masked_crc32c = crc32c::Mask(str_crc);
  BundleHeader h;
  h.big_endian = true;
  WriteRaw(dir.file("be"), h,
           {Entry("c", TfDType::kComplex64, {1}, 16, cplx),
            Entry("i", TfDType::kInt32, {4}, 0, ints),
            *BundleEntry::Create(sf, 1, "test")},
           ints + cplx + strs);
  auto r = BundleReader::Open(dir.file("be"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE((*r)->header().big_endian);
  absl::StatusOr<TensorValue> i = (*r)->ReadTensor("i");
  ASSERT_TRUE(i.ok()) << i.status();
  EXPECT_EQ(Unpack<int32_t>(i->bytes()), (std::vector<int32_t>{1, 2, 3, 258}));
  absl::StatusOr<TensorValue> c = (*r)->ReadTensor("c");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(Unpack<float>(c->bytes()), (std::vector<float>{1.0f, 2.0f}));
  absl::StatusOr<TensorValue> s = (*r)->ReadTensor("s");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(s->strings(), ::testing::ElementsAre("hi"));
  int32_t part[2];
  ASSERT_TRUE(
      (*r)->ReadBox("i", {2}, {2}, absl::MakeSpan(reinterpret_cast<char*>(part), 8)).ok());
  EXPECT_EQ(part[0], 3);
  EXPECT_EQ(part[1], 258);
}

TEST(BundleSyntheticTest,
     VariantResourceUnknownAreListedNotReadPartitionedNeedTheirSlices) {
  TempDir dir;
  BundleEntry::Fields unknown;
  unknown.key = "future";
  unknown.dtype = 29;
  unknown.shape = {4};
  unknown.size = 4;
  WriteRaw(dir.file("b"), {},
           {Entry("part", TfDType::kFloat, {4, 2}, 0, "",
                  {{{0, 2}, {0, -1}}, {{2, 2}, {0, -1}}}),
            Entry("res", TfDType::kResource, {}, 0, "xxxx"),
            Entry("var", TfDType::kVariant, {}, 0, "xxxx"),
            *BundleEntry::Create(unknown, 1, "t")},
           "xxxx");
  auto r = BundleReader::Open(dir.file("b"));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ((*r)->entries().size(), 4u);
  const BundleEntry* part = (*r)->Find("part");
  ASSERT_NE(part, nullptr);
  ASSERT_EQ(part->slices().size(), 2u);
  EXPECT_EQ(part->slices()[1][0], (SliceExtent{2, 2}));
  EXPECT_EQ(part->slices()[1][1], (SliceExtent{0, -1}));
  for (const char* key : {"res", "var", "future"}) {
    absl::Status s = (*r)->ReadTensor(key).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented) << key << ": " << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(key));
  }
  EXPECT_THAT(std::string((*r)->ReadTensor("var").status().message()),
              HasSubstr("DT_VARIANT"));
  // The partitioned entry's slices were never stored (partitioned_test
  // covers real ones): DataLoss, naming the missing slice.
  absl::Status part_status = (*r)->ReadTensor("part").status();
  EXPECT_EQ(part_status.code(), absl::StatusCode::kDataLoss) << part_status;
  EXPECT_THAT(std::string(part_status.message()), HasSubstr("missing"));
  EXPECT_EQ((*r)->VerifyAll().code(), absl::StatusCode::kDataLoss);
  WriteRaw(dir.file("c"), {},
           {Entry("res", TfDType::kResource, {}, 0, "xxxx"),
            Entry("var", TfDType::kVariant, {}, 0, "xxxx"),
            *BundleEntry::Create(unknown, 1, "t")},
           "xxxx");
  auto r2 = BundleReader::Open(dir.file("c"));
  ASSERT_TRUE(r2.ok()) << r2.status();
  std::vector<std::string> skipped;
  EXPECT_TRUE((*r2)->VerifyAll(&skipped).ok());
  EXPECT_THAT(skipped, ::testing::ElementsAre("future", "res", "var"));
}

TEST(BundleSyntheticTest, NewerOrForeignHeadersAreRefused) {
  TempDir dir;
  BundleHeader newer;
  newer.min_consumer = 2;
  WriteRaw(dir.file("n"), newer, {}, "");
  EXPECT_EQ(BundleReader::Open(dir.file("n")).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // A LevelDB table that is not a bundle: no header record.
  WriteFileBytesForTest(dir.file("t.index"), *BuildTable({{"a", "b"}}));
  absl::Status s = BundleReader::Open(dir.file("t")).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("header"));
  // Header with zero shards.
  WriteFileBytesForTest(dir.file("z.index"), *BuildTable({{"", ""}}));
  EXPECT_EQ(BundleReader::Open(dir.file("z")).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(BundleSyntheticTest, HostileEntriesAreRefusedBeforeAllocating) {
  const auto parse = [](BundleEntry::Fields f) {
    return BundleEntry::Create(std::move(f), 2, "idx").status().code();
  };
  BundleEntry::Fields f;
  f.key = "k";
  f.dtype = static_cast<int>(TfDType::kFloat);
  f.shape = {int64_t{1} << 40, int64_t{1} << 40};  // 2^80 elements
  EXPECT_EQ(parse(f), absl::StatusCode::kDataLoss);
  f.shape = {4};
  f.size = 15;  // not 4 * 4
  EXPECT_EQ(parse(f), absl::StatusCode::kDataLoss);
  f.size = 16;
  f.shard_id = 2;
  EXPECT_EQ(parse(f), absl::StatusCode::kDataLoss);
  f.shard_id = 0;
  f.offset = INT64_MAX - 4;
  EXPECT_EQ(parse(f), absl::StatusCode::kDataLoss);
  f.offset = 0;
  f.dtype = static_cast<int>(TfDType::kString);
  f.shape = {1000};
  f.size = 100;  // 1000 strings need at least 1004 bytes
  EXPECT_EQ(parse(f), absl::StatusCode::kDataLoss);
  f.dtype = static_cast<int>(TfDType::kFloat);
  f.shape = {4};
  f.size = 16;
  f.slices = {{{3, 2}}};  // past the end of dimension 0
  EXPECT_EQ(parse(f), absl::StatusCode::kDataLoss);

  // An entry claiming 1 TiB in a small data file: DataLoss, no allocation.
  TempDir dir;
  BundleEntry::Fields big;
  big.key = "big";
  big.dtype = static_cast<int>(TfDType::kInt8);
  big.shape = {int64_t{1} << 40};
  big.size = int64_t{1} << 40;
  WriteRaw(dir.file("b"), {}, {*BundleEntry::Create(big, 1, "t")}, "tiny");
  auto r = BundleReader::Open(dir.file("b"));
  ASSERT_TRUE(r.ok()) << r.status();
  absl::Status s = (*r)->ReadTensor("big").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("b.data-00000-of-00001"));
  EXPECT_EQ((*r)->VerifyEntry("big").code(), absl::StatusCode::kDataLoss);
}

TEST(StringTensorTest, DecoderRefusesInconsistentData) {
  const EncodedStrings e = EncodeStringTensor({"ab", "", "c"});
  std::vector<std::string> out;
  uint32_t crc = 0;
  ASSERT_TRUE(DecodeStringTensor(e.bytes, 3, false, "t", &out, &crc).ok());
  EXPECT_EQ(crc, e.crc32c);
  EXPECT_THAT(out, ::testing::ElementsAre("ab", "", "c"));
  EXPECT_EQ(DecodeStringTensor(e.bytes, 4, false, "t", &out, &crc).code(),
            absl::StatusCode::kDataLoss);  // wrong element count
  EXPECT_EQ(DecodeStringTensor(e.bytes + "x", 3, false, "t", &out, &crc).code(),
            absl::StatusCode::kDataLoss);  // trailing bytes
  EXPECT_EQ(DecodeStringTensor(e.bytes.substr(0, 5), 3, false, "t", &out, &crc).code(),
            absl::StatusCode::kDataLoss);  // truncated
  EXPECT_EQ(DecodeStringTensor(std::string("\xff\xff\xff\xff\x0f", 5) + "abcd", 1, false,
                               "t", &out, &crc)
                .code(),
            absl::StatusCode::kDataLoss);  // a 4 GiB length in 9 bytes
  EXPECT_EQ(DecodeStringTensor(e.bytes, int64_t{1} << 60, false, "t", &out, &crc).code(),
            absl::StatusCode::kDataLoss);  // no allocation for 2^60 lengths
}

}  // namespace
}  // namespace meshckpt::tf
