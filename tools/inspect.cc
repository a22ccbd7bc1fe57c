// `meshckpt inspect`: what a checkpoint holds, like TensorFlow's
// inspect_checkpoint / print_tensors_in_checkpoint_file. Serial (one
// process, CheckpointReader); reads only index metadata unless values are
// asked for, and for a summarised tensor only the boxes that are shown.
#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "meshckpt/base/status_macros.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/checkpoint/reader/checkpoint_reader.h"
#include "meshckpt/io/fs/fs.h"
#include "meshckpt/layout/layout.h"
#include "meshckpt/tools/cli.h"
#include "meshckpt/tools/commands.h"
#include "meshckpt/tools/format.h"
#include "meshckpt/tools/json_writer.h"

namespace meshckpt {
namespace {

constexpr char kCmd[] = "inspect";

constexpr char kHelp[] =
    "Usage: meshckpt inspect PREFIX [--tensor NAME]... [--all] [--json]\n"
    "\n"
    "Without flags: the checkpoint's metadata (step, save_counter, time,\n"
    "library version, saving mesh, tensor count, total bytes, user metadata)\n"
    "and one line per tensor: key, dtype, shape, sharding specs of its saved\n"
    "layout, bytes, and its HDF5 dataset path when that differs from the key.\n"
    "With --tensor or --all: the values, printed like numpy (arrays of more\n"
    "than --threshold elements show the first and last --edgeitems entries of\n"
    "each dimension, with '...'); only the shown part of a tensor is read.\n"
    "Every value read is checked against the checksums taken at save time.\n"
    "\n"
    "PREFIX is the checkpoint path without .index/.h5 (a path ending in\n"
    ".index or .h5 is accepted too); a directory means its latest checkpoint.\n"
    "NAME is a full key or a dataset path (model/dense/kernel for the key\n"
    "model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE).\n"
    "\n"
    "Runs in one process; no mpirun needed.\n"
    "\n"
    "Flags:\n";

const std::vector<cli::FlagSpec>& Flags() {
  static const auto* flags = new std::vector<cli::FlagSpec>{
      {"tensor", cli::FlagKind::kRepeated, "NAME",
       "print this tensor's values (repeatable)"},
      {"all", cli::FlagKind::kBool, "", "print the values of every tensor"},
      {"json", cli::FlagKind::kBool, "",
       "print a JSON document instead: metadata and per tensor key, dataset,\n"
       "dtype, shape, layout, sharding_specs, bytes (null for strings),\n"
       "num_chunks, and with --tensor/--all its complete values as nested\n"
       "arrays (NaN/Infinity as strings, complex as [re, im], strings as\n"
       "Latin-1 JSON strings, one code point per byte)"},
      {"threshold", cli::FlagKind::kValue, "N",
       "summarise text values of tensors with more than N elements\n"
       "(default 1000; -1: never)"},
      {"edgeitems", cli::FlagKind::kValue, "N",
       "entries shown at each end of a summarised dimension (default 3)"},
  };
  return *flags;
}

std::vector<std::string> SpecsOf(const VariableInfo& v) {
  absl::StatusOr<Layout> layout = Layout::FromString(v.layout);
  if (!layout.ok()) return {};
  return layout->sharding_specs();
}

// "[x,unsharded]", plus the tensor's own mesh when it is not the
// checkpoint's (e.g. values saved per rank): "[ranks] (mesh ranks=3)".
std::string SpecsText(const VariableInfo& v, const Mesh& checkpoint_mesh) {
  std::string text = absl::StrCat("[", absl::StrJoin(SpecsOf(v), ","), "]");
  absl::StatusOr<Layout> layout = Layout::FromString(v.layout);
  if (!layout.ok()) return text;
  std::vector<std::string> dims, index_dims;
  for (const MeshDimension& d : layout->mesh().dims())
    dims.push_back(absl::StrCat(d.name, "=", d.size));
  for (const MeshDimension& d : checkpoint_mesh.dims()) {
    index_dims.push_back(absl::StrCat(d.name, "=", d.size));
  }
  if (dims != index_dims)
    absl::StrAppend(&text, " (mesh ", absl::StrJoin(dims, ","), ")");
  return text;
}

// The key a user's NAME means: the key itself, or the tensor stored at that
// dataset path.
absl::StatusOr<VariableInfo> FindTensor(const CheckpointReader& reader,
                                        const std::string& name) {
  if (reader.HasTensor(name)) return reader.GetVariableInfo(name);
  std::string path = name;
  while (!path.empty() && path.front() == '/') path.erase(path.begin());
  for (const VariableInfo& v : reader.ListVariables()) {
    if (v.dataset == path) return v;
  }
  return absl::NotFoundError(absl::StrCat(
      "no tensor with key or dataset path '", name, "' in checkpoint '", reader.prefix(),
      "' (run 'meshckpt inspect ", reader.prefix(), "' for the list)"));
}

// The elements of `v` that the text shows: whole when not summarised, else
// the displayed corner boxes, read one by one and packed together.
absl::StatusOr<TensorData> ReadDisplayed(const CheckpointReader& reader,
                                         const VariableInfo& v,
                                         const format::FormatOptions& options) {
  if (!format::IsSummarised(v.shape, options)) return reader.ReadTensor(v.key);
  const auto ranges = format::DisplayedRanges(v.shape, options);
  TensorData out;
  out.dtype = v.dtype;
  out.shape = format::DisplayedShape(v.shape, options);
  const int rank = static_cast<int>(v.shape.size());
  const int64_t esize = DTypeSize(v.dtype);
  if (v.dtype == DType::kString) {
    out.strings.resize(out.num_elements());
  } else {
    out.bytes.resize(out.num_elements() * esize);
  }
  std::vector<int64_t> cstride(rank, 1);
  for (int d = rank - 2; d >= 0; --d) cstride[d] = cstride[d + 1] * out.shape[d + 1];
  std::vector<size_t> pick(rank, 0);  // Which range of each dimension.
  while (true) {
    std::vector<int64_t> origin(rank), shape(rank), coff(rank);
    for (int d = 0; d < rank; ++d) {
      origin[d] = ranges[d][pick[d]].first;
      shape[d] = ranges[d][pick[d]].second - origin[d];
      coff[d] = pick[d] == 0 ? 0 : ranges[d][0].second - ranges[d][0].first;
    }
    MESHCKPT_ASSIGN_OR_RETURN(Box box, Box::Create(origin, shape));
    MESHCKPT_ASSIGN_OR_RETURN(TensorData part, reader.ReadBox(v.key, box));
    std::vector<int64_t> idx(rank, 0);
    for (int64_t k = 0; k < part.num_elements(); ++k) {
      int64_t dst = 0;
      for (int d = 0; d < rank; ++d) dst += (coff[d] + idx[d]) * cstride[d];
      if (v.dtype == DType::kString) {
        out.strings[dst] = std::move(part.strings[k]);
      } else {
        std::copy_n(part.bytes.begin() + k * esize, esize,
                    out.bytes.begin() + dst * esize);
      }
      for (int d = rank - 1; d >= 0; --d) {
        if (++idx[d] < shape[d]) break;
        idx[d] = 0;
      }
    }
    int d = rank - 1;
    for (; d >= 0; --d) {
      if (++pick[d] < ranges[d].size()) break;
      pick[d] = 0;
    }
    if (d < 0) break;
  }
  return out;
}

void PrintTable(const std::vector<VariableInfo>& vars, const Mesh& mesh) {
  bool show_dataset = false;
  std::vector<std::vector<std::string>> rows = {
      {"KEY", "DTYPE", "SHAPE", "SHARDING", "BYTES", "DATASET"}};
  for (const VariableInfo& v : vars) {
    show_dataset |= v.dataset != v.key;
    rows.push_back({v.key, std::string(DTypeName(v.dtype)), cli::ShapeText(v.shape),
                    SpecsText(v, mesh),
                    v.dtype == DType::kString ? "-" : absl::StrCat(v.bytes), v.dataset});
  }
  const size_t ncol = show_dataset ? 6 : 5;
  std::vector<size_t> width(ncol, 0);
  for (const auto& r : rows) {
    for (size_t c = 0; c < ncol; ++c) width[c] = std::max(width[c], r[c].size());
  }
  for (const auto& r : rows) {
    std::string line;
    for (size_t c = 0; c < ncol; ++c) {
      const std::string& cell = r[c];
      const std::string pad(width[c] - cell.size(), ' ');
      // Numbers right-aligned, text left-aligned.
      absl::StrAppend(&line, c == 4 ? pad + cell : cell + (c + 1 < ncol ? pad : ""),
                      c + 1 < ncol ? "  " : "");
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::cout << line << "\n";
  }
}

struct Summary {
  int64_t total_bytes = 0;
  int num_strings = 0;
  int64_t data_file_bytes = -1;
  std::string mesh;
};

Summary Summarize(const CheckpointReader& reader, const std::vector<VariableInfo>& vars) {
  Summary s;
  for (const VariableInfo& v : vars) {
    if (v.dtype == DType::kString) ++s.num_strings;
    s.total_bytes += v.bytes;
  }
  // Our one .h5, or every shard of a TensorFlow bundle.
  for (const std::string& file : reader.data_files()) {
    absl::StatusOr<int64_t> size = FileSize(file);
    if (!size.ok()) continue;
    s.data_file_bytes = std::max<int64_t>(s.data_file_bytes, 0) + *size;
  }
  s.mesh = reader.index().mesh.ToShortString();
  return s;
}

void PrintMetadata(const CheckpointReader& reader,
                   const std::vector<VariableInfo>& vars) {
  const IndexRecord& ix = reader.index();
  const Summary s = Summarize(reader, vars);
  std::cout << "checkpoint:       " << reader.prefix() << "\n";
  if (reader.format() == CheckpointFormat::kTensorFlow) {
    std::cout << "format:           TensorFlow TensorBundle V2, "
              << reader.data_files().size() << " data file(s)\n";
  }
  std::cout << "step:             " << ix.step << "\n"
            << "save_counter:     " << ix.save_counter << "\n"
            << "time:             " << cli::IsoTimeUtc(ix.timestamp) << "\n"
            << "library version:  " << ix.library_version << "\n"
            << "format version:   producer " << ix.version.producer << ", min_consumer "
            << ix.version.min_consumer << "\n"
            << "mesh:             " << s.mesh << "\n"
            << "tensors:          " << vars.size() << "\n"
            << "total bytes:      " << s.total_bytes << " ("
            << cli::HumanBytes(s.total_bytes) << ")";
  if (s.num_strings > 0) std::cout << " + " << s.num_strings << " string tensor(s)";
  std::cout << "\n";
  if (s.data_file_bytes >= 0) {
    std::cout << "data file:        " << s.data_file_bytes << " bytes ("
              << cli::HumanBytes(s.data_file_bytes) << ")\n";
  }
  std::cout << "object graph:     " << static_cast<int64_t>(ix.object_graph.nodes.size())
            << " node(s)\n";
  for (const UnreadableTensor& u : reader.Unreadable()) {
    std::cout << "not readable:     " << u.key << " (" << u.dtype << " "
              << cli::ShapeText(u.shape) << ", listed only)\n";
  }
  if (!ix.user_metadata.empty()) {
    std::cout << "user metadata:\n";
    for (const auto& [k, val] : ix.user_metadata)
      std::cout << "  " << k << ": " << val << "\n";
  }
  std::cout << "\n";
  PrintTable(vars, ix.mesh);
}

absl::Status PrintValuesText(const CheckpointReader& reader,
                             const std::vector<VariableInfo>& selected,
                             const format::FormatOptions& options) {
  bool first = true;
  for (const VariableInfo& v : selected) {
    MESHCKPT_ASSIGN_OR_RETURN(TensorData data, ReadDisplayed(reader, v, options));
    MESHCKPT_ASSIGN_OR_RETURN(std::string text,
                              format::FormatTensor(data, v.shape, options));
    if (!first) std::cout << "\n";
    first = false;
    std::cout << "tensor_name:  " << v.key << "\n"
              << "dtype: " << DTypeName(v.dtype) << "  shape: " << cli::ShapeText(v.shape)
              << "  sharding: " << SpecsText(v, reader.index().mesh) << "\n"
              << text << "\n";
  }
  return absl::OkStatus();
}

absl::Status PrintJson(const CheckpointReader& reader,
                       const std::vector<VariableInfo>& vars,
                       const std::vector<VariableInfo>& listed, bool with_values) {
  const IndexRecord& ix = reader.index();
  const Summary s = Summarize(reader, vars);
  JsonWriter w;
  w.BeginObject();
  w.Key("checkpoint").String(reader.prefix());
  w.Key("step").Int(ix.step);
  w.Key("save_counter").Int(ix.save_counter);
  w.Key("timestamp").Double(ix.timestamp);
  w.Key("time").String(cli::IsoTimeUtc(ix.timestamp));
  w.Key("library_version").String(ix.library_version);
  w.Key("format_version").BeginObject().Key("producer").Int(ix.version.producer);
  w.Key("min_consumer").Int(ix.version.min_consumer).EndObject();
  w.Key("mesh").String(s.mesh);
  w.Key("mesh_dims").BeginArray();
  for (const MeshDimension& d : ix.mesh.dims()) {
    w.BeginObject().Key("name").String(d.name).Key("size").Int(d.size).EndObject();
  }
  w.EndArray();
  w.Key("num_tensors").Int(static_cast<int64_t>(vars.size()));
  w.Key("total_bytes").Int(s.total_bytes);
  w.Key("num_string_tensors").Int(s.num_strings);
  if (s.data_file_bytes >= 0) w.Key("data_file_bytes").Int(s.data_file_bytes);
  w.Key("object_graph_nodes").Int(static_cast<int64_t>(ix.object_graph.nodes.size()));
  w.Key("user_metadata").BeginObject();
  for (const auto& [k, val] : ix.user_metadata) w.Key(k).String(val);
  w.EndObject();
  w.Key("tensors").BeginArray();
  for (const VariableInfo& v : listed) {
    w.BeginObject();
    w.Key("key").String(v.key).Key("dataset").String(v.dataset);
    w.Key("dtype").String(DTypeName(v.dtype));
    w.Key("shape").BeginArray();
    for (int64_t d : v.shape) w.Int(d);
    w.EndArray();
    w.Key("layout").String(v.layout);
    w.Key("sharding_specs").BeginArray();
    for (const std::string& spec : SpecsOf(v)) w.String(spec);
    w.EndArray();
    if (v.dtype == DType::kString) {
      w.Key("bytes").Null();
    } else {
      w.Key("bytes").Int(v.bytes);
    }
    w.Key("num_chunks").Int(v.num_chunks);
    if (with_values) {
      MESHCKPT_ASSIGN_OR_RETURN(TensorData data, reader.ReadTensor(v.key));
      if (v.dtype == DType::kString) w.Key("string_encoding").String("latin-1");
      w.Key("values").Raw(format::JsonValues(data));
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  std::cout << w.str() << "\n";
  return absl::OkStatus();
}

}  // namespace

int RunInspect(const std::vector<std::string>& args) {
  absl::StatusOr<cli::ParsedArgs> a = cli::ParseArgs(args, Flags());
  if (!a.ok()) return cli::UsageError(kCmd, a.status().message());
  if (a->help) {
    std::cout << kHelp << cli::FlagsHelp(Flags()) << "\n" << cli::kExitCodesHelp;
    return cli::kExitOk;
  }
  if (a->positional.size() != 1) {
    return cli::UsageError(kCmd, "want exactly one checkpoint PREFIX");
  }
  format::FormatOptions options;
  if (a->Has("threshold")) {
    absl::StatusOr<int64_t> t = cli::ParseInt64("threshold", a->Value("threshold"));
    if (!t.ok()) return cli::UsageError(kCmd, t.status().message());
    options.threshold = *t < 0 ? -1 : *t;
  }
  if (a->Has("edgeitems")) {
    absl::StatusOr<int64_t> e = cli::ParseInt64("edgeitems", a->Value("edgeitems"));
    if (!e.ok() || *e < 1)
      return cli::UsageError(kCmd, "--edgeitems wants an integer >= 1");
    options.edgeitems = *e;
  }
  const std::string prefix = cli::ResolvePrefix(a->positional[0]);
  absl::StatusOr<std::unique_ptr<CheckpointReader>> reader =
      CheckpointReader::Open(prefix);
  if (!reader.ok()) return cli::ReportError(kCmd, reader.status());
  const std::vector<VariableInfo> vars = (*reader)->ListVariables();

  std::vector<VariableInfo> selected;
  if (a->Bool("all")) {
    selected = vars;
  } else {
    for (const std::string& name : a->Values("tensor")) {
      absl::StatusOr<VariableInfo> v = FindTensor(**reader, name);
      if (!v.ok()) return cli::ReportError(kCmd, v.status());
      selected.push_back(*v);
    }
  }
  const bool with_values = a->Bool("all") || a->Has("tensor");
  absl::Status s;
  if (a->Bool("json")) {
    s = PrintJson(**reader, vars, with_values ? selected : vars, with_values);
  } else if (with_values) {
    s = PrintValuesText(**reader, selected, options);
  } else {
    PrintMetadata(**reader, vars);
  }
  std::cout.flush();
  if (!s.ok()) return cli::ReportError(kCmd, s);
  return cli::kExitOk;
}

}  // namespace meshckpt
