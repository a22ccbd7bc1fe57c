// CheckpointReader in one process on an intact checkpoint: written with
// SaveTensors on a SerialCommunicator, over meshes with several devices on
// the one rank and sharded (often unevenly) layouts, every element a
// function of its global flat index, then read back whole, in boxes and as
// values. Damaged and missing files: checkpoint_reader_damage_test.cc.
#include "meshckpt/checkpoint/reader/checkpoint_reader.h"

#include <complex>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/checkpoint/object/tracked_value.h"
#include "tests/checkpoint/reader/reader_test_util.h"

namespace meshckpt {
namespace {

using ::meshckpt::reader_test::Bytes;
using ::meshckpt::reader_test::MakeTensor;
using ::meshckpt::reader_test::RemoveCheckpoint;
using ::meshckpt::reader_test::TempPrefix;
using ::meshckpt::reader_test::Tensor;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const std::vector<std::string>& Names() {
  static const auto* names =
      new std::vector<std::string>{"alpha", "", std::string("a\0b", 3), "d", "last"};
  return *names;
}

// A checkpoint of several dtypes, shapes and layouts over a 2x3 mesh on the
// one rank; removed at the end of each test.
class CheckpointReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const Mesh mesh = Mesh::Create({{"x", 2}, {"y", 3}}, 0, 1).value();
    auto layout = [&](std::vector<std::string> specs) {
      return Layout::Create(std::move(specs), mesh).value();
    };
    f32_ = MakeTensor<float>("model/w", DType::kFloat32, {13, 7}, layout({"y", "x"}),
                             [](int64_t g) { return g * 0.5f - 7.0f; });
    i64_ = MakeTensor<int64_t>(
        "model/counts", DType::kInt64, {6, 5}, layout({"x", "unsharded"}), [](int64_t g) {
          return g == 0 ? std::numeric_limits<int64_t>::min() : g * 1000000007 - 5;
        });
    bf16_ = MakeTensor<uint16_t>(
        "model/bf16", DType::kBfloat16, {5, 4}, layout({"unsharded", "y"}),
        [](int64_t g) { return static_cast<uint16_t>(0x3f80 + g * 37); });
    bool_ = MakeTensor<uint8_t>("flags", DType::kBool, {7}, layout({"y"}),
                                [](int64_t g) { return uint8_t{g % 3 == 0}; });
    c64_ = MakeTensor<std::complex<float>>(
        "model/cplx", DType::kComplex64, {3, 4}, layout({"x", "y"}),
        [](int64_t g) { return std::complex<float>(g, -0.5f * g); });
    str_ = MakeTensor<std::string>("names", DType::kString, {5}, layout({"y"}),
                                   [](int64_t g) { return Names()[g]; });
    f64_scalar_ = MakeTensor<double>("pi", DType::kFloat64, {}, layout({}),
                                     [](int64_t) { return 3.25; });
    empty_ = MakeTensor<float>("empty", DType::kFloat32, {0, 4},
                               layout({"x", "unsharded"}), [](int64_t) { return 1.0f; });
    // TrackedValue storage: kGlobal values are scalars, kPerRank values a
    // vector over the saved ranks.
    step_ = MakeTensor<int64_t>("step", DType::kInt64, {}, layout({}),
                                [](int64_t) { return int64_t{1234567890123}; });
    lr_ = MakeTensor<double>("lr", DType::kFloat64, {}, layout({}),
                             [](int64_t) { return 0.125; });
    blob_ = MakeTensor<std::string>("blob", DType::kString, {}, layout({}),
                                    [](int64_t) { return std::string("x\0y\xff", 4); });
    rng_ = MakeTensor<int64_t>("rng", DType::kInt64, {3}, layout({"unsharded"}),
                               [](int64_t g) { return 7 + g; });
    pos_ = MakeTensor<std::string>("pos", DType::kString, {3}, layout({"unsharded"}),
                                   [](int64_t g) { return std::string(g, 'b'); });
    frac_ = MakeTensor<double>("frac", DType::kFloat64, {3}, layout({"y"}),
                               [](int64_t g) { return g / 4.0; });
    f32_scalar_ = MakeTensor<float>("f32_scalar", DType::kFloat32, {}, layout({}),
                                    [](int64_t) { return 2.0f; });

