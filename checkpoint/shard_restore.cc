// RestoreTensors: each rank reads the regions its devices need, verifies the
// checksum of every tile it reads, and copies into the device buffers.
#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/phase_trace.h"
#include "base/status_macros.h"
#include "checkpoint/checkpoint_index.h"
#include "checkpoint/shard_io.h"
#include "checkpoint/shard_io_internal.h"
#include "io/checksum.h"
#include "io/data_file.h"
#include "io/fs.h"
#include "layout/region.h"
#include "layout/reshard_plan.h"
#include "layout/shard_map.h"

namespace meshckpt {
namespace {

// Shifts `b` by `offset` per dimension.
Box Shift(const Box& b, const std::vector<int64_t>& offset) {
  std::vector<int64_t> origin = b.origin();
  for (size_t d = 0; d < origin.size(); ++d) origin[d] += offset[d];
  return Box::Unchecked(std::move(origin), b.shape());
}

class TensorReader {
 public:
  TensorReader(DataFileReader& file, std::string file_path,
               const CheckpointIndex& index, const CheckpointIndex::Tensor& saved,
               int dataset, const RestoreOptions& options,
               PhaseTrace* trace = nullptr)
      : file_(file), file_path_(std::move(file_path)), index_(index),
        saved_(saved), dataset_(dataset),
        options_(options), esize_(DTypeSize(saved.dtype)), trace_(trace) {}

  // Fills `target` (row-major over `target_box`) from the pieces.
  absl::Status Fill(const Box& target_box, void* target) {
    MESHCKPT_ASSIGN_OR_RETURN(std::vector<ReshardPiece> pieces,
                              PlanReshard(saved_.chunks, target_box));
    for (const ReshardPiece& p : pieces) {
      MESHCKPT_RETURN_IF_ERROR(saved_.dtype == DType::kString
                                   ? FillStrings(p, target_box, target)
                                   : FillPiece(p, target_box, target));
    }
    return absl::OkStatus();
  }

  int64_t bytes_read() const { return bytes_read_; }

 private:
  absl::Status Mismatch(const Box& chunk, int64_t tile) const {
    return absl::DataLossError(absl::StrCat(
        "tensor '", saved_.key, "': checksum mismatch in tile ", tile,
        " of chunk ", chunk.ToString(), " in data file '", file_path_, "'"));
  }

  // Numeric piece: reads tile-aligned slabs of one tile row along dim 0 so
  // the staging buffer stays around a row of tiles, verifies, copies.
  absl::Status FillPiece(const ReshardPiece& p, const Box& target_box, void* target) {
    const Box& chunk = saved_.chunks[p.chunk];
    const proto::ChunkProto& cp = index_.chunk(saved_, p.chunk);
    TileGrid grid(chunk.shape(), {cp.tile_shape().begin(), cp.tile_shape().end()});
    const Box& region = p.in_chunk;
    const Box expanded = options_.verify_checksums ? grid.Expand(region) : region;

    // Fast path: the piece is the whole target and needs no margin: read
    // straight into the target buffer.
    if (expanded == region && p.in_target == Box::FromShape(target_box.shape())) {
      {
        PhaseTrace::Scope s(trace_, "(read)");
        MESHCKPT_RETURN_IF_ERROR(
            file_.Read(dataset_, Shift(region, chunk.origin()), target));
      }
      bytes_read_ += region.num_elements() * esize_;
      if (options_.verify_checksums) {
        PhaseTrace::Scope s(trace_, "(verify)");
        MESHCKPT_RETURN_IF_ERROR(Verify(grid, chunk, cp, region, target));
      }
      return absl::OkStatus();
    }

    const int rank = chunk.rank();
    const int64_t step = rank == 0 ? 1 : grid.tile_shape()[0];
    const int64_t rows = rank == 0 ? 1 : expanded.shape()[0];
    for (int64_t r = 0; r < rows; r += step) {
      Box slab = expanded;
      if (rank > 0) {
        std::vector<int64_t> o = expanded.origin(), s = expanded.shape();
        o[0] += r;
        s[0] = std::min(step, rows - r);
        slab = Box::Unchecked(o, s);
      }
      buffer_.resize(slab.num_elements() * esize_);
      {
        PhaseTrace::Scope s(trace_, "(read)");
        MESHCKPT_RETURN_IF_ERROR(
            file_.Read(dataset_, Shift(slab, chunk.origin()), buffer_.data()));
      }
      bytes_read_ += slab.num_elements() * esize_;
      if (options_.verify_checksums) {
        PhaseTrace::Scope s(trace_, "(verify)");
        MESHCKPT_RETURN_IF_ERROR(Verify(grid, chunk, cp, slab, buffer_.data()));
      }
      const Box wanted = Intersect(region, slab);  // Chunk coordinates.
      if (wanted.empty()) continue;
      std::vector<int64_t> into(rank);
      for (int d = 0; d < rank; ++d) {
        into[d] = p.in_target.origin()[d] + wanted.origin()[d] - region.origin()[d];
      }
      CopyRegion(buffer_.data(), slab.shape(), RelativeTo(wanted, slab), target,
                 target_box.shape(), Box::Unchecked(into, wanted.shape()), esize_);
    }
    return absl::OkStatus();
  }

