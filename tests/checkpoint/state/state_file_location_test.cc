// Where the state file goes: beside the checkpoint, for DTensorCheckpoint::
// Save, Saver::Save and CheckpointManager, whatever the prefix looks like:
// relative without a directory part (saved from inside a temporary working
// directory), absolute, and at the filesystem root. The root case runs a
// real save in a forked child chrooted into a temporary directory (needs
// root; skipped otherwise), from a working directory that is not the root,
// so a state file put into the working directory would be seen.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/base/path.h"
#include "meshckpt/checkpoint/manager/checkpoint_manager.h"
#include "meshckpt/checkpoint/object/dtensor_checkpoint.h"
#include "meshckpt/checkpoint/object/dvariable.h"
#include "meshckpt/checkpoint/saver/saver.h"
#include "meshckpt/checkpoint/state/checkpoint_state.h"
#include "meshckpt/checkpoint/state/retention.h"
#include "meshckpt/comm/communicator.h"
#include "meshckpt/io/fs/fs.h"
#include "meshckpt/mesh/mesh.h"

namespace meshckpt {
namespace {

using ::testing::ElementsAre;

class StateFileLocationTest : public ::testing::Test {
 protected:
  StateFileLocationTest() {
    EXPECT_EQ(::mkdir(root_.c_str(), 0755), 0) << root_;
    cwd_ = CurrentDirectory().value();
    Mesh mesh = Mesh::Create({{"x", 1}}, 0, 1).value();
    w_ =
        model_.AddVariable("w", DType::kFloat32, {3}, Layout::Replicated(mesh, 1)).value();
    ckpt_ = DTensorCheckpoint::Create(comm_.get(), mesh, {{"model", &model_}}).value();
    saver_ = Saver::Create(comm_.get(), {{"w", w_}}).value();
  }
  ~StateFileLocationTest() override {
    EXPECT_EQ(::chdir(cwd_.c_str()), 0);
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }

  // A new directory under the test's root.
  std::string Dir(const std::string& name) {
    const std::string d = root_ + "/" + name;
    EXPECT_EQ(::mkdir(d.c_str(), 0755), 0) << d;
    return d;
  }
  void ChangeDir(const std::string& dir) { ASSERT_EQ(::chdir(dir.c_str()), 0) << dir; }

  // The state file of `dir` names `name` (relative) as the latest, and it
  // is the only entry.
  void ExpectStateNames(const std::string& dir, const std::string& name) {
    absl::StatusOr<CheckpointState> s = ReadCheckpointState(dir);
    ASSERT_TRUE(s.ok()) << dir << ": " << s.status();
    EXPECT_EQ(s->model_checkpoint_path, name) << dir;
    EXPECT_THAT(s->all_model_checkpoint_paths, ElementsAre(name)) << dir;
    EXPECT_TRUE(CheckpointExists(JoinPath(dir, name))) << dir;
  }

  // Runs `save` in a child chrooted into `jail`, from its directory "/sub";
  // false when chroot is not allowed (the caller skips).
  bool SaveAtTheRoot(const std::string& jail, const std::function<bool()>& save) {
    EXPECT_EQ(::mkdir((jail + "/sub").c_str(), 0755), 0);
    int ready[2];
    EXPECT_EQ(::pipe(ready), 0);
    const pid_t child = ::fork();
    if (child == 0) {
      ::close(ready[0]);
      const bool jailed = ::chroot(jail.c_str()) == 0 && ::chdir("/sub") == 0;
      const char c = jailed ? '1' : '0';
      (void)!::write(ready[1], &c, 1);
      ::_exit(!jailed ? 2 : save() ? 0 : 1);
    }
    ::close(ready[1]);
    char c = '0';
    const bool jailed = ::read(ready[0], &c, 1) == 1 && c == '1';
    ::close(ready[0]);
    int status = 0;
    EXPECT_EQ(::waitpid(child, &status, 0), child);
    if (!jailed) return false;
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    // Beside the checkpoint, never in the working directory.
    EXPECT_FALSE(FileExists(jail + "/sub/checkpoint"));
    return true;
  }

