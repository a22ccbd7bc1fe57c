// RewriteCheckpoint in one process (the multi-rank memory test is
// mpi_tests/stream_reshard_test.cc): chunks cut by SplitBox, casts and
// their metadata, what it refuses, a damaged source leaving no
// destination, and PruneObjectGraph.
#include "meshckpt/checkpoint/engine/stream_rewrite.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/base/float_cast.h"
#include "meshckpt/checkpoint/engine/checkpoint_index.h"
#include "meshckpt/checkpoint/engine/save_plan.h"
#include "meshckpt/io/fs/fs.h"

namespace meshckpt {
namespace {

using internal::SplitBox;
using ::testing::HasSubstr;

TEST(SplitBox, PiecesCoverTheBoxInOrderWithinTheLimit) {
  const Box box = Box::Create({3, 5, 2}, {7, 6, 10}).value();
  for (int64_t max : {4, 40, 100, 240, 1000, 1680, 5000}) {
    SCOPED_TRACE(max);
    std::vector<Box> pieces = SplitBox(box, 4, max);
    int64_t elements = 0;
    for (size_t i = 0; i < pieces.size(); ++i) {
      EXPECT_TRUE(box.Contains(pieces[i]));
      EXPECT_LE(pieces[i].num_elements() * 4, std::max<int64_t>(max, 4));
      elements += pieces[i].num_elements();
      for (size_t j = 0; j < i; ++j) {
        EXPECT_TRUE(Intersect(pieces[i], pieces[j]).empty());
        EXPECT_LT(pieces[j].origin(), pieces[i].origin());  // Row-major order.
      }
    }
    EXPECT_EQ(elements, box.num_elements());
  }
  EXPECT_EQ(SplitBox(box, 4, 1680).size(), 1u);
  // Rows of 240 bytes fit 400 bytes one at a time: 7 pieces of [1, 6, 10].
  EXPECT_EQ(SplitBox(box, 4, 400).size(), 7u);
  // Inner rows of 40 bytes, five to a piece, whole outer rows cut in two.
  EXPECT_EQ(SplitBox(box, 4, 200).size(), 14u);
}

class StreamRewriteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = "/tmp/meshckpt_rewrite_" + RandomId();
    std::filesystem::create_directories(dir_);
    src_ = dir_ + "/src";
    w_.resize(40 * 30);
    for (size_t i = 0; i < w_.size(); ++i) w_[i] = 1.0f / static_cast<float>(i + 3);
    std::vector<int32_t> ids = {1, 2, 3};
    CheckpointContents c;
    c.object_graph.nodes.resize(3);
    c.object_graph.nodes[0].children = {{1, "w"}, {2, "ids"}};
    c.object_graph.nodes[1].attributes = {{"VARIABLE_VALUE", "w"}};
    c.object_graph.nodes[2].attributes = {{"VARIABLE_VALUE", "ids"}};
    absl::Status s =
        SaveTensors(*comm_, src_,
                    {{"w", "", DType::kFloat32, {40, 30}, Rep(2), {}, {w_.data()}},
                     {"ids", "", DType::kInt32, {3}, Rep(1), {}, {ids.data()}}},
                    c, {});
    ASSERT_TRUE(s.ok()) << s;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  Layout Rep(int rank) const {
    return Layout::Create(std::vector<std::string>(rank, "unsharded"), mesh_).value();
  }
  std::unique_ptr<CheckpointHandle> Open(const std::string& prefix) {
    absl::StatusOr<std::unique_ptr<CheckpointHandle>> h =
        CheckpointHandle::Open(*comm_, prefix);
    EXPECT_TRUE(h.ok()) << h.status();
    return h.ok() ? *std::move(h) : nullptr;
  }
  CheckpointContents Contents() const {
    CheckpointContents c;
    c.mesh = mesh_;
    return c;
  }

  std::unique_ptr<Communicator> comm_ = SerialCommunicator();
  Mesh mesh_ = Mesh::Create({{"x", 3}}, 0, 1).value();
  std::string dir_, src_;
  std::vector<float> w_;
};

TEST_F(StreamRewriteTest, CastsToBfloat16AndRecordsIt) {
  std::unique_ptr<CheckpointHandle> h = Open(src_);
  RewriteOptions o;
  o.max_memory = kMinRewriteMemory;
  Layout split = Layout::Create({"x", "unsharded"}, mesh_).value();
  ASSERT_TRUE(RewriteCheckpoint(*h, dir_ + "/bf16", {{"w", "", DType::kBfloat16, split}},
                                Contents(), o)
                  .ok());
  std::unique_ptr<CheckpointHandle> out = Open(dir_ + "/bf16");
  const CheckpointIndex::Tensor* t = out->index().Find("w");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->dtype, DType::kBfloat16);
  EXPECT_EQ(out->index().Find("ids"), nullptr);
  EXPECT_EQ(out->index().record().user_metadata.at(CastMetadataKey("w")),
            "float32 -> bfloat16, round to nearest even");
  std::vector<uint16_t> got(w_.size());
  ASSERT_TRUE(out->ReadBox("w", Box::FromShape({40, 30}), got.data()).ok());
  for (size_t i = 0; i < w_.size(); ++i) {
    ASSERT_EQ(got[i], DoubleToBfloat16Bits(w_[i])) << i;
  }
}

