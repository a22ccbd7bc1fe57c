// TrackableObjectGraph and MetaGraphDef parsing on the shared TF checkpoints,
// and the object graph writer.
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/tfbundle/bundle_reader.h"
#include "meshckpt/tfbundle/bundle_writer.h"
#include "meshckpt/tfbundle/meta_graph.h"
#include "meshckpt/tfbundle/object_graph.h"
#include "tests/tfbundle/tf_test_util.h"

namespace meshckpt::tf {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

std::vector<std::pair<std::string, std::string>> PathsToKeys(const ObjectGraph& g) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [path, attr] : g.AttributesByPath())
    out.emplace_back(path, attr.checkpoint_key);
  return out;
}

TEST(ObjectGraphTest, ServingHalfPlusTwoTf2) {
  auto r = BundleReader::Open(TfTestdata("serving_half_plus_two_tf2_cpu/variables"));
  ASSERT_TRUE(r.ok()) << r.status();
  absl::StatusOr<ObjectGraph> g = ReadObjectGraph(**r);
  ASSERT_TRUE(g.ok()) << g.status();
  ASSERT_EQ(g->nodes().size(), 24u);
  std::vector<std::string> root_children;
  for (const auto& c : g->nodes()[0].children) root_children.push_back(c.local_name);
  EXPECT_THAT(root_children, ElementsAre("a", "b", "c", "asset", "classify_x2y3",
                                         "classify_xy", "predict", "regress_x2y3",
                                         "regress_xy", "regress_xy2", "signatures"));
  EXPECT_THAT(PathsToKeys(*g), ElementsAre(Pair("a", "a/.ATTRIBUTES/VARIABLE_VALUE"),
                                           Pair("b", "b/.ATTRIBUTES/VARIABLE_VALUE"),
                                           Pair("c", "c/.ATTRIBUTES/VARIABLE_VALUE")));
  const TrackableObject::Attribute& a = g->nodes()[1].attributes[0];
  EXPECT_EQ(a.name, "VARIABLE_VALUE");
  EXPECT_EQ(a.full_name, "a");
  const auto paths = g->NodePaths();
  EXPECT_EQ(*paths[23], "signatures/serving_default");
  EXPECT_EQ(*paths[12], "classify_x2y3/trace_0");
  // Every attribute names an entry of the bundle.
  for (const auto& [path, attr] : g->AttributesByPath()) {
    EXPECT_NE((*r)->Find(attr.checkpoint_key), nullptr) << path;
  }
}

TEST(ObjectGraphTest, TwoShardBundle) {
  auto r = BundleReader::Open(TfTestdata("tf_tftrt2_2shards/variables"));
  ASSERT_TRUE(r.ok());
  absl::StatusOr<ObjectGraph> g = ReadObjectGraph(**r);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_THAT(PathsToKeys(*g), ElementsAre(Pair("v", "v/.ATTRIBUTES/VARIABLE_VALUE")));
}

