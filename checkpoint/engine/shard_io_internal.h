// Pieces shared by save_session.cc and shard_restore.cc. Internal.
#ifndef MESHCKPT_CHECKPOINT_ENGINE_SHARD_IO_INTERNAL_H_
#define MESHCKPT_CHECKPOINT_ENGINE_SHARD_IO_INTERNAL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "meshckpt/comm/communicator.h"
#include "meshckpt/io/transfer/data_file.h"
#include "meshckpt/layout/box.h"
#include "meshckpt/layout/layout.h"
#include "meshckpt/layout/shard_map.h"

namespace meshckpt::internal {

// A '/'-separated HDF5 path of non-empty names other than "." and "..".
absl::Status ValidateDatasetPath(absl::string_view key, absl::string_view path);

// InvalidArgument unless `layout`'s mesh spans comm.size() ranks and is seen
// from comm.rank().
absl::Status CheckLayoutFitsComm(absl::string_view key, const Layout& layout,
                                 const Communicator& comm);

// InvalidArgument unless the buffers fit one of the two forms of shard_io.h:
// `device_data` with one entry per local device (null only for empty
// boxes), or, when it is empty, `shard_data` with one non-null entry per
// ShardMap::LocalShards(). Ptr is void* or const void*.
template <typename Ptr>
absl::Status CheckBuffers(absl::string_view key, const ShardMap& map,
                          const std::vector<Ptr>& device_data,
                          const std::vector<Ptr>& shard_data);

// This rank's buffers of one tensor, one per distinct non-empty shard its
// devices hold, from either form. With device_data, `copies` are further
// device buffers of an already listed shard that must receive its values
// (devices sharing one buffer need none).
struct LocalBuffers {
  struct Shard {
    int64_t shard;
    Box box;
    void* data;
  };
  struct Copy {
    size_t from;  // Index into shards.
    void* to;
  };
  std::vector<Shard> shards;  // Ascending by shard.
  std::vector<Copy> copies;
};
// Arguments must have passed CheckBuffers. O(local shards) for shard_data;
// O(local devices) for device_data, which has that many entries anyway.
template <typename Ptr>
LocalBuffers LocalBuffersOf(const ShardMap& map, const std::vector<Ptr>& device_data,
                            const std::vector<Ptr>& shard_data);

// Fills `b.copies` from their shards (strings copied as std::string);
// returns the bytes copied (elements x DTypeSize).
int64_t FillCopies(const LocalBuffers& b, DType dtype);

// Collective. InvalidArgument on every rank unless all ranks passed the same
// fingerprint of their arguments (`what` names them).
absl::Status AgreeSameOnAllRanks(Communicator& comm, uint64_t fingerprint,
                                 absl::string_view what);

// Hint to the MPI-IO layer: the data file options of a save or restore.
DataFileOptions FileOptions(bool collective,
                            const std::map<std::string, std::string>& hints);

}  // namespace meshckpt::internal

#endif  // MESHCKPT_CHECKPOINT_ENGINE_SHARD_IO_INTERNAL_H_
