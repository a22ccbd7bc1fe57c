// BundleReader: opens a TensorBundle V2 index and reads, checks and slices its tensors.
#include "meshckpt/tfbundle/bundle_reader.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "meshckpt/base/status_macros.h"
#include "meshckpt/tfbundle/crc32c.h"
#include "meshckpt/tfbundle/file_io.h"
#include "meshckpt/tfbundle/slice_key.h"
#include "meshckpt/tfbundle/string_tensor.h"
#include "meshckpt/tfbundle/table.h"

namespace meshckpt::tf {
namespace {

constexpr int64_t kVerifyChunk = int64_t{1} << 20;
// ReadBox reads runs of a box together when they lie within this window and
// no further apart than this gap.
constexpr int64_t kStageBytes = int64_t{1} << 20;
constexpr int64_t kMaxCoalesceGap = int64_t{64} << 10;

void SwapToLittleEndian(TfDType dtype, absl::Span<char> data) {
  const int64_t unit = TfDTypeSwapUnit(dtype);
  if (unit <= 1) return;
  for (size_t i = 0; i + unit <= data.size(); i += unit) {
    std::reverse(data.begin() + i, data.begin() + i + unit);
  }
}

// A V1 checkpoint is a single table named by the prefix itself.
absl::Status ExplainMissingIndex(const std::string& prefix, const std::string& index_path,
                                 const absl::Status& missing) {
  absl::StatusOr<std::string> bytes = ReadWholeFile(prefix, int64_t{64} << 20);
  if (bytes.ok()) {
    absl::StatusOr<std::vector<TableEntry>> table = ReadTable(*bytes, prefix);
    if (table.ok() && !table->empty() && (*table)[0].key.empty()) {
      absl::Status header = ParseBundleHeader((*table)[0].value, prefix).status();
      if (!header.ok()) return header;
    }
  }
  return absl::NotFoundError(absl::StrCat("no TensorFlow checkpoint at prefix '", prefix,
                                          "': ", missing.message()));
}

}  // namespace

std::string IndexFilename(absl::string_view prefix) {
  return absl::StrCat(prefix, ".index");
}

std::string DataFilename(absl::string_view prefix, int shard, int num_shards) {
  return absl::StrFormat("%s.data-%05d-of-%05d", prefix, shard, num_shards);
}

BundleReader::BundleReader(std::string prefix, BundleReaderOptions options,
                           BundleHeader header, std::vector<BundleEntry> entries)
    : prefix_(std::move(prefix)),
      options_(options),
      header_(header),
      entries_(std::move(entries)) {}

BundleReader::~BundleReader() = default;

absl::StatusOr<std::unique_ptr<BundleReader>> BundleReader::Open(
    std::string prefix, BundleReaderOptions options) {
  if (absl::EndsWith(prefix, ".index")) prefix.resize(prefix.size() - 6);
  const std::string index_path = IndexFilename(prefix);
  absl::StatusOr<std::string> index = ReadWholeFile(index_path, options.max_index_bytes);
  if (absl::IsNotFound(index.status())) {
    return ExplainMissingIndex(prefix, index_path, index.status());
  }
  if (!index.ok()) return index.status();
  MESHCKPT_ASSIGN_OR_RETURN(std::vector<TableEntry> table, ReadTable(*index, index_path));
  if (table.empty() || !table[0].key.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", index_path,
                     "' is a table without the header record (key \"\"): not a "
                     "TensorFlow V2 checkpoint index"));
  }
  MESHCKPT_ASSIGN_OR_RETURN(BundleHeader header,
                            ParseBundleHeader(table[0].value, index_path));
  std::vector<BundleEntry> entries;
  entries.reserve(table.size() - 1);
  for (size_t i = 1; i < table.size(); ++i) {
    MESHCKPT_ASSIGN_OR_RETURN(
        BundleEntry e,
        BundleEntry::Parse(table[i].key, table[i].value, header.num_shards, index_path));
    entries.push_back(std::move(e));
  }
  return std::unique_ptr<BundleReader>(
      new BundleReader(std::move(prefix), options, header, std::move(entries)));
}

const BundleEntry* BundleReader::Find(absl::string_view key) const {
  auto it = std::lower_bound(
      entries_.begin(), entries_.end(), key,
      [](const BundleEntry& e, absl::string_view k) { return e.key() < k; });
  return it != entries_.end() && it->key() == key ? &*it : nullptr;
}

