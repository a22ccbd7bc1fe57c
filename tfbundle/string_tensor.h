// TensorBundle's encoding of a DT_STRING tensor (TF's tensor_bundle.cc):
//   [varint64 length of every element][fixed32 masked CRC32C of the lengths]
//   [the bytes of every element]
// The entry's CRC32C is not over these bytes but over what TF feeds it: each
// length as a fixed32 (fixed64 above 4 GiB) in the writer's byte order, the
// 4 stored length-checksum bytes, then the element bytes. Thread-safe.
#ifndef MESHCKPT_TFBUNDLE_STRING_TENSOR_H_
#define MESHCKPT_TFBUNDLE_STRING_TENSOR_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace meshckpt::tf {

struct EncodedStrings {
  std::string bytes;
  uint32_t crc32c = 0;  // unmasked, as TF computes it for the entry
};

// Little-endian, as TF writes on every machine it supports today.
EncodedStrings EncodeStringTensor(absl::Span<const std::string> strings);

// Decodes exactly `data` into `num_elements` strings; `crc32c` receives the
// entry checksum (unmasked) to compare with the entry's. DataLoss, with
// `what` (the key and file) in the message, when the lengths do not add up
// to the data, or the length checksum does not match.
absl::Status DecodeStringTensor(absl::string_view data, int64_t num_elements,
                                bool big_endian, absl::string_view what,
                                std::vector<std::string>* out, uint32_t* crc32c);

}  // namespace meshckpt::tf

#endif  // MESHCKPT_TFBUNDLE_STRING_TENSOR_H_
