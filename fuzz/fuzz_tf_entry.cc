// libFuzzer target: one TensorBundle record and the data it describes:
// BundleEntry::Parse (a BundleEntryProto), its re-serialization, the bundle
// header parser, and the DT_STRING decoder over the data bytes.
//
// Input: [1 byte n][n bytes of BundleEntryProto][data bytes]. The data is
// decoded as a string tensor of the entry's element count (or, when the
// entry does not parse, of the count in the first data byte).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "meshckpt/tfbundle/bundle_entry.h"
#include "meshckpt/tfbundle/string_tensor.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const char* p = reinterpret_cast<const char*>(data);
  const size_t n = std::min<size_t>(static_cast<uint8_t>(p[0]), size - 1);
  const std::string record(p + 1, n);
  const std::string bytes(p + 1 + n, size - 1 - n);
  (void)meshckpt::tf::ParseBundleHeader(record, "fuzz.index");
  int64_t elements = bytes.empty() ? 0 : static_cast<uint8_t>(bytes[0]);
  absl::StatusOr<meshckpt::tf::BundleEntry> e =
      meshckpt::tf::BundleEntry::Parse("key", record, 4, "fuzz.index");
  if (e.ok()) {
    absl::StatusOr<meshckpt::tf::BundleEntry> again =
        meshckpt::tf::BundleEntry::Parse("key", e->Serialize(), 4, "fuzz.index");
    if (!again.ok() || again->Serialize() != e->Serialize()) __builtin_trap();
    elements = e->num_elements();
  }
  std::vector<std::string> strings;
  uint32_t crc = 0;
  for (bool big_endian : {false, true}) {
    (void)meshckpt::tf::DecodeStringTensor(bytes, elements, big_endian, "fuzz", &strings,
                                           &crc);
  }
  return 0;
}
