// OrderedCode encoding of tensor slice keys, as TensorFlow's ordered_code.cc.
#include "meshckpt/tfbundle/slice_key.h"

namespace meshckpt::tf {

void OrderedCodeWriteNumIncreasing(std::string* dest, uint64_t value) {
  char buf[8];
  int len = 0;
  for (; value > 0; value >>= 8) buf[7 - len++] = static_cast<char>(value & 0xff);
  dest->push_back(static_cast<char>(len));
  dest->append(buf + 8 - len, len);
}

void OrderedCodeWriteString(std::string* dest, absl::string_view s) {
  for (char c : s) {
    if (c == '\0') {
      dest->append("\x00\xff", 2);
    } else if (c == '\xff') {
      dest->append("\xff\x00", 2);
    } else {
      dest->push_back(c);
    }
  }
  dest->append("\x00\x01", 2);
}

void OrderedCodeWriteSignedNumIncreasing(std::string* dest, int64_t value) {
  // The first byte's high bits hold the sign and, repeated, the number of
  // bytes after it; n bytes hold values in [-2^(7n-1), 2^(7n-1)).
  const uint64_t x = value < 0 ? ~static_cast<uint64_t>(value)
                               : static_cast<uint64_t>(value);
  int bits = 0;  // bits of x, plus the sign bit below
  while (bits < 64 && (x >> bits) != 0) ++bits;
  int len = 1;
  while (len < 10 && bits + 1 > 7 * len) ++len;
  // Sign-extended big-endian value in the last `len` of 10 bytes.
  unsigned char buf[10];
  const unsigned char sign = value < 0 ? 0xff : 0x00;
  buf[0] = buf[1] = sign;
  for (int i = 0; i < 8; ++i) {
    buf[2 + i] = static_cast<unsigned char>(static_cast<uint64_t>(value) >> (56 - 8 * i));
  }
  // Header bits, xored in: len ones (then a zero) starting at the top bit.
  static const unsigned char kHeader[11][2] = {
      {0, 0},    {0x80, 0}, {0xc0, 0}, {0xe0, 0},    {0xf0, 0},   {0xf8, 0},
      {0xfc, 0}, {0xfe, 0}, {0xff, 0}, {0xff, 0x80}, {0xff, 0xc0}};
  unsigned char* begin = buf + 10 - len;
  begin[0] ^= kHeader[len][0];
  if (len > 1) begin[1] ^= kHeader[len][1];
  dest->append(reinterpret_cast<const char*>(begin), len);
}

std::string EncodeTensorNameSlice(absl::string_view name, const TensorSliceSpec& slice) {
  std::string key;
  OrderedCodeWriteNumIncreasing(&key, 0);
  OrderedCodeWriteString(&key, name);
  OrderedCodeWriteNumIncreasing(&key, slice.size());
  for (const SliceExtent& e : slice) {
    OrderedCodeWriteSignedNumIncreasing(&key, e.length < 0 ? 0 : e.start);
    OrderedCodeWriteSignedNumIncreasing(&key, e.length < 0 ? -1 : e.length);
  }
  return key;
}

}  // namespace meshckpt::tf
