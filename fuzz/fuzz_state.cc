// libFuzzer target: the `checkpoint` state file (checkpoint/state/checkpoint_state.h):
// ReadCheckpointState parses it (protobuf text format), LatestCheckpoint
// resolves and confines its paths to the directory, and the path helpers
// run on every path it names. The input is written to a state file in a
// private temporary directory (on /dev/shm when there is one) that also
// holds one committed-looking index, so path checks have something to find.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "meshckpt/checkpoint/state/checkpoint_state.h"

namespace {

const std::string& Dir() {
  static const std::string* dir = [] {
    std::string base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    std::string tmpl = base + "/meshckpt_fuzz_state_XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) std::abort();
    std::ofstream(tmpl + "/ckpt-1.index") << "not really an index";
    return new std::string(tmpl);
  }();
  return *dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& dir = Dir();
  {
    std::ofstream out(dir + "/checkpoint", std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  absl::StatusOr<meshckpt::CheckpointState> state = meshckpt::ReadCheckpointState(dir);
  if (state.ok()) {
    (void)meshckpt::ResolveCheckpointPath(dir, state->model_checkpoint_path);
    (void)meshckpt::RelativeCheckpointPath(dir, state->model_checkpoint_path);
    for (const std::string& p : state->all_model_checkpoint_paths) {
      (void)meshckpt::ResolveCheckpointPath(dir, p);
      (void)meshckpt::RelativeCheckpointPath(dir, p);
      (void)meshckpt::RelativeCheckpointPath(p, dir);
    }
  }
  absl::StatusOr<std::string> latest = meshckpt::LatestCheckpoint(dir);
  // Whatever LatestCheckpoint returns must lie in the directory.
  if (latest.ok() && latest->compare(0, dir.size() + 1, dir + "/") != 0) std::abort();
  return 0;
}
