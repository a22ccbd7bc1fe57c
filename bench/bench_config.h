// ckpt_bench's command line: the usage text, the flags and their checks.
#ifndef MESHCKPT_BENCH_BENCH_CONFIG_H_
#define MESHCKPT_BENCH_BENCH_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "meshckpt/io/transfer/io_options.h"

namespace meshckpt::bench {

extern const char kUsage[];

struct Config {
  std::vector<std::string> modes = {"io", "tensors"};
  bool help = false, quick = false, mesh2d = false, warm = false;
  int reps = 3, devices = 0, data = 2;
  int64_t tensors = 10000;
  bool split_tensors = false;
  std::string dir = "/tmp/meshckpt_bench", csv, suite = "adhoc", keep, from;
  TransferMode restore_transfer = TransferMode::kDirect;
};

// InvalidArgument for unknown or malformed flags and modes.
absl::StatusOr<Config> ParseConfig(int argc, char** argv, int ranks);

}  // namespace meshckpt::bench

#endif  // MESHCKPT_BENCH_BENCH_CONFIG_H_
