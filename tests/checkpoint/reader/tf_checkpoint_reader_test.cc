// CheckpointReader on the real TensorFlow checkpoints in ../shared: opened
// automatically, every known value, every CRC, the object graph, V1 refused,
// and damaged copies (flipped bytes, truncation) failing cleanly.
#include <filesystem>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/checkpoint/reader/checkpoint_reader.h"
#include "meshckpt/comm/communicator.h"
#include "meshckpt/tfbundle/bundle_entry.h"
#include "meshckpt/tfbundle/bundle_writer.h"
#include "meshckpt/tfbundle/table.h"
#include "tests/tfbundle/tf_test_util.h"

namespace meshckpt {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using tf::TfTestdata;

std::unique_ptr<CheckpointReader> OpenOrDie(const std::string& prefix) {
  absl::StatusOr<std::unique_ptr<CheckpointReader>> r = CheckpointReader::Open(prefix);
  EXPECT_TRUE(r.ok()) << prefix << ": " << r.status();
  return r.ok() ? *std::move(r) : nullptr;
}

std::vector<std::string> Keys(const CheckpointReader& r) {
  std::vector<std::string> out;
  for (const VariableInfo& v : r.ListVariables()) out.push_back(v.key);
  return out;
}

float ScalarFloat(const CheckpointReader& r, const std::string& key) {
  absl::StatusOr<TensorData> t = r.ReadTensor(key);
  EXPECT_TRUE(t.ok()) << key << ": " << t.status();
  if (!t.ok()) return -1;
  EXPECT_EQ(t->dtype, DType::kFloat32);
  EXPECT_TRUE(t->shape.empty());
  return t->as<float>()[0];
}

void ExpectIntact(const CheckpointReader& r) {
  std::vector<std::string> skipped;
  absl::StatusOr<std::vector<std::string>> problems = r.VerifyAll(&skipped);
  ASSERT_TRUE(problems.ok()) << problems.status();
  EXPECT_THAT(*problems, ::testing::IsEmpty());
  EXPECT_THAT(skipped, ::testing::IsEmpty());
}

TEST(TfCheckpointReaderTest, ServingCounter) {
  auto r = OpenOrDie(TfTestdata("serving_counter/variables"));
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->format(), CheckpointFormat::kTensorFlow);
  EXPECT_THAT(Keys(*r), ElementsAre("counter"));
  absl::StatusOr<VariableInfo> info = r->GetVariableInfo("counter");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->dtype, DType::kFloat32);
  EXPECT_TRUE(info->shape.empty());
  EXPECT_EQ(info->bytes, 4);
  EXPECT_EQ(ScalarFloat(*r, "counter"), 0.0f);
  EXPECT_THAT(r->data_files(),
              ElementsAre(TfTestdata("serving_counter/variables.data-00000-of-00001")));
  EXPECT_EQ(r->index().step, 0);
  EXPECT_TRUE(r->index().object_graph.nodes.empty());
  // A float32 scalar is not a TrackedValue value.
  EXPECT_EQ(r->ReadValue("counter").status().code(),
            absl::StatusCode::kFailedPrecondition);
  ExpectIntact(*r);
}

TEST(TfCheckpointReaderTest, HalfPlusTwoSnappy) {
  auto r = OpenOrDie(TfTestdata("serving_half_plus_two_cpu/variables"));
  ASSERT_NE(r, nullptr);
  EXPECT_THAT(Keys(*r), ElementsAre("a", "a2", "b", "c", "c2"));
  EXPECT_EQ(ScalarFloat(*r, "a"), 0.5f);
  EXPECT_EQ(ScalarFloat(*r, "a2"), 0.5f);
  EXPECT_EQ(ScalarFloat(*r, "b"), 2.0f);
  EXPECT_EQ(ScalarFloat(*r, "c"), 3.0f);
  EXPECT_EQ(ScalarFloat(*r, "c2"), 3.0f);
  ExpectIntact(*r);
}

