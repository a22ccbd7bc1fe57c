// BundleReader on the real TensorFlow checkpoints in ../shared: every known
// value, every CRC, both shards, strings, V1 refusal; partial reads; hostile
// files (FIFO, directory, missing data).
#include "meshckpt/tfbundle/bundle_reader.h"

#include <sys/stat.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/tfbundle/bundle_writer.h"
#include "tests/tfbundle/tf_test_util.h"

namespace meshckpt::tf {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<BundleReader> OpenOrDie(const std::string& prefix,
                                        BundleReaderOptions o = {}) {
  absl::StatusOr<std::unique_ptr<BundleReader>> r = BundleReader::Open(prefix, o);
  EXPECT_TRUE(r.ok()) << prefix << ": " << r.status();
  return r.ok() ? *std::move(r) : nullptr;
}

std::vector<std::string> Keys(const BundleReader& r) {
  std::vector<std::string> k;
  for (const BundleEntry& e : r.entries()) k.push_back(e.key());
  return k;
}

float ScalarFloat(const BundleReader& r, const std::string& key) {
  absl::StatusOr<TensorValue> v = r.ReadTensor(key);
  EXPECT_TRUE(v.ok()) << key << ": " << v.status();
  if (!v.ok()) return -1;
  EXPECT_EQ(v->dtype(), TfDType::kFloat);
  EXPECT_EQ(v->num_elements(), 1);
  return Unpack<float>(v->bytes())[0];
}

TEST(BundleReaderTest, ServingCounter) {
  auto r = OpenOrDie(TfTestdata("serving_counter/variables"));
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->header().num_shards, 1);
  EXPECT_FALSE(r->header().big_endian);
  EXPECT_EQ(r->header().producer, 1);
  EXPECT_THAT(Keys(*r), ::testing::ElementsAre("counter"));
  const BundleEntry* e = r->Find("counter");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->dtype(), TfDType::kFloat);
  EXPECT_TRUE(e->shape().empty());
  EXPECT_EQ(e->size(), 4);
  EXPECT_EQ(ScalarFloat(*r, "counter"), 0.0f);
  EXPECT_TRUE(r->VerifyAll().ok());
}

TEST(BundleReaderTest, HalfPlusTwoSnappyIndex) {
  auto r = OpenOrDie(TfTestdata("serving_half_plus_two_cpu/variables"));
  ASSERT_NE(r, nullptr);
  EXPECT_THAT(Keys(*r), ::testing::ElementsAre("a", "a2", "b", "c", "c2"));
  EXPECT_EQ(ScalarFloat(*r, "a"), 0.5f);
  EXPECT_EQ(ScalarFloat(*r, "a2"), 0.5f);
  EXPECT_EQ(ScalarFloat(*r, "b"), 2.0f);
  EXPECT_EQ(ScalarFloat(*r, "c"), 3.0f);
  EXPECT_EQ(ScalarFloat(*r, "c2"), 3.0f);
  EXPECT_TRUE(r->VerifyAll().ok());
}

TEST(BundleReaderTest, HalfPlusTwoTf2ObjectBasedKeys) {
  auto r = OpenOrDie(TfTestdata("serving_half_plus_two_tf2_cpu/variables"));
  ASSERT_NE(r, nullptr);
  EXPECT_THAT(Keys(*r), ::testing::ElementsAre("_CHECKPOINTABLE_OBJECT_GRAPH",
                                               "a/.ATTRIBUTES/VARIABLE_VALUE",
                                               "b/.ATTRIBUTES/VARIABLE_VALUE",
                                               "c/.ATTRIBUTES/VARIABLE_VALUE"));
  EXPECT_EQ(ScalarFloat(*r, "a/.ATTRIBUTES/VARIABLE_VALUE"), 0.5f);
  EXPECT_EQ(ScalarFloat(*r, "b/.ATTRIBUTES/VARIABLE_VALUE"), 2.0f);
  EXPECT_EQ(ScalarFloat(*r, "c/.ATTRIBUTES/VARIABLE_VALUE"), 3.0f);
  absl::StatusOr<TensorValue> g = r->ReadTensor(kObjectGraphKey);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->dtype(), TfDType::kString);
  EXPECT_TRUE(g->shape().empty());
  EXPECT_TRUE(r->VerifyAll().ok());
}

TEST(BundleReaderTest, ContribHalfPlusTwoV2) {
  auto r = OpenOrDie(TfTestdata("tf_contrib_half_plus_two_ckpt_v2/export"));
  ASSERT_NE(r, nullptr);
  EXPECT_THAT(Keys(*r), ::testing::ElementsAre("a", "b"));
  EXPECT_EQ(ScalarFloat(*r, "a"), 0.5f);
  EXPECT_EQ(ScalarFloat(*r, "b"), 2.0f);
}

