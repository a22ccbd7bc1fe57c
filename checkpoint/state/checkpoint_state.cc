// The `checkpoint` state file and finding the newest checkpoint: the
// implementation of checkpoint_state.h.
//
// Path handling is lexical (base/path.h, no symlink resolution): "a//b/./c"
// is "a/b/c", and ".." components are kept as written, which is what makes
// them detectable. Directory listings use opendir/readdir; every function is a
// sequence of independent POSIX calls and keeps no state (thread-compatible).
// The only place that sees proto::CheckpointState: the struct is converted
// to it for the text format and back.
//
//   CheckpointState s;
//   s.model_checkpoint_path = "ckpt-3";
//   s.all_model_checkpoint_paths = {"ckpt-3"};
//   absl::Status st = WriteCheckpointState("/ckpt/run", s);
//   absl::StatusOr<std::string> latest = LatestCheckpoint("/ckpt/run");
#include "meshckpt/checkpoint/state/checkpoint_state.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "meshckpt/base/path.h"
#include "meshckpt/base/status_macros.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/io/format/index_file.h"
#include "meshckpt/io/fs/fs.h"
#include "proto/checkpoint_state.pb.h"

namespace meshckpt {
namespace {

constexpr absl::string_view kIndexSuffix = ".index";
constexpr absl::string_view kDataSuffix = ".h5";

}  // namespace

// A state file is input like any other: a hostile or stale one must not make
// us report (and a manager later delete) files elsewhere. So relative paths
// may not contain ".." components, and absolute ones must lie lexically
// under `dir`. Symlinks inside `dir` are trusted: planting one needs write
// access to the directory, which already allows anything.
bool IsCheckpointPathInsideDir(const std::string& dir, const std::string& path) {
  if (path.empty() || path.find('\0') != std::string::npos) return false;
  if (HasDotDotComponent(path)) return false;
  if (!IsAbsolutePath(path)) return true;
  const absl::StatusOr<std::string> abs_dir = MakeAbsolute(dir);
  if (!abs_dir.ok()) return false;
  return RelativePathUnder(*abs_dir, path).has_value();
}

namespace {

absl::Status ValidateLatestFilename(const std::string& name) {
  if (name.empty() || name == "." || name == ".." ||
      name.find('/') != std::string::npos || name.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid checkpoint state file name '", name,
                     "': must be a plain file name inside the directory"));
  }
  return absl::OkStatus();
}

// Collects text-format parse errors instead of letting protobuf log them.
class ErrorRecorder : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    if (first_.empty()) {
      first_ = absl::StrCat("line ", line + 1, " column ", column + 1, ": ", message);
    }
  }
  const std::string& first() const { return first_; }

 private:
  std::string first_;
};

// True for `<anything>.<marker><id>` where id is non-empty and has no '.'
// or '/', i.e. the temporaries WriteFileAtomically (".tmp-") and SaveTensors
// (".h5.partial-") create with RandomId(). A checkpoint whose prefix merely
// contains the marker ("run.tmp-3.index") does not match.
bool EndsWithTemporaryMarker(absl::string_view name, absl::string_view marker) {
  const size_t at = name.rfind(marker);
  if (at == absl::string_view::npos) return false;
  absl::string_view id = name.substr(at + marker.size());
  return !id.empty() && id.find('.') == absl::string_view::npos;
}

