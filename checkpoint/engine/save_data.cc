// The data half of a save: creating the data file and writing every rank's shards.
#include "checkpoint/engine/save_data.h"

#include <algorithm>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "checkpoint/engine/fault_injection.h"
#include "checkpoint/engine/shard_io_internal.h"
#include "io/format/checksum.h"
#include "io/transfer/io_pieces.h"
#include "layout/region.h"

namespace meshckpt::internal {
namespace {

// Shards are hashed and written in pieces of about this many bytes (whole
// rows): small enough to stay in cache between the hash and the write.
// 2 MiB pieces measured the same on this machine; smaller is safer for
// caches shared by more ranks.
constexpr int64_t kPieceBytes = int64_t{256} << 10;

int64_t TotalBytes(int rank, const std::vector<PlannedTensor>& plan) {
  int64_t total = 0;
  for (const PlannedTensor& p : plan) {
    for (const ShardWriter& w : p.writers) {
      if (w.rank == rank) total += w.box.num_elements() * p.element_size;
    }
  }
  return total;
}

// Rank 0: creates `partial` and the plan's numeric datasets with a serial
// writer, reserves the file's space and closes it. The storage table when
// `locate`, else an empty one.
absl::StatusOr<StorageTable> CreateAndReserve(const std::string& partial,
                                              const std::vector<PlannedTensor>& plan,
                                              bool locate) {
  std::unique_ptr<Communicator> serial = SerialCommunicator();
  MESHCKPT_ASSIGN_OR_RETURN(std::unique_ptr<DataFileWriter> writer,
                            DataFileWriter::Create(*serial, partial, FileOptions(false, {})));
  StorageTable table(locate ? plan.size() : 0);
  for (size_t i = 0; i < plan.size(); ++i) {
    const PlannedTensor& p = plan[i];
    if (p.element_size == 0) continue;
    MESHCKPT_ASSIGN_OR_RETURN(int d, writer->CreateDataset(DatasetSpecOf(p)));
    if (!locate) continue;
    MESHCKPT_ASSIGN_OR_RETURN(table[i], writer->Locate(d));
    MESHCKPT_RETURN_IF_ERROR(writer->ReleaseDataset(d));
    if (table[i].empty() && Box::FromShape(p.tensor->shape).num_elements() > 0) {
      return absl::InternalError(absl::StrCat("HDF5 allocated no plain storage for dataset '",
                                              p.dataset, "' in '", partial, "'"));
    }
  }
  // Ranks writing one file at once, each starting writeback of its own
  // part, left ext4 ~120 extents per GiB instead of ~10. Allocating the
  // file's blocks up front keeps it contiguous (paired A/B runs: save/raw
  // 1.06 -> 1.24, cold restore/raw 0.70 -> 0.81 on 4 ranks) and finds a
  // full disk before any data is written.
  MESHCKPT_RETURN_IF_ERROR(writer->ReserveSpace());
  MESHCKPT_RETURN_IF_ERROR(writer->Close());
  return table;
}

// Writes one shard in pieces of whole rows (dimension 0) of about
// kPieceBytes: each piece is hashed, then written while still in cache.
absl::Status WriteShard(DirectFile& file, const PlannedTensor& p,
                        const std::vector<StorageBlock>& blocks, const ShardWriter& w,
                        const TileGrid& grid, uint64_t* sums,
                        std::vector<char>* scratch) {
  const char* data = static_cast<const char*>(WriterData(p, w));
  const Box& box = w.box;
  const int64_t esize = p.element_size;
  const Box tensor = Box::FromShape(p.tensor->shape);
  std::vector<const StorageBlock*> mine;
  for (const StorageBlock& b : blocks) {
    if (!Intersect(b.box(), box).empty()) mine.push_back(&b);
  }
  const int rank = box.rank();
  const int64_t rows = rank == 0 ? 1 : box.shape()[0];
  const int64_t row_bytes = box.num_elements() / rows * esize;
  const int64_t step = std::max<int64_t>(1, kPieceBytes / row_bytes);
  TileHasher hasher(grid, data, esize, sums);
  for (int64_t r = 0; r < rows; r += step) {
    const int64_t n = std::min(step, rows - r);
    hasher.AddRows(r, r + n);
    Box piece = box;
    if (rank > 0) {
      std::vector<int64_t> origin = box.origin(), shape = box.shape();
      origin[0] += r;
      shape[0] = n;
      piece = Box::Unchecked(std::move(origin), std::move(shape));
    }
    const char* piece_data = data + r * row_bytes;
    for (const StorageBlock* b : mine) {
      const Box part = Intersect(piece, b->box());
      if (part.empty()) continue;
      const Box valid = Intersect(b->box(), tensor);
      if (part == piece) {
        MESHCKPT_RETURN_IF_ERROR(file.Write(*b, valid, part, esize, piece_data));
        continue;
      }
      // The shard spans several HDF5 chunks: gather this one's part.
      scratch->resize(part.num_elements() * esize);
      CopyRegion(piece_data, piece.shape(), RelativeTo(part, piece), scratch->data(),
                 part.shape(), Box::FromShape(part.shape()), esize);
      MESHCKPT_RETURN_IF_ERROR(file.Write(*b, valid, part, esize, scratch->data()));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<StorageTable> CreateDataFileDirect(Communicator& comm,
                                                  const std::string& partial,
                                                  const std::vector<PlannedTensor>& plan) {
  absl::StatusOr<StorageTable> table = StorageTable();
  if (comm.rank() == 0) table = CreateAndReserve(partial, plan, /*locate=*/true);
  MESHCKPT_RETURN_IF_ERROR(comm.Agree(table.status()));
  std::string bytes = comm.rank() == 0 ? EncodeStorageTable(*table) : "";
  comm.Broadcast(&bytes, 0);
  if (comm.rank() == 0) return table;
  return DecodeStorageTable(bytes, plan.size());
}

absl::Status WriteShardsDirect(const Communicator& comm, const std::string& partial,
                               const std::vector<PlannedTensor>& plan,
                               const StorageTable& storage, const SaveOptions& options,
                               RankReport* report) {
  const int me = comm.rank();
  const int64_t total = TotalBytes(me, plan);
  int64_t done = 0;
  std::unique_ptr<DirectFile> file;
  std::vector<char> scratch;
  for (size_t i = 0; i < plan.size(); ++i) {
    const PlannedTensor& p = plan[i];
    for (const ShardWriter& w : p.writers) {
      if (w.rank != me) continue;
      if (p.element_size == 0) {
        AddStringChunk(report, i, p, w, me);
        continue;
      }
      ChunkRecord* c = AddChunk(report, i, w.box, me);
      c->tile_shape =
          ChooseTileShape(w.box.shape(), p.element_size, options.checksum_tile_bytes);
      const TileGrid grid(w.box.shape(), c->tile_shape);
      c->tile_checksums.assign(grid.num_tiles(), 0);
      if (w.box.empty()) continue;
      if (file == nullptr) {
        MESHCKPT_ASSIGN_OR_RETURN(
            file, DirectFile::Open(partial, DirectFile::kWrite, /*start_writeback=*/true));
      }
      absl::Status s = WriteShard(*file, p, storage[i], w, grid,
                                  c->tile_checksums.data(), &scratch);
      if (!s.ok()) {
        return absl::Status(s.code(), absl::StrCat("tensor '", p.tensor->key, "', chunk ",
                                                   w.box.ToString(), ": ", s.message()));
      }
      MESHCKPT_FAULT_POINT("during_data_write", me);
      done += w.box.num_elements() * p.element_size;
      if (options.progress) options.progress(done, total);
    }
  }
  return file == nullptr ? absl::OkStatus() : file->Close();
}

absl::StatusOr<std::unique_ptr<DataFileWriter>> CreateDataFileMpiIo(
    Communicator& comm, const std::string& partial,
    const std::vector<PlannedTensor>& plan, const SaveOptions& options,
    std::vector<int>* datasets) {
  // HDF5 cannot get out of a collective call whose writes failed on only
  // some ranks: it hangs. So rank 0 creates the file serially, where a full
  // disk is only an error, and reserves its space; the collective open and
  // the writes after it then need no new block of disk.
  absl::Status created;
  if (comm.rank() == 0) created = CreateAndReserve(partial, plan, /*locate=*/false).status();
  MESHCKPT_RETURN_IF_ERROR(comm.Agree(created));
  absl::StatusOr<std::unique_ptr<DataFileWriter>> writer = DataFileWriter::OpenForWrite(
      comm, partial,
      FileOptions(options.transfer_mode == TransferMode::kCollective, options.mpi_hints));
  MESHCKPT_RETURN_IF_ERROR(comm.Agree(writer.status()));
  datasets->assign(plan.size(), -1);
  absl::Status local;
  for (size_t i = 0; i < plan.size() && local.ok(); ++i) {
    if (plan[i].element_size == 0) continue;
    absl::StatusOr<int> d = (*writer)->OpenDataset(DatasetSpecOf(plan[i]));
    if (d.ok()) (*datasets)[i] = *d;
    local = d.status();
  }
  if (absl::Status s = comm.Agree(local); !s.ok()) {
    (void)(*writer)->Close();
    return s;
  }
  return writer;
}

absl::Status WriteShardsMpiIo(const Communicator& comm, DataFileWriter& writer,
                              const std::vector<int>& datasets,
                              const std::vector<PlannedTensor>& plan,
                              const SaveOptions& options, RankReport* report) {
  // Checksums are a pure function of the caller's buffers and touch no
  // HDF5 or MPI state, so they are computed while the data is written.
  std::thread hasher(
      [&] { *report = BuildReport(comm.rank(), plan, options.checksum_tile_bytes); });
  // In collective mode every rank makes the same number of write calls per
  // dataset, padding with WriteNothing.
  const bool collective = options.transfer_mode == TransferMode::kCollective &&
                          comm.size() > 1;
  const int64_t total = TotalBytes(comm.rank(), plan);
  int64_t done = 0;
  absl::Status status;
  for (size_t i = 0; i < plan.size(); ++i) {
    const PlannedTensor& p = plan[i];
    if (p.element_size == 0) continue;  // Strings are written serially.
    std::vector<int64_t> calls(comm.size(), 0);
    for (const ShardWriter& w : p.writers) {
      calls[w.rank] += NumIoPieces(w.box, p.element_size);
    }
    int64_t made = 0;
    for (const ShardWriter& w : p.writers) {
      if (w.rank != comm.rank()) continue;
      if (status.ok()) {
        status = writer.Write(datasets[i], w.box, WriterData(p, w));
        MESHCKPT_FAULT_POINT("during_data_write", comm.rank());
        done += w.box.num_elements() * p.element_size;
        if (options.progress) options.progress(done, total);
      }
      made += NumIoPieces(w.box, p.element_size);
    }
    if (!collective) continue;
    // After a local failure keep making the calls others wait for.
    const int64_t needed = *std::max_element(calls.begin(), calls.end());
    if (!status.ok()) made = 0;
    for (; made < needed; ++made) {
      absl::Status s = writer.WriteNothing(datasets[i]);
      if (status.ok()) status = s;
    }
  }
  hasher.join();
  absl::Status closed = writer.Close();
  return status.ok() ? closed : status;
}

}  // namespace meshckpt::internal
