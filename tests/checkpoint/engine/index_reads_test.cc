// How often a restore reads its checkpoint's index: once, through every API
// (DTensorCheckpoint::Restore with the values it defers, the Saver with and
// without restore_sequentially, ImportStructure, RestoreTensors and
// CheckpointReader). Counted where the engine reads an index file
// (internal::IndexReadsForTesting), in one process.
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "meshckpt/checkpoint/engine/checkpoint_index.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/checkpoint/object/dtensor_checkpoint.h"
#include "meshckpt/checkpoint/object/dvariable.h"
#include "meshckpt/checkpoint/object/tracked_value.h"
#include "meshckpt/checkpoint/reader/checkpoint_reader.h"
#include "meshckpt/checkpoint/saver/saver.h"
#include "meshckpt/io/fs/fs.h"

namespace meshckpt {
namespace {

std::string TempDir() {
  std::string dir = "/tmp/meshckpt_index_reads_" + RandomId();
  EXPECT_EQ(std::system(("mkdir -p " + dir).c_str()), 0);
  return dir;
}

// Element g of a 1-D float32 variable is base + g.
void Fill(DVariable* v, float base) {
  for (int64_t d : v->layout().mesh().local_device_ids()) {
    const Box box = v->DeviceBox(d);
    absl::Span<float> s = v->shard<float>(d);
    for (int64_t i = 0; i < box.num_elements(); ++i) s[i] = base + box.origin()[0] + i;
  }
}

bool Holds(DVariable* v, float base) {
  for (int64_t d : v->layout().mesh().local_device_ids()) {
    const Box box = v->DeviceBox(d);
    absl::Span<float> s = v->shard<float>(d);
    for (int64_t i = 0; i < box.num_elements(); ++i) {
      if (s[i] != base + box.origin()[0] + i) return false;
    }
  }
  return true;
}

class IndexReadsTest : public ::testing::Test {
 protected:
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Index files read by `op`.
  template <typename Op>
  static int64_t ReadsOf(Op op) {
    const int64_t before = internal::IndexReadsForTesting();
    op();
    return internal::IndexReadsForTesting() - before;
  }

  std::unique_ptr<DVariable> Var(const std::string& name, int64_t n) {
    return DVariable::Create(name, DType::kFloat32, {n},
                             Layout::Create({"x"}, mesh_).value())
        .value();
  }

  // model/dense/{kernel,bias}, model/step, saved as `<dir>/ckpt-1`.
  std::string SaveModel() {
    Module root;
    Module* dense = root.AddModule("dense").value();
    Fill(dense
             ->AddVariable("kernel", DType::kFloat32, {9},
                           Layout::Create({"x"}, mesh_).value())
             .value(),
         0);
    Fill(dense
             ->AddVariable("bias", DType::kFloat32, {4},
                           Layout::Create({"x"}, mesh_).value())
             .value(),
         100);
    EXPECT_TRUE(root.AddValue("step", TrackedValue::Create(int64_t{42})).ok());
    auto ckpt = DTensorCheckpoint::Create(comm_.get(), mesh_, {{"model", &root}}).value();
    return ckpt->Save(dir_ + "/ckpt").value();
  }

  // Variables a, b, c (seeded 0, 10, 20), saved with a Saver as `<dir>/vars`.
  std::string SaveVariables() {
    std::vector<std::unique_ptr<DVariable>> vars;
    std::map<std::string, DVariable*> list;
    for (const char* name : {"a", "b", "c"}) {
      vars.push_back(Var(name, 5 + vars.size()));
      Fill(vars.back().get(), 10.0f * (vars.size() - 1));
      list[name] = vars.back().get();
    }
    auto saver = Saver::Create(comm_.get(), list).value();
    return saver->Save(dir_ + "/vars", std::nullopt, /*write_state=*/false).value();
  }

