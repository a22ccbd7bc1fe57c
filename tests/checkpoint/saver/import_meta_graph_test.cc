// ImportMetaGraph in one process (SerialCommunicator, a 2-device mesh): the
// real TF1 export of ../shared/testdata/tf_checkpoints (variables, dtypes,
// shapes, collections, SaverDef, then its values a=0.5, b=2.0), and
// synthetic MetaGraphDefs for layouts, partitioned variables and every
// refusal.
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
#include "meshckpt/checkpoint/saver/saver.h"
#include "meshckpt/io/fs/fs.h"
#include "tests/file_bytes.h"
#include "tfbundle/proto/meta_graph.pb.h"
#include "tfbundle/proto/variable.pb.h"

namespace meshckpt {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const std::string kMeta =
    std::string(MESHCKPT_TF_TESTDATA) + "/tf_contrib_half_plus_two_ckpt_v2/export.meta";

class ImportMetaGraphTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() /
            absl::StrCat("import_meta_graph_test-", RandomId()))
               .string();
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<Communicator> comm_ = SerialCommunicator();
  Mesh mesh_ = Mesh::Create({{"x", 2}}, 0, 1).value();
  std::string dir_;
};

std::vector<std::string> Names(const ImportedStructure& s) {
  std::vector<std::string> out;
  for (const auto& v : s.variables) out.push_back(v->name());
  return out;
}

TEST_F(ImportMetaGraphTest, ContribHalfPlusTwoStructure) {
  MetaGraphImportOptions o;
  o.restore_values = false;
  absl::StatusOr<ImportedStructure> s = ImportMetaGraph(comm_.get(), kMeta, mesh_, o);
  ASSERT_TRUE(s.ok()) << s.status();
  // The global variables (the `variables` collection), in its order; the
  // graph's other variable nodes (asset_path, filename1/2) are not in it.
  EXPECT_THAT(Names(*s), ElementsAre("a", "b", "global_step"));
  EXPECT_EQ(s->variables[0]->dtype(), DType::kFloat32);
  EXPECT_EQ(s->variables[1]->dtype(), DType::kFloat32);
  EXPECT_EQ(s->variables[2]->dtype(), DType::kInt32);
  for (const auto& v : s->variables) {
    EXPECT_TRUE(v->shape().empty()) << v->name();  // scalars
    EXPECT_TRUE(v->layout().IsFullyReplicated()) << v->name();
    EXPECT_EQ(v->layout().mesh(), mesh_);
  }
  EXPECT_THAT(s->collections["variables"], ElementsAre("a", "b", "global_step"));
  EXPECT_THAT(s->collections["trainable_variables"],
              ElementsAre("a", "b", "global_step"));
  ASSERT_NE(s->saver, nullptr);
  std::vector<std::string> keys;
  for (const auto& [key, v] : s->saver->var_list()) keys.push_back(key);
  EXPECT_THAT(keys, ElementsAre("a", "b", "global_step"));
  // The SaverDef's retention: this file's has no max_to_keep (0: keep all,
  // in TF as here) and keep_checkpoint_every_n_hours 10000.
  EXPECT_EQ(s->saver->options().max_to_keep, 0);
  EXPECT_EQ(s->saver->options().keep_checkpoint_every_n_hours, 10000.0);
  EXPECT_EQ(s->saver->collections().at("variables"), s->collections["variables"]);
  EXPECT_TRUE(s->not_in_checkpoint.empty());

  o.name_scope = "imported/";
  o.use_saver_def = false;
  o.saver_options.max_to_keep = 2;
  s = ImportMetaGraph(comm_.get(), kMeta, mesh_, o);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(Names(*s), ElementsAre("imported/a", "imported/b", "imported/global_step"));
  EXPECT_EQ(s->saver->var_list().count("a"), 1u);  // keys stay TF's names
  EXPECT_EQ(s->saver->options().max_to_keep, 2);
}

// Needs the Saver to restore TensorFlow name-based checkpoints (the TF-aware
// CheckpointHandle).
TEST_F(ImportMetaGraphTest, ContribHalfPlusTwoRestoresTheCheckpointBesideIt) {
  absl::StatusOr<ImportedStructure> s = ImportMetaGraph(comm_.get(), kMeta, mesh_);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->variables.size(), 3u);
  for (int64_t d : mesh_.local_device_ids()) {
    EXPECT_EQ(s->variables[0]->shard<float>(d)[0], 0.5f);  // a
    EXPECT_EQ(s->variables[1]->shard<float>(d)[0], 2.0f);  // b
    EXPECT_EQ(s->variables[2]->shard<int32_t>(d)[0], 0);   // global_step: not saved
  }
  EXPECT_THAT(s->not_in_checkpoint, ElementsAre("global_step"));
}

