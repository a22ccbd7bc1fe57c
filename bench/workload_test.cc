// The benchmark's workload: model shape, byte accounting of the raw
// baselines, and that Verify() catches what it must.
#include "bench/workload.h"

#include <cstring>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace meshckpt::bench {
namespace {

using ::testing::HasSubstr;

int64_t Elements(const TensorSpec& t) {
  int64_t n = 1;
  for (int64_t s : t.shape) n *= s;
  return n;
}

TEST(GptTensorsTest, Gpt2SmallHasItsParameterCountAndOneSlotEach) {
  const std::vector<TensorSpec> all = GptTensors(Gpt2Small());
  ASSERT_EQ(all.size(), 296u);
  int64_t params = 0, slots = 0;
  for (const TensorSpec& t : all) {
    (t.key.rfind("model/", 0) == 0 ? params : slots) += Elements(t);
  }
  EXPECT_EQ(params, 124439808);  // GPT-2 small, tied output embedding.
  EXPECT_EQ(slots, params);
}

TEST(GptTensorsTest, MegatronSplits) {
  for (const TensorSpec& t : GptTensors(TinyGpt())) {
    const std::string& k = t.key;
    const int want =
        k.find("/wte") != std::string::npos                                           ? 0
        : k.find("qkv/w") != std::string::npos || k.find("fc/w") != std::string::npos ? 1
        : k.find("proj/w") != std::string::npos                                       ? 0
                                                : -1;
    EXPECT_EQ(t.split_dim, want) << k;
  }
}

Mesh MakeMesh(std::vector<MeshDimension> dims, int rank, int ranks) {
  return Mesh::Create(std::move(dims), rank, ranks).value();
}

// Every distinct shard is written by exactly one rank.
TEST(WorkloadTest, WriteSegmentsCoverTheModelOnce) {
  for (auto [devices, ranks] : {std::pair{1, 1}, {3, 3}, {4, 4}, {8, 2}}) {
    int64_t written = 0, model = 0;
    for (int r = 0; r < ranks; ++r) {
      Workload w = Workload::Create(GptTensors(TinyGpt()),
                                    MakeMesh({{kModelDim, devices}}, r, ranks))
                       .value();
      written += TotalBytes(w.WriteSegments());
      model = w.model_bytes();
    }
    EXPECT_EQ(written, model) << devices << " devices on " << ranks << " ranks";
  }
}

// On data=2 x model=2 each rank reads half of every split tensor and all of
// every replicated one, once per rank however many devices hold it.
TEST(WorkloadTest, ReadSegmentsAreTheDistinctLocalShards) {
  const std::vector<TensorSpec> specs = GptTensors(TinyGpt());
  int64_t want = 0;
  for (const TensorSpec& t : specs) want += Elements(t) * 4 / (t.split_dim >= 0 ? 2 : 1);
  Workload w =
      Workload::Create(specs, MakeMesh({{"data", 2}, {kModelDim, 2}}, 1, 4)).value();
  EXPECT_EQ(TotalBytes(w.ReadSegments()), want);
  Workload one_rank = Workload::Create(specs, MakeMesh({{kModelDim, 4}}, 0, 1)).value();
  int64_t full = 0;
  for (const TensorSpec& t : specs) full += Elements(t) * 4;
  EXPECT_EQ(TotalBytes(one_rank.ReadSegments()), full);
}

// A shard's values are the matching slice of the whole tensor's.
TEST(WorkloadTest, ValuesDependOnlyOnTheGlobalIndex) {
  std::vector<TensorSpec> specs = {{"a/rows", {7, 5}, 0}, {"a/cols", {4, 9}, 1}};
  Workload whole = Workload::Create(specs, MakeMesh({{kModelDim, 1}}, 0, 1)).value();
  Workload part = Workload::Create(specs, MakeMesh({{kModelDim, 3}}, 1, 3)).value();
  const auto w = whole.SaveList(), p = part.SaveList();
  const float* rows = static_cast<const float*>(w[0].device_data[0]);
  const float* rows1 = static_cast<const float*>(p[0].device_data[0]);
  EXPECT_EQ(std::memcmp(rows1, rows + 3 * 5, 3 * 5 * 4), 0);  // Rows [3, 6).
  const float* cols = static_cast<const float*>(w[1].device_data[0]);
  const float* cols1 = static_cast<const float*>(p[1].device_data[0]);
  for (int r = 0; r < 4; ++r) {
    EXPECT_EQ(std::memcmp(cols1 + r * 3, cols + r * 9 + 3, 3 * 4), 0) << r;
  }
  EXPECT_NE(std::memcmp(rows, cols, 4 * 4), 0);  // Keys seed differently.
}

TEST(WorkloadTest, VerifyCatchesPoisonAndASingleWrongBit) {
  Workload w =
      Workload::Create(GptTensors(TinyGpt()), MakeMesh({{kModelDim, 4}}, 1, 2)).value();
  EXPECT_TRUE(w.Verify().ok());
  w.Poison();
  EXPECT_EQ(w.Verify().code(), absl::StatusCode::kDataLoss);
  w.Fill();
  ASSERT_TRUE(w.Verify().ok());
  std::vector<SaveTensor> list = w.SaveList();
  const SaveTensor& t = list.back();
  uint32_t* bits = static_cast<uint32_t*>(const_cast<void*>(t.device_data.back()));
  bits[0] ^= 1;
  absl::Status s = w.Verify();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(s.message()), HasSubstr(t.key));
  EXPECT_THAT(std::string(s.message()), HasSubstr("device 3"));
}

TEST(WorkloadTest, SmallTensorsAreOneKiB) {
  Workload w =
      Workload::Create(SmallTensors(100, 256, false), MakeMesh({{kModelDim, 2}}, 0, 2))
          .value();
  EXPECT_EQ(w.num_tensors(), 100);
  EXPECT_EQ(w.model_bytes(), 100 * 1024);
  EXPECT_EQ(w.largest_local_shard_bytes(), 1024);
}

}  // namespace
}  // namespace meshckpt::bench
