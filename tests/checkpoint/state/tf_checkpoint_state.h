// TensorFlow's CheckpointState parser for tests: proves that a state file
// meshckpt writes is one TensorFlow reads.
#ifndef MESHCKPT_TESTS_CHECKPOINT_STATE_TF_CHECKPOINT_STATE_H_
#define MESHCKPT_TESTS_CHECKPOINT_STATE_TF_CHECKPOINT_STATE_H_

#include <memory>
#include <optional>
#include <string>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/text_format.h"
#include "meshckpt/checkpoint/state/checkpoint_state.h"

namespace meshckpt {

// TensorFlow's CheckpointState (tensorflow/python/training/
// checkpoint_state.proto), built here field by field rather than taken from
// our own proto, parsed as TF parses the file: text format, unknown fields
// are errors.
class TfCheckpointStateParser {
 public:
  TfCheckpointStateParser() {
    google::protobuf::FileDescriptorProto file;
    file.set_name("tensorflow/python/training/checkpoint_state.proto");
    file.set_package("tensorflow");
    file.set_syntax("proto3");
    google::protobuf::DescriptorProto* m = file.add_message_type();
    m->set_name("CheckpointState");
    using F = google::protobuf::FieldDescriptorProto;
    auto add = [&](const char* name, int number, F::Type type, F::Label label) {
      F* f = m->add_field();
      f->set_name(name);
      f->set_number(number);
      f->set_type(type);
      f->set_label(label);
    };
    add("model_checkpoint_path", 1, F::TYPE_STRING, F::LABEL_OPTIONAL);
    add("all_model_checkpoint_paths", 2, F::TYPE_STRING, F::LABEL_REPEATED);
    add("all_model_checkpoint_timestamps", 3, F::TYPE_DOUBLE, F::LABEL_REPEATED);
    add("last_preserved_timestamp", 4, F::TYPE_DOUBLE, F::LABEL_OPTIONAL);
    file_ = pool_.BuildFile(file);
  }

  // The parsed message, or nullptr when TF would reject the text.
  std::unique_ptr<google::protobuf::Message> Parse(const std::string& text) {
    const google::protobuf::Descriptor* d =
        file_->FindMessageTypeByName("CheckpointState");
    std::unique_ptr<google::protobuf::Message> msg(factory_.GetPrototype(d)->New());
    if (!google::protobuf::TextFormat::ParseFromString(text, msg.get())) return nullptr;
    return msg;
  }

  // What TF read, as our struct; nullopt when TF would reject the text.
  std::optional<CheckpointState> ParseToState(const std::string& text) {
    std::unique_ptr<google::protobuf::Message> msg = Parse(text);
    if (msg == nullptr) return std::nullopt;
    const google::protobuf::Reflection* r = msg->GetReflection();
    const google::protobuf::Descriptor* d = msg->GetDescriptor();
    CheckpointState s;
    s.model_checkpoint_path =
        r->GetString(*msg, d->FindFieldByName("model_checkpoint_path"));
    const auto* paths = d->FindFieldByName("all_model_checkpoint_paths");
    for (int i = 0; i < r->FieldSize(*msg, paths); ++i) {
      s.all_model_checkpoint_paths.push_back(r->GetRepeatedString(*msg, paths, i));
    }
    const auto* stamps = d->FindFieldByName("all_model_checkpoint_timestamps");
    for (int i = 0; i < r->FieldSize(*msg, stamps); ++i) {
      s.all_model_checkpoint_timestamps.push_back(r->GetRepeatedDouble(*msg, stamps, i));
    }
    s.last_preserved_timestamp =
        r->GetDouble(*msg, d->FindFieldByName("last_preserved_timestamp"));
    return s;
  }

 private:
  google::protobuf::DescriptorPool pool_;
  const google::protobuf::FileDescriptor* file_ = nullptr;
  google::protobuf::DynamicMessageFactory factory_;
};

}  // namespace meshckpt

#endif  // MESHCKPT_TESTS_CHECKPOINT_STATE_TF_CHECKPOINT_STATE_H_
