// The built WaVoIP plugin in the real stub host, with and without hdp.messages/3 (ABI 1.3) and /2
// (ABI 1.2): the call's message is shown either way, with its contact, direction and recording
// status. A host without /3 (--test-disable-extension) is what a 1.2 host offers, one without /2
// and /3 what a 1.0 or 1.1 host offers; the plugin must fall back to /2 or /1 there. Only /3 takes
// the technical detail apart; with the older tables the plugin joins it to the reason, as before.
#include "e2e_fixture.hpp"

#include <string>
#include <vector>

namespace {

namespace json = boost::json;
using testsupport::eventually;

struct HostVariant {
  std::string name;
  std::vector<std::string> extra_args;
  bool detail_apart = false;  // the host offers hdp.messages/3
};

void PrintTo(const HostVariant& variant, std::ostream* out) {
  *out << variant.name;
}

class MessagesTable : public ::testing::TestWithParam<HostVariant> {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<testsupport::TempDir>("wavoip-messages2");
    testsupport::HostOptions options;
    options.host_binary = HDP_STUB_HOST_PATH;
    options.plugins = {WAVOIP_PLUGIN_PATH};
    // Nothing here downloads: a closed loopback port as storage.
    options.plugin_config_json = R"({"base_url":"http://127.0.0.1:9/","allow_insecure_loopback":true})";
    options.data_dir = dir_->path() / "host";
    options.extra_args = GetParam().extra_args;
    host_ = std::make_unique<testsupport::HostProcess>(options);
    ASSERT_TRUE(host_->start()) << host_->log();
  }
  void TearDown() override {
    if (host_ && host_->running()) {
      EXPECT_EQ(host_->stop(), 0) << host_->log();
    }
    if (HasFailure() && host_) std::cerr << "---- host log ----\n" << host_->log() << "\n";
  }

  long webhook(const std::string& body) {
    return testsupport::http_post(host_->base_url() + "/webhooks/wavoip", body).status;
  }
  std::optional<json::object> message(const std::string& call_id) {
    auto r = host_->agent_get("/api/messages?external_key=wavoip%3A" + call_id);
    if (r.status != 200) return std::nullopt;
    return json::parse(r.body).as_object();
  }

  std::unique_ptr<testsupport::TempDir> dir_;
  std::unique_ptr<testsupport::HostProcess> host_;
};

TEST_P(MessagesTable, TheCallsMessageIsShownWithItsContactAndRecordingStatus) {
  const std::string id = "m2-" + GetParam().name;
  ASSERT_EQ(webhook(e2e::call_event(id, "CREATE", "INCOMING_RING")), 202);
  ASSERT_TRUE(eventually([&] { return message(id).has_value(); })) << host_->log();
  auto m = *message(id);
  EXPECT_EQ(m.at("contact"), "5511999990001");
  EXPECT_EQ(m.at("direction"), "incoming");

  ASSERT_EQ(webhook(e2e::record_event(id, "DISABLED")), 202);
  ASSERT_TRUE(eventually([&] { return message(id)->at("recording_status") == "disabled"; }))
      << json::serialize(*message(id));
  EXPECT_EQ(message(id)->at("contact"), "5511999990001");
  EXPECT_EQ(host_->log().find("refusing plugin"), std::string::npos);
}

TEST_P(MessagesTable, TheTechnicalDetailIsApartOnlyWhereTheHostTakesIt) {
  const std::string id = "det-" + GetParam().name;
  // READY downloads at once from the closed port: a transport error, retried later, with a detail.
  // Without id_session, unlike e2e::record_event.
  ASSERT_EQ(webhook(json::serialize(json::object{
                {"type", "RECORD"}, {"action", "UPDATE"}, {"whatsapp_call_id", id}, {"record_status", "READY"}})),
            202);
  ASSERT_TRUE(eventually([&] {
    auto m = message(id);
    return m && m->at("recording_status") == "waiting" && !m->at("recording_reason").as_string().empty();
  })) << host_->log();
  const auto m = *message(id);
  const std::string reason(m.at("recording_reason").as_string());
  const std::string detail(m.at("recording_detail").as_string());
  if (GetParam().detail_apart) {
    EXPECT_EQ(reason.find("last answer"), std::string::npos) << reason;
    EXPECT_EQ(detail.rfind("Last answer from the recording server: ", 0), 0U) << detail;
    EXPECT_GT(detail.size(), std::string("Last answer from the recording server: ").size()) << detail;
  } else {
    // The joined text of ABI 1.2 and before.
    EXPECT_NE(reason.find(" (last answer: "), std::string::npos) << reason;
    EXPECT_EQ(reason.back(), ')') << reason;
    EXPECT_EQ(detail, "");
  }
  EXPECT_TRUE(m.at("retry_url").is_null());  // not failed: nothing to try again
}

INSTANTIATE_TEST_SUITE_P(Hosts, MessagesTable,
                         ::testing::Values(HostVariant{"with_messages3", {}, true},
                                           HostVariant{"without_messages3",
                                                       {"--test-disable-extension", "hdp.messages/3"}},
                                           HostVariant{"without_messages2",
                                                       {"--test-disable-extension", "hdp.messages/2",
                                                        "--test-disable-extension", "hdp.messages/3"}}),
                         [](const ::testing::TestParamInfo<HostVariant>& info) { return info.param.name; });

}  // namespace
