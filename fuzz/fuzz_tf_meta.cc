// libFuzzer target: the parsers of TF graph metadata: MetaGraph::Parse (a
// binary MetaGraphDef from a `.meta` file) with its VariableDef collections,
// and ObjectGraph::Parse (a TrackableObjectGraph) with path resolution and
// re-serialization.
#include <cstddef>
#include <cstdint>
#include <string>

#include "meshckpt/tfbundle/meta_graph.h"
#include "meshckpt/tfbundle/object_graph.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<meshckpt::tf::MetaGraph> m =
      meshckpt::tf::MetaGraph::Parse(bytes, "fuzz.meta");
  if (m.ok()) {
    for (const auto& [name, c] : m->collections()) (void)m->CollectionVariables(name);
  }
  absl::StatusOr<meshckpt::tf::ObjectGraph> g =
      meshckpt::tf::ObjectGraph::Parse(bytes, "fuzz");
  if (g.ok()) {
    (void)g->AttributesByPath();
    absl::StatusOr<meshckpt::tf::ObjectGraph> again =
        meshckpt::tf::ObjectGraph::Parse(g->Serialize(), "fuzz");
    if (!again.ok() || again->Serialize() != g->Serialize()) __builtin_trap();
  }
  return 0;
}
