// Our reader of LevelDB-format tables: every size checked before use.
#include <snappy.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "meshckpt/base/status_macros.h"
#include "meshckpt/tfbundle/crc32c.h"
#include "meshckpt/tfbundle/table.h"

namespace meshckpt::tf {
namespace {

constexpr size_t kBlockTrailerSize = 5;  // type byte + fixed32 masked CRC32C
// Snappy's densest element (a 3-byte copy of 64 bytes) expands 21.3x; a
// claimed length beyond this bound cannot be honest, so it is never allocated.
constexpr uint64_t kSnappyMaxExpansion = 22;

uint32_t DecodeFixed32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return uint32_t{u[0]} | (uint32_t{u[1]} << 8) | (uint32_t{u[2]} << 16) |
         (uint32_t{u[3]} << 24);
}

uint64_t DecodeFixed64(const char* p) {
  return uint64_t{DecodeFixed32(p)} | (uint64_t{DecodeFixed32(p + 4)} << 32);
}

bool GetVarint64(const char** p, const char* limit, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift <= 63 && *p < limit; shift += 7) {
    const uint64_t byte = static_cast<unsigned char>(**p);
    ++*p;
    if (shift == 63 && byte > 1) return false;  // more than 64 bits
    result |= (byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  return false;
}

bool GetVarint32(const char** p, const char* limit, uint32_t* v) {
  uint64_t v64 = 0;
  const char* q = *p;
  if (!GetVarint64(&q, limit, &v64) || v64 > UINT32_MAX || q - *p > 5) return false;
  *p = q;
  *v = static_cast<uint32_t>(v64);
  return true;
}

struct BlockHandle {
  uint64_t offset = 0;
  uint64_t size = 0;
};

bool DecodeHandle(const char** p, const char* limit, BlockHandle* h) {
  return GetVarint64(p, limit, &h->offset) && GetVarint64(p, limit, &h->size);
}

class Parser {
 public:
  Parser(absl::string_view file, absl::string_view filename,
         const TableReadLimits& limits)
      : file_(file), filename_(filename), limits_(limits) {}

  absl::StatusOr<std::vector<TableEntry>> Run();

 private:
  absl::Status Corrupt(absl::string_view what) const {
    return absl::DataLossError(
        absl::StrCat("TensorBundle index '", filename_, "' is damaged: ", what));
  }
  absl::Status ReadBlock(const BlockHandle& h, absl::string_view what,
                         std::string* out) const;
  // Calls on_entry(key, value) for each entry of the block at `block_offset`.
  template <typename F>
  absl::Status ParseBlock(absl::string_view block, uint64_t block_offset,
                          F on_entry) const;

  absl::string_view file_;
  absl::string_view filename_;
  TableReadLimits limits_;
};

absl::Status Parser::ReadBlock(const BlockHandle& h, absl::string_view what,
                               std::string* out) const {
  // Blocks lie before the footer; the comparisons are arranged not to overflow.
  const uint64_t end = file_.size() - kTableFooterSize;
  if (h.offset > end || h.size > end - h.offset ||
      kBlockTrailerSize > end - h.offset - h.size) {
    return Corrupt(
        absl::StrFormat("%s at offset %d (%d bytes) lies outside the file's %d bytes",
                        what, h.offset, h.size, file_.size()));
  }
  const char* p = file_.data() + h.offset;
  const size_t n = static_cast<size_t>(h.size);
  const uint32_t stored = crc32c::Unmask(DecodeFixed32(p + n + 1));
  const uint32_t actual = crc32c::Value(p, n + 1);
  if (stored != actual && limits_.verify_checksums) {
    return Corrupt(
        absl::StrFormat("%s at offset %d: checksum mismatch (stored %08x, computed %08x)",
                        what, h.offset, stored, actual));
  }
  switch (static_cast<unsigned char>(p[n])) {
    case 0:
      if (static_cast<int64_t>(n) > limits_.max_block_bytes) {
        return Corrupt(
            absl::StrFormat("%s at offset %d has %d bytes, over the %d-byte limit", what,
                            h.offset, n, limits_.max_block_bytes));
      }
      out->assign(p, n);
      return absl::OkStatus();
    case 1: {
      size_t ulen = 0;
      if (!snappy::GetUncompressedLength(p, n, &ulen)) {
        return Corrupt(
            absl::StrFormat("%s at offset %d: bad Snappy header", what, h.offset));
      }
      if (static_cast<uint64_t>(ulen) > kSnappyMaxExpansion * n + 64 ||
          static_cast<int64_t>(ulen) > limits_.max_block_bytes) {
        return Corrupt(
            absl::StrFormat("%s at offset %d claims to inflate from %d to %d bytes, "
                            "which Snappy cannot do "
                            "or which exceeds the %d-byte block limit",
                            what, h.offset, n, ulen, limits_.max_block_bytes));
      }
      out->assign(ulen, '\0');
      if (!snappy::RawUncompress(p, n, out->data())) {
        return Corrupt(
            absl::StrFormat("%s at offset %d: bad Snappy data", what, h.offset));
      }
      return absl::OkStatus();
    }
    default:
      return Corrupt(
          absl::StrFormat("%s at offset %d has compression type %d; TensorFlow writes "
                          "only 0 (none) and 1 "
                          "(Snappy)",
                          what, h.offset, static_cast<unsigned char>(p[n])));
  }
}

template <typename F>
absl::Status Parser::ParseBlock(absl::string_view block, uint64_t block_offset,
                                F on_entry) const {
  const auto bad = [&](absl::string_view why) {
    return Corrupt(absl::StrFormat("block at offset %d: %s", block_offset, why));
  };
  if (block.size() < 4) return bad("shorter than its restart count");
  const uint32_t num_restarts = DecodeFixed32(block.data() + block.size() - 4);
  if (num_restarts == 0 || num_restarts > (block.size() - 4) / 4) {
    return bad(absl::StrFormat("impossible restart count %d", num_restarts));
  }
  const size_t restarts_at = block.size() - 4 - 4 * size_t{num_restarts};
  const char* const base = block.data();
  const char* const limit = base + restarts_at;
  const char* p = base;
  std::string key;
  uint32_t next_restart = 0;
  while (p < limit) {
    const size_t at = static_cast<size_t>(p - base);
    uint32_t shared = 0, non_shared = 0, value_len = 0;
    if (!GetVarint32(&p, limit, &shared) || !GetVarint32(&p, limit, &non_shared) ||
        !GetVarint32(&p, limit, &value_len)) {
      return bad(absl::StrFormat("malformed entry header at byte %d", at));
    }
    if (shared > key.size() || non_shared > static_cast<size_t>(limit - p) ||
        value_len > static_cast<size_t>(limit - p) - non_shared) {
      return bad(absl::StrFormat("entry at byte %d overruns the block", at));
    }
    // Each restart point must be an entry that stores its whole key.
    if (next_restart < num_restarts &&
        DecodeFixed32(base + restarts_at + 4 * size_t{next_restart}) == at) {
      if (shared != 0)
        return bad(absl::StrFormat("restart entry at byte %d shares a prefix", at));
      ++next_restart;
    }
    key.resize(shared);
    key.append(p, non_shared);
    p += non_shared;
    MESHCKPT_RETURN_IF_ERROR(on_entry(key, absl::string_view(p, value_len)));
    p += value_len;
  }
  // An empty block has the single restart point 0; otherwise every restart
  // point must have been an entry boundary.
  const bool empty_ok = restarts_at == 0 && num_restarts == 1 &&
                        DecodeFixed32(limit) == 0;
  if (!empty_ok && next_restart != num_restarts) {
    return bad("restart points do not match entry boundaries");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<TableEntry>> Parser::Run() {
  if (file_.size() < kTableFooterSize ||
      DecodeFixed64(file_.data() + file_.size() - 8) != kTableMagic) {
    if (file_.size() >= 8 && std::memcmp(file_.data(), "\x89HDF\r\n\x1a\n", 8) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "'", filename_,
          "' is an HDF5 file (a meshckpt checkpoint?), not a TensorBundle index"));
    }
    // meshckpt's own index ends in this magic (io/format/index_file.h); named here
    // rather than included, to keep tfbundle a leaf.
    if (file_.size() >= 8 &&
        std::memcmp(file_.data() + file_.size() - 8, "MCKPTIX1", 8) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "'", filename_, "' is a meshckpt checkpoint index, not a TensorFlow one"));
    }
    if (absl::string_view(file_.data(), std::min<size_t>(file_.size(), 22)) ==
        "model_checkpoint_path:") {
      return absl::InvalidArgumentError(absl::StrCat(
          "'", filename_,
          "' is a TensorFlow `checkpoint` state file, not a TensorBundle index"));
    }
    return Corrupt(
        absl::StrFormat("%d bytes that do not end in the LevelDB table magic: truncated, "
                        "or not a TensorFlow "
                        "checkpoint index",
                        file_.size()));
  }
  const char* footer = file_.data() + file_.size() - kTableFooterSize;
  const char* footer_end = footer + kTableFooterSize - 8;
  BlockHandle metaindex, index;
  if (!DecodeHandle(&footer, footer_end, &metaindex) ||
      !DecodeHandle(&footer, footer_end, &index)) {
    return Corrupt("malformed footer");
  }
  std::string meta_block, index_block, data_block;
  // The metaindex block (empty without filters) is checked, not used.
  MESHCKPT_RETURN_IF_ERROR(ReadBlock(metaindex, "metaindex block", &meta_block));
  MESHCKPT_RETURN_IF_ERROR(
      ParseBlock(meta_block, metaindex.offset,
                 [](const std::string&, absl::string_view) { return absl::OkStatus(); }));
  MESHCKPT_RETURN_IF_ERROR(ReadBlock(index, "index block", &index_block));

