// mesh/ owns the Mesh value type and its DTensor text form. It depends on
// base/ only: no MPI, no HDF5, no protobuf.
//
// Mesh: named dimensions over a grid of devices, and which devices are ours.
//
// A mesh of dimensions (d0=s0, ..., dn=sn) has D = s0*...*sn devices with
// global ids 0..D-1 laid out row-major (the last dimension varies fastest).
// The devices are spread over R ranks in contiguous blocks of L = D/R: rank r
// holds ids [r*L, (r+1)*L). A Mesh value is one rank's view: it records that
// rank's local ids and device names. Everything else (coordinates, the rank
// that holds a device) is derived and identical on every rank.
//
// Text form follows DTensor (`tf.experimental.dtensor.Mesh.to_string`):
//
//   [name]|batch=2,model=4|0,1,2,3,4,5,6,7|0,1,2,3|<local devices>[|<global devices>]
//
// where <local devices> is a comma list of device names or the shorthand
// `*CPU`, meaning `/job:localhost/replica:0/task:0/device:CPU:<id>` for each
// local id. Differences from DTensor: global ids must be exactly 0..D-1 in
// order, and the local ids must be one rank's contiguous block. An id list
// may also hold ranges `first-last` (`|x=4096|0-4095|0-2047|*CPU`); ToString
// writes ranges once a mesh has more than kMaxListedDevices devices, so the
// text of a mesh of 2^24 devices stays short (DTensor would not parse it).
//
// Memory and time follow the mesh's dimensions, not its device count: ids
// are ranges and generated device names are made on demand. Only the calls
// marked O(devices per rank) build per-device lists.
//
// Example:
//   absl::StatusOr<Mesh> mesh = Mesh::Create({{"batch", 2}, {"model", 4}},
//                                            /*rank=*/1, /*num_ranks=*/2);
//   // mesh->local_device_range() == {4, 8}
//   // mesh->DeviceCoords(6) == {1, 2}
//
// Mesh is an immutable value type; it is thread-compatible and cheap to copy
// unless it was given explicit device names.
#ifndef MESHCKPT_MESH_MESH_H_
#define MESHCKPT_MESH_MESH_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace meshckpt {

// Device ids [begin, end).
struct DeviceRange {
  int64_t begin = 0;
  int64_t end = 0;

  int64_t size() const { return end - begin; }
  bool empty() const { return end <= begin; }
  bool contains(int64_t id) const { return begin <= id && id < end; }
  friend bool operator==(const DeviceRange& a, const DeviceRange& b) {
    return a.begin == b.begin && a.end == b.end;
  }
  friend bool operator!=(const DeviceRange& a, const DeviceRange& b) { return !(a == b); }
};

// "4-7" for [4, 8), "4" for [4, 5), "" when empty.
std::string DeviceRangeText(DeviceRange range);

namespace mesh_internal {
struct IdRun;  // A run of ids as parsed; see mesh.cc.
}  // namespace mesh_internal

struct MeshDimension {
  std::string name;
  int64_t size = 0;

  friend bool operator==(const MeshDimension& a, const MeshDimension& b) {
    return a.name == b.name && a.size == b.size;
  }
  friend bool operator!=(const MeshDimension& a, const MeshDimension& b) {
    return !(a == b);
  }
};

class Mesh {
 public:
  // Largest mesh we accept; keeps every product of sizes far from overflow.
  static constexpr int64_t kMaxDevices = int64_t{1} << 24;
  // Meshes up to this size print their ids one by one (DTensor's form) in
  // ToString and the checkpoint index; larger ones print ranges.
  static constexpr int64_t kMaxListedDevices = 1024;

  // The common case: D devices spread evenly over `num_ranks` ranks, viewed
  // from `rank`, with generated device names of `device_type`.
  static absl::StatusOr<Mesh> Create(std::vector<MeshDimension> dims, int rank,
                                     int num_ranks, absl::string_view device_type = "CPU",
                                     std::string name = "");

  // Every part given explicitly, as in the DTensor constructor. An empty
  // `local_devices` means generated `CPU` names. `global_devices` may be
  // empty (single-client meshes leave it out).
  static absl::StatusOr<Mesh> CreateFromParts(
      std::string name, std::vector<MeshDimension> dims,
      std::vector<int64_t> global_device_ids, std::vector<int64_t> local_device_ids,
      std::vector<std::string> local_devices,
      std::vector<std::string> global_devices = {});
  // As CreateFromParts with the ids as ranges: `global_ids` must be [0, D)
  // and `local_ids` one rank's block. Empty `local_devices` means names
  // generated for `device_type`. Builds no per-device list.
  static absl::StatusOr<Mesh> CreateFromRanges(
      std::string name, std::vector<MeshDimension> dims, DeviceRange global_ids,
      DeviceRange local_ids, std::vector<std::string> local_devices,
      absl::string_view device_type = "CPU",
      std::vector<std::string> global_devices = {});

