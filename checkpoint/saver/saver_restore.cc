// Saver::Restore (saver.h): opens the checkpoint once (CheckpointHandle),
// checks every variable against its index, then reads through
// RestoreTensors, in one call or (with restore_sequentially) one call per
// variable, all from the data file opened.
//
// Reshape. A variable whose shape differs from the saved one but has the
// same number of elements is read whole, in the saved shape, onto a
// replicated layout over a one-device-per-rank mesh ("ranks") into a
// staging buffer; then each local shard of the variable is filled by
// row-major flat index: the element at coordinate c of the variable is the
// saved element whose flat index in the saved shape equals c's flat index in
// the variable's shape. Runs along the last dimension are contiguous in both,
// so the copy goes one row at a time. Peak extra memory: the whole tensor on
// every rank (one tensor at a time with restore_sequentially).
//
// Errors are decided from the index (the same on every rank) before any
// data is read; an I/O or checksum error in a later RestoreTensors call
// leaves earlier variables restored. Not thread-safe.
//
//   SaverOptions o;
//   o.reshape = true;                    // [6,4] saved -> [4,6] restored
//   absl::Status s = (*Saver::Create(comm, {v}, o))->Restore(prefix);
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "meshckpt/base/status_macros.h"
#include "meshckpt/checkpoint/engine/checkpoint_handle.h"
#include "meshckpt/checkpoint/engine/checkpoint_index.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/checkpoint/saver/saver.h"
#include "meshckpt/checkpoint/saver/saver_internal.h"

namespace meshckpt {
namespace {

struct Item {
  const std::string* key;
  DVariable* var;
  bool reshaped = false;
  std::vector<int64_t> saved_shape;
};

std::string ShapeText(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

absl::Status CheckAgainstIndex(const CheckpointIndex& index, const std::string& key,
                               DVariable* v, bool reshape, Item* item) {
  const CheckpointIndex::Tensor* saved = index.Find(key);
  if (saved == nullptr) {
    return absl::NotFoundError(absl::StrCat(
        "Saver: key '", key, "' not found in checkpoint '", index.path(), "'"));
  }
  if (saved->dtype != v->dtype()) {
    return absl::FailedPreconditionError(
        absl::StrCat("Saver: '", key, "' was saved as ", DTypeName(saved->dtype),
                     " but the variable is ", DTypeName(v->dtype()), " (checkpoint '",
                     index.path(), "')"));
  }
  item->key = &key;
  item->var = v;
  if (saved->shape == v->shape()) return absl::OkStatus();
  if (!reshape) {
    return absl::FailedPreconditionError(
        absl::StrCat("Saver: '", key, "' was saved with shape ", ShapeText(saved->shape),
                     " but the variable has shape ", ShapeText(v->shape()),
                     " (checkpoint '", index.path(),
                     "'; SaverOptions::reshape restores by "
                     "flat index when the element counts agree)"));
  }
  // The index validated the saved shape, so its product fits in int64.
  int64_t saved_n = 1;
  for (int64_t s : saved->shape) saved_n *= s;
  if (saved_n != v->num_elements()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "Saver: cannot reshape '", key, "': saved shape ", ShapeText(saved->shape),
        " has ", saved_n, " elements, the variable's ", ShapeText(v->shape()), " has ",
        v->num_elements(), " (checkpoint '", index.path(), "')"));
  }
  item->reshaped = true;
  item->saved_shape = saved->shape;
  return absl::OkStatus();
}

// The whole saved tensor, row-major: raw bytes or strings.
struct Staging {
  std::vector<char> bytes;
  std::vector<std::string> strings;
  void* data(DType dtype) {
    return dtype == DType::kString ? static_cast<void*>(strings.data())
                                   : static_cast<void*>(bytes.data());
  }
};

// Fills every local shard of `v` from `flat` (the tensor in row-major order).
void Reslice(const Staging& flat, DVariable* v) {
  const std::vector<int64_t>& shape = v->shape();
  const int rank = static_cast<int>(shape.size());
  const bool is_str = v->dtype() == DType::kString;
  const int64_t esize = DTypeSize(v->dtype());
  std::vector<void*> dest = v->MutableShardData();
  const std::vector<int64_t>& shards = v->local_shards();
  for (size_t i = 0; i < shards.size(); ++i) {
    const Box box = v->shard_map().ShardBox(shards[i]);
    if (box.empty()) continue;
    const int64_t row = rank == 0 ? 1 : box.shape()[rank - 1];
    std::vector<int64_t> coord = box.origin();  // Walks the rows of the box.
    for (int64_t done = 0; done < box.num_elements(); done += row) {
      int64_t g = 0;
      for (int d = 0; d < rank; ++d) g = g * shape[d] + coord[d];
      if (is_str) {
        std::string* out = static_cast<std::string*>(dest[i]) + done;
        for (int64_t k = 0; k < row; ++k) out[k] = flat.strings[g + k];
      } else {
        std::memcpy(static_cast<char*>(dest[i]) + done * esize,
                    flat.bytes.data() + g * esize, static_cast<size_t>(row * esize));
      }
      for (int d = rank - 2; d >= 0; --d) {  // Next row.
        if (++coord[d] < box.origin()[d] + box.shape()[d]) break;
        coord[d] = box.origin()[d];
      }
    }
  }
}

}  // namespace

