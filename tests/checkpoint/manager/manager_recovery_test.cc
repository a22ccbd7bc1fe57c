// CheckpointManager after faults and next to other jobs: the newest
// committed checkpoint wins over a stale state file, new saves never reuse a
// committed name, a full disk at the state-file write loses nothing, and one
// job per directory (a second job is refused naming the holder, a dead
// holder's lock is taken over, nothing is swept without the lock).
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/checkpoint/engine/testing/fault_injector.h"
#include "meshckpt/checkpoint/manager/checkpoint_manager.h"
#include "meshckpt/checkpoint/saver/saver.h"
#include "meshckpt/checkpoint/state/checkpoint_state.h"
#include "meshckpt/io/fs/directory_lock.h"
#include "meshckpt/io/fs/fs.h"
#include "tests/checkpoint/manager/manager_fixture.h"
#include "tests/file_bytes.h"

namespace meshckpt {
namespace {

using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

class ManagerRecoveryTest : public CheckpointManagerTest {
 protected:
  // Saves ckpt-1..3 holding values 1, 2, 3 and puts back the state file as
  // it was after ckpt-2: what a job killed after committing ckpt-3's index,
  // before writing the state file, leaves behind.
  void SaveThreeAndLoseTheLastStateWrite(Job& run, CheckpointManager& m) {
    for (int i = 1; i <= 3; ++i) {
      if (i == 3)
        WriteFileBytes(dir_ + "/state.saved", ReadFileBytes(dir_ + "/checkpoint"));
      run.set_values(std::vector<float>(4, static_cast<float>(i)));
      MustSave(m);
    }
    ASSERT_EQ(::rename((dir_ + "/state.saved").c_str(), (dir_ + "/checkpoint").c_str()),
              0);
    ASSERT_EQ(ReadCheckpointState(dir_)->model_checkpoint_path, "ckpt-2");
  }
};

TEST_F(ManagerRecoveryTest, NewestCommittedCheckpointWinsOverAStaleStateFile) {
  {
    auto run = NewJob();
    auto m = NewManager(*run, Options());
    SaveThreeAndLoseTheLastStateWrite(*run, *m);
  }
  EXPECT_EQ(LatestCheckpoint(dir_).value(), Ckpt(3));

  now_ += 10;
  auto run = NewJob();
  auto m = NewManager(*run, Options());
  EXPECT_EQ(m->latest_checkpoint(), Ckpt(3));
  EXPECT_THAT(m->checkpoints(), ElementsAreArray(Ckpts({1, 2, 3})));
  ASSERT_EQ(m->RestoreOrInitialize(RestoreMatch::kAllMatched).value().restored_from,
            Ckpt(3));
  EXPECT_EQ(run->values(), std::vector<float>(4, 3.0f));
  // The next save is ckpt-4, and it repairs the state file.
  EXPECT_EQ(MustSave(*m), Ckpt(4));
  EXPECT_EQ(ReadCheckpointState(dir_)->model_checkpoint_path, "ckpt-4");
  EXPECT_THAT(ReadCheckpointState(dir_)->all_model_checkpoint_paths,
              ElementsAreArray(Rel({1, 2, 3, 4})));
}

TEST_F(ManagerRecoveryTest, ResumingFromAnOlderCheckpointNeverReusesACommittedName) {
  {
    auto run = NewJob();
    auto m = NewManager(*run, Options());
    for (int i = 1; i <= 3; ++i) MustSave(*m);
  }
  auto run = NewJob();
  auto m = NewManager(*run, Options());
  // The user picks ckpt-1 by hand: the save counter goes back to 1.
  ASSERT_TRUE(run->ckpt->Restore(Ckpt(1)).ok());
  EXPECT_EQ(run->ckpt->save_counter(), 1);
  EXPECT_EQ(MustSave(*m), Ckpt(4));  // Not ckpt-2, which is committed.
  // A damaged checkpoint's name is not reused either.
  WriteFileBytes(IndexFilePath(Ckpt(5)), "garbage");
  EXPECT_EQ(MustSave(*m), Ckpt(6));
  EXPECT_EQ(NextCheckpointNumber(dir_, "ckpt", 1).value(), 7);
  EXPECT_EQ(NextCheckpointNumber(dir_, "other", 1).value(), 1);

  // DTensorCheckpoint::Save numbers the same way.
  ASSERT_TRUE(run->ckpt->Restore(Ckpt(1)).ok());
  EXPECT_EQ(run->ckpt->Save(dir_ + "/ckpt").value(), Ckpt(7));
}

// The disk fills up right after the index is committed, so the state-file
// write fails: the checkpoint is kept and wins, and the next save repairs
// the state file. Needs root to mount a small tmpfs.
TEST_F(ManagerRecoveryTest, FullDiskAtTheStateFileWriteKeepsTheNewCheckpoint) {
  std::filesystem::create_directories(dir_);
  if (::mount("tmpfs", dir_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=4m") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs on " << dir_ << ": " << std::strerror(errno);
  }
  struct Unmount {
    std::string dir;
    ~Unmount() { ::umount2(dir.c_str(), MNT_DETACH); }
  } unmount{dir_};
  const std::string filler = dir_ + "/filler";
  auto run = NewJob();
  auto m = NewManager(*run, Options());
  MustSave(*m);
  SetFaultCallbackForTesting([&](absl::string_view point, int) {
    if (point != "after_index") return;
    // Fill every free block, as another writer on a shared disk would.
    const int fd = ::open(filler.c_str(), O_WRONLY | O_CREAT, 0644);
    for (int64_t chunk = 4 << 20; chunk >= 512; chunk /= 2) {
      struct stat st;
      ::fstat(fd, &st);
      while (::fallocate(fd, 0, st.st_size, chunk) == 0) st.st_size += chunk;
    }
    ::close(fd);
  });
  absl::StatusOr<std::optional<std::string>> saved = m->Save();
  SetFaultCallbackForTesting(nullptr);
  EXPECT_TRUE(absl::IsResourceExhausted(saved.status())) << saved.status();
  EXPECT_THAT(saved.status().message(), HasSubstr(Ckpt(2)));
  EXPECT_EQ(ReadCheckpointState(dir_)->model_checkpoint_path, "ckpt-1");
  EXPECT_EQ(LatestCheckpoint(dir_).value(), Ckpt(2));
  m.reset();

  ASSERT_TRUE(RemoveFileIfExists(filler).ok());
  auto resumed = NewJob();
  auto again = NewManager(*resumed, Options());
  EXPECT_EQ(again->latest_checkpoint(), Ckpt(2));
  ASSERT_EQ(again->RestoreOrInitialize(RestoreMatch::kAllMatched).value().restored_from,
            Ckpt(2));
  EXPECT_EQ(MustSave(*again), Ckpt(3));
  EXPECT_THAT(ReadCheckpointState(dir_)->all_model_checkpoint_paths,
              ElementsAreArray(Rel({1, 2, 3})));
}

// Another process holding the lock, as a second job's rank 0 would.
class OtherJob {
 public:
  explicit OtherJob(const std::string& dir) {
    int ready[2];
    if (::pipe(ready) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      absl::StatusOr<DirectoryLock> lock =
          DirectoryLock::Acquire(dir, DirectoryLockPolicy::kRequire);
      const char c = lock.ok() ? '1' : '0';
      (void)!::write(ready[1], &c, 1);
      if (lock.ok()) ::pause();
      ::_exit(1);
    }
    char c = 0;
    locked_ = ::read(ready[0], &c, 1) == 1 && c == '1';
    ::close(ready[0]);
    ::close(ready[1]);
  }
  ~OtherJob() { Kill(); }
  void Kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  bool locked() const { return locked_; }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  bool locked_ = false;
};

TEST_F(ManagerRecoveryTest, SecondJobIsRefusedNamingTheHolderAndSweepsNothing) {
  {
    auto first = NewJob();
    auto m = NewManager(*first, Options());
    MustSave(*m);
  }
  // The other job's save in progress: no sweep may delete it.
  const std::string partial = dir_ + "/ckpt-2.h5.partial-0123456789abcdef";
  WriteFileBytes(partial, "in progress");
  OtherJob other(dir_);
  ASSERT_TRUE(other.locked());

  auto run = NewJob();
  absl::StatusOr<std::unique_ptr<CheckpointManager>> refused =
      CheckpointManager::Create(run->ckpt.get(), dir_, Options());
  ASSERT_TRUE(absl::IsFailedPrecondition(refused.status())) << refused.status();
  EXPECT_THAT(refused.status().message(), HasSubstr(absl::StrCat("pid=", other.pid())));
  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
  EXPECT_THAT(refused.status().message(), HasSubstr(absl::StrCat("host=", host)));
  EXPECT_THAT(refused.status().message(), HasSubstr(dir_));
  EXPECT_TRUE(FileExists(partial));

  // The Saver and DTensorCheckpoint::Save are refused the same way.
  auto saver = Saver::Create(comm_.get(), {{"w", run->w}}).value();
  absl::StatusOr<std::string> by_saver = saver->Save(dir_ + "/model", 1);
  EXPECT_TRUE(absl::IsFailedPrecondition(by_saver.status())) << by_saver.status();
  EXPECT_FALSE(FileExists(dir_ + "/model-1.index"));
  absl::StatusOr<std::string> by_ckpt = run->ckpt->Save(dir_ + "/other");
  EXPECT_TRUE(absl::IsFailedPrecondition(by_ckpt.status())) << by_ckpt.status();

  // The holder dies (SIGKILL): its lock is taken over, and now the sweep
  // runs.
  other.Kill();
  auto m = NewManager(*run, Options());
  ASSERT_NE(m, nullptr);
  EXPECT_FALSE(FileExists(partial));
  EXPECT_THAT(ReadFileBytes(dir_ + "/" + kDirectoryLockFilename),
              HasSubstr(absl::StrCat("pid=", ::getpid())));
  EXPECT_EQ(MustSave(*m), Ckpt(2));
  // While this manager lives, another process cannot lock the directory...
  EXPECT_FALSE(OtherJob(dir_).locked());
  // ...but the same job can: a Saver beside its manager shares the lock.
  EXPECT_TRUE(saver->Save(dir_ + "/model", 1).ok());
  m.reset();
  saver.reset();
  EXPECT_TRUE(OtherJob(dir_).locked());
}

TEST_F(ManagerRecoveryTest, LockPolicyNoneTakesNoLock) {
  std::filesystem::create_directories(dir_);
  OtherJob other(dir_);
  ASSERT_TRUE(other.locked());
  auto run = NewJob();
  CheckpointManagerOptions o = Options();
  o.directory_lock = DirectoryLockPolicy::kNone;
  auto m = NewManager(*run, o);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(MustSave(*m), Ckpt(1));
}

}  // namespace
}  // namespace meshckpt
