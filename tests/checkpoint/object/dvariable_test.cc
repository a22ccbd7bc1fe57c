// DVariable in one process: the distinct local shards (Shards()), each
// buffer once however many local devices share it.
#include "meshckpt/checkpoint/object/dvariable.h"

#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace meshckpt {
namespace {

using ::testing::ElementsAre;

// 6 devices on this one rank: x=2 replicates every tensor below, y=3 splits
// dimension 1 of a {4, 5} tensor into columns [0,2) [2,4) [4,5).
class DVariableShardsTest : public ::testing::Test {
 protected:
  Mesh mesh_ = Mesh::Create({{"x", 2}, {"y", 3}}, 0, 1).value();
  std::unique_ptr<DVariable> Make(std::vector<std::string> specs,
                                  std::vector<int64_t> shape) {
    return DVariable::Create("w", DType::kFloat32, std::move(shape),
                             Layout::Create(specs, mesh_).value())
        .value();
  }
};

TEST_F(DVariableShardsTest, EachSharedBufferOnce) {
  std::unique_ptr<DVariable> v = Make({"unsharded", "y"}, {4, 5});
  std::vector<DVariable::Shard<float>> shards = v->Shards<float>();
  ASSERT_EQ(shards.size(), 3u);  // Not 6: x replicates each column block.
  std::set<const float*> buffers;
  for (size_t i = 0; i < shards.size(); ++i) {
    const DVariable::Shard<float>& s = shards[i];
    EXPECT_EQ(s.shard, v->local_shards()[i]);
    EXPECT_EQ(s.box, v->shard_map().ShardBox(s.shard));
    EXPECT_EQ(static_cast<int64_t>(s.data.size()), s.box.num_elements());
    EXPECT_TRUE(buffers.insert(s.data.data()).second);
    ASSERT_EQ(s.devices.size(), 2u);
    for (int64_t d : s.devices) {
      EXPECT_EQ(v->DeviceBox(d), s.box);
      EXPECT_EQ(v->shard<float>(d).data(), s.data.data());
    }
  }
  // Devices (x, y) are numbered x * 3 + y; column block y is held by y, 3 + y.
  EXPECT_THAT(shards[0].devices, ElementsAre(0, 3));
  EXPECT_THAT(shards[1].devices, ElementsAre(1, 4));
  EXPECT_THAT(shards[2].devices, ElementsAre(2, 5));
  EXPECT_EQ(shards[2].box.shape(), (std::vector<int64_t>{4, 1}));
  EXPECT_EQ(shards[2].box.origin(), (std::vector<int64_t>{0, 4}));
}

TEST_F(DVariableShardsTest, AddOneAddsOneNotOncePerDevice) {
  std::unique_ptr<DVariable> v = Make({"unsharded", "y"}, {4, 5});
  for (int round = 0; round < 2; ++round) {
    for (const DVariable::Shard<float>& s : v->Shards<float>())
      for (float& x : s.data) x += 1;
  }
  for (int64_t d : mesh_.local_device_ids())
    for (float x : v->shard<float>(d)) ASSERT_EQ(x, 2.0f) << "device " << d;

  // The per-device loop this replaces adds once per device sharing a buffer.
  std::unique_ptr<DVariable> u = Make({"unsharded", "y"}, {4, 5});
  for (int64_t d : mesh_.local_device_ids())
    for (float& x : u->shard<float>(d)) x += 1;
  EXPECT_EQ(u->shard<float>(0)[0], 2.0f);
}

TEST_F(DVariableShardsTest, FullyReplicatedIsOneBufferForAllDevices) {
  std::unique_ptr<DVariable> v = Make({"unsharded"}, {7});
  std::vector<DVariable::Shard<float>> shards = v->Shards<float>();
  ASSERT_EQ(shards.size(), 1u);
  EXPECT_THAT(shards[0].devices, ElementsAre(0, 1, 2, 3, 4, 5));
  EXPECT_EQ(shards[0].box, v->shard_map().global_box());
}

TEST_F(DVariableShardsTest, EmptyShardsAreSkipped) {
  // 2 elements split 3 ways: blocks of 1, the third shard is empty.
  std::unique_ptr<DVariable> v = Make({"y"}, {2});
  std::vector<DVariable::Shard<float>> shards = v->Shards<float>();
  ASSERT_EQ(shards.size(), 2u);
  EXPECT_THAT(shards[1].devices, ElementsAre(1, 4));
  EXPECT_TRUE(v->shard<float>(2).empty());
}

TEST_F(DVariableShardsTest, ConstAndStrings) {
  std::unique_ptr<DVariable> s =
      DVariable::Create("names", DType::kString, {3},
                        Layout::Create({"unsharded"}, mesh_).value())
          .value();
  for (const DVariable::Shard<std::string>& sh : s->Shards<std::string>())
    for (std::string& x : sh.data) x += "a";
  const DVariable& cs = *s;
  std::vector<DVariable::Shard<const std::string>> shards = cs.Shards<std::string>();
  ASSERT_EQ(shards.size(), 1u);
  EXPECT_THAT(shards[0].data, ElementsAre("a", "a", "a"));
}

}  // namespace
}  // namespace meshckpt
