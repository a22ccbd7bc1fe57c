// CRC32C against published vectors (RFC 3720 B.4), both implementations, masking.
#include "meshckpt/tfbundle/crc32c.h"

#include <random>
#include <string>

#include "gtest/gtest.h"

namespace meshckpt::tf::crc32c {
namespace {

struct Vector {
  std::string data;
  uint32_t crc;
};

std::vector<Vector> KnownVectors() {
  std::string ascending(32, '\0'), descending(32, '\0');
  for (int i = 0; i < 32; ++i) {
    ascending[i] = static_cast<char>(i);
    descending[i] = static_cast<char>(31 - i);
  }
  // The iSCSI read command PDU of RFC 3720, B.4.
  std::string iscsi(48, '\0');
  iscsi[0] = 0x01;
  iscsi[1] = static_cast<char>(0xc0);
  iscsi[16] = 0x14;
  iscsi[22] = 0x04;
  iscsi[27] = 0x14;
  iscsi[31] = 0x18;
  iscsi[32] = 0x28;
  iscsi[40] = 0x02;
  return {
      {"", 0x00000000u},
      {"a", 0xc1d04330u},
      {"123456789", 0xe3069283u},
      {std::string(32, '\0'), 0x8a9136aau},
      {std::string(32, '\xff'), 0x62a8ab43u},
      {ascending, 0x46dd794eu},
      {descending, 0x113fdb5cu},
      {iscsi, 0xd9963a56u},
  };
}

TEST(Crc32cTest, KnownVectorsPortable) {
  for (const Vector& v : KnownVectors()) {
    EXPECT_EQ(ExtendPortable(0, v.data.data(), v.data.size()), v.crc) << v.data.size();
  }
}

TEST(Crc32cTest, KnownVectorsHardware) {
  if (!HardwareAccelerated()) GTEST_SKIP() << "no SSE4.2 on this CPU";
  for (const Vector& v : KnownVectors()) {
    EXPECT_EQ(ExtendHardware(0, v.data.data(), v.data.size()), v.crc) << v.data.size();
  }
}

TEST(Crc32cTest, KnownVectorsDispatched) {
  for (const Vector& v : KnownVectors())
    EXPECT_EQ(Value(v.data.data(), v.data.size()), v.crc);
}

TEST(Crc32cTest, ImplementationsAgreeOnEveryLengthAndAlignment) {
  std::mt19937 rng(7);
  std::string buf(4096 + 16, '\0');
  for (char& c : buf) c = static_cast<char>(rng());
  for (size_t start = 0; start < 16; ++start) {
    for (size_t n : {0, 1, 3, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000, 4096}) {
      const uint32_t p = ExtendPortable(0, buf.data() + start, n);
      EXPECT_EQ(Value(buf.data() + start, n), p);
      if (HardwareAccelerated()) {
        EXPECT_EQ(ExtendHardware(0, buf.data() + start, n), p);
      }
    }
  }
}

TEST(Crc32cTest, ExtendEqualsWholeValue) {
  const std::string s = "hello world, this is a longer string to split";
  for (size_t cut = 0; cut <= s.size(); ++cut) {
    EXPECT_EQ(Extend(Value(s.data(), cut), s.data() + cut, s.size() - cut),
              Value(s.data(), s.size()));
  }
}

TEST(Crc32cTest, MaskIsTensorFlows) {
  const uint32_t crc = Value("foo", 3);
  EXPECT_NE(Mask(crc), crc);
  EXPECT_NE(Mask(Mask(crc)), crc);
  EXPECT_EQ(Unmask(Mask(crc)), crc);
  EXPECT_EQ(Unmask(Unmask(Mask(Mask(crc)))), crc);
  // rotate right by 15, plus the delta
  EXPECT_EQ(Mask(0), kMaskDelta);
  EXPECT_EQ(Mask(0x8000u), 1u + kMaskDelta);
  EXPECT_EQ(Mask(1u), 0x00020000u + kMaskDelta);
}

TEST(Crc32cTest, CombineEqualsTheWholeCrc) {
  std::mt19937_64 rng(7);
  std::string data(70000, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  const uint32_t whole = Value(data.data(), data.size());
  for (size_t cut : {size_t{0}, size_t{1}, size_t{3}, size_t{4096}, size_t{65537},
                     data.size() - 1, data.size()}) {
    const uint32_t a = Value(data.data(), cut);
    const uint32_t b = Value(data.data() + cut, data.size() - cut);
    EXPECT_EQ(Combine(a, b, data.size() - cut), whole) << "cut at " << cut;
  }
  // Many parts, combined left to right, as ranks' partial CRCs are.
  for (int parts : {2, 3, 7, 13}) {
    uint32_t crc = 0;
    for (int i = 0; i < parts; ++i) {
      const size_t begin = data.size() * i / parts, end = data.size() * (i + 1) / parts;
      crc = Combine(crc, Value(data.data() + begin, end - begin), end - begin);
    }
    EXPECT_EQ(crc, whole) << parts << " parts";
  }
  // An empty part changes nothing.
  EXPECT_EQ(Combine(whole, 0, 0), whole);
}

TEST(Crc32cTest, CombineDetectsAChangedPart) {
  std::string data(1000, 'x');
  const uint32_t whole = Value(data.data(), data.size());
  data[700] ^= 1;
  const uint32_t a = Value(data.data(), 500), b = Value(data.data() + 500, 500);
  EXPECT_NE(Combine(a, b, 500), whole);
}

}  // namespace
}  // namespace meshckpt::tf::crc32c
