// Mesh: named dimensions of devices, their ranks, and the local view.
#include "meshckpt/mesh/mesh.h"

#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "meshckpt/base/status_macros.h"

namespace meshckpt {
namespace mesh_internal {

// A run of consecutive ids [lo, hi] as written in an id list: one id, or a
// range "lo-hi". `text` is the token, for messages.
struct IdRun {
  int64_t lo;
  int64_t hi;
  absl::string_view text;
};

}  // namespace mesh_internal
namespace {

constexpr absl::string_view kDevicePrefix = "/job:localhost/replica:0/task:0/device:";

bool IsIdentifier(absl::string_view s) {
  if (s.empty() || absl::ascii_isdigit(s[0])) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(c) && c != '_') return false;
  }
  return true;
}

absl::Status ValidateName(absl::string_view name) {
  if (!name.empty() && !IsIdentifier(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("mesh name '", name, "' must be empty or an identifier"));
  }
  return absl::OkStatus();
}

absl::Status ValidateDims(const std::vector<MeshDimension>& dims, int64_t* num_devices) {
  if (dims.empty()) {
    return absl::InvalidArgumentError("mesh needs at least one dimension");
  }
  absl::flat_hash_set<std::string> seen;
  int64_t total = 1;
  for (const MeshDimension& d : dims) {
    if (!IsIdentifier(d.name) || d.name == "unsharded") {
      return absl::InvalidArgumentError(
          absl::StrCat("mesh dimension name '", d.name,
                       "' must be an identifier ([A-Za-z_][A-Za-z0-9_]*) other than "
                       "'unsharded'"));
    }
    if (!seen.insert(d.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("duplicate mesh dimension name '", d.name, "'"));
    }
    if (d.size < 1 || d.size > Mesh::kMaxDevices) {
      return absl::InvalidArgumentError(
          absl::StrCat("mesh dimension '", d.name, "' has size ", d.size,
                       "; sizes must be in [1, ", Mesh::kMaxDevices, "]"));
    }
    total *= d.size;  // Both factors <= 2^24 and we stop above 2^24.
    if (total > Mesh::kMaxDevices) {
      return absl::InvalidArgumentError(
          absl::StrCat("mesh has more than ", Mesh::kMaxDevices, " devices"));
    }
  }
  *num_devices = total;
  return absl::OkStatus();
}

std::string DimsToString(const std::vector<MeshDimension>& dims) {
  return absl::StrJoin(dims, ",", [](std::string* out, const MeshDimension& d) {
    absl::StrAppend(out, d.name, "=", d.size);
  });
}

using mesh_internal::IdRun;

// Parses a comma list of ids and ranges; `what` names the field in errors.
// Memory follows the text, never the ids a range spans.
absl::StatusOr<std::vector<IdRun>> ParseIdList(absl::string_view text,
                                               absl::string_view what) {
  std::vector<IdRun> runs;
  if (text.empty()) return runs;
  for (absl::string_view tok : absl::StrSplit(text, ',')) {
    int64_t lo, hi;
    // A '-' after the first character separates a range; "-2" is a number.
    const size_t dash = tok.find('-', 1);
    if (dash == absl::string_view::npos) {
      if (!absl::SimpleAtoi(tok, &lo)) {
        return absl::InvalidArgumentError(
            absl::StrCat("mesh ", what, ": '", tok, "' is not an integer"));
      }
      hi = lo;
    } else if (!absl::SimpleAtoi(tok.substr(0, dash), &lo) ||
               !absl::SimpleAtoi(tok.substr(dash + 1), &hi) || lo < 0 || hi < lo) {
      return absl::InvalidArgumentError(
          absl::StrCat("mesh ", what, ": '", tok,
                       "' is neither an integer nor a range first-last of ids"));
    }
    runs.push_back({lo, hi, tok});
  }
  return runs;
}

std::vector<IdRun> RunsOf(const std::vector<int64_t>& ids) {
  std::vector<IdRun> runs;
  runs.reserve(ids.size());
  for (int64_t id : ids) runs.push_back({id, id, {}});
  return runs;
}

