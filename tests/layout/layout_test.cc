// Tests of Layout.
#include "meshckpt/layout/layout.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/mesh/mesh.h"

namespace meshckpt {
namespace {

using ::testing::HasSubstr;

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

const char kMesh8[] = "|batch=2,model=4|0,1,2,3,4,5,6,7|0,1,2,3|*CPU";

Mesh Mesh8() { return Mesh::FromString(kMesh8).value(); }

void ExpectInvalid(const std::string& text, const std::string& token) {
  absl::StatusOr<Layout> l = Layout::FromString(text);
  ASSERT_FALSE(l.ok()) << "'" << text << "' parsed as " << l->ToString();
  EXPECT_EQ(l.status().code(), absl::StatusCode::kInvalidArgument)
      << text << ": " << l.status();
  EXPECT_THAT(Msg(l.status()), HasSubstr(token)) << "input: " << text;
}

TEST(Layout, HeaderExample) {
  Mesh mesh = Mesh::Create({{"x", 2}, {"y", 4}}, 0, 1).value();
  absl::StatusOr<Layout> l = Layout::Create({"unsharded", "y"}, mesh);
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(l->NumShards(1), 4);
  EXPECT_EQ(l->NumShards(0), 1);
  EXPECT_EQ(l->MeshDimOf(0), std::nullopt);
  EXPECT_EQ(l->MeshDimOf(1), 1);
  EXPECT_EQ(l->rank(), 2);
  EXPECT_EQ(l->mesh(), mesh);
  EXPECT_EQ(l->sharding_specs(), (std::vector<std::string>{"unsharded", "y"}));
  EXPECT_FALSE(l->IsFullyReplicated());
}

TEST(Layout, CreateUnknownMeshDim) {
  absl::StatusOr<Layout> l = Layout::Create({"batch", "modle"}, Mesh8());
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(l.status()), HasSubstr("'modle'"));
  EXPECT_THAT(Msg(l.status()), HasSubstr("dimension 1"));

  // Specs are case sensitive and not trimmed.
  EXPECT_FALSE(Layout::Create({"Batch"}, Mesh8()).ok());
  EXPECT_FALSE(Layout::Create({" batch"}, Mesh8()).ok());
  EXPECT_FALSE(Layout::Create({""}, Mesh8()).ok());
  EXPECT_FALSE(Layout::Create({"UNSHARDED"}, Mesh8()).ok());
}

TEST(Layout, CreateMeshDimUsedTwice) {
  absl::StatusOr<Layout> l = Layout::Create({"model", "unsharded", "model"}, Mesh8());
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(l.status()), HasSubstr("'model'"));
  EXPECT_THAT(Msg(l.status()), HasSubstr("0 and 2"));
}

TEST(Layout, UnshardedMayRepeat) {
  absl::StatusOr<Layout> l =
      Layout::Create({"unsharded", "unsharded", "unsharded"}, Mesh8());
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_TRUE(l->IsFullyReplicated());
}

TEST(LayoutString, RoundTripDTensorForm) {
  const std::string text = std::string("sharding_specs:unsharded,model, mesh:") + kMesh8;
  absl::StatusOr<Layout> l = Layout::FromString(text);
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(l->sharding_specs(), (std::vector<std::string>{"unsharded", "model"}));
  EXPECT_EQ(l->mesh(), Mesh8());
  EXPECT_EQ(l->MeshDimOf(1), 1);
  EXPECT_EQ(l->NumShards(1), 4);
  EXPECT_EQ(l->ToString(), text);
  absl::StatusOr<Layout> back = Layout::FromString(l->ToString());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, *l);
}

TEST(LayoutString, Scalar) {
  const std::string text = "sharding_specs: mesh:|x=2|0,1|0,1|*CPU";
  absl::StatusOr<Layout> l = Layout::FromString(text);
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(l->rank(), 0);
  EXPECT_TRUE(l->IsFullyReplicated());
  EXPECT_EQ(l->ToString(), text);
  EXPECT_EQ(Layout::FromString(l->ToString()).value(), *l);
  EXPECT_EQ(*l, Layout::Replicated(Mesh::FromString("|x=2|0,1|0,1|*CPU").value(), 0));
  // Without the space.
  absl::StatusOr<Layout> tight =
      Layout::FromString("sharding_specs:mesh:|x=2|0,1|0,1|*CPU");
  ASSERT_TRUE(tight.ok()) << tight.status();
  EXPECT_EQ(*tight, *l);
}

