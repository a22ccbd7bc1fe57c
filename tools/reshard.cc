// `meshckpt reshard SRC DST --mesh ...`: rewrites a checkpoint for another
// mesh and layouts, offline, under mpirun with any rank count (or alone as
// one rank: MpiEnvironment initializes a singleton MPI).
//
// SRC is opened once (CheckpointHandle). Every tensor of it is restored onto
// the new mesh in its target layout (RestoreTensors reads only what each
// rank's devices need), then all are
// saved as DST (SaveTensors) with the same keys, dataset paths, object graph,
// user metadata, save_counter and step.
//
// Memory limit: all tensors are held at once. Each rank holds every
// distinct non-empty shard its devices need, one buffer per shard however
// many local devices hold it (shard_data of shard_io.h), so a rank needs
// about the model size divided by the number of distinct shards it holds;
// fully replicated tensors are held whole on every rank. Nothing is
// allocated or printed per device: --mesh x=16777216 costs what x=8 does.
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "meshckpt/checkpoint/engine/checkpoint_handle.h"
#include "meshckpt/checkpoint/engine/checkpoint_index.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/checkpoint/state/checkpoint_state.h"
#include "meshckpt/comm/mpi_communicator.h"
#include "meshckpt/layout/shard_map.h"
#include "meshckpt/tools/cli.h"
#include "meshckpt/tools/commands.h"

namespace meshckpt {
namespace {

constexpr char kCmd[] = "reshard";

constexpr char kHelp[] =
    "Usage: [mpirun -n N] meshckpt reshard SRC DST --mesh NAME=SIZE[,NAME=SIZE...]\n"
    "                     [--layout KEY=SPEC[,SPEC...]]... [--force]\n"
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
    "paths, object graph, user metadata, save_counter and step.\n"
    "\n"
    "Memory: every tensor is held in memory at once, each rank holding the\n"
    "distinct shards its devices need (replicated tensors whole on every\n"
    "rank). Add ranks or shard more to reduce the per-rank share.\n"
    "\n"
    "Flags:\n";

const std::vector<cli::FlagSpec>& Flags() {
  static const auto* flags = new std::vector<cli::FlagSpec>{
      {"mesh", cli::FlagKind::kValue, "NAME=SIZE,...",
       "the new mesh (required), e.g. x=2,y=4"},
      {"layout", cli::FlagKind::kRepeated, "KEY=SPEC,...",
       "target layout of one tensor (repeatable), e.g.\n"
       "model/dense/kernel=unsharded,y"},
      {"force", cli::FlagKind::kBool, "", "overwrite DST if it exists"},
  };
  return *flags;
}

// The layout a tensor is rewritten with, or an error for bad --layout specs.
absl::StatusOr<Layout> TargetLayout(
    const CheckpointIndex::Tensor& t, const Mesh& mesh,
    const std::map<std::string, std::vector<std::string>>& overrides,
    std::map<std::string, bool>* used) {
  for (const auto& [name, specs] : overrides) {
    std::string path = name;
    while (!path.empty() && path.front() == '/') path.erase(path.begin());
    if (name != t.key && path != t.dataset) continue;
    (*used)[name] = true;
    if (specs.size() != t.shape.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--layout for '", t.key, "' has ", specs.size(),
                       " sharding spec(s) but the tensor has ", t.shape.size(),
                       " dimension(s) (shape ", cli::ShapeText(t.shape), ")"));
    }
    absl::StatusOr<Layout> l = Layout::Create(specs, mesh);
    if (!l.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--layout for '", t.key, "': ", l.status().message()));
    }
    return l;
  }
  std::vector<std::string> specs;
  for (const std::string& s : t.layout.sharding_specs()) {
    specs.push_back(mesh.DimIndex(s).has_value() ? s : std::string(kUnsharded));
  }
  return Layout::Create(specs, mesh);
}

// Buffers of one tensor: one per distinct non-empty shard among this rank's
// devices (ShardMap::LocalShards order).
struct Buffers {
  std::vector<std::vector<char>> bytes;
  std::vector<std::vector<std::string>> strings;
  std::vector<void*> shard_data;
};

Buffers Allocate(const ShardMap& map, DType dtype) {
  Buffers b;
  for (int64_t shard : map.LocalShards()) {
    const int64_t n = map.ShardBox(shard).num_elements();
    if (dtype == DType::kString) {
      b.shard_data.push_back(b.strings.emplace_back(n).data());
    } else {
      b.shard_data.push_back(b.bytes.emplace_back(n * DTypeSize(dtype)).data());
    }
  }
  return b;
}

