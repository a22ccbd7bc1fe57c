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
// Pure functions; thread-safe.
#ifndef MESHCKPT_IO_FORMAT_STRING_BLOB_H_
#define MESHCKPT_IO_FORMAT_STRING_BLOB_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace meshckpt {

std::string EncodeStringBlob(absl::Span<const std::string> values);

// Splits `blob` into exactly `n` elements. DataLoss, saying what is wrong,
// when the lengths do not account for exactly the bytes present.
absl::Status DecodeStringBlob(absl::string_view blob, int64_t n,
                              std::vector<std::string>* out);

}  // namespace meshckpt

#endif  // MESHCKPT_IO_FORMAT_STRING_BLOB_H_
