// The Range header decision of the host's file answers (host_stub/src/byte_range.hpp), without
// any I/O: every form of a single byte range, what is clamped, what is unsatisfiable, what is
// malformed (416 in the server), and what is ignored (the whole file, 200).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "byte_range.hpp"

namespace hdp::host {
namespace {

using Kind = ByteRangeDecision::Kind;

constexpr uint64_t kSize = 10000;

// "partial 0-499", "whole", "unsatisfiable", "invalid": one string, so that a failure shows the
// header and the whole decision.
std::string describe(const ByteRangeDecision& d) {
  switch (d.kind) {
    case Kind::whole: return "whole";
    case Kind::partial: return "partial " + std::to_string(d.first) + "-" + std::to_string(d.last);
    case Kind::unsatisfiable: return "unsatisfiable";
    case Kind::invalid: return "invalid";
  }
  return "?";
}

std::string decide(std::string_view field, uint64_t size = kSize) {
  return describe(decide_byte_range(field, size));
}

TEST(ByteRange, FirstAndLast) {
  EXPECT_EQ(decide("bytes=0-499"), "partial 0-499");
  EXPECT_EQ(decide("bytes=500-999"), "partial 500-999");
  EXPECT_EQ(decide("bytes=0-0"), "partial 0-0");
  EXPECT_EQ(decide("bytes=9999-9999"), "partial 9999-9999");
  EXPECT_EQ(decide("bytes=0-9999"), "partial 0-9999");
  EXPECT_EQ(decide("bytes=007-010"), "partial 7-10");  // leading zeros are digits
  const auto d = decide_byte_range("bytes=500-999", kSize);
  EXPECT_EQ(d.length(), 500U);
  EXPECT_EQ(content_range_value(d, kSize), "bytes 500-999/10000");
}

TEST(ByteRange, FromAPositionToTheEnd) {
  EXPECT_EQ(decide("bytes=9500-"), "partial 9500-9999");
  EXPECT_EQ(decide("bytes=0-"), "partial 0-9999");
  EXPECT_EQ(decide("bytes=9999-"), "partial 9999-9999");
}

TEST(ByteRange, Suffix) {
  EXPECT_EQ(decide("bytes=-500"), "partial 9500-9999");
  EXPECT_EQ(decide("bytes=-1"), "partial 9999-9999");
  EXPECT_EQ(decide("bytes=-10000"), "partial 0-9999");
  EXPECT_EQ(decide("bytes=-10001"), "partial 0-9999");  // longer than the file: all of it
  EXPECT_EQ(decide("bytes=-18446744073709551615"), "partial 0-9999");
  const auto d = decide_byte_range("bytes=-500", kSize);
  EXPECT_EQ(d.length(), 500U);
  EXPECT_EQ(content_range_value(d, kSize), "bytes 9500-9999/10000");
}

TEST(ByteRange, LastPastTheEndIsClamped) {
  EXPECT_EQ(decide("bytes=9000-10000"), "partial 9000-9999");
  EXPECT_EQ(decide("bytes=9000-999999999"), "partial 9000-9999");
  EXPECT_EQ(decide("bytes=0-18446744073709551615"), "partial 0-9999");  // UINT64_MAX still fits
  EXPECT_EQ(content_range_value(decide_byte_range("bytes=9000-10000", kSize), kSize), "bytes 9000-9999/10000");
}

TEST(ByteRange, StartAtOrPastTheEndIsUnsatisfiable) {
  EXPECT_EQ(decide("bytes=10000-"), "unsatisfiable");
  EXPECT_EQ(decide("bytes=10000-10005"), "unsatisfiable");
  EXPECT_EQ(decide("bytes=20000-30000"), "unsatisfiable");
  EXPECT_EQ(decide("bytes=18446744073709551615-"), "unsatisfiable");
  const auto d = decide_byte_range("bytes=10000-", kSize);
  EXPECT_EQ(d.length(), 0U);
  EXPECT_EQ(content_range_value(d, kSize), "bytes */10000");
}

TEST(ByteRange, EmptySuffixIsUnsatisfiable) {
  EXPECT_EQ(decide("bytes=-0"), "unsatisfiable");
  EXPECT_EQ(decide("bytes=-000"), "unsatisfiable");
}

// RFC 9110 14.1.1: an int-range whose last-pos is less than its first-pos is invalid; this host
// answers an invalid bytes range 416 (the RFC allows ignoring or rejecting it), like one that
// starts past the end.
TEST(ByteRange, LastBeforeFirstIsInvalid) {
  EXPECT_EQ(decide("bytes=5-3"), "invalid");
  EXPECT_EQ(decide("bytes=1-0"), "invalid");
  EXPECT_EQ(decide("bytes=20000-3"), "invalid");
  EXPECT_EQ(content_range_value(decide_byte_range("bytes=5-3", kSize), kSize), "bytes */10000");
}

TEST(ByteRange, MalformedBytesRangesAreInvalid) {
  for (const char* field :
       {"bytes",       "bytes=",      "bytes= ",     "bytes=,",    "bytes= , ,", "bytes=-",     "bytes=abc",
        "bytes=a-b",   "bytes=1",     "bytes=1-2-3", "bytes=--5",  "bytes=-+5",  "bytes=+1-2",  "bytes=-1-2",
        "bytes=0x10-", "bytes=1.5-2", "bytes=1e3-",  "bytes==0-1", "bytes=0-1=", "bytes=\xff-1"}) {
    EXPECT_EQ(decide(field), "invalid") << field;
  }
}

TEST(ByteRange, NumbersTooLargeForSixtyFourBitsAreInvalid) {
  EXPECT_EQ(decide("bytes=18446744073709551616-"), "invalid");  // UINT64_MAX + 1
  EXPECT_EQ(decide("bytes=0-18446744073709551616"), "invalid");
  EXPECT_EQ(decide("bytes=-18446744073709551616"), "invalid");
  EXPECT_EQ(decide("bytes=99999999999999999999999999999-"), "invalid");
  EXPECT_EQ(decide("bytes=0-" + std::string(5000, '9')), "invalid");
  EXPECT_EQ(decide("bytes=-" + std::string(5000, '9')), "invalid");
}

TEST(ByteRange, Whitespace) {
  // Around the value, the '=' and each list element: accepted.
  EXPECT_EQ(decide("  bytes=0-9  "), "partial 0-9");
  EXPECT_EQ(decide("\tbytes=0-9\t"), "partial 0-9");
  EXPECT_EQ(decide("bytes = 0-9"), "partial 0-9");
  EXPECT_EQ(decide("bytes=0-9 , "), "partial 0-9");
  EXPECT_EQ(decide("bytes= -5"), "partial 9995-9999");
  // Inside one range: not the grammar.
  EXPECT_EQ(decide("bytes=0 -9"), "invalid");
  EXPECT_EQ(decide("bytes=0- 9"), "invalid");
  EXPECT_EQ(decide("bytes=- 5"), "invalid");
  EXPECT_EQ(decide("bytes=1 2-13"), "invalid");
}

TEST(ByteRange, TheUnitIsCaseInsensitive) {
  EXPECT_EQ(decide("BYTES=0-9"), "partial 0-9");
  EXPECT_EQ(decide("Bytes=-1"), "partial 9999-9999");
}

TEST(ByteRange, OtherUnitsAreIgnored) {
  for (const char* field : {"items=0-5", "bytesx=0-5", "byte=0-5", "0-5", "", "   ", "=0-5", "none"}) {
    EXPECT_EQ(decide(field), "whole") << field;
  }
}

TEST(ByteRange, SeveralRangesAreIgnored) {
  EXPECT_EQ(decide("bytes=0-1,5-6"), "whole");
  EXPECT_EQ(decide("bytes=0-1, 5-6"), "whole");
  EXPECT_EQ(decide("bytes=0-1,0-1"), "whole");
  EXPECT_EQ(decide("bytes=-5,0-"), "whole");
  EXPECT_EQ(decide("bytes=0-1,garbage"), "whole");
  EXPECT_EQ(decide("bytes=20000-,30000-"), "whole");
  // Empty list elements are not ranges.
  EXPECT_EQ(decide("bytes=,0-1"), "partial 0-1");
  EXPECT_EQ(decide("bytes=0-1,,"), "partial 0-1");
  EXPECT_EQ(decide("bytes= , 0-1 ,"), "partial 0-1");
}

// A zero-length file has no byte a Content-Range can name: a first-pos is always past the end,
// and a (satisfiable) suffix range gets the whole empty body with 200.
TEST(ByteRange, EmptyFile) {
  EXPECT_EQ(decide("bytes=0-", 0), "unsatisfiable");
  EXPECT_EQ(decide("bytes=0-0", 0), "unsatisfiable");
  EXPECT_EQ(decide("bytes=0-100", 0), "unsatisfiable");
  EXPECT_EQ(decide("bytes=-5", 0), "whole");
  EXPECT_EQ(decide("bytes=-0", 0), "unsatisfiable");
  EXPECT_EQ(decide("bytes=5-3", 0), "invalid");
  EXPECT_EQ(content_range_value(decide_byte_range("bytes=0-", 0), 0), "bytes */0");
}

TEST(ByteRange, OneByteFile) {
  EXPECT_EQ(decide("bytes=0-", 1), "partial 0-0");
  EXPECT_EQ(decide("bytes=0-5", 1), "partial 0-0");
  EXPECT_EQ(decide("bytes=-1", 1), "partial 0-0");
  EXPECT_EQ(decide("bytes=-2", 1), "partial 0-0");
  EXPECT_EQ(decide("bytes=1-", 1), "unsatisfiable");
  EXPECT_EQ(content_range_value(decide_byte_range("bytes=0-", 1), 1), "bytes 0-0/1");
}

TEST(ByteRange, HugeFiles) {
  constexpr uint64_t size = UINT64_MAX;  // the last byte is UINT64_MAX - 1
  EXPECT_EQ(decide("bytes=0-", size), "partial 0-18446744073709551614");
  EXPECT_EQ(decide("bytes=-1", size), "partial 18446744073709551614-18446744073709551614");
  EXPECT_EQ(decide("bytes=18446744073709551615-", size), "unsatisfiable");
  const auto d = decide_byte_range("bytes=0-", size);
  EXPECT_EQ(d.length(), UINT64_MAX);
  EXPECT_EQ(content_range_value(d, size), "bytes 0-18446744073709551614/18446744073709551615");
}

// Every first-last pair over a few small sizes, against the rule stated plainly.
TEST(ByteRange, EveryIntRangeOfSmallFiles) {
  for (uint64_t size = 0; size <= 6; ++size) {
    for (uint64_t first = 0; first <= 8; ++first) {
      for (uint64_t last = 0; last <= 8; ++last) {
        const std::string field = "bytes=" + std::to_string(first) + "-" + std::to_string(last);
        std::string expected;
        if (last < first) {
          expected = "invalid";
        } else if (first >= size) {
          expected = "unsatisfiable";
        } else {
          expected = "partial " + std::to_string(first) + "-" + std::to_string(std::min(last, size - 1));
        }
        EXPECT_EQ(decide(field, size), expected) << field << " of " << size;
      }
    }
    for (uint64_t suffix = 0; suffix <= 8; ++suffix) {
      const std::string field = "bytes=-" + std::to_string(suffix);
      std::string expected;
      if (suffix == 0) {
        expected = "unsatisfiable";
      } else if (size == 0) {
        expected = "whole";
      } else {
        expected = "partial " + std::to_string(size - std::min(suffix, size)) + "-" + std::to_string(size - 1);
      }
      EXPECT_EQ(decide(field, size), expected) << field << " of " << size;
    }
  }
}

}  // namespace
}  // namespace hdp::host
