// A checkpoint replaced while it is being restored: once a restore has opened
// it, every value comes from the files it opened, never from the newer ones
// (a Saver restoring one variable at a time, values DTensorCheckpoint defers
// until objects are tracked, a CheckpointReader), over direct and MPI-IO
// reads. The replacement is what a save over the same prefix does: the new
// data file, then the new index, renamed over the old.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/checkpoint/object/dtensor_checkpoint.h"
#include "meshckpt/checkpoint/object/dvariable.h"
#include "meshckpt/checkpoint/object/tracked_value.h"
#include "meshckpt/checkpoint/reader/checkpoint_reader.h"
#include "meshckpt/checkpoint/saver/saver.h"
#include "meshckpt/io/fs/fs.h"

namespace meshckpt {
namespace {

using ::testing::ElementsAre;

std::string TempDir() {
  std::string dir = "/tmp/meshckpt_replaced_" + RandomId();
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

// Moves checkpoint `from` over `to`, data file first, as a save commits.
void Replace(const std::string& from, const std::string& to) {
  ASSERT_EQ(std::rename(DataFilePath(from).c_str(), DataFilePath(to).c_str()), 0);
  ASSERT_EQ(std::rename(IndexFilePath(from).c_str(), IndexFilePath(to).c_str()), 0);
}

class ReplacedFilesTest : public ::testing::TestWithParam<TransferMode> {
 protected:
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<DVariable> Var(const std::string& name, int64_t n) {
    return DVariable::Create(name, DType::kFloat32, {n},
                             Layout::Create({"x"}, mesh_).value())
        .value();
  }

  // Variables a, b, c of the same shapes, element g of the i-th base + 10 i + g.
  void SaveVariables(const std::string& prefix, float base) {
    std::vector<std::unique_ptr<DVariable>> vars;
    std::map<std::string, DVariable*> list;
    for (const char* name : {"a", "b", "c"}) {
      vars.push_back(Var(name, 6));
      Fill(vars.back().get(), base + 10.0f * (vars.size() - 1));
      list[name] = vars.back().get();
    }
    auto saver = Saver::Create(comm_.get(), list).value();
    ASSERT_TRUE(saver->Save(prefix, std::nullopt, /*write_state=*/false).ok());
  }

  // model/dense/{kernel,bias} (bias = base + 100 + g) and model/step = base.
  void SaveModel(const std::string& prefix, float base) {
    Module root;
    Module* dense = root.AddModule("dense").value();
    Fill(dense
             ->AddVariable("kernel", DType::kFloat32, {9},
                           Layout::Create({"x"}, mesh_).value())
             .value(),
         base);
    Fill(dense->AddVariable("bias", DType::kFloat32, {4}, Layout::Replicated(mesh_, 1))
             .value(),
         base + 100);
    ASSERT_TRUE(
        root.AddValue("step", TrackedValue::Create(static_cast<int64_t>(base))).ok());
    auto ckpt = DTensorCheckpoint::Create(comm_.get(), mesh_, {{"model", &root}}).value();
    ASSERT_TRUE(ckpt->Write(prefix).ok());
  }

  IoOptions Io() const {
    IoOptions o;
    o.transfer_mode = GetParam();
    return o;
  }

  std::unique_ptr<Communicator> comm_ = SerialCommunicator();
  Mesh mesh_ = Mesh::Create({{"x", 2}}, 0, 1).value();
  std::string dir_ = TempDir();
};

TEST_P(ReplacedFilesTest, SequentialSaverRestoreKeepsReadingWhatItOpened) {
  const std::string a = dir_ + "/a", b = dir_ + "/b";
  SaveVariables(a, 0);
  SaveVariables(b, 1000);
  std::vector<std::unique_ptr<DVariable>> vars;
  std::map<std::string, DVariable*> list;
  for (const char* name : {"a", "b", "c"}) {
    vars.push_back(Var(name, 6));
    list[name] = vars.back().get();
  }
  SaverOptions options;
  options.restore_sequentially = true;
  options.io = Io();
  bool replaced = false;
  // The first variable is in; the others are still to be read.
  options.io.progress = [&](int64_t done, int64_t total) {
    if (done == total && !replaced) {
      replaced = true;
      Replace(b, a);
    }
  };
  auto saver = Saver::Create(comm_.get(), list, options).value();
  absl::Status s = saver->Restore(a);
  ASSERT_TRUE(s.ok()) << s;
  ASSERT_TRUE(replaced);
  for (size_t i = 0; i < vars.size(); ++i) {
    EXPECT_TRUE(Holds(vars[i].get(), 10.0f * i)) << "variable " << i;
  }
}

TEST_P(ReplacedFilesTest, DeferredValuesComeFromTheCheckpointRestored) {
  const std::string a = dir_ + "/a", b = dir_ + "/b";
  SaveModel(a, 0);
  SaveModel(b, 1000);
  Module root;
  IoOptions io = Io();
  auto ckpt =
      DTensorCheckpoint::Create(comm_.get(), mesh_, {{"model", &root}}, nullptr, io)
          .value();
  absl::StatusOr<LoadStatus> status = ckpt->Restore(a);
  ASSERT_TRUE(status.ok()) << status.status();
  Replace(b, a);
  Module* dense = root.AddModule("dense").value();
  absl::StatusOr<DVariable*> kernel = dense->AddVariable(
      "kernel", DType::kFloat32, {9}, Layout::Create({"x"}, mesh_).value());
  ASSERT_TRUE(kernel.ok()) << kernel.status();
  absl::StatusOr<TrackedValue*> step =
      root.AddValue("step", TrackedValue::Create(int64_t{7}));
  ASSERT_TRUE(step.ok()) << step.status();
  absl::StatusOr<DVariable*> bias = dense->AddVariable(
      "bias", DType::kFloat32, {4}, Layout::Create({"x"}, mesh_).value());
  ASSERT_TRUE(bias.ok()) << bias.status();
  EXPECT_TRUE(Holds(*kernel, 0));
  EXPECT_TRUE(Holds(*bias, 100));
  EXPECT_EQ((*step)->int64(), 0);
  EXPECT_TRUE(status->AssertConsumed().ok()) << status->AssertConsumed();
}

INSTANTIATE_TEST_SUITE_P(Modes, ReplacedFilesTest,
                         ::testing::Values(TransferMode::kDirect,
                                           TransferMode::kIndependent),
                         [](const ::testing::TestParamInfo<TransferMode>& info) {
                           return info.param == TransferMode::kDirect ? "Direct"
                                                                      : "MpiIo";
                         });

// The reader reads numbers directly and strings through HDF5: both from the
// file it opened.
TEST(ReplacedFilesReaderTest, ReaderKeepsReadingWhatItOpened) {
  std::unique_ptr<Communicator> comm = SerialCommunicator();
  const std::string dir = TempDir(), a = dir + "/a", b = dir + "/b";
  const Mesh mesh = Mesh::Create({{"x", 2}}, 0, 1).value();
  const Layout split = Layout::Create({"x"}, mesh).value();
  auto save = [&](const std::string& prefix, const std::string& tag, float base) {
    std::vector<std::string> names0 = {tag + "0", tag + "1"}, names1 = {tag + "2"};
    std::vector<float> w0 = {base, base + 1}, w1 = {base + 2};
    absl::Status s = SaveTensors(
        *comm, prefix,
        {{"names", "", DType::kString, {3}, split, {names0.data(), names1.data()}},
         {"w", "", DType::kFloat32, {3}, split, {w0.data(), w1.data()}}},
        {}, {});
    ASSERT_TRUE(s.ok()) << s;
  };
  save(a, "first-", 0);
  save(b, "second", 1000);  // Same lengths, so the same data file size.
  absl::StatusOr<std::unique_ptr<CheckpointReader>> r = CheckpointReader::Open(a);
  ASSERT_TRUE(r.ok()) << r.status();
  Replace(b, a);
  absl::StatusOr<TensorData> names = (*r)->ReadTensor("names");
  ASSERT_TRUE(names.ok()) << names.status();
  EXPECT_THAT(names->strings, ElementsAre("first-0", "first-1", "first-2"));
  absl::StatusOr<TensorData> w = (*r)->ReadTensor("w");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_THAT(w->as<float>(), ElementsAre(0, 1, 2));
  absl::StatusOr<std::vector<std::string>> problems = (*r)->VerifyAll();
  ASSERT_TRUE(problems.ok()) << problems.status();
  EXPECT_TRUE(problems->empty()) << problems->front();
  r->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace meshckpt
