#include "io/format/index_file.h"

#include <xxhash.h>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/algorithm/container.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "io/fs/fs.h"

namespace meshckpt {
namespace {

constexpr size_t kFooterSize = 16;

absl::Status NotAnIndex(const std::string& path, int64_t size) {
  return absl::DataLossError(absl::StrCat("index file '", path,
                                          "' is truncated or not a meshckpt index (",
                                          size, " bytes, no footer)"));
}

}  // namespace

absl::StatusOr<std::string> ReadIndexFileBytes(const std::string& path) {
  absl::StatusOr<OpenedFile> file = OpenRegularFileForRead(path);
  if (!file.ok()) return file.status();
  const int fd = file->fd;
  char magic[8];
  ssize_t n = -1;
  if (file->size >= static_cast<int64_t>(kFooterSize)) {
    do {
      n = ::pread(fd, magic, sizeof(magic), file->size - 8);
    } while (n < 0 && errno == EINTR);
  }
  ::close(fd);
  if (n != 8 || std::memcmp(magic, kIndexMagic, 8) != 0) {
    return NotAnIndex(path, file->size);
  }
  if (file->size > kMaxIndexFileBytes) {
    return absl::DataLossError(absl::StrCat("index file '", path, "' is ", file->size,
                                            " bytes, more than an index can be"));
  }
  return ReadFileToString(path, kMaxIndexFileBytes);
}

std::string EncodeIndexFile(proto::CheckpointIndexProto index) {
  index.mutable_version()->set_producer(kFormatVersion);
  index.mutable_version()->set_min_consumer(
      std::max(kMinConsumerVersion, index.version().min_consumer()));
  std::string out;
  index.SerializeToString(&out);
  const uint64_t h = XXH3_64bits(out.data(), out.size());
  for (int b = 0; b < 8; ++b) out.push_back(static_cast<char>(h >> (8 * b)));
  out.append(kIndexMagic, 8);
  return out;
}

absl::StatusOr<proto::CheckpointIndexProto> DecodeIndexFile(
    absl::string_view bytes, const std::string& path) {
  if (bytes.size() < kFooterSize ||
      std::memcmp(bytes.data() + bytes.size() - 8, kIndexMagic, 8) != 0) {
    return NotAnIndex(path, static_cast<int64_t>(bytes.size()));
  }
  if (static_cast<int64_t>(bytes.size()) > kMaxIndexFileBytes) {
    return absl::DataLossError(absl::StrCat("index file '", path, "' is ", bytes.size(),
                                            " bytes, more than an index can be"));
  }
  const absl::string_view payload = bytes.substr(0, bytes.size() - kFooterSize);
  uint64_t stored = 0;
  for (int b = 0; b < 8; ++b) {
    stored |= uint64_t{static_cast<unsigned char>(bytes[payload.size() + b])}
              << (8 * b);
  }
  if (XXH3_64bits(payload.data(), payload.size()) != stored) {
    return absl::DataLossError(
        absl::StrCat("index file '", path, "' fails its checksum"));
  }
  proto::CheckpointIndexProto index;
  if (!index.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return absl::DataLossError(
        absl::StrCat("index file '", path, "' does not parse"));
  }
  const proto::VersionDef& v = index.version();
  if (v.min_consumer() > kFormatVersion ||
      absl::c_linear_search(v.bad_consumers(), kFormatVersion)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "index file '", path, "' was written by meshckpt format ",
        v.producer(), " and needs a reader of format >= ", v.min_consumer(),
        "; this library reads format ", kFormatVersion));
  }
  return index;
}

}  // namespace meshckpt
