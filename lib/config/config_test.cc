#include "config/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace mail {
namespace {

namespace fs = std::filesystem;

// A private directory for each test, removed afterwards.
class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "mail-config-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string write(const std::string& text, const std::string& name = "mail.toml") {
    std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  // The error text of loading `text`, with the path shortened to "mail.toml".
  std::string load_error(const std::string& text) {
    std::string path = write(text);
    auto r = load_config(path);
    if (r) return "(loaded)";
    EXPECT_EQ(r.code(), Code::config);
    std::string msg = r.status().message();
    for (size_t pos; (pos = msg.find(path)) != std::string::npos;) {
      msg.replace(pos, path.size(), "mail.toml");
    }
    return msg;
  }

  fs::path dir_;
};

TEST_F(ConfigTest, EmptyPathGivesDefaults) {
  auto c = load_config("");
  ASSERT_TRUE(c) << c.status().to_string();
  EXPECT_EQ(*c, Config{});
  EXPECT_EQ(c->source, "");
  EXPECT_EQ(c->general.log_level, "info");
  EXPECT_EQ(c->smtp.max_recipients, 100u);
  EXPECT_EQ(c->store_socket(), "./data/stored.sock");
  EXPECT_TRUE(validate_config(*c));
}

TEST_F(ConfigTest, EmptyFileGivesDefaults) {
  std::string path = write("# nothing set\n");
  auto c = load_config(path);
  ASSERT_TRUE(c) << c.status().to_string();
  EXPECT_EQ(c->source, path);
  Config expected;
  expected.source = path;
  EXPECT_EQ(*c, expected);
}

