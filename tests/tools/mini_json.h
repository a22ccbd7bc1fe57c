// A small strict JSON parser for tests of `meshckpt ... --json` output
// (RFC 8259 syntax; numbers as double; \uXXXX decoded to UTF-8). Test-only:
// no limits on depth, errors as a message. Thread-compatible.
//
//   std::string error;
//   std::optional<Json> doc = ParseJson(text, &error);
//   EXPECT_EQ((*doc)["step"].number, 42);
#ifndef MESHCKPT_TESTS_TOOLS_MINI_JSON_H_
#define MESHCKPT_TESTS_TOOLS_MINI_JSON_H_

#include <cctype>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace meshckpt {

struct Json {
  enum Type { kNull, kBool, kNumber, kString, kArray, kObject } type = kNull;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<Json> array;
  std::map<std::string, Json> object;

  bool Has(const std::string& key) const { return object.count(key) > 0; }
  // Missing keys and out-of-range indexes give a null.
  const Json& operator[](const std::string& key) const {
    static const Json kNullJson;
    auto it = object.find(key);
    return it == object.end() ? kNullJson : it->second;
  }
  const Json& operator[](size_t i) const {
    static const Json kNullJson;
    return i < array.size() ? array[i] : kNullJson;
  }
};

namespace mini_json_internal {

class Parser {
 public:
  explicit Parser(const std::string& text) : s_(text) {}

  std::optional<Json> ParseDocument(std::string* error) {
    Json v;
    bool ok = Value(&v);
    Space();
    if (ok && i_ != s_.size()) ok = Fail("trailing characters");
    if (!ok) {
      if (error) *error = error_ + " at offset " + std::to_string(i_);
      return std::nullopt;
    }
    return v;
  }

 private:
  bool Fail(const std::string& msg) {
    if (error_.empty()) error_ = msg;
    return false;
  }
  void Space() {
    while (i_ < s_.size() &&
           (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t' || s_[i_] == '\r'))
      ++i_;
  }
  bool Literal(const char* word) {
    const std::string w = word;
    if (s_.compare(i_, w.size(), w) != 0) return Fail("bad literal");
    i_ += w.size();
    return true;
  }
  static void AppendUtf8(std::string* out, unsigned cp) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }
  bool Hex4(unsigned* cp) {
    if (i_ + 4 > s_.size()) return Fail("short \\u escape");
    *cp = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s_[i_++];
      *cp <<= 4;
      if (c >= '0' && c <= '9')
        *cp |= c - '0';
      else if (c >= 'a' && c <= 'f')
        *cp |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F')
        *cp |= c - 'A' + 10;
      else
        return Fail("bad \\u escape");
    }
    return true;
  }
  bool String(std::string* out) {
    if (s_[i_] != '"') return Fail("expected string");
    ++i_;
    while (true) {
      if (i_ >= s_.size()) return Fail("unterminated string");
      const unsigned char c = s_[i_++];
      if (c == '"') return true;
      if (c < 0x20) return Fail("control character in string");
      if (c != '\\') {
        out->push_back(static_cast<char>(c));
        continue;
      }
      if (i_ >= s_.size()) return Fail("bad escape");
      const char e = s_[i_++];
      switch (e) {
        case '"':
          out->push_back('"');
          break;
        case '\\':
          out->push_back('\\');
          break;
        case '/':
          out->push_back('/');
          break;
        case 'b':
          out->push_back('\b');
          break;
        case 'f':
          out->push_back('\f');
          break;
        case 'n':
          out->push_back('\n');
          break;
        case 'r':
          out->push_back('\r');
          break;
        case 't':
          out->push_back('\t');
          break;
        case 'u': {
          unsigned cp;
          if (!Hex4(&cp)) return false;
          if (cp >= 0xD800 && cp < 0xDC00 && s_.compare(i_, 2, "\\u") == 0) {
            i_ += 2;
            unsigned lo;
            if (!Hex4(&lo)) return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          AppendUtf8(out, cp);
          break;
        }
        default:
          return Fail("bad escape");
      }
    }
  }
  bool Number(double* out) {
    const size_t start = i_;
    if (i_ < s_.size() && s_[i_] == '-') ++i_;
    if (i_ >= s_.size() || !isdigit(static_cast<unsigned char>(s_[i_])))
      return Fail("bad number");
    if (s_[i_] == '0') {
      ++i_;
    } else {
      while (i_ < s_.size() && isdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
    }
    if (i_ < s_.size() && s_[i_] == '.') {
      ++i_;
      if (i_ >= s_.size() || !isdigit(static_cast<unsigned char>(s_[i_])))
        return Fail("bad fraction");
      while (i_ < s_.size() && isdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      if (i_ >= s_.size() || !isdigit(static_cast<unsigned char>(s_[i_])))
        return Fail("bad exponent");
      while (i_ < s_.size() && isdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
    }
    *out = std::strtod(s_.substr(start, i_ - start).c_str(), nullptr);
    return true;
  }
  bool Value(Json* v) {
    Space();
    if (i_ >= s_.size()) return Fail("unexpected end");
    const char c = s_[i_];
    if (c == '{') {
      v->type = Json::kObject;
      ++i_;
      Space();
      if (i_ < s_.size() && s_[i_] == '}') return ++i_, true;
      while (true) {
        Space();
        std::string key;
        if (i_ >= s_.size() || !String(&key)) return Fail("expected key");
        Space();
        if (i_ >= s_.size() || s_[i_] != ':') return Fail("expected ':'");
        ++i_;
        Json item;
        if (!Value(&item)) return false;
        if (v->object.count(key)) return Fail("duplicate key " + key);
        v->object.emplace(std::move(key), std::move(item));
        Space();
        if (i_ < s_.size() && s_[i_] == ',') {
          ++i_;
          continue;
        }
        if (i_ < s_.size() && s_[i_] == '}') return ++i_, true;
        return Fail("expected ',' or '}'");
      }
    }
    if (c == '[') {
      v->type = Json::kArray;
      ++i_;
      Space();
      if (i_ < s_.size() && s_[i_] == ']') return ++i_, true;
      while (true) {
        Json item;
        if (!Value(&item)) return false;
        v->array.push_back(std::move(item));
        Space();
        if (i_ < s_.size() && s_[i_] == ',') {
          ++i_;
          continue;
        }
        if (i_ < s_.size() && s_[i_] == ']') return ++i_, true;
        return Fail("expected ',' or ']'");
      }
    }
    if (c == '"') {
      v->type = Json::kString;
      return String(&v->string);
    }
    if (c == 't') {
      v->type = Json::kBool;
      v->boolean = true;
      return Literal("true");
    }
    if (c == 'f') {
      v->type = Json::kBool;
      return Literal("false");
    }
    if (c == 'n') return Literal("null");
    v->type = Json::kNumber;
    return Number(&v->number);
  }

  const std::string& s_;
  size_t i_ = 0;
  std::string error_;
};

}  // namespace mini_json_internal

inline std::optional<Json> ParseJson(const std::string& text,
                                     std::string* error = nullptr) {
  return mini_json_internal::Parser(text).ParseDocument(error);
}

}  // namespace meshckpt

#endif  // MESHCKPT_TESTS_TOOLS_MINI_JSON_H_