TEST(TfCheckpointReaderTest, Tf2ObjectBased) {
  auto r = OpenOrDie(TfTestdata("serving_half_plus_two_tf2_cpu/variables"));
  ASSERT_NE(r, nullptr);
  // The object graph entry is metadata, not a tensor.
  EXPECT_THAT(Keys(*r),
              ElementsAre("a/.ATTRIBUTES/VARIABLE_VALUE", "b/.ATTRIBUTES/VARIABLE_VALUE",
                          "c/.ATTRIBUTES/VARIABLE_VALUE"));
  EXPECT_FALSE(r->HasTensor("_CHECKPOINTABLE_OBJECT_GRAPH"));
  EXPECT_EQ(ScalarFloat(*r, "a/.ATTRIBUTES/VARIABLE_VALUE"), 0.5f);
  EXPECT_EQ(ScalarFloat(*r, "b/.ATTRIBUTES/VARIABLE_VALUE"), 2.0f);
  EXPECT_EQ(ScalarFloat(*r, "c/.ATTRIBUTES/VARIABLE_VALUE"), 3.0f);
  // The graph, translated: the root's children a, b, c each lead to a node
  // whose VARIABLE_VALUE attribute names its key.
  const ObjectGraph& g = r->index().object_graph;
  ASSERT_FALSE(g.nodes.empty());
  std::vector<std::string> found;
  for (const ObjectGraph::Child& c : g.nodes[0].children) {
    ASSERT_GE(c.node_id, 0);
    ASSERT_LT(c.node_id, static_cast<int>(g.nodes.size()));
    for (const ObjectGraph::Attribute& a : g.nodes[c.node_id].attributes) {
      if (a.name == "VARIABLE_VALUE")
        found.push_back(c.local_name + "=" + a.checkpoint_key);
    }
  }
  EXPECT_THAT(found, ::testing::IsSupersetOf({"a=a/.ATTRIBUTES/VARIABLE_VALUE",
                                              "b=b/.ATTRIBUTES/VARIABLE_VALUE",
                                              "c=c/.ATTRIBUTES/VARIABLE_VALUE"}));
  ExpectIntact(*r);
  // ReadCheckpointIndex gives the same index.
  std::unique_ptr<Communicator> comm = SerialCommunicator();
  absl::StatusOr<IndexRecord> record =
      ReadCheckpointIndex(*comm, TfTestdata("serving_half_plus_two_tf2_cpu/variables"));
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ(record->object_graph, g);
  EXPECT_EQ(record->tensors.size(), 3u);
}

TEST(TfCheckpointReaderTest, RefusesV1) {
  absl::Status s =
      CheckpointReader::Open(TfTestdata("serving_bad_half_plus_two_v1/export")).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("V1"));
  // Not a checkpoint at all stays NotFound.
  EXPECT_EQ(CheckpointReader::Open(TfTestdata("nothing/here")).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(TfCheckpointReaderTest, OldStringTensors) {
  auto r = OpenOrDie(TfTestdata("tf_old_string_tensors/foo"));
  ASSERT_NE(r, nullptr);
  EXPECT_THAT(Keys(*r), ElementsAre("floats", "scalar", "string_tensor", "strs"));
  absl::StatusOr<TensorData> floats = r->ReadTensor("floats");
  ASSERT_TRUE(floats.ok()) << floats.status();
  EXPECT_EQ(floats->shape, (std::vector<int64_t>{2, 3}));
  for (float f : floats->as<float>()) EXPECT_EQ(f, 16.18f);
  absl::StatusOr<TensorData> row = r->ReadBox("floats", *Box::Create({1, 1}, {1, 2}));
  ASSERT_TRUE(row.ok()) << row.status();
  EXPECT_THAT(row->as<float>(), ElementsAre(16.18f, 16.18f));
  absl::StatusOr<TensorData> scalar = r->ReadTensor("scalar");
  ASSERT_TRUE(scalar.ok()) << scalar.status();
  EXPECT_EQ(scalar->shape, (std::vector<int64_t>{1}));
  EXPECT_THAT(scalar->strings, ElementsAre("hello"));
  absl::StatusOr<TensorData> empty = r->ReadTensor("string_tensor");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_THAT(empty->strings, ElementsAre(""));
  absl::StatusOr<TensorData> strs = r->ReadTensor("strs");
  ASSERT_TRUE(strs.ok()) << strs.status();
  EXPECT_THAT(strs->strings, ElementsAre("hello", "", "x01", std::string(1024, 'c')));
  absl::StatusOr<TensorData> part = r->ReadBox("strs", *Box::Create({2}, {2}));
  ASSERT_TRUE(part.ok()) << part.status();
  EXPECT_THAT(part->strings, ElementsAre("x01", std::string(1024, 'c')));
  ExpectIntact(*r);
}

TEST(TfCheckpointReaderTest, TwoDataShards) {
  auto r = OpenOrDie(TfTestdata("tf_tftrt2_2shards/variables"));
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->data_files().size(), 2u);
  ASSERT_FALSE(r->ListVariables().empty());
  for (const VariableInfo& v : r->ListVariables()) {
    absl::StatusOr<TensorData> whole = r->ReadTensor(v.key);
    ASSERT_TRUE(whole.ok()) << v.key << ": " << whole.status();
    if (v.shape.empty() || v.dtype == DType::kString || v.shape[0] < 2) continue;
    // Rows [1, end) read as a box equal the same rows of the whole.
    std::vector<int64_t> origin(v.shape.size(), 0), size = v.shape;
    origin[0] = 1;
    size[0] -= 1;
    absl::StatusOr<TensorData> box = r->ReadBox(v.key, *Box::Create(origin, size));
    ASSERT_TRUE(box.ok()) << v.key << ": " << box.status();
    const int64_t skip = whole->bytes.size() / v.shape[0];
    EXPECT_EQ(box->bytes,
              std::vector<char>(whole->bytes.begin() + skip, whole->bytes.end()))
        << v.key;
  }
  // The variable is in the second data file; the first holds the object
  // graph, read (CRC checked) when the checkpoint opens.
  EXPECT_THAT(Keys(*r), ElementsAre("v/.ATTRIBUTES/VARIABLE_VALUE"));
  EXPECT_EQ(r->index().object_graph.nodes.size(), 4u);
  ExpectIntact(*r);
}

