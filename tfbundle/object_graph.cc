// TrackableObjectGraph <-> ObjectGraph, and paths through the graph.
#include "meshckpt/tfbundle/object_graph.h"

#include <deque>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "meshckpt/base/status_macros.h"
#include "meshckpt/tfbundle/bundle_entry.h"
#include "meshckpt/tfbundle/bundle_reader.h"
#include "tfbundle/proto/trackable_object_graph.pb.h"

namespace meshckpt::tf {
namespace {

absl::Status CheckIds(const std::vector<TrackableObject>& nodes) {
  const int n = static_cast<int>(nodes.size());
  const auto in_range = [n](int id) { return id >= 0 && id < n; };
  for (int i = 0; i < n; ++i) {
    for (const auto& c : nodes[i].children) {
      if (!in_range(c.node_id)) {
        return absl::InvalidArgumentError(
            absl::StrFormat("node %d's child '%s' refers to node %d of %d", i,
                            c.local_name, c.node_id, n));
      }
    }
    for (const auto& s : nodes[i].slot_variables) {
      if (!in_range(s.original_variable_node_id) || !in_range(s.slot_variable_node_id)) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "node %d's slot variable '%s' refers to nodes %d and %d of %d", i,
            s.slot_name, s.original_variable_node_id, s.slot_variable_node_id, n));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ObjectGraph> ObjectGraph::Create(std::vector<TrackableObject> nodes) {
  MESHCKPT_RETURN_IF_ERROR(CheckIds(nodes));
  return ObjectGraph(std::move(nodes));
}

absl::StatusOr<ObjectGraph> ObjectGraph::Parse(absl::string_view serialized,
                                               absl::string_view source) {
  tfproto::TrackableObjectGraph p;
  if (serialized.size() > INT32_MAX ||
      !p.ParseFromArray(serialized.data(), static_cast<int>(serialized.size()))) {
    return absl::DataLossError(
        absl::StrCat("the object graph in ", source, " is not a TrackableObjectGraph"));
  }
  std::vector<TrackableObject> nodes;
  nodes.reserve(p.nodes_size());
  for (const auto& pn : p.nodes()) {
    TrackableObject n;
    for (const auto& c : pn.children())
      n.children.push_back({c.node_id(), c.local_name()});
    for (const auto& a : pn.attributes()) {
      n.attributes.push_back(
          {a.name(), a.full_name(), a.checkpoint_key(), a.optional_restore()});
    }
    for (const auto& s : pn.slot_variables()) {
      n.slot_variables.push_back(
          {s.original_variable_node_id(), s.slot_name(), s.slot_variable_node_id()});
    }
    if (pn.has_registered_saver()) {
      n.registered_saver.emplace(pn.registered_saver().name(),
                                 pn.registered_saver().object_name());
    }
    if (pn.has_has_checkpoint_values())
      n.has_checkpoint_values = pn.has_checkpoint_values().value();
    nodes.push_back(std::move(n));
  }
  absl::Status ids = CheckIds(nodes);
  if (!ids.ok()) {
    return absl::DataLossError(
        absl::StrCat("the object graph in ", source, ": ", ids.message()));
  }
  return ObjectGraph(std::move(nodes));
}

std::string ObjectGraph::Serialize() const {
  tfproto::TrackableObjectGraph p;
  for (const TrackableObject& n : nodes_) {
    auto* pn = p.add_nodes();
    for (const auto& c : n.children) {
      auto* pc = pn->add_children();
      pc->set_node_id(c.node_id);
      pc->set_local_name(c.local_name);
    }
    for (const auto& a : n.attributes) {
      auto* pa = pn->add_attributes();
      pa->set_name(a.name);
      pa->set_full_name(a.full_name);
      pa->set_checkpoint_key(a.checkpoint_key);
      pa->set_optional_restore(a.optional_restore);
    }
    for (const auto& s : n.slot_variables) {
      auto* ps = pn->add_slot_variables();
      ps->set_original_variable_node_id(s.original_variable_node_id);
      ps->set_slot_name(s.slot_name);
      ps->set_slot_variable_node_id(s.slot_variable_node_id);
    }
    if (n.registered_saver) {
      pn->mutable_registered_saver()->set_name(n.registered_saver->first);
      pn->mutable_registered_saver()->set_object_name(n.registered_saver->second);
    }
    if (n.has_checkpoint_values) {
      pn->mutable_has_checkpoint_values()->set_value(*n.has_checkpoint_values);
    }
  }
  return p.SerializeAsString();
}

std::vector<std::optional<std::string>> ObjectGraph::NodePaths() const {
  std::vector<std::optional<std::string>> paths(nodes_.size());
  if (nodes_.empty()) return paths;
  paths[0] = "";
  std::deque<int> queue = {0};
  while (!queue.empty()) {
    const int id = queue.front();
    queue.pop_front();
    for (const auto& c : nodes_[id].children) {
      if (paths[c.node_id]) continue;
      paths[c.node_id] = paths[id]->empty() ? c.local_name
                                            : absl::StrCat(*paths[id], "/", c.local_name);
      queue.push_back(c.node_id);
    }
  }
  return paths;
}

std::vector<std::pair<std::string, TrackableObject::Attribute>>
ObjectGraph::AttributesByPath() const {
  std::vector<std::pair<std::string, TrackableObject::Attribute>> out;
  const auto paths = NodePaths();
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (!paths[i]) continue;
    for (const auto& a : nodes_[i].attributes) out.emplace_back(*paths[i], a);
  }
  return out;
}

absl::StatusOr<std::string> ReadSerializedObjectGraph(const BundleReader& reader) {
  const BundleEntry* e = reader.Find(kObjectGraphKey);
  if (e == nullptr) {
    return absl::NotFoundError(absl::StrCat("checkpoint '", reader.prefix(),
                                            "' has no object graph (", kObjectGraphKey,
                                            "): a TF1 name-based checkpoint?"));
  }
  MESHCKPT_ASSIGN_OR_RETURN(TensorValue v, reader.ReadTensor(kObjectGraphKey));
  if (v.dtype() != TfDType::kString || v.num_elements() != 1) {
    return absl::DataLossError(absl::StrCat(kObjectGraphKey, " in '", reader.prefix(),
                                            "' is not a string scalar"));
  }
  return v.strings()[0];
}

absl::StatusOr<ObjectGraph> ReadObjectGraph(const BundleReader& reader) {
  MESHCKPT_ASSIGN_OR_RETURN(std::string serialized, ReadSerializedObjectGraph(reader));
  return ObjectGraph::Parse(serialized,
                            absl::StrCat("'", IndexFilename(reader.prefix()), "'"));
}

}  // namespace meshckpt::tf
