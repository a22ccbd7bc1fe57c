// `meshckpt reshard` streaming in bounded memory, under mpiexec with 2
// ranks: a small --max-memory cuts tensors into many chunks and changes no
// byte (`meshckpt diff`); --tensor prunes the object graph and collections;
// --cast rounds to nearest even and is recorded; bad flags are refused.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/base/float_cast.h"
#include "meshckpt/checkpoint/reader/checkpoint_reader.h"
#include "meshckpt/checkpoint/saver/saver.h"
#include "meshckpt/checkpoint/state/checkpoint_state.h"
#include "tests/tools/cli_test_util.h"

namespace meshckpt {
namespace {

using ::meshckpt::cli_test::CliReshardTest;
using ::meshckpt::cli_test::Numeric;
using ::meshckpt::cli_test::Quote;
using ::meshckpt::cli_test::Result;
using ::meshckpt::cli_test::Save;
using ::meshckpt::cli_test::TestTensor;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr int64_t kRows = 1024, kCols = 4096;  // 16 MiB of float32.

std::vector<float> BigValues() {
  std::vector<float> v(kRows * kCols);
  for (size_t i = 0; i < v.size(); ++i) v[i] = 1.0f / static_cast<float>(i % 9973 + 1);
  return v;
}

std::vector<TestTensor> Model() {
  return {Numeric("big", "", DType::kFloat32, {kRows, kCols}, {"x", "unsharded"},
                  BigValues()),
          Numeric("small", "", DType::kFloat32, {3}, {"unsharded"},
                  std::vector<float>{1, 2, 3}),
          Numeric("step", "", DType::kInt64, {}, {}, std::vector<int64_t>{9}),
          TestTensor{"names", "", DType::kString, {3}, {"x"}, {}, {"a", "bb", "ccc"}}};
}

CheckpointContents Contents() {
  CheckpointContents c;
  c.step = 9;
  c.user_metadata = {{"collection:trainable", EncodeCollection({"big", "small"})},
                     {"run", "stream"}};
  c.object_graph.nodes.resize(3);
  c.object_graph.nodes[0].children = {{1, "big"}, {2, "small"}};
  c.object_graph.nodes[1].attributes = {{"VARIABLE_VALUE", "big"}};
  c.object_graph.nodes[2].attributes = {{"VARIABLE_VALUE", "small"}};
  return c;
}

TEST_F(CliReshardTest, SmallBudgetManyChunksSameBytes) {
  ASSERT_TRUE(Save(Path("src"), Model(), Contents()).ok());
  Result r = MpiRun({"reshard", Path("src"), Path("dst"), "--mesh", "z=4", "--layout",
                     "big=unsharded,z", "--max-memory", "8MiB", "--quiet"});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("resharded 4 tensor(s)"));
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(Run({"diff", Path("src"), Path("dst"), "--exit-code"}).code, 0);
  EXPECT_EQ(Run({"verify", Path("dst")}).code, 0);
  auto dst = CheckpointReader::Open(Path("dst")).value();
  // 8 MiB leaves 2 MiB of staging: 16 MiB comes in at least 8 chunks.
  EXPECT_GE(dst->GetVariableInfo("big")->num_chunks, 8);
  EXPECT_EQ(dst->index().object_graph, Contents().object_graph);
  EXPECT_EQ(dst->index().user_metadata, Contents().user_metadata);
}

TEST_F(CliReshardTest, SubsetAndCast) {
  ASSERT_TRUE(Save(Path("src"), Model(), Contents()).ok());
  Result r =
      MpiRun({"reshard", Path("src"), Path("bf16"), "--mesh", "z=2", "--tensor", "big",
              "--tensor", "/step", "--cast", "big=bfloat16", "--max-memory", "8M"});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("resharded 2 tensor(s)"));
  EXPECT_THAT(r.out, HasSubstr("1 cast"));
  auto dst = CheckpointReader::Open(Path("bf16")).value();
  ASSERT_EQ(dst->ListVariables().size(), 2u);
  EXPECT_EQ(dst->GetVariableInfo("big")->dtype, DType::kBfloat16);
  TensorData big = dst->ReadTensor("big").value();
  const std::vector<float> want = BigValues();
  ASSERT_EQ(big.bytes.size(), want.size() * 2);
  for (size_t i = 0; i < want.size(); ++i) {
    uint16_t got;
    std::memcpy(&got, big.bytes.data() + 2 * i, 2);
    ASSERT_EQ(got, DoubleToBfloat16Bits(want[i])) << i;
  }
  const IndexRecord& ix = dst->index();
  EXPECT_EQ(ix.user_metadata.at("meshckpt.cast:big"),
            "float32 -> bfloat16, round to nearest even");
  EXPECT_EQ(ix.user_metadata.at("collection:trainable"), EncodeCollection({"big"}));
  EXPECT_EQ(ix.user_metadata.at("run"), "stream");
  ASSERT_EQ(ix.object_graph.nodes.size(), 2u);
  EXPECT_EQ(ix.object_graph.nodes[0].children,
            (std::vector<ObjectGraph::Child>{{1, "big"}}));
  EXPECT_EQ(ix.object_graph.nodes[1].attributes,
            (std::vector<ObjectGraph::Attribute>{{"VARIABLE_VALUE", "big"}}));
  EXPECT_EQ(Run({"verify", Path("bf16")}).code, 0);
}

