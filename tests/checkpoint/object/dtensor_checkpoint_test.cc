// DTensorCheckpoint in one process: numbering, the state file, restore
// status assertions, deferred restoration, construction errors, values.
#include "meshckpt/checkpoint/object/dtensor_checkpoint.h"

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/checkpoint/object/dvariable.h"
#include "meshckpt/checkpoint/object/tracked_value.h"
#include "meshckpt/checkpoint/state/checkpoint_state.h"
#include "meshckpt/io/fs/fs.h"
#include "meshckpt/proto/convert.h"

namespace meshckpt {
namespace {

using ::testing::HasSubstr;

std::string TempDir() {
  std::string dir = "/tmp/meshckpt_dtc_" + RandomId();
  std::string cmd = "mkdir -p " + dir;
  EXPECT_EQ(std::system(cmd.c_str()), 0);
  return dir;
}

// Fills every local shard of `v` with base + global flat index.
void FillIota(DVariable* v, float base) {
  for (int64_t d : v->layout().mesh().local_device_ids()) {
    Box box = v->DeviceBox(d);
    absl::Span<float> s = v->shard<float>(d);
    for (int64_t i = 0; i < box.num_elements(); ++i) {
      // Row-major index within the box -> global flat index.
      int64_t rem = i, g = 0, stride = 1;
      std::vector<int64_t> idx(box.rank());
      for (int k = box.rank() - 1; k >= 0; --k) {
        idx[k] = rem % box.shape()[k];
        rem /= box.shape()[k];
      }
      for (int k = box.rank() - 1; k >= 0; --k) {
        g += (box.origin()[k] + idx[k]) * stride;
        stride *= v->shape()[k];
      }
      s[i] = base + static_cast<float>(g);
    }
  }
}

bool IsIota(DVariable* v, float base) {
  for (int64_t d : v->layout().mesh().local_device_ids()) {
    std::vector<float> got(v->shard<float>(d).begin(), v->shard<float>(d).end());
    FillIota(v, base);
    std::vector<float> want(v->shard<float>(d).begin(), v->shard<float>(d).end());
    std::copy(got.begin(), got.end(), v->shard<float>(d).begin());
    if (got != want) return false;
  }
  return true;
}

// Descriptors this process has open on `path` (or on what was at `path`).
int OpenDescriptorsOf(const std::string& path) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    const std::string target = std::filesystem::read_symlink(e.path(), ec).string();
    if (!ec && target.rfind(path, 0) == 0) ++n;
  }
  return n;
}

class DTensorCheckpointTest : public ::testing::Test {
 protected:
  std::unique_ptr<Communicator> comm_ = SerialCommunicator();
  Mesh mesh_ = Mesh::Create({{"x", 2}, {"y", 3}}, 0, 1).value();
  std::string dir_ = TempDir();

  Layout L(std::vector<std::string> specs) {
    return Layout::Create(specs, mesh_).value();
  }

  // model/dense/{kernel,bias}, model/step
  struct Model {
    Module root;
    Module* dense;
    DVariable* kernel;
    DVariable* bias;
    TrackedValue* step;
  };
  std::unique_ptr<Model> MakeModel(Layout kernel_layout, bool with_bias = true) {
    auto m = std::make_unique<Model>();
    m->dense = m->root.AddModule("dense").value();
    m->kernel =
        m->dense->AddVariable("kernel", DType::kFloat32, {7, 5}, kernel_layout).value();
    m->bias = with_bias ? m->dense
                              ->AddVariable("bias", DType::kFloat32, {5},
                                            Layout::Replicated(mesh_, 1))
                              .value()
                        : nullptr;
    m->step = m->root.AddValue("step", TrackedValue::Create(int64_t{0})).value();
    return m;
  }
};

