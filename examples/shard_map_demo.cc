// Shard map demo: builds a mesh over the ranks of this job and prints, per
// rank, the shards its devices hold and which of them it would write.
//
//   mpirun -np 2 shard_map_demo [--mesh batch=2,model=4] [--shape 10,7]
//                               [--layout unsharded,model]
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "meshckpt/comm/mpi_communicator.h"
#include "meshckpt/layout/layout.h"
#include "meshckpt/layout/shard_map.h"
#include "meshckpt/mesh/mesh.h"

namespace {

int Fail(const std::string& msg) {
  std::cerr << "shard_map_demo: " << msg << "\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  meshckpt::MpiEnvironment env(&argc, &argv);
  std::string mesh_arg = "batch=2,model=4", shape_arg = "10,7",
              layout_arg = "batch,model";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--mesh")
      mesh_arg = argv[i + 1];
    else if (flag == "--shape")
      shape_arg = argv[i + 1];
    else if (flag == "--layout")
      layout_arg = argv[i + 1];
    else
      return Fail("unknown flag " + flag);
  }
  auto comm = meshckpt::MpiCommunicator::World();
  if (!comm.ok()) return Fail(std::string(comm.status().message()));
  const int rank = (*comm)->rank(), size = (*comm)->size();

  std::vector<meshckpt::MeshDimension> dims;
  for (absl::string_view tok : absl::StrSplit(mesh_arg, ',')) {
    std::pair<std::string, std::string> kv = absl::StrSplit(tok, '=');
    int64_t n;
    if (!absl::SimpleAtoi(kv.second, &n)) return Fail("bad --mesh " + mesh_arg);
    dims.push_back({kv.first, n});
  }
  std::vector<int64_t> shape;
  for (absl::string_view tok : absl::StrSplit(shape_arg, ',')) {
    int64_t n;
    if (!absl::SimpleAtoi(tok, &n)) return Fail("bad --shape " + shape_arg);
    shape.push_back(n);
  }
  auto mesh = meshckpt::Mesh::Create(dims, rank, size);
  if (!mesh.ok()) return Fail(std::string(mesh.status().message()));
  auto layout = meshckpt::Layout::Create(absl::StrSplit(layout_arg, ','), *mesh);
  if (!layout.ok()) return Fail(std::string(layout.status().message()));
  auto map = meshckpt::ShardMap::Create(*layout, shape);
  if (!map.ok()) return Fail(std::string(map.status().message()));

  meshckpt::WriterAssigner assigner(size);
  std::vector<meshckpt::ShardWriter> writers = assigner.Assign(*map, 4);

  std::string out;
  if (rank == 0) {
    absl::StrAppend(&out, "mesh   ", mesh->ToString(), "\nlayout ", layout->ToString(),
                    "\ntensor [", shape_arg, "] float32, ", map->num_shards(),
                    " distinct shards, block [", absl::StrJoin(map->block_shape(), ","),
                    "]\n");
  }
  for (int64_t d : mesh->local_device_ids()) {
    const int64_t shard = map->ShardOfDevice(d);
    bool writes = false;
    for (const auto& w : writers) writes |= (w.device == d);
    absl::StrAppend(&out, "rank ", rank, " device ", d, " coords [",
                    absl::StrJoin(mesh->DeviceCoords(d), ","), "] holds shard ", shard,
                    " ", map->DeviceBox(d).ToString(), writes ? "  (writes it)" : "",
                    "\n");
  }
  // Print in rank order.
  std::vector<std::string> all = (*comm)->AllGather(out);
  if (rank == 0) {
    for (const std::string& s : all) std::cout << s;
    std::cout << "bytes written per rank: "
              << absl::StrJoin(assigner.bytes_per_rank(), " ") << "\n";
  }
  return 0;
}
