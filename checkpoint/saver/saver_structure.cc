// ImportStructure / ExportStructure and the collection encoding (saver.h):
// the C++ counterpart of export_meta_graph / import_meta_graph.
//
// A checkpoint's index already is its structure: every tensor's key, dtype,
// global shape and saved layout, plus user_metadata, where Saver::Save puts
// the collections ("collection:<name>" -> EncodeCollection). ImportStructure
// turns that back into DVariables on the caller's mesh and a Saver over
// them, without the model's source. Collective; not thread-safe.
//
//   Mesh mesh = *Mesh::Create({{"x", 2}}, comm->rank(), comm->size());
//   absl::StatusOr<ImportedStructure> s =
//       ImportStructure(comm, "/ckpt/run/model-1000", mesh, "imported");
//   // s->variables[i]->name() == "imported/dense/kernel", values restored;
//   // s->saver->Save("/ckpt/run2/model", 1001) writes the original keys.
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "meshckpt/base/status_macros.h"
#include "meshckpt/checkpoint/engine/checkpoint_handle.h"
#include "meshckpt/checkpoint/engine/checkpoint_index.h"
#include "meshckpt/checkpoint/saver/saver.h"
#include "meshckpt/checkpoint/saver/saver_internal.h"

namespace meshckpt {

std::string EncodeCollection(const std::vector<std::string>& values) {
  std::string out = absl::StrCat(values.size());
  for (const std::string& v : values) absl::StrAppend(&out, ",", absl::Base64Escape(v));
  return out;
}

absl::StatusOr<std::vector<std::string>> DecodeCollection(absl::string_view encoded) {
  std::vector<absl::string_view> parts = absl::StrSplit(encoded, ',');
  size_t count = 0;
  if (!absl::SimpleAtoi(parts[0], &count) || count != parts.size() - 1) {
    return absl::DataLossError(absl::StrCat(
        "collection encoding '", absl::CHexEscape(encoded.substr(0, 64)),
        "' does not start with its item count (", parts.size() - 1, " items follow)"));
  }
  std::vector<std::string> values(count);
  for (size_t i = 0; i < count; ++i) {
    if (!absl::Base64Unescape(parts[i + 1], &values[i])) {
      return absl::DataLossError(
          absl::StrCat("collection item ", i, " is not base64: '",
                       absl::CHexEscape(parts[i + 1].substr(0, 64)), "'"));
    }
  }
  return values;
}

absl::StatusOr<std::string> internal::NormalizeImportScope(std::string scope) {
  while (!scope.empty() && scope.back() == '/') scope.pop_back();
  if (scope.empty()) return scope;
  if (!IsValidUtf8(scope)) {
    return absl::InvalidArgumentError("ImportStructure: name scope is not UTF-8");
  }
  for (absl::string_view part : absl::StrSplit(scope, '/')) {
    if (part.empty() || part == "." || part == ".." ||
        part.find('\0') != absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("ImportStructure: name scope '",
                                                     scope,
                                                     "' must be '/'-separated names, "
                                                     "none empty, '.' or '..'"));
    }
  }
  return scope;
}

namespace {

// The saved specs on `mesh`: kept where `mesh` has the dimension, else
// unsharded.
absl::StatusOr<Layout> Retarget(const Layout& saved, const Mesh& mesh) {
  std::vector<std::string> specs = saved.sharding_specs();
  for (std::string& s : specs) {
    if (s != kUnsharded && !mesh.DimIndex(s).has_value()) s = std::string(kUnsharded);
  }
  return Layout::Create(std::move(specs), mesh);
}

absl::Status WithPath(const absl::Status& s, const std::string& path) {
  if (s.ok()) return s;
  return absl::Status(s.code(),
                      absl::StrCat("ImportStructure('", path, "'): ", s.message()));
}

}  // namespace

