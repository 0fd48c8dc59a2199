// The address guard, without I/O: every forbidden range at its edges, the allowed neighbours,
// IPv6 forms that embed IPv4, legacy IPv4 spellings, and the development-mode exception.
#include "wavoip/fetch/address_policy.hpp"

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

std::ostream& operator<<(std::ostream& out, const Case& c) {
  return out << c.literal;
}

class ForbiddenAddressTest : public ::testing::TestWithParam<Case> {};

TEST_P(ForbiddenAddressTest, IsClassifiedAndForbidden) {
  const Case& c = GetParam();
  ASSERT_EQ(classify_address(c.literal), c.expected) << c.literal;
  EXPECT_TRUE(is_forbidden_address(c.literal)) << c.literal;
}

INSTANTIATE_TEST_SUITE_P(
    Ipv4Ranges, ForbiddenAddressTest,
    ::testing::Values(
        Case{"0.0.0.0", AddressClass::unspecified}, Case{"0.255.255.255", AddressClass::unspecified},
        Case{"10.0.0.0", AddressClass::private_network}, Case{"10.255.255.255", AddressClass::private_network},
        Case{"100.64.0.0", AddressClass::shared_cgnat}, Case{"100.127.255.255", AddressClass::shared_cgnat},
        Case{"127.0.0.1", AddressClass::loopback}, Case{"127.255.255.254", AddressClass::loopback},
        Case{"169.254.0.0", AddressClass::link_local}, Case{"169.254.169.254", AddressClass::link_local},
        Case{"169.254.255.255", AddressClass::link_local}, Case{"172.16.0.0", AddressClass::private_network},
        Case{"172.31.255.255", AddressClass::private_network}, Case{"192.0.0.0", AddressClass::reserved},
        Case{"192.0.0.255", AddressClass::reserved}, Case{"192.0.2.0", AddressClass::documentation},
        Case{"192.0.2.255", AddressClass::documentation}, Case{"192.168.0.0", AddressClass::private_network},
        Case{"192.168.255.255", AddressClass::private_network}, Case{"198.18.0.0", AddressClass::benchmarking},
        Case{"198.19.255.255", AddressClass::benchmarking}, Case{"198.51.100.0", AddressClass::documentation},
        Case{"198.51.100.255", AddressClass::documentation}, Case{"203.0.113.0", AddressClass::documentation},
        Case{"203.0.113.255", AddressClass::documentation}, Case{"224.0.0.0", AddressClass::multicast},
        Case{"239.255.255.255", AddressClass::multicast}, Case{"240.0.0.0", AddressClass::reserved},
        Case{"255.255.255.254", AddressClass::reserved}, Case{"255.255.255.255", AddressClass::broadcast}));

