// Unit tests of the `meshckpt` flag parsing and display helpers
// (tools/cli.h).
#include "meshckpt/tools/cli.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace meshckpt {
namespace cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const std::vector<FlagSpec>& Specs() {
  static const auto* specs = new std::vector<FlagSpec>{
      {"json", FlagKind::kBool, "", "json"},
      {"atol", FlagKind::kValue, "X", "tolerance"},
      {"layout", FlagKind::kRepeated, "KEY=SPEC", "layout"},
  };
  return *specs;
}

absl::StatusOr<ParsedArgs> Parse(std::vector<std::string> args) {
  return ParseArgs(args, Specs());
}

TEST(ParseArgsTest, MixesFlagsAndPositionals) {
  absl::StatusOr<ParsedArgs> a =
      Parse({"a", "--json", "--atol", "0.5", "b", "--layout=k=x,y", "--layout", "j="});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_THAT(a->positional, ElementsAre("a", "b"));
  EXPECT_TRUE(a->Bool("json"));
  EXPECT_EQ(a->Value("atol"), "0.5");
  EXPECT_THAT(a->Values("layout"), ElementsAre("k=x,y", "j="));
  EXPECT_FALSE(a->help);
}

TEST(ParseArgsTest, LastValueWinsAndDefaults) {
  absl::StatusOr<ParsedArgs> a = Parse({"--atol=1", "--atol=2"});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->Value("atol"), "2");
  EXPECT_EQ(a->Value("missing", "fallback"), "fallback");
  EXPECT_FALSE(a->Bool("json"));
  EXPECT_FALSE(a->Has("layout"));
  EXPECT_TRUE(a->Values("layout").empty());
}

TEST(ParseArgsTest, Help) {
  EXPECT_TRUE(Parse({"-h"})->help);
  EXPECT_TRUE(Parse({"x", "--help"})->help);
}

TEST(ParseArgsTest, DoubleDashEndsFlags) {
  absl::StatusOr<ParsedArgs> a = Parse({"--", "--json", "-"});
  ASSERT_TRUE(a.ok());
  EXPECT_THAT(a->positional, ElementsAre("--json", "-"));
  EXPECT_FALSE(a->Bool("json"));
}

TEST(ParseArgsTest, BoolValues) {
  EXPECT_TRUE(Parse({"--json=true"})->Bool("json"));
  EXPECT_FALSE(Parse({"--json=false"})->Bool("json"));
  absl::StatusOr<ParsedArgs> bad = Parse({"--json=yes please"});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("--json"));
}

TEST(ParseArgsTest, Errors) {
  absl::StatusOr<ParsedArgs> unknown = Parse({"--nope"});
  ASSERT_FALSE(unknown.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(unknown.status()));
  EXPECT_THAT(std::string(unknown.status().message()), HasSubstr("--nope"));
  EXPECT_FALSE(Parse({"-x"}).ok());
  absl::StatusOr<ParsedArgs> missing = Parse({"--atol"});
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("needs a value"));
}

TEST(FlagsHelpTest, ListsEveryFlag) {
  const std::string help = FlagsHelp(Specs());
  EXPECT_THAT(help, HasSubstr("--json"));
  EXPECT_THAT(help, HasSubstr("--atol X"));
  EXPECT_THAT(help, HasSubstr("--layout KEY=SPEC"));
  EXPECT_THAT(help, HasSubstr("-h, --help"));
}

TEST(ParseMeshDimsTest, Valid) {
  absl::StatusOr<std::vector<MeshDimension>> d = ParseMeshDims("batch=2,model=4");
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(d->size(), 2u);
  EXPECT_EQ((*d)[0], (MeshDimension{"batch", 2}));
  EXPECT_EQ((*d)[1], (MeshDimension{"model", 4}));
}

TEST(ParseMeshDimsTest, Invalid) {
  for (const char* bad : {"", "x", "x=", "=2", "x=0", "x=-1", "x=2,", "x=2,x=3", "x=a"}) {
    EXPECT_FALSE(ParseMeshDims(bad).ok()) << bad;
  }
}

TEST(ParseLayoutFlagTest, KeyAndSpecs) {
  auto l = ParseLayoutFlag("model/dense/kernel=unsharded,y");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->first, "model/dense/kernel");
  EXPECT_THAT(l->second, ElementsAre("unsharded", "y"));
  auto scalar = ParseLayoutFlag("step=");
  ASSERT_TRUE(scalar.ok());
  EXPECT_EQ(scalar->first, "step");
  EXPECT_TRUE(scalar->second.empty());
  auto eq_in_key = ParseLayoutFlag("a=b=x");
  ASSERT_TRUE(eq_in_key.ok());
  EXPECT_EQ(eq_in_key->first, "a=b");
  EXPECT_FALSE(ParseLayoutFlag("no_equals").ok());
  EXPECT_FALSE(ParseLayoutFlag("=x").ok());
  EXPECT_FALSE(ParseLayoutFlag("k=x,,y").ok());
}

TEST(NumberFlagsTest, Parse) {
  EXPECT_EQ(*ParseNonNegativeDouble("atol", "0.25"), 0.25);
  EXPECT_FALSE(ParseNonNegativeDouble("atol", "-1").ok());
  EXPECT_FALSE(ParseNonNegativeDouble("atol", "nan").ok());
  EXPECT_FALSE(ParseNonNegativeDouble("atol", "inf").ok());
  EXPECT_FALSE(ParseNonNegativeDouble("atol", "x").ok());
  EXPECT_EQ(*ParseInt64("threshold", "-1"), -1);
  EXPECT_FALSE(ParseInt64("threshold", "1.5").ok());
}

TEST(ExitCodeTest, FromStatus) {
  EXPECT_EQ(ExitCodeFor(absl::OkStatus()), 0);
  EXPECT_EQ(ExitCodeFor(absl::NotFoundError("x")), 3);
  EXPECT_EQ(ExitCodeFor(absl::DataLossError("x")), 4);
  EXPECT_EQ(ExitCodeFor(absl::FailedPreconditionError("x")), 5);
  EXPECT_EQ(ExitCodeFor(absl::InvalidArgumentError("x")), 5);
  EXPECT_THAT(std::string(kExitCodesHelp), HasSubstr("4  data loss"));
}

TEST(DisplayTest, Helpers) {
  EXPECT_EQ(HumanBytes(0), "0 B");
  EXPECT_EQ(HumanBytes(1023), "1023 B");
  EXPECT_EQ(HumanBytes(1536), "1.5 KiB");
  EXPECT_EQ(HumanBytes(int64_t{3} << 30), "3.0 GiB");
  EXPECT_EQ(IsoTimeUtc(0), "-");
  EXPECT_EQ(IsoTimeUtc(1700000000.75), "2023-11-14T22:13:20Z");
  EXPECT_EQ(ShapeText({}), "[]");
  EXPECT_EQ(ShapeText({2, 3}), "[2,3]");
}

TEST(ResolvePrefixTest, StripsSuffixes) {
  EXPECT_EQ(ResolvePrefix("/ckpt/step-1.index"), "/ckpt/step-1");
  EXPECT_EQ(ResolvePrefix("/ckpt/step-1.h5"), "/ckpt/step-1");
  EXPECT_EQ(ResolvePrefix("/does/not/exist"), "/does/not/exist");
}

}  // namespace
}  // namespace cli
}  // namespace meshckpt