absl::Status Saver::Restore(const std::string& save_path) {
  absl::Status local;
  if (save_path.empty()) {
    local = absl::InvalidArgumentError("Saver::Restore: save_path is empty");
  }
  MESHCKPT_RETURN_IF_ERROR(comm_->Agree(local));
  MESHCKPT_RETURN_IF_ERROR(
      internal::AgreeOnArguments(*comm_, save_path, "Saver::Restore paths"));
  if (vars_.empty()) return absl::OkStatus();  // allow_empty.

  absl::StatusOr<std::unique_ptr<CheckpointHandle>> checkpoint =
      CheckpointHandle::Open(*comm_, save_path, options_.io);
  if (!checkpoint.ok()) {
    if (absl::IsNotFound(checkpoint.status())) {
      return absl::NotFoundError(
          absl::StrCat("Saver::Restore: '", save_path,
                       "' is not a valid checkpoint: ", checkpoint.status().message()));
    }
    return checkpoint.status();
  }
  return Restore(**checkpoint);
}

absl::Status Saver::Restore(CheckpointHandle& checkpoint) {
  if (vars_.empty()) return absl::OkStatus();  // allow_empty.
  absl::Status local;
  std::vector<Item> items;
  for (const auto& [key, v] : vars_) {
    items.emplace_back();
    local =
        CheckAgainstIndex(checkpoint.index(), key, v, options_.reshape, &items.back());
    if (!local.ok()) break;
  }
  MESHCKPT_RETURN_IF_ERROR(comm_->Agree(local));

  const Mesh stage_mesh =
      Mesh::Create({{"ranks", comm_->size()}}, comm_->rank(), comm_->size()).value();
  const IoOptions& restore = options_.io;
  const size_t batch = options_.restore_sequentially ? 1 : items.size();
  for (size_t first = 0; first < items.size(); first += batch) {
    const size_t last = std::min(items.size(), first + batch);
    std::vector<Staging> staging(last - first);
    std::vector<RestoreTensor> tensors;
    for (size_t i = first; i < last; ++i) {
      const Item& it = items[i];
      DVariable* v = it.var;
      if (!it.reshaped) {
        tensors.push_back(
            {*it.key, v->dtype(), v->shape(), v->layout(), {}, v->MutableShardData()});
        continue;
      }
      Staging& s = staging[i - first];
      const size_t n = static_cast<size_t>(v->num_elements());
      if (v->dtype() == DType::kString) {
        s.strings.resize(n);
      } else {
        s.bytes.resize(n * static_cast<size_t>(DTypeSize(v->dtype())));
      }
      tensors.push_back(
          {*it.key,
           v->dtype(),
           it.saved_shape,
           Layout::Replicated(stage_mesh, static_cast<int>(it.saved_shape.size())),
           {s.data(v->dtype())}});
    }
    MESHCKPT_RETURN_IF_ERROR(RestoreTensors(checkpoint, tensors, restore));
    for (size_t i = first; i < last; ++i) {
      if (items[i].reshaped) Reslice(staging[i - first], items[i].var);
    }
  }
  return absl::OkStatus();
}

}  // namespace meshckpt
