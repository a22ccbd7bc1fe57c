// `meshckpt convert SRC DST`: a checkpoint into the other format. meshckpt
// to TensorFlow is written here, one tensor at a time through a bounded
// buffer; TensorFlow to meshckpt is `meshckpt reshard` with a TensorFlow
// source (RunReshard, which opens either format).
//
// TensorFlow output: `<DST>.index` + `<DST>.data-00000-of-00001` through
// tf::BundleWriter (TF's key names, header, CRC32Cs, commit: data file, then
// the index). Every key keeps its name, so object-based keys
// (`model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE`) and Saver names
// (`dense/kernel`) both mean in TensorFlow what they mean here. With an
// object graph, `_CHECKPOINTABLE_OBJECT_GRAPH` is written from it (or copied
// when the source already holds one, as a converted TF checkpoint does), and
// the save counter is kept where TF keeps it (`save_counter/.ATTRIBUTES/
// VARIABLE_VALUE`, an int64 scalar child of the root).
//
// Memory: fixed-size tensors are read in row-major pieces of at most
// --buffer-bytes (whole rows of the innermost dimensions that fit, at least
// one element) and streamed into the bundle, CRC32C computed on the way;
// string tensors are read whole (TF writes their lengths before their bytes).
#include <algorithm>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "meshckpt/base/status_macros.h"
#include "meshckpt/checkpoint/engine/tensorflow_bridge.h"
#include "meshckpt/checkpoint/reader/checkpoint_reader.h"
#include "meshckpt/checkpoint/state/checkpoint_state.h"
#include "meshckpt/tfbundle/bundle_reader.h"
#include "meshckpt/tfbundle/bundle_writer.h"
#include "meshckpt/tools/cli.h"
#include "meshckpt/tools/commands.h"

