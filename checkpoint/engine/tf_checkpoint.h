// TfCheckpoint: a TensorFlow TensorBundle V2 checkpoint behind a
// CheckpointHandle. Internal to checkpoint/engine/: the handle holds one
// through a forward declaration, so tfbundle/ types stay out of public
// headers.
//
// The handle presents the bundle as a CheckpointIndex (BuildIndex): one
// entry per readable tensor with its key, dtype and shape, one chunk
// covering the whole tensor, a replicated layout on a one-device mesh, and
// the object graph translated from `_CHECKPOINTABLE_OBJECT_GRAPH` when the
// bundle has one. That entry itself, the slice entries of partitioned
// tensors, and entries whose dtype meshckpt has no type for (DT_VARIANT,
// DT_RESOURCE, quantized) are not tensors of the index; the last are listed
// in `unreadable()` and reading them is Unimplemented.
//
// Reads go through tfbundle's BundleReader: ReadBox reads only the bytes of
// the box. The entry's CRC32C covers the whole entry, so checking it is
// separate: VerifyOnce (this process reads the entry once, then remembers)
// for single-process reads, VerifyShared (each rank checksums a contiguous
// part, partial CRCs are combined) for collective restores.
#ifndef MESHCKPT_CHECKPOINT_ENGINE_TF_CHECKPOINT_H_
#define MESHCKPT_CHECKPOINT_ENGINE_TF_CHECKPOINT_H_

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "meshckpt/checkpoint/engine/checkpoint_handle.h"
#include "meshckpt/checkpoint/engine/checkpoint_index.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/comm/communicator.h"
#include "meshckpt/layout/box.h"

namespace meshckpt {
namespace tf {
class BundleReader;
}  // namespace tf

namespace internal {

class TfCheckpoint {
 public:
  // Collective: every rank opens the bundle's index; the same status on
  // every rank. InvalidArgument for a V1 checkpoint or a table that is not
  // a bundle; DataLoss for damage; NotFound when there is no index.
  static absl::StatusOr<std::unique_ptr<TfCheckpoint>> Open(Communicator& comm,
                                                            const std::string& prefix);
  ~TfCheckpoint();

  // The index the handle presents (deterministic: every rank builds the
  // same from the same bundle).
  absl::StatusOr<CheckpointIndex> BuildIndex() const;
  const std::vector<UnreadableTensor>& unreadable() const { return unreadable_; }
  // Unimplemented naming the key and file when `key` is an unreadable
  // entry; OK otherwise.
  absl::Status CheckReadable(absl::string_view key) const;
  // The data files, in shard order.
  std::vector<std::string> data_files() const;

  // Fills `box` of `t` into `out` (row-major; std::string elements for
  // strings), verifying the entry's CRC32C first when `verify` (once per
  // entry and process). Not collective.
  absl::Status ReadBox(const CheckpointIndex::Tensor& t, const Box& box, void* out,
                       bool verify);

  // Streams the whole entry of `t` through its CRC32C (a partitioned
  // tensor: each slice's), about 1 MiB at a time. DataLoss naming the key
  // and the data file on a mismatch.
  absl::Status VerifyTensor(const CheckpointIndex::Tensor& t);

  // RestoreTensors for a bundle, in two steps. VerifyRequested
  // (collective, the same status on every rank): the CRC32C of every
  // requested fixed-size tensor, each rank checksumming a contiguous part
  // of the entry, the partial CRCs combined (crc32c::Combine) in rank
  // order on every rank. Strings and partitioned tensors are left to Read,
  // whose ranks read them whole, CRC checked. Read (this rank only; the
  // caller agrees on the status): each local shard's box, only its bytes.
  // `tensors` passed RestoreTensors' checks and is alike on every rank.
  absl::Status VerifyRequested(Communicator& comm, const CheckpointIndex& index,
                               absl::Span<const RestoreTensor> tensors);
  // The same for a list of keys alike on every rank (a rewrite's tensors),
  // so that later ReadBox calls of theirs read only their boxes.
  absl::Status VerifyKeys(Communicator& comm, const CheckpointIndex& index,
                          absl::Span<const std::string> keys);
  absl::Status Read(const CheckpointIndex& index, absl::Span<const RestoreTensor> tensors,
                    const IoOptions& options);

 private:
  explicit TfCheckpoint(std::unique_ptr<tf::BundleReader> reader);
  absl::Status VerifyShared(Communicator& comm, const std::vector<std::string>& keys);
  // Whole-entry CRC check, remembered.
  absl::Status VerifyOnce(absl::string_view key);
  // Whether the entry is read whole (strings, partitioned tensors).
  bool ReadWhole(absl::string_view key) const;

  std::unique_ptr<tf::BundleReader> reader_;
  std::vector<UnreadableTensor> unreadable_;
  std::set<std::string> verified_;
};

}  // namespace internal
}  // namespace meshckpt

#endif  // MESHCKPT_CHECKPOINT_ENGINE_TF_CHECKPOINT_H_