// The restore path on a meshckpt checkpoint (options.checkpoint) of a and b
// only, as a Saver over the imported variables writes it.
TEST_F(ImportMetaGraphTest, RestoresWhatTheCheckpointHoldsAndListsTheRest) {
  MetaGraphImportOptions o;
  o.restore_values = false;
  absl::StatusOr<ImportedStructure> s = ImportMetaGraph(comm_.get(), kMeta, mesh_, o);
  ASSERT_TRUE(s.ok()) << s.status();
  for (int64_t d : mesh_.local_device_ids()) {
    s->variables[0]->shard<float>(d)[0] = 0.5f;
    s->variables[1]->shard<float>(d)[0] = 2.0f;
  }
  SaverOptions so;
  so.max_to_keep = 0;
  std::unique_ptr<Saver> ab =
      Saver::Create(comm_.get(),
                    {{"a", s->variables[0].get()}, {"b", s->variables[1].get()}}, so)
          .value();
  absl::StatusOr<std::string> prefix = ab->Save(dir_ + "/ab", std::nullopt, false);
  ASSERT_TRUE(prefix.ok()) << prefix.status();

  o.restore_values = true;
  o.checkpoint = *prefix;
  absl::StatusOr<ImportedStructure> t = ImportMetaGraph(comm_.get(), kMeta, mesh_, o);
  ASSERT_TRUE(t.ok()) << t.status();
  for (int64_t d : mesh_.local_device_ids()) {
    EXPECT_EQ(t->variables[0]->shard<float>(d)[0], 0.5f);
    EXPECT_EQ(t->variables[1]->shard<float>(d)[0], 2.0f);
    EXPECT_EQ(t->variables[2]->shard<int32_t>(d)[0], 0);
  }
  EXPECT_THAT(t->not_in_checkpoint, ElementsAre("global_step"));
  // A checkpoint whose tensor disagrees with the graph is refused.
  std::unique_ptr<DVariable> wrong =
      DVariable::Create("a", DType::kFloat64, {}, Layout::Replicated(mesh_, 0)).value();
  std::unique_ptr<Saver> bad =
      Saver::Create(comm_.get(), {{"a", wrong.get()}}, so).value();
  ASSERT_TRUE(bad->Save(dir_ + "/bad", std::nullopt, false).ok());
  o.checkpoint = dir_ + "/bad";
  EXPECT_EQ(ImportMetaGraph(comm_.get(), kMeta, mesh_, o).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// ------------------------------------------------------------ synthetic

struct Var {
  std::string name;
  int dtype = tfproto::DT_FLOAT;
  std::vector<int64_t> shape;  // -1: unknown size
  bool unknown_rank = false;
  bool trainable = true;
  // Partitioned: the full variable and this part's place in it.
  std::string full_name;
  std::vector<int64_t> full_shape, offset;
};

Var V(std::string name, int dtype, std::vector<int64_t> shape, bool trainable = true) {
  Var v;
  v.name = std::move(name);
  v.dtype = dtype;
  v.shape = std::move(shape);
  v.trainable = trainable;
  return v;
}
Var UnknownRank(std::string name) {
  Var v = V(std::move(name), tfproto::DT_FLOAT, {});
  v.unknown_rank = true;
  return v;
}
Var Part(std::string name, int dtype, std::vector<int64_t> shape, std::string full,
         std::vector<int64_t> full_shape, std::vector<int64_t> offset) {
  Var v = V(std::move(name), dtype, std::move(shape));
  v.full_name = std::move(full);
  v.full_shape = std::move(full_shape);
  v.offset = std::move(offset);
  return v;
}

std::string MetaGraphBytes(const std::vector<Var>& vars, bool collections = true) {
  tfproto::MetaGraphDef m;
  m.mutable_meta_info_def()->set_tensorflow_version("1.15.0");
  auto* globals = m.add_collection_def();
  globals->set_key("variables");
  auto* trainable = m.add_collection_def();
  trainable->set_key("trainable_variables");
  for (const Var& v : vars) {
    auto* node = m.mutable_graph_def()->add_node();
    node->set_name(v.name);
    node->set_op("VariableV2");
    auto* dtype = node->add_attr();
    dtype->set_key("dtype");
    dtype->mutable_value()->set_type(static_cast<tfproto::DataType>(v.dtype));
    if (!v.unknown_rank) {
      auto* shape = node->add_attr();
      shape->set_key("shape");
      auto* dims = shape->mutable_value()->mutable_shape();  // a scalar has none
      for (int64_t d : v.shape) dims->add_dim()->set_size(d);
    }
    tfproto::VariableDef def;
    def.set_variable_name(v.name + ":0");
    def.set_snapshot_name(v.name + "/read:0");
    def.set_trainable(v.trainable);
    if (!v.full_name.empty()) {
      auto* info = def.mutable_save_slice_info_def();
      info->set_full_name(v.full_name);
      for (int64_t d : v.full_shape) info->add_full_shape(d);
      for (int64_t d : v.offset) info->add_var_offset(d);
      for (int64_t d : v.shape) info->add_var_shape(d);
    }
    globals->mutable_value()->mutable_bytes_list()->add_value(def.SerializeAsString());
    if (v.trainable) {
      trainable->mutable_value()->mutable_bytes_list()->add_value(
          def.SerializeAsString());
    }
  }
  if (!collections) m.clear_collection_def();
  auto* ops = m.add_collection_def();
  ops->set_key("train_op");
  ops->mutable_value()->mutable_node_list()->add_value("Adam");
  auto* steps = m.add_collection_def();
  steps->set_key("steps");
  steps->mutable_value()->mutable_int64_list()->add_value(-7);
  auto* lr = m.add_collection_def();
  lr->set_key("lr");
  lr->mutable_value()->mutable_float_list()->add_value(0.1f);
  m.mutable_saver_def()->set_max_to_keep(3);
  m.mutable_saver_def()->set_keep_checkpoint_every_n_hours(2.5f);
  return m.SerializeAsString();
}

TEST_F(ImportMetaGraphTest, LayoutsPartitionedVariablesAndCollections) {
  const std::string path = dir_ + "/model.ckpt-1.meta";
  WriteFileBytes(path,
                 MetaGraphBytes({
                     V("dense/kernel", tfproto::DT_FLOAT, {4, 6}),
                     V("dense/bias", tfproto::DT_BFLOAT16, {6}),
                     V("step", tfproto::DT_INT64, {}, /*trainable=*/false),
                     Part("emb/part_0", tfproto::DT_HALF, {4, 2}, "emb", {6, 2}, {0, 0}),
                     Part("emb/part_1", tfproto::DT_HALF, {2, 2}, "emb", {6, 2}, {4, 0}),
                 }));
  MetaGraphImportOptions o;
  o.restore_values = false;
  std::vector<std::string> asked;
  o.layout = [&](const MetaGraphVariable& v, const Mesh& m) -> absl::StatusOr<Layout> {
    asked.push_back(absl::StrCat(v.name, v.trainable ? " trainable" : ""));
    if (v.name == "dense/kernel") return Layout::Create({"x", "unsharded"}, m);
    return Layout::Replicated(m, static_cast<int>(v.shape.size()));
  };
  absl::StatusOr<ImportedStructure> s = ImportMetaGraph(comm_.get(), path, mesh_, o);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(asked, ElementsAre("dense/kernel trainable", "dense/bias trainable", "step",
                                 "emb trainable"));
  ASSERT_THAT(Names(*s), ElementsAre("dense/kernel", "dense/bias", "step", "emb"));
  EXPECT_EQ(s->variables[0]->layout().sharding_specs(),
            (std::vector<std::string>{"x", "unsharded"}));
  EXPECT_EQ(s->variables[0]->shape(), (std::vector<int64_t>{4, 6}));
  EXPECT_EQ(s->variables[1]->dtype(), DType::kBfloat16);
  EXPECT_EQ(s->variables[2]->dtype(), DType::kInt64);
  // The two parts are one variable of the full name and shape.
  EXPECT_EQ(s->variables[3]->dtype(), DType::kFloat16);
  EXPECT_EQ(s->variables[3]->shape(), (std::vector<int64_t>{6, 2}));
  EXPECT_THAT(s->collections["variables"],
              ElementsAre("dense/kernel", "dense/bias", "step", "emb"));
  EXPECT_THAT(s->collections["trainable_variables"],
              ElementsAre("dense/kernel", "dense/bias", "emb"));
  EXPECT_THAT(s->collections["train_op"], ElementsAre("Adam"));
  EXPECT_THAT(s->collections["steps"], ElementsAre("-7"));
  EXPECT_THAT(s->collections["lr"], ElementsAre("0.100000001"));
  EXPECT_EQ(s->saver->options().max_to_keep, 3);
  EXPECT_EQ(s->saver->options().keep_checkpoint_every_n_hours, 2.5);

  // Without collections: every variable node, none trainable.
  WriteFileBytes(path, MetaGraphBytes({V("w", tfproto::DT_DOUBLE, {3})}, false));
  o.layout = nullptr;
  s = ImportMetaGraph(comm_.get(), path, mesh_, o);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(Names(*s), ElementsAre("w"));
  EXPECT_EQ(s->variables[0]->dtype(), DType::kFloat64);
}

// `status` has `code` and names the variable and the file.
void ExpectRefused(const absl::StatusOr<ImportedStructure>& s, absl::StatusCode code,
                   const std::string& variable, const std::string& file,
                   const std::string& why) {
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), code) << s.status();
  EXPECT_THAT(s.status().message(), HasSubstr("'" + variable + "'"));
  EXPECT_THAT(s.status().message(), HasSubstr(file));
  EXPECT_THAT(s.status().message(), HasSubstr(why));
}

