// A restore's reads, each shared shard by one rank, then sent (restore_reads.h).
#include "meshckpt/checkpoint/engine/restore_reads.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <numeric>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "meshckpt/base/status_macros.h"
#include "meshckpt/checkpoint/engine/shard_io_internal.h"
#include "meshckpt/checkpoint/engine/tensor_reader.h"
#include "meshckpt/layout/reshard_plan.h"
#include "meshckpt/layout/shard_map.h"

namespace meshckpt::internal {
namespace {

// Shards below this size travel together, one collective per this many
// bytes: thousands of small replicated tensors must not cost one message
// latency each. Larger ones are broadcast in place, with no staging copy.
constexpr int64_t kBatchBytes = int64_t{4} << 20;

// A shard this rank holds together with other ranks.
struct Item {
  size_t request;  // Index into the tensors.
  size_t local;    // Index into that tensor's LocalBuffers::shards.
  int64_t bytes;   // Numeric elements' bytes; for strings, the element count.
  int reader;      // Rank (of the whole communicator) that reads it.
};

// Ranks that share shards, with the shards this rank shares with them, in
// plan order.
struct Group {
  std::vector<int> ranks;
  std::vector<Item> items;
};

struct Plan {
  std::vector<size_t> order;  // Requests in the order their bytes lie in the file.
  std::vector<LocalBuffers> buffers;
  std::vector<std::vector<size_t>> reads;  // Per request: local shards this rank reads.
  std::vector<Group> groups;               // In order of first appearance.
  int64_t total = 0;                       // Bytes to deliver (progress).
};

Plan MakePlan(const Communicator& comm, const CheckpointIndex& index,
              absl::Span<const RestoreTensor> tensors, ShardReads reads) {
  Plan plan;
  plan.buffers.reserve(tensors.size());
  plan.reads.resize(tensors.size());
  std::vector<std::pair<int64_t, size_t>> order;  // (lowest offset, request)
  std::vector<int64_t> entries;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const RestoreTensor& t = tensors[i];
    ShardMap map = ShardMap::Create(t.layout, t.shape).value();  // Checked.
    plan.buffers.push_back(LocalBuffersOf(map, t.device_data, t.shard_data));
    const LocalBuffers& b = plan.buffers.back();
    for (const auto& s : b.shards)
      plan.total += s.box.num_elements() * DTypeSize(t.dtype);
    for (const auto& c : b.copies) {
      plan.total += b.shards[c.from].box.num_elements() * DTypeSize(t.dtype);
    }
    // Tensors are read in the order their bytes lie in the data file, not
    // the caller's: every backward jump restarts the kernel's readahead,
    // and HDF5 keeps small datasets together, apart from the large ones.
    const CheckpointIndex::Tensor* saved = index.Find(t.key);
    int64_t offset = std::numeric_limits<int64_t>::max();
    for (const std::optional<StorageBlock>& blk : saved->storage) {
      if (blk.has_value()) offset = std::min(offset, blk->offset);
    }
    order.emplace_back(offset, i);
    entries.push_back(saved->entry);
  }
  std::sort(order.begin(), order.end(), [&](const auto& a, const auto& b) {
    return std::tie(a.first, entries[a.second]) < std::tie(b.first, entries[b.second]);
  });
  // The plan walks every tensor's shards in file order on every rank, so
  // readers and the order in which groups first appear agree everywhere.
  ReaderAssigner assigner(comm.size());
  std::map<std::vector<int>, size_t> group_of;
  const int me = comm.rank();
  for (const auto& [offset, i] : order) {
    plan.order.push_back(i);
    if (reads == ShardReads::kEveryHolder) {
      plan.reads[i].resize(plan.buffers[i].shards.size());
      std::iota(plan.reads[i].begin(), plan.reads[i].end(), 0);
      continue;
    }
    const RestoreTensor& t = tensors[i];
    const LocalBuffers& b = plan.buffers[i];
    ShardMap map = ShardMap::Create(t.layout, t.shape).value();
    const int64_t esize = t.dtype == DType::kString ? 1 : DTypeSize(t.dtype);
    size_t local = 0;  // Both lists ascend by shard.
    for (ShardRead& r : assigner.Assign(map, esize)) {
      while (local < b.shards.size() && b.shards[local].shard < r.shard) ++local;
      if (local == b.shards.size() || b.shards[local].shard != r.shard) continue;
      if (r.reader == me) plan.reads[i].push_back(local);
      if (r.holders.size() < 2) continue;
      auto [it, added] = group_of.try_emplace(r.holders, plan.groups.size());
      if (added) plan.groups.push_back({std::move(r.holders), {}});
      plan.groups[it->second].items.push_back(
          {i, local, r.box.num_elements() * esize, r.reader});
    }
  }
  return plan;
}

int PositionIn(const std::vector<int>& ranks, int rank) {
  return static_cast<int>(std::lower_bound(ranks.begin(), ranks.end(), rank) -
                          ranks.begin());
}

// Distributes the shards of one group over `gc` (the group's communicator).
class Distributor {
 public:
  Distributor(Communicator& gc, const Group& group, int me,
              absl::Span<const RestoreTensor> tensors, const Plan& plan)
      : gc_(gc), group_(group), me_(me), tensors_(tensors), plan_(plan) {}