  std::vector<TableEntry> entries;
  const std::string* prev_separator = nullptr;
  std::string separator_copy;
  auto on_index = [&](const std::string& separator,
                      absl::string_view value) -> absl::Status {
    BlockHandle h;
    const char* v = value.data();
    if (!DecodeHandle(&v, value.data() + value.size(), &h) ||
        v != value.data() + value.size()) {
      return Corrupt(absl::StrFormat("index entry '%s' is not a block handle",
                                     absl::CHexEscape(separator)));
    }
    MESHCKPT_RETURN_IF_ERROR(ReadBlock(h, "data block", &data_block));
    const size_t first = entries.size();
    MESHCKPT_RETURN_IF_ERROR(
        ParseBlock(data_block, h.offset,
                   [&](const std::string& key, absl::string_view val) -> absl::Status {
                     // Keys strictly increase across the table, and each block's keys lie
                     // between the previous separator (exclusive) and its own (inclusive).
                     if ((!entries.empty() && key <= entries.back().key) ||
                         (prev_separator != nullptr && entries.size() == first &&
                          key <= *prev_separator) ||
                         key > separator) {
                       return Corrupt(absl::StrFormat(
                           "key '%s' in the block at offset %d is out of order",
                           absl::CHexEscape(key), h.offset));
                     }
                     entries.push_back(TableEntry{key, std::string(val)});
                     return absl::OkStatus();
                   }));
    separator_copy = separator;
    prev_separator = &separator_copy;
    return absl::OkStatus();
  };
  MESHCKPT_RETURN_IF_ERROR(ParseBlock(index_block, index.offset, on_index));
  return entries;
}

}  // namespace

absl::StatusOr<std::vector<TableEntry>> ReadTable(absl::string_view file,
                                                  absl::string_view filename,
                                                  const TableReadLimits& limits) {
  return Parser(file, filename, limits).Run();
}

}  // namespace meshckpt::tf
