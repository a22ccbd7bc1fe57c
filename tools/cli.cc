// Flag parsing, flag-value parsers, exit codes and display helpers of the
// `meshckpt` tool (see cli.h).
#include "meshckpt/tools/cli.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "meshckpt/checkpoint/state/checkpoint_state.h"

namespace meshckpt {
namespace cli {

const char kExitCodesHelp[] =
    "Exit codes:\n"
    "  0  success\n"
    "  1  the check failed (diff --exit-code found differences)\n"
    "  2  usage error (bad flags or arguments)\n"
    "  3  not found (no such checkpoint, directory or tensor)\n"
    "  4  data loss (corrupt or truncated checkpoint, checksum mismatch)\n"
    "  5  any other error\n";

bool ParsedArgs::Bool(const std::string& name) const {
  auto it = bools.find(name);
  return it != bools.end() && it->second;
}

std::string ParsedArgs::Value(const std::string& name, std::string fallback) const {
  auto it = values.find(name);
  if (it == values.end() || it->second.empty()) return fallback;
  return it->second.back();
}

std::vector<std::string> ParsedArgs::Values(const std::string& name) const {
  auto it = values.find(name);
  return it == values.end() ? std::vector<std::string>() : it->second;
}

absl::StatusOr<ParsedArgs> ParseArgs(absl::Span<const std::string> args,
                                     absl::Span<const FlagSpec> specs) {
  ParsedArgs out;
  bool flags_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (flags_done || arg == "-" || !absl::StartsWith(arg, "-")) {
      out.positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      flags_done = true;
      continue;
    }
    if (arg == "-h" || arg == "--help") {
      out.help = true;
      continue;
    }
    if (!absl::StartsWith(arg, "--")) {
      return absl::InvalidArgumentError(absl::StrCat("unknown option '", arg, "'"));
    }
    absl::string_view body = absl::string_view(arg).substr(2);
    std::string name(body);
    std::optional<std::string> inline_value;
    if (size_t eq = body.find('='); eq != absl::string_view::npos) {
      name = std::string(body.substr(0, eq));
      inline_value = std::string(body.substr(eq + 1));
    }
    const FlagSpec* spec = nullptr;
    for (const FlagSpec& s : specs) {
      if (s.name == name) spec = &s;
    }
    if (spec == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag '--", name, "'"));
    }
    if (spec->kind == FlagKind::kBool) {
      bool value = true;
      if (inline_value.has_value()) {
        if (*inline_value == "true" || *inline_value == "1") {
          value = true;
        } else if (*inline_value == "false" || *inline_value == "0") {
          value = false;
        } else {
          return absl::InvalidArgumentError(
              absl::StrCat("flag '--", name, "' takes no value (or true/false), got '",
                           *inline_value, "'"));
        }
      }
      out.bools[name] = value;
      continue;
    }
    std::string value;
    if (inline_value.has_value()) {
      value = *inline_value;
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("flag '--", name, "' needs a value"));
    }
    std::vector<std::string>& slot = out.values[name];
    if (spec->kind == FlagKind::kValue) slot.clear();
    slot.push_back(std::move(value));
  }
  return out;
}

std::string FlagsHelp(absl::Span<const FlagSpec> specs) {
  std::vector<std::pair<std::string, std::string>> rows;
  size_t width = 0;
  for (const FlagSpec& s : specs) {
    std::string left = absl::StrCat("  --", s.name);
    if (s.kind != FlagKind::kBool) absl::StrAppend(&left, " ", s.value_name);
    width = std::max(width, left.size());
    rows.emplace_back(std::move(left), s.help);
  }
  rows.emplace_back("  -h, --help", "show this help and exit");
  width = std::max(width, rows.back().first.size());
  std::string out;
  for (const auto& [left, help] : rows) {
    absl::StrAppend(&out, left, std::string(width + 2 - left.size(), ' '));
    // Continuation lines of a multi-line help are indented to the column.
    absl::StrAppend(
        &out,
        absl::StrJoin(absl::StrSplit(help, '\n'), "\n" + std::string(width + 2, ' ')),
        "\n");
  }
  return out;
}

