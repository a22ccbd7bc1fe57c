// BundleWriter: streams tensor data, then commits data file and index atomically.
#include "meshckpt/tfbundle/bundle_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <limits>
#include <random>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "meshckpt/base/status_macros.h"
#include "meshckpt/tfbundle/bundle_reader.h"
#include "meshckpt/tfbundle/crc32c.h"
#include "meshckpt/tfbundle/file_io.h"
#include "meshckpt/tfbundle/slice_key.h"
#include "meshckpt/tfbundle/string_tensor.h"
#include "meshckpt/tfbundle/table.h"

namespace meshckpt::tf {

absl::StatusOr<std::unique_ptr<BundleWriter>> BundleWriter::Create(
    std::string prefix, BundleWriterOptions options) {
  std::random_device rd;
  const std::string temp =
      absl::StrFormat("%s.tmp-%08x%08x", DataFilename(prefix, 0, 1), rd(), rd());
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0)
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot create '", temp, "'"));
  std::FILE* f = ::fdopen(fd, "wb");
  if (f == nullptr) {
    const int err = errno;
    ::close(fd);
    ::unlink(temp.c_str());
    return absl::ErrnoToStatus(err, absl::StrCat("cannot open '", temp, "'"));
  }
  // Large writes go straight through; small tensors are batched.
  std::setvbuf(f, nullptr, _IOFBF, 1 << 20);
  return std::unique_ptr<BundleWriter>(
      new BundleWriter(std::move(prefix), options, temp, f));
}

BundleWriter::~BundleWriter() {
  if (file_ != nullptr) std::fclose(file_);
  if (!finished_) ::unlink(temp_data_.c_str());
}

absl::Status BundleWriter::Append(absl::string_view bytes) {
  if (!bytes.empty() &&
      std::fwrite(bytes.data(), 1, bytes.size(), file_) != bytes.size()) {
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot write '", temp_data_, "'"));
  }
  size_ += static_cast<int64_t>(bytes.size());
  return absl::OkStatus();
}

absl::Status BundleWriter::CheckNewEntry(absl::string_view key, TfDType dtype) const {
  if (finished_) return absl::FailedPreconditionError("BundleWriter: add after Finish");
  if (open_.has_value()) {
    return absl::FailedPreconditionError(
        absl::StrCat("BundleWriter: tensor '", absl::CHexEscape(open_->fields.key),
                     "' is still open (EndEntry it first)"));
  }
  if (key.empty()) {
    return absl::InvalidArgumentError(
        "the empty key is the bundle header's; a tensor cannot use it");
  }
  if (entries_.count(std::string(key)) > 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tensor '", absl::CHexEscape(key), "' was already added to '", prefix_, "'"));
  }
  if (dtype != TfDType::kString && TfDTypeSize(dtype) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", absl::CHexEscape(key), "' is ", TfDTypeName(dtype),
                     ", which a bundle cannot hold as data"));
  }
  return absl::OkStatus();
}

absl::Status BundleWriter::Add(absl::string_view key, const TensorValue& value) {
  if (!status_.ok()) return status_;
  if (value.dtype() != TfDType::kString) {
    MESHCKPT_RETURN_IF_ERROR(BeginEntry(key, value.dtype(), value.shape()));
    MESHCKPT_RETURN_IF_ERROR(AppendBytes(value.bytes()));
    return EndEntry();
  }
  MESHCKPT_RETURN_IF_ERROR(CheckNewEntry(key, value.dtype()));
  BundleEntry::Fields f;
  f.key = std::string(key);
  f.dtype = static_cast<int>(value.dtype());
  f.shape = value.shape();
  f.offset = size_;
  const EncodedStrings enc = EncodeStringTensor(value.strings());
  status_ = Append(enc.bytes);
  f.size = static_cast<int64_t>(enc.bytes.size());
  f.masked_crc32c = crc32c::Mask(enc.crc32c);
  if (!status_.ok()) return status_;
  absl::StatusOr<BundleEntry> e =
      BundleEntry::Create(std::move(f), 1, IndexFilename(prefix_));
  if (!e.ok()) return status_ = absl::InternalError(e.status().message());
  entries_.emplace(std::string(key), *std::move(e));
  return absl::OkStatus();
}

