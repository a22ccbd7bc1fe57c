// Argument checks and buffer bookkeeping shared by save and restore.
#include "meshckpt/checkpoint/engine/shard_io_internal.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "meshckpt/checkpoint/engine/shard_io.h"

namespace meshckpt {
namespace internal {

absl::Status ValidateDatasetPath(absl::string_view key, absl::string_view path) {
  if (path.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", key, "' has an empty key"));
  }
  for (absl::string_view name : absl::StrSplit(path, '/')) {
    if (name.empty() || name == "." || name == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", key, "': dataset path '", path,
                       "' must be '/'-separated names, none empty, '.' or '..'"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckLayoutFitsComm(absl::string_view key, const Layout& layout,
                                 const Communicator& comm) {
  const Mesh& mesh = layout.mesh();
  if (mesh.num_ranks() != comm.size() || mesh.rank() != comm.rank()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", key, "': its mesh spans ", mesh.num_ranks(),
                     " ranks seen from rank ", mesh.rank(), ", but this job has ",
                     comm.size(), " ranks and this is rank ", comm.rank()));
  }
  return absl::OkStatus();
}

template <typename Ptr>
absl::Status CheckBuffers(absl::string_view key, const ShardMap& map,
                          const std::vector<Ptr>& device_data,
                          const std::vector<Ptr>& shard_data) {
  const DeviceRange local = map.layout().mesh().local_device_range();
  if (device_data.empty()) {
    const std::vector<int64_t> shards = map.LocalShards();
    if (shard_data.size() != shards.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", key, "': ", shard_data.size(),
                       " shard buffers given, but "
                       "this rank's devices hold ",
                       shards.size(), " distinct non-empty shards"));
    }
    for (size_t i = 0; i < shards.size(); ++i) {
      if (shard_data[i] == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat(
            "tensor '", key, "': the buffer of shard ", shards[i], " is null"));
      }
    }
    return absl::OkStatus();
  }
  if (!shard_data.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", key, "': give device_data or shard_data, not both"));
  }
  if (static_cast<int64_t>(device_data.size()) != local.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tensor '", key, "': ", device_data.size(),
        " device buffers given, but this rank has ", local.size(), " local devices"));
  }
  for (int64_t d = local.begin; d < local.end; ++d) {
    if (device_data[d - local.begin] == nullptr && !map.DeviceBox(d).empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", key, "': the buffer of device ", d, " is null"));
    }
  }
  return absl::OkStatus();
}

template <typename Ptr>
LocalBuffers LocalBuffersOf(const ShardMap& map, const std::vector<Ptr>& device_data,
                            const std::vector<Ptr>& shard_data) {
  // Restores write through these pointers; saves only read them.
  auto mutable_ptr = [](Ptr p) { return const_cast<void*>(static_cast<const void*>(p)); };
  LocalBuffers out;
  if (device_data.empty()) {
    const std::vector<int64_t> shards = map.LocalShards();
    for (size_t i = 0; i < shards.size(); ++i) {
      out.shards.push_back(
          {shards[i], map.ShardBox(shards[i]), mutable_ptr(shard_data[i])});
    }
    return out;
  }
  const DeviceRange local = map.layout().mesh().local_device_range();
  absl::flat_hash_map<int64_t, size_t> index_of;  // Shard -> entry in out.shards.
  std::vector<std::pair<int64_t, void*>> later;   // Devices after the first holder.
  for (int64_t d = local.begin; d < local.end; ++d) {
    const int64_t s = map.ShardOfDevice(d);
    Box box = map.ShardBox(s);
    if (box.empty()) continue;
    void* data = mutable_ptr(device_data[d - local.begin]);
    if (index_of.emplace(s, out.shards.size()).second) {
      out.shards.push_back({s, std::move(box), data});
    } else {
      later.push_back({s, data});
    }
  }
  // Ascending by shard, as with shard_data, so both forms read alike.
  std::sort(out.shards.begin(), out.shards.end(),
            [](const LocalBuffers::Shard& a, const LocalBuffers::Shard& b) {
              return a.shard < b.shard;
            });
  for (size_t i = 0; i < out.shards.size(); ++i) index_of[out.shards[i].shard] = i;
  for (const auto& [s, data] : later) {
    const size_t from = index_of[s];
    if (out.shards[from].data != data) out.copies.push_back({from, data});
  }
  return out;
}

template absl::Status CheckBuffers(absl::string_view, const ShardMap&,
                                   const std::vector<void*>&, const std::vector<void*>&);
template absl::Status CheckBuffers(absl::string_view, const ShardMap&,
                                   const std::vector<const void*>&,
                                   const std::vector<const void*>&);
template LocalBuffers LocalBuffersOf(const ShardMap&, const std::vector<void*>&,
                                     const std::vector<void*>&);
template LocalBuffers LocalBuffersOf(const ShardMap&, const std::vector<const void*>&,
                                     const std::vector<const void*>&);

absl::Status AgreeSameOnAllRanks(Communicator& comm, uint64_t fingerprint,
                                 absl::string_view what) {
  // Compare via max and -max(-x) on 62 bits so negation cannot overflow.
  const int64_t v = static_cast<int64_t>(fingerprint >> 2);
  const int64_t hi = comm.AllReduceMax(v);
  const int64_t lo = -comm.AllReduceMax(-v);
  if (hi != lo) {
    return absl::InvalidArgumentError(
        absl::StrCat("ranks passed different ", what,
                     "; every rank must pass the same keys, dtypes, shapes and layouts"));
  }
  return absl::OkStatus();
}

DataFileOptions FileOptions(bool collective,
                            const std::map<std::string, std::string>& hints) {
  DataFileOptions o;
  o.collective = collective;
  o.mpi_hints = hints;
  return o;
}

int64_t FillCopies(const LocalBuffers& b, DType dtype) {
  int64_t bytes = 0;
  for (const LocalBuffers::Copy& c : b.copies) {
    const LocalBuffers::Shard& from = b.shards[c.from];
    const int64_t n = from.box.num_elements();
    if (dtype == DType::kString) {
      std::copy_n(static_cast<const std::string*>(from.data), n,
                  static_cast<std::string*>(c.to));
    } else {
      std::memcpy(c.to, from.data, n * DTypeSize(dtype));
    }
    bytes += n * DTypeSize(dtype);
  }
  return bytes;
}

}  // namespace internal

std::string DataFilePath(absl::string_view prefix) { return absl::StrCat(prefix, ".h5"); }

std::string IndexFilePath(absl::string_view prefix) {
  return absl::StrCat(prefix, ".index");
}

}  // namespace meshckpt
