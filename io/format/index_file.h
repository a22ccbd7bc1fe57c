// The `<prefix>.index` file: the commit record of a checkpoint.
//
// Layout: the serialized CheckpointIndexProto (proto/meshckpt.proto) of an
// IndexRecord (io/format/index.h), then a 16-byte footer of the
// payload's XXH3-64 (little-endian) and the magic "MCKPTIX1". A protobuf alone
// can silently accept a flipped byte with a different value; the footer makes
// every corruption and truncation a DataLoss instead.
//
// Format versions: the index records producer and min_consumer; this
// library reads any index whose min_consumer <= kFormatVersion. Format 2
// added the compact form of large meshes (proto MeshProto); an index needs
// a format-2 reader only when it holds one.
//
// Thread-safe (pure functions).
#ifndef MESHCKPT_IO_FORMAT_INDEX_FILE_H_
#define MESHCKPT_IO_FORMAT_INDEX_FILE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "meshckpt/io/format/index.h"

namespace meshckpt {

inline constexpr int kFormatVersion = 2;
inline constexpr int kMinConsumerVersion = 1;
inline constexpr int kCompactMeshVersion = 2;
inline constexpr char kIndexMagic[] = "MCKPTIX1";

// A protobuf message cannot exceed 2 GiB, so neither can a valid index.
inline constexpr int64_t kMaxIndexFileBytes = int64_t{0x7fffffff} + 16;

// The bytes of the index file at `path`, bounded by what the format allows:
// NotFound when missing, InvalidArgument for a FIFO, device or directory,
// DataLoss when the file does not end in the footer's magic (checked before
// anything else is read, so a huge or sparse impostor costs one small read)
// or is larger than kMaxIndexFileBytes.
absl::StatusOr<std::string> ReadIndexFileBytes(const std::string& path);

// The bytes of the index file. Sets the version: producer kFormatVersion,
// min_consumer at least kMinConsumerVersion, kCompactMeshVersion when a
// mesh needs the compact form, higher when the record asks for more.
std::string EncodeIndexFile(const IndexRecord& index);
// DataLoss for a bad footer or payload, or a value that cannot exist (bad
// mesh, layout, dtype or chunk box; the message names the tensor);
// FailedPrecondition for an index that needs a newer reader. `path` is for
// messages only.
absl::StatusOr<IndexRecord> DecodeIndexFile(absl::string_view bytes,
                                            const std::string& path);

}  // namespace meshckpt

#endif  // MESHCKPT_IO_FORMAT_INDEX_FILE_H_
