// Walking the live object graph and naming what a checkpoint saves.
#include "meshckpt/checkpoint/object/object_graph.h"

#include <deque>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "meshckpt/checkpoint/object/dvariable.h"
#include "meshckpt/checkpoint/object/tracked_value.h"

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

std::vector<GraphNode> WalkObjectGraph(Trackable* root,
                                       const AttachedChildren& attached) {
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
        nodes.push_back(
            {child,
             nodes[i].path.empty() ? name : absl::StrCat(nodes[i].path, "/", name),
             {}});
      }
      nodes[i].children.emplace_back(name, it->second);
    }
  }
  return nodes;
}

ObjectGraph ObjectGraphOf(const std::vector<GraphNode>& nodes) {
  ObjectGraph graph;
  graph.nodes.reserve(nodes.size());
  for (const GraphNode& n : nodes) {
    ObjectGraph::Node& p = graph.nodes.emplace_back();
    for (const auto& [name, child] : n.children) p.children.push_back({child, name});
    if (IsLeaf(n.object)) p.attributes.push_back({kValueAttribute, ValueKey(n.path)});
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

std::vector<std::string> SavedNodePaths(const ObjectGraph& graph) {
  const int num_nodes = static_cast<int>(graph.nodes.size());
  std::vector<std::string> paths(num_nodes);
  std::vector<bool> seen(num_nodes, false);
  std::deque<int> queue;
  if (num_nodes > 0) {
    seen[0] = true;
    queue.push_back(0);
  }
  while (!queue.empty()) {
    const int n = queue.front();
    queue.pop_front();
    for (const ObjectGraph::Child& c : graph.nodes[n].children) {
      if (c.node_id < 0 || c.node_id >= num_nodes || seen[c.node_id]) continue;
      seen[c.node_id] = true;
      paths[c.node_id] = paths[n].empty() ? c.local_name
                                          : absl::StrCat(paths[n], "/", c.local_name);
      queue.push_back(c.node_id);
    }
  }
  return paths;
}

}  // namespace meshckpt::internal