  std::unique_ptr<Communicator> comm_ = SerialCommunicator();
  Mesh mesh_ = Mesh::Create({{"x", 2}}, 0, 1).value();
  std::string dir_ = TempDir();
};

TEST_F(IndexReadsTest, DTensorCheckpointRestore) {
  const std::string path = SaveModel();
  Module root;
  Module* dense = root.AddModule("dense").value();
  DVariable* kernel =
      dense->AddVariable("kernel", DType::kFloat32, {9}, Layout::Replicated(mesh_, 1))
          .value();
  DVariable* bias = dense
                        ->AddVariable("bias", DType::kFloat32, {4},
                                      Layout::Create({"x"}, mesh_).value())
                        .value();
  TrackedValue* step = root.AddValue("step", TrackedValue::Create(int64_t{0})).value();
  auto ckpt = DTensorCheckpoint::Create(comm_.get(), mesh_, {{"model", &root}}).value();
  absl::StatusOr<LoadStatus> status;
  EXPECT_EQ(ReadsOf([&] { status = ckpt->Restore(path); }), 1);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(status->AssertConsumed().ok()) << status->AssertConsumed();
  EXPECT_TRUE(Holds(kernel, 0));
  EXPECT_TRUE(Holds(bias, 100));
  EXPECT_EQ(step->int64(), 42);
}

TEST_F(IndexReadsTest, DeferredValuesReadNoFurtherIndex) {
  const std::string path = SaveModel();
  Module root;  // Empty: everything below it is deferred.
  auto ckpt = DTensorCheckpoint::Create(comm_.get(), mesh_, {{"model", &root}}).value();
  const int64_t reads = ReadsOf([&] {
    absl::StatusOr<LoadStatus> status = ckpt->Restore(path);
    ASSERT_TRUE(status.ok()) << status.status();
    EXPECT_FALSE(status->AssertConsumed().ok());
    // Each of these takes a value the restore left pending.
    Module* dense = root.AddModule("dense").value();
    DVariable* kernel = dense
                            ->AddVariable("kernel", DType::kFloat32, {9},
                                          Layout::Create({"x"}, mesh_).value())
                            .value();
    TrackedValue* step = root.AddValue("step", TrackedValue::Create(int64_t{0})).value();
    DVariable* bias =
        dense->AddVariable("bias", DType::kFloat32, {4}, Layout::Replicated(mesh_, 1))
            .value();
    EXPECT_TRUE(Holds(kernel, 0));
    EXPECT_TRUE(Holds(bias, 100));
    EXPECT_EQ(step->int64(), 42);
    EXPECT_TRUE(status->AssertConsumed().ok()) << status->AssertConsumed();
  });
  EXPECT_EQ(reads, 1);
}

TEST_F(IndexReadsTest, SaverRestore) {
  const std::string path = SaveVariables();
  for (bool sequentially : {false, true}) {
    SCOPED_TRACE(sequentially ? "restore_sequentially" : "one call");
    std::vector<std::unique_ptr<DVariable>> vars;
    std::map<std::string, DVariable*> list;
    for (const char* name : {"a", "b", "c"}) {
      vars.push_back(Var(name, 5 + vars.size()));
      list[name] = vars.back().get();
    }
    SaverOptions options;
    options.restore_sequentially = sequentially;
    auto saver = Saver::Create(comm_.get(), list, options).value();
    absl::Status s;
    EXPECT_EQ(ReadsOf([&] { s = saver->Restore(path); }), 1);
    ASSERT_TRUE(s.ok()) << s;
    for (size_t i = 0; i < vars.size(); ++i) EXPECT_TRUE(Holds(vars[i].get(), 10.0f * i));
  }
}

TEST_F(IndexReadsTest, ImportStructureWithValues) {
  const std::string path = SaveVariables();
  absl::StatusOr<ImportedStructure> imported;
  EXPECT_EQ(ReadsOf([&] { imported = ImportStructure(comm_.get(), path, mesh_); }), 1);
  ASSERT_TRUE(imported.ok()) << imported.status();
  ASSERT_EQ(imported->variables.size(), 3u);
  EXPECT_TRUE(Holds(imported->variables[2].get(), 20));
}

TEST_F(IndexReadsTest, RestoreTensors) {
  const std::string path = SaveVariables();
  std::vector<float> a(5), c(7);
  const Layout whole = Layout::Replicated(mesh_, 1);
  absl::Status s;
  EXPECT_EQ(ReadsOf([&] {
              s = RestoreTensors(
                  *comm_, path,
                  {{"a", DType::kFloat32, {5}, whole, {a.data(), a.data()}},
                   {"c", DType::kFloat32, {7}, whole, {c.data(), c.data()}}},
                  IoOptions());
            }),
            1);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(c[6], 26);
}

TEST_F(IndexReadsTest, CheckpointReader) {
  const std::string path = SaveModel();
  const int64_t reads = ReadsOf([&] {
    absl::StatusOr<std::unique_ptr<CheckpointReader>> r = CheckpointReader::Open(path);
    ASSERT_TRUE(r.ok()) << r.status();
    for (const VariableInfo& v : (*r)->ListVariables()) {
      EXPECT_TRUE((*r)->ReadTensor(v.key).ok()) << v.key;
    }
    EXPECT_TRUE((*r)->ReadBox("model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE",
                              Box::Create({2}, {3}).value())
                    .ok());
    absl::StatusOr<std::vector<std::string>> problems = (*r)->VerifyAll();
    ASSERT_TRUE(problems.ok()) << problems.status();
    EXPECT_TRUE(problems->empty());
  });
  EXPECT_EQ(reads, 1);
}

}  // namespace
}  // namespace meshckpt
