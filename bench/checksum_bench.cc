// What our XXH3 tile checksums cost next to the I/O they protect. One
// process, same bytes, same run:
//   - XXH3-64 over the buffer in memory, whole and as 1 MiB tiles of a
//     [rows, 4096] float32 chunk (TileChecksums, what a save computes);
//   - HDF5 write + cold read of the same bytes as a chunked dataset (chunks
//     of 8 MiB), through our DataFile layer.
// (HDF5's Fletcher32 filter is not compared: DataFile offers no filters,
// and only io/ may use HDF5 itself.)
//
//   checksum_bench [--mb=1024] [--dir=/tmp/meshckpt_bench]
#include <unistd.h>
#include <xxhash.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "meshckpt/io/format/checksum.h"
#include "meshckpt/io/fs/fs.h"
#include "meshckpt/io/transfer/data_file.h"

namespace meshckpt {
namespace {

double Now() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void DropCaches() {
  ::sync();
  if (FILE* f = std::fopen("/proc/sys/vm/drop_caches", "w")) {
    std::fputs("3\n", f);
    std::fclose(f);
  }
}

// Seconds to write then cold-read `data` as a [rows, 4096] float32 dataset.
std::pair<double, double> HdfRoundTrip(const std::string& path,
                                       const std::vector<float>& data, int64_t rows) {
  auto comm = SerialCommunicator();
  const Box all = Box::FromShape({rows, 4096});
  double t0 = Now();
  auto w = DataFileWriter::Create(*comm, path, {}).value();
  const DatasetSpec spec{"x", DType::kFloat32, {rows, 4096}, {512, 4096}, {}};
  int d = w->CreateDataset(spec).value();
  if (!w->Write(d, all, data.data()).ok() || !w->Close().ok()) std::abort();
  if (!SyncFile(path).ok()) std::abort();
  const double write = Now() - t0;
  DropCaches();
  std::vector<float> back(data.size());
  t0 = Now();
  auto r = DataFileReader::Open(*comm, path, {}).value();
  int rd = r->OpenDataset("x", DType::kFloat32, {rows, 4096}).value();
  if (!r->Read(rd, all, back.data()).ok()) std::abort();
  (void)r->Close();
  const double read = Now() - t0;
  if (back != data) std::fprintf(stderr, "read back differs\n");
  (void)RemoveFileIfExists(path);
  return {write, read};
}

int Run(int argc, char** argv) {
  int64_t mb = 1024;
  std::string dir = "/tmp/meshckpt_bench";
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (absl::ConsumePrefix(&a, "--mb="))
      (void)absl::SimpleAtoi(a, &mb);
    else if (absl::ConsumePrefix(&a, "--dir="))
      dir = std::string(a);
  }
  (void)std::system(absl::StrCat("mkdir -p ", dir).c_str());
  const int64_t rows = (mb << 20) / (4096 * 4);
  std::vector<float> data(rows * 4096);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<float>(i % 9973) * 0.5f;
  const double gb = data.size() * 4 / 1e9;

  double t0 = Now();
  volatile uint64_t h = XXH3_64bits(data.data(), data.size() * 4);
  const double xxh_whole = Now() - t0;
  t0 = Now();
  std::vector<int64_t> shape = {rows, 4096};
  TileGrid grid(shape, ChooseTileShape(shape, 4, 1 << 20));
  std::vector<uint64_t> tiles = TileChecksums(data.data(), grid, 4);
  const double xxh_tiles = Now() - t0;
  (void)h;

  std::printf("bytes=%.3f GB\n", gb);
  std::printf(
      "XXH3 in memory: whole buffer %.1f GB/s, %zu tiles of [%lld,%lld] %.1f GB/s\n",
      gb / xxh_whole, tiles.size(), static_cast<long long>(grid.tile_shape()[0]),
      static_cast<long long>(grid.tile_shape()[1]), gb / xxh_tiles);
  for (int rep = 0; rep < 2; ++rep) {
    auto [w, r] = HdfRoundTrip(dir + "/plain.h5", data, rows);
    std::printf(
        "rep %d: HDF5 write %.2f GB/s read %.2f GB/s | XXH3 tiles add x%.3f to a "
        "write, x%.3f to a read\n",
        rep, gb / w, gb / r, (w + xxh_tiles) / w, (r + xxh_tiles) / r);
  }
  return 0;
}

}  // namespace
}  // namespace meshckpt

int main(int argc, char** argv) { return meshckpt::Run(argc, argv); }
