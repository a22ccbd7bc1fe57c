// Conversion between the TensorBundle index protos and BundleHeader/BundleEntry.
#include "meshckpt/tfbundle/bundle_entry.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "tfbundle/proto/saved_tensor_slice.pb.h"
#include "tfbundle/proto/tensor_bundle.pb.h"

namespace meshckpt::tf {
namespace {

// A V1 checkpoint's "" record is a SavedTensorSlices whose meta names the
// tensors; a bundle header never parses as one with names in it.
bool LooksLikeV1(absl::string_view serialized, std::vector<std::string>* names) {
  tfproto::SavedTensorSlices v1;
  if (!v1.ParseFromArray(serialized.data(), static_cast<int>(serialized.size())) ||
      !v1.has_meta() || v1.meta().tensor_size() == 0) {
    return false;
  }
  for (const auto& t : v1.meta().tensor()) {
    if (names->size() == 5) {
      names->push_back("...");
      break;
    }
    names->push_back(t.name());
  }
  return true;
}

}  // namespace

absl::StatusOr<BundleHeader> ParseBundleHeader(absl::string_view serialized,
                                               absl::string_view index_file) {
  std::vector<std::string> v1_names;
  if (LooksLikeV1(serialized, &v1_names)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", index_file,
        "' is a TensorFlow V1 (TensorSlice) checkpoint, which is not supported; only "
        "TensorBundle V2 (<prefix>.index + <prefix>.data-*) is. Tensors: ",
        absl::StrJoin(v1_names, ", ")));
  }
  tfproto::BundleHeaderProto p;
  if (serialized.size() > INT32_MAX ||
      !p.ParseFromArray(serialized.data(), static_cast<int>(serialized.size())) ||
      p.num_shards() <= 0 || p.num_shards() > kMaxDataShards) {
    // Data files are named with %05d, so more shards cannot exist; the cap
    // also bounds what a reader allocates per shard.
    return absl::InvalidArgumentError(
        absl::StrCat("'", index_file,
                     "' is a table whose first record is not a TensorBundle header (1 <= "
                     "num_shards <= ",
                     kMaxDataShards, "): not a TensorFlow V2 checkpoint index"));
  }
  if (p.endianness() != tfproto::BundleHeaderProto::LITTLE &&
      p.endianness() != tfproto::BundleHeaderProto::BIG) {
    return absl::DataLossError(absl::StrCat("'", index_file, "' has unknown endianness ",
                                            static_cast<int>(p.endianness())));
  }
  const tfproto::VersionDef& v = p.version();
  if (v.min_consumer() > kTensorBundleVersion) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "'%s' needs a TensorBundle reader of version %d or newer; this one is version %d",
        index_file, v.min_consumer(), kTensorBundleVersion));
  }
  for (int bad : v.bad_consumers()) {
    if (bad == kTensorBundleVersion) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "'%s' disallows TensorBundle readers of version %d", index_file, bad));
    }
  }
  BundleHeader h;
  h.num_shards = p.num_shards();
  h.big_endian = p.endianness() == tfproto::BundleHeaderProto::BIG;
  h.producer = v.producer();
  h.min_consumer = v.min_consumer();
  return h;
}

std::string SerializeBundleHeader(const BundleHeader& header) {
  tfproto::BundleHeaderProto p;
  p.set_num_shards(header.num_shards);
  p.set_endianness(header.big_endian ? tfproto::BundleHeaderProto::BIG
                                     : tfproto::BundleHeaderProto::LITTLE);
  p.mutable_version()->set_producer(header.producer);
  p.mutable_version()->set_min_consumer(header.min_consumer);
  return p.SerializeAsString();
}