TEST_F(StreamRewriteTest, RefusesBadRequestsAndLeavesNothing) {
  std::unique_ptr<CheckpointHandle> h = Open(src_);
  const std::string dst = dir_ + "/dst";
  RewriteOptions o;
  absl::Status s =
      RewriteCheckpoint(*h, dst, {{"nope", "", DType::kFloat32, Rep(1)}}, Contents(), o);
  EXPECT_TRUE(absl::IsNotFound(s)) << s;
  s = RewriteCheckpoint(*h, dst, {{"ids", "", DType::kFloat32, Rep(1)}}, Contents(), o);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("cannot be cast from int32 to float32"));
  o.max_memory = kMinRewriteMemory - 1;
  s = RewriteCheckpoint(*h, dst, {{"ids", "", DType::kInt32, Rep(1)}}, Contents(), o);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  o.max_memory = kMinRewriteMemory;
  o.io.transfer_mode = TransferMode::kIndependent;
  s = RewriteCheckpoint(*h, dst, {{"ids", "", DType::kInt32, Rep(1)}}, Contents(), o);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_FALSE(FileExists(IndexFilePath(dst)));
}

TEST_F(StreamRewriteTest, DamagedSourceLeavesNoDestination) {
  {
    std::unique_ptr<CheckpointHandle> h = Open(src_);
    const CheckpointIndex::Tensor* w = h->index().Find("w");
    const ChunkRecord& c = h->index().chunk(*w, 0);
    ASSERT_TRUE(c.file_offset.has_value());
    std::fstream f(DataFilePath(src_), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(*c.file_offset + 100);
    f.put('\x5a');
  }
  std::unique_ptr<CheckpointHandle> h = Open(src_);
  const std::string dst = dir_ + "/dst";
  absl::Status s = RewriteCheckpoint(*h, dst, {{"w", "", DType::kFloat32, Rep(2)}},
                                     Contents(), RewriteOptions());
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("checksum mismatch"));
  EXPECT_FALSE(FileExists(IndexFilePath(dst)));
  EXPECT_FALSE(FileExists(DataFilePath(dst)));
  for (const auto& e : std::filesystem::directory_iterator(dir_)) {
    EXPECT_THAT(e.path().string(), Not(HasSubstr("partial"))) << "left behind";
  }
}

TEST(PruneObjectGraph, KeepsWhatLeadsToAKeptTensor) {
  // root -> model -> {dense -> kernel, bias}; root -> optimizer -> slot of
  // kernel; root -> empty.
  ObjectGraph g;
  g.nodes.resize(6);
  g.nodes[0].children = {{1, "model"}, {4, "optimizer"}, {5, "empty"}};
  g.nodes[1].children = {{2, "dense"}};
  g.nodes[2].children = {{3, "bias_holder"}};
  g.nodes[2].attributes = {{"kernel", "model/dense/kernel"}};
  g.nodes[3].attributes = {{"bias", "model/dense/bias"}};
  g.nodes[4].attributes = {{"m", "optimizer/kernel/m"}};
  ObjectGraph p = PruneObjectGraph(
      g, [](const std::string& key) { return key == "model/dense/kernel"; });
  ASSERT_EQ(p.nodes.size(), 3u);
  EXPECT_EQ(p.nodes[0].children, (std::vector<ObjectGraph::Child>{{1, "model"}}));
  EXPECT_EQ(p.nodes[1].children, (std::vector<ObjectGraph::Child>{{2, "dense"}}));
  EXPECT_TRUE(p.nodes[2].children.empty());
  EXPECT_EQ(p.nodes[2].attributes,
            (std::vector<ObjectGraph::Attribute>{{"kernel", "model/dense/kernel"}}));
  // Keeping everything changes nothing but the childless empty node.
  ObjectGraph all = PruneObjectGraph(g, [](const std::string&) { return true; });
  EXPECT_EQ(all.nodes.size(), 5u);
  // A cycle does not keep nodes alive by itself.
  g.nodes[5].children = {{0, "back"}};
  EXPECT_EQ(PruneObjectGraph(g, [](const std::string&) { return false; }).nodes.size(),
            1u);
}

}  // namespace
}  // namespace meshckpt
