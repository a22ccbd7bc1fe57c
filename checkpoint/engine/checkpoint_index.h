// CheckpointIndex: a validated, read-only view of a checkpoint's index.
//
// The index comes from a file, so nothing in it is trusted: FromProto checks
// the mesh, every key (present, unique), dtype, shape (no int64 overflow),
// saved layout, that the chunks lie inside the tensor, do not overlap and
// cover it, that each chunk has one checksum per tile and that a chunk's
// recorded file location lies inside the data file. Any failure is
// DataLoss naming the tensor and the index file.
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
#include "base/dtype.h"
#include "comm/communicator.h"
#include "io/transfer/direct_file.h"
#include "layout/box.h"
#include "layout/layout.h"
#include "mesh/mesh.h"
#include "proto/meshckpt.pb.h"

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
    // Per chunk: the storage the index says holds it (see ChunkProto's
    // file_offset), as a block whose first element is the chunk's origin;
    // nullopt when the index does not say.
    std::vector<std::optional<StorageBlock>> storage;
    int entry = 0;  // Position in proto().tensors().
  };

  // `path` is the index file, for messages.
  static absl::StatusOr<CheckpointIndex> FromProto(
      proto::CheckpointIndexProto proto, std::string path);
  // Collective: rank 0 reads `<prefix>.index`, every rank gets the same
  // result. NotFound when there is no index (no committed checkpoint).
  static absl::StatusOr<CheckpointIndex> Read(Communicator& comm,
                                              const std::string& prefix);

  const proto::CheckpointIndexProto& proto() const { return proto_; }
  const std::string& path() const { return path_; }
  const Mesh& mesh() const { return mesh_; }
  const std::vector<Tensor>& tensors() const { return tensors_; }
  // nullptr when absent.
  const Tensor* Find(absl::string_view key) const;
  const proto::ChunkProto& chunk(const Tensor& t, int i) const {
    return proto_.tensors(t.entry).chunks(i);
  }

 private:
  CheckpointIndex(proto::CheckpointIndexProto proto, std::string path, Mesh mesh)
      : proto_(std::move(proto)), path_(std::move(path)), mesh_(std::move(mesh)) {}

  proto::CheckpointIndexProto proto_;
  std::string path_;
  Mesh mesh_;
  std::vector<Tensor> tensors_;
  absl::flat_hash_map<std::string, int> by_key_;
};

}  // namespace meshckpt

#endif  // MESHCKPT_CHECKPOINT_ENGINE_CHECKPOINT_INDEX_H_
