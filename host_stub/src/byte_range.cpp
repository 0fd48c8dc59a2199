#include "byte_range.hpp"

#include <algorithm>
#include <charconv>
#include <optional>
#include <system_error>

namespace hdp::host {
namespace {

using Kind = ByteRangeDecision::Kind;

bool is_ows(char c) {
  return c == ' ' || c == '\t';
}

std::string_view trim_ows(std::string_view text) {
  while (!text.empty() && is_ows(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_ows(text.back())) text.remove_suffix(1);
  return text;
}

bool is_bytes_unit(std::string_view unit) {
  static constexpr std::string_view kBytes = "bytes";
  return unit.size() == kBytes.size() && std::equal(unit.begin(), unit.end(), kBytes.begin(), [](char a, char b) {
           return (a >= 'A' && a <= 'Z' ? static_cast<char>(a - 'A' + 'a') : a) == b;
         });
}

// 1*DIGIT that fits in 64 bits; nullopt for anything else (empty, a sign, a space, overflow).
std::optional<uint64_t> parse_digits(std::string_view text) {
  if (text.empty() || !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

ByteRangeDecision decision(Kind kind) {
  ByteRangeDecision d;
  d.kind = kind;
  return d;
}

ByteRangeDecision partial(uint64_t first, uint64_t last) {
  ByteRangeDecision d;
  d.kind = Kind::partial;
  d.first = first;
  d.last = last;
  return d;
}

// One range-spec of the "bytes" unit, already trimmed and not empty.
ByteRangeDecision decide_one(std::string_view spec, uint64_t size) {
  const size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return decision(Kind::invalid);
  const std::string_view before = spec.substr(0, dash);
  const std::string_view after = spec.substr(dash + 1);

  if (before.empty()) {  // suffix-range: "-n"
    const auto suffix = parse_digits(after);
    if (!suffix) return decision(Kind::invalid);
    if (*suffix == 0) return decision(Kind::unsatisfiable);
    // Satisfiable (RFC 9110, 14.1.2), but an empty representation has no byte to name in a
    // Content-Range: send it whole.
    if (size == 0) return decision(Kind::whole);
    return partial(*suffix >= size ? 0 : size - *suffix, size - 1);
  }

  const auto first = parse_digits(before);
  if (!first) return decision(Kind::invalid);
  std::optional<uint64_t> last;
  if (!after.empty()) {
    last = parse_digits(after);
    if (!last) return decision(Kind::invalid);
    if (*last < *first) return decision(Kind::invalid);  // RFC 9110: such an int-range is invalid
  }
  if (*first >= size) return decision(Kind::unsatisfiable);
  return partial(*first, last ? std::min(*last, size - 1) : size - 1);
}

}  // namespace

ByteRangeDecision decide_byte_range(std::string_view range_field, uint64_t size) {
  const std::string_view value = trim_ows(range_field);
  const size_t equals = value.find('=');
  if (!is_bytes_unit(trim_ows(value.substr(0, equals)))) return decision(Kind::whole);
  if (equals == std::string_view::npos) return decision(Kind::invalid);  // "bytes" alone

  std::string_view set = value.substr(equals + 1);
  std::string_view only;
  size_t specs = 0;
  for (;;) {
    const size_t comma = set.find(',');
    const std::string_view element = trim_ows(set.substr(0, comma));
    if (!element.empty()) {
      // Several ranges would need a multipart/byteranges answer; this host sends the whole.
      if (++specs > 1) return decision(Kind::whole);
      only = element;
    }
    if (comma == std::string_view::npos) break;
    set.remove_prefix(comma + 1);
  }
  if (specs == 0) return decision(Kind::invalid);  // "bytes=", "bytes= , "
  return decide_one(only, size);
}

std::string content_range_value(const ByteRangeDecision& decision, uint64_t size) {
  if (decision.kind == Kind::partial) {
    return "bytes " + std::to_string(decision.first) + "-" + std::to_string(decision.last) + "/" + std::to_string(size);
  }
  return "bytes */" + std::to_string(size);
}

}  // namespace hdp::host
