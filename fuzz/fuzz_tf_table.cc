// libFuzzer target: the LevelDB-format table reader behind a TensorBundle
// index (tfbundle/table.h) and what BundleReader does with its records
// (header, V1 detection, BundleEntry validation).
//
// Each input is read twice: as is, and with block checksums ignored, so the
// fuzzer also reaches the block and entry parsing that CRCs guard.
#include <cstddef>
#include <cstdint>
#include <string>

#include "meshckpt/tfbundle/bundle_entry.h"
#include "meshckpt/tfbundle/table.h"

namespace {

void Exercise(const std::string& file, bool verify) {
  meshckpt::tf::TableReadLimits limits;
  limits.verify_checksums = verify;
  limits.max_block_bytes = 1 << 20;
  absl::StatusOr<std::vector<meshckpt::tf::TableEntry>> table =
      meshckpt::tf::ReadTable(file, "fuzz.index", limits);
  if (!table.ok() || table->empty()) return;
  int num_shards = 1;
  if ((*table)[0].key.empty()) {
    absl::StatusOr<meshckpt::tf::BundleHeader> h =
        meshckpt::tf::ParseBundleHeader((*table)[0].value, "fuzz.index");
    if (h.ok()) num_shards = h->num_shards;
  }
  for (const meshckpt::tf::TableEntry& e : *table) {
    absl::StatusOr<meshckpt::tf::BundleEntry> entry =
        meshckpt::tf::BundleEntry::Parse(e.key, e.value, num_shards, "fuzz.index");
    if (entry.ok()) (void)entry->Serialize();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string file(reinterpret_cast<const char*>(data), size);
  Exercise(file, true);
  Exercise(file, false);
  return 0;
}
