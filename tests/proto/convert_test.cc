// Tests of the proto conversions.
#include "meshckpt/proto/convert.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/base/dtype.h"
#include "meshckpt/layout/box.h"
#include "meshckpt/layout/layout.h"
#include "meshckpt/mesh/mesh.h"
#include "proto/meshckpt.pb.h"

namespace meshckpt {
namespace {

using ::testing::HasSubstr;

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

// ---------------------------------------------------------------------------
// Mesh

TEST(MeshProto, RoundTripGenerated) {
  Mesh mesh = Mesh::Create({{"batch", 2}, {"model", 4}}, 1, 2).value();
  proto::MeshProto p = MeshToProto(mesh);
  EXPECT_EQ(p.name(), "");
  ASSERT_EQ(p.dimensions_size(), 2);
  EXPECT_EQ(p.dimensions(0).name(), "batch");
  EXPECT_EQ(p.dimensions(0).size(), 2);
  EXPECT_EQ(p.dimensions(1).name(), "model");
  EXPECT_EQ(p.dimensions(1).size(), 4);
  ASSERT_EQ(p.global_device_ids_size(), 8);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(p.global_device_ids(i), i);
  EXPECT_EQ(
      std::vector<int64_t>(p.local_device_ids().begin(), p.local_device_ids().end()),
      (std::vector<int64_t>{4, 5, 6, 7}));
  ASSERT_EQ(p.local_devices_size(), 4);
  EXPECT_EQ(p.local_devices(0), "/job:localhost/replica:0/task:0/device:CPU:4");
  EXPECT_EQ(p.global_devices_size(), 0);

  absl::StatusOr<Mesh> back = MeshFromProto(p);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, mesh);
  EXPECT_EQ(back->ToString(), mesh.ToString());
}

TEST(MeshProto, RoundTripNamesAndGlobalDevices) {
  Mesh mesh =
      Mesh::FromString("my_mesh|x=2,y=2|0,1,2,3|2,3|dev_a,dev_b|g0,g1,g2,g3").value();
  proto::MeshProto p = MeshToProto(mesh);
  EXPECT_EQ(p.name(), "my_mesh");
  ASSERT_EQ(p.local_devices_size(), 2);
  EXPECT_EQ(p.local_devices(1), "dev_b");
  ASSERT_EQ(p.global_devices_size(), 4);
  EXPECT_EQ(p.global_devices(3), "g3");
  absl::StatusOr<Mesh> back = MeshFromProto(p);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, mesh);
  EXPECT_EQ(back->name(), "my_mesh");
  EXPECT_EQ(back->rank(), 1);
  EXPECT_EQ(back->global_devices(), mesh.global_devices());

  // Through the wire format too.
  proto::MeshProto parsed;
  ASSERT_TRUE(parsed.ParseFromString(p.SerializeAsString()));
  EXPECT_EQ(MeshFromProto(parsed).value(), mesh);
}

TEST(MeshProto, RoundTripOtherDeviceType) {
  Mesh mesh = Mesh::Create({{"x", 4}}, 3, 4, "GPU").value();
  absl::StatusOr<Mesh> back = MeshFromProto(MeshToProto(mesh));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, mesh);
  EXPECT_EQ(back->ToString(), "|x=4|0,1,2,3|3|*GPU");
}

TEST(MeshProto, NoLocalNamesMeansGeneratedCpu) {
  Mesh mesh = Mesh::Create({{"x", 4}}, 1, 2).value();
  proto::MeshProto p = MeshToProto(mesh);
  p.clear_local_devices();
  absl::StatusOr<Mesh> back = MeshFromProto(p);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, mesh);
}

