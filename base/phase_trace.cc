// PhaseTrace: per-phase timings printed when MESHCKPT_TRACE asks for them.
#include "meshckpt/base/phase_trace.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace meshckpt {
namespace {

double Seconds(PhaseTrace::Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

void AddTo(std::vector<std::pair<std::string, double>>* v, absl::string_view k,
           double x) {
  for (auto& [name, value] : *v) {
    if (name == k) {
      value += x;
      return;
    }
  }
  v->emplace_back(std::string(k), x);
}

}  // namespace

bool PhaseTrace::Enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("MESHCKPT_TRACE");
    return v != nullptr && *v != '\0' && std::strcmp(v, "0") != 0;
  }();
  return enabled;
}

PhaseTrace::PhaseTrace(absl::string_view op, int rank)
    : enabled_(Enabled()), rank_(rank) {
  if (!enabled_) return;
  op_ = std::string(op);
  start_ = last_ = Clock::now();
}

PhaseTrace::~PhaseTrace() {
  if (!enabled_) return;
  std::string line = absl::StrCat("meshckpt trace rank ", rank_, " ", op_, " ",
                                  absl::SixDigits(Seconds(Clock::now() - start_) * 1e3),
                                  "ms:");
  for (const auto& [name, s] : phases_) {
    absl::StrAppend(&line, " ", name, "=", absl::SixDigits(s * 1e3), "ms");
  }
  for (const auto& [name, v] : notes_) {
    absl::StrAppend(&line, " ", name, "=", absl::SixDigits(v));
  }
  line += "\n";
  std::fputs(line.c_str(), stderr);
}

void PhaseTrace::Mark(absl::string_view phase) {
  if (!enabled_) return;
  const Clock::time_point now = Clock::now();
  AddTo(&phases_, phase, Seconds(now - last_));
  last_ = now;
}

void PhaseTrace::Add(absl::string_view phase, double seconds) {
  if (enabled_) AddTo(&phases_, phase, seconds);
}

void PhaseTrace::Note(absl::string_view key, double value) {
  if (enabled_) AddTo(&notes_, key, value);
}

}  // namespace meshckpt
