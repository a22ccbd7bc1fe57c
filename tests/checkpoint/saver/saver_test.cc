// Saver and ImportStructure in one process (SerialCommunicator) on
// multi-device meshes: checkpoint naming, retention (max_to_keep,
// keep_checkpoint_every_n_hours) with an injected clock, the state file,
// argument errors, crash recovery, reshape and sequential restores,
// structure import with and without a name scope, collections.
//
// Values are a function of (seed, global flat index) and compared byte for
// byte. Each test works in its own temporary directory. Single-threaded.
//
//   ctest -R saver_test          (or ./saver_test --gtest_filter=Saver.*)
#include "meshckpt/checkpoint/saver/saver.h"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/checkpoint/state/checkpoint_state.h"
#include "meshckpt/io/fs/fs.h"

namespace meshckpt {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string TempDir() {
  std::string dir = "/tmp/meshckpt_saver_" + RandomId();
  EXPECT_EQ(std::system(("mkdir -p " + dir).c_str()), 0);
  return dir;
}

// Row-major flat index in `shape` of the i-th element of `box`.
int64_t FlatIndex(const Box& box, const std::vector<int64_t>& shape, int64_t i) {
  std::vector<int64_t> idx(box.rank());
  for (int k = box.rank() - 1; k >= 0; --k) {
    idx[k] = i % box.shape()[k];
    i /= box.shape()[k];
  }
  int64_t g = 0;
  for (int k = 0; k < box.rank(); ++k) g = g * shape[k] + box.origin()[k] + idx[k];
  return g;
}

// The bytes of element g (any fixed-size dtype), or its string.
void ElementBytes(uint64_t seed, int64_t g, int64_t size, char* out) {
  uint64_t v = static_cast<uint64_t>(g) * 0x9E3779B97F4A7C15ull + seed;
  for (int64_t b = 0; b < size; ++b) out[b] = static_cast<char>(v >> (8 * (b % 8)));
}
std::string ElementString(uint64_t seed, int64_t g) {
  return g % 7 == 3 ? std::string()
                    : absl::StrCat("v", seed, ":", g, std::string("\0z", 2));
}

void Fill(DVariable* v, uint64_t seed) {
  const int64_t es = DTypeSize(v->dtype());
  for (int64_t d : v->layout().mesh().local_device_ids()) {
    const Box box = v->DeviceBox(d);
    for (int64_t i = 0; i < box.num_elements(); ++i) {
      const int64_t g = FlatIndex(box, v->shape(), i);
      if (v->dtype() == DType::kString) {
        v->strings(d)[i] = ElementString(seed, g);
      } else {
        ElementBytes(seed, g, es, v->mutable_bytes(d).data() + i * es);
      }
    }
  }
}

// Number of elements of `v` (over its local devices) that differ from what
// Fill(seed) would write at the same global flat index.
int64_t Mismatches(DVariable* v, uint64_t seed) {
  const int64_t es = DTypeSize(v->dtype());
  int64_t bad = 0;
  std::vector<char> want(static_cast<size_t>(es > 0 ? es : 1));
  for (int64_t d : v->layout().mesh().local_device_ids()) {
    const Box box = v->DeviceBox(d);
    for (int64_t i = 0; i < box.num_elements(); ++i) {
      const int64_t g = FlatIndex(box, v->shape(), i);
      if (v->dtype() == DType::kString) {
        bad += v->strings(d)[i] != ElementString(seed, g);
      } else {
        ElementBytes(seed, g, es, want.data());
        bad += std::memcmp(want.data(), v->bytes(d).data() + i * es, es) != 0;
      }
    }
  }
  return bad;
}

class SaverTest : public ::testing::Test {
 protected:
  std::unique_ptr<Communicator> comm_ = SerialCommunicator();
  Mesh mesh_ = Mesh::Create({{"x", 2}, {"y", 3}}, 0, 1).value();
  std::string dir_ = TempDir();
  std::vector<std::unique_ptr<DVariable>> owned_;
  double now_ = 1000.0;

