// Range requests (RFC 9110, section 14) for the files the host serves: the decision what to send
// for one Range header field and a representation of a known size, without any I/O. Only a single
// byte range is served; the HTTP layer (http_server) turns the decision into 200, 206 or 416.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace hdp::host {

struct ByteRangeDecision {
  enum class Kind {
    // Send the whole representation (200): the header asks for something this host does not
    // serve as a part (another range unit, several ranges), which RFC 9110 lets a server ignore.
    whole,
    // Send bytes first..last (inclusive) with 206.
    partial,
    // A valid range that selects nothing: it starts at or after the end, or is the suffix "-0".
    unsatisfiable,
    // A "bytes" range that does not follow the grammar (missing '-', no digits, a number too
    // large for 64 bits, whitespace inside a range, or last < first as in "5-3").
    invalid,
  };

  Kind kind = Kind::whole;
  uint64_t first = 0;  // partial only
  uint64_t last = 0;   // partial only, inclusive, always < the size

  uint64_t length() const { return kind == Kind::partial ? last - first + 1 : 0; }
};

// Decides from the value of one Range header field (as received) for a representation of size
// bytes. Accepted, with "bytes" compared case-insensitively and optional whitespace around the
// whole value, around the '=' and around each comma-separated element (empty elements are skipped):
//   bytes=a-b   a <= b; b past the end is clamped to size - 1; a >= size is unsatisfiable
//   bytes=a-    from a to the end
//   bytes=-n    the last n bytes (all of them when n >= size); "-0" is unsatisfiable
// Several ranges, or another unit: whole. A zero-length representation has no byte a range can
// name, so "a-" and "a-b" are unsatisfiable and a suffix range gets the whole (empty) body.
ByteRangeDecision decide_byte_range(std::string_view range_field, uint64_t size);

// The Content-Range value: "bytes first-last/size" for a partial decision, "bytes */size"
// otherwise (the form a 416 answer carries).
std::string content_range_value(const ByteRangeDecision& decision, uint64_t size);

}  // namespace hdp::host
