// Walking the live object graph: which objects a checkpoint saves, under
// which paths and keys. Internal to checkpoint/.
//
// Nodes are numbered breadth-first from the root (node 0), children in the
// order they were tracked; an object reachable along several paths is one
// node, at the first path found. Leaves (DVariable, TrackedValue) save one
// tensor under the attribute VARIABLE_VALUE.
#ifndef MESHCKPT_CHECKPOINT_OBJECT_OBJECT_GRAPH_H_
#define MESHCKPT_CHECKPOINT_OBJECT_OBJECT_GRAPH_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "meshckpt/checkpoint/object/trackable.h"
#include "meshckpt/io/format/index.h"

namespace meshckpt::internal {

inline constexpr char kValueAttribute[] = "VARIABLE_VALUE";

struct GraphNode {
  Trackable* object;
  std::string path;  // Child names from the root, '/'-joined; "" for root.
  std::vector<std::pair<std::string, int>> children;
};

// Children attached to the root without being its own (a checkpoint's
// keyword children and save counter when a separate root object is given).
using AttachedChildren = std::vector<std::pair<std::string, Trackable*>>;

std::vector<GraphNode> WalkObjectGraph(Trackable* root,
                                       const AttachedChildren& attached = {});
// The child `name` of `object`, looking at `attached` too when it is `root`.
Trackable* FindLiveChild(Trackable* object, absl::string_view name, Trackable* root,
                         const AttachedChildren& attached);
// The graph a checkpoint records.
ObjectGraph ObjectGraphOf(const std::vector<GraphNode>& nodes);
// "model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE"
std::string ValueKey(absl::string_view path);
// True for objects that hold a value (DVariable, TrackedValue).
bool IsLeaf(const Trackable* object);
// Paths of the nodes of a saved graph, by node id ("" for the root and for
// nodes not reachable from it).
std::vector<std::string> SavedNodePaths(const ObjectGraph& graph);

}  // namespace meshckpt::internal

#endif  // MESHCKPT_CHECKPOINT_OBJECT_OBJECT_GRAPH_H_