absl::StatusOr<const BundleEntry*> BundleReader::FindReadable(absl::string_view key,
                                                              bool fixed_size) const {
  const BundleEntry* e = Find(key);
  if (e == nullptr) {
    return absl::NotFoundError(absl::StrCat("no tensor '", absl::CHexEscape(key),
                                            "' in checkpoint '", IndexFilename(prefix_),
                                            "'"));
  }
  const std::string where = absl::StrCat("tensor '", absl::CHexEscape(key), "' (",
                                         TfDTypeName(e->dtype_value()), ") of '",
                                         IndexFilename(prefix_), "'");
  if (e->dtype() == TfDType::kVariant || e->dtype() == TfDType::kResource) {
    return absl::UnimplementedError(absl::StrCat(
        where,
        " cannot be read: DT_VARIANT and DT_RESOURCE values need TensorFlow's "
        "registered decoders; the entry is listed only"));
  }
  if (!IsKnownTfDType(e->dtype_value())) {
    return absl::UnimplementedError(
        absl::StrCat(where, " has a dtype this reader does not know"));
  }
  if (fixed_size && !e->slices().empty()) {
    return absl::UnimplementedError(
        absl::StrCat(where, " is partitioned into ", e->slices().size(),
                     " slices stored under other keys; read it whole with ReadTensor, or "
                     "read the slices"));
  }
  if (fixed_size && TfDTypeSize(e->dtype()) == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, " has variable-size elements; read it whole with ReadTensor"));
  }
  return e;
}

absl::StatusOr<const RandomAccessFile*> BundleReader::DataFile(
    const BundleEntry& e) const {
  absl::MutexLock lock(&mu_);
  auto it = data_files_.find(e.shard_id());
  if (it != data_files_.end()) return it->second.get();
  const std::string path = DataFilename(prefix_, e.shard_id(), header_.num_shards);
  absl::StatusOr<std::unique_ptr<RandomAccessFile>> f = RandomAccessFile::Open(path);
  if (!f.ok()) {
    if (absl::IsNotFound(f.status())) {
      return absl::DataLossError(absl::StrCat("data file '", path, "' holding tensor '",
                                              absl::CHexEscape(e.key()), "' is missing"));
    }
    return f.status();
  }
  const RandomAccessFile* raw = f->get();
  data_files_.emplace(e.shard_id(), *std::move(f));
  return raw;
}

absl::Status BundleReader::ReadEntryBytes(const BundleEntry& e, int64_t rel,
                                          absl::Span<char> out) const {
  MESHCKPT_ASSIGN_OR_RETURN(const RandomAccessFile* f, DataFile(e));
  if (e.offset() > f->size() || e.size() > f->size() - e.offset()) {
    return absl::DataLossError(absl::StrFormat(
        "tensor '%s' is bytes [%d, +%d) of '%s', which has only %d bytes (truncated)",
        absl::CHexEscape(e.key()), e.offset(), e.size(), f->path(), f->size()));
  }
  return f->ReadAt(e.offset() + rel, out,
                   absl::StrCat("tensor '", absl::CHexEscape(e.key()), "'"));
}

absl::StatusOr<TensorValue> BundleReader::ReadTensor(absl::string_view key) const {
  MESHCKPT_ASSIGN_OR_RETURN(const BundleEntry* e, FindReadable(key, false));
  if (!e->slices().empty()) return ReadPartitioned(*e);
  MESHCKPT_ASSIGN_OR_RETURN(const RandomAccessFile* f, DataFile(*e));
  // Checked before allocating: the size comes from the index.
  MESHCKPT_RETURN_IF_ERROR(ReadEntryBytes(*e, 0, absl::Span<char>()));
  std::string data(static_cast<size_t>(e->size()), '\0');
  MESHCKPT_RETURN_IF_ERROR(ReadEntryBytes(*e, 0, absl::MakeSpan(data)));
  const std::string what =
      absl::StrCat("tensor '", absl::CHexEscape(key), "' in '", f->path(), "'");
  const uint32_t expected = crc32c::Unmask(e->masked_crc32c());
  if (e->dtype() == TfDType::kString) {
    std::vector<std::string> strings;
    uint32_t crc = 0;
    MESHCKPT_RETURN_IF_ERROR(DecodeStringTensor(
        data, e->num_elements(), header_.big_endian, what, &strings, &crc));
    if (crc != expected && !(data.empty() && e->masked_crc32c() == 0)) {
      return absl::DataLossError(absl::StrFormat(
          "%s: checksum mismatch (stored %08x, computed %08x)", what, expected, crc));
    }
    return TensorValue::FromStrings(e->shape(), std::move(strings));
  }
  const uint32_t crc = crc32c::Value(data.data(), data.size());
  if (crc != expected) {
    return absl::DataLossError(absl::StrFormat(
        "%s, bytes [%d, +%d): checksum mismatch (stored %08x, computed %08x)", what,
        e->offset(), e->size(), expected, crc));
  }
  if (header_.big_endian) SwapToLittleEndian(e->dtype(), absl::MakeSpan(data));
  return TensorValue::FromBytes(e->dtype(), e->shape(), std::move(data));
}

