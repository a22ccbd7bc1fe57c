// Tests of Box.
#include "meshckpt/layout/box.h"

#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meshckpt/layout/index_interval.h"

namespace meshckpt {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

IndexInterval I(int64_t origin, int64_t size) {
  return IndexInterval::UncheckedSized(origin, size);
}

// ---------------------------------------------------------------------------
// IndexInterval

TEST(IndexInterval, CreateValid) {
  for (auto [origin, size] :
       std::vector<std::pair<int64_t, int64_t>>{{0, 0},
                                                {0, 5},
                                                {3, 0},
                                                {7, 1},
                                                {0, kMax},
                                                {kMax, 0},
                                                {kMax - 1, 1},
                                                {kMax / 2, kMax / 2}}) {
    absl::StatusOr<IndexInterval> i = IndexInterval::Create(origin, size);
    ASSERT_TRUE(i.ok()) << origin << "+" << size << ": " << i.status();
    EXPECT_EQ(i->origin(), origin);
    EXPECT_EQ(i->size(), size);
    EXPECT_EQ(i->exclusive_max(), origin + size);
    EXPECT_EQ(i->empty(), size == 0);
  }
}

TEST(IndexInterval, CreateInvalid) {
  for (auto [origin, size] : std::vector<std::pair<int64_t, int64_t>>{
           {-1, 0},
           {-1, 5},
           {0, -1},
           {3, -7},
           {kMax, 1},
           {1, kMax},
           {kMax - 1, 2},
           {kMax, kMax},
           {std::numeric_limits<int64_t>::min(), 1},
           {0, std::numeric_limits<int64_t>::min()}}) {
    absl::StatusOr<IndexInterval> i = IndexInterval::Create(origin, size);
    ASSERT_FALSE(i.ok()) << origin << "+" << size;
    EXPECT_EQ(i.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Msg(i.status()), HasSubstr(std::to_string(origin)));
    EXPECT_THAT(Msg(i.status()), HasSubstr(std::to_string(size)));
  }
}

TEST(IndexInterval, HeaderExample) {
  IndexInterval a = I(2, 5);
  IndexInterval b = Intersect(a, I(4, 10));
  EXPECT_EQ(b, I(4, 3));
  EXPECT_EQ(b.exclusive_max(), 7);
}

TEST(IndexInterval, Intersect) {
  EXPECT_EQ(Intersect(I(0, 10), I(3, 4)), I(3, 4));  // Nested.
  EXPECT_EQ(Intersect(I(3, 4), I(0, 10)), I(3, 4));
  EXPECT_EQ(Intersect(I(0, 5), I(5, 5)), I(5, 0));  // Touching.
  EXPECT_EQ(Intersect(I(5, 5), I(0, 5)), I(5, 0));
  EXPECT_EQ(Intersect(I(0, 2), I(7, 3)), I(7, 0));  // Disjoint: empty at
  EXPECT_EQ(Intersect(I(7, 3), I(0, 2)), I(7, 0));  // the larger origin.
  EXPECT_TRUE(Intersect(I(0, 2), I(7, 3)).empty());
  EXPECT_EQ(Intersect(I(2, 6), I(4, 10)), I(4, 4));  // Overlapping.
  EXPECT_EQ(Intersect(I(4, 0), I(0, 10)), I(4, 0));  // Empty operand.
  EXPECT_EQ(Intersect(I(0, kMax), I(kMax - 3, 3)), I(kMax - 3, 3));
}

TEST(IndexInterval, Contains) {
  EXPECT_TRUE(I(0, 10).Contains(I(0, 10)));
  EXPECT_TRUE(I(0, 10).Contains(I(2, 3)));
  EXPECT_FALSE(I(0, 10).Contains(I(8, 3)));
  EXPECT_FALSE(I(2, 5).Contains(I(1, 2)));
  EXPECT_FALSE(I(2, 5).Contains(I(0, 10)));
  // Empty inner: contained when its origin is in [origin, exclusive_max].
  EXPECT_TRUE(I(2, 5).Contains(I(2, 0)));
  EXPECT_TRUE(I(2, 5).Contains(I(4, 0)));
  EXPECT_TRUE(I(2, 5).Contains(I(7, 0)));
  EXPECT_FALSE(I(2, 5).Contains(I(8, 0)));
  EXPECT_FALSE(I(2, 5).Contains(I(1, 0)));
  EXPECT_TRUE(I(3, 0).Contains(I(3, 0)));
  EXPECT_FALSE(I(3, 0).Contains(I(3, 1)));
}

TEST(IndexInterval, EqualityAndPrinting) {
  EXPECT_EQ(I(1, 2), I(1, 2));
  EXPECT_NE(I(1, 2), I(1, 3));
  EXPECT_NE(I(1, 0), I(2, 0));  // Empty intervals differ by origin.
  EXPECT_EQ(IndexInterval(), I(0, 0));
  std::ostringstream os;
  os << I(2, 5);
  EXPECT_EQ(os.str(), "[2, 7)");
}

// ---------------------------------------------------------------------------
// CheckedNumElements

TEST(CheckedNumElements, Products) {
  EXPECT_EQ(CheckedNumElements({}).value(), 1);
  EXPECT_EQ(CheckedNumElements({7}).value(), 7);
  EXPECT_EQ(CheckedNumElements({2, 3, 4}).value(), 24);
  EXPECT_EQ(CheckedNumElements({kMax}).value(), kMax);
  EXPECT_EQ(CheckedNumElements({1, kMax, 1}).value(), kMax);
  EXPECT_EQ(CheckedNumElements({int64_t{1} << 31, int64_t{1} << 31}).value(),
            int64_t{1} << 62);
}

TEST(CheckedNumElements, Overflow) {
  for (const std::vector<int64_t>& shape : std::vector<std::vector<int64_t>>{
           {int64_t{1} << 40, int64_t{1} << 40},
           {kMax, 2},
           {2, kMax},
           {int64_t{1} << 32, int64_t{1} << 31},
           {3, int64_t{1} << 62},
           {int64_t{1} << 21, int64_t{1} << 21, int64_t{1} << 21}}) {
    absl::StatusOr<int64_t> n = CheckedNumElements(shape);
    ASSERT_FALSE(n.ok()) << shape[0] << "x" << shape[1] << " = " << *n;
    EXPECT_EQ(n.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Msg(n.status()), HasSubstr(std::to_string(shape[0])));
  }
}

TEST(CheckedNumElements, ZeroShortCircuitsOverflow) {
  EXPECT_EQ(CheckedNumElements({0, kMax, kMax}).value(), 0);
  EXPECT_EQ(CheckedNumElements({kMax, kMax, 0}).value(), 0);
  EXPECT_EQ(CheckedNumElements({kMax, 0, kMax}).value(), 0);
  EXPECT_EQ(CheckedNumElements({5, 0}).value(), 0);
}

TEST(CheckedNumElements, Negative) {
  absl::StatusOr<int64_t> n = CheckedNumElements({3, -2});
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(n.status()), HasSubstr("-2"));
}