  // Bytes received from other ranks (for strings, their characters),
  // calling `progress(bytes)` as they arrive.
  template <typename Progress>
  int64_t Run(Progress&& progress) {
    for (const Item& item : group_.items) {
      const bool strings = tensors_[item.request].dtype == DType::kString;
      if (strings || item.bytes >= kBatchBytes) {
        Flush(progress);
        received_ += strings ? Strings(item) : Large(item);
        // Progress counts strings by element, as everywhere else.
        if (item.reader != me_) {
          progress(strings ? item.bytes * DTypeSize(DType::kString) : item.bytes);
        }
        continue;
      }
      pending_.push_back(&item);
      pending_bytes_ += item.bytes;
      if (pending_bytes_ >= kBatchBytes) Flush(progress);
    }
    Flush(progress);
    return received_;
  }

 private:
  void* Data(const Item& item) const {
    return plan_.buffers[item.request].shards[item.local].data;
  }

  int64_t Large(const Item& item) {
    gc_.BroadcastBytes(Data(item), item.bytes, PositionIn(group_.ranks, item.reader));
    return item.reader == me_ ? 0 : item.bytes;
  }

  // A string shard: length-prefixed, broadcast from its reader.
  int64_t Strings(const Item& item) {
    auto* values = static_cast<std::string*>(Data(item));
    std::string blob;
    if (item.reader == me_) {
      for (int64_t e = 0; e < item.bytes; ++e) {
        const uint64_t n = values[e].size();
        blob.append(reinterpret_cast<const char*>(&n), sizeof(n));
        blob += values[e];
      }
    }
    gc_.Broadcast(&blob, PositionIn(group_.ranks, item.reader));
    if (item.reader == me_) return 0;
    size_t at = 0;
    int64_t chars = 0;
    for (int64_t e = 0; e < item.bytes; ++e) {
      uint64_t n = 0;
      std::memcpy(&n, blob.data() + at, sizeof(n));
      values[e].assign(blob, at + sizeof(n), n);
      at += sizeof(n) + n;
      chars += static_cast<int64_t>(n);
    }
    return chars;
  }

