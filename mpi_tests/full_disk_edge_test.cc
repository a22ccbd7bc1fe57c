// Full disk at the edges. A CheckpointManager that has saved one
// checkpoint into a small tmpfs saves a second one with every amount of free
// space, in whole pages, from none at all to a little more than the save
// needs, in every transfer mode (direct, MPI-IO independent and
// collective). Each save either succeeds or returns ResourceExhausted, the
// same on every rank, naming the file and the space it needs ("needs N
// bytes, M free on ..."); with less free than the data file's size the file
// named is the data file. After every failed save no
// HDF5 file or object is open (H5Fget_obj_count), nothing partial is
// visible, and the first checkpoint is what LatestCheckpoint names and
// restores bit-exactly.
//
// The job must then end through MPI_Finalize: HDF5 1.10.8 frees a file
// whose close failed but keeps its ID, and H5close crashed on it there
// (SIGSEGV in H5F__close_cb, exit 139) after gtest had reported success.
// ctest runs this binary under mpiexec and fails on any non-zero exit code,
// which is what catches that.
//
// Mounts a tmpfs (root only; skips otherwise) at --dir=<dir>/np<N>/mnt.
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "meshckpt/checkpoint/manager/checkpoint_manager.h"
#include "meshckpt/checkpoint/state/checkpoint_state.h"
#include "meshckpt/io/fs/fs.h"
#include "meshckpt/io/transfer/data_file.h"
#include "mpi_tests/full_disk_util.h"
#include "mpi_tests/mpi_test_env.h"

namespace meshckpt {
namespace {

namespace fs = std::filesystem;

std::string MountPoint() {
  static const std::string* dir =
      new std::string(test::WorkPath("full_disk_edge_work", TestWorld().size(), "mnt"));
  return *dir;
}

// ~130 KiB of tensors and a 3 KiB string per rank.
constexpr int64_t kRows = 128;
constexpr int64_t kRngBytes = 3000;

// Which file a ResourceExhausted names: the data file, the index or the
// state file; "" when it names none of them.
std::string FileNamed(const std::string& message) {
  if (absl::StrContains(message, ".h5.partial-") || absl::StrContains(message, ".h5'")) {
    return "data file";
  }
  if (absl::StrContains(message, ".index")) return "index";
  if (absl::StrContains(message, "/checkpoint")) return "state file";
  return "";
}

class FullDiskEdgeTest : public ::testing::TestWithParam<TransferMode> {
 protected:
  void SetUp() override {
    const std::string why = test::MountTmpfs(world_, MountPoint(), "4m");
    if (!why.empty()) GTEST_SKIP() << "SKIPPED full-disk edge test: " << why;
    mounted_ = true;
  }
  void TearDown() override {
    if (mounted_) test::UnmountTmpfs(world_, MountPoint());
  }

