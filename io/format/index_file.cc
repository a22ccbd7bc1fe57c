// The index file: framing, versions, and the IndexRecord <-> proto mapping.
#include "meshckpt/io/format/index_file.h"

#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/algorithm/container.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "meshckpt/io/format/index_proto.h"
#include "meshckpt/io/fs/fs.h"
#include "meshckpt/proto/convert.h"

namespace meshckpt {
namespace {

constexpr size_t kFooterSize = 16;

absl::Status Bad(const std::string& path, absl::string_view key, absl::string_view what) {
  return absl::DataLossError(
      absl::StrCat("index file '", path, "', tensor '", key, "': ", what));
}

absl::Status NotAnIndex(const std::string& path, int64_t size) {
  return absl::DataLossError(absl::StrCat("index file '", path,
                                          "' is truncated or not a meshckpt index (",
                                          size, " bytes, no footer)"));
}

}  // namespace

absl::StatusOr<std::string> ReadIndexFileBytes(const std::string& path) {
  absl::StatusOr<OpenedFile> file = OpenRegularFileForRead(path);
  if (!file.ok()) return file.status();
  const int fd = file->fd;
  char magic[8];
  ssize_t n = -1;
  if (file->size >= static_cast<int64_t>(kFooterSize)) {
    do {
      n = ::pread(fd, magic, sizeof(magic), file->size - 8);
    } while (n < 0 && errno == EINTR);
  }
  ::close(fd);
  if (n != 8 || std::memcmp(magic, kIndexMagic, 8) != 0) {
    return NotAnIndex(path, file->size);
  }
  if (file->size > kMaxIndexFileBytes) {
    return absl::DataLossError(absl::StrCat("index file '", path, "' is ", file->size,
                                            " bytes, more than an index can be"));
  }
  return ReadFileToString(path, kMaxIndexFileBytes);
}

proto::CheckpointIndexProto IndexToProto(const IndexRecord& index) {
  proto::CheckpointIndexProto p;
  p.mutable_version()->set_producer(index.version.producer);
  p.mutable_version()->set_min_consumer(index.version.min_consumer);
  for (int v : index.version.bad_consumers) p.mutable_version()->add_bad_consumers(v);
  *p.mutable_mesh() = MeshToProto(index.mesh);
  for (const TensorRecord& t : index.tensors) {
    proto::TensorEntryProto* e = p.add_tensors();
    e->set_key(t.key);
    e->set_dataset(t.dataset);
    e->set_dtype(DTypeToProto(t.dtype));
    for (int64_t s : t.shape) e->add_shape(s);
    // A tensor on the index's mesh does not repeat it.
    *e->mutable_layout() =
        LayoutToProto(t.layout, !t.layout.mesh().SameGridAs(index.mesh));
    for (const ChunkRecord& c : t.chunks) {
      proto::ChunkProto* cp = e->add_chunks();
      ChunkBoxToProto(c.box, cp);
      cp->set_writer_rank(c.writer_rank);
      for (int64_t v : c.tile_shape) cp->add_tile_shape(v);
      cp->mutable_tile_checksums()->Add(c.tile_checksums.begin(), c.tile_checksums.end());
      if (c.file_offset.has_value()) cp->set_file_offset(*c.file_offset);
      for (int64_t v : c.storage_shape) cp->add_storage_shape(v);
    }
  }
  for (const ObjectGraph::Node& n : index.object_graph.nodes) {
    proto::ObjectGraphProto::Node* pn = p.mutable_object_graph()->add_nodes();
    for (const ObjectGraph::Child& c : n.children) {
      proto::ObjectGraphProto::Node::Child* pc = pn->add_children();
      pc->set_node_id(c.node_id);
      pc->set_local_name(c.local_name);
    }
    for (const ObjectGraph::Attribute& a : n.attributes) {
      proto::ObjectGraphProto::Node::Attribute* pa = pn->add_attributes();
      pa->set_name(a.name);
      pa->set_checkpoint_key(a.checkpoint_key);
    }
  }
  for (const auto& [k, v] : index.user_metadata) (*p.mutable_user_metadata())[k] = v;
  p.set_save_counter(index.save_counter);
  p.set_step(index.step);
  p.set_timestamp(index.timestamp);
  p.set_library_version(index.library_version);
  p.set_data_file(index.data_file);
  p.set_data_file_size(index.data_file_size);
  return p;
}

absl::StatusOr<IndexRecord> IndexFromProto(const proto::CheckpointIndexProto& p,
                                           const std::string& path) {
  absl::StatusOr<Mesh> mesh = MeshFromProto(p.mesh());
  if (!mesh.ok()) {
    return absl::DataLossError(absl::StrCat(
        "index file '", path, "' has a bad mesh: ", mesh.status().message()));
  }
  IndexRecord index(*std::move(mesh));
  index.version.producer = p.version().producer();
  index.version.min_consumer = p.version().min_consumer();
  index.version.bad_consumers.assign(p.version().bad_consumers().begin(),
                                     p.version().bad_consumers().end());
  index.tensors.reserve(p.tensors_size());
  for (const proto::TensorEntryProto& e : p.tensors()) {
    absl::StatusOr<DType> dtype = DTypeFromProto(e.dtype());
    if (!dtype.ok()) return Bad(path, e.key(), dtype.status().message());
    absl::StatusOr<Layout> layout = LayoutFromProto(e.layout(), index.mesh);
    if (!layout.ok()) return Bad(path, e.key(), layout.status().message());
    TensorRecord& t = index.tensors.emplace_back(
        e.key(), e.dataset(), *dtype,
        std::vector<int64_t>(e.shape().begin(), e.shape().end()), *std::move(layout));
    t.chunks.reserve(e.chunks_size());
    for (const proto::ChunkProto& c : e.chunks()) {
      absl::StatusOr<Box> box = ChunkBoxFromProto(c);
      if (!box.ok()) return Bad(path, e.key(), box.status().message());
      ChunkRecord& r = t.chunks.emplace_back();
      r.box = *std::move(box);
      r.writer_rank = c.writer_rank();
      r.tile_shape.assign(c.tile_shape().begin(), c.tile_shape().end());
      r.tile_checksums.assign(c.tile_checksums().begin(), c.tile_checksums().end());
      if (c.has_file_offset()) r.file_offset = c.file_offset();
      r.storage_shape.assign(c.storage_shape().begin(), c.storage_shape().end());
    }
  }
  for (const proto::ObjectGraphProto::Node& pn : p.object_graph().nodes()) {
    ObjectGraph::Node& n = index.object_graph.nodes.emplace_back();
    for (const auto& c : pn.children())
      n.children.push_back({c.node_id(), c.local_name()});
    for (const auto& a : pn.attributes())
      n.attributes.push_back({a.name(), a.checkpoint_key()});
  }
  index.user_metadata.insert(p.user_metadata().begin(), p.user_metadata().end());
  index.save_counter = p.save_counter();
  index.step = p.step();
  index.timestamp = p.timestamp();
  index.library_version = p.library_version();
  index.data_file = p.data_file();
  index.data_file_size = p.data_file_size();
  return index;
}

std::string EncodeIndexFile(const IndexRecord& index) {
  proto::CheckpointIndexProto p = IndexToProto(index);
  // Older readers would take a compact mesh for a damaged one.
  bool compact = IsCompactMeshProto(p.mesh());
  for (const proto::TensorEntryProto& e : p.tensors()) {
    compact |= e.layout().has_mesh() && IsCompactMeshProto(e.layout().mesh());
  }
  p.mutable_version()->set_producer(kFormatVersion);
  p.mutable_version()->set_min_consumer(
      std::max({kMinConsumerVersion, compact ? kCompactMeshVersion : 0,
                p.version().min_consumer()}));
  return EncodeIndexProto(p);
}

std::string EncodeIndexProto(const proto::CheckpointIndexProto& index) {
  std::string out;
  index.SerializeToString(&out);
  const uint64_t h = XXH3_64bits(out.data(), out.size());
  for (int b = 0; b < 8; ++b) out.push_back(static_cast<char>(h >> (8 * b)));
  out.append(kIndexMagic, 8);
  return out;
}

absl::StatusOr<IndexRecord> DecodeIndexFile(absl::string_view bytes,
                                            const std::string& path) {
  absl::StatusOr<proto::CheckpointIndexProto> p = DecodeIndexProto(bytes, path);
  if (!p.ok()) return p.status();
  return IndexFromProto(*p, path);
}

absl::StatusOr<proto::CheckpointIndexProto> DecodeIndexProto(absl::string_view bytes,
                                                             const std::string& path) {
  if (bytes.size() < kFooterSize ||
      std::memcmp(bytes.data() + bytes.size() - 8, kIndexMagic, 8) != 0) {
    return NotAnIndex(path, static_cast<int64_t>(bytes.size()));
  }
  if (static_cast<int64_t>(bytes.size()) > kMaxIndexFileBytes) {
    return absl::DataLossError(absl::StrCat("index file '", path, "' is ", bytes.size(),
                                            " bytes, more than an index can be"));
  }
  const absl::string_view payload = bytes.substr(0, bytes.size() - kFooterSize);
  uint64_t stored = 0;
  for (int b = 0; b < 8; ++b) {
    stored |= uint64_t{static_cast<unsigned char>(bytes[payload.size() + b])} << (8 * b);
  }
  if (XXH3_64bits(payload.data(), payload.size()) != stored) {
    return absl::DataLossError(
        absl::StrCat("index file '", path, "' fails its checksum"));
  }
  proto::CheckpointIndexProto index;
  if (!index.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return absl::DataLossError(absl::StrCat("index file '", path, "' does not parse"));
  }
  const proto::VersionDef& v = index.version();
  if (v.min_consumer() > kFormatVersion ||
      absl::c_linear_search(v.bad_consumers(), kFormatVersion)) {
    return absl::FailedPreconditionError(
        absl::StrCat("index file '", path, "' was written by meshckpt format ",
                     v.producer(), " and needs a reader of format >= ", v.min_consumer(),
                     "; this library reads format ", kFormatVersion));
  }
  return index;
}

}  // namespace meshckpt
