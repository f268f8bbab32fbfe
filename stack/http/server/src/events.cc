// Exchange::events — a connection becomes a Server-Sent Events stream (server.h, streams.h).
#include "server_impl.h"

#include <weft/http/streams.h>
#include <weft/platform/error.h>

namespace weft::http {

using platform::platform_errc;

sse::Subscriber* HttpWorker::subscriber_of(void*, platform::Conn& c) noexcept {
  // Only HTTP connections subscribe in the SSE format: the handler is an HttpConn.
  auto* h = static_cast<HttpConn*>(c.handler());
  return h != nullptr && h->streaming() ? &h->subscriber() : nullptr;
}

Result<void> Exchange::events(std::string_view topic) noexcept {
  HttpConn& h = *h_;
  HttpWorker& w = *h.w_;
  sse::Streams* streams = w.streams();
  if (answered_) {
    return fail(http_errc::gone);
  }
  if (streams == nullptr) {
    (void)respond(503, "text/plain", "no event streams\n");
    return fail(http_errc::unavailable);
  }
  if (topic.empty() || topic.size() > 255) {
    (void)respond(400, "text/plain", "bad topic\n");
    return fail(platform_errc::invalid_argument);
  }
  answered_ = true;
  // The head is queued first and the subscription made in the same callback: both happen
  // before any byte leaves, so an event published once the client has the head is never
  // missed, and replayed events follow the head on the wire.
  HeadSpec hs = head_spec(200, "text/event-stream");
  hs.stream = true;
  const std::string_view head = w.head(hs);
  const Result<void> sent =
      head.empty()
          ? fail(platform_errc::no_buffers)
          : conn_->send_copy(std::as_bytes(std::span<const char>(head.data(), head.size())));
  if (!sent) {
    h.state_ = HttpConn::State::closing;
    conn_->abort(sent.error());
    return sent;
  }
  HttpCounters& k = w.counters();
  k.count_status(200);
  k.bytes_out.add(head.size());
  std::string_view last_id;
  if (const Header* l = header("last-event-id")) {
    last_id = l->value;
  }
  h.sub_ = sse::Subscriber{};
  h.state_ = HttpConn::State::streaming;  // the admit hook finds the Subscriber from now on
  auto r = streams->subscribe(*conn_, topic, last_id, h.sub_);
  if (!r) {
    // The head is out: end the (empty) stream; the client retries.
    h.state_ = HttpConn::State::closing;
    conn_->close();
    return fail(r.error());
  }
  w.add_stream(h);
  const ServerConfig& cfg = w.config();
  conn_->set_timeouts({0, 0, cfg.write_timeout_ms});  // a stream is not idle
  return {};
}

void HttpConn::end_stream(platform::Conn& c) noexcept {
  w_->remove_stream(*this);
  if (sse::Streams* s = w_->streams(); s != nullptr && s->hub() != nullptr) {
    (void)s->hub()->closed(c);
  }
}

}  // namespace weft::http
