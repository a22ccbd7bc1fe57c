// io/format/ owns the bytes on disk that are ours: the index record and
// index file, tile checksums, the string blob. It may use proto/ (the index
// schema), io/fs/, layout/, mesh/ and base/; nothing in checkpoint/.
//
// The contents of a checkpoint's index as plain C++ values: what a save
// records and a restore reads. io/format/index_file.h turns them into bytes
// and back; protobuf stays inside that file.
//
// These are records, not validated views: Decode checks what each value
// needs to exist (a mesh, a layout on it, a known dtype, a chunk box), while
// the checks across values (keys unique, chunks covering their tensor,
// checksums per tile, storage inside the data file) belong to the reader
// (checkpoint/engine/checkpoint_index.h).
#ifndef MESHCKPT_IO_FORMAT_INDEX_H_
#define MESHCKPT_IO_FORMAT_INDEX_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "meshckpt/base/dtype.h"
#include "meshckpt/layout/box.h"
#include "meshckpt/layout/layout.h"
#include "meshckpt/mesh/mesh.h"

namespace meshckpt {

// Which objects a checkpoint holds and how they reach its tensors (the
// object API's dependency graph); node 0 is the root.
struct ObjectGraph {
  struct Child {
    int node_id = 0;
    std::string local_name;
    friend bool operator==(const Child& a, const Child& b) {
      return a.node_id == b.node_id && a.local_name == b.local_name;
    }
  };
  struct Attribute {
    std::string name;
    std::string checkpoint_key;
    friend bool operator==(const Attribute& a, const Attribute& b) {
      return a.name == b.name && a.checkpoint_key == b.checkpoint_key;
    }
  };
  struct Node {
    std::vector<Child> children;
    std::vector<Attribute> attributes;
    friend bool operator==(const Node& a, const Node& b) {
      return a.children == b.children && a.attributes == b.attributes;
    }
  };
  std::vector<Node> nodes;
  friend bool operator==(const ObjectGraph& a, const ObjectGraph& b) {
    return a.nodes == b.nodes;
  }
};

// One stored piece of a tensor, written whole by one rank.
struct ChunkRecord {
  Box box;  // Global coordinates.
  int writer_rank = 0;
  // The checksum grid over the chunk: one XXH3-64 per tile, row-major.
  std::vector<int64_t> tile_shape;
  std::vector<uint64_t> tile_checksums;
  // Where the chunk's first element is in the data file, and the shape of
  // the row-major block around it; unset when unknown (strings, filtered
  // storage, files from writers that did not record it).
  std::optional<int64_t> file_offset;
  std::vector<int64_t> storage_shape;
};

struct TensorRecord {
  TensorRecord(std::string key, std::string dataset, DType dtype,
               std::vector<int64_t> shape, Layout layout)
      : key(std::move(key)),
        dataset(std::move(dataset)),
        dtype(dtype),
        shape(std::move(shape)),
        layout(std::move(layout)) {}

  std::string key;
  std::string dataset;  // HDF5 path in the data file.
  DType dtype;
  std::vector<int64_t> shape;
  Layout layout;  // As saved, on the saving job's mesh (or its own).
  std::vector<ChunkRecord> chunks;
};

struct FormatVersion {
  int producer = 0;
  int min_consumer = 0;
  std::vector<int> bad_consumers;
};

struct IndexRecord {
  explicit IndexRecord(Mesh mesh) : mesh(std::move(mesh)) {}

  // Filled in by EncodeIndexFile; min_consumer may be raised before that.
  FormatVersion version;
  Mesh mesh;  // The saving job's mesh.
  std::vector<TensorRecord> tensors;
  ObjectGraph object_graph;
  std::map<std::string, std::string> user_metadata;
  int64_t save_counter = 0;
  int64_t step = 0;
  double timestamp = 0;  // Seconds since the Unix epoch, at commit.
  std::string library_version;
  std::string data_file;  // Base name of the data file, beside the index.
  int64_t data_file_size = 0;
};

}  // namespace meshckpt

#endif  // MESHCKPT_IO_FORMAT_INDEX_H_
