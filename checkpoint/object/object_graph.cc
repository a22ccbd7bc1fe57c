#include "checkpoint/object/object_graph.h"

#include <deque>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "checkpoint/object/dvariable.h"
#include "checkpoint/object/tracked_value.h"

namespace meshckpt::internal {

Trackable* FindLiveChild(Trackable* object, absl::string_view name, Trackable* root,
                         const AttachedChildren& attached) {
  if (Trackable* c = object->FindChild(name)) return c;
  if (object != root) return nullptr;
  for (const auto& [n, c] : attached) {
    if (n == name) return c;
  }
  return nullptr;
}

std::vector<GraphNode> WalkObjectGraph(Trackable* root, const AttachedChildren& attached) {
  std::vector<GraphNode> nodes;
  absl::flat_hash_map<const Trackable*, int> id;
  nodes.push_back({root, "", {}});
  id[root] = 0;
  for (size_t i = 0; i < nodes.size(); ++i) {  // `nodes` grows: breadth-first.
    AttachedChildren children = nodes[i].object->children();
    if (i == 0) children.insert(children.end(), attached.begin(), attached.end());
    for (const auto& [name, child] : children) {
      auto [it, added] = id.emplace(child, static_cast<int>(nodes.size()));
      if (added) {
        nodes.push_back({child,
                         nodes[i].path.empty() ? name : absl::StrCat(nodes[i].path, "/", name),
                         {}});
      }
      nodes[i].children.emplace_back(name, it->second);
    }
  }
  return nodes;
}

proto::ObjectGraphProto ObjectGraphToProto(const std::vector<GraphNode>& nodes) {
  proto::ObjectGraphProto graph;
  for (const GraphNode& n : nodes) {
    proto::ObjectGraphProto::Node* p = graph.add_nodes();
    for (const auto& [name, child] : n.children) {
      auto* c = p->add_children();
      c->set_local_name(name);
      c->set_node_id(child);
    }
    if (IsLeaf(n.object)) {
      auto* a = p->add_attributes();
      a->set_name(kValueAttribute);
      a->set_checkpoint_key(ValueKey(n.path));
    }
  }
  return graph;
}

std::string ValueKey(absl::string_view path) {
  return absl::StrCat(path, "/.ATTRIBUTES/", kValueAttribute);
}

bool IsLeaf(const Trackable* object) {
  return dynamic_cast<const DVariable*>(object) != nullptr ||
         dynamic_cast<const TrackedValue*>(object) != nullptr;
}

std::vector<std::string> SavedNodePaths(const proto::ObjectGraphProto& graph) {
  std::vector<std::string> paths(graph.nodes_size());
  std::vector<bool> seen(graph.nodes_size(), false);
  std::deque<int> queue;
  if (graph.nodes_size() > 0) {
    seen[0] = true;
    queue.push_back(0);
  }
  while (!queue.empty()) {
    const int n = queue.front();
    queue.pop_front();
    for (const auto& c : graph.nodes(n).children()) {
      if (c.node_id() < 0 || c.node_id() >= graph.nodes_size() || seen[c.node_id()]) {
        continue;
      }
      seen[c.node_id()] = true;
      paths[c.node_id()] = paths[n].empty() ? c.local_name()
                                            : absl::StrCat(paths[n], "/", c.local_name());
      queue.push_back(c.node_id());
    }
  }
  return paths;
}

}  // namespace meshckpt::internal
