// A strict reader of the Prometheus text exposition format, version 0.0.4, for the tests: what a
// Prometheus server would refuse, and a little more that a correct exporter never writes, is an
// error naming the line.
//
// Refused: a missing final line feed, carriage returns, empty lines, a malformed # HELP or # TYPE
// (unknown type, twice for one name, TYPE after the family's first sample), a bad metric or label
// name, a duplicate label, a label value with a raw or unknown escape, a value Go's ParseFloat
// would not read, a timestamp that is not an integer, the same series twice, a family whose lines
// are not contiguous, a negative or NaN counter, and a histogram series without its +Inf bucket,
// with buckets that decrease, or whose _count differs from its +Inf bucket or has no _sum.
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace promtext {

using Labels = std::map<std::string, std::string>;

struct Sample {
  std::string name;  // as written: x, x_bucket, x_sum, x_count
  Labels labels;     // unescaped values
  double value = 0;
};

struct Family {
  std::string name;
  std::string help;  // unescaped; "" when absent
  std::string type;  // counter, gauge, histogram, summary, untyped
  std::vector<Sample> samples;
};

struct Exposition {
  std::vector<Family> families;

  const Family* family(std::string_view name) const {
    for (const Family& f : families) {
      if (f.name == name) return &f;
    }
    return nullptr;
  }
  // The value of the sample with exactly this name and these labels.
  std::optional<double> value(std::string_view name, const Labels& labels = {}) const {
    for (const Family& f : families) {
      for (const Sample& s : f.samples) {
        if (s.name == name && s.labels == labels) return s.value;
      }
    }
    return std::nullopt;
  }
};

// Exposition, or the first error as "line N: what".
using ParseResult = std::variant<Exposition, std::string>;

namespace detail {

inline bool name_start(char c, bool colon) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
}
inline bool name_char(char c, bool colon) {
  return name_start(c, colon) || (c >= '0' && c <= '9');
}

inline bool valid_name(std::string_view s, bool colon) {
  if (s.empty() || !name_start(s[0], colon)) return false;
  return std::all_of(s.begin() + 1, s.end(), [&](char c) { return name_char(c, colon); });
}

// Go's strconv.ParseFloat as Prometheus uses it (decimal forms and the special values).
inline std::optional<double> parse_float(std::string_view s) {
  if (s == "+Inf" || s == "Inf") return HUGE_VAL;
  if (s == "-Inf") return -HUGE_VAL;
  if (s == "NaN") return std::nan("");
  if (s.empty()) return std::nullopt;
  std::string_view body = s;
  if (body.front() == '+') body.remove_prefix(1);
  double out = 0;
  const auto [end, ec] = std::from_chars(body.data(), body.data() + body.size(), out);
  if (ec != std::errc() || end != body.data() + body.size()) return std::nullopt;
  // from_chars accepts "inf"/"nan" spellings Go also accepts, but we only ever write the above.
  if (std::isinf(out) || std::isnan(out)) return std::nullopt;
  return out;
}

// The family a sample belongs to, given the declared types.
inline std::string family_of(const std::string& name, const std::map<std::string, std::string>& types) {
  for (std::string_view suffix : {"_bucket", "_sum", "_count"}) {
    if (name.size() > suffix.size() && name.ends_with(suffix)) {
      std::string base = name.substr(0, name.size() - suffix.size());
      auto t = types.find(base);
      if (t != types.end() && (t->second == "histogram" || (t->second == "summary" && suffix != "_bucket"))) {
        return base;
      }
    }
  }
  return name;
}

}  // namespace detail

