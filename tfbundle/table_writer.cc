// Builds LevelDB-format tables with LevelDB's own TableBuilder, into memory.
#include <leveldb/env.h>
#include <leveldb/options.h>
#include <leveldb/table_builder.h>

#include <memory>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "meshckpt/tfbundle/table.h"

namespace meshckpt::tf {
namespace {

// TableBuilder writes through this; the whole table stays in memory because
// an index holds only metadata (about 50 bytes per tensor).
class StringFile : public leveldb::WritableFile {
 public:
  explicit StringFile(std::string* out) : out_(out) {}
  leveldb::Status Append(const leveldb::Slice& data) override {
    out_->append(data.data(), data.size());
    return leveldb::Status::OK();
  }
  leveldb::Status Close() override { return leveldb::Status::OK(); }
  leveldb::Status Flush() override { return leveldb::Status::OK(); }
  leveldb::Status Sync() override { return leveldb::Status::OK(); }

 private:
  std::string* out_;
};

}  // namespace

absl::StatusOr<std::string> BuildTable(const std::vector<TableEntry>& entries,
                                       const TableWriteOptions& options) {
  for (size_t i = 1; i < entries.size(); ++i) {
    if (!(entries[i - 1].key < entries[i].key)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "table keys must be strictly increasing; '", absl::CHexEscape(entries[i].key),
          "' follows '", absl::CHexEscape(entries[i - 1].key), "'"));
    }
  }
  std::string out;
  StringFile file(&out);
  leveldb::Options opts;  // bytewise comparator, no filter policy: as TF
  opts.compression = options.snappy ? leveldb::kSnappyCompression
                                    : leveldb::kNoCompression;
  opts.block_size = static_cast<size_t>(options.block_size);
  opts.block_restart_interval = 16;
  leveldb::TableBuilder builder(opts, &file);
  for (const TableEntry& e : entries) builder.Add(e.key, e.value);
  const leveldb::Status s = builder.Finish();
  if (!s.ok())
    return absl::InternalError(absl::StrCat("building a table: ", s.ToString()));
  return out;
}

}  // namespace meshckpt::tf