TEST_F(DTensorCheckpointTest, SaveNumbersAndRestoresOntoAnotherLayout) {
  auto m = MakeModel(L({"x", "y"}));
  FillIota(m->kernel, 0);
  FillIota(m->bias, 100);
  ASSERT_TRUE(m->step->set(int64_t{42}).ok());
  auto ckpt =
      DTensorCheckpoint::Create(comm_.get(), mesh_, {{"model", &m->root}}).value();
  EXPECT_EQ(ckpt->Save(dir_ + "/ckpt").value(), dir_ + "/ckpt-1");
  absl::StatusOr<std::string> second = ckpt->Save(dir_ + "/ckpt");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*second, dir_ + "/ckpt-2");
  EXPECT_EQ(ckpt->save_counter(), 2);
  EXPECT_EQ(LatestCheckpoint(dir_).value(), dir_ + "/ckpt-2");
  // The index records the checkpoint's mesh, not an internal values mesh.
  IndexRecord index = ReadCheckpointIndex(*comm_, *second).value();
  EXPECT_EQ(index.mesh.dims(), mesh_.dims());
  CheckpointState state = ReadCheckpointState(dir_).value();
  EXPECT_EQ(state.model_checkpoint_path, "ckpt-2");
  EXPECT_EQ(state.all_model_checkpoint_paths.size(), 2);

  auto m2 = MakeModel(L({"unsharded", "x"}));
  auto ckpt2 =
      DTensorCheckpoint::Create(comm_.get(), mesh_, {{"model", &m2->root}}).value();
  absl::StatusOr<LoadStatus> st = ckpt2->Restore(*second);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_TRUE(st->AssertConsumed().ok()) << st->AssertConsumed();
  EXPECT_TRUE(IsIota(m2->kernel, 0));
  EXPECT_TRUE(IsIota(m2->bias, 100));
  EXPECT_EQ(m2->step->int64(), 42);
  EXPECT_EQ(ckpt2->save_counter(), 2);
}

TEST_F(DTensorCheckpointTest, PerCallOptionsReachTheIo) {
  auto m = MakeModel(L({"x", "y"}));
  auto ckpt =
      DTensorCheckpoint::Create(comm_.get(), mesh_, {{"model", &m->root}}).value();
  int64_t last_done = -1, last_total = -1;
  IoOptions o;
  o.transfer_mode = TransferMode::kCollective;
  o.progress = [&](int64_t done, int64_t total) {
    EXPECT_LE(done, total);
    last_done = done;
    last_total = total;
  };
  ASSERT_TRUE(ckpt->Write(dir_ + "/p", &o).ok());
  // Kernel 7x5 and bias 5 float32 are all this rank writes (values are
  // written separately from variables but counted too).
  EXPECT_GT(last_total, 0);
  EXPECT_EQ(last_done, last_total);
  last_done = last_total = -1;
  ASSERT_TRUE(ckpt->Restore(dir_ + "/p", &o).ok());
  EXPECT_EQ(last_done, last_total);
  EXPECT_GT(last_total, 0);
}

TEST_F(DTensorCheckpointTest, WriteUsesTheExactPrefixAndNoStateFile) {
  auto m = MakeModel(L({"x", "unsharded"}));
  auto ckpt =
      DTensorCheckpoint::Create(comm_.get(), mesh_, {{"model", &m->root}}).value();
  EXPECT_EQ(ckpt->Write(dir_ + "/exact").value(), dir_ + "/exact");
  EXPECT_TRUE(CheckpointExists(dir_ + "/exact"));
  EXPECT_FALSE(FileExists(dir_ + "/checkpoint"));
  EXPECT_EQ(ckpt->save_counter(), 0);
  EXPECT_TRUE(ckpt->Read(dir_ + "/exact").ok());
}

