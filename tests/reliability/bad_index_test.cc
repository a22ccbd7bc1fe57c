// Restore requests and indexes that do not match the checkpoint, in one
// process: every case must give a clear Status (the canonical code, a
// message naming what is wrong), never a crash, a hang or an out-of-bounds
// access (the sanitizer build runs this too). Split from bad_input_test.cc.
//
// Cases: mismatched dtype/shape and unknown keys on restore; no checkpoint;
// indexes (with a valid checksum) whose chunks lie outside the tensor,
// overlap, leave holes, or whose shapes overflow.
#include <xxhash.h>

#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/checkpoint/reader/checkpoint_reader.h"
#include "meshckpt/comm/communicator.h"
#include "meshckpt/io/format/index_file.h"
#include "meshckpt/io/format/index_proto.h"
#include "meshckpt/io/fs/fs.h"
#include "meshckpt/mesh/mesh.h"
#include "mpi_tests/test_tensors.h"
#include "tests/file_bytes.h"

namespace meshckpt {
namespace {

namespace fs = std::filesystem;
using test::DeviceBuffers;
using test::TensorSpec;

constexpr int64_t kBig = int64_t{1} << 40;

// The index file format of io/format/index_file.h, without touching the version.
std::string FrameIndex(const proto::CheckpointIndexProto& index) {
  std::string out;
  index.SerializeToString(&out);
  const uint64_t h = XXH3_64bits(out.data(), out.size());
  for (int b = 0; b < 8; ++b) out.push_back(static_cast<char>(h >> (8 * b)));
  out.append(kIndexMagic, 8);
  return out;
}

// A committed checkpoint to restore from with wrong requests, and to derive
// hostile indexes from.
class SavedCheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir_);
    const Layout rows = Layout::Create({"x", "unsharded"}, mesh_).value();
    const Layout cols = Layout::Create({"unsharded", "y"}, mesh_).value();
    specs_ = {{{"a", DType::kFloat32, {12, 10}}, rows},
              {{"b", DType::kInt32, {6, 9}}, cols}};
    std::vector<DeviceBuffers> data;
    for (const auto& [spec, layout] : specs_) {
      data.push_back(DeviceBuffers::Filled(spec, layout));
    }
    std::vector<SaveTensor> save;
    for (size_t i = 0; i < specs_.size(); ++i) {
      save.push_back(
          test::MakeSaveTensor(specs_[i].first, specs_[i].second, data[i].ConstPtrs()));
    }
    IoOptions o;
    o.checksum_tile_bytes = 64;
    ASSERT_TRUE(SaveTensors(*comm_, prefix_, save, {}, o).ok());
    index_ = DecodeIndexProto(ReadFileBytes(IndexFilePath(prefix_)), "x").value();
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  absl::Status Restore(std::vector<RestoreTensor> want) {
    return RestoreTensors(*comm_, prefix_, want, IoOptions());
  }

  // Writes `index` (with a valid footer) over the checkpoint's index and
  // returns what the reader and a full restore make of it.
  std::pair<absl::Status, absl::Status> WithIndex(
      const proto::CheckpointIndexProto& index) {
    WriteFileBytes(IndexFilePath(prefix_), EncodeIndexProto(index));
    absl::Status open = CheckpointReader::Open(prefix_).status();
    std::vector<DeviceBuffers> bufs;
    std::vector<RestoreTensor> want;
    for (const auto& [spec, layout] : specs_) {
      bufs.push_back(DeviceBuffers::Sentinel(spec, layout));
    }
    for (size_t i = 0; i < specs_.size(); ++i) {
      want.push_back(
          test::MakeRestoreTensor(specs_[i].first, specs_[i].second, bufs[i].Ptrs()));
    }
    return {open, Restore(want)};
  }

  std::unique_ptr<Communicator> comm_ = SerialCommunicator();
  Mesh mesh_ = Mesh::Create({{"x", 2}, {"y", 2}}, 0, 1).value();
  std::string dir_ = "/tmp/meshckpt_bad_input_" + RandomId();
  std::string prefix_ = dir_ + "/ckpt";
  std::vector<std::pair<TensorSpec, Layout>> specs_;
  proto::CheckpointIndexProto index_;
};

TEST_F(SavedCheckpointTest, MismatchedDtypeOrShapeIsFailedPrecondition) {
  const auto& [spec, layout] = specs_[0];
  TensorSpec wrong_dtype = spec;
  wrong_dtype.dtype = DType::kFloat64;
  DeviceBuffers b1 = DeviceBuffers::Sentinel(wrong_dtype, layout);
  absl::Status s = Restore({test::MakeRestoreTensor(wrong_dtype, layout, b1.Ptrs())});
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "'a'")) << s;
  EXPECT_EQ(b1.Check(false, 0, nullptr), 0) << "a failed restore wrote into buffers";

  for (const std::vector<int64_t>& shape :
       std::vector<std::vector<int64_t>>{{12, 11}, {10, 12}, {120}, {12, 10, 1}}) {
    TensorSpec wrong_shape = spec;
    wrong_shape.shape = shape;
    const Layout l = shape.size() == 2 ? layout : Layout::Replicated(mesh_, shape.size());
    DeviceBuffers b = DeviceBuffers::Sentinel(wrong_shape, l);
    s = Restore({test::MakeRestoreTensor(wrong_shape, l, b.Ptrs())});
    EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), "shape")) << s;
  }
}