// Above Mesh::kMaxListedDevices the proto holds ranges and a device type,
// so a mesh of 2^24 devices costs a few bytes, not one entry per device.
TEST(MeshProto, LargeMeshesAreCompact) {
  Mesh listed = Mesh::Create({{"x", Mesh::kMaxListedDevices}}, 0, 1).value();
  EXPECT_FALSE(IsCompactMeshProto(MeshToProto(listed)));
  for (const Mesh& mesh :
       {Mesh::Create({{"x", Mesh::kMaxDevices}}, 0, 1).value(),
        Mesh::Create({{"x", 4096}, {"y", 4096}}, 1, 2, "TPU", "big").value()}) {
    proto::MeshProto p = MeshToProto(mesh);
    EXPECT_TRUE(IsCompactMeshProto(p));
    EXPECT_EQ(p.global_device_ids_size(), 0);
    EXPECT_EQ(p.local_device_ids_size(), 0);
    EXPECT_EQ(p.local_devices_size(), 0);
    EXPECT_LT(p.ByteSizeLong(), 100u);
    proto::MeshProto parsed;
    ASSERT_TRUE(parsed.ParseFromString(p.SerializeAsString()));
    absl::StatusOr<Mesh> back = MeshFromProto(parsed);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, mesh);
  }
  // Explicit local names stay explicit in the compact form.
  std::vector<std::string> names;
  for (int i = 0; i < 1024; ++i) names.push_back("dev" + std::to_string(i));
  Mesh named =
      Mesh::CreateFromRanges("", {{"x", 2048}}, {0, 2048}, {1024, 2048}, names).value();
  proto::MeshProto p = MeshToProto(named);
  EXPECT_TRUE(IsCompactMeshProto(p));
  EXPECT_EQ(p.local_devices_size(), 1024);
  EXPECT_EQ(MeshFromProto(p).value(), named);
}

TEST(MeshProto, InvalidCompactProtos) {
  const proto::MeshProto good = MeshToProto(Mesh::Create({{"x", 4096}}, 1, 2).value());
  ASSERT_TRUE(MeshFromProto(good).ok());
  const std::vector<std::pair<std::string, std::function<void(proto::MeshProto*)>>>
      cases = {
          {"ranges and a list", [](proto::MeshProto* p) { p->add_global_device_ids(0); }},
          {"ranges and local ids",
           [](proto::MeshProto* p) { p->add_local_device_ids(2048); }},
          {"type and names", [](proto::MeshProto* p) { p->add_local_devices("a"); }},
          {"global range short",
           [](proto::MeshProto* p) { p->mutable_global_device_range()->set_end(4095); }},
          {"global range shifted",
           [](proto::MeshProto* p) { p->mutable_global_device_range()->set_begin(1); }},
          {"local range not a block",
           [](proto::MeshProto* p) { p->mutable_local_device_range()->set_begin(1); }},
          {"local range reversed",
           [](proto::MeshProto* p) { p->mutable_local_device_range()->set_end(0); }},
          {"no global range",
           [](proto::MeshProto* p) { p->clear_global_device_range(); }},
          {"bad device type",
           [](proto::MeshProto* p) { p->set_generated_device_type("C-PU"); }},
      };
  for (const auto& [what, mutate] : cases) {
    proto::MeshProto p = good;
    mutate(&p);
    absl::StatusOr<Mesh> mesh = MeshFromProto(p);
    ASSERT_FALSE(mesh.ok()) << what;
    EXPECT_EQ(mesh.status().code(), absl::StatusCode::kInvalidArgument) << what;
  }
}

TEST(MeshProto, InvalidProtos) {
  const proto::MeshProto good =
      MeshToProto(Mesh::Create({{"x", 2}, {"y", 2}}, 0, 2).value());
  struct Case {
    std::string what;
    std::function<void(proto::MeshProto*)> mutate;
    std::string token;
  };
  const std::vector<Case> cases = {
      {"no dims", [](proto::MeshProto* p) { p->clear_dimensions(); },
       "at least one dimension"},
      {"bad dim size", [](proto::MeshProto* p) { p->mutable_dimensions(1)->set_size(0); },
       "size 0"},
      {"duplicate dim",
       [](proto::MeshProto* p) { p->mutable_dimensions(1)->set_name("x"); }, "'x'"},
      {"unsharded dim",
       [](proto::MeshProto* p) { p->mutable_dimensions(0)->set_name("unsharded"); },
       "unsharded"},
      {"missing global id",
       [](proto::MeshProto* p) { p->mutable_global_device_ids()->RemoveLast(); },
       "got 3"},
      {"wrong global id", [](proto::MeshProto* p) { p->set_global_device_ids(2, 7); },
       "'7'"},
      {"no local ids", [](proto::MeshProto* p) { p->clear_local_device_ids(); },
       "no local device ids"},
      {"local ids not a block",
       [](proto::MeshProto* p) { p->set_local_device_ids(0, 1); }, "'1'"},
      {"local names count", [](proto::MeshProto* p) { p->add_local_devices("extra"); },
       "3 local device names"},
      {"global names count", [](proto::MeshProto* p) { p->add_global_devices("g0"); },
       "1 global device names"},
  };
  for (const Case& c : cases) {
    proto::MeshProto p = good;
    c.mutate(&p);
    absl::StatusOr<Mesh> mesh = MeshFromProto(p);
    ASSERT_FALSE(mesh.ok()) << c.what << ": " << p.DebugString();
    EXPECT_EQ(mesh.status().code(), absl::StatusCode::kInvalidArgument) << c.what;
    EXPECT_THAT(Msg(mesh.status()), HasSubstr(c.token)) << c.what;
  }
}

