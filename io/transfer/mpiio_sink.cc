// The MPI-IO ChunkSink: parallel HDF5 writes, independent or collective,
// with the checksums computed on a second thread meanwhile.
#include <algorithm>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "meshckpt/base/status_macros.h"
#include "meshckpt/io/format/checksum.h"
#include "meshckpt/io/transfer/chunk_sink_internal.h"
#include "meshckpt/io/transfer/hdf5_writer.h"
#include "meshckpt/io/transfer/io_pieces.h"

namespace meshckpt::sink_internal {
namespace {

class MpiIoSink final : public SinkBase {
 public:
  // `handles`: per dataset, its id in `writer` (-1 for strings).
  MpiIoSink(const Communicator& comm, std::vector<SinkDataset> datasets,
            const IoOptions& options, std::unique_ptr<Hdf5FileWriter> writer,
            std::vector<int> handles)
      : SinkBase(comm.rank(), std::move(datasets), options.checksum_tile_bytes),
        writer_(std::move(writer)),
        handles_(std::move(handles)),
        collective_(options.transfer_mode == TransferMode::kCollective &&
                    comm.size() > 1) {
    if (collective_) {
      // Per dataset, the most write calls any rank makes: what every rank
      // makes, padding with WriteNothing.
      needed_.assign(this->datasets().size(), 0);
      std::vector<int64_t> calls(comm.size());
      for (size_t d = 0; d < this->datasets().size(); ++d) {
        const SinkDataset& ds = this->datasets()[d];
        if (handles_[d] < 0) continue;
        std::fill(calls.begin(), calls.end(), 0);
        for (const SinkChunk& c : ds.chunks) {
          calls[c.rank] += NumIoPieces(c.box, DTypeSize(ds.spec.dtype));
        }
        needed_[d] = *std::max_element(calls.begin(), calls.end());
      }
    }
    // Checksums are a pure function of the caller's buffers and touch no
    // HDF5 or MPI state, so they are computed while the data is written.
    hasher_ = std::thread([this] { HashAll(); });
  }

  ~MpiIoSink() override {
    if (hasher_.joinable()) hasher_.join();
  }

  absl::Status Write(size_t dataset, size_t chunk) override {
    absl::StatusOr<ChunkRecord*> record = Begin(dataset, chunk);
    if (!record.ok()) {
      if (status_.ok()) status_ = record.status();
      return status_;
    }
    AdvanceTo(dataset);
    const SinkDataset& d = datasets()[dataset];
    const Box& box = (*record)->box;
    if (status_.ok())
      status_ = writer_->Write(handles_[dataset], box, d.chunks[chunk].data);
    made_ += NumIoPieces(box, DTypeSize(d.spec.dtype));
    return status_;
  }

  absl::StatusOr<std::vector<WrittenChunk>> Close() override {
    AdvanceTo(datasets().size());
    hasher_.join();
    absl::Status closed = writer_->Close();
    return Finish(status_.ok() ? closed : status_);
  }

 private:
  void HashAll() {
    std::vector<WrittenChunk>& records = this->records();
    for (size_t i = 0; i < records.size(); ++i) {
      const SinkDataset& d = datasets()[records[i].dataset];
      if (d.spec.dtype == DType::kString) continue;
      ChunkRecord& r = records[i].record;
      r.tile_checksums = TileChecksums(d.chunks[chunk_of(i)].data,
                                       TileGrid(r.box.shape(), r.tile_shape),
                                       DTypeSize(d.spec.dtype));
    }
  }

  // Collective mode: finishes the datasets before `dataset` with the calls
  // other ranks wait for, also after a failure here.
  void AdvanceTo(size_t dataset) {
    for (; current_ < dataset; ++current_) {
      if (!collective_ || handles_[current_] < 0) {
        made_ = 0;
        continue;
      }
      int64_t made = status_.ok() ? made_ : 0;
      for (; made < needed_[current_]; ++made) {
        absl::Status s = writer_->WriteNothing(handles_[current_]);
        if (status_.ok()) status_ = s;
      }
      made_ = 0;
    }
  }

  std::unique_ptr<Hdf5FileWriter> writer_;
  std::vector<int> handles_;
  bool collective_;
  std::vector<int64_t> needed_;  // Collective mode: write calls per dataset.
  size_t current_ = 0;           // The dataset being written.
  int64_t made_ = 0;             // Write calls made for it.
  absl::Status status_;
  std::thread hasher_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ChunkSink>> OpenMpiIoSink(
    Communicator& comm, const std::string& path, std::vector<SinkDataset> datasets,
    const IoOptions& options) {
  DataFileOptions file_options;
  file_options.collective = options.transfer_mode == TransferMode::kCollective;
  file_options.mpi_hints = options.mpi_hints;
  absl::StatusOr<std::unique_ptr<Hdf5FileWriter>> writer =
      Hdf5FileWriter::OpenForWrite(comm, path, file_options);
  MESHCKPT_RETURN_IF_ERROR(comm.Agree(writer.status()));
  std::vector<int> handles(datasets.size(), -1);
  absl::Status local;
  for (size_t i = 0; i < datasets.size() && local.ok(); ++i) {
    if (datasets[i].spec.dtype == DType::kString) continue;  // Written at create.
    absl::StatusOr<int> d = (*writer)->OpenDataset(datasets[i].spec);
    if (d.ok()) handles[i] = *d;
    local = d.status();
  }
  if (absl::Status s = comm.Agree(local); !s.ok()) {
    (void)(*writer)->Close();
    return s;
  }
  return std::unique_ptr<ChunkSink>(new MpiIoSink(
      comm, std::move(datasets), options, *std::move(writer), std::move(handles)));
}

}  // namespace meshckpt::sink_internal
