// CheckpointReader in one process on damaged and missing files: a missing
// prefix, a corrupt, truncated or too new index, a truncated or missing data
// file (all refused by Open), and flipped bytes of tensor data (DataLoss
// naming the key on read, every damaged tile listed by VerifyAll).
#include <xxhash.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/checkpoint/reader/checkpoint_reader.h"
#include "meshckpt/io/format/index_file.h"
#include "meshckpt/io/format/index_proto.h"
#include "meshckpt/io/fs/fs.h"
#include "tests/checkpoint/reader/reader_test_util.h"
#include "tests/file_bytes.h"

namespace meshckpt {
namespace {

using ::meshckpt::reader_test::Bytes;
using ::meshckpt::reader_test::MakeTensor;
using ::meshckpt::reader_test::RemoveCheckpoint;
using ::meshckpt::reader_test::TempPrefix;
using ::meshckpt::reader_test::Tensor;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// A float64 [64, 16] tensor split by rows over 2 devices (chunks of 32 rows),
// small tiles, and an intact neighbour; bytes of chosen elements flipped.
class CheckpointReaderCorruptTest : public ::testing::Test {
 protected:
  static double Value(int64_t g) { return g * 0.25 - 3; }

  void SetUp() override {
    Mesh mesh = Mesh::Create({{"x", 2}}, 0, 1).value();
    w_ = MakeTensor<double>("w", DType::kFloat64, {64, 16},
                            Layout::Create({"x", "unsharded"}, mesh).value(), Value);
    ok_ = MakeTensor<int32_t>("ok", DType::kInt32, {10},
                              Layout::Create({"x"}, mesh).value(),
                              [](int64_t g) { return static_cast<int32_t>(g + 100000); });
    prefix_ = TempPrefix("corrupt");
    IoOptions options;
    options.checksum_tile_bytes = 64;  // 8 doubles per tile.
    absl::Status s =
        SaveTensors(*comm_, prefix_, {w_.ToSave(), ok_.ToSave()}, {}, options);
    ASSERT_TRUE(s.ok()) << s;
  }
  void TearDown() override { RemoveCheckpoint(prefix_); }

  // Flips one bit of the stored element w[g] in the data file.
  void Flip(int64_t g) {
    std::string bytes = ReadFileBytes(DataFilePath(prefix_));
    const double v = Value(g);
    const std::string pattern(reinterpret_cast<const char*>(&v), sizeof v);
    const size_t at = bytes.find(pattern);
    ASSERT_NE(at, std::string::npos);
    ASSERT_EQ(at, bytes.rfind(pattern)) << "value of element " << g << " not unique";
    bytes[at + 3] ^= 0x10;
    ASSERT_TRUE(WriteFileAtomically(DataFilePath(prefix_), bytes).ok());
  }

  std::unique_ptr<Communicator> comm_ = SerialCommunicator();
  Tensor<double> w_;
  Tensor<int32_t> ok_;
  std::string prefix_;
};

TEST_F(CheckpointReaderCorruptTest, MissingPrefixIsNotFound) {
  absl::StatusOr<std::unique_ptr<CheckpointReader>> r =
      CheckpointReader::Open(prefix_ + "-missing");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound) << r.status();
}

TEST_F(CheckpointReaderCorruptTest, CorruptIndexByteIsDataLoss) {
  std::string bytes = ReadFileBytes(IndexFilePath(prefix_));
  bytes[bytes.size() / 2] ^= 0x01;
  ASSERT_TRUE(WriteFileAtomically(IndexFilePath(prefix_), bytes).ok());
  absl::StatusOr<std::unique_ptr<CheckpointReader>> r = CheckpointReader::Open(prefix_);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr(IndexFilePath(prefix_)));
}

TEST_F(CheckpointReaderCorruptTest, TruncatedIndexIsDataLoss) {
  std::string bytes = ReadFileBytes(IndexFilePath(prefix_));
  ASSERT_TRUE(
      WriteFileAtomically(IndexFilePath(prefix_), bytes.substr(0, bytes.size() - 5)).ok());
  EXPECT_EQ(CheckpointReader::Open(prefix_).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(CheckpointReaderCorruptTest, NewerFormatIsFailedPrecondition) {
  proto::CheckpointIndexProto index =
      DecodeIndexProto(ReadFileBytes(IndexFilePath(prefix_)), "x").value();
  index.mutable_version()->set_producer(kFormatVersion + 1);
  index.mutable_version()->set_min_consumer(kFormatVersion + 1);
  // Frame by hand: EncodeIndexFile would stamp our own version.
  std::string out;
  index.SerializeToString(&out);
  const uint64_t h = XXH3_64bits(out.data(), out.size());
  for (int b = 0; b < 8; ++b) out.push_back(static_cast<char>(h >> (8 * b)));
  out.append(kIndexMagic, 8);
  ASSERT_TRUE(WriteFileAtomically(IndexFilePath(prefix_), out).ok());
  absl::StatusOr<std::unique_ptr<CheckpointReader>> r = CheckpointReader::Open(prefix_);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
}

TEST_F(CheckpointReaderCorruptTest, TruncatedDataFileIsDataLoss) {
  std::string bytes = ReadFileBytes(DataFilePath(prefix_));
  ASSERT_TRUE(
      WriteFileAtomically(DataFilePath(prefix_), bytes.substr(0, bytes.size() - 100))
          .ok());
  absl::StatusOr<std::unique_ptr<CheckpointReader>> r = CheckpointReader::Open(prefix_);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("truncated"));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr(DataFilePath(prefix_)));
}

