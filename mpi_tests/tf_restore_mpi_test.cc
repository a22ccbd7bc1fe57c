// TensorFlow checkpoints restored across ranks: rank 0 writes a TensorBundle
// with tfbundle's BundleWriter (values from test_tensors.h, a function of
// key and global index), then every rank restores it onto several meshes and
// layouts through RestoreTensors, DTensorCheckpoint::Restore (object-based
// keys and TensorFlow's object graph) and the Saver (name-based keys), and
// checks every element bit-exactly. Also: each rank reads only its own
// bytes plus its share of the CRC check, and damaged bundles give the same
// DataLoss on every rank.
//
//   mpiexec -n 3 tf_restore_mpi_test --dir=/tmp/tf_restore_work
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/checkpoint/engine/checkpoint_handle.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/checkpoint/engine/tensorflow_bridge.h"
#include "meshckpt/checkpoint/object/dtensor_checkpoint.h"
#include "meshckpt/checkpoint/object/dvariable.h"
#include "meshckpt/checkpoint/object/load_status.h"
#include "meshckpt/checkpoint/saver/saver.h"
#include "meshckpt/tfbundle/bundle_reader.h"
#include "meshckpt/tfbundle/bundle_writer.h"
#include "meshckpt/tfbundle/file_io.h"
#include "meshckpt/tfbundle/object_graph.h"
#include "mpi_tests/mpi_test_env.h"
#include "mpi_tests/test_tensors.h"