// Ids a list of runs spans, capped just above kMaxDevices (more is wrong
// anyway, and the cap keeps the sum from overflowing).
int64_t CountIds(const std::vector<IdRun>& runs) {
  int64_t n = 0;
  for (const IdRun& r : runs) {
    // hi - lo cannot overflow: ranges have 0 <= lo <= hi, single ids lo == hi.
    if (r.hi - r.lo >= Mesh::kMaxDevices) return Mesh::kMaxDevices + 1;
    n += r.hi - r.lo + 1;
    if (n > Mesh::kMaxDevices) return Mesh::kMaxDevices + 1;
  }
  return n;
}

std::string CountText(int64_t n) {
  return n > Mesh::kMaxDevices ? absl::StrCat("more than ", Mesh::kMaxDevices)
                               : absl::StrCat(n);
}

// The id a run has where `expected` was due, for messages.
std::string IdText(const IdRun& r) {
  return r.text.empty() ? absl::StrCat(r.lo) : std::string(r.text);
}

// Checks that `global` lists exactly 0..D-1 and `local` one rank's
// contiguous block; returns that block.
absl::StatusOr<DeviceRange> CheckIds(const std::vector<MeshDimension>& dims,
                                     int64_t num_devices,
                                     const std::vector<IdRun>& global,
                                     const std::vector<IdRun>& local) {
  const int64_t num_global = CountIds(global);
  if (num_global != num_devices) {
    return absl::InvalidArgumentError(
        absl::StrCat("mesh ", DimsToString(dims), " needs ", num_devices,
                     " global device ids, got ", CountText(num_global)));
  }
  int64_t next = 0;
  for (const IdRun& r : global) {
    if (r.lo != next) {
      return absl::InvalidArgumentError(
          absl::StrCat("global device id '", IdText(r), "' at position ", next,
                       ": global device ids must be 0..", num_devices - 1, " in order"));
    }
    next = r.hi + 1;
  }
  const int64_t per_rank = CountIds(local);
  if (per_rank == 0) {
    return absl::InvalidArgumentError("mesh has no local device ids");
  }
  if (per_rank > num_devices || num_devices % per_rank != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("mesh has ", num_devices,
                     " devices, which are not divisible among "
                     "ranks of ",
                     CountText(per_rank), " local devices"));
  }
  const int64_t first = local[0].lo;
  if (first < 0 || first % per_rank != 0 || first >= num_devices) {
    return absl::InvalidArgumentError(absl::StrCat("local device id '", first,
                                                   "' does not start a rank's block of ",
                                                   per_rank, " devices"));
  }
  next = first;
  for (const IdRun& r : local) {
    if (r.lo != next) {
      return absl::InvalidArgumentError(
          absl::StrCat("local device id '", IdText(r), "' at position ", next - first,
                       ": local ids must be one rank's contiguous block ", first, "..",
                       first + per_rank - 1));
    }
    next = r.hi + 1;
  }
  return DeviceRange{first, first + per_rank};
}

// If every name is the generated name of its id (ids from `first` on) for
// one device type, returns that type.
std::optional<std::string> GeneratedType(const std::vector<std::string>& names,
                                         int64_t first) {
  if (names.empty() || !absl::StartsWith(names[0], kDevicePrefix)) {
    return std::nullopt;
  }
  absl::string_view rest = absl::string_view(names[0]).substr(kDevicePrefix.size());
  size_t colon = rest.rfind(':');
  if (colon == absl::string_view::npos) return std::nullopt;
  std::string type(rest.substr(0, colon));
  if (!IsIdentifier(type)) return std::nullopt;  // "*type" must parse back.
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] != GeneratedDeviceName(type, first + static_cast<int64_t>(i))) {
      return std::nullopt;
    }
  }
  return type;
}

