#include "exporters/alertmanager.h"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <charconv>

#include "exporters/json.h"

namespace portsentinel::exporters {
namespace {

using namespace boost::asio::experimental::awaitable_operators;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto no_throw = asio::as_tuple(asio::use_awaitable);
constexpr std::chrono::milliseconds kFirstBackoff{500};
constexpr std::chrono::milliseconds kMaxBackoff{30000};
constexpr std::chrono::seconds kSendTimeout{5};

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Url {
  std::string host;
  uint16_t port = 80;
  std::string prefix;  // path before /api/v2/alerts, without trailing slash
};

// "http://host:port/prefix". The config validated the scheme.
Url parse_url(const std::string& url) {
  Url u;
  std::string rest = url.substr(url.find("://") + 3);
  const auto slash = rest.find('/');
  if (slash != std::string::npos) {
    u.prefix = rest.substr(slash);
    while (!u.prefix.empty() && u.prefix.back() == '/') {
      u.prefix.pop_back();
    }
    rest = rest.substr(0, slash);
  }
  const auto colon = rest.rfind(':');
  if (colon != std::string::npos && rest.find(']', colon) == std::string::npos) {
    unsigned port = 80;
    std::from_chars(rest.data() + colon + 1, rest.data() + rest.size(), port);
    u.port = static_cast<uint16_t>(port);
    rest = rest.substr(0, colon);
  }
  if (rest.size() > 2 && rest.front() == '[') {
    rest = rest.substr(1, rest.size() - 2);
  }
  u.host = rest;
  return u;
}

std::string object(const std::map<std::string, std::string>& m) {
  std::string out = "{";
  for (const auto& [k, v] : m) {
    out += (out.size() > 1 ? "," : "") + json_quote(k) + ":" + json_quote(v);
  }
  return out + "}";
}

}  // namespace

std::string Alert::key() const {
  std::string k;
  for (const auto& [name, value] : labels) {
    k += name + "=" + value + "\n";
  }
  return k;
}

struct AlertmanagerClient::Sender {
  Sender(asio::io_context& io, std::string u) : url(std::move(u)), wake(io) {}
  std::string url;
  asio::steady_timer wake;
  bool dirty = true;  // something to send now (not only at the next resend)
  bool stopped = false;
  bool started = false;
  asio::cancellation_signal cancel;  // ends a push in flight at stop
  std::deque<std::pair<Alert, double>> resolved;  // alert, when it resolved
  prometheus::Counter* failures = nullptr;
  prometheus::Counter* dropped = nullptr;
};

AlertmanagerClient::AlertmanagerClient(asio::io_context& io, Metrics& metrics,
                                       probes::Resolver& resolver)
    : io_(io), metrics_(metrics), resolver_(resolver) {}

AlertmanagerClient::~AlertmanagerClient() { stop(); }

void AlertmanagerClient::stop() {
  for (auto& s : senders_) {
    s->stopped = true;
    s->wake.cancel();
    if (s->started) {  // see Scheduler::cancel: never emit into a sender that has not run
      asio::dispatch(io_, [s] { s->cancel.emit(asio::cancellation_type::terminal); });
    }
  }
  senders_.clear();
}

void AlertmanagerClient::configure(const std::vector<std::string>& urls,
                                   std::chrono::milliseconds resend, std::string generator_url) {
  stop();
  resend_ = resend;
  generator_url_ = std::move(generator_url);
  for (const auto& url : urls) {
    auto s = std::make_shared<Sender>(io_, url);
    s->failures = &metrics_.alerting().send_failures.Add({{"url", url}});
    s->dropped = &metrics_.alerting().dropped.Add({{"url", url}});
    senders_.push_back(s);
    asio::co_spawn(io_, run(s),
                   asio::bind_cancellation_slot(s->cancel.slot(), [](std::exception_ptr) {}));
  }
}

void AlertmanagerClient::wake_all() {
  for (auto& s : senders_) {
    s->dirty = true;
    s->wake.cancel();
  }
}

void AlertmanagerClient::fire(const Alert& alert) {
  auto [it, fresh] = firing_.try_emplace(alert.key(), alert);
  if (!fresh) {
    it->second.annotations = alert.annotations;  // keep startsAt, refresh the evidence
    return;
  }
  wake_all();
}

void AlertmanagerClient::resolve(const Alert& alert, double at) {
  auto it = firing_.find(alert.key());
  if (it == firing_.end()) {
    return;  // never fired (e.g. under the hysteresis threshold): nothing to resolve
  }
  for (auto& s : senders_) {
    s->resolved.emplace_back(it->second, at);
    if (s->resolved.size() > kMaxPendingResolved) {
      s->resolved.pop_front();
      s->dropped->Increment();
    }
  }
  firing_.erase(it);
  wake_all();
}

std::string AlertmanagerClient::body(const Sender& s, double now) const {
  // endsAt a few resend intervals ahead: Alertmanager resolves a firing alert by itself only
  // if we stop sending it (we crashed), not between two resends.
  const double ends = now + 4 * std::chrono::duration<double>(resend_).count();
  std::string out = "[";
  auto add = [&](const Alert& a, double ends_at) {
    out += (out.size() > 1 ? "," : "") + std::string("{\"labels\":") + object(a.labels) +
           ",\"annotations\":" + object(a.annotations) +
           ",\"startsAt\":" + json_quote(rfc3339(a.starts_at)) +
           ",\"endsAt\":" + json_quote(rfc3339(ends_at)) +
           ",\"generatorURL\":" + json_quote(generator_url_) + "}";
  };
  for (const auto& [key, a] : firing_) {
    add(a, ends);
  }
  for (const auto& [a, at] : s.resolved) {
    add(a, at);
  }
  return out + "]";
}

asio::awaitable<void> AlertmanagerClient::run(std::shared_ptr<Sender> s) {
  s->started = true;
  const Url url = parse_url(s->url);
  auto backoff = kFirstBackoff;
  auto next = Clock::now();
  while (!s->stopped) {
    if (!s->dirty) {
      s->wake.expires_at(next);
      co_await s->wake.async_wait(no_throw);  // cancelled by fire()/resolve(): send now
      if (s->stopped) {
        break;
      }
    }
    s->dirty = false;
    const size_t resolved_in_batch = s->resolved.size();
    if (firing_.empty() && resolved_in_batch == 0) {
      next = Clock::now() + resend_;
      continue;
    }
    const std::string payload = body(*s, unix_now());
    const std::string request = "POST " + url.prefix + "/api/v2/alerts HTTP/1.1\r\nHost: " +
                                url.host + "\r\nContent-Type: application/json\r\n"
                                "User-Agent: portsentinel\r\nContent-Length: " +
                                std::to_string(payload.size()) +
                                "\r\nConnection: close\r\n\r\n" + payload;
    asio::steady_timer deadline(io_, kSendTimeout);
    int status = 0;
    auto resolved = co_await (resolver_.resolve(url.host, url.port) ||
                              deadline.async_wait(no_throw));
    if (resolved.index() == 0 && !std::get<0>(std::get<0>(resolved))) {
      tcp::socket socket(io_);
      auto connected = co_await (
          asio::async_connect(socket, std::get<1>(std::get<0>(resolved)), no_throw) ||
          deadline.async_wait(no_throw));
      if (connected.index() == 0 && !std::get<0>(std::get<0>(connected))) {
        auto written = co_await (asio::async_write(socket, asio::buffer(request), no_throw) ||
                                 deadline.async_wait(no_throw));
        std::string response;
        if (written.index() == 0 && !std::get<0>(std::get<0>(written))) {
          auto read = co_await (asio::async_read(socket, asio::dynamic_buffer(response, 4096),
                                                 no_throw) ||
                                deadline.async_wait(no_throw));
          (void)read;  // EOF ends the read; the status line is all we need
        }
        if (response.rfind("HTTP/1.", 0) == 0 && response.size() >= 12) {
          std::from_chars(response.data() + 9, response.data() + 12, status);
        }
      }
    }
    if (s->stopped) {
      break;
    }
    if (status >= 200 && status < 300) {
      // Delivered: the resolved ones in this batch are done (newer ones stay queued).
      s->resolved.erase(s->resolved.begin(),
                        s->resolved.begin() +
                            static_cast<long>(std::min(resolved_in_batch, s->resolved.size())));
      backoff = kFirstBackoff;
      next = Clock::now() + resend_;
    } else {
      s->failures->Increment();
      s->dirty = false;
      next = Clock::now() + backoff;
      backoff = std::min(backoff * 2, kMaxBackoff);
    }
  }
}

}  // namespace portsentinel::exporters
