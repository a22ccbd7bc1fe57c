// `meshckpt ls DIR`: the checkpoints of a directory, as its state file
// lists them plus every other index found in it, with step, time, size and
// whether each is complete. Serial; reads only indexes and file sizes, and
// its work is linear in the number of entries (each is examined once).
//
// TensorFlow checkpoints (TensorBundle V2: `<prefix>.index` a LevelDB table,
// `<prefix>.data-NNNNN-of-MMMMM`) are listed beside ours, as TF's own
// `checkpoint` state file (the same format as ours) names them: complete
// when the index parses and every data file holds the bytes its entries
// need; timed by the state file, else by the index file's modification
// time; no step (a bundle records none).
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "meshckpt/checkpoint/engine/checkpoint_index.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/checkpoint/engine/tensorflow_bridge.h"
#include "meshckpt/checkpoint/state/checkpoint_state.h"
#include "meshckpt/io/format/index_file.h"
#include "meshckpt/io/fs/fs.h"
#include "meshckpt/tfbundle/bundle_reader.h"
#include "meshckpt/tools/cli.h"
#include "meshckpt/tools/commands.h"
#include "meshckpt/tools/json_writer.h"

namespace meshckpt {
namespace {

constexpr char kCmd[] = "ls";

constexpr char kHelp[] =
    "Usage: meshckpt ls DIR [--json]\n"
    "\n"
    "Lists the checkpoints of DIR, oldest first: those its state file\n"
    "('checkpoint') names and every other '<prefix>.index' in DIR. For each:\n"
    "step, commit time (UTC, ISO-8601), size of its files (human-readable and\n"
    "in bytes), format and status. Format 'meshckpt' (<prefix>.index +\n"
    "<prefix>.h5) or 'tensorflow' (a TensorBundle: <prefix>.index +\n"
    "<prefix>.data-NNNNN-of-MMMMM, with no step, timed by the state file or\n"
    "the index's modification time). Status:\n"
    "  complete    index present and valid, data file present with the size\n"
    "              recorded at commit\n"
    "  incomplete  index missing (named by the state file only), or data file\n"
    "              missing or not its committed size (truncated)\n"
    "  corrupt     index present but unreadable or invalid\n"
    "  ignored     named by the state file but outside DIR (never read,\n"
    "              never restored or deleted by meshckpt)\n"
    "'*' marks the latest checkpoint (what a restore of DIR would load; for\n"
    "TensorFlow checkpoints, the state file's model_checkpoint_path).\n"
    "Checksums are not read; use 'meshckpt verify' for that.\n"
    "Exit code 3 when DIR does not exist or holds no checkpoint.\n"
    "\n"
    "Flags:\n";

const std::vector<cli::FlagSpec>& Flags() {
  static const auto* flags = new std::vector<cli::FlagSpec>{
      {"json", cli::FlagKind::kBool, "",
       "print a JSON document: {\"dir\", \"latest\", \"checkpoints\": [{\"name\",\n"
       "\"prefix\", \"step\", \"timestamp\", \"time\", \"bytes\", \"format\",\n"
       "\"complete\", \"status\", \"detail\", \"latest\"}]}"},
  };
  return *flags;
}

struct Entry {
  std::string name;    // As shown: relative to DIR when inside it.
  std::string prefix;  // Path to open.
  double timestamp = 0;
  bool has_step = false;
  int64_t step = 0;
  int64_t bytes = 0;
  std::string format;  // "meshckpt", "tensorflow"; empty when unknown
  std::string status = "complete";
  std::string detail;
  bool latest = false;
};

// Names of `*.index` files in `dir` (not temporaries), without the suffix.
std::vector<std::string> IndexStems(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (absl::EndsWith(name, ".index") && name.size() > 6 &&
        !absl::StrContains(name, ".tmp-")) {
      out.push_back(name.substr(0, name.size() - 6));
    }
  }
  ::closedir(d);
  return out;
}

// The name a prefix is shown and deduplicated by: relative to DIR when
// inside it. `real_dir` is DIR with symlinks resolved ("" if unresolvable),
// for absolute paths against a relative DIR.
std::string DisplayName(const std::string& dir, const std::string& real_dir,
                        const std::string& prefix) {
  std::string rel = RelativeCheckpointPath(dir, prefix);
  if (rel != prefix || prefix.empty() || prefix[0] != '/' || real_dir.empty()) return rel;
  return RelativeCheckpointPath(real_dir, prefix);
}

// A TensorBundle: its index parses and every data file holds the bytes its
// entries point at (as ours: committed size, no checksums read).
void ExamineTensorFlow(Entry* e) {
  e->format = "tensorflow";
  const std::string index_path = tf::IndexFilename(e->prefix);
  absl::StatusOr<int64_t> index_size = FileSize(index_path);
  e->bytes = index_size.ok() ? *index_size : 0;
  absl::StatusOr<std::unique_ptr<tf::BundleReader>> reader =
      tf::BundleReader::Open(e->prefix);
  if (!reader.ok()) {
    e->status = "corrupt";
    e->detail = std::string(reader.status().message());
    return;
  }
  const int shards = (*reader)->header().num_shards;
  std::vector<int64_t> needed(shards, 0);
  for (const tf::BundleEntry& entry : (*reader)->entries()) {
    if (entry.slices().empty()) {
      needed[entry.shard_id()] =
          std::max(needed[entry.shard_id()], entry.offset() + entry.size());
    }
  }
  for (int i = 0; i < shards; ++i) {
    const std::string data_path = tf::DataFilename(e->prefix, i, shards);
    absl::StatusOr<int64_t> size = FileSize(data_path);
    if (size.ok()) e->bytes += *size;
    if (e->status != "complete") continue;
    if (!size.ok()) {
      e->status = "incomplete";
      e->detail = absl::StrCat("data file ", data_path, " missing");
    } else if (*size < needed[i]) {
      e->status = "incomplete";
      e->detail = absl::StrCat("data file ", data_path, " has ", *size,
                               " bytes, its entries need ", needed[i]);
    }
  }
}

void Examine(Entry* e) {
  if (internal::IsTensorFlowCheckpoint(e->prefix)) return ExamineTensorFlow(e);
  const std::string index_path = IndexFilePath(e->prefix);
  const std::string data_path = DataFilePath(e->prefix);
  absl::StatusOr<int64_t> index_size = FileSize(index_path);
  absl::StatusOr<int64_t> data_size = FileSize(data_path);
  e->bytes = (index_size.ok() ? *index_size : 0) + (data_size.ok() ? *data_size : 0);
  if (!index_size.ok()) {
    e->status = "incomplete";
    e->detail = "no index (not committed, or deleted)";
    return;
  }
  absl::StatusOr<std::string> bytes = ReadIndexFileBytes(index_path);
  absl::StatusOr<IndexRecord> record = bytes.ok()
                                           ? DecodeIndexFile(*bytes, index_path)
                                           : absl::StatusOr<IndexRecord>(bytes.status());
  if (!record.ok()) {
    e->status = "corrupt";
    e->detail = std::string(record.status().message());
    return;
  }
  e->format = "meshckpt";
  e->timestamp = record->timestamp;
  e->has_step = true;
  e->step = record->step;
  absl::StatusOr<CheckpointIndex> index =
      CheckpointIndex::FromRecord(*std::move(record), index_path);
  if (!index.ok()) {
    e->status = "corrupt";
    e->detail = std::string(index.status().message());
    return;
  }
  if (!data_size.ok()) {
    e->status = "incomplete";
    e->detail = "data file missing";
  } else if (*data_size != index->record().data_file_size) {
    e->status = "incomplete";
    e->detail = absl::StrCat("data file has ", *data_size, " bytes, committed ",
                             index->record().data_file_size);
  }
}

}  // namespace

