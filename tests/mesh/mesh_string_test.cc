// Mesh's text form: FromString / ToString round trips, the shorthand and
// explicit forms, malformed and random input.
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "meshckpt/mesh/mesh.h"
#include "tests/mesh/mesh_test_util.h"

namespace meshckpt {
namespace {

using test::ExpectInvalid;

// ---------------------------------------------------------------------------
// FromString / ToString

TEST(MeshString, RoundTripShorthand) {
  const std::string text = "|batch=2,model=4|0,1,2,3,4,5,6,7|0,1,2,3|*CPU";
  absl::StatusOr<Mesh> mesh = Mesh::FromString(text);
  ASSERT_TRUE(mesh.ok()) << mesh.status();
  EXPECT_EQ(mesh->name(), "");
  EXPECT_EQ(mesh->dims(), (std::vector<MeshDimension>{{"batch", 2}, {"model", 4}}));
  EXPECT_EQ(mesh->num_devices(), 8);
  EXPECT_EQ(mesh->num_ranks(), 2);
  EXPECT_EQ(mesh->rank(), 0);
  EXPECT_EQ(mesh->local_device_ids(), (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(mesh->local_devices()[3], "/job:localhost/replica:0/task:0/device:CPU:3");
  EXPECT_EQ(mesh->ToString(), text);
  EXPECT_EQ(*mesh, Mesh::Create({{"batch", 2}, {"model", 4}}, 0, 2).value());
  absl::StatusOr<Mesh> back = Mesh::FromString(mesh->ToString());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, *mesh);
}

TEST(MeshString, SecondRankOfShorthand) {
  const std::string text = "|batch=2,model=4|0,1,2,3,4,5,6,7|4,5,6,7|*CPU";
  absl::StatusOr<Mesh> mesh = Mesh::FromString(text);
  ASSERT_TRUE(mesh.ok()) << mesh.status();
  EXPECT_EQ(mesh->rank(), 1);
  EXPECT_EQ(mesh->ToString(), text);
  EXPECT_EQ(*mesh, Mesh::Create({{"batch", 2}, {"model", 4}}, 1, 2).value());
}

TEST(MeshString, ExplicitGeneratedNamesPrintAsShorthand) {
  const std::string text =
      "|x=2|0,1|0,1|/job:localhost/replica:0/task:0/device:CPU:0,"
      "/job:localhost/replica:0/task:0/device:CPU:1";
  absl::StatusOr<Mesh> mesh = Mesh::FromString(text);
  ASSERT_TRUE(mesh.ok()) << mesh.status();
  EXPECT_EQ(mesh->ToString(), "|x=2|0,1|0,1|*CPU");
  absl::StatusOr<Mesh> back = Mesh::FromString(mesh->ToString());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, *mesh);
  absl::StatusOr<Mesh> shorthand = Mesh::FromString("|x=2|0,1|0,1|*CPU");
  ASSERT_TRUE(shorthand.ok()) << shorthand.status();
  EXPECT_EQ(*mesh, *shorthand);
}

TEST(MeshString, OtherDeviceTypeShorthand) {
  absl::StatusOr<Mesh> mesh = Mesh::FromString("|x=4|0,1,2,3|2,3|*TPU");
  ASSERT_TRUE(mesh.ok()) << mesh.status();
  EXPECT_EQ(mesh->local_devices(),
            (std::vector<std::string>{"/job:localhost/replica:0/task:0/device:TPU:2",
                                      "/job:localhost/replica:0/task:0/device:TPU:3"}));
  EXPECT_EQ(mesh->ToString(), "|x=4|0,1,2,3|2,3|*TPU");
}

TEST(MeshString, LeadingName) {
  const std::string text = "my_mesh|x=2,y=2|0,1,2,3|2,3|*CPU";
  absl::StatusOr<Mesh> mesh = Mesh::FromString(text);
  ASSERT_TRUE(mesh.ok()) << mesh.status();
  EXPECT_EQ(mesh->name(), "my_mesh");
  EXPECT_EQ(mesh->rank(), 1);
  EXPECT_EQ(mesh->num_ranks(), 2);
  EXPECT_EQ(mesh->ToString(), text);
  EXPECT_EQ(Mesh::FromString(mesh->ToString()).value(), *mesh);
  // The name is part of the value.
  EXPECT_NE(*mesh, Mesh::FromString("|x=2,y=2|0,1,2,3|2,3|*CPU").value());
}

TEST(MeshString, GlobalDevicesField) {
  const std::string text =
      "|x=2|0,1|0|*CPU|/job:w/replica:0/task:0/device:CPU:0,"
      "/job:w/replica:0/task:1/device:CPU:0";
  absl::StatusOr<Mesh> mesh = Mesh::FromString(text);
  ASSERT_TRUE(mesh.ok()) << mesh.status();
  EXPECT_EQ(mesh->global_devices(),
            (std::vector<std::string>{"/job:w/replica:0/task:0/device:CPU:0",
                                      "/job:w/replica:0/task:1/device:CPU:0"}));
  EXPECT_EQ(mesh->ToString(), text);
  absl::StatusOr<Mesh> back = Mesh::FromString(mesh->ToString());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, *mesh);
  // Global device names are part of the value.
  EXPECT_NE(*mesh, Mesh::FromString("|x=2|0,1|0|*CPU").value());
}

TEST(MeshString, EmptyGlobalDevicesField) {
  absl::StatusOr<Mesh> mesh = Mesh::FromString("|x=2|0,1|0,1|*CPU|");
  ASSERT_TRUE(mesh.ok()) << mesh.status();
  EXPECT_TRUE(mesh->global_devices().empty());
  EXPECT_EQ(*mesh, Mesh::FromString("|x=2|0,1|0,1|*CPU").value());
}

TEST(MeshString, NonGeneratedNamesKeptVerbatim) {
  const std::vector<std::string> texts = {
      "|x=2|0,1|0,1|/job:worker/replica:0/task:0/device:TPU:0,"
      "/job:worker/replica:0/task:0/device:TPU:1",
      // Generated names, but not in id order.
      "|x=2|0,1|0,1|/job:localhost/replica:0/task:0/device:CPU:1,"
      "/job:localhost/replica:0/task:0/device:CPU:0",
      // Mixed types.
      "|x=2|0,1|0,1|/job:localhost/replica:0/task:0/device:CPU:0,"
      "/job:localhost/replica:0/task:0/device:GPU:1",
      "|x=4|0,1,2,3|2,3|dev_a,dev_b",
  };
  for (const std::string& text : texts) {
    absl::StatusOr<Mesh> mesh = Mesh::FromString(text);
    ASSERT_TRUE(mesh.ok()) << text << ": " << mesh.status();
    EXPECT_EQ(mesh->ToString(), text);
    absl::StatusOr<Mesh> back = Mesh::FromString(mesh->ToString());
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, *mesh);
  }
  absl::StatusOr<Mesh> mesh = Mesh::FromString("|x=4|0,1,2,3|2,3|dev_a,dev_b");
  EXPECT_EQ(mesh->local_devices(), (std::vector<std::string>{"dev_a", "dev_b"}));
  EXPECT_EQ(mesh->rank(), 1);
}

