// Integration tests of the `meshckpt` command-line tool: they run the built
// binary (path in MESHCKPT_BIN) with std::system against checkpoints saved
// here with SaveTensors on a SerialCommunicator over multi-device meshes,
// and check exit codes, text and JSON output. CliReshardTest runs
// `mpiexec -n 2 ... meshckpt reshard` (MESHCKPT_MPIEXEC and friends, set by
// mpi_tests/CMakeLists.txt) and checks the result with CheckpointReader.
// Work files go under MESHCKPT_CLI_WORK (or TEST_TMPDIR, or /tmp).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/checkpoint/reader/checkpoint_reader.h"
#include "meshckpt/checkpoint/state/checkpoint_state.h"
#include "meshckpt/io/fs/fs.h"
#include "meshckpt/tools/format.h"
#include "tests/tools/cli_test_util.h"
#include "tests/tools/mini_json.h"

namespace meshckpt {
namespace {

using ::meshckpt::cli_test::CliReshardTest;
using ::meshckpt::cli_test::CliTest;
using ::meshckpt::cli_test::Numeric;
using ::meshckpt::cli_test::Quote;
using ::meshckpt::cli_test::Result;
using ::meshckpt::cli_test::Save;
using ::meshckpt::cli_test::TestTensor;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

std::string Kernel() { return "model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE"; }
std::string Bias() { return "model/dense/bias/.ATTRIBUTES/VARIABLE_VALUE"; }

std::vector<float> KernelValues() {
  std::vector<float> v;
  for (int i = 0; i < 40 * 50; ++i) v.push_back(10 + i * 0.25f);
  return v;
}

// A small model with every kind of value; `bias_delta` changes bias[2].
std::vector<TestTensor> Model(float bias_delta = 0) {
  std::vector<TestTensor> m;
  m.push_back(Numeric(Kernel(), "model/dense/kernel", DType::kFloat32, {40, 50},
                      {"x", "y"}, KernelValues()));
  m.push_back(Numeric(Bias(), "model/dense/bias", DType::kFloat32, {5}, {"y"},
                      std::vector<float>{0.5f, -1.0f, 2.25f + bias_delta, 3.0f, 4.0f}));
  m.push_back(Numeric("step", "", DType::kInt64, {}, {}, std::vector<int64_t>{42}));
  TestTensor names{"vocab/names",
                   "",
                   DType::kString,
                   {3},
                   {"x"},
                   {},
                   {"alpha", "", std::string("a\0b", 3)}};
  m.push_back(names);
  m.push_back(Numeric("mask", "", DType::kBool, {4}, {"unsharded"},
                      std::vector<uint8_t>{1, 0, 0, 1}));
  m.push_back(Numeric("half", "", DType::kFloat16, {3}, {"y"},
                      std::vector<uint16_t>{0x3C00, 0x2E66, 0xBE00}));
  m.push_back(Numeric("cplx", "", DType::kComplex64, {2}, {"x"},
                      std::vector<float>{1, 2, 1.5f, -0.25f}));
  return m;
}

CheckpointContents ModelOptions(int64_t step = 42) {
  CheckpointContents o;
  o.step = step;
  o.save_counter = 3;
  o.user_metadata = {{"run", "cli-test"}};
  o.object_graph.nodes.resize(2);
  o.object_graph.nodes[0].children.push_back({1, "model"});
  o.object_graph.nodes[1].attributes.push_back({"VARIABLE_VALUE", Kernel()});
  return o;
}

TEST_F(CliTest, HelpAndUsageErrors) {
  Result top = Run({"--help"});
  EXPECT_EQ(top.code, 0);
  for (const char* cmd : {"inspect", "ls", "verify", "reshard", "diff"}) {
    EXPECT_THAT(top.out, HasSubstr(cmd));
    Result help = Run({cmd, "--help"});
    EXPECT_EQ(help.code, 0) << cmd;
    EXPECT_THAT(help.out, HasSubstr(absl::StrCat("meshckpt ", cmd))) << cmd;
    EXPECT_THAT(help.out, HasSubstr("Exit codes:")) << cmd;
    EXPECT_THAT(help.out, HasSubstr("4  data loss")) << cmd;
    Result bad = Run({cmd, "--no-such-flag"});
    EXPECT_EQ(bad.code, 2) << cmd;
    EXPECT_THAT(bad.err, StartsWith(absl::StrCat("meshckpt ", cmd, ": "))) << cmd;
  }
  EXPECT_EQ(Run({}).code, 2);
  EXPECT_EQ(Run({"frobnicate"}).code, 2);
  EXPECT_EQ(Run({"inspect"}).code, 2);
  EXPECT_EQ(Run({"diff", "a"}).code, 2);
  EXPECT_EQ(Run({"diff", "a", "b", "--atol", "-1"}).code, 2);
}

TEST_F(CliTest, InspectListsTensorsAndMetadata) {
  ASSERT_TRUE(Save(Path("ckpt"), Model(), ModelOptions()).ok());
  Result r = Run({"inspect", Path("ckpt")});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  for (const char* want :
       {"step:             42", "save_counter:     3", "tensors:          7", "|x=2,y=3|",
        "run: cli-test", "library version:  meshckpt"}) {
    EXPECT_THAT(r.out, HasSubstr(want));
  }
  // One line per tensor: key, dtype, shape, sharding, bytes, dataset.
  EXPECT_THAT(r.out,
              testing::ContainsRegex(
                  "model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE +float32 +\\[40,50\\] +"
                  "\\[x,y\\] +8000 +model/dense/kernel"));
  EXPECT_THAT(r.out, testing::ContainsRegex("vocab/names +string +\\[3\\] +\\[x\\] +-"));
  EXPECT_THAT(r.out, testing::ContainsRegex("step +int64 +\\[\\] +\\[\\] +8"));
  // A .index path and the directory (its latest checkpoint) work too.
  EXPECT_EQ(Run({"inspect", Path("ckpt.index")}).out, r.out);
  EXPECT_THAT(Run({"inspect", dir_}).out, HasSubstr("step:             42"));
}

TEST_F(CliTest, InspectPrintsValuesLikeNumpy) {
  ASSERT_TRUE(Save(Path("ckpt"), Model(), ModelOptions()).ok());
  // By dataset path; summarised (2000 > 1000 elements), read in boxes.
  Result r = Run({"inspect", Path("ckpt"), "--tensor", "model/dense/kernel"});
  ASSERT_EQ(r.code, 0) << r.err;
  TensorData whole;
  whole.dtype = DType::kFloat32;
  whole.shape = {40, 50};
  const std::vector<float> v = KernelValues();
  whole.bytes.assign(reinterpret_cast<const char*>(v.data()),
                     reinterpret_cast<const char*>(v.data() + v.size()));
  const std::string expected = *format::FormatTensor(whole, whole.shape);
  EXPECT_THAT(expected, StartsWith("[[ 10.    10.25  10.5  ...  21.75  22.    22.25]"));
  EXPECT_EQ(r.out, absl::StrCat("tensor_name:  ", Kernel(),
                                "\ndtype: float32  shape: [40,50]  sharding: [x,y]\n",
                                expected, "\n"));
  // By full key: the same.
  EXPECT_EQ(Run({"inspect", Path("ckpt"), "--tensor", Kernel()}).out, r.out);
  // --threshold -1: everything.
  Result full = Run({"inspect", Path("ckpt"), "--tensor", Kernel(), "--threshold=-1"});
  EXPECT_THAT(full.out, Not(HasSubstr("...")));
  EXPECT_THAT(full.out, HasSubstr(" 509.75]]"));

  Result names =
      Run({"inspect", Path("ckpt"), "--tensor", "vocab/names", "--tensor", "half",
           "--tensor", "mask", "--tensor", "cplx", "--tensor", "step"});
  ASSERT_EQ(names.code, 0) << names.err;
  EXPECT_THAT(names.out, HasSubstr("[b'alpha' b'' b'a\\x00b']"));
  EXPECT_THAT(names.out, HasSubstr("[ 1.   0.1 -1.5]"));
  EXPECT_THAT(names.out, HasSubstr("[ True False False  True]"));
  EXPECT_THAT(names.out, HasSubstr("[     (1+2j) (1.5-0.25j)]"));
  EXPECT_THAT(names.out, HasSubstr("shape: []  sharding: []\n42\n"));

  Result all = Run({"inspect", Path("ckpt"), "--all"});
  ASSERT_EQ(all.code, 0) << all.err;
  for (const TestTensor& t : Model()) {
    EXPECT_THAT(all.out, HasSubstr(absl::StrCat("tensor_name:  ", t.key, "\n")));
  }
}

TEST_F(CliTest, InspectJson) {
  ASSERT_TRUE(Save(Path("ckpt"), Model(), ModelOptions()).ok());
  Result r = Run({"inspect", Path("ckpt"), "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::string error;
  std::optional<Json> doc = ParseJson(r.out, &error);
  ASSERT_TRUE(doc.has_value()) << error << "\n" << r.out;
  EXPECT_EQ((*doc)["step"].number, 42);
  EXPECT_EQ((*doc)["save_counter"].number, 3);
  EXPECT_EQ((*doc)["num_tensors"].number, 7);
  EXPECT_EQ((*doc)["user_metadata"]["run"].string, "cli-test");
  EXPECT_EQ((*doc)["object_graph_nodes"].number, 2);
  EXPECT_THAT((*doc)["mesh"].string, HasSubstr("|x=2,y=3|"));
  EXPECT_THAT(
      (*doc)["time"].string,
      testing::MatchesRegex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z"));
  const Json& tensors = (*doc)["tensors"];
  ASSERT_EQ(tensors.array.size(), 7u);
  for (const Json& t : tensors.array) {
    for (const char* field : {"key", "dataset", "dtype", "shape", "layout",
                              "sharding_specs", "bytes", "num_chunks"}) {
      EXPECT_TRUE(t.Has(field)) << field;
    }
    EXPECT_FALSE(t.Has("values"));
    if (t["key"].string == Kernel()) {
      EXPECT_EQ(t["dataset"].string, "model/dense/kernel");
      EXPECT_EQ(t["dtype"].string, "float32");
      EXPECT_EQ(t["bytes"].number, 8000);
      EXPECT_EQ(t["shape"][1].number, 50);
      EXPECT_EQ(t["sharding_specs"][0].string, "x");
      EXPECT_THAT(t["layout"].string, StartsWith("sharding_specs:x,y, mesh:"));
    }
  }

  // Values: complete, never summarised.
  Result v = Run({"inspect", Path("ckpt"), "--json", "--tensor", "model/dense/kernel",
                  "--tensor", "vocab/names", "--tensor", "cplx"});
  ASSERT_EQ(v.code, 0) << v.err;
  doc = ParseJson(v.out, &error);
  ASSERT_TRUE(doc.has_value()) << error;
  const Json& sel = (*doc)["tensors"];
  ASSERT_EQ(sel.array.size(), 3u);
  const Json& kernel = sel[0]["values"];
  ASSERT_EQ(kernel.array.size(), 40u);
  ASSERT_EQ(kernel[39].array.size(), 50u);
  EXPECT_EQ(kernel[39][49].number, 509.75);
  EXPECT_EQ(kernel[0][1].number, 10.25);
  EXPECT_EQ(sel[1]["string_encoding"].string, "latin-1");
  EXPECT_EQ(sel[1]["values"][2].string, std::string("a\0b", 3));
  EXPECT_EQ(sel[2]["values"][1][1].number, -0.25);
}

TEST_F(CliTest, InspectErrors) {
  ASSERT_TRUE(Save(Path("ckpt"), Model(), ModelOptions()).ok());
  Result missing_tensor = Run({"inspect", Path("ckpt"), "--tensor", "nope"});
  EXPECT_EQ(missing_tensor.code, 3);
  EXPECT_THAT(missing_tensor.err, StartsWith("meshckpt inspect: "));
  EXPECT_THAT(missing_tensor.err, HasSubstr("nope"));
  EXPECT_EQ(missing_tensor.out, "");
  Result missing_ckpt = Run({"inspect", Path("nothing")});
  EXPECT_EQ(missing_ckpt.code, 3);
  EXPECT_THAT(missing_ckpt.err, StartsWith("meshckpt inspect: "));
  // A committed index without its data file: data loss.
  ASSERT_TRUE(RemoveFileIfExists(DataFilePath(Path("ckpt"))).ok());
  EXPECT_EQ(Run({"inspect", Path("ckpt")}).code, 4);
}

TEST_F(CliTest, LsReportsCompleteAndIncomplete) {
  const std::string run = Path("run");
  std::filesystem::create_directories(run);
  // Not in the state file, and older than ckpt-3 (the newest wins).
  ASSERT_TRUE(Save(run + "/extra", Model(), ModelOptions(7)).ok());
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(
        Save(absl::StrCat(run, "/ckpt-", i), Model(), ModelOptions(i * 100)).ok());
  }
  CheckpointState state;
  state.model_checkpoint_path = "ckpt-3";
  for (const char* p : {"ckpt-0", "ckpt-1", "ckpt-2", "ckpt-3"}) {
    state.all_model_checkpoint_paths.push_back(p);
    state.all_model_checkpoint_timestamps.push_back(1000);
  }
  ASSERT_TRUE(WriteCheckpointState(run, state).ok());
  ASSERT_TRUE(RemoveFileIfExists(IndexFilePath(run + "/ckpt-1")).ok());
  std::filesystem::resize_file(
      DataFilePath(run + "/ckpt-2"),
      std::filesystem::file_size(DataFilePath(run + "/ckpt-2")) - 100);

  Result r = Run({"ls", run, "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::string error;
  std::optional<Json> doc = ParseJson(r.out, &error);
  ASSERT_TRUE(doc.has_value()) << error << "\n" << r.out;
  EXPECT_EQ((*doc)["latest"].string, "ckpt-3");
  std::map<std::string, Json> by_name;
  for (const Json& c : (*doc)["checkpoints"].array) by_name[c["name"].string] = c;
  ASSERT_EQ(by_name.size(), 5u) << r.out;
  EXPECT_FALSE(by_name["ckpt-0"]["complete"].boolean);
  EXPECT_EQ(by_name["ckpt-0"]["status"].string, "incomplete");
  EXPECT_FALSE(by_name["ckpt-1"]["complete"].boolean);
  EXPECT_FALSE(by_name["ckpt-2"]["complete"].boolean);
  EXPECT_THAT(by_name["ckpt-2"]["detail"].string, HasSubstr("data file has"));
  EXPECT_EQ(by_name["ckpt-2"]["step"].number, 200);
  EXPECT_TRUE(by_name["ckpt-3"]["complete"].boolean);
  EXPECT_TRUE(by_name["ckpt-3"]["latest"].boolean);
  EXPECT_EQ(by_name["ckpt-3"]["step"].number, 300);
  EXPECT_GT(by_name["ckpt-3"]["bytes"].number, 8000);
  EXPECT_TRUE(by_name["extra"]["complete"].boolean);
  EXPECT_FALSE(by_name["extra"]["latest"].boolean);

  Result text = Run({"ls", run});
  ASSERT_EQ(text.code, 0) << text.err;
  for (absl::string_view line : absl::StrSplit(text.out, '\n')) {
    if (absl::EndsWith(line, "  ckpt-3")) {
      const std::string l(line);
      EXPECT_THAT(l, StartsWith("*"));
      EXPECT_THAT(l, HasSubstr("complete"));
      EXPECT_THAT(l, testing::ContainsRegex(
                         "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z"));
      EXPECT_THAT(l, testing::ContainsRegex("[0-9.]+ KiB"));
    }
    if (absl::EndsWith(line, "  ckpt-2")) {
      EXPECT_THAT(std::string(line), HasSubstr("incomplete"));
    }
  }
  EXPECT_THAT(text.out, HasSubstr("5 checkpoint(s), 2 complete"));

  EXPECT_EQ(Run({"ls", Path("no-such-dir")}).code, 3);
  std::filesystem::create_directories(Path("empty"));
  Result empty = Run({"ls", Path("empty")});
  EXPECT_EQ(empty.code, 3);
  EXPECT_THAT(empty.err, StartsWith("meshckpt ls: "));
}

TEST_F(CliTest, VerifyFindsDamage) {
  ASSERT_TRUE(Save(Path("ckpt"), Model(), ModelOptions()).ok());
  Result ok = Run({"verify", Path("ckpt")});
  EXPECT_EQ(ok.code, 0) << ok.err;
  EXPECT_THAT(ok.out, HasSubstr(": OK"));

  // Flip a byte inside the kernel's data: elements 3..5 are 10.75, 11, 11.25.
  std::string data = ReadFileBytes(DataFilePath(Path("ckpt")));
  const float needle[] = {10.75f, 11.0f, 11.25f};
  const std::string pattern(reinterpret_cast<const char*>(needle), sizeof(needle));
  const size_t at = data.find(pattern);
  ASSERT_NE(at, std::string::npos);
  ASSERT_EQ(data.find(pattern, at + 1), std::string::npos);
  data[at + 5] ^= 0x40;
  std::ofstream(DataFilePath(Path("ckpt")), std::ios::binary | std::ios::trunc) << data;

  Result bad = Run({"verify", Path("ckpt")});
  EXPECT_EQ(bad.code, 4);
  EXPECT_THAT(bad.out, HasSubstr(absl::StrCat("damaged tensor: ", Kernel())));
  EXPECT_THAT(bad.out, HasSubstr("DAMAGED (1 problem(s) in 1 of 7 tensors)"));
  EXPECT_THAT(bad.err, StartsWith("meshckpt verify: "));
  // Reading the damaged tensor fails too; the others still read.
  EXPECT_EQ(Run({"inspect", Path("ckpt"), "--tensor", Kernel()}).code, 4);
  EXPECT_EQ(Run({"inspect", Path("ckpt"), "--tensor", Bias()}).code, 0);

  EXPECT_EQ(Run({"verify", Path("nothing")}).code, 3);
  std::filesystem::resize_file(DataFilePath(Path("ckpt")), 100);
  Result truncated = Run({"verify", Path("ckpt")});
  EXPECT_EQ(truncated.code, 4);
  EXPECT_THAT(truncated.err, HasSubstr("bytes but was committed with"));
}

TEST_F(CliTest, DiffReportsDifferences) {
  ASSERT_TRUE(Save(Path("a"), Model(), ModelOptions()).ok());
  // Same values on another mesh and layout: no differences.
  std::vector<TestTensor> same = Model();
  for (TestTensor& t : same) {
    for (std::string& s : t.specs) s = s == "x" ? "unsharded" : s;
  }
  ASSERT_TRUE(Save(Path("same"), same, ModelOptions(), {{"y", 3}}).ok());
  Result none = Run({"diff", Path("a"), Path("same"), "--exit-code"});
  EXPECT_EQ(none.code, 0) << none.err;
  EXPECT_THAT(none.out, HasSubstr("no differences (7 tensors compared)"));

  std::vector<TestTensor> b = Model(/*bias_delta=*/0.75f);
  b.erase(b.begin() + 4);  // mask
  b[2] = Numeric("step", "", DType::kInt32, {}, {}, std::vector<int32_t>{42});
  b[3].strings[0] = "beta";
  b.push_back(
      Numeric("only_b", "", DType::kInt32, {2}, {"x"}, std::vector<int32_t>{1, 2}));
  ASSERT_TRUE(Save(Path("b"), b, ModelOptions()).ok());

  Result r = Run({"diff", Path("a"), Path("b")});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("only in A: mask (bool [4])"));
  EXPECT_THAT(r.out, HasSubstr("only in B: only_b (int32 [2])"));
  EXPECT_THAT(r.out, HasSubstr("dtype differs: step: int64 in A, int32 in B"));
  EXPECT_THAT(r.out,
              HasSubstr(absl::StrCat("values differ: ", Bias(),
                                     ": 1 of 5 elements differ, max abs diff 0.75\n")));
  EXPECT_THAT(r.out, HasSubstr("values differ: vocab/names: 1 of 3 elements differ\n"));
  EXPECT_THAT(r.out, Not(HasSubstr(Kernel())));
  EXPECT_EQ(Run({"diff", Path("a"), Path("b"), "--exit-code"}).code, 1);
  Result tolerant = Run({"diff", Path("a"), Path("b"), "--atol", "1"});
  EXPECT_THAT(tolerant.out, Not(HasSubstr(Bias())));
  EXPECT_THAT(tolerant.out, HasSubstr("only in A: mask"));
  Result missing = Run({"diff", Path("a"), Path("nothing")});
  EXPECT_EQ(missing.code, 3);
  EXPECT_THAT(missing.err, StartsWith("meshckpt diff: "));
}

std::vector<std::string> SpecsOf(const VariableInfo& v) {
  return Layout::FromString(v.layout).value().sharding_specs();
}

TEST_F(CliReshardTest, TwoRanksNewMeshAndLayouts) {
  ASSERT_TRUE(Save(Path("src"), Model(), ModelOptions()).ok());
  Result r = MpiRun({"reshard", Path("src"), Path("dst"), "--mesh", "z=4", "--layout",
                     "model/dense/kernel=unsharded,z", "--layout", "cplx=z"});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("resharded 7 tensor(s)"));
  EXPECT_THAT(r.out, HasSubstr("on 2 rank(s)"));

  auto src = CheckpointReader::Open(Path("src")).value();
  auto dst = CheckpointReader::Open(Path("dst")).value();
  std::map<std::string, std::vector<std::string>> want_specs = {
      {Kernel(), {"unsharded", "z"}},
      {Bias(), {"unsharded"}},
      {"step", {}},
      {"vocab/names", {"unsharded"}},
      {"mask", {"unsharded"}},
      {"half", {"unsharded"}},
      {"cplx", {"z"}}};
  ASSERT_EQ(dst->ListVariables().size(), 7u);
  for (const VariableInfo& v : dst->ListVariables()) {
    SCOPED_TRACE(v.key);
    const VariableInfo s = src->GetVariableInfo(v.key).value();
    EXPECT_EQ(v.dataset, s.dataset);
    EXPECT_EQ(v.dtype, s.dtype);
    EXPECT_EQ(v.shape, s.shape);
    EXPECT_EQ(SpecsOf(v), want_specs[v.key]);
    EXPECT_THAT(v.layout, HasSubstr("|z=4|"));
    TensorData a = src->ReadTensor(v.key).value(), b = dst->ReadTensor(v.key).value();
    EXPECT_EQ(a.bytes, b.bytes);
    EXPECT_EQ(a.strings, b.strings);
  }
  EXPECT_EQ(dst->index().step, 42);
  EXPECT_EQ(dst->index().save_counter, 3);
  EXPECT_EQ(dst->index().user_metadata.at("run"), "cli-test");
  EXPECT_EQ(dst->index().object_graph, src->index().object_graph);
  EXPECT_EQ(Run({"verify", Path("dst")}).code, 0);
  EXPECT_EQ(Run({"diff", Path("src"), Path("dst"), "--exit-code"}).code, 0);

  // Saved specs kept where the new mesh has the dimension.
  r = MpiRun({"reshard", Path("dst"), Path("back"), "--mesh", "x=2,w=2"});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  auto back = CheckpointReader::Open(Path("back")).value();
  EXPECT_EQ(SpecsOf(back->GetVariableInfo(Kernel()).value()),
            (std::vector<std::string>{"unsharded", "unsharded"}));
  r = MpiRun({"reshard", Path("src"), Path("keep"), "--mesh", "x=2,w=2"});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  auto keep = CheckpointReader::Open(Path("keep")).value();
  EXPECT_EQ(SpecsOf(keep->GetVariableInfo(Kernel()).value()),
            (std::vector<std::string>{"x", "unsharded"}));
  EXPECT_EQ(SpecsOf(keep->GetVariableInfo("vocab/names").value()),
            (std::vector<std::string>{"x"}));
  EXPECT_EQ(Run({"diff", Path("src"), Path("keep"), "--exit-code"}).code, 0);
}

TEST_F(CliReshardTest, Errors) {
  ASSERT_TRUE(Save(Path("src"), Model(), ModelOptions()).ok());
  // 3 devices do not divide among 2 ranks.
  Result r = MpiRun({"reshard", Path("src"), Path("dst"), "--mesh", "z=3"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("meshckpt reshard: "));
  EXPECT_EQ(
      MpiRun({"reshard", Path("src"), Path("dst"), "--mesh", "z=2", "--layout", "nope=z"})
          .code,
      3);
  EXPECT_EQ(MpiRun({"reshard", Path("src"), Path("dst"), "--mesh", "z=2", "--layout",
                    "model/dense/kernel=z"})
                .code,
            2);  // One spec for two dims.
  EXPECT_EQ(MpiRun({"reshard", Path("nothing"), Path("dst"), "--mesh", "z=2"}).code, 3);
  // DST exists: refused unless --force.
  EXPECT_EQ(MpiRun({"reshard", Path("src"), Path("src"), "--mesh", "z=2"}).code, 5);
  ASSERT_EQ(MpiRun({"reshard", Path("src"), Path("dst"), "--mesh", "z=2"}).code, 0);
  EXPECT_EQ(
      MpiRun({"reshard", Path("src"), Path("dst"), "--mesh", "z=2", "--force"}).code, 0);
  // One rank, no mpiexec (singleton MPI).
  Result single = Run({"reshard", Path("src"), Path("single"), "--mesh", "a=2,b=2"});
  EXPECT_EQ(single.code, 0) << single.err;
  EXPECT_EQ(Run({"diff", Path("src"), Path("single"), "--exit-code"}).code, 0);
}

}  // namespace
}  // namespace meshckpt
