// Saves or restores, in C++, the tensors python/tests/patterns.py describes,
// so that the Python module's checkpoints are checked against the C++ engine
// bit for bit, across rank counts, in both directions.
//
//   mpirun -n N cross_check save PREFIX     # every dtype, mesh x=2N
//   mpirun -n M cross_check restore PREFIX  # mesh y=M, other layouts; checks
//
// The values: element i (row-major, global) of the tensor of dtype k (its
// DType number) has byte b = (i*131 + b*17 + k*29 + 7) mod 256; bool is
// (i*7 + k) mod 3 == 0; string is "s<k>-<i>" followed, when i is even, by
// the bytes 00 ff c3 a9. Exits 1 on any difference, naming it.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "meshckpt/base/dtype.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/comm/mpi_communicator.h"
#include "meshckpt/layout/box.h"
#include "meshckpt/layout/shard_map.h"

namespace meshckpt {
namespace {

struct Spec {
  std::string key;
  DType dtype;
  std::vector<int64_t> shape;
  int index;  // Picks the layouts.
};

std::vector<Spec> Specs() {
  std::vector<Spec> out;
  int j = 0;
  for (DType d : AllDTypes()) {
    out.push_back({absl::StrCat("dtypes/", DTypeName(d)), d, {7, 6}, j++});
  }
  out.push_back({"scalar", DType::kInt64, {}, j++});
  out.push_back({"empty", DType::kFloat32, {0, 4}, j++});
  return out;
}

std::string StringValue(int k, int64_t i) {
  std::string s = absl::StrCat("s", k, "-", i);
  if (i % 2 == 0) s.append("\x00\xff\xc3\xa9", 4);
  return s;
}

// Element `i` of a fixed-size dtype, into `out` (DTypeSize bytes).
void Element(DType d, int64_t i, char* out) {
  const int k = static_cast<int>(d);
  if (d == DType::kBool) {
    out[0] = (i * 7 + k) % 3 == 0 ? 1 : 0;
    return;
  }
  for (int64_t b = 0; b < DTypeSize(d); ++b) {
    out[b] = static_cast<char>((i * 131 + b * 17 + int64_t{k} * 29 + 7) & 0xFF);
  }
}

// Global row-major indices of the elements of `box`, in its row-major order.
std::vector<int64_t> Indices(const Box& box, const std::vector<int64_t>& shape) {
  std::vector<int64_t> out;
  const int64_t n = box.num_elements();
  const int r = box.rank();
  std::vector<int64_t> c(r, 0);
  for (int64_t e = 0; e < n; ++e) {
    int64_t g = 0;
    for (int d = 0; d < r; ++d) g = g * shape[d] + box.origin()[d] + c[d];
    out.push_back(g);
    for (int d = r - 1; d >= 0; --d) {
      if (++c[d] < box.shape()[d]) break;
      c[d] = 0;
    }
  }
  return out;
}

Layout SaveLayout(const Spec& s, const Mesh& mesh) {
  std::vector<std::string> specs(s.shape.size(), "unsharded");
  if (!specs.empty() && s.index % 3 != 2) specs[s.index % 3] = "x";
  return *Layout::Create(specs, mesh);
}

Layout RestoreLayout(const Spec& s, const Mesh& mesh) {
  std::vector<std::string> specs(s.shape.size(), "unsharded");
  if (!specs.empty()) specs[1 - s.index % 2] = "y";
  return *Layout::Create(specs, mesh);
}

// One device's buffer: bytes, or std::string elements.
struct Buffer {
  std::vector<char> bytes;
  std::vector<std::string> strings;
  void* data(DType d) {
    if (d == DType::kString) return strings.empty() ? nullptr : strings.data();
    return bytes.empty() ? nullptr : bytes.data();
  }
};

Buffer Expected(const Spec& s, const Box& box) {
  Buffer b;
  for (int64_t i : Indices(box, s.shape)) {
    if (s.dtype == DType::kString) {
      b.strings.push_back(StringValue(static_cast<int>(s.dtype), i));
    } else {
      const size_t at = b.bytes.size();
      b.bytes.resize(at + DTypeSize(s.dtype));
      Element(s.dtype, i, b.bytes.data() + at);
    }
  }
  return b;
}

int Run(Communicator& comm, const std::string& mode, const std::string& prefix) {
  const std::vector<Spec> specs = Specs();
  const bool save = mode == "save";
  std::vector<MeshDimension> dims;
  dims.push_back(save ? MeshDimension{"x", int64_t{2} * comm.size()}
                      : MeshDimension{"y", comm.size()});
  const Mesh mesh = *Mesh::Create(dims, comm.rank(), comm.size());
  std::vector<std::vector<Buffer>> buffers(specs.size());
  std::vector<Layout> layouts;
  for (size_t j = 0; j < specs.size(); ++j) {
    const Spec& s = specs[j];
    layouts.push_back(save ? SaveLayout(s, mesh) : RestoreLayout(s, mesh));
    const ShardMap map = *ShardMap::Create(layouts.back(), s.shape);
    for (int64_t d : mesh.local_device_ids()) {
      Buffer b = Expected(s, map.DeviceBox(d));
      if (!save) {  // Restore into garbage, so that a skipped byte shows.
        std::fill(b.bytes.begin(), b.bytes.end(), '\x5a');
        std::fill(b.strings.begin(), b.strings.end(), "garbage");
      }
      buffers[j].push_back(std::move(b));
    }
  }
  absl::Status status;
  if (save) {
    std::vector<SaveTensor> tensors;
    for (size_t j = 0; j < specs.size(); ++j) {
      std::vector<const void*> data;
      for (Buffer& b : buffers[j]) data.push_back(b.data(specs[j].dtype));
      tensors.push_back(
          SaveTensor{specs[j].key, "", specs[j].dtype, specs[j].shape, layouts[j], data});
    }
    CheckpointContents contents;
    contents.step = 42;
    contents.user_metadata["writer"] = "c++";
    status = SaveTensors(comm, prefix, tensors, contents, IoOptions());
  } else {
    std::vector<RestoreTensor> tensors;
    for (size_t j = 0; j < specs.size(); ++j) {
      std::vector<void*> data;
      for (Buffer& b : buffers[j]) data.push_back(b.data(specs[j].dtype));
      tensors.push_back(
          RestoreTensor{specs[j].key, specs[j].dtype, specs[j].shape, layouts[j], data});
    }
    status = RestoreTensors(comm, prefix, tensors, IoOptions());
    for (size_t j = 0; status.ok() && j < specs.size(); ++j) {
      const ShardMap map = *ShardMap::Create(layouts[j], specs[j].shape);
      const std::vector<int64_t> devices = mesh.local_device_ids();
      for (size_t i = 0; i < devices.size(); ++i) {
        const Buffer want = Expected(specs[j], map.DeviceBox(devices[i]));
        if (want.bytes != buffers[j][i].bytes || want.strings != buffers[j][i].strings) {
          status = absl::DataLossError(absl::StrCat("tensor ", specs[j].key, " device ",
                                                    devices[i], ": values differ"));
          break;
        }
      }
    }
  }
  status = comm.Agree(status);
  if (comm.rank() == 0) {
    std::printf("cross_check %s %s on %d ranks: %s\n", mode.c_str(), prefix.c_str(),
                comm.size(), status.ok() ? "ok" : status.ToString().c_str());
  }
  return status.ok() ? 0 : 1;
}

}  // namespace
}  // namespace meshckpt

int main(int argc, char** argv) {
  meshckpt::MpiEnvironment env(&argc, &argv);
  if (argc != 3 ||
      (std::strcmp(argv[1], "save") != 0 && std::strcmp(argv[1], "restore") != 0)) {
    std::fprintf(stderr, "usage: cross_check save|restore PREFIX\n");
    return 2;
  }
  auto comm = meshckpt::MpiCommunicator::World();
  if (!comm.ok()) return 1;
  return meshckpt::Run(**comm, argv[1], argv[2]);
}
