// DirectFile: pread/pwrite of chunk bytes at offsets HDF5 allocated.
#include "meshckpt/io/transfer/direct_file.h"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "meshckpt/base/status_macros.h"
#include "meshckpt/io/fs/fs.h"
#include "meshckpt/layout/region.h"

namespace meshckpt {
namespace {

// Runs shorter than this are read through a covering span (sieving).
constexpr int64_t kSieveRunBytes = int64_t{16} << 10;
// A sieved window skips at most max(run, this) bytes between two runs, so
// it never reads more than about twice what it keeps.
constexpr int64_t kSieveMinGapBytes = 512;
constexpr int64_t kSieveMaxGapBytes = kSieveRunBytes;
// iovecs per preadv (Linux's IOV_MAX).
constexpr size_t kMaxIov = 1024;
// Writeback is started in steps of this many contiguous bytes.
constexpr int64_t kWritebackBytes = int64_t{8} << 20;

// Row-major linear index of `idx` in `shape`.
int64_t Linear(absl::Span<const int64_t> shape, absl::Span<const int64_t> idx) {
  int64_t n = 0;
  for (size_t d = 0; d < shape.size(); ++d) n = n * shape[d] + idx[d];
  return n;
}

}  // namespace

int64_t StorageBlock::bytes(int64_t element_size) const {
  int64_t n = element_size;
  for (int64_t s : shape) n *= s;
  return n;
}

std::optional<StorageBlock> BlockHolding(const std::vector<StorageBlock>& blocks,
                                         const Box& box, int64_t element_size) {
  if (box.empty() || element_size == 0) return std::nullopt;
  for (const StorageBlock& b : blocks) {
    if (!b.box().Contains(box)) continue;
    std::vector<int64_t> rel(box.rank());
    for (int d = 0; d < box.rank(); ++d) rel[d] = box.origin()[d] - b.origin[d];
    return StorageBlock{box.origin(), b.shape,
                        b.offset + element_size * Linear(b.shape, rel)};
  }
  return std::nullopt;
}

absl::StatusOr<std::unique_ptr<DirectFile>> DirectFile::Open(const std::string& path,
                                                             Mode mode,
                                                             bool start_writeback) {
  int fd;
  if (mode == kWrite) {
    fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("cannot open", path, errno);
  } else {
    MESHCKPT_ASSIGN_OR_RETURN(OpenedFile file, OpenRegularFileForRead(path));
    fd = file.fd;
  }
  return std::unique_ptr<DirectFile>(
      new DirectFile(fd, path, mode == kWrite && start_writeback));
}

DirectFile::~DirectFile() { (void)Close(); }

absl::Status DirectFile::PwriteAll(const char* data, int64_t n, int64_t offset) {
  const int64_t start = offset;
  const int64_t total = n;
  while (n > 0) {
    const ssize_t w =
        ::pwrite(fd_, data, static_cast<size_t>(std::min<int64_t>(n, 1 << 30)), offset);
    ++io_calls_;
    if (w < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(
          absl::StrCat("cannot write ", total, " bytes at offset ", start, " of"), path_,
          errno);
    }
    data += w;
    n -= w;
    offset += w;
  }
  NoteWritten(start, total);
  return absl::OkStatus();
}

void DirectFile::NoteWritten(int64_t offset, int64_t n) {
  if (!start_writeback_) return;
#ifdef SYNC_FILE_RANGE_WRITE
  if (offset != writeback_hi_) {
    if (writeback_hi_ > writeback_lo_) {
      ::sync_file_range(fd_, writeback_lo_, writeback_hi_ - writeback_lo_,
                        SYNC_FILE_RANGE_WRITE);
    }
    writeback_lo_ = offset;
  }
  writeback_hi_ = offset + n;
  if (writeback_hi_ - writeback_lo_ >= kWritebackBytes) {
    ::sync_file_range(fd_, writeback_lo_, writeback_hi_ - writeback_lo_,
                      SYNC_FILE_RANGE_WRITE);
    writeback_lo_ = writeback_hi_;
  }
#else
  (void)offset;
  (void)n;
#endif
}

absl::Status DirectFile::Write(const StorageBlock& block, const Box& valid,
                               const Box& box, int64_t element_size, const void* data) {
  if (box.empty()) return absl::OkStatus();
  const Box rel = RelativeTo(box, block.box());
  const Box rel_valid = RelativeTo(Intersect(valid, block.box()), block.box());
  const char* src = static_cast<const char*>(data);
  const int rank = rel.rank();

  // Packing: dims after `k` cover the valid part of the block exactly and
  // dims before it are single; then the only gaps between the box's runs
  // are padding, and rows of dim k can be written whole.
  auto covers = [&](int d) {
    return rel.origin()[d] == 0 && rel_valid.origin()[d] == 0 &&
           rel.shape()[d] == rel_valid.shape()[d];
  };
  int k = rank - 1;
  while (k > 0 && covers(k)) --k;
  bool packable = rank > 1;
  bool gaps = false;
  for (int d = 0; d < rank && packable; ++d) {
    if (d < k) packable = rel.shape()[d] == 1;
    if (d > k) {
      packable = covers(d);
      gaps |= block.shape[d] > rel.shape()[d];
    }
  }
  int64_t file_row = element_size;  // Bytes of one step of dim k in the file.
  for (int d = k + 1; d < rank; ++d) file_row *= block.shape[d];
  if (packable && gaps && file_row <= kStagingBytes) {
    return WritePacked(block, rel, k, element_size, src);
  }

  // One write per run, merging runs contiguous in both file and memory.
  int64_t pending_file = -1, pending_mem = 0, pending_n = 0;
  absl::Status status;
  ForEachRunPair(block.shape, rel, rel.shape(), Box::FromShape(rel.shape()),
                 [&](int64_t f, int64_t m, int64_t n) {
                   if (!status.ok()) return;
                   f *= element_size;
                   m *= element_size;
                   n *= element_size;
                   if (pending_file >= 0 && f == pending_file + pending_n &&
                       m == pending_mem + pending_n) {
                     pending_n += n;
                     return;
                   }
                   if (pending_file >= 0) {
                     status = PwriteAll(src + pending_mem, pending_n,
                                        block.offset + pending_file);
                   }
                   pending_file = f;
                   pending_mem = m;
                   pending_n = n;
                 });
  if (status.ok() && pending_file >= 0) {
    status = PwriteAll(src + pending_mem, pending_n, block.offset + pending_file);
  }
  return status;
}

absl::Status DirectFile::WritePacked(const StorageBlock& block, const Box& rel, int k,
                                     int64_t element_size, const char* src) {
  const int rank = rel.rank();
  int64_t file_row = element_size;
  for (int d = k + 1; d < rank; ++d) file_row *= block.shape[d];
  const int64_t rows = rel.shape()[k];
  const int64_t per = std::max<int64_t>(1, kStagingBytes / file_row);
  std::vector<int64_t> first = rel.origin();  // First element of row w.
  for (int64_t w0 = 0; w0 < rows; w0 += per) {
    const int64_t w1 = std::min(rows, w0 + per);
    std::vector<int64_t> src_origin(rank, 0), region(rank, 1), dst_shape(rank, 1);
    src_origin[k] = w0;
    region[k] = dst_shape[k] = w1 - w0;
    for (int d = k + 1; d < rank; ++d) {
      region[d] = rel.shape()[d];
      dst_shape[d] = block.shape[d];
    }
    const int64_t bytes = (w1 - w0) * file_row;
    staging_.assign(bytes, 0);
    CopyRegion(src, rel.shape(), Box::Unchecked(src_origin, region), staging_.data(),
               dst_shape, Box::Unchecked(std::vector<int64_t>(rank, 0), region),
               element_size);
    first[k] = rel.origin()[k] + w0;
    MESHCKPT_RETURN_IF_ERROR(
        PwriteAll(staging_.data(), bytes,
                  block.offset + Linear(block.shape, first) * element_size));
  }
  if (staging_.capacity() > static_cast<size_t>(kStagingBytes)) {
    std::vector<char>().swap(staging_);
  }
  return absl::OkStatus();
}

absl::Status DirectFile::Read(const StorageBlock& block, const Box& box,
                              int64_t element_size, absl::Span<const int64_t> dst_shape,
                              const Box& dst_box, void* dst) {
  if (box.empty()) return absl::OkStatus();
  const Box rel = RelativeTo(box, block.box());
  char* out = static_cast<char*>(dst);
  struct Run {
    int64_t file, mem, n;
  };
  // Pending: either one run merged from contiguous pieces, or a window of
  // short runs read with one preadv that scatters each run to its place and
  // the gaps between them to a scratch buffer ("data sieving" without the
  // second copy).
  std::vector<Run> window;
  std::vector<iovec> iov;
  absl::Status status;
  auto flush = [&]() {
    if (window.empty() || !status.ok()) return;
    int64_t max_gap = 0;
    for (size_t i = 1; i < window.size(); ++i) {
      max_gap = std::max(max_gap, window[i].file - window[i - 1].file - window[i - 1].n);
    }
    if (static_cast<int64_t>(gap_sink_.size()) < max_gap) gap_sink_.resize(max_gap);
    iov.clear();
    for (size_t i = 0; i < window.size(); ++i) {
      if (i > 0) {
        const int64_t gap = window[i].file - window[i - 1].file - window[i - 1].n;
        if (gap > 0) iov.push_back({gap_sink_.data(), static_cast<size_t>(gap)});
      }
      iov.push_back({out + window[i].mem, static_cast<size_t>(window[i].n)});
    }
    const int64_t lo = window.front().file;
    status =
        PreadvAll(&iov, block.offset + lo, window.back().file + window.back().n - lo);
    window.clear();
  };
  ForEachRunPair(
      block.shape, rel, dst_shape, dst_box, [&](int64_t f, int64_t m, int64_t n) {
        if (!status.ok()) return;
        f *= element_size;
        m *= element_size;
        n *= element_size;
        if (!window.empty()) {
          Run& last = window.back();
          const bool contiguous = f == last.file + last.n && m == last.mem + last.n;
          if (window.size() == 1 && contiguous) {
            last.n += n;  // Still one direct read.
            return;
          }
          // Short runs close together share a call; reading a
          // gap costs a copy, a call per run a system call.
          const int64_t gap = f - (last.file + last.n);
          const bool sieve = n < kSieveRunBytes && last.n < kSieveRunBytes &&
                             gap <= std::max(n, kSieveMinGapBytes) &&
                             f + n - window.front().file <= kStagingBytes &&
                             2 * window.size() + 2 <= kMaxIov;
          if (sieve) {
            window.push_back({f, m, n});
            return;
          }
          flush();
        }
        window.push_back({f, m, n});
      });
  flush();
  if (gap_sink_.capacity() > static_cast<size_t>(kSieveMaxGapBytes)) {
    std::vector<char>().swap(gap_sink_);
  }
  return status;
}

absl::Status DirectFile::PreadvAll(std::vector<iovec>* iov, int64_t offset,
                                   int64_t total) {
  const int64_t start = offset;
  size_t first = 0;
  while (first < iov->size()) {
    const int count = static_cast<int>(std::min<size_t>(iov->size() - first, kMaxIov));
    const ssize_t r = ::preadv(fd_, iov->data() + first, count, offset);
    ++io_calls_;
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(
          absl::StrCat("cannot read ", total, " bytes at offset ", start, " of"), path_,
          errno);
    }
    if (r == 0) {
      return absl::DataLossError(absl::StrCat("data file '", path_, "' ends before byte ",
                                              start + total, " (reading ", total,
                                              " bytes at offset ", start, ")"));
    }
    offset += r;
    for (size_t left = r; left > 0;) {  // Drop what was filled.
      iovec& v = (*iov)[first];
      if (left >= v.iov_len) {
        left -= v.iov_len;
        ++first;
      } else {
        v.iov_base = static_cast<char*>(v.iov_base) + left;
        v.iov_len -= left;
        left = 0;
      }
    }
  }
  return absl::OkStatus();
}

absl::Status DirectFile::Sync() {
  if (::fdatasync(fd_) != 0) return ErrnoStatus("fdatasync failed for", path_, errno);
  return absl::OkStatus();
}

absl::Status DirectFile::Close() {
  if (fd_ < 0) return absl::OkStatus();
  const int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0) return ErrnoStatus("cannot close", path_, errno);
  return absl::OkStatus();
}

}  // namespace meshckpt
