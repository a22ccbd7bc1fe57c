// BundleWriter: every dtype round trips; every shared TF checkpoint read,
// written back and read again is bit-exact; the output is a TF-format table.
#include "meshckpt/tfbundle/bundle_writer.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/tfbundle/bundle_reader.h"
#include "meshckpt/tfbundle/table.h"
#include "tests/tfbundle/tf_test_util.h"

namespace meshckpt::tf {
namespace {

std::vector<std::pair<std::string, TensorValue>> EveryDType() {
  std::vector<std::pair<std::string, TensorValue>> t;
  int seed = 1;
  for (TfDType d :
       {TfDType::kFloat,      TfDType::kDouble, TfDType::kInt32,     TfDType::kUint8,
        TfDType::kInt16,      TfDType::kInt8,   TfDType::kComplex64, TfDType::kInt64,
        TfDType::kBool,       TfDType::kQint8,  TfDType::kQuint8,    TfDType::kQint32,
        TfDType::kBfloat16,   TfDType::kQint16, TfDType::kQuint16,   TfDType::kUint16,
        TfDType::kComplex128, TfDType::kHalf,   TfDType::kUint32,    TfDType::kUint64}) {
    const std::vector<int64_t> shape = {3, 2};
    std::string bytes(6 * TfDTypeSize(d), '\0');
    for (char& c : bytes) c = static_cast<char>(seed++ * 37);
    if (d == TfDType::kBool) {
      for (char& c : bytes) c = c & 1;
    }
    t.emplace_back("v/" + TfDTypeName(d), *TensorValue::FromBytes(d, shape, bytes));
  }
  t.emplace_back("scalar",
                 *TensorValue::FromBytes(TfDType::kFloat, {}, Pack<float>({1.5f})));
  t.emplace_back("empty", *TensorValue::FromBytes(TfDType::kFloat, {0, 7}, ""));
  t.emplace_back("strings",
                 *TensorValue::FromStrings(
                     {2, 2}, {"a", "", std::string(300, 'z'), std::string("\0\xff", 2)}));
  t.emplace_back("no_strings", *TensorValue::FromStrings({0}, {}));
  return t;
}

void ExpectSameBundles(const BundleReader& a, const BundleReader& b) {
  ASSERT_EQ(a.entries().size(), b.entries().size());
  for (size_t i = 0; i < a.entries().size(); ++i) {
    const BundleEntry& ea = a.entries()[i];
    const BundleEntry& eb = b.entries()[i];
    EXPECT_EQ(ea.key(), eb.key());
    EXPECT_EQ(ea.dtype_value(), eb.dtype_value());
    EXPECT_EQ(ea.shape(), eb.shape());
    absl::StatusOr<TensorValue> va = a.ReadTensor(ea.key());
    absl::StatusOr<TensorValue> vb = b.ReadTensor(eb.key());
    ASSERT_TRUE(va.ok()) << va.status();
    ASSERT_TRUE(vb.ok()) << vb.status();
    EXPECT_TRUE(*va == *vb) << ea.key();
  }
}

TEST(BundleWriterTest, EveryDTypeRoundTrips) {
  for (bool compress : {false, true}) {
    TempDir dir;
    const auto tensors = EveryDType();
    BundleWriterOptions o;
    o.compress_index = compress;
    o.index_block_size = 128;  // several index blocks
    ASSERT_TRUE(WriteBundle(dir.file("ckpt"), tensors, o).ok());
    absl::StatusOr<std::unique_ptr<BundleReader>> r =
        BundleReader::Open(dir.file("ckpt"));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ((*r)->header().num_shards, 1);
    EXPECT_FALSE((*r)->header().big_endian);
    EXPECT_EQ((*r)->entries().size(), tensors.size());
    for (const auto& [key, value] : tensors) {
      absl::StatusOr<TensorValue> v = (*r)->ReadTensor(key);
      ASSERT_TRUE(v.ok()) << key << ": " << v.status();
      EXPECT_TRUE(*v == value) << key;
    }
    // Nothing but the two files: the temporaries are gone.
    std::vector<std::string> files;
    for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
      files.push_back(e.path().filename().string());
    }
    EXPECT_THAT(
        files, ::testing::UnorderedElementsAre("ckpt.index", "ckpt.data-00000-of-00001"));
  }
}

TEST(BundleWriterTest, IndexIsSortedWithHeaderFirstAsTensorFlowWritesIt) {
  TempDir dir;
  ASSERT_TRUE(WriteBundle(dir.file("c"),
                          {{"b", *TensorValue::FromBytes(TfDType::kInt8, {1}, "x")},
                           {"a/b", *TensorValue::FromBytes(TfDType::kInt8, {1}, "y")},
                           {"a", *TensorValue::FromBytes(TfDType::kInt8, {1}, "z")}})
                  .ok());
  absl::StatusOr<std::vector<TableEntry>> t =
      ReadTable(ReadFileBytesForTest(dir.file("c.index")), "c.index");
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_EQ(t->size(), 4u);
  EXPECT_EQ((*t)[0].key, "");
  // num_shards 1, version { producer 1 }: byte for byte what TF writes.
  EXPECT_EQ((*t)[0].value, std::string("\x08\x01\x1a\x02\x08\x01", 6));
  EXPECT_EQ((*t)[1].key, "a");
  EXPECT_EQ((*t)[2].key, "a/b");
  EXPECT_EQ((*t)[3].key, "b");
}

TEST(BundleWriterTest, RefusesBadAdds) {
  TempDir dir;
  absl::StatusOr<std::unique_ptr<BundleWriter>> w = BundleWriter::Create(dir.file("c"));
  ASSERT_TRUE(w.ok());
  const TensorValue v = *TensorValue::FromBytes(TfDType::kInt8, {1}, "x");
  EXPECT_EQ((*w)->Add("", v).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE((*w)->Add("k", v).ok());
  EXPECT_EQ((*w)->Add("k", v).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TensorValue::FromBytes(TfDType::kVariant, {1}, "x").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TensorValue::FromBytes(TfDType::kFloat, {2}, "x").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TensorValue::FromStrings({2}, {"x"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TensorValue::FromBytes(TfDType::kInt8, {-1}, "").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(BundleWriterTest, AbandonedWriterLeavesNothing) {
  TempDir dir;
  {
    absl::StatusOr<std::unique_ptr<BundleWriter>> w = BundleWriter::Create(dir.file("c"));
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Add("k", *TensorValue::FromBytes(TfDType::kInt8, {1}, "x")).ok());
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

// A tensor streamed in uneven pieces is the same entry (bytes, offset, CRC)
// as the same tensor added whole, and TF's checks (VerifyAll) pass on it.
TEST(BundleWriterTest, StreamedEntryIsTheSameAsAddedWhole) {
  TempDir dir;
  std::string bytes(4 * 1000, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 131 + 7);
  const TensorValue big = *TensorValue::FromBytes(TfDType::kFloat, {10, 100}, bytes);
  const TensorValue small = *TensorValue::FromBytes(TfDType::kInt8, {2}, "xy");
  ASSERT_TRUE(WriteBundle(dir.file("whole"), {{"a", small}, {"b", big}}).ok());

  absl::StatusOr<std::unique_ptr<BundleWriter>> w = BundleWriter::Create(dir.file("s"));
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Add("a", small).ok());
  ASSERT_TRUE((*w)->BeginEntry("b", TfDType::kFloat, {10, 100}).ok());
  size_t at = 0;
  for (size_t piece : {size_t{0}, size_t{1}, size_t{7}, size_t{1000}, size_t{2992}}) {
    ASSERT_TRUE((*w)->AppendBytes(absl::string_view(bytes).substr(at, piece)).ok());
    at += piece;
  }
  ASSERT_EQ(at, bytes.size());
  ASSERT_TRUE((*w)->EndEntry().ok());
  ASSERT_TRUE((*w)->BeginEntry("c", TfDType::kDouble, {0, 3}).ok());  // no bytes
  ASSERT_TRUE((*w)->EndEntry().ok());
  ASSERT_TRUE((*w)->Finish().ok());

  absl::StatusOr<std::unique_ptr<BundleReader>> whole =
      BundleReader::Open(dir.file("whole"));
  absl::StatusOr<std::unique_ptr<BundleReader>> streamed =
      BundleReader::Open(dir.file("s"));
  ASSERT_TRUE(whole.ok() && streamed.ok());
  EXPECT_TRUE((*streamed)->VerifyAll().ok());
  for (const char* key : {"a", "b"}) {
    const BundleEntry* x = (*whole)->Find(key);
    const BundleEntry* y = (*streamed)->Find(key);
    ASSERT_TRUE(x != nullptr && y != nullptr);
    EXPECT_EQ(x->offset(), y->offset());
    EXPECT_EQ(x->size(), y->size());
    EXPECT_EQ(x->masked_crc32c(), y->masked_crc32c()) << key;
  }
  EXPECT_TRUE(*(*streamed)->ReadTensor("b") == big);
  const BundleEntry* c = (*streamed)->Find("c");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->shape(), (std::vector<int64_t>{0, 3}));
  EXPECT_EQ(c->size(), 0);
  EXPECT_EQ(ReadFileBytesForTest(dir.file("s.data-00000-of-00001")),
            ReadFileBytesForTest(dir.file("whole.data-00000-of-00001")));
}

TEST(BundleWriterTest, StreamingMisuseIsRefused) {
  TempDir dir;
  {
    absl::StatusOr<std::unique_ptr<BundleWriter>> w = BundleWriter::Create(dir.file("c"));
    ASSERT_TRUE(w.ok());
    EXPECT_EQ((*w)->AppendBytes("x").code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ((*w)->EndEntry().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ((*w)->BeginEntry("s", TfDType::kString, {1}).code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ((*w)->BeginEntry("", TfDType::kFloat, {1}).code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ((*w)->BeginEntry("r", TfDType::kResource, {1}).code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ((*w)->BeginEntry("n", TfDType::kFloat, {-2}).code(),
              absl::StatusCode::kInvalidArgument);
    ASSERT_TRUE((*w)->BeginEntry("k", TfDType::kInt16, {2}).ok());
    // One entry at a time, and none left open at Finish.
    EXPECT_EQ((*w)->BeginEntry("l", TfDType::kInt16, {2}).code(),
              absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ((*w)->Add("l", *TensorValue::FromBytes(TfDType::kInt8, {1}, "x")).code(),
              absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ((*w)->Finish().code(), absl::StatusCode::kFailedPrecondition);
    ASSERT_TRUE((*w)->AppendBytes("abcd").ok());
    ASSERT_TRUE((*w)->EndEntry().ok());
    EXPECT_EQ((*w)->BeginEntry("k", TfDType::kInt16, {2}).code(),
              absl::StatusCode::kInvalidArgument);  // already added
    ASSERT_TRUE((*w)->Finish().ok());
  }
  // Too many bytes, or too few: the writer is failed and commits nothing.
  for (int too_many : {1, 0}) {
    const std::string prefix = dir.file(absl::StrCat("bad", too_many));
    absl::StatusOr<std::unique_ptr<BundleWriter>> w = BundleWriter::Create(prefix);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->BeginEntry("k", TfDType::kInt16, {2}).ok());
    ASSERT_TRUE((*w)->AppendBytes("abc").ok());
    if (too_many) {
      EXPECT_EQ((*w)->AppendBytes("de").code(), absl::StatusCode::kInvalidArgument);
    } else {
      EXPECT_EQ((*w)->EndEntry().code(), absl::StatusCode::kInvalidArgument);
    }
    EXPECT_EQ((*w)->Add("z", *TensorValue::FromBytes(TfDType::kInt8, {1}, "x")).code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_FALSE((*w)->Finish().ok());
    EXPECT_FALSE(std::filesystem::exists(prefix + ".index"));
  }
}

// Read each shared TF checkpoint, write it back with our writer, read again:
// every key and value bit-exact (the 2-shard bundle comes back as 1 shard).
TEST(BundleWriterTest, SharedCheckpointsRoundTripBitExact) {
  for (const char* prefix :
       {"serving_counter/variables", "serving_half_plus_two_cpu/variables",
        "serving_half_plus_two_tf2_cpu/variables",
        "tf_contrib_half_plus_two_ckpt_v2/export", "tf_old_string_tensors/foo",
        "tf_tftrt2_2shards/variables"}) {
    SCOPED_TRACE(prefix);
    absl::StatusOr<std::unique_ptr<BundleReader>> original =
        BundleReader::Open(TfTestdata(prefix));
    ASSERT_TRUE(original.ok()) << original.status();
    TempDir dir;
    std::vector<std::pair<std::string, TensorValue>> tensors;
    for (const BundleEntry& e : (*original)->entries()) {
      absl::StatusOr<TensorValue> v = (*original)->ReadTensor(e.key());
      ASSERT_TRUE(v.ok()) << v.status();
      tensors.emplace_back(e.key(), *std::move(v));
    }
    ASSERT_TRUE(WriteBundle(dir.file("copy"), tensors).ok());
    absl::StatusOr<std::unique_ptr<BundleReader>> copy =
        BundleReader::Open(dir.file("copy"));
    ASSERT_TRUE(copy.ok()) << copy.status();
    ExpectSameBundles(**original, **copy);
    // Same bytes and CRCs per entry: TF would accept our checksums.
    for (const BundleEntry& e : (*copy)->entries()) {
      const BundleEntry* o = (*original)->Find(e.key());
      ASSERT_NE(o, nullptr);
      EXPECT_EQ(e.size(), o->size()) << e.key();
      EXPECT_EQ(e.masked_crc32c(), o->masked_crc32c()) << e.key();
    }
  }
}

TEST(BundleWriterTest, SingleShardFilesMatchTensorFlowByteForByte) {
  // Entries in key order in one shard, no padding: TF's own files. (TF lays
  // data out in the order tensors were added, so only bundles whose keys
  // were added sorted can match: not tf_old_string_tensors.)
  for (const char* prefix :
       {"serving_counter/variables", "tf_contrib_half_plus_two_ckpt_v2/export"}) {
    absl::StatusOr<std::unique_ptr<BundleReader>> original =
        BundleReader::Open(TfTestdata(prefix));
    ASSERT_TRUE(original.ok());
    TempDir dir;
    std::vector<std::pair<std::string, TensorValue>> tensors;
    for (const BundleEntry& e : (*original)->entries()) {
      tensors.emplace_back(e.key(), *(*original)->ReadTensor(e.key()));
    }
    ASSERT_TRUE(WriteBundle(dir.file("copy"), tensors).ok());
    EXPECT_EQ(
        ReadFileBytesForTest(dir.file("copy.data-00000-of-00001")),
        ReadFileBytesForTest(TfTestdata(std::string(prefix) + ".data-00000-of-00001")));
    // These indexes are uncompressed, as TF writes them today: LevelDB's
    // TableBuilder reproduces TF's table builder exactly.
    EXPECT_EQ(ReadFileBytesForTest(dir.file("copy.index")),
              ReadFileBytesForTest(TfTestdata(std::string(prefix) + ".index")));
  }
}

}  // namespace
}  // namespace meshckpt::tf