absl::StatusOr<BundleEntry> BundleEntry::Create(Fields f, int num_shards,
                                                absl::string_view index_file) {
  const auto bad = [&](absl::string_view why) {
    return absl::DataLossError(absl::StrCat("entry '", absl::CHexEscape(f.key), "' of '",
                                            index_file, "' is invalid: ", why));
  };
  absl::StatusOr<int64_t> n = NumElements(f.shape);
  if (!n.ok()) return bad(n.status().message());
  if (f.shard_id < 0 || f.shard_id >= num_shards) {
    return bad(
        absl::StrFormat("shard %d, but the bundle has %d", f.shard_id, num_shards));
  }
  if (f.offset < 0 || f.size < 0 || f.offset > INT64_MAX - f.size) {
    return bad(absl::StrFormat("bytes [%d, +%d) are not a file range", f.offset, f.size));
  }
  const TfDType dtype = static_cast<TfDType>(f.dtype);
  const int64_t elem = IsKnownTfDType(f.dtype) ? TfDTypeSize(dtype) : 0;
  if (f.slices.empty() && elem > 0 && (*n > f.size / elem || *n * elem != f.size)) {
    return bad(absl::StrFormat("%s with %d elements must have %d bytes, not %d",
                               TfDTypeName(f.dtype), *n,
                               *n > INT64_MAX / elem ? -1 : *n * elem, f.size));
  }
  if (f.slices.empty() && dtype == TfDType::kString && *n > 0 && f.size - 4 < *n) {
    return bad(
        absl::StrFormat("DT_STRING with %d elements cannot fit in %d bytes", *n, f.size));
  }
  for (const TensorSliceSpec& s : f.slices) {
    if (s.size() != f.shape.size()) {
      return bad(absl::StrFormat("a slice has %d dimensions, the tensor %d", s.size(),
                                 f.shape.size()));
    }
    for (size_t d = 0; d < s.size(); ++d) {
      const int64_t len = s[d].length;
      if (s[d].start < 0 || len < -1 || s[d].start > f.shape[d] ||
          (len >= 0 && len > f.shape[d] - s[d].start)) {
        return bad(
            absl::StrFormat("slice extent %d:%d of dimension %d is outside size %d",
                            s[d].start, len, d, f.shape[d]));
      }
    }
  }
  return BundleEntry(std::move(f), *n);
}

absl::StatusOr<BundleEntry> BundleEntry::Parse(absl::string_view key,
                                               absl::string_view serialized,
                                               int num_shards,
                                               absl::string_view index_file) {
  tfproto::BundleEntryProto p;
  if (serialized.size() > INT32_MAX ||
      !p.ParseFromArray(serialized.data(), static_cast<int>(serialized.size()))) {
    return absl::DataLossError(absl::StrCat("entry '", absl::CHexEscape(key), "' of '",
                                            index_file, "' is not a BundleEntryProto"));
  }
  if (p.shape().unknown_rank()) {
    return absl::DataLossError(absl::StrCat("entry '", absl::CHexEscape(key), "' of '",
                                            index_file, "' has a shape of unknown rank"));
  }
  Fields f;
  f.key = std::string(key);
  f.dtype = static_cast<int>(p.dtype());
  for (const auto& d : p.shape().dim()) f.shape.push_back(d.size());
  f.shard_id = p.shard_id();
  f.offset = p.offset();
  f.size = p.size();
  f.masked_crc32c = p.crc32c();
  for (const auto& s : p.slices()) {
    TensorSliceSpec spec;
    for (const auto& e : s.extent()) {
      spec.push_back(SliceExtent{e.start(), e.has_length() ? e.length() : -1});
    }
    f.slices.push_back(std::move(spec));
  }
  return Create(std::move(f), num_shards, index_file);
}

std::string BundleEntry::Serialize() const {
  tfproto::BundleEntryProto p;
  p.set_dtype(static_cast<tfproto::DataType>(f_.dtype));
  // TF always sets the shape, so a scalar's entry carries an empty one.
  tfproto::TensorShapeProto* shape = p.mutable_shape();
  for (int64_t d : f_.shape) shape->add_dim()->set_size(d);
  p.set_shard_id(f_.shard_id);
  p.set_offset(f_.offset);
  p.set_size(f_.size);
  p.set_crc32c(f_.masked_crc32c);
  for (const TensorSliceSpec& s : f_.slices) {
    tfproto::TensorSliceProto* sp = p.add_slices();
    for (const SliceExtent& e : s) {
      tfproto::TensorSliceProto::Extent* ep = sp->add_extent();
      // TF writes nothing for a full extent: no start, no length.
      if (e.length >= 0) {
        ep->set_start(e.start);
        ep->set_length(e.length);
      }
    }
  }
  return p.SerializeAsString();
}

}  // namespace meshckpt::tf
