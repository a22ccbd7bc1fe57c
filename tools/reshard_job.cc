// RunReshardRequest (reshard.h): targets, subsets, casts and pruned
// contents for RewriteCheckpoint, with progress and the summary line.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "meshckpt/base/float_cast.h"
#include "meshckpt/checkpoint/engine/checkpoint_handle.h"
#include "meshckpt/checkpoint/engine/checkpoint_index.h"
#include "meshckpt/checkpoint/engine/stream_rewrite.h"
#include "meshckpt/checkpoint/saver/saver.h"
#include "meshckpt/checkpoint/state/checkpoint_state.h"
#include "meshckpt/tools/cli.h"
#include "meshckpt/tools/reshard.h"

namespace meshckpt {
namespace {

// The tensor a --tensor, --layout or --cast NAME means: its key or its
// dataset path (with or without a leading '/'); nullptr when none.
const CheckpointIndex::Tensor* FindByName(const CheckpointIndex& index,
                                          const std::string& name) {
  if (const CheckpointIndex::Tensor* t = index.Find(name)) return t;
  absl::string_view path = name;
  while (absl::ConsumePrefix(&path, "/")) {
  }
  for (const CheckpointIndex::Tensor& t : index.tensors()) {
    if (t.dataset == path) return &t;
  }
  return nullptr;
}

// "--<flag> names 'x', which ..." for a name that is no tensor of SRC
// (NotFound) or one the selection leaves out (InvalidArgument).
absl::Status NameError(absl::string_view flag, const std::string& name, bool in_source,
                       const std::string& src) {
  if (!in_source) {
    return absl::NotFoundError(absl::StrCat("--", flag, " names '", name,
                                            "', which is no key or dataset path of '",
                                            src, "'"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, " names '", name, "', which --tensor leaves out"));
}

absl::StatusOr<Layout> TargetLayout(const CheckpointIndex::Tensor& t, const Mesh& mesh,
                                    const std::vector<std::string>* specs) {
  if (specs != nullptr) {
    if (specs->size() != t.shape.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--layout for '", t.key, "' has ", specs->size(),
                       " sharding spec(s) but the tensor has ", t.shape.size(),
                       " dimension(s) (shape ", cli::ShapeText(t.shape), ")"));
    }
    absl::StatusOr<Layout> l = Layout::Create(*specs, mesh);
    if (!l.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--layout for '", t.key, "': ", l.status().message()));
    }
    return l;
  }
  std::vector<std::string> saved;
  for (const std::string& s : t.layout.sharding_specs()) {
    saved.push_back(mesh.DimIndex(s).has_value() ? s : std::string(kUnsharded));
  }
  return Layout::Create(saved, mesh);
}

// SRC's user metadata for a destination holding only `kept` keys:
// collections lose the items that name a dropped tensor, and casts of
// dropped tensors are no longer recorded. Everything else stays.
std::map<std::string, std::string> PruneMetadata(
    const std::map<std::string, std::string>& metadata, const CheckpointIndex& index,
    const std::set<std::string>& kept) {
  std::set<std::string> dropped;
  for (const CheckpointIndex::Tensor& t : index.tensors()) {
    if (!kept.count(t.key)) dropped.insert(t.key);
  }
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : metadata) {
    absl::string_view rest = key;
    if (absl::ConsumePrefix(&rest, CastMetadataKey("")) &&
        dropped.count(std::string(rest))) {
      continue;
    }
    rest = key;
    if (absl::ConsumePrefix(&rest, kCollectionKeyPrefix)) {
      absl::StatusOr<std::vector<std::string>> items = DecodeCollection(value);
      if (items.ok()) {
        std::vector<std::string> left;
        for (std::string& item : *items) {
          if (!dropped.count(item)) left.push_back(std::move(item));
        }
        out[key] = EncodeCollection(left);
        continue;
      }
    }
    out[key] = value;
  }
  return out;
}

// "\r<what>: 1.2 GiB / 4.0 GiB (30%), 512.0 MiB/s" on stderr.
class RateProgress {
 public:
  explicit RateProgress(std::string what)
      : what_(std::move(what)), start_(std::chrono::steady_clock::now()) {}
  void Update(int64_t done, int64_t total) {
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const int percent = total > 0 ? static_cast<int>(100.0 * static_cast<double>(done) /
                                                     static_cast<double>(total))
                                  : 100;
    const int64_t rate = seconds > 0 ? static_cast<int64_t>(done / seconds) : 0;
    std::fprintf(stderr, "\r%s: %s / %s (%d%%), %s/s   ", what_.c_str(),
                 cli::HumanBytes(done).c_str(), cli::HumanBytes(total).c_str(), percent,
                 cli::HumanBytes(rate).c_str());
    if (done >= total) std::fputc('\n', stderr);
    std::fflush(stderr);
  }

 private:
  std::string what_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace

absl::StatusOr<int64_t> ParseByteSize(absl::string_view flag, absl::string_view text) {
  absl::string_view number = text;
  int64_t unit = 1;
  const std::string lower = absl::AsciiStrToLower(text);
  absl::string_view suffix = lower;
  size_t digits = 0;
  while (digits < suffix.size() && absl::ascii_isdigit(suffix[digits])) ++digits;
  number = text.substr(0, digits);
  suffix.remove_prefix(digits);
  absl::ConsumeSuffix(&suffix, "ib");
  absl::ConsumeSuffix(&suffix, "b");
  static const std::map<std::string, int64_t> kUnits = {{"", 1},
                                                        {"k", int64_t{1} << 10},
                                                        {"m", int64_t{1} << 20},
                                                        {"g", int64_t{1} << 30},
                                                        {"t", int64_t{1} << 40}};
  int64_t n = 0;
  const auto it = kUnits.find(std::string(suffix));
  if (it != kUnits.end()) unit = it->second;
  if (number.empty() || it == kUnits.end() || !absl::SimpleAtoi(number, &n) ||
      n > INT64_MAX / unit) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, " wants a size such as 256MiB, 64M or 1073741824, got '", text, "'"));
  }
  return n * unit;
}