  Communicator& world_ = TestWorld();
  bool mounted_ = false;
};

TEST_P(FullDiskEdgeTest, EveryAmountOfFreeSpaceFailsCleanlyOrSaves) {
  const char* mode = GetParam() == TransferMode::kDirect        ? "direct"
                     : GetParam() == TransferMode::kIndependent ? "mpi-io"
                                                                : "mpi-io collective";
  const std::string mnt = MountPoint();
  const std::string dir = mnt + "/run";
  auto m = test::BuildDiskModel(world_, kRows, kRngBytes);
  CheckpointManagerOptions o;
  o.io = IoOptions();
  o.io->transfer_mode = GetParam();
  o.max_to_keep = std::nullopt;
  o.step_counter = m->step;

  // The first checkpoint, and what the second one will need.
  test::SetDiskStep(world_, *m, 1);
  {
    auto manager = CheckpointManager::Create(m->ckpt.get(), dir, o);
    ASSERT_TRUE(manager.ok()) << manager.status();
    absl::StatusOr<std::optional<std::string>> saved = (*manager)->Save();
    ASSERT_TRUE(saved.ok()) << saved.status();
  }
  const std::string first = dir + "/ckpt-1";
  int64_t data_bytes = 0, index_bytes = 0;
  std::string state;
  if (world_.rank() == 0) {
    data_bytes = FileSize(first + ".h5").value_or(-1);
    index_bytes = FileSize(first + ".index").value_or(-1);
    state = ReadFileToString(dir + "/checkpoint", kMaxStateFileBytes).value_or("");
  }
  data_bytes = BroadcastValue(world_, data_bytes, 0);
  index_bytes = BroadcastValue(world_, index_bytes, 0);
  ASSERT_GT(data_bytes, 0);
  const int64_t page = 4096;
  const int64_t most =
      data_bytes + index_bytes + 2 * static_cast<int64_t>(state.size()) + 4 * page;

  int saves = 0, exhausted = 0, succeeded = 0, restored = 0;
  std::map<std::string, int> named;  // File named by ResourceExhausted.
  for (int64_t want = 0; want <= most; want += page) {
    // Back to only the first checkpoint, with `want` bytes free.
    int64_t free_bytes = 0;
    if (world_.rank() == 0) {
      for (const auto& e : fs::directory_iterator(dir)) {
        const std::string n = e.path().filename().string();
        if (n != "ckpt-1.h5" && n != "ckpt-1.index") fs::remove(e.path());
      }
      EXPECT_TRUE(WriteFileAtomically(dir + "/checkpoint", state).ok());
      free_bytes = test::LeaveFree(mnt, want);
    }
    free_bytes = BroadcastValue(world_, free_bytes, 0);
    SCOPED_TRACE(absl::StrCat(mode, ", ", free_bytes, " bytes free"));

    auto manager = CheckpointManager::Create(m->ckpt.get(), dir, o);
    ASSERT_TRUE(manager.ok()) << manager.status();
    test::SetDiskStep(world_, *m, 2);
    absl::StatusOr<std::optional<std::string>> saved = (*manager)->Save();
    ++saves;
    EXPECT_EQ(test::DescribeStatusDisagreement(world_, saved.status()), "");
    const Hdf5OpenObjects open = CountOpenHdf5Objects();
    EXPECT_EQ(open.total(), 0) << open.ToString() << " after " << saved.status();
    if (saved.ok()) {
      ++succeeded;
      EXPECT_GE(free_bytes, data_bytes)
          << "saved with less free than its data file needs";
      continue;
    }
    const absl::Status& s = saved.status();
    EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
    exhausted += s.code() == absl::StatusCode::kResourceExhausted;
    EXPECT_TRUE(absl::StrContains(s.message(), "needs ") &&
                absl::StrContains(s.message(), " free on "))
        << s;
    const std::string file = FileNamed(std::string(s.message()));
    EXPECT_NE(file, "") << s;
    if (free_bytes < data_bytes) {
      EXPECT_EQ(file, "data file") << s;
    }
    // Show (a) and, per file named, the first failure and the last one
    // with less free than the data file's size (b).
    const bool first_for_file = ++named[file] == 1;
    const bool show = free_bytes == 0 || first_for_file ||
                      (free_bytes < data_bytes && free_bytes + page >= data_bytes);
    if (show && world_.rank() == 0) {
      std::printf("%s, %lld bytes free: %s\n", mode, static_cast<long long>(free_bytes),
                  s.ToString().c_str());
    }

    // The first checkpoint is still the latest (unless only the state file
    // failed, after the second was committed) and restores bit-exactly.
    const bool committed_anyway = absl::StrContains(s.message(), "', then: ");
    std::string latest, leftovers;
    if (world_.rank() == 0) {
      latest = LatestCheckpoint(dir).value_or("");
      leftovers = test::Leftovers(dir);
    }
    world_.Broadcast(&latest, 0);
    world_.Broadcast(&leftovers, 0);
    EXPECT_FALSE(absl::StrContains(leftovers, ".partial-")) << leftovers;
    if (!committed_anyway) {
      EXPECT_EQ(latest, first);
    }
    if (latest.empty()) continue;
    test::SetDiskStep(world_, *m, 999);
    absl::StatusOr<LoadStatus> st = m->ckpt->Restore(latest);
    ASSERT_TRUE(st.ok()) << st.status();
    const int64_t step = latest == first ? 1 : 2;
    EXPECT_EQ(test::CountWrongAtStep(world_, *m, step), 0) << latest;
    restored += test::CountWrongAtStep(world_, *m, step) == 0;
  }
  if (world_.rank() == 0) {
    std::string by_file;
    for (const auto& [file, n] : named) {
      absl::StrAppend(&by_file, by_file.empty() ? "" : ", ", file, " ", n);
    }
    std::printf(
        "FULL DISK EDGE %s np=%d: %d saves with 0..%lld bytes free (data file %lld "
        "bytes): "
        "%d ResourceExhausted on every rank (%s), %d saved; %d restores of the latest "
        "bit-exact\n",
        mode, world_.size(), saves, static_cast<long long>(most),
        static_cast<long long>(data_bytes), exhausted, by_file.c_str(), succeeded,
        restored);
  }
}

INSTANTIATE_TEST_SUITE_P(TransferModes, FullDiskEdgeTest,
                         ::testing::Values(TransferMode::kDirect,
                                           TransferMode::kIndependent,
                                           TransferMode::kCollective));

}  // namespace
}  // namespace meshckpt
