// PhaseTrace: wall-clock time per phase of one save or restore, printed to
// stderr when the environment variable MESHCKPT_TRACE is set (to anything
// but "0"). Off by default; when off every call is a branch on a bool.
//
//   PhaseTrace trace("save", comm.rank());
//   ... trace.Mark("plan");        // time since the previous mark -> "plan"
//   { PhaseTrace::Scope s(&trace, "verify"); Verify(...); }  // accumulates
//   // ~PhaseTrace prints: "meshckpt trace rank 0 save 12.3ms: plan=0.1ms ..."
//
// One PhaseTrace belongs to one thread; Add() from other threads is not
// supported (time their work there and Add the result afterwards).
#ifndef MESHCKPT_BASE_PHASE_TRACE_H_
#define MESHCKPT_BASE_PHASE_TRACE_H_

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace meshckpt {

class PhaseTrace {
 public:
  using Clock = std::chrono::steady_clock;

  PhaseTrace(absl::string_view op, int rank);
  ~PhaseTrace();
  PhaseTrace(const PhaseTrace&) = delete;
  PhaseTrace& operator=(const PhaseTrace&) = delete;

  // Whether MESHCKPT_TRACE is set; read once per process.
  static bool Enabled();

  bool enabled() const { return enabled_; }
  // Charges the time since the previous Mark (or construction) to `phase`.
  void Mark(absl::string_view phase);
  // Adds `seconds` to `phase` without moving the mark.
  void Add(absl::string_view phase, double seconds);
  // A free-form note printed with the phases (e.g. a count).
  void Note(absl::string_view key, double value);

  // Adds the lifetime of the scope to `phase`; `trace` may be null.
  class Scope {
   public:
    Scope(PhaseTrace* trace, absl::string_view phase)
        : trace_(trace != nullptr && trace->enabled() ? trace : nullptr), phase_(phase) {
      if (trace_ != nullptr) start_ = Clock::now();
    }
    ~Scope() {
      if (trace_ != nullptr) {
        trace_->Add(phase_, std::chrono::duration<double>(Clock::now() - start_).count());
      }
    }

   private:
    PhaseTrace* trace_;
    absl::string_view phase_;
    Clock::time_point start_;
  };

 private:
  bool enabled_;
  std::string op_;
  int rank_;
  Clock::time_point start_, last_;
  std::vector<std::pair<std::string, double>> phases_, notes_;
};

}  // namespace meshckpt

#endif  // MESHCKPT_BASE_PHASE_TRACE_H_
