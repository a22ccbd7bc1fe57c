// DVariable in one process: the distinct local shards (Shards()), each
// buffer once however many local devices share it; variables over caller
// memory (Wrap): bad input, save from and restore into the caller's
// buffers, deferred restoration into them.
#include "meshckpt/checkpoint/object/dvariable.h"

#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/checkpoint/object/dtensor_checkpoint.h"
#include "meshckpt/comm/communicator.h"
#include "meshckpt/io/fs/fs.h"

namespace meshckpt {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

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

// Caller-owned storage for a wrapped variable: one vector per distinct local
// shard, element = base + global flat index, each followed by a guard
// element the library must never touch.
struct CallerBuffers {
  std::vector<std::vector<double>> storage;
  std::vector<void*> pointers;
  static constexpr double kGuard = -12345.0;

  CallerBuffers(const ShardMap& map, double base) {
    for (int64_t s : map.LocalShards()) {
      const Box box = map.ShardBox(s);
      std::vector<double> b(box.num_elements() + 1, kGuard);
      for (int64_t i = 0; i < box.num_elements(); ++i)
        b[i] = base + GlobalIndex(map, box, i);
      storage.push_back(std::move(b));
    }
    for (std::vector<double>& b : storage) pointers.push_back(b.data());
  }
  // Row-major index i within `box` -> global flat index.
  static int64_t GlobalIndex(const ShardMap& map, const Box& box, int64_t i) {
    int64_t g = 0, stride = 1;
    for (int k = box.rank() - 1; k >= 0; --k) {
      g += (box.origin()[k] + i % box.shape()[k]) * stride;
      i /= box.shape()[k];
      stride *= map.global_shape()[k];
    }
    return g;
  }
  // Elements that differ from base + global index, plus touched guards.
  int64_t CountWrong(const ShardMap& map, double base) const {
    int64_t bad = 0;
    const std::vector<int64_t> shards = map.LocalShards();
    for (size_t s = 0; s < shards.size(); ++s) {
      const Box box = map.ShardBox(shards[s]);
      for (int64_t i = 0; i < box.num_elements(); ++i) {
        const double want = base + GlobalIndex(map, box, i);
        bad += std::memcmp(&storage[s][i], &want, sizeof want) != 0;
      }
      bad += storage[s].back() != kGuard;
    }
    return bad;
  }
};

class DVariableWrapTest : public ::testing::Test {
 protected:
  Mesh mesh_ = Mesh::Create({{"x", 2}, {"y", 3}}, 0, 1).value();
  std::unique_ptr<Communicator> comm_ = SerialCommunicator();
  std::string dir_ = [] {
    std::string dir = "/tmp/meshckpt_dvar_" + RandomId();
    EXPECT_EQ(std::system(("mkdir -p " + dir).c_str()), 0);
    return dir;
  }();
  ~DVariableWrapTest() override { std::system(("rm -rf " + dir_).c_str()); }