    prefix_ = TempPrefix("main");
    CheckpointContents contents;
    contents.step = 42;
    contents.save_counter = 3;
    contents.user_metadata = {{"note", "hello"}};
    IoOptions options;
    options.checksum_tile_bytes = 16;  // Several tiles per chunk.
    absl::Status s =
        SaveTensors(*comm_, prefix_,
                    {f32_.ToSave(), i64_.ToSave(), bf16_.ToSave(), bool_.ToSave(),
                     c64_.ToSave(), str_.ToSave(), f64_scalar_.ToSave(), empty_.ToSave(),
                     step_.ToSave(), lr_.ToSave(), blob_.ToSave(), rng_.ToSave(),
                     pos_.ToSave(), frac_.ToSave(), f32_scalar_.ToSave()},
                    contents, options);
    ASSERT_TRUE(s.ok()) << s;
  }

  void TearDown() override { RemoveCheckpoint(prefix_); }

  std::unique_ptr<CheckpointReader> OpenOrDie() {
    absl::StatusOr<std::unique_ptr<CheckpointReader>> r = CheckpointReader::Open(prefix_);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *std::move(r) : nullptr;
  }

  std::unique_ptr<Communicator> comm_ = SerialCommunicator();
  std::string prefix_;
  Tensor<float> f32_, empty_, f32_scalar_;
  Tensor<int64_t> i64_, step_, rng_;
  Tensor<uint16_t> bf16_;
  Tensor<uint8_t> bool_;
  Tensor<std::complex<float>> c64_;
  Tensor<std::string> str_, blob_, pos_;
  Tensor<double> f64_scalar_, lr_, frac_;
};

TEST_F(CheckpointReaderTest, ListsVariablesSortedWithShapesDtypesLayouts) {
  auto r = OpenOrDie();
  ASSERT_NE(r, nullptr);
  std::vector<VariableInfo> vars = r->ListVariables();
  std::vector<std::string> keys;
  for (const VariableInfo& v : vars) keys.push_back(v.key);
  EXPECT_THAT(keys, ElementsAre("blob", "empty", "f32_scalar", "flags", "frac", "lr",
                                "model/bf16", "model/counts", "model/cplx", "model/w",
                                "names", "pi", "pos", "rng", "step"));

  absl::StatusOr<VariableInfo> w = r->GetVariableInfo("model/w");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->dataset, "model/w");
  EXPECT_EQ(w->dtype, DType::kFloat32);
  EXPECT_EQ(w->shape, (std::vector<int64_t>{13, 7}));
  EXPECT_EQ(w->layout, f32_.layout->ToString());
  EXPECT_THAT(w->layout, HasSubstr("sharding_specs:y,x,"));
  EXPECT_EQ(w->bytes, 13 * 7 * 4);
  EXPECT_EQ(w->num_chunks, 6);

  for (const VariableInfo& v : vars) {
    absl::StatusOr<VariableInfo> again = r->GetVariableInfo(v.key);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->layout, v.layout);
    EXPECT_TRUE(r->HasTensor(v.key));
  }
  auto info = [&](const std::string& key) { return r->GetVariableInfo(key).value(); };
  EXPECT_EQ(info("model/bf16").dtype, DType::kBfloat16);
  EXPECT_EQ(info("model/bf16").bytes, 5 * 4 * 2);
  EXPECT_EQ(info("model/bf16").layout, bf16_.layout->ToString());
  EXPECT_EQ(info("model/cplx").dtype, DType::kComplex64);
  // [3, 4] over x=2, y=3: 4 becomes blocks 2, 2, 0; empty shards are not
  // written.
  EXPECT_EQ(info("model/cplx").num_chunks, 4);
  EXPECT_EQ(info("model/counts").shape, (std::vector<int64_t>{6, 5}));
  EXPECT_EQ(info("flags").dtype, DType::kBool);
  EXPECT_EQ(info("names").dtype, DType::kString);
  EXPECT_EQ(info("names").bytes, 0);
  EXPECT_EQ(info("names").num_chunks, 3);
  EXPECT_EQ(info("pi").shape, std::vector<int64_t>{});
  EXPECT_EQ(info("pi").num_chunks, 1);
  EXPECT_EQ(info("pi").bytes, 8);
  EXPECT_EQ(info("empty").shape, (std::vector<int64_t>{0, 4}));
  EXPECT_EQ(info("empty").bytes, 0);
  EXPECT_EQ(info("empty").num_chunks, 0);
}

TEST_F(CheckpointReaderTest, MetadataAndPrefix) {
  auto r = OpenOrDie();
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->prefix(), prefix_);
  EXPECT_EQ(r->index().step, 42);
  EXPECT_EQ(r->index().save_counter, 3);
  EXPECT_EQ(r->index().user_metadata.at("note"), "hello");
  EXPECT_GT(r->index().timestamp, 0);
  EXPECT_EQ(r->index().tensors.size(), 15u);
}

