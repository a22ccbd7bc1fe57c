// `meshckpt reshard SRC DST --mesh ...`: rewrites a checkpoint for another
// mesh and layouts, offline, under mpirun with any rank count (or alone as
// one rank: MpiEnvironment initializes a singleton MPI). Parses the flags;
// the work is RunReshardRequest (reshard.h), which streams every tensor
// through a bounded buffer per rank (checkpoint/engine/stream_rewrite.h).
// Nothing is allocated or printed per device: --mesh x=16777216 costs what
// x=8 does.
#include "meshckpt/tools/reshard.h"

#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "meshckpt/comm/mpi_communicator.h"
#include "meshckpt/tools/cli.h"
#include "meshckpt/tools/commands.h"

namespace meshckpt {
namespace {

constexpr char kCmd[] = "reshard";

constexpr char kHelp[] =
    "Usage: [mpirun -n N] meshckpt reshard SRC DST --mesh NAME=SIZE[,NAME=SIZE...]\n"
    "                     [--layout KEY=SPEC[,SPEC...]]... [--tensor KEY]...\n"
    "                     [--cast KEY=DTYPE]... [--max-memory SIZE] [--quiet] [--force]\n"
    "\n"
    "Rewrites checkpoint SRC as DST for a new device mesh. Runs under mpirun\n"
    "with any number of ranks N that divides the mesh's device count (the\n"
    "product of the sizes), or as a plain process (one rank).\n"
    "\n"
    "Each tensor gets its target layout from --layout when given (KEY is its\n"
    "key or dataset path; one SPEC per tensor dimension, each a mesh\n"
    "dimension name or 'unsharded'; 'KEY=' for a scalar). Otherwise its saved\n"
    "sharding specs are kept where they name a dimension of the new mesh and\n"
    "become 'unsharded' where they do not. DST keeps SRC's keys, dataset\n"
    "paths, dtypes, object graph, user metadata, save_counter and step.\n"
    "\n"
    "--tensor writes only the tensors named; the object graph keeps only the\n"
    "objects that still lead to one, and collections in the user metadata\n"
    "lose the items naming a tensor left out. --cast converts a float tensor\n"
    "to another float dtype (float16, bfloat16, float32, float64), rounding\n"
    "to nearest even, and records it in DST's metadata as\n"
    "'meshckpt.cast:KEY'; without it no dtype changes.\n"
    "\n"
    "Memory: tensors are copied a piece at a time: each rank holds at most\n"
    "about --max-memory of tensor data (default 256MiB), whatever the model\n"
    "size or the device counts, and every rank does its share of the work\n"
    "whatever the layouts. String tensors are held whole while DST is\n"
    "created. A reshard that fails leaves no DST (the same commit as a\n"
    "save). On a terminal, rank 0 shows the progress of all ranks on\n"
    "stderr.\n"
    "\n"
    "Flags:\n";

const std::vector<cli::FlagSpec>& Flags() {
  static const auto* flags = new std::vector<cli::FlagSpec>{
      {"mesh", cli::FlagKind::kValue, "NAME=SIZE,...",
       "the new mesh (required), e.g. x=2,y=4"},
      {"layout", cli::FlagKind::kRepeated, "KEY=SPEC,...",
       "target layout of one tensor (repeatable), e.g.\n"
       "model/dense/kernel=unsharded,y"},
      {"tensor", cli::FlagKind::kRepeated, "KEY",
       "write only this tensor (repeatable; key or dataset path)"},
      {"cast", cli::FlagKind::kRepeated, "KEY=DTYPE",
       "store a float tensor as another float dtype (repeatable),\n"
       "e.g. model/embedding=bfloat16"},
      {"max-memory", cli::FlagKind::kValue, "SIZE",
       "tensor data each rank may hold at once (default 256MiB,\n"
       "at least 8MiB), e.g. 64MiB, 2G"},
      {"quiet", cli::FlagKind::kBool, "", "no progress on stderr"},
      {"force", cli::FlagKind::kBool, "", "overwrite DST if it exists"},
  };
  return *flags;
}

// Whether progress drawn on stderr reaches a terminal. Under mpirun a
// rank's stderr is a pipe to the launcher, which copies it to its own
// stderr: then the launcher's (the parent's) stderr decides.
bool ProgressReachesTerminal(bool under_launcher) {
  if (cli::StderrIsTerminal()) return true;
  if (!under_launcher) return false;
  char target[64] = {};
  const std::string fd = absl::StrCat("/proc/", getppid(), "/fd/2");
  const ssize_t n = readlink(fd.c_str(), target, sizeof(target) - 1);
  if (n <= 0) return false;
  const absl::string_view t(target, static_cast<size_t>(n));
  return absl::StartsWith(t, "/dev/pts/") || absl::StartsWith(t, "/dev/tty");
}

// The request from the flags, or the usage error's message.
absl::StatusOr<ReshardRequest> RequestOf(const cli::ParsedArgs& a, bool under_launcher) {
  ReshardRequest r;
  if (a.positional.size() != 2) {
    return absl::InvalidArgumentError("want SRC and DST checkpoint prefixes");
  }
  r.src = a.positional[0];
  r.dst = a.positional[1];
  if (!a.Has("mesh")) return absl::InvalidArgumentError("--mesh is required");
  absl::StatusOr<std::vector<MeshDimension>> dims = cli::ParseMeshDims(a.Value("mesh"));
  if (!dims.ok()) return dims.status();
  r.mesh = *std::move(dims);
  for (const std::string& text : a.Values("layout")) {
    absl::StatusOr<std::pair<std::string, std::vector<std::string>>> l =
        cli::ParseLayoutFlag(text);
    if (!l.ok()) return l.status();
    r.layouts[l->first] = l->second;
  }
  r.tensors = a.Values("tensor");
  for (const std::string& text : a.Values("cast")) {
    const size_t eq = text.rfind('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--cast wants KEY=DTYPE, got '", text, "'"));
    }
    absl::StatusOr<DType> dtype = DTypeFromName(text.substr(eq + 1));
    if (!dtype.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--cast ", text, ": unknown dtype '", text.substr(eq + 1), "'"));
    }
    r.casts[text.substr(0, eq)] = *dtype;
  }
  if (a.Has("max-memory")) {
    absl::StatusOr<int64_t> bytes = ParseByteSize("max-memory", a.Value("max-memory"));
    if (!bytes.ok()) return bytes.status();
    r.max_memory = *bytes;
  }
  r.force = a.Bool("force");
  r.progress = !a.Bool("quiet") && ProgressReachesTerminal(under_launcher);
  return r;
}

}  // namespace

int RunReshard(const std::vector<std::string>& args) {
  absl::StatusOr<cli::ParsedArgs> a = cli::ParseArgs(args, Flags());
  // Help and flag errors need no MPI, and are the same on every rank; only
  // rank 0 of a job prints them (OMPI/MPICH/Slurm rank variables), since MPI
  // is not initialized yet.
  const char* rank_env = nullptr;
  for (const char* v :
       {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"}) {
    if ((rank_env = std::getenv(v)) != nullptr) break;
  }
  const bool print = rank_env == nullptr || std::string(rank_env) == "0";
  if (!a.ok())
    return print ? cli::UsageError(kCmd, a.status().message()) : cli::kExitUsage;
  if (a->help) {
    if (print)
      std::cout << kHelp << cli::FlagsHelp(Flags()) << "\n" << cli::kExitCodesHelp;
    return cli::kExitOk;
  }
  // Bad arguments are the same on every rank too: no MPI needed for them.
  absl::StatusOr<ReshardRequest> request = RequestOf(*a, rank_env != nullptr);
  if (!request.ok()) {
    return print ? cli::UsageError(kCmd, request.status().message()) : cli::kExitUsage;
  }
  MpiEnvironment env(nullptr, nullptr);
  int code;
  {
    absl::StatusOr<std::unique_ptr<Communicator>> comm = MpiCommunicator::World();
    if (!comm.ok()) return cli::ReportError(kCmd, comm.status());
    code = RunReshardRequest(**comm, *request);
  }  // The communicator is freed before MPI_Finalize.
  return code;
}

}  // namespace meshckpt
