// The keys under which TensorFlow stores the slices of a partitioned tensor
// (TF's EncodeTensorNameSlice): OrderedCode of
//   <0> <tensor name> <rank> { <start> <length> } per dimension
// with length -1 (and start 0) for a whole dimension. Unsigned numbers are
// a length byte then big-endian bytes; strings escape 0x00 and 0xff and end
// in 0x00 0x01; signed numbers use OrderedCode's sign-and-size prefix.
// Thread-safe (pure functions).
#ifndef MESHCKPT_TFBUNDLE_SLICE_KEY_H_
#define MESHCKPT_TFBUNDLE_SLICE_KEY_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "meshckpt/tfbundle/bundle_entry.h"

namespace meshckpt::tf {

std::string EncodeTensorNameSlice(absl::string_view name, const TensorSliceSpec& slice);

// The OrderedCode pieces, exposed for tests.
void OrderedCodeWriteNumIncreasing(std::string* dest, uint64_t value);
void OrderedCodeWriteString(std::string* dest, absl::string_view s);
void OrderedCodeWriteSignedNumIncreasing(std::string* dest, int64_t value);

}  // namespace meshckpt::tf

#endif  // MESHCKPT_TFBUNDLE_SLICE_KEY_H_
