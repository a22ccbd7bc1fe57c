// Integration tests of `meshckpt convert`: the built binary (MESHCKPT_BIN)
// converts a checkpoint saved here by DTensorCheckpoint into a TensorFlow
// bundle, which BundleReader then checks key by key: dtype, shape, value bit
// for bit, every CRC32C, the header, the object graph and the save counter.
// ConvertFromTensorFlow.* runs TensorFlow -> meshckpt -> TensorFlow on the
// shared real TF checkpoints (MESHCKPT_TF_TESTDATA); it needs the reshard
// engine to open TensorFlow sources.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/checkpoint/engine/tensorflow_bridge.h"
#include "meshckpt/checkpoint/object/dtensor_checkpoint.h"
#include "meshckpt/checkpoint/object/dvariable.h"
#include "meshckpt/checkpoint/object/trackable.h"
#include "meshckpt/checkpoint/reader/checkpoint_reader.h"
#include "meshckpt/comm/communicator.h"
#include "meshckpt/tfbundle/bundle_reader.h"
#include "meshckpt/tfbundle/object_graph.h"
#include "tests/file_bytes.h"
#include "tests/tools/cli_test_util.h"
#include "tests/tools/mini_json.h"

namespace meshckpt {
namespace {

using ::meshckpt::cli_test::CliTest;
using ::meshckpt::cli_test::GlobalIndex;
using ::meshckpt::cli_test::Numeric;
using ::meshckpt::cli_test::Result;
using ::meshckpt::cli_test::Save;
using ::meshckpt::cli_test::TestTensor;
using ::testing::HasSubstr;

// Expected contents of a variable: row-major bytes, or strings.
struct Expected {
  DType dtype;
  std::vector<int64_t> shape;
  std::string bytes;
  std::vector<std::string> strings;
};

template <typename T>
std::string Bytes(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

// Saves a model of every kind of value with DTensorCheckpoint on one rank
// holding a 2x3 mesh; returns the checkpoint prefix and fills `expected`
// (by checkpoint key).
std::string SaveModel(const std::string& dir, std::map<std::string, Expected>* expected) {
  std::unique_ptr<Communicator> comm = SerialCommunicator();
  Mesh mesh = Mesh::Create({{"x", 2}, {"y", 3}}, 0, 1).value();
  Module model;
  Module* dense = model.AddModule("dense").value();
  struct Var {
    Module* parent;
    std::string name;
    std::vector<std::string> specs;
    Expected value;
  };
  std::vector<float> kernel;
  for (int i = 0; i < 8 * 6; ++i) kernel.push_back(0.5f + i * 0.25f);
  std::vector<Var> vars = {
      {dense, "kernel", {"x", "y"}, {DType::kFloat32, {8, 6}, Bytes(kernel), {}}},
      {dense,
       "bias",
       {"y"},
       {DType::kFloat32,
        {6},
        Bytes(std::vector<float>{-1, 0.125f, 3, -0.0f, 1e-30f, 7}),
        {}}},
      {&model,
       "ids",
       {"x"},
       {DType::kInt64, {4}, Bytes(std::vector<int64_t>{1, -2, int64_t{1} << 40, 7}), {}}},
      {&model,
       "mask",
       {"unsharded"},
       {DType::kBool, {5}, Bytes(std::vector<uint8_t>{1, 0, 0, 1, 1}), {}}},
      {&model,
       "bf",
       {"x", "unsharded"},
       {DType::kBfloat16,
        {4, 2},
        Bytes(std::vector<uint16_t>{0x3F80, 0x4000, 0xC040, 0x0001, 0x7F80, 0xFFC0, 0,
                                    0x8000}),
        {}}},
      {&model,
       "half",
       {"y"},
       {DType::kFloat16, {3}, Bytes(std::vector<uint16_t>{0x3C00, 0x2E66, 0xBE00}), {}}},
      {&model,
       "cplx",
       {"x"},
       {DType::kComplex64, {2}, Bytes(std::vector<float>{1, 2, 1.5f, -0.25f}), {}}},
      {&model,
       "names",
       {"unsharded"},
       {DType::kString, {3}, "", {"alpha", "", std::string("a\0b", 3)}}},
      {&model, "lr", {}, {DType::kFloat32, {}, Bytes(std::vector<float>{0.001f}), {}}},
  };
  for (const Var& v : vars) {
    Layout layout = Layout::Create(v.specs, mesh).value();
    DVariable* var =
        v.parent->AddVariable(v.name, v.value.dtype, v.value.shape, layout).value();
    const int64_t esize = DTypeSize(v.value.dtype);
    for (int64_t d : mesh.local_device_ids()) {
      const Box box = var->DeviceBox(d);
      for (int64_t i = 0; i < box.num_elements(); ++i) {
        const int64_t g = GlobalIndex(box, v.value.shape, i);
        if (v.value.dtype == DType::kString) {
          var->strings(d)[i] = v.value.strings[g];
        } else {
          std::memcpy(var->mutable_bytes(d).data() + i * esize,
                      v.value.bytes.data() + g * esize, esize);
        }
      }
    }
    const std::string path = v.parent == dense ? "model/dense/" + v.name
                                               : "model/" + v.name;
    (*expected)[path + "/.ATTRIBUTES/VARIABLE_VALUE"] = v.value;
  }
  std::unique_ptr<DTensorCheckpoint> ckpt =
      DTensorCheckpoint::Create(comm.get(), mesh, {{"model", &model}}).value();
  (*expected)["save_counter/.ATTRIBUTES/VARIABLE_VALUE"] = {
      DType::kInt64, {}, Bytes(std::vector<int64_t>{1}), {}};
  return ckpt->Save(dir + "/ckpt").value();
}

// Every entry of `reader` is readable and passes its CRC32C.
void ExpectAllVerify(const tf::BundleReader& reader) {
  std::vector<std::string> skipped;
  absl::Status s = reader.VerifyAll(&skipped);
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_TRUE(skipped.empty());
  for (const tf::BundleEntry& e : reader.entries()) {
    EXPECT_TRUE(reader.VerifyEntry(e.key()).ok()) << e.key();
  }
}

TEST_F(CliTest, ConvertToTensorFlowKeepsEveryKeyAndValue) {
  std::map<std::string, Expected> expected;
  const std::string src = SaveModel(dir_, &expected);
  std::unique_ptr<CheckpointReader> ours = CheckpointReader::Open(src).value();
  std::filesystem::create_directories(Path("tf"));

  // A 16-byte buffer cuts every tensor into pieces; the default reads each
  // whole. Both write the same files.
  Result r = Run({"convert", src, Path("tf/small"), "--buffer-bytes", "16"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("converted 10 tensor(s)"));
  EXPECT_THAT(r.out, HasSubstr("with its object graph"));
  ASSERT_EQ(Run({"convert", src, Path("tf/whole")}).code, 0);
  EXPECT_EQ(ReadFileBytes(Path("tf/small.data-00000-of-00001")),
            ReadFileBytes(Path("tf/whole.data-00000-of-00001")));
  EXPECT_EQ(ReadFileBytes(Path("tf/small.index")), ReadFileBytes(Path("tf/whole.index")));
  EXPECT_FALSE(std::filesystem::exists(Path("tf/small.h5")));

  absl::StatusOr<std::unique_ptr<tf::BundleReader>> tf_reader =
      tf::BundleReader::Open(Path("tf/small"));
  ASSERT_TRUE(tf_reader.ok()) << tf_reader.status();
  const tf::BundleReader& b = **tf_reader;
  EXPECT_EQ(b.header().num_shards, 1);
  EXPECT_FALSE(b.header().big_endian);
  EXPECT_EQ(b.header().producer, tf::kTensorBundleVersion);
  EXPECT_EQ(b.header().min_consumer, 0);
  ExpectAllVerify(b);

  // Exactly our keys plus the object graph.
  std::vector<std::string> keys;
  for (const tf::BundleEntry& e : b.entries()) keys.push_back(e.key());
  std::vector<std::string> want = {tf::kObjectGraphKey};
  for (const VariableInfo& v : ours->ListVariables()) want.push_back(v.key);
  std::sort(want.begin(), want.end());
  EXPECT_EQ(keys, want);
  ASSERT_EQ(expected.size() + 1, keys.size());
  for (const auto& [key, value] : expected) {
    SCOPED_TRACE(key);
    const tf::BundleEntry* e = b.Find(key);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->dtype_value(), static_cast<int>(value.dtype));
    EXPECT_EQ(e->shape(), value.shape);
    EXPECT_TRUE(e->slices().empty());
    absl::StatusOr<tf::TensorValue> t = b.ReadTensor(key);
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_EQ(t->shape(), value.shape);
    if (value.dtype == DType::kString) {
      EXPECT_EQ(t->strings(), value.strings);
    } else {
      EXPECT_EQ(t->bytes(), value.bytes);  // bit for bit
    }
  }

  // The object graph maps the same paths to the same keys as ours.
  absl::StatusOr<tf::ObjectGraph> graph = tf::ReadObjectGraph(b);
  ASSERT_TRUE(graph.ok()) << graph.status();
  EXPECT_TRUE(internal::ObjectGraphFromTf(*graph) == ours->index().object_graph);
  std::map<std::string, std::string> by_path;
  for (const auto& [path, attr] : graph->AttributesByPath()) {
    EXPECT_EQ(attr.name, "VARIABLE_VALUE") << path;
    by_path[path] = attr.checkpoint_key;
  }
  ASSERT_EQ(by_path.size(), expected.size());
  for (const auto& [key, value] : expected) {
    const std::string path =
        key.substr(0, key.size() - strlen("/.ATTRIBUTES/VARIABLE_VALUE"));
    EXPECT_EQ(by_path[path], key);
  }
  EXPECT_EQ(by_path["save_counter"], "save_counter/.ATTRIBUTES/VARIABLE_VALUE");
  EXPECT_EQ(by_path["model/dense/kernel"],
            "model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE");
}

// A name-based checkpoint (Saver-style keys, no object graph): the keys stay
// TF1 names, no object graph is made, and what a bundle cannot hold is named.
TEST_F(CliTest, ConvertNameBasedCheckpointAndSayWhatIsLeftOut) {
  CheckpointContents contents;
  contents.step = 1234;
  contents.user_metadata["collection:train_op"] = "1,YQ==";
  std::vector<TestTensor> tensors = {
      Numeric("dense/kernel", "dense/kernel", DType::kFloat64, {3, 4}, {"x", "unsharded"},
              std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}),
      Numeric("global_step", "global_step", DType::kInt64, {}, {},
              std::vector<int64_t>{1234}),
      Numeric("empty", "empty", DType::kInt32, {0, 3}, {"unsharded", "y"},
              std::vector<int32_t>{}),
  };
  ASSERT_TRUE(Save(Path("model-1234"), tensors, contents, {{"x", 3}, {"y", 3}}).ok());
  std::filesystem::create_directories(Path("tf"));
  Result r = Run({"convert", Path("model-1234.index"), Path("tf/model-1234")});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("name-based"));
  EXPECT_THAT(r.out, HasSubstr("step 1234"));
  EXPECT_THAT(r.out, HasSubstr("user metadata 'collection:train_op'"));

