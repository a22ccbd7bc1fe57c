// AsyncSaver in one process: the checkpoint holds the values of the call,
// whatever the caller does to its buffers afterwards, with any staging
// budget; errors of either part come back; one save in flight at a time.
#include "meshckpt/checkpoint/engine/async_save.h"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/io/fs/fs.h"
#include "meshckpt/layout/layout.h"

namespace meshckpt {
namespace {

using ::testing::HasSubstr;

class AsyncSaveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    dir_ = std::string(tmp ? tmp : "/tmp") + "/meshckpt_async_" + RandomId();
    std::filesystem::create_directories(dir_);
    for (int d = 0; d < 4; ++d) {
      // Shard d of a [64, 1000] float32 matrix: 64000 bytes.
      a_.emplace_back(16 * 1000);
      for (size_t i = 0; i < a_[d].size(); ++i) a_[d][i] = d * 100000.0f + i;
    }
    for (int64_t i = 0; i < 300; ++i) b_.push_back(i * 7 - 5);
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  std::vector<SaveTensor> Tensors() {
    std::vector<const void*> shards;
    for (auto& s : a_) shards.push_back(s.data());
    Layout replicated = Layout::Create({"unsharded"}, mesh_).value();
    return {
        SaveTensor{"a", "", DType::kFloat32, {64, 1000}, rows_, {}, shards},
        SaveTensor{"b", "", DType::kInt64, {300}, replicated, {}, {b_.data()}},
        SaveTensor{
            "s", "", DType::kString, {}, Layout::Create({}, mesh_).value(), {}, {&note_}}};
  }

  // Restores the checkpoint and checks it holds `a`, `b` and `note` as
  // they were when `Snapshot` ran.
  void ExpectHoldsSnapshot(const std::string& prefix) {
    std::vector<std::vector<float>> a(4, std::vector<float>(16 * 1000));
    std::vector<int64_t> b(300);
    std::string note;
    std::vector<void*> shards;
    for (auto& s : a) shards.push_back(s.data());
    Layout replicated = Layout::Create({"unsharded"}, mesh_).value();
    std::vector<RestoreTensor> r = {
        {"a", DType::kFloat32, {64, 1000}, rows_, {}, shards},
        {"b", DType::kInt64, {300}, replicated, {}, {b.data()}},
        {"s", DType::kString, {}, Layout::Create({}, mesh_).value(), {}, {&note}}};
    ASSERT_TRUE(RestoreTensors(*comm_, prefix, r, IoOptions()).ok()) << prefix;
    EXPECT_EQ(a, snap_a_);
    EXPECT_EQ(b, snap_b_);
    EXPECT_EQ(note, snap_note_);
  }
  void Snapshot() {
    snap_a_ = a_;
    snap_b_ = b_;
    snap_note_ = note_;
  }
  // What a training step does to the values.
  void Scribble() {
    for (auto& s : a_) {
      for (float& x : s) x = -x - 1;
    }
    for (int64_t& x : b_) x += 1000;
    note_ += "!";
  }

