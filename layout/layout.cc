// Layout: how each tensor dimension is split over a mesh dimension.
#include "meshckpt/layout/layout.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "meshckpt/base/status_macros.h"

namespace meshckpt {

absl::StatusOr<Layout> Layout::Create(std::vector<std::string> sharding_specs,
                                      Mesh mesh) {
  std::vector<int> mesh_dims(sharding_specs.size(), -1);
  std::vector<int> used_by(mesh.num_dims(), -1);
  for (size_t i = 0; i < sharding_specs.size(); ++i) {
    const std::string& spec = sharding_specs[i];
    if (spec == kUnsharded) continue;
    std::optional<int> d = mesh.DimIndex(spec);
    if (!d.has_value()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "sharding spec '", spec, "' of tensor dimension ", i,
          " is neither 'unsharded' nor a dimension of mesh ", mesh.ToShortString()));
    }
    if (used_by[*d] >= 0) {
      return absl::InvalidArgumentError(absl::StrCat("mesh dimension '", spec,
                                                     "' shards both tensor dimension ",
                                                     used_by[*d], " and ", i));
    }
    used_by[*d] = static_cast<int>(i);
    mesh_dims[i] = *d;
  }
  return Layout(std::move(sharding_specs), std::move(mesh_dims), std::move(mesh));
}

absl::StatusOr<Layout> Layout::FromString(absl::string_view text) {
  absl::string_view rest = text;
  if (!absl::ConsumePrefix(&rest, "sharding_specs:")) {
    return absl::InvalidArgumentError(
        absl::StrCat("layout string '", text, "' does not start with 'sharding_specs:'"));
  }
  const size_t mesh_at = rest.find("mesh:");
  if (mesh_at == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("layout string '", text, "' has no 'mesh:' field"));
  }
  absl::string_view specs_text = rest.substr(0, mesh_at);
  absl::string_view mesh_text = rest.substr(mesh_at + 5);
  // DTensor writes "x,unsharded, mesh:"; tolerate "x,unsharded mesh:" too.
  specs_text = absl::StripTrailingAsciiWhitespace(specs_text);
  absl::ConsumeSuffix(&specs_text, ",");
  std::vector<std::string> specs;
  if (!specs_text.empty()) {
    for (absl::string_view s : absl::StrSplit(specs_text, ',')) {
      if (s.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("layout string '", text, "' has an empty sharding spec"));
      }
      specs.emplace_back(s);
    }
  }
  MESHCKPT_ASSIGN_OR_RETURN(Mesh mesh, Mesh::FromString(mesh_text));
  return Create(std::move(specs), std::move(mesh));
}

Layout Layout::Replicated(Mesh mesh, int tensor_rank) {
  return Layout(std::vector<std::string>(tensor_rank, std::string(kUnsharded)),
                std::vector<int>(tensor_rank, -1), std::move(mesh));
}

absl::StatusOr<Layout> Layout::ShardedAlong(Mesh mesh, int tensor_rank, int tensor_dim,
                                            absl::string_view mesh_dim) {
  if (tensor_dim < 0 || tensor_dim >= tensor_rank) {
    return absl::InvalidArgumentError(absl::StrCat("tensor dimension ", tensor_dim,
                                                   " is not in [0, ", tensor_rank, ")"));
  }
  std::vector<std::string> specs(tensor_rank, std::string(kUnsharded));
  specs[tensor_dim] = std::string(mesh_dim);
  return Create(std::move(specs), std::move(mesh));
}

std::string Layout::ToString() const {
  std::string out = "sharding_specs:";
  for (const std::string& s : specs_) absl::StrAppend(&out, s, ",");
  absl::StrAppend(&out, " mesh:", mesh_.ToString());
  return out;
}

std::optional<int> Layout::MeshDimOf(int tensor_dim) const {
  const int d = mesh_dims_[tensor_dim];
  if (d < 0) return std::nullopt;
  return d;
}

int64_t Layout::NumShards(int tensor_dim) const {
  const int d = mesh_dims_[tensor_dim];
  return d < 0 ? 1 : mesh_.dims()[d].size;
}

bool Layout::IsFullyReplicated() const {
  for (int d : mesh_dims_) {
    if (d >= 0) return false;
  }
  return true;
}

absl::StatusOr<Layout> Layout::WithMesh(Mesh mesh) const {
  return Create(specs_, std::move(mesh));
}

}  // namespace meshckpt
