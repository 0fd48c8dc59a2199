#include "wavoip/fetch/address_policy.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace wavoip {
namespace {

using Ipv6Bytes = std::array<uint8_t, 16>;

struct Ipv4Range {
  uint32_t network;
  int prefix;
  AddressClass address_class;
};

constexpr uint32_t v4(uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
  return (a << 24) | (b << 16) | (c << 8) | d;
}

// Order matters only where ranges nest: 255.255.255.255 lies inside 240/4.
constexpr std::array<Ipv4Range, 15> kIpv4Ranges{{
    {v4(255, 255, 255, 255), 32, AddressClass::broadcast},
    {v4(0, 0, 0, 0), 8, AddressClass::unspecified},
    {v4(10, 0, 0, 0), 8, AddressClass::private_network},
    {v4(100, 64, 0, 0), 10, AddressClass::shared_cgnat},
    {v4(127, 0, 0, 0), 8, AddressClass::loopback},
    {v4(169, 254, 0, 0), 16, AddressClass::link_local},
    {v4(172, 16, 0, 0), 12, AddressClass::private_network},
    {v4(192, 0, 0, 0), 24, AddressClass::reserved},
    {v4(192, 0, 2, 0), 24, AddressClass::documentation},
    {v4(192, 168, 0, 0), 16, AddressClass::private_network},
    {v4(198, 18, 0, 0), 15, AddressClass::benchmarking},
    {v4(198, 51, 100, 0), 24, AddressClass::documentation},
    {v4(203, 0, 113, 0), 24, AddressClass::documentation},
    {v4(224, 0, 0, 0), 4, AddressClass::multicast},
    {v4(240, 0, 0, 0), 4, AddressClass::reserved},
}};

AddressClass classify_ipv4(uint32_t address) {
  for (const Ipv4Range& range : kIpv4Ranges) {
    const uint32_t mask = ~uint32_t{0} << (32 - range.prefix);
    if ((address & mask) == range.network) return range.address_class;
  }
  return AddressClass::public_address;  // everything not listed above
}

bool all_zero(const Ipv6Bytes& b, size_t from, size_t to) {
  for (size_t i = from; i < to; ++i) {
    if (b[i] != 0) return false;
  }
  return true;
}

uint32_t ipv4_at(const Ipv6Bytes& b, size_t offset) {
  return (uint32_t{b[offset]} << 24) | (uint32_t{b[offset + 1]} << 16) | (uint32_t{b[offset + 2]} << 8) |
         uint32_t{b[offset + 3]};
}

AddressClass classify_ipv6(const Ipv6Bytes& b) {
  if (all_zero(b, 0, 16)) return AddressClass::unspecified;
  if (all_zero(b, 0, 15) && b[15] == 1) return AddressClass::loopback;

  // Forms that carry an IPv4 address are judged by that address, so ::ffff:127.0.0.1 is loopback.
  if (all_zero(b, 0, 10) && b[10] == 0xff && b[11] == 0xff) return classify_ipv4(ipv4_at(b, 12));
  if (all_zero(b, 0, 8) && b[8] == 0xff && b[9] == 0xff && b[10] == 0 && b[11] == 0) {
    return classify_ipv4(ipv4_at(b, 12));  // IPv4-translated ::ffff:0:a.b.c.d
  }
  if (all_zero(b, 0, 12)) return classify_ipv4(ipv4_at(b, 12));           // IPv4-compatible ::a.b.c.d
  if (b[0] == 0x20 && b[1] == 0x02) return classify_ipv4(ipv4_at(b, 2));  // 6to4 2002::/16

  if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b) {
    if (all_zero(b, 4, 12)) return AddressClass::nat64;            // 64:ff9b::/96
    if (b[4] == 0x00 && b[5] == 0x01) return AddressClass::nat64;  // 64:ff9b:1::/48
  }
  if ((b[0] & 0xfe) == 0xfc) return AddressClass::private_network;             // fc00::/7
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return AddressClass::link_local;  // fe80::/10
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) return AddressClass::reserved;    // fec0::/10
  if (b[0] == 0xff) return AddressClass::multicast;                            // ff00::/8
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) {
    return AddressClass::documentation;  // 2001:db8::/32
  }
  if (b[0] == 0x3f && b[1] == 0xff && (b[2] & 0xf0) == 0x00) {
    return AddressClass::documentation;  // 3fff::/20 (RFC 9637)
  }
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x00 && b[3] == 0x02 && b[4] == 0 && b[5] == 0) {
    return AddressClass::benchmarking;  // 2001:2::/48
  }
  // Only 2000::/3 is global unicast; the rest of the space is unassigned or special.
  if ((b[0] & 0xe0) != 0x20) return AddressClass::reserved;
  return AddressClass::public_address;
}

}  // namespace

