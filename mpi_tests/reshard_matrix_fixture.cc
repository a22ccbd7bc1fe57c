// The resharding matrix's fixture (reshard_matrix_fixture.h): options,
// tensors, configurations, checkpoint names and the checked restore.
#include "mpi_tests/reshard_matrix_fixture.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "meshckpt/base/dtype.h"

namespace meshckpt::reshard_matrix {
namespace {

namespace fs = std::filesystem;

std::string DimsName(const std::vector<MeshDimension>& dims) {
  std::string s;
  for (const MeshDimension& d : dims) absl::StrAppend(&s, d.name, d.size);
  return s;
}

Config Fixed(std::vector<MeshDimension> dims, Style style) {
  Config c;
  c.name = absl::StrCat(DimsName(dims), "-", test::StyleName(style));
  c.dims = std::move(dims);
  c.style = style;
  return c;
}
Config Mixed(std::vector<MeshDimension> dims, int offset) {
  Config c;
  c.name = absl::StrCat(DimsName(dims), "-mixed", offset);
  c.dims = std::move(dims);
  c.mixed = true;
  c.offset = offset;
  return c;
}

}  // namespace

using test::DeviceBuffers;
using test::SpecsFor;
using test::TensorSpec;

// ---------------------------------------------------------------- options

const MatrixOptions& Options() {
  static const MatrixOptions* opts = [] {
    auto* o = new MatrixOptions;
    if (const char* e = std::getenv("MESHCKPT_RESHARD_DIR")) o->dir = e;
    if (const char* e = std::getenv("MESHCKPT_RESHARD_PHASE")) o->phase = e;
    std::string expect;
    if (const char* e = std::getenv("MESHCKPT_RESHARD_EXPECT_NP")) expect = e;
    for (const std::string& arg : ::testing::internal::GetArgvs()) {
      absl::string_view a = arg;
      if (absl::ConsumePrefix(&a, "--dir="))
        o->dir = std::string(a);
      else if (absl::ConsumePrefix(&a, "--phase="))
        o->phase = std::string(a);
      else if (absl::ConsumePrefix(&a, "--expect-np="))
        expect = std::string(a);
    }
    for (absl::string_view part : absl::StrSplit(expect, ',', absl::SkipEmpty())) {
      int n = 0;
      if (absl::SimpleAtoi(part, &n)) o->expect_np.push_back(n);
    }
    return o;
  }();
  return *opts;
}

bool PhaseSaves() { return Options().phase == "save" || Options().phase == "all"; }
bool PhaseAll() { return Options().phase == "all"; }
bool PhaseRestore() { return Options().phase == "restore"; }

// ------------------------------------------------------------- the tensors

const std::vector<TensorSpec>& Tensors() {
  static const std::vector<TensorSpec>* specs = [] {
    auto* v = new std::vector<TensorSpec>;
    for (DType d : AllDTypes()) {  // Every dtype on an uneven 13x7.
      v->push_back({absl::StrCat("dtypes/", DTypeName(d)), d, {13, 7}});
    }
    v->push_back({"shapes/vec17", DType::kFloat32, {17}});
    v->push_back({"shapes/vec17_str", DType::kString, {17}});
    v->push_back({"shapes/scalar_f64", DType::kFloat64, {}});
    v->push_back({"shapes/scalar_str", DType::kString, {}});
    v->push_back({"shapes/scalar_bf16", DType::kBfloat16, {}});
    v->push_back({"shapes/zero_rows", DType::kFloat32, {0, 4}});
    v->push_back({"shapes/zero_mid_str", DType::kString, {3, 0, 2}});
    v->push_back({"shapes/zero_vec_i8", DType::kInt8, {0}});
    v->push_back({"shapes/empty_shards", DType::kInt32, {2, 5}});
    v->push_back({"shapes/empty_shards_str", DType::kString, {2, 5}});
    v->push_back({"shapes/empty_shards_c128", DType::kComplex128, {2, 5}});
    v->push_back({"shapes/tiny_bool", DType::kBool, {3}});
    v->push_back({"shapes/cube", DType::kFloat32, {5, 4, 3}});
    v->push_back({"shapes/cube_u16", DType::kUint16, {3, 11, 2}});
    v->push_back({"shapes/big_f64", DType::kFloat64, {129, 65}});
    v->push_back({"shapes/wide_i64", DType::kInt64, {2, 301}});
    v->push_back({"shapes/large_f32", DType::kFloat32, {257, 131}});  // 132 KB
    v->push_back({"model/dense/kernel", DType::kFloat32, {17, 13}});
    v->push_back({"model/dense/bias", DType::kFloat32, {13}});
    v->push_back({"model/embedding/vocab", DType::kString, {31, 2}});
    v->push_back({"model/layer_norm/scale", DType::kBfloat16, {19}});
    v->push_back({"model/layer_norm/offset", DType::kFloat16, {19}});
    return v;
  }();
  return *specs;
}

std::string TensorSetFingerprint() {
  std::string all;
  for (const TensorSpec& t : Tensors()) {
    absl::StrAppend(&all, t.key, ":", static_cast<int>(t.dtype), ":",
                    absl::StrJoin(t.shape, ","), ";");
  }
  return absl::StrCat(absl::Hex(test::KeyHash(all)));
}

// ---------------------------------------------------------- configurations

std::vector<Config> SaveConfigs(int np) {
  std::vector<Config> out;
  // 1-D mesh, one device per rank, every style somewhere, tiny tiles.
  out.push_back(Mixed({{"x", np}}, 0));
  out.back().tile_bytes = 256;
  // 2-D mesh, 3 devices per rank, both dims sharded, collective transfers.
  out.push_back(Fixed({{"a", np}, {"b", 3}}, Style::kGrid));
  out.back().mode = TransferMode::kCollective;
  out.back().device_type = "GPU";  // Restored onto CPU meshes.
  out.back().mesh_name = "train";
  // 8 devices (on 1, 2, 4 ranks) or 6 (on 3), 2-D, mixed, independent
  // MPI-IO (no chunk locations in the index: direct restores ask HDF5).
  if (np == 3) {
    out.push_back(Mixed({{"x", 3}, {"y", 2}}, 2));
  } else {
    out.push_back(Mixed({{"x", 2}, {"y", 4}}, 2));
  }
  out.back().tile_bytes = 512;
  out.back().mode = TransferMode::kIndependent;
  // Everything replicated over 2 devices per rank: writers must spread.
  out.push_back(Fixed({{"r", np}, {"s", 2}}, Style::kReplicated));
  out.back().tile_bytes = 4096;
  out.back().mode = TransferMode::kCollective;
  // Many devices on a 1-D mesh: x=6 on 1..3 ranks, x=8 on 4; last dims split.
  out.push_back(Fixed({{"x", np == 4 ? 8 : 6}}, Style::kCols));
  out.back().tile_bytes = 100;  // Not a multiple of any element size.
  return out;
}

std::vector<Config> TargetConfigs(int np) {
  std::vector<Config> out;
  out.push_back(Fixed({{"x", np}}, Style::kRows));
  out.push_back(Fixed({{"a", np}, {"b", 3}}, Style::kTransposed));
  out.back().mode = TransferMode::kIndependent;  // Read through MPI-IO.
  if (np == 3) {
    out.push_back(Fixed({{"y", 3}, {"x", 2}}, Style::kGrid));
  } else {
    out.push_back(Fixed({{"x", 2}, {"y", 4}}, Style::kCols));
  }
  out.push_back(Fixed({{"x", 2 * np}}, Style::kReplicated));
  out.push_back(Mixed({{"p", 1}, {"q", 2 * np}, {"r", 2}}, 1));
  return out;
}

std::string PrefixFor(int np, const Config& c) {
  return (fs::path(Options().dir) / absl::StrCat("save-np", np, "-", c.name)).string();
}

Mesh MeshOf(const Config& c, Communicator& world) {
  return Mesh::Create(c.dims, world.rank(), world.size(), c.device_type, c.mesh_name)
      .value();
}

Layout LayoutOf(const Config& c, const Mesh& mesh, int tensor_index) {
  const TensorSpec& t = Tensors()[tensor_index];
  return Layout::Create(
             SpecsFor(c.dims, static_cast<int>(t.shape.size()), c.StyleOf(tensor_index)),
             mesh)
      .value();
}

void Log(Communicator& world, const std::string& line) {
  if (world.rank() == 0) std::printf("[matrix] %s\n", line.c_str());
  std::fflush(stdout);
}

// ---------------------------------------------------------------- restore

std::vector<std::pair<int, std::string>> ListSaved(Communicator& world) {
  std::string joined;
  if (world.rank() == 0) {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(Options().dir, ec)) {
      const std::string f = entry.path().filename().string();
      if (absl::StartsWith(f, "save-np") && absl::EndsWith(f, ".index")) {
        names.push_back(f.substr(0, f.size() - 6));
      }
    }
    std::sort(names.begin(), names.end());
    joined = absl::StrJoin(names, "\n");
  }
  world.Broadcast(&joined, 0);
  std::vector<std::pair<int, std::string>> out;
  for (absl::string_view name : absl::StrSplit(joined, '\n', absl::SkipEmpty())) {
    absl::string_view rest = name;
    absl::ConsumePrefix(&rest, "save-np");
    const size_t dash = rest.find('-');
    int np = 0;
    if (dash == absl::string_view::npos || !absl::SimpleAtoi(rest.substr(0, dash), &np)) {
      continue;
    }
    out.push_back({np, std::string(rest.substr(dash + 1))});
  }
  return out;
}

