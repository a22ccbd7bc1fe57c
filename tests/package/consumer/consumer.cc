// A program outside the tree that uses the installed meshckpt: saves a
// float32 [12, 5] variable split by rows over a 6-device mesh, then (run
// again on another rank count) restores it and checks every element.
//
//   mpirun -n 2 consumer save DIR && mpirun -n 3 consumer restore DIR
#include <cstdio>
#include <cstring>
#include <string>

#include "meshckpt/meshckpt.h"

using namespace meshckpt;

namespace {

float Expected(int64_t row, int64_t col) { return static_cast<float>(row * 100 + col); }

int Fail(const Communicator& comm, const std::string& what) {
  std::fprintf(stderr, "consumer (rank %d): %s\n", comm.rank(), what.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  MpiEnvironment env(&argc, &argv);
  if (argc != 3 ||
      (std::strcmp(argv[1], "save") != 0 && std::strcmp(argv[1], "restore") != 0)) {
    std::fprintf(stderr, "usage: consumer save|restore DIR\n");
    return 2;
  }
  const bool save = std::strcmp(argv[1], "save") == 0;
  const std::string prefix = std::string(argv[2]) + "/ckpt";
  auto comm = *MpiCommunicator::World();
  absl::StatusOr<Mesh> mesh = Mesh::Create({{"x", 6}}, comm->rank(), comm->size());
  if (!mesh.ok()) return Fail(*comm, mesh.status().ToString());
  Module model;
  DVariable* w = *model.AddVariable("w", DType::kFloat32, {12, 5},
                                    *Layout::Create({"x", "unsharded"}, *mesh));
  auto ckpt = *DTensorCheckpoint::Create(comm.get(), *mesh, {{"model", &model}});
  if (save) {
    for (int64_t d : mesh->local_device_ids()) {
      const Box box = w->DeviceBox(d);
      absl::Span<float> shard = w->shard<float>(d);
      for (int64_t i = 0; i < box.shape()[0]; ++i) {
        for (int64_t j = 0; j < box.shape()[1]; ++j) {
          shard[i * box.shape()[1] + j] =
              Expected(box.origin()[0] + i, box.origin()[1] + j);
        }
      }
    }
    absl::StatusOr<std::string> path = ckpt->Write(prefix);
    if (!path.ok()) return Fail(*comm, path.status().ToString());
    if (comm->rank() == 0)
      std::printf("saved %s on %d ranks\n", path->c_str(), comm->size());
    return 0;
  }
  absl::StatusOr<LoadStatus> status = ckpt->Read(prefix);
  if (!status.ok()) return Fail(*comm, status.status().ToString());
  if (absl::Status s = status->AssertConsumed(); !s.ok())
    return Fail(*comm, s.ToString());
  int64_t bad = 0;
  for (int64_t d : mesh->local_device_ids()) {
    const Box box = w->DeviceBox(d);
    absl::Span<float> shard = w->shard<float>(d);
    for (int64_t i = 0; i < box.shape()[0]; ++i) {
      for (int64_t j = 0; j < box.shape()[1]; ++j) {
        const float want = Expected(box.origin()[0] + i, box.origin()[1] + j);
        if (std::memcmp(&shard[i * box.shape()[1] + j], &want, sizeof want) != 0) ++bad;
      }
    }
  }
  if (bad != 0) return Fail(*comm, std::to_string(bad) + " wrong elements");
  if (comm->rank() == 0)
    std::printf("restored on %d ranks, all values exact\n", comm->size());
  return 0;
}