std::string IdsText(int64_t num_listed, DeviceRange ids) {
  if (num_listed > Mesh::kMaxListedDevices) return DeviceRangeText(ids);
  std::string out;
  for (int64_t id = ids.begin; id < ids.end; ++id) {
    absl::StrAppend(&out, id == ids.begin ? "" : ",", id);
  }
  return out;
}

// The local device names of a mesh: explicit names become a generated type
// when they are exactly the generated ones, so equal meshes compare equal.
absl::Status SetLocalNames(std::vector<std::string> names, absl::string_view device_type,
                           DeviceRange local, std::string* type_out,
                           std::vector<std::string>* names_out) {
  if (names.empty()) {
    *type_out = std::string(device_type);
    return absl::OkStatus();
  }
  if (static_cast<int64_t>(names.size()) != local.size()) {
    return absl::InvalidArgumentError(absl::StrCat("mesh has ", local.size(),
                                                   " local device ids but ", names.size(),
                                                   " local device names"));
  }
  if (std::optional<std::string> type = GeneratedType(names, local.begin)) {
    *type_out = *std::move(type);
  } else {
    *names_out = std::move(names);
  }
  return absl::OkStatus();
}

}  // namespace

std::string DeviceRangeText(DeviceRange range) {
  if (range.empty()) return "";
  if (range.size() == 1) return absl::StrCat(range.begin);
  return absl::StrCat(range.begin, "-", range.end - 1);
}

std::string GeneratedDeviceName(absl::string_view device_type, int64_t id) {
  return absl::StrCat(kDevicePrefix, device_type, ":", id);
}

absl::StatusOr<Mesh> Mesh::Create(std::vector<MeshDimension> dims, int rank,
                                  int num_ranks, absl::string_view device_type,
                                  std::string name) {
  MESHCKPT_RETURN_IF_ERROR(ValidateName(name));
  int64_t num_devices = 0;
  MESHCKPT_RETURN_IF_ERROR(ValidateDims(dims, &num_devices));
  if (num_ranks < 1 || rank < 0 || rank >= num_ranks) {
    return absl::InvalidArgumentError(
        absl::StrCat("rank ", rank, " is not in [0, ", num_ranks, ")"));
  }
  if (num_devices % num_ranks != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("mesh ", DimsToString(dims), " has ", num_devices,
                     " devices, which do not divide evenly among ", num_ranks, " ranks"));
  }
  if (!IsIdentifier(device_type)) {
    return absl::InvalidArgumentError(
        absl::StrCat("device type '", device_type, "' is not an identifier"));
  }
  Mesh mesh;
  mesh.name_ = std::move(name);
  mesh.dims_ = std::move(dims);
  mesh.num_devices_ = num_devices;
  mesh.rank_ = rank;
  mesh.num_ranks_ = num_ranks;
  mesh.device_type_ = std::string(device_type);
  return mesh;
}

absl::StatusOr<Mesh> Mesh::Build(std::string name, std::vector<MeshDimension> dims,
                                 const std::vector<IdRun>& global_ids,
                                 const std::vector<IdRun>& local_ids,
                                 std::vector<std::string> local_devices,
                                 absl::string_view device_type,
                                 std::vector<std::string> global_devices) {
  MESHCKPT_RETURN_IF_ERROR(ValidateName(name));
  int64_t num_devices = 0;
  MESHCKPT_RETURN_IF_ERROR(ValidateDims(dims, &num_devices));
  MESHCKPT_ASSIGN_OR_RETURN(DeviceRange local,
                            CheckIds(dims, num_devices, global_ids, local_ids));
  Mesh mesh;
  MESHCKPT_RETURN_IF_ERROR(SetLocalNames(std::move(local_devices), device_type, local,
                                         &mesh.device_type_, &mesh.local_devices_));
  if (!global_devices.empty() &&
      static_cast<int64_t>(global_devices.size()) != num_devices) {
    return absl::InvalidArgumentError(absl::StrCat("mesh has ", num_devices,
                                                   " devices but ", global_devices.size(),
                                                   " global device names"));
  }
  mesh.name_ = std::move(name);
  mesh.dims_ = std::move(dims);
  mesh.num_devices_ = num_devices;
  mesh.num_ranks_ = static_cast<int>(num_devices / local.size());
  mesh.rank_ = static_cast<int>(local.begin / local.size());
  mesh.global_devices_ = std::move(global_devices);
  return mesh;
}

