// libFuzzer target: the index file decoder (io/format/index_file.h) and the index
// validation every reader runs (CheckpointIndex::FromProto), then what a
// restore does with a validated index (reshard planning, tile grids).
//
// The input is used twice: as a whole index file (footer and all), and as a
// protobuf payload this harness frames with a correct XXH3 footer, so the
// fuzzer reaches the validation behind the checksum.
#include <xxhash.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "meshckpt/checkpoint/engine/checkpoint_index.h"
#include "meshckpt/io/format/checksum.h"
#include "meshckpt/io/format/index_file.h"
#include "meshckpt/layout/reshard_plan.h"

namespace {

std::string Frame(const char* data, size_t size) {
  std::string out(data, size);
  const uint64_t h = XXH3_64bits(data, size);
  for (int b = 0; b < 8; ++b) out.push_back(static_cast<char>(h >> (8 * b)));
  out.append(meshckpt::kIndexMagic, 8);
  return out;
}

void Exercise(const std::string& file) {
  absl::StatusOr<meshckpt::IndexRecord> record =
      meshckpt::DecodeIndexFile(file, "fuzz.index");
  if (!record.ok()) return;
  (void)meshckpt::EncodeIndexFile(*record);  // Whatever decodes must encode.
  absl::StatusOr<meshckpt::CheckpointIndex> index =
      meshckpt::CheckpointIndex::FromRecord(*std::move(record), "fuzz.index");
  if (!index.ok()) return;
  for (const meshckpt::CheckpointIndex::Tensor& t : index->tensors()) {
    (void)index->Find(t.key);
    (void)t.layout.ToString();
    // Restores plan over the chunks; keep the work bounded.
    if (t.chunks.size() <= 64) {
      (void)meshckpt::PlanReshard(t.chunks, meshckpt::Box::FromShape(t.shape));
    }
    for (int c = 0; c < static_cast<int>(t.chunks.size()) && c < 16; ++c) {
      meshckpt::TileGrid grid(t.chunks[c].shape(), index->chunk(t, c).tile_shape);
      if (grid.num_tiles() > 0 && grid.num_tiles() <= 1024) {
        (void)grid.TileBox(grid.num_tiles() - 1);
        (void)grid.Expand(meshckpt::Box::FromShape(t.chunks[c].shape()));
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const char* p = reinterpret_cast<const char*>(data);
  Exercise(std::string(p, size));
  Exercise(Frame(p, size));
  return 0;
}