// ---------------------------------------------------------------------------
// Layout

Mesh Mesh8() {
  return Mesh::FromString("|batch=2,model=4|0,1,2,3,4,5,6,7|0,1,2,3|*CPU").value();
}

TEST(LayoutProto, WithMesh) {
  Layout layout = Layout::Create({"unsharded", "model"}, Mesh8()).value();
  proto::LayoutProto p = LayoutToProto(layout);
  ASSERT_EQ(p.sharding_specs_size(), 2);
  EXPECT_EQ(p.sharding_specs(0), "unsharded");
  EXPECT_EQ(p.sharding_specs(1), "model");
  ASSERT_TRUE(p.has_mesh());
  EXPECT_EQ(MeshFromProto(p.mesh()).value(), Mesh8());

  absl::StatusOr<Layout> back = LayoutFromProto(p);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, layout);

  // The proto's own mesh wins over the default.
  Mesh other = Mesh::Create({{"batch", 4}, {"model", 2}}, 0, 1).value();
  absl::StatusOr<Layout> own = LayoutFromProto(p, other);
  ASSERT_TRUE(own.ok()) << own.status();
  EXPECT_EQ(*own, layout);
}

TEST(LayoutProto, WithoutMesh) {
  Layout layout = Layout::Create({"batch", "unsharded", "model"}, Mesh8()).value();
  proto::LayoutProto p = LayoutToProto(layout, /*include_mesh=*/false);
  EXPECT_FALSE(p.has_mesh());
  ASSERT_EQ(p.sharding_specs_size(), 3);
  EXPECT_EQ(p.sharding_specs(2), "model");

  absl::StatusOr<Layout> no_default = LayoutFromProto(p);
  ASSERT_FALSE(no_default.ok());
  EXPECT_EQ(no_default.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(no_default.status()), HasSubstr("mesh"));

  absl::StatusOr<Layout> back = LayoutFromProto(p, Mesh8());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, layout);

  // A different default mesh: the same specs on that mesh.
  Mesh other = Mesh::Create({{"batch", 4}, {"model", 2}}, 1, 2).value();
  absl::StatusOr<Layout> moved = LayoutFromProto(p, other);
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ(*moved, layout.WithMesh(other).value());

  // Specs that do not fit the default mesh.
  absl::StatusOr<Layout> bad =
      LayoutFromProto(p, Mesh::Create({{"batch", 2}}, 0, 1).value());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(bad.status()), HasSubstr("'model'"));
}

TEST(LayoutProto, Scalar) {
  Layout layout = Layout::Replicated(Mesh8(), 0);
  proto::LayoutProto p = LayoutToProto(layout);
  EXPECT_EQ(p.sharding_specs_size(), 0);
  EXPECT_EQ(LayoutFromProto(p).value(), layout);
}

