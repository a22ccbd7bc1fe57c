// Tests of the lexical path helpers (base/path.h): every function on the
// same awkward inputs, with the exact expected output for each.
#include "meshckpt/base/path.h"

#include <stdlib.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace meshckpt {
namespace {

struct Case {
  std::string in;
  std::string want;
};

// The inputs every function is tried on.
const std::vector<std::string> kInputs = {"",        "/",    "a",    "/a", "a/",
                                          "/ckpt-1", "../x", "a//b", "./a"};

void ExpectEach(const std::vector<Case>& cases, std::string (*f)(absl::string_view),
                const char* name) {
  ASSERT_EQ(cases.size(), kInputs.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    ASSERT_EQ(cases[i].in, kInputs[i]);
    EXPECT_EQ(f(cases[i].in), cases[i].want) << name << "(\"" << cases[i].in << "\")";
  }
}

TEST(PathTest, Dirname) {
  ExpectEach({{"", "."},
              {"/", "/"},
              {"a", "."},
              {"/a", "/"},
              {"a/", "a"},
              {"/ckpt-1", "/"},  // At the root: "/", never "" (the cwd).
              {"../x", ".."},
              {"a//b", "a"},
              {"./a", "."}},
             &Dirname, "Dirname");
  EXPECT_EQ(Dirname("//"), "/");
  EXPECT_EQ(Dirname("//a"), "/");
  EXPECT_EQ(Dirname("/tmp/x/ckpt"), "/tmp/x");
  EXPECT_EQ(Dirname("a//"), "a");
}

TEST(PathTest, Basename) {
  ExpectEach({{"", ""},
              {"/", ""},
              {"a", "a"},
              {"/a", "a"},
              {"a/", ""},
              {"/ckpt-1", "ckpt-1"},
              {"../x", "x"},
              {"a//b", "b"},
              {"./a", "a"}},
             &Basename, "Basename");
}

TEST(PathTest, NormalizePath) {
  ExpectEach({{"", ""},
              {"/", "/"},
              {"a", "a"},
              {"/a", "/a"},
              {"a/", "a"},
              {"/ckpt-1", "/ckpt-1"},
              {"../x", "../x"},
              {"a//b", "a/b"},
              {"./a", "a"}},
             &NormalizePath, "NormalizePath");
  EXPECT_EQ(NormalizePath("."), ".");
  EXPECT_EQ(NormalizePath("./"), ".");
  EXPECT_EQ(NormalizePath("//"), "/");
  EXPECT_EQ(NormalizePath("/./"), "/");
  EXPECT_EQ(NormalizePath("a/./b/"), "a/b");
  EXPECT_EQ(NormalizePath("/../a"), "/../a");  // ".." is kept, even at the root.
  EXPECT_EQ(NormalizePath("a/../b"), "a/../b");
}

TEST(PathTest, JoinPath) {
  const std::vector<Case> cases = {
      {"", "n"},          {"/", "/n"},        {"a", "a/n"},
      {"/a", "/a/n"},     {"a/", "a/n"},      {"/ckpt-1", "/ckpt-1/n"},
      {"../x", "../x/n"}, {"a//b", "a//b/n"}, {"./a", "./a/n"}};
  ASSERT_EQ(cases.size(), kInputs.size());
  for (const Case& c : cases) EXPECT_EQ(JoinPath(c.in, "n"), c.want) << c.in;
  EXPECT_EQ(JoinPath("a", ""), "a/");
}

TEST(PathTest, IsAbsoluteAndDotDot) {
  const std::vector<bool> absolute = {false, true,  false, true, false,
                                      true,  false, false, false};
  const std::vector<bool> dotdot = {false, false, false, false, false,
                                    false, true,  false, false};
  for (size_t i = 0; i < kInputs.size(); ++i) {
    EXPECT_EQ(IsAbsolutePath(kInputs[i]), absolute[i]) << kInputs[i];
    EXPECT_EQ(HasDotDotComponent(kInputs[i]), dotdot[i]) << kInputs[i];
  }
  EXPECT_FALSE(HasDotDotComponent("a..b/..c/d.."));
  EXPECT_TRUE(HasDotDotComponent("a/.."));
  EXPECT_TRUE(HasDotDotComponent(".."));
}

TEST(PathTest, MakeAbsoluteAgainst) {
  const std::vector<Case> cases = {{"", "/w"},          {"/", "/"},
                                   {"a", "/w/a"},       {"/a", "/a"},
                                   {"a/", "/w/a"},      {"/ckpt-1", "/ckpt-1"},
                                   {"../x", "/w/../x"},  // Not "/x": lexical only.
                                   {"a//b", "/w/a/b"},  {"./a", "/w/a"}};
  ASSERT_EQ(cases.size(), kInputs.size());
  for (const Case& c : cases) EXPECT_EQ(MakeAbsoluteAgainst(c.in, "/w"), c.want) << c.in;
  EXPECT_EQ(MakeAbsoluteAgainst("a", "/"), "/a");
  EXPECT_EQ(MakeAbsoluteAgainst("", "/"), "/");
  EXPECT_EQ(MakeAbsoluteAgainst(".", "/w/"), "/w");
}

// Changes the working directory for one test and puts it back.
class InTempDir {
 public:
  InTempDir() {
    char tmpl[] = "/tmp/meshckpt_path_XXXXXX";
    EXPECT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    old_ = CurrentDirectory().value();
    EXPECT_EQ(::chdir(dir_.c_str()), 0);
  }
  ~InTempDir() {
    EXPECT_EQ(::chdir(old_.c_str()), 0);
    ::rmdir(dir_.c_str());
  }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_, old_;
};

TEST(PathTest, MakeAbsoluteUsesTheWorkingDirectory) {
  InTempDir tmp;
  // getcwd reports the directory with symlinks resolved (/tmp may be one).
  const std::string cwd = CurrentDirectory().value();
  const std::vector<Case> cases = {{"", cwd},
                                   {"/", "/"},
                                   {"a", cwd + "/a"},
                                   {"/a", "/a"},
                                   {"a/", cwd + "/a"},
                                   {"/ckpt-1", "/ckpt-1"},
                                   {"../x", cwd + "/../x"},
                                   {"a//b", cwd + "/a/b"},
                                   {"./a", cwd + "/a"}};
  ASSERT_EQ(cases.size(), kInputs.size());
  for (const Case& c : cases) {
    absl::StatusOr<std::string> got = MakeAbsolute(c.in);
    ASSERT_TRUE(got.ok()) << c.in << ": " << got.status();
    EXPECT_EQ(*got, c.want) << c.in;
  }
}

TEST(PathTest, MakeAbsoluteWithoutAWorkingDirectory) {
  InTempDir tmp;
  ASSERT_EQ(::rmdir(tmp.dir().c_str()), 0);  // The cwd is gone.
  absl::StatusOr<std::string> rel = MakeAbsolute("ckpt");
  EXPECT_TRUE(absl::IsInternal(rel.status())) << rel.status();
  EXPECT_NE(rel.status().message().find("'ckpt'"), absl::string_view::npos)
      << rel.status();
  EXPECT_EQ(MakeAbsolute("/abs//ckpt").value(), "/abs/ckpt");  // Needs no cwd.
}

TEST(PathTest, RelativePathUnder) {
  using Opt = std::optional<std::string>;
  // Each input as a path under "/d" and under ".".
  for (size_t i = 0; i < kInputs.size(); ++i) {
    const std::string& in = kInputs[i];
    const Opt under_d[] = {std::nullopt, std::nullopt, std::nullopt,
                           std::nullopt, std::nullopt, std::nullopt,
                           std::nullopt, std::nullopt, std::nullopt};
    EXPECT_EQ(RelativePathUnder("/d", in), under_d[i]) << in;
    const Opt under_dot[] = {std::nullopt, std::nullopt, "a",   std::nullopt, "a",
                             std::nullopt, std::nullopt, "a/b", "a"};
    EXPECT_EQ(RelativePathUnder(".", in), under_dot[i]) << in;
  }
  EXPECT_EQ(RelativePathUnder("/d", "/d/ckpt-1"), Opt("ckpt-1"));
  EXPECT_EQ(RelativePathUnder("/d/", "/d//sub/./ckpt-1"), Opt("sub/ckpt-1"));
  EXPECT_EQ(RelativePathUnder("/", "/ckpt-1"), Opt("ckpt-1"));
  EXPECT_EQ(RelativePathUnder("/", "/"), std::nullopt);
  EXPECT_EQ(RelativePathUnder("/d", "/d"), std::nullopt);
  EXPECT_EQ(RelativePathUnder("/d", "/dd/x"), std::nullopt);
  EXPECT_EQ(RelativePathUnder("/d", "/d/../x"), std::nullopt);
  EXPECT_EQ(RelativePathUnder("/d", "d/x"), std::nullopt);
  EXPECT_EQ(RelativePathUnder("d", "/d/x"), std::nullopt);
  EXPECT_EQ(RelativePathUnder("", "x"), std::nullopt);
  EXPECT_EQ(RelativePathUnder("a/b", "a/b/c"), Opt("c"));
  EXPECT_EQ(RelativePathUnder(".", "."), std::nullopt);
  // A ".." in the directory is part of its name; below it, never.
  EXPECT_EQ(RelativePathUnder("../x", "../x/c"), Opt("c"));
  EXPECT_EQ(RelativePathUnder("/w/../x", "/w/../x//c"), Opt("c"));
  EXPECT_EQ(RelativePathUnder("/w/../x", "/w/../x/../y/c"), std::nullopt);
  EXPECT_EQ(RelativePathUnder("/w/../x", "/x/c"), std::nullopt);  // Lexically elsewhere.
}

}  // namespace
}  // namespace meshckpt
