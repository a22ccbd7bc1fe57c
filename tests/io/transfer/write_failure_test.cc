// HDF5 writers whose writes fail. RLIMIT_FSIZE makes every write past a
// size fail (EFBIG), which needs neither root nor a small filesystem; a full
// disk (ENOSPC) takes the same path and is covered by the MPI full-disk
// tests. The writer must report the failure as a Status naming the file and
// still close its file completely: H5Fget_obj_count finds nothing open, and
// this process ends cleanly (HDF5 1.10.8 crashed in H5close at exit when a
// failed close left a file ID behind; ctest checks the exit code).

#include <signal.h>
#include <sys/resource.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/comm/communicator.h"
#include "meshckpt/io/fs/fs.h"
#include "meshckpt/io/transfer/chunk_sink.h"
#include "meshckpt/io/transfer/data_file.h"
#include "meshckpt/io/transfer/hdf5_writer.h"

namespace meshckpt {
namespace {

using ::testing::HasSubstr;

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/meshckpt_wfail_" + name + "_" + RandomId() +
         ".h5";
}

// Writes past `bytes` fail with EFBIG while this lives.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    ::getrlimit(RLIMIT_FSIZE, &old_);
    old_handler_ = ::signal(SIGXFSZ, SIG_IGN);  // EFBIG instead of the signal.
    rlimit l = old_;
    l.rlim_cur = bytes;
    ::setrlimit(RLIMIT_FSIZE, &l);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &old_);
    ::signal(SIGXFSZ, old_handler_);
  }

 private:
  rlimit old_;
  void (*old_handler_)(int);
};

class WriteFailureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = TempPath(::testing::UnitTest::GetInstance()->current_test_info()->name());
  }
  void TearDown() override {
    EXPECT_EQ(CountOpenHdf5Objects().total(), 0) << CountOpenHdf5Objects().ToString();
    (void)RemoveFileIfExists(path_);
  }

  std::string path_;
  std::unique_ptr<Communicator> serial_ = SerialCommunicator();
};

// 4 MiB of float32, allocated at creation (none of it written).
DatasetSpec Big() {
  return {"g/w", DType::kFloat32, {1024, 1024}, {}, {{"dtype", "float32"}}};
}

TEST_F(WriteFailureTest, NoWriteAtAllStillClosesAndSaysWhy) {
  FileSizeLimit limit(0);
  auto w = DataFileWriter::Create(*serial_, path_, {});
  ASSERT_TRUE(w.ok()) << w.status();  // The superblock's write failed unseen.
  ASSERT_TRUE((*w)->CreateDataset(Big()).ok());
  absl::Status closed = (*w)->Close();
  EXPECT_EQ(closed.code(), absl::StatusCode::kInternal) << closed;
  EXPECT_THAT(closed.message(), HasSubstr("'" + path_ + "'"));
  EXPECT_THAT(closed.message(), HasSubstr("File too large"));
  EXPECT_EQ(CountOpenHdf5Objects().total(), 0);
}

TEST_F(WriteFailureTest, ReservingPastTheLimitFailsThenClosesCleanly) {
  FileSizeLimit limit(64 << 10);
  auto w = Hdf5FileWriter::Create(*serial_, path_, {});
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_TRUE((*w)->CreateDataset(Big()).ok());
  absl::Status reserved = (*w)->ReserveSpace();
  EXPECT_FALSE(reserved.ok());
  EXPECT_THAT(reserved.message(), HasSubstr(path_));
  (void)(*w)->Close();
  EXPECT_EQ(CountOpenHdf5Objects().total(), 0);
}

// String tensors are written while the sink creates the file (after it
// reserved their space, which is what fails here).
TEST_F(WriteFailureTest, StringTensorPastTheLimitFailsAtCreateNamingTheFile) {
  const std::vector<std::string> values = {std::string(200000, 'a'), "b"};
  std::vector<SinkDataset> datasets(1);
  datasets[0].spec = {"g/s", DType::kString, {2}, {}, {}};
  datasets[0].chunks.push_back({0, Box::FromShape({2}), values.data()});
  FileSizeLimit limit(64 << 10);
  auto sink = ChunkSink::Create(*serial_, path_, datasets, IoOptions());
  ASSERT_FALSE(sink.ok());
  EXPECT_THAT(sink.status().message(), HasSubstr("'" + path_ + "'"));
  EXPECT_THAT(sink.status().message(), HasSubstr("File too large"));
  EXPECT_EQ(CountOpenHdf5Objects().total(), 0);
}

TEST_F(WriteFailureTest, DestroyedWithoutCloseAfterAFailureLeavesNothingOpen) {
  FileSizeLimit limit(0);
  auto w = DataFileWriter::Create(*serial_, path_, {});
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_TRUE((*w)->CreateDataset(Big()).ok());
  w->reset();
  EXPECT_EQ(CountOpenHdf5Objects().total(), 0);
}

TEST_F(WriteFailureTest, AWriterThatFailedDoesNotSpoilTheNext) {
  {
    FileSizeLimit limit(0);
    auto w = DataFileWriter::Create(*serial_, path_, {});
    ASSERT_TRUE(w.ok()) << w.status();
    EXPECT_FALSE((*w)->Close().ok());
  }
  auto w = DataFileWriter::Create(*serial_, path_, {});
  ASSERT_TRUE(w.ok()) << w.status();
  auto d = (*w)->CreateDataset({"g/x", DType::kInt32, {4}, {}, {}});
  ASSERT_TRUE(d.ok()) << d.status();
  const int32_t v[4] = {1, 2, 3, 4};
  ASSERT_TRUE((*w)->Write(*d, Box::FromShape({4}), v).ok());
  ASSERT_TRUE((*w)->Close().ok());
  auto r = DataFileReader::Open(*serial_, path_, {});
  ASSERT_TRUE(r.ok()) << r.status();
  auto rd = (*r)->OpenDataset("g/x", DType::kInt32, {4});
  ASSERT_TRUE(rd.ok()) << rd.status();
  int32_t back[4] = {};
  ASSERT_TRUE((*r)->Read(*rd, Box::FromShape({4}), back).ok());
  EXPECT_EQ(back[3], 4);
  EXPECT_TRUE((*r)->Close().ok());
}

}  // namespace
}  // namespace meshckpt
