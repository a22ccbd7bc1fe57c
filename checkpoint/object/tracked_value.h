// TrackedValue: non-tensor state saved in the same checkpoint as the
// tensors: an int64, a double, or a string of bytes (RNG state, data
// iterator position, a config blob).
//
// Scope kGlobal: one value for the whole job. Every rank should hold the
// same value; one rank writes it (whichever the writer balance picks) and
// every rank gets it back.
//
// Scope kPerRank: each rank's own value. Saved as a vector indexed by rank.
// Restored onto the same number of ranks, each rank gets its own value back.
// Onto a different number, the policy decides: kModulo gives rank r the value
// of saved rank r % saved_ranks; kRequireSameRanks fails the restore with
// FailedPrecondition. Either way saved_values() holds every saved rank's
// value, so a program can redistribute (e.g. split data-iterator positions).
//
//   TrackedValue* step = *module.AddValue("step", TrackedValue::Create(int64_t{0}));
//   TrackedValue* rng = *module.AddValue(
//       "rng", TrackedValue::Create(std::string(state), TrackedValue::Scope::kPerRank));
//   step->set(int64_t{1000});
#ifndef MESHCKPT_CHECKPOINT_OBJECT_TRACKED_VALUE_H_
#define MESHCKPT_CHECKPOINT_OBJECT_TRACKED_VALUE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "meshckpt/base/dtype.h"
#include "meshckpt/base/scalar_value.h"
#include "meshckpt/checkpoint/object/trackable.h"

namespace meshckpt {

class TrackedValue : public Trackable {
 public:
  using Value = ScalarValue;
  enum class Scope { kGlobal, kPerRank };
  enum class RankPolicy { kModulo, kRequireSameRanks };

  static std::unique_ptr<TrackedValue> Create(Value initial, Scope scope = Scope::kGlobal,
                                              RankPolicy policy = RankPolicy::kModulo);

  const Value& value() const { return value_; }
  // InvalidArgument when `v` holds a different type than the value.
  absl::Status set(Value v);
  int64_t int64() const { return std::get<int64_t>(value_); }
  double float64() const { return std::get<double>(value_); }
  const std::string& bytes() const { return std::get<std::string>(value_); }

  Scope scope() const { return scope_; }
  RankPolicy policy() const { return policy_; }
  DType dtype() const;
  // After restoring a kPerRank value: every saved rank's value.
  const std::vector<Value>& saved_values() const { return saved_values_; }

 private:
  friend class internal::RestoreSession;
  TrackedValue(Value v, Scope s, RankPolicy p)
      : value_(std::move(v)), scope_(s), policy_(p) {}

  Value value_;
  Scope scope_;
  RankPolicy policy_;
  std::vector<Value> saved_values_;
};

}  // namespace meshckpt

#endif  // MESHCKPT_CHECKPOINT_OBJECT_TRACKED_VALUE_H_
