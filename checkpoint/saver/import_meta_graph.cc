// ImportMetaGraph (saver.h): TensorFlow's import_meta_graph for a TF1
// `.meta` file. The file is read by rank 0 and broadcast; every rank parses
// it (tf::MetaGraph) and plans the same variables, so errors agree without
// more messages. Values come through Saver::Restore, which reads TF's
// name-based checkpoints. Collective; not thread-safe.
#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "meshckpt/base/status_macros.h"
#include "meshckpt/checkpoint/engine/checkpoint_handle.h"
#include "meshckpt/checkpoint/engine/checkpoint_index.h"
#include "meshckpt/checkpoint/engine/tensorflow_bridge.h"
#include "meshckpt/checkpoint/saver/saver.h"
#include "meshckpt/checkpoint/saver/saver_internal.h"
#include "meshckpt/io/fs/fs.h"
#include "meshckpt/tfbundle/meta_graph.h"
#include "meshckpt/tfbundle/tf_dtype.h"

namespace meshckpt {
namespace {

// Collections whose bytes are VariableDefs (TF's GraphKeys).
const std::set<std::string>& VariableCollections() {
  static const auto* names = new std::set<std::string>{
      "variables",        "trainable_variables",      "local_variables",
      "model_variables",  "moving_average_variables", "metric_variables",
      "global_variables", "concatenated_variables"};
  return *names;
}

// "dense/kernel:0" -> "dense/kernel".
std::string NodeName(const std::string& tensor_name) {
  const size_t colon = tensor_name.rfind(':');
  if (colon == std::string::npos) return tensor_name;
  return tensor_name.substr(0, colon);
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

// One variable to rebuild.
struct Planned {
  MetaGraphVariable var;
  std::vector<const tf::CollectionVariable*> parts;  // partitioned only
};

class Planner {
 public:
  Planner(const tf::MetaGraph& graph, std::string file)
      : graph_(graph), file_(std::move(file)) {
    for (const tf::GraphVariable& v : graph.variables()) nodes_[v.name] = &v;
  }

  absl::StatusOr<std::vector<Planned>> Plan() {
    std::set<std::string> trainable;
    std::vector<tf::CollectionVariable> defs;
    const bool has_globals = graph_.collections().count("variables") > 0;
    const bool has_trainable = graph_.collections().count("trainable_variables") > 0;
    if (has_trainable) {
      MESHCKPT_ASSIGN_OR_RETURN(std::vector<tf::CollectionVariable> t,
                                graph_.CollectionVariables("trainable_variables"));
      for (const tf::CollectionVariable& v : t) trainable.insert(v.variable_name);
      defs = t;
    }
    if (has_globals) {
      MESHCKPT_ASSIGN_OR_RETURN(defs, graph_.CollectionVariables("variables"));
      if (has_trainable) {  // trainable ones missing from `variables`, after them
        MESHCKPT_ASSIGN_OR_RETURN(std::vector<tf::CollectionVariable> t,
                                  graph_.CollectionVariables("trainable_variables"));
        std::set<std::string> seen;
        for (const tf::CollectionVariable& v : defs) seen.insert(v.variable_name);
        for (const tf::CollectionVariable& v : t) {
          if (!seen.count(v.variable_name)) defs.push_back(v);
        }
      }
    }
    defs_ = std::move(defs);
    std::vector<Planned> out;
    std::map<std::string, size_t> partitioned;  // full name -> index in out
    if (!has_globals && !has_trainable) {
      for (const tf::GraphVariable& v : graph_.variables()) {
        MESHCKPT_ASSIGN_OR_RETURN(Planned p, Plain(v.name, false));
        out.push_back(std::move(p));
      }
      return out;
    }
    for (const tf::CollectionVariable& d : defs_) {
      const bool is_trainable = trainable.count(d.variable_name) > 0;
      if (!d.slice_full_name.has_value()) {
        MESHCKPT_ASSIGN_OR_RETURN(Planned p,
                                  Plain(NodeName(d.variable_name), is_trainable));
        out.push_back(std::move(p));
        continue;
      }
      auto [it, added] = partitioned.emplace(*d.slice_full_name, out.size());
      if (added) {
        Planned p;
        p.var.name = *d.slice_full_name;
        p.var.shape = d.slice_full_shape;
        out.push_back(std::move(p));
      }
      out[it->second].var.trainable |= is_trainable;
      out[it->second].parts.push_back(&d);
    }
    for (const auto& [name, i] : partitioned) {
      MESHCKPT_RETURN_IF_ERROR(CheckPartitioned(&out[i]));
    }
    return out;
  }

 private:
  absl::Status Bad(absl::string_view variable, absl::string_view why) const {
    return absl::InvalidArgumentError(
        absl::StrCat("variable '", variable, "' in ", file_, ": ", why));
  }

  absl::StatusOr<const tf::GraphVariable*> Node(const std::string& name) const {
    auto it = nodes_.find(name);
    if (it == nodes_.end()) {
      return absl::DataLossError(absl::StrCat("a collection of ", file_,
                                              " names variable '", name,
                                              "', which its graph has no node of"));
    }
    return it->second;
  }

  absl::StatusOr<DType> DTypeOf(const tf::GraphVariable& node,
                                absl::string_view name) const {
    absl::StatusOr<DType> d = internal::DTypeFromTf(node.dtype, name, file_);
    if (!d.ok()) {
      return absl::Status(d.status().code(),
                          absl::StrCat("variable '", name, "' in ", file_, " has dtype ",
                                       tf::TfDTypeName(node.dtype),
                                       ", which meshckpt variables cannot hold"));
    }
    return d;
  }

  absl::StatusOr<std::vector<int64_t>> StaticShape(const tf::GraphVariable& node) const {
    if (!node.shape.has_value()) {
      return Bad(node.name, "its shape is unknown (no static shape in the graph)");
    }
    for (int64_t d : *node.shape) {
      if (d < 0) {
        return Bad(node.name, absl::StrCat("its shape ", ShapeString(*node.shape),
                                           " has a dimension of unknown size"));
      }
    }
    if (!tf::NumElements(*node.shape).ok()) {
      return Bad(node.name, absl::StrCat("its shape ", ShapeString(*node.shape),
                                         " has more elements than an int64 counts"));
    }
    return *node.shape;
  }

  absl::StatusOr<Planned> Plain(const std::string& name, bool trainable) const {
    MESHCKPT_ASSIGN_OR_RETURN(const tf::GraphVariable* node, Node(name));
    Planned p;
    p.var.name = name;
    p.var.trainable = trainable;
    MESHCKPT_ASSIGN_OR_RETURN(p.var.dtype, DTypeOf(*node, name));
    MESHCKPT_ASSIGN_OR_RETURN(p.var.shape, StaticShape(*node));
    return p;
  }

  // The parts of a partitioned variable share a dtype and tile its full
  // shape exactly: inside it, not overlapping, covering every element.
  absl::Status CheckPartitioned(Planned* p) const {
    const std::string& name = p->var.name;
    const std::vector<int64_t>& full = p->var.shape;
    for (int64_t d : full) {
      if (d < 0) return Bad(name, "its full shape has a negative dimension");
    }
    int64_t covered = 0;
    std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> boxes;
    for (size_t i = 0; i < p->parts.size(); ++i) {
      const tf::CollectionVariable& part = *p->parts[i];
      const std::string part_name = NodeName(part.variable_name);
      MESHCKPT_ASSIGN_OR_RETURN(const tf::GraphVariable* node, Node(part_name));
      MESHCKPT_ASSIGN_OR_RETURN(DType dtype, DTypeOf(*node, part_name));
      if (i == 0) p->var.dtype = dtype;
      if (dtype != p->var.dtype) {
        return Bad(name, absl::StrCat("its parts have different dtypes (part '",
                                      part_name, "')"));
      }
      const std::vector<int64_t>& off = part.slice_offset;
      const std::vector<int64_t>& shape = part.slice_shape;
      if (off.size() != full.size() || shape.size() != full.size()) {
        return Bad(name,
                   absl::StrCat("part '", part_name, "' has a slice of another rank"));
      }
      for (size_t d = 0; d < full.size(); ++d) {
        if (off[d] < 0 || shape[d] < 0 || off[d] > full[d] ||
            shape[d] > full[d] - off[d]) {
          return Bad(name, absl::StrCat("part '", part_name, "' (offset ",
                                        ShapeString(off), ", shape ", ShapeString(shape),
                                        ") lies outside its shape ", ShapeString(full)));
        }
      }
      absl::StatusOr<int64_t> part_elements = tf::NumElements(shape);
      if (!part_elements.ok()) {
        return Bad(name,
                   absl::StrCat("part '", part_name, "' has shape ", ShapeString(shape),
                                ", more elements than an int64 counts"));
      }
      const int64_t n = *part_elements;
      for (const auto& [o, s] : boxes) {
        bool overlap = n > 0;
        for (size_t d = 0; d < full.size() && overlap; ++d) {
          overlap = off[d] < o[d] + s[d] && o[d] < off[d] + shape[d];
        }
        if (overlap) {
          return Bad(name, absl::StrCat("its parts overlap (part '", part_name, "')"));
        }
      }
      boxes.emplace_back(off, shape);
      covered += n;
    }
    absl::StatusOr<int64_t> total_or = tf::NumElements(full);
    if (!total_or.ok()) {
      return Bad(name, absl::StrCat("its full shape ", ShapeString(full),
                                    " has more elements than an int64 counts"));
    }
    const int64_t total = *total_or;
    if (covered != total) {
      return Bad(name,
                 absl::StrCat("its ", p->parts.size(), " parts cover ", covered,
                              " of its ", total, " elements (shape ", ShapeString(full),
                              "); meshckpt restores only whole "
                              "partitioned variables"));
    }
    return absl::OkStatus();
  }

  const tf::MetaGraph& graph_;
  std::string file_;
  std::map<std::string, const tf::GraphVariable*> nodes_;
  std::vector<tf::CollectionVariable> defs_;  // Planned::parts point here
};

// The collections as string lists (see saver.h).
std::map<std::string, std::vector<std::string>> Collections(const tf::MetaGraph& graph) {
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& [name, c] : graph.collections()) {
    std::vector<std::string>& values = out[name];
    switch (c.kind) {
      case tf::Collection::Kind::kBytesList: {
        absl::StatusOr<std::vector<tf::CollectionVariable>> vars =
            VariableCollections().count(name) ? graph.CollectionVariables(name)
                                              : absl::NotFoundError("");
        if (!vars.ok()) {
          values = c.values;
          break;
        }
        std::set<std::string> seen;
        for (const tf::CollectionVariable& v : *vars) {
          std::string n = v.slice_full_name.value_or(NodeName(v.variable_name));
          if (seen.insert(n).second) values.push_back(std::move(n));
        }
        break;
      }
      case tf::Collection::Kind::kInt64List:
        for (int64_t v : c.int64_values) values.push_back(absl::StrCat(v));
        break;
      case tf::Collection::Kind::kFloatList:
        for (float v : c.float_values) values.push_back(absl::StrFormat("%.9g", v));
        break;
      default:  // node names, Any type URLs, nothing
        values = c.values;
    }
  }
  return out;
}

absl::Status WithPath(const absl::Status& s, const std::string& path) {
  if (s.ok()) return s;
  return absl::Status(s.code(),
                      absl::StrCat("ImportMetaGraph('", path, "'): ", s.message()));
}

}  // namespace

absl::StatusOr<ImportedStructure> ImportMetaGraph(Communicator* comm,
                                                  const std::string& meta_graph_path,
                                                  const Mesh& mesh,
                                                  MetaGraphImportOptions options) {
  if (comm == nullptr) {
    return absl::InvalidArgumentError("ImportMetaGraph: communicator is null");
  }
  absl::StatusOr<std::string> scope = internal::NormalizeImportScope(options.name_scope);
  absl::Status local = scope.status();
  if (local.ok() && (mesh.num_ranks() != comm->size() || mesh.rank() != comm->rank())) {
    local = absl::InvalidArgumentError(absl::StrCat(
        "ImportMetaGraph: mesh ", mesh.ToShortString(), " spans ", mesh.num_ranks(),
        " ranks seen from rank ", mesh.rank(), ", but this job has ", comm->size(),
        " ranks and this is rank ", comm->rank()));
  }
  MESHCKPT_RETURN_IF_ERROR(comm->Agree(local));

  // Rank 0 reads; every rank parses the same bytes.
  std::string bytes;
  if (comm->rank() == 0) {
    absl::StatusOr<std::string> read =
        ReadFileToString(meta_graph_path, int64_t{1} << 30);
    local = read.status();
    if (read.ok()) bytes = *std::move(read);
  }
  MESHCKPT_RETURN_IF_ERROR(comm->Agree(WithPath(local, meta_graph_path)));
  comm->Broadcast(&bytes, 0);
  absl::StatusOr<tf::MetaGraph> graph = tf::MetaGraph::Parse(bytes, meta_graph_path);
  if (!graph.ok()) return graph.status();  // same bytes, same answer everywhere
  bytes.clear();

  Planner planner(*graph, meta_graph_path);
  absl::StatusOr<std::vector<Planned>> plan = planner.Plan();
  if (!plan.ok()) return plan.status();

  ImportedStructure out;
  std::map<std::string, DVariable*> var_list;
  for (const Planned& p : *plan) {
    absl::StatusOr<Layout> layout =
        options.layout ? options.layout(p.var, mesh)
                       : Layout::Replicated(mesh, static_cast<int>(p.var.shape.size()));
    std::string name = scope->empty() ? p.var.name
                                      : absl::StrCat(*scope, "/", p.var.name);
    absl::StatusOr<std::unique_ptr<DVariable>> v =
        layout.ok()
            ? DVariable::Create(std::move(name), p.var.dtype, p.var.shape, *layout)
            : absl::StatusOr<std::unique_ptr<DVariable>>(layout.status());
    if (!v.ok()) {
      local = absl::Status(v.status().code(),
                           absl::StrCat("variable '", p.var.name, "' in ",
                                        meta_graph_path, ": ", v.status().message()));
      break;
    }
    var_list[p.var.name] = v->get();
    out.variables.push_back(*std::move(v));
  }
  // A layout chooser may disagree across ranks; the failure must not.
  MESHCKPT_RETURN_IF_ERROR(comm->Agree(local));

  out.collections = Collections(*graph);
  SaverOptions saver_options = options.saver_options;
  if (options.use_saver_def && graph->saver().has_value()) {
    saver_options.max_to_keep = graph->saver()->max_to_keep;
    if (graph->saver()->keep_checkpoint_every_n_hours > 0) {
      saver_options.keep_checkpoint_every_n_hours =
          graph->saver()->keep_checkpoint_every_n_hours;
    }
  }
  if (var_list.empty()) saver_options.allow_empty = true;
  const IoOptions io = saver_options.io;
  absl::StatusOr<std::unique_ptr<Saver>> saver =
      Saver::Create(comm, var_list, std::move(saver_options));
  if (!saver.ok()) return WithPath(saver.status(), meta_graph_path);
  out.saver = *std::move(saver);
  for (const auto& [name, values] : out.collections) {
    // Names SetCollection refuses (not printable ASCII) are returned but not
    // re-saved.
    (void)out.saver->SetCollection(name, values);
  }
  if (!options.restore_values) return out;

  std::string checkpoint = options.checkpoint;
  if (checkpoint.empty()) {
    absl::string_view p = meta_graph_path;
    absl::ConsumeSuffix(&p, ".meta");
    checkpoint = std::string(p);
  }
  MESHCKPT_ASSIGN_OR_RETURN(std::unique_ptr<CheckpointHandle> handle,
                            CheckpointHandle::Open(*comm, checkpoint, io));
  // Like TF's Saver, restore what the checkpoint holds; the rest stay zero.
  std::map<std::string, DVariable*> present;
  for (const auto& [key, v] : var_list) {
    if (handle->index().Find(key) != nullptr) {
      present[key] = v;
    } else {
      out.not_in_checkpoint.push_back(key);
    }
  }
  SaverOptions restore_options;
  restore_options.allow_empty = true;
  restore_options.io = io;
  MESHCKPT_ASSIGN_OR_RETURN(std::unique_ptr<Saver> restorer,
                            Saver::Create(comm, std::move(present), restore_options));
  MESHCKPT_RETURN_IF_ERROR(restorer->Restore(*handle));
  return out;
}

}  // namespace meshckpt
