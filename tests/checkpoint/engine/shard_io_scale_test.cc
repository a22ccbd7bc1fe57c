// SaveTensors / RestoreTensors, DVariable and CheckpointReader on meshes of
// 2^24 devices over tiny tensors, in one process: the results are checked
// bit-exactly and the memory they take must follow the shards (a handful),
// not the devices. Time is never asserted.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "meshckpt/checkpoint/engine/checkpoint_index.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/checkpoint/object/dvariable.h"
#include "meshckpt/checkpoint/reader/checkpoint_reader.h"
#include "meshckpt/io/format/index_file.h"
#include "meshckpt/io/fs/fs.h"
#include "meshckpt/layout/shard_map.h"
#include "tests/peak_rss.h"

namespace meshckpt {
namespace {

// Peak memory a plan + save + reshard + restore of tiny tensors on 2^24
// devices may add. Before shard buffers and ranges it was gigabytes.
constexpr double kMaxGrowthMiB = 32;

std::string TempPrefix(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/meshckpt_scale_" + name + "_" + RandomId();
}

// Global values of an int32 tensor: element g is 7 * g - 100.
int32_t Value(int64_t g) { return static_cast<int32_t>(7 * g - 100); }

// One buffer per local shard (ShardMap::LocalShards), filled with Value.
std::vector<std::vector<int32_t>> ShardBuffers(const ShardMap& map) {
  std::vector<std::vector<int32_t>> out;
  const std::vector<int64_t>& shape = map.global_shape();
  for (int64_t s : map.LocalShards()) {
    const Box box = map.ShardBox(s);
    std::vector<int32_t>& buf = out.emplace_back();
    std::vector<int64_t> idx(box.rank(), 0);
    for (int64_t i = 0; i < box.num_elements(); ++i) {
      int64_t rem = i, g = 0;
      for (int k = box.rank() - 1; k >= 0; --k) {
        idx[k] = rem % box.shape()[k];
        rem /= box.shape()[k];
      }
      for (int k = 0; k < box.rank(); ++k) g = g * shape[k] + box.origin()[k] + idx[k];
      buf.push_back(Value(g));
    }
  }
  return out;
}

template <typename Ptr, typename T>
std::vector<Ptr> Pointers(std::vector<std::vector<T>>& buffers) {
  std::vector<Ptr> out;
  for (auto& b : buffers) out.push_back(b.data());
  return out;
}

class ShardIoScale : public ::testing::Test {
 protected:
  void TearDown() override {
    for (const std::string& p : prefixes_) {
      (void)RemoveFileIfExists(DataFilePath(p));
      (void)RemoveFileIfExists(IndexFilePath(p));
    }
  }
  std::string Prefix(const std::string& name) {
    prefixes_.push_back(TempPrefix(name));
    return prefixes_.back();
  }

