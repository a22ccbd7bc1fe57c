// UTF-8 validity, for the few places (protobuf map keys) that require it.
#ifndef MESHCKPT_BASE_UTF8_H_
#define MESHCKPT_BASE_UTF8_H_

#include "absl/strings/string_view.h"

namespace meshckpt {

// Well-formed UTF-8 (RFC 3629): no overlong forms, surrogates or code points
// above U+10FFFF.
inline bool IsValidUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t extra;                        // Continuation bytes after the lead.
    unsigned char lo = 0x80, hi = 0xBF;  // Allowed range of the second byte.
    if (c >= 0xC2 && c <= 0xDF) {
      extra = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      extra = 2;
      if (c == 0xE0) lo = 0xA0;  // No overlong 3-byte forms.
      if (c == 0xED) hi = 0x9F;  // No surrogates.
    } else if (c >= 0xF0 && c <= 0xF4) {
      extra = 3;
      if (c == 0xF0) lo = 0x90;  // No overlong 4-byte forms.
      if (c == 0xF4) hi = 0x8F;  // Nothing above U+10FFFF.
    } else {
      return false;
    }
    if (s.size() - i <= extra) return false;  // Truncated sequence.
    for (size_t k = 1; k <= extra; ++k) {
      const unsigned char b = static_cast<unsigned char>(s[i + k]);
      if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return false;
    }
    i += extra + 1;
  }
  return true;
}

}  // namespace meshckpt

#endif  // MESHCKPT_BASE_UTF8_H_