  std::unique_ptr<Communicator> comm_ = SerialCommunicator();
  std::string root_ = "/tmp/meshckpt_stateloc_" + RandomId();
  std::string cwd_;
  Module model_;
  DVariable* w_ = nullptr;
  std::unique_ptr<DTensorCheckpoint> ckpt_;
  std::unique_ptr<Saver> saver_;
};

TEST_F(StateFileLocationTest, RootPrefixKeepsItsStateFileAtTheRoot) {
  // What each Save asks, tested without writing to the real root.
  EXPECT_EQ(StateFileDirectory("/ckpt"), "/");
  EXPECT_EQ(StateFileDirectory("/ckpt-1"), "/");
  EXPECT_EQ(StateFilePath("/", "/ckpt-1", /*relative=*/true).value(), "ckpt-1");
}

TEST_F(StateFileLocationTest, DTensorCheckpointSave) {
  // No directory part: the working directory.
  const std::string here = Dir("here");
  ChangeDir(here);
  EXPECT_EQ(ckpt_->Save("ckpt").value(), "ckpt-1");
  ExpectStateNames(here, "ckpt-1");
  EXPECT_EQ(LatestCheckpoint(here).value(), here + "/ckpt-1");

  // Absolute, saved from elsewhere: beside it, not in the working directory.
  const std::string x = Dir("x");
  EXPECT_EQ(ckpt_->Save(x + "/ckpt").value(), x + "/ckpt-2");
  ExpectStateNames(x, "ckpt-2");
  ExpectStateNames(here, "ckpt-1");  // Untouched.
  EXPECT_FALSE(FileExists(root_ + "/checkpoint"));

  // At the root of a chroot.
  const std::string jail = Dir("jail");
  if (!SaveAtTheRoot(jail, [&] { return ckpt_->Save("/ckpt").ok(); })) {
    GTEST_SKIP() << "cannot chroot (needs root)";
  }
  ExpectStateNames(jail, "ckpt-3");
}

TEST_F(StateFileLocationTest, SaverSave) {
  const std::string here = Dir("here");
  ChangeDir(here);
  EXPECT_EQ(saver_->Save("model", 1).value(), "model-1");
  ExpectStateNames(here, "model-1");

  const std::string x = Dir("x");
  const std::string other = Dir("other");
  ChangeDir(other);
  auto saver = Saver::Create(comm_.get(), {{"w", w_}}).value();
  EXPECT_EQ(saver->Save(x + "/model", 2).value(), x + "/model-2");
  ExpectStateNames(x, "model-2");
  EXPECT_FALSE(FileExists(other + "/checkpoint"));

  const std::string jail = Dir("jail");
  auto at_root = Saver::Create(comm_.get(), {{"w", w_}}).value();
  if (!SaveAtTheRoot(jail, [&] { return at_root->Save("/model", 3).ok(); })) {
    GTEST_SKIP() << "cannot chroot (needs root)";
  }
  ExpectStateNames(jail, "model-3");
}

TEST_F(StateFileLocationTest, CheckpointManager) {
  // The manager takes a directory: a relative one is the working
  // directory's, and its state file is inside it.
  ChangeDir(root_);
  auto m = CheckpointManager::Create(ckpt_.get(), "run").value();
  EXPECT_EQ(m->directory(), CurrentDirectory().value() + "/run");
  EXPECT_EQ(m->Save().value(), m->directory() + "/ckpt-1");
  ExpectStateNames(root_ + "/run", "ckpt-1");
  EXPECT_FALSE(FileExists(root_ + "/checkpoint"));

  const std::string jail = Dir("jail");
  auto job = DTensorCheckpoint::Create(comm_.get(), ckpt_->mesh(), {{"model", &model_}});
  ASSERT_TRUE(job.ok());
  std::unique_ptr<DTensorCheckpoint> fresh = *std::move(job);
  if (!SaveAtTheRoot(jail, [&] {
        auto at_root = CheckpointManager::Create(fresh.get(), "/");
        return at_root.ok() && (*at_root)->Save().value_or(std::nullopt) == "/ckpt-1";
      })) {
    GTEST_SKIP() << "cannot chroot (needs root)";
  }
  ExpectStateNames(jail, "ckpt-1");
}

// A ".." in the directory part is part of the directory's name, not a way
// out of it: the state file names the checkpoint relative to it, so the
// readers (which refuse entries with "..") use the entry.
TEST_F(StateFileLocationTest, DirectoryThroughDotDot) {
  const std::string a = Dir("a"), b = Dir("b"), c = Dir("c");
  ChangeDir(Dir("other"));
  EXPECT_EQ(ckpt_->Save("../a/ckpt").value(), "../a/ckpt-1");
  ExpectStateNames(a, "ckpt-1");
  EXPECT_EQ(saver_->Save("../b/model", 2).value(), "../b/model-2");
  ExpectStateNames(b, "model-2");

  auto m = CheckpointManager::Create(ckpt_.get(), "../c").value();
  const std::string saved = m->Save().value().value_or("");
  EXPECT_EQ(saved, m->directory() + "/ckpt-2");  // The save counter is at 1.
  ExpectStateNames(c, "ckpt-2");
  m.reset();
  // A new manager finds its checkpoints through the state file.
  auto again = CheckpointManager::Create(ckpt_.get(), "../c").value();
  EXPECT_THAT(again->checkpoints(), ElementsAre(saved));
  EXPECT_EQ(LatestCheckpoint("../c").value(), "../c/ckpt-2");
}

}  // namespace
}  // namespace meshckpt
