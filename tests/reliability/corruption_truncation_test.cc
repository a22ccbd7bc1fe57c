// Truncated, deleted and inconsistent files of a committed checkpoint, in
// one process (the fixture, the tensors and how a trial is read back:
// corruption_fixture.h):
//   - truncation of either file at random (seeded) lengths is a clear
//     error, also when the index was rewritten to claim the truncated size;
//   - deleting the newest checkpoint's index or data file makes
//     LatestCheckpoint fall back to the newest intact checkpoint;
//   - a string tensor's stored lengths claiming more bytes than there are
//     is DataLoss naming the tensor, not a hang.
// Every truncation trial's outcome is counted; the counts go to stdout
// ("CORRUPTION ...") and to the test's XML properties.
//
// MESHCKPT_CORRUPTION_SEED and MESHCKPT_CORRUPTION_TRIALS (default 300;
// truncations run a fifth of it, at least 10) override the seed and the
// trials per kind. Flipped bytes: corruption_flip_test.cc.
#include <algorithm>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/checkpoint/reader/checkpoint_reader.h"
#include "meshckpt/checkpoint/state/checkpoint_state.h"
#include "meshckpt/io/format/index_file.h"
#include "meshckpt/io/format/index_proto.h"
#include "tests/reliability/corruption_fixture.h"