TEST_F(DTensorCheckpointTest, AssertionsNameWhatDidNotMatch) {
  auto m = MakeModel(L({"x", "y"}));
  auto ckpt =
      DTensorCheckpoint::Create(comm_.get(), mesh_, {{"model", &m->root}}).value();
  const std::string path = ckpt->Save(dir_ + "/ckpt").value();

  // Live graph has an extra variable: existing objects do not all match.
  auto bigger = MakeModel(L({"x", "y"}));
  ASSERT_TRUE(
      bigger->dense
          ->AddVariable("extra", DType::kFloat32, {2}, Layout::Replicated(mesh_, 1))
          .ok());
  auto c1 =
      DTensorCheckpoint::Create(comm_.get(), mesh_, {{"model", &bigger->root}}).value();
  LoadStatus s1 = c1->Restore(path).value();
  EXPECT_THAT(std::string(s1.AssertExistingObjectsMatched().message()),
              HasSubstr("model/dense/extra"));
  EXPECT_FALSE(s1.AssertConsumed().ok());
  EXPECT_TRUE(s1.AssertNontrivialMatch().ok());

  // Live graph lacks the bias: existing objects match, values unused.
  std::vector<std::string> warnings;
  auto smaller = MakeModel(L({"x", "y"}), /*with_bias=*/false);
  auto c2 =
      DTensorCheckpoint::Create(comm_.get(), mesh_, {{"model", &smaller->root}}).value();
  c2->SetWarningSink([&](const std::string& w) { warnings.push_back(w); });
  {
    LoadStatus s2 = c2->Restore(path).value();
    EXPECT_TRUE(s2.AssertExistingObjectsMatched().ok())
        << s2.AssertExistingObjectsMatched();
    EXPECT_THAT(std::string(s2.AssertConsumed().message()),
                HasSubstr("model/dense/bias"));
    EXPECT_EQ(s2.UnusedKeys(),
              std::vector<std::string>{"model/dense/bias/.ATTRIBUTES/VARIABLE_VALUE"});
  }
  // The pending bias keeps the restore alive until the model goes away.
  EXPECT_TRUE(warnings.empty());
  smaller.reset();
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0], HasSubstr("model/dense/bias"));

  // Same again with ExpectPartial: no report.
  warnings.clear();
  auto smaller2 = MakeModel(L({"x", "y"}), false);
  auto c3 =
      DTensorCheckpoint::Create(comm_.get(), mesh_, {{"model", &smaller2->root}}).value();
  c3->SetWarningSink([&](const std::string& w) { warnings.push_back(w); });
  c3->Restore(path).value().ExpectPartial();
  smaller2.reset();
  EXPECT_TRUE(warnings.empty());

  // Nothing but the root and counter match.
  Module empty;
  auto c4 = DTensorCheckpoint::Create(comm_.get(), mesh_, {{"other", &empty}}).value();
  LoadStatus s4 = c4->Restore(path).value();
  s4.ExpectPartial();
  EXPECT_FALSE(s4.AssertNontrivialMatch().ok());
}

