// Communicator for a single process, without MPI.
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
  absl::StatusOr<std::unique_ptr<Communicator>> DuplicateForThread() override {
    return std::unique_ptr<Communicator>(new Serial());
  }
  std::optional<int> mpi_fortran_handle() const override { return std::nullopt; }
};

}  // namespace

std::unique_ptr<Communicator> SerialCommunicator() { return std::make_unique<Serial>(); }

}  // namespace meshckpt