  // Parses the DTensor text form. Errors are InvalidArgument naming the bad
  // token; never throws.
  static absl::StatusOr<Mesh> FromString(absl::string_view text);
  // The DTensor text form. Uses the `*TYPE` shorthand when the local device
  // names are exactly the generated ones, so FromString(ToString()) == *this.
  std::string ToString() const;
  // ToString for messages and display: explicit device name lists longer
  // than `max_names` are cut to their first names and a count, so the text
  // stays short whatever the mesh. Does not parse back when cut.
  std::string ToShortString(int64_t max_names = 8) const;

  const std::string& name() const { return name_; }
  const std::vector<MeshDimension>& dims() const { return dims_; }
  int num_dims() const { return static_cast<int>(dims_.size()); }
  // Index of the dimension called `dim_name`, if any.
  std::optional<int> DimIndex(absl::string_view dim_name) const;
  int64_t num_devices() const { return num_devices_; }

  int rank() const { return rank_; }
  int num_ranks() const { return num_ranks_; }
  int64_t devices_per_rank() const { return num_devices_ / num_ranks_; }
  // The device ids of this mesh's rank, and of any rank
  // (0 <= rank < num_ranks()).
  DeviceRange local_device_range() const { return DeviceRangeOfRank(rank_); }
  DeviceRange DeviceRangeOfRank(int rank) const {
    return {rank * devices_per_rank(), (rank + 1) * devices_per_rank()};
  }
  // The same as lists, ascending. O(devices per rank): prefer the ranges.
  std::vector<int64_t> local_device_ids() const;
  std::vector<int64_t> DeviceIdsOfRank(int rank) const;

  // Name of the i-th local device (0 <= i < devices_per_rank()).
  std::string LocalDeviceName(int64_t i) const;
  // Every local device name. O(devices per rank).
  std::vector<std::string> local_devices() const;
  // The device type when the local names are the generated ones (printed as
  // `*TYPE`); empty when they were given explicitly.
  const std::string& generated_device_type() const { return device_type_; }
  const std::vector<std::string>& global_devices() const { return global_devices_; }
  // The rank that holds `device_id` (0 <= device_id < num_devices()).
  int RankOfDevice(int64_t device_id) const;

  // Row-major coordinates of a device, one per mesh dimension.
  std::vector<int64_t> DeviceCoords(int64_t device_id) const;
  // Inverse of DeviceCoords; coords must be in range.
  int64_t DeviceAt(absl::Span<const int64_t> coords) const;

  // The same mesh as seen from another rank (generated device names).
  absl::StatusOr<Mesh> ForRank(int rank) const;

  // True when both describe the same device grid over the same ranks, no
  // matter which rank views it or what the devices are called.
  bool SameGridAs(const Mesh& other) const;

  friend bool operator==(const Mesh& a, const Mesh& b);
  friend bool operator!=(const Mesh& a, const Mesh& b) { return !(a == b); }

 private:
  Mesh() = default;
  // What every factory but Create ends in: validates and normalizes.
  static absl::StatusOr<Mesh> Build(std::string name, std::vector<MeshDimension> dims,
                                    const std::vector<mesh_internal::IdRun>& global_ids,
                                    const std::vector<mesh_internal::IdRun>& local_ids,
                                    std::vector<std::string> local_devices,
                                    absl::string_view device_type,
                                    std::vector<std::string> global_devices);

  std::string name_;
  std::vector<MeshDimension> dims_;
  int64_t num_devices_ = 0;
  int rank_ = 0;
  int num_ranks_ = 1;
  // Exactly one is set: generated names of a type, or explicit names (only
  // when they are not the generated ones, so == can compare these fields).
  std::string device_type_;
  std::vector<std::string> local_devices_;
  std::vector<std::string> global_devices_;
};

// `/job:localhost/replica:0/task:0/device:<type>:<id>`
std::string GeneratedDeviceName(absl::string_view device_type, int64_t id);

}  // namespace meshckpt

#endif  // MESHCKPT_MESH_MESH_H_