  DVariable* Var(std::string name, DType dtype, std::vector<int64_t> shape,
                 std::vector<std::string> specs, const Mesh* mesh = nullptr) {
    owned_.push_back(
        DVariable::Create(std::move(name), dtype, std::move(shape),
                          Layout::Create(specs, mesh ? *mesh : mesh_).value())
            .value());
    return owned_.back().get();
  }
  // dense/kernel [7,5] f32 over x,y; dense/bias [5] i64 over y; vocab [4] str.
  std::map<std::string, DVariable*> Model(uint64_t seed) {
    std::map<std::string, DVariable*> m = {
        {"dense/kernel", Var("kernel", DType::kFloat32, {7, 5}, {"x", "y"})},
        {"dense/bias", Var("bias", DType::kInt64, {5}, {"y"})},
        {"vocab", Var("vocab", DType::kString, {4}, {"x"})}};
    for (auto& [k, v] : m) Fill(v, seed);
    return m;
  }
  SaverOptions Clocked(int max_to_keep) {
    SaverOptions o;
    o.max_to_keep = max_to_keep;
    o.clock = [this] { return now_; };
    return o;
  }
  std::string P(const std::string& name) { return dir_ + "/" + name; }
  CheckpointState State(const std::string& file = "checkpoint") {
    return ReadCheckpointState(dir_, file).value();
  }
  std::vector<std::string> Listed(const CheckpointState& s) {
    return {s.all_model_checkpoint_paths.begin(), s.all_model_checkpoint_paths.end()};
  }
};

TEST_F(SaverTest, NamesCheckpointsAfterTheStep) {
  auto saver = Saver::Create(comm_.get(), Model(1)).value();
  EXPECT_EQ(saver->Save(P("my-model"), 1000).value(), P("my-model-1000"));
  EXPECT_EQ(saver->Save(P("exact")).value(), P("exact"));
  EXPECT_TRUE(CheckpointExists(P("my-model-1000")));
  EXPECT_TRUE(FileExists(DataFilePath(P("my-model-1000"))));
  EXPECT_TRUE(CheckpointExists(P("exact")));
  SaverOptions o;
  o.pad_step_number = true;
  auto padded = Saver::Create(comm_.get(), Model(1), o).value();
  EXPECT_EQ(padded->Save(P("my-model"), 1000).value(), P("my-model-00001000"));
  EXPECT_EQ(padded->Save(P("big"), 123456789012).value(), P("big-123456789012"));
}

TEST_F(SaverTest, MaxToKeepDeletesOldestAfterWritingState) {
  auto saver = Saver::Create(comm_.get(), Model(1), Clocked(2)).value();
  for (int step = 1; step <= 4; ++step) {
    now_ = 1000.0 + step;
    ASSERT_TRUE(saver->Save(P("model"), step).ok());
  }
  EXPECT_THAT(saver->last_checkpoints(), ElementsAre(P("model-3"), P("model-4")));
  for (int step : {1, 2}) {
    EXPECT_FALSE(FileExists(IndexFilePath(P(absl::StrCat("model-", step)))));
    EXPECT_FALSE(FileExists(DataFilePath(P(absl::StrCat("model-", step)))));
  }
  EXPECT_TRUE(CheckpointExists(P("model-3")));
  EXPECT_TRUE(CheckpointExists(P("model-4")));
  const CheckpointState s = State();
  EXPECT_EQ(s.model_checkpoint_path, "model-4");
  EXPECT_THAT(Listed(s), ElementsAre("model-3", "model-4"));
  EXPECT_THAT(s.all_model_checkpoint_timestamps, ElementsAre(1003.0, 1004.0));
  EXPECT_EQ(LatestCheckpoint(dir_).value(), P("model-4"));

  // Saving a path again moves it to the newest place instead of listing it twice.
  now_ = 2000;
  ASSERT_TRUE(saver->Save(P("model"), 3).ok());
  EXPECT_THAT(saver->last_checkpoints(), ElementsAre(P("model-4"), P("model-3")));
  EXPECT_THAT(Listed(State()), ElementsAre("model-4", "model-3"));
}

TEST_F(SaverTest, MaxToKeepZeroKeepsAllButListsOnlyTheLatest) {
  auto saver = Saver::Create(comm_.get(), Model(1), Clocked(0)).value();
  for (int step = 1; step <= 3; ++step) ASSERT_TRUE(saver->Save(P("m"), step).ok());
  EXPECT_TRUE(saver->last_checkpoints().empty());
  for (int step = 1; step <= 3; ++step) {
    EXPECT_TRUE(CheckpointExists(P(absl::StrCat("m-", step))));
  }
  EXPECT_EQ(State().model_checkpoint_path, "m-3");
  EXPECT_THAT(Listed(State()), ElementsAre("m-3"));
}

TEST_F(SaverTest, KeepEveryNHoursPreservesCheckpoints) {
  now_ = 0;
  SaverOptions o = Clocked(1);
  o.keep_checkpoint_every_n_hours = 1;  // Next preservation after t = 3600.
  auto saver = Saver::Create(comm_.get(), Model(1), o).value();
  const double times[] = {100, 4000, 8000, 8100, 8200};
  for (int step = 1; step <= 5; ++step) {
    now_ = times[step - 1];
    ASSERT_TRUE(saver->Save(P("m"), step).ok());
  }
  // 1 (t=100) deleted; 2 (t=4000 > 3600) kept, next 7200; 3 (8000 > 7200)
  // kept, next 10800; 4 (8100) deleted; 5 is the latest.
  EXPECT_FALSE(CheckpointExists(P("m-1")));
  EXPECT_TRUE(CheckpointExists(P("m-2")));
  EXPECT_TRUE(CheckpointExists(P("m-3")));
  EXPECT_FALSE(CheckpointExists(P("m-4")));
  EXPECT_FALSE(FileExists(DataFilePath(P("m-4"))));
  EXPECT_TRUE(CheckpointExists(P("m-5")));
  EXPECT_THAT(saver->last_checkpoints(), ElementsAre(P("m-5")));
  EXPECT_THAT(Listed(State()), ElementsAre("m-5"));
}

TEST_F(SaverTest, RelativeOrAbsolutePathsInTheStateFile) {
  SaverOptions o;
  o.save_relative_paths = false;
  auto abs = Saver::Create(comm_.get(), Model(1), o).value();
  ASSERT_TRUE(abs->Save(P("m"), 1).ok());
  EXPECT_EQ(State().model_checkpoint_path, P("m-1"));
  EXPECT_THAT(Listed(State()), ElementsAre(P("m-1")));
  auto rel = Saver::Create(comm_.get(), Model(1)).value();
  ASSERT_TRUE(rel->Save(P("m"), 2).ok());
  EXPECT_EQ(State().model_checkpoint_path, "m-2");
  EXPECT_THAT(Listed(State()), ElementsAre("m-2"));
  EXPECT_EQ(LatestCheckpoint(dir_).value(), P("m-2"));
}

TEST_F(SaverTest, LatestFilenameAndWriteState) {
  SaverOptions o;
  o.latest_filename = "my_state";
  auto saver = Saver::Create(comm_.get(), Model(1), o).value();
  ASSERT_TRUE(saver->Save(P("m"), 1, /*write_state=*/false).ok());
  EXPECT_TRUE(saver->last_checkpoints().empty());
  EXPECT_FALSE(FileExists(P("my_state")));
  ASSERT_TRUE(saver->Save(P("m"), 2).ok());
  EXPECT_FALSE(FileExists(P("checkpoint")));
  EXPECT_EQ(State("my_state").model_checkpoint_path, "m-2");
  EXPECT_EQ(LatestCheckpoint(dir_, "my_state").value(), P("m-2"));
}

TEST_F(SaverTest, RejectsBadVarLists) {
  DVariable* a = Var("a", DType::kFloat32, {2}, {"x"});
  DVariable* a2 = Var("a", DType::kFloat32, {3}, {"unsharded"});
  auto code = [&](auto var_list, SaverOptions o = {}) {
    return Saver::Create(comm_.get(), var_list, o).status().code();
  };
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  EXPECT_EQ(code(std::vector<DVariable*>{a, a2}), kInvalid);  // Duplicate names.
  EXPECT_EQ(code(std::vector<DVariable*>{a, nullptr}), kInvalid);
  EXPECT_EQ(code(std::map<std::string, DVariable*>{{"a", nullptr}}), kInvalid);
  for (const char* bad : {"", "a//b", "../x", "a/./b", "/a", "a/", "w\xff", "\xc0\xaf",
                          "\xed\xa0\x80", "\xe2\x82"}) {
    EXPECT_EQ(code(std::map<std::string, DVariable*>{{bad, a}}), kInvalid) << bad;
  }
  EXPECT_EQ(code(std::map<std::string, DVariable*>{{"g", a}, {"g/w", a2}}), kInvalid);
  EXPECT_EQ(code(std::vector<DVariable*>{}), kInvalid);
  const Mesh two_ranks = Mesh::Create({{"x", 2}}, 0, 2).value();
  EXPECT_EQ(code(std::vector<DVariable*>{Var("w", DType::kInt8, {2}, {"x"}, &two_ranks)}),
            kInvalid);
  SaverOptions o;
  o.max_to_keep = -1;
  EXPECT_EQ(code(std::vector<DVariable*>{a}, o), kInvalid);
  o = {};
  o.latest_filename = "a/b";
  EXPECT_EQ(code(std::vector<DVariable*>{a}, o), kInvalid);
  o = {};
  o.keep_checkpoint_every_n_hours = 0;
  EXPECT_EQ(code(std::vector<DVariable*>{a}, o), kInvalid);
  // The same variable under two names is fine, and so is UTF-8.
  EXPECT_TRUE(Saver::Create(comm_.get(), {{"a", a}, {"b", a}}).ok());
  Fill(a, 5);
  auto utf8 = Saver::Create(comm_.get(), {{"caf\xc3\xa9/\xf0\x9f\x98\x80", a}}).value();
  const std::string p = utf8->Save(P("\xc3\xa9t\xc3\xa9"), 1).value();
  Fill(a, 6);
  EXPECT_TRUE(utf8->Restore(p).ok());
  EXPECT_EQ(Mismatches(a, 5), 0);
  auto saver = Saver::Create(comm_.get(), {{"a", a}}).value();
  EXPECT_EQ(saver->Save(P("dir/")).status().code(), kInvalid);
  EXPECT_EQ(saver->Save("").status().code(), kInvalid);
  EXPECT_EQ(saver->Save(P("m\xff")).status().code(), kInvalid);
  EXPECT_EQ(saver->Save(P("missing_dir/m"), 1).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(saver->SetCollection("", {}).code(), kInvalid);
  EXPECT_EQ(saver->SetCollection("a\nb", {}).code(), kInvalid);
}

TEST_F(SaverTest, AllowEmptyMakesSaveAndRestoreNoOps) {
  SaverOptions o;
  o.allow_empty = true;
  auto saver = Saver::Create(comm_.get(), std::vector<DVariable*>{}, o).value();
  EXPECT_EQ(saver->Save(P("m"), 1).value(), "");
  EXPECT_FALSE(FileExists(IndexFilePath(P("m-1"))));
  EXPECT_FALSE(FileExists(P("checkpoint")));
  EXPECT_TRUE(saver->Restore(P("nothing")).ok());
}

TEST_F(SaverTest, RecoverLastCheckpointsKeepsOnlyCommittedOnes) {
  auto writer = Saver::Create(comm_.get(), Model(1), Clocked(0)).value();
  for (int step = 1; step <= 3; ++step) ASSERT_TRUE(writer->Save(P("m"), step).ok());
  ASSERT_TRUE(DeleteCheckpoint(P("m-2")).ok());
  ASSERT_TRUE(WriteFileAtomically(DataFilePath(P("m-9")), "uncommitted").ok());

  // Recovered checkpoints are timed by their files' mtimes: use the real clock.
  SaverOptions o;
  o.max_to_keep = 2;
  auto saver = Saver::Create(comm_.get(), Model(1), o).value();
  saver->RecoverLastCheckpoints({P("m-1"), P("m-2"), P("m-3"), P("m-9"), P("none")});
  EXPECT_THAT(saver->last_checkpoints(), ElementsAre(P("m-1"), P("m-3")));
  ASSERT_TRUE(saver->Save(P("m"), 4).ok());
  EXPECT_THAT(saver->last_checkpoints(), ElementsAre(P("m-3"), P("m-4")));
  EXPECT_FALSE(CheckpointExists(P("m-1")));
  EXPECT_THAT(Listed(State()), ElementsAre("m-3", "m-4"));

  saver->SetLastCheckpointsWithTime({{P("m-4"), 1.0}});
  EXPECT_THAT(saver->last_checkpoints(), ElementsAre(P("m-4")));
}

TEST_F(SaverTest, RestoresAcrossLayoutsSequentiallyOrNot) {
  auto saver = Saver::Create(comm_.get(), Model(7)).value();
  const std::string path = saver->Save(P("m"), 1).value();
  for (bool sequential : {false, true}) {
    SaverOptions o;
    o.restore_sequentially = sequential;
    const Mesh other = Mesh::Create({{"a", 3}, {"b", 2}}, 0, 1).value();
    std::map<std::string, DVariable*> vars = {
        {"dense/kernel", Var("k", DType::kFloat32, {7, 5}, {"b", "a"}, &other)},
        {"dense/bias", Var("b", DType::kInt64, {5}, {"unsharded"}, &other)},
        {"vocab", Var("v", DType::kString, {4}, {"a"}, &other)}};
    ASSERT_TRUE(Saver::Create(comm_.get(), vars, o).value()->Restore(path).ok());
    for (auto& [k, v] : vars) EXPECT_EQ(Mismatches(v, 7), 0) << k << " " << sequential;
  }
}

TEST_F(SaverTest, RestoreErrors) {
  auto saver = Saver::Create(comm_.get(), Model(1)).value();
  const std::string path = saver->Save(P("m")).value();
  EXPECT_EQ(saver->Restore(P("absent")).code(), absl::StatusCode::kNotFound);
  auto missing =
      Saver::Create(comm_.get(), {{"nope", Var("n", DType::kFloat32, {5}, {"y"})}});
  EXPECT_EQ(missing.value()->Restore(path).code(), absl::StatusCode::kNotFound);
  auto wrong_type =
      Saver::Create(comm_.get(), {{"dense/bias", Var("b", DType::kInt32, {5}, {"y"})}});
  const absl::Status s = wrong_type.value()->Restore(path);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("dense/bias"));
}

TEST_F(SaverTest, ReshapeRestoresByFlatIndex) {
  for (DType dtype : {DType::kFloat32, DType::kString, DType::kComplex128}) {
    SCOPED_TRACE(DTypeName(dtype));
    DVariable* saved = Var("w", dtype, {6, 4}, {"x", "y"});  // y: 2,2,0 columns
    Fill(saved, 42);
    const std::string path =
        Saver::Create(comm_.get(), {{"w", saved}}).value()->Save(P("r"), 1).value();
    for (bool sequential : {false, true}) {
      SaverOptions o;
      o.reshape = true;
      o.restore_sequentially = sequential;
      DVariable* t = Var("t", dtype, {4, 6}, {"y", "x"});
      DVariable* flat = Var("f", dtype, {24}, {"x"});
      DVariable* cube = Var("c", dtype, {2, 3, 4}, {"unsharded", "y", "x"});
      for (DVariable* v : {t, flat, cube}) {
        ASSERT_TRUE(
            Saver::Create(comm_.get(), {{"w", v}}, o).value()->Restore(path).ok());
        EXPECT_EQ(Mismatches(v, 42), 0) << v->name();
      }
    }
    DVariable* t = Var("t", dtype, {4, 6}, {"y", "x"});
    const absl::Status plain =
        Saver::Create(comm_.get(), {{"w", t}}).value()->Restore(path);
    EXPECT_EQ(plain.code(), absl::StatusCode::kFailedPrecondition) << plain;
    SaverOptions o;
    o.reshape = true;
    DVariable* wrong = Var("t", dtype, {5, 5}, {"y", "x"});
    EXPECT_EQ(Saver::Create(comm_.get(), {{"w", wrong}}, o).value()->Restore(path).code(),
              absl::StatusCode::kFailedPrecondition);
  }
}

TEST_F(SaverTest, ImportStructureRecreatesVariablesAndCollections) {
  auto saver = Saver::Create(comm_.get(), Model(3)).value();
  const std::vector<std::string> odd = {"", std::string("a\0b", 3), "x,y", "\xff\xfe"};
  ASSERT_TRUE(saver->SetCollection("train_op", {"dense/kernel", "dense/bias"}).ok());
  ASSERT_TRUE(saver->SetCollection("odd", odd).ok());
  ASSERT_TRUE(saver->SetCollection("empty", {}).ok());
  const std::string path = saver->Save(P("m"), 5).value();

  const Mesh mesh = Mesh::Create({{"x", 2}, {"z", 2}}, 0, 1).value();
  for (const std::string scope : {"", "imported/", "a/b"}) {
    SCOPED_TRACE(scope);
    absl::StatusOr<ImportedStructure> s = ImportStructure(comm_.get(), path, mesh, scope);
    ASSERT_TRUE(s.ok()) << s.status();
    const std::string pre = scope.empty() ? ""
                                          : (scope.back() == '/' ? scope : scope + "/");
    ASSERT_EQ(s->variables.size(), 3u);
    std::map<std::string, DVariable*> by_name;
    for (auto& v : s->variables) by_name[v->name()] = v.get();
    DVariable* k = by_name[pre + "dense/kernel"];
    DVariable* b = by_name[pre + "dense/bias"];
    DVariable* voc = by_name[pre + "vocab"];
    ASSERT_TRUE(k && b && voc);
    EXPECT_EQ(k->dtype(), DType::kFloat32);
    EXPECT_THAT(k->shape(), ElementsAre(7, 5));
    EXPECT_THAT(k->layout().sharding_specs(),
                ElementsAre("x", "unsharded"));  // y not in mesh
    EXPECT_EQ(k->layout().mesh(), mesh);
    EXPECT_EQ(b->dtype(), DType::kInt64);
    EXPECT_THAT(b->layout().sharding_specs(), ElementsAre("unsharded"));
    EXPECT_EQ(voc->dtype(), DType::kString);
    EXPECT_THAT(voc->layout().sharding_specs(), ElementsAre("x"));
    for (DVariable* v : {k, b, voc}) EXPECT_EQ(Mismatches(v, 3), 0) << v->name();
    EXPECT_THAT(s->collections["train_op"], ElementsAre("dense/kernel", "dense/bias"));
    EXPECT_EQ(s->collections["odd"], odd);
    EXPECT_TRUE(s->collections.count("empty"));
    EXPECT_TRUE(s->collections["empty"].empty());
    // The saver keeps the original keys and re-saves the collections.
    EXPECT_EQ(s->saver->var_list().count("dense/kernel"), 1u);
    const std::string again = ExportStructure(*s->saver, P("again")).value();
    auto twice = ImportStructure(comm_.get(), again, mesh_, "", true);
    ASSERT_TRUE(twice.ok()) << twice.status();
    EXPECT_EQ(twice->collections, s->collections);
  }
  auto bare = ImportStructure(comm_.get(), path, mesh, "", /*restore_values=*/false);
  ASSERT_TRUE(bare.ok());
  for (auto& v : bare->variables) EXPECT_GT(Mismatches(v.get(), 3), 0) << v->name();
  EXPECT_EQ(ImportStructure(comm_.get(), P("none"), mesh).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(ImportStructure(comm_.get(), path, mesh, "a//b").status().code(),
            absl::StatusCode::kInvalidArgument);
  const Mesh two = Mesh::Create({{"x", 2}}, 0, 2).value();
  EXPECT_EQ(ImportStructure(comm_.get(), path, two).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CollectionEncoding, RoundTripsAndRejectsGarbage) {
  for (const std::vector<std::string>& v : std::vector<std::vector<std::string>>{
           {}, {""}, {"", ""}, {"a", "bc", ",", std::string("\0", 1)}}) {
    EXPECT_EQ(DecodeCollection(EncodeCollection(v)).value(), v);
  }
  EXPECT_EQ(EncodeCollection({}), "0");
  EXPECT_EQ(EncodeCollection({""}), "1,");
  EXPECT_EQ(EncodeCollection({"a", "bc"}), "2,YQ==,YmM=");
  for (const char* bad : {"", "x", "1", "2,YQ==", "1,YQ==,YQ==", "1,@@@", "-1"}) {
    EXPECT_EQ(DecodeCollection(bad).status().code(), absl::StatusCode::kDataLoss) << bad;
  }
}

}  // namespace
}  // namespace meshckpt