namespace meshckpt {
namespace {

namespace fs = std::filesystem;
using test::DeviceBuffers;
using test::TensorSpec;

std::string Dir() {
  std::string d = TestArg("--dir=");
  if (d.empty()) d = "tf_restore_work";
  return (fs::path(d) / absl::StrCat("np", TestWorld().size())).string();
}

// The whole tensor as TensorFlow stores it, from the value function.
tf::TensorValue WholeValue(const TensorSpec& spec) {
  const uint64_t h = test::KeyHash(spec.key);
  const int64_t n = test::NumElements(spec.shape);
  if (spec.dtype == DType::kString) {
    std::vector<std::string> s;
    for (int64_t g = 0; g < n; ++g) s.push_back(test::ExpectedString(h, g));
    return tf::TensorValue::FromStrings(spec.shape, std::move(s)).value();
  }
  const int64_t esize = DTypeSize(spec.dtype);
  std::string bytes(static_cast<size_t>(n * esize), '\0');
  for (int64_t g = 0; g < n; ++g)
    test::ExpectedElement(spec.dtype, h, g, &bytes[g * esize]);
  return tf::TensorValue::FromBytes(internal::DTypeToTf(spec.dtype), spec.shape,
                                    std::move(bytes))
      .value();
}

const std::vector<TensorSpec>& Specs() {
  static const auto* specs = new std::vector<TensorSpec>{
      {"kernel", DType::kFloat32, {13, 7}},
      {"counts", DType::kInt64, {5}},
      {"vocab", DType::kString, {11, 2}},
      {"scale", DType::kBfloat16, {6, 3}},
  };
  return *specs;
}

// Rank 0 writes `tensors` at `prefix` (replacing what was there); collective.
void WriteOnRankZero(const std::string& prefix,
                     const std::vector<std::pair<std::string, tf::TensorValue>>& tensors) {
  Communicator& world = TestWorld();
  absl::Status s;
  if (world.rank() == 0) {
    fs::create_directories(fs::path(prefix).parent_path());
    s = tf::WriteBundle(prefix, tensors);
  }
  ASSERT_TRUE(world.Agree(s).ok()) << s;
}

std::string NameBasedBundle() {
  const std::string prefix = Dir() + "/name_based/model.ckpt-5";
  std::vector<std::pair<std::string, tf::TensorValue>> tensors;
  for (const TensorSpec& t : Specs()) tensors.emplace_back(t.key, WholeValue(t));
  WriteOnRankZero(prefix, tensors);
  return prefix;
}

// The meshes and layouts every restore is tried on, for a rank-2 tensor and
// the rank-1 ones: rows, columns, a 2-D mesh, more devices than ranks.
struct Target {
  std::string name;
  Mesh mesh;
  std::vector<std::string> specs2, specs1;
};

std::vector<Target> Targets() {
  Communicator& w = TestWorld();
  const int n = w.size(), r = w.rank();
  auto mesh = [&](std::vector<MeshDimension> dims) {
    return Mesh::Create(std::move(dims), r, n).value();
  };
  return {
      {"rows", mesh({{"x", n}}), {"x", "unsharded"}, {"x"}},
      {"columns_2_devices_per_rank", mesh({{"x", 2 * n}}), {"unsharded", "x"}, {"x"}},
      {"2d", mesh({{"a", n}, {"b", 2}}), {"b", "a"}, {"a"}},
      {"replicated_3_devices_per_rank",
       mesh({{"x", 3 * n}}),
       {"unsharded", "unsharded"},
       {"unsharded"}},
  };
}

Layout LayoutFor(const Target& t, const TensorSpec& spec) {
  std::vector<std::string> specs = spec.shape.size() == 2 ? t.specs2 : t.specs1;
  return Layout::Create(specs, t.mesh).value();
}

void ExpectValues(const DeviceBuffers& b, const std::string& where) {
  std::string report;
  EXPECT_EQ(b.Check(true, TestWorld().rank(), &report), 0) << where << "\n" << report;
}

TEST(TfRestoreMpiTest, RestoreTensorsOntoEveryTarget) {
  Communicator& world = TestWorld();
  const std::string prefix = NameBasedBundle();
  for (const Target& target : Targets()) {
    std::vector<DeviceBuffers> buffers;
    std::vector<RestoreTensor> requests;
    for (const TensorSpec& spec : Specs()) {
      buffers.push_back(DeviceBuffers::Sentinel(spec, LayoutFor(target, spec)));
    }
    for (size_t i = 0; i < Specs().size(); ++i) {
      const TensorSpec& spec = Specs()[i];
      requests.push_back(
          {spec.key, spec.dtype, spec.shape, LayoutFor(target, spec), buffers[i].Ptrs()});
    }
    absl::Status s = RestoreTensors(world, prefix, requests, IoOptions());
    ASSERT_TRUE(s.ok()) << target.name << ": " << s;
    for (const DeviceBuffers& b : buffers) ExpectValues(b, target.name);
  }
}

TEST(TfRestoreMpiTest, HandleSaysTensorFlow) {
  Communicator& world = TestWorld();
  const std::string prefix = NameBasedBundle();
  absl::StatusOr<std::unique_ptr<CheckpointHandle>> h =
      CheckpointHandle::Open(world, prefix);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ((*h)->format(), CheckpointFormat::kTensorFlow);
  EXPECT_EQ((*h)->index().tensors().size(), Specs().size());
  EXPECT_EQ((*h)->data_files().size(), 1u);
}

TEST(TfRestoreMpiTest, SaverRestoresNameBasedKeys) {
  Communicator& world = TestWorld();
  const std::string prefix = NameBasedBundle();
  for (const Target& target : Targets()) {
    std::vector<std::unique_ptr<DVariable>> vars;
    std::map<std::string, DVariable*> var_list;
    for (const TensorSpec& spec : Specs()) {
      vars.push_back(DVariable::Create("v_" + spec.key, spec.dtype, spec.shape,
                                       LayoutFor(target, spec))
                         .value());
      var_list[spec.key] = vars.back().get();
    }
    absl::StatusOr<std::unique_ptr<Saver>> saver = Saver::Create(&world, var_list);
    ASSERT_TRUE(saver.ok()) << saver.status();
    absl::Status s = (*saver)->Restore(prefix);
    ASSERT_TRUE(s.ok()) << target.name << ": " << s;
    // Compare through DeviceBuffers: copy each device's data out.
    for (size_t i = 0; i < Specs().size(); ++i) {
      const TensorSpec& spec = Specs()[i];
      DVariable& v = *vars[i];
      DeviceBuffers b = DeviceBuffers::Sentinel(spec, v.layout());
      std::vector<void*> ptrs = b.Ptrs();
      for (size_t d = 0; d < b.device_ids().size(); ++d) {
        const int64_t dev = b.device_ids()[d];
        const int64_t n = b.boxes()[d].num_elements();
        if (spec.dtype == DType::kString) {
          absl::Span<std::string> src = v.strings(dev);
          std::copy(src.begin(), src.begin() + n, static_cast<std::string*>(ptrs[d]));
        } else {
          absl::Span<const char> src = static_cast<const DVariable&>(v).bytes(dev);
          std::memcpy(ptrs[d], src.data(), n * DTypeSize(spec.dtype));
        }
      }
      ExpectValues(b, "Saver " + target.name);
    }
  }
}

// A TF1 partitioned variable: rows [0, 5) and [5, 8) stored as slices.
TEST(TfRestoreMpiTest, PartitionedTensorOntoEveryTarget) {
  Communicator& world = TestWorld();
  const TensorSpec spec{"part", DType::kFloat32, {8, 4}};
  const std::string prefix = Dir() + "/partitioned/ckpt";
  absl::Status s;
  if (world.rank() == 0) {
    fs::create_directories(fs::path(prefix).parent_path());
    const tf::TensorValue whole = WholeValue(spec);
    auto w = tf::BundleWriter::Create(prefix);
    s = w.status();
    for (auto [begin, end] : {std::pair<int64_t, int64_t>{0, 5}, {5, 8}}) {
      if (!s.ok()) break;
      const std::string rows = whole.bytes().substr(begin * 16, (end - begin) * 16);
      s = (*w)->AddSlice(
          spec.key, spec.shape, {{begin, end - begin}, {0, -1}},
          tf::TensorValue::FromBytes(tf::TfDType::kFloat, {end - begin, 4}, rows).value());
    }
    if (s.ok()) s = (*w)->Finish();
  }
  ASSERT_TRUE(world.Agree(s).ok()) << s;
  for (const Target& target : Targets()) {
    DeviceBuffers b = DeviceBuffers::Sentinel(spec, LayoutFor(target, spec));
    s = RestoreTensors(
        world, prefix,
        {{spec.key, spec.dtype, spec.shape, LayoutFor(target, spec), b.Ptrs()}},
        IoOptions());
    ASSERT_TRUE(s.ok()) << target.name << ": " << s;
    ExpectValues(b, "partitioned " + target.name);
  }
}

// An object-based bundle as tf.train.Checkpoint writes it: keys
// `<name>/.ATTRIBUTES/VARIABLE_VALUE`, TensorFlow's object graph, the save
// counter; plus an object the restoring side does not have.
std::string ObjectBasedBundle() {
  const std::string prefix = Dir() + "/object_based/ckpt-7";
  std::vector<std::pair<std::string, tf::TensorValue>> tensors;
  std::vector<tf::TrackableObject> nodes(1);
  auto add_leaf = [&](const std::string& name, tf::TensorValue value) {
    const std::string key = name + "/.ATTRIBUTES/VARIABLE_VALUE";
    nodes[0].children.push_back({static_cast<int>(nodes.size()), name});
    tf::TrackableObject leaf;
    leaf.attributes.push_back({"VARIABLE_VALUE", name, key, false});
    nodes.push_back(std::move(leaf));
    tensors.emplace_back(key, std::move(value));
  };
  for (const TensorSpec& t : Specs()) add_leaf(t.key, WholeValue(t));
  add_leaf("save_counter", tf::TensorValue::FromBytes(tf::TfDType::kInt64, {},
                                                      std::string("\7\0\0\0\0\0\0\0", 8))
                               .value());
  add_leaf("extra", WholeValue({"extra", DType::kFloat32, {3}}));
  tensors.emplace_back(
      tf::kObjectGraphKey,
      tf::TensorValue::FromStrings(
          {}, {tf::ObjectGraph::Create(std::move(nodes)).value().Serialize()})
          .value());
  WriteOnRankZero(prefix, tensors);
  return prefix;
}

TEST(TfRestoreMpiTest, DTensorCheckpointRestoresObjectBasedKeys) {
  Communicator& world = TestWorld();
  const std::string prefix = ObjectBasedBundle();
  for (const Target& target : Targets()) {
    std::vector<std::unique_ptr<DVariable>> vars;
    DTensorCheckpoint::Children children;
    for (const TensorSpec& spec : Specs()) {
      vars.push_back(
          DVariable::Create(spec.key, spec.dtype, spec.shape, LayoutFor(target, spec))
              .value());
      children.emplace_back(spec.key, vars.back().get());
    }
    absl::StatusOr<std::unique_ptr<DTensorCheckpoint>> ckpt =
        DTensorCheckpoint::Create(&world, target.mesh, children);
    ASSERT_TRUE(ckpt.ok()) << ckpt.status();
    absl::StatusOr<LoadStatus> status = (*ckpt)->Restore(prefix);
    ASSERT_TRUE(status.ok()) << target.name << ": " << status.status();
    EXPECT_EQ((*ckpt)->save_counter(), 7);
    EXPECT_TRUE(status->AssertExistingObjectsMatched().ok());
    // `extra` has no object here.
    EXPECT_FALSE(status->AssertConsumed().ok());
    EXPECT_THAT(status->UnusedKeys(),
                ::testing::ElementsAre("extra/.ATTRIBUTES/VARIABLE_VALUE"));
    status->ExpectPartial();
    for (size_t i = 0; i < Specs().size(); ++i) {
      const TensorSpec& spec = Specs()[i];
      DVariable& v = *vars[i];
      DeviceBuffers b = DeviceBuffers::Sentinel(spec, v.layout());
      std::vector<void*> ptrs = b.Ptrs();
      for (size_t d = 0; d < b.device_ids().size(); ++d) {
        const int64_t dev = b.device_ids()[d];
        const int64_t n = b.boxes()[d].num_elements();
        if (spec.dtype == DType::kString) {
          absl::Span<std::string> src = v.strings(dev);
          std::copy(src.begin(), src.begin() + n, static_cast<std::string*>(ptrs[d]));
        } else {
          absl::Span<const char> src = static_cast<const DVariable&>(v).bytes(dev);
          std::memcpy(ptrs[d], src.data(), n * DTypeSize(spec.dtype));
        }
      }
      ExpectValues(b, "DTensorCheckpoint " + target.name);
    }
  }
}

// TensorFlow's own object-based checkpoint (tf.train.Checkpoint, from the
// shared test data): a, b, c restored by DTensorCheckpoint on every rank.
TEST(TfRestoreMpiTest, RealTf2CheckpointThroughDTensorCheckpoint) {
  Communicator& world = TestWorld();
  const int n = world.size(), r = world.rank();
  const Mesh mesh = Mesh::Create({{"x", 2 * n}}, r, n).value();
  std::vector<std::unique_ptr<DVariable>> vars;
  DTensorCheckpoint::Children children;
  for (const char* name : {"a", "b", "c"}) {
    vars.push_back(
        DVariable::Create(name, DType::kFloat32, {}, Layout::Replicated(mesh, 0)).value());
    children.emplace_back(name, vars.back().get());
  }
  auto ckpt = DTensorCheckpoint::Create(&world, mesh, children);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  absl::StatusOr<LoadStatus> status = (*ckpt)->Restore(
      std::string(MESHCKPT_TF_TESTDATA) + "/serving_half_plus_two_tf2_cpu/variables");
  ASSERT_TRUE(status.ok()) << status.status();
  // This checkpoint (a SavedModel's variables) has no save_counter, so the
  // only live object it does not match is ours.
  absl::Status matched = status->AssertExistingObjectsMatched();
  EXPECT_EQ(matched.code(), absl::StatusCode::kFailedPrecondition) << matched;
  EXPECT_THAT(std::string(matched.message()), ::testing::EndsWith(": save_counter"));
  EXPECT_TRUE(status->AssertSomeValueRestored().ok());
  EXPECT_TRUE(status->AssertNontrivialMatch().ok());
  EXPECT_THAT(status->UnusedKeys(), ::testing::IsEmpty());
  const float want[] = {0.5f, 2.0f, 3.0f};
  for (size_t i = 0; i < vars.size(); ++i) {
    for (int64_t dev : mesh.local_device_ids()) {
      EXPECT_EQ(vars[i]->shard<float>(dev)[0], want[i]) << vars[i]->name();
    }
  }
}

// Rows sharded over the ranks: each rank reads its rows and 1/N of the
// entry for the CRC, nothing else.
TEST(TfRestoreMpiTest, EachRankReadsOnlyItsBytes) {
  Communicator& world = TestWorld();
  const int n = world.size(), r = world.rank();
  const TensorSpec spec{"big", DType::kFloat32, {1024, 64}};
  const std::string prefix = Dir() + "/big/ckpt";
  WriteOnRankZero(prefix, {{spec.key, WholeValue(spec)}});
  const Layout layout =
      Layout::Create({"x", "unsharded"}, Mesh::Create({{"x", n}}, r, n).value()).value();
  const int64_t entry = 1024 * 64 * 4;
  // One device per rank: its box is what it reads.
  const int64_t mine =
      DeviceBuffers::Sentinel(spec, layout).boxes()[0].num_elements() * 4;
  const int64_t elements = 1024 * 64;
  const int64_t part = (elements / n + (r < elements % n ? 1 : 0)) * 4;
  for (bool verify : {true, false}) {
    DeviceBuffers b = DeviceBuffers::Sentinel(spec, layout);
    absl::StatusOr<std::unique_ptr<CheckpointHandle>> h =
        CheckpointHandle::Open(world, prefix);
    ASSERT_TRUE(h.ok()) << h.status();
    IoOptions o;
    o.verify_checksums = verify;
    const int64_t before = tf::internal::DataBytesReadForTesting();
    absl::Status s =
        RestoreTensors(**h, {{spec.key, spec.dtype, spec.shape, layout, b.Ptrs()}}, o);
    const int64_t read = tf::internal::DataBytesReadForTesting() - before;
    ASSERT_TRUE(s.ok()) << s;
    ExpectValues(b, "big");
    EXPECT_EQ(read, mine + (verify ? part : 0)) << "verify=" << verify;
    // Unverified, no rank reads the whole entry (verified, 1/N more each).
    if (!verify && n > 1) {
      EXPECT_LT(read, entry);
    }
  }
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteAll(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A flipped byte in the data file, wherever the ranks' parts fall, and a
// truncated data file: DataLoss, the same on every rank.
TEST(TfRestoreMpiTest, DamagedBundleIsDataLossEverywhere) {
  Communicator& world = TestWorld();
  const int n = world.size(), r = world.rank();
  const TensorSpec spec{"kernel", DType::kFloat32, {13, 7}};
  const std::string prefix = Dir() + "/damaged/ckpt";
  const std::string data = tf::DataFilename(prefix, 0, 1);
  const Layout layout =
      Layout::Create({"x", "unsharded"}, Mesh::Create({{"x", n}}, r, n).value()).value();
  for (int64_t at : {int64_t{0}, int64_t{200}, int64_t{13 * 7 * 4 - 1}, int64_t{-1}}) {
    WriteOnRankZero(prefix, {{spec.key, WholeValue(spec)}});
    absl::Status s;
    if (r == 0) {
      std::string bytes = ReadAll(data);
      if (at >= 0) {
        bytes[at] ^= 0x40;
      } else {
        bytes.resize(bytes.size() - 3);
      }
      WriteAll(data, bytes);
    }
    world.Barrier();
    DeviceBuffers b = DeviceBuffers::Sentinel(spec, layout);
    s = RestoreTensors(world, prefix,
                       {{spec.key, spec.dtype, spec.shape, layout, b.Ptrs()}},
                       IoOptions());
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << "at " << at << ": " << s;
    EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("kernel"));
    EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr(data));
    // The same status on every rank.
    const std::vector<std::string> all = world.AllGather(std::string(s.message()));
    for (const std::string& m : all) EXPECT_EQ(m, all[0]);
  }
}

}  // namespace
}  // namespace meshckpt
