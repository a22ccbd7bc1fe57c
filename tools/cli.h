// tools/ owns the `meshckpt` command (inspect, ls, verify, diff, reshard, convert).
// It may use any library folder; nothing in the library uses it.
//
// Shared command-line plumbing of the `meshckpt` tool: flag parsing, parsers
// for flag values (--mesh, --layout, numbers), exit codes, error reporting
// and small display helpers (sizes, UTC times, checkpoint prefixes).
//
// Flags follow GNU conventions: `--name value`, `--name=value`, bool flags
// as `--name` (or `--name=true|false`), `-h`/`--help` anywhere, `--` ends
// the flags. Flags and positional arguments may be mixed.
//
//   std::vector<FlagSpec> specs = {{"json", FlagKind::kBool, "", "..."}};
//   absl::StatusOr<ParsedArgs> a = ParseArgs(args, specs);
//   if (!a.ok()) return UsageError("inspect", a.status().message());
//
// Pure functions and value types; thread-compatible.
#ifndef MESHCKPT_TOOLS_CLI_H_
#define MESHCKPT_TOOLS_CLI_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "meshckpt/mesh/mesh.h"

namespace meshckpt {
namespace cli {

// Exit codes shared by every subcommand (documented in `--help`).
enum ExitCode : int {
  kExitOk = 0,
  kExitCheckFailed = 1,  // verify damage is 4; diff --exit-code differences.
  kExitUsage = 2,
  kExitNotFound = 3,
  kExitDataLoss = 4,
  kExitError = 5,
};

// The text every `--help` ends with.
extern const char kExitCodesHelp[];

enum class FlagKind {
  kBool,      // --name
  kValue,     // --name VALUE, last one wins
  kRepeated,  // --name VALUE, may be given several times
};

struct FlagSpec {
  std::string name;  // Without the leading "--".
  FlagKind kind = FlagKind::kBool;
  std::string value_name;  // For help: "X" in "--atol X".
  std::string help;
};

struct ParsedArgs {
  std::vector<std::string> positional;
  // Values of kValue / kRepeated flags, in order given.
  std::map<std::string, std::vector<std::string>> values;
  // kBool flags that are set.
  std::map<std::string, bool> bools;
  bool help = false;

  bool Bool(const std::string& name) const;
  bool Has(const std::string& name) const { return values.count(name) > 0; }
  // The last value of a kValue flag, or `fallback`.
  std::string Value(const std::string& name, std::string fallback = "") const;
  std::vector<std::string> Values(const std::string& name) const;
};

// InvalidArgument for an unknown flag, a missing value, or a value given to
// a bool flag that is not true/false.
absl::StatusOr<ParsedArgs> ParseArgs(absl::Span<const std::string> args,
                                     absl::Span<const FlagSpec> specs);

// "  --name X   help" lines for `--help`.
std::string FlagsHelp(absl::Span<const FlagSpec> specs);

// "batch=2,model=4" -> {{"batch",2},{"model",4}}. Sizes must be positive.
absl::StatusOr<std::vector<MeshDimension>> ParseMeshDims(absl::string_view text);

// "KEY=SPEC,SPEC" -> {KEY, {SPEC, SPEC}}; "KEY=" is a scalar (no specs).
// Split at the last '='; specs are mesh dimension names or `unsharded`.
absl::StatusOr<std::pair<std::string, std::vector<std::string>>> ParseLayoutFlag(
    absl::string_view text);

absl::StatusOr<double> ParseNonNegativeDouble(absl::string_view flag,
                                              absl::string_view text);
absl::StatusOr<int64_t> ParseInt64(absl::string_view flag, absl::string_view text);

// Exit code for a library status: NotFound 3, DataLoss 4, other errors 5.
int ExitCodeFor(const absl::Status& status);

// Prints "meshckpt <cmd>: <message>" to stderr and returns the exit code.
int ReportError(absl::string_view cmd, const absl::Status& status);
// Prints "meshckpt <cmd>: <message>" and a --help hint; returns 2.
int UsageError(absl::string_view cmd, absl::string_view message);

// A checkpoint prefix from what the user typed: `X.index` and `X.h5` are
// taken as prefix X; a directory without `DIR.index` means the latest
// committed checkpoint in it (LatestCheckpoint). Otherwise unchanged.
std::string ResolvePrefix(const std::string& arg);

// "1.5 KiB", "12 B", "3.0 GiB" (binary units, one decimal above bytes).
std::string HumanBytes(int64_t bytes);
// Seconds since the epoch as "2024-05-01T12:00:00Z"; "-" when <= 0.
std::string IsoTimeUtc(double seconds);
// "[2,3]" (numpy-like shape text without spaces).
std::string ShapeText(absl::Span<const int64_t> shape);

// True when stderr is a terminal (progress output goes there only then).
bool StderrIsTerminal();

// Progress on stderr, "\r<what>: 12.0 MiB / 100.0 MiB (12%)", redrawn when
// the percentage changes, ended by a newline when done == total. Does
// nothing unless `enabled` (pass StderrIsTerminal()).
class ProgressPrinter {
 public:
  ProgressPrinter(std::string what, bool enabled)
      : what_(std::move(what)), enabled_(enabled) {}
  void Update(int64_t done, int64_t total);

 private:
  std::string what_;
  bool enabled_;
  int last_percent_ = -1;
};

}  // namespace cli
}  // namespace meshckpt

#endif  // MESHCKPT_TOOLS_CLI_H_
