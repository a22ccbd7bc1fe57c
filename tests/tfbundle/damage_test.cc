// Seeded flips and truncations of copies of the shared TF checkpoints: every
// outcome is DataLoss or InvalidArgument, or a read of exactly the original
// values; never a crash, a hang or a silently wrong value.
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "meshckpt/tfbundle/bundle_reader.h"
#include "meshckpt/tfbundle/meta_graph.h"
#include "meshckpt/tfbundle/object_graph.h"
#include "tests/tfbundle/tf_test_util.h"

namespace meshckpt::tf {
namespace {

int Trials() {
  const char* env = std::getenv("MESHCKPT_CORRUPTION_TRIALS");
  return env != nullptr ? std::max(1, std::atoi(env)) : 300;
}

struct Checkpoint {
  const char* folder;
  const char* prefix;
};
const Checkpoint kCheckpoints[] = {
    {"serving_counter", "variables"},
    {"serving_half_plus_two_cpu", "variables"},
    {"serving_half_plus_two_tf2_cpu", "variables"},
    {"tf_contrib_half_plus_two_ckpt_v2", "export"},
    {"tf_old_string_tensors", "foo"},
    {"tf_tftrt2_2shards", "variables"},
};

// Everything a reader does with a bundle; the values read, or the first error.
absl::StatusOr<std::map<std::string, TensorValue>> ReadEverything(
    const std::string& prefix) {
  absl::StatusOr<std::unique_ptr<BundleReader>> r = BundleReader::Open(prefix);
  if (!r.ok()) return r.status();
  std::map<std::string, TensorValue> values;
  for (const BundleEntry& e : (*r)->entries()) {
    absl::StatusOr<TensorValue> v = (*r)->ReadTensor(e.key());
    if (!v.ok()) return v.status();
    values.emplace(e.key(), *std::move(v));
  }
  absl::Status verify = (*r)->VerifyAll();
  if (!verify.ok()) return verify;
  if ((*r)->Find(kObjectGraphKey) != nullptr) {
    absl::StatusOr<ObjectGraph> g = ReadObjectGraph(**r);
    if (!g.ok()) return g.status();
  }
  return values;
}

bool Acceptable(const absl::Status& s) {
  return s.code() == absl::StatusCode::kDataLoss ||
         s.code() == absl::StatusCode::kInvalidArgument;
}

class DamageTest : public ::testing::TestWithParam<Checkpoint> {};

TEST_P(DamageTest, FlipsAndTruncations) {
  const Checkpoint& c = GetParam();
  absl::StatusOr<std::map<std::string, TensorValue>> original =
      ReadEverything(TfTestdata(absl::StrCat(c.folder, "/", c.prefix)));
  ASSERT_TRUE(original.ok()) << original.status();
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(TfTestdata(c.folder))) {
    if (e.path().extension() != ".meta") files.push_back(e.path().filename().string());
  }
  std::sort(files.begin(), files.end());
  std::mt19937 rng(20260402);
  int refused = 0, harmless = 0;
  TempDir dir;
  CopyFolder(TfTestdata(c.folder), dir.path());
  for (int trial = 0; trial < Trials(); ++trial) {
    const std::string name = files[rng() % files.size()];
    const std::string victim = dir.file(name);
    const std::string pristine =
        ReadFileBytesForTest(TfTestdata(absl::StrCat(c.folder, "/", name)));
    std::string bytes = pristine;
    const bool truncate = rng() % 3 == 0;
    std::string what;
    if (truncate || bytes.empty()) {
      const size_t len = bytes.empty() ? 0 : rng() % bytes.size();
      bytes.resize(len);
      what = absl::StrCat("truncated ", victim, " to ", len);
    } else {
      const int flips = 1 + static_cast<int>(rng() % 3);
      what = absl::StrCat("flipped in ", victim, ":");
      for (int f = 0; f < flips; ++f) {
        const size_t at = rng() % bytes.size();
        bytes[at] ^= static_cast<char>(1 + rng() % 255);
        absl::StrAppend(&what, " ", at);
      }
    }
    WriteFileBytesForTest(victim, bytes);
    absl::StatusOr<std::map<std::string, TensorValue>> got =
        ReadEverything(dir.file(c.prefix));
    WriteFileBytesForTest(victim, pristine);
    if (got.ok()) {
      ++harmless;
      ASSERT_EQ(got->size(), original->size()) << what;
      for (const auto& [key, value] : *original) {
        ASSERT_TRUE(got->at(key) == value)
            << what << ": '" << key << "' changed silently";
      }
    } else {
      ++refused;
      ASSERT_TRUE(Acceptable(got.status())) << what << ": " << got.status();
    }
  }
  EXPECT_GT(refused, harmless);  // almost every byte of a bundle is checked
}

INSTANTIATE_TEST_SUITE_P(SharedCheckpoints, DamageTest, ::testing::ValuesIn(kCheckpoints),
                         [](const auto& info) { return std::string(info.param.folder); });

TEST(MetaGraphDamageTest, FlipsAndTruncationsNeverCrash) {
  // A .meta file has no checksum: damage may parse; it must not crash.
  const std::string original =
      ReadFileBytesForTest(TfTestdata("tf_contrib_half_plus_two_ckpt_v2/export.meta"));
  ASSERT_FALSE(original.empty());
  std::mt19937 rng(7);
  for (int trial = 0; trial < 4 * Trials(); ++trial) {
    std::string bytes = original;
    if (trial % 3 == 0) {
      bytes.resize(rng() % bytes.size());
    } else {
      bytes[rng() % bytes.size()] ^= static_cast<char>(1 + rng() % 255);
    }
    absl::StatusOr<MetaGraph> m = MetaGraph::Parse(bytes, "damaged.meta");
    if (!m.ok()) {
      ASSERT_EQ(m.status().code(), absl::StatusCode::kDataLoss) << m.status();
      continue;
    }
    for (const char* name : {"variables", "trainable_variables"}) {
      absl::Status s = m->CollectionVariables(name).status();
      ASSERT_TRUE(s.ok() || absl::IsNotFound(s) || absl::IsDataLoss(s)) << s;
    }
  }
}

}  // namespace
}  // namespace meshckpt::tf
