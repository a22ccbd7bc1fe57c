// ChunkSink in one process: both transfer modes write what HDF5 reads back,
// records carry the checksums of what was written (and, direct, where it
// is), string tensors split any way become the tensor's one blob, and
// misuse is FailedPrecondition.
#include "meshckpt/io/transfer/chunk_sink.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/comm/communicator.h"
#include "meshckpt/io/format/checksum.h"
#include "meshckpt/io/format/string_blob.h"
#include "meshckpt/io/fs/fs.h"
#include "meshckpt/io/transfer/data_file.h"
#include "meshckpt/layout/region.h"

namespace meshckpt {
namespace {

using ::testing::HasSubstr;

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/meshckpt_sink_" + name + "_" + RandomId() +
         ".h5";
}

// A [rows, cols] tensor cut into a grid of blocks as a layout cuts it: all
// of ceil(rows / parts_r) x ceil(cols / parts_c) but those at the edges.
std::vector<Box> Blocks(int64_t rows, int64_t cols, int64_t parts_r, int64_t parts_c) {
  const int64_t br = (rows + parts_r - 1) / parts_r, bc = (cols + parts_c - 1) / parts_c;
  std::vector<Box> boxes;
  for (int64_t i = 0; i < parts_r; ++i) {
    for (int64_t j = 0; j < parts_c; ++j) {
      const int64_t r0 = std::min(rows, i * br), c0 = std::min(cols, j * bc);
      boxes.push_back(*Box::Create(
          {r0, c0}, {std::min(rows, r0 + br) - r0, std::min(cols, c0 + bc) - c0}));
    }
  }
  return boxes;
}

class ChunkSinkTest : public ::testing::TestWithParam<TransferMode> {
 protected:
  void TearDown() override {
    EXPECT_EQ(CountOpenHdf5Objects().total(), 0) << CountOpenHdf5Objects().ToString();
    (void)RemoveFileIfExists(path_);
  }

  // w: int32 [13, 7] in 2x3 blocks, HDF5-chunked like them (edge chunks
  // padded: [0, 7) and [7, 13) by [0, 3), [3, 6) and [6, 7)); v: float64 [10] in 2 row
  // blocks, contiguous; s: strings [5, 3] in 2x2 blocks (inner splits), one of them empty
  // of elements.
  void Plan() {
    w_ = Blocks(13, 7, 2, 3);
    v_ = Blocks(10, 1, 2, 1);
    for (Box& b : v_) b = *Box::Create({b.origin()[0]}, {b.shape()[0]});
    s_ = {*Box::Create({0, 0}, {3, 2}), *Box::Create({0, 2}, {3, 1}),
          *Box::Create({3, 0}, {2, 3}), *Box::Create({5, 0}, {0, 3})};
    w_data_.resize(w_.size());
    for (size_t i = 0; i < w_.size(); ++i) {
      for (int64_t e = 0; e < w_[i].num_elements(); ++e) {
        w_data_[i].push_back(static_cast<int32_t>(1000 * i + e));
      }
    }
    v_data_.resize(v_.size());
    for (size_t i = 0; i < v_.size(); ++i) {
      for (int64_t e = 0; e < v_[i].num_elements(); ++e)
        v_data_[i].push_back(0.5 * e + i);
    }
    all_strings_.clear();
    for (int i = 0; i < 15; ++i) {
      all_strings_.push_back(i % 4 == 0 ? ""
                                        : std::string(i, static_cast<char>('a' + i)));
    }
    s_data_.resize(s_.size());
    for (size_t i = 0; i < s_.size(); ++i) {
      s_data_[i].resize(s_[i].num_elements());
      CopyRegionOf(all_strings_.data(), {5, 3}, s_[i], s_data_[i].data(), s_[i].shape(),
                   Box::FromShape(s_[i].shape()));
    }
    datasets_.assign(3, {});
    datasets_[0].spec = {"g/w", DType::kInt32, {13, 7}, {7, 3}, {{"key", "w"}}};
    for (size_t i = 0; i < w_.size(); ++i)
      datasets_[0].chunks.push_back({0, w_[i], w_data_[i].data()});
    datasets_[1].spec = {"v", DType::kFloat64, {10}, {}, {}};
    for (size_t i = 0; i < v_.size(); ++i)
      datasets_[1].chunks.push_back({0, v_[i], v_data_[i].data()});
    datasets_[2].spec = {"g/s", DType::kString, {5, 3}, {3, 2}, {{"key", "s"}}};
    for (size_t i = 0; i < s_.size(); ++i)
      datasets_[2].chunks.push_back({0, s_[i], s_data_[i].data()});
  }

