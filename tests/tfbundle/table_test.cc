// Our LevelDB-format table reader: round trips through LevelDB's builder,
// agreement with LevelDB's own reader on real TF indexes, hostile tables.
#include "meshckpt/tfbundle/table.h"

#include <leveldb/env.h>
#include <leveldb/iterator.h>
#include <leveldb/options.h>
#include <leveldb/table.h>

#include <memory>
#include <random>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "meshckpt/tfbundle/crc32c.h"
#include "tests/file_bytes.h"
#include "tests/tfbundle/tf_test_util.h"

namespace meshckpt::tf {
namespace {

// LevelDB's reader over trusted bytes, as the reference.
class StringSource : public leveldb::RandomAccessFile {
 public:
  explicit StringSource(std::string data) : data_(std::move(data)) {}
  leveldb::Status Read(uint64_t offset, size_t n, leveldb::Slice* result,
                       char* scratch) const override {
    if (offset > data_.size()) return leveldb::Status::IOError("past end");
    n = std::min(n, data_.size() - offset);
    std::memcpy(scratch, data_.data() + offset, n);
    *result = leveldb::Slice(scratch, n);
    return leveldb::Status::OK();
  }

 private:
  std::string data_;
};

std::vector<TableEntry> ReadWithLevelDb(const std::string& bytes) {
  StringSource src(bytes);
  leveldb::Options opts;
  opts.paranoid_checks = true;
  leveldb::Table* table = nullptr;
  leveldb::Status s = leveldb::Table::Open(opts, &src, bytes.size(), &table);
  EXPECT_TRUE(s.ok()) << s.ToString();
  std::vector<TableEntry> out;
  if (!s.ok()) return out;
  std::unique_ptr<leveldb::Table> owner(table);
  leveldb::ReadOptions ro;
  ro.verify_checksums = true;
  std::unique_ptr<leveldb::Iterator> it(table->NewIterator(ro));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    out.push_back({it->key().ToString(), it->value().ToString()});
  }
  EXPECT_TRUE(it->status().ok()) << it->status().ToString();
  return out;
}

std::vector<TableEntry> ManyEntries(int n) {
  std::vector<TableEntry> e;
  e.push_back({"", "header"});
  for (int i = 0; i < n; ++i) {
    e.push_back(
        {absl::StrFormat("layer_%04d/kernel", i), std::string(i % 37 + 1, 'a' + i % 26)});
  }
  return e;
}

TEST(TableTest, RoundTripRawAndSnappyAcrossManyBlocks) {
  for (bool snappy : {false, true}) {
    const std::vector<TableEntry> entries = ManyEntries(2000);
    TableWriteOptions o;
    o.snappy = snappy;
    o.block_size = 512;
    absl::StatusOr<std::string> bytes = BuildTable(entries, o);
    ASSERT_TRUE(bytes.ok()) << bytes.status();
    absl::StatusOr<std::vector<TableEntry>> back = ReadTable(*bytes, "mem");
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, entries);
    EXPECT_EQ(ReadWithLevelDb(*bytes), entries);
  }
}

TEST(TableTest, EmptyTable) {
  absl::StatusOr<std::string> bytes = BuildTable({});
  ASSERT_TRUE(bytes.ok());
  absl::StatusOr<std::vector<TableEntry>> back = ReadTable(*bytes, "mem");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->empty());
}

