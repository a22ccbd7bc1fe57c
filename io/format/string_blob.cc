// The byte blob string datasets are stored as.
#include "io/format/string_blob.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace meshckpt {
namespace {

void PutU64(uint64_t v, char* out) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(v >> (8 * i));
}

uint64_t GetU64(const char* in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t{static_cast<unsigned char>(in[i])} << (8 * i);
  return v;
}

}  // namespace

std::string EncodeStringBlob(absl::Span<const std::string> values) {
  size_t bytes = 0;
  for (const std::string& s : values) bytes += s.size();
  std::string blob(8 * values.size() + bytes, '\0');
  char* len = blob.data();
  char* data = blob.data() + 8 * values.size();
  for (const std::string& s : values) {
    PutU64(s.size(), len);
    len += 8;
    std::memcpy(data, s.data(), s.size());
    data += s.size();
  }
  return blob;
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
    const uint64_t len = GetU64(blob.data() + 8 * i);
    if (len > available - total) {
      return absl::DataLossError(absl::StrCat(
          "string element ", i, " claims ", len, " bytes, but only ",
          available - total, " of the blob's ", blob.size(), " remain"));
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
    const uint64_t len = GetU64(blob.data() + 8 * i);
    (*out)[i].assign(data, len);
    data += len;
  }
  return absl::OkStatus();
}

}  // namespace meshckpt
