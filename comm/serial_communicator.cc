// Communicator for a single process, without MPI.
#include <cstring>
#include <memory>

#include "meshckpt/comm/communicator.h"

namespace meshckpt {
namespace {

class Serial final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  // One process: nobody to agree with, and no rank worth naming.
  absl::Status Agree(const absl::Status& local) override { return local; }
  void Broadcast(std::string*, int) override {}
  std::vector<std::string> Gather(const std::string& data, int) override {
    return {data};
  }
  std::vector<std::string> AllGather(const std::string& data) override { return {data}; }
  int64_t AllReduceMax(int64_t v) override { return v; }
  void Barrier() override {}
  void BroadcastBytes(void*, int64_t, int) override {}
  void AllGatherBytes(const void* mine, absl::Span<const int64_t> counts,
                      void* out) override {
    if (counts[0] > 0) std::memcpy(out, mine, counts[0]);
  }
  absl::StatusOr<std::unique_ptr<Communicator>> Subgroup(
      absl::Span<const int> ranks) override {
    if (ranks.size() != 1 || ranks[0] != 0) {
      return absl::InvalidArgumentError(
          "a subgroup of the serial communicator must be exactly rank 0");
    }
    return std::unique_ptr<Communicator>(new Serial());
  }
  absl::StatusOr<std::unique_ptr<Communicator>> DuplicateForThread() override {
    return std::unique_ptr<Communicator>(new Serial());
  }
  std::optional<int> mpi_fortran_handle() const override { return std::nullopt; }
};

}  // namespace

std::unique_ptr<Communicator> SerialCommunicator() { return std::make_unique<Serial>(); }

}  // namespace meshckpt
