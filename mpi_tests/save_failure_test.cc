// Saves that fail on one rank, or whose ranks disagree, must fail on every
// rank with the same status, leave no checkpoint behind (no `<prefix>.index`,
// no `<prefix>.h5`) and never damage an existing good checkpoint. Also checks
// the good saves: with the plain HDF5 C API and no meshckpt code, that the
// data file holds every tensor with its global shape at the path of its key;
// and that saving over a committed checkpoint replaces it as a whole.
//
// Failed restores and damaged checkpoints: save_failure_restore_test.cc.
// The work directory (--dir=<dir>) and the shared helpers:
// save_failure_util.h.
#include <hdf5.h>

#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "meshckpt/base/dtype.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/layout/layout.h"
#include "meshckpt/layout/shard_map.h"
#include "meshckpt/mesh/mesh.h"
#include "mpi_tests/mpi_test_env.h"
#include "mpi_tests/save_failure_util.h"
#include "mpi_tests/test_tensors.h"

namespace meshckpt {
namespace save_failure_test {
namespace {

namespace fs = std::filesystem;
using test::DeviceBuffers;
using test::TensorSpec;

// A scalar string attribute of `obj` (fixed or variable length); "" if none.
std::string ReadStringAttribute(hid_t obj, const char* name) {
  if (H5Aexists(obj, name) <= 0) return "";
  const hid_t attr = H5Aopen(obj, name, H5P_DEFAULT);
  if (attr < 0) return "";
  std::string out;
  const hid_t type = H5Aget_type(attr);
  if (H5Tget_class(type) == H5T_STRING) {
    if (H5Tis_variable_str(type) > 0) {
      char* p = nullptr;
      if (H5Aread(attr, type, &p) >= 0 && p != nullptr) {
        out = p;
        H5free_memory(p);
      }
    } else {
      std::vector<char> buf(H5Tget_size(type) + 1, '\0');
      if (H5Aread(attr, type, buf.data()) >= 0) out = buf.data();
    }
  }
  H5Tclose(type);
  H5Aclose(attr);
  return out;
}

// --------------------------------------------------------------- the tests

TEST(SaveFailure, GoodSaveRestoresAndIsPlainHdf5) {
  Communicator& world = TestWorld();
  const std::string dir = FreshDir(world, "good");
  const std::string a = (fs::path(dir) / "A").string();
  const absl::Status s = SaveGood(world, a);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(test::DescribeStatusDisagreement(world, s), "");
  ExpectRestoresExactly(world, a, "good save");

  // The index names the dataset of each tensor.
  const absl::StatusOr<IndexRecord> idx = ReadCheckpointIndex(world, a);
  ASSERT_TRUE(idx.ok()) << idx.status();
  for (const Entry& e : Entries()) {
    bool found = false;
    for (const TensorRecord& t : idx->tensors) {
      if (t.key != e.spec.key) continue;
      found = true;
      EXPECT_EQ(t.dataset, e.dataset.empty() ? e.spec.key : e.dataset);
    }
    EXPECT_TRUE(found) << e.spec.key;
  }

  // Rank 0 reads whole tensors with the HDF5 C API, default (POSIX) driver.
  if (world.rank() == 0) {
    const hid_t file = H5Fopen(DataFilePath(a).c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    ASSERT_GE(file, 0) << "H5Fopen " << DataFilePath(a);
    struct Want {
      std::string path;
      TensorSpec spec;
      hid_t mem_type;
    };
    const std::vector<Want> wants = {
        {"model/dense/kernel",
         {"model/dense/kernel", DType::kFloat32, {17, 13}},
         H5T_NATIVE_FLOAT},
        {"model/ids", {"model/ids", DType::kInt64, {13, 7}}, H5T_NATIVE_INT64},
        {"model/step", {"model/step", DType::kInt64, {}}, H5T_NATIVE_INT64},
        {"model/bias", {"model/bias", DType::kFloat32, {13}}, H5T_NATIVE_FLOAT},
        {"layer/value",
         {"layer/.ATTRIBUTES/VARIABLE_VALUE", DType::kFloat64, {5, 9}},
         H5T_NATIVE_DOUBLE},
    };
    for (const Want& w : wants) {
      SCOPED_TRACE(w.path);
      const hid_t ds = H5Dopen2(file, w.path.c_str(), H5P_DEFAULT);
      EXPECT_GE(ds, 0) << "no dataset " << w.path << " in " << DataFilePath(a);
      if (ds < 0) continue;
      const hid_t space = H5Dget_space(ds);
      const int ndims = H5Sget_simple_extent_ndims(space);
      std::vector<hsize_t> dims(static_cast<size_t>(ndims > 0 ? ndims : 0));
      if (ndims > 0) H5Sget_simple_extent_dims(space, dims.data(), nullptr);
      EXPECT_EQ(ndims, static_cast<int>(w.spec.shape.size()));
      EXPECT_EQ(std::vector<int64_t>(dims.begin(), dims.end()), w.spec.shape)
          << "dataset shape is not the global shape";
      H5Sclose(space);
      // Stored type: the dtype's size and class.
      const hid_t ftype = H5Dget_type(ds);
      EXPECT_EQ(static_cast<int64_t>(H5Tget_size(ftype)), DTypeSize(w.spec.dtype));
      EXPECT_EQ(H5Tget_class(ftype),
                w.spec.dtype == DType::kInt64 ? H5T_INTEGER : H5T_FLOAT);
      H5Tclose(ftype);
      // Attributes record the dtype name and the saved layout (README,
      // "Checkpoint format").
      EXPECT_EQ(ReadStringAttribute(ds, "dtype"), DTypeName(w.spec.dtype));
      std::string specs;
      for (const Entry& e : Entries()) {
        if (e.spec.key == w.spec.key) {
          specs = SaveLayout(world, e).ToString();
          specs = specs.substr(0, specs.find(" mesh:"));
        }
      }
      EXPECT_TRUE(absl::StartsWith(ReadStringAttribute(ds, "layout"), specs))
          << "layout attribute '" << ReadStringAttribute(ds, "layout")
          << "' should start with '" << specs << "'";
      const int64_t n = test::NumElements(w.spec.shape);
      const int64_t esize = DTypeSize(w.spec.dtype);
      std::vector<unsigned char> got(static_cast<size_t>(n * esize));
      const herr_t rc =
          H5Dread(ds, w.mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, got.data());
      EXPECT_GE(rc, 0) << "H5Dread " << w.path;
      H5Dclose(ds);
      if (rc < 0) continue;
      const uint64_t h = test::KeyHash(w.spec.key);
      int64_t bad = 0;
      std::vector<unsigned char> want(static_cast<size_t>(esize));
      test::ForEachInBox(
          Box::FromShape(w.spec.shape), w.spec.shape,
          [&](int64_t local, const std::vector<int64_t>& coord, int64_t g) {
            test::ExpectedElement(w.spec.dtype, h, g, want.data());
            if (std::memcmp(want.data(), got.data() + local * esize,
                            static_cast<size_t>(esize)) != 0 &&
                ++bad <= 4) {
              ADD_FAILURE() << "HDF5 " << w.path << " at " << test::CoordText(coord)
                            << ": expected " << test::HexBytes(want.data(), esize)
                            << " got "
                            << test::HexBytes(got.data() + local * esize, esize);
            }
          });
      EXPECT_EQ(bad, 0) << w.path;
    }
    H5Fclose(file);
  }
  world.Barrier();
}

// One rank (the last) passes bad input: every rank fails the same way,
// nothing is committed, and the earlier good checkpoint still restores, also
// when the failed save targeted that checkpoint's own prefix.
TEST(SaveFailure, OneRankWithBadInputFailsEverywhere) {
  Communicator& world = TestWorld();
  const int last = world.size() - 1;
  const bool me = world.rank() == last;
  const std::string dir = FreshDir(world, "bad_input");
  const std::string a = (fs::path(dir) / "A").string();
  ASSERT_TRUE(SaveGood(world, a).ok());

  struct Case {
    std::string name;
    absl::StatusCode want;
    // Spoils this rank's arguments (called on the last rank only).
    std::function<void(Communicator&, Prepared&)> spoil;
  };
  const std::vector<Case> cases = {
      {"null device buffer", absl::StatusCode::kInvalidArgument,
       [](Communicator&, Prepared& p) {
         // model/dense/kernel is split by rows over x: the last rank's first
         // device holds a non-empty block.
         ASSERT_FALSE(p.bufs[0].boxes()[0].empty());
         p.tensors[0].device_data[0] = nullptr;
       }},
      {"one device buffer missing", absl::StatusCode::kInvalidArgument,
       [](Communicator&, Prepared& p) { p.tensors[1].device_data.pop_back(); }},
      {"mesh with the wrong number of ranks", absl::StatusCode::kInvalidArgument,
       [](Communicator& w, Prepared& p) {
         // The same grid, but claiming to be a 1-rank job (all devices local).
         const Mesh one = Mesh::Create(SaveMeshDims(w.size()), 0, 1).value();
         const Entry e = Entries()[0];
         const Layout l = Layout::Create(e.specs, one).value();
         p.bufs.push_back(DeviceBuffers::Filled(e.spec, l));
         p.tensors[0] = test::MakeSaveTensor(e.spec, l, p.bufs.back().ConstPtrs());
         if (w.size() == 1) {  // Then make it a 2-rank mesh instead.
           const Mesh two = Mesh::Create(SaveMeshDims(1), 0, 2).value();
           const Layout l2 = Layout::Create(e.specs, two).value();
           p.bufs.push_back(DeviceBuffers::Filled(e.spec, l2));
           p.tensors[0] = test::MakeSaveTensor(e.spec, l2, p.bufs.back().ConstPtrs());
         }
       }},
      {"mesh viewed from another rank", absl::StatusCode::kInvalidArgument,
       [](Communicator& w, Prepared& p) {
         if (w.size() == 1) {
           p.tensors[1].device_data.clear();  // Nothing else to get wrong.
           return;
         }
         const Mesh other = Mesh::Create(SaveMeshDims(w.size()), 0, w.size()).value();
         const Entry e = Entries()[1];
         const Layout l = Layout::Create(e.specs, other).value();
         p.bufs.push_back(DeviceBuffers::Filled(e.spec, l));
         p.tensors[1] = test::MakeSaveTensor(e.spec, l, p.bufs.back().ConstPtrs());
       }},
      {"bad key", absl::StatusCode::kInvalidArgument,
       [](Communicator&, Prepared& p) { p.tensors[3].key = "model//bias/./"; }},
  };
  int n = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    for (const bool onto_a : {false, true}) {
      const std::string prefix =
          onto_a ? a : (fs::path(dir) / absl::StrCat("B", n++)).string();
      const std::string what =
          absl::StrCat(c.name, " on rank ", last, onto_a ? " (save onto A)" : "");
      Prepared p = Prepare(world);
      if (me) c.spoil(world, p);
      const absl::Status s = SaveTensors(world, prefix, p.tensors, {}, {});
      ExpectSameFailure(world, s, c.want, what);
      if (world.size() > 1 && !s.ok()) {
        EXPECT_TRUE(absl::StrContains(s.message(), absl::StrCat("rank ", last)))
            << what << ": the error should name the failing rank: " << s;
      }
      if (!onto_a) ExpectNoCheckpoint(world, prefix, what);
      ExpectRestoresExactly(world, a, what);
    }
  }
}

// Input that is bad on every rank: same error everywhere, nothing committed.
TEST(SaveFailure, BadInputOnEveryRankFailsEverywhere) {
  Communicator& world = TestWorld();
  const std::string dir = FreshDir(world, "bad_everywhere");
  struct Case {
    std::string name;
    absl::StatusCode want;  // kOk: any error
    std::function<void(Communicator&, Prepared&)> spoil;
    std::string prefix;  // empty: dir/B<n>
  };
  const std::vector<Case> cases = {
      {"duplicate key", absl::StatusCode::kInvalidArgument,
       [](Communicator&, Prepared& p) { p.tensors[1].key = p.tensors[0].key; }, ""},
      {"dataset path is a group of another", absl::StatusCode::kInvalidArgument,
       [](Communicator&, Prepared& p) { p.tensors[1].key = "model/dense/kernel/inner"; },
       ""},
      {"dataset path with ..", absl::StatusCode::kInvalidArgument,
       [](Communicator&, Prepared& p) { p.tensors[2].dataset = "model/../step"; }, ""},
      {"directory does not exist", absl::StatusCode::kOk, [](Communicator&, Prepared&) {},
       (fs::path(dir) / "no" / "such" / "dir" / "A").string()},
  };
  int n = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string prefix =
        c.prefix.empty() ? (fs::path(dir) / absl::StrCat("B", n++)).string() : c.prefix;
    Prepared p = Prepare(world);
    c.spoil(world, p);
    const absl::Status s = SaveTensors(world, prefix, p.tensors, {}, {});
    ExpectSameFailure(world, s, c.want, c.name);
    ExpectNoCheckpoint(world, prefix, c.name);
  }
}

// Ranks that pass different tensor lists fail together with InvalidArgument
// instead of hanging or writing a mixed checkpoint.
TEST(SaveFailure, DifferentTensorListsFailEverywhere) {
  Communicator& world = TestWorld();
  if (world.size() == 1) GTEST_SKIP() << "needs two ranks to disagree";
  const int last = world.size() - 1;
  const bool me = world.rank() == last;
  const std::string dir = FreshDir(world, "lists_differ");
  const std::string a = (fs::path(dir) / "A").string();
  ASSERT_TRUE(SaveGood(world, a).ok());

  struct Case {
    std::string name;
    std::function<void(Communicator&, Prepared&)> spoil;
  };
  const std::vector<Case> cases = {
      {"extra tensor",
       [](Communicator& w, Prepared& p) {
         const TensorSpec extra{"model/extra", DType::kFloat32, {6}};
         const Mesh mesh =
             Mesh::Create(SaveMeshDims(w.size()), w.rank(), w.size()).value();
         const Layout l = Layout::Create({"y"}, mesh).value();
         p.bufs.push_back(DeviceBuffers::Filled(extra, l));
         p.tensors.push_back(test::MakeSaveTensor(extra, l, p.bufs.back().ConstPtrs()));
       }},
      {"tensor missing", [](Communicator&, Prepared& p) { p.tensors.pop_back(); }},
      {"no tensors at all", [](Communicator&, Prepared& p) { p.tensors.clear(); }},
      {"different key",
       [](Communicator&, Prepared& p) { p.tensors[3].key = "model/bias2"; }},
      {"different dtype",
       [](Communicator& w, Prepared& p) {
         // float32 -> int32: same element size, so only the dtype differs.
         Entry e = Entries()[3];
         e.spec.dtype = DType::kInt32;
         const Layout l = SaveLayout(w, e);
         p.bufs.push_back(DeviceBuffers::Filled(e.spec, l));
         p.tensors[3] = test::MakeSaveTensor(e.spec, l, p.bufs.back().ConstPtrs());
       }},
      {"different shape",
       [](Communicator& w, Prepared& p) {
         Entry e = Entries()[0];
         e.spec.shape = {18, 13};
         const Layout l = SaveLayout(w, e);
         p.bufs.push_back(DeviceBuffers::Filled(e.spec, l));
         p.tensors[0] = test::MakeSaveTensor(e.spec, l, p.bufs.back().ConstPtrs());
       }},
      {"different layout",
       [](Communicator& w, Prepared& p) {
         Entry e = Entries()[0];
         e.specs = {std::string(kUnsharded), "y"};
         const Layout l = SaveLayout(w, e);
         p.bufs.push_back(DeviceBuffers::Filled(e.spec, l));
         p.tensors[0] = test::MakeSaveTensor(e.spec, l, p.bufs.back().ConstPtrs());
       }},
      {"different order",
       [](Communicator&, Prepared& p) { std::swap(p.tensors[0], p.tensors[1]); }},
  };
  int n = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string prefix = (fs::path(dir) / absl::StrCat("B", n++)).string();
    const std::string what = absl::StrCat(c.name, " on rank ", last);
    Prepared p = Prepare(world);
    if (me) c.spoil(world, p);
    const absl::Status s = SaveTensors(world, prefix, p.tensors, {}, {});
    ExpectSameFailure(world, s, absl::StatusCode::kInvalidArgument, what);
    ExpectNoCheckpoint(world, prefix, what);
  }
  ExpectRestoresExactly(world, a, "after disagreeing saves");
}

// Saving over a committed checkpoint replaces it as a whole.
TEST(SaveFailure, SuccessfulOverwriteReplacesCheckpoint) {
  Communicator& world = TestWorld();
  const std::string dir = FreshDir(world, "overwrite");
  const std::string a = (fs::path(dir) / "A").string();
  ASSERT_TRUE(SaveGood(world, a).ok());
  // Second save to the same prefix: a different tensor set (one renamed,
  // values differ because they depend on the key).
  const Entry e = Entries()[0];
  const TensorSpec renamed{"model/dense/kernel_v2", e.spec.dtype, e.spec.shape};
  const Layout l = SaveLayout(world, e);
  DeviceBuffers buf = DeviceBuffers::Filled(renamed, l);
  const absl::Status s =
      SaveTensors(world, a, {test::MakeSaveTensor(renamed, l, buf.ConstPtrs())}, {}, {});
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(test::DescribeStatusDisagreement(world, s), "");
  const absl::StatusOr<IndexRecord> idx = ReadCheckpointIndex(world, a);
  ASSERT_TRUE(idx.ok()) << idx.status();
  ASSERT_EQ(idx->tensors.size(), 1u);
  EXPECT_EQ(idx->tensors[0].key, renamed.key);
  const Mesh mesh =
      Mesh::Create({{"z", world.size()}}, world.rank(), world.size()).value();
  const Layout rl = Layout::Create({std::string(kUnsharded), "z"}, mesh).value();
  DeviceBuffers got = DeviceBuffers::Sentinel(renamed, rl);
  const absl::Status r = RestoreTensors(
      world, a, {test::MakeRestoreTensor(renamed, rl, got.Ptrs())}, IoOptions());
  ASSERT_TRUE(r.ok()) << r;
  std::string report;
  EXPECT_EQ(got.Check(true, world.rank(), &report), 0) << report;
  DeviceBuffers old = DeviceBuffers::Sentinel(e.spec, rl);
  const absl::Status gone = RestoreTensors(
      world, a, {test::MakeRestoreTensor(e.spec, rl, old.Ptrs())}, IoOptions());
  EXPECT_EQ(gone.code(), absl::StatusCode::kNotFound) << gone;
  EXPECT_EQ(test::DescribeStatusDisagreement(world, gone), "");
}

}  // namespace
}  // namespace save_failure_test
}  // namespace meshckpt
