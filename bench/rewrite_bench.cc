// RewriteOnce and its raw baseline RawCopyShare (rewrite_bench.h).
#include "bench/rewrite_bench.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "meshckpt/base/status_macros.h"
#include "meshckpt/checkpoint/engine/checkpoint_handle.h"
#include "meshckpt/checkpoint/engine/stream_rewrite.h"

namespace meshckpt::bench {
namespace {

absl::Status Errno(absl::string_view what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " '", path, "': ", std::strerror(errno)));
}

}  // namespace

absl::Status RewriteOnce(Communicator& comm, const std::string& from,
                         const std::string& to, const Workload& w) {
  MESHCKPT_ASSIGN_OR_RETURN(std::unique_ptr<CheckpointHandle> source,
                            CheckpointHandle::Open(comm, from));
  std::vector<RewriteTensor> targets;
  for (const SaveTensor& t : w.SaveList()) {
    targets.push_back({t.key, t.dataset, t.dtype, t.layout});
  }
  CheckpointContents contents;
  contents.mesh = targets.empty() ? std::nullopt
                                  : std::optional<Mesh>(targets[0].layout.mesh());
  return RewriteCheckpoint(*source, to, targets, contents, RewriteOptions());
}

absl::Status RawCopyShare(int rank, int ranks, const std::string& source,
                          const std::string& to, int64_t total) {
  const int64_t share = (total + ranks - 1) / ranks;
  const int64_t begin = std::min(total, rank * share);
  const int64_t bytes = std::min(total, begin + share) - begin;
  const int64_t piece = RewriteOptions().max_memory / 4;
  std::unique_ptr<char[]> buffer(new char[piece]);
  const int in = ::open(source.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return Errno("cannot open", source);
  const int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) {
    ::close(in);
    return Errno("cannot create", to);
  }
  absl::Status s;
  for (int64_t done = 0; done < bytes && s.ok();) {
    const ssize_t n =
        ::pread(in, buffer.get(), std::min(piece, bytes - done), begin + done);
    if (n <= 0) {
      s = n == 0 ? absl::DataLossError(absl::StrCat("'", source, "' is shorter than ",
                                                    begin + bytes, " bytes"))
                 : Errno("cannot read", source);
      break;
    }
    for (ssize_t w = 0; w < n && s.ok();) {
      const ssize_t m = ::pwrite(out, buffer.get() + w, n - w, done + w);
      if (m < 0) s = Errno("cannot write", to);
      w += std::max<ssize_t>(m, 0);
    }
    done += n;
  }
  if (s.ok() && ::fsync(out) != 0) s = Errno("cannot fsync", to);
  ::close(in);
  ::close(out);
  return s;
}

}  // namespace meshckpt::bench