TEST(BundleReaderTest, OldStringTensors) {
  auto r = OpenOrDie(TfTestdata("tf_old_string_tensors/foo"));
  ASSERT_NE(r, nullptr);
  EXPECT_THAT(Keys(*r),
              ::testing::ElementsAre("floats", "scalar", "string_tensor", "strs"));
  absl::StatusOr<TensorValue> floats = r->ReadTensor("floats");
  ASSERT_TRUE(floats.ok()) << floats.status();
  EXPECT_EQ(floats->shape(), (std::vector<int64_t>{2, 3}));
  for (float f : Unpack<float>(floats->bytes())) EXPECT_FLOAT_EQ(f, 16.18f);
  absl::StatusOr<TensorValue> scalar = r->ReadTensor("scalar");
  ASSERT_TRUE(scalar.ok()) << scalar.status();
  EXPECT_EQ(scalar->shape(), (std::vector<int64_t>{1}));
  EXPECT_THAT(scalar->strings(), ::testing::ElementsAre("hello"));
  absl::StatusOr<TensorValue> empty = r->ReadTensor("string_tensor");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->shape(), (std::vector<int64_t>{1}));
  EXPECT_THAT(empty->strings(), ::testing::ElementsAre(""));
  absl::StatusOr<TensorValue> strs = r->ReadTensor("strs");
  ASSERT_TRUE(strs.ok()) << strs.status();
  EXPECT_EQ(strs->shape(), (std::vector<int64_t>{4}));
  EXPECT_THAT(strs->strings(),
              ::testing::ElementsAre("hello", "", "x01", std::string(1024, 'c')));
  EXPECT_TRUE(r->VerifyAll().ok());
}

TEST(BundleReaderTest, TwoDataShards) {
  auto r = OpenOrDie(TfTestdata("tf_tftrt2_2shards/variables"));
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->header().num_shards, 2);
  std::set<int> shards;
  for (const BundleEntry& e : r->entries()) {
    shards.insert(e.shard_id());
    absl::StatusOr<TensorValue> v = r->ReadTensor(e.key());
    EXPECT_TRUE(v.ok()) << e.key() << ": " << v.status();
  }
  EXPECT_EQ(shards, (std::set<int>{0, 1}));  // both data files were read
  EXPECT_TRUE(r->VerifyAll().ok());
}

TEST(BundleReaderTest, RefusesV1Checkpoint) {
  const std::string prefix = TfTestdata("serving_bad_half_plus_two_v1/export");
  absl::Status s = BundleReader::Open(prefix).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("V1 (TensorSlice)"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("Variable"));
  // Naming the state file or a missing prefix is not a V1 checkpoint.
  EXPECT_EQ(BundleReader::Open(TfTestdata("serving_bad_half_plus_two_v1/checkpoint"))
                .status()
                .code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(BundleReader::Open(TfTestdata("nothing/here")).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(BundleReaderTest, AcceptsTheIndexPathAsPrefix) {
  auto r = OpenOrDie(TfTestdata("serving_counter/variables.index"));
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->entries().size(), 1u);
}

TEST(BundleReaderTest, LookupErrors) {
  auto r = OpenOrDie(TfTestdata("tf_old_string_tensors/foo"));
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->ReadTensor("nope").status().code(), absl::StatusCode::kNotFound);
  char buf[4];
  EXPECT_EQ(r->ReadBytes("strs", 0, absl::MakeSpan(buf, 1)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r->ReadBytes("floats", 2, absl::MakeSpan(buf, 4)).code(),
            absl::StatusCode::kInvalidArgument);  // not element-aligned
  EXPECT_EQ(r->ReadBytes("floats", 24, absl::MakeSpan(buf, 4)).code(),
            absl::StatusCode::kInvalidArgument);  // past the end
}

// A 3-D int32 tensor whose element at (i, j, k) is 100*i + 10*j + k.
class BoxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<int32_t> v;
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 5; ++j)
        for (int k = 0; k < 6; ++k) v.push_back(100 * i + 10 * j + k);
    prefix_ = dir_.file("box");
    ASSERT_TRUE(WriteBundle(prefix_, {{"t", *TensorValue::FromBytes(TfDType::kInt32,
                                                                    {4, 5, 6}, Pack(v))}})
                    .ok());
  }
  TempDir dir_;
  std::string prefix_;
};