// Names that look generated but whose "type" is not an identifier: FromString
// accepts them verbatim, so ToString must print something FromString accepts.
TEST(MeshString, GeneratedLookingNamesWithOddTypeRoundTrip) {
  const std::vector<std::string> texts = {
      "|x=1|0|0|/job:localhost/replica:0/task:0/device:my-dev:0",
      "|x=1|0|0|/job:localhost/replica:0/task:0/device:a:b:0",
      "|x=1|0|0|/job:localhost/replica:0/task:0/device::0",
  };
  for (const std::string& text : texts) {
    absl::StatusOr<Mesh> mesh = Mesh::FromString(text);
    ASSERT_TRUE(mesh.ok()) << text << ": " << mesh.status();
    absl::StatusOr<Mesh> back = Mesh::FromString(mesh->ToString());
    EXPECT_TRUE(back.ok()) << text << " printed as " << mesh->ToString()
                           << ", which does not parse: " << back.status();
    if (back.ok()) {
      EXPECT_EQ(*back, *mesh) << text;
    }
  }
}

TEST(MeshString, Malformed) {
  ExpectInvalid("|x=2|0,1|0,1|*CPU||extra_field", "extra_field");
  ExpectInvalid("|x=2|0,1|0,1|*CPU|a,b|zzz", "zzz");
  ExpectInvalid("|x=2|0,1|0,1", "|x=2|0,1|0,1");
  ExpectInvalid("x=2", "x=2");
  ExpectInvalid("", "fields");
  ExpectInvalid("|x=two|0,1|0,1|*CPU", "x=two");
  ExpectInvalid("|x2|0,1|0,1|*CPU", "x2");
  ExpectInvalid("|x=|0,1|0,1|*CPU", "x=");
  ExpectInvalid("|x=2,|0,1|0,1|*CPU", "name=size");
  ExpectInvalid("|=2|0,1|0,1|*CPU", "''");
  ExpectInvalid("|x=99999999999999999999|0|0|*CPU", "99999999999999999999");
  ExpectInvalid("|dup=2,dup=1|0,1|0,1|*CPU", "dup");
  ExpectInvalid("|zero=0||0|*CPU", "zero");
  ExpectInvalid("|zero=0||0|*CPU", "size 0");
  ExpectInvalid("|x=-2|0,1|0,1|*CPU", "-2");
  ExpectInvalid("|x=3|0,7,2|0,1,2|*CPU", "'7'");
  ExpectInvalid("|x=2|1,0|0,1|*CPU", "'1'");
  ExpectInvalid("|x=2|0,1,2|0,1|*CPU", "got 3");
  ExpectInvalid("|x=3|0,1|0|*CPU", "got 2");
  ExpectInvalid("|x=2|0,one|0,1|*CPU", "one");
  ExpectInvalid("|x=2|0,1|0,uno|*CPU", "uno");
  ExpectInvalid("|x=2|0,,1|0,1|*CPU", "''");
  ExpectInvalid("|x=2|0,1|0,99999999999999999999|*CPU", "99999999999999999999");
  ExpectInvalid("|x=4|0,1,2,3|1,2|*CPU", "'1'");
  ExpectInvalid("|x=4|0,1,2,3|2,5|*CPU", "'5'");
  ExpectInvalid("|x=4|0,1,2,3|0,2|*CPU", "'2'");
  ExpectInvalid("|x=4|0,1,2,3|-2,-1|*CPU", "'-2'");
  ExpectInvalid("|x=4|0,1,2,3|4,5|*CPU", "'4'");
  ExpectInvalid("|x=4|0,1,2,3||*CPU", "no local device ids");
  ExpectInvalid("|x=4|0,1,2,3|0,1,2|*CPU", "3 local devices");
  ExpectInvalid("|x=2|0,1|0,1|/dev/a", "1 local device names");
  ExpectInvalid("|x=2|0,1|0|/dev/a,/dev/b", "2 local device names");
  ExpectInvalid("|x=2|0,1|0,1|*CPU|/g/a,/g/b,/g/c", "3 global device names");
  ExpectInvalid("|x=2|0,1|0,1|", "no local devices");
  ExpectInvalid("|x=2|0,1|0,1|*", "'*'");
  ExpectInvalid("|x=2|0,1|0,1|*C-PU", "*C-PU");
  ExpectInvalid("||0|0|*CPU", "at least one dimension");
  ExpectInvalid("|unsharded=2|0,1|0,1|*CPU", "unsharded");
  ExpectInvalid("|x=2,unsharded=1|0,1|0,1|*CPU", "unsharded");
  ExpectInvalid("bad-name|x=2|0,1|0,1|*CPU", "bad-name");
  ExpectInvalid("|1x=2|0,1|0,1|*CPU", "1x");
}

