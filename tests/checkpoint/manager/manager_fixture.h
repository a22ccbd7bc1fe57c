// The CheckpointManager test fixture: a one-variable model with a step
// counter in one process (SerialCommunicator, one-device mesh), a fresh
// directory and a fake clock.
#ifndef MESHCKPT_TESTS_CHECKPOINT_MANAGER_FIXTURE_H_
#define MESHCKPT_TESTS_CHECKPOINT_MANAGER_FIXTURE_H_

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "meshckpt/checkpoint/manager/checkpoint_manager.h"
#include "meshckpt/checkpoint/object/dvariable.h"
#include "meshckpt/checkpoint/object/tracked_value.h"
#include "meshckpt/comm/communicator.h"
#include "meshckpt/io/fs/fs.h"
#include "meshckpt/mesh/mesh.h"

namespace meshckpt {

inline constexpr double kT0 = 1.7e9;

// A model with one variable and a step counter, and its checkpoint object.
struct Job {
  Module model;
  DVariable* w = nullptr;
  TrackedValue* step = nullptr;
  std::unique_ptr<DTensorCheckpoint> ckpt;

  std::vector<float> values() const {
    absl::Span<const float> s = static_cast<const DVariable*>(w)->shard<float>(0);
    return std::vector<float>(s.begin(), s.end());
  }
  void set_values(const std::vector<float>& v) {
    std::copy(v.begin(), v.end(), w->shard<float>(0).begin());
  }
};

class CheckpointManagerTest : public ::testing::Test {
 protected:
  ~CheckpointManagerTest() override {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }

  std::unique_ptr<Job> NewJob() {
    auto run = std::make_unique<Job>();
    Mesh mesh = Mesh::Create({{"x", 1}}, 0, 1).value();
    run->w =
        run->model.AddVariable("w", DType::kFloat32, {4}, Layout::Replicated(mesh, 1))
            .value();
    run->step = run->model.AddValue("step", TrackedValue::Create(int64_t{0})).value();
    run->ckpt =
        DTensorCheckpoint::Create(comm_.get(), mesh, {{"model", &run->model}}).value();
    run->ckpt->SetWarningSink([](const std::string&) {});
    return run;
  }

  CheckpointManagerOptions Options() {
    CheckpointManagerOptions o;
    o.clock = [this] { return now_; };
    return o;
  }

  std::unique_ptr<CheckpointManager> NewManager(Job& run, CheckpointManagerOptions o) {
    absl::StatusOr<std::unique_ptr<CheckpointManager>> m =
        CheckpointManager::Create(run.ckpt.get(), dir_, std::move(o));
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? *std::move(m) : nullptr;
  }

  // Saves and expects a checkpoint to be written.
  std::string MustSave(CheckpointManager& m,
                       std::optional<int64_t> number = std::nullopt) {
    absl::StatusOr<std::optional<std::string>> p = m.Save(number);
    EXPECT_TRUE(p.ok()) << p.status();
    EXPECT_TRUE(p.ok() && p->has_value());
    return p.ok() && p->has_value() ? **p : "";
  }

  std::string Ckpt(int n) const { return dir_ + "/ckpt-" + std::to_string(n); }
  std::vector<std::string> Ckpts(std::vector<int> ns) const {
    std::vector<std::string> out;
    for (int n : ns) out.push_back(Ckpt(n));
    return out;
  }
  std::vector<std::string> Rel(std::vector<int> ns) const {
    std::vector<std::string> out;
    for (int n : ns) out.push_back("ckpt-" + std::to_string(n));
    return out;
  }

  std::unique_ptr<Communicator> comm_ = SerialCommunicator();
  std::string root_ =
      std::string(std::getenv("TEST_TMPDIR") ? std::getenv("TEST_TMPDIR") : "/tmp") +
      "/meshckpt_manager_" + RandomId();
  std::string dir_ = root_ + "/run";
  double now_ = kT0;
};

}  // namespace meshckpt

#endif  // MESHCKPT_TESTS_CHECKPOINT_MANAGER_FIXTURE_H_