int RunLs(const std::vector<std::string>& args) {
  absl::StatusOr<cli::ParsedArgs> a = cli::ParseArgs(args, Flags());
  if (!a.ok()) return cli::UsageError(kCmd, a.status().message());
  if (a->help) {
    std::cout << kHelp << cli::FlagsHelp(Flags()) << "\n" << cli::kExitCodesHelp;
    return cli::kExitOk;
  }
  if (a->positional.size() != 1) return cli::UsageError(kCmd, "want exactly one DIR");
  const std::string dir = a->positional[0];
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return cli::ReportError(
        kCmd, absl::NotFoundError(absl::StrCat("no such directory '", dir, "'")));
  }

  std::string real_dir;
  if (char* resolved = ::realpath(dir.c_str(), nullptr)) {
    real_dir = resolved;
    std::free(resolved);
  }
  std::map<std::string, Entry> entries;  // By display name.
  auto add = [&](const std::string& prefix) -> Entry& {
    const std::string name = DisplayName(dir, real_dir, prefix);
    Entry& e = entries[name];
    if (e.name.empty()) {
      e.name = name;
      e.prefix = prefix;
    }
    return e;
  };
  // What the state file names. Paths outside DIR are shown, never examined
  // and never complete: LatestCheckpoint and a manager ignore them too.
  std::map<std::string, double> state_times;  // By display name.
  absl::StatusOr<CheckpointState> state = ReadCheckpointState(dir);
  if (state.ok()) {
    auto add_named = [&](const std::string& path, std::optional<double> time) {
      Entry& e = add(ResolveCheckpointPath(dir, path));
      if (!IsCheckpointPathInsideDir(dir, path)) {
        e.status = "ignored";
        e.detail = "named by the state file but outside DIR";
      }
      if (time.has_value()) state_times.emplace(e.name, *time);
    };
    for (size_t i = 0; i < state->all_model_checkpoint_paths.size(); ++i) {
      add_named(state->all_model_checkpoint_paths[i],
                i < state->all_model_checkpoint_timestamps.size()
                    ? std::optional<double>(state->all_model_checkpoint_timestamps[i])
                    : std::nullopt);
    }
    if (!state->model_checkpoint_path.empty()) {
      add_named(state->model_checkpoint_path, std::nullopt);
    }
  } else if (!absl::IsNotFound(state.status())) {
    std::cerr << "meshckpt ls: warning: " << state.status().message() << "\n";
  }
  for (const std::string& stem : IndexStems(dir)) add(ResolveCheckpointPath(dir, stem));

  std::vector<Entry> list;
  list.reserve(entries.size());
  for (auto& [name, e] : entries) list.push_back(std::move(e));
  for (Entry& e : list) {
    if (e.status == "ignored") continue;
    Examine(&e);
    // The state file's time for entries without a readable index (and for
    // TensorFlow's, whose index records none), else the index file's.
    auto t = state_times.find(e.name);
    if (e.timestamp == 0 && t != state_times.end()) e.timestamp = t->second;
    struct stat index_stat;
    if (e.timestamp == 0 && e.format == "tensorflow" &&
        ::stat(IndexFilePath(e.prefix).c_str(), &index_stat) == 0) {
      e.timestamp = static_cast<double>(index_stat.st_mtime);
    }
  }
  absl::StatusOr<std::string> latest = LatestCheckpoint(dir);
  std::string latest_name = latest.ok() ? DisplayName(dir, real_dir, *latest) : "";
  if (!latest.ok() && state.ok() && !state->model_checkpoint_path.empty()) {
    // LatestCheckpoint knows only ours; TensorFlow's latest is what its
    // state file names, when that is a complete bundle.
    const std::string name = DisplayName(
        dir, real_dir, ResolveCheckpointPath(dir, state->model_checkpoint_path));
    for (const Entry& e : list) {
      if (e.name == name && e.format == "tensorflow" && e.status == "complete") {
        latest = e.prefix;
        latest_name = name;
      }
    }
  }
  for (Entry& e : list) e.latest = latest.ok() && e.name == latest_name;
  std::stable_sort(list.begin(), list.end(), [](const Entry& x, const Entry& y) {
    return x.timestamp != y.timestamp ? x.timestamp < y.timestamp : x.name < y.name;
  });

  if (a->Bool("json")) {
    JsonWriter w;
    w.BeginObject().Key("dir").String(dir);
    if (latest.ok()) {
      w.Key("latest").String(latest_name);
    } else {
      w.Key("latest").Null();
    }
    w.Key("checkpoints").BeginArray();
    for (const Entry& e : list) {
      w.BeginObject().Key("name").String(e.name).Key("prefix").String(e.prefix);
      if (e.has_step) {
        w.Key("step").Int(e.step);
      } else {
        w.Key("step").Null();
      }
      w.Key("timestamp")
          .Double(e.timestamp)
          .Key("time")
          .String(cli::IsoTimeUtc(e.timestamp));
      w.Key("bytes").Int(e.bytes);
      if (e.format.empty()) {
        w.Key("format").Null();
      } else {
        w.Key("format").String(e.format);
      }
      w.Key("complete").Bool(e.status == "complete");
      w.Key("status").String(e.status).Key("detail").String(e.detail);
      w.Key("latest").Bool(e.latest).EndObject();
    }
    w.EndArray().EndObject();
    std::cout << w.str() << "\n";
  } else if (!list.empty()) {
    std::vector<std::vector<std::string>> rows = {
        {"", "STEP", "TIME (UTC)", "SIZE", "BYTES", "FORMAT", "STATUS", "CHECKPOINT"}};
    for (const Entry& e : list) {
      rows.push_back(
          {e.latest ? "*" : "", e.has_step ? absl::StrCat(e.step) : "-",
           cli::IsoTimeUtc(e.timestamp), cli::HumanBytes(e.bytes), absl::StrCat(e.bytes),
           e.format.empty() ? "-" : e.format,
           e.detail.empty() ? e.status : absl::StrCat(e.status, " (", e.detail, ")"),
           e.name});
    }
    std::vector<size_t> width(rows[0].size(), 0);
    for (const auto& r : rows) {
      for (size_t c = 0; c < r.size(); ++c) width[c] = std::max(width[c], r[c].size());
    }
    for (const auto& r : rows) {
      std::string line;
      for (size_t c = 0; c < r.size(); ++c) {
        const std::string pad(width[c] - r[c].size(), ' ');
        const bool right = c == 1 || c == 3 || c == 4;
        absl::StrAppend(&line, right ? pad + r[c] : r[c] + pad,
                        c + 1 < r.size() ? "  " : "");
      }
      while (!line.empty() && line.back() == ' ') line.pop_back();
      std::cout << line << "\n";
    }
    int complete = 0;
    for (const Entry& e : list) complete += e.status == "complete";
    std::cout << list.size() << " checkpoint(s), " << complete << " complete";
    if (latest.ok()) std::cout << "; * latest: " << latest_name;
    std::cout << "\n";
  }
  if (std::all_of(list.begin(), list.end(),
                  [](const Entry& e) { return e.status == "ignored"; })) {
    return cli::ReportError(
        kCmd, absl::NotFoundError(absl::StrCat("no checkpoints in '", dir, "'")));
  }
  return cli::kExitOk;
}

}  // namespace meshckpt
