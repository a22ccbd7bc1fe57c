// Trackable: named children and the restores pending for them.
#include "meshckpt/checkpoint/object/trackable.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "meshckpt/checkpoint/object/dvariable.h"
#include "meshckpt/checkpoint/object/restore_session.h"
#include "meshckpt/checkpoint/object/tracked_value.h"

namespace meshckpt {

Trackable* Trackable::FindChild(absl::string_view name) const {
  for (const auto& [n, c] : children_) {
    if (n == name) return c;
  }
  return nullptr;
}

absl::Status Trackable::ValidateChildName(absl::string_view name) {
  if (name.empty() || name[0] == '.' || name.find('/') != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("child name '", name,
                     "' must be non-empty, without '/', and not start with '.'"));
  }
  return absl::OkStatus();
}

absl::Status Trackable::TrackChild(std::string name, Trackable* child) {
  if (child == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("child '", name, "' is null, not a trackable object"));
  }
  if (absl::Status s = ValidateChildName(name); !s.ok()) return s;
  if (FindChild(name) != nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("a child named '", name, "' is already tracked"));
  }
  children_.emplace_back(name, child);
  auto it = pending_.find(name);
  if (it == pending_.end()) return absl::OkStatus();
  Pending pending = std::move(it->second);
  pending_.erase(it);
  return pending.session->RestoreDeferred(child, pending.node);
}

absl::StatusOr<Module*> Module::AddModule(std::string name) {
  auto module = std::make_unique<Module>();
  Module* raw = module.get();
  owned_.push_back(std::move(module));
  absl::Status s = TrackChild(name, raw);
  // Not tracked: drop it. Tracked but its deferred restore failed: keep it.
  if (!s.ok() && FindChild(name) != raw) owned_.pop_back();
  if (!s.ok()) return s;
  return raw;
}

absl::StatusOr<DVariable*> Module::AddVariable(std::string name, DType dtype,
                                               std::vector<int64_t> shape,
                                               Layout layout) {
  auto v = DVariable::Create(name, dtype, std::move(shape), std::move(layout));
  return AdoptVariable(std::move(name), std::move(v));
}

absl::StatusOr<DVariable*> Module::WrapVariable(std::string name, DType dtype,
                                                std::vector<int64_t> shape, Layout layout,
                                                std::vector<void*> shard_buffers) {
  auto v = DVariable::Wrap(name, dtype, std::move(shape), std::move(layout),
                           std::move(shard_buffers));
  return AdoptVariable(std::move(name), std::move(v));
}

absl::StatusOr<DVariable*> Module::AdoptVariable(
    std::string name, absl::StatusOr<std::unique_ptr<DVariable>> v) {
  if (!v.ok()) return v.status();
  DVariable* raw = v->get();
  owned_.push_back(*std::move(v));
  absl::Status s = TrackChild(name, raw);
  if (!s.ok() && FindChild(name) != raw) owned_.pop_back();
  if (!s.ok()) return s;
  return raw;
}

absl::StatusOr<TrackedValue*> Module::AddValue(std::string name,
                                               std::unique_ptr<TrackedValue> value) {
  TrackedValue* raw = value.get();
  owned_.push_back(std::move(value));
  absl::Status s = TrackChild(name, raw);
  if (!s.ok() && FindChild(name) != raw) owned_.pop_back();
  if (!s.ok()) return s;
  return raw;
}

}  // namespace meshckpt
