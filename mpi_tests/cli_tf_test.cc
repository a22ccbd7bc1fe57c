// The `meshckpt` tool on TensorFlow checkpoints (the real ones in
// ../shared): inspect says the format and data files, verify checks every
// CRC32C and finds a flipped byte, diff compares across formats, V1 is
// refused, and `reshard` under mpiexec rewrites one as ours.
#include <filesystem>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/tools/cli_test_util.h"

namespace meshckpt {
namespace cli_test {
namespace {

using ::testing::HasSubstr;

std::string Tf(const std::string& rel) {
  return std::string(MESHCKPT_TF_TESTDATA) + "/" + rel;
}

using CliTfTest = CliTest;

TEST_F(CliTfTest, InspectSaysTensorFlowAndCountsDataFiles) {
  Result r = Run({"inspect", Tf("tf_tftrt2_2shards/variables")});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out,
              HasSubstr("format:           TensorFlow TensorBundle V2, 2 data file(s)"));
  EXPECT_THAT(r.out, HasSubstr("v/.ATTRIBUTES/VARIABLE_VALUE"));
  EXPECT_THAT(r.out, HasSubstr("object graph:     4 node(s)"));
  r = Run({"inspect", Tf("serving_half_plus_two_cpu/variables"), "--tensor", "b"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("tensor_name:  b"));
  EXPECT_THAT(r.out, HasSubstr("2"));
}

TEST_F(CliTfTest, VerifyEveryRealCheckpoint) {
  for (const char* prefix :
       {"serving_counter/variables", "serving_half_plus_two_cpu/variables",
        "serving_half_plus_two_tf2_cpu/variables", "tf_old_string_tensors/foo",
        "tf_tftrt2_2shards/variables", "tf_contrib_half_plus_two_ckpt_v2/export"}) {
    Result r = Run({"verify", Tf(prefix)});
    EXPECT_EQ(r.code, 0) << prefix << ": " << r.out << r.err;
    EXPECT_THAT(r.out, HasSubstr("every entry's CRC32C")) << prefix;
  }
}

TEST_F(CliTfTest, VerifyFindsAFlippedByte) {
  namespace fs = std::filesystem;
  for (const auto& e : fs::directory_iterator(Tf("serving_half_plus_two_cpu"))) {
    fs::copy_file(e.path(), Path(e.path().filename().string()));
    fs::permissions(Path(e.path().filename().string()),
                    fs::perms::owner_read | fs::perms::owner_write);
  }
  const std::string data = Path("variables.data-00000-of-00001");
  std::string bytes = ReadFileBytes(data);
  ASSERT_GE(bytes.size(), 5u);
  bytes[4] ^= 0x01;  // The second float.
  WriteFileBytes(data, bytes);
  Result r = Run({"verify", Path("variables")});
  EXPECT_EQ(r.code, 4) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("DAMAGED"));
  EXPECT_THAT(r.out, HasSubstr("variables.data-00000-of-00001"));
}

TEST_F(CliTfTest, DiffAcrossCheckpoints) {
  Result r = Run({"diff", Tf("serving_half_plus_two_cpu/variables"),
                  Tf("tf_contrib_half_plus_two_ckpt_v2/export")});
  EXPECT_THAT(r.out, HasSubstr("only in A: a2"));
  EXPECT_THAT(r.out, HasSubstr("2 tensors of equal dtype and shape compared"));
  r = Run({"diff", Tf("tf_old_string_tensors/foo"), Tf("tf_old_string_tensors/foo")});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("no differences (4 tensors compared)"));
}

TEST_F(CliTfTest, RefusesV1) {
  Result r = Run({"inspect", Tf("serving_bad_half_plus_two_v1/export")});
  EXPECT_NE(r.code, 0);
  EXPECT_THAT(r.err, HasSubstr("V1 (TensorSlice)"));
}

using CliTfReshardTest = CliReshardTest;

TEST_F(CliTfReshardTest, TensorFlowToOurs) {
  Result r = MpiRun({"reshard", Tf("tf_old_string_tensors/foo"), Path("out"), "--mesh",
                     "x=2", "--layout", "floats=x,unsharded"});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  r = Run({"diff", Tf("tf_old_string_tensors/foo"), Path("out")});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("no differences (4 tensors compared)"));
  r = Run({"verify", Path("out")});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
}

}  // namespace
}  // namespace cli_test
}  // namespace meshckpt