INSTANTIATE_TEST_SUITE_P(
    Ipv6Ranges, ForbiddenAddressTest,
    ::testing::Values(Case{"::", AddressClass::unspecified}, Case{"::1", AddressClass::loopback},
                      Case{"0:0:0:0:0:0:0:1", AddressClass::loopback},
                      Case{"0000:0000:0000:0000:0000:0000:0000:0001", AddressClass::loopback},
                      Case{"fc00::", AddressClass::private_network}, Case{"fc00::1", AddressClass::private_network},
                      Case{"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", AddressClass::private_network},
                      Case{"FD12:3456::1", AddressClass::private_network}, Case{"fe80::", AddressClass::link_local},
                      Case{"fe80::1", AddressClass::link_local},
                      Case{"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", AddressClass::link_local},
                      Case{"fe80::1%eth0", AddressClass::link_local}, Case{"[fe80::1%25lo]", AddressClass::link_local},
                      Case{"fec0::1", AddressClass::reserved}, Case{"ff00::", AddressClass::multicast},
                      Case{"ff02::1", AddressClass::multicast},
                      Case{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", AddressClass::multicast},
                      Case{"2001:db8::", AddressClass::documentation}, Case{"2001:db8::1", AddressClass::documentation},
                      Case{"2001:0db8:ffff:ffff:ffff:ffff:ffff:ffff", AddressClass::documentation},
                      Case{"3fff::1", AddressClass::documentation}, Case{"2001:2::1", AddressClass::benchmarking},
                      Case{"64:ff9b::", AddressClass::nat64}, Case{"64:ff9b::8.8.8.8", AddressClass::nat64},
                      Case{"64:ff9b::ffff:ffff", AddressClass::nat64}, Case{"64:ff9b:1::1", AddressClass::nat64},
                      Case{"100::1", AddressClass::reserved}, Case{"4000::1", AddressClass::reserved},
                      Case{"[::1]", AddressClass::loopback}));

// IPv6 forms carrying an IPv4 address are judged as that IPv4 address.
INSTANTIATE_TEST_SUITE_P(
    EmbeddedIpv4, ForbiddenAddressTest,
    ::testing::Values(
        Case{"::ffff:127.0.0.1", AddressClass::loopback}, Case{"::ffff:7f00:1", AddressClass::loopback},
        Case{"::FFFF:7F00:0001", AddressClass::loopback}, Case{"0:0:0:0:0:ffff:127.0.0.1", AddressClass::loopback},
        Case{"::ffff:10.0.0.1", AddressClass::private_network}, Case{"::ffff:a00:1", AddressClass::private_network},
        Case{"::ffff:169.254.169.254", AddressClass::link_local}, Case{"::ffff:a9fe:a9fe", AddressClass::link_local},
        Case{"::ffff:0.0.0.0", AddressClass::unspecified}, Case{"::ffff:100.64.0.1", AddressClass::shared_cgnat},
        Case{"::ffff:255.255.255.255", AddressClass::broadcast},
        Case{"::ffff:0:127.0.0.1", AddressClass::loopback},  // IPv4-translated
        Case{"::127.0.0.1", AddressClass::loopback},         // IPv4-compatible
        Case{"::7f00:1", AddressClass::loopback}, Case{"::10.1.2.3", AddressClass::private_network},
        Case{"::192.168.1.1", AddressClass::private_network}, Case{"::0.0.0.2", AddressClass::unspecified},
        Case{"2002:7f00:1::", AddressClass::loopback},  // 6to4 of 127.0.0.1
        Case{"2002:c0a8:101::1", AddressClass::private_network}));

// What getaddrinfo (and so a URL host) would turn into a forbidden address.
INSTANTIATE_TEST_SUITE_P(LegacyIpv4Spellings, ForbiddenAddressTest,
                         ::testing::Values(Case{"2130706433", AddressClass::loopback},  // decimal 127.0.0.1
                                           Case{"0x7f000001", AddressClass::loopback},  // hex
                                           Case{"0X7F000001", AddressClass::loopback},
                                           Case{"017700000001", AddressClass::loopback},  // octal
                                           Case{"0177.0.0.1", AddressClass::loopback},    // octal first part
                                           Case{"0x7f.0.0.1", AddressClass::loopback},
                                           Case{"0x7f.1", AddressClass::loopback},
                                           Case{"127.1", AddressClass::loopback},    // a.b form
                                           Case{"127.0.1", AddressClass::loopback},  // a.b.c form
                                           Case{"0", AddressClass::unspecified},
                                           Case{"10.1", AddressClass::private_network},
                                           Case{"167772161", AddressClass::private_network},   // 10.0.0.1
                                           Case{"3232235521", AddressClass::private_network},  // 192.168.0.1
                                           Case{"0xa9fea9fe", AddressClass::link_local},       // 169.254.169.254
                                           Case{"2852039166", AddressClass::link_local},       // 169.254.169.254
                                           Case{"0xffffffff", AddressClass::broadcast}));

class AllowedAddressTest : public ::testing::TestWithParam<const char*> {};

TEST_P(AllowedAddressTest, IsPublicAndAllowed) {
  ASSERT_EQ(classify_address(GetParam()), AddressClass::public_address) << GetParam();
  EXPECT_FALSE(is_forbidden_address(GetParam())) << GetParam();
  EXPECT_FALSE(is_forbidden_address(GetParam(), /*allow_loopback=*/true)) << GetParam();
}

// Public addresses, including the first address outside each forbidden range.
INSTANTIATE_TEST_SUITE_P(NeighboursAndPublic, AllowedAddressTest,
                         ::testing::Values("1.0.0.0", "8.8.8.8", "1.1.1.1", "93.184.216.34", "9.255.255.255",
                                           "11.0.0.0", "100.63.255.255", "100.128.0.0", "126.255.255.255", "128.0.0.0",
                                           "169.253.255.255", "169.255.0.0", "172.15.255.255", "172.32.0.0",
                                           "191.255.255.255", "192.0.1.0", "192.0.3.0", "192.167.255.255",
                                           "192.169.0.0", "198.17.255.255", "198.20.0.0", "198.51.99.255",
                                           "198.51.101.0", "203.0.112.255", "203.0.114.0", "223.255.255.255",
                                           "134744072",  // 8.8.8.8 in decimal
                                           "::ffff:8.8.8.8", "::ffff:808:808", "::8.8.8.8", "2002:808:808::1",
                                           "2001:4860:4860::8888", "2606:4700:4700::1111", "2001:db9::1",
                                           "2001:db7:ffff::1", "2a00:1450:4001:80b::200e", "3fff:1000::1"));

TEST(AddressPolicyTest, UnparseableLiteralsFailClosed) {
  for (const char* text : {"", "localhost", "storage.wavoip.com", "1.2.3.4.5", "256.0.0.1", "127.0.0.1 ", " 127.0.0.1",
                           "127.0.0.1\n", "::ffff:127.0.0.1:80", "[::1", "gggg::1", "1.2.3.x"}) {
    EXPECT_EQ(classify_address(text), std::nullopt) << '"' << text << '"';
    EXPECT_TRUE(is_forbidden_address(text)) << '"' << text << '"';
    EXPECT_TRUE(is_forbidden_address(text, /*allow_loopback=*/true)) << '"' << text << '"';
  }
}

TEST(AddressPolicyTest, DevelopmentModeAllowsLoopbackOnly) {
  for (const char* loopback :
       {"127.0.0.1", "127.255.255.254", "127.1", "2130706433", "::1", "::ffff:127.0.0.1", "::127.0.0.1"}) {
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

const sockaddr* as_sockaddr(const void* address) {
  return static_cast<const sockaddr*>(address);
}

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
  EXPECT_EQ(classify_address(as_sockaddr(&mapped_private)), AddressClass::private_network);
  EXPECT_FALSE(is_forbidden_address(as_sockaddr(&mapped_public)));

  EXPECT_EQ(format_address(as_sockaddr(&metadata)), "169.254.169.254");
  EXPECT_EQ(format_address(as_sockaddr(&mapped_private)), "::ffff:192.168.0.10");
}

TEST(AddressPolicyTest, NonInternetAddressesAreForbidden) {
  sockaddr_un unix_address{};
  unix_address.sun_family = AF_UNIX;
  EXPECT_EQ(classify_address(as_sockaddr(&unix_address)), AddressClass::not_internet);
  EXPECT_TRUE(is_forbidden_address(as_sockaddr(&unix_address), /*allow_loopback=*/true));
  EXPECT_TRUE(is_forbidden_address(static_cast<const sockaddr*>(nullptr)));
  EXPECT_EQ(format_address(nullptr), "unknown address");
}

TEST(AddressPolicyTest, DescriptionsAreReadable) {
  EXPECT_EQ(describe(AddressClass::loopback), "loopback");
  EXPECT_EQ(describe(AddressClass::private_network), "private network");
  EXPECT_EQ(describe(AddressClass::link_local), "link-local");
}

}  // namespace
}  // namespace wavoip