TEST_F(SavedCheckpointTest, UnknownKeyIsNotFound) {
  TensorSpec other = specs_[0].first;
  other.key = "not/there";
  DeviceBuffers b = DeviceBuffers::Sentinel(other, specs_[0].second);
  absl::Status s = Restore({test::MakeRestoreTensor(other, specs_[0].second, b.Ptrs())});
  EXPECT_TRUE(absl::IsNotFound(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "not/there")) << s;
}

TEST_F(SavedCheckpointTest, NoCheckpointIsNotFound) {
  EXPECT_TRUE(absl::IsNotFound(CheckpointReader::Open(dir_ + "/nothing").status()));
  EXPECT_TRUE(absl::IsNotFound(RestoreTensors(*comm_, dir_ + "/nothing", {}, {})));
  EXPECT_TRUE(absl::IsNotFound(RestoreTensors(*comm_, "/no/such/dir/x", {}, {})));
}

TEST_F(SavedCheckpointTest, ChunkOutsideTheTensorIsDataLoss) {
  proto::CheckpointIndexProto p = index_;
  p.mutable_tensors(0)->mutable_chunks(0)->set_origin(0, 100);
  auto [open, restore] = WithIndex(p);
  EXPECT_TRUE(absl::IsDataLoss(open)) << open;
  EXPECT_TRUE(absl::IsDataLoss(restore)) << restore;
  EXPECT_TRUE(absl::StrContains(open.message(), "'a'")) << open;
  // Negative origin.
  p = index_;
  p.mutable_tensors(0)->mutable_chunks(0)->set_origin(0, -1);
  std::tie(open, restore) = WithIndex(p);
  EXPECT_TRUE(absl::IsDataLoss(open)) << open;
  EXPECT_TRUE(absl::IsDataLoss(restore)) << restore;
  // Origin near int64 max: origin + size overflows.
  p = index_;
  p.mutable_tensors(0)->mutable_chunks(1)->set_origin(
      0, std::numeric_limits<int64_t>::max() - 1);
  std::tie(open, restore) = WithIndex(p);
  EXPECT_TRUE(absl::IsDataLoss(open)) << open;
  EXPECT_TRUE(absl::IsDataLoss(restore)) << restore;
}

TEST_F(SavedCheckpointTest, OverlappingOrMissingChunksAreDataLoss) {
  proto::CheckpointIndexProto p = index_;
  ASSERT_GE(p.tensors(0).chunks_size(), 2);
  // Second chunk moved onto the first: overlap and a hole.
  const proto::ChunkProto first = p.tensors(0).chunks(0);
  for (int d = 0; d < first.origin_size(); ++d) {
    p.mutable_tensors(0)->mutable_chunks(1)->set_origin(d, first.origin(d));
  }
  auto [open, restore] = WithIndex(p);
  EXPECT_TRUE(absl::IsDataLoss(open)) << open;
  EXPECT_TRUE(absl::IsDataLoss(restore)) << restore;
  // The same chunk twice.
  p = index_;
  *p.mutable_tensors(0)->add_chunks() = p.tensors(0).chunks(0);
  std::tie(open, restore) = WithIndex(p);
  EXPECT_TRUE(absl::IsDataLoss(open)) << open;
  // A chunk missing: a hole.
  p = index_;
  p.mutable_tensors(0)->mutable_chunks()->RemoveLast();
  std::tie(open, restore) = WithIndex(p);
  EXPECT_TRUE(absl::IsDataLoss(open)) << open;
  EXPECT_TRUE(absl::IsDataLoss(restore)) << restore;
  // Checksums that do not match the tile count.
  p = index_;
  p.mutable_tensors(1)->mutable_chunks(0)->add_tile_checksums(1);
  std::tie(open, restore) = WithIndex(p);
  EXPECT_TRUE(absl::IsDataLoss(open)) << open;
  EXPECT_TRUE(absl::StrContains(open.message(), "'b'")) << open;
  // A zero tile shape (division by zero if trusted).
  p = index_;
  p.mutable_tensors(1)->mutable_chunks(0)->set_tile_shape(0, 0);
  std::tie(open, restore) = WithIndex(p);
  EXPECT_TRUE(absl::IsDataLoss(open)) << open;
}

