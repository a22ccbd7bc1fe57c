// The API example of README.md, compiled and run by ctest so the README
// cannot drift from the code. Keep the two in sync.
#include "meshckpt/checkpoint/manager/checkpoint_manager.h"
#include "meshckpt/checkpoint/object/dtensor_checkpoint.h"
#include "meshckpt/checkpoint/object/dvariable.h"
#include "meshckpt/comm/mpi_communicator.h"

using namespace meshckpt;

int main(int argc, char** argv) {
  MpiEnvironment env(&argc, &argv);
  auto comm = *MpiCommunicator::World();
  // 8 devices over however many ranks this job has (1, 2, 4 or 8).
  Mesh mesh = *Mesh::Create({{"batch", 2}, {"model", 4}}, comm->rank(), comm->size());
  Module model;
  DVariable* w = *model.AddVariable("kernel", DType::kFloat32, {1024, 4096},
                                    *Layout::Create({"unsharded", "model"}, mesh));
  TrackedValue* step = *model.AddValue("step", TrackedValue::Create(int64_t{0}));
  // Each buffer this rank holds, once, even when several local devices share
  // it: s.box is its part of the tensor, s.devices the devices sharing it.
  for (const DVariable::Shard<float>& s : w->Shards<float>()) {
    for (float& x : s.data) x += 0.5f;
  }
  auto ckpt = *DTensorCheckpoint::Create(comm.get(), mesh, {{"model", &model}});
  CheckpointManagerOptions opts;
  opts.max_to_keep = 3;
  opts.step_counter = step;
  auto manager = *CheckpointManager::Create(
      ckpt.get(), argc > 1 ? argv[1] : "/tmp/meshckpt_readme", opts);
  // From any earlier mesh/rank count; fails on another model's checkpoint.
  if (!manager->RestoreOrInitialize(RestoreMatch::kAllMatched).ok()) return 1;
  // ... train; step->set(step->int64() + 1) ...
  absl::StatusOr<std::optional<std::string>> saved = manager->Save();
  return saved.ok() ? 0 : 1;
}
