// Unit tests of the numpy-like value formatter of `meshckpt inspect`
// (tools/format.h). Expected strings are what numpy 1.24 prints for
// `print(np.array(...))` with default options, except complex values,
// which follow Python's complex repr.
#include "meshckpt/tools/format.h"

#include <cmath>
#include <complex>
#include <cstring>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/tools/json_writer.h"
#include "tests/tools/mini_json.h"

namespace meshckpt {
namespace format {
namespace {

template <typename T>
TensorData Data(DType dtype, std::vector<int64_t> shape, const std::vector<T>& v) {
  TensorData d;
  d.dtype = dtype;
  d.shape = std::move(shape);
  d.bytes.resize(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(d.bytes.data(), v.data(), d.bytes.size());
  return d;
}

TensorData Strings(std::vector<int64_t> shape, std::vector<std::string> v) {
  TensorData d;
  d.dtype = DType::kString;
  d.shape = std::move(shape);
  d.strings = std::move(v);
  return d;
}

template <typename T>
std::vector<T> Range(int64_t n, double scale = 1) {
  std::vector<T> v;
  for (int64_t i = 0; i < n; ++i) v.push_back(static_cast<T>(i * scale));
  return v;
}

std::string Fmt(const TensorData& d, FormatOptions o = {}) {
  absl::StatusOr<std::string> s = FormatTensor(d, d.shape, o);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : "";
}

TEST(FormatTest, Integers) {
  EXPECT_EQ(Fmt(Data<int32_t>(DType::kInt32, {2, 3}, Range<int32_t>(6))),
            "[[0 1 2]\n [3 4 5]]");
  EXPECT_EQ(Fmt(Data<int64_t>(DType::kInt64, {3}, {-5, 10, 200})), "[ -5  10 200]");
  EXPECT_EQ(Fmt(Data<uint64_t>(DType::kUint64, {2}, {0, UINT64_MAX})),
            "[                   0 18446744073709551615]");
  EXPECT_EQ(Fmt(Data<int8_t>(DType::kInt8, {2, 2, 2}, Range<int8_t>(8))),
            "[[[0 1]\n  [2 3]]\n\n [[4 5]\n  [6 7]]]");
}

TEST(FormatTest, SummarisedVector) {
  EXPECT_EQ(Fmt(Data<int32_t>(DType::kInt32, {2000}, Range<int32_t>(2000))),
            "[   0    1    2 ... 1997 1998 1999]");
  // 1000 elements is not above the threshold.
  const std::string full =
      Fmt(Data<int32_t>(DType::kInt32, {1000}, Range<int32_t>(1000)));
  EXPECT_THAT(full, ::testing::Not(::testing::HasSubstr("...")));
  EXPECT_THAT(full, ::testing::HasSubstr(" 500 "));
}

TEST(FormatTest, SummarisedMatrix) {
  EXPECT_EQ(Fmt(Data<int32_t>(DType::kInt32, {110, 10}, Range<int32_t>(1100))),
            "[[   0    1    2 ...    7    8    9]\n"
            " [  10   11   12 ...   17   18   19]\n"
            " [  20   21   22 ...   27   28   29]\n"
            " ...\n"
            " [1070 1071 1072 ... 1077 1078 1079]\n"
            " [1080 1081 1082 ... 1087 1088 1089]\n"
            " [1090 1091 1092 ... 1097 1098 1099]]");
}

TEST(FormatTest, SummarisedOnlyLongDimensions) {
  // 2 x 600: the short dimension is shown whole.
  EXPECT_EQ(Fmt(Data<int32_t>(DType::kInt32, {2, 600}, Range<int32_t>(1200))),
            "[[   0    1    2 ...  597  598  599]\n"
            " [ 600  601  602 ... 1197 1198 1199]]");
}

TEST(FormatTest, Summarised3D) {
  EXPECT_EQ(Fmt(Data<int32_t>(DType::kInt32, {10, 10, 11}, Range<int32_t>(1100))),
            "[[[   0    1    2 ...    8    9   10]\n"
            "  [  11   12   13 ...   19   20   21]\n"
            "  [  22   23   24 ...   30   31   32]\n"
            "  ...\n"
            "  [  77   78   79 ...   85   86   87]\n"
            "  [  88   89   90 ...   96   97   98]\n"
            "  [  99  100  101 ...  107  108  109]]\n"
            "\n"
            " [[ 110  111  112 ...  118  119  120]\n"
            "  [ 121  122  123 ...  129  130  131]\n"
            "  [ 132  133  134 ...  140  141  142]\n"
            "  ...\n"
            "  [ 187  188  189 ...  195  196  197]\n"
            "  [ 198  199  200 ...  206  207  208]\n"
            "  [ 209  210  211 ...  217  218  219]]\n"
            "\n"
            " [[ 220  221  222 ...  228  229  230]\n"
            "  [ 231  232  233 ...  239  240  241]\n"
            "  [ 242  243  244 ...  250  251  252]\n"
            "  ...\n"
            "  [ 297  298  299 ...  305  306  307]\n"
            "  [ 308  309  310 ...  316  317  318]\n"
            "  [ 319  320  321 ...  327  328  329]]\n"
            "\n"
            " ...\n"
            "\n"
            " [[ 770  771  772 ...  778  779  780]\n"
            "  [ 781  782  783 ...  789  790  791]\n"
            "  [ 792  793  794 ...  800  801  802]\n"
            "  ...\n"
            "  [ 847  848  849 ...  855  856  857]\n"
            "  [ 858  859  860 ...  866  867  868]\n"
            "  [ 869  870  871 ...  877  878  879]]\n"
            "\n"
            " [[ 880  881  882 ...  888  889  890]\n"
            "  [ 891  892  893 ...  899  900  901]\n"
            "  [ 902  903  904 ...  910  911  912]\n"
            "  ...\n"
            "  [ 957  958  959 ...  965  966  967]\n"
            "  [ 968  969  970 ...  976  977  978]\n"
            "  [ 979  980  981 ...  987  988  989]]\n"
            "\n"
            " [[ 990  991  992 ...  998  999 1000]\n"
            "  [1001 1002 1003 ... 1009 1010 1011]\n"
            "  [1012 1013 1014 ... 1020 1021 1022]\n"
            "  ...\n"
            "  [1067 1068 1069 ... 1075 1076 1077]\n"
            "  [1078 1079 1080 ... 1086 1087 1088]\n"
            "  [1089 1090 1091 ... 1097 1098 1099]]]");
}

TEST(FormatTest, DisplayedPartGivesSameText) {
  TensorData whole = Data<float>(DType::kFloat32, {40, 50}, Range<float>(2000, 0.5));
  FormatOptions o;
  EXPECT_EQ(DisplayedShape(whole.shape, o), (std::vector<int64_t>{6, 6}));
  TensorData part = GatherDisplayed(whole, o);
  EXPECT_EQ(part.shape, (std::vector<int64_t>{6, 6}));
  absl::StatusOr<std::string> a = FormatTensor(whole, whole.shape, o);
  absl::StatusOr<std::string> b = FormatTensor(part, whole.shape, o);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_THAT(*a, ::testing::HasSubstr("..."));
  // Neither the whole nor the displayed shape: rejected.
  TensorData wrong = Data<float>(DType::kFloat32, {5, 6}, Range<float>(30));
  EXPECT_FALSE(FormatTensor(wrong, whole.shape, o).ok());
}

TEST(FormatTest, Ranges) {
  FormatOptions o;
  auto r = DisplayedRanges(std::vector<int64_t>{2000, 4}, o);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0], (std::vector<std::pair<int64_t, int64_t>>{{0, 3}, {1997, 2000}}));
  EXPECT_EQ(r[1], (std::vector<std::pair<int64_t, int64_t>>{{0, 4}}));
  o.threshold = -1;
  EXPECT_FALSE(IsSummarised(std::vector<int64_t>{1 << 20}, o));
  o.threshold = 10;
  o.edgeitems = 1;
  EXPECT_EQ(Fmt(Data<int32_t>(DType::kInt32, {20}, Range<int32_t>(20)), o),
            "[ 0 ... 19]");
}

TEST(FormatTest, Floats) {
  EXPECT_EQ(Fmt(Data<float>(DType::kFloat32, {3}, {1.0f, 2.5f, -3.25f})),
            "[ 1.    2.5  -3.25]");
  EXPECT_EQ(Fmt(Data<float>(DType::kFloat32, {2}, {0.1f, 0.2f})), "[0.1 0.2]");
  EXPECT_EQ(Fmt(Data<double>(DType::kFloat64, {3}, {0, 1, 2})), "[0. 1. 2.]");
  EXPECT_EQ(Fmt(Data<double>(DType::kFloat64, {1}, {1.0 / 3})), "[0.33333333]");
  EXPECT_EQ(Fmt(Data<float>(DType::kFloat32, {2, 2}, {1.5f, -2.0f, 100.25f, 0.0f})),
            "[[  1.5   -2.  ]\n [100.25   0.  ]]");
}

TEST(FormatTest, ScientificFloats) {
  EXPECT_EQ(Fmt(Data<double>(DType::kFloat64, {2}, {1e-5, 1.0})), "[1.e-05 1.e+00]");
  EXPECT_EQ(Fmt(Data<double>(DType::kFloat64, {2}, {1.234e-5, 2e10})),
            "[1.234e-05 2.000e+10]");
  EXPECT_EQ(Fmt(Data<double>(DType::kFloat64, {2}, {-1e100, 1.0})),
            "[-1.e+100  1.e+000]");
  EXPECT_EQ(Fmt(Data<float>(DType::kFloat32, {2}, {1e8f, 1.0f})), "[1.e+08 1.e+00]");
}

TEST(FormatTest, NonFinite) {
  const double nan = std::nan("");
  EXPECT_EQ(Fmt(Data<double>(DType::kFloat64, {3}, {nan, 1.0, -INFINITY})),
            "[ nan   1. -inf]");
  EXPECT_EQ(Fmt(Data<double>(DType::kFloat64, {2}, {nan, INFINITY})), "[nan inf]");
}

TEST(FormatTest, HalfAndBFloat16ShowTheirFloatValues) {
  EXPECT_EQ(HalfToDouble(0x3C00), 1.0);
  EXPECT_EQ(HalfToDouble(0xC000), -2.0);
  EXPECT_EQ(HalfToDouble(0x0001), std::ldexp(1.0, -24));
  EXPECT_TRUE(std::isinf(HalfToDouble(0x7C00)));
  EXPECT_EQ(BFloat16ToDouble(0x3F80), 1.0);
  EXPECT_EQ(BFloat16ToDouble(0xC040), -3.0);
  // 0.1 in float16 is 0.0999755859375 and in bfloat16 0.10009765625; both
  // print as the shortest decimal that rounds back: 0.1.
  EXPECT_EQ(Fmt(Data<uint16_t>(DType::kFloat16, {3}, {0x2E66, 0x3C00, 0xBE00})),
            "[ 0.1  1.  -1.5]");
  EXPECT_EQ(Fmt(Data<uint16_t>(DType::kBfloat16, {2}, {0x3DCD, 0x4049})), "[0.1  3.14]");
  EXPECT_EQ(PyFloatRepr(HalfToDouble(0x3555), FloatKind::kFloat16), "0.3333");
  EXPECT_EQ(PyFloatRepr(BFloat16ToDouble(0x3EAB), FloatKind::kBFloat16), "0.334");
  EXPECT_EQ(PyFloatRepr(HalfToDouble(0x7BFF), FloatKind::kFloat16), "65500.0");
}

TEST(FormatTest, BoolsComplexAndStrings) {
  EXPECT_EQ(Fmt(Data<uint8_t>(DType::kBool, {3}, {1, 0, 1})), "[ True False  True]");
  EXPECT_EQ(
      Fmt(Data<std::complex<float>>(DType::kComplex64, {2}, {{1, 2}, {1.5f, -0.25f}})),
      "[     (1+2j) (1.5-0.25j)]");
  EXPECT_EQ(Fmt(Strings({4}, {"a", "", "it's", std::string("\0\n\xff", 3)})),
            "[b'a' b'' b\"it's\" b'\\x00\\n\\xff']");
}

TEST(FormatTest, ScalarsAndEmpty) {
  EXPECT_EQ(Fmt(Data<float>(DType::kFloat32, {}, {1.5f})), "1.5");
  EXPECT_EQ(Fmt(Data<double>(DType::kFloat64, {}, {1.0})), "1.0");
  EXPECT_EQ(Fmt(Data<double>(DType::kFloat64, {}, {1e20})), "1e+20");
  EXPECT_EQ(Fmt(Data<int64_t>(DType::kInt64, {}, {-7})), "-7");
  EXPECT_EQ(Fmt(Data<uint8_t>(DType::kBool, {}, {1})), "True");
  EXPECT_EQ(Fmt(Strings({}, {"x'y\"z"})), "b'x\\'y\"z'");
  EXPECT_EQ(Fmt(Data<std::complex<double>>(DType::kComplex128, {}, {{0, -1}})), "(0-1j)");
  EXPECT_EQ(Fmt(Data<float>(DType::kFloat32, {0, 4}, {})), "[]");
  EXPECT_EQ(Fmt(Strings({3, 0}, {})), "[]");
}

TEST(FormatTest, WrapsLongRows) {
  // numpy: print(np.arange(30) * 1000)
  EXPECT_EQ(Fmt(Data<int64_t>(DType::kInt64, {30}, Range<int64_t>(30, 1000))),
            "[    0  1000  2000  3000  4000  5000  6000  7000  8000  9000 10000 11000\n"
            " 12000 13000 14000 15000 16000 17000 18000 19000 20000 21000 22000 23000\n"
            " 24000 25000 26000 27000 28000 29000]");
}

TEST(FormatTest, PyReprs) {
  EXPECT_EQ(PyFloatRepr(0.1, FloatKind::kFloat64), "0.1");
  EXPECT_EQ(PyFloatRepr(0.1f, FloatKind::kFloat32), "0.1");
  EXPECT_EQ(PyFloatRepr(0.1f, FloatKind::kFloat64), "0.10000000149011612");
  EXPECT_EQ(PyFloatRepr(1e-5, FloatKind::kFloat64), "1e-05");
  EXPECT_EQ(PyFloatRepr(1.5e16, FloatKind::kFloat64), "1.5e+16");
  EXPECT_EQ(PyFloatRepr(-0.0, FloatKind::kFloat64), "-0.0");
  EXPECT_EQ(PyFloatRepr(123456.0, FloatKind::kFloat64), "123456.0");
  EXPECT_EQ(PyBytesRepr("a\\b\tc\r"), "b'a\\\\b\\tc\\r'");
  EXPECT_EQ(PyBytesRepr("'\""), "b'\\'\"'");
}

TEST(FormatTest, Json) {
  EXPECT_EQ(JsonValues(Data<int32_t>(DType::kInt32, {2, 2}, Range<int32_t>(4))),
            "[[0, 1], [2, 3]]");
  EXPECT_EQ(
      JsonValues(Data<float>(DType::kFloat32, {3}, {0.1f, std::nanf(""), -INFINITY})),
      "[0.1, \"NaN\", \"-Infinity\"]");
  EXPECT_EQ(JsonValues(Data<double>(DType::kFloat64, {}, {2.0})), "2.0");
  EXPECT_EQ(JsonValues(Data<uint8_t>(DType::kBool, {2}, {0, 1})), "[false, true]");
  EXPECT_EQ(JsonValues(Data<std::complex<double>>(DType::kComplex128, {1}, {{1, -2}})),
            "[[1.0, -2.0]]");
  EXPECT_EQ(JsonValues(Strings({2}, {"a\"", std::string("\0\xe9", 2)})),
            "[\"a\\\"\", \"\\u0000\\u00e9\"]");
  EXPECT_EQ(JsonValues(Data<int32_t>(DType::kInt32, {2, 0}, {})), "[[], []]");
  EXPECT_EQ(JsonQuote("caf\xc3\xa9 \xff"), "\"caf\xc3\xa9 \\u00ff\"");
  EXPECT_EQ(JsonQuote("a\nb"), "\"a\\nb\"");
}

TEST(JsonWriterTest, ProducesValidJson) {
  JsonWriter w;
  w.BeginObject().Key("name").String("caf\xc3\xa9 \"q\"").Key("step").Int(-7);
  w.Key("x").Double(0.5).Key("bad").Double(std::nan("")).Key("ok").Bool(true);
  w.Key("none").Null().Key("empty").BeginArray().EndArray();
  w.Key("list").BeginArray().Int(1).BeginObject().EndObject().Raw("[1, 2]").EndArray();
  w.EndObject();
  std::string error;
  std::optional<Json> doc = ParseJson(w.str(), &error);
  ASSERT_TRUE(doc.has_value()) << error << "\n" << w.str();
  EXPECT_EQ((*doc)["name"].string, "caf\xc3\xa9 \"q\"");
  EXPECT_EQ((*doc)["step"].number, -7);
  EXPECT_EQ((*doc)["x"].number, 0.5);
  EXPECT_EQ((*doc)["bad"].type, Json::kNull);
  EXPECT_TRUE((*doc)["ok"].boolean);
  EXPECT_EQ((*doc)["none"].type, Json::kNull);
  EXPECT_TRUE((*doc)["empty"].array.empty());
  EXPECT_EQ((*doc)["list"][2][1].number, 2);
  EXPECT_EQ((*doc)["list"][1].type, Json::kObject);
  EXPECT_THAT(w.str(), ::testing::HasSubstr("\n  \"step\": -7,\n"));
  // Latin-1 strings decode back to the code points of their bytes.
  doc = ParseJson(JsonValues(Strings({1}, {std::string("\xff\x01", 2)})));
  ASSERT_TRUE(doc.has_value());
  EXPECT_EQ((*doc)[0].string, "\xc3\xbf\x01");
}

}  // namespace
}  // namespace format
}  // namespace meshckpt