absl::Status BundleWriter::BeginEntry(absl::string_view key, TfDType dtype,
                                      std::vector<int64_t> shape) {
  if (!status_.ok()) return status_;
  MESHCKPT_RETURN_IF_ERROR(CheckNewEntry(key, dtype));
  if (dtype == TfDType::kString) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", absl::CHexEscape(key),
                     "' is DT_STRING, which cannot be streamed (its lengths come "
                     "first): use Add"));
  }
  absl::StatusOr<int64_t> n = NumElements(shape);
  if (!n.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", absl::CHexEscape(key), "': ", n.status().message()));
  }
  if (*n > std::numeric_limits<int64_t>::max() / TfDTypeSize(dtype)) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", absl::CHexEscape(key), "' is too large"));
  }
  OpenEntry open;
  open.fields.key = std::string(key);
  open.fields.dtype = static_cast<int>(dtype);
  open.fields.shape = std::move(shape);
  open.fields.offset = size_;
  open.fields.size = *n * TfDTypeSize(dtype);
  open_ = std::move(open);
  return absl::OkStatus();
}

absl::Status BundleWriter::AppendBytes(absl::string_view bytes) {
  if (!status_.ok()) return status_;
  if (!open_.has_value()) {
    return absl::FailedPreconditionError("BundleWriter::AppendBytes without BeginEntry");
  }
  if (static_cast<int64_t>(bytes.size()) > open_->fields.size - open_->appended) {
    return status_ = absl::InvalidArgumentError(
               absl::StrCat("tensor '", absl::CHexEscape(open_->fields.key), "' has ",
                            open_->fields.size, " bytes, but ",
                            open_->appended + bytes.size(), " were appended"));
  }
  MESHCKPT_RETURN_IF_ERROR(status_ = Append(bytes));
  open_->crc = crc32c::Extend(open_->crc, bytes.data(), bytes.size());
  open_->appended += static_cast<int64_t>(bytes.size());
  return absl::OkStatus();
}

absl::Status BundleWriter::EndEntry() {
  if (!status_.ok()) return status_;
  if (!open_.has_value()) {
    return absl::FailedPreconditionError("BundleWriter::EndEntry without BeginEntry");
  }
  if (open_->appended != open_->fields.size) {
    return status_ = absl::InvalidArgumentError(
               absl::StrCat("tensor '", absl::CHexEscape(open_->fields.key), "' has ",
                            open_->fields.size, " bytes, but only ", open_->appended,
                            " were appended"));
  }
  open_->fields.masked_crc32c = crc32c::Mask(open_->crc);
  const std::string key = open_->fields.key;
  absl::StatusOr<BundleEntry> e =
      BundleEntry::Create(std::move(open_->fields), 1, IndexFilename(prefix_));
  open_.reset();
  if (!e.ok()) return status_ = absl::InternalError(e.status().message());
  entries_.emplace(key, *std::move(e));
  return absl::OkStatus();
}

