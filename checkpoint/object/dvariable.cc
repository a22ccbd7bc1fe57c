// DVariable: a sharded variable with one buffer per distinct local shard,
// its own or the caller's.
#include "meshckpt/checkpoint/object/dvariable.h"

#include <algorithm>
#include <cstdint>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace meshckpt {

absl::StatusOr<std::unique_ptr<DVariable>> DVariable::Create(std::string name,
                                                             DType dtype,
                                                             std::vector<int64_t> shape,
                                                             Layout layout) {
  if (name.empty()) return absl::InvalidArgumentError("variable name is empty");
  absl::StatusOr<ShardMap> map = ShardMap::Create(std::move(layout), std::move(shape));
  if (!map.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("variable '", name, "': ", map.status().message()));
  }
  // The shards' memory: a shape too large for it (say, read from a file) is
  // an error, not an exception out of this API.
  const absl::Status too_large = absl::ResourceExhaustedError(absl::StrCat(
      "variable '", name, "': its shards on this rank do not fit in memory"));
  const int64_t esize = dtype == DType::kString
                            ? static_cast<int64_t>(sizeof(std::string))
                            : DTypeSize(dtype);
  int64_t bytes = 0;
  for (int64_t shard : map->LocalShards()) {
    const int64_t n = map->ShardBox(shard).num_elements();
    if (n > (INT64_MAX - bytes) / std::max<int64_t>(esize, 1)) return too_large;
    bytes += n * esize;
  }
  try {
    return std::unique_ptr<DVariable>(
        new DVariable(std::move(name), dtype, *std::move(map), /*wrap=*/false, {}));
  } catch (const std::bad_alloc&) {
    return too_large;
  } catch (const std::length_error&) {
    return too_large;
  }
}

absl::StatusOr<std::unique_ptr<DVariable>> DVariable::Wrap(
    std::string name, DType dtype, std::vector<int64_t> shape, Layout layout,
    std::vector<void*> shard_buffers) {
  if (name.empty()) return absl::InvalidArgumentError("variable name is empty");
  const int rank = layout.mesh().rank();
  auto error = [&](const auto&... what) {
    return absl::InvalidArgumentError(
        absl::StrCat("variable '", name, "' on rank ", rank, ": ", what...));
  };
  if (dtype == DType::kString) {
    return error(
        "string variables cannot wrap caller memory (their elements are "
        "std::string objects the variable manages)");
  }
  absl::StatusOr<ShardMap> map = ShardMap::Create(std::move(layout), std::move(shape));
  if (!map.ok()) return error(map.status().message());
  const std::vector<int64_t> shards = map->LocalShards();
  if (shard_buffers.size() != shards.size()) {
    return error(
        "got ", shard_buffers.size(), " buffer(s) but this rank holds ", shards.size(),
        " distinct non-empty shard(s): pass one per ShardMap::LocalShards() entry");
  }
  const int64_t align = DTypeAlignment(dtype);
  for (size_t i = 0; i < shards.size(); ++i) {
    const std::string which = absl::StrCat("buffer ", i, " (shard ", shards[i], ", box ",
                                           map->ShardBox(shards[i]).ToString(), ")");
    if (shard_buffers[i] == nullptr) return error(which, " is null");
    if (reinterpret_cast<uintptr_t>(shard_buffers[i]) % align != 0) {
      return error(which, " is not aligned to ", align, " bytes");
    }
  }
  return std::unique_ptr<DVariable>(new DVariable(std::move(name), dtype, *std::move(map),
                                                  /*wrap=*/true,
                                                  std::move(shard_buffers)));
}

DVariable::DVariable(std::string name, DType dtype, ShardMap map, bool wrap,
                     std::vector<void*> external)
    : name_(std::move(name)),
      dtype_(dtype),
      map_(std::move(map)),
      local_shards_(map_.LocalShards()),
      wrapped_(wrap),
      external_(std::move(external)) {
  for (int64_t shard : local_shards_) {
    const int64_t n = map_.ShardBox(shard).num_elements();
    slot_elements_.push_back(n);
    if (wrapped_) continue;
    if (dtype_ == DType::kString) {
      strings_.emplace_back(n);
    } else {
      data_.emplace_back(n * DTypeSize(dtype_), 0);
    }
  }
}

int DVariable::Slot(int64_t device_id) const {
  assert(map_.layout().mesh().local_device_range().contains(device_id));
  const int64_t shard = map_.ShardOfDevice(device_id);
  const auto it = std::lower_bound(local_shards_.begin(), local_shards_.end(), shard);
  if (it == local_shards_.end() || *it != shard) return -1;  // An empty shard.
  return static_cast<int>(it - local_shards_.begin());
}

void* DVariable::SlotData(int slot) const {
  if (slot < 0) return nullptr;
  if (wrapped_) return external_[slot];
  return dtype_ == DType::kString
             ? static_cast<void*>(const_cast<std::string*>(strings_[slot].data()))
             : static_cast<void*>(const_cast<char*>(data_[slot].data()));
}

std::vector<int64_t> DVariable::SlotDevices(int slot) const {
  // Steps through the devices holding the shard without listing the mesh's.
  const DeviceRange local = map_.layout().mesh().local_device_range();
  std::vector<int64_t> out;
  for (int64_t d = map_.NextDeviceOfShard(local_shards_[slot], local.begin);
       d >= 0 && d < local.end; d = map_.NextDeviceOfShard(local_shards_[slot], d + 1)) {
    out.push_back(d);
  }
  return out;
}

absl::Span<char> DVariable::mutable_bytes(int64_t device_id) {
  assert(dtype_ != DType::kString);
  const int slot = Slot(device_id);
  if (slot < 0) return absl::Span<char>();
  return absl::Span<char>(static_cast<char*>(SlotData(slot)),
                          slot_elements_[slot] * DTypeSize(dtype_));
}

absl::Span<const char> DVariable::bytes(int64_t device_id) const {
  assert(dtype_ != DType::kString);
  const int slot = Slot(device_id);
  if (slot < 0) return absl::Span<const char>();
  return absl::Span<const char>(static_cast<const char*>(SlotData(slot)),
                                slot_elements_[slot] * DTypeSize(dtype_));
}

absl::Span<std::string> DVariable::strings(int64_t device_id) {
  assert(dtype_ == DType::kString);
  const int slot = Slot(device_id);
  return slot < 0 ? absl::Span<std::string>() : absl::MakeSpan(strings_[slot]);
}

std::vector<const void*> DVariable::ShardData() const {
  std::vector<const void*> out;
  for (size_t i = 0; i < local_shards_.size(); ++i)
    out.push_back(SlotData(static_cast<int>(i)));
  return out;
}

std::vector<void*> DVariable::MutableShardData() {
  std::vector<void*> out;
  for (size_t i = 0; i < local_shards_.size(); ++i)
    out.push_back(SlotData(static_cast<int>(i)));
  return out;
}

std::vector<const void*> DVariable::DeviceData() const {
  std::vector<const void*> out;
  for (int64_t d : map_.layout().mesh().local_device_ids())
    out.push_back(SlotData(Slot(d)));
  return out;
}

std::vector<void*> DVariable::MutableDeviceData() {
  std::vector<void*> out;
  for (int64_t d : map_.layout().mesh().local_device_ids())
    out.push_back(SlotData(Slot(d)));
  return out;
}

}  // namespace meshckpt