// ---------------------------------------------------------------------------
// Box

TEST(Box, HeaderExample) {
  Box a = Box::FromShape({4, 6});
  absl::StatusOr<Box> b = Box::Create({2, 3}, {4, 4});
  ASSERT_TRUE(b.ok()) << b.status();
  Box c = Intersect(a, *b);
  EXPECT_EQ(c, Box::Unchecked({2, 3}, {2, 3}));
  EXPECT_EQ(c.ToString(), "{[2, 4), [3, 6)}");
  Box r = RelativeTo(c, *b);
  EXPECT_EQ(r, Box::Unchecked({0, 0}, {2, 3}));
  EXPECT_EQ(RelativeTo(c, a), c);
}

TEST(Box, CreateValid) {
  absl::StatusOr<Box> b = Box::Create({1, 2, 3}, {4, 5, 6});
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->rank(), 3);
  EXPECT_EQ(b->origin(), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(b->shape(), (std::vector<int64_t>{4, 5, 6}));
  EXPECT_EQ(b->num_elements(), 120);
  EXPECT_FALSE(b->empty());
  EXPECT_EQ(b->interval(1), I(2, 5));

  absl::StatusOr<Box> zero = Box::Create({0, 0, 0}, {0, kMax, kMax});
  ASSERT_TRUE(zero.ok()) << zero.status();
  EXPECT_EQ(zero->num_elements(), 0);
  EXPECT_TRUE(zero->empty());
}

TEST(Box, CreateErrors) {
  struct Case {
    std::vector<int64_t> origin, shape;
    std::string token;
  };
  const std::vector<Case> cases = {
      {{0}, {1, 2}, "rank"},
      {{0, 0}, {1}, "rank"},
      {{-1, 0}, {1, 1}, "-1"},
      {{0, 0}, {1, -4}, "-4"},
      {{kMax, 0}, {1, 1}, std::to_string(kMax)},  // End overflows.
      {{0, 0}, {int64_t{1} << 40, int64_t{1} << 40}, "1099511627776"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<Box> b = Box::Create(c.origin, c.shape);
    ASSERT_FALSE(b.ok()) << c.token << " -> " << b->ToString();
    EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Msg(b.status()), HasSubstr(c.token));
  }
}