TEST_F(CheckpointReaderTest, ReadsWholeTensorsBitExactly) {
  auto r = OpenOrDie();
  ASSERT_NE(r, nullptr);
  auto check = [&](const auto& t) {
    SCOPED_TRACE(t.key);
    absl::StatusOr<TensorData> d = r->ReadTensor(t.key);
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_EQ(d->dtype, t.dtype);
    EXPECT_EQ(d->shape, t.shape);
    EXPECT_EQ(d->bytes, Bytes(t.whole));
    EXPECT_THAT(d->strings, IsEmpty());
  };
  check(f32_);
  check(i64_);
  check(bf16_);
  check(bool_);
  check(c64_);
  check(f64_scalar_);

  absl::StatusOr<TensorData> f = r->ReadTensor("model/w");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->as<float>()[14], f32_.whole[14]);
  EXPECT_EQ(f->num_elements(), 13 * 7);
  absl::StatusOr<TensorData> c = r->ReadTensor("model/cplx");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->as<std::complex<float>>()[5], std::complex<float>(5, -2.5f));
  absl::StatusOr<TensorData> i = r->ReadTensor("model/counts");
  ASSERT_TRUE(i.ok());
  EXPECT_EQ(i->as<int64_t>()[0], std::numeric_limits<int64_t>::min());

  absl::StatusOr<TensorData> s = r->ReadTensor("names");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->dtype, DType::kString);
  EXPECT_EQ(s->shape, std::vector<int64_t>{5});
  EXPECT_EQ(s->strings, Names());
  EXPECT_EQ(s->strings[2].size(), 3u);  // The embedded NUL survives.
  EXPECT_THAT(s->bytes, IsEmpty());
  EXPECT_EQ(
      std::vector<std::string>(s->as<std::string>().begin(), s->as<std::string>().end()),
      Names());
}

TEST_F(CheckpointReaderTest, ZeroSizeTensor) {
  auto r = OpenOrDie();
  ASSERT_NE(r, nullptr);
  absl::StatusOr<TensorData> d = r->ReadTensor("empty");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->shape, (std::vector<int64_t>{0, 4}));
  EXPECT_THAT(d->bytes, IsEmpty());
  EXPECT_EQ(d->num_elements(), 0);
  EXPECT_THAT(d->as<float>(), IsEmpty());
}

TEST_F(CheckpointReaderTest, ReadsBoxes) {
  auto r = OpenOrDie();
  ASSERT_NE(r, nullptr);
  struct Case {
    const char* what;
    Box box;
  };
  const std::vector<Case> cases = {
      {"inner box across chunks", Box::Create({2, 1}, {9, 5}).value()},
      {"a row", Box::Create({3, 0}, {1, 7}).value()},
      {"a column", Box::Create({0, 6}, {13, 1}).value()},
      {"a single element", Box::Create({12, 6}, {1, 1}).value()},
      {"the whole tensor", Box::FromShape({13, 7})},
      {"an empty box", Box::Create({4, 2}, {0, 3}).value()},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    absl::StatusOr<TensorData> d = r->ReadBox("model/w", c.box);
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_EQ(d->shape, c.box.shape());
    EXPECT_EQ(d->bytes, Bytes(f32_.Expected(c.box)));
  }
  // Other dtypes and layouts.
  Box b = Box::Create({1, 1}, {4, 3}).value();
  EXPECT_EQ(r->ReadBox("model/counts", b)->bytes, Bytes(i64_.Expected(b)));
  EXPECT_EQ(r->ReadBox("model/bf16", b)->bytes, Bytes(bf16_.Expected(b)));
  Box cb = Box::Create({1, 1}, {2, 2}).value();
  EXPECT_EQ(r->ReadBox("model/cplx", cb)->bytes, Bytes(c64_.Expected(cb)));
  absl::StatusOr<TensorData> s = r->ReadBox("names", Box::Create({1}, {3}).value());
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(s->strings, ElementsAre("", std::string("a\0b", 3), "d"));
  absl::StatusOr<TensorData> scalar = r->ReadBox("pi", Box());
  ASSERT_TRUE(scalar.ok()) << scalar.status();
  EXPECT_EQ(scalar->as<double>()[0], 3.25);
}

