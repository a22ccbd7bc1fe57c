// checkpoint/reader/ owns reading a checkpoint from one process:
// CheckpointReader and its integrity checks. It may use checkpoint/engine/,
// io/, comm/ (serial), layout/, mesh/ and base/; not the object API, the
// Saver or the manager.
//
// CheckpointReader: looking inside a committed checkpoint from one process,
// in the spirit of TensorFlow's tf.train.load_checkpoint / CheckpointReader,
// tf.train.list_variables and inspect_checkpoint.
//
// A reader opens the checkpoint once (CheckpointHandle,
// checkpoint/engine/checkpoint_handle.h) over a SerialCommunicator, so it
// works in a plain process: no mpirun and no MPI_Init are needed. It reads
// `<prefix>.index` (validated: see checkpoint_index.h) and keeps `<prefix>.h5`
// open; every later read comes from those, even if a newer save replaces
// the checkpoint meanwhile. It can
// list the tensors with their saved shape, dtype and DTensor layout, read a
// tensor whole or any box of it (global coordinates, whatever layout it was
// saved with), read the non-tensor values TrackedValue stores, and re-check
// every checksum of the checkpoint (VerifyAll, for `meshckpt verify`).
//
// Every byte a read returns was checked against the XXH3 tile checksums
// taken at save time (unless Open was told otherwise); a mismatch is
// DataLoss naming the tensor, the chunk, the tile and the file. Reads touch
// only the tiles overlapping the requested box.
//
// TensorFlow checkpoints (TensorBundle V2: `<prefix>.index` and
// `<prefix>.data-*-of-*`) open the same way, detected from the index file;
// format() says which. Their tensors list with a replicated layout on a
// one-device mesh and one chunk each; reads check each entry's CRC32C;
// DT_VARIANT / DT_RESOURCE entries are listed by Unreadable() and reading
// them is Unimplemented. index() has the translated object graph, when the
// checkpoint has one, and step and save_counter 0.
//
// Errors: NotFound (no checkpoint at the prefix, or no such key), DataLoss
// (corrupt index, missing or truncated data file, checksum mismatch),
// FailedPrecondition (index written for a newer reader; ReadValue on a
// tensor that is not a value), InvalidArgument (a box outside the tensor).
//
// Thread-safety: NOT safe for concurrent use, not even of const methods.
// The reader owns the open data file (and HDF5 on it, for strings) that
// every read uses (a mutable member), and the HDF5 library this project
// links is not built thread-safe, so
// calls into any reader (or any other HDF5 user in the process) must come
// from one thread at a time. Use one reader per thread behind a common lock,
// or one thread. The reader may be moved between threads.
//
// Example:
//   absl::StatusOr<std::unique_ptr<CheckpointReader>> r =
//       CheckpointReader::Open("/ckpt/step-1000");
//   if (!r.ok()) return r.status();
//   for (const VariableInfo& v : (*r)->ListVariables()) {
//     std::cout << v.key << " " << DTypeName(v.dtype) << "\n";
//   }
//   absl::StatusOr<TensorData> w = (*r)->ReadTensor("model/dense/kernel");
//   if (w.ok()) Use(w->as<float>());  // Row-major over w->shape.
//   absl::StatusOr<TensorData> row =
//       (*r)->ReadBox("model/dense/kernel", *Box::Create({3, 0}, {1, 512}));
//   absl::StatusOr<ScalarValue> step = (*r)->ReadValue("step");
#ifndef MESHCKPT_CHECKPOINT_READER_CHECKPOINT_READER_H_
#define MESHCKPT_CHECKPOINT_READER_CHECKPOINT_READER_H_

#include <cassert>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "meshckpt/base/dtype.h"
#include "meshckpt/base/scalar_value.h"
#include "meshckpt/checkpoint/engine/checkpoint_handle.h"
#include "meshckpt/checkpoint/engine/checkpoint_index.h"
#include "meshckpt/comm/communicator.h"
#include "meshckpt/layout/box.h"

namespace meshckpt {

// A tensor read whole or in part.
struct TensorData {
  DType dtype = DType::kFloat32;
  // Shape of what was read (the box's shape for ReadBox).
  std::vector<int64_t> shape;
  // Fixed-size dtypes: the elements row-major, DTypeSize(dtype) bytes each,
  // as base/dtype.h describes (bool one byte 0/1, bfloat16/float16 as their
  // 16-bit patterns, complex as (real, imaginary)). Empty for kString.
  std::vector<char> bytes;
  // kString: the elements row-major. Empty otherwise.
  std::vector<std::string> strings;

  int64_t num_elements() const {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    return n;
  }

