// SQL text both store engines build from their column lists (internal to plugin/store).
#pragma once

#include <string>

namespace wavoip::sql_text {

// "b = <value>, c = <value>, ..." for every column of `columns` ("a, b, c": a comma and a space
// between names) but the first (the key, parameter 1); `value` gets a column's name and the
// index of its parameter.
template <typename Value>
std::string assign_all_but_key(const std::string& columns, Value value) {
  std::string out;
  std::size_t pos = columns.find(", ") + 2;  // skip the key
  for (int index = 2; pos < columns.size(); ++index) {
    std::size_t end = columns.find(", ", pos);
    if (end == std::string::npos) end = columns.size();
    const std::string name = columns.substr(pos, end - pos);
    out.append(index > 2 ? ", " : "").append(name).append(" = ").append(value(name, index));
    pos = end + 2;
  }
  return out;
}

}  // namespace wavoip::sql_text
