// BoundedMap: at most `capacity` entries, the oldest inserted forgotten first, one per insert.
#include "wavoip/core/bounded_map.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace wavoip {
namespace {

TEST(BoundedMapTest, KeepsTheNewestEntriesAndForgetsTheOldestOneAtATime) {
  BoundedMap<int> map(3);
  for (int i = 1; i <= 3; ++i) map["call-" + std::to_string(i)] = i;
  EXPECT_EQ(map.size(), 3U);
  map["call-4"] = 4;
  EXPECT_EQ(map.size(), 3U);
  EXPECT_EQ(map.find("call-1"), nullptr) << "the oldest goes first";
  ASSERT_NE(map.find("call-2"), nullptr);
  EXPECT_EQ(*map.find("call-2"), 2);
  EXPECT_EQ(*map.find("call-4"), 4);
  map["call-5"] = 5;
  EXPECT_EQ(map.find("call-2"), nullptr);
  EXPECT_NE(map.find("call-3"), nullptr);
}

TEST(BoundedMapTest, ReadingOrChangingAnEntryDoesNotMakeItNewer) {
  BoundedMap<int> map(2);
  map["a"] = 1;
  map["b"] = 2;
  map["a"] = 10;  // an existing entry: same place in the order
  EXPECT_EQ(*map.find("a"), 10);
  map["c"] = 3;
  EXPECT_EQ(map.find("a"), nullptr);
  EXPECT_NE(map.find("b"), nullptr);
}

TEST(BoundedMapTest, AnEntryErasedAndInsertedAgainIsNewAndItsOldPlaceForgetsNothing) {
  BoundedMap<int> map(2);
  map["a"] = 1;
  map["b"] = 2;
  map.erase("a");
  EXPECT_EQ(map.size(), 1U);
  map["a"] = 3;  // new, after b: its old place comes up now and no longer names an entry
  EXPECT_EQ(map.size(), 2U);
  ASSERT_NE(map.find("a"), nullptr) << "the entry inserted again is not forgotten by its old place";
  EXPECT_EQ(*map.find("a"), 3);
  map["c"] = 4;
  EXPECT_EQ(map.find("b"), nullptr) << "b is older than the a inserted again";
  EXPECT_NE(map.find("a"), nullptr);
  map["d"] = 5;
  EXPECT_LE(map.size(), 2U);
  EXPECT_NE(map.find("d"), nullptr);
}

TEST(BoundedMapTest, NeverHoldsMoreThanItsCapacity) {
  BoundedMap<int> map(100);
  for (int i = 0; i < 10'000; ++i) {
    map["k" + std::to_string(i % 300)] = i;
    if (i % 7 == 0) map.erase("k" + std::to_string((i * 13) % 300));
    ASSERT_LE(map.size(), 100U);
  }
  EXPECT_NE(map.find("k" + std::to_string(9'999 % 300)), nullptr) << "the newest is kept";
}

TEST(BoundedMapTest, ACapacityOfZeroIsRefused) {
  EXPECT_THROW(BoundedMap<int>(0), std::invalid_argument);
}

}  // namespace
}  // namespace wavoip