// Runs with MPI initialized; `root` prints.
int Reshard(Communicator& comm, const cli::ParsedArgs& a) {
  const bool root = comm.rank() == 0;
  auto usage = [&](absl::string_view msg) {
    return root ? cli::UsageError(kCmd, msg) : static_cast<int>(cli::kExitUsage);
  };
  auto fail = [&](const absl::Status& s) {
    return root ? cli::ReportError(kCmd, s) : cli::ExitCodeFor(s);
  };
  if (a.positional.size() != 2) return usage("want SRC and DST checkpoint prefixes");
  if (!a.Has("mesh")) return usage("--mesh is required");
  absl::StatusOr<std::vector<MeshDimension>> dims = cli::ParseMeshDims(a.Value("mesh"));
  if (!dims.ok()) return usage(dims.status().message());
  absl::StatusOr<Mesh> mesh = Mesh::Create(*dims, comm.rank(), comm.size());
  if (!mesh.ok()) {
    return usage(absl::StrCat("--mesh ", a.Value("mesh"), " on ", comm.size(),
                              " rank(s): ", mesh.status().message()));
  }
  std::map<std::string, std::vector<std::string>> overrides;
  for (const std::string& text : a.Values("layout")) {
    absl::StatusOr<std::pair<std::string, std::vector<std::string>>> l =
        cli::ParseLayoutFlag(text);
    if (!l.ok()) return usage(l.status().message());
    overrides[l->first] = l->second;
  }
  std::string src = cli::ResolvePrefix(a.positional[0]);
  comm.Broadcast(&src, 0);  // One answer even if ranks see the directory differently.
  const std::string dst = a.positional[1];

  absl::Status exists;
  if (root && !a.Bool("force") && CheckpointExists(dst)) {
    exists = absl::AlreadyExistsError(
        absl::StrCat("checkpoint '", dst, "' exists (use --force to overwrite)"));
  }
  if (absl::Status s = comm.Agree(exists); !s.ok()) return fail(s);
  // Opened once: the tensors listed are the ones read, from one data file.
  absl::StatusOr<std::unique_ptr<CheckpointHandle>> checkpoint =
      CheckpointHandle::Open(comm, src);
  if (!checkpoint.ok()) return fail(checkpoint.status());
  const CheckpointIndex* index = &(*checkpoint)->index();

  std::map<std::string, bool> used;
  std::vector<Layout> layouts;
  for (const CheckpointIndex::Tensor& t : index->tensors()) {
    absl::StatusOr<Layout> l = TargetLayout(t, *mesh, overrides, &used);
    if (!l.ok()) return usage(l.status().message());
    layouts.push_back(*l);
  }
  for (const auto& [name, specs] : overrides) {
    if (!used.count(name)) {
      return fail(absl::NotFoundError(
          absl::StrCat("--layout names '", name,
                       "', which is no key or dataset path of '", src, "'")));
    }
  }

  std::vector<Buffers> buffers;
  std::vector<RestoreTensor> restores;
  std::vector<SaveTensor> saves;
  int64_t total_bytes = 0;
  for (size_t i = 0; i < index->tensors().size(); ++i) {
    const CheckpointIndex::Tensor& t = index->tensors()[i];
    absl::StatusOr<ShardMap> map = ShardMap::Create(layouts[i], t.shape);
    if (!map.ok()) return fail(map.status());
    buffers.push_back(Allocate(*map, t.dtype));
    total_bytes += Box::FromShape(t.shape).num_elements() * DTypeSize(t.dtype);
  }
  for (size_t i = 0; i < index->tensors().size(); ++i) {
    const CheckpointIndex::Tensor& t = index->tensors()[i];
    restores.push_back({t.key, t.dtype, t.shape, layouts[i], {}, buffers[i].shard_data});
    saves.push_back({t.key,
                     t.dataset,
                     t.dtype,
                     t.shape,
                     layouts[i],
                     {},
                     {buffers[i].shard_data.begin(), buffers[i].shard_data.end()}});
  }

  const bool tty = root && cli::StderrIsTerminal();
  cli::ProgressPrinter read_progress("reading (rank 0)", tty);
  IoOptions ropts;
  ropts.progress = [&](int64_t done, int64_t total) {
    read_progress.Update(done, total);
  };
  if (absl::Status s = RestoreTensors(**checkpoint, restores, ropts); !s.ok())
    return fail(s);
  (*checkpoint)->Close();  // All read; the index stays for what DST records.

  const IndexRecord& ix = index->record();
  cli::ProgressPrinter write_progress("writing (rank 0)", tty);
  CheckpointContents contents;
  contents.object_graph = ix.object_graph;
  contents.user_metadata = ix.user_metadata;
  contents.save_counter = ix.save_counter;
  contents.step = ix.step;
  contents.mesh = *mesh;  // Recorded in the index even when SRC has no tensors.
  IoOptions sopts;
  sopts.progress = [&](int64_t done, int64_t total) {
    write_progress.Update(done, total);
  };
  if (absl::Status s = SaveTensors(comm, dst, saves, contents, sopts); !s.ok())
    return fail(s);

  if (root) {
    std::cout << "resharded " << saves.size() << " tensor(s), "
              << cli::HumanBytes(total_bytes) << ", from " << src << " (mesh "
              << index->mesh().ToShortString() << ") to " << dst << " (mesh "
              << mesh->ToShortString() << ") on " << comm.size() << " rank(s)\n";
  }
  return cli::kExitOk;
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
  MpiEnvironment env(nullptr, nullptr);
  int code;
  {
    absl::StatusOr<std::unique_ptr<Communicator>> comm = MpiCommunicator::World();
    if (!comm.ok()) return cli::ReportError(kCmd, comm.status());
    code = Reshard(**comm, *a);
  }  // The communicator is freed before MPI_Finalize.
  return code;
}

}  // namespace meshckpt