TEST_F(BoxTest, SubBoxesMatchTheWholeTensor) {
  for (bool verify : {false, true}) {
    BundleReaderOptions o;
    o.verify_partial_reads = verify;
    auto r = OpenOrDie(prefix_, o);
    ASSERT_NE(r, nullptr);
    const std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> boxes = {
        {{0, 0, 0}, {4, 5, 6}}, {{1, 0, 0}, {2, 5, 6}}, {{1, 2, 0}, {2, 2, 6}},
        {{3, 4, 5}, {1, 1, 1}}, {{0, 1, 2}, {4, 3, 3}}, {{2, 0, 3}, {0, 5, 2}}};
    for (const auto& [origin, size] : boxes) {
      std::vector<int32_t> got(size[0] * size[1] * size[2]);
      absl::Status s =
          r->ReadBox("t", origin, size,
                     absl::MakeSpan(reinterpret_cast<char*>(got.data()), got.size() * 4));
      ASSERT_TRUE(s.ok()) << s;
      size_t n = 0;
      for (int i = 0; i < size[0]; ++i)
        for (int j = 0; j < size[1]; ++j)
          for (int k = 0; k < size[2]; ++k)
            EXPECT_EQ(got[n++],
                      100 * (origin[0] + i) + 10 * (origin[1] + j) + origin[2] + k);
    }
    int32_t one[3];
    ASSERT_TRUE(
        r->ReadBytes("t", 4 * 31, absl::MakeSpan(reinterpret_cast<char*>(one), 12)).ok());
    EXPECT_EQ(one[0], 101);
    EXPECT_EQ(one[2], 103);
    char small[4];
    EXPECT_EQ(r->ReadBox("t", {0, 0, 5}, {1, 1, 2}, absl::MakeSpan(small, 4)).code(),
              absl::StatusCode::kInvalidArgument);  // outside the shape
    EXPECT_EQ(r->ReadBox("t", {0, 0}, {1, 1}, absl::MakeSpan(small, 4)).code(),
              absl::StatusCode::kInvalidArgument);  // wrong rank
  }
}

TEST_F(BoxTest, PartialReadsVerifyOnlyWhenAsked) {
  // Damage the last element: a box away from it still reads without the
  // option and is DataLoss with it.
  std::string data = ReadFileBytesForTest(DataFilename(prefix_, 0, 1));
  data[data.size() - 1] ^= 1;
  WriteFileBytesForTest(DataFilename(prefix_, 0, 1), data);
  int32_t v[6];
  auto span = absl::MakeSpan(reinterpret_cast<char*>(v), sizeof(v));
  auto loose = OpenOrDie(prefix_);
  EXPECT_TRUE(loose->ReadBox("t", {0, 0, 0}, {1, 1, 6}, span).ok());
  EXPECT_EQ(loose->ReadTensor("t").status().code(), absl::StatusCode::kDataLoss);
  BundleReaderOptions o;
  o.verify_partial_reads = true;
  auto strict = OpenOrDie(prefix_, o);
  absl::Status s = strict->ReadBox("t", {0, 0, 0}, {1, 1, 6}, span);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(s.message()), HasSubstr("'t'"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("box.data-00000-of-00001"));
}

TEST(BundleReaderTest, LargeBoxesAcrossManyReadWindows) {
  // 3000 x 300 int32 (3.6 MB): column blocks span several 1 MiB windows,
  // wide row blocks exceed one.
  TempDir dir;
  std::vector<int32_t> v(3000 * 300);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int32_t>(i);
  ASSERT_TRUE(
      WriteBundle(dir.file("big"),
                  {{"m", *TensorValue::FromBytes(TfDType::kInt32, {3000, 300}, Pack(v))}})
          .ok());
  auto r = OpenOrDie(dir.file("big"));
  ASSERT_NE(r, nullptr);
  const std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> boxes = {
      {{0, 100}, {3000, 100}},
      {{7, 0}, {2000, 300}},
      {{0, 299}, {3000, 1}},
      {{1500, 20}, {1, 260}}};
  for (const auto& [origin, size] : boxes) {
    std::vector<int32_t> got(size[0] * size[1]);
    ASSERT_TRUE(
        r->ReadBox("m", origin, size,
                   absl::MakeSpan(reinterpret_cast<char*>(got.data()), got.size() * 4))
            .ok());
    for (int64_t i = 0; i < size[0]; ++i) {
      for (int64_t j = 0; j < size[1]; ++j) {
        ASSERT_EQ(got[i * size[1] + j], (origin[0] + i) * 300 + origin[1] + j)
            << i << "," << j;
      }
    }
  }
}

TEST(BundleReaderHostileTest, RefusesFifoDirectoryAndMissingData) {
  TempDir dir;
  ASSERT_EQ(::mkfifo(dir.file("fifo.index").c_str(), 0600), 0);
  absl::Status s = BundleReader::Open(dir.file("fifo")).status();  // must not hang
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("not a regular file"));
  ASSERT_EQ(::mkdir(dir.file("d.index").c_str(), 0700), 0);
  EXPECT_EQ(BundleReader::Open(dir.file("d")).status().code(),
            absl::StatusCode::kInvalidArgument);

  CopyFolder(TfTestdata("tf_tftrt2_2shards"), dir.path());
  std::filesystem::remove(dir.file("variables.data-00001-of-00002"));
  auto r = OpenOrDie(dir.file("variables"));
  ASSERT_NE(r, nullptr);
  absl::Status v = r->VerifyAll();
  EXPECT_EQ(v.code(), absl::StatusCode::kDataLoss) << v;
  EXPECT_THAT(std::string(v.message()), HasSubstr("variables.data-00001-of-00002"));
  ASSERT_EQ(::mkfifo(dir.file("variables.data-00001-of-00002").c_str(), 0600), 0);
  EXPECT_EQ(r->VerifyAll().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace meshckpt::tf
