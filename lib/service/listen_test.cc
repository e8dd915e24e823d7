#include "service/listen.h"

#include <gtest/gtest.h>
#include <unistd.h>

namespace mail::service {
namespace {

TEST(ListenAddress, Parses) {
  auto a = parse_listen_address("127.0.0.1:2525");
  ASSERT_TRUE(a.is_ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 2525);
  a = parse_listen_address("[::1]:143");
  ASSERT_TRUE(a.is_ok());
  EXPECT_EQ(a->host, "::1");
  EXPECT_EQ(a->str(), "[::1]:143");
  a = parse_listen_address("*:25");
  ASSERT_TRUE(a.is_ok());
  EXPECT_EQ(a->host, "");
  a = parse_listen_address("unix:/run/mail/lmtp.sock");
  ASSERT_TRUE(a.is_ok());
  EXPECT_TRUE(a->is_unix);
  for (const char* bad : {"", "localhost", "host:0", "host:70000", "host:2x", "[::1]143", "unix:"})
    EXPECT_EQ(parse_listen_address(bad).code(), Code::invalid) << bad;
}

TEST(ListenAddress, OpensAndRefusesABusyUnixSocket) {
  std::string path = "/tmp/listen_test_" + std::to_string(::getpid()) + ".sock";
  auto a = parse_listen_address("unix:" + path);
  ASSERT_TRUE(a.is_ok());
  auto fd = open_listener(*a);
  ASSERT_TRUE(fd.is_ok()) << fd.status().to_string();
  EXPECT_EQ(open_listener(*a).code(), Code::busy);
  ::close(*fd);
  auto again = open_listener(*a);  // stale file, nobody answers: replaced
  ASSERT_TRUE(again.is_ok());
  ::close(*again);
  ::unlink(path.c_str());
}

}  // namespace
}  // namespace mail::service
