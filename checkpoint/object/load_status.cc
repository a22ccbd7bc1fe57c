// LoadStatus: what a restore matched, and the checks callers ask of it.
#include "meshckpt/checkpoint/object/load_status.h"

#include "meshckpt/checkpoint/object/restore_session.h"

namespace meshckpt {

absl::Status LoadStatus::AssertConsumed() const { return session_->AssertConsumed(); }

absl::Status LoadStatus::AssertExistingObjectsMatched() const {
  return session_->AssertExistingObjectsMatched();
}

absl::Status LoadStatus::AssertNontrivialMatch() const {
  return session_->AssertNontrivialMatch();
}

absl::Status LoadStatus::AssertSomeValueRestored() const {
  return session_->AssertSomeValueRestored();
}

LoadStatus& LoadStatus::ExpectPartial() {
  session_->ExpectPartial();
  return *this;
}

std::vector<std::string> LoadStatus::UnusedKeys() const { return session_->UnusedKeys(); }

}  // namespace meshckpt