namespace meshckpt {
namespace {

constexpr char kCmd[] = "convert";
constexpr char kSaveCounterKey[] = "save_counter/.ATTRIBUTES/VARIABLE_VALUE";
constexpr int64_t kDefaultBufferBytes = int64_t{64} << 20;

constexpr char kHelp[] =
    "Usage: meshckpt convert SRC DST [--to meshckpt|tensorflow] [--force]\n"
    "                        [--buffer-bytes N]\n"
    "       [mpirun -n N] meshckpt convert TF_SRC DST --mesh NAME=SIZE[,...]\n"
    "                        [--layout KEY=SPEC[,SPEC...]]... [--force]\n"
    "\n"
    "Converts checkpoint SRC into the other format, chosen by what SRC is\n"
    "(--to overrides):\n"
    "  meshckpt SRC -> TensorFlow: writes DST.index and DST.data-00000-of-00001,\n"
    "    a TensorBundle V2 that tf.train.load_checkpoint, tf.train.Checkpoint\n"
    "    (object-based keys) and tf.compat.v1.train.Saver (names) read. Every\n"
    "    key, dtype, shape and value is kept bit for bit; the object graph\n"
    "    becomes _CHECKPOINTABLE_OBJECT_GRAPH and the save counter\n"
    "    save_counter/.ATTRIBUTES/VARIABLE_VALUE. The step, user metadata and\n"
    "    collections have no place in a bundle and are left out (listed).\n"
    "    Runs in one process; under mpirun only rank 0 works.\n"
    "  TensorFlow SRC -> meshckpt: 'meshckpt reshard' with a TensorFlow\n"
    "    source: --mesh (required) and --layout as there, under mpirun with\n"
    "    any number of ranks that divides the mesh.\n"
    "A meshckpt -> meshckpt convert is a reshard.\n"
    "\n"
    "Flags:\n";

const std::vector<cli::FlagSpec>& Flags() {
  static const auto* flags = new std::vector<cli::FlagSpec>{
      {"to", cli::FlagKind::kValue, "FORMAT",
       "meshckpt or tensorflow (default: the format SRC is not)"},
      {"mesh", cli::FlagKind::kValue, "NAME=SIZE,...",
       "the mesh of a meshckpt DST (required for it), e.g. x=2,y=4"},
      {"layout", cli::FlagKind::kRepeated, "KEY=SPEC,...",
       "layout of one tensor of a meshckpt DST (repeatable), as for reshard"},
      {"force", cli::FlagKind::kBool, "", "overwrite DST if it exists"},
      {"buffer-bytes", cli::FlagKind::kValue, "N",
       "bytes of tensor data held at once when writing TensorFlow\n"
       "(default 64 MiB; at least one element is read at a time)"},
  };
  return *flags;
}

// Whether this process prints: not a rank other than 0 of an MPI job (the
// launchers' rank variables; MPI is not initialized here).
bool IsRankZeroOrAlone() {
  for (const char* v :
       {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"}) {
    if (const char* rank = std::getenv(v)) return std::string(rank) == "0";
  }
  return true;
}

// Calls `fn` with the row-major boxes that tile a tensor of `shape` in
// storage order, each at most `budget` bytes (of `element_size`-byte
// elements) unless one element is more: whole rows of the innermost
// dimensions that fit, several of them along the next dimension out.
absl::Status ForEachPiece(const std::vector<int64_t>& shape, int64_t element_size,
                          int64_t budget, const std::function<absl::Status(Box)>& fn) {
  const int rank = static_cast<int>(shape.size());
  // The outermost dimension d whose rows (dimensions d+1...) fit.
  int d = rank - 1;
  int64_t row = element_size;
  while (d > 0 && shape[d] <= budget / row) row *= shape[d--];
  const int64_t rows = std::max<int64_t>(1, std::min<int64_t>(shape[d], budget / row));
  std::vector<int64_t> outer(d, 0);  // index over dimensions 0..d-1
  while (true) {
    for (int64_t j = 0; j < shape[d]; j += rows) {
      std::vector<int64_t> origin = outer, size(d, 1);
      origin.push_back(j);
      size.push_back(std::min(rows, shape[d] - j));
      for (int k = d + 1; k < rank; ++k) {
        origin.push_back(0);
        size.push_back(shape[k]);
      }
      MESHCKPT_RETURN_IF_ERROR(fn(Box::Unchecked(std::move(origin), std::move(size))));
    }
    int k = d - 1;
    while (k >= 0 && ++outer[k] == shape[k]) outer[k--] = 0;
    if (k < 0) return absl::OkStatus();
  }
}

// One tensor of `reader` into `writer` under the same key.
absl::Status CopyTensor(const CheckpointReader& reader, const VariableInfo& v,
                        int64_t budget, tf::BundleWriter& writer,
                        const std::function<void(int64_t)>& progress) {
  if (v.dtype == DType::kString) {
    MESHCKPT_ASSIGN_OR_RETURN(TensorData t, reader.ReadTensor(v.key));
    MESHCKPT_ASSIGN_OR_RETURN(tf::TensorValue value, tf::TensorValue::FromStrings(
                                                         v.shape, std::move(t.strings)));
    return writer.Add(v.key, value);
  }
  MESHCKPT_RETURN_IF_ERROR(
      writer.BeginEntry(v.key, internal::DTypeToTf(v.dtype), v.shape));
  if (v.bytes > 0) {
    auto piece = [&](const Box& box) -> absl::Status {
      MESHCKPT_ASSIGN_OR_RETURN(TensorData t, reader.ReadBox(v.key, box));
      MESHCKPT_RETURN_IF_ERROR(
          writer.AppendBytes(absl::string_view(t.bytes.data(), t.bytes.size())));
      progress(static_cast<int64_t>(t.bytes.size()));
      return absl::OkStatus();
    };
    if (v.shape.empty()) {
      MESHCKPT_RETURN_IF_ERROR(piece(Box::FromShape({})));
    } else {
      MESHCKPT_RETURN_IF_ERROR(ForEachPiece(v.shape, DTypeSize(v.dtype), budget, piece));
    }
  }
  return writer.EndEntry();
}

struct Converted {
  int tensors = 0;
  int64_t bytes = 0;
  bool object_graph = false;
  std::vector<std::string> left_out;  // what a bundle has no place for
};

absl::StatusOr<Converted> WriteTensorFlow(const std::string& src, const std::string& dst,
                                          int64_t budget, bool tty) {
  MESHCKPT_ASSIGN_OR_RETURN(std::unique_ptr<CheckpointReader> reader,
                            CheckpointReader::Open(src));
  const IndexRecord& record = reader->index();
  const std::vector<VariableInfo> vars = reader->ListVariables();
  Converted out;
  for (const VariableInfo& v : vars) out.bytes += v.bytes;

  MESHCKPT_ASSIGN_OR_RETURN(std::unique_ptr<tf::BundleWriter> writer,
                            tf::BundleWriter::Create(dst));
  cli::ProgressPrinter printer("converting", tty);
  int64_t done = 0;
  auto progress = [&](int64_t n) { printer.Update(done += n, out.bytes); };
  for (const VariableInfo& v : vars) {
    MESHCKPT_RETURN_IF_ERROR(CopyTensor(*reader, v, budget, *writer, progress));
    ++out.tensors;
  }

  // The object graph: the source's own TF graph when it has one (it keeps
  // what ours drops: slot variables, full names), else ours.
  if (!record.object_graph.nodes.empty() && !reader->HasTensor(tf::kObjectGraphKey)) {
    ObjectGraph graph = record.object_graph;
    bool has_counter = false;
    for (const ObjectGraph::Child& c : graph.nodes[0].children) {
      has_counter |= c.local_name == "save_counter";
    }
    if (!has_counter && record.save_counter != 0 && !reader->HasTensor(kSaveCounterKey)) {
      // TF's place for it: an int64 scalar, child `save_counter` of the root.
      graph.nodes[0].children.push_back(
          {static_cast<int>(graph.nodes.size()), "save_counter"});
      graph.nodes.push_back({{}, {{"VARIABLE_VALUE", kSaveCounterKey}}});
      const int64_t counter = record.save_counter;  // little-endian on our hosts
      MESHCKPT_ASSIGN_OR_RETURN(
          tf::TensorValue value,
          tf::TensorValue::FromBytes(
              tf::TfDType::kInt64, {},
              std::string(reinterpret_cast<const char*>(&counter), sizeof(counter))));
      MESHCKPT_RETURN_IF_ERROR(writer->Add(kSaveCounterKey, value));
      ++out.tensors;
    }
    MESHCKPT_ASSIGN_OR_RETURN(tf::ObjectGraph tf_graph, internal::ObjectGraphToTf(graph));
    MESHCKPT_ASSIGN_OR_RETURN(tf::TensorValue value,
                              tf::TensorValue::FromStrings({}, {tf_graph.Serialize()}));
    MESHCKPT_RETURN_IF_ERROR(writer->Add(tf::kObjectGraphKey, value));
    out.object_graph = true;
  } else {
    out.object_graph = reader->HasTensor(tf::kObjectGraphKey);
  }
  MESHCKPT_RETURN_IF_ERROR(writer->Finish());

  if (record.step != 0) out.left_out.push_back(absl::StrCat("step ", record.step));
  if (record.object_graph.nodes.empty() && record.save_counter != 0) {
    out.left_out.push_back(absl::StrCat("save_counter ", record.save_counter));
  }
  for (const auto& [key, value] : record.user_metadata) {
    out.left_out.push_back(absl::StrCat("user metadata '", key, "'"));
  }
  return out;
}

}  // namespace

int RunConvert(const std::vector<std::string>& args) {
  const bool print = IsRankZeroOrAlone();
  absl::StatusOr<cli::ParsedArgs> a = cli::ParseArgs(args, Flags());
  if (!a.ok())
    return print ? cli::UsageError(kCmd, a.status().message()) : cli::kExitUsage;
  if (a->help) {
    if (print)
      std::cout << kHelp << cli::FlagsHelp(Flags()) << "\n" << cli::kExitCodesHelp;
    return cli::kExitOk;
  }
  auto usage = [&](absl::string_view msg) {
    return print ? cli::UsageError(kCmd, msg) : static_cast<int>(cli::kExitUsage);
  };
  if (a->positional.size() != 2) return usage("want SRC and DST checkpoint prefixes");
  const std::string to = a->Value("to");
  if (!to.empty() && to != "meshckpt" && to != "tensorflow") {
    return usage(absl::StrCat("--to must be 'meshckpt' or 'tensorflow', not '", to, "'"));
  }
  const std::string src = cli::ResolvePrefix(a->positional[0]);
  const std::string dst = a->positional[1];
  const bool from_tf = internal::IsTensorFlowCheckpoint(src);
  const bool to_tf = to.empty() ? !from_tf : to == "tensorflow";

  if (!to_tf) {
    // The reshard engine reads either format; its flags are convert's.
    if (!a->Has("mesh")) {
      return usage("writing a meshckpt checkpoint needs --mesh NAME=SIZE[,...]");
    }
    if (a->Has("buffer-bytes")) {
      return usage("--buffer-bytes applies to TensorFlow output only");
    }
    std::vector<std::string> reshard = {src, dst, "--mesh", a->Value("mesh")};
    for (const std::string& l : a->Values("layout")) {
      reshard.push_back("--layout");
      reshard.push_back(l);
    }
    if (a->Bool("force")) reshard.push_back("--force");
    return RunReshard(reshard);
  }

  if (a->Has("mesh") || a->Has("layout")) {
    return usage("--mesh and --layout apply to meshckpt output only");
  }
  int64_t budget = kDefaultBufferBytes;
  if (a->Has("buffer-bytes")) {
    absl::StatusOr<int64_t> n = cli::ParseInt64("buffer-bytes", a->Value("buffer-bytes"));
    if (!n.ok()) return usage(n.status().message());
    if (*n <= 0) return usage("--buffer-bytes must be positive");
    budget = *n;
  }
  // One writer: under mpirun, ranks other than 0 have nothing to do.
  if (!print) return cli::kExitOk;
  if (src == dst) {
    return cli::ReportError(kCmd, absl::InvalidArgumentError(absl::StrCat(
                                      "SRC and DST are the same prefix '", src, "'")));
  }
  if (!a->Bool("force") && CheckpointExists(dst)) {
    return cli::ReportError(
        kCmd, absl::AlreadyExistsError(absl::StrCat(
                  "checkpoint '", dst, "' exists (use --force to overwrite)")));
  }
  absl::StatusOr<Converted> c =
      WriteTensorFlow(src, dst, budget, cli::StderrIsTerminal());
  if (!c.ok()) return cli::ReportError(kCmd, c.status());
  std::cout << "converted " << c->tensors << " tensor(s), " << cli::HumanBytes(c->bytes)
            << ", from " << src << " (meshckpt) to " << tf::IndexFilename(dst) << " + "
            << tf::DataFilename(dst, 0, 1) << " (TensorFlow"
            << (c->object_graph ? ", with its object graph" : ", name-based") << ")\n";
  if (!c->left_out.empty()) {
    std::cout << "not in a TensorFlow bundle, left out: "
              << absl::StrJoin(c->left_out, ", ") << "\n";
  }
  return cli::kExitOk;
}

}  // namespace meshckpt
