// The benchmark's measurement plumbing: what the reported numbers rest on.
#include "bench/bench_util.h"

#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace meshckpt::bench {
namespace {

TEST(SummarizeTest, MedianMinMax) {
  Stats odd = Summarize({3, 1, 2});
  EXPECT_EQ(odd.median, 2);
  EXPECT_EQ(odd.min, 1);
  EXPECT_EQ(odd.max, 3);
  EXPECT_EQ(Summarize({4, 1, 2, 3}).median, 2.5);
  EXPECT_EQ(Summarize({}).median, 0);
}

std::string TempPath() {
  return ::testing::TempDir() + "bench_util_test_" + std::to_string(::getpid());
}

TEST(RawIoTest, SegmentsGoBackToBack) {
  const std::string path = TempPath();
  std::vector<char> a(100, 'a'), b(3, 'b'), c(5000, 'c');
  ASSERT_TRUE(RawWrite(path, {{a.data(), 100}, {b.data(), 3}, {c.data(), 5000}}).ok());
  std::vector<char> x(103), y(5000);
  ASSERT_TRUE(RawRead(path, {{x.data(), 103}, {y.data(), 5000}}).ok());
  EXPECT_EQ(std::string(x.begin(), x.end()), std::string(100, 'a') + "bbb");
  EXPECT_EQ(y, c);
  std::vector<char> more(1);
  absl::Status s = RawRead(path, {{y.data(), 5000}, {x.data(), 103}, {more.data(), 1}});
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  ::unlink(path.c_str());
  EXPECT_FALSE(RawRead(path, {{x.data(), 1}}).ok());
}

TEST(ParseFlagsTest, KnownFlagsOnly) {
  const char* ok[] = {"prog", "--reps=5", "--quick"};
  auto f = ParseFlags(3, const_cast<char**>(ok), {"reps", "quick"});
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->at("reps"), "5");
  EXPECT_EQ(f->at("quick"), "true");
  const char* bad[] = {"prog", "--rep=5"};
  EXPECT_FALSE(ParseFlags(2, const_cast<char**>(bad), {"reps"}).ok());
  const char* positional[] = {"prog", "reps"};
  EXPECT_FALSE(ParseFlags(2, const_cast<char**>(positional), {"reps"}).ok());
}

// 64 MiB touched and freed between Start and Stop shows up in the peak,
// whichever way the peak is measured.
void ExpectPeakSeesTransientBuffer(bool force_sampling) {
  constexpr size_t kBytes = size_t{64} << 20;
  PeakMemory memory(force_sampling);
  const int64_t before = CurrentRssKiB();
  memory.Start();
  {
    std::unique_ptr<char[]> buffer(new char[kBytes]);
    std::memset(buffer.get(), 1, kBytes);
    ::usleep(20000);  // Several sampling periods.
  }
  const int64_t peak = memory.Stop();
  EXPECT_GE(peak - before, 60 * 1024) << memory.method();
}

TEST(PeakMemoryTest, HighWaterMark) { ExpectPeakSeesTransientBuffer(false); }
TEST(PeakMemoryTest, Sampled) { ExpectPeakSeesTransientBuffer(true); }

}  // namespace
}  // namespace meshckpt::bench
