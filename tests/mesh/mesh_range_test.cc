// Meshes too large to list: ids as ranges in the text form, Mesh values
// that cost their dimensions rather than their devices.
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/mesh/mesh.h"
#include "tests/mesh/mesh_test_util.h"
#include "tests/peak_rss.h"

namespace meshckpt {
namespace {

using test::ExpectInvalid;

TEST(MeshRange, RangesOfRanks) {
  Mesh mesh = Mesh::Create({{"a", 2}, {"b", 3}, {"c", 4}}, 2, 4).value();
  EXPECT_EQ(mesh.local_device_range(), (DeviceRange{12, 18}));
  EXPECT_EQ(mesh.DeviceRangeOfRank(3), (DeviceRange{18, 24}));
  EXPECT_EQ(mesh.local_device_range().size(), mesh.devices_per_rank());
  EXPECT_TRUE(mesh.local_device_range().contains(17));
  EXPECT_FALSE(mesh.local_device_range().contains(18));
  EXPECT_EQ(mesh.LocalDeviceName(1), "/job:localhost/replica:0/task:0/device:CPU:13");
  EXPECT_EQ(mesh.generated_device_type(), "CPU");
  EXPECT_EQ(DeviceRangeText({12, 18}), "12-17");
  EXPECT_EQ(DeviceRangeText({5, 6}), "5");
  EXPECT_EQ(DeviceRangeText({5, 5}), "");
}

TEST(MeshRange, ListedUpToTheLimitThenRanges) {
  Mesh listed = Mesh::Create({{"x", Mesh::kMaxListedDevices}}, 1, 2).value();
  EXPECT_TRUE(absl::StrContains(listed.ToString(), "|0,1,2,"));
  EXPECT_TRUE(absl::StrContains(listed.ToString(), "|512,513,"));
  Mesh ranged = Mesh::Create({{"x", Mesh::kMaxListedDevices * 2}}, 1, 2).value();
  EXPECT_EQ(ranged.ToString(), "|x=2048|0-2047|1024-2047|*CPU");
  EXPECT_EQ(Mesh::FromString(ranged.ToString()).value(), ranged);
}

TEST(MeshRange, ParsesRangesInIdLists) {
  absl::StatusOr<Mesh> mesh = Mesh::FromString("m|x=2,y=4|0-3,4,5-7|4-5,6-7|*GPU");
  ASSERT_TRUE(mesh.ok()) << mesh.status();
  EXPECT_EQ(*mesh, Mesh::Create({{"x", 2}, {"y", 4}}, 1, 2, "GPU", "m").value());
  EXPECT_EQ(mesh->ToString(), "m|x=2,y=4|0,1,2,3,4,5,6,7|4,5,6,7|*GPU");
  ExpectInvalid("|x=4|0-4|0-3|*CPU", "got 5");
  ExpectInvalid("|x=4|1-4|0-3|*CPU", "'1-4'");
  ExpectInvalid("|x=4|0-1,3-3|0-3|*CPU", "got 3");
  ExpectInvalid("|x=4|0-1,3,2|0-3|*CPU", "'3'");
  ExpectInvalid("|x=4|3-0|0-3|*CPU", "'3-0'");
  ExpectInvalid("|x=4|0-|0-3|*CPU", "'0-'");
  ExpectInvalid("|x=4|0--3|0-3|*CPU", "'0--3'");
  ExpectInvalid("|x=4|0-3|1-2|*CPU", "'1'");
  ExpectInvalid("|x=4|0-3|2-5|*CPU", "'2'");
  ExpectInvalid("|x=4|0-3|0-99999999999999999999|*CPU", "99999999999999999999");
  ExpectInvalid("|x=4|0-9223372036854775807|0-3|*CPU", "more than 16777216");
  ExpectInvalid("|x=4|0-3|0-9223372036854775806|*CPU", "more than 16777216");
  ExpectInvalid("|x=4|0-3|2-3|a,b,c", "3 local device names");
}

TEST(MeshRange, CreateFromRanges) {
  absl::StatusOr<Mesh> mesh =
      Mesh::CreateFromRanges("", {{"x", 4}, {"y", 2}}, {0, 8}, {4, 6}, {}, "TPU");
  ASSERT_TRUE(mesh.ok()) << mesh.status();
  EXPECT_EQ(*mesh, Mesh::Create({{"x", 4}, {"y", 2}}, 2, 4, "TPU").value());
  absl::StatusOr<Mesh> named = Mesh::CreateFromRanges(
      "", {{"x", 2}}, {0, 2}, {1, 2}, {"dev_b"}, "CPU", {"dev_a", "dev_b"});
  ASSERT_TRUE(named.ok()) << named.status();
  EXPECT_EQ(named->ToString(), "|x=2|0,1|1|dev_b|dev_a,dev_b");
  // Explicit names that are the generated ones are the generated ones.
  EXPECT_EQ(Mesh::CreateFromRanges("", {{"x", 2}}, {0, 2}, {1, 2},
                                   {GeneratedDeviceName("CPU", 1)})
                .value(),
            Mesh::Create({{"x", 2}}, 1, 2).value());
  for (auto [global, local] :
       std::vector<std::pair<DeviceRange, DeviceRange>>{{{0, 7}, {0, 2}},
                                                        {{1, 9}, {0, 2}},
                                                        {{0, 8}, {1, 3}},
                                                        {{0, 8}, {0, 3}},
                                                        {{0, 8}, {2, 2}},
                                                        {{0, 8}, {6, 4}},
                                                        {{8, 0}, {0, 2}}}) {
    absl::StatusOr<Mesh> bad = Mesh::CreateFromRanges("", {{"x", 8}}, global, local, {});
    EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument)
        << DeviceRangeText(global) << " " << DeviceRangeText(local);
  }
  EXPECT_EQ(
      Mesh::CreateFromRanges("", {{"x", 2}}, {0, 2}, {0, 2}, {}, "C-PU").status().code(),
      absl::StatusCode::kInvalidArgument);
}

TEST(MeshRange, ShortStringCutsLongNameLists) {
  Mesh few = Mesh::FromString("|x=2|0,1|0,1|a,b|g0,g1").value();
  EXPECT_EQ(few.ToShortString(2), few.ToString());
  std::vector<std::string> names;
  for (int i = 0; i < 2000; ++i) names.push_back("d" + std::to_string(i));
  Mesh many =
      Mesh::CreateFromRanges("", {{"x", 2000}}, {0, 2000}, {0, 2000}, names, "CPU", names)
          .value();
  EXPECT_EQ(many.ToShortString(2),
            "|x=2000|0-1999|0-1999|d0,d1,... (1998 more)|d0,d1,... (1998 more)");
  EXPECT_EQ(Mesh::FromString(many.ToString()).value(), many);
}

// 2^24 devices on one rank: creating, printing, parsing, copying and
// re-viewing the mesh must not build anything per device.
TEST(MeshRange, LargestMeshOnOneRankIsSmall) {
  PeakRssGrowth growth;
  Mesh mesh = Mesh::Create({{"x", Mesh::kMaxDevices}}, 0, 1).value();
  EXPECT_EQ(mesh.local_device_range(), (DeviceRange{0, Mesh::kMaxDevices}));
  EXPECT_EQ(mesh.ToString(), "|x=16777216|0-16777215|0-16777215|*CPU");
  EXPECT_EQ(Mesh::FromString(mesh.ToString()).value(), mesh);
  std::vector<Mesh> copies(64, mesh);
  EXPECT_EQ(copies.back().ForRank(0).value(), mesh);
  EXPECT_EQ(mesh.LocalDeviceName(Mesh::kMaxDevices - 1),
            "/job:localhost/replica:0/task:0/device:CPU:16777215");
  Mesh two = Mesh::Create({{"x", 4096}, {"y", 4096}}, 1, 2).value();
  EXPECT_EQ(two.ToString(), "|x=4096,y=4096|0-16777215|8388608-16777215|*CPU");
  EXPECT_LT(growth.MiB(), 4.0);
}

}  // namespace
}  // namespace meshckpt
