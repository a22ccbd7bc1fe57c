// The seam between TensorFlow's checkpoint formats (tfbundle/) and ours:
// recognizing a TensorBundle, and translating dtypes and object graphs.
// Internal to checkpoint/ and tools/; tfbundle/ types never reach a public
// header.
//
// TensorFlow's DataType numbers are ours (base/dtype.h), so a dtype maps to
// itself when we have it; the quantized types, DT_VARIANT and DT_RESOURCE
// have no meshckpt dtype. TrackableObjectGraph and our ObjectGraph share
// their shape (children by local name, attributes naming checkpoint keys);
// TensorFlow's extra fields (slot variables, full names, registered savers)
// are dropped one way and left empty the other.
#ifndef MESHCKPT_CHECKPOINT_ENGINE_TENSORFLOW_BRIDGE_H_
#define MESHCKPT_CHECKPOINT_ENGINE_TENSORFLOW_BRIDGE_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "meshckpt/base/dtype.h"
#include "meshckpt/io/format/index.h"
#include "meshckpt/tfbundle/object_graph.h"
#include "meshckpt/tfbundle/tf_dtype.h"

namespace meshckpt::internal {

// The user-metadata key under which a TensorFlow checkpoint opened by us
// keeps its `_CHECKPOINTABLE_OBJECT_GRAPH` as TensorFlow serialized it, so
// that a conversion back to TensorFlow can write those bytes (slot
// variables, full names and all) when the graph has not changed.
inline constexpr char kTfObjectGraphMetadataKey[] = "tensorflow.object_graph";

// True when `<prefix>.index` is a regular file in TensorBundle form (a
// LevelDB-format table: its footer ends in the table magic). Our own index
// never is. False when it is absent or unreadable.
bool IsTensorFlowCheckpoint(absl::string_view prefix);

// Unimplemented, naming the key and the file, for TensorFlow dtypes meshckpt
// does not have (quantized, variant, resource, unknown numbers).
absl::StatusOr<DType> DTypeFromTf(int tf_dtype, absl::string_view key,
                                  absl::string_view file);
tf::TfDType DTypeToTf(DType dtype);

ObjectGraph ObjectGraphFromTf(const tf::ObjectGraph& graph);
// InvalidArgument when `graph` refers to nodes it does not have.
absl::StatusOr<tf::ObjectGraph> ObjectGraphToTf(const ObjectGraph& graph);

}  // namespace meshckpt::internal

#endif  // MESHCKPT_CHECKPOINT_ENGINE_TENSORFLOW_BRIDGE_H_
