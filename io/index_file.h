// The `<prefix>.index` file: the commit record of a checkpoint.
//
// Layout: the serialized CheckpointIndexProto, then a 16-byte footer of the
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
#ifndef MESHCKPT_IO_INDEX_FILE_H_
#define MESHCKPT_IO_INDEX_FILE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/meshckpt.pb.h"

namespace meshckpt {

inline constexpr int kFormatVersion = 2;
inline constexpr int kMinConsumerVersion = 1;
inline constexpr int kCompactMeshVersion = 2;
inline constexpr char kIndexMagic[] = "MCKPTIX1";

// Sets the version fields and frames the proto. min_consumer is at least
// kMinConsumerVersion, higher when the caller set it higher.
std::string EncodeIndexFile(proto::CheckpointIndexProto index);
// DataLoss for a bad footer or payload, FailedPrecondition for an index that
// needs a newer reader. `path` is for messages only.
absl::StatusOr<proto::CheckpointIndexProto> DecodeIndexFile(
    absl::string_view bytes, const std::string& path);

}  // namespace meshckpt

#endif  // MESHCKPT_IO_INDEX_FILE_H_
