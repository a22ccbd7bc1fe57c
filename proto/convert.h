// proto/ owns the .proto schemas of the on-disk index and state file and
// the conversions between them and mesh/, layout/ and base/ values. Only
// io/format/ and the state file's .cc use it; no public header of the
// library includes a generated header.
//
// Conversions between the value types (Mesh, Layout, Box, DType) and their
// protos. Kept out of the value types' headers so the core stays free of
// generated code. FromProto functions validate everything (the protos come
// from files) and return InvalidArgument for what does not hold.
//
//   proto::MeshProto p = MeshToProto(mesh);
//   absl::StatusOr<Mesh> back = MeshFromProto(p);  // == mesh
#ifndef MESHCKPT_PROTO_CONVERT_H_
#define MESHCKPT_PROTO_CONVERT_H_

#include "absl/status/statusor.h"
#include "meshckpt/base/dtype.h"
#include "meshckpt/layout/box.h"
#include "meshckpt/layout/layout.h"
#include "meshckpt/mesh/mesh.h"
#include "proto/meshckpt.pb.h"

namespace meshckpt {

// Meshes above Mesh::kMaxListedDevices devices get the compact form (id
// ranges, device type), which needs a format-2 reader.
proto::MeshProto MeshToProto(const Mesh& mesh);
absl::StatusOr<Mesh> MeshFromProto(const proto::MeshProto& proto);
// True for the compact form.
bool IsCompactMeshProto(const proto::MeshProto& proto);

// With `include_mesh` false the mesh is left out (an index stores it once).
proto::LayoutProto LayoutToProto(const Layout& layout, bool include_mesh = true);
// Uses `mesh` when the proto has none.
absl::StatusOr<Layout> LayoutFromProto(const proto::LayoutProto& proto, const Mesh& mesh);
absl::StatusOr<Layout> LayoutFromProto(const proto::LayoutProto& proto);

proto::DataType DTypeToProto(DType dtype);
absl::StatusOr<DType> DTypeFromProto(proto::DataType dtype);

// The chunk's box (origin and shape).
absl::StatusOr<Box> ChunkBoxFromProto(const proto::ChunkProto& chunk);
void ChunkBoxToProto(const Box& box, proto::ChunkProto* chunk);

}  // namespace meshckpt

#endif  // MESHCKPT_PROTO_CONVERT_H_