absl::Status BundleReader::VerifyEntry(absl::string_view key) const {
  MESHCKPT_ASSIGN_OR_RETURN(const BundleEntry* e, FindReadable(key, false));
  if (!e->slices().empty()) {
    // The slices are entries of their own; verify them without assembling.
    for (const TensorSliceSpec& spec : e->slices()) {
      const std::string slice_key = EncodeTensorNameSlice(e->key(), spec);
      if (Find(slice_key) == nullptr) {
        return absl::DataLossError(absl::StrCat("slice '", absl::CHexEscape(slice_key),
                                                "' of partitioned tensor '",
                                                absl::CHexEscape(key), "' is missing"));
      }
      MESHCKPT_RETURN_IF_ERROR(VerifyEntry(slice_key));
    }
    return absl::OkStatus();
  }
  if (e->dtype() == TfDType::kString) return ReadTensor(key).status();
  MESHCKPT_RETURN_IF_ERROR(ReadEntryBytes(*e, 0, absl::Span<char>()));
  std::string buf(static_cast<size_t>(std::min(e->size(), kVerifyChunk)), '\0');
  uint32_t crc = 0;
  for (int64_t done = 0; done < e->size();) {
    const int64_t n = std::min(kVerifyChunk, e->size() - done);
    MESHCKPT_RETURN_IF_ERROR(ReadEntryBytes(*e, done, absl::MakeSpan(buf.data(), n)));
    crc = crc32c::Extend(crc, buf.data(), static_cast<size_t>(n));
    done += n;
  }
  if (crc != crc32c::Unmask(e->masked_crc32c())) {
    return absl::DataLossError(absl::StrFormat(
        "tensor '%s' in '%s', bytes [%d, +%d): checksum mismatch (stored %08x, computed "
        "%08x)",
        absl::CHexEscape(key), DataFilename(prefix_, e->shard_id(), header_.num_shards),
        e->offset(), e->size(), crc32c::Unmask(e->masked_crc32c()), crc));
  }
  return absl::OkStatus();
}

absl::Status BundleReader::VerifyAll(std::vector<std::string>* skipped) const {
  for (const BundleEntry& e : entries_) {
    absl::Status s = VerifyEntry(e.key());
    if (absl::IsUnimplemented(s)) {
      if (skipped != nullptr) skipped->push_back(e.key());
      continue;
    }
    MESHCKPT_RETURN_IF_ERROR(s);
  }
  return absl::OkStatus();
}

absl::Status BundleReader::VerifyOnce(const BundleEntry& e) const {
  if (!options_.verify_partial_reads) return absl::OkStatus();
  {
    absl::MutexLock lock(&mu_);
    if (verified_.count(e.key()) > 0) return absl::OkStatus();
  }
  MESHCKPT_RETURN_IF_ERROR(VerifyEntry(e.key()));
  absl::MutexLock lock(&mu_);
  verified_.insert(e.key());
  return absl::OkStatus();
}

