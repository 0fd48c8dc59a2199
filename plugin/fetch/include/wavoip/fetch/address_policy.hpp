// Which peer addresses a recording download may connect to. Pure functions, no I/O.
//
// The recording URL comes from a webhook body, so it is attacker-controlled: the fetcher checks
// every address libcurl is about to connect to (first hop, each redirect, each resolved address)
// against this policy. References: OWASP SSRF Prevention Cheat Sheet, IANA special-purpose
// address registries (RFC 6890 and successors).
#pragma once

#include <optional>
#include <string>
#include <string_view>

struct sockaddr;

namespace wavoip {

// Why an address is special. Everything but public_address is forbidden (loopback is allowed only in
// the development mode).
enum class AddressClass {
  public_address,
  unspecified,      // 0.0.0.0/8 ("this network"), ::
  loopback,         // 127.0.0.0/8, ::1
  private_network,  // 10/8, 172.16/12, 192.168/16, fc00::/7 (unique local)
  shared_cgnat,     // 100.64.0.0/10
  link_local,       // 169.254/16, fe80::/10
  multicast,        // 224/4, ff00::/8
  broadcast,        // 255.255.255.255
  reserved,         // 240/4, 192.0.0.0/24 (IETF protocol assignments), fec0::/10 (old site-local)
  documentation,    // 192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32
  benchmarking,     // 198.18.0.0/15
  nat64,            // 64:ff9b::/96, 64:ff9b:1::/48 (would reach an IPv4 address we cannot see)
  not_internet,     // not an IPv4/IPv6 socket address at all (AF_UNIX, ...)
};

// Classifies a socket address. IPv4-mapped (::ffff:a.b.c.d), IPv4-translated
// (::ffff:0:a.b.c.d), IPv4-compatible (::a.b.c.d) and 6to4 (2002:AABB:CCDD::/48) IPv6 addresses
// are classified by the IPv4 address they embed. nullptr and non-IP families are not_internet.
AddressClass classify_address(const sockaddr* address);

// Same for an address literal as a resolver would read it: IPv6 (brackets and a %zone
// tolerated) or IPv4 in any spelling inet_aton(3) accepts ("127.1", "0x7f000001",
// "2130706433", "0177.0.0.1"), because getaddrinfo accepts those too. Host names and
// garbage give nullopt.
std::optional<AddressClass> classify_address(std::string_view literal);

// True when a download must not connect to `address`. allow_loopback is the development mode:
// loopback becomes allowed, every other special range stays forbidden.
bool is_forbidden_address(const sockaddr* address, bool allow_loopback = false);

// String form, for tests and diagnostics. Fails closed: a literal that does not parse is
// forbidden.
bool is_forbidden_address(std::string_view literal, bool allow_loopback = false);

// Words a helpdesk agent can read: "loopback", "private network", ...
std::string_view describe(AddressClass address_class);

// "10.0.0.5", "::1", "::ffff:127.0.0.1"; "unknown address" for non-IP families or nullptr.
std::string format_address(const sockaddr* address);

}  // namespace wavoip