absl::StatusOr<std::vector<MeshDimension>> ParseMeshDims(absl::string_view text) {
  std::vector<MeshDimension> dims;
  if (text.empty()) {
    return absl::InvalidArgumentError("--mesh is empty; want NAME=SIZE[,NAME=SIZE...]");
  }
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(part, absl::MaxSplits('=', 1));
    int64_t size = 0;
    if (kv.first.empty() || part.find('=') == absl::string_view::npos ||
        !absl::SimpleAtoi(kv.second, &size) || size <= 0) {
      return absl::InvalidArgumentError(absl::StrCat("bad mesh dimension '", part,
                                                     "' in --mesh '", text,
                                                     "': want NAME=SIZE with SIZE >= 1"));
    }
    for (const MeshDimension& d : dims) {
      if (d.name == kv.first) {
        return absl::InvalidArgumentError(absl::StrCat(
            "mesh dimension '", kv.first, "' given twice in --mesh '", text, "'"));
      }
    }
    dims.push_back({std::string(kv.first), size});
  }
  return dims;
}

absl::StatusOr<std::pair<std::string, std::vector<std::string>>> ParseLayoutFlag(
    absl::string_view text) {
  const size_t eq = text.rfind('=');
  if (eq == absl::string_view::npos || eq == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad --layout '", text,
                     "': want KEY=SPEC[,SPEC...] (SPEC a mesh dimension or 'unsharded'; "
                     "KEY= for a scalar)"));
  }
  std::pair<std::string, std::vector<std::string>> out;
  out.first = std::string(text.substr(0, eq));
  absl::string_view specs = text.substr(eq + 1);
  if (specs.empty()) return out;
  for (absl::string_view s : absl::StrSplit(specs, ',')) {
    if (s.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("empty sharding spec in --layout '", text, "'"));
    }
    out.second.emplace_back(s);
  }
  return out;
}

absl::StatusOr<double> ParseNonNegativeDouble(absl::string_view flag,
                                              absl::string_view text) {
  double v = 0;
  if (!absl::SimpleAtod(text, &v) || !(v >= 0) || std::isinf(v)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, " wants a finite number >= 0, got '", text, "'"));
  }
  return v;
}

absl::StatusOr<int64_t> ParseInt64(absl::string_view flag, absl::string_view text) {
  int64_t v = 0;
  if (!absl::SimpleAtoi(text, &v)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, " wants an integer, got '", text, "'"));
  }
  return v;
}

int ExitCodeFor(const absl::Status& status) {
  if (status.ok()) return kExitOk;
  if (absl::IsNotFound(status)) return kExitNotFound;
  if (absl::IsDataLoss(status)) return kExitDataLoss;
  return kExitError;
}

int ReportError(absl::string_view cmd, const absl::Status& status) {
  std::cerr << "meshckpt " << cmd << ": " << status.message() << "\n";
  return ExitCodeFor(status);
}

int UsageError(absl::string_view cmd, absl::string_view message) {
  std::cerr << "meshckpt " << cmd << ": " << message << "\n"
            << "Try 'meshckpt " << cmd << " --help'.\n";
  return kExitUsage;
}

std::string ResolvePrefix(const std::string& arg) {
  absl::string_view p = arg;
  if (absl::ConsumeSuffix(&p, ".index") || absl::ConsumeSuffix(&p, ".h5")) {
    return std::string(p);
  }
  struct stat st;
  if (!CheckpointExists(arg) && ::stat(arg.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    absl::StatusOr<std::string> latest = LatestCheckpoint(arg);
    if (latest.ok()) return *latest;
  }
  return arg;
}

std::string HumanBytes(int64_t bytes) {
  static const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  double v = static_cast<double>(bytes);
  int unit = -1;
  while (v >= 1024 && unit < 5) {
    v /= 1024;
    ++unit;
  }
  return absl::StrFormat("%.1f %s", v, kUnits[unit]);
}

std::string IsoTimeUtc(double seconds) {
  if (!(seconds > 0) || seconds > 253402300799.0) return "-";
  const time_t t = static_cast<time_t>(seconds);
  struct tm tm;
  if (gmtime_r(&t, &tm) == nullptr) return "-";
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string ShapeText(absl::Span<const int64_t> shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

bool StderrIsTerminal() { return ::isatty(STDERR_FILENO) == 1; }

void ProgressPrinter::Update(int64_t done, int64_t total) {
  if (!enabled_) return;
  const int percent = total > 0 ? static_cast<int>(100.0 * static_cast<double>(done) /
                                                   static_cast<double>(total))
                                : 100;
  if (percent == last_percent_) return;
  last_percent_ = percent;
  std::fprintf(stderr, "\r%s: %s / %s (%d%%)", what_.c_str(), HumanBytes(done).c_str(),
               HumanBytes(total).c_str(), percent);
  if (done >= total) std::fputc('\n', stderr);
  std::fflush(stderr);
}

}  // namespace cli
}  // namespace meshckpt