absl::Status BundleReader::ReadBytes(absl::string_view key, int64_t byte_offset,
                                     absl::Span<char> out) const {
  MESHCKPT_ASSIGN_OR_RETURN(const BundleEntry* e, FindReadable(key, true));
  const int64_t n = static_cast<int64_t>(out.size());
  const int64_t elem = TfDTypeSize(e->dtype());
  if (byte_offset < 0 || byte_offset > e->size() || n > e->size() - byte_offset ||
      byte_offset % elem != 0 || n % elem != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("bytes [%d, +%d) are not whole elements of tensor '%s' (%d bytes "
                        "of %d-byte elements)",
                        byte_offset, n, absl::CHexEscape(key), e->size(), elem));
  }
  MESHCKPT_RETURN_IF_ERROR(VerifyOnce(*e));
  MESHCKPT_RETURN_IF_ERROR(ReadEntryBytes(*e, 0, absl::Span<char>()));
  MESHCKPT_RETURN_IF_ERROR(ReadEntryBytes(*e, byte_offset, out));
  if (header_.big_endian) SwapToLittleEndian(e->dtype(), out);
  return absl::OkStatus();
}

absl::Status BundleReader::ReadBox(absl::string_view key,
                                   absl::Span<const int64_t> origin,
                                   absl::Span<const int64_t> size,
                                   absl::Span<char> out) const {
  MESHCKPT_ASSIGN_OR_RETURN(const BundleEntry* e, FindReadable(key, true));
  const std::vector<int64_t>& shape = e->shape();
  const int rank = static_cast<int>(shape.size());
  const int64_t elem = TfDTypeSize(e->dtype());
  const auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("box of tensor '", absl::CHexEscape(key), "': ", why));
  };
  if (static_cast<int>(origin.size()) != rank || static_cast<int>(size.size()) != rank) {
    return bad(absl::StrFormat("origin and size need %d dimensions", rank));
  }
  int64_t box_elems = 1;
  for (int d = 0; d < rank; ++d) {
    if (origin[d] < 0 || size[d] < 0 || origin[d] > shape[d] ||
        size[d] > shape[d] - origin[d]) {
      return bad(absl::StrFormat("dimension %d: [%d, +%d) is outside [0, %d)", d,
                                 origin[d], size[d], shape[d]));
    }
    box_elems *= size[d];  // <= the tensor's elements: no overflow
  }
  if (static_cast<int64_t>(out.size()) != box_elems * elem) {
    return bad(absl::StrFormat("needs %d bytes of output, got %d", box_elems * elem,
                               out.size()));
  }
  if (box_elems == 0) return absl::OkStatus();
  MESHCKPT_RETURN_IF_ERROR(VerifyOnce(*e));
  MESHCKPT_RETURN_IF_ERROR(ReadEntryBytes(*e, 0, absl::Span<char>()));
  std::vector<int64_t> stride(rank + 1, elem);
  for (int d = rank - 1; d >= 0; --d) stride[d] = stride[d + 1] * shape[d];
  // Trailing dimensions taken whole, plus one more, form contiguous runs.
  int inner = rank;
  while (inner > 0 && origin[inner - 1] == 0 && size[inner - 1] == shape[inner - 1])
    --inner;
  const int run_dim = inner > 0 ? inner - 1 : 0;
  const int64_t run = rank == 0 ? elem : size[run_dim] * stride[run_dim + 1];
  // Runs come in file order. Nearby ones are read together through a
  // staging buffer (one pread per window instead of one per run), which is
  // what makes column blocks of a row-major matrix cheap.
  struct Pending {
    int64_t rel, pos;
  };
  std::vector<Pending> pending;
  int64_t window_start = 0, window_end = 0;
  std::string stage;
  const auto flush = [&]() -> absl::Status {
    if (pending.size() == 1) {
      MESHCKPT_RETURN_IF_ERROR(
          ReadEntryBytes(*e, pending[0].rel, out.subspan(pending[0].pos, run)));
    } else if (!pending.empty()) {
      stage.resize(static_cast<size_t>(window_end - window_start));
      MESHCKPT_RETURN_IF_ERROR(ReadEntryBytes(*e, window_start, absl::MakeSpan(stage)));
      for (const Pending& p : pending) {
        std::memcpy(out.data() + p.pos, stage.data() + (p.rel - window_start), run);
      }
    }
    pending.clear();
    return absl::OkStatus();
  };
  std::vector<int64_t> idx(run_dim, 0);
  int64_t pos = 0;
  while (true) {
    int64_t rel = rank == 0 ? 0 : origin[run_dim] * stride[run_dim + 1];
    for (int d = 0; d < run_dim; ++d) rel += (origin[d] + idx[d]) * stride[d + 1];
    if (!pending.empty() &&
        (rel - window_end > kMaxCoalesceGap || rel + run - window_start > kStageBytes)) {
      MESHCKPT_RETURN_IF_ERROR(flush());
    }
    if (pending.empty()) window_start = rel;
    pending.push_back({rel, pos});
    window_end = rel + run;
    pos += run;
    int d = run_dim - 1;
    while (d >= 0 && ++idx[d] == size[d]) idx[d--] = 0;
    if (d < 0) break;
  }
  MESHCKPT_RETURN_IF_ERROR(flush());
  if (header_.big_endian) SwapToLittleEndian(e->dtype(), out);
  return absl::OkStatus();
}