inline ParseResult parse(std::string_view text) {
  using detail::valid_name;
  Exposition out;
  std::map<std::string, std::string> types;
  std::set<std::string> helps;
  std::set<std::string> closed;  // families already left
  std::set<std::pair<std::string, Labels>> seen;
  std::string current;  // family of the previous line
  size_t line_no = 0;
  auto error = [&](const std::string& what) { return ParseResult("line " + std::to_string(line_no) + ": " + what); };
  auto family_ref = [&](const std::string& name) -> Family& {
    for (Family& f : out.families) {
      if (f.name == name) return f;
    }
    out.families.push_back(Family{name, "", "untyped", {}});
    return out.families.back();
  };
  // Moves to `name`'s family; false when it was already left once.
  auto enter = [&](const std::string& name) {
    if (name == current) return true;
    if (closed.contains(name)) return false;
    if (!current.empty()) closed.insert(current);
    current = name;
    return true;
  };

  if (!text.empty() && text.back() != '\n') {
    line_no = static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) + 1;
    return error("no line feed after the last line");
  }
  while (!text.empty()) {
    ++line_no;
    const size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol + 1);
    if (line.find('\r') != std::string_view::npos) return error("carriage return");
    if (line.empty()) return error("empty line");

    if (line.front() == '#') {
      if (!line.starts_with("# HELP ") && !line.starts_with("# TYPE ")) continue;  // a comment
      const bool help = line.starts_with("# HELP ");
      std::string_view rest = line.substr(7);
      const size_t space = rest.find(' ');
      const std::string name(rest.substr(0, space));
      if (!valid_name(name, true)) return error("bad metric name in a # HELP/# TYPE line");
      std::string_view arg = space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
      if (!enter(name)) return error("family " + name + " is not contiguous");
      Family& family = family_ref(name);
      if (help) {
        if (!helps.insert(name).second) return error("second # HELP for " + name);
        std::string unescaped;
        for (size_t i = 0; i < arg.size(); ++i) {
          if (arg[i] != '\\') {
            unescaped += arg[i];
            continue;
          }
          if (i + 1 >= arg.size()) return error("dangling backslash in # HELP");
          const char next = arg[++i];
          if (next == '\\')
            unescaped += '\\';
          else if (next == 'n')
            unescaped += '\n';
          else
            return error("unknown escape in # HELP");
        }
        family.help = unescaped;
      } else {
        static const std::set<std::string_view> kTypes = {"counter", "gauge", "histogram", "summary", "untyped"};
        if (!kTypes.contains(arg)) return error("unknown type \"" + std::string(arg) + "\"");
        if (types.contains(name)) return error("second # TYPE for " + name);
        if (!family.samples.empty()) return error("# TYPE after the first sample of " + name);
        types[name] = std::string(arg);
        family.type = std::string(arg);
      }
      continue;
    }

    // name{labels} value [timestamp]
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    Sample sample;
    sample.name = std::string(line.substr(0, i));
    if (!valid_name(sample.name, true)) return error("bad metric name \"" + sample.name + "\"");
    if (i < line.size() && line[i] == '{') {
      ++i;
      for (;;) {
        if (i < line.size() && line[i] == '}') {
          ++i;
          break;
        }
        size_t start = i;
        while (i < line.size() && line[i] != '=') ++i;
        const std::string label(line.substr(start, i - start));
        if (!valid_name(label, false)) return error("bad label name \"" + label + "\"");
        if (i + 1 >= line.size() || line[i + 1] != '"') return error("label " + label + " without a quoted value");
        i += 2;
        std::string value;
        bool closed_quote = false;
        while (i < line.size()) {
          const char c = line[i++];
          if (c == '"') {
            closed_quote = true;
            break;
          }
          if (c != '\\') {
            value += c;
            continue;
          }
          if (i >= line.size()) return error("dangling backslash in a label value");
          const char next = line[i++];
          if (next == '\\')
            value += '\\';
          else if (next == '"')
            value += '"';
          else if (next == 'n')
            value += '\n';
          else
            return error("unknown escape in a label value");
        }
        if (!closed_quote) return error("unterminated label value");
        if (!sample.labels.emplace(label, value).second) return error("label " + label + " twice");
        if (i < line.size() && line[i] == ',') {
          ++i;
          continue;
        }
        if (i < line.size() && line[i] == '}') {
          ++i;
          break;
        }
        return error("expected , or } after a label");
      }
    }
    if (i >= line.size() || line[i] != ' ') return error("no value");
    std::string_view rest = line.substr(i + 1);
    const size_t space = rest.find(' ');
    const auto value = detail::parse_float(rest.substr(0, space));
    if (!value) return error("value \"" + std::string(rest.substr(0, space)) + "\" is not a float");
    sample.value = *value;
    if (space != std::string_view::npos) {
      std::string_view ts = rest.substr(space + 1);
      int64_t t = 0;
      const auto [end, ec] = std::from_chars(ts.data(), ts.data() + ts.size(), t);
      if (ts.empty() || ec != std::errc() || end != ts.data() + ts.size()) return error("bad timestamp");
    }

    const std::string family_name = detail::family_of(sample.name, types);
    if (!enter(family_name)) return error("family " + family_name + " is not contiguous");
    if (!seen.insert({sample.name, sample.labels}).second) return error("series " + sample.name + " twice");
    Family& family = family_ref(family_name);
    if (family.type == "counter" && (std::isnan(sample.value) || sample.value < 0)) {
      return error("counter " + sample.name + " is negative or NaN");
    }
    if (family.type == "histogram" && sample.name.ends_with("_bucket") && !sample.labels.contains("le")) {
      return error("bucket without le");
    }
    family.samples.push_back(std::move(sample));
  }

  // Histograms: per series (labels without le), buckets cumulative up to +Inf == _count, a _sum.
  for (const Family& family : out.families) {
    if (family.type != "histogram") continue;
    std::map<Labels, std::vector<std::pair<double, double>>> buckets;
    std::map<Labels, double> counts;
    std::set<Labels> sums;
    for (const Sample& s : family.samples) {
      Labels key = s.labels;
      if (s.name == family.name + "_bucket") {
        const auto le = detail::parse_float(key.at("le"));
        if (!le) return ParseResult("histogram " + family.name + ": bad le \"" + key.at("le") + "\"");
        key.erase("le");
        buckets[key].emplace_back(*le, s.value);
      } else if (s.name == family.name + "_count") {
        counts[key] = s.value;
      } else if (s.name == family.name + "_sum") {
        sums.insert(key);
      } else {
        return ParseResult("histogram " + family.name + ": unexpected sample " + s.name);
      }
    }
    for (auto& [key, list] : buckets) {
      std::sort(list.begin(), list.end());
      for (size_t k = 1; k < list.size(); ++k) {
        if (list[k].second < list[k - 1].second) return ParseResult("histogram " + family.name + ": buckets decrease");
      }
      if (list.empty() || !std::isinf(list.back().first)) {
        return ParseResult("histogram " + family.name + ": no +Inf bucket");
      }
      if (!counts.contains(key) || counts.at(key) != list.back().second) {
        return ParseResult("histogram " + family.name + ": _count differs from the +Inf bucket");
      }
      if (!sums.contains(key)) return ParseResult("histogram " + family.name + ": no _sum");
    }
    for (const auto& [key, count] : counts) {
      if (!buckets.contains(key)) return ParseResult("histogram " + family.name + ": _count without buckets");
    }
  }
  return out;
}

}  // namespace promtext