TEST(TfCheckpointReaderTest, ContribCheckpointV2) {
  auto r = OpenOrDie(TfTestdata("tf_contrib_half_plus_two_ckpt_v2/export"));
  ASSERT_NE(r, nullptr);
  EXPECT_THAT(Keys(*r), ElementsAre("a", "b"));
  EXPECT_EQ(ScalarFloat(*r, "a"), 0.5f);
  EXPECT_EQ(ScalarFloat(*r, "b"), 2.0f);
  ExpectIntact(*r);
}

// Every single-byte flip of the data file gives DataLoss when read (a CRC
// covers every byte) and never a crash; VerifyAll reports it.
TEST(TfCheckpointReaderTest, FlippedDataBytesAreDataLoss) {
  tf::TempDir dir;
  tf::CopyFolder(TfTestdata("tf_old_string_tensors"), dir.path());
  const std::string data = dir.file("foo.data-00000-of-00001");
  const std::string original = tf::ReadFileBytesForTest(data);
  for (size_t i = 0; i < original.size(); ++i) {
    std::string bad = original;
    bad[i] ^= 0x20;
    tf::WriteFileBytesForTest(data, bad);
    auto r = OpenOrDie(dir.file("foo"));
    ASSERT_NE(r, nullptr);
    int failures = 0;
    for (const std::string& key : Keys(*r)) {
      absl::Status s = r->ReadTensor(key).status();
      if (s.ok()) continue;
      ++failures;
      EXPECT_TRUE(absl::IsDataLoss(s) || absl::IsInvalidArgument(s)) << s;
      EXPECT_THAT(std::string(s.message()), HasSubstr(key));
    }
    EXPECT_GE(failures, 1) << "byte " << i;
    absl::StatusOr<std::vector<std::string>> problems = r->VerifyAll();
    ASSERT_TRUE(problems.ok() || absl::IsInvalidArgument(problems.status()))
        << problems.status();
    if (problems.ok()) {
      EXPECT_FALSE(problems->empty()) << "byte " << i;
    }
  }
}