TEST_F(CheckpointReaderTest, BoxOutsideTensorIsInvalidArgument) {
  auto r = OpenOrDie();
  ASSERT_NE(r, nullptr);
  for (const Box& box : {Box::Create({10, 0}, {4, 7}).value(),  // Past the end.
                         Box::Create({0, 0}, {1, 8}).value(),   // Too wide.
                         Box::FromShape({3}),                   // Wrong rank.
                         Box()}) {
    SCOPED_TRACE(box.ToString());
    absl::StatusOr<TensorData> d = r->ReadBox("model/w", box);
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << d.status();
    EXPECT_THAT(std::string(d.status().message()), HasSubstr("model/w"));
  }
}

TEST_F(CheckpointReaderTest, ReadsValues) {
  auto r = OpenOrDie();
  ASSERT_NE(r, nullptr);
  absl::StatusOr<TrackedValue::Value> step = r->ReadValue("step");
  ASSERT_TRUE(step.ok()) << step.status();
  EXPECT_EQ(std::get<int64_t>(*step), 1234567890123);
  absl::StatusOr<TrackedValue::Value> lr = r->ReadValue("lr");
  ASSERT_TRUE(lr.ok()) << lr.status();
  EXPECT_EQ(std::get<double>(*lr), 0.125);
  absl::StatusOr<TrackedValue::Value> blob = r->ReadValue("blob");
  ASSERT_TRUE(blob.ok()) << blob.status();
  EXPECT_EQ(std::get<std::string>(*blob), std::string("x\0y\xff", 4));

  absl::StatusOr<std::vector<TrackedValue::Value>> rng = r->ReadPerRankValues("rng");
  ASSERT_TRUE(rng.ok()) << rng.status();
  EXPECT_THAT(*rng, ElementsAre(TrackedValue::Value(int64_t{7}),
                                TrackedValue::Value(int64_t{8}),
                                TrackedValue::Value(int64_t{9})));
  absl::StatusOr<std::vector<TrackedValue::Value>> pos = r->ReadPerRankValues("pos");
  ASSERT_TRUE(pos.ok()) << pos.status();
  EXPECT_THAT(*pos, ElementsAre(TrackedValue::Value(std::string()),
                                TrackedValue::Value(std::string("b")),
                                TrackedValue::Value(std::string("bb"))));
  absl::StatusOr<std::vector<TrackedValue::Value>> frac = r->ReadPerRankValues("frac");
  ASSERT_TRUE(frac.ok()) << frac.status();
  EXPECT_THAT(*frac, ElementsAre(TrackedValue::Value(0.0), TrackedValue::Value(0.25),
                                 TrackedValue::Value(0.5)));
}

TEST_F(CheckpointReaderTest, ValueOfWrongDtypeOrRankIsFailedPrecondition) {
  auto r = OpenOrDie();
  ASSERT_NE(r, nullptr);
  for (const char* key : {"f32_scalar", "rng", "model/w", "names"}) {
    absl::StatusOr<TrackedValue::Value> v = r->ReadValue(key);
    EXPECT_EQ(v.status().code(), absl::StatusCode::kFailedPrecondition) << key;
    EXPECT_THAT(std::string(v.status().message()), HasSubstr(key));
  }
  for (const char* key : {"step", "model/w", "flags", "empty"}) {
    auto v = r->ReadPerRankValues(key);
    EXPECT_EQ(v.status().code(), absl::StatusCode::kFailedPrecondition) << key;
  }
}

TEST_F(CheckpointReaderTest, UnknownKeyIsNotFound) {
  auto r = OpenOrDie();
  ASSERT_NE(r, nullptr);
  EXPECT_FALSE(r->HasTensor("model/nope"));
  EXPECT_FALSE(r->HasTensor("model"));
  EXPECT_EQ(r->GetVariableInfo("model/nope").status().code(),
            absl::StatusCode::kNotFound);
  absl::StatusOr<TensorData> d = r->ReadTensor("model/nope");
  EXPECT_EQ(d.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(d.status().message()), HasSubstr("model/nope"));
  EXPECT_EQ(r->ReadBox("model/nope", Box()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(r->ReadValue("model/nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(r->ReadPerRankValues("model/nope").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(CheckpointReaderTest, IntactCheckpointVerifies) {
  auto r = OpenOrDie();
  ASSERT_NE(r, nullptr);
  absl::StatusOr<std::vector<std::string>> problems = r->VerifyAll();
  ASSERT_TRUE(problems.ok()) << problems.status();
  EXPECT_THAT(*problems, IsEmpty());
}

}  // namespace
}  // namespace meshckpt