TEST(LayoutProto, InvalidProtos) {
  proto::LayoutProto p = LayoutToProto(Layout::Create({"batch"}, Mesh8()).value());
  proto::LayoutProto bad_spec = p;
  bad_spec.set_sharding_specs(0, "nope");
  absl::StatusOr<Layout> l = LayoutFromProto(bad_spec);
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(l.status()), HasSubstr("'nope'"));

  proto::LayoutProto twice = p;
  twice.add_sharding_specs("batch");
  l = LayoutFromProto(twice, Mesh8());
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.status().code(), absl::StatusCode::kInvalidArgument);

  proto::LayoutProto bad_mesh = p;
  bad_mesh.mutable_mesh()->clear_local_device_ids();
  l = LayoutFromProto(bad_mesh, Mesh8());
  ASSERT_FALSE(l.ok()) << "an invalid embedded mesh is not replaced by the default";
  EXPECT_EQ(l.status().code(), absl::StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------
// DType

TEST(DTypeProto, EveryDTypeRoundTrips) {
  for (DType d : AllDTypes()) {
    const proto::DataType p = DTypeToProto(d);
    EXPECT_EQ(static_cast<int>(p), static_cast<int>(d)) << DTypeName(d);
    EXPECT_TRUE(proto::DataType_IsValid(p)) << DTypeName(d);
    absl::StatusOr<DType> back = DTypeFromProto(p);
    ASSERT_TRUE(back.ok()) << DTypeName(d) << ": " << back.status();
    EXPECT_EQ(*back, d);
  }
}

TEST(DTypeProto, TensorFlowNames) {
  EXPECT_EQ(DTypeToProto(DType::kFloat32), proto::DT_FLOAT);
  EXPECT_EQ(DTypeToProto(DType::kFloat64), proto::DT_DOUBLE);
  EXPECT_EQ(DTypeToProto(DType::kFloat16), proto::DT_HALF);
  EXPECT_EQ(DTypeToProto(DType::kBfloat16), proto::DT_BFLOAT16);
  EXPECT_EQ(DTypeToProto(DType::kInt64), proto::DT_INT64);
  EXPECT_EQ(DTypeToProto(DType::kString), proto::DT_STRING);
  EXPECT_EQ(DTypeToProto(DType::kComplex128), proto::DT_COMPLEX128);
  EXPECT_EQ(DTypeToProto(DType::kUint64), proto::DT_UINT64);
}

TEST(DTypeProto, EveryProtoValueButInvalidConverts) {
  const google::protobuf::EnumDescriptor* e = proto::DataType_descriptor();
  for (int i = 0; i < e->value_count(); ++i) {
    const proto::DataType p = static_cast<proto::DataType>(e->value(i)->number());
    absl::StatusOr<DType> d = DTypeFromProto(p);
    if (p == proto::DT_INVALID) {
      EXPECT_FALSE(d.ok());
    } else {
      EXPECT_TRUE(d.ok()) << e->value(i)->name() << ": " << d.status();
    }
  }
}

TEST(DTypeProto, InvalidNumbers) {
  for (int n : {0, 11, 20, 99, -5}) {
    absl::StatusOr<DType> d = DTypeFromProto(static_cast<proto::DataType>(n));
    ASSERT_FALSE(d.ok()) << n;
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Msg(d.status()), HasSubstr(std::to_string(n)));
  }
}

// ---------------------------------------------------------------------------
// Chunk boxes

TEST(ChunkProto, RoundTrip) {
  for (const Box& box :
       {Box::Unchecked({1, 2, 3}, {4, 5, 6}), Box(), Box::Unchecked({7}, {0})}) {
    proto::ChunkProto c;
    c.add_origin(99);  // Stale content is replaced.
    c.set_writer_rank(3);
    ChunkBoxToProto(box, &c);
    EXPECT_EQ(c.origin_size(), box.rank());
    EXPECT_EQ(c.shape_size(), box.rank());
    EXPECT_EQ(c.writer_rank(), 3) << "other fields untouched";
    absl::StatusOr<Box> back = ChunkBoxFromProto(c);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, box);
  }
}

TEST(ChunkProto, Errors) {
  struct Case {
    std::vector<int64_t> origin, shape;
    std::string token;
  };
  const std::vector<Case> cases = {
      {{0, 0}, {4}, "rank"},
      {{0}, {4, 4}, "rank"},
      {{}, {4}, "rank"},
      {{0, -1}, {4, 4}, "-1"},
      {{0, 0}, {4, -2}, "-2"},
      {{0}, {int64_t{1} << 62, int64_t{1} << 62}, "rank"},
      {{0, 0}, {int64_t{1} << 40, int64_t{1} << 40}, "1099511627776"},
      {{INT64_MAX}, {1}, std::to_string(INT64_MAX)},
  };
  for (const Case& c : cases) {
    proto::ChunkProto p;
    for (int64_t o : c.origin) p.add_origin(o);
    for (int64_t s : c.shape) p.add_shape(s);
    absl::StatusOr<Box> box = ChunkBoxFromProto(p);
    ASSERT_FALSE(box.ok()) << p.DebugString();
    EXPECT_EQ(box.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Msg(box.status()), HasSubstr(c.token));
  }
}

}  // namespace
}  // namespace meshckpt