  std::unique_ptr<Communicator> comm_ = SerialCommunicator();
  std::vector<std::string> prefixes_;
};

// Save on x=2^24 (a vector split 2^24 ways: 8 non-empty shards; a matrix
// and a string vector replicated), reshard-restore onto x=4096,y=4096 with
// the matrix split both ways, then onto a small mesh; every value exact.
TEST_F(ShardIoScale, SaveAndReshardOnSixteenMillionDevices) {
  PeakRssGrowth growth;
  const Mesh big = Mesh::Create({{"x", Mesh::kMaxDevices}}, 0, 1).value();
  ShardMap vec = ShardMap::Create(Layout::Create({"x"}, big).value(), {8}).value();
  ShardMap mat = ShardMap::Create(Layout::Replicated(big, 2), {3, 5}).value();
  auto vec_data = ShardBuffers(vec);
  auto mat_data = ShardBuffers(mat);
  ASSERT_EQ(vec_data.size(), 8u);
  ASSERT_EQ(mat_data.size(), 1u);
  std::vector<std::vector<std::string>> words = {{"a"}, {"bb"}, {""}};
  ShardMap str = ShardMap::Create(Layout::Create({"x"}, big).value(), {3}).value();
  const std::string prefix = Prefix("save");
  CheckpointContents opts;
  opts.step = 9;
  ASSERT_TRUE(SaveTensors(*comm_, prefix,
                          {{"vec",
                            "",
                            DType::kInt32,
                            {8},
                            vec.layout(),
                            {},
                            Pointers<const void*>(vec_data)},
                           {"mat",
                            "",
                            DType::kInt32,
                            {3, 5},
                            mat.layout(),
                            {},
                            Pointers<const void*>(mat_data)},
                           {"str",
                            "",
                            DType::kString,
                            {3},
                            str.layout(),
                            {},
                            Pointers<const void*>(words)}},
                          opts, {})
                  .ok());

  // The index records the big mesh compactly and asks for a format-2 reader.
  absl::StatusOr<CheckpointIndex> index = CheckpointIndex::Read(*comm_, prefix);
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_EQ(index->mesh(), big);
  EXPECT_EQ(index->record().version.min_consumer, kCompactMeshVersion);
  EXPECT_EQ(index->Find("vec")->chunks.size(), 8u);

  const Mesh grid = Mesh::Create({{"x", 4096}, {"y", 4096}}, 0, 1).value();
  ShardMap vec2 = ShardMap::Create(Layout::Create({"y"}, grid).value(), {8}).value();
  ShardMap mat2 =
      ShardMap::Create(Layout::Create({"x", "y"}, grid).value(), {3, 5}).value();
  ShardMap str2 = ShardMap::Create(Layout::Replicated(grid, 1), {3}).value();
  std::vector<std::vector<int32_t>> vec_out(vec2.LocalShards().size());
  std::vector<std::vector<int32_t>> mat_out(mat2.LocalShards().size());
  std::vector<std::vector<std::string>> str_out(1, std::vector<std::string>(3));
  for (size_t i = 0; i < vec_out.size(); ++i) vec_out[i].resize(1);
  for (size_t i = 0; i < mat_out.size(); ++i) mat_out[i].resize(1);
  ASSERT_EQ(mat_out.size(), 15u);
  absl::Status s = RestoreTensors(
      *comm_, prefix,
      {{"vec", DType::kInt32, {8}, vec2.layout(), {}, Pointers<void*>(vec_out)},
       {"mat", DType::kInt32, {3, 5}, mat2.layout(), {}, Pointers<void*>(mat_out)},
       {"str", DType::kString, {3}, str2.layout(), {}, Pointers<void*>(str_out)}},
      IoOptions());
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(vec_out, ShardBuffers(vec2));
  EXPECT_EQ(mat_out, ShardBuffers(mat2));
  EXPECT_EQ(str_out[0], (std::vector<std::string>{"a", "bb", ""}));

  // Per-device buffers still work where devices are few.
  const Mesh small = Mesh::Create({{"x", 2}}, 0, 1).value();
  Layout rows = Layout::Create({"x", "unsharded"}, small).value();
  std::vector<int32_t> top(10), bottom(5);
  s = RestoreTensors(*comm_, prefix,
                     {{"mat", DType::kInt32, {3, 5}, rows, {top.data(), bottom.data()}}},
                     IoOptions());
  ASSERT_TRUE(s.ok()) << s;
  for (int64_t g = 0; g < 10; ++g) EXPECT_EQ(top[g], Value(g));
  for (int64_t g = 0; g < 5; ++g) EXPECT_EQ(bottom[g], Value(10 + g));

  // CheckpointReader (inspect, diff) reads the whole tensor back.
  auto reader = CheckpointReader::Open(prefix);
  ASSERT_TRUE(reader.ok()) << reader.status();
  absl::StatusOr<TensorData> whole = (*reader)->ReadTensor("vec");
  ASSERT_TRUE(whole.ok()) << whole.status();
  for (int64_t g = 0; g < 8; ++g) {
    int32_t v;
    std::memcpy(&v, whole->bytes.data() + g * 4, 4);
    EXPECT_EQ(v, Value(g));
  }
  EXPECT_LT(growth.MiB(), kMaxGrowthMiB);
}

TEST_F(ShardIoScale, BufferFormsAreChecked) {
  const Mesh big = Mesh::Create({{"x", Mesh::kMaxDevices}}, 0, 1).value();
  Layout split = Layout::Create({"x"}, big).value();
  std::vector<int32_t> one(1);
  const std::string prefix = Prefix("bad");
  // Too few shard buffers, a null one, and both forms at once.
  for (const SaveTensor& t :
       {SaveTensor{"v", "", DType::kInt32, {2}, split, {}, {one.data()}},
        SaveTensor{"v", "", DType::kInt32, {2}, split, {}, {one.data(), nullptr}},
        SaveTensor{"v",
                   "",
                   DType::kInt32,
                   {1},
                   Layout::Replicated(Mesh::Create({{"x", 2}}, 0, 1).value(), 1),
                   {one.data(), one.data()},
                   {one.data()}}}) {
    absl::Status s = SaveTensors(*comm_, prefix, {t}, {}, {});
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  }
  EXPECT_FALSE(FileExists(IndexFilePath(prefix)));
  // A tensor with no elements has no shards, so no buffers.
  EXPECT_TRUE(
      SaveTensors(*comm_, prefix, {{"v", "", DType::kInt32, {0}, split, {}, {}}}, {}, {})
          .ok());
}

// A DVariable stores its shards, not its devices.
TEST(DVariableScale, StoresShardsNotDevices) {
  PeakRssGrowth growth;
  const Mesh big = Mesh::Create({{"x", Mesh::kMaxDevices}}, 0, 1).value();
  auto v =
      DVariable::Create("w", DType::kFloat32, {8}, Layout::Create({"x"}, big).value());
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ((*v)->local_shards().size(), 8u);
  EXPECT_EQ((*v)->ShardData().size(), 8u);
  (*v)->shard<float>(3)[0] = 1.5f;
  EXPECT_EQ((*v)->shard<float>(3).size(), 1u);
  EXPECT_EQ(static_cast<const float*>((*v)->ShardData()[3])[0], 1.5f);
  EXPECT_TRUE((*v)->shard<float>(Mesh::kMaxDevices - 1).empty());
  auto r = DVariable::Create("b", DType::kString, {2}, Layout::Replicated(big, 1));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->strings(12345).size(), 2u);
  EXPECT_EQ((*r)->strings(12345).data(), (*r)->strings(0).data()) << "one buffer";
  EXPECT_LT(growth.MiB(), 4.0);
}

}  // namespace
}  // namespace meshckpt