TEST(LayoutString, NoTrailingComma) {
  absl::StatusOr<Layout> l =
      Layout::FromString(std::string("sharding_specs:batch,unsharded mesh:") + kMesh8);
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(l->sharding_specs(), (std::vector<std::string>{"batch", "unsharded"}));
  absl::StatusOr<Layout> dtensor =
      Layout::FromString(std::string("sharding_specs:batch,unsharded, mesh:") + kMesh8);
  ASSERT_TRUE(dtensor.ok()) << dtensor.status();
  EXPECT_EQ(*l, *dtensor);
  EXPECT_EQ(l->ToString(), std::string("sharding_specs:batch,unsharded, mesh:") + kMesh8);

  absl::StatusOr<Layout> x =
      Layout::FromString("sharding_specs:x,unsharded mesh:|x=2|0,1|0,1|*CPU");
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->MeshDimOf(0), 0);
  EXPECT_EQ(x->ToString(), "sharding_specs:x,unsharded, mesh:|x=2|0,1|0,1|*CPU");
}

TEST(LayoutString, RoundTripWithNamedMeshAndExplicitDevices) {
  absl::StatusOr<Layout> l = Layout::FromString(
      "sharding_specs:y,x, mesh:m|x=2,y=3|0,1,2,3,4,5|3,4,5|d3,d4,d5|g0,g1,g2,g3,g4,g5");
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(l->mesh().name(), "m");
  EXPECT_EQ(l->mesh().rank(), 1);
  EXPECT_EQ(l->MeshDimOf(0), 1);
  EXPECT_EQ(l->MeshDimOf(1), 0);
  absl::StatusOr<Layout> back = Layout::FromString(l->ToString());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, *l);
}

// A mesh dimension may be called "mesh"; the specs must not be confused with
// the "mesh:" field.
TEST(LayoutString, MeshDimensionCalledMesh) {
  const std::string text = "sharding_specs:mesh,unsharded, mesh:|mesh=2|0,1|0,1|*CPU";
  absl::StatusOr<Layout> l = Layout::FromString(text);
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(l->MeshDimOf(0), 0);
  EXPECT_EQ(l->ToString(), text);
}

TEST(LayoutString, Malformed) {
  const std::string mesh = kMesh8;
  ExpectInvalid("unsharded,model, mesh:" + mesh, "sharding_specs:");
  ExpectInvalid("specs:unsharded, mesh:" + mesh, "sharding_specs:");
  ExpectInvalid("", "sharding_specs:");
  ExpectInvalid("sharding_specs:unsharded,model,", "mesh:");
  ExpectInvalid("sharding_specs:unsharded,model, " + mesh, "mesh:");
  ExpectInvalid("sharding_specs:,, mesh:" + mesh, "empty sharding spec");
  ExpectInvalid("sharding_specs:batch,,model, mesh:" + mesh, "empty sharding spec");
  ExpectInvalid("sharding_specs:,batch, mesh:" + mesh, "empty sharding spec");
  ExpectInvalid("sharding_specs:unsharded, mesh:|x=two|0,1|0,1|*CPU", "x=two");
  ExpectInvalid("sharding_specs:unsharded, mesh:", "fields");
  ExpectInvalid("sharding_specs:unsharded, mesh:|x=2|0,1|0,1", "fields");
  ExpectInvalid("sharding_specs:nope, mesh:" + mesh, "'nope'");
  ExpectInvalid("sharding_specs:batch,batch, mesh:" + mesh, "'batch'");
}

TEST(Layout, Replicated) {
  Layout l = Layout::Replicated(Mesh8(), 3);
  EXPECT_EQ(l.rank(), 3);
  EXPECT_TRUE(l.IsFullyReplicated());
  for (int d = 0; d < 3; ++d) {
    EXPECT_EQ(l.sharding_specs()[d], "unsharded");
    EXPECT_EQ(l.MeshDimOf(d), std::nullopt);
    EXPECT_EQ(l.NumShards(d), 1);
  }
  EXPECT_EQ(l, Layout::Create({"unsharded", "unsharded", "unsharded"}, Mesh8()).value());
  EXPECT_EQ(l.ToString(),
            std::string("sharding_specs:unsharded,unsharded,unsharded, mesh:") + kMesh8);
  EXPECT_EQ(Layout::Replicated(Mesh8(), 0).rank(), 0);
}

