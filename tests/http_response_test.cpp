#include <gtest/gtest.h>

#include "probes/http_response.h"

namespace portsentinel::probes {
namespace {

TEST(HttpHead, ParsesStatusAndLocation) {
  const auto head = parse_http_head(
      "HTTP/1.1 301 Moved Permanently\r\nServer: nginx\r\nlocation:  https://a.example/x \r\n\r\nbody");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 301);
  EXPECT_EQ(head->status_line, "HTTP/1.1 301 Moved Permanently");
  EXPECT_EQ(head->location, "https://a.example/x");
  EXPECT_EQ(head->head_size, 82u);
}

TEST(HttpHead, IncompleteOrNotHttp) {
  EXPECT_FALSE(parse_http_head("HTTP/1.1 200 OK\r\nServer: x\r\n"));
  EXPECT_FALSE(parse_http_head("SSH-2.0-x\r\n\r\n"));
  EXPECT_FALSE(parse_http_head("HTTP/1.1 2x0 OK\r\n\r\n"));
  EXPECT_TRUE(looks_like_http_response("HTTP/1.0 200"));
  EXPECT_TRUE(looks_like_http_response("HT"));
  EXPECT_FALSE(looks_like_http_response("\x15\x03"));
}

}  // namespace
}  // namespace portsentinel::probes
