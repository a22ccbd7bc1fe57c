// The records of a TensorBundle V2 index as plain values: the header (key "")
// and one BundleEntry per tensor, parsed from their serialized protos
// (TF's tensor_bundle.proto; the protos stay inside tfbundle/).
//
// A BundleEntry says where a tensor's bytes are: data file `shard_id`,
// [offset, offset + size), with the masked CRC32C TF stored for them. A
// partitioned tensor (TF1 partitioned variables) has `slices` instead of
// data; each slice is stored under its own key. Values are immutable, made
// only by the checked factories. Thread-safe.
#ifndef MESHCKPT_TFBUNDLE_BUNDLE_ENTRY_H_
#define MESHCKPT_TFBUNDLE_BUNDLE_ENTRY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "meshckpt/tfbundle/tf_dtype.h"

namespace meshckpt::tf {

// The version a TensorBundle we write claims, and the newest we read.
inline constexpr int kTensorBundleVersion = 1;
// Data files are `<prefix>.data-%05d-of-%05d`: at most this many.
inline constexpr int kMaxDataShards = 99999;
// The key of TF2's object graph (a DT_STRING scalar TrackableObjectGraph).
inline constexpr char kObjectGraphKey[] = "_CHECKPOINTABLE_OBJECT_GRAPH";

struct BundleHeader {
  int num_shards = 1;
  bool big_endian = false;
  int producer = 0;
  int min_consumer = 0;
};

// The header record. InvalidArgument, naming the file, when the record is a
// V1 (TensorSlice) checkpoint's header or not a bundle header at all;
// FailedPrecondition when a newer TensorFlow wrote it for newer readers.
absl::StatusOr<BundleHeader> ParseBundleHeader(absl::string_view serialized,
                                               absl::string_view index_file);
std::string SerializeBundleHeader(const BundleHeader& header);

// One dimension of a slice: [start, start + length), or the whole dimension
// when length is -1.
struct SliceExtent {
  int64_t start = 0;
  int64_t length = -1;
  friend bool operator==(const SliceExtent& a, const SliceExtent& b) {
    return a.start == b.start && a.length == b.length;
  }
};
using TensorSliceSpec = std::vector<SliceExtent>;

class BundleEntry {
 public:
  struct Fields {
    std::string key;
    int dtype = 0;  // a TfDType number; unknown numbers are kept
    std::vector<int64_t> shape;
    int shard_id = 0;
    int64_t offset = 0;
    int64_t size = 0;
    uint32_t masked_crc32c = 0;
    std::vector<TensorSliceSpec> slices;
  };
  // Checks the fields against each other and the header: dimensions >= 0,
  // shard in [0, num_shards), offset and size >= 0, a fixed-size tensor's
  // size equal to its elements times the element size, slices inside the
  // shape. DataLoss naming the key and the index file otherwise.
  static absl::StatusOr<BundleEntry> Create(Fields fields, int num_shards,
                                            absl::string_view index_file);
  // From a serialized BundleEntryProto.
  static absl::StatusOr<BundleEntry> Parse(absl::string_view key,
                                           absl::string_view serialized, int num_shards,
                                           absl::string_view index_file);
  std::string Serialize() const;

  const std::string& key() const { return f_.key; }
  int dtype_value() const { return f_.dtype; }
  TfDType dtype() const { return static_cast<TfDType>(f_.dtype); }
  const std::vector<int64_t>& shape() const { return f_.shape; }
  int64_t num_elements() const { return num_elements_; }
  int shard_id() const { return f_.shard_id; }
  int64_t offset() const { return f_.offset; }
  int64_t size() const { return f_.size; }
  uint32_t masked_crc32c() const { return f_.masked_crc32c; }
  const std::vector<TensorSliceSpec>& slices() const { return f_.slices; }

 private:
  explicit BundleEntry(Fields f, int64_t n) : f_(std::move(f)), num_elements_(n) {}
  Fields f_;
  int64_t num_elements_;
};

}  // namespace meshckpt::tf

#endif  // MESHCKPT_TFBUNDLE_BUNDLE_ENTRY_H_
