// ObjectGraph: TF2's TrackableObjectGraph (the `_CHECKPOINTABLE_OBJECT_GRAPH`
// string scalar of a tf.train.Checkpoint) as plain values, parsed and
// serialized. Node 0 is the root; children name edges by local_name;
// attributes map an object's saveable values to checkpoint keys.
//
//   auto graph = ReadObjectGraph(*reader);           // from a BundleReader
//   for (const auto& [path, attr] : graph->AttributesByPath()) ...
//     // {"model/dense/kernel", {name "VARIABLE_VALUE", checkpoint_key ...}}
//
// Immutable after the checked factories; thread-safe.
#ifndef MESHCKPT_TFBUNDLE_OBJECT_GRAPH_H_
#define MESHCKPT_TFBUNDLE_OBJECT_GRAPH_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace meshckpt::tf {

class BundleReader;

struct TrackableObject {
  struct Child {
    int node_id = 0;
    std::string local_name;
  };
  struct Attribute {
    std::string name;            // "VARIABLE_VALUE" for plain variables
    std::string full_name;       // the TF1 name-based key, when there is one
    std::string checkpoint_key;  // "model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE"
    bool optional_restore = false;
  };
  struct SlotVariable {
    int original_variable_node_id = 0;
    std::string slot_name;  // "m", "v"
    int slot_variable_node_id = 0;
  };
  std::vector<Child> children;
  std::vector<Attribute> attributes;
  std::vector<SlotVariable> slot_variables;
  // RegisteredSaver (name, object_name), when the object has one.
  std::optional<std::pair<std::string, std::string>> registered_saver;
  std::optional<bool> has_checkpoint_values;
};

class ObjectGraph {
 public:
  // InvalidArgument when a node id is out of range.
  static absl::StatusOr<ObjectGraph> Create(std::vector<TrackableObject> nodes);
  // From a serialized TrackableObjectGraph; DataLoss naming `source` when it
  // does not parse or refers to nodes that do not exist.
  static absl::StatusOr<ObjectGraph> Parse(absl::string_view serialized,
                                           absl::string_view source);
  std::string Serialize() const;

  const std::vector<TrackableObject>& nodes() const { return nodes_; }
  // The path of local names from the root to each reachable node, breadth
  // first (shortest path); "" for the root, nullopt when unreachable.
  std::vector<std::optional<std::string>> NodePaths() const;
  // (path, attribute) of every attribute of every reachable node.
  std::vector<std::pair<std::string, TrackableObject::Attribute>> AttributesByPath() const;

 private:
  explicit ObjectGraph(std::vector<TrackableObject> nodes) : nodes_(std::move(nodes)) {}
  std::vector<TrackableObject> nodes_;
};

// The object graph stored in a bundle. NotFound when the bundle has none
// (TF1 name-based checkpoints).
absl::StatusOr<ObjectGraph> ReadObjectGraph(const BundleReader& reader);
// Its bytes, as TensorFlow serialized them (NotFound likewise).
absl::StatusOr<std::string> ReadSerializedObjectGraph(const BundleReader& reader);

}  // namespace meshckpt::tf

#endif  // MESHCKPT_TFBUNDLE_OBJECT_GRAPH_H_