  std::string path_;
  std::vector<Box> w_, v_, s_;
  std::vector<std::vector<int32_t>> w_data_;
  std::vector<std::vector<double>> v_data_;
  std::vector<std::string> all_strings_;
  std::vector<std::vector<std::string>> s_data_;
  std::vector<SinkDataset> datasets_;
  std::unique_ptr<Communicator> comm_ = SerialCommunicator();
};

TEST_P(ChunkSinkTest, WritesWhatHdf5ReadsWithRecordsOfIt) {
  path_ = TempPath("write");
  Plan();
  IoOptions io;
  io.transfer_mode = GetParam();
  io.checksum_tile_bytes = 16;  // Several tiles per chunk.
  auto sink = ChunkSink::Create(*comm_, path_, datasets_, io);
  ASSERT_TRUE(sink.ok()) << sink.status();
  for (size_t d = 0; d < 2; ++d) {
    for (size_t c = 0; c < datasets_[d].chunks.size(); ++c) {
      ASSERT_TRUE((*sink)->Write(d, c).ok());
    }
  }
  absl::StatusOr<std::vector<WrittenChunk>> records = (*sink)->Close();
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), w_.size() + v_.size() + s_.size());

  const std::string file = ReadFileToString(path_, int64_t{1} << 30).value();
  size_t n[3] = {0, 0, 0};
  for (const WrittenChunk& r : *records) {
    const SinkChunk& chunk = datasets_[r.dataset].chunks[n[r.dataset]++];
    EXPECT_EQ(r.record.box, chunk.box);
    EXPECT_EQ(r.record.writer_rank, 0);
    if (r.dataset == 2) {  // One checksum over the strings.
      EXPECT_EQ(r.record.tile_shape, chunk.box.shape());
      EXPECT_EQ(
          r.record.tile_checksums,
          std::vector<uint64_t>({HashStrings(static_cast<const std::string*>(chunk.data),
                                             chunk.box.num_elements())}));
      EXPECT_FALSE(r.record.file_offset.has_value());
      continue;
    }
    const int64_t esize = DTypeSize(datasets_[r.dataset].spec.dtype);
    EXPECT_EQ(r.record.tile_shape, ChooseTileShape(chunk.box.shape(), esize, 16));
    EXPECT_EQ(r.record.tile_checksums,
              TileChecksums(chunk.data, TileGrid(chunk.box.shape(), r.record.tile_shape),
                            esize));
    EXPECT_GT(r.record.tile_checksums.size(), 1u);
    if (GetParam() != TransferMode::kDirect) {
      EXPECT_FALSE(r.record.file_offset.has_value());
      continue;
    }
    // The chunk's first row is where the record says.
    ASSERT_TRUE(r.record.file_offset.has_value());
    ASSERT_EQ(r.record.storage_shape.size(), chunk.box.shape().size());
    const int64_t row = esize * chunk.box.shape().back();
    ASSERT_LE(*r.record.file_offset + row, static_cast<int64_t>(file.size()));
    EXPECT_EQ(file.substr(*r.record.file_offset, row),
              std::string(static_cast<const char*>(chunk.data), row));
  }

  auto reader = DataFileReader::Open(*comm_, path_, {});
  ASSERT_TRUE(reader.ok()) << reader.status();
  auto w = (*reader)->OpenDataset("g/w", DType::kInt32, {13, 7});
  ASSERT_TRUE(w.ok()) << w.status();
  for (size_t i = 0; i < w_.size(); ++i) {
    std::vector<int32_t> back(w_[i].num_elements());
    ASSERT_TRUE((*reader)->Read(*w, w_[i], back.data()).ok());
    EXPECT_EQ(back, w_data_[i]);
  }
  auto v = (*reader)->OpenDataset("v", DType::kFloat64, {10});
  ASSERT_TRUE(v.ok()) << v.status();
  std::vector<double> all(10);
  ASSERT_TRUE((*reader)->Read(*v, Box::FromShape({10}), all.data()).ok());
  EXPECT_EQ(std::vector<double>(all.begin(), all.begin() + 5), v_data_[0]);
  auto s = (*reader)->OpenDataset("g/s", DType::kString, {5, 3});
  ASSERT_TRUE(s.ok()) << s.status();
  std::vector<std::string> strings(15);
  ASSERT_TRUE((*reader)->ReadStrings(*s, Box::FromShape({5, 3}), strings.data()).ok());
  EXPECT_EQ(strings, all_strings_);
  ASSERT_TRUE((*reader)->Close().ok());
}

