// The out-of-space messages and helpers of io/fs/disk_space.h.
#include "meshckpt/io/fs/disk_space.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/io/fs/fs.h"

namespace meshckpt {
namespace {

using ::testing::HasSubstr;

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/meshckpt_space_" + name + "_" + RandomId();
}

TEST(DiskSpaceTest, NoSpaceStatusSaysWhatIsNeededAndFree) {
  const std::string dir = std::getenv("TEST_TMPDIR") ? std::getenv("TEST_TMPDIR")
                                                     : "/tmp";
  absl::Status s = NoSpaceStatus("cannot write to", dir + "/missing-file", ENOSPC, 4096);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(s.message(), HasSubstr("cannot write to '" + dir + "/missing-file': "));
  EXPECT_THAT(s.message(), HasSubstr("No space left on device; needs 4096 bytes, "));
  EXPECT_THAT(s.message(), HasSubstr(" free on the filesystem mounted at '"));
  absl::Status e = ErrnoStatus("fsync failed for", dir + "/x", EDQUOT);
  EXPECT_EQ(e.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(e.message(), HasSubstr(" bytes free on the filesystem mounted at '"));
}

TEST(DiskSpaceTest, MountPointAndBytesToAllocate) {
  EXPECT_EQ(MountPointOf("/proc/self/status"), "/proc");
  EXPECT_EQ(MountPointOf("/"), "/");
  const std::string path = TempPath("sparse");
  EXPECT_EQ(BytesToAllocate(path, 1 << 20), 1 << 20);  // Missing: all of it.
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, 1 << 20), 0);  // A hole: nothing allocated.
  ::close(fd);
  EXPECT_EQ(BytesToAllocate(path, 1 << 20), 1 << 20);
  ASSERT_TRUE(ReserveFileSpace(path, 1 << 20).ok());
  EXPECT_EQ(BytesToAllocate(path, 1 << 20), 0);
  EXPECT_GT(FreeBytesFor(path), 0);
  (void)RemoveFileIfExists(path);
}

}  // namespace
}  // namespace meshckpt