TEST(ObjectGraphTest, NameBasedCheckpointHasNone) {
  auto r = BundleReader::Open(TfTestdata("tf_contrib_half_plus_two_ckpt_v2/export"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(ReadObjectGraph(**r).status().code(), absl::StatusCode::kNotFound);
}

ObjectGraph SmallGraph() {
  // root -> model -> dense -> {kernel, bias}; optimizer slot "m" of kernel.
  std::vector<TrackableObject> n(6);
  n[0].children = {{1, "model"}, {5, "optimizer"}};
  n[1].children = {{2, "dense"}};
  n[2].children = {{3, "kernel"}, {4, "bias"}};
  n[3].attributes = {{"VARIABLE_VALUE", "dense/kernel",
                      "model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE", false}};
  n[4].attributes = {{"VARIABLE_VALUE", "dense/bias",
                      "model/dense/bias/.ATTRIBUTES/VARIABLE_VALUE", true}};
  n[5].slot_variables = {{3, "m", 4}};
  n[5].registered_saver = std::make_pair(std::string("saver"), std::string("obj"));
  n[5].has_checkpoint_values = true;
  return *ObjectGraph::Create(std::move(n));
}

TEST(ObjectGraphTest, WriterRoundTripsThroughABundle) {
  const ObjectGraph g = SmallGraph();
  TempDir dir;
  ASSERT_TRUE(
      WriteBundle(dir.file("ckpt"),
                  {{kObjectGraphKey, *TensorValue::FromStrings({}, {g.Serialize()})},
                   {"model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE",
                    *TensorValue::FromBytes(TfDType::kFloat, {1}, Pack<float>({1.f}))}})
          .ok());
  auto r = BundleReader::Open(dir.file("ckpt"));
  ASSERT_TRUE(r.ok());
  absl::StatusOr<ObjectGraph> back = ReadObjectGraph(**r);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->Serialize(), g.Serialize());
  EXPECT_THAT(
      PathsToKeys(*back),
      ElementsAre(
          Pair("model/dense/kernel", "model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE"),
          Pair("model/dense/bias", "model/dense/bias/.ATTRIBUTES/VARIABLE_VALUE")));
  const TrackableObject& opt = back->nodes()[5];
  ASSERT_EQ(opt.slot_variables.size(), 1u);
  EXPECT_EQ(opt.slot_variables[0].slot_name, "m");
  EXPECT_EQ(opt.registered_saver->first, "saver");
  EXPECT_EQ(opt.has_checkpoint_values, true);
  EXPECT_TRUE(back->nodes()[4].attributes[0].optional_restore);
}

TEST(ObjectGraphTest, RefusesDanglingIds) {
  std::vector<TrackableObject> n(1);
  n[0].children = {{7, "x"}};
  EXPECT_EQ(ObjectGraph::Create(n).status().code(), absl::StatusCode::kInvalidArgument);
  // Serialized with a dangling child: DataLoss when parsed.
  std::vector<TrackableObject> ok(2);
  ok[0].children = {{1, "x"}};
  std::string bytes = ObjectGraph::Create(ok)->Serialize();
  absl::Status s = ObjectGraph::Parse(bytes.substr(0, bytes.size() - 2), "test").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_EQ(ObjectGraph::Parse("\xff\xff\xff", "test").status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(MetaGraphTest, ContribHalfPlusTwo) {
  absl::StatusOr<MetaGraph> m =
      MetaGraph::ReadFile(TfTestdata("tf_contrib_half_plus_two_ckpt_v2/export.meta"));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->num_nodes(), 61);
  EXPECT_EQ(m->tensorflow_version(), "0.12.head");
  std::vector<std::string> names;
  for (const GraphVariable& v : m->variables()) names.push_back(v.name);
  EXPECT_THAT(names, ElementsAre("a", "b", "asset_path", "global_step", "filename1",
                                 "filename2"));
  const GraphVariable& a = m->variables()[0];
  EXPECT_EQ(a.op, "Variable");
  EXPECT_EQ(a.dtype, static_cast<int>(TfDType::kFloat));
  ASSERT_TRUE(a.shape.has_value());
  EXPECT_TRUE(a.shape->empty());  // a scalar
  EXPECT_EQ(m->variables()[1].dtype, static_cast<int>(TfDType::kFloat));
  EXPECT_EQ(m->variables()[3].dtype, static_cast<int>(TfDType::kInt32));
  ASSERT_TRUE(m->saver().has_value());
  EXPECT_EQ(m->saver()->filename_tensor_name, "save/Const:0");
  EXPECT_EQ(m->saver()->save_tensor_name, "save/Identity:0");
  EXPECT_EQ(m->saver()->restore_op_name, "save/restore_all");
  EXPECT_TRUE(m->saver()->sharded);
  EXPECT_EQ(m->saver()->keep_checkpoint_every_n_hours, 10000.0f);
  EXPECT_EQ(m->saver()->version, 2);  // V2: TensorBundle
  ASSERT_EQ(m->collections().count("variables"), 1u);
  EXPECT_EQ(m->collections().at("variables").kind, Collection::Kind::kBytesList);
  absl::StatusOr<std::vector<CollectionVariable>> vars =
      m->CollectionVariables("variables");
  ASSERT_TRUE(vars.ok()) << vars.status();
  ASSERT_EQ(vars->size(), 3u);
  EXPECT_EQ((*vars)[0].variable_name, "a:0");
  EXPECT_EQ((*vars)[0].snapshot_name, "a/read:0");
  EXPECT_EQ((*vars)[0].initializer_name, "a/Assign");
  EXPECT_EQ((*vars)[1].variable_name, "b:0");
  EXPECT_EQ((*vars)[2].variable_name, "global_step:0");
  absl::StatusOr<std::vector<CollectionVariable>> trainable =
      m->CollectionVariables("trainable_variables");
  ASSERT_TRUE(trainable.ok());
  EXPECT_EQ(trainable->size(), 3u);
  // Variables a and b are what the checkpoint next to it holds.
  auto r = BundleReader::Open(TfTestdata("tf_contrib_half_plus_two_ckpt_v2/export"));
  ASSERT_TRUE(r.ok());
  EXPECT_NE((*r)->Find(m->variables()[0].name), nullptr);
  EXPECT_NE((*r)->Find(m->variables()[1].name), nullptr);
  EXPECT_EQ(m->CollectionVariables("nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(m->CollectionVariables("serving_init_op").status().code(),
            absl::StatusCode::kDataLoss);  // a node_list, not VariableDefs
}

TEST(MetaGraphTest, RefusesWhatIsNotAMetaGraph) {
  absl::Status s =
      MetaGraph::ReadFile(TfTestdata("serving_bad_half_plus_two_v1/export")).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_EQ(MetaGraph::ReadFile(TfTestdata("no.meta")).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(MetaGraph::ReadFile(TfTestdata("")).status().code(),
            absl::StatusCode::kInvalidArgument);  // a directory
}

}  // namespace
}  // namespace meshckpt::tf