TEST_F(CheckpointReaderCorruptTest, MissingDataFileIsDataLoss) {
  ASSERT_TRUE(RemoveFileIfExists(DataFilePath(prefix_)).ok());
  absl::StatusOr<std::unique_ptr<CheckpointReader>> r = CheckpointReader::Open(prefix_);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("missing"));
}

TEST_F(CheckpointReaderCorruptTest, FlippedByteIsDataLossNamingTheKey) {
  Flip(0);
  absl::StatusOr<std::unique_ptr<CheckpointReader>> r = CheckpointReader::Open(prefix_);
  ASSERT_TRUE(r.ok()) << r.status();  // Same size: Open cannot tell.
  absl::StatusOr<TensorData> d = (*r)->ReadTensor("w");
  EXPECT_EQ(d.status().code(), absl::StatusCode::kDataLoss) << d.status();
  EXPECT_THAT(std::string(d.status().message()), HasSubstr("'w'"));
  EXPECT_THAT(std::string(d.status().message()), HasSubstr("checksum"));
  EXPECT_THAT(std::string(d.status().message()), HasSubstr(DataFilePath(prefix_)));
  // A box away from the damaged tile still reads and verifies.
  Box far = Box::Create({40, 0}, {2, 16}).value();
  absl::StatusOr<TensorData> row = (*r)->ReadBox("w", far);
  ASSERT_TRUE(row.ok()) << row.status();
  EXPECT_EQ(row->bytes, Bytes(w_.Expected(far)));
  EXPECT_TRUE((*r)->ReadTensor("ok").ok());

  // Without verification the damaged value comes back as stored.
  absl::StatusOr<std::unique_ptr<CheckpointReader>> unchecked =
      CheckpointReader::Open(prefix_, /*verify_checksums=*/false);
  ASSERT_TRUE(unchecked.ok()) << unchecked.status();
  absl::StatusOr<TensorData> raw = (*unchecked)->ReadTensor("w");
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_NE(raw->as<double>()[0], Value(0));
  EXPECT_EQ(raw->as<double>()[1], Value(1));
}

TEST_F(CheckpointReaderCorruptTest, VerifyAllListsEveryDamagedTile) {
  {
    absl::StatusOr<std::unique_ptr<CheckpointReader>> r = CheckpointReader::Open(prefix_);
    ASSERT_TRUE(r.ok()) << r.status();
    absl::StatusOr<std::vector<std::string>> problems = (*r)->VerifyAll();
    ASSERT_TRUE(problems.ok()) << problems.status();
    EXPECT_THAT(*problems, IsEmpty());
  }
  Flip(0);            // Row 0: first chunk.
  Flip(6 * 16 + 4);   // Row 6: first chunk, another tile.
  Flip(64 * 16 - 1);  // Last element: second chunk.
  absl::StatusOr<std::unique_ptr<CheckpointReader>> r = CheckpointReader::Open(prefix_);
  ASSERT_TRUE(r.ok()) << r.status();
  absl::StatusOr<std::vector<std::string>> problems = (*r)->VerifyAll();
  ASSERT_TRUE(problems.ok()) << problems.status();
  ASSERT_THAT(*problems, SizeIs(3));
  for (const std::string& p : *problems) {
    EXPECT_THAT(p, HasSubstr("'w'"));
    EXPECT_THAT(p, HasSubstr("tile"));
  }
  EXPECT_THAT((*problems)[0], HasSubstr("{[0, 32), [0, 16)}"));
  EXPECT_THAT((*problems)[1], HasSubstr("{[0, 32), [0, 16)}"));
  EXPECT_NE((*problems)[0], (*problems)[1]);  // Different tiles.
  EXPECT_THAT((*problems)[2], HasSubstr("{[32, 64), [0, 16)}"));
}

TEST_F(CheckpointReaderCorruptTest, VerifyAllReportsDamagedStrings) {
  // A separate checkpoint of strings: one tile per chunk.
  Mesh mesh = Mesh::Create({{"x", 2}}, 0, 1).value();
  Tensor<std::string> s = MakeTensor<std::string>(
      "s", DType::kString, {4}, Layout::Create({"x"}, mesh).value(),
      [](int64_t g) { return "unique-string-" + std::to_string(g); });
  const std::string prefix = TempPrefix("strings");
  ASSERT_TRUE(SaveTensors(*comm_, prefix, {s.ToSave()}, {}, {}).ok());
  std::string bytes = ReadFileBytes(DataFilePath(prefix));
  const size_t at = bytes.find("unique-string-3");
  ASSERT_NE(at, std::string::npos);
  bytes[at] = 'U';
  ASSERT_TRUE(WriteFileAtomically(DataFilePath(prefix), bytes).ok());
  absl::StatusOr<std::unique_ptr<CheckpointReader>> r = CheckpointReader::Open(prefix);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)->ReadTensor("s").status().code(), absl::StatusCode::kDataLoss);
  absl::StatusOr<std::vector<std::string>> problems = (*r)->VerifyAll();
  ASSERT_TRUE(problems.ok()) << problems.status();
  ASSERT_THAT(*problems, SizeIs(1));
  EXPECT_THAT((*problems)[0], HasSubstr("'s'"));
  EXPECT_THAT((*problems)[0], HasSubstr("{[2, 4)}"));
  r->reset();
  RemoveCheckpoint(prefix);
}

}  // namespace
}  // namespace meshckpt