  // Checks every tile inside `area` (tile-aligned, chunk coordinates), whose
  // bytes are row-major in `data`.
  absl::Status Verify(const TileGrid& grid, const Box& chunk,
                      const proto::ChunkProto& cp, const Box& area,
                      const void* data) {
    for (int64_t t : grid.TilesIn(area)) {
      const uint64_t h = HashRegion(data, area.shape(),
                                    RelativeTo(grid.TileBox(t), area), esize_);
      if (h != cp.tile_checksums(t)) return Mismatch(chunk, t);
    }
    return absl::OkStatus();
  }

  // String chunks are one tile: read whole, verify, copy the wanted part.
  absl::Status FillStrings(const ReshardPiece& p, const Box& target_box, void* target) {
    const Box& chunk = saved_.chunks[p.chunk];
    std::vector<std::string> all(chunk.num_elements());
    MESHCKPT_RETURN_IF_ERROR(file_.ReadStrings(dataset_, chunk, all.data()));
    for (const std::string& s : all) bytes_read_ += s.size();
    if (options_.verify_checksums &&
        HashStrings(all.data(), chunk.num_elements()) !=
            index_.chunk(saved_, p.chunk).tile_checksums(0)) {
      return Mismatch(chunk, 0);
    }
    CopyRegionOf(all.data(), chunk.shape(), p.in_chunk,
                 static_cast<std::string*>(target), target_box.shape(),
                 p.in_target);
    return absl::OkStatus();
  }

