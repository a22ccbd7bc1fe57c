// TensorFlow's checkpoint formats to ours and back: detection, dtypes,
// object graphs.
#include "meshckpt/checkpoint/engine/tensorflow_bridge.h"

#include <sys/stat.h>

#include <cstdint>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "meshckpt/tfbundle/bundle_reader.h"
#include "meshckpt/tfbundle/table.h"

namespace meshckpt::internal {

bool IsTensorFlowCheckpoint(absl::string_view prefix) {
  const std::string path = tf::IndexFilename(prefix);
  struct stat st;
  // A table's footer alone is 48 bytes.
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 48) {
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  in.seekg(-8, std::ios::end);
  unsigned char magic[8];
  if (!in.read(reinterpret_cast<char*>(magic), sizeof(magic))) return false;
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | magic[i];  // little-endian
  return value == tf::kTableMagic;
}

absl::StatusOr<DType> DTypeFromTf(int tf_dtype, absl::string_view key,
                                  absl::string_view file) {
  switch (static_cast<tf::TfDType>(tf_dtype)) {
    case tf::TfDType::kFloat:
    case tf::TfDType::kDouble:
    case tf::TfDType::kInt32:
    case tf::TfDType::kUint8:
    case tf::TfDType::kInt16:
    case tf::TfDType::kInt8:
    case tf::TfDType::kString:
    case tf::TfDType::kComplex64:
    case tf::TfDType::kInt64:
    case tf::TfDType::kBool:
    case tf::TfDType::kBfloat16:
    case tf::TfDType::kUint16:
    case tf::TfDType::kComplex128:
    case tf::TfDType::kHalf:
    case tf::TfDType::kUint32:
    case tf::TfDType::kUint64:
      // TensorFlow's DataType numbers are ours.
      return static_cast<DType>(tf_dtype);
    default:
      return absl::UnimplementedError(
          absl::StrCat("tensor '", key, "' in ", file, " has TensorFlow dtype ",
                       tf::TfDTypeName(tf_dtype), ", which meshckpt does not read"));
  }
}

tf::TfDType DTypeToTf(DType dtype) { return static_cast<tf::TfDType>(dtype); }

ObjectGraph ObjectGraphFromTf(const tf::ObjectGraph& graph) {
  ObjectGraph out;
  out.nodes.reserve(graph.nodes().size());
  for (const tf::TrackableObject& object : graph.nodes()) {
    ObjectGraph::Node node;
    for (const auto& child : object.children) {
      node.children.push_back({child.node_id, child.local_name});
    }
    for (const auto& attribute : object.attributes) {
      node.attributes.push_back({attribute.name, attribute.checkpoint_key});
    }
    out.nodes.push_back(std::move(node));
  }
  return out;
}

absl::StatusOr<tf::ObjectGraph> ObjectGraphToTf(const ObjectGraph& graph) {
  std::vector<tf::TrackableObject> nodes;
  nodes.reserve(graph.nodes.size());
  for (const ObjectGraph::Node& node : graph.nodes) {
    tf::TrackableObject object;
    for (const auto& child : node.children) {
      object.children.push_back({child.node_id, child.local_name});
    }
    for (const auto& attribute : node.attributes) {
      object.attributes.push_back({attribute.name, "", attribute.checkpoint_key, false});
    }
    nodes.push_back(std::move(object));
  }
  return tf::ObjectGraph::Create(std::move(nodes));
}

}  // namespace meshckpt::internal
