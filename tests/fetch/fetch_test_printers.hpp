// Readable gtest failure messages for the fetch types.
#pragma once

#include <ostream>

#include "wavoip/fetch/address_policy.hpp"
#include "wavoip/fetch/recording_fetcher.hpp"

namespace wavoip {

inline void PrintTo(FetchKind kind, std::ostream* out) {
  *out << to_string(kind);
}
inline void PrintTo(AddressClass address_class, std::ostream* out) {
  *out << describe(address_class);
}

}  // namespace wavoip
