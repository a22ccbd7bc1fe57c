// Helpers shared by the failure tests of collective saves and restores
// (save_failure_test.cc and save_failure_restore_test.cc): the work
// directory, the checkpoint's tensors and their good save, and the checks
// both make (same status on every rank, nothing committed, the good
// checkpoint still restoring bit-exactly).
//
// Both work in --dir=<dir> (or MESHCKPT_SAVE_FAILURE_DIR, default
// ./save_failure_work), in a subdirectory per rank count so ctest entries of
// different rank counts can run at the same time. Each test has its own
// directory below that (FreshDir); the names must stay distinct across both
// files, because the two binaries may share the directory.
// Header-only, like test_tensors.h.
#ifndef MESHCKPT_MPI_TESTS_SAVE_FAILURE_UTIL_H_
#define MESHCKPT_MPI_TESTS_SAVE_FAILURE_UTIL_H_

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/comm/communicator.h"
#include "meshckpt/layout/layout.h"
#include "meshckpt/mesh/mesh.h"
#include "mpi_tests/mpi_test_env.h"
#include "mpi_tests/test_tensors.h"

namespace meshckpt {
namespace save_failure_test {

// This rank count's directory: <dir>/np<N>.
inline std::string WorkDir() {
  static const std::string* dir = [] {
    std::string d = "save_failure_work";
    if (const char* e = std::getenv("MESHCKPT_SAVE_FAILURE_DIR")) d = e;
    for (const std::string& arg : ::testing::internal::GetArgvs()) {
      absl::string_view a = arg;
      if (absl::ConsumePrefix(&a, "--dir=")) d = std::string(a);
    }
    return new std::string(
        (std::filesystem::path(d) / absl::StrCat("np", TestWorld().size())).string());
  }();
  return *dir;
}

// Rank 0 makes `WorkDir()/name` a fresh empty directory; returns it.
inline std::string FreshDir(Communicator& world, const std::string& name) {
  const std::string dir = (std::filesystem::path(WorkDir()) / name).string();
  if (world.rank() == 0) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    std::filesystem::create_directories(dir, ec);
  }
  world.Barrier();
  return dir;
}

// The checkpoint's tensors. `dataset` is the HDF5 path when it differs from
// the key.
struct Entry {
  test::TensorSpec spec;
  std::vector<std::string> specs;  // sharding specs on SaveMeshDims()
  std::string dataset;
};

// 8 devices on 1, 2, 4 ranks; 6 on 3.
inline std::vector<MeshDimension> SaveMeshDims(int np) {
  if (np == 3) return {{"x", 3}, {"y", 2}};
  return {{"x", 2}, {"y", 4}};
}

inline std::vector<Entry> Entries() {
  const std::string u(kUnsharded);
  return {
      {{"model/dense/kernel", DType::kFloat32, {17, 13}}, {"x", u}, ""},
      {{"model/ids", DType::kInt64, {13, 7}}, {"x", "y"}, ""},
      {{"model/step", DType::kInt64, {}}, {}, ""},
      {{"model/bias", DType::kFloat32, {13}}, {u}, ""},
      {{"model/names", DType::kString, {11}}, {"y"}, ""},
      {{"model/flags", DType::kBool, {2, 5}}, {u, "y"}, ""},
      {{"model/half", DType::kFloat16, {7, 3}}, {"y", "x"}, ""},
      {{"layer/.ATTRIBUTES/VARIABLE_VALUE", DType::kFloat64, {5, 9}},
       {u, "x"},
       "layer/value"},
  };
}

inline Layout SaveLayout(Communicator& world, const Entry& e) {
  const Mesh mesh =
      Mesh::Create(SaveMeshDims(world.size()), world.rank(), world.size()).value();
  return Layout::Create(e.specs, mesh).value();
}

struct Prepared {
  std::vector<test::DeviceBuffers> bufs;
  std::vector<SaveTensor> tensors;
};

// The good tensor list of this rank, with filled buffers.
inline Prepared Prepare(Communicator& world) {
  Prepared p;
  const std::vector<Entry> entries = Entries();
  p.bufs.reserve(entries.size() + 1);
  for (const Entry& e : entries) {
    const Layout layout = SaveLayout(world, e);
    p.bufs.push_back(test::DeviceBuffers::Filled(e.spec, layout));
    p.tensors.push_back(
        test::MakeSaveTensor(e.spec, layout, p.bufs.back().ConstPtrs(), e.dataset));
  }
  return p;
}

inline absl::Status SaveGood(Communicator& world, const std::string& prefix) {
  Prepared p = Prepare(world);
  return SaveTensors(world, prefix, p.tensors, {}, {});
}

// Restores every entry from `prefix` onto a different mesh and layout
// (1-D mesh of 2*np devices, every tensor transposed relative to rows) and
// checks all values.
inline void ExpectRestoresExactly(Communicator& world, const std::string& prefix,
                                  const std::string& what) {
  const Mesh mesh =
      Mesh::Create({{"z", 2 * world.size()}}, world.rank(), world.size()).value();
  std::vector<test::DeviceBuffers> bufs;
  std::vector<RestoreTensor> tensors;
  const std::vector<Entry> entries = Entries();
  bufs.reserve(entries.size());
  for (const Entry& e : entries) {
    std::vector<std::string> specs(e.spec.shape.size(), std::string(kUnsharded));
    if (!specs.empty()) specs.back() = "z";
    const Layout layout = Layout::Create(specs, mesh).value();
    bufs.push_back(test::DeviceBuffers::Sentinel(e.spec, layout));
    tensors.push_back(test::MakeRestoreTensor(e.spec, layout, bufs.back().Ptrs()));
  }
  const absl::Status s = RestoreTensors(world, prefix, tensors, IoOptions());
  ASSERT_TRUE(s.ok()) << what << ": restore " << prefix << ": " << s;
  std::string report;
  int64_t bad = 0;
  for (const test::DeviceBuffers& b : bufs) bad += b.Check(true, world.rank(), &report);
  EXPECT_EQ(bad, 0) << what << ": " << prefix << "\n" << report;
}

inline void ExpectNoCheckpoint(Communicator& world, const std::string& prefix,
                               const std::string& what) {
  world.Barrier();
  EXPECT_FALSE(std::filesystem::exists(IndexFilePath(prefix)))
      << what << ": a failed save left " << IndexFilePath(prefix);
  EXPECT_FALSE(std::filesystem::exists(DataFilePath(prefix)))
      << what << ": a failed save renamed its data into " << DataFilePath(prefix);
  const absl::StatusOr<IndexRecord> idx = ReadCheckpointIndex(world, prefix);
  EXPECT_EQ(idx.status().code(), absl::StatusCode::kNotFound)
      << what << ": " << idx.status();
}

// Every rank got the same non-OK status; `want` (if not OK) is its code.
inline void ExpectSameFailure(Communicator& world, const absl::Status& s,
                              absl::StatusCode want, const std::string& what) {
  EXPECT_FALSE(s.ok()) << what << ": succeeded on rank " << world.rank();
  if (want != absl::StatusCode::kOk) {
    EXPECT_EQ(s.code(), want) << what << ": " << s;
  }
  EXPECT_EQ(test::DescribeStatusDisagreement(world, s), "") << what;
  if (world.rank() == 0) {
    std::printf("[save_failure] %s -> %s\n", what.c_str(), s.ToString().c_str());
    std::fflush(stdout);
  }
}

}  // namespace save_failure_test
}  // namespace meshckpt

#endif  // MESHCKPT_MPI_TESTS_SAVE_FAILURE_UTIL_H_
