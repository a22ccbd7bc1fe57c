// numpy-like text and JSON for tensor values, for `meshckpt inspect`.
//
// Text follows numpy's `str(array)` with the default print options
// (precision 8, threshold 1000, edgeitems 3, linewidth 75): elements
// separated by a space, nested dimensions in brackets, columns padded to a
// common width, and arrays of more than `threshold` elements summarised to
// the first and last `edgeitems` entries of every dimension longer than
// 2*edgeitems, with "..." in between. Floats print as numpy does: the
// shortest repr that round-trips in the element's own type (so bfloat16 and
// float16 show their float values), at most 8 fractional digits,
// scientific notation when the largest magnitude is >= 1e8 or the smallest
// non-zero is < 1e-4 or their ratio exceeds 1000, and nan / inf / -inf.
// Integers are decimal, bool True/False, complex values Python-like
// `(1.5-2j)`, strings Python-like escaped bytes `b'a\x00b'`. A rank-0
// tensor prints as its scalar (`1.5`, `3`, `b'x'`); an empty one as `[]`.
//
// Reading only what is shown: a summarised tensor needs only its
// "displayed" elements, the cartesian product of DisplayedRanges() per
// dimension; FormatTensor accepts that compact tensor (of DisplayedShape())
// instead of the whole one, so callers can read a few small boxes of a huge
// tensor.
//
// JSON (JsonValues): nested arrays in row-major order, never summarised.
// Floats use the shortest round-trip repr of their type; NaN and infinities,
// which JSON lacks, are the strings "NaN", "Infinity", "-Infinity"; complex
// values are [real, imag] pairs; bool true/false; strings are JSON strings
// holding one code point U+0000..U+00FF per byte (Latin-1), so any byte
// string round-trips (Python: s.encode('latin-1')).
//
// Pure functions; thread-safe.
#ifndef MESHCKPT_TOOLS_FORMAT_H_
#define MESHCKPT_TOOLS_FORMAT_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "meshckpt/checkpoint/reader/checkpoint_reader.h"
#include "meshckpt/tools/float_format.h"

namespace meshckpt {
namespace format {

struct FormatOptions {
  // Summarise tensors with more elements than this; negative: never.
  int64_t threshold = 1000;
  // Elements shown at each end of a summarised dimension (>= 1).
  int64_t edgeitems = 3;
  // Wrap rows of a dimension longer than this many characters.
  int linewidth = 75;
};

// Whether a tensor of `shape` is shown summarised.
bool IsSummarised(absl::Span<const int64_t> shape, const FormatOptions& options);

// Per dimension, the [begin, end) index ranges shown: {[0, n)}, or
// {[0, e), [n-e, n)} for a dimension elided by summarisation.
std::vector<std::vector<std::pair<int64_t, int64_t>>> DisplayedRanges(
    absl::Span<const int64_t> shape, const FormatOptions& options);

// The shape of the displayed elements (== `shape` when not summarised).
std::vector<int64_t> DisplayedShape(absl::Span<const int64_t> shape,
                                    const FormatOptions& options);

// The displayed elements of a whole tensor, as FormatTensor accepts them.
TensorData GatherDisplayed(const TensorData& whole, const FormatOptions& options);

// numpy-like text of a tensor of shape `full_shape`. `values` is either the
// whole tensor (values.shape == full_shape) or its displayed elements
// (values.shape == DisplayedShape(full_shape)). InvalidArgument otherwise.
absl::StatusOr<std::string> FormatTensor(const TensorData& values,
                                         absl::Span<const int64_t> full_shape,
                                         const FormatOptions& options = {});

// The values as a JSON nested array (a bare value for rank 0), on one line.
std::string JsonValues(const TensorData& values);

// Python's repr() of a bytes object: b'...' (b"..." when the bytes hold a
// single quote and no double quote) with \t \n \r \\ \' and \xHH escapes.
std::string PyBytesRepr(absl::string_view bytes);

}  // namespace format
}  // namespace meshckpt

#endif  // MESHCKPT_TOOLS_FORMAT_H_
