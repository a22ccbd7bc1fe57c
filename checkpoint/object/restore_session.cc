// RestoreSession: live objects matched with a checkpoint's graph and restored.
#include "meshckpt/checkpoint/object/restore_session.h"

#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "meshckpt/base/status_macros.h"
#include "meshckpt/checkpoint/object/dvariable.h"
#include "meshckpt/checkpoint/object/object_graph.h"
#include "meshckpt/checkpoint/object/tracked_value.h"

namespace meshckpt::internal {
namespace {

constexpr char kSaveCounter[] = "save_counter";

// Room for every saved rank's value of a TrackedValue, as a restore target.
struct ValueBuffer {
  TrackedValue* value = nullptr;
  std::vector<int64_t> ints;
  std::vector<double> doubles;
  std::vector<std::string> strings;
  int64_t n = 1;
  bool per_rank = false;

  void* data() {
    switch (value->dtype()) {
      case DType::kInt64:
        return ints.data();
      case DType::kFloat64:
        return doubles.data();
      default:
        return strings.data();
    }
  }
  TrackedValue::Value At(int64_t i) const {
    switch (value->dtype()) {
      case DType::kInt64:
        return ints[i];
      case DType::kFloat64:
        return doubles[i];
      default:
        return strings[i];
    }
  }
};

}  // namespace

Layout ValueLayout(const Communicator& comm, bool per_rank) {
  Mesh mesh = Mesh::Create({{"ranks", comm.size()}}, comm.rank(), comm.size()).value();
  if (per_rank) return Layout::Create({"ranks"}, std::move(mesh)).value();
  return Layout::Replicated(std::move(mesh), 0);
}

RestoreSession::RestoreSession(Communicator* comm,
                               std::unique_ptr<CheckpointHandle> checkpoint,
                               IoOptions options, Trackable* root,
                               std::vector<std::pair<std::string, Trackable*>> attached,
                               std::function<void(const std::string&)> warning_sink)
    : comm_(comm),
      checkpoint_(std::move(checkpoint)),
      options_(std::move(options)),
      root_(root),
      attached_(std::move(attached)),
      warning_sink_(std::move(warning_sink)) {
  node_paths_ = SavedNodePaths(index().record().object_graph);
  node_matched_.assign(index().record().object_graph.nodes.size(), false);
}

RestoreSession::~RestoreSession() {
  if (expect_partial_ || failed_ || comm_->rank() != 0) return;
  std::vector<std::string> unused = UnusedKeys();
  if (unused.empty()) return;
  const std::string msg =
      absl::StrCat("meshckpt: warning: ", unused.size(), " value(s) in checkpoint '",
                   prefix(), "' were never restored: ", absl::StrJoin(unused, ", "),
                   ". Call LoadStatus::ExpectPartial() if this is intended.");
  if (warning_sink_) {
    warning_sink_(msg);
  } else {
    std::fprintf(stderr, "%s\n", msg.c_str());
  }
}

absl::Status RestoreSession::Restore(Trackable* object, int node) {
  std::vector<Leaf> leaves;
  Match(object, node, &leaves);
  absl::Status s = RestoreLeaves(leaves);
  if (!s.ok()) failed_ = true;  // Alike on every rank: the status is agreed.
  // Nothing can read it any more (the same on every rank: tracking is
  // collective).
  if (pending_ == 0) checkpoint_->Close();
  return s;
}

void RestoreSession::Abandon() {
  failed_ = true;
  for (const GraphNode& n : WalkObjectGraph(root_, attached_)) {
    auto& pending = n.object->pending_;
    for (auto it = pending.begin(); it != pending.end();) {
      if (it->second.session.get() == this) {
        it = pending.erase(it);
        --pending_;
      } else {
        ++it;
      }
    }
  }
  if (pending_ == 0) checkpoint_->Close();
}

void RestoreSession::Match(Trackable* object, int node, std::vector<Leaf>* leaves) {
  if (node < 0 || node >= static_cast<int>(node_matched_.size()) || node_matched_[node]) {
    return;
  }
  node_matched_[node] = true;
  const ObjectGraph::Node& n = index().record().object_graph.nodes[node];
  const bool leaf = IsLeaf(object);
  if (!leaf) matched_.insert(object);
  for (const ObjectGraph::Attribute& a : n.attributes) {
    if (leaf && a.name == kValueAttribute) leaves->push_back({object, a.checkpoint_key});
  }
  for (const ObjectGraph::Child& c : n.children) {
    if (Trackable* live = FindLiveChild(object, c.local_name, root_, attached_)) {
      Match(live, c.node_id, leaves);
    } else {
      // Replacing another session's entry leaves that session's data file
      // open until it goes; never closes one too early.
      Trackable::Pending& pending = object->pending_[c.local_name];
      if (pending.session.get() != this) ++pending_;
      pending = {shared_from_this(), c.node_id};
    }
  }
}

absl::Status RestoreSession::RestoreLeaves(const std::vector<Leaf>& leaves) {
  // Checked the same way on every rank (same graph, same index), so a
  // mismatch fails everywhere before any collective read.
  std::vector<RestoreTensor> requests;
  std::vector<ValueBuffer> values;
  values.reserve(leaves.size());
  for (const Leaf& leaf : leaves) {
    const CheckpointIndex::Tensor* saved = index().Find(leaf.key);
    if (saved == nullptr) {
      return absl::DataLossError(absl::StrCat("object graph of '", index().path(),
                                              "' names key '", leaf.key,
                                              "' but no such tensor is stored"));
    }
    if (auto* v = dynamic_cast<DVariable*>(leaf.object)) {
      requests.push_back(
          {leaf.key, v->dtype(), v->shape(), v->layout(), {}, v->MutableShardData()});
      continue;
    }
    auto* value = static_cast<TrackedValue*>(leaf.object);
    ValueBuffer buf;
    buf.value = value;
    buf.per_rank = value->scope() == TrackedValue::Scope::kPerRank;
    const size_t want_rank = buf.per_rank ? 1 : 0;
    if (saved->dtype != value->dtype() || saved->shape.size() != want_rank) {
      return absl::FailedPreconditionError(absl::StrCat(
          "value '", leaf.key, "' is a ", buf.per_rank ? "per-rank " : "",
          DTypeName(value->dtype()), " but checkpoint '", index().path(), "' holds a ",
          DTypeName(saved->dtype), " of rank ", saved->shape.size()));
    }
    if (buf.per_rank) {
      buf.n = saved->shape[0];
      if (buf.n != comm_->size() &&
          value->policy() == TrackedValue::RankPolicy::kRequireSameRanks) {
        return absl::FailedPreconditionError(
            absl::StrCat("per-rank value '", leaf.key, "' was saved by ", buf.n,
                         " ranks and cannot be restored on ", comm_->size(),
                         " (policy kRequireSameRanks)"));
      }
    }
    buf.ints.resize(value->dtype() == DType::kInt64 ? buf.n : 0);
    buf.doubles.resize(value->dtype() == DType::kFloat64 ? buf.n : 0);
    buf.strings.resize(value->dtype() == DType::kString ? buf.n : 0);
    values.push_back(std::move(buf));
    ValueBuffer& b = values.back();
    // Every rank reads all saved values: replicated over this job's ranks.
    Layout layout = ValueLayout(*comm_, false);
    if (b.per_rank) layout = Layout::Replicated(layout.mesh(), 1);
    requests.push_back({leaf.key,
                        value->dtype(),
                        b.per_rank ? std::vector<int64_t>{b.n} : std::vector<int64_t>{},
                        layout,
                        {b.data()}});
  }
  MESHCKPT_RETURN_IF_ERROR(RestoreTensors(*checkpoint_, requests, options_));
  for (ValueBuffer& b : values) {
    TrackedValue* v = b.value;
    if (b.per_rank) {
      v->saved_values_.clear();
      for (int64_t i = 0; i < b.n; ++i) v->saved_values_.push_back(b.At(i));
      v->value_ = b.At(comm_->rank() % b.n);
    } else {
      v->value_ = b.At(0);
    }
  }
  for (const Leaf& leaf : leaves) {
    matched_.insert(leaf.object);
    consumed_.insert(leaf.key);
  }
  return absl::OkStatus();
}

std::vector<std::string> RestoreSession::UnusedKeys() const {
  std::vector<std::string> unused;
  for (const CheckpointIndex::Tensor& t : index().tensors()) {
    if (!consumed_.contains(t.key)) unused.push_back(t.key);
  }
  return unused;
}

absl::Status RestoreSession::AssertExistingObjectsMatched() const {
  std::vector<std::string> missing;
  for (const GraphNode& n : WalkObjectGraph(root_, attached_)) {
    if (n.object != root_ && !matched_.contains(n.object)) missing.push_back(n.path);
  }
  if (missing.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat("objects not matched by checkpoint '",
                                                    prefix(),
                                                    "': ", absl::StrJoin(missing, ", ")));
}

absl::Status RestoreSession::AssertConsumed() const {
  MESHCKPT_RETURN_IF_ERROR(AssertExistingObjectsMatched());
  std::vector<std::string> unmatched;
  for (size_t i = 1; i < node_matched_.size(); ++i) {
    if (!node_matched_[i]) unmatched.push_back(node_paths_[i]);
  }
  if (!unmatched.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("objects in checkpoint '", prefix(),
                     "' with no live counterpart: ", absl::StrJoin(unmatched, ", ")));
  }
  std::vector<std::string> unused = UnusedKeys();
  if (!unused.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("values in checkpoint '", prefix(),
                     "' not restored: ", absl::StrJoin(unused, ", ")));
  }
  return absl::OkStatus();
}

absl::Status RestoreSession::AssertNontrivialMatch() const {
  for (size_t i = 1; i < node_matched_.size(); ++i) {
    if (node_matched_[i] && node_paths_[i] != kSaveCounter) return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "nothing but the root and save counter matched checkpoint '", prefix(), "'"));
}

absl::Status RestoreSession::AssertSomeValueRestored() const {
  const auto& nodes = index().record().object_graph.nodes;
  for (size_t i = 1; i < node_matched_.size(); ++i) {
    if (!node_matched_[i] || node_paths_[i] == kSaveCounter) continue;
    for (const ObjectGraph::Attribute& a : nodes[i].attributes) {
      if (a.name == kValueAttribute) return absl::OkStatus();
    }
  }
  return absl::FailedPreconditionError(
      absl::StrCat("no value in checkpoint '", prefix(),
                   "' besides the save counter matched a tracked object"));
}

}  // namespace meshckpt::internal
