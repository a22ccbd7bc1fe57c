// Little-endian 64-bit integers in byte strings, after LevelDB's
// util/coding.h: the string blob's lengths, and the records ranks send each
// other during a save (chunk reports, storage tables, string shards).
// Byte by byte, so independent of the host's endianness and alignment.
#ifndef MESHCKPT_IO_FORMAT_FIXED64_H_
#define MESHCKPT_IO_FORMAT_FIXED64_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace meshckpt {

inline void EncodeFixed64(uint64_t v, char* out) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(v >> (8 * i));
}

inline uint64_t DecodeFixed64(const char* in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t{static_cast<unsigned char>(in[i])} << (8 * i);
  return v;
}

inline void AppendFixed64(std::string* out, uint64_t v) {
  char bytes[8];
  EncodeFixed64(v, bytes);
  out->append(bytes, 8);
}

// Reads 8 bytes from the front of `in` and drops them; `in` must hold them.
inline uint64_t ConsumeFixed64(absl::string_view* in) {
  const uint64_t v = DecodeFixed64(in->data());
  in->remove_prefix(8);
  return v;
}

}  // namespace meshckpt

#endif  // MESHCKPT_IO_FORMAT_FIXED64_H_