// Under mpiexec a rank's stderr is a pipe; what the user sees is the
// launcher's. script(1) gives the launcher a terminal.
TEST_F(CliReshardTest, ProgressOfAllRanksOnATerminalUnlessQuiet) {
  if (Shell("command -v script").code != 0) GTEST_SKIP() << "no script(1)";
  ASSERT_TRUE(Save(Path("src"), Model(), Contents()).ok());
  auto on_terminal = [&](const std::string& extra) {
    std::string cmd = launcher_;
    for (const std::string& a :
         {std::string("reshard"), Path("src"), Path("dst"), std::string("--mesh"),
          std::string("z=2"), std::string("--force"), std::string("--max-memory"),
          std::string("8MiB")}) {
      absl::StrAppend(&cmd, " ", Quote(a));
    }
    absl::StrAppend(&cmd, extra);
    return Shell(absl::StrCat("script -qec ", Quote(cmd), " /dev/null"));
  };
  Result r = on_terminal("");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("reshard (all ranks): "));
  EXPECT_THAT(r.out, HasSubstr("16.0 MiB / 16.0 MiB (100%), "));
  EXPECT_THAT(r.out, HasSubstr("/s"));
  EXPECT_THAT(r.out, HasSubstr("resharded 4 tensor(s)"));
  r = on_terminal(" --quiet");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, Not(HasSubstr("all ranks")));
  EXPECT_THAT(
      MpiRun({"reshard", Path("src"), Path("dst"), "--mesh", "z=2", "--force"}).err,
      Not(HasSubstr("all ranks")));
}

TEST_F(CliReshardTest, RefusesBadStreamingFlags) {
  ASSERT_TRUE(Save(Path("src"), Model(), Contents()).ok());
  auto code = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"reshard", Path("src"), Path("dst"), "--mesh",
                                     "z=2"};
    args.insert(args.end(), extra.begin(), extra.end());
    return MpiRun(args).code;
  };
  EXPECT_EQ(code({"--max-memory", "1MiB"}), 2);
  EXPECT_EQ(code({"--max-memory", "lots"}), 2);
  EXPECT_EQ(code({"--cast", "step=bfloat16"}), 2);  // int64 is no float.
  EXPECT_EQ(code({"--cast", "big=float7"}), 2);
  EXPECT_EQ(code({"--cast", "nope=float16"}), 3);
  EXPECT_EQ(code({"--tensor", "nope"}), 3);
  EXPECT_EQ(code({"--tensor", "small", "--layout", "big=z,unsharded"}), 2);
  EXPECT_EQ(code({"--tensor", "small", "--cast", "big=float16"}), 2);
  EXPECT_FALSE(CheckpointExists(Path("dst")));
}

}  // namespace
}  // namespace meshckpt