TEST(Box, RankZeroHoldsOneElement) {
  Box scalar;
  EXPECT_EQ(scalar.rank(), 0);
  EXPECT_EQ(scalar.num_elements(), 1);
  EXPECT_FALSE(scalar.empty());
  EXPECT_EQ(scalar.ToString(), "{}");
  EXPECT_EQ(Box::Create({}, {}).value(), scalar);
  EXPECT_EQ(Box::FromShape({}), scalar);
  EXPECT_TRUE(scalar.Contains(scalar));
  EXPECT_EQ(Intersect(scalar, scalar), scalar);
  EXPECT_EQ(Intersect(scalar, scalar).num_elements(), 1);
  EXPECT_EQ(RelativeTo(scalar, scalar), scalar);
}

TEST(Box, EmptyWhenAnyDimIsZero) {
  EXPECT_TRUE(Box::FromShape({3, 0, 2}).empty());
  EXPECT_EQ(Box::FromShape({3, 0, 2}).num_elements(), 0);
  EXPECT_FALSE(Box::FromShape({1, 1}).empty());
}

TEST(Box, Contains) {
  Box outer = Box::Unchecked({0, 0}, {4, 6});
  EXPECT_TRUE(outer.Contains(outer));
  EXPECT_TRUE(outer.Contains(Box::Unchecked({1, 2}, {3, 4})));
  EXPECT_FALSE(outer.Contains(Box::Unchecked({1, 2}, {4, 4})));
  EXPECT_FALSE(outer.Contains(Box::Unchecked({1, 3}, {3, 4})));
  EXPECT_TRUE(outer.Contains(Box::Unchecked({4, 6}, {0, 0})));
  EXPECT_FALSE(outer.Contains(Box::Unchecked({0}, {4})));  // Rank mismatch.
  EXPECT_FALSE(Box::Unchecked({1, 2}, {3, 4}).Contains(outer));
}

TEST(Box, Intersect) {
  Box a = Box::Unchecked({0, 0}, {5, 5});
  Box b = Box::Unchecked({3, 1}, {4, 2});
  EXPECT_EQ(Intersect(a, b), Box::Unchecked({3, 1}, {2, 2}));
  EXPECT_EQ(Intersect(b, a), Intersect(a, b));
  // Disjoint along one dimension only: empty.
  Box c = Box::Unchecked({1, 7}, {2, 2});
  Box ac = Intersect(a, c);
  EXPECT_TRUE(ac.empty()) << ac;
  EXPECT_EQ(ac.shape()[0], 2);
  EXPECT_EQ(ac.shape()[1], 0);
  EXPECT_EQ(ac.origin()[1], 7);
  // Touching faces: empty.
  EXPECT_TRUE(Intersect(a, Box::Unchecked({5, 0}, {1, 5})).empty());
  // Contained.
  Box inner = Box::Unchecked({1, 1}, {1, 2});
  EXPECT_EQ(Intersect(a, inner), inner);
}

TEST(Box, RelativeTo) {
  Box outer = Box::Unchecked({10, 20, 30}, {5, 5, 5});
  Box inner = Box::Unchecked({12, 20, 34}, {2, 5, 1});
  Box r = RelativeTo(inner, outer);
  EXPECT_EQ(r, Box::Unchecked({2, 0, 4}, {2, 5, 1}));
  EXPECT_TRUE(Box::FromShape(outer.shape()).Contains(r));
  EXPECT_EQ(RelativeTo(outer, outer), Box::FromShape({5, 5, 5}));
}

TEST(Box, ToStringAndStream) {
  EXPECT_EQ(Box::Unchecked({1, 0}, {2, 3}).ToString(), "{[1, 3), [0, 3)}");
  EXPECT_EQ(Box::FromShape({7}).ToString(), "{[0, 7)}");
  EXPECT_EQ(Box::Unchecked({4}, {0}).ToString(), "{[4, 4)}");
  std::ostringstream os;
  os << Box::FromShape({2, 2});
  EXPECT_EQ(os.str(), "{[0, 2), [0, 2)}");
}

TEST(Box, Equality) {
  EXPECT_EQ(Box::FromShape({2, 3}), Box::Unchecked({0, 0}, {2, 3}));
  EXPECT_NE(Box::FromShape({2, 3}), Box::FromShape({3, 2}));
  EXPECT_NE(Box::Unchecked({1}, {0}), Box::Unchecked({2}, {0}));
  EXPECT_NE(Box::FromShape({1}), Box());
}

}  // namespace
}  // namespace meshckpt
