// Hostile files where a checkpoint's files should be: a FIFO, a device
// (through a symlink to /dev/zero), a huge sparse file. Each is refused at
// once with InvalidArgument or DataLoss, never read into memory, never
// waited on. Every test arms an alarm, so a hang kills the test instead of
// stalling the run.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/checkpoint/manager/checkpoint_manager.h"
#include "meshckpt/checkpoint/object/dtensor_checkpoint.h"
#include "meshckpt/checkpoint/reader/checkpoint_reader.h"
#include "meshckpt/checkpoint/state/checkpoint_state.h"
#include "meshckpt/comm/communicator.h"
#include "meshckpt/io/format/index_file.h"
#include "meshckpt/io/fs/fs.h"
#include "meshckpt/mesh/mesh.h"
#include "tests/file_bytes.h"

namespace meshckpt {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class HostileFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::alarm(60);  // A hang is a failure, not a stuck CI run.
    fs::create_directories(dir_);
  }
  void TearDown() override {
    ::alarm(0);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // A committed one-tensor checkpoint at `prefix`.
  void SaveSmall(const std::string& prefix) {
    Mesh mesh = Mesh::Create({{"x", 1}}, 0, 1).value();
    std::vector<float> values = {1, 2, 3, 4};
    SaveTensor t{
        "w", "", DType::kFloat32, {4}, Layout::Replicated(mesh, 1), {values.data()}};
    ASSERT_TRUE(SaveTensors(*comm_, prefix, {t}, {}, {}).ok());
  }
  void MakeFifo(const std::string& path) {
    fs::remove(path);
    ASSERT_EQ(::mkfifo(path.c_str(), 0644), 0) << path;
  }
  void MakeSparse(const std::string& path, uintmax_t bytes) {
    fs::remove(path);
    WriteFileBytes(path, "");
    fs::resize_file(path, bytes);
  }

  std::unique_ptr<Communicator> comm_ = SerialCommunicator();
  std::string dir_ = "/tmp/meshckpt_hostile_" + RandomId();
  std::string prefix_ = dir_ + "/ckpt-1";
};

TEST_F(HostileFilesTest, ReadFileToStringRefusesWhatIsNotASmallRegularFile) {
  MakeFifo(dir_ + "/fifo");
  absl::StatusOr<std::string> fifo = ReadFileToString(dir_ + "/fifo", 1 << 20);
  EXPECT_TRUE(absl::IsInvalidArgument(fifo.status())) << fifo.status();
  EXPECT_THAT(fifo.status().message(), HasSubstr("a FIFO"));

  absl::StatusOr<std::string> device = ReadFileToString("/dev/zero", 1 << 20);
  EXPECT_TRUE(absl::IsInvalidArgument(device.status())) << device.status();
  EXPECT_THAT(device.status().message(), HasSubstr("a device"));

  absl::StatusOr<std::string> directory = ReadFileToString(dir_, 1 << 20);
  EXPECT_TRUE(absl::IsInvalidArgument(directory.status())) << directory.status();

  MakeSparse(dir_ + "/big", uintmax_t{1} << 36);
  absl::StatusOr<std::string> big = ReadFileToString(dir_ + "/big", 1 << 20);
  EXPECT_TRUE(absl::IsDataLoss(big.status())) << big.status();
  EXPECT_THAT(big.status().message(), HasSubstr("68719476736 bytes"));

  WriteFileBytes(dir_ + "/small", "hello");
  EXPECT_EQ(ReadFileToString(dir_ + "/small", 5).value(), "hello");
  EXPECT_TRUE(absl::IsDataLoss(ReadFileToString(dir_ + "/small", 4).status()));
}