absl::StatusOr<ImportedStructure> ImportStructure(
    Communicator* comm, const std::string& save_path, const Mesh& mesh,
    const std::string& name_scope, bool restore_values, SaverOptions saver_options) {
  if (comm == nullptr) {
    return absl::InvalidArgumentError("ImportStructure: communicator is null");
  }
  absl::StatusOr<std::string> scope = internal::NormalizeImportScope(name_scope);
  absl::Status local = scope.status();
  if (local.ok() && (mesh.num_ranks() != comm->size() || mesh.rank() != comm->rank())) {
    local = absl::InvalidArgumentError(absl::StrCat(
        "ImportStructure: mesh ", mesh.ToShortString(), " spans ", mesh.num_ranks(),
        " ranks seen from rank ", mesh.rank(), ", but this job has ", comm->size(),
        " ranks and this is rank ", comm->rank()));
  }
  MESHCKPT_RETURN_IF_ERROR(comm->Agree(local));
  // With values, the checkpoint is opened once for its structure and values.
  std::unique_ptr<CheckpointHandle> checkpoint;
  std::optional<CheckpointIndex> structure_only;
  if (restore_values) {
    MESHCKPT_ASSIGN_OR_RETURN(checkpoint,
                              CheckpointHandle::Open(*comm, save_path, saver_options.io));
  } else {
    MESHCKPT_ASSIGN_OR_RETURN(structure_only, CheckpointIndex::Read(*comm, save_path));
  }
  const CheckpointIndex& index = checkpoint ? checkpoint->index() : *structure_only;

  ImportedStructure out;
  for (const auto& [key, value] : index.record().user_metadata) {
    absl::string_view name = key;
    if (!absl::ConsumePrefix(&name, kCollectionKeyPrefix)) continue;
    absl::StatusOr<std::vector<std::string>> values = DecodeCollection(value);
    if (!values.ok()) {
      local =
          absl::DataLossError(absl::StrCat("collection '", name, "' in '", index.path(),
                                           "': ", values.status().message()));
      break;
    }
    out.collections[std::string(name)] = *std::move(values);
  }
  std::map<std::string, DVariable*> var_list;
  for (size_t i = 0; local.ok() && i < index.tensors().size(); ++i) {
    const CheckpointIndex::Tensor& t = index.tensors()[i];
    absl::StatusOr<Layout> layout = Retarget(t.layout, mesh);
    if (!layout.ok()) {
      local =
          absl::Status(layout.status().code(),
                       absl::StrCat("tensor '", t.key, "': ", layout.status().message()));
      break;
    }
    std::string name = scope->empty() ? t.key : absl::StrCat(*scope, "/", t.key);
    absl::StatusOr<std::unique_ptr<DVariable>> v =
        DVariable::Create(std::move(name), t.dtype, t.shape, *std::move(layout));
    if (!v.ok()) {
      local = v.status();
      break;
    }
    var_list[t.key] = v->get();
    out.variables.push_back(*std::move(v));
  }
  MESHCKPT_RETURN_IF_ERROR(comm->Agree(WithPath(local, save_path)));

  if (var_list.empty()) saver_options.allow_empty = true;
  absl::StatusOr<std::unique_ptr<Saver>> saver =
      Saver::Create(comm, std::move(var_list), std::move(saver_options));
  if (!saver.ok()) return WithPath(saver.status(), save_path);
  out.saver = *std::move(saver);
  for (const auto& [name, values] : out.collections) {
    // Names came from "collection:<name>" keys; ones SetCollection would
    // refuse are returned but not re-saved.
    (void)out.saver->SetCollection(name, values);
  }
  if (restore_values) MESHCKPT_RETURN_IF_ERROR(out.saver->Restore(*checkpoint));
  return out;
}

absl::StatusOr<std::string> ExportStructure(Saver& saver, const std::string& save_path) {
  return saver.Save(save_path, std::nullopt, /*write_state=*/false);
}

}  // namespace meshckpt