TEST(TfCheckpointReaderTest, FlippedIndexBytesNeverCrash) {
  tf::TempDir dir;
  tf::CopyFolder(TfTestdata("serving_half_plus_two_tf2_cpu"), dir.path());
  const std::string index = dir.file("variables.index");
  const std::string original = tf::ReadFileBytesForTest(index);
  for (size_t i = 0; i < original.size(); ++i) {
    std::string bad = original;
    bad[i] ^= 0x01;
    tf::WriteFileBytesForTest(index, bad);
    absl::StatusOr<std::unique_ptr<CheckpointReader>> r =
        CheckpointReader::Open(dir.file("variables"));
    if (!r.ok()) {
      const absl::StatusCode c = r.status().code();
      EXPECT_TRUE(
          c == absl::StatusCode::kDataLoss || c == absl::StatusCode::kInvalidArgument ||
          c == absl::StatusCode::kNotFound || c == absl::StatusCode::kFailedPrecondition)
          << "byte " << i << ": " << r.status();
      continue;
    }
    for (const VariableInfo& v : (*r)->ListVariables()) {
      absl::Status s = (*r)->ReadTensor(v.key).status();
      if (!s.ok()) {
        EXPECT_TRUE(absl::IsDataLoss(s) || absl::IsInvalidArgument(s)) << s;
      }
    }
  }
}

TEST(TfCheckpointReaderTest, TruncatedDataFile) {
  tf::TempDir dir;
  tf::CopyFolder(TfTestdata("serving_half_plus_two_cpu"), dir.path());
  const std::string data = dir.file("variables.data-00000-of-00001");
  const std::string original = tf::ReadFileBytesForTest(data);
  tf::WriteFileBytesForTest(data, original.substr(0, original.size() - 2));
  auto r = OpenOrDie(dir.file("variables"));
  ASSERT_NE(r, nullptr);
  // The last entry lies past the end now.
  bool any = false;
  for (const std::string& key : Keys(*r)) {
    absl::Status s = r->ReadTensor(key).status();
    if (s.ok()) continue;
    any = true;
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr("variables.data-00000-of-00001"));
  }
  EXPECT_TRUE(any);
  absl::StatusOr<std::vector<std::string>> problems = r->VerifyAll();
  ASSERT_TRUE(problems.ok()) << problems.status();
  EXPECT_FALSE(problems->empty());
}

// A bundle with DT_VARIANT and DT_RESOURCE entries (as tf.data iterators and
// resource handles leave them) besides a float tensor: the float reads, the
// others are listed, skipped by VerifyAll and Unimplemented to read or
// restore, naming the key and the file.
TEST(TfCheckpointReaderTest, VariantAndResourceAreListedNotRead) {
  tf::TempDir dir;
  const std::string prefix = dir.file("ckpt");
  ASSERT_TRUE(tf::WriteBundle(prefix, {{"w", tf::TensorValue::FromBytes(
                                                 tf::TfDType::kFloat, {2},
                                                 tf::Pack<float>({1.5f, -2.0f}))
                                                 .value()}})
                  .ok());
  const std::string index_path = prefix + ".index";
  absl::StatusOr<std::vector<tf::TableEntry>> table =
      tf::ReadTable(tf::ReadFileBytesForTest(index_path), index_path);
  ASSERT_TRUE(table.ok()) << table.status();
  for (auto [key, dtype] :
       {std::pair<std::string, tf::TfDType>{"iterator", tf::TfDType::kVariant},
        {"handle", tf::TfDType::kResource}}) {
    tf::BundleEntry::Fields f;
    f.key = key;
    f.dtype = static_cast<int>(dtype);
    absl::StatusOr<tf::BundleEntry> e = tf::BundleEntry::Create(f, 1, index_path);
    ASSERT_TRUE(e.ok()) << e.status();
    table->push_back({key, e->Serialize()});
  }
  std::sort(
      table->begin(), table->end(),
      [](const tf::TableEntry& a, const tf::TableEntry& b) { return a.key < b.key; });
  absl::StatusOr<std::string> bytes = tf::BuildTable(*table);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  tf::WriteFileBytesForTest(index_path, *bytes);

  auto r = OpenOrDie(prefix);
  ASSERT_NE(r, nullptr);
  EXPECT_THAT(Keys(*r), ElementsAre("w"));
  std::vector<std::string> unreadable;
  for (const UnreadableTensor& u : r->Unreadable()) {
    unreadable.push_back(u.key + ":" + u.dtype);
  }
  EXPECT_THAT(unreadable, ElementsAre("handle:DT_RESOURCE", "iterator:DT_VARIANT"));
  absl::StatusOr<TensorData> w = r->ReadTensor("w");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_THAT(w->as<float>(), ElementsAre(1.5f, -2.0f));
  for (const std::string key : {"iterator", "handle"}) {
    absl::Status s = r->ReadTensor(key).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(key));
    EXPECT_THAT(std::string(s.message()), HasSubstr(index_path));
    EXPECT_EQ(r->GetVariableInfo(key).status().code(), absl::StatusCode::kUnimplemented);
  }
  std::vector<std::string> skipped;
  absl::StatusOr<std::vector<std::string>> problems = r->VerifyAll(&skipped);
  ASSERT_TRUE(problems.ok()) << problems.status();
  EXPECT_THAT(*problems, ::testing::IsEmpty());
  EXPECT_THAT(skipped, ElementsAre("handle", "iterator"));

  // Restoring one is Unimplemented too.
  std::unique_ptr<Communicator> comm = SerialCommunicator();
  const Layout layout = Layout::Replicated(Mesh::Create({{"x", 1}}, 0, 1).value(), 0);
  float out = 0;
  absl::Status s = RestoreTensors(
      *comm, prefix, {{"iterator", DType::kFloat32, {}, layout, {&out}}}, IoOptions());
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented) << s;
}

