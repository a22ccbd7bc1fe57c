// CheckpointHandle in one process: what Open refuses, reads through one
// handle (RestoreTensors and ReadBox, in both transfer modes), and a handle
// whose data file was closed.
#include "meshckpt/checkpoint/engine/checkpoint_handle.h"

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/io/fs/fs.h"

namespace meshckpt {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class CheckpointHandleTest : public ::testing::TestWithParam<TransferMode> {
 protected:
  void SetUp() override {
    dir_ = "/tmp/meshckpt_handle_" + RandomId();
    std::filesystem::create_directories(dir_);
    prefix_ = dir_ + "/ckpt";
    std::vector<float> w0 = {0, 1, 2}, w1 = {3, 4};
    std::vector<std::string> s0 = {"a", "bb", "ccc"}, s1 = {"dddd", ""};
    absl::Status s =
        SaveTensors(*comm_, prefix_,
                    {{"w", "", DType::kFloat32, {5}, split_, {w0.data(), w1.data()}},
                     {"s", "", DType::kString, {5}, split_, {s0.data(), s1.data()}}},
                    {}, {});
    ASSERT_TRUE(s.ok()) << s;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  IoOptions Options() const {
    IoOptions o;
    o.transfer_mode = GetParam();
    return o;
  }

  std::unique_ptr<Communicator> comm_ = SerialCommunicator();
  Mesh mesh_ = Mesh::Create({{"x", 2}}, 0, 1).value();
  Layout split_ = Layout::Create({"x"}, mesh_).value();
  std::string dir_, prefix_;
};

TEST_P(CheckpointHandleTest, RefusesWhatIsNotACommittedCheckpoint) {
  absl::StatusOr<std::unique_ptr<CheckpointHandle>> h =
      CheckpointHandle::Open(*comm_, dir_ + "/none", Options());
  EXPECT_TRUE(absl::IsNotFound(h.status())) << h.status();

  std::filesystem::resize_file(DataFilePath(prefix_),
                               std::filesystem::file_size(DataFilePath(prefix_)) - 1);
  h = CheckpointHandle::Open(*comm_, prefix_, Options());
  EXPECT_TRUE(absl::IsDataLoss(h.status())) << h.status();
  EXPECT_THAT(h.status().message(), HasSubstr("bytes but was committed with"));

  ASSERT_TRUE(RemoveFileIfExists(DataFilePath(prefix_)).ok());
  h = CheckpointHandle::Open(*comm_, prefix_, Options());
  EXPECT_TRUE(absl::IsDataLoss(h.status())) << h.status();
  EXPECT_THAT(h.status().message(), HasSubstr("is missing"));
  EXPECT_THAT(h.status().message(), HasSubstr(DataFilePath(prefix_)));
}

TEST_P(CheckpointHandleTest, ManyReadsThroughOneHandle) {
  absl::StatusOr<std::unique_ptr<CheckpointHandle>> h =
      CheckpointHandle::Open(*comm_, prefix_, Options());
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ((*h)->prefix(), prefix_);
  EXPECT_EQ((*h)->index().tensors().size(), 2u);
  const Layout whole = Layout::Replicated(mesh_, 1);
  for (int round = 0; round < 2; ++round) {
    std::vector<float> w(5);
    std::vector<std::string> s(5);
    absl::Status st =
        RestoreTensors(**h,
                       {{"w", DType::kFloat32, {5}, whole, {w.data(), w.data()}},
                        {"s", DType::kString, {5}, whole, {s.data(), s.data()}}},
                       Options());
    ASSERT_TRUE(st.ok()) << st;
    EXPECT_THAT(w, ElementsAre(0, 1, 2, 3, 4));
    EXPECT_THAT(s, ElementsAre("a", "bb", "ccc", "dddd", ""));
  }
  std::vector<float> part(2);
  ASSERT_TRUE((*h)->ReadBox("w", Box::Create({2}, {2}).value(), part.data()).ok());
  EXPECT_THAT(part, ElementsAre(2, 3));
  std::vector<std::string> strings(2);
  ASSERT_TRUE((*h)->ReadBox("s", Box::Create({3}, {2}).value(), strings.data()).ok());
  EXPECT_THAT(strings, ElementsAre("dddd", ""));
  EXPECT_TRUE((*h)->CheckDataset(*(*h)->index().Find("s")).ok());
  EXPECT_TRUE(absl::IsInvalidArgument(
      (*h)->ReadBox("w", Box::Create({4}, {2}).value(), part.data())));
  EXPECT_TRUE(absl::IsNotFound((*h)->ReadBox("v", Box::FromShape({1}), part.data())));
}

TEST_P(CheckpointHandleTest, ClosedHandleKeepsItsIndexButReadsNothing) {
  absl::StatusOr<std::unique_ptr<CheckpointHandle>> h =
      CheckpointHandle::Open(*comm_, prefix_, Options());
  ASSERT_TRUE(h.ok()) << h.status();
  (*h)->Close();
  ASSERT_NE((*h)->index().Find("w"), nullptr);
  std::vector<float> w(5);
  absl::Status st = RestoreTensors(
      **h,
      {{"w", DType::kFloat32, {5}, Layout::Replicated(mesh_, 1), {w.data(), w.data()}}},
      Options());
  EXPECT_TRUE(absl::IsFailedPrecondition(st)) << st;
  EXPECT_THAT(st.message(), HasSubstr("closed"));
  EXPECT_TRUE(
      absl::IsFailedPrecondition((*h)->ReadBox("w", Box::FromShape({5}), w.data())));
}

INSTANTIATE_TEST_SUITE_P(Modes, CheckpointHandleTest,
                         ::testing::Values(TransferMode::kDirect,
                                           TransferMode::kIndependent),
                         [](const ::testing::TestParamInfo<TransferMode>& info) {
                           return info.param == TransferMode::kDirect ? "Direct"
                                                                      : "MpiIo";
                         });

}  // namespace
}  // namespace meshckpt