  std::unique_ptr<tf::BundleReader> b =
      tf::BundleReader::Open(Path("tf/model-1234")).value();
  ExpectAllVerify(*b);
  ASSERT_EQ(b->entries().size(), 3u);
  EXPECT_EQ(b->Find(tf::kObjectGraphKey), nullptr);
  for (const TestTensor& t : tensors) {
    SCOPED_TRACE(t.key);
    absl::StatusOr<tf::TensorValue> v = b->ReadTensor(t.key);
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_EQ(static_cast<int>(v->dtype()), static_cast<int>(t.dtype));
    EXPECT_EQ(v->shape(), t.shape);
    EXPECT_EQ(v->bytes(), std::string(t.bytes.begin(), t.bytes.end()));
  }
}

TEST_F(CliTest, ConvertErrors) {
  std::map<std::string, Expected> expected;
  const std::string src = SaveModel(dir_, &expected);

  Result missing = Run({"convert", Path("nope"), Path("out")});
  EXPECT_EQ(missing.code, 3) << missing.err;
  EXPECT_THAT(missing.err, HasSubstr("meshckpt convert: "));
  EXPECT_FALSE(std::filesystem::exists(Path("out.index")));

  ASSERT_EQ(Run({"convert", src, Path("out")}).code, 0);
  Result exists = Run({"convert", src, Path("out")});
  EXPECT_EQ(exists.code, 5);
  EXPECT_THAT(exists.err, HasSubstr("exists (use --force to overwrite)"));
  EXPECT_EQ(Run({"convert", src, Path("out"), "--force"}).code, 0);
  EXPECT_EQ(Run({"convert", src, src}).code, 5);

  EXPECT_EQ(Run({"convert", src}).code, 2);
  EXPECT_EQ(Run({"convert", src, Path("o2"), "--to", "onnx"}).code, 2);
  EXPECT_EQ(Run({"convert", src, Path("o2"), "--mesh", "x=1"}).code, 2);
  EXPECT_EQ(Run({"convert", src, Path("o2"), "--buffer-bytes", "0"}).code, 2);
  Result no_mesh = Run({"convert", src, Path("o2"), "--to=meshckpt"});
  EXPECT_EQ(no_mesh.code, 2);
  EXPECT_THAT(no_mesh.err, HasSubstr("--mesh"));
  Result tf_no_mesh = Run({"convert", Path("out"), Path("o3")});
  EXPECT_EQ(tf_no_mesh.code, 2);
  EXPECT_THAT(tf_no_mesh.err, HasSubstr("needs --mesh"));
  Result help = Run({"convert", "--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_THAT(help.out, HasSubstr("Usage: meshckpt convert SRC DST"));
  EXPECT_FALSE(std::filesystem::exists(Path("o2.index")));
}

// Copies the files of shared TF checkpoint `from` (a prefix) to prefix `to`.
void CopyTfCheckpoint(const std::string& from, const std::string& to) {
  namespace fs = std::filesystem;
  const fs::path src(from);
  for (const auto& e : fs::directory_iterator(src.parent_path())) {
    const std::string name = e.path().filename().string();
    const std::string stem = src.filename().string() + ".";
    if (name.rfind(stem, 0) != 0) continue;
    const std::string dst = to + "." + name.substr(stem.size());
    fs::copy_file(e.path(), dst, fs::copy_options::overwrite_existing);
    fs::permissions(dst, fs::perms::owner_read | fs::perms::owner_write);
  }
}

// `meshckpt ls` on a directory of TensorFlow checkpoints with TF's state file.
TEST_F(CliTest, LsListsTensorFlowCheckpoints) {
  const std::string run = Path("run");
  std::filesystem::create_directories(run);
  const std::string data = MESHCKPT_TF_TESTDATA;
  CopyTfCheckpoint(data + "/serving_half_plus_two_tf2_cpu/variables", run + "/ckpt-1");
  CopyTfCheckpoint(data + "/tf_contrib_half_plus_two_ckpt_v2/export", run + "/export");
  CopyTfCheckpoint(data + "/tf_tftrt2_2shards/variables", run + "/model.ckpt-2");
  CopyTfCheckpoint(data + "/serving_counter/variables", run + "/broken");
  std::filesystem::resize_file(run + "/broken.data-00000-of-00001", 2);
  // As TensorFlow writes it (text CheckpointState).
  WriteFileBytes(run + "/checkpoint",
                 "model_checkpoint_path: \"model.ckpt-2\"\n"
                 "all_model_checkpoint_paths: \"ckpt-1\"\n"
                 "all_model_checkpoint_paths: \"export\"\n"
                 "all_model_checkpoint_paths: \"model.ckpt-2\"\n"
                 "all_model_checkpoint_timestamps: 1700000000.5\n"
                 "all_model_checkpoint_timestamps: 1700000100.25\n"
                 "all_model_checkpoint_timestamps: 1700000200\n"
                 "last_preserved_timestamp: 1699999999.0\n");

  Result r = Run({"ls", run, "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::string error;
  std::optional<Json> doc = ParseJson(r.out, &error);
  ASSERT_TRUE(doc.has_value()) << error << "\n" << r.out;
  EXPECT_EQ((*doc)["latest"].string, "model.ckpt-2");
  std::map<std::string, Json> by_name;
  for (const Json& c : (*doc)["checkpoints"].array) by_name[c["name"].string] = c;
  ASSERT_EQ(by_name.size(), 4u) << r.out;
  for (const char* name : {"ckpt-1", "export", "model.ckpt-2", "broken"}) {
    SCOPED_TRACE(name);
    EXPECT_EQ(by_name[name]["format"].string, "tensorflow");
    EXPECT_TRUE(by_name[name].Has("step"));
    EXPECT_EQ(by_name[name]["step"].type, Json::kNull);
    EXPECT_EQ(by_name[name]["latest"].boolean, std::string(name) == "model.ckpt-2");
  }
  for (const char* name : {"ckpt-1", "export", "model.ckpt-2"}) {
    EXPECT_TRUE(by_name[name]["complete"].boolean) << name << " " << r.out;
  }
  // Index plus every data file (not export.meta).
  EXPECT_EQ(by_name["export"]["bytes"].number, 134 + 8);
  EXPECT_EQ(by_name["model.ckpt-2"]["bytes"].number, 200 + 120 + 4);
  EXPECT_EQ(by_name["ckpt-1"]["timestamp"].number, 1700000000.5);
  EXPECT_EQ(by_name["export"]["timestamp"].number, 1700000100.25);
  EXPECT_FALSE(by_name["broken"]["complete"].boolean);
  EXPECT_EQ(by_name["broken"]["status"].string, "incomplete");
  EXPECT_THAT(by_name["broken"]["detail"].string, HasSubstr("has 2 bytes"));

  Result text = Run({"ls", run});
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_THAT(text.out, HasSubstr("FORMAT"));
  EXPECT_THAT(text.out, HasSubstr("4 checkpoint(s), 3 complete; * latest: model.ckpt-2"));
  EXPECT_THAT(text.out, HasSubstr("tensorflow"));
}

// The shared TF checkpoints that are V2 bundles, by folder/prefix.
const char* const kTfCheckpoints[] = {
    "serving_counter/variables",
    "serving_half_plus_two_cpu/variables",
    "serving_half_plus_two_tf2_cpu/variables",
    "tf_contrib_half_plus_two_ckpt_v2/export",
    "tf_old_string_tensors/foo",
    "tf_tftrt2_2shards/variables",
};

// meshckpt -> TensorFlow on real TF data: each shared TF checkpoint is
// saved in our format by SaveTensors (every entry under its key, the object
// graph translated, `_CHECKPOINTABLE_OBJECT_GRAPH` kept as the string tensor
// it is), then converted back: every key, dtype, shape, value and CRC is
// TensorFlow's own.
TEST_F(CliTest, ConvertRealTensorFlowDataBackBitExact) {
  for (const char* rel : kTfCheckpoints) {
    SCOPED_TRACE(rel);
    const std::string original = absl::StrCat(MESHCKPT_TF_TESTDATA, "/", rel);
    std::unique_ptr<tf::BundleReader> a = tf::BundleReader::Open(original).value();
    std::vector<TestTensor> tensors;
    for (const tf::BundleEntry& e : a->entries()) {
      tf::TensorValue v = a->ReadTensor(e.key()).value();
      TestTensor t{e.key(),
                   absl::StrCat("t", tensors.size()),
                   internal::DTypeFromTf(e.dtype_value(), e.key(), original).value(),
                   e.shape(),
                   std::vector<std::string>(e.shape().size(), "unsharded"),
                   std::vector<char>(v.bytes().begin(), v.bytes().end()),
                   v.strings()};
      if (!t.shape.empty() && t.shape[0] % 2 == 0) t.specs[0] = "x";
      tensors.push_back(std::move(t));
    }
    CheckpointContents contents;
    absl::StatusOr<tf::ObjectGraph> graph = tf::ReadObjectGraph(*a);
    if (graph.ok()) contents.object_graph = internal::ObjectGraphFromTf(*graph);
    const std::string name = std::filesystem::path(rel).parent_path().string();
    std::filesystem::create_directories(Path(name));
    ASSERT_TRUE(Save(Path(name + "/ours"), tensors, contents, {{"x", 2}}).ok());
    Result back = Run({"convert", Path(name + "/ours"), Path(name + "/back")});
    ASSERT_EQ(back.code, 0) << back.err;

    std::unique_ptr<tf::BundleReader> b =
        tf::BundleReader::Open(Path(name + "/back")).value();
    ExpectAllVerify(*b);
    ASSERT_EQ(a->entries().size(), b->entries().size());
    for (const tf::BundleEntry& e : a->entries()) {
      SCOPED_TRACE(e.key());
      const tf::BundleEntry* f = b->Find(e.key());
      ASSERT_NE(f, nullptr);
      EXPECT_EQ(f->dtype_value(), e.dtype_value());
      EXPECT_EQ(f->shape(), e.shape());
      EXPECT_EQ(f->masked_crc32c(), e.masked_crc32c());
      EXPECT_TRUE(*a->ReadTensor(e.key()) == *b->ReadTensor(e.key()));
    }
  }
}

// TensorFlow -> meshckpt (the reshard engine over a TF source) -> TensorFlow
// reproduces every key, dtype, shape and value bit for bit.
TEST_F(CliTest, ConvertFromTensorFlowRoundTripsBitExact) {
  for (const char* rel : kTfCheckpoints) {
    SCOPED_TRACE(rel);
    const std::string original = absl::StrCat(MESHCKPT_TF_TESTDATA, "/", rel);
    const std::string name = std::filesystem::path(rel).parent_path().string();
    const std::string ours = Path(name + "/ours");
    std::filesystem::create_directories(Path(name));
    Result to_ours = Run({"convert", original, ours, "--mesh", "x=2"});
    ASSERT_EQ(to_ours.code, 0) << to_ours.err;
    ASSERT_FALSE(internal::IsTensorFlowCheckpoint(ours));
    Result back = Run({"convert", ours, Path(name + "/back")});
    ASSERT_EQ(back.code, 0) << back.err;

    std::unique_ptr<tf::BundleReader> a = tf::BundleReader::Open(original).value();
    std::unique_ptr<tf::BundleReader> b =
        tf::BundleReader::Open(Path(name + "/back")).value();
    ExpectAllVerify(*b);
    ASSERT_EQ(a->entries().size(), b->entries().size());
    for (const tf::BundleEntry& e : a->entries()) {
      SCOPED_TRACE(e.key());
      const tf::BundleEntry* f = b->Find(e.key());
      ASSERT_NE(f, nullptr);
      EXPECT_EQ(f->dtype_value(), e.dtype_value());
      EXPECT_EQ(f->shape(), e.shape());
      absl::StatusOr<tf::TensorValue> x = a->ReadTensor(e.key());
      absl::StatusOr<tf::TensorValue> y = b->ReadTensor(e.key());
      ASSERT_TRUE(x.ok() && y.ok());
      EXPECT_TRUE(*x == *y);
      // Same bytes, so the same CRC TF computed.
      if (e.slices().empty()) {
        EXPECT_EQ(f->masked_crc32c(), e.masked_crc32c());
      }
    }
  }
}

}  // namespace
}  // namespace meshckpt
