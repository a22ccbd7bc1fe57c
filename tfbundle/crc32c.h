// CRC32C (Castagnoli), as TensorFlow and LevelDB use it for table blocks and
// TensorBundle entries, and TensorFlow's masking of stored CRCs.
//
// Extend() uses the SSE4.2 crc32 instruction when the CPU has it (checked
// once, at run time) and a slicing-by-8 table otherwise. Masking exists
// because a CRC stored next to the data it covers makes CRCs of CRCs weak;
// TF stores Mask(crc) = rotr(crc, 15) + 0xa282ead8. Thread-safe.
#ifndef MESHCKPT_TFBUNDLE_CRC32C_H_
#define MESHCKPT_TFBUNDLE_CRC32C_H_

#include <cstddef>
#include <cstdint>

namespace meshckpt::tf::crc32c {

// The CRC32C of data[0, n) appended to a string whose CRC32C is `crc`.
uint32_t Extend(uint32_t crc, const char* data, size_t n);
inline uint32_t Value(const char* data, size_t n) { return Extend(0, data, n); }

inline constexpr uint32_t kMaskDelta = 0xa282ead8u;
inline uint32_t Mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + kMaskDelta; }
inline uint32_t Unmask(uint32_t masked) {
  const uint32_t rot = masked - kMaskDelta;
  return (rot >> 17) | (rot << 15);
}

// The CRC32C of A followed by B, from crc(A), crc(B) and B's length: what
// lets ranks each checksum a part of an entry and still check the whole
// entry's CRC. Multiplies crc(A) by x^(8 * len_b) modulo the polynomial
// (zlib's crc32_combine technique: square-and-multiply over a table of
// x^(2^k)), O(log len_b).
uint32_t Combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

// Whether Extend() runs on the SSE4.2 instruction on this machine.
bool HardwareAccelerated();

// Both implementations, for tests that compare them.
uint32_t ExtendPortable(uint32_t crc, const char* data, size_t n);
// Precondition: HardwareAccelerated().
uint32_t ExtendHardware(uint32_t crc, const char* data, size_t n);

}  // namespace meshckpt::tf::crc32c

#endif  // MESHCKPT_TFBUNDLE_CRC32C_H_
