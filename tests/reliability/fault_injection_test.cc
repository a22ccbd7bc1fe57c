// The fault points (checkpoint/engine/fault_injection.h) and the test-only
// injector (checkpoint/engine/testing/fault_injector.h) in one process:
// FaultSpec parsing, the hook staying null until a test installs it (ctest
// runs this with MESHCKPT_FAULT set, which the library must ignore), the
// order in which a CheckpointManager save reaches the fault points, and a
// crash (SIGKILL in a forked child) at every point followed by what a
// restarted job sees: the latest checkpoint restores bit-exactly, nothing
// partial is committed, a new manager sweeps the leftovers. The multi-rank
// version under mpiexec is mpi_tests/crash_test.sh.
#include "meshckpt/checkpoint/engine/fault_injection.h"

#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/checkpoint/engine/testing/fault_injector.h"
#include "meshckpt/checkpoint/manager/checkpoint_manager.h"
#include "meshckpt/checkpoint/object/dvariable.h"
#include "meshckpt/checkpoint/reader/checkpoint_reader.h"
#include "meshckpt/checkpoint/state/checkpoint_state.h"
#include "meshckpt/comm/communicator.h"
#include "meshckpt/io/fs/fs.h"

namespace meshckpt {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;

TEST(ParseFaultSpec, Good) {
  absl::StatusOr<FaultSpec> s =
      ParseFaultSpec("point=after_data_rename,rank=1,hit=2,log=/tmp/x");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->point, "after_data_rename");
  EXPECT_EQ(s->rank, 1);
  EXPECT_EQ(s->hit, 2);
  EXPECT_EQ(s->log, "/tmp/x");
  s = ParseFaultSpec("point=random,seed=9,prob=0.5");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->rank, -1);
  EXPECT_EQ(s->seed, 9u);
  EXPECT_DOUBLE_EQ(s->prob, 0.5);
  for (const std::string& p : FaultPointNames()) {
    EXPECT_TRUE(ParseFaultSpec("point=" + p).ok()) << p;
  }
}

TEST(ParseFaultSpec, Bad) {
  for (const char* text :
       {"", "rank=1", "point=nowhere", "point=after_flush,rank=-1",
        "point=after_flush,hit=0", "point=random,prob=2", "point=after_flush,colour=red",
        "point", "point=after_flush,log="}) {
    EXPECT_TRUE(absl::IsInvalidArgument(ParseFaultSpec(text).status())) << text;
  }
}

// Under ctest MESHCKPT_FAULT is set here (tests/CMakeLists.txt): the library
// reads no environment, so the hook is still null, and the saves of the
// tests below are not killed at after_flush.
TEST(FaultHook, IsNullUntilATestInstallsIt) {
  EXPECT_EQ(internal::g_fault_hook.load(), nullptr);
  SetFaultCallbackForTesting([](absl::string_view, int) {});
  EXPECT_NE(internal::g_fault_hook.load(), nullptr);
  SetFaultCallbackForTesting(nullptr);
  EXPECT_EQ(internal::g_fault_hook.load(), nullptr);
}

// A one-rank job with a manager keeping one checkpoint.
struct Job {
  explicit Job(const std::string& dir) {
    mesh = Mesh::Create({{"x", 2}}, 0, 1).value();
    w = model
            .AddVariable("w", DType::kFloat32, {64, 3},
                         Layout::Create({"x", "unsharded"}, mesh).value())
            .value();
    step = model.AddValue("step", TrackedValue::Create(int64_t{0})).value();
    ckpt = DTensorCheckpoint::Create(comm.get(), mesh, {{"m", &model}}).value();
    ckpt->SetWarningSink([](const std::string&) {});
    CheckpointManagerOptions o;
    o.max_to_keep = 1;
    o.step_counter = step;
    manager = CheckpointManager::Create(ckpt.get(), dir, o).value();
  }
  void Set(int64_t s) {
    for (int64_t d : mesh.local_device_ids()) {
      absl::Span<float> v = w->shard<float>(d);
      for (size_t i = 0; i < v.size(); ++i)
        v[i] = static_cast<float>(s * 1000 + d * 100 + i);
    }
    (void)step->set(s);
  }
  bool Holds(int64_t s) const {
    if (step->int64() != s) return false;
    for (int64_t d : mesh.local_device_ids()) {
      absl::Span<const float> v = static_cast<const DVariable*>(w)->shard<float>(d);
      for (size_t i = 0; i < v.size(); ++i) {
        if (v[i] != static_cast<float>(s * 1000 + d * 100 + i)) return false;
      }
    }
    return true;
  }