AddressClass classify_address(const sockaddr* address) {
  if (address == nullptr) return AddressClass::not_internet;
  if (address->sa_family == AF_INET) {
    in_addr ipv4{};
    std::memcpy(&ipv4, reinterpret_cast<const char*>(address) + offsetof(sockaddr_in, sin_addr), sizeof ipv4);
    return classify_ipv4(ntohl(ipv4.s_addr));
  }
  if (address->sa_family == AF_INET6) {
    Ipv6Bytes bytes{};
    std::memcpy(bytes.data(), reinterpret_cast<const char*>(address) + offsetof(sockaddr_in6, sin6_addr), bytes.size());
    return classify_ipv6(bytes);
  }
  return AddressClass::not_internet;
}

std::optional<AddressClass> classify_address(std::string_view literal) {
  if (literal.size() >= 2 && literal.front() == '[' && literal.back() == ']') {
    literal = literal.substr(1, literal.size() - 2);
  }
  const bool is_ipv6 = literal.find(':') != std::string_view::npos;
  if (is_ipv6) literal = literal.substr(0, literal.find('%'));  // drop a zone id
  if (literal.empty() || literal.size() > INET6_ADDRSTRLEN) return std::nullopt;
  for (char c : literal) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\0') return std::nullopt;
  }
  const std::string text(literal);

  if (is_ipv6) {
    Ipv6Bytes bytes{};
    if (inet_pton(AF_INET6, text.c_str(), bytes.data()) != 1) return std::nullopt;
    return classify_ipv6(bytes);
  }
  // inet_pton takes only dotted decimal; inet_aton also takes the legacy spellings that
  // getaddrinfo (and so a URL host) would turn into the same address.
  in_addr ipv4{};
  if (inet_pton(AF_INET, text.c_str(), &ipv4) != 1 && inet_aton(text.c_str(), &ipv4) == 0) return std::nullopt;
  return classify_ipv4(ntohl(ipv4.s_addr));
}

bool is_forbidden_address(const sockaddr* address, bool allow_loopback) {
  const AddressClass address_class = classify_address(address);
  if (address_class == AddressClass::public_address) return false;
  return !(allow_loopback && address_class == AddressClass::loopback);
}

bool is_forbidden_address(std::string_view literal, bool allow_loopback) {
  const std::optional<AddressClass> address_class = classify_address(literal);
  if (!address_class) return true;
  if (*address_class == AddressClass::public_address) return false;
  return !(allow_loopback && *address_class == AddressClass::loopback);
}

std::string_view describe(AddressClass address_class) {
  switch (address_class) {
    case AddressClass::public_address: return "public internet";
    case AddressClass::unspecified: return "unspecified (\"this network\")";
    case AddressClass::loopback: return "loopback";
    case AddressClass::private_network: return "private network";
    case AddressClass::shared_cgnat: return "carrier-grade NAT";
    case AddressClass::link_local: return "link-local";
    case AddressClass::multicast: return "multicast";
    case AddressClass::broadcast: return "broadcast";
    case AddressClass::reserved: return "reserved";
    case AddressClass::documentation: return "documentation-only";
    case AddressClass::benchmarking: return "benchmarking";
    case AddressClass::nat64: return "NAT64";
    case AddressClass::not_internet: return "not an internet address";
  }
  return "unknown";
}

std::string format_address(const sockaddr* address) {
  char text[INET6_ADDRSTRLEN] = {};
  if (address != nullptr && address->sa_family == AF_INET) {
    in_addr ipv4{};
    std::memcpy(&ipv4, reinterpret_cast<const char*>(address) + offsetof(sockaddr_in, sin_addr), sizeof ipv4);
    if (inet_ntop(AF_INET, &ipv4, text, sizeof text) != nullptr) return text;
  } else if (address != nullptr && address->sa_family == AF_INET6) {
    in6_addr ipv6{};
    std::memcpy(&ipv6, reinterpret_cast<const char*>(address) + offsetof(sockaddr_in6, sin6_addr), sizeof ipv6);
    if (inet_ntop(AF_INET6, &ipv6, text, sizeof text) != nullptr) return text;
  }
  return "unknown address";
}

}  // namespace wavoip