std::string SavedPrefix(int np, const std::string& config) {
  return (fs::path(Options().dir) / absl::StrCat("save-np", np, "-", config)).string();
}

int64_t RestoreAndCheck(Communicator& world, const std::string& prefix,
                        const std::string& label, const Config& c,
                        const std::function<bool(int)>& want) {
  const Mesh mesh = MeshOf(c, world);
  std::vector<DeviceBuffers> bufs;
  bufs.reserve(Tensors().size());
  for (int i = 0; i < static_cast<int>(Tensors().size()); ++i) {
    bufs.push_back(DeviceBuffers::Sentinel(Tensors()[i], LayoutOf(c, mesh, i)));
  }
  std::vector<RestoreTensor> tensors;
  for (int i = 0; i < static_cast<int>(Tensors().size()); ++i) {
    if (!want(i)) continue;
    const TensorSpec& t = Tensors()[i];
    tensors.push_back(test::MakeRestoreTensor(t, LayoutOf(c, mesh, i), bufs[i].Ptrs()));
  }
  IoOptions opts;
  opts.transfer_mode = c.mode;
  const absl::Status s = RestoreTensors(world, prefix, tensors, opts);
  EXPECT_TRUE(s.ok()) << label << ": " << s;
  EXPECT_EQ(test::DescribeStatusDisagreement(world, s), "") << label;
  int64_t bad = 0;
  std::string report;
  if (s.ok()) {
    for (int i = 0; i < static_cast<int>(Tensors().size()); ++i) {
      bad += bufs[i].Check(want(i), world.rank(), &report);
    }
  }
  EXPECT_EQ(bad, 0) << label << " (rank " << world.rank() << "):\n" << report;
  const int64_t all_bad = test::SumOverRanks(world, bad);
  Log(world, absl::StrCat(label, ": ", s.ok() ? "restored" : "FAILED", ", ", all_bad,
                          " bad elements over all ranks"));
  return bad;
}

}  // namespace meshckpt::reshard_matrix
