// libFuzzer target: Mesh::FromString (mesh/mesh.h). Whatever parses must
// print back to a string that parses to the same mesh, and its device
// arithmetic must stay in range.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "meshckpt/mesh/mesh.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<meshckpt::Mesh> mesh = meshckpt::Mesh::FromString(text);
  if (!mesh.ok()) return 0;
  absl::StatusOr<meshckpt::Mesh> again = meshckpt::Mesh::FromString(mesh->ToString());
  if (!again.ok() || *again != *mesh) std::abort();
  const int64_t n = mesh->num_devices();
  for (int64_t d : {int64_t{0}, n / 2, n - 1}) {
    if (mesh->DeviceAt(mesh->DeviceCoords(d)) != d) std::abort();
    const int r = mesh->RankOfDevice(d);
    if (r < 0 || r >= mesh->num_ranks()) std::abort();
  }
  for (int r : {0, mesh->num_ranks() - 1}) {
    absl::StatusOr<meshckpt::Mesh> other = mesh->ForRank(r);
    if (!other.ok() || !other->SameGridAs(*mesh)) std::abort();
  }
  return 0;
}