int RunReshardRequest(Communicator& comm, const ReshardRequest& request) {
  const std::string& cmd = request.command;
  const bool root = comm.rank() == 0;
  auto usage = [&](absl::string_view msg) {
    return root ? cli::UsageError(cmd, msg) : static_cast<int>(cli::kExitUsage);
  };
  auto fail = [&](const absl::Status& s) {
    if (absl::IsInvalidArgument(s)) return usage(s.message());
    return root ? cli::ReportError(cmd, s) : cli::ExitCodeFor(s);
  };
  absl::StatusOr<Mesh> mesh = Mesh::Create(request.mesh, comm.rank(), comm.size());
  if (!mesh.ok()) {
    return usage(
        absl::StrCat("--mesh on ", comm.size(), " rank(s): ", mesh.status().message()));
  }
  if (request.max_memory < kMinRewriteMemory) {
    return usage(absl::StrCat("--max-memory must be at least ",
                              cli::HumanBytes(kMinRewriteMemory)));
  }
  std::string src = cli::ResolvePrefix(request.src);
  comm.Broadcast(&src, 0);  // One answer even if ranks see the directory differently.
  const std::string& dst = request.dst;
  absl::Status exists;
  if (root && !request.force && CheckpointExists(dst)) {
    exists = absl::AlreadyExistsError(
        absl::StrCat("checkpoint '", dst, "' exists (use --force to overwrite)"));
  }
  if (absl::Status s = comm.Agree(exists); !s.ok()) return fail(s);
  absl::StatusOr<std::unique_ptr<CheckpointHandle>> checkpoint =
      CheckpointHandle::Open(comm, src);
  if (!checkpoint.ok()) return fail(checkpoint.status());
  const CheckpointIndex& index = (*checkpoint)->index();

  // Which tensors, in the source's order.
  std::set<std::string> kept;
  for (const std::string& name : request.tensors) {
    const CheckpointIndex::Tensor* t = FindByName(index, name);
    if (t == nullptr) return fail(NameError("tensor", name, false, src));
    kept.insert(t->key);
  }
  const bool subset = !request.tensors.empty();
  auto selected = [&](const std::string& key) { return !subset || kept.count(key) > 0; };
  std::map<std::string, DType> casts;  // By key.
  for (const auto& [name, dtype] : request.casts) {
    const CheckpointIndex::Tensor* t = FindByName(index, name);
    if (t == nullptr || !selected(t->key)) {
      return fail(NameError("cast", name, t != nullptr, src));
    }
    if (!IsFloatDType(t->dtype) || !IsFloatDType(dtype)) {
      return usage(absl::StrCat("--cast ", name, "=", DTypeName(dtype), ": '", t->key,
                                "' is ", DTypeName(t->dtype),
                                "; casts are between float16, bfloat16, float32 and "
                                "float64"));
    }
    casts[t->key] = dtype;
  }
  std::map<std::string, const std::vector<std::string>*> layouts;  // By key.
  for (const auto& [name, specs] : request.layouts) {
    const CheckpointIndex::Tensor* t = FindByName(index, name);
    if (t == nullptr || !selected(t->key)) {
      return fail(NameError("layout", name, t != nullptr, src));
    }
    layouts[t->key] = &specs;
  }
  std::vector<RewriteTensor> targets;
  int64_t total_bytes = 0;
  for (const CheckpointIndex::Tensor& t : index.tensors()) {
    if (!selected(t.key)) continue;
    auto l = layouts.find(t.key);
    absl::StatusOr<Layout> layout =
        TargetLayout(t, *mesh, l == layouts.end() ? nullptr : l->second);
    if (!layout.ok()) return usage(layout.status().message());
    auto c = casts.find(t.key);
    const DType dtype = c == casts.end() ? t.dtype : c->second;
    targets.push_back({t.key, t.dataset, dtype, *std::move(layout)});
    total_bytes += Box::FromShape(t.shape).num_elements() * DTypeSize(dtype);
  }

  const IndexRecord& ix = index.record();
  CheckpointContents contents;
  contents.object_graph = subset ? PruneObjectGraph(ix.object_graph, selected)
                                 : ix.object_graph;
  contents.user_metadata = subset ? PruneMetadata(ix.user_metadata, index, kept)
                                  : ix.user_metadata;
  contents.save_counter = ix.save_counter;
  contents.step = ix.step;
  contents.mesh = *mesh;  // Recorded in the index even when no tensor is written.

  RewriteOptions options;
  options.max_memory = request.max_memory;
  std::unique_ptr<RateProgress> progress;
  if (root && request.progress) {
    progress = std::make_unique<RateProgress>(absl::StrCat(cmd, " (all ranks)"));
    options.progress = [&](int64_t done, int64_t total) {
      progress->Update(done, total);
    };
  }
  if (absl::Status s = RewriteCheckpoint(**checkpoint, dst, targets, contents, options);
      !s.ok()) {
    return fail(s);
  }
  if (root) {
    std::cout << "resharded " << targets.size() << " tensor(s), "
              << cli::HumanBytes(total_bytes) << ", from " << src << " (mesh "
              << index.mesh().ToShortString() << ") to " << dst << " (mesh "
              << mesh->ToShortString() << ") on " << comm.size() << " rank(s)";
    if (!casts.empty()) std::cout << ", " << casts.size() << " cast";
    std::cout << "\n";
  }
  return cli::kExitOk;
}

}  // namespace meshckpt