namespace meshckpt {
namespace corruption_test {
namespace {

namespace fs = std::filesystem;

// The suite keeps the name it had before the split (ctest names, filters,
// docs); these tests need nothing beyond the shared fixture.
using CorruptionTest = CorruptionFixture;

// A string tensor's stored lengths claiming more bytes than there are: a
// clear DataLoss naming the tensor. (Strings were HDF5 variable-length
// strings once; HDF5 1.10.8 loops forever on a damaged global heap object
// size, so they are now a byte blob we split ourselves, io/format/string_blob.h.)
TEST_F(CorruptionTest, DamagedStringLengthIsDataLossNotAHang) {
  const auto names = std::find_if(extents_->begin(), extents_->end(),
                                  [](const Extent& e) { return e.key == "model/names"; });
  ASSERT_NE(names, extents_->end());
  for (char mask : {'\x01', '\x80'}) {
    std::string data = *data_;
    data[names->offset + 7] ^= mask;  // Top byte of the first length.
    WriteTrial(data, *index_);
    const Restored r = RestoreAll();
    EXPECT_TRUE(absl::IsDataLoss(r.status)) << r.status;
    EXPECT_TRUE(absl::StrContains(r.status.message(), "model/names")) << r.status;
  }
}

TEST_F(CorruptionTest, TruncatedDataFileIsDataLoss) {
  std::mt19937_64 rng(Seed() + 3);
  Counts c;
  const int trials = std::max(Trials() / 5, 10);
  for (int trial = 0; trial < trials; ++trial) {
    const size_t len = rng() % data_->size();
    WriteTrial(data_->substr(0, len), *index_);
    c.Add("truncations");
    const Restored r = RestoreAll();
    EXPECT_TRUE(absl::IsDataLoss(r.status)) << "length " << len << ": " << r.status;
    EXPECT_TRUE(absl::StrContains(r.status.message(), "truncated")) << r.status;
    const Inspected in = Inspect();
    EXPECT_TRUE(absl::IsDataLoss(in.status)) << "length " << len << ": " << in.status;
    if (absl::IsDataLoss(r.status) && absl::IsDataLoss(in.status)) c.Add("dataloss");
  }
  Report(c, "data_file_truncations");
}

TEST_F(CorruptionTest, TruncatedIndexIsDataLoss) {
  std::mt19937_64 rng(Seed() + 4);
  Counts c;
  const int trials = std::max(Trials() / 5, 10);
  for (int trial = 0; trial < trials; ++trial) {
    const size_t len = rng() % index_->size();
    WriteTrial(*data_, index_->substr(0, len));
    c.Add("truncations");
    const Restored r = RestoreAll();
    EXPECT_TRUE(absl::IsDataLoss(r.status)) << "length " << len << ": " << r.status;
    const Inspected in = Inspect();
    EXPECT_TRUE(absl::IsDataLoss(in.status)) << "length " << len << ": " << in.status;
    if (absl::IsDataLoss(r.status) && absl::IsDataLoss(in.status)) c.Add("dataloss");
  }
  Report(c, "index_truncations");
}

// A truncated data file whose index was rewritten to claim that size: the
// size check passes, so HDF5 and the checksums must catch it.
TEST_F(CorruptionTest, TruncatedDataFileBehindAMatchingIndexIsAnError) {
  std::mt19937_64 rng(Seed() + 5);
  absl::StatusOr<proto::CheckpointIndexProto> index = DecodeIndexProto(*index_, "orig");
  ASSERT_TRUE(index.ok()) << index.status();
  Counts c;
  const int trials = std::max(Trials() / 5, 10);
  for (int trial = 0; trial < trials; ++trial) {
    const size_t len = rng() % data_->size();
    proto::CheckpointIndexProto p = *index;
    p.set_data_file_size(static_cast<int64_t>(len));
    WriteTrial(data_->substr(0, len), EncodeIndexProto(p));
    c.Add("truncations");
    const Restored r = RestoreAll();
    if (!r.status.ok()) {
      c.Add(absl::StrCat("restore_error_", absl::StatusCodeToString(r.status.code())));
    } else if (r.exact) {
      c.Add("restore_ok_bit_exact");
    } else {
      ADD_FAILURE() << "length " << len << ": OK with wrong values\n" << r.report;
    }
    const Inspected in = Inspect();
    EXPECT_TRUE(!in.status.ok() || !in.problems.empty() || in.reads_exact)
        << "length " << len << ": reader found nothing but reads differ";
  }
  Report(c, "data_truncations_behind_matching_index");
}

// Three committed checkpoints ckpt-1..3 in `dir` (copies of the original,
// newer index timestamps for newer ones), with or without a state file.
void MakeThreeCheckpoints(const std::string& dir, const std::string& data,
                          const std::string& index, bool with_state) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir);
  for (int n = 1; n <= 3; ++n) {
    const std::string p = absl::StrCat(dir, "/ckpt-", n);
    WriteFileBytes(DataFilePath(p), data);
    proto::CheckpointIndexProto idx = DecodeIndexProto(index, "orig").value();
    idx.set_timestamp(idx.timestamp() + n);  // The directory scan sorts by it.
    WriteFileBytes(IndexFilePath(p), EncodeIndexProto(idx));
  }
  if (with_state) {
    CheckpointState s;
    s.model_checkpoint_path = "ckpt-3";
    for (int n = 1; n <= 3; ++n)
      s.all_model_checkpoint_paths.push_back(absl::StrCat("ckpt-", n));
    ASSERT_TRUE(WriteCheckpointState(dir, s).ok());
  }
  ASSERT_EQ(LatestCheckpoint(dir).value_or(""), dir + "/ckpt-3");
}

// Deleting the newest checkpoint's index: it no longer exists, and
// LatestCheckpoint falls back to the newest intact one, with and without a
// state file.
TEST_F(CorruptionTest, LatestCheckpointFallsBackWhenNewestLosesItsIndex) {
  const std::string dir = *root_ + "/latest_index";
  for (bool with_state : {true, false}) {
    SCOPED_TRACE(absl::StrCat("state file: ", with_state));
    MakeThreeCheckpoints(dir, *data_, *index_, with_state);
    fs::remove(IndexFilePath(dir + "/ckpt-3"));
    absl::StatusOr<std::string> latest = LatestCheckpoint(dir);
    ASSERT_TRUE(latest.ok()) << latest.status();
    EXPECT_EQ(*latest, dir + "/ckpt-2");
  }
}

// A checkpoint whose data file is gone, asked for by name: DataLoss naming
// the missing file, never values.
TEST_F(CorruptionTest, CheckpointWithoutDataFileIsDataLoss) {
  const std::string dir = *root_ + "/latest_data";
  MakeThreeCheckpoints(dir, *data_, *index_, /*with_state=*/true);
  fs::remove(DataFilePath(dir + "/ckpt-3"));
  absl::StatusOr<std::unique_ptr<CheckpointReader>> r =
      CheckpointReader::Open(dir + "/ckpt-3");
  EXPECT_TRUE(absl::IsDataLoss(r.status())) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "missing")) << r.status();
  std::vector<RestoreTensor> none;
  absl::Status s = RestoreTensors(*comm_, dir + "/ckpt-3", none, IoOptions());
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
}

// LatestCheckpoint falls back to the newest checkpoint whose files are all
// there.
TEST_F(CorruptionTest, LatestCheckpointFallsBackWhenNewestLosesItsDataFile) {
  const std::string dir = *root_ + "/latest_data_fallback";
  for (bool with_state : {true, false}) {
    SCOPED_TRACE(absl::StrCat("state file: ", with_state));
    MakeThreeCheckpoints(dir, *data_, *index_, with_state);
    fs::remove(DataFilePath(dir + "/ckpt-3"));
    absl::StatusOr<std::string> latest = LatestCheckpoint(dir);
    ASSERT_TRUE(latest.ok()) << latest.status();
    EXPECT_EQ(*latest, dir + "/ckpt-2");
  }
}

}  // namespace
}  // namespace corruption_test
}  // namespace meshckpt