TEST_F(ImportMetaGraphTest, RefusesWhatItCannotRebuild) {
  const std::string path = dir_ + "/bad.meta";
  MetaGraphImportOptions o;
  o.restore_values = false;
  auto import = [&](const std::vector<Var>& vars) {
    WriteFileBytes(path, MetaGraphBytes(vars));
    return ImportMetaGraph(comm_.get(), path, mesh_, o);
  };
  const absl::StatusCode kInvalid = absl::StatusCode::kInvalidArgument;
  ExpectRefused(import({V("ok", tfproto::DT_FLOAT, {2}), UnknownRank("u")}), kInvalid,
                "u", path, "shape is unknown");
  ExpectRefused(import({V("d", tfproto::DT_FLOAT, {3, -1})}), kInvalid, "d", path,
                "unknown size");
  ExpectRefused(import({V("q", tfproto::DT_QINT8, {2})}),
                absl::StatusCode::kUnimplemented, "q", path, "DT_QINT8");
  ExpectRefused(import({V("r", tfproto::DT_RESOURCE, {})}),
                absl::StatusCode::kUnimplemented, "r", path, "DT_RESOURCE");
  // Parts that leave a gap, that overlap, or that stick out.
  ExpectRefused(import({Part("p/part_0", tfproto::DT_FLOAT, {2}, "p", {5}, {0}),
                        Part("p/part_1", tfproto::DT_FLOAT, {2}, "p", {5}, {3})}),
                kInvalid, "p", path, "cover 4 of its 5 elements");
  ExpectRefused(import({Part("p/part_0", tfproto::DT_FLOAT, {3}, "p", {4}, {0}),
                        Part("p/part_1", tfproto::DT_FLOAT, {2}, "p", {4}, {2})}),
                kInvalid, "p", path, "overlap");
  ExpectRefused(import({Part("p/part_0", tfproto::DT_FLOAT, {3}, "p", {4}, {2})}),
                kInvalid, "p", path, "outside");
  ExpectRefused(import({Part("p/part_0", tfproto::DT_FLOAT, {2}, "p", {4}, {0}),
                        Part("p/part_1", tfproto::DT_INT32, {2}, "p", {4}, {2})}),
                kInvalid, "p", path, "different dtypes");
  o.layout = [](const MetaGraphVariable&, const Mesh& m) -> absl::StatusOr<Layout> {
    return Layout::Create({"x"}, m);  // rank 1 for every variable
  };
  ExpectRefused(import({V("k", tfproto::DT_FLOAT, {2, 2})}), kInvalid, "k", path, "");
  o.layout = nullptr;

  // A collection naming a variable the graph lacks.
  tfproto::MetaGraphDef m;
  m.ParseFromString(MetaGraphBytes({V("a", tfproto::DT_FLOAT, {1})}));
  m.mutable_graph_def()->clear_node();
  WriteFileBytes(path, m.SerializeAsString());
  ExpectRefused(ImportMetaGraph(comm_.get(), path, mesh_, o), absl::StatusCode::kDataLoss,
                "a", path, "no node");

  WriteFileBytes(path, "\xff\xff\xff not a MetaGraphDef");
  EXPECT_EQ(ImportMetaGraph(comm_.get(), path, mesh_, o).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(ImportMetaGraph(comm_.get(), dir_ + "/none.meta", mesh_, o).status().code(),
            absl::StatusCode::kNotFound);
  Mesh four = Mesh::Create({{"x", 4}}, 0, 4).value();  // 4 ranks; this job has 1
  EXPECT_EQ(ImportMetaGraph(comm_.get(), kMeta, four, o).status().code(), kInvalid);
  o.name_scope = "a/../b";
  EXPECT_EQ(ImportMetaGraph(comm_.get(), kMeta, mesh_, o).status().code(), kInvalid);
  // Values wanted, but no checkpoint beside the file.
  WriteFileBytes(path, MetaGraphBytes({V("a", tfproto::DT_FLOAT, {1})}));
  MetaGraphImportOptions with_values;
  EXPECT_EQ(ImportMetaGraph(comm_.get(), path, mesh_, with_values).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace meshckpt
