// The string blob format: encoding, checked decoding, and placing shards.
#include "meshckpt/io/format/string_blob.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "meshckpt/io/format/fixed64.h"
#include "meshckpt/layout/region.h"

namespace meshckpt {

std::string EncodeStringBlob(absl::Span<const std::string> values) {
  std::string blob;
  AppendStringBlob(values, &blob);
  return blob;
}

void AppendStringBlob(absl::Span<const std::string> values, std::string* out) {
  size_t bytes = 0;
  for (const std::string& s : values) bytes += s.size();
  const size_t start = out->size();
  out->resize(start + 8 * values.size() + bytes);
  char* len = out->data() + start;
  char* data = len + 8 * values.size();
  for (const std::string& s : values) {
    EncodeFixed64(s.size(), len);
    len += 8;
    std::memcpy(data, s.data(), s.size());
    data += s.size();
  }
}

absl::Status DecodeStringBlob(absl::string_view blob, int64_t n,
                              std::vector<std::string>* out) {
  // Divide rather than multiply: n comes from a file and may be huge.
  if (n < 0 || static_cast<uint64_t>(n) > blob.size() / 8) {
    return absl::DataLossError(absl::StrCat("a string blob of ", blob.size(),
                                            " bytes cannot hold ", n, " lengths"));
  }
  const uint64_t available = blob.size() - 8 * static_cast<uint64_t>(n);
  uint64_t total = 0;
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t len = DecodeFixed64(blob.data() + 8 * i);
    if (len > available - total) {
      return absl::DataLossError(absl::StrCat("string element ", i, " claims ", len,
                                              " bytes, but only ", available - total,
                                              " of the blob's ", blob.size(), " remain"));
    }
    total += len;
  }
  if (total != available) {
    return absl::DataLossError(absl::StrCat("string lengths add up to ", total,
                                            " bytes, but the blob holds ", available));
  }
  out->assign(n, std::string());
  const char* data = blob.data() + 8 * n;
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t len = DecodeFixed64(blob.data() + 8 * i);
    (*out)[i].assign(data, len);
    data += len;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<StringBlobPiece>> PlaceStringShards(
    absl::Span<const int64_t> shape, absl::Span<const Box> boxes,
    absl::Span<const absl::string_view> blobs) {
  if (boxes.size() != blobs.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(boxes.size(), " string shards but ", blobs.size(), " blobs"));
  }
  const Box tensor = Box::FromShape(std::vector<int64_t>(shape.begin(), shape.end()));
  // A run: consecutive elements of the tensor that are consecutive in one
  // shard too.
  struct Run {
    int64_t element;  // In the tensor, row-major.
    int64_t count;
    size_t shard;
    int64_t local;       // First element in the shard.
    int64_t local_byte;  // Its first byte among the shard's element bytes.
    int64_t bytes;
  };
  std::vector<Run> runs;
  for (size_t i = 0; i < boxes.size(); ++i) {
    const Box& box = boxes[i];
    const absl::string_view blob = blobs[i];
    const int64_t n = box.num_elements();
    if (box.rank() != tensor.rank() || !tensor.Contains(box)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "string shard ", box.ToString(), " is not inside ", tensor.ToString()));
    }
    if (static_cast<uint64_t>(n) > blob.size() / 8) {
      return absl::InvalidArgumentError(
          absl::StrCat("the blob of string shard ", box.ToString(), " has ", blob.size(),
                       " bytes, too few for ", n, " lengths"));
    }
    if (n == 0) continue;
    const uint64_t available = blob.size() - 8 * static_cast<uint64_t>(n);
    uint64_t used = 0;
    bool fits = true;
    ForEachRunPair(shape, box, box.shape(), Box::FromShape(box.shape()),
                   [&](int64_t element, int64_t local, int64_t count) {
                     const uint64_t first = used;
                     for (int64_t e = local; e < local + count && fits; ++e) {
                       const uint64_t len = DecodeFixed64(blob.data() + 8 * e);
                       fits = len <= available - used;
                       if (fits) used += len;
                     }
                     runs.push_back({element, count, i, local,
                                     static_cast<int64_t>(first),
                                     static_cast<int64_t>(used - first)});
                   });
    if (!fits || used != available) {
      return absl::InvalidArgumentError(
          absl::StrCat("the lengths in the blob of string shard ", box.ToString(),
                       " do not add up to the ", available, " bytes after them"));
    }
  }
  std::sort(runs.begin(), runs.end(),
            [](const Run& a, const Run& b) { return a.element < b.element; });
  int64_t next = 0;  // Every run starts where the one before it ended.
  bool tiled = true;
  for (const Run& r : runs) {
    tiled &= r.element == next;
    next += r.count;
  }
  if (!tiled || next != tensor.num_elements()) {
    return absl::InvalidArgumentError(
        absl::StrCat("string shards do not cover each element of ", tensor.ToString(),
                     " exactly once"));
  }
  std::vector<StringBlobPiece> pieces;
  auto add = [&](size_t shard, int64_t from, int64_t to, int64_t size) {
    if (size == 0) return;
    if (!pieces.empty()) {
      StringBlobPiece& last = pieces.back();
      if (last.shard == shard && last.from + last.size == from &&
          last.to + last.size == to) {
        last.size += size;
        return;
      }
    }
    pieces.push_back({shard, from, to, size});
  };
  for (const Run& r : runs) add(r.shard, 8 * r.local, 8 * r.element, 8 * r.count);
  int64_t at = 8 * tensor.num_elements();
  for (const Run& r : runs) {
    const int64_t lengths = 8 * boxes[r.shard].num_elements();
    add(r.shard, lengths + r.local_byte, at, r.bytes);
    at += r.bytes;
  }
  return pieces;
}

}  // namespace meshckpt