  std::unique_ptr<Communicator> comm_ = SerialCommunicator();
  std::string dir_;
  const Mesh mesh_ = Mesh::Create({{"x", 4}}, 0, 1).value();  // 4 devices, one rank.
  const Layout rows_ = Layout::Create({"x", "unsharded"}, mesh_).value();
  std::vector<std::vector<float>> a_, snap_a_;
  std::vector<int64_t> b_, snap_b_;
  std::string note_ = "step one", snap_note_;
};

TEST_F(AsyncSaveTest, HoldsTheValuesOfTheCallWhateverTheBudget) {
  // Everything staged; two chunks of a and b; only b; nothing.
  for (int64_t budget : {int64_t{1} << 30, int64_t{150000}, int64_t{3000}, int64_t{0}}) {
    SCOPED_TRACE(budget);
    AsyncSaver saver(comm_.get(), AsyncSaveOptions{budget});
    const std::string prefix = dir_ + "/ckpt-" + std::to_string(budget);
    Snapshot();
    ASSERT_TRUE(saver.Start(prefix, Tensors(), CheckpointContents(), IoOptions()).ok());
    Scribble();  // Before the background thread is done, most likely.
    ASSERT_TRUE(saver.Wait().ok());
    ExpectHoldsSnapshot(prefix);
    const AsyncSaveStats& st = saver.last_stats();
    EXPECT_TRUE(st.committed);
    EXPECT_LE(st.staged_bytes, budget);
    // 4 chunks of a (64000 bytes each) and one of b (2400): what did not
    // fit was written while Start waited.
    EXPECT_EQ(st.staged_bytes + st.streamed_bytes, 4 * 64000 + 2400);
    if (budget == 0) {
      EXPECT_EQ(st.staged_bytes, 0);
    }
    if (budget == int64_t{1} << 30) {
      EXPECT_EQ(st.streamed_bytes, 0);
    }
    if (budget == 3000) {
      EXPECT_EQ(st.staged_bytes, 2400);  // Only b, the last chunk, fits.
    }
    if (budget == 150000) {
      EXPECT_GT(st.staged_bytes, 0);
      EXPECT_GT(st.streamed_bytes, 0);
    }
    EXPECT_GT(st.durable_seconds, 0);  // May end before the call returns.
  }
}

TEST_F(AsyncSaveTest, OneSaveInFlightAndStagingReused) {
  AsyncSaver saver(comm_.get());
  std::vector<std::string> prefixes;
  std::vector<std::vector<std::vector<float>>> as;
  std::vector<std::vector<int64_t>> bs;
  std::vector<std::string> notes;
  for (int i = 0; i < 3; ++i) {
    prefixes.push_back(dir_ + "/ckpt-" + std::to_string(i));
    as.push_back(a_);
    bs.push_back(b_);
    notes.push_back(note_);
    // The next Start completes this one first.
    ASSERT_TRUE(
        saver.Start(prefixes.back(), Tensors(), CheckpointContents(), IoOptions()).ok());
    EXPECT_TRUE(saver.in_flight());
    Scribble();
  }
  ASSERT_TRUE(saver.Wait().ok());
  EXPECT_FALSE(saver.in_flight());
  EXPECT_FALSE(saver.last_stats().allocated_staging);  // The first save's, reused.
  EXPECT_TRUE(saver.Wait().ok());                      // Nothing in flight: OK.
  for (int i = 0; i < 3; ++i) {
    snap_a_ = as[i];
    snap_b_ = bs[i];
    snap_note_ = notes[i];
    ExpectHoldsSnapshot(prefixes[i]);
  }
}

TEST_F(AsyncSaveTest, DestructorCommits) {
  const std::string prefix = dir_ + "/ckpt-1";
  Snapshot();
  {
    AsyncSaver saver(comm_.get());
    ASSERT_TRUE(saver.Start(prefix, Tensors(), CheckpointContents(), IoOptions()).ok());
  }
  EXPECT_TRUE(FileExists(IndexFilePath(prefix)));
  ExpectHoldsSnapshot(prefix);
}

TEST_F(AsyncSaveTest, BackgroundErrorComesBackFromWaitOrTheNextStart) {
  AsyncSaver saver(comm_.get());
  auto fail = [](Communicator&) { return absl::DataLossError("state file gone"); };
  ASSERT_TRUE(
      saver.Start(dir_ + "/ckpt-1", Tensors(), CheckpointContents(), IoOptions(), fail)
          .ok());
  absl::Status s = saver.Wait();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_TRUE(saver.last_stats().committed);  // Only after_commit failed.

  ASSERT_TRUE(
      saver.Start(dir_ + "/ckpt-2", Tensors(), CheckpointContents(), IoOptions(), fail)
          .ok());
  s = saver.Start(dir_ + "/ckpt-3", Tensors(), CheckpointContents(), IoOptions());
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_FALSE(FileExists(IndexFilePath(dir_ + "/ckpt-3")));  // Not started.
  EXPECT_TRUE(saver.Wait().ok());
}

TEST_F(AsyncSaveTest, ErrorsOfTheSynchronousPart) {
  AsyncSaver saver(comm_.get());
  IoOptions collective;
  collective.transfer_mode = TransferMode::kCollective;
  absl::Status s =
      saver.Start(dir_ + "/ckpt-1", Tensors(), CheckpointContents(), collective);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(s.message(), HasSubstr("kDirect"));

  s = saver.Start(dir_ + "/missing/ckpt-1", Tensors(), CheckpointContents(), IoOptions());
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_FALSE(saver.in_flight());

  std::vector<SaveTensor> bad = Tensors();
  bad[0].shard_data[2] = nullptr;
  s = saver.Start(dir_ + "/ckpt-2", bad, CheckpointContents(), IoOptions());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_FALSE(saver.in_flight());
  EXPECT_TRUE(saver.Wait().ok());
}

}  // namespace
}  // namespace meshckpt
