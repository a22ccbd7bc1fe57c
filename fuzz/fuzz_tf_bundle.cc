// libFuzzer target: BundleReader end to end over a fuzzed index and data
// file: Open, ReadTensor of every entry (strings, big-endian, partitioned
// assembly), VerifyAll, ReadBytes/ReadBox, ReadObjectGraph.
//
// The input is records, not a table, so the fuzzer is not stopped by block
// checksums (fuzz_tf_table covers those): [1 byte k] then k times
// [1 byte key length][key][2 bytes LE value length][value]; the rest is
// data file 0. The harness sorts the records into a table (first record
// wins per key) and writes both files to a private temporary directory.
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "meshckpt/tfbundle/bundle_reader.h"
#include "meshckpt/tfbundle/object_graph.h"
#include "meshckpt/tfbundle/table.h"

namespace {

const std::string& Prefix() {
  static const std::string* prefix = [] {
    std::string base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    std::string tmpl = base + "/meshckpt_fuzz_tf_bundle_XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) std::abort();
    static const std::string dir = tmpl;
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    });
    return new std::string(tmpl + "/ckpt");
  }();
  return *prefix;
}

void Write(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const char* p = reinterpret_cast<const char*>(data);
  const char* end = p + size;
  if (p == end) return 0;
  const int k = static_cast<uint8_t>(*p++);
  std::map<std::string, std::string> records;
  for (int i = 0; i < k; ++i) {
    if (end - p < 1) return 0;
    const size_t klen = static_cast<uint8_t>(*p++);
    if (static_cast<size_t>(end - p) < klen + 2) return 0;
    std::string key(p, klen);
    p += klen;
    const size_t vlen = static_cast<uint8_t>(p[0]) |
                        (static_cast<size_t>(static_cast<uint8_t>(p[1])) << 8);
    p += 2;
    if (static_cast<size_t>(end - p) < vlen) return 0;
    records.emplace(std::move(key), std::string(p, vlen));
    p += vlen;
  }
  std::vector<meshckpt::tf::TableEntry> table;
  for (auto& [key, value] : records) table.push_back({key, value});
  absl::StatusOr<std::string> index = meshckpt::tf::BuildTable(table);
  if (!index.ok()) return 0;
  const std::string& prefix = Prefix();
  Write(prefix + ".index", *index);
  Write(meshckpt::tf::DataFilename(prefix, 0, 1), std::string(p, end - p));

  absl::StatusOr<std::unique_ptr<meshckpt::tf::BundleReader>> r =
      meshckpt::tf::BundleReader::Open(prefix);
  if (!r.ok()) return 0;
  for (const meshckpt::tf::BundleEntry& e : (*r)->entries()) {
    (void)(*r)->ReadTensor(e.key());
    const int64_t elem = meshckpt::tf::TfDTypeSize(e.dtype());
    if (elem > 0 && e.size() <= 4096 && !e.shape().empty()) {
      std::string buf(static_cast<size_t>(e.size()), '\0');
      (void)(*r)->ReadBytes(e.key(), 0, absl::MakeSpan(buf));
      std::vector<int64_t> origin(e.shape().size(), 0);
      (void)(*r)->ReadBox(e.key(), origin, e.shape(), absl::MakeSpan(buf));
      // An inner box: strided runs, coalesced reads.
      std::vector<int64_t> size = e.shape();
      int64_t n = elem;
      for (size_t d = 0; d < size.size(); ++d) {
        origin[d] = size[d] / 3;
        size[d] -= origin[d] + size[d] / 4;
        n *= size[d];
      }
      buf.resize(static_cast<size_t>(n));
      (void)(*r)->ReadBox(e.key(), origin, size, absl::MakeSpan(buf));
    }
  }
  (void)(*r)->VerifyAll();
  (void)meshckpt::tf::ReadObjectGraph(**r);
  return 0;
}