absl::StatusOr<TensorValue> BundleReader::ReadPartitioned(const BundleEntry& full) const {
  const std::vector<int64_t>& shape = full.shape();
  const int rank = static_cast<int>(shape.size());
  const std::string name = absl::CHexEscape(full.key());
  const auto bad = [&](absl::string_view why) {
    return absl::DataLossError(absl::StrCat("partitioned tensor '", name, "' of '",
                                            IndexFilename(prefix_), "': ", why));
  };
  // Resolve every slice to its entry and box before allocating anything:
  // the boxes must add up to the tensor and each slice's bytes must exist.
  struct Part {
    const BundleEntry* entry;
    std::vector<int64_t> origin, size;
  };
  std::vector<Part> parts;
  int64_t total = 0;
  for (const TensorSliceSpec& spec : full.slices()) {
    Part p;
    for (int d = 0; d < rank; ++d) {
      const bool whole = spec[d].length < 0;
      p.origin.push_back(whole ? 0 : spec[d].start);
      p.size.push_back(whole ? shape[d] : spec[d].length);
    }
    const std::string slice_key = EncodeTensorNameSlice(full.key(), spec);
    p.entry = Find(slice_key);
    if (p.entry == nullptr) {
      return bad(
          absl::StrCat("slice entry '", absl::CHexEscape(slice_key), "' is missing"));
    }
    if (p.entry->dtype() != full.dtype() || p.entry->shape() != p.size ||
        !p.entry->slices().empty()) {
      return bad(absl::StrCat("slice entry '", absl::CHexEscape(slice_key),
                              "' does not match its slice's dtype and shape"));
    }
    MESHCKPT_RETURN_IF_ERROR(ReadEntryBytes(*p.entry, 0, absl::Span<char>()));
    total += p.entry->num_elements();  // each <= the tensor's: no overflow
    if (total > full.num_elements()) break;
    parts.push_back(std::move(p));
  }
  if (total != full.num_elements()) {
    return bad(absl::StrFormat("its slices hold %d elements, the tensor %d", total,
                               full.num_elements()));
  }
  const int64_t elem = TfDTypeSize(full.dtype());
  const bool strings = full.dtype() == TfDType::kString;
  std::string bytes(strings ? 0 : static_cast<size_t>(total * elem), '\0');
  std::vector<std::string> texts(strings ? static_cast<size_t>(total) : 0);
  std::vector<bool> covered(static_cast<size_t>(total), false);
  std::vector<int64_t> stride(rank + 1, 1);
  for (int d = rank - 1; d >= 0; --d) stride[d] = stride[d + 1] * shape[d];
  for (const Part& p : parts) {
    MESHCKPT_ASSIGN_OR_RETURN(TensorValue v, ReadTensor(p.entry->key()));
    // Walk the slice's elements in row-major order.
    std::vector<int64_t> idx(rank, 0);
    for (int64_t i = 0; i < v.num_elements(); ++i) {
      int64_t at = 0;
      for (int d = 0; d < rank; ++d) at += (p.origin[d] + idx[d]) * stride[d + 1];
      if (covered[at]) return bad("two of its slices overlap");
      covered[at] = true;
      if (strings) {
        texts[at] = v.strings()[i];
      } else {
        std::memcpy(bytes.data() + at * elem, v.bytes().data() + i * elem, elem);
      }
      for (int d = rank - 1; d >= 0 && ++idx[d] == p.size[d]; --d) idx[d] = 0;
    }
  }
  if (strings) return TensorValue::FromStrings(shape, std::move(texts));
  return TensorValue::FromBytes(full.dtype(), shape, std::move(bytes));
}

}  // namespace meshckpt::tf
