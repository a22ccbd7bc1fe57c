// `meshckpt`: inspect, list, verify, reshard, compare and convert checkpoints.
// Dispatches to the subcommands in tools/commands.h.
#include <iostream>
#include <string>
#include <vector>

#include "meshckpt/base/version.h"
#include "meshckpt/tools/cli.h"
#include "meshckpt/tools/commands.h"

namespace {

constexpr char kUsage[] =
    "Usage: meshckpt <command> [flags] [args]\n"
    "\n"
    "Look inside, check, convert and compare meshckpt checkpoints (a prefix P\n"
    "names the files P.index and P.h5).\n"
    "\n"
    "Commands:\n"
    "  inspect PREFIX   list tensors and metadata, or print tensor values\n"
    "  ls DIR           list the checkpoints of a directory\n"
    "  verify PREFIX    re-read every chunk and check every checksum\n"
    "  reshard SRC DST  rewrite a checkpoint for another mesh/layout (MPI)\n"
    "  diff A B         compare the tensors of two checkpoints\n"
    "  convert SRC DST  meshckpt <-> TensorFlow (TensorBundle) checkpoints\n"
    "\n"
    "Run 'meshckpt <command> --help' for the flags of a command.\n"
    "inspect, ls, verify, diff and convert to TensorFlow run in one process;\n"
    "reshard and convert to meshckpt run under mpirun with any number of\n"
    "ranks (or alone, as one rank).\n"
    "\n";

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::cerr << kUsage << meshckpt::cli::kExitCodesHelp;
    return meshckpt::cli::kExitUsage;
  }
  const std::string cmd = args[0];
  args.erase(args.begin());
  if (cmd == "-h" || cmd == "--help" || cmd == "help") {
    std::cout << kUsage << meshckpt::cli::kExitCodesHelp;
    return meshckpt::cli::kExitOk;
  }
  if (cmd == "--version") {
    std::cout << meshckpt::kLibraryVersion << "\n";
    return meshckpt::cli::kExitOk;
  }
  if (cmd == "inspect") return meshckpt::RunInspect(args);
  if (cmd == "ls") return meshckpt::RunLs(args);
  if (cmd == "verify") return meshckpt::RunVerify(args);
  if (cmd == "reshard") return meshckpt::RunReshard(args);
  if (cmd == "diff") return meshckpt::RunDiff(args);
  if (cmd == "convert") return meshckpt::RunConvert(args);
  std::cerr << "meshckpt: unknown command '" << cmd << "'\n"
            << "Try 'meshckpt --help'.\n";
  return meshckpt::cli::kExitUsage;
}