TEST_F(ConfigTest, ReadsValues) {
  auto c = load_config(write(R"(
[general]
data_dir = "/var/lib/mail/"
log_level = "debug"
syslog = true

[store]
max_frame_bytes = 1048576

[smtp]
listen_mx = "[::1]:25"
listen_lmtp = "unix:/run/mail/lmtp.sock"
max_recipients = 7
vrfy = true

[imap]
listen = ""
listen_tls = "mail.example.org:993"
)"));
  ASSERT_TRUE(c) << c.status().to_string();
  EXPECT_EQ(c->general.data_dir, "/var/lib/mail/");
  EXPECT_EQ(c->general.log_level, "debug");
  EXPECT_TRUE(c->general.syslog);
  EXPECT_EQ(c->store.max_frame_bytes, 1048576u);
  EXPECT_EQ(c->smtp.listen_mx, "[::1]:25");
  EXPECT_EQ(c->smtp.listen_lmtp, "unix:/run/mail/lmtp.sock");
  EXPECT_EQ(c->smtp.max_recipients, 7u);
  EXPECT_TRUE(c->smtp.vrfy);
  EXPECT_EQ(c->imap.listen, "");
  EXPECT_EQ(c->imap.listen_tls, "mail.example.org:993");
  EXPECT_EQ(c->smtp.max_line_length, 4096u);  // untouched keys keep their defaults
  EXPECT_EQ(c->store_socket(), "/var/lib/mail/stored.sock");
  c->store.socket = "/run/stored.sock";
  EXPECT_EQ(c->store_socket(), "/run/stored.sock");
}

TEST_F(ConfigTest, RenderLoadRoundTrip) {
  Config c;
  c.general.hostname = "mx.example.org";
  c.general.data_dir = "/srv/mail \"quoted\" \\ dir\tx";
  c.general.user = "mail";
  c.general.log_level = "warn";
  c.general.syslog = true;
  c.tls.cert_file = "/etc/mail/cert.pem";
  c.tls.key_file = "/etc/mail/key.pem";
  c.tls.min_version = "1.3";
  c.store.socket = "/run/mail/stored.sock";
  c.store.block_cache_mb = 1024;
  c.store.max_clients = 4000000000u;
  c.store.max_frame_bytes = 9000000000000000000ull;
  c.smtp.listen_mx = "0.0.0.0:25";
  c.smtp.listen_submission = "[2001:db8::1]:587";
  c.smtp.listen_submissions = "";
  c.smtp.listen_lmtp = "127.0.0.1:24";
  c.smtp.max_message_size = 1;
  c.smtp.max_recipients = 1000;
  c.smtp.max_line_length = 998;
  c.smtp.command_timeout_s = 60;
  c.smtp.data_timeout_s = 120;
  c.smtp.max_sessions_per_ip = 5;
  c.smtp.max_unauth_commands = 10;
  c.smtp.max_auth_failures = 1;
  c.smtp.allow_plain_auth_on_loopback = false;
  c.smtp.vrfy = true;
  c.imap.listen = "[::]:143";
  c.imap.listen_tls = "[::]:993";
  c.imap.max_literal = 12345;
  c.imap.max_line_length = 8192;
  c.imap.idle_timeout_s = 3600;
  c.imap.allow_plain_auth_on_loopback = false;
  ASSERT_TRUE(validate_config(c));

  std::string text = render_config(c);
  std::string path = write(text);
  auto back = load_config(path);
  ASSERT_TRUE(back) << back.status().to_string() << "\n" << text;
  c.source = path;
  EXPECT_EQ(*back, c) << text;

  // Rendering again gives the same text (apart from the source line).
  EXPECT_EQ(render_config(*back).substr(render_config(*back).find('\n')),
            text.substr(text.find('\n')));
}

TEST_F(ConfigTest, RenderShowsHelpAndDefaults) {
  Config c;
  c.smtp.max_recipients = 5;
  std::string text = render_config(c);
  EXPECT_NE(text.find("[smtp]\n"), std::string::npos);
  EXPECT_NE(text.find("# Most recipients of one message.\nmax_recipients = 5\n"), std::string::npos)
      << text;
  std::string defaults = render_config(c, true);
  EXPECT_NE(defaults.find("\nmax_recipients = 100\n"), std::string::npos);
  // Every key line has a comment line above it.
  std::istringstream lines(defaults);
  std::string line, prev;
  int keys = 0;
  while (std::getline(lines, line)) {
    if (line.find(" = ") != std::string::npos) {
      ++keys;
      EXPECT_EQ(prev.rfind("# ", 0), 0u) << line;
    }
    prev = line;
  }
  EXPECT_GE(keys, 32);
  // The rendered defaults load back to the defaults.
  auto back = load_config(write(defaults));
  ASSERT_TRUE(back) << back.status().to_string();
  back->source.clear();
  EXPECT_EQ(*back, Config{});
}

TEST_F(ConfigTest, UnknownKeysAndSections) {
  EXPECT_EQ(load_error("[smtp]\nmax_recipients = 5\nmax_recipient = 5\n"),
            "mail.toml:3:1: smtp.max_recipient: unknown key");
  EXPECT_EQ(load_error("\n[smtpd]\nx = 1\n"), "mail.toml:2:2: smtpd: unknown section");
  EXPECT_EQ(load_error("hostname = \"a\"\n"), "mail.toml:1:1: hostname: unknown section");
  EXPECT_EQ(load_error("[smtp.limits]\nx = 1\n"), "mail.toml:1:7: smtp.limits: unknown key");
  EXPECT_EQ(load_error("smtp = 3\n"), "mail.toml:1:8: smtp: expected a table ([smtp])");
}

TEST_F(ConfigTest, WrongTypes) {
  EXPECT_EQ(load_error("[smtp]\n\nmax_recipients = \"many\"\n"),
            "mail.toml:3:18: smtp.max_recipients: expected an integer");
  EXPECT_EQ(load_error("[smtp]\nmax_recipients = 1.5\n"),
            "mail.toml:2:18: smtp.max_recipients: expected an integer");
  EXPECT_EQ(load_error("[general]\nsyslog = \"yes\"\n"),
            "mail.toml:2:10: general.syslog: expected true or false");
  EXPECT_EQ(load_error("[general]\nhostname = 5\n"),
            "mail.toml:2:12: general.hostname: expected a string");
  EXPECT_EQ(load_error("[general]\nuser = [\"a\"]\n"),
            "mail.toml:2:8: general.user: expected a string");
  EXPECT_EQ(load_error("[smtp]\nmax_recipients = -1\n"),
            "mail.toml:2:18: smtp.max_recipients: expected an integer from 0 to 4294967295");
  EXPECT_EQ(load_error("[smtp]\nmax_recipients = 4294967296\n"),
            "mail.toml:2:18: smtp.max_recipients: expected an integer from 0 to 4294967295");
  EXPECT_EQ(load_error("[smtp]\nmax_message_size = -5\n"),
            "mail.toml:2:20: smtp.max_message_size: expected an integer from 0 to "
            "9223372036854775807");
}

TEST_F(ConfigTest, ParseErrorsHaveALine) {
  std::string e = load_error("[general]\nlog_level = \"info\"\n[smtp\n");
  EXPECT_EQ(e.rfind("mail.toml:3:", 0), 0u) << e;
  e = load_error("[general]\nlog_level = \"info\nsyslog = true\n");
  EXPECT_EQ(e.rfind("mail.toml:2:", 0), 0u) << e;
  e = load_error("[general]\nsyslog = true\nsyslog = false\n");
  EXPECT_EQ(e.rfind("mail.toml:3:", 0), 0u) << e;
}

TEST_F(ConfigTest, InvalidValues) {
  EXPECT_EQ(load_error("[general]\nlog_level = \"loud\"\n"),
            "mail.toml:2:13: general.log_level: expected one of debug, info, warn, error "
            "(got \"loud\")");
  EXPECT_EQ(load_error("[tls]\nmin_version = \"1.1\"\n"),
            "mail.toml:2:15: tls.min_version: expected \"1.2\" or \"1.3\" (got \"1.1\")");
  EXPECT_EQ(load_error("[general]\ndata_dir = \"\"\n"),
            "mail.toml:2:12: general.data_dir: must not be empty");
  EXPECT_EQ(load_error("[store]\nblock_cache_mb = 0\n"),
            "mail.toml:2:18: store.block_cache_mb: expected a number greater than 0");
  EXPECT_EQ(load_error("[smtp]\nmax_message_size = 0\n"),
            "mail.toml:2:20: smtp.max_message_size: expected a number greater than 0");
  EXPECT_EQ(load_error("[tls]\ncert_file = \"/c.pem\"\n"),
            "mail.toml:2:13: tls.cert_file: set tls.key_file too, or neither");
  EXPECT_EQ(load_error("[tls]\nkey_file = \"/k.pem\"\n"),
            "mail.toml:2:12: tls.key_file: set tls.cert_file too, or neither");
}

TEST_F(ConfigTest, ListenAddresses) {
  auto listen_error = [&](const std::string& key, const std::string& value) {
    return load_error("[smtp]\n" + key + " = \"" + value + "\"\n");
  };
  for (const char* ok :
       {"", "127.0.0.1:25", "[::1]:25", "[::]:1", "mx.example.org:65535", "localhost:2525"}) {
    EXPECT_EQ(listen_error("listen_mx", ok), "(loaded)") << ok;
    EXPECT_EQ(listen_error("listen_lmtp", ok), "(loaded)") << ok;
  }
  EXPECT_EQ(listen_error("listen_lmtp", "unix:/run/lmtp.sock"), "(loaded)");

  const std::string mx =
      "mail.toml:2:13: smtp.listen_mx: expected host:port, [ipv6]:port or \"\" "
      "for off (got ";
  EXPECT_EQ(listen_error("listen_mx", "127.0.0.1"), mx + "\"127.0.0.1\": missing :port)");
  EXPECT_EQ(listen_error("listen_mx", "127.0.0.1:0"),
            mx + "\"127.0.0.1:0\": the port must be a number from 1 to 65535)");
  EXPECT_EQ(listen_error("listen_mx", "127.0.0.1:65536"),
            mx + "\"127.0.0.1:65536\": the port must be a number from 1 to 65535)");
  EXPECT_EQ(listen_error("listen_mx", "127.0.0.1:+25"),
            mx + "\"127.0.0.1:+25\": the port must be a number from 1 to 65535)");
  EXPECT_EQ(listen_error("listen_mx", ":25"), mx + "\":25\": missing host)");
  EXPECT_EQ(listen_error("listen_mx", "::1:25"),
            mx + "\"::1:25\": an IPv6 address goes in brackets, [::1]:25)");
  EXPECT_EQ(listen_error("listen_mx", "[::g]:25"), mx + "\"[::g]:25\": not an IPv6 address: ::g)");
  EXPECT_EQ(listen_error("listen_mx", "[::1]"), mx + "\"[::1]\": expected [ipv6]:port)");
  EXPECT_EQ(listen_error("listen_mx", "a b:25"),
            mx + "\"a b:25\": not a host name or IPv4 address: a b)");
  EXPECT_EQ(listen_error("listen_mx", "unix:/run/x.sock"),
            mx + "\"unix:/run/x.sock\": the port must be a number from 1 to 65535)");

  const std::string lmtp =
      "mail.toml:2:15: smtp.listen_lmtp: expected unix:/path, host:port, "
      "[ipv6]:port or \"\" for off (got ";
  EXPECT_EQ(listen_error("listen_lmtp", "unix:run/x.sock"),
            lmtp + "\"unix:run/x.sock\": the socket path must be absolute)");
  EXPECT_EQ(listen_error("listen_lmtp", "unix:/" + std::string(200, 'x')).find(lmtp), 0u);
  EXPECT_EQ(load_error("[imap]\nlisten_tls = \"993\"\n"),
            "mail.toml:2:14: imap.listen_tls: expected host:port, [ipv6]:port or \"\" for off "
            "(got \"993\": missing :port)");
}

TEST_F(ConfigTest, EveryErrorIsReportedInFileOrder) {
  EXPECT_EQ(load_error("[smtp]\nvrfy = 1\nzzz = 2\n[general]\nlog_level = \"x\"\n[aaa]\n"),
            "mail.toml:2:8: smtp.vrfy: expected true or false\n"
            "mail.toml:3:1: smtp.zzz: unknown key\n"
            "mail.toml:5:13: general.log_level: expected one of debug, info, warn, error "
            "(got \"x\")\n"
            "mail.toml:6:2: aaa: unknown section");
}

TEST_F(ConfigTest, MissingFile) {
  auto r = load_config((dir_ / "nope.toml").string());
  EXPECT_EQ(r.code(), Code::config);
  EXPECT_NE(r.status().message().find("nope.toml: cannot read"), std::string::npos);
}

TEST_F(ConfigTest, ValidateInMemory) {
  Config c;
  c.general.log_level = "verbose";
  c.smtp.listen_mx = "localhost";
  c.imap.max_literal = 0;
  auto st = validate_config(c);
  EXPECT_EQ(st.code(), Code::config);
  EXPECT_EQ(st.message(),
            "general.log_level: expected one of debug, info, warn, error (got \"verbose\")\n"
            "smtp.listen_mx: expected host:port, [ipv6]:port or \"\" for off (got \"localhost\": "
            "missing :port)\n"
            "imap.max_literal: expected a number greater than 0");
}

TEST_F(ConfigTest, ServicesTable) {
  auto r = load_config(write(
      "[services.smtpd]\nprocesses = 3\n"
      "[services.imapd]\nenabled = false\n"
      "[services.filter]\nprogram = \"/usr/local/bin/filter\"\nargs = [\"-v\"]\n"
      "listen = [\"filter=127.0.0.1:10025\", \"ctl=unix:/run/filter.sock\"]\nuser = \"nobody\"\nnotify = false\n"));
  ASSERT_TRUE(r) << r.status().message();
  EXPECT_EQ(r->services.at("smtpd").processes, 3u);
  EXPECT_EQ(r->services.at("smtpd").program, "mail-smtpd");  // the rest of a built-in stays
  EXPECT_FALSE(r->services.at("imapd").enabled);
  const ServiceConfig& f = r->services.at("filter");
  EXPECT_EQ(f.program, "/usr/local/bin/filter");
  EXPECT_EQ(f.args, std::vector<std::string>{"-v"});
  EXPECT_EQ(f.listen.size(), 2u);
  EXPECT_EQ(f.user, "nobody");
  EXPECT_FALSE(f.notify);
  EXPECT_EQ(r->services.count("store"), 1u);
  // What config show prints reads back to the same services.
  auto again = load_config(write(render_config(*r), "again.toml"));
  ASSERT_TRUE(again) << again.status().message();
  EXPECT_EQ(again->services, r->services);
}

TEST_F(ConfigTest, ServicesTableErrors) {
  EXPECT_EQ(load_error("[services.mine]\nargs = []\n"),
            "mail.toml:1:11: services.mine: program is required for a service that is not built in");
  EXPECT_EQ(load_error("[services.store]\nprocesses = 2\n"),
            "mail.toml:1:11: services.store: the store runs as one process (processes = 1)");
  EXPECT_EQ(load_error("[services.smtpd]\nprocesses = 0\n"),
            "mail.toml:2:13: services.smtpd.processes: expected an integer from 1 to 64");
  EXPECT_EQ(load_error("[services.smtpd]\nlisten = [\"127.0.0.1:25\"]\n"),
            "mail.toml:1:11: services.smtpd: listen: expected NAME=ADDRESS (got \"127.0.0.1:25\")");
  EXPECT_EQ(load_error("[services.smtpd]\ncolour = 1\n"),
            "mail.toml:2:10: services.smtpd.colour: unknown key (program, args, listen, processes, user, enabled, notify)");
  EXPECT_EQ(load_error("[services.Bad]\nprogram = \"x\"\n"),
            "mail.toml:1:11: services.Bad: a service name is 1 to 32 of a-z, 0-9, '-' and '_'");
  EXPECT_EQ(load_error("services = 1\n"), "mail.toml:1:12: services: expected tables ([services.NAME])");
}

TEST_F(ConfigTest, DefaultConfigPath) {
  const char* old_env = std::getenv("MAIL_CONFIG");
  std::string saved_env = old_env ? old_env : "";
  fs::path old_cwd = fs::current_path();

  fs::current_path(dir_);
  unsetenv("MAIL_CONFIG");
  EXPECT_EQ(default_config_path(), "");
  write("", "mail.toml");
  EXPECT_EQ(default_config_path(), "mail.toml");
  setenv("MAIL_CONFIG", "/etc/mail/mail.toml", 1);
  EXPECT_EQ(default_config_path(), "/etc/mail/mail.toml");

  fs::current_path(old_cwd);
  if (old_env) {
    setenv("MAIL_CONFIG", saved_env.c_str(), 1);
  } else {
    unsetenv("MAIL_CONFIG");
  }
}

}  // namespace
}  // namespace mail
