// Mesh::Create and what a mesh knows: device coordinates, ranks and their
// devices, dimensions. The text form is in mesh_string_test.cc.
#include "meshckpt/mesh/mesh.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/mesh/mesh_test_util.h"

namespace meshckpt {
namespace {

using test::Msg;
using ::testing::HasSubstr;

// ---------------------------------------------------------------------------
// Create

TEST(MeshCreate, SpreadsDevicesOverRanks) {
  absl::StatusOr<Mesh> mesh = Mesh::Create({{"batch", 2}, {"model", 4}}, 1, 2);
  ASSERT_TRUE(mesh.ok()) << mesh.status();
  EXPECT_EQ(mesh->local_device_ids(), (std::vector<int64_t>{4, 5, 6, 7}));
  EXPECT_EQ(mesh->DeviceCoords(6), (std::vector<int64_t>{1, 2}));
}

TEST(MeshCreate, EightDevicesOnTwoRanks) {
  for (int rank = 0; rank < 2; ++rank) {
    absl::StatusOr<Mesh> mesh = Mesh::Create({{"batch", 2}, {"model", 4}}, rank, 2);
    ASSERT_TRUE(mesh.ok()) << mesh.status();
    EXPECT_EQ(mesh->num_devices(), 8);
    EXPECT_EQ(mesh->num_dims(), 2);
    EXPECT_EQ(mesh->rank(), rank);
    EXPECT_EQ(mesh->num_ranks(), 2);
    EXPECT_EQ(mesh->devices_per_rank(), 4);
    std::vector<int64_t> want;
    std::vector<std::string> names;
    for (int64_t i = 0; i < 4; ++i) {
      want.push_back(rank * 4 + i);
      names.push_back("/job:localhost/replica:0/task:0/device:CPU:" +
                      std::to_string(rank * 4 + i));
    }
    EXPECT_EQ(mesh->local_device_ids(), want);
    EXPECT_EQ(mesh->local_devices(), names);
    EXPECT_TRUE(mesh->global_devices().empty());
    EXPECT_EQ(mesh->name(), "");
  }
}

TEST(MeshCreate, OneRankHoldsEverything) {
  absl::StatusOr<Mesh> mesh = Mesh::Create({{"x", 3}}, 0, 1);
  ASSERT_TRUE(mesh.ok()) << mesh.status();
  EXPECT_EQ(mesh->local_device_ids(), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(mesh->ToString(), "|x=3|0,1,2|0,1,2|*CPU");
}

TEST(MeshCreate, DeviceTypeAndName) {
  absl::StatusOr<Mesh> mesh = Mesh::Create({{"x", 2}}, 0, 2, "GPU", "m1");
  ASSERT_TRUE(mesh.ok()) << mesh.status();
  EXPECT_EQ(mesh->name(), "m1");
  EXPECT_EQ(mesh->local_devices(),
            (std::vector<std::string>{"/job:localhost/replica:0/task:0/device:GPU:0"}));
  EXPECT_EQ(mesh->ToString(), "m1|x=2|0,1|0|*GPU");
  absl::StatusOr<Mesh> back = Mesh::FromString(mesh->ToString());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, *mesh);
}

TEST(MeshCreate, BadRank) {
  for (auto [rank, num_ranks] :
       std::vector<std::pair<int, int>>{{2, 2}, {-1, 2}, {0, 0}, {0, -1}, {5, 4}}) {
    absl::StatusOr<Mesh> mesh = Mesh::Create({{"x", 4}}, rank, num_ranks);
    ASSERT_FALSE(mesh.ok()) << rank << "/" << num_ranks;
    EXPECT_EQ(mesh.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Msg(mesh.status()), HasSubstr("rank " + std::to_string(rank)));
  }
}

TEST(MeshCreate, DevicesNotDivisibleAmongRanks) {
  absl::StatusOr<Mesh> mesh = Mesh::Create({{"x", 2}, {"y", 3}}, 0, 4);
  ASSERT_FALSE(mesh.ok());
  EXPECT_EQ(mesh.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(mesh.status()), HasSubstr("6 devices"));
  EXPECT_THAT(Msg(mesh.status()), HasSubstr("4 ranks"));
}

TEST(MeshCreate, BadDimensions) {
  struct Case {
    std::vector<MeshDimension> dims;
    std::string token;
  };
  const std::vector<Case> cases = {
      {{}, "at least one dimension"},
      {{{"x", 2}, {"x", 1}}, "'x'"},
      {{{"x", 0}}, "size 0"},
      {{{"x", -3}}, "size -3"},
      {{{"unsharded", 2}}, "'unsharded'"},
      {{{"1x", 2}}, "'1x'"},
      {{{"", 2}}, "''"},
      {{{"a-b", 2}}, "'a-b'"},
      {{{"x", Mesh::kMaxDevices + 1}}, "size 16777217"},
      {{{"x", Mesh::kMaxDevices}, {"y", 2}}, "more than"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<Mesh> mesh = Mesh::Create(c.dims, 0, 1);
    ASSERT_FALSE(mesh.ok()) << c.token;
    EXPECT_EQ(mesh.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Msg(mesh.status()), HasSubstr(c.token));
  }
}

TEST(MeshCreate, BadDeviceType) {
  absl::StatusOr<Mesh> mesh = Mesh::Create({{"x", 2}}, 0, 1, "C-PU");
  ASSERT_FALSE(mesh.ok());
  EXPECT_EQ(mesh.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(mesh.status()), HasSubstr("C-PU"));
}

TEST(MeshCreate, LargestMesh) {
  // One device per rank keeps the generated name list short.
  absl::StatusOr<Mesh> mesh = Mesh::Create({{"x", 1 << 12}, {"y", 1 << 12}}, 7, 1 << 24);
  ASSERT_TRUE(mesh.ok()) << mesh.status();
  EXPECT_EQ(mesh->num_devices(), Mesh::kMaxDevices);
  EXPECT_EQ(mesh->local_device_ids(), (std::vector<int64_t>{7}));
  EXPECT_EQ(mesh->RankOfDevice(Mesh::kMaxDevices - 1), (1 << 24) - 1);
}

// Whatever Create accepts must print to a string that parses back to it
// (mesh.h: "so FromString(ToString()) == *this").
TEST(MeshCreate, AcceptedNamesRoundTrip) {
  for (const std::string name : {"ok_name", "bad name", "a|b", "x,y", "-"}) {
    absl::StatusOr<Mesh> mesh = Mesh::Create({{"x", 2}}, 0, 1, "CPU", name);
    if (!mesh.ok()) {
      EXPECT_EQ(mesh.status().code(), absl::StatusCode::kInvalidArgument);
      continue;
    }
    absl::StatusOr<Mesh> back = Mesh::FromString(mesh->ToString());
    EXPECT_TRUE(back.ok()) << "Create accepted name '" << name << "' but "
                           << mesh->ToString() << " does not parse: " << back.status();
    if (back.ok()) {
      EXPECT_EQ(*back, *mesh) << mesh->ToString();
    }
  }
}

// ---------------------------------------------------------------------------
// Coordinates and ranks

TEST(MeshCoords, DeviceCoordsAndDeviceAtAreInverse) {
  Mesh mesh = Mesh::Create({{"a", 2}, {"b", 3}, {"c", 4}}, 0, 1).value();
  ASSERT_EQ(mesh.num_devices(), 24);
  for (int64_t id = 0; id < mesh.num_devices(); ++id) {
    const std::vector<int64_t> c = mesh.DeviceCoords(id);
    ASSERT_EQ(c.size(), 3u);
    EXPECT_GE(c[0], 0);
    EXPECT_LT(c[0], 2);
    EXPECT_GE(c[1], 0);
    EXPECT_LT(c[1], 3);
    EXPECT_GE(c[2], 0);
    EXPECT_LT(c[2], 4);
    EXPECT_EQ((c[0] * 3 + c[1]) * 4 + c[2], id) << "row-major";
    EXPECT_EQ(mesh.DeviceAt(c), id);
  }
  for (int64_t i = 0; i < 2; ++i) {
    for (int64_t j = 0; j < 3; ++j) {
      for (int64_t k = 0; k < 4; ++k) {
        const std::vector<int64_t> c = {i, j, k};
        EXPECT_EQ(mesh.DeviceCoords(mesh.DeviceAt(c)), c);
      }
    }
  }
  EXPECT_EQ(mesh.DeviceCoords(23), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(mesh.DeviceCoords(5), (std::vector<int64_t>{0, 1, 1}));
}

TEST(MeshCoords, OneDimension) {
  Mesh mesh = Mesh::Create({{"x", 5}}, 0, 1).value();
  for (int64_t id = 0; id < 5; ++id) {
    EXPECT_EQ(mesh.DeviceCoords(id), (std::vector<int64_t>{id}));
    EXPECT_EQ(mesh.DeviceAt({id}), id);
  }
}

TEST(MeshRanks, RankOfDeviceAndDeviceIdsOfRank) {
  Mesh mesh = Mesh::Create({{"a", 2}, {"b", 3}, {"c", 4}}, 2, 4).value();
  EXPECT_EQ(mesh.devices_per_rank(), 6);
  EXPECT_EQ(mesh.local_device_ids(), (std::vector<int64_t>{12, 13, 14, 15, 16, 17}));
  EXPECT_EQ(mesh.local_device_ids(), mesh.DeviceIdsOfRank(2));
  std::vector<int> seen(24, 0);
  for (int r = 0; r < 4; ++r) {
    const std::vector<int64_t> ids = mesh.DeviceIdsOfRank(r);
    ASSERT_EQ(ids.size(), 6u);
    for (size_t i = 0; i < ids.size(); ++i) {
      EXPECT_EQ(ids[i], r * 6 + static_cast<int64_t>(i));
      EXPECT_EQ(mesh.RankOfDevice(ids[i]), r);
      ++seen[ids[i]];
    }
  }
  for (int64_t id = 0; id < 24; ++id) {
    EXPECT_EQ(seen[id], 1) << id;
    EXPECT_EQ(mesh.RankOfDevice(id), id / 6);
  }
}

TEST(MeshRanks, ForRank) {
  Mesh mesh = Mesh::FromString("m|x=2,y=2|0,1,2,3|0,1|dev_a,dev_b|g0,g1,g2,g3").value();
  absl::StatusOr<Mesh> other = mesh.ForRank(1);
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(other->rank(), 1);
  EXPECT_EQ(other->num_ranks(), 2);
  EXPECT_EQ(other->name(), "m");
  EXPECT_EQ(other->dims(), mesh.dims());
  EXPECT_EQ(other->local_device_ids(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(other->local_devices(),
            (std::vector<std::string>{"/job:localhost/replica:0/task:0/device:CPU:2",
                                      "/job:localhost/replica:0/task:0/device:CPU:3"}));
  EXPECT_EQ(other->global_devices(), mesh.global_devices());
  EXPECT_TRUE(other->SameGridAs(mesh));
  EXPECT_NE(*other, mesh);
  EXPECT_EQ(*other, Mesh::FromString("m|x=2,y=2|0,1,2,3|2,3|*CPU|g0,g1,g2,g3").value());

  // ForRank of our own rank normalizes names to the generated ones.
  absl::StatusOr<Mesh> same = mesh.ForRank(0);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->ToString(), "m|x=2,y=2|0,1,2,3|0,1|*CPU|g0,g1,g2,g3");

  for (int bad : {-1, 2, 100}) {
    absl::StatusOr<Mesh> r = mesh.ForRank(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Msg(r.status()), HasSubstr(std::to_string(bad)));
  }
}

TEST(MeshRanks, SameGridAs) {
  Mesh a = Mesh::Create({{"x", 2}, {"y", 4}}, 0, 2).value();
  EXPECT_TRUE(a.SameGridAs(Mesh::Create({{"x", 2}, {"y", 4}}, 1, 2, "GPU").value()));
  EXPECT_FALSE(a.SameGridAs(Mesh::Create({{"x", 2}, {"y", 4}}, 0, 4).value()));
  EXPECT_FALSE(a.SameGridAs(Mesh::Create({{"x", 4}, {"y", 2}}, 0, 2).value()));
  EXPECT_FALSE(a.SameGridAs(Mesh::Create({{"x", 2}, {"z", 4}}, 0, 2).value()));
}

TEST(MeshDims, DimIndex) {
  Mesh mesh = Mesh::Create({{"batch", 2}, {"model", 4}}, 0, 1).value();
  EXPECT_EQ(mesh.DimIndex("batch"), 0);
  EXPECT_EQ(mesh.DimIndex("model"), 1);
  EXPECT_EQ(mesh.DimIndex("nope"), std::nullopt);
  EXPECT_EQ(mesh.DimIndex(""), std::nullopt);
  EXPECT_EQ(mesh.DimIndex("unsharded"), std::nullopt);
  EXPECT_EQ(mesh.DimIndex("Batch"), std::nullopt);
}

TEST(MeshDims, GeneratedDeviceName) {
  EXPECT_EQ(GeneratedDeviceName("CPU", 7),
            "/job:localhost/replica:0/task:0/device:CPU:7");
  EXPECT_EQ(GeneratedDeviceName("GPU", 0),
            "/job:localhost/replica:0/task:0/device:GPU:0");
}

}  // namespace
}  // namespace meshckpt
