// CheckpointIndex: a validated, read-only view of a checkpoint's index.
//
// The index comes from a file, so nothing in it is trusted: decoding
// (io/format/index_file.h) checks the mesh, dtypes, layouts and chunk boxes;
// FromRecord checks every key (present, unique), shape (no int64 overflow),
// that the layout fits the shape, that the chunks lie inside the tensor, do
// not overlap and cover it, that each chunk has one checksum per tile and
// that a chunk's recorded file location lies inside the data file. Any
// failure is DataLoss naming the tensor and the index file.
//
//   absl::StatusOr<CheckpointIndex> index = CheckpointIndex::Read(comm, prefix);
//   const CheckpointIndex::Tensor* t = index->Find("model/w");
//
// Immutable after construction; thread-compatible.
#ifndef MESHCKPT_CHECKPOINT_ENGINE_CHECKPOINT_INDEX_H_
#define MESHCKPT_CHECKPOINT_ENGINE_CHECKPOINT_INDEX_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "meshckpt/base/dtype.h"
#include "meshckpt/comm/communicator.h"
#include "meshckpt/io/format/index.h"
#include "meshckpt/io/transfer/direct_file.h"
#include "meshckpt/layout/box.h"
#include "meshckpt/layout/layout.h"
#include "meshckpt/mesh/mesh.h"

namespace meshckpt {

class CheckpointIndex {
 public:
  struct Tensor {
    std::string key;
    std::string dataset;
    DType dtype;
    std::vector<int64_t> shape;
    Layout layout;  // As saved, on the saving job's mesh.
    std::vector<Box> chunks;
    // Per chunk: the storage the index says holds it (ChunkRecord's
    // file_offset), as a block whose first element is the chunk's origin;
    // nullopt when the index does not say.
    std::vector<std::optional<StorageBlock>> storage;
    int entry = 0;  // Position in record().tensors.
  };

  // `path` is the index file, for messages.
  static absl::StatusOr<CheckpointIndex> FromRecord(IndexRecord record, std::string path);
  // Collective: rank 0 reads `<prefix>.index`, every rank gets the same
  // result. NotFound when there is no index (no committed checkpoint). A
  // restore reads it through CheckpointHandle::Open, once.
  static absl::StatusOr<CheckpointIndex> Read(Communicator& comm,
                                              const std::string& prefix);

  // Everything the index file holds (version, object graph, metadata, step,
  // data file size, ...).
  const IndexRecord& record() const { return record_; }
  const std::string& path() const { return path_; }
  const Mesh& mesh() const { return record_.mesh; }
  const std::vector<Tensor>& tensors() const { return tensors_; }
  // nullptr when absent.
  const Tensor* Find(absl::string_view key) const;
  const ChunkRecord& chunk(const Tensor& t, int i) const {
    return record_.tensors[t.entry].chunks[i];
  }

 private:
  CheckpointIndex(IndexRecord record, std::string path)
      : record_(std::move(record)), path_(std::move(path)) {}

  IndexRecord record_;
  std::string path_;
  std::vector<Tensor> tensors_;
  absl::flat_hash_map<std::string, int> by_key_;
};

namespace internal {

// Index files this process has read: CheckpointIndex::Read reads one on rank
// 0 of its communicator. For tests of how often a restore reads its index.
int64_t IndexReadsForTesting();

}  // namespace internal
}  // namespace meshckpt

#endif  // MESHCKPT_CHECKPOINT_ENGINE_CHECKPOINT_INDEX_H_
