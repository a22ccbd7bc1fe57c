// SaveTensors / RestoreTensors in one process (SerialCommunicator), with
// several devices on the one rank so resharding paths run without mpirun.
#include <complex>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/io/format/index_file.h"
#include "meshckpt/io/format/index_proto.h"
#include "meshckpt/io/fs/fs.h"
#include "meshckpt/layout/shard_map.h"
#include "tests/file_bytes.h"

namespace meshckpt {
namespace {

using ::testing::HasSubstr;

std::vector<std::string>& Prefixes() {
  static auto* p = new std::vector<std::string>;
  return *p;
}

std::string TempPrefix(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  std::string base = dir ? dir : "/tmp";
  Prefixes().push_back(base + "/meshckpt_serial_" + name + "_" + RandomId());
  return Prefixes().back();
}

// Element g of a float64 tensor.
double Value(int64_t g) { return g * 0.25 - 3; }

// Buffers of every local device filled with Value(global flat index).
std::vector<std::vector<double>> Fill(const Layout& layout,
                                      const std::vector<int64_t>& shape) {
  ShardMap map = ShardMap::Create(layout, shape).value();
  std::vector<std::vector<double>> out;
  for (int64_t d : layout.mesh().local_device_ids()) {
    Box box = map.DeviceBox(d);
    std::vector<double> buf(box.num_elements());
    std::vector<int64_t> idx(box.rank(), 0);
    for (int64_t i = 0; i < box.num_elements(); ++i) {
      int64_t g = 0, rem = i;
      for (int k = box.rank() - 1; k >= 0; --k) {
        idx[k] = rem % box.shape()[k];
        rem /= box.shape()[k];
      }
      for (int k = 0; k < box.rank(); ++k) g = g * shape[k] + box.origin()[k] + idx[k];
      buf[i] = Value(g);
    }
    out.push_back(std::move(buf));
  }
  return out;
}

class ShardIoSerial : public ::testing::Test {
 protected:
  void TearDown() override {
    for (const std::string& p : Prefixes()) {
      (void)RemoveFileIfExists(DataFilePath(p));
      (void)RemoveFileIfExists(IndexFilePath(p));
    }
    Prefixes().clear();
  }

