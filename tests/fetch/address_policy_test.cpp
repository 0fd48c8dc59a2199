// The address guard, without I/O: every forbidden range at its edges, the allowed neighbours,
// IPv6 forms that embed IPv4, legacy IPv4 spellings, and the development-mode exception.
#include "wavoip/address_policy.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "fetch_test_printers.hpp"

namespace wavoip {
namespace {

struct Case {
  const char* literal;
  AddressClass expected;
};

std::ostream& operator<<(std::ostream& out, const Case& c) { return out << c.literal; }

class ForbiddenAddressTest : public ::testing::TestWithParam<Case> {};

TEST_P(ForbiddenAddressTest, IsClassifiedAndForbidden) {
  const Case& c = GetParam();
  ASSERT_EQ(classify_address(c.literal), c.expected) << c.literal;
  EXPECT_TRUE(is_forbidden_address(c.literal)) << c.literal;
}

INSTANTIATE_TEST_SUITE_P(
    Ipv4Ranges, ForbiddenAddressTest,
    ::testing::Values(
        Case{"0.0.0.0", AddressClass::kUnspecified}, Case{"0.255.255.255", AddressClass::kUnspecified},
        Case{"10.0.0.0", AddressClass::kPrivate}, Case{"10.255.255.255", AddressClass::kPrivate},
        Case{"100.64.0.0", AddressClass::kSharedCgnat}, Case{"100.127.255.255", AddressClass::kSharedCgnat},
        Case{"127.0.0.1", AddressClass::kLoopback}, Case{"127.255.255.254", AddressClass::kLoopback},
        Case{"169.254.0.0", AddressClass::kLinkLocal}, Case{"169.254.169.254", AddressClass::kLinkLocal},
        Case{"169.254.255.255", AddressClass::kLinkLocal},
        Case{"172.16.0.0", AddressClass::kPrivate}, Case{"172.31.255.255", AddressClass::kPrivate},
        Case{"192.0.0.0", AddressClass::kReserved}, Case{"192.0.0.255", AddressClass::kReserved},
        Case{"192.0.2.0", AddressClass::kDocumentation}, Case{"192.0.2.255", AddressClass::kDocumentation},
        Case{"192.168.0.0", AddressClass::kPrivate}, Case{"192.168.255.255", AddressClass::kPrivate},
        Case{"198.18.0.0", AddressClass::kBenchmarking}, Case{"198.19.255.255", AddressClass::kBenchmarking},
        Case{"198.51.100.0", AddressClass::kDocumentation}, Case{"198.51.100.255", AddressClass::kDocumentation},
        Case{"203.0.113.0", AddressClass::kDocumentation}, Case{"203.0.113.255", AddressClass::kDocumentation},
        Case{"224.0.0.0", AddressClass::kMulticast}, Case{"239.255.255.255", AddressClass::kMulticast},
        Case{"240.0.0.0", AddressClass::kReserved}, Case{"255.255.255.254", AddressClass::kReserved},
        Case{"255.255.255.255", AddressClass::kBroadcast}));

INSTANTIATE_TEST_SUITE_P(
    Ipv6Ranges, ForbiddenAddressTest,
    ::testing::Values(
        Case{"::", AddressClass::kUnspecified}, Case{"::1", AddressClass::kLoopback},
        Case{"0:0:0:0:0:0:0:1", AddressClass::kLoopback},
        Case{"0000:0000:0000:0000:0000:0000:0000:0001", AddressClass::kLoopback},
        Case{"fc00::", AddressClass::kPrivate}, Case{"fc00::1", AddressClass::kPrivate},
        Case{"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", AddressClass::kPrivate},
        Case{"FD12:3456::1", AddressClass::kPrivate},
        Case{"fe80::", AddressClass::kLinkLocal}, Case{"fe80::1", AddressClass::kLinkLocal},
        Case{"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", AddressClass::kLinkLocal},
        Case{"fe80::1%eth0", AddressClass::kLinkLocal}, Case{"[fe80::1%25lo]", AddressClass::kLinkLocal},
        Case{"fec0::1", AddressClass::kReserved},
        Case{"ff00::", AddressClass::kMulticast}, Case{"ff02::1", AddressClass::kMulticast},
        Case{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", AddressClass::kMulticast},
        Case{"2001:db8::", AddressClass::kDocumentation}, Case{"2001:db8::1", AddressClass::kDocumentation},
        Case{"2001:0db8:ffff:ffff:ffff:ffff:ffff:ffff", AddressClass::kDocumentation},
        Case{"3fff::1", AddressClass::kDocumentation},
        Case{"2001:2::1", AddressClass::kBenchmarking},
        Case{"64:ff9b::", AddressClass::kNat64}, Case{"64:ff9b::8.8.8.8", AddressClass::kNat64},
        Case{"64:ff9b::ffff:ffff", AddressClass::kNat64}, Case{"64:ff9b:1::1", AddressClass::kNat64},
        Case{"100::1", AddressClass::kReserved}, Case{"4000::1", AddressClass::kReserved},
        Case{"[::1]", AddressClass::kLoopback}));

// IPv6 forms carrying an IPv4 address are judged as that IPv4 address.
INSTANTIATE_TEST_SUITE_P(
    EmbeddedIpv4, ForbiddenAddressTest,
    ::testing::Values(
        Case{"::ffff:127.0.0.1", AddressClass::kLoopback}, Case{"::ffff:7f00:1", AddressClass::kLoopback},
        Case{"::FFFF:7F00:0001", AddressClass::kLoopback},
        Case{"0:0:0:0:0:ffff:127.0.0.1", AddressClass::kLoopback},
        Case{"::ffff:10.0.0.1", AddressClass::kPrivate}, Case{"::ffff:a00:1", AddressClass::kPrivate},
        Case{"::ffff:169.254.169.254", AddressClass::kLinkLocal},
        Case{"::ffff:a9fe:a9fe", AddressClass::kLinkLocal},
        Case{"::ffff:0.0.0.0", AddressClass::kUnspecified},
        Case{"::ffff:100.64.0.1", AddressClass::kSharedCgnat},
        Case{"::ffff:255.255.255.255", AddressClass::kBroadcast},
        Case{"::ffff:0:127.0.0.1", AddressClass::kLoopback},  // IPv4-translated
        Case{"::127.0.0.1", AddressClass::kLoopback},         // IPv4-compatible
        Case{"::7f00:1", AddressClass::kLoopback}, Case{"::10.1.2.3", AddressClass::kPrivate},
        Case{"::192.168.1.1", AddressClass::kPrivate}, Case{"::0.0.0.2", AddressClass::kUnspecified},
        Case{"2002:7f00:1::", AddressClass::kLoopback},  // 6to4 of 127.0.0.1
        Case{"2002:c0a8:101::1", AddressClass::kPrivate}));

// What getaddrinfo (and so a URL host) would turn into a forbidden address.
INSTANTIATE_TEST_SUITE_P(
    LegacyIpv4Spellings, ForbiddenAddressTest,
    ::testing::Values(
        Case{"2130706433", AddressClass::kLoopback},     // decimal 127.0.0.1
        Case{"0x7f000001", AddressClass::kLoopback},     // hex
        Case{"0X7F000001", AddressClass::kLoopback},
        Case{"017700000001", AddressClass::kLoopback},   // octal
        Case{"0177.0.0.1", AddressClass::kLoopback},     // octal first part
        Case{"0x7f.0.0.1", AddressClass::kLoopback},
        Case{"0x7f.1", AddressClass::kLoopback},
        Case{"127.1", AddressClass::kLoopback},          // a.b form
        Case{"127.0.1", AddressClass::kLoopback},        // a.b.c form
        Case{"0", AddressClass::kUnspecified},
        Case{"10.1", AddressClass::kPrivate},
        Case{"167772161", AddressClass::kPrivate},       // 10.0.0.1
        Case{"3232235521", AddressClass::kPrivate},      // 192.168.0.1
        Case{"0xa9fea9fe", AddressClass::kLinkLocal},    // 169.254.169.254
        Case{"2852039166", AddressClass::kLinkLocal},    // 169.254.169.254
        Case{"0xffffffff", AddressClass::kBroadcast}));

class AllowedAddressTest : public ::testing::TestWithParam<const char*> {};

TEST_P(AllowedAddressTest, IsPublicAndAllowed) {
  ASSERT_EQ(classify_address(GetParam()), AddressClass::kPublic) << GetParam();
  EXPECT_FALSE(is_forbidden_address(GetParam())) << GetParam();
  EXPECT_FALSE(is_forbidden_address(GetParam(), /*allow_loopback=*/true)) << GetParam();
}

// Public addresses, including the first address outside each forbidden range.
INSTANTIATE_TEST_SUITE_P(
    NeighboursAndPublic, AllowedAddressTest,
    ::testing::Values("1.0.0.0", "8.8.8.8", "1.1.1.1", "93.184.216.34", "9.255.255.255", "11.0.0.0",
                      "100.63.255.255", "100.128.0.0", "126.255.255.255", "128.0.0.0", "169.253.255.255",
                      "169.255.0.0", "172.15.255.255", "172.32.0.0", "191.255.255.255", "192.0.1.0",
                      "192.0.3.0", "192.167.255.255", "192.169.0.0", "198.17.255.255", "198.20.0.0",
                      "198.51.99.255", "198.51.101.0", "203.0.112.255", "203.0.114.0", "223.255.255.255",
                      "134744072",  // 8.8.8.8 in decimal
                      "::ffff:8.8.8.8", "::ffff:808:808", "::8.8.8.8", "2002:808:808::1",
                      "2001:4860:4860::8888", "2606:4700:4700::1111", "2001:db9::1", "2001:db7:ffff::1",
                      "2a00:1450:4001:80b::200e", "3fff:1000::1"));

TEST(AddressPolicyTest, UnparseableLiteralsFailClosed) {
  for (const char* text : {"", "localhost", "storage.wavoip.com", "1.2.3.4.5", "256.0.0.1", "127.0.0.1 ",
                           " 127.0.0.1", "127.0.0.1\n", "::ffff:127.0.0.1:80", "[::1", "gggg::1", "1.2.3.x"}) {
    EXPECT_EQ(classify_address(text), std::nullopt) << '"' << text << '"';
    EXPECT_TRUE(is_forbidden_address(text)) << '"' << text << '"';
    EXPECT_TRUE(is_forbidden_address(text, /*allow_loopback=*/true)) << '"' << text << '"';
  }
}

TEST(AddressPolicyTest, DevelopmentModeAllowsLoopbackOnly) {
  for (const char* loopback : {"127.0.0.1", "127.255.255.254", "127.1", "2130706433", "::1", "::ffff:127.0.0.1",
                               "::127.0.0.1"}) {
    EXPECT_TRUE(is_forbidden_address(loopback)) << loopback;
    EXPECT_FALSE(is_forbidden_address(loopback, /*allow_loopback=*/true)) << loopback;
  }
  for (const char* other : {"0.0.0.0", "::", "10.0.0.1", "169.254.169.254", "192.168.1.1", "fe80::1", "fd00::1",
                            "::ffff:0.0.0.0", "100.64.0.1", "224.0.0.1", "255.255.255.255", "64:ff9b::7f00:1"}) {
    EXPECT_TRUE(is_forbidden_address(other, /*allow_loopback=*/true)) << other;
  }
}

sockaddr_in ipv4(const char* text) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(443);
  EXPECT_EQ(inet_pton(AF_INET, text, &address.sin_addr), 1) << text;
  return address;
}

sockaddr_in6 ipv6(const char* text) {
  sockaddr_in6 address{};
  address.sin6_family = AF_INET6;
  address.sin6_port = htons(443);
  EXPECT_EQ(inet_pton(AF_INET6, text, &address.sin6_addr), 1) << text;
  return address;
}

const sockaddr* as_sockaddr(const void* address) { return static_cast<const sockaddr*>(address); }

TEST(AddressPolicyTest, SocketAddressForms) {
  const sockaddr_in public_v4 = ipv4("8.8.4.4");
  const sockaddr_in loopback_v4 = ipv4("127.0.0.1");
  const sockaddr_in metadata = ipv4("169.254.169.254");
  const sockaddr_in6 public_v6 = ipv6("2001:4860:4860::8844");
  const sockaddr_in6 loopback_v6 = ipv6("::1");
  const sockaddr_in6 mapped_private = ipv6("::ffff:192.168.0.10");
  const sockaddr_in6 mapped_public = ipv6("::ffff:8.8.4.4");

  EXPECT_FALSE(is_forbidden_address(as_sockaddr(&public_v4)));
  EXPECT_TRUE(is_forbidden_address(as_sockaddr(&loopback_v4)));
  EXPECT_FALSE(is_forbidden_address(as_sockaddr(&loopback_v4), /*allow_loopback=*/true));
  EXPECT_TRUE(is_forbidden_address(as_sockaddr(&metadata), /*allow_loopback=*/true));
  EXPECT_FALSE(is_forbidden_address(as_sockaddr(&public_v6)));
  EXPECT_TRUE(is_forbidden_address(as_sockaddr(&loopback_v6)));
  EXPECT_FALSE(is_forbidden_address(as_sockaddr(&loopback_v6), /*allow_loopback=*/true));
  EXPECT_TRUE(is_forbidden_address(as_sockaddr(&mapped_private)));
  EXPECT_EQ(classify_address(as_sockaddr(&mapped_private)), AddressClass::kPrivate);
  EXPECT_FALSE(is_forbidden_address(as_sockaddr(&mapped_public)));

  EXPECT_EQ(format_address(as_sockaddr(&metadata)), "169.254.169.254");
  EXPECT_EQ(format_address(as_sockaddr(&mapped_private)), "::ffff:192.168.0.10");
}

TEST(AddressPolicyTest, NonInternetAddressesAreForbidden) {
  sockaddr_un unix_address{};
  unix_address.sun_family = AF_UNIX;
  EXPECT_EQ(classify_address(as_sockaddr(&unix_address)), AddressClass::kNotInternet);
  EXPECT_TRUE(is_forbidden_address(as_sockaddr(&unix_address), /*allow_loopback=*/true));
  EXPECT_TRUE(is_forbidden_address(static_cast<const sockaddr*>(nullptr)));
  EXPECT_EQ(format_address(nullptr), "unknown address");
}

TEST(AddressPolicyTest, DescriptionsAreReadable) {
  EXPECT_EQ(describe(AddressClass::kLoopback), "loopback");
  EXPECT_EQ(describe(AddressClass::kPrivate), "private network");
  EXPECT_EQ(describe(AddressClass::kLinkLocal), "link-local");
}

}  // namespace
}  // namespace wavoip