TEST_F(HostileFilesTest, IndexThatIsAFifoDeviceOrHugeSparseFile) {
  SaveSmall(prefix_);
  const std::string index = IndexFilePath(prefix_);

  MakeFifo(index);
  absl::StatusOr<std::unique_ptr<CheckpointReader>> r = CheckpointReader::Open(prefix_);
  EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr(index));
  EXPECT_FALSE(CheckpointIsIntact(prefix_));
  EXPECT_TRUE(absl::IsNotFound(LatestCheckpoint(dir_).status()));

  fs::remove(index);
  fs::create_symlink("/dev/zero", index);
  r = CheckpointReader::Open(prefix_);
  EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("a device"));

  // Sparse and without the footer's magic: one 8-byte read, not 64 GiB.
  fs::remove(index);
  MakeSparse(index, uintmax_t{1} << 36);
  r = CheckpointReader::Open(prefix_);
  EXPECT_TRUE(absl::IsDataLoss(r.status())) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("no footer"));
  EXPECT_TRUE(absl::IsDataLoss(ReadIndexFileBytes(index).status()));
}

TEST_F(HostileFilesTest, DataFileThatIsAFifo) {
  SaveSmall(prefix_);
  // The index stays valid; the data file is swapped for a FIFO.
  MakeFifo(DataFilePath(prefix_));
  EXPECT_FALSE(CheckpointIsIntact(prefix_));
  Mesh mesh = Mesh::Create({{"x", 1}}, 0, 1).value();
  std::vector<float> out(4);
  RestoreTensor t{"w", DType::kFloat32, {4}, Layout::Replicated(mesh, 1), {out.data()}};
  for (TransferMode mode : {TransferMode::kDirect, TransferMode::kIndependent}) {
    IoOptions o;
    o.transfer_mode = mode;
    absl::Status s = RestoreTensors(*comm_, prefix_, {t}, o);
    EXPECT_FALSE(s.ok());
    EXPECT_TRUE(absl::IsInvalidArgument(s) || absl::IsDataLoss(s)) << s;
  }
  absl::StatusOr<std::unique_ptr<CheckpointReader>> r = CheckpointReader::Open(prefix_);
  if (r.ok()) {
    absl::StatusOr<std::vector<std::string>> problems = (*r)->VerifyAll();
    EXPECT_TRUE(!problems.ok() || !problems->empty());
  } else {
    EXPECT_TRUE(absl::IsInvalidArgument(r.status()) || absl::IsDataLoss(r.status()))
        << r.status();
  }
}

TEST_F(HostileFilesTest, StateFileThatIsAFifoDeviceOrHugeSparseFile) {
  SaveSmall(prefix_);
  const std::string state = dir_ + "/checkpoint";
  Mesh mesh = Mesh::Create({{"x", 1}}, 0, 1).value();
  auto ckpt = DTensorCheckpoint::Create(comm_.get(), mesh, {}).value();

  MakeFifo(state);
  EXPECT_TRUE(absl::IsInvalidArgument(ReadCheckpointState(dir_).status()));
  absl::StatusOr<std::unique_ptr<CheckpointManager>> m =
      CheckpointManager::Create(ckpt.get(), dir_);
  EXPECT_TRUE(absl::IsInvalidArgument(m.status())) << m.status();
  EXPECT_THAT(m.status().message(), HasSubstr("a FIFO"));

  fs::remove(state);
  fs::create_symlink("/dev/zero", state);
  EXPECT_TRUE(absl::IsInvalidArgument(ReadCheckpointState(dir_).status()));

  // Oversized: refused as damaged, and a manager falls back to the
  // directory's own committed checkpoints, as for any unreadable state file.
  fs::remove(state);
  MakeSparse(state, uintmax_t{1} << 36);
  absl::StatusOr<CheckpointState> big = ReadCheckpointState(dir_);
  EXPECT_TRUE(absl::IsDataLoss(big.status())) << big.status();
  EXPECT_EQ(LatestCheckpoint(dir_).value(), prefix_);
  m = CheckpointManager::Create(ckpt.get(), dir_);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)->latest_checkpoint(), prefix_);
}

}  // namespace
}  // namespace meshckpt
