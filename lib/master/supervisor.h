// The supervisor (mail-master): runs the stack's daemons from one table of
// services, Postfix master(8) style. It opens every listening socket itself and
// hands them to the children the systemd way (LISTEN_FDS/LISTEN_FDNAMES), starts
// the store daemon first and waits for it, restarts crashed children with
// exponential backoff (throttling a service that crashes in a loop), reloads on
// SIGHUP without closing sockets, drains on SIGTERM (store last), collects the
// children's log lines tagged with service and pid, and answers a control
// socket (mailctl start|stop|restart|reload|status|logs).
#pragma once

#include <string>
#include <vector>

#include "config/config.h"

namespace mail::master {

struct ListenSpec {
  std::string name;     // the LISTEN_FDNAMES name the daemon looks for ("mx", "imap", ...)
  std::string address;  // host:port, [v6]:port or unix:/path
  bool operator==(const ListenSpec&) const = default;
};

struct ServiceSpec {
  std::string name;                 // "store", "smtpd", "imapd", or the admin's own
  std::string program;              // executable; relative: next to mail-master
  std::vector<std::string> args;    // extra arguments
  std::vector<ListenSpec> listen;
  uint32_t processes = 1;
  std::string user;                 // empty: the daemon drops to general.user itself
  bool notify = true;               // ready on READY=1, not when forked
  bool is_store = false;            // started first, stopped last, waited for
  bool operator==(const ServiceSpec&) const = default;
};

// The stack's services for a configuration ([services.NAME] over the built-in
// defaults): the store first, then the others by name; a built-in daemon
// without its own `listen` gets the listeners its protocol section configures.
// Disabled services, and built-in programs that are not installed, are left out.
std::vector<ServiceSpec> services_for(const Config& config, const std::string& bin_dir);

struct MasterOptions {
  std::string config_path;   // re-read on SIGHUP
  std::string data_dir;      // overrides general.data_dir
  std::string bin_dir;       // where the daemons are
  uint32_t drain_seconds = 10;
  uint32_t ready_timeout_seconds = 30;  // a notify service not ready by then is killed (and restarted)
};

// Runs until SIGTERM/SIGINT or a "stop" on the control socket. Returns the exit code.
int run_supervisor(const MasterOptions& options);

// Path of the control socket under a data directory.
std::string control_socket_path(const std::string& data_dir);

}  // namespace mail::master
