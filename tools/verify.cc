// `meshckpt verify PREFIX`: re-reads every chunk of every tensor and checks
// every XXH3 tile checksum (CheckpointReader::VerifyAll). Serial; memory is
// bounded by the reader's staging buffer (about 64 MiB).
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "meshckpt/checkpoint/reader/checkpoint_reader.h"
#include "meshckpt/tools/cli.h"
#include "meshckpt/tools/commands.h"

namespace meshckpt {
namespace {

constexpr char kCmd[] = "verify";

constexpr char kHelp[] =
    "Usage: meshckpt verify PREFIX\n"
    "\n"
    "Checks that a checkpoint is intact: its index decodes and validates, its\n"
    "data file has the committed size, and every chunk of every tensor reads\n"
    "back with the XXH3 checksums taken at save time. Prints each problem\n"
    "(tensor, chunk, tile, file) and the damaged tensors on stdout.\n"
    "Exit code 0 when intact, 4 when damaged, 3 when there is no checkpoint.\n"
    "\n"
    "PREFIX is the checkpoint path without .index/.h5; a directory means its\n"
    "latest checkpoint. Runs in one process; no mpirun needed.\n"
    "\n"
    "Flags:\n";

const std::vector<cli::FlagSpec>& Flags() {
  static const auto* flags = new std::vector<cli::FlagSpec>{
      {"quiet", cli::FlagKind::kBool, "", "print nothing on success"},
  };
  return *flags;
}

}  // namespace

int RunVerify(const std::vector<std::string>& args) {
  absl::StatusOr<cli::ParsedArgs> a = cli::ParseArgs(args, Flags());
  if (!a.ok()) return cli::UsageError(kCmd, a.status().message());
  if (a->help) {
    std::cout << kHelp << cli::FlagsHelp(Flags()) << "\n" << cli::kExitCodesHelp;
    return cli::kExitOk;
  }
  if (a->positional.size() != 1) {
    return cli::UsageError(kCmd, "want exactly one checkpoint PREFIX");
  }
  const std::string prefix = cli::ResolvePrefix(a->positional[0]);
  absl::StatusOr<std::unique_ptr<CheckpointReader>> reader =
      CheckpointReader::Open(prefix);
  if (!reader.ok()) {
    if (absl::IsDataLoss(reader.status())) std::cout << prefix << ": DAMAGED\n";
    return cli::ReportError(kCmd, reader.status());
  }
  if (cli::StderrIsTerminal()) std::cerr << "verifying " << prefix << " ...\n";
  std::vector<std::string> skipped;
  absl::StatusOr<std::vector<std::string>> problems = (*reader)->VerifyAll(&skipped);
  if (!problems.ok()) return cli::ReportError(kCmd, problems.status());

  const std::vector<VariableInfo> vars = (*reader)->ListVariables();
  int64_t bytes = 0;
  for (const VariableInfo& v : vars) bytes += v.bytes;
  if (problems->empty()) {
    if (!a->Bool("quiet")) {
      for (const std::string& key : skipped) {
        std::cout << "skipped (not readable): " << key << "\n";
      }
      std::cout << prefix << ": OK (" << vars.size() << " tensors, "
                << cli::HumanBytes(bytes) << " checked";
      if ((*reader)->format() == CheckpointFormat::kTensorFlow) {
        std::cout << ", TensorFlow TensorBundle V2, every entry's CRC32C";
      }
      std::cout << ")\n";
    }
    return cli::kExitOk;
  }
  for (const std::string& p : *problems) std::cout << "problem: " << p << "\n";
  // The tensors the messages name.
  std::set<std::string> bad;
  for (const VariableInfo& v : vars) {
    for (const std::string& p : *problems) {
      if (absl::StrContains(p, absl::StrCat("'", v.key, "'"))) bad.insert(v.key);
    }
  }
  for (const std::string& key : bad) std::cout << "damaged tensor: " << key << "\n";
  std::cout << prefix << ": DAMAGED (" << problems->size() << " problem(s) in "
            << bad.size() << " of " << vars.size() << " tensors)\n";
  std::cerr << "meshckpt verify: checkpoint '" << prefix << "' is damaged\n";
  return cli::kExitDataLoss;
}

}  // namespace meshckpt