  std::unique_ptr<Communicator> comm = SerialCommunicator();
  Mesh mesh = Mesh::Create({{"x", 1}}, 0, 1).value();
  Module model;
  DVariable* w = nullptr;
  TrackedValue* step = nullptr;
  std::unique_ptr<DTensorCheckpoint> ckpt;
  std::unique_ptr<CheckpointManager> manager;
};

class FaultTest : public ::testing::Test {
 protected:
  ~FaultTest() override {
    SetFaultCallbackForTesting(nullptr);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string dir_ = "/tmp/meshckpt_fault_" + RandomId();
};

TEST_F(FaultTest, ASaveReachesEveryPointInOrder) {
  Job job(dir_);
  job.Set(1);
  ASSERT_TRUE(job.manager->Save().ok());
  std::vector<std::string> seen;
  SetFaultCallbackForTesting([&](absl::string_view p, int rank) {
    EXPECT_EQ(rank, 0);
    if (seen.empty() || seen.back() != p) seen.emplace_back(p);
  });
  job.Set(2);
  ASSERT_TRUE(job.manager->Save().ok());  // Deletes ckpt-1.
  SetFaultCallbackForTesting(nullptr);
  EXPECT_THAT(seen, ElementsAre("during_data_write", "after_flush", "after_agree",
                                "after_data_rename", "after_index", "after_state_file",
                                "during_sweep"));
  EXPECT_EQ(seen, FaultPointNames());
}

std::vector<std::string> Leftovers(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    const std::string p = e.path().string();
    if (absl::StrContains(n, ".partial-") || absl::StrContains(n, ".tmp-") ||
        (absl::EndsWith(n, ".h5") && !FileExists(p.substr(0, p.size() - 3) + ".index"))) {
      out.push_back(n);
    }
  }
  return out;
}

// SIGKILL at each point of the third save (ckpt-3, deleting ckpt-2), in a
// forked child; the parent plays the restarted job.
TEST_F(FaultTest, KilledAtEveryPointTheRestartedJobFindsACompleteCheckpoint) {
  int swept = 0;
  for (const std::string& point : FaultPointNames()) {
    SCOPED_TRACE(point);
    std::error_code ec;
    fs::remove_all(dir_, ec);
    {
      Job job(dir_);
      for (int s = 1; s <= 2; ++s) {
        job.Set(s);
        ASSERT_TRUE(job.manager->Save().ok());
      }
    }
    std::fflush(nullptr);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      Job job(dir_);
      if (!job.manager->RestoreOrInitialize(RestoreMatch::kAllMatched).ok())
        ::_exit(3);  // Numbering goes on.
      SetFaultCallbackForTesting([&](absl::string_view p, int) {
        if (p == point) ::raise(SIGKILL);
      });
      job.Set(3);
      (void)job.manager->Save();
      ::_exit(0);  // Not reached when the point is.
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;

    // The restarted job.
    absl::StatusOr<std::string> latest = LatestCheckpoint(dir_);
    ASSERT_TRUE(latest.ok()) << latest.status();
    // Once the index is durable, ckpt-3 exists and wins, state file or not.
    const bool committed = point == "after_index" || point == "after_state_file" ||
                           point == "during_sweep";
    EXPECT_EQ(*latest, dir_ + (committed ? "/ckpt-3" : "/ckpt-2"));
    for (const std::string& p : ListCommittedCheckpoints(dir_)) {
      absl::StatusOr<std::unique_ptr<CheckpointReader>> r = CheckpointReader::Open(p);
      ASSERT_TRUE(r.ok()) << p << ": " << r.status();
      absl::StatusOr<std::vector<std::string>> problems = (*r)->VerifyAll();
      ASSERT_TRUE(problems.ok()) << problems.status();
      EXPECT_TRUE(problems->empty()) << p;
    }
    swept += static_cast<int>(Leftovers(dir_).size());
    Job job(dir_);  // Sweeps.
    EXPECT_THAT(Leftovers(dir_), ::testing::IsEmpty());
    EXPECT_EQ(job.manager->latest_checkpoint(), *latest);
    absl::StatusOr<LoadStatus> st = job.ckpt->Restore(*latest);
    ASSERT_TRUE(st.ok()) << st.status();
    EXPECT_TRUE(job.Holds(committed ? 3 : 2));
  }
  // during_data_write, after_flush, after_agree, after_data_rename leave a
  // data file behind.
  EXPECT_EQ(swept, 4);
}

}  // namespace
}  // namespace meshckpt