// Scalars TrackedValue could have written read as values: TF2's save
// counter (int64) and a string.
TEST(TfCheckpointReaderTest, ReadValueOfScalars) {
  tf::TempDir dir;
  const std::string prefix = dir.file("ckpt");
  ASSERT_TRUE(tf::WriteBundle(
                  prefix, {{"save_counter/.ATTRIBUTES/VARIABLE_VALUE",
                            tf::TensorValue::FromBytes(tf::TfDType::kInt64, {},
                                                       tf::Pack<int64_t>({42}))
                                .value()},
                           {"name", tf::TensorValue::FromStrings({}, {"run-7"}).value()}})
                  .ok());
  auto r = OpenOrDie(prefix);
  ASSERT_NE(r, nullptr);
  absl::StatusOr<ScalarValue> counter =
      r->ReadValue("save_counter/.ATTRIBUTES/VARIABLE_VALUE");
  ASSERT_TRUE(counter.ok()) << counter.status();
  EXPECT_EQ(std::get<int64_t>(*counter), 42);
  absl::StatusOr<ScalarValue> name = r->ReadValue("name");
  ASSERT_TRUE(name.ok()) << name.status();
  EXPECT_EQ(std::get<std::string>(*name), "run-7");
}

// Flipped bytes in a real checkpoint's data file, restored through
// RestoreTensors: DataLoss (or, for a string tensor's lengths,
// InvalidArgument), never a crash and never wrong values silently.
TEST(TfCheckpointReaderTest, FlippedBytesThroughRestoreTensors) {
  tf::TempDir dir;
  tf::CopyFolder(TfTestdata("tf_old_string_tensors"), dir.path());
  const std::string data = dir.file("foo.data-00000-of-00001");
  const std::string original = tf::ReadFileBytesForTest(data);
  std::unique_ptr<Communicator> comm = SerialCommunicator();
  const Mesh mesh = Mesh::Create({{"x", 2}}, 0, 1).value();
  // Every third byte (FlippedDataBytesAreDataLoss above takes every one
  // through CheckpointReader): each tensor's bytes are hit many times.
  for (size_t i = 0; i < original.size(); i += 3) {
    std::string bad = original;
    bad[i] ^= 0x08;
    tf::WriteFileBytesForTest(data, bad);
    std::vector<float> f0(3), f1(3);
    std::vector<std::string> s0(2), s1(2), one(1), empty(1);
    const Layout rows = Layout::Create({"x", "unsharded"}, mesh).value();
    const Layout vec = Layout::Create({"x"}, mesh).value();
    const Layout rep = Layout::Create({"unsharded"}, mesh).value();
    absl::Status s = RestoreTensors(
        *comm, dir.file("foo"),
        {{"floats", DType::kFloat32, {2, 3}, rows, {f0.data(), f1.data()}},
         {"strs", DType::kString, {4}, vec, {s0.data(), s1.data()}},
         {"scalar", DType::kString, {1}, rep, {one.data(), one.data()}},
         {"string_tensor", DType::kString, {1}, rep, {empty.data(), empty.data()}}},
        IoOptions());
    ASSERT_FALSE(s.ok()) << "byte " << i;
    EXPECT_TRUE(absl::IsDataLoss(s) || absl::IsInvalidArgument(s)) << s;
  }
}

}  // namespace
}  // namespace meshckpt
