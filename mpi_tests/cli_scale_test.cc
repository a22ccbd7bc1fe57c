// `meshckpt reshard --mesh x=16777216` (the largest mesh Mesh accepts) on a
// small checkpoint, alone and under mpiexec with 2 ranks: the result must be
// exact, the output a few lines, and the peak memory of the processes run
// (getrusage RUSAGE_CHILDREN) far below what one entry per device would
// take. Time is never asserted. Same environment as cli_test.cc.
#include <sys/resource.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/checkpoint/reader/checkpoint_reader.h"
#include "tests/tools/cli_test_util.h"

namespace meshckpt {
namespace {

using ::meshckpt::cli_test::CliReshardTest;
using ::meshckpt::cli_test::CliTest;
using ::meshckpt::cli_test::Numeric;
using ::meshckpt::cli_test::Result;
using ::meshckpt::cli_test::Save;
using ::meshckpt::cli_test::TestTensor;
using ::testing::HasSubstr;

// Peak RSS of any process this test ran (MPI runtime included). One
// pointer per device of x=16777216 alone would be 128 MiB; the unbounded
// tool reached 8 GB.
constexpr double kMaxChildMiB = 96;
// A few lines of text per command.
constexpr size_t kMaxOutputBytes = 2048;

double MaxChildRssMiB() {
  rusage u{};
  getrusage(RUSAGE_CHILDREN, &u);
  return u.ru_maxrss / 1024.0;
}

std::vector<TestTensor> SmallModel() {
  std::vector<float> kernel;
  for (int i = 0; i < 40 * 50; ++i) kernel.push_back(10 + i * 0.25f);
  return {
      Numeric("kernel", "", DType::kFloat32, {40, 50}, {"x", "y"}, kernel),
      Numeric("bias", "", DType::kFloat64, {5}, {"y"},
              std::vector<double>{0.5, -1.0, 2.25, 3.0, 4.0}),
      Numeric("step", "", DType::kInt64, {}, {}, std::vector<int64_t>{42}),
      TestTensor{"names", "", DType::kString, {3}, {"x"}, {}, {"alpha", "", "gamma"}}};
}

// Every tensor of `a` and `b` holds the same bytes.
void ExpectSameValues(const std::string& a, const std::string& b) {
  auto ra = CheckpointReader::Open(a).value();
  auto rb = CheckpointReader::Open(b).value();
  ASSERT_EQ(ra->ListVariables().size(), rb->ListVariables().size());
  for (const VariableInfo& v : ra->ListVariables()) {
    SCOPED_TRACE(v.key);
    TensorData x = ra->ReadTensor(v.key).value(), y = rb->ReadTensor(v.key).value();
    EXPECT_EQ(x.bytes, y.bytes);
    EXPECT_EQ(x.strings, y.strings);
  }
}

void ExpectShort(const Result& r) {
  EXPECT_LT(r.out.size() + r.err.size(), kMaxOutputBytes) << r.out.substr(0, 300);
}

TEST_F(CliTest, ReshardOntoSixteenMillionDevices) {
  ASSERT_TRUE(Save(Path("src"), SmallModel(), CheckpointContents()).ok());
  Result r = Run({"reshard", Path("src"), Path("big"), "--mesh", "x=16777216", "--layout",
                  "kernel=x,unsharded", "--layout", "bias=x"});
  ASSERT_EQ(r.code, 0) << r.err.substr(0, 2000);
  ExpectShort(r);
  EXPECT_THAT(r.out,
              HasSubstr("(mesh |x=16777216|0-16777215|0-16777215|*CPU) on 1 rank(s)"));
  ExpectSameValues(Path("src"), Path("big"));
  auto big = CheckpointReader::Open(Path("big")).value();
  EXPECT_EQ(Layout::FromString(big->GetVariableInfo("kernel")->layout)->sharding_specs(),
            (std::vector<std::string>{"x", "unsharded"}));
  EXPECT_EQ(big->GetVariableInfo("kernel")->num_chunks, 40);

  for (const std::vector<std::string>& cmd :
       {std::vector<std::string>{"inspect", Path("big")},
        std::vector<std::string>{"inspect", Path("big"), "--all"},
        std::vector<std::string>{"verify", Path("big")},
        std::vector<std::string>{"diff", Path("src"), Path("big"), "--exit-code"}}) {
    Result c = Run(cmd);
    EXPECT_EQ(c.code, 0) << cmd[0] << ": " << c.err.substr(0, 2000);
    if (cmd[0] != "inspect" || cmd.size() == 2) ExpectShort(c);
  }
  Result json = Run({"inspect", Path("big"), "--json"});
  EXPECT_EQ(json.code, 0);
  EXPECT_LT(json.out.size(), 4 * kMaxOutputBytes);

  // And back onto a small mesh.
  r = Run({"reshard", Path("big"), Path("back"), "--mesh", "a=2,b=3"});
  ASSERT_EQ(r.code, 0) << r.err.substr(0, 2000);
  ExpectSameValues(Path("src"), Path("back"));
  EXPECT_LT(MaxChildRssMiB(), kMaxChildMiB);
}

TEST_F(CliReshardTest, SixteenMillionDevicesOnTwoRanks) {
  ASSERT_TRUE(Save(Path("src"), SmallModel(), CheckpointContents()).ok());
  Result r = MpiRun({"reshard", Path("src"), Path("big"), "--mesh", "x=16777216",
                     "--layout", "kernel=unsharded,x"});
  ASSERT_EQ(r.code, 0) << r.err.substr(0, 2000);
  ExpectShort(r);
  EXPECT_THAT(r.out,
              HasSubstr("(mesh |x=16777216|0-16777215|0-8388607|*CPU) on 2 rank(s)"));
  ExpectSameValues(Path("src"), Path("big"));
  // A 2-D mesh of 2^24 devices, split both ways, then back to a small one.
  r = MpiRun({"reshard", Path("big"), Path("grid"), "--mesh", "x=4096,y=4096", "--layout",
              "kernel=y,x", "--layout", "bias=y", "--layout", "names=x"});
  ASSERT_EQ(r.code, 0) << r.err.substr(0, 2000);
  ExpectShort(r);
  ExpectSameValues(Path("src"), Path("grid"));
  r = MpiRun({"reshard", Path("grid"), Path("back"), "--mesh", "x=2,y=3"});
  ASSERT_EQ(r.code, 0) << r.err.substr(0, 2000);
  ExpectSameValues(Path("src"), Path("back"));
  EXPECT_LT(MaxChildRssMiB(), kMaxChildMiB);
}

}  // namespace
}  // namespace meshckpt
