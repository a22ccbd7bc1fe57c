// Conversions between the value types and their protos.
#include "meshckpt/proto/convert.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "meshckpt/base/status_macros.h"

namespace meshckpt {

proto::MeshProto MeshToProto(const Mesh& mesh) {
  proto::MeshProto p;
  p.set_name(mesh.name());
  for (const MeshDimension& d : mesh.dims()) {
    proto::MeshDimensionProto* dp = p.add_dimensions();
    dp->set_name(d.name);
    dp->set_size(d.size);
  }
  const DeviceRange local = mesh.local_device_range();
  if (mesh.num_devices() <= Mesh::kMaxListedDevices) {
    // Format 1, readable by every meshckpt.
    for (int64_t i = 0; i < mesh.num_devices(); ++i) p.add_global_device_ids(i);
    for (int64_t id = local.begin; id < local.end; ++id) p.add_local_device_ids(id);
    for (const std::string& d : mesh.local_devices()) p.add_local_devices(d);
  } else {
    p.mutable_global_device_range()->set_begin(0);
    p.mutable_global_device_range()->set_end(mesh.num_devices());
    p.mutable_local_device_range()->set_begin(local.begin);
    p.mutable_local_device_range()->set_end(local.end);
    if (!mesh.generated_device_type().empty()) {
      p.set_generated_device_type(mesh.generated_device_type());
    } else {
      for (const std::string& d : mesh.local_devices()) p.add_local_devices(d);
    }
  }
  for (const std::string& d : mesh.global_devices()) p.add_global_devices(d);
  return p;
}

bool IsCompactMeshProto(const proto::MeshProto& p) {
  return p.has_global_device_range() || p.has_local_device_range() ||
         !p.generated_device_type().empty();
}

absl::StatusOr<Mesh> MeshFromProto(const proto::MeshProto& p) {
  std::vector<MeshDimension> dims;
  for (const proto::MeshDimensionProto& d : p.dimensions()) {
    dims.push_back({d.name(), d.size()});
  }
  if (!IsCompactMeshProto(p)) {
    return Mesh::CreateFromParts(
        p.name(), std::move(dims),
        {p.global_device_ids().begin(), p.global_device_ids().end()},
        {p.local_device_ids().begin(), p.local_device_ids().end()},
        {p.local_devices().begin(), p.local_devices().end()},
        {p.global_devices().begin(), p.global_devices().end()});
  }
  if (p.global_device_ids_size() > 0 || p.local_device_ids_size() > 0 ||
      (!p.generated_device_type().empty() && p.local_devices_size() > 0)) {
    return absl::InvalidArgumentError(
        "mesh proto mixes device id ranges with id or name lists");
  }
  const DeviceRange global{p.global_device_range().begin(),
                           p.global_device_range().end()};
  const DeviceRange local{p.local_device_range().begin(), p.local_device_range().end()};
  return Mesh::CreateFromRanges(
      p.name(), std::move(dims), global, local,
      {p.local_devices().begin(), p.local_devices().end()},
      p.generated_device_type().empty() ? "CPU" : p.generated_device_type(),
      {p.global_devices().begin(), p.global_devices().end()});
}

proto::LayoutProto LayoutToProto(const Layout& layout, bool include_mesh) {
  proto::LayoutProto p;
  for (const std::string& s : layout.sharding_specs()) p.add_sharding_specs(s);
  if (include_mesh) *p.mutable_mesh() = MeshToProto(layout.mesh());
  return p;
}

absl::StatusOr<Layout> LayoutFromProto(const proto::LayoutProto& p, const Mesh& mesh) {
  std::vector<std::string> specs(p.sharding_specs().begin(), p.sharding_specs().end());
  if (!p.has_mesh()) return Layout::Create(std::move(specs), mesh);
  MESHCKPT_ASSIGN_OR_RETURN(Mesh own, MeshFromProto(p.mesh()));
  return Layout::Create(std::move(specs), std::move(own));
}

absl::StatusOr<Layout> LayoutFromProto(const proto::LayoutProto& p) {
  if (!p.has_mesh()) {
    return absl::InvalidArgumentError("layout proto has no mesh");
  }
  MESHCKPT_ASSIGN_OR_RETURN(Mesh mesh, MeshFromProto(p.mesh()));
  return LayoutFromProto(p, mesh);
}

proto::DataType DTypeToProto(DType dtype) {
  return static_cast<proto::DataType>(static_cast<int>(dtype));
}

absl::StatusOr<DType> DTypeFromProto(proto::DataType dtype) {
  return DTypeFromEnum(static_cast<int>(dtype));
}

absl::StatusOr<Box> ChunkBoxFromProto(const proto::ChunkProto& chunk) {
  return Box::Create({chunk.origin().begin(), chunk.origin().end()},
                     {chunk.shape().begin(), chunk.shape().end()});
}

void ChunkBoxToProto(const Box& box, proto::ChunkProto* chunk) {
  chunk->clear_origin();
  chunk->clear_shape();
  for (int64_t o : box.origin()) chunk->add_origin(o);
  for (int64_t s : box.shape()) chunk->add_shape(s);
}

}  // namespace meshckpt