TEST_F(DTensorCheckpointTest, DeferredRestorationAppliesWhenObjectsAppear) {
  auto m = MakeModel(L({"x", "y"}));
  FillIota(m->kernel, 7);
  auto ckpt =
      DTensorCheckpoint::Create(comm_.get(), mesh_, {{"model", &m->root}}).value();
  const std::string path = ckpt->Save(dir_ + "/ckpt").value();

  Module root;  // Built lazily after restore.
  auto c = DTensorCheckpoint::Create(comm_.get(), mesh_, {{"model", &root}}).value();
  LoadStatus st = c->Restore(path).value();
  EXPECT_FALSE(st.AssertConsumed().ok());
  Module* dense = root.AddModule("dense").value();
  DVariable* kernel =
      dense->AddVariable("kernel", DType::kFloat32, {7, 5}, L({"y", "unsharded"})).value();
  EXPECT_TRUE(IsIota(kernel, 7));  // Applied as soon as it was tracked.
  ASSERT_TRUE(
      dense->AddVariable("bias", DType::kFloat32, {5}, Layout::Replicated(mesh_, 1)).ok());
  ASSERT_TRUE(root.AddValue("step", TrackedValue::Create(int64_t{0})).ok());
  EXPECT_TRUE(st.AssertConsumed().ok()) << st.AssertConsumed();

  // A deferred value of the wrong shape fails when the object appears.
  Module root2;
  auto c2 = DTensorCheckpoint::Create(comm_.get(), mesh_, {{"model", &root2}}).value();
  LoadStatus st2 = c2->Restore(path).value();
  st2.ExpectPartial();
  Module* d2 = root2.AddModule("dense").value();
  absl::StatusOr<DVariable*> bad =
      d2->AddVariable("kernel", DType::kFloat32, {5, 7}, Layout::Replicated(mesh_, 2));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(DTensorCheckpointTest, DataFileStaysOpenWhileValuesArePending) {
  auto m = MakeModel(L({"x", "y"}));
  auto ckpt =
      DTensorCheckpoint::Create(comm_.get(), mesh_, {{"model", &m->root}}).value();
  const std::string path = ckpt->Write(dir_ + "/p").value();
  const std::string data = DataFilePath(path);

  Module root;
  auto c = DTensorCheckpoint::Create(comm_.get(), mesh_, {{"model", &root}}).value();
  LoadStatus st = c->Restore(path).value();
  EXPECT_GT(OpenDescriptorsOf(data), 0);  // dense and step are pending.
  Module* dense = root.AddModule("dense").value();
  ASSERT_TRUE(dense->AddVariable("kernel", DType::kFloat32, {7, 5}, L({"x", "y"})).ok());
  ASSERT_TRUE(
      dense->AddVariable("bias", DType::kFloat32, {5}, Layout::Replicated(mesh_, 1)).ok());
  EXPECT_GT(OpenDescriptorsOf(data), 0);  // step is.
  ASSERT_TRUE(root.AddValue("step", TrackedValue::Create(int64_t{0})).ok());
  EXPECT_EQ(OpenDescriptorsOf(data), 0);
  EXPECT_TRUE(st.AssertConsumed().ok()) << st.AssertConsumed();

  // Nothing left pending: closed by the time Restore returns.
  auto m2 = MakeModel(L({"x", "y"}));
  auto c2 = DTensorCheckpoint::Create(comm_.get(), mesh_, {{"model", &m2->root}}).value();
  LoadStatus st2 = c2->Restore(path).value();
  EXPECT_EQ(OpenDescriptorsOf(data), 0);
  EXPECT_TRUE(st2.AssertConsumed().ok()) << st2.AssertConsumed();
}

TEST_F(DTensorCheckpointTest, RootObjectReceivesDeferredValues) {
  auto m = MakeModel(L({"x", "y"}));
  FillIota(m->kernel, 3);
  Module extra;
  auto ckpt =
      DTensorCheckpoint::Create(comm_.get(), mesh_, {{"extra", &extra}}, &m->root).value();
  const std::string path = ckpt->Save(dir_ + "/ckpt").value();
  EXPECT_EQ(m->root.FindChild("extra"), nullptr);  // Attached, not adopted.
  EXPECT_EQ(m->root.FindChild("save_counter"), nullptr);

  Module root;  // The root gets its children after the restore.
  Module extra2;
  auto c =
      DTensorCheckpoint::Create(comm_.get(), mesh_, {{"extra", &extra2}}, &root).value();
  LoadStatus st = c->Restore(path).value();
  Module* dense = root.AddModule("dense").value();
  DVariable* kernel =
      dense->AddVariable("kernel", DType::kFloat32, {7, 5}, L({"unsharded", "y"})).value();
  EXPECT_TRUE(IsIota(kernel, 3));
  ASSERT_TRUE(
      dense->AddVariable("bias", DType::kFloat32, {5}, Layout::Replicated(mesh_, 1)).ok());
  ASSERT_TRUE(root.AddValue("step", TrackedValue::Create(int64_t{0})).ok());
  EXPECT_TRUE(st.AssertConsumed().ok()) << st.AssertConsumed();
  EXPECT_EQ(c->save_counter(), 1);
}

TEST_F(DTensorCheckpointTest, ConstructionErrors) {
  Module a, b;
  EXPECT_EQ(
      DTensorCheckpoint::Create(comm_.get(), mesh_, {{"a", nullptr}}).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DTensorCheckpoint::Create(nullptr, mesh_, {{"a", &a}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DTensorCheckpoint::Create(comm_.get(), mesh_, {{"a", &a}, {"a", &b}})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DTensorCheckpoint::Create(comm_.get(), mesh_, {{"save_counter", &a}})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      DTensorCheckpoint::Create(comm_.get(), mesh_, {{"bad/name", &a}}).status().code(),
      absl::StatusCode::kInvalidArgument);
  Module root;
  ASSERT_TRUE(root.Track("a", &a).ok());
  // Root and keyword agree: fine. Disagree: rejected.
  EXPECT_TRUE(DTensorCheckpoint::Create(comm_.get(), mesh_, {{"a", &a}}, &root).ok());
  absl::StatusOr<std::unique_ptr<DTensorCheckpoint>> clash =
      DTensorCheckpoint::Create(comm_.get(), mesh_, {{"a", &b}}, &root);
  EXPECT_EQ(clash.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(clash.status().message()), HasSubstr("'a'"));
  Mesh two_ranks = Mesh::Create({{"x", 2}}, 0, 2).value();
  EXPECT_EQ(
      DTensorCheckpoint::Create(comm_.get(), two_ranks, {{"a", &a}}).status().code(),
      absl::StatusCode::kInvalidArgument);
  auto ok = DTensorCheckpoint::Create(comm_.get(), mesh_, {{"a", &a}}).value();
  EXPECT_EQ(ok->Restore(dir_ + "/nothing-here").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(DTensorCheckpointTest, ValuesOfEveryKindAndScope) {
  Module root;
  TrackedValue* i = root.AddValue("i", TrackedValue::Create(int64_t{-5})).value();
  TrackedValue* f = root.AddValue("f", TrackedValue::Create(2.5)).value();
  TrackedValue* s =
      root.AddValue("s", TrackedValue::Create(std::string("cfg\0x", 5))).value();
  TrackedValue* r =
      root.AddValue("rng", TrackedValue::Create(std::string("seed-0"),
                                                TrackedValue::Scope::kPerRank))
          .value();
  auto ckpt = DTensorCheckpoint::Create(comm_.get(), mesh_, {{"state", &root}}).value();
  const std::string path = ckpt->Save(dir_ + "/v").value();
  ASSERT_TRUE(i->set(int64_t{0}).ok());
  ASSERT_TRUE(f->set(0.0).ok());
  ASSERT_TRUE(s->set(std::string()).ok());
  ASSERT_TRUE(r->set(std::string()).ok());
  EXPECT_FALSE(i->set(1.0).ok());  // Type is fixed.
  LoadStatus st = ckpt->Restore(path).value();
  EXPECT_TRUE(st.AssertConsumed().ok()) << st.AssertConsumed();
  EXPECT_EQ(i->int64(), -5);
  EXPECT_EQ(f->float64(), 2.5);
  EXPECT_EQ(s->bytes(), std::string("cfg\0x", 5));
  EXPECT_EQ(r->bytes(), "seed-0");
  ASSERT_EQ(r->saved_values().size(), 1u);

  // Same key, other type: FailedPrecondition.
  Module other;
  ASSERT_TRUE(other.AddValue("i", TrackedValue::Create(std::string("x"))).ok());
  auto c2 = DTensorCheckpoint::Create(comm_.get(), mesh_, {{"state", &other}}).value();
  EXPECT_EQ(c2->Restore(path).status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace meshckpt