// The string dataset is the tensor's blob, as one shard would have made it.
TEST_P(ChunkSinkTest, StringShardsMakeTheTensorsBlob) {
  path_ = TempPath("blob");
  Plan();
  IoOptions io;
  io.transfer_mode = GetParam();
  std::vector<SinkDataset> only_strings = {datasets_[2]};
  auto sink = ChunkSink::Create(*comm_, path_, only_strings, io);
  ASSERT_TRUE(sink.ok()) << sink.status();
  ASSERT_TRUE((*sink)->Close().ok());
  auto reader = DataFileReader::Open(*comm_, path_, {});
  ASSERT_TRUE(reader.ok()) << reader.status();
  const std::string blob = EncodeStringBlob(all_strings_);
  auto bytes =
      (*reader)->OpenDataset("g/s", DType::kUint8, {static_cast<int64_t>(blob.size())});
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  std::string back(blob.size(), '\0');
  ASSERT_TRUE(
      (*reader)
          ->Read(*bytes, Box::FromShape({static_cast<int64_t>(blob.size())}), back.data())
          .ok());
  EXPECT_EQ(back, blob);
  ASSERT_TRUE((*reader)->Close().ok());
}

TEST_P(ChunkSinkTest, MisuseIsFailedPrecondition) {
  path_ = TempPath("misuse");
  Plan();
  datasets_[1].chunks[1].rank = 1;  // Another rank's (never written here).
  datasets_[1].chunks[1].data = nullptr;
  IoOptions io;
  io.transfer_mode = GetParam();
  {
    auto sink = ChunkSink::Create(*comm_, path_, datasets_, io);
    ASSERT_TRUE(sink.ok()) << sink.status();
    // Strings are written at create; another rank's chunk is not ours.
    EXPECT_TRUE(absl::IsFailedPrecondition((*sink)->Write(2, 0)));
    EXPECT_FALSE((*sink)->Close().ok());
  }
  {
    auto sink = ChunkSink::Create(*comm_, path_, datasets_, io);
    ASSERT_TRUE(sink.ok()) << sink.status();
    EXPECT_TRUE(absl::IsFailedPrecondition((*sink)->Write(1, 1)));
    (void)(*sink)->Close();
  }
  {
    auto sink = ChunkSink::Create(*comm_, path_, datasets_, io);
    ASSERT_TRUE(sink.ok()) << sink.status();
    ASSERT_TRUE((*sink)->Write(1, 0).ok());
    // Back to an earlier dataset.
    absl::Status s = (*sink)->Write(0, 0);
    EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
    EXPECT_EQ((*sink)->Close().status(), s);
  }
  {
    auto sink = ChunkSink::Create(*comm_, path_, datasets_, io);
    ASSERT_TRUE(sink.ok()) << sink.status();
    ASSERT_TRUE((*sink)->Write(0, 0).ok());
    absl::Status twice = (*sink)->Write(0, 0);
    EXPECT_TRUE(absl::IsFailedPrecondition(twice)) << twice;
    (void)(*sink)->Close();
  }
  {
    // Chunks of this rank left unwritten.
    auto sink = ChunkSink::Create(*comm_, path_, datasets_, io);
    ASSERT_TRUE(sink.ok()) << sink.status();
    ASSERT_TRUE((*sink)->Write(0, 0).ok());
    absl::Status s = (*sink)->Close().status();
    EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr("never written"));
  }
}

TEST_P(ChunkSinkTest, MissingDirectoryFailsAtCreateNamingTheFile) {
  path_ = "/nonexistent-meshckpt-dir/x.h5";
  Plan();
  IoOptions io;
  io.transfer_mode = GetParam();
  auto sink = ChunkSink::Create(*comm_, path_, datasets_, io);
  ASSERT_FALSE(sink.ok());
  EXPECT_THAT(std::string(sink.status().message()), HasSubstr(path_));
}

INSTANTIATE_TEST_SUITE_P(Modes, ChunkSinkTest,
                         ::testing::Values(TransferMode::kDirect,
                                           TransferMode::kIndependent,
                                           TransferMode::kCollective),
                         [](const ::testing::TestParamInfo<TransferMode>& info) {
                           switch (info.param) {
                             case TransferMode::kDirect:
                               return "Direct";
                             case TransferMode::kIndependent:
                               return "Independent";
                             case TransferMode::kCollective:
                               return "Collective";
                           }
                           return "Unknown";
                         });

}  // namespace
}  // namespace meshckpt
