// Benchmark plumbing: timing, page-cache dropping, raw-disk baselines.
#include "bench/bench_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace meshckpt::bench {
namespace {

constexpr int64_t kMaxIoCall = int64_t{64} << 20;

absl::Status ErrnoError(absl::string_view what, const std::string& path) {
  const int e = errno;
  return absl::Status(e == ENOSPC ? absl::StatusCode::kResourceExhausted
                                  : absl::StatusCode::kInternal,
                      absl::StrCat(what, " '", path, "': ", std::strerror(e)));
}

// Closes the descriptor on every path out of RawWrite/RawRead.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  int Release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// A "Name:   123 kB" line of /proc/self/status, in KiB; 0 if unreadable.
int64_t StatusKiB(const char* name) {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return 0;
  const size_t len = std::strlen(name);
  char line[256];
  int64_t kib = 0;
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    if (std::strncmp(line, name, len) == 0 && line[len] == ':') {
      kib = std::strtoll(line + len + 1, nullptr, 10);
      break;
    }
  }
  std::fclose(f);
  return kib;
}

bool ResetHighWater() {
  FILE* f = std::fopen("/proc/self/clear_refs", "w");
  if (f == nullptr) return false;
  const bool wrote = std::fputs("5", f) >= 0;
  return std::fclose(f) == 0 && wrote;
}

}  // namespace

double NowSeconds() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Stats Summarize(std::vector<double> v) {
  Stats s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  s.median = n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  s.min = v.front();
  s.max = v.back();
  return s;
}

absl::Status DropPageCache() {
  ::sync();
  FILE* f = std::fopen("/proc/sys/vm/drop_caches", "w");
  if (f == nullptr) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot open /proc/sys/vm/drop_caches: ", std::strerror(errno)));
  }
  const bool wrote = std::fputs("3\n", f) >= 0;
  if (std::fclose(f) != 0 || !wrote) {
    return absl::PermissionDeniedError("writing /proc/sys/vm/drop_caches failed");
  }
  return absl::OkStatus();
}

int64_t CurrentRssKiB() { return StatusKiB("VmRSS"); }

PeakMemory::~PeakMemory() {
  if (sampler_.joinable()) {
    stop_ = true;
    sampler_.join();
  }
}

void PeakMemory::Start() {
  sampling_ = force_sampling_ || !ResetHighWater();
  if (!sampling_) return;
  stop_ = false;
  peak_ = CurrentRssKiB();
  sampler_ = std::thread([this] {
    while (!stop_) {
      const int64_t now = CurrentRssKiB();
      if (now > peak_) peak_ = now;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
}

int64_t PeakMemory::Stop() {
  if (!sampling_) return std::max(StatusKiB("VmHWM"), CurrentRssKiB());
  stop_ = true;
  sampler_.join();
  return std::max<int64_t>(peak_, CurrentRssKiB());
}

int64_t TotalBytes(absl::Span<const ConstSegment> segments) {
  int64_t n = 0;
  for (const ConstSegment& s : segments) n += s.bytes;
  return n;
}

int64_t TotalBytes(absl::Span<const Segment> segments) {
  int64_t n = 0;
  for (const Segment& s : segments) n += s.bytes;
  return n;
}

absl::Status RawWrite(const std::string& path, absl::Span<const ConstSegment> segments) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.get() < 0) return ErrnoError("cannot create", path);
  int64_t offset = 0;
  for (const ConstSegment& s : segments) {
    const char* p = static_cast<const char*>(s.data);
    for (int64_t done = 0; done < s.bytes;) {
      const int64_t n = std::min(kMaxIoCall, s.bytes - done);
      const ssize_t w = ::pwrite(fd.get(), p + done, n, offset);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return ErrnoError("cannot write", path);
      done += w;
      offset += w;
    }
  }
  if (::fsync(fd.get()) != 0) return ErrnoError("cannot fsync", path);
  if (::close(fd.Release()) != 0) return ErrnoError("cannot close", path);
  return absl::OkStatus();
}

absl::Status RawRead(const std::string& path, absl::Span<const Segment> segments) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoError("cannot open", path);
  int64_t offset = 0;
  for (const Segment& s : segments) {
    char* p = static_cast<char*>(s.data);
    for (int64_t done = 0; done < s.bytes;) {
      const int64_t n = std::min(kMaxIoCall, s.bytes - done);
      const ssize_t r = ::pread(fd.get(), p + done, n, offset);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return ErrnoError("cannot read", path);
      if (r == 0) {
        return absl::DataLossError(
            absl::StrCat("raw file '", path, "' ends at ", offset, " bytes"));
      }
      done += r;
      offset += r;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::map<std::string, std::string>> ParseFlags(
    int argc, char** argv, const std::vector<std::string>& known) {
  std::map<std::string, std::string> flags;
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (!absl::ConsumePrefix(&a, "--")) {
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected argument '", argv[i], "'"));
    }
    const size_t eq = a.find('=');
    std::string name(a.substr(0, eq));
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    }
    flags[name] = eq == absl::string_view::npos ? "true" : std::string(a.substr(eq + 1));
  }
  return flags;
}

}  // namespace meshckpt::bench