absl::StatusOr<Mesh> Mesh::CreateFromParts(std::string name,
                                           std::vector<MeshDimension> dims,
                                           std::vector<int64_t> global_device_ids,
                                           std::vector<int64_t> local_device_ids,
                                           std::vector<std::string> local_devices,
                                           std::vector<std::string> global_devices) {
  const std::vector<IdRun> global = RunsOf(global_device_ids);
  const std::vector<IdRun> local = RunsOf(local_device_ids);
  return Build(std::move(name), std::move(dims), global, local, std::move(local_devices),
               "CPU", std::move(global_devices));
}

absl::StatusOr<Mesh> Mesh::CreateFromRanges(std::string name,
                                            std::vector<MeshDimension> dims,
                                            DeviceRange global_ids, DeviceRange local_ids,
                                            std::vector<std::string> local_devices,
                                            absl::string_view device_type,
                                            std::vector<std::string> global_devices) {
  if (!IsIdentifier(device_type)) {
    return absl::InvalidArgumentError(
        absl::StrCat("device type '", device_type, "' is not an identifier"));
  }
  std::vector<IdRun> global, local;
  // A range with begin > end is as wrong as a list out of order.
  if (global_ids.end > global_ids.begin) {
    global.push_back({global_ids.begin, global_ids.end - 1, {}});
  }
  if (local_ids.end > local_ids.begin) {
    local.push_back({local_ids.begin, local_ids.end - 1, {}});
  }
  return Build(std::move(name), std::move(dims), global, local, std::move(local_devices),
               device_type, std::move(global_devices));
}

absl::StatusOr<Mesh> Mesh::FromString(absl::string_view text) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, '|');
  if (parts.size() < 5) {
    return absl::InvalidArgumentError(
        absl::StrCat("mesh string '", text,
                     "' needs the fields name|dims|global ids|local ids|local devices"));
  }
  if (parts.size() > 6) {
    return absl::InvalidArgumentError(
        absl::StrCat("mesh string has unknown field '", parts[6], "'"));
  }
  std::vector<MeshDimension> dims;
  if (!parts[1].empty()) {
    for (absl::string_view tok : absl::StrSplit(parts[1], ',')) {
      std::pair<absl::string_view, absl::string_view> kv =
          absl::StrSplit(tok, absl::MaxSplits('=', 1));
      int64_t size;
      if (!absl::StrContains(tok, '=') || !absl::SimpleAtoi(kv.second, &size)) {
        return absl::InvalidArgumentError(
            absl::StrCat("mesh dimension '", tok, "' is not of the form name=size"));
      }
      dims.push_back({std::string(kv.first), size});
    }
  }
  MESHCKPT_ASSIGN_OR_RETURN(std::vector<IdRun> global,
                            ParseIdList(parts[2], "global device ids"));
  MESHCKPT_ASSIGN_OR_RETURN(std::vector<IdRun> local,
                            ParseIdList(parts[3], "local device ids"));
  std::vector<std::string> local_devices;
  std::string device_type = "CPU";
  absl::string_view devs = parts[4];
  if (absl::StartsWith(devs, "*")) {
    device_type = std::string(devs.substr(1));
    if (!IsIdentifier(device_type)) {
      return absl::InvalidArgumentError(
          absl::StrCat("device shorthand '", devs, "' must be '*' and a device type"));
    }
  } else if (!devs.empty()) {
    local_devices = absl::StrSplit(devs, ',');
  } else {
    return absl::InvalidArgumentError("mesh string has no local devices");
  }
  std::vector<std::string> global_devices;
  if (parts.size() == 6 && !parts[5].empty()) {
    global_devices = absl::StrSplit(parts[5], ',');
  }
  return Build(std::string(parts[0]), std::move(dims), global, local,
               std::move(local_devices), device_type, std::move(global_devices));
}