absl::Status BundleWriter::AddSlice(absl::string_view full_key,
                                    const std::vector<int64_t>& full_shape,
                                    const TensorSliceSpec& slice,
                                    const TensorValue& value) {
  if (!status_.ok()) return status_;
  const auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("slice of tensor '", absl::CHexEscape(full_key), "': ", why));
  };
  if (full_key.empty()) return bad("the empty key is the bundle header's");
  if (slice.size() != full_shape.size())
    return bad("the slice's rank is not the tensor's");
  std::vector<int64_t> slice_shape;
  for (size_t d = 0; d < slice.size(); ++d) {
    const bool whole = slice[d].length < 0;
    if (!whole && (slice[d].start < 0 || slice[d].start > full_shape[d] ||
                   slice[d].length > full_shape[d] - slice[d].start)) {
      return bad(absl::StrFormat("extent %d,%d of dimension %d is outside size %d",
                                 slice[d].start, slice[d].length, d, full_shape[d]));
    }
    slice_shape.push_back(whole ? full_shape[d] : slice[d].length);
  }
  if (slice_shape != value.shape()) return bad("the value's shape is not the slice's");
  BundleEntry::Fields f;
  auto it = entries_.find(std::string(full_key));
  if (it != entries_.end()) {
    if (it->second.slices().empty() || it->second.dtype() != value.dtype() ||
        it->second.shape() != full_shape) {
      return bad("it was added before with another dtype or shape, or unpartitioned");
    }
    f.slices = it->second.slices();
  }
  // Store the slice in TF's normal form: whole dimensions as (0, -1).
  TensorSliceSpec normal = slice;
  for (SliceExtent& e : normal) {
    if (e.length < 0) e = SliceExtent{0, -1};
  }
  for (const TensorSliceSpec& s : f.slices) {
    if (s == normal) return bad("this slice was already added");
  }
  MESHCKPT_RETURN_IF_ERROR(Add(EncodeTensorNameSlice(full_key, normal), value));
  f.key = std::string(full_key);
  f.dtype = static_cast<int>(value.dtype());
  f.shape = full_shape;
  f.slices.push_back(std::move(normal));
  absl::StatusOr<BundleEntry> e =
      BundleEntry::Create(std::move(f), 1, IndexFilename(prefix_));
  if (!e.ok()) return status_ = absl::InternalError(e.status().message());
  entries_.insert_or_assign(std::string(full_key), *std::move(e));
  return absl::OkStatus();
}

absl::Status BundleWriter::Finish() {
  if (!status_.ok()) return status_;
  if (finished_)
    return absl::FailedPreconditionError("BundleWriter::Finish called twice");
  if (open_.has_value()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "BundleWriter::Finish: tensor '", absl::CHexEscape(open_->fields.key),
        "' is still open (EndEntry it first)"));
  }
  std::FILE* f = file_;
  file_ = nullptr;
  if (std::fflush(f) != 0) {
    const int err = errno;
    std::fclose(f);
    return status_ =
               absl::ErrnoToStatus(err, absl::StrCat("cannot write '", temp_data_, "'"));
  }
  if (::fsync(::fileno(f)) != 0) {
    const int err = errno;
    std::fclose(f);
    return status_ =
               absl::ErrnoToStatus(err, absl::StrCat("cannot fsync '", temp_data_, "'"));
  }
  if (std::fclose(f) != 0) {
    return status_ = absl::ErrnoToStatus(errno,
                                         absl::StrCat("cannot close '", temp_data_, "'"));
  }
  const std::string data_path = DataFilename(prefix_, 0, 1);
  if (::rename(temp_data_.c_str(), data_path.c_str()) != 0) {
    return status_ =
               absl::ErrnoToStatus(errno, absl::StrCat("cannot rename '", temp_data_,
                                                       "' to '", data_path, "'"));
  }
  finished_ = true;  // the temporary is gone either way from here on

  BundleHeader header;
  header.num_shards = 1;
  header.producer = kTensorBundleVersion;
  std::vector<TableEntry> table;
  table.reserve(entries_.size() + 1);
  table.push_back(TableEntry{"", SerializeBundleHeader(header)});
  for (const auto& [key, entry] : entries_)
    table.push_back(TableEntry{key, entry.Serialize()});
  TableWriteOptions topts;
  topts.snappy = options_.compress_index;
  topts.block_size = options_.index_block_size;
  MESHCKPT_ASSIGN_OR_RETURN(std::string index, BuildTable(table, topts));
  return status_ = WriteFileAtomically(IndexFilename(prefix_), index);
}

absl::Status WriteBundle(const std::string& prefix,
                         const std::vector<std::pair<std::string, TensorValue>>& tensors,
                         BundleWriterOptions options) {
  MESHCKPT_ASSIGN_OR_RETURN(std::unique_ptr<BundleWriter> w,
                            BundleWriter::Create(prefix, options));
  for (const auto& [key, value] : tensors) MESHCKPT_RETURN_IF_ERROR(w->Add(key, value));
  return w->Finish();
}

}  // namespace meshckpt::tf