  ShardMap Map(std::vector<std::string> specs) const {
    return ShardMap::Create(Layout::Create(specs, mesh_).value(), {5, 7}).value();
  }
};

TEST_F(DVariableWrapTest, UsesTheCallersBuffersWithoutCopying) {
  const ShardMap map = Map({"unsharded", "y"});
  CallerBuffers buf(map, 0.5);
  std::unique_ptr<DVariable> v =
      DVariable::Wrap("w", DType::kFloat64, {5, 7}, map.layout(), buf.pointers).value();
  EXPECT_TRUE(v->wraps_caller_memory());
  // What SaveTensor/RestoreTensor receive is the caller's memory itself.
  EXPECT_EQ(v->ShardData(),
            std::vector<const void*>(buf.pointers.begin(), buf.pointers.end()));
  EXPECT_EQ(v->MutableShardData(), buf.pointers);
  std::vector<DVariable::Shard<double>> shards = v->Shards<double>();
  ASSERT_EQ(shards.size(), buf.pointers.size());
  for (size_t i = 0; i < shards.size(); ++i) {
    EXPECT_EQ(shards[i].data.data(), buf.pointers[i]);
    for (int64_t d : shards[i].devices) {
      EXPECT_EQ(v->shard<double>(d).data(), buf.pointers[i]);
      EXPECT_EQ(v->bytes(d).size(), shards[i].data.size() * sizeof(double));
    }
  }
  // A write through the variable is a write to the caller's memory.
  shards[0].data[0] = 99;
  EXPECT_EQ(buf.storage[0][0], 99);
}

TEST_F(DVariableWrapTest, SaveFromAndRestoreIntoCallerBuffersOnAnotherLayout) {
  const ShardMap from = Map({"unsharded", "y"}), to = Map({"x", "unsharded"});
  CallerBuffers src(from, 0.25);
  std::string path;
  {
    Module root;
    ASSERT_TRUE(
        root.WrapVariable("w", DType::kFloat64, {5, 7}, from.layout(), src.pointers).ok());
    auto ckpt = DTensorCheckpoint::Create(comm_.get(), mesh_, {}, &root).value();
    absl::StatusOr<std::string> saved = ckpt->Save(dir_ + "/ckpt");
    ASSERT_TRUE(saved.ok()) << saved.status();
    path = *saved;
  }
  EXPECT_EQ(src.CountWrong(from, 0.25), 0);  // Save left them alone.

  CallerBuffers dst(to, -1000.0);  // Values the restore must replace.
  ASSERT_GT(dst.CountWrong(to, 0.25), 0);
  Module root;
  ASSERT_TRUE(
      root.WrapVariable("w", DType::kFloat64, {5, 7}, to.layout(), dst.pointers).ok());
  auto ckpt = DTensorCheckpoint::Create(comm_.get(), mesh_, {}, &root).value();
  absl::StatusOr<LoadStatus> st = ckpt->Restore(path);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_TRUE(st->AssertConsumed().ok());
  EXPECT_EQ(dst.CountWrong(to, 0.25), 0);
}

TEST_F(DVariableWrapTest, DeferredRestorationWritesIntoCallerBuffers) {
  const ShardMap map = Map({"y", "x"});
  CallerBuffers src(map, 3.0);
  std::string path;
  {
    Module root;
    ASSERT_TRUE(
        root.WrapVariable("w", DType::kFloat64, {5, 7}, map.layout(), src.pointers).ok());
    path = DTensorCheckpoint::Create(comm_.get(), mesh_, {}, &root)
               .value()
               ->Save(dir_ + "/ckpt")
               .value();
  }
  Module root;
  auto ckpt = DTensorCheckpoint::Create(comm_.get(), mesh_, {}, &root).value();
  LoadStatus st = ckpt->Restore(path).value();
  CallerBuffers dst(map, 0.0);
  ASSERT_GT(dst.CountWrong(map, 3.0), 0);
  ASSERT_TRUE(
      root.WrapVariable("w", DType::kFloat64, {5, 7}, map.layout(), dst.pointers).ok());
  EXPECT_TRUE(st.AssertConsumed().ok()) << st.AssertConsumed();
  EXPECT_EQ(dst.CountWrong(map, 3.0), 0);
}

TEST_F(DVariableWrapTest, BadInputIsInvalidArgumentNamingTheVariable) {
  const ShardMap map = Map({"unsharded", "y"});  // 3 distinct local shards.
  CallerBuffers buf(map, 0);
  auto wrap = [&](DType dtype, std::vector<void*> p) {
    return DVariable::Wrap("enc/kernel", dtype, {5, 7}, map.layout(), std::move(p))
        .status();
  };
  auto invalid = [](const std::string& what) {
    return AllOf(HasSubstr("variable 'enc/kernel' on rank 0"), HasSubstr(what));
  };
  absl::Status s = wrap(DType::kFloat64, {buf.pointers[0], buf.pointers[1]});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()),
              invalid("got 2 buffer(s) but this rank holds 3 distinct"));

  s = wrap(DType::kFloat64, {buf.pointers[0], nullptr, buf.pointers[2]});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), invalid("buffer 1 (shard 1, box"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("is null"));

  std::vector<void*> odd = buf.pointers;
  odd[2] = reinterpret_cast<char*>(odd[2]) + 4;  // float-aligned, not double.
  s = wrap(DType::kFloat64, odd);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), invalid("buffer 2"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("not aligned to 8 bytes"));
  EXPECT_TRUE(wrap(DType::kFloat32, odd).ok());  // 4-byte alignment is enough.

  std::vector<std::string> strings(35);
  s = wrap(DType::kString, {strings.data(), strings.data(), strings.data()});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), invalid("string variables cannot wrap"));

  s = DVariable::Wrap("enc/kernel", DType::kFloat64, {5, 7, 1}, map.layout(),
                      buf.pointers)
          .status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("variable 'enc/kernel'"));

  // Through the module: the same error, and nothing is tracked.
  Module m;
  s = m.WrapVariable("kernel", DType::kFloat64, {5, 7}, map.layout(), {}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("variable 'kernel' on rank 0"));
  EXPECT_EQ(m.FindChild("kernel"), nullptr);
}

TEST(DVariableWrap, RankWithoutShardsPassesNoBuffers) {
  // Rank 1 of 2 holds device 1, whose shard of a 1-element tensor is empty.
  const Mesh mesh = Mesh::Create({{"x", 2}}, /*rank=*/1, /*num_ranks=*/2).value();
  const Layout l = Layout::Create({"x"}, mesh).value();
  std::unique_ptr<DVariable> v =
      DVariable::Wrap("e", DType::kFloat32, {1}, l, {}).value();
  EXPECT_TRUE(v->Shards<float>().empty());
  EXPECT_TRUE(v->ShardData().empty());
  float x = 0;
  absl::Status s = DVariable::Wrap("e", DType::kFloat32, {1}, l, {&x}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("variable 'e' on rank 1: got 1 buffer(s) but this rank holds 0"));
}

}  // namespace
}  // namespace meshckpt
