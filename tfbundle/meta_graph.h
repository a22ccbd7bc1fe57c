// MetaGraph: what checkpoint work needs from a TF1 `.meta` file (a binary
// MetaGraphDef, as tf.compat.v1.train.Saver exports it next to its
// checkpoint): the graph's variable nodes with dtype and shape, the SaverDef,
// and the collections, `variables` and `trainable_variables` decoded as
// VariableDefs. Plain values; the protos stay inside tfbundle/.
//
//   auto meta = MetaGraph::ReadFile("/ckpt/model.ckpt-100.meta");
//   for (const GraphVariable& v : meta->variables()) ... v.name, v.dtype, v.shape
//
// Immutable; thread-safe.
#ifndef MESHCKPT_TFBUNDLE_META_GRAPH_H_
#define MESHCKPT_TFBUNDLE_META_GRAPH_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "meshckpt/tfbundle/tf_dtype.h"

namespace meshckpt::tf {

// A node whose op is Variable, VariableV2 or VarHandleOp.
struct GraphVariable {
  std::string name;  // the node name, which is a TF1 checkpoint key
  std::string op;
  std::string device;
  int dtype = 0;  // TfDType number from the "dtype" attr (0 when absent)
  // From the "shape" attr; nullopt when absent or of unknown rank. -1 marks
  // a dimension of unknown size.
  std::optional<std::vector<int64_t>> shape;
};

struct SaverInfo {
  std::string filename_tensor_name;
  std::string save_tensor_name;
  std::string restore_op_name;
  int max_to_keep = 0;
  bool sharded = false;
  float keep_checkpoint_every_n_hours = 0;
  int version = 0;  // 0 LEGACY, 1 V1, 2 V2
};

struct Collection {
  enum class Kind { kEmpty, kNodeList, kBytesList, kInt64List, kFloatList, kAnyList };
  Kind kind = Kind::kEmpty;
  std::vector<std::string> values;  // node names, bytes, or Any type URLs
  std::vector<int64_t> int64_values;
  std::vector<float> float_values;
};

// One element of the `variables` / `trainable_variables` collections.
struct CollectionVariable {
  std::string variable_name;  // "a:0"
  std::string initial_value_name;
  std::string initializer_name;
  std::string snapshot_name;  // "a/read:0"
  bool is_resource = false;
  bool trainable = false;
  // Set for a slice of a partitioned variable: the full variable's name and
  // shape, and this slice's offset and shape.
  std::optional<std::string> slice_full_name;
  std::vector<int64_t> slice_full_shape, slice_offset, slice_shape;
};

class MetaGraph {
 public:
  // DataLoss naming `source` when the bytes are not a MetaGraphDef.
  static absl::StatusOr<MetaGraph> Parse(absl::string_view serialized,
                                         absl::string_view source);
  // A regular file of at most `max_bytes`.
  static absl::StatusOr<MetaGraph> ReadFile(const std::string& path,
                                            int64_t max_bytes = int64_t{1} << 30);

  const std::vector<std::string>& tags() const { return tags_; }
  const std::string& tensorflow_version() const { return tensorflow_version_; }
  int num_nodes() const { return num_nodes_; }
  const std::vector<GraphVariable>& variables() const { return variables_; }
  const std::optional<SaverInfo>& saver() const { return saver_; }
  const std::map<std::string, Collection>& collections() const { return collections_; }
  // The VariableDefs in the bytes_list collection `name` ("variables",
  // "trainable_variables"). NotFound when absent; DataLoss when an element
  // is not a VariableDef.
  absl::StatusOr<std::vector<CollectionVariable>> CollectionVariables(
      absl::string_view name) const;

 private:
  MetaGraph() = default;
  std::string source_;
  std::vector<std::string> tags_;
  std::string tensorflow_version_;
  int num_nodes_ = 0;
  std::vector<GraphVariable> variables_;
  std::optional<SaverInfo> saver_;
  std::map<std::string, Collection> collections_;
};

}  // namespace meshckpt::tf

#endif  // MESHCKPT_TFBUNDLE_META_GRAPH_H_
