// MetaGraphDef -> MetaGraph: variable nodes, SaverDef, collections.
#include "meshckpt/tfbundle/meta_graph.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "meshckpt/base/status_macros.h"
#include "meshckpt/tfbundle/file_io.h"
#include "tfbundle/proto/meta_graph.pb.h"
#include "tfbundle/proto/variable.pb.h"

namespace meshckpt::tf {
namespace {

bool IsVariableOp(const std::string& op) {
  return op == "Variable" || op == "VariableV2" || op == "VarHandleOp";
}

// The attr named `name`; the last one wins, as in a protobuf map.
const tfproto::AttrValue* FindAttr(const tfproto::NodeDef& node, absl::string_view name) {
  const tfproto::AttrValue* found = nullptr;
  for (const auto& a : node.attr()) {
    if (a.key() == name) found = &a.value();
  }
  return found;
}

GraphVariable ToVariable(const tfproto::NodeDef& node) {
  GraphVariable v;
  v.name = node.name();
  v.op = node.op();
  v.device = node.device();
  const tfproto::AttrValue* dt = FindAttr(node, "dtype");
  if (dt != nullptr && dt->value_case() == tfproto::AttrValue::kType) {
    v.dtype = static_cast<int>(dt->type());
  }
  const tfproto::AttrValue* sh = FindAttr(node, "shape");
  if (sh != nullptr && sh->value_case() == tfproto::AttrValue::kShape &&
      !sh->shape().unknown_rank()) {
    std::vector<int64_t> dims;
    for (const auto& d : sh->shape().dim()) dims.push_back(d.size());
    v.shape = std::move(dims);
  }
  return v;
}

Collection ToCollection(const tfproto::CollectionDef& c) {
  Collection out;
  switch (c.kind_case()) {
    case tfproto::CollectionDef::kNodeList:
      out.kind = Collection::Kind::kNodeList;
      out.values.assign(c.node_list().value().begin(), c.node_list().value().end());
      break;
    case tfproto::CollectionDef::kBytesList:
      out.kind = Collection::Kind::kBytesList;
      out.values.assign(c.bytes_list().value().begin(), c.bytes_list().value().end());
      break;
    case tfproto::CollectionDef::kInt64List:
      out.kind = Collection::Kind::kInt64List;
      out.int64_values.assign(c.int64_list().value().begin(),
                              c.int64_list().value().end());
      break;
    case tfproto::CollectionDef::kFloatList:
      out.kind = Collection::Kind::kFloatList;
      out.float_values.assign(c.float_list().value().begin(),
                              c.float_list().value().end());
      break;
    case tfproto::CollectionDef::kAnyList:
      out.kind = Collection::Kind::kAnyList;
      for (const auto& a : c.any_list().value()) out.values.push_back(a.type_url());
      break;
    default:
      break;
  }
  return out;
}

}  // namespace

absl::StatusOr<MetaGraph> MetaGraph::Parse(absl::string_view serialized,
                                           absl::string_view source) {
  tfproto::MetaGraphDef p;
  if (serialized.size() > INT32_MAX ||
      !p.ParseFromArray(serialized.data(), static_cast<int>(serialized.size()))) {
    return absl::DataLossError(
        absl::StrCat("'", source, "' is not a binary MetaGraphDef"));
  }
  MetaGraph m;
  m.source_ = std::string(source);
  m.tags_.assign(p.meta_info_def().tags().begin(), p.meta_info_def().tags().end());
  m.tensorflow_version_ = p.meta_info_def().tensorflow_version();
  m.num_nodes_ = p.graph_def().node_size();
  for (const auto& node : p.graph_def().node()) {
    if (IsVariableOp(node.op())) m.variables_.push_back(ToVariable(node));
  }
  if (p.has_saver_def()) {
    const auto& s = p.saver_def();
    m.saver_ = SaverInfo{s.filename_tensor_name(),
                         s.save_tensor_name(),
                         s.restore_op_name(),
                         s.max_to_keep(),
                         s.sharded(),
                         s.keep_checkpoint_every_n_hours(),
                         static_cast<int>(s.version())};
  }
  for (const auto& c : p.collection_def())
    m.collections_[c.key()] = ToCollection(c.value());
  return m;
}

absl::StatusOr<MetaGraph> MetaGraph::ReadFile(const std::string& path,
                                              int64_t max_bytes) {
  MESHCKPT_ASSIGN_OR_RETURN(std::string bytes, ReadWholeFile(path, max_bytes));
  return Parse(bytes, path);
}

absl::StatusOr<std::vector<CollectionVariable>> MetaGraph::CollectionVariables(
    absl::string_view name) const {
  auto it = collections_.find(std::string(name));
  if (it == collections_.end()) {
    return absl::NotFoundError(
        absl::StrCat("'", source_, "' has no collection '", name, "'"));
  }
  if (it->second.kind != Collection::Kind::kBytesList) {
    return absl::DataLossError(absl::StrCat("collection '", name, "' of '", source_,
                                            "' is not a bytes_list of VariableDefs"));
  }
  std::vector<CollectionVariable> out;
  for (size_t i = 0; i < it->second.values.size(); ++i) {
    const std::string& bytes = it->second.values[i];
    tfproto::VariableDef v;
    if (!v.ParseFromString(bytes)) {
      return absl::DataLossError(
          absl::StrFormat("element %d of collection '%s' of '%s' is not a VariableDef", i,
                          name, source_));
    }
    CollectionVariable cv;
    cv.variable_name = v.variable_name();
    cv.initial_value_name = v.initial_value_name();
    cv.initializer_name = v.initializer_name();
    cv.snapshot_name = v.snapshot_name();
    cv.is_resource = v.is_resource();
    cv.trainable = v.trainable();
    if (v.has_save_slice_info_def()) {
      const auto& s = v.save_slice_info_def();
      cv.slice_full_name = s.full_name();
      cv.slice_full_shape.assign(s.full_shape().begin(), s.full_shape().end());
      cv.slice_offset.assign(s.var_offset().begin(), s.var_offset().end());
      cv.slice_shape.assign(s.var_shape().begin(), s.var_shape().end());
    }
    out.push_back(std::move(cv));
  }
  return out;
}

}  // namespace meshckpt::tf
