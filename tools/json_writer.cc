// JsonWriter (see json_writer.h).
#include "meshckpt/tools/json_writer.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "meshckpt/tools/float_format.h"

namespace meshckpt {
namespace {

void AppendJsonChar(std::string* out, unsigned char c) {
  switch (c) {
    case '"':
      absl::StrAppend(out, "\\\"");
      return;
    case '\\':
      absl::StrAppend(out, "\\\\");
      return;
    case '\n':
      absl::StrAppend(out, "\\n");
      return;
    case '\r':
      absl::StrAppend(out, "\\r");
      return;
    case '\t':
      absl::StrAppend(out, "\\t");
      return;
    default:
      if (c < 0x20 || c >= 0x80) {
        absl::StrAppend(out, absl::StrFormat("\\u%04x", c));
      } else {
        out->push_back(static_cast<char>(c));
      }
  }
}

// Length of the valid UTF-8 sequence at s[i], or 0 if invalid.
size_t Utf8SequenceLength(absl::string_view s, size_t i) {
  const unsigned char c = s[i];
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;  // No surrogates.
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    const unsigned char b = s[i + k];
    if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) return 0;
  }
  return n;
}

}  // namespace

std::string JsonQuote(absl::string_view text) {
  std::string out = "\"";
  for (size_t i = 0; i < text.size();) {
    const unsigned char c = text[i];
    if (c < 0x80) {
      AppendJsonChar(&out, c);
      ++i;
      continue;
    }
    const size_t n = Utf8SequenceLength(text, i);
    if (n == 0) {
      AppendJsonChar(&out, c);
      ++i;
    } else {
      out.append(text.data() + i, n);
      i += n;
    }
  }
  out.push_back('"');
  return out;
}

std::string JsonQuoteLatin1(absl::string_view bytes) {
  std::string out = "\"";
  for (unsigned char c : bytes) AppendJsonChar(&out, c);
  out.push_back('"');
  return out;
}

void JsonWriter::BeforeValue() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (has_items_.empty()) return;
  if (has_items_.back()) out_ += ",";
  has_items_.back() = true;
  absl::StrAppend(&out_, "\n", std::string(2 * has_items_.size(), ' '));
}

JsonWriter& JsonWriter::Open(char c) {
  BeforeValue();
  out_.push_back(c);
  has_items_.push_back(false);
  return *this;
}

JsonWriter& JsonWriter::Close(char c) {
  const bool had = !has_items_.empty() && has_items_.back();
  if (!has_items_.empty()) has_items_.pop_back();
  if (had) absl::StrAppend(&out_, "\n", std::string(2 * has_items_.size(), ' '));
  out_.push_back(c);
  return *this;
}

JsonWriter& JsonWriter::Key(absl::string_view key) {
  BeforeValue();
  absl::StrAppend(&out_, JsonQuote(key), ": ");
  after_key_ = true;
  return *this;
}

JsonWriter& JsonWriter::String(absl::string_view value) { return Raw(JsonQuote(value)); }

JsonWriter& JsonWriter::Int(int64_t value) { return Raw(absl::StrCat(value)); }

JsonWriter& JsonWriter::Double(double value) {
  if (!std::isfinite(value)) return Null();
  return Raw(format::PyFloatRepr(value, format::FloatKind::kFloat64));
}

JsonWriter& JsonWriter::Bool(bool value) { return Raw(value ? "true" : "false"); }

JsonWriter& JsonWriter::Null() { return Raw("null"); }

JsonWriter& JsonWriter::Raw(absl::string_view json) {
  BeforeValue();
  out_.append(json.data(), json.size());
  return *this;
}

}  // namespace meshckpt
