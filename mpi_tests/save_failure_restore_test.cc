// Restores that fail on one rank, or read a committed checkpoint damaged
// after the save (a truncated data file, a flipped byte), must fail on every
// rank with the same status; a damaged tensor never comes back as values
// while the others still restore, and a rank that wants nothing must not
// hang the others. The flipped byte is placed with the plain HDF5 C API.
//
// Failed saves: save_failure_test.cc. The work directory (--dir=<dir>) and
// the shared helpers: save_failure_util.h.
#include <hdf5.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "meshckpt/base/dtype.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/layout/layout.h"
#include "meshckpt/mesh/mesh.h"
#include "mpi_tests/mpi_test_env.h"
#include "mpi_tests/save_failure_util.h"
#include "mpi_tests/test_tensors.h"

namespace meshckpt {
namespace save_failure_test {
namespace {

namespace fs = std::filesystem;
using test::DeviceBuffers;
using test::TensorSpec;

// Restores where one rank asks for something impossible fail on every rank.
TEST(SaveFailure, OneRankWithBadRestoreFailsEverywhere) {
  Communicator& world = TestWorld();
  const int last = world.size() - 1;
  const bool me = world.rank() == last;
  const std::string dir = FreshDir(world, "bad_restore");
  const std::string a = (fs::path(dir) / "A").string();
  ASSERT_TRUE(SaveGood(world, a).ok());
  const Mesh mesh =
      Mesh::Create({{"z", world.size()}}, world.rank(), world.size()).value();
  const Entry e = Entries()[0];
  const Layout l = Layout::Create({"z", std::string(kUnsharded)}, mesh).value();

  struct Case {
    std::string name;
    absl::StatusCode want;
    TensorSpec spec;  // What the last rank asks for.
    bool null_buffer;
  };
  const std::vector<Case> cases = {
      {"unknown key",
       absl::StatusCode::kNotFound,
       {"model/nope", DType::kFloat32, {17, 13}},
       false},
      {"dtype mismatch",
       absl::StatusCode::kFailedPrecondition,
       {e.spec.key, DType::kUint32, {17, 13}},
       false},
      {"shape mismatch",
       absl::StatusCode::kFailedPrecondition,
       {e.spec.key, DType::kFloat32, {17, 14}},
       false},
      {"null buffer", absl::StatusCode::kInvalidArgument, e.spec, true},
  };
  for (const Case& c : cases) {
    const TensorSpec spec = me ? c.spec : e.spec;
    DeviceBuffers buf = DeviceBuffers::Sentinel(spec, l);
    std::vector<void*> ptrs = buf.Ptrs();
    if (me && c.null_buffer) ptrs[0] = nullptr;
    const absl::Status s =
        RestoreTensors(world, a, {test::MakeRestoreTensor(spec, l, ptrs)}, IoOptions());
    ExpectSameFailure(world, s, c.want,
                      absl::StrCat("restore with ", c.name, " on rank ", last));
  }
  ExpectRestoresExactly(world, a, "after failed restores");
}

// Restore lists may differ between ranks ("every rank passes the tensors it
// wants"): a rank that wants nothing must not hang the others, and whatever
// the outcome, it is the same on every rank.
TEST(SaveFailure, RankWantingNothingDoesNotHangRestore) {
  Communicator& world = TestWorld();
  if (world.size() == 1) GTEST_SKIP() << "needs two ranks to differ";
  const bool me = world.rank() == world.size() - 1;
  const std::string dir = FreshDir(world, "restore_lists_differ");
  const std::string a = (fs::path(dir) / "A").string();
  ASSERT_TRUE(SaveGood(world, a).ok());
  const Mesh mesh =
      Mesh::Create({{"z", world.size()}}, world.rank(), world.size()).value();
  const Entry e = Entries()[0];
  const Layout l = Layout::Create({"z", std::string(kUnsharded)}, mesh).value();
  DeviceBuffers buf = DeviceBuffers::Sentinel(e.spec, l);
  std::vector<RestoreTensor> tensors;
  if (!me) tensors.push_back(test::MakeRestoreTensor(e.spec, l, buf.Ptrs()));
  const absl::Status s = RestoreTensors(world, a, tensors, IoOptions());
  EXPECT_EQ(test::DescribeStatusDisagreement(world, s), "");
  if (world.rank() == 0) {
    std::printf("[save_failure] last rank restores nothing -> %s\n",
                s.ToString().c_str());
  }
  if (s.ok() && !me) {
    std::string report;
    EXPECT_EQ(buf.Check(true, world.rank(), &report), 0) << report;
  }
}

// A data file cut short after commit is detected on every rank.
TEST(SaveFailure, TruncatedDataFileIsDataLossEverywhere) {
  Communicator& world = TestWorld();
  const std::string dir = FreshDir(world, "truncated");
  const std::string a = (fs::path(dir) / "A").string();
  ASSERT_TRUE(SaveGood(world, a).ok());
  if (world.rank() == 0) {
    std::error_code ec;
    const auto size = fs::file_size(DataFilePath(a), ec);
    ASSERT_FALSE(ec);
    fs::resize_file(DataFilePath(a), size / 2, ec);
    ASSERT_FALSE(ec);
  }
  world.Barrier();
  const Mesh mesh =
      Mesh::Create({{"z", world.size()}}, world.rank(), world.size()).value();
  std::vector<DeviceBuffers> bufs;
  std::vector<RestoreTensor> tensors;
  const std::vector<Entry> entries = Entries();
  bufs.reserve(entries.size());
  for (const Entry& e : entries) {
    const Layout l = Layout::Replicated(mesh, static_cast<int>(e.spec.shape.size()));
    bufs.push_back(DeviceBuffers::Sentinel(e.spec, l));
    tensors.push_back(test::MakeRestoreTensor(e.spec, l, bufs.back().Ptrs()));
  }
  const absl::Status s = RestoreTensors(world, a, tensors, IoOptions());
  ExpectSameFailure(world, s, absl::StatusCode::kDataLoss, "truncated data file");
}

// File offset and size of the first stored piece of dataset `path`
// (chunked or contiguous), from the HDF5 C API; {-1, 0} when unknown.
std::pair<int64_t, int64_t> FirstPieceOf(const std::string& file_path,
                                         const std::string& path) {
  std::pair<int64_t, int64_t> out{-1, 0};
  const hid_t file = H5Fopen(file_path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file < 0) return out;
  const hid_t ds = H5Dopen2(file, path.c_str(), H5P_DEFAULT);
  if (ds >= 0) {
    const hid_t dcpl = H5Dget_create_plist(ds);
    if (H5Pget_layout(dcpl) == H5D_CHUNKED) {
      hsize_t n = 0;
      H5Dget_num_chunks(ds, H5S_ALL, &n);
      std::vector<hsize_t> offset(8);
      unsigned mask = 0;
      haddr_t addr = 0;
      hsize_t size = 0;
      if (n > 0 &&
          H5Dget_chunk_info(ds, H5S_ALL, 0, offset.data(), &mask, &addr, &size) >= 0) {
        out = {static_cast<int64_t>(addr), static_cast<int64_t>(size)};
      }
    } else {
      const haddr_t addr = H5Dget_offset(ds);
      if (addr != HADDR_UNDEF) {
        out = {static_cast<int64_t>(addr), static_cast<int64_t>(H5Dget_storage_size(ds))};
      }
    }
    H5Pclose(dcpl);
    H5Dclose(ds);
  }
  H5Fclose(file);
  return out;
}

// One flipped byte in a committed data file: restoring that tensor is
// DataLoss on every rank, naming it; other tensors still restore.
TEST(SaveFailure, CorruptedByteIsDataLossEverywhere) {
  Communicator& world = TestWorld();
  const std::string dir = FreshDir(world, "corrupted");
  const std::string a = (fs::path(dir) / "A").string();
  ASSERT_TRUE(SaveGood(world, a).ok());
  const Entry kernel = Entries()[0];
  int64_t flipped = 0;
  if (world.rank() == 0) {
    const auto [addr, size] = FirstPieceOf(DataFilePath(a), kernel.spec.key);
    EXPECT_GT(size, 0) << "cannot locate " << kernel.spec.key << " in "
                       << DataFilePath(a);
    if (size > 0) {
      std::FILE* f = std::fopen(DataFilePath(a).c_str(), "r+b");
      EXPECT_NE(f, nullptr);
      if (f != nullptr) {
        const long at = static_cast<long>(addr + size / 2);
        std::fseek(f, at, SEEK_SET);
        const int c = std::fgetc(f);
        std::fseek(f, at, SEEK_SET);
        std::fputc(c ^ 0x10, f);
        std::fclose(f);
        flipped = 1;
      }
    }
  }
  if (world.AllReduceMax(flipped) == 0) GTEST_SKIP() << "could not corrupt";
  const Mesh mesh =
      Mesh::Create({{"z", world.size()}}, world.rank(), world.size()).value();
  // Everyone reads the whole kernel (replicated), so everyone sees the flip.
  {
    const Layout l = Layout::Replicated(mesh, 2);
    DeviceBuffers buf = DeviceBuffers::Sentinel(kernel.spec, l);
    const absl::Status s = RestoreTensors(
        world, a, {test::MakeRestoreTensor(kernel.spec, l, buf.Ptrs())}, IoOptions());
    ExpectSameFailure(world, s, absl::StatusCode::kDataLoss,
                      "flipped byte, replicated restore");
    EXPECT_TRUE(absl::StrContains(s.message(), kernel.spec.key)) << s;
  }
  // Sharded: only some ranks read the damaged tile; all must fail the same.
  {
    const Layout l = Layout::Create({"z", std::string(kUnsharded)}, mesh).value();
    DeviceBuffers buf = DeviceBuffers::Sentinel(kernel.spec, l);
    const absl::Status s = RestoreTensors(
        world, a, {test::MakeRestoreTensor(kernel.spec, l, buf.Ptrs())}, IoOptions());
    ExpectSameFailure(world, s, absl::StatusCode::kDataLoss,
                      "flipped byte, sharded restore");
  }
  // Without verification the flipped element comes back (proving the flip
  // hit tensor data), and only it differs.
  {
    const Layout l = Layout::Replicated(mesh, 2);
    DeviceBuffers buf = DeviceBuffers::Sentinel(kernel.spec, l);
    IoOptions no_verify;
    no_verify.verify_checksums = false;
    const absl::Status s = RestoreTensors(
        world, a, {test::MakeRestoreTensor(kernel.spec, l, buf.Ptrs())}, no_verify);
    EXPECT_TRUE(s.ok()) << "verify_checksums=false: " << s;
    std::string report;
    EXPECT_EQ(buf.Check(true, world.rank(), &report), 1)
        << "expected exactly the flipped element to differ\n"
        << report;
  }
  // Other tensors are intact.
  {
    const Entry ids = Entries()[1];
    const Layout l = Layout::Create({std::string(kUnsharded), "z"}, mesh).value();
    DeviceBuffers buf = DeviceBuffers::Sentinel(ids.spec, l);
    const absl::Status s = RestoreTensors(
        world, a, {test::MakeRestoreTensor(ids.spec, l, buf.Ptrs())}, IoOptions());
    EXPECT_TRUE(s.ok()) << s;
    std::string report;
    EXPECT_EQ(buf.Check(true, world.rank(), &report), 0) << report;
  }
}

}  // namespace
}  // namespace save_failure_test
}  // namespace meshckpt
