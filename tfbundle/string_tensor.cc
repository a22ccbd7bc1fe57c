// Encoding and bounded decoding of DT_STRING tensors in a TensorBundle.
#include "meshckpt/tfbundle/string_tensor.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "meshckpt/tfbundle/crc32c.h"

namespace meshckpt::tf {
namespace {

void PutVarint64(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// `v` as `width` bytes in the given byte order.
void PutFixed(char* out, uint64_t v, int width, bool big_endian) {
  for (int i = 0; i < width; ++i) {
    const int shift = 8 * (big_endian ? width - 1 - i : i);
    out[i] = static_cast<char>((v >> shift) & 0xff);
  }
}

uint32_t GetFixed32(const char* p, bool big_endian) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) {
    const uint32_t b = static_cast<unsigned char>(p[i]);
    v |= b << (8 * (big_endian ? 3 - i : i));
  }
  return v;
}

uint32_t ExtendLength(uint32_t crc, uint64_t len, bool big_endian) {
  char buf[8];
  const int width = len <= UINT32_MAX ? 4 : 8;  // TF's compatibility rule
  PutFixed(buf, len, width, big_endian);
  return crc32c::Extend(crc, buf, width);
}

}  // namespace

EncodedStrings EncodeStringTensor(absl::Span<const std::string> strings) {
  EncodedStrings e;
  uint32_t crc = 0;
  size_t total = 4;
  for (const std::string& s : strings) {
    PutVarint64(&e.bytes, s.size());
    crc = ExtendLength(crc, s.size(), false);
    total += s.size();
  }
  char masked[4];
  PutFixed(masked, crc32c::Mask(crc), 4, false);
  e.bytes.append(masked, 4);
  crc = crc32c::Extend(crc, masked, 4);
  e.bytes.reserve(e.bytes.size() + total);
  for (const std::string& s : strings) {
    e.bytes.append(s);
    crc = crc32c::Extend(crc, s.data(), s.size());
  }
  e.crc32c = crc;
  return e;
}

absl::Status DecodeStringTensor(absl::string_view data, int64_t num_elements,
                                bool big_endian, absl::string_view what,
                                std::vector<std::string>* out, uint32_t* crc32c) {
  const auto bad = [&](absl::string_view why) {
    return absl::DataLossError(
        absl::StrCat(what, ": string tensor data is damaged: ", why));
  };
  out->clear();
  *crc32c = 0;
  // TF writes nothing at all for some empty string tensors.
  if (data.empty() && num_elements == 0) return absl::OkStatus();
  // Every element needs at least one length byte: bounds the vector below.
  if (num_elements < 0 || static_cast<uint64_t>(num_elements) > data.size()) {
    return bad(
        absl::StrFormat("%d elements cannot fit in %d bytes", num_elements, data.size()));
  }
  const char* p = data.data();
  const char* const end = p + data.size();
  std::vector<uint64_t> lengths(static_cast<size_t>(num_elements));
  uint64_t remaining_bytes = 0;
  uint32_t crc = 0;
  for (uint64_t& len : lengths) {
    uint64_t v = 0;
    bool done = false;
    for (int shift = 0; shift <= 63 && p < end; shift += 7) {
      const uint64_t b = static_cast<unsigned char>(*p++);
      if (shift == 63 && b > 1) break;
      v |= (b & 0x7f) << shift;
      if ((b & 0x80) == 0) {
        done = true;
        break;
      }
    }
    if (!done) return bad("a length is not a varint64");
    len = v;
    crc = ExtendLength(crc, len, big_endian);
    if (len > data.size()) return bad(absl::StrFormat("an element claims %d bytes", len));
    remaining_bytes += len;
    if (remaining_bytes > data.size())
      return bad("the lengths add up to more than the data");
  }
  if (end - p < 4) return bad("the length checksum is missing");
  const uint32_t stored = GetFixed32(p, big_endian);
  if (crc32c::Unmask(stored) != crc) {
    return bad(absl::StrFormat("length checksum mismatch (stored %08x, computed %08x)",
                               crc32c::Unmask(stored), crc));
  }
  crc = crc32c::Extend(crc, p, 4);
  p += 4;
  if (remaining_bytes != static_cast<uint64_t>(end - p)) {
    return bad(absl::StrFormat("the lengths add up to %d bytes but %d follow them",
                               remaining_bytes, end - p));
  }
  out->reserve(lengths.size());
  for (uint64_t len : lengths) {
    out->emplace_back(p, static_cast<size_t>(len));
    crc = crc32c::Extend(crc, p, static_cast<size_t>(len));
    p += len;
  }
  *crc32c = crc;
  return absl::OkStatus();
}

}  // namespace meshckpt::tf
