// A tensor larger than 4 GiB (and with more than 2^32 elements): saved split
// by rows, restored split by columns, every byte checked. Exercises 64-bit
// sizes end to end and transfers cut below MPI's 2 GiB count limit.
//
// Needs ~9.2 GB of memory and ~4.6 GB of disk; registered for 2 ranks.
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/io/fs/fs.h"
#include "meshckpt/layout/shard_map.h"
#include "mpi_tests/mpi_test_env.h"

namespace meshckpt {
namespace {

constexpr int64_t kRows = 69632, kCols = 65536;  // 4.56e9 bytes.

inline uint8_t ValueAt(int64_t g) { return static_cast<uint8_t>(g * 131 + (g >> 20)); }

std::string Dir() {
  for (const std::string& arg : ::testing::internal::GetArgvs()) {
    absl::string_view a = arg;
    if (absl::ConsumePrefix(&a, "--dir=")) return std::string(a);
  }
  return "/tmp/meshckpt_large";
}

TEST(LargeTensor, MoreThan4GiBSurvivesResharding) {
  Communicator& world = TestWorld();
  static_assert(kRows * kCols > (int64_t{1} << 32));
  if (world.rank() == 0) {
    ASSERT_EQ(std::system(absl::StrCat("mkdir -p ", Dir()).c_str()), 0);
  }
  world.Barrier();
  const std::string prefix = Dir() + "/big";
  Mesh mesh = Mesh::Create({{"x", world.size()}}, world.rank(), world.size()).value();
  {
    Layout rows = Layout::Create({"x", "unsharded"}, mesh).value();
    Box box = ShardMap::Create(rows, {kRows, kCols}).value().DeviceBox(world.rank());
    std::vector<uint8_t> data(box.num_elements());
    const int64_t base = box.origin()[0] * kCols;
    for (int64_t i = 0; i < box.num_elements(); ++i) data[i] = ValueAt(base + i);
    absl::Status s = SaveTensors(
        world, prefix, {{"big", "", DType::kUint8, {kRows, kCols}, rows, {data.data()}}},
        {}, {});
    ASSERT_TRUE(s.ok()) << s;
  }
  Layout cols = Layout::Create({"unsharded", "x"}, mesh).value();
  Box box = ShardMap::Create(cols, {kRows, kCols}).value().DeviceBox(world.rank());
  std::vector<uint8_t> back(box.num_elements(), 0);
  absl::Status s = RestoreTensors(
      world, prefix, {{"big", DType::kUint8, {kRows, kCols}, cols, {back.data()}}}, {});
  ASSERT_TRUE(s.ok()) << s;
  int64_t bad = 0, first_bad = -1;
  const int64_t w = box.shape()[1], c0 = box.origin()[1];
  for (int64_t r = 0; r < kRows; ++r) {
    const uint8_t* row = back.data() + r * w;
    for (int64_t c = 0; c < w; ++c) {
      if (row[c] != ValueAt(r * kCols + c0 + c)) {
        if (first_bad < 0) first_bad = r * kCols + c0 + c;
        ++bad;
      }
    }
  }
  EXPECT_EQ(bad, 0) << "first wrong global index " << first_bad << " on rank "
                    << world.rank();
  world.Barrier();
  if (world.rank() == 0) {
    (void)RemoveFileIfExists(DataFilePath(prefix));
    (void)RemoveFileIfExists(IndexFilePath(prefix));
  }
}

}  // namespace
}  // namespace meshckpt