std::string Mesh::ToString() const { return ToShortString(-1); }

std::string Mesh::ToShortString(int64_t max_names) const {
  auto names = [max_names](const std::vector<std::string>& list) {
    const int64_t n = static_cast<int64_t>(list.size());
    if (max_names < 0 || n <= max_names) return absl::StrJoin(list, ",");
    return absl::StrCat(absl::StrJoin(list.begin(), list.begin() + max_names, ","),
                        ",... (", n - max_names, " more)");
  };
  const std::string devices = device_type_.empty() ? names(local_devices_)
                                                   : absl::StrCat("*", device_type_);
  std::string out = absl::StrCat(
      name_, "|", DimsToString(dims_), "|", IdsText(num_devices_, {0, num_devices_}), "|",
      IdsText(num_devices_, local_device_range()), "|", devices);
  if (!global_devices_.empty()) absl::StrAppend(&out, "|", names(global_devices_));
  return out;
}

std::optional<int> Mesh::DimIndex(absl::string_view dim_name) const {
  for (int i = 0; i < num_dims(); ++i) {
    if (dims_[i].name == dim_name) return i;
  }
  return std::nullopt;
}

std::vector<int64_t> Mesh::local_device_ids() const { return DeviceIdsOfRank(rank_); }

std::vector<int64_t> Mesh::DeviceIdsOfRank(int rank) const {
  const DeviceRange r = DeviceRangeOfRank(rank);
  std::vector<int64_t> ids(r.size());
  for (int64_t i = 0; i < r.size(); ++i) ids[i] = r.begin + i;
  return ids;
}

std::string Mesh::LocalDeviceName(int64_t i) const {
  if (device_type_.empty()) return local_devices_[i];
  return GeneratedDeviceName(device_type_, local_device_range().begin + i);
}

std::vector<std::string> Mesh::local_devices() const {
  if (device_type_.empty()) return local_devices_;
  std::vector<std::string> names;
  names.reserve(devices_per_rank());
  for (int64_t i = 0; i < devices_per_rank(); ++i) {
    names.push_back(LocalDeviceName(i));
  }
  return names;
}

int Mesh::RankOfDevice(int64_t device_id) const {
  return static_cast<int>(device_id / devices_per_rank());
}

std::vector<int64_t> Mesh::DeviceCoords(int64_t device_id) const {
  std::vector<int64_t> coords(dims_.size());
  for (int i = num_dims() - 1; i >= 0; --i) {
    coords[i] = device_id % dims_[i].size;
    device_id /= dims_[i].size;
  }
  return coords;
}

int64_t Mesh::DeviceAt(absl::Span<const int64_t> coords) const {
  int64_t id = 0;
  for (int i = 0; i < num_dims(); ++i) id = id * dims_[i].size + coords[i];
  return id;
}

absl::StatusOr<Mesh> Mesh::ForRank(int rank) const {
  if (rank < 0 || rank >= num_ranks_) {
    return absl::InvalidArgumentError(
        absl::StrCat("rank ", rank, " is not in [0, ", num_ranks_, ")"));
  }
  Mesh mesh = *this;
  mesh.rank_ = rank;
  mesh.local_devices_.clear();
  mesh.device_type_ = "CPU";
  return mesh;
}

bool Mesh::SameGridAs(const Mesh& other) const {
  return dims_ == other.dims_ && num_ranks_ == other.num_ranks_;
}

bool operator==(const Mesh& a, const Mesh& b) {
  return a.name_ == b.name_ && a.dims_ == b.dims_ && a.rank_ == b.rank_ &&
         a.num_ranks_ == b.num_ranks_ && a.device_type_ == b.device_type_ &&
         a.local_devices_ == b.local_devices_ && a.global_devices_ == b.global_devices_;
}

}  // namespace meshckpt
