// How a string tensor is stored: one 1-D uint8 dataset holding the
// little-endian uint64 byte length of every element in row-major order,
// followed by the elements' bytes in the same order.
//
// Not HDF5's variable-length strings: their values live in the global heap,
// whose decoder in HDF5 1.10.8 loops forever on some damaged files (see
// docs/reliability.md). A plain byte dataset is read like any numeric one,
// and DecodeStringBlob checks every length against the bytes present, so a
// damaged file is an error, never a hang or an out-of-bounds read. Any byte
// (NUL included) is allowed in an element.
//
// A sharded string tensor's blob is put together from the blobs of its
// shards without decoding them: PlaceStringShards says which byte range of
// which shard's blob goes where.
//
// Pure functions; thread-safe.
#ifndef MESHCKPT_IO_FORMAT_STRING_BLOB_H_
#define MESHCKPT_IO_FORMAT_STRING_BLOB_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "meshckpt/layout/box.h"

namespace meshckpt {

std::string EncodeStringBlob(absl::Span<const std::string> values);
// The same bytes, appended to `out`.
void AppendStringBlob(absl::Span<const std::string> values, std::string* out);

// Splits `blob` into exactly `n` elements. DataLoss, saying what is wrong,
// when the lengths do not account for exactly the bytes present.
absl::Status DecodeStringBlob(absl::string_view blob, int64_t n,
                              std::vector<std::string>* out);

// `size` bytes of shard `shard`'s blob, from byte `from`, belong at byte `to`
// of the tensor's blob.
struct StringBlobPiece {
  size_t shard = 0;
  int64_t from = 0;
  int64_t to = 0;
  int64_t size = 0;
};

// The pieces that make the blob of a string tensor of `shape` from the blobs
// of its shards: `boxes` tile the tensor (every element in exactly one box)
// and blobs[i] is the blob of box i's elements in row-major order. The
// pieces are ascending by `to`, none empty, and cover the tensor's blob
// (the sum of the shards' blob sizes) exactly; a shard split along inner
// dimensions gives two pieces per run of its elements. InvalidArgument when
// the boxes do not tile the tensor or a blob is not one of its box.
absl::StatusOr<std::vector<StringBlobPiece>> PlaceStringShards(
    absl::Span<const int64_t> shape, absl::Span<const Box> boxes,
    absl::Span<const absl::string_view> blobs);

}  // namespace meshckpt

#endif  // MESHCKPT_IO_FORMAT_STRING_BLOB_H_
