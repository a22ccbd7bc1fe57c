// Restores read each shard that several ranks need once, on one rank, and
// send it to the others: values come back bit-exactly, and the bytes read
// from the data file, summed over ranks, are those of the distinct shards
// (RestoreStats), however many ranks hold each. Also the Communicator calls
// the distribution uses (subgroups, in-place broadcast, gather of bytes).
//
// Every tensor here is smaller than one checksum tile, so a chunk is one
// tile and any read of it reads the whole chunk: the expected disk bytes
// are exact.
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "meshckpt/checkpoint/engine/checkpoint_handle.h"
#include "meshckpt/checkpoint/engine/restore_reads.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/layout/layout.h"
#include "meshckpt/mesh/mesh.h"
#include "mpi_tests/mpi_test_env.h"
#include "mpi_tests/test_tensors.h"

namespace meshckpt {
namespace {

using test::DeviceBuffers;
using test::TensorSpec;

int64_t Sum(Communicator& comm, int64_t v) {
  int64_t s = 0;
  for (const std::string& b :
       comm.AllGather(std::string(reinterpret_cast<const char*>(&v), sizeof(v)))) {
    int64_t x = 0;
    std::memcpy(&x, b.data(), sizeof(x));
    s += x;
  }
  return s;
}

// A directory every rank sees (rank 0 names it): under --dir=DIR, which
// across hosts must be shared (scripts/multinode/run_test.sh), or else the
// temporary directory of this one host.
std::string SharedDir(Communicator& comm, const std::string& name) {
  std::string dir;
  if (comm.rank() == 0) {
    const std::string base = TestArg("--dir=");
    dir = (std::filesystem::path(base.empty() ? std::filesystem::temp_directory_path()
                                              : std::filesystem::path(base)) /
           absl::StrCat("meshckpt_read_once_", ::getpid(), "_", name))
              .string();
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
  }
  comm.Broadcast(&dir, 0);
  return dir;
}

Mesh MakeMesh(Communicator& comm, std::vector<MeshDimension> dims) {
  return Mesh::Create(std::move(dims), comm.rank(), comm.size()).value();
}

struct Saved {
  TensorSpec spec;
  std::vector<std::string> save_specs;     // Sharding specs when saved.
  std::vector<std::string> restore_specs;  // ... when restored.
};

// Saves every tensor on `save_mesh`, restores on `restore_mesh`, checks
// every value and guard, and returns this rank's counts.
RestoreStats SaveAndRestore(Communicator& comm, const std::string& prefix,
                            const Mesh& save_mesh, const Mesh& restore_mesh,
                            const std::vector<Saved>& tensors) {
  std::vector<DeviceBuffers> written, restored;
  std::vector<SaveTensor> saves;
  std::vector<RestoreTensor> restores;
  written.reserve(tensors.size());
  restored.reserve(tensors.size());
  for (const Saved& t : tensors) {
    Layout save = Layout::Create(t.save_specs, save_mesh).value();
    Layout restore = Layout::Create(t.restore_specs, restore_mesh).value();
    written.push_back(DeviceBuffers::Filled(t.spec, save));
    restored.push_back(DeviceBuffers::Sentinel(t.spec, restore));
    saves.push_back(
        {t.spec.key, "", t.spec.dtype, t.spec.shape, save, written.back().ConstPtrs()});
    restores.push_back(
        {t.spec.key, t.spec.dtype, t.spec.shape, restore, restored.back().Ptrs()});
  }
  absl::Status s = SaveTensors(comm, prefix, saves, {}, IoOptions());
  EXPECT_TRUE(s.ok()) << s;
  RestoreStats stats;
  auto handle = CheckpointHandle::Open(comm, prefix);
  EXPECT_TRUE(handle.ok()) << handle.status();
  if (!handle.ok()) return stats;
  int64_t progress_done = -1, progress_total = -1;
  IoOptions options;
  options.progress = [&](int64_t done, int64_t total) {
    EXPECT_GT(done, progress_done);
    progress_done = done;
    progress_total = total;
  };
  s = RestoreTensors(**handle, restores, options, &stats);
  EXPECT_TRUE(s.ok()) << s;
  std::string report;
  int64_t bad = 0;
  for (const DeviceBuffers& b : restored) bad += b.Check(true, comm.rank(), &report);
  EXPECT_EQ(bad, 0) << report;
  EXPECT_EQ(progress_done, progress_total);
  EXPECT_EQ(stats.delivered_bytes, std::max<int64_t>(progress_total, 0));
  return stats;
}

int64_t Bytes(const TensorSpec& t) {
  return test::NumElements(t.shape) * DTypeSize(t.dtype);
}

// ------------------------------------------------------ communicator calls

TEST(ReadOnceComm, BroadcastBytesAndAllGatherBytes) {
  Communicator& comm = TestWorld();
  const int n = comm.size();
  std::vector<char> data(1000, 0);
  if (comm.rank() == n - 1) std::iota(data.begin(), data.end(), 'a');
  comm.BroadcastBytes(data.data(), 1000, n - 1);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(data[i], static_cast<char>('a' + i));

  // Rank r contributes r + 1 bytes of value r (rank 1 none, to cover 0).
  std::vector<int64_t> counts(n);
  for (int r = 0; r < n; ++r) counts[r] = r == 1 ? 0 : r + 1;
  std::vector<char> mine(counts[comm.rank()], static_cast<char>(comm.rank()));
  std::vector<char> out(std::accumulate(counts.begin(), counts.end(), int64_t{0}), -1);
  comm.AllGatherBytes(mine.data(), counts, out.data());
  size_t at = 0;
  for (int r = 0; r < n; ++r) {
    for (int64_t i = 0; i < counts[r]; ++i) ASSERT_EQ(out[at++], r) << "rank " << r;
  }
}

TEST(ReadOnceComm, OverlappingSubgroupsInOneOrder) {
  Communicator& comm = TestWorld();
  const int n = comm.size();
  // Every pair {a, b}, a < b, in one order: each rank creates the pairs it
  // is in, and broadcasts a's rank within each.
  for (int a = 0; a < n; ++a) {
    for (int b = a + 1; b < n; ++b) {
      if (comm.rank() != a && comm.rank() != b) continue;
      auto sub = comm.Subgroup({a, b});
      ASSERT_TRUE(sub.ok()) << sub.status();
      ASSERT_EQ((*sub)->size(), 2);
      ASSERT_EQ((*sub)->rank(), comm.rank() == a ? 0 : 1);
      int64_t v = BroadcastValue(**sub, int64_t{comm.rank()} * 100 + b, 0);
      EXPECT_EQ(v, int64_t{a} * 100 + b);
    }
  }
  // Not a member, or (one rank) no such rank: refused before talking.
  EXPECT_EQ(comm.Subgroup({comm.rank() == 0 ? 1 : 0}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------- restores

// Replicated on save and restore: every rank needs every byte, one reads.
TEST(ReadOnce, ReplicatedTensorsAreReadOnceInTotal) {
  Communicator& comm = TestWorld();
  const std::string dir = SharedDir(comm, "replicated");
  const Mesh mesh = MakeMesh(comm, {{"x", comm.size()}});
  std::vector<Saved> tensors;
  int64_t model = 0;
  for (int i = 0; i < 12; ++i) {
    // Mixed sizes: most batched together, one above the batch size.
    const int64_t rows = i == 5 ? 1500 : 3 + 7 * i;
    tensors.push_back({{absl::StrCat("bias/", i),
                        i % 3 == 0 ? DType::kFloat64 : DType::kFloat32,
                        {rows, i == 5 ? 1000 : 5}},
                       {"unsharded", "unsharded"},
                       {"unsharded", "unsharded"}});
    model += Bytes(tensors.back().spec);
  }
  tensors.push_back({{"scalar", DType::kInt32, {}}, {}, {}});
  model += 4;
  const RestoreStats s = SaveAndRestore(comm, dir + "/ckpt", mesh, mesh, tensors);
  EXPECT_EQ(Sum(comm, s.disk_bytes), model);
  EXPECT_EQ(s.delivered_bytes, model);
  EXPECT_EQ(s.disk_bytes + s.received_bytes, model);
  EXPECT_EQ(Sum(comm, s.received_bytes), model * (comm.size() - 1));
  if (comm.size() > 1) {
    EXPECT_EQ(s.subgroups, 1);  // The whole communicator.
  }
  comm.Barrier();
  if (comm.rank() == 0) std::filesystem::remove_all(dir);
}

// Saved split over N ranks, restored on data=2 x model=N/2 (or data=N when
// N is odd): every target shard is whole saved chunks (the splits align)
// that two (or N) ranks need.
TEST(ReadOnce, OneDToTwoDReadsEachChunkOnce) {
  Communicator& comm = TestWorld();
  const int n = comm.size();
  if (n == 1) GTEST_SKIP() << "needs 2+ ranks";
  const std::string dir = SharedDir(comm, "1d2d");
  const Mesh flat = MakeMesh(comm, {{"model", n}});
  const int data = n % 2 == 0 ? 2 : n;
  const Mesh grid = MakeMesh(comm, {{"data", data}, {"model", n / data}});
  std::vector<Saved> tensors;
  int64_t model = 0;
  for (int i = 0; i < 6; ++i) {
    const DType dt = i % 2 ? DType::kFloat32 : DType::kBfloat16;
    if (i % 3 == 0) {
      tensors.push_back({{absl::StrCat("w/", i), dt, {12 * n, 33}},
                         {"model", "unsharded"},
                         {"model", "unsharded"}});
    } else {
      tensors.push_back({{absl::StrCat("w/", i), dt, {17 + i, 8 * n}},
                         {"unsharded", "model"},
                         {"unsharded", "model"}});
    }
    model += Bytes(tensors.back().spec);
  }
  tensors.push_back({{"norm", DType::kFloat32, {64}}, {"unsharded"}, {"unsharded"}});
  const int64_t norm = Bytes(tensors.back().spec);
  const RestoreStats s = SaveAndRestore(comm, dir + "/ckpt", flat, grid, tensors);
  EXPECT_EQ(Sum(comm, s.disk_bytes), model + norm);
  // Each split tensor lands on `data` ranks, the norm on all; everything
  // not read here came from another rank.
  EXPECT_EQ(s.disk_bytes + s.received_bytes, s.delivered_bytes);
  EXPECT_EQ(Sum(comm, s.delivered_bytes), model * data + norm * n);
  comm.Barrier();
  if (comm.rank() == 0) std::filesystem::remove_all(dir);
}

// Two devices per rank on data=2 x model=N: with N=3 the ranks holding each
// model shard are {0,1}, {0,2} and {1,2}, overlapping subgroups; devices
// of one rank holding the same shard get a local copy. Strings too.
TEST(ReadOnce, MoreDevicesThanRanksWithOverlappingHolders) {
  Communicator& comm = TestWorld();
  const int n = comm.size();
  const std::string dir = SharedDir(comm, "devices");
  const Mesh save_mesh = MakeMesh(comm, {{"x", n}});
  const Mesh grid = MakeMesh(comm, {{"data", 2}, {"model", n}});
  std::vector<Saved> tensors = {
      {{"emb", DType::kFloat32, {10 * n, 16}}, {"x", "unsharded"}, {"model", "unsharded"}},
      {{"proj", DType::kInt64, {9, 4 * n}}, {"unsharded", "x"}, {"unsharded", "model"}},
      {{"ln", DType::kFloat16, {48}}, {"unsharded"}, {"unsharded"}},
      {{"vocab", DType::kString, {6 * n}}, {"x"}, {"model"}},
      {{"names", DType::kString, {7}}, {"unsharded"}, {"unsharded"}},
  };
  int64_t once = 0;  // Strings count their characters.
  for (const Saved& t : tensors) {
    if (t.spec.dtype != DType::kString) {
      once += Bytes(t.spec);
      continue;
    }
    for (int64_t g = 0; g < test::NumElements(t.spec.shape); ++g) {
      once +=
          static_cast<int64_t>(test::ExpectedString(test::KeyHash(t.spec.key), g).size());
    }
  }
  const RestoreStats s = SaveAndRestore(comm, dir + "/ckpt", save_mesh, grid, tensors);
  EXPECT_EQ(Sum(comm, s.disk_bytes), once);
  comm.Barrier();
  if (comm.rank() == 0) std::filesystem::remove_all(dir);
}

// A corrupt shard fails every rank, also those that would have received it.
TEST(ReadOnce, ChecksumErrorOnTheReaderFailsEveryRank) {
  Communicator& comm = TestWorld();
  const std::string dir = SharedDir(comm, "corrupt");
  const Mesh mesh = MakeMesh(comm, {{"x", comm.size()}});
  const TensorSpec spec{"bias", DType::kFloat32, {256}};
  Layout rep = Layout::Create({"unsharded"}, mesh).value();
  DeviceBuffers w = DeviceBuffers::Filled(spec, rep);
  const std::string prefix = dir + "/ckpt";
  ASSERT_TRUE(SaveTensors(comm, prefix,
                          {{"bias", "", spec.dtype, spec.shape, rep, w.ConstPtrs()}}, {},
                          IoOptions())
                  .ok());
  auto handle = CheckpointHandle::Open(comm, prefix);
  ASSERT_TRUE(handle.ok()) << handle.status();
  if (comm.rank() == 0) {
    // Flip one byte of the tensor's data in the file.
    const CheckpointIndex::Tensor* t = (*handle)->index().Find("bias");
    ASSERT_NE(t, nullptr);
    ASSERT_TRUE(t->storage[0].has_value());
    std::FILE* f = std::fopen(DataFilePath(prefix).c_str(), "r+b");
    ASSERT_NE(f, nullptr);
    std::fseek(f, t->storage[0]->offset + 17, SEEK_SET);
    const int c = std::fgetc(f);
    std::fseek(f, t->storage[0]->offset + 17, SEEK_SET);
    std::fputc(c ^ 0x40, f);
    std::fclose(f);
  }
  comm.Barrier();
  DeviceBuffers r = DeviceBuffers::Sentinel(spec, rep);
  const absl::Status s =
      RestoreTensors(**handle, {{"bias", spec.dtype, spec.shape, rep, r.Ptrs()}}, {});
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_NE(s.message().find("checksum mismatch"), std::string::npos) << s;
  // The same status everywhere (Communicator::Agree names the reader).
  std::string text(s.message());
  std::string first = text;
  comm.Broadcast(&first, 0);
  EXPECT_EQ(text, first);
  handle->reset();
  comm.Barrier();
  if (comm.rank() == 0) std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace meshckpt
