// Writes the seed corpora of the TensorFlow fuzz targets (fuzz/corpus/tf_*)
// from small synthetic inputs made by our own writers, never from the shared
// TF checkpoints. Rerun after a format change:
//   build/tests/tfbundle_fuzz_seeds fuzz/corpus
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "meshckpt/tfbundle/bundle_entry.h"
#include "meshckpt/tfbundle/bundle_reader.h"
#include "meshckpt/tfbundle/bundle_writer.h"
#include "meshckpt/tfbundle/object_graph.h"
#include "meshckpt/tfbundle/string_tensor.h"
#include "meshckpt/tfbundle/table.h"
#include "tfbundle/proto/meta_graph.pb.h"
#include "tfbundle/proto/variable.pb.h"

namespace fs = std::filesystem;
using namespace meshckpt::tf;

namespace {

void Put(const fs::path& dir, const std::string& name, const std::string& bytes) {
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary) << bytes;
}

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string FloatBytes(std::vector<float> v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

// A bundle in fuzz_tf_bundle's input form: records, then the data file.
std::string AsRecords(const std::string& prefix) {
  const std::vector<TableEntry> table = *ReadTable(ReadAll(prefix + ".index"), prefix);
  std::string out(1, static_cast<char>(table.size()));
  for (const TableEntry& e : table) {
    out.push_back(static_cast<char>(e.key.size()));
    out += e.key;
    out.push_back(static_cast<char>(e.value.size() & 0xff));
    out.push_back(static_cast<char>(e.value.size() >> 8));
    out += e.value;
  }
  return out + ReadAll(DataFilename(prefix, 0, 1));
}

ObjectGraph SmallGraph() {
  std::vector<TrackableObject> n(4);
  n[0].children = {{1, "model"}, {3, "optimizer"}};
  n[1].children = {{2, "kernel"}};
  n[2].attributes = {
      {"VARIABLE_VALUE", "kernel", "model/kernel/.ATTRIBUTES/VARIABLE_VALUE", false}};
  n[3].slot_variables = {{2, "m", 2}};
  return *ObjectGraph::Create(std::move(n));
}

std::string MetaGraphSeed() {
  meshckpt::tfproto::MetaGraphDef m;
  m.mutable_meta_info_def()->add_tags("serve");
  m.mutable_meta_info_def()->set_tensorflow_version("1.15.0");
  for (const char* name : {"w", "b"}) {
    auto* node = m.mutable_graph_def()->add_node();
    node->set_name(name);
    node->set_op("VariableV2");
    auto* dtype = node->add_attr();
    dtype->set_key("dtype");
    dtype->mutable_value()->set_type(meshckpt::tfproto::DT_FLOAT);
    auto* shape = node->add_attr();
    shape->set_key("shape");
    shape->mutable_value()->mutable_shape()->add_dim()->set_size(3);
    meshckpt::tfproto::VariableDef v;
    v.set_variable_name(std::string(name) + ":0");
    v.set_snapshot_name(std::string(name) + "/read:0");
    v.mutable_save_slice_info_def()->set_full_name(name);
    v.mutable_save_slice_info_def()->add_full_shape(6);
    if (m.collection_def_size() == 0) m.add_collection_def()->set_key("variables");
    m.mutable_collection_def(0)->mutable_value()->mutable_bytes_list()->add_value(
        v.SerializeAsString());
  }
  m.mutable_saver_def()->set_filename_tensor_name("save/Const:0");
  m.mutable_saver_def()->set_version(meshckpt::tfproto::SaverDef::V2);
  auto* steps = m.add_collection_def();
  steps->set_key("steps");
  steps->mutable_value()->mutable_int64_list()->add_value(7);
  return m.SerializeAsString();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <fuzz/corpus>\n", argv[0]);
    return 2;
  }
  const fs::path out = argv[1];
  const fs::path tmp = fs::temp_directory_path() / "tfbundle_seeds";
  fs::create_directories(tmp);
  const std::vector<std::pair<std::string, TensorValue>> tensors = {
      {"a", *TensorValue::FromBytes(TfDType::kFloat, {}, FloatBytes({0.5f}))},
      {"dense/kernel",
       *TensorValue::FromBytes(TfDType::kFloat, {2, 2}, FloatBytes({1, 2, 3, 4}))},
      {"vocab", *TensorValue::FromStrings({3}, {"x", "", "hello"})},
      {std::string(kObjectGraphKey),
       *TensorValue::FromStrings({}, {SmallGraph().Serialize()})}};
  for (bool snappy : {false, true}) {
    BundleWriterOptions o;
    o.compress_index = snappy;
    // Small blocks for several of them; Snappy needs bigger, repetitive ones
    // (LevelDB stores a block raw unless compression saves 12.5%).
    o.index_block_size = snappy ? 4096 : 64;
    std::vector<std::pair<std::string, TensorValue>> all = tensors;
    for (int i = 0; snappy && i < 12; ++i) {
      all.emplace_back(
          "model/layer_" + std::to_string(10 + i) + "/kernel/.ATTRIBUTES/VARIABLE_VALUE",
          *TensorValue::FromBytes(TfDType::kFloat, {1}, FloatBytes({1.f})));
    }
    const std::string prefix = (tmp / (snappy ? "snappy" : "raw")).string();
    if (!WriteBundle(prefix, all, o).ok()) return 1;
    Put(out / "tf_table", snappy ? "bundle_snappy.index" : "bundle_raw.index",
        ReadAll(prefix + ".index"));
    if (!snappy) Put(out / "tf_bundle", "bundle", AsRecords(prefix));
  }
  {  // A partitioned tensor, as TF1 PartitionedVariables are saved.
    const std::string prefix = (tmp / "partitioned").string();
    auto w = *BundleWriter::Create(prefix);
    if (!w->AddSlice(
              "emb", {3, 2}, {{0, 2}, {0, -1}},
              *TensorValue::FromBytes(TfDType::kFloat, {2, 2}, FloatBytes({1, 2, 3, 4})))
             .ok() ||
        !w->AddSlice("emb", {3, 2}, {{2, 1}, {0, -1}},
                     *TensorValue::FromBytes(TfDType::kFloat, {1, 2}, FloatBytes({5, 6})))
             .ok() ||
        !w->Finish().ok()) {
      return 1;
    }
    Put(out / "tf_bundle", "partitioned", AsRecords(prefix));
  }
  Put(out / "tf_table", "empty_table", *BuildTable({}));
  Put(out / "tf_table", "header_only", *BuildTable({{"", SerializeBundleHeader({})}}));

  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& [key, value] = tensors[i];
    BundleEntry::Fields f;
    f.key = key;
    f.dtype = static_cast<int>(value.dtype());
    f.shape = value.shape();
    std::string data = value.bytes();
    if (value.dtype() == TfDType::kString)
      data = EncodeStringTensor(value.strings()).bytes;
    f.size = static_cast<int64_t>(data.size());
    const std::string record = BundleEntry::Create(f, 1, "seed")->Serialize();
    Put(out / "tf_entry", "entry_" + std::to_string(i),
        std::string(1, static_cast<char>(record.size())) + record + data);
  }
  const std::string header = SerializeBundleHeader({});
  Put(out / "tf_entry", "header",
      std::string(1, static_cast<char>(header.size())) + header);

  Put(out / "tf_meta", "meta_graph", MetaGraphSeed());
  Put(out / "tf_meta", "object_graph", SmallGraph().Serialize());
  fs::remove_all(tmp);
  std::printf("seeds written under %s\n", out.c_str());
  return 0;
}