  DataFileReader& file_;
  std::string file_path_;
  const CheckpointIndex& index_;
  const CheckpointIndex::Tensor& saved_;
  int dataset_;
  const RestoreOptions& options_;
  int64_t esize_;
  PhaseTrace* trace_;
  int64_t bytes_read_ = 0;
  std::vector<char> buffer_;
};

absl::Status CheckRequest(const Communicator& comm, const CheckpointIndex& index,
                          const RestoreTensor& t) {
  MESHCKPT_RETURN_IF_ERROR(
      internal::CheckLayoutFitsComm(t.key, t.layout, t.device_data.size(), comm));
  const CheckpointIndex::Tensor* saved = index.Find(t.key);
  if (saved == nullptr) {
    return absl::NotFoundError(absl::StrCat("tensor '", t.key,
                                            "' is not in checkpoint '",
                                            index.path(), "'"));
  }
  if (saved->dtype != t.dtype) {
    return absl::FailedPreconditionError(absl::StrCat(
        "tensor '", t.key, "' was saved as ", DTypeName(saved->dtype),
        " but is restored as ", DTypeName(t.dtype), " (checkpoint '",
        index.path(), "')"));
  }
  if (saved->shape != t.shape) {
    return absl::FailedPreconditionError(absl::StrCat(
        "tensor '", t.key, "' was saved with shape [",
        absl::StrJoin(saved->shape, ","), "] but is restored with shape [",
        absl::StrJoin(t.shape, ","), "] (checkpoint '", index.path(), "')"));
  }
  MESHCKPT_ASSIGN_OR_RETURN(ShardMap map, ShardMap::Create(t.layout, t.shape));
  const Mesh& mesh = t.layout.mesh();
  for (size_t i = 0; i < t.device_data.size(); ++i) {
    const int64_t d = mesh.rank() * mesh.devices_per_rank() + i;
    if (t.device_data[i] == nullptr && !map.DeviceBox(d).empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor '", t.key, "': the buffer of device ", d, " is null"));
    }
  }
  return absl::OkStatus();
}

uint64_t Fingerprint(absl::Span<const RestoreTensor> tensors) {
  std::string text;
  for (const RestoreTensor& t : tensors) absl::StrAppend(&text, t.key, "\n");
  return XXH3_64bits(text.data(), text.size());
}

absl::Status ReadAll(const CheckpointIndex& index, DataFileReader& file,
                     const std::string& file_path, absl::Span<const RestoreTensor> tensors,
                     const RestoreOptions& options, PhaseTrace* trace) {
  int64_t total = 0, done = 0;
  for (const RestoreTensor& t : tensors) {
    ShardMap map = ShardMap::Create(t.layout, t.shape).value();
    for (int64_t d : t.layout.mesh().local_device_ids()) {
      total += map.DeviceBox(d).num_elements() * DTypeSize(t.dtype);
    }
  }
  for (const RestoreTensor& t : tensors) {
    const CheckpointIndex::Tensor& saved = *index.Find(t.key);
    absl::StatusOr<int> opened;
    {
      PhaseTrace::Scope s(trace, "(open_dataset)");
      opened = file.OpenDataset(saved.dataset, saved.dtype, saved.shape);
    }
    MESHCKPT_ASSIGN_OR_RETURN(int dataset, std::move(opened));
    TensorReader reader(file, file_path, index, saved, dataset, options, trace);
    ShardMap map = ShardMap::Create(t.layout, t.shape).value();
    const std::vector<int64_t> local = t.layout.mesh().local_device_ids();
    for (size_t i = 0; i < local.size(); ++i) {
      const Box box = map.DeviceBox(local[i]);
      if (box.empty()) continue;
      // Devices of this rank holding the same shard copy from the first.
      size_t same = 0;
      while (same < i && map.ShardOfDevice(local[same]) != map.ShardOfDevice(local[i])) {
        ++same;
      }
      if (same < i) {
        // Devices sharing one buffer (DVariable replicas) need no copy.
        const bool shared = t.device_data[i] == t.device_data[same];
        if (!shared && t.dtype == DType::kString) {
          std::copy_n(static_cast<const std::string*>(t.device_data[same]),
                      box.num_elements(), static_cast<std::string*>(t.device_data[i]));
        } else if (!shared) {
          std::memcpy(t.device_data[i], t.device_data[same],
                      box.num_elements() * DTypeSize(t.dtype));
        }
      } else {
        MESHCKPT_RETURN_IF_ERROR(reader.Fill(box, t.device_data[i]));
      }
      done += box.num_elements() * DTypeSize(t.dtype);
      if (options.progress) options.progress(done, total);
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RestoreTensors(Communicator& comm, const std::string& prefix,
                            absl::Span<const RestoreTensor> tensors,
                            const RestoreOptions& options) {
  PhaseTrace trace("restore", comm.rank());
  MESHCKPT_ASSIGN_OR_RETURN(CheckpointIndex index, CheckpointIndex::Read(comm, prefix));
  trace.Mark("index");
  absl::Status local;
  for (const RestoreTensor& t : tensors) {
    local = CheckRequest(comm, index, t);
    if (!local.ok()) break;
  }
  MESHCKPT_RETURN_IF_ERROR(comm.Agree(local));
  MESHCKPT_RETURN_IF_ERROR(internal::AgreeSameOnAllRanks(
      comm, Fingerprint(tensors), "tensor lists to RestoreTensors"));

  const std::string data = DataFilePath(prefix);
  local = absl::OkStatus();
  if (comm.rank() == 0) {
    absl::StatusOr<int64_t> size = FileSize(data);
    if (!size.ok()) {
      // The index exists, so the checkpoint was committed: its data is lost.
      local = absl::IsNotFound(size.status())
                  ? absl::DataLossError(absl::StrCat("data file '", data,
                                                     "' of committed checkpoint '",
                                                     prefix, "' is missing"))
                  : size.status();
    } else if (*size != index.proto().data_file_size()) {
      local = absl::DataLossError(absl::StrCat(
          "data file '", data, "' has ", *size, " bytes but was committed with ",
          index.proto().data_file_size(), " (truncated or replaced)"));
    }
  }
  MESHCKPT_RETURN_IF_ERROR(comm.Agree(local));
  trace.Mark("check");

  absl::StatusOr<std::unique_ptr<DataFileReader>> file = DataFileReader::Open(
      comm, data, internal::FileOptions(false, options.mpi_hints));
  MESHCKPT_RETURN_IF_ERROR(comm.Agree(file.status()));
  trace.Mark("open");
  local = ReadAll(index, **file, data, tensors, options, &trace);
  trace.Mark("read_all");
  absl::Status closed = (*file)->Close();  // Collective: always reached.
  if (local.ok()) local = closed;
  trace.Mark("close");
  absl::Status agreed = comm.Agree(local);
  trace.Mark("agree");
  return agreed;
}

absl::Status internal::ReadRegion(DataFileReader& file, const std::string& file_path,
                                  const CheckpointIndex& index, const std::string& key,
                                  const Box& box, void* out,
                                  const RestoreOptions& options) {
  const CheckpointIndex::Tensor* saved = index.Find(key);
  if (saved == nullptr) {
    return absl::NotFoundError(absl::StrCat("tensor '", key, "' is not in checkpoint '",
                                            index.path(), "'"));
  }
  if (!Box::FromShape(saved->shape).Contains(box)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "box ", box.ToString(), " is not inside tensor '", key, "' of shape [",
        absl::StrJoin(saved->shape, ","), "]"));
  }
  MESHCKPT_ASSIGN_OR_RETURN(int dataset,
                            file.OpenDataset(saved->dataset, saved->dtype, saved->shape));
  if (box.empty()) return absl::OkStatus();
  TensorReader reader(file, file_path, index, *saved, dataset, options);
  return reader.Fill(box, out);
}

absl::StatusOr<proto::CheckpointIndexProto> ReadCheckpointIndex(
    Communicator& comm, const std::string& prefix) {
  MESHCKPT_ASSIGN_OR_RETURN(CheckpointIndex index, CheckpointIndex::Read(comm, prefix));
  return index.proto();
}

}  // namespace meshckpt