// Names of the regular files in `dir`.
absl::StatusOr<std::vector<std::string>> ListRegularFiles(const std::string& dir) {
  const std::string d = dir.empty() ? "." : dir;
  DIR* handle = ::opendir(d.c_str());
  if (handle == nullptr) {
    const int err = errno;
    std::string msg =
        absl::StrCat("cannot list checkpoint directory '", d, "': ", std::strerror(err));
    return err == ENOENT || err == ENOTDIR ? absl::NotFoundError(msg)
                                           : absl::InternalError(msg);
  }
  std::vector<std::string> names;
  while (const dirent* entry = ::readdir(handle)) {
    const std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    struct stat st;
    if (::stat(JoinPath(d, name).c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      names.push_back(name);
    }
  }
  ::closedir(handle);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

namespace {

CheckpointState FromProto(const proto::CheckpointState& p) {
  CheckpointState s;
  s.model_checkpoint_path = p.model_checkpoint_path();
  s.all_model_checkpoint_paths.assign(p.all_model_checkpoint_paths().begin(),
                                      p.all_model_checkpoint_paths().end());
  s.all_model_checkpoint_timestamps.assign(p.all_model_checkpoint_timestamps().begin(),
                                           p.all_model_checkpoint_timestamps().end());
  s.last_preserved_timestamp = p.last_preserved_timestamp();
  return s;
}

proto::CheckpointState ToProto(const CheckpointState& s) {
  proto::CheckpointState p;
  p.set_model_checkpoint_path(s.model_checkpoint_path);
  for (const std::string& path : s.all_model_checkpoint_paths) {
    p.add_all_model_checkpoint_paths(path);
  }
  for (double t : s.all_model_checkpoint_timestamps)
    p.add_all_model_checkpoint_timestamps(t);
  p.set_last_preserved_timestamp(s.last_preserved_timestamp);
  return p;
}

}  // namespace

absl::StatusOr<CheckpointState> ReadCheckpointState(const std::string& dir,
                                                    const std::string& latest_filename) {
  MESHCKPT_RETURN_IF_ERROR(ValidateLatestFilename(latest_filename));
  const std::string path = JoinPath(dir, latest_filename);
  absl::StatusOr<std::string> text = ReadFileToString(path, kMaxStateFileBytes);
  if (!text.ok()) {
    if (absl::IsNotFound(text.status())) {
      return absl::NotFoundError(absl::StrCat("no checkpoint state file '", path, "'"));
    }
    return text.status();
  }
  proto::CheckpointState state;
  ErrorRecorder errors;
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(*text, &state)) {
    return absl::DataLossError(absl::StrCat(
        "cannot parse checkpoint state file '", path, "': ",
        errors.first().empty() ? "not a CheckpointState text proto" : errors.first()));
  }
  return FromProto(state);
}

absl::Status WriteCheckpointState(const std::string& dir, const CheckpointState& state,
                                  const std::string& latest_filename) {
  MESHCKPT_RETURN_IF_ERROR(ValidateLatestFilename(latest_filename));
  std::string text;
  if (!google::protobuf::TextFormat::PrintToString(ToProto(state), &text)) {
    return absl::InternalError(absl::StrCat("cannot format checkpoint state for '",
                                            JoinPath(dir, latest_filename), "'"));
  }
  return WriteFileAtomically(JoinPath(dir, latest_filename), text);
}

namespace {

// Fixed-width native-endian fields: the encoding never leaves the job.
template <typename T>
void Put(std::string* out, T value) {
  out->append(reinterpret_cast<const char*>(&value), sizeof(value));
}
void PutString(std::string* out, absl::string_view s) {
  Put<uint64_t>(out, s.size());
  out->append(s.data(), s.size());
}

template <typename T>
bool Take(absl::string_view* in, T* value) {
  if (in->size() < sizeof(T)) return false;
  std::memcpy(value, in->data(), sizeof(T));
  in->remove_prefix(sizeof(T));
  return true;
}
bool TakeString(absl::string_view* in, std::string* s) {
  uint64_t n = 0;
  if (!Take(in, &n) || in->size() < n) return false;
  s->assign(in->data(), n);
  in->remove_prefix(n);
  return true;
}

}  // namespace

std::string EncodeCheckpointState(const CheckpointState& state) {
  std::string out;
  PutString(&out, state.model_checkpoint_path);
  Put<uint64_t>(&out, state.all_model_checkpoint_paths.size());
  for (const std::string& p : state.all_model_checkpoint_paths) PutString(&out, p);
  Put<uint64_t>(&out, state.all_model_checkpoint_timestamps.size());
  for (double t : state.all_model_checkpoint_timestamps) Put(&out, t);
  Put(&out, state.last_preserved_timestamp);
  return out;
}

absl::StatusOr<CheckpointState> DecodeCheckpointState(absl::string_view bytes) {
  CheckpointState s;
  uint64_t n = 0;
  bool ok = TakeString(&bytes, &s.model_checkpoint_path) && Take(&bytes, &n);
  // Each entry takes at least 8 bytes: a count beyond that is damage.
  ok = ok && n <= bytes.size() / sizeof(uint64_t);
  for (uint64_t i = 0; ok && i < n; ++i) {
    ok = TakeString(&bytes, &s.all_model_checkpoint_paths.emplace_back());
  }
  ok = ok && Take(&bytes, &n) && n <= bytes.size() / sizeof(double);
  for (uint64_t i = 0; ok && i < n; ++i) {
    ok = Take(&bytes, &s.all_model_checkpoint_timestamps.emplace_back());
  }
  ok = ok && Take(&bytes, &s.last_preserved_timestamp) && bytes.empty();
  if (!ok) return absl::InternalError("not an encoded checkpoint state");
  return s;
}

std::string ResolveCheckpointPath(const std::string& dir, const std::string& path) {
  if (IsAbsolutePath(path)) return path;
  return JoinPath(dir, path);
}

std::string RelativeCheckpointPath(const std::string& dir, const std::string& prefix) {
  return RelativePathUnder(dir, prefix).value_or(prefix);
}

bool CheckpointExists(const std::string& prefix) {
  return FileExists(IndexFilePath(prefix));
}

namespace {

// The decoded index of `prefix` when its data file has the committed size.
absl::StatusOr<IndexRecord> IntactIndex(const std::string& prefix) {
  const std::string path = IndexFilePath(prefix);
  MESHCKPT_ASSIGN_OR_RETURN(std::string bytes, ReadIndexFileBytes(path));
  MESHCKPT_ASSIGN_OR_RETURN(IndexRecord index, DecodeIndexFile(bytes, path));
  MESHCKPT_ASSIGN_OR_RETURN(int64_t size, FileSize(DataFilePath(prefix)));
  if (size != index.data_file_size) {
    return absl::DataLossError(
        absl::StrCat("data file of '", prefix, "' has the wrong size"));
  }
  return index;
}

}  // namespace

bool CheckpointIsIntact(const std::string& prefix) { return IntactIndex(prefix).ok(); }

namespace {

// (index timestamp, stem) of every intact checkpoint directly in `dir`.
std::vector<std::pair<double, std::string>> CommittedInDir(const std::string& dir) {
  absl::StatusOr<std::vector<std::string>> names = ListRegularFiles(dir);
  if (!names.ok()) return {};
  std::vector<std::pair<double, std::string>> found;
  for (const std::string& name : *names) {
    if (!absl::EndsWith(name, kIndexSuffix) || name.size() == kIndexSuffix.size() ||
        absl::StrContains(name, ".tmp-")) {
      continue;
    }
    const std::string stem = name.substr(0, name.size() - kIndexSuffix.size());
    absl::StatusOr<IndexRecord> index =
        IntactIndex(JoinPath(dir.empty() ? "." : dir, stem));
    if (!index.ok()) continue;  // Corrupt, too new or lost data: not usable.
    found.emplace_back(index->timestamp, stem);
  }
  std::sort(found.begin(), found.end());
  return found;
}

}  // namespace

absl::StatusOr<std::string> LatestCheckpoint(const std::string& dir,
                                             const std::string& latest_filename) {
  absl::StatusOr<CheckpointState> state = ReadCheckpointState(dir, latest_filename);
  if (!state.ok() && absl::IsInvalidArgument(state.status())) return state.status();
  // The newest intact checkpoint by commit time, whether the state file names
  // it or not: a job that died between committing a checkpoint and updating
  // the state file must not have its newest checkpoint rolled back. The
  // state file's entries come first, so on equal timestamps its spelling of
  // a path (and its choice of latest) wins.
  std::optional<std::pair<double, std::string>> best;
  absl::flat_hash_set<std::string> seen;
  auto consider = [&](const std::string& prefix, double timestamp) {
    if (!best.has_value() || timestamp > best->first) best.emplace(timestamp, prefix);
  };
  if (state.ok()) {
    std::vector<const std::string*> named = {&state->model_checkpoint_path};
    const auto& all = state->all_model_checkpoint_paths;
    for (auto it = all.rbegin(); it != all.rend(); ++it) named.push_back(&*it);
    for (const std::string* p : named) {
      // Entries that escape `dir` are skipped, as are entries that are not
      // intact (index gone or damaged, data lost).
      if (!IsCheckpointPathInsideDir(dir, *p)) continue;
      const std::string prefix = ResolveCheckpointPath(dir, *p);
      if (!seen.insert(NormalizePath(prefix)).second) continue;
      absl::StatusOr<IndexRecord> index = IntactIndex(prefix);
      if (index.ok()) consider(prefix, index->timestamp);
    }
  }
  for (const auto& [timestamp, stem] : CommittedInDir(dir)) {
    const std::string prefix = ResolveCheckpointPath(dir, stem);
    if (!seen.contains(NormalizePath(prefix))) consider(prefix, timestamp);
  }
  if (!best.has_value()) {
    return absl::NotFoundError(
        absl::StrCat("no committed checkpoint in '", dir.empty() ? "." : dir, "'"));
  }
  return best->second;
}

std::vector<std::pair<double, std::string>> ListCommittedCheckpointsWithTimes(
    const std::string& dir) {
  std::vector<std::pair<double, std::string>> out = CommittedInDir(dir);
  for (auto& [timestamp, stem] : out) stem = ResolveCheckpointPath(dir, stem);
  return out;
}

std::vector<std::string> ListCommittedCheckpoints(const std::string& dir) {
  std::vector<std::string> out;
  for (auto& [timestamp, prefix] : ListCommittedCheckpointsWithTimes(dir)) {
    out.push_back(std::move(prefix));
  }
  return out;
}

absl::StatusOr<int64_t> NextCheckpointNumber(const std::string& dir,
                                             absl::string_view name, int64_t at_least) {
  MESHCKPT_ASSIGN_OR_RETURN(std::vector<std::string> files, ListRegularFiles(dir));
  absl::flat_hash_set<int64_t> taken;
  for (absl::string_view file : files) {
    // `<name>-<N>` followed by ".index", ".h5" or a temporary's suffix.
    if (!absl::ConsumePrefix(&file, name) || !absl::ConsumePrefix(&file, "-")) continue;
    const size_t digits = file.find_first_not_of("0123456789");
    int64_t n;
    if (digits == 0 || digits == absl::string_view::npos ||
        !absl::SimpleAtoi(file.substr(0, digits), &n)) {
      continue;
    }
    const absl::string_view rest = file.substr(digits);
    if (absl::StartsWith(rest, kIndexSuffix) || absl::StartsWith(rest, kDataSuffix)) {
      taken.insert(n);
    }
  }
  int64_t next = at_least;
  while (taken.contains(next)) ++next;
  return next;
}

absl::Status DeleteCheckpoint(const std::string& prefix) {
  const std::string index = IndexFilePath(prefix);
  if (absl::Status s = RemoveFileIfExists(index); !s.ok()) {
    return absl::Status(
        s.code(), absl::StrCat("deleting checkpoint '", prefix, "': ", s.message()));
  }
  if (absl::Status s = RemoveFileIfExists(DataFilePath(prefix)); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("deleting checkpoint '", prefix,
                                               "' (its index is gone): ", s.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> SweepStaleTemporaries(const std::string& dir) {
  MESHCKPT_ASSIGN_OR_RETURN(std::vector<std::string> names, ListRegularFiles(dir));
  const std::string d = dir.empty() ? "." : dir;
  int removed = 0;
  absl::Status first_error;
  for (const std::string& name : names) {
    bool stale = EndsWithTemporaryMarker(name, ".h5.partial-") ||
                 EndsWithTemporaryMarker(name, ".tmp-");
    if (!stale && absl::EndsWith(name, kDataSuffix) && name.size() > kDataSuffix.size()) {
      const std::string stem = name.substr(0, name.size() - kDataSuffix.size());
      stale = !FileExists(JoinPath(d, absl::StrCat(stem, kIndexSuffix)));
    }
    if (!stale) continue;
    absl::Status s = RemoveFileIfExists(JoinPath(d, name));
    if (s.ok()) {
      ++removed;
    } else if (first_error.ok()) {
      first_error = absl::Status(
          s.code(), absl::StrCat("sweeping stale files in '", d, "': ", s.message()));
    }
  }
  if (!first_error.ok()) return first_error;
  return removed;
}

}  // namespace meshckpt
