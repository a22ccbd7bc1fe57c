// Test-only fault injector (fault_injector.h): installs the library's fault
// hook while a FaultSpec or a callback is armed, and removes it otherwise.
#include "meshckpt/checkpoint/engine/testing/fault_injector.h"

#include <fcntl.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <map>
#include <random>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "meshckpt/checkpoint/engine/fault_injection.h"

namespace meshckpt {
namespace {

struct FaultState {
  bool armed = false;  // `spec` applies.
  FaultSpec spec;
  std::map<std::string, int> hits;  // Per point, in this process.
  bool rng_seeded = false;
  std::mt19937_64 rng;
  std::function<void(absl::string_view, int)> callback;
};

FaultState& State() {
  static FaultState* state = new FaultState();
  return *state;
}

bool IsPointName(absl::string_view name) {
  for (const std::string& p : FaultPointNames()) {
    if (p == name) return true;
  }
  return false;
}

// Appends the log line; best effort, async-signal-safe calls only.
void WriteLog(const std::string& path, const std::string& line) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return;
  ssize_t unused = ::write(fd, line.data(), line.size());
  (void)unused;
  ::close(fd);
}

// The hook: what a fault point does while something is armed.
void FaultPointReached(const char* point, int rank) {
  FaultState& s = State();
  if (s.callback) s.callback(point, rank);
  if (!s.armed) return;
  const FaultSpec& spec = s.spec;
  if (spec.rank >= 0 && spec.rank != rank) return;
  const int hit = ++s.hits[point];
  bool kill = false;
  if (spec.point == "random") {
    if (!s.rng_seeded) {
      s.rng.seed(spec.seed * 1000003 + static_cast<uint64_t>(rank));
      s.rng_seeded = true;
    }
    kill = std::uniform_real_distribution<double>(0, 1)(s.rng) < spec.prob;
  } else {
    kill = spec.point == point && hit == spec.hit;
  }
  if (!kill) return;
  if (!spec.log.empty()) {
    WriteLog(spec.log, absl::StrCat("fault point=", point, " rank=", rank, " hit=", hit,
                                    " pid=", ::getpid(), "\n"));
  }
  std::fprintf(stderr, "meshckpt: MESHCKPT_FAULT kills rank %d at %s (hit %d)\n", rank,
               point, hit);
  std::fflush(stderr);
  std::raise(SIGKILL);
}

void UpdateHook(const FaultState& s) {
  internal::g_fault_hook.store(s.armed || s.callback ? &FaultPointReached : nullptr,
                               std::memory_order_relaxed);
}

}  // namespace

const std::vector<std::string>& FaultPointNames() {
  static const auto* names = new std::vector<std::string>{
      "during_data_write", "after_flush",      "after_agree", "after_data_rename",
      "after_index",       "after_state_file", "during_sweep"};
  return *names;
}

absl::StatusOr<FaultSpec> ParseFaultSpec(absl::string_view text) {
  FaultSpec spec;
  for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    const size_t eq = item.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", item, "' is not key=value in '", text, "'"));
    }
    const absl::string_view key = item.substr(0, eq), value = item.substr(eq + 1);
    bool ok = true;
    if (key == "point") {
      spec.point = std::string(value);
      ok = value == "random" || IsPointName(value);
    } else if (key == "rank") {
      ok = absl::SimpleAtoi(value, &spec.rank) && spec.rank >= 0;
    } else if (key == "hit") {
      ok = absl::SimpleAtoi(value, &spec.hit) && spec.hit >= 1;
    } else if (key == "seed") {
      ok = absl::SimpleAtoi(value, &spec.seed);
    } else if (key == "prob") {
      ok = absl::SimpleAtod(value, &spec.prob) && spec.prob >= 0 && spec.prob <= 1;
    } else if (key == "log") {
      spec.log = std::string(value);
      ok = !value.empty();
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown key '", key, "' in '", text,
                       "' (keys: point, rank, hit, seed, prob, log)"));
    }
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          "bad value '", value, "' for ", key, " in '", text, "'",
          key == "point" ? absl::StrCat(" (points: random, ",
                                        absl::StrJoin(FaultPointNames(), ", "), ")")
                         : ""));
    }
  }
  if (spec.point.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("no point= in '", text, "'"));
  }
  return spec;
}

void ArmFault(const FaultSpec& spec) {
  FaultState& s = State();
  s.spec = spec;
  s.armed = true;
  s.hits.clear();
  s.rng_seeded = false;
  UpdateHook(s);
}

void SetFaultCallbackForTesting(
    std::function<void(absl::string_view point, int rank)> callback) {
  FaultState& s = State();
  s.callback = std::move(callback);
  UpdateHook(s);
}

}  // namespace meshckpt