// Parsing never crashes: any input gives a mesh or InvalidArgument, and any
// mesh it gives prints back to an equal one.
TEST(MeshString, RandomInputsNeverCrash) {
  const std::vector<std::string> fragments = {"|",
                                              "|",
                                              "|",
                                              ",",
                                              ",",
                                              "=",
                                              "x",
                                              "y",
                                              "2",
                                              "0",
                                              "1",
                                              "3",
                                              "-1",
                                              "*CPU",
                                              "*",
                                              "99999999999999999999",
                                              "9223372036854775807",
                                              "16777216",
                                              "unsharded",
                                              "x=2",
                                              "0,1",
                                              "",
                                              " ",
                                              "a"};
  std::mt19937 rng(20240601);
  int ok = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string text;
    const int n = std::uniform_int_distribution<int>(0, 14)(rng);
    for (int j = 0; j < n; ++j) {
      text +=
          fragments[std::uniform_int_distribution<size_t>(0, fragments.size() - 1)(rng)];
    }
    absl::StatusOr<Mesh> mesh = Mesh::FromString(text);
    if (mesh.ok()) {
      ++ok;
      absl::StatusOr<Mesh> back = Mesh::FromString(mesh->ToString());
      ASSERT_TRUE(back.ok()) << text << " -> " << mesh->ToString() << ": "
                             << back.status();
      EXPECT_EQ(*back, *mesh) << text;
    } else {
      EXPECT_EQ(mesh.status().code(), absl::StatusCode::kInvalidArgument)
          << text << ": " << mesh.status();
    }
  }
  // Also valid meshes with a field or two swapped for another field's
  // candidate, so the later checks (ids, names, round trip) run too.
  const std::vector<std::vector<std::string>> bases = {
      {"", "x=2", "0,1", "0,1", "*CPU", ""},
      {"m", "x=2,y=2", "0,1,2,3", "2,3", "a,b", "g0,g1,g2,g3"},
      {"", "x=4", "0,1,2,3", "0,1,2,3", "*GPU", ""},
      {"", "x=1", "0", "0", "a", "g0"}};
  const std::vector<std::vector<std::string>> pools = {
      {"", "m", "bad-", "x"},
      {"x=2", "x=2,y=2", "x=4", "x=1", "", "x=2,x=2", "x=0"},
      {"0,1", "0,1,2,3", "0", "1,0", "", "0,1,2"},
      {"0", "0,1", "2,3", "1", "0,1,2,3", "-1", ""},
      {"*CPU", "*GPU", "a,b", "a", "a,b,c,d", "*", "", ","},
      {"", "g0,g1", "g0,g1,g2,g3", "g0", ","}};
  for (int i = 0; i < 1000; ++i) {
    const std::vector<std::string>& base =
        bases[std::uniform_int_distribution<size_t>(0, bases.size() - 1)(rng)];
    const int n = std::uniform_int_distribution<int>(0, 9)(rng) < 5 ? 5 : 6;
    std::string text;
    for (int j = 0; j < n; ++j) {
      if (j) text += "|";
      if (std::uniform_int_distribution<int>(0, 3)(rng) == 0) {
        text +=
            pools[j][std::uniform_int_distribution<size_t>(0, pools[j].size() - 1)(rng)];
      } else {
        text += base[j];
      }
    }
    absl::StatusOr<Mesh> mesh = Mesh::FromString(text);
    if (mesh.ok()) {
      ++ok;
      absl::StatusOr<Mesh> back = Mesh::FromString(mesh->ToString());
      ASSERT_TRUE(back.ok()) << text << " -> " << mesh->ToString() << ": "
                             << back.status();
      EXPECT_EQ(*back, *mesh) << text;
    } else {
      EXPECT_EQ(mesh.status().code(), absl::StatusCode::kInvalidArgument)
          << text << ": " << mesh.status();
    }
  }
  EXPECT_GT(ok, 50) << "too few valid inputs to exercise the round trip";
}

}  // namespace
}  // namespace meshckpt