TEST(Layout, ShardedAlong) {
  absl::StatusOr<Layout> l = Layout::ShardedAlong(Mesh8(), 3, 1, "model");
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(l->sharding_specs(),
            (std::vector<std::string>{"unsharded", "model", "unsharded"}));
  EXPECT_EQ(l->MeshDimOf(1), 1);
  EXPECT_EQ(l->NumShards(1), 4);
  EXPECT_FALSE(l->IsFullyReplicated());

  absl::StatusOr<Layout> b = Layout::ShardedAlong(Mesh8(), 1, 0, "batch");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->NumShards(0), 2);
  EXPECT_EQ(b->MeshDimOf(0), 0);
}

TEST(Layout, ShardedAlongErrors) {
  for (auto [rank, dim] :
       std::vector<std::pair<int, int>>{{2, 2}, {2, -1}, {0, 0}, {3, 7}}) {
    absl::StatusOr<Layout> l = Layout::ShardedAlong(Mesh8(), rank, dim, "model");
    ASSERT_FALSE(l.ok()) << rank << " " << dim;
    EXPECT_EQ(l.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Msg(l.status()), HasSubstr(std::to_string(dim)));
  }
  absl::StatusOr<Layout> l = Layout::ShardedAlong(Mesh8(), 2, 0, "nope");
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(l.status()), HasSubstr("'nope'"));
}

TEST(Layout, MeshDimOfAndNumShards) {
  Mesh mesh = Mesh::Create({{"a", 3}, {"b", 5}, {"c", 2}}, 0, 1).value();
  Layout l = Layout::Create({"c", "unsharded", "a", "b"}, mesh).value();
  EXPECT_EQ(l.MeshDimOf(0), 2);
  EXPECT_EQ(l.MeshDimOf(1), std::nullopt);
  EXPECT_EQ(l.MeshDimOf(2), 0);
  EXPECT_EQ(l.MeshDimOf(3), 1);
  EXPECT_EQ(l.NumShards(0), 2);
  EXPECT_EQ(l.NumShards(1), 1);
  EXPECT_EQ(l.NumShards(2), 3);
  EXPECT_EQ(l.NumShards(3), 5);
  EXPECT_FALSE(l.IsFullyReplicated());
}

TEST(Layout, IsFullyReplicated) {
  EXPECT_TRUE(Layout::Create({}, Mesh8()).value().IsFullyReplicated());
  EXPECT_TRUE(Layout::Create({"unsharded"}, Mesh8()).value().IsFullyReplicated());
  EXPECT_FALSE(Layout::Create({"batch"}, Mesh8()).value().IsFullyReplicated());
  EXPECT_FALSE(
      Layout::Create({"unsharded", "model"}, Mesh8()).value().IsFullyReplicated());
}

TEST(Layout, WithMesh) {
  Layout l = Layout::Create({"model", "unsharded"}, Mesh8()).value();
  Mesh other = Mesh::Create({{"batch", 4}, {"model", 2}}, 1, 4).value();
  absl::StatusOr<Layout> moved = l.WithMesh(other);
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ(moved->sharding_specs(), l.sharding_specs());
  EXPECT_EQ(moved->mesh(), other);
  EXPECT_EQ(moved->NumShards(0), 2);
  EXPECT_EQ(moved->MeshDimOf(0), 1);
  EXPECT_NE(*moved, l);
  EXPECT_EQ(moved->WithMesh(Mesh8()).value(), l);

  absl::StatusOr<Layout> bad = l.WithMesh(Mesh::Create({{"batch", 8}}, 0, 1).value());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(bad.status()), HasSubstr("'model'"));
}

TEST(Layout, Equality) {
  Layout a = Layout::Create({"batch"}, Mesh8()).value();
  EXPECT_EQ(a, Layout::Create({"batch"}, Mesh8()).value());
  EXPECT_NE(a, Layout::Create({"model"}, Mesh8()).value());
  EXPECT_NE(a, Layout::Create({"batch"}, Mesh8().ForRank(1).value()).value());
}

}  // namespace
}  // namespace meshckpt
