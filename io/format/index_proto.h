// The index file at the protobuf level, for the format's own tests and the
// fuzzer, which must write what no IndexRecord can hold (a bad mesh, a
// newer version). Library code uses index_file.h.
#ifndef MESHCKPT_IO_FORMAT_INDEX_PROTO_H_
#define MESHCKPT_IO_FORMAT_INDEX_PROTO_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "meshckpt/io/format/index.h"
#include "proto/meshckpt.pb.h"

namespace meshckpt {

proto::CheckpointIndexProto IndexToProto(const IndexRecord& index);
// DataLoss naming `path` and the tensor for a value that cannot exist.
absl::StatusOr<IndexRecord> IndexFromProto(const proto::CheckpointIndexProto& p,
                                           const std::string& path);

// Frames `index` as it is, version fields included.
std::string EncodeIndexProto(const proto::CheckpointIndexProto& index);
// Checks the footer and the version; does not convert.
absl::StatusOr<proto::CheckpointIndexProto> DecodeIndexProto(absl::string_view bytes,
                                                             const std::string& path);

}  // namespace meshckpt

#endif  // MESHCKPT_IO_FORMAT_INDEX_PROTO_H_