  template <typename Progress>
  void Flush(Progress&& progress) {
    if (pending_.empty()) return;
    const size_t n = group_.ranks.size();
    std::vector<int64_t> counts(n, 0);
    send_.clear();
    for (const Item* item : pending_) {
      counts[PositionIn(group_.ranks, item->reader)] += item->bytes;
      if (item->reader == me_) {
        const char* p = static_cast<const char*>(Data(*item));
        send_.insert(send_.end(), p, p + item->bytes);
      }
    }
    recv_.resize(pending_bytes_);
    gc_.AllGatherBytes(send_.data(), counts, recv_.data());
    std::vector<int64_t> cursor(n, 0);
    for (size_t r = 1; r < n; ++r) cursor[r] = cursor[r - 1] + counts[r - 1];
    int64_t got = 0;
    for (const Item* item : pending_) {
      int64_t& at = cursor[PositionIn(group_.ranks, item->reader)];
      if (item->reader != me_) {
        std::memcpy(Data(*item), recv_.data() + at, item->bytes);
        got += item->bytes;
      }
      at += item->bytes;
    }
    received_ += got;
    progress(got);
    pending_.clear();
    pending_bytes_ = 0;
  }

  Communicator& gc_;
  const Group& group_;
  const int me_;
  absl::Span<const RestoreTensor> tensors_;
  const Plan& plan_;
  std::vector<const Item*> pending_;
  int64_t pending_bytes_ = 0;
  int64_t received_ = 0;
  std::vector<char> send_, recv_;
};

}  // namespace

absl::Status ReadAndDistribute(Communicator& comm, const CheckpointIndex& index,
                               absl::StatusOr<ChunkSource*> source,
                               absl::Span<const RestoreTensor> tensors,
                               const IoOptions& options, PhaseTrace* trace,
                               RestoreStats* stats, ShardReads reads) {
  RestoreStats counts;
  const Plan plan = MakePlan(comm, index, tensors, reads);
  trace->Mark("plan");
  int64_t done = 0;
  auto progress = [&](int64_t bytes) {
    done += bytes;
    if (options.progress && bytes > 0) options.progress(done, plan.total);
  };

  // 1. Read this rank's share, straight into its own buffers.
  absl::Status local = source.status();
  for (size_t i : plan.order) {
    if (!local.ok()) break;
    const RestoreTensor& t = tensors[i];
    const LocalBuffers& b = plan.buffers[i];
    if (plan.reads[i].empty()) continue;
    TensorReader reader(**source, index, *index.Find(t.key), options, trace);
    for (size_t s : plan.reads[i]) {
      local = reader.Fill(b.shards[s].box, b.shards[s].data);
      if (!local.ok()) break;
      progress(b.shards[s].box.num_elements() * DTypeSize(t.dtype));
    }
    counts.disk_bytes += reader.bytes_read();
  }
  trace->Mark("read");
  // 2. Nobody sends what another rank failed to read or verify.
  MESHCKPT_RETURN_IF_ERROR(comm.Agree(local));
  trace->Mark("agree");

  // 3. Distribute, one group at a time in plan order.
  for (const Group& group : plan.groups) {
    std::unique_ptr<Communicator> sub;
    Communicator* gc = &comm;
    if (static_cast<int>(group.ranks.size()) != comm.size()) {
      absl::StatusOr<std::unique_ptr<Communicator>> made = comm.Subgroup(group.ranks);
      if (!made.ok()) return made.status();  // A planning bug, alike on every member.
      sub = *std::move(made);
      gc = sub.get();
    }
    counts.received_bytes +=
        Distributor(*gc, group, comm.rank(), tensors, plan).Run(progress);
  }
  counts.subgroups = static_cast<int64_t>(plan.groups.size());
  trace->Mark("distribute");

  // 4. Further device buffers of the same shard on this rank.
  for (size_t i : plan.order) {
    progress(FillCopies(plan.buffers[i], tensors[i].dtype));
  }
  trace->Mark("copy");
  counts.delivered_bytes = plan.total;
  trace->Note("disk_MB", counts.disk_bytes / 1e6);
  trace->Note("received_MB", counts.received_bytes / 1e6);
  trace->Note("delivered_MB", counts.delivered_bytes / 1e6);
  trace->Note("subgroups", static_cast<double>(counts.subgroups));
  if (stats != nullptr) *stats = counts;
  return absl::OkStatus();
}

}  // namespace meshckpt::internal