  // The elements as T: as<float>(), as<uint16_t>() for bfloat16,
  // as<std::complex<float>>(), as<bool>(), as<std::string>() for strings.
  // T must have the dtype's element size (checked with assert).
  template <typename T>
  absl::Span<const T> as() const {
    if constexpr (std::is_same_v<T, std::string>) {
      assert(dtype == DType::kString);
      return strings;
    } else {
      static_assert(std::is_trivially_copyable_v<T>);
      assert(dtype != DType::kString);
      assert(static_cast<int64_t>(sizeof(T)) == DTypeSize(dtype));
      assert(bytes.size() % sizeof(T) == 0);
      // std::vector<char> storage comes from operator new, aligned for any
      // fundamental type.
      return absl::Span<const T>(reinterpret_cast<const T*>(bytes.data()),
                                 bytes.size() / sizeof(T));
    }
  }
};

// One tensor of a checkpoint, as ListVariables / GetVariableInfo report it.
struct VariableInfo {
  std::string key;      // Checkpoint key.
  std::string dataset;  // HDF5 dataset path in the data file.
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;  // Global shape.
  // The DTensor layout string it was saved with, on the saving job's mesh
  // (`sharding_specs:x,unsharded, mesh:|x=2|0,1|0|*CPU` style).
  std::string layout;
  // Bytes of its elements: num_elements * DTypeSize(dtype). 0 for kString,
  // whose size is not known without reading.
  int64_t bytes = 0;
  // Chunks written: the distinct non-empty shards (0 for a zero-size tensor).
  int num_chunks = 0;
};

class CheckpointReader {
 public:
  // Opens the checkpoint at `prefix` (the path without `.index` / `.h5`).
  // NotFound when there is no index; DataLoss for a corrupt index or a data
  // file that is missing or not the size committed; FailedPrecondition for
  // an index that needs a newer reader. With `verify_checksums` false, reads
  // skip checksum verification (VerifyAll always verifies).
  static absl::StatusOr<std::unique_ptr<CheckpointReader>> Open(
      const std::string& prefix, bool verify_checksums = true);

  ~CheckpointReader();
  CheckpointReader(const CheckpointReader&) = delete;
  CheckpointReader& operator=(const CheckpointReader&) = delete;

  // Every tensor, sorted by key.
  std::vector<VariableInfo> ListVariables() const;
  // A TensorFlow checkpoint's entries listed but not readable (DT_VARIANT,
  // DT_RESOURCE, ...), in key order; empty for ours.
  const std::vector<UnreadableTensor>& Unreadable() const {
    return checkpoint_->unreadable();
  }
  CheckpointFormat format() const { return checkpoint_->format(); }
  // The data files: `<prefix>.h5`, or a TensorFlow checkpoint's shards.
  std::vector<std::string> data_files() const { return checkpoint_->data_files(); }
  bool HasTensor(absl::string_view key) const;
  // NotFound for an unknown key.
  absl::StatusOr<VariableInfo> GetVariableInfo(absl::string_view key) const;

  // The whole tensor. NotFound for an unknown key, Unimplemented for an
  // Unreadable() one, DataLoss on a checksum mismatch or read error.
  absl::StatusOr<TensorData> ReadTensor(absl::string_view key) const;
  // `box` (global coordinates) of the tensor; InvalidArgument unless the box
  // has the tensor's rank and lies inside it. An empty box reads nothing.
  absl::StatusOr<TensorData> ReadBox(absl::string_view key, const Box& box) const;

  // Non-tensor values as TrackedValue stores them. ReadValue: a rank-0
  // int64 / float64 / string tensor (a kGlobal value) as that value;
  // FailedPrecondition for other dtypes or ranks.
  absl::StatusOr<ScalarValue> ReadValue(absl::string_view key) const;
  // Every saved rank's value of a kPerRank value: a 1-D int64 / float64 /
  // string tensor indexed by saved rank; FailedPrecondition otherwise.
  absl::StatusOr<std::vector<ScalarValue>> ReadPerRankValues(absl::string_view key) const;

  // Metadata: step, timestamp, save_counter, user_metadata, object graph,
  // library version, the saving mesh.
  const IndexRecord& index() const { return checkpoint_->index().record(); }
  const std::string& prefix() const { return prefix_; }

  // Re-reads every chunk of every tensor and checks every checksum. Returns
  // one message per problem found (tensor key, chunk box, tile, file): empty
  // when the checkpoint is intact. Checksum mismatches and other DataLoss
  // (unreadable or mismatched datasets) are collected; any other error stops
  // and is returned. Memory stays bounded by a staging buffer of about
  // 64 MiB (or one row of tiles, if larger), not by the tensor size.
  // A TensorFlow checkpoint: every entry's CRC32C (strings are read whole);
  // the Unreadable() keys are not checked and go to `skipped` when given.
  absl::StatusOr<std::vector<std::string>> VerifyAll(
      std::vector<std::string>* skipped = nullptr) const;

 private:
  CheckpointReader(std::string prefix, std::unique_ptr<Communicator> comm,
                   std::unique_ptr<CheckpointHandle> checkpoint, bool verify_checksums);

  const CheckpointIndex::Tensor* FindOrNull(absl::string_view key) const;
  absl::StatusOr<const CheckpointIndex::Tensor*> FindOrError(absl::string_view key) const;
  // Reads `box` (inside the tensor) into `out` with or without verification.
  absl::Status ReadInto(const CheckpointIndex::Tensor& t, const Box& box, TensorData* out,
                        bool verify) const;
  // VerifyAll for one tensor; appends problems.
  absl::Status VerifyTensor(const CheckpointIndex::Tensor& t,
                            std::vector<std::string>* problems) const;

  std::string prefix_;
  std::unique_ptr<Communicator> comm_;  // Outlives checkpoint_, which uses it.
  // Reads mutate its state (buffers, HDF5 handles): see thread-safety.
  std::unique_ptr<CheckpointHandle> checkpoint_;
  bool verify_checksums_;
};

}  // namespace meshckpt

#endif  // MESHCKPT_CHECKPOINT_READER_CHECKPOINT_READER_H_