  std::unique_ptr<Communicator> comm_ = SerialCommunicator();
};

TEST_F(ShardIoSerial, ReshardsBetweenMeshesAndLayouts) {
  const std::vector<int64_t> shape = {13, 7};
  Mesh save_mesh = Mesh::Create({{"x", 2}, {"y", 3}}, 0, 1).value();
  Layout save_layout = Layout::Create({"y", "x"}, save_mesh).value();
  auto saved = Fill(save_layout, shape);
  std::vector<const void*> ptrs;
  for (auto& b : saved) ptrs.push_back(b.data());
  const std::string prefix = TempPrefix("reshard");
  IoOptions opts;
  opts.checksum_tile_bytes = 64;  // Many small tiles: exercises slab reads.
  ASSERT_TRUE(SaveTensors(*comm_, prefix,
                          {{"w", "", DType::kFloat64, shape, save_layout, ptrs}}, {},
                          opts)
                  .ok());

  for (auto specs : std::vector<std::vector<std::string>>{{"a", "unsharded"},
                                                          {"unsharded", "a"},
                                                          {"b", "a"},
                                                          {"unsharded", "unsharded"}}) {
    Mesh mesh = Mesh::Create({{"a", 4}, {"b", 5}}, 0, 1).value();
    Layout layout = Layout::Create(specs, mesh).value();
    auto want = Fill(layout, shape);
    std::vector<std::vector<double>> got(want.size());
    std::vector<void*> out;
    for (size_t i = 0; i < want.size(); ++i) {
      got[i].assign(want[i].size(), -1);
      out.push_back(got[i].data());
    }
    absl::Status s =
        RestoreTensors(*comm_, prefix, {{"w", DType::kFloat64, shape, layout, out}}, {});
    ASSERT_TRUE(s.ok()) << s;
    EXPECT_EQ(got, want) << layout.ToString();
  }
}

TEST_F(ShardIoSerial, DetectsFlippedDataByte) {
  const std::vector<int64_t> shape = {64, 16};
  Mesh mesh = Mesh::Create({{"x", 2}}, 0, 1).value();
  Layout layout = Layout::Create({"x", "unsharded"}, mesh).value();
  auto saved = Fill(layout, shape);
  const std::string prefix = TempPrefix("flip");
  ASSERT_TRUE(
      SaveTensors(
          *comm_, prefix,
          {{"w", "", DType::kFloat64, shape, layout, {saved[0].data(), saved[1].data()}}},
          {}, {})
          .ok());
  // Find the first float of the data in the file and flip a bit of it.
  std::string bytes = ReadFileBytes(DataFilePath(prefix));
  double first = Value(0);
  size_t at = bytes.find(std::string(reinterpret_cast<char*>(&first), 8));
  ASSERT_NE(at, std::string::npos);
  bytes[at + 3] ^= 0x10;
  ASSERT_TRUE(WriteFileAtomically(DataFilePath(prefix), bytes).ok());
  std::vector<double> a(saved[0].size()), b(saved[1].size());
  absl::Status s = RestoreTensors(
      *comm_, prefix, {{"w", DType::kFloat64, shape, layout, {a.data(), b.data()}}}, {});
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("'w'"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("checksum"));
}

TEST_F(ShardIoSerial, StringsScalarsAndEmptyTensors) {
  Mesh mesh = Mesh::Create({{"x", 3}}, 0, 1).value();
  Layout vec = Layout::Create({"x"}, mesh).value();
  // 5 strings over 3 devices: blocks of 2, 2, 1.
  std::vector<std::string> s0 = {"alpha", ""}, s1 = {std::string("a\0b", 3), "d"},
                           s2 = {"last"};
  Layout scalar = Layout::Replicated(mesh, 0);
  double pi = 3.25;
  Layout empty = Layout::Create({"x", "unsharded"}, mesh).value();
  const std::string prefix = TempPrefix("strings");
  absl::Status s = SaveTensors(
      *comm_, prefix,
      {{"names", "", DType::kString, {5}, vec, {s0.data(), s1.data(), s2.data()}},
       {"pi", "", DType::kFloat64, {}, scalar, {&pi, &pi, &pi}},
       {"nothing", "", DType::kFloat32, {0, 4}, empty, {nullptr, nullptr, nullptr}}},
      {}, {});
  ASSERT_TRUE(s.ok()) << s;
  Mesh one = Mesh::Create({{"y", 1}}, 0, 1).value();
  std::vector<std::string> all(5);
  double got_pi = 0;
  s = RestoreTensors(
      *comm_, prefix,
      {{"names", DType::kString, {5}, Layout::Replicated(one, 1), {all.data()}},
       {"pi", DType::kFloat64, {}, Layout::Replicated(one, 0), {&got_pi}},
       {"nothing", DType::kFloat32, {0, 4}, Layout::Replicated(one, 2), {nullptr}}},
      {});
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(all,
            (std::vector<std::string>{"alpha", "", std::string("a\0b", 3), "d", "last"}));
  EXPECT_EQ(got_pi, 3.25);
}

TEST_F(ShardIoSerial, KeysAndMetadataNeedNotBeUtf8) {
  Mesh mesh = Mesh::Create({{"x", 1}}, 0, 1).value();
  Layout l = Layout::Replicated(mesh, 1);
  std::vector<float> v = {1, 2, 3, 4}, back(4);
  const std::string key = "w\xff\xfe";
  CheckpointContents opts;
  opts.user_metadata["note"] = "\xff\x00\xc3";
  const std::string prefix = TempPrefix("utf8");
  ASSERT_TRUE(SaveTensors(*comm_, prefix,
                          {{key, "", DType::kFloat32, {4}, l, {v.data()}}}, opts, {})
                  .ok());
  absl::StatusOr<IndexRecord> index = ReadCheckpointIndex(*comm_, prefix);
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_EQ(index->user_metadata.at("note"), opts.user_metadata["note"]);
  ASSERT_TRUE(
      RestoreTensors(*comm_, prefix, {{key, DType::kFloat32, {4}, l, {back.data()}}}, {})
          .ok());
  EXPECT_EQ(back, v);
  // Metadata keys are protobuf map keys: they must be UTF-8.
  CheckpointContents bad;
  bad.user_metadata["\xff"] = "x";
  absl::Status s = SaveTensors(*comm_, prefix + "b",
                               {{"v", "", DType::kFloat32, {4}, l, {v.data()}}}, bad, {});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
}

// Saves w = [13, 7] float64 sharded {"y", "x"} over a 2x3 mesh (uneven
// inner splits: edge chunks padded in the file) with `mode`; returns the
// prefix.
std::string SaveUneven(Communicator& comm, const std::string& name, TransferMode mode) {
  const std::vector<int64_t> shape = {13, 7};
  Mesh mesh = Mesh::Create({{"x", 2}, {"y", 3}}, 0, 1).value();
  Layout layout = Layout::Create({"y", "x"}, mesh).value();
  auto saved = Fill(layout, shape);
  std::vector<const void*> ptrs;
  for (auto& b : saved) ptrs.push_back(b.data());
  const std::string prefix = TempPrefix(name);
  IoOptions opts;
  opts.checksum_tile_bytes = 64;
  opts.transfer_mode = mode;
  EXPECT_TRUE(SaveTensors(comm, prefix, {{"w", "", DType::kFloat64, shape, layout, ptrs}},
                          {}, opts)
                  .ok());
  return prefix;
}

// Restores w of SaveUneven onto `specs` over a 4x5 mesh and compares.
void ExpectRestores(Communicator& comm, const std::string& prefix,
                    std::vector<std::string> specs, TransferMode mode) {
  const std::vector<int64_t> shape = {13, 7};
  Mesh mesh = Mesh::Create({{"a", 4}, {"b", 5}}, 0, 1).value();
  Layout layout = Layout::Create(specs, mesh).value();
  auto want = Fill(layout, shape);
  std::vector<std::vector<double>> got(want.size());
  std::vector<void*> out;
  for (size_t i = 0; i < want.size(); ++i) {
    got[i].assign(want[i].size(), -1);
    out.push_back(got[i].data());
  }
  IoOptions opts;
  opts.transfer_mode = mode;
  absl::Status s =
      RestoreTensors(comm, prefix, {{"w", DType::kFloat64, shape, layout, out}}, opts);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(got, want) << layout.ToString();
}

proto::CheckpointIndexProto ReadIndex(const std::string& prefix) {
  return DecodeIndexProto(ReadFileBytes(IndexFilePath(prefix)), prefix).value();
}

void WriteIndex(const std::string& prefix, proto::CheckpointIndexProto index) {
  ASSERT_TRUE(
      WriteFileAtomically(IndexFilePath(prefix), EncodeIndexProto(std::move(index))).ok());
}

TEST_F(ShardIoSerial, DirectSavesRecordWhereEveryChunkIs) {
  const std::string prefix = SaveUneven(*comm_, "located", TransferMode::kDirect);
  const proto::CheckpointIndexProto index = ReadIndex(prefix);
  ASSERT_EQ(index.tensors_size(), 1);
  ASSERT_EQ(index.tensors(0).chunks_size(), 6);
  for (const proto::ChunkProto& c : index.tensors(0).chunks()) {
    EXPECT_TRUE(c.has_file_offset());
    EXPECT_EQ(c.storage_shape_size(), 2);
    EXPECT_GT(c.file_offset(), 0);
    EXPECT_LT(c.file_offset(), index.data_file_size());
  }
  // Every mode reads it back, resharded.
  for (TransferMode mode : {TransferMode::kDirect, TransferMode::kIndependent}) {
    ExpectRestores(*comm_, prefix, {"a", "b"}, mode);
    ExpectRestores(*comm_, prefix, {"unsharded", "a"}, mode);
  }
}

// Checkpoints that do not record chunk locations (MPI-IO saves, files from
// before 0.2): a direct restore asks HDF5 where the storage is.
TEST_F(ShardIoSerial, RestoresCheckpointsWithoutChunkLocations) {
  const std::string mpiio = SaveUneven(*comm_, "mpiio", TransferMode::kIndependent);
  const proto::CheckpointIndexProto mpiio_index = ReadIndex(mpiio);
  for (const proto::ChunkProto& c : mpiio_index.tensors(0).chunks()) {
    EXPECT_FALSE(c.has_file_offset());
  }
  ExpectRestores(*comm_, mpiio, {"b", "a"}, TransferMode::kDirect);
  ExpectRestores(*comm_, mpiio, {"unsharded", "unsharded"}, TransferMode::kDirect);

  const std::string stripped = SaveUneven(*comm_, "stripped", TransferMode::kDirect);
  proto::CheckpointIndexProto index = ReadIndex(stripped);
  for (proto::ChunkProto& c : *index.mutable_tensors(0)->mutable_chunks()) {
    c.clear_file_offset();
    c.clear_storage_shape();
  }
  WriteIndex(stripped, index);
  ExpectRestores(*comm_, stripped, {"a", "unsharded"}, TransferMode::kDirect);
}

TEST_F(ShardIoSerial, BadChunkLocationsAreDataLoss) {
  const std::string prefix = SaveUneven(*comm_, "badloc", TransferMode::kDirect);
  const proto::CheckpointIndexProto good = ReadIndex(prefix);
  std::vector<std::function<void(proto::ChunkProto*)>> damage = {
      [&](proto::ChunkProto* c) { c->set_file_offset(good.data_file_size()); },
      [](proto::ChunkProto* c) { c->set_file_offset(-8); },
      [](proto::ChunkProto* c) {
        c->set_storage_shape(1, 1);
      },                                                      // Narrower than the chunk.
      [](proto::ChunkProto* c) { c->add_storage_shape(4); },  // Wrong rank.
      [](proto::ChunkProto* c) { c->clear_file_offset(); },   // Shape without offset.
      [](proto::ChunkProto* c) { c->set_storage_shape(0, int64_t{1} << 62); },
  };
  for (size_t i = 0; i < damage.size(); ++i) {
    proto::CheckpointIndexProto index = good;
    damage[i](index.mutable_tensors(0)->mutable_chunks(5));
    WriteIndex(prefix, index);
    std::vector<double> out(13 * 7);
    Mesh mesh = Mesh::Create({{"x", 1}}, 0, 1).value();
    absl::Status s = RestoreTensors(
        *comm_, prefix,
        {{"w", DType::kFloat64, {13, 7}, Layout::Replicated(mesh, 2), {out.data()}}}, {});
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << "damage " << i << ": " << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr("'w'")) << s;
  }
}

TEST_F(ShardIoSerial, MismatchErrors) {
  Mesh mesh = Mesh::Create({{"x", 1}}, 0, 1).value();
  Layout l = Layout::Replicated(mesh, 1);
  std::vector<float> v(4, 1.0f);
  const std::string prefix = TempPrefix("errors");
  ASSERT_TRUE(SaveTensors(*comm_, prefix,
                          {{"v", "", DType::kFloat32, {4}, l, {v.data()}}}, {}, {})
                  .ok());
  std::vector<int32_t> i(4);
  absl::Status s =
      RestoreTensors(*comm_, prefix, {{"v", DType::kInt32, {4}, l, {i.data()}}}, {});
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("float32"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("int32"));
  s = RestoreTensors(*comm_, prefix, {{"v", DType::kFloat32, {5}, l, {v.data()}}}, {});
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  s = RestoreTensors(*comm_, prefix, {{"u", DType::kFloat32, {4}, l, {v.data()}}}, {});
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  s = RestoreTensors(*comm_, prefix + "-missing",
                     {{"v", DType::kFloat32, {4}, l, {v.data()}}}, {});
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace meshckpt
