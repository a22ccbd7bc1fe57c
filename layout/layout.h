// layout/ owns how tensors are split over a mesh: IndexInterval, Box,
// Layout, the split rule (ShardMap), the choice of writer ranks and reshard
// plans. Pure computation on mesh/ and base/: no I/O, no MPI.
//
// Layout: how a tensor is laid out over a Mesh, one sharding spec per tensor
// dimension.
//
// Each spec is either `unsharded` or the name of a mesh dimension; a mesh
// dimension is used at most once. Mesh dimensions not named replicate the
// tensor over them. Text form follows DTensor's `Layout.to_string()`:
//
//   sharding_specs:unsharded,model, mesh:|batch=2,model=4|0,...,7|0,1,2,3|*CPU
//
// (each spec followed by a comma, then " mesh:" and the mesh string; a scalar
// has no specs). FromString also accepts the specs without the trailing
// comma. How a dimension is cut into shards is in layout/shard_map.h.
//
// Example:
//   Mesh mesh = *Mesh::Create({{"x", 2}, {"y", 4}}, 0, 1);
//   Layout l = *Layout::Create({"unsharded", "y"}, mesh);
//   l.NumShards(1) == 4; l.MeshDimOf(0) == std::nullopt
//
// Immutable value type, thread-compatible.
#ifndef MESHCKPT_LAYOUT_LAYOUT_H_
#define MESHCKPT_LAYOUT_LAYOUT_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "meshckpt/mesh/mesh.h"

namespace meshckpt {

inline constexpr absl::string_view kUnsharded = "unsharded";

class Layout {
 public:
  // Errors: InvalidArgument for a spec that is neither `unsharded` nor a
  // dimension of `mesh`, or a mesh dimension used twice.
  static absl::StatusOr<Layout> Create(std::vector<std::string> sharding_specs,
                                       Mesh mesh);
  static absl::StatusOr<Layout> FromString(absl::string_view text);
  // Every tensor dimension unsharded.
  static Layout Replicated(Mesh mesh, int tensor_rank);
  // `tensor_dim` sharded over `mesh_dim`, everything else unsharded.
  static absl::StatusOr<Layout> ShardedAlong(Mesh mesh, int tensor_rank, int tensor_dim,
                                             absl::string_view mesh_dim);

  std::string ToString() const;

  const Mesh& mesh() const { return mesh_; }
  int rank() const { return static_cast<int>(specs_.size()); }
  const std::vector<std::string>& sharding_specs() const { return specs_; }
  // The mesh dimension index sharding `tensor_dim`, if it is sharded.
  std::optional<int> MeshDimOf(int tensor_dim) const;
  // How many ways `tensor_dim` is split (1 when unsharded).
  int64_t NumShards(int tensor_dim) const;
  bool IsFullyReplicated() const;

  // The same specs on another mesh (e.g. the restoring job's). Fails like
  // Create when the specs do not fit that mesh.
  absl::StatusOr<Layout> WithMesh(Mesh mesh) const;

  friend bool operator==(const Layout& a, const Layout& b) {
    return a.specs_ == b.specs_ && a.mesh_ == b.mesh_;
  }
  friend bool operator!=(const Layout& a, const Layout& b) { return !(a == b); }

 private:
  Layout(std::vector<std::string> specs, std::vector<int> mesh_dims, Mesh mesh)
      : specs_(std::move(specs)),
        mesh_dims_(std::move(mesh_dims)),
        mesh_(std::move(mesh)) {}

  std::vector<std::string> specs_;
  std::vector<int> mesh_dims_;  // Per tensor dim: mesh dim index or -1.
  Mesh mesh_;
};

}  // namespace meshckpt

#endif  // MESHCKPT_LAYOUT_LAYOUT_H_
