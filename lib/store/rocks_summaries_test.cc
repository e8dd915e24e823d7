#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "mime/summary.h"
#include "mime/summary_fields.h"
#include "store/rocks_store.h"

namespace mail::store {
namespace {

// summary_fields answers the asked fields of each content in request order,
// "" for a missing content or one stored without a summary.
TEST(RocksStoreSummaries, FieldsOfManyContents) {
  auto dir = std::filesystem::temp_directory_path() / ("rocks_summaries_test_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  {
    auto store = RocksStore::open({dir.string()});
    ASSERT_TRUE(store.is_ok()) << store.status().to_string();
    auto& s = **store;
    ASSERT_TRUE(s.domain_add({"example.com"}).is_ok());
    auto joe = s.account_add({"joe@example.com", {}, {}, ""});
    ASSERT_TRUE(joe.is_ok());
    auto deliver = [&](const std::string& raw, bool with_summary) {
      DeliverReq req;
      req.content = raw;
      if (with_summary) req.summary = mime::summarize(raw);
      DeliveryTarget t;
      t.account = joe->id;
      req.targets.push_back(t);
      auto r = s.deliver(req);
      EXPECT_TRUE(r.is_ok());
      return r.is_ok() ? r->content : 0;
    };
    ContentId a = deliver("Subject: first\r\nFrom: a@example.org\r\n\r\nbody a\r\n", true);
    ContentId b = deliver("Subject: second\r\n\r\nbody b\r\n", true);
    ContentId none = deliver("Subject: third\r\n\r\nbody c\r\n", false);
    auto r = s.summary_fields({{b, 999, a, none}, mime::summary_field::subject});
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    ASSERT_EQ(r->summaries.size(), 4u);
    auto sb = mime::decode_summary(r->summaries[0]);
    ASSERT_TRUE(sb.is_ok());
    EXPECT_EQ(sb->subject, "second");
    EXPECT_TRUE(sb->header.empty() && sb->envelope.empty());
    EXPECT_EQ(r->summaries[1], "");
    EXPECT_EQ(mime::decode_summary(r->summaries[2])->subject, "first");
    EXPECT_EQ(r->summaries[3], "");
    auto all = s.summary_fields({{a}, mime::summary_field::all});
    ASSERT_TRUE(all.is_ok());
    EXPECT_EQ(all->summaries[0], s.content_meta({{a}})->metas[0].summary);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mail::store
