// Offline resharding in bounded memory (RewriteCheckpoint, what `meshckpt
// reshard` runs): a checkpoint several times larger than the memory budget
// times the rank count is rewritten onto another mesh; every rank's peak
// resident memory during the rewrite stays within the budget, chunks obey
// it and are spread over all ranks, and a restore onto a third mesh gives
// back every byte.
//
// --mib=N sets the checkpoint's size (default 256), --budget-mib=B the
// budget (default 16); --dir= the work directory.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "meshckpt/checkpoint/engine/checkpoint_handle.h"
#include "meshckpt/checkpoint/engine/checkpoint_index.h"
#include "meshckpt/checkpoint/engine/shard_io.h"
#include "meshckpt/checkpoint/engine/stream_rewrite.h"
#include "meshckpt/layout/shard_map.h"
#include "mpi_tests/mpi_test_env.h"
#include "tests/peak_rss.h"

namespace meshckpt {
namespace {

// Sanitizers keep freed memory resident (ASan's quarantine) and add shadow
// memory: peak RSS then says nothing about the budget.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

int64_t IntArg(absl::string_view prefix, int64_t fallback) {
  int64_t v = fallback;
  const std::string text = TestArg(prefix);
  if (!text.empty()) {
    EXPECT_TRUE(absl::SimpleAtoi(text, &v)) << prefix << text;
  }
  return v;
}

std::string Dir() {
  const std::string d = TestArg("--dir=");
  return d.empty() ? "/tmp/meshckpt_stream_reshard" : d;
}

// The value of element `g` of tensor number `id`: distinct bits everywhere.
uint64_t Bits(int id, int64_t g) {
  uint64_t x =
      static_cast<uint64_t>(g) * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(id);
  x ^= x >> 29;
  return x * 0xBF58476D1CE4E5B9ull;
}

struct Spec {
  std::string key;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<std::string> source_specs;  // On mesh x=ranks.
  std::vector<std::string> target_specs;  // On mesh a=ranks,b=2.
};

// Half the bytes in a row-split embedding, half in a replicated kernel
// (written once however many ranks hold it), plus odd shapes and types.
std::vector<Spec> Specs(int64_t mib) {
  const int64_t rows = mib * (int64_t{1} << 20) / 2 / (1024 * 4);
  return {
      {"embedding", DType::kFloat32, {rows, 1024}, {"x", "unsharded"}, {"unsharded", "b"}},
      {"dense/kernel",
       DType::kFloat32,
       {rows / 2, 2048},
       {"unsharded", "unsharded"},
       {"a", "unsharded"}},
      {"odd", DType::kBfloat16, {1001, 37}, {"unsharded", "x"}, {"b", "a"}},
      {"step", DType::kInt64, {}, {}, {}},
      {"names", DType::kString, {300}, {"x"}, {"a"}},
  };
}

// Fills `box` of tensor `id` (row-major) with its values.
void Fill(int id, const Spec& s, const Box& box, void* out) {
  const std::vector<int64_t> strides = [&] {
    std::vector<int64_t> st(s.shape.size(), 1);
    for (int d = static_cast<int>(s.shape.size()) - 2; d >= 0; --d) {
      st[d] = st[d + 1] * s.shape[d + 1];
    }
    return st;
  }();
  const int64_t esize = DTypeSize(s.dtype);
  std::vector<int64_t> at = box.origin();
  for (int64_t i = 0; i < box.num_elements(); ++i) {
    int64_t g = 0;
    for (size_t d = 0; d < at.size(); ++d) g += at[d] * strides[d];
    const uint64_t v = Bits(id, g);
    if (s.dtype == DType::kString) {
      static_cast<std::string*>(out)[i] = absl::StrCat("name-", g, "-", v % 977);
    } else {
      std::memcpy(static_cast<char*>(out) + i * esize, &v, esize);
    }
    for (int d = box.rank() - 1; d >= 0; --d) {
      if (++at[d] < box.origin()[d] + box.shape()[d]) break;
      at[d] = box.origin()[d];
    }
  }
}

// One tensor's buffers for this rank's distinct shards (shard_data form).
struct Held {
  std::vector<std::unique_ptr<char[]>> bytes;
  std::vector<std::vector<std::string>> strings;
  std::vector<void*> data;
  std::vector<Box> boxes;
};

Held Allocate(const ShardMap& map, DType dtype) {
  Held h;
  for (int64_t shard : map.LocalShards()) {
    const Box box = map.ShardBox(shard);
    h.boxes.push_back(box);
    if (dtype == DType::kString) {
      h.data.push_back(h.strings.emplace_back(box.num_elements()).data());
    } else {
      h.bytes.emplace_back(new char[box.num_elements() * DTypeSize(dtype)]);
      h.data.push_back(h.bytes.back().get());
    }
  }
  return h;
}

TEST(StreamReshard, BiggerThanBudgetTimesRanksInBoundedMemory) {
  Communicator& world = TestWorld();
  const int64_t mib = IntArg("--mib=", 256), budget_mib = IntArg("--budget-mib=", 16);
  const int n = world.size();
  if (world.rank() == 0) {
    ASSERT_EQ(std::system(absl::StrCat("mkdir -p ", Dir()).c_str()), 0);
  }
  world.Barrier();
  const std::string src = absl::StrCat(Dir(), "/src-np", n),
                    dst = absl::StrCat(Dir(), "/dst-np", n);
  const std::vector<Spec> specs = Specs(mib);
  const Mesh source_mesh = Mesh::Create({{"x", n}}, world.rank(), n).value();
  const Mesh target_mesh = Mesh::Create({{"a", n}, {"b", 2}}, world.rank(), n).value();
  int64_t total = 0;
  for (const Spec& s : specs)
    total += Box::FromShape(s.shape).num_elements() * DTypeSize(s.dtype);
  ASSERT_GE(total, 4 * budget_mib * n * (int64_t{1} << 20))
      << "the checkpoint must be several times the budget times the ranks";

  {  // The source, saved from memory (freed before the rewrite).
    std::vector<Held> held;
    std::vector<SaveTensor> saves;
    for (size_t i = 0; i < specs.size(); ++i) {
      const Spec& s = specs[i];
      Layout l = Layout::Create(s.source_specs, source_mesh).value();
      ShardMap map = ShardMap::Create(l, s.shape).value();
      held.push_back(Allocate(map, s.dtype));
      for (size_t k = 0; k < held.back().boxes.size(); ++k) {
        Fill(static_cast<int>(i), s, held.back().boxes[k], held.back().data[k]);
      }
      saves.push_back({s.key,
                       "",
                       s.dtype,
                       s.shape,
                       l,
                       {},
                       {held.back().data.begin(), held.back().data.end()}});
    }
    CheckpointContents contents;
    contents.step = 7;
    contents.user_metadata["origin"] = "stream_reshard_test";
    contents.object_graph.nodes.resize(2);
    contents.object_graph.nodes[0].children.push_back({1, "model"});
    contents.object_graph.nodes[1].attributes.push_back({"VARIABLE_VALUE", "embedding"});
    ASSERT_TRUE(SaveTensors(world, src, saves, contents, IoOptions()).ok());
  }

  // The rewrite, its peak memory measured alone.
  std::vector<RewriteTensor> targets;
  for (const Spec& s : specs) {
    targets.push_back({s.key, "", s.dtype,
                       s.shape.empty()
                           ? Layout::Create({}, target_mesh).value()
                           : Layout::Create(s.target_specs, target_mesh).value()});
  }
  RewriteOptions options;
  options.max_memory = budget_mib << 20;
  int progress_calls = 0;
  int64_t last_done = -1;
  options.progress = [&](int64_t done, int64_t all) {
    ++progress_calls;
    EXPECT_GE(done, last_done);
    EXPECT_EQ(all, total);
    last_done = done;
  };
  CheckpointContents contents;
  double growth_mib = 0;
  {
    std::unique_ptr<CheckpointHandle> h = CheckpointHandle::Open(world, src).value();
    contents.mesh = target_mesh;
    contents.step = h->index().record().step;
    contents.user_metadata = h->index().record().user_metadata;
    contents.object_graph = h->index().record().object_graph;
    PeakRssGrowth growth;
    absl::Status s = RewriteCheckpoint(*h, dst, targets, contents, options);
    growth_mib = growth.MiB();
    ASSERT_TRUE(s.ok()) << s;
  }
  const double worst =
      world.AllReduceMax(static_cast<int64_t>(growth_mib * 1024)) / 1024.0;
  if (world.rank() == 0) {
    std::printf(
        "rewrite of %.0f MiB on %d ranks, budget %lld MiB: peak RSS growth %.1f "
        "MiB on this rank, %.1f MiB at most\n",
        total / 1048576.0, n, static_cast<long long>(budget_mib), growth_mib, worst);
  }
  if (!kSanitized) {
    EXPECT_LE(growth_mib, static_cast<double>(budget_mib))
        << "rank " << world.rank() << " exceeded the memory budget";
  }
  if (world.rank() == 0) {
    EXPECT_EQ(progress_calls, 100);
    EXPECT_EQ(last_done, total);
  }

  // The index: target layouts, chunks within the staging share of the
  // budget, bytes spread over every rank.
  {
    std::unique_ptr<CheckpointHandle> h = CheckpointHandle::Open(world, dst).value();
    const IndexRecord& r = h->index().record();
    EXPECT_EQ(r.step, 7);
    EXPECT_EQ(r.user_metadata.at("origin"), "stream_reshard_test");
    EXPECT_EQ(r.object_graph, contents.object_graph);
    std::vector<int64_t> per_rank(n, 0);
    int64_t largest = 0;
    for (const TensorRecord& t : r.tensors) {
      for (const ChunkRecord& c : t.chunks) {
        const int64_t bytes = c.box.num_elements() * DTypeSize(t.dtype);
        per_rank[c.writer_rank] += bytes;
        largest = std::max(largest, bytes);
      }
    }
    EXPECT_LE(largest, (budget_mib << 20) / 4);
    const auto [lo, hi] = std::minmax_element(per_rank.begin(), per_rank.end());
    EXPECT_LE(*hi - *lo, largest) << "writers unbalanced";
  }

  // A third mesh (columns over every rank, one device each) restores every
  // byte of the destination, tensor by tensor.
  const Mesh third = Mesh::Create({{"t", n}}, world.rank(), n).value();
  std::unique_ptr<CheckpointHandle> h = CheckpointHandle::Open(world, dst).value();
  for (size_t i = 0; i < specs.size(); ++i) {
    const Spec& s = specs[i];
    SCOPED_TRACE(s.key);
    std::vector<std::string> spec(s.shape.size(), "unsharded");
    if (!spec.empty()) spec.back() = "t";
    Layout l = Layout::Create(spec, third).value();
    ShardMap map = ShardMap::Create(l, s.shape).value();
    Held got = Allocate(map, s.dtype);
    ASSERT_TRUE(
        RestoreTensors(*h, {{s.key, s.dtype, s.shape, l, {}, got.data}}, IoOptions())
            .ok());
    for (size_t k = 0; k < got.boxes.size(); ++k) {
      Held want = Allocate(map, s.dtype);
      Fill(static_cast<int>(i), s, got.boxes[k], want.data[k]);
      if (s.dtype == DType::kString) {
        EXPECT_EQ(got.strings[k], want.strings[k]);
      } else {
        EXPECT_EQ(std::memcmp(got.data[k], want.data[k],
                              got.boxes[k].num_elements() * DTypeSize(s.dtype)),
                  0);
      }
    }
  }
}

}  // namespace
}  // namespace meshckpt