TEST_F(SavedCheckpointTest, HostileShapesAndFieldsAreDataLoss) {
  const int64_t max = std::numeric_limits<int64_t>::max();
  // Shape whose product overflows int64, with a chunk covering it.
  proto::CheckpointIndexProto p = index_;
  p.mutable_tensors(0)->set_shape(0, kBig);
  p.mutable_tensors(0)->set_shape(1, kBig);
  auto [open, restore] = WithIndex(p);
  EXPECT_TRUE(absl::IsDataLoss(open)) << open;
  EXPECT_TRUE(absl::IsDataLoss(restore)) << restore;
  // Huge but valid element count, chunks not covering it.
  p = index_;
  p.mutable_tensors(0)->set_shape(0, max / 16);
  std::tie(open, restore) = WithIndex(p);
  EXPECT_TRUE(absl::IsDataLoss(open)) << open;
  // Negative dimension.
  p = index_;
  p.mutable_tensors(0)->set_shape(1, -10);
  std::tie(open, restore) = WithIndex(p);
  EXPECT_TRUE(absl::IsDataLoss(open)) << open;
  // Shape rank differs from the layout's.
  p = index_;
  p.mutable_tensors(0)->add_shape(1);
  std::tie(open, restore) = WithIndex(p);
  EXPECT_TRUE(absl::IsDataLoss(open)) << open;
  // Unknown dtype enum value.
  p = index_;
  p.mutable_tensors(0)->set_dtype(static_cast<proto::DataType>(999));
  std::tie(open, restore) = WithIndex(p);
  EXPECT_TRUE(absl::IsDataLoss(open)) << open;
  // Duplicate key; empty key; empty dataset.
  p = index_;
  p.mutable_tensors(1)->set_key("a");
  std::tie(open, restore) = WithIndex(p);
  EXPECT_TRUE(absl::IsDataLoss(open)) << open;
  p = index_;
  p.mutable_tensors(1)->set_key("");
  std::tie(open, restore) = WithIndex(p);
  EXPECT_TRUE(absl::IsDataLoss(open)) << open;
  p = index_;
  p.mutable_tensors(1)->set_dataset("");
  std::tie(open, restore) = WithIndex(p);
  EXPECT_TRUE(absl::IsDataLoss(open)) << open;
  // A bad mesh.
  p = index_;
  p.mutable_mesh()->clear_dimensions();
  std::tie(open, restore) = WithIndex(p);
  EXPECT_TRUE(absl::IsDataLoss(open)) << open;
  // Needs a newer reader (framed by hand: EncodeIndexFile sets the version).
  p = index_;
  p.mutable_version()->set_min_consumer(kFormatVersion + 1);
  WriteFileBytes(IndexFilePath(prefix_), FrameIndex(p));
  open = CheckpointReader::Open(prefix_).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(open)) << open;
  // Numeric chunks are read at the file offsets the index records; without
  // them (older or MPI-IO checkpoints) through HDF5 by dataset path.
  auto without_offsets = [](proto::CheckpointIndexProto q) {
    for (proto::ChunkProto& c : *q.mutable_tensors(0)->mutable_chunks()) {
      c.clear_file_offset();
      c.clear_storage_shape();
    }
    return q;
  };
  // A dataset path pointing at another tensor's dataset (same dtype family
  // mismatch): must not read out of bounds.
  p = without_offsets(index_);
  p.mutable_tensors(0)->set_dataset(index_.tensors(1).dataset());
  std::tie(open, restore) = WithIndex(p);
  EXPECT_FALSE(restore.ok());
  // A dataset path that does not exist in the data file.
  p = without_offsets(index_);
  p.mutable_tensors(0)->set_dataset("no/such/dataset");
  std::tie(open, restore) = WithIndex(p);
  EXPECT_TRUE(absl::IsDataLoss(restore)) << restore;
  // A file offset past the end of the data file, and one pointing at other
  // bytes of the file.
  p = index_;
  ASSERT_TRUE(p.tensors(0).chunks(0).has_file_offset());
  p.mutable_tensors(0)->mutable_chunks(0)->set_file_offset(p.data_file_size());
  std::tie(open, restore) = WithIndex(p);
  EXPECT_TRUE(absl::IsDataLoss(open)) << open;
  p = index_;
  p.mutable_tensors(0)->mutable_chunks(0)->set_file_offset(0);
  std::tie(open, restore) = WithIndex(p);
  EXPECT_TRUE(absl::IsDataLoss(restore)) << restore;
  // A data file size that does not match.
  p = index_;
  p.set_data_file_size(p.data_file_size() + 1);
  std::tie(open, restore) = WithIndex(p);
  EXPECT_TRUE(absl::IsDataLoss(open)) << open;
  EXPECT_TRUE(absl::IsDataLoss(restore)) << restore;
}

}  // namespace
}  // namespace meshckpt