TEST(TableTest, BuildRefusesUnsortedOrDuplicateKeys) {
  EXPECT_EQ(BuildTable({{"b", ""}, {"a", ""}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BuildTable({{"a", ""}, {"a", ""}}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(TableTest, AgreesWithLevelDbOnRealTensorFlowIndexes) {
  for (const char* f :
       {"serving_counter/variables.index", "serving_half_plus_two_cpu/variables.index",
        "serving_half_plus_two_tf2_cpu/variables.index",
        "tf_contrib_half_plus_two_ckpt_v2/export.index",
        "tf_old_string_tensors/foo.index", "tf_tftrt2_2shards/variables.index",
        "serving_bad_half_plus_two_v1/export"}) {
    const std::string bytes = ReadFileBytes(TfTestdata(f));
    ASSERT_FALSE(bytes.empty()) << f;
    absl::StatusOr<std::vector<TableEntry>> ours = ReadTable(bytes, f);
    ASSERT_TRUE(ours.ok()) << f << ": " << ours.status();
    EXPECT_EQ(*ours, ReadWithLevelDb(bytes)) << f;
    ASSERT_FALSE(ours->empty());
    EXPECT_EQ((*ours)[0].key, "") << f;
  }
}

TEST(TableTest, SnappyBlockOfRealIndexIsCompressed) {
  // The README says this index's data block is Snappy: type byte 1.
  const std::string bytes =
      ReadFileBytes(TfTestdata("serving_half_plus_two_cpu/variables.index"));
  absl::StatusOr<std::vector<TableEntry>> t = ReadTable(bytes, "x");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->size(), 6u);  // header + a, a2, b, c, c2
}

std::string WithValidCrc(std::string table, size_t block_offset, size_t block_size) {
  const uint32_t crc =
      crc32c::Mask(crc32c::Value(table.data() + block_offset, block_size + 1));
  for (int i = 0; i < 4; ++i)
    table[block_offset + block_size + 1 + i] = static_cast<char>(crc >> (8 * i));
  return table;
}

TEST(TableTest, RecognisesOtherFiles) {
  EXPECT_EQ(ReadTable("", "f").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(ReadTable(std::string(100, 'x'), "f").status().code(),
            absl::StatusCode::kDataLoss);
  const std::string hdf5 = std::string("\x89HDF\r\n\x1a\n", 8) + std::string(100, '\0');
  absl::Status s = ReadTable(hdf5, "f.h5").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("HDF5"), absl::string_view::npos) << s;
  s = ReadTable(std::string(60, '\x01') + "MCKPTIX1", "ckpt-1.index").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("meshckpt"), absl::string_view::npos) << s;
  s = ReadTable("model_checkpoint_path: \"x\"\n" + std::string(40, ' '), "checkpoint")
          .status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
}

TEST(TableTest, HostileFooterHandlesAreRefusedWithoutAllocating) {
  absl::StatusOr<std::string> good = BuildTable(ManyEntries(3));
  ASSERT_TRUE(good.ok());
  // Footer: metaindex handle, index handle (varint64s), padding, magic.
  const size_t footer = good->size() - kTableFooterSize;
  for (uint64_t size : {uint64_t{1} << 62, ~uint64_t{0} - 2, uint64_t{1} << 40}) {
    std::string t = *good;
    std::string handle;
    for (uint64_t v : {uint64_t{0}, size}) {
      while (v >= 0x80) {
        handle.push_back(static_cast<char>((v & 0x7f) | 0x80));
        v >>= 7;
      }
      handle.push_back(static_cast<char>(v));
    }
    std::memset(t.data() + footer, 0, 40);
    std::memcpy(t.data() + footer, handle.data(), handle.size());
    std::memcpy(t.data() + footer + handle.size(), handle.data(), handle.size());
    absl::Status s = ReadTable(t, "hostile").status();
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
    EXPECT_NE(s.message().find("outside the file"), absl::string_view::npos) << s;
  }
}

TEST(TableTest, SnappyLengthBombIsRefused) {
  // A one-block table whose Snappy header claims 1 GiB.
  std::string block = "\x80\x80\x80\x80\x04";  // varint32 1 << 30
  block += std::string(8, '\0');
  std::string table = block + '\x01' + std::string(4, '\0');
  table = WithValidCrc(table, 0, block.size());
  std::string footer;
  for (uint64_t v :
       {uint64_t{0}, uint64_t{block.size()}, uint64_t{0}, uint64_t{block.size()}}) {
    footer.push_back(static_cast<char>(v));
  }
  footer.resize(40, '\0');
  for (int i = 0; i < 8; ++i) footer.push_back(static_cast<char>(kTableMagic >> (8 * i)));
  absl::Status s = ReadTable(table + footer, "bomb").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_NE(s.message().find("inflate"), absl::string_view::npos) << s;
}

TEST(TableTest, EveryFlippedByteIsDataLossOrHarmless) {
  absl::StatusOr<std::string> good = BuildTable(ManyEntries(40), {true, 256});
  ASSERT_TRUE(good.ok());
  const std::vector<TableEntry> expected = ManyEntries(40);
  for (size_t i = 0; i < good->size(); ++i) {
    for (int bit : {0, 7}) {
      std::string t = *good;
      t[i] ^= static_cast<char>(1 << bit);
      absl::StatusOr<std::vector<TableEntry>> r = ReadTable(t, "flipped");
      // Only footer padding is unchecked; anything read must be unchanged.
      if (r.ok()) {
        EXPECT_EQ(*r, expected) << "byte " << i;
      } else {
        EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss)
            << i << ": " << r.status();
      }
    }
  }
}

}  // namespace
}  // namespace meshckpt::tf
