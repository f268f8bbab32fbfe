// weft::http::Server over loopback, both backends: keep-alive, pipelining, bodies both
// ways, limits with their statuses, router, deferred responses, CORS, overload.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>

#include <weft/http/server.h>
#include <weft/platform/loop.h>

#include "http_server_test.h"

namespace weft::test {
namespace {

using http::Exchange;
using http::Method;

void plaintext(void*, Exchange& ex) noexcept {
  (void)ex.respond_static(200, "text/plain", "Hello, World!");
}

void echo(void*, Exchange& ex) noexcept {
  (void)ex.respond(200, "application/octet-stream", ex.body());
}

void job(void*, Exchange& ex) noexcept {
  std::string s = "job " + std::string(ex.param("id"));
  if (auto q = ex.query().find("x")) {
    s += " x=" + std::string(*q);
  }
  (void)ex.respond(200, "text/plain", s);
}

void chunks(void*, Exchange& ex) noexcept {
  const std::string_view pieces[] = {"Hello, ", "", "chunked ", "World!"};
  (void)ex.respond_chunked(200, "text/plain", pieces);
}

// Deferred responses: answered from a timer on the same worker, or from another worker.
struct Later {
  platform::TimerNode timer;
  http::Deferred d;
  platform::Loop* loop = nullptr;
  std::atomic<int> answered{0};
  std::atomic<int> gone{0};
  static void fire(platform::TimerNode* n) noexcept {
    auto* l = static_cast<Later*>(n->ctx);
    const Result<void> r = http::respond(*l->loop, l->d, 200, "text/plain", "later");
    (r ? l->answered : l->gone).fetch_add(1);
  }
};
Later g_later;

void later(void*, Exchange& ex) noexcept {
  g_later.d = ex.defer();
  g_later.loop = &ex.loop();
  g_later.timer.fn = &Later::fire;
  g_later.timer.ctx = &g_later;
  const auto ms = static_cast<std::uint64_t>(std::atoi(std::string(ex.param("ms")).c_str()));
  ex.loop().timers().schedule(g_later.timer, ex.loop().now_ms() + ms);
}

// Answered by worker (index + 1) % n: a post carries the Deferred there.
http::Deferred g_far;
std::atomic<int> g_far_result{-1};
void far(void*, Exchange& ex) noexcept {
  g_far = ex.defer();
  platform::Loop& here = ex.loop();
  platform::Post p;
  p.fn = [](platform::Loop& there, const platform::Post&) noexcept {
    const Result<void> r = http::respond(there, g_far, 201, "text/plain", "from afar");
    g_far_result = r ? 1 : 0;
  };
  if (!here.post((here.index() + 1) % here.worker_count(), p)) {
    (void)http::respond(here, g_far, 500, "text/plain", "post failed");
  }
}

http::ServerConfig routes(http::ServerConfig sc) {
  sc.setup = [](http::Router& r, platform::Loop&) {
    ASSERT_TRUE(r.add(Method::get, "/plaintext", &plaintext, nullptr));
    ASSERT_TRUE(r.add(Method::post, "/echo", &echo, nullptr));
    ASSERT_TRUE(r.add(Method::post, "/small", &echo, nullptr, {.max_body = 16}));
    ASSERT_TRUE(r.add(Method::get, "/jobs/{id}", &job, nullptr));
    ASSERT_TRUE(r.add(Method::delete_, "/jobs/{id}", &job, nullptr));
    ASSERT_TRUE(r.add(Method::get, "/later/{ms}", &later, nullptr));
    ASSERT_TRUE(r.add(Method::get, "/far", &far, nullptr));
    ASSERT_TRUE(r.add(Method::get, "/chunks", &chunks, nullptr));
  };
  return sc;
}

class HttpServer : public HttpServerTest {};

TEST_P(HttpServer, KeepAliveServesManyRequestsOnOneConnection) {
  start(routes(server_config()));
  auto c = client();
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(c->send("GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n"));
    auto r = c->read();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "Hello, World!");
    EXPECT_EQ(r->header("Content-Length"), "13");
    EXPECT_EQ(r->header("Content-Type"), "text/plain");
    EXPECT_TRUE(r->header("Date").has_value());
    EXPECT_FALSE(r->header("Connection").has_value());
  }
  EXPECT_EQ(server_->stats().requests, 5u);
}

TEST_P(HttpServer, PipelinedRequestsAreAnsweredInOrder) {
  start(routes(server_config()));
  auto c = client();
  std::string batch;
  for (int i = 0; i < 20; ++i) {
    batch += "GET /jobs/" + std::to_string(i) + " HTTP/1.1\r\nHost: a\r\n\r\n";
  }
  ASSERT_TRUE(c->send(batch));
  for (int i = 0; i < 20; ++i) {
    auto r = c->read();
    ASSERT_TRUE(r.has_value()) << i;
    EXPECT_EQ(r->body, "job " + std::to_string(i));
  }
}

TEST_P(HttpServer, BodiesByLengthAndChunkedAtEverySplit) {
  start(routes(server_config()));
  const std::string body(3000, 'x');
  const std::string by_length =
      "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3000\r\n\r\n" + body;
  const std::string chunked =
      "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3e8;ext=1\r\n" +
      body.substr(0, 1000) + "\r\n7d0\r\n" + body.substr(1000) + "\r\n0\r\nTrailer: x\r\n\r\n";
  for (const std::string& req : {by_length, chunked}) {
    for (std::size_t split :
         {std::size_t{1}, std::size_t{17}, std::size_t{60}, req.size() / 2, req.size() - 1}) {
      auto c = client();
      ASSERT_TRUE(c->send(req.substr(0, split)));
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      ASSERT_TRUE(c->send(req.substr(split)));
      auto r = c->read();
      ASSERT_TRUE(r.has_value()) << split;
      EXPECT_EQ(r->status, 200);
      EXPECT_EQ(r->body, body) << "split " << split;
    }
  }
}

TEST_P(HttpServer, ChunkedResponsesAndTheirHttp10Form) {
  start(routes(server_config()));
  auto c = client();
  ASSERT_TRUE(
      c->send("GET /chunks HTTP/1.1\r\nHost: a\r\n\r\n"
              "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n"));
  ASSERT_TRUE(c->read_until("0\r\n\r\n"));
  const std::string wire = c->buffered().substr(0, c->buffered().find("0\r\n\r\n") + 5);
  c->buffered().erase(0, wire.size());
  EXPECT_NE(wire.find("Transfer-Encoding: chunked\r\n"), std::string::npos) << wire;
  EXPECT_EQ(wire.find("Content-Length"), std::string::npos) << wire;
  EXPECT_NE(wire.find("\r\n\r\n7\r\nHello, \r\n8\r\nchunked \r\n6\r\nWorld!\r\n0\r\n\r\n"),
            std::string::npos)
      << wire;
  auto next = c->read();  // keep-alive: the next response follows the last chunk
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->body, "Hello, World!");
  // HTTP/1.0: no chunked coding; the body ends at the close.
  auto old = once("GET /chunks HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(old.has_value());
  EXPECT_FALSE(old->header("Transfer-Encoding").has_value());
  EXPECT_EQ(old->body, "Hello, chunked World!");
}

TEST_P(HttpServer, ExpectContinueGets100BeforeTheBody) {
  start(routes(server_config()));
  auto c = client();
  ASSERT_TRUE(c->send(
      "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
  auto cont = c->read();
  ASSERT_TRUE(cont.has_value());
  EXPECT_EQ(cont->status, 100);
  ASSERT_TRUE(c->send("hello"));
  auto r = c->read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->body, "hello");
  // Too large for the route: the final status instead of 100, and the body is never read.
  auto big = once(
      "POST /small HTTP/1.1\r\nHost: a\r\nContent-Length: 17\r\n"
      "Expect: 100-continue\r\n\r\n");
  ASSERT_TRUE(big.has_value());
  EXPECT_EQ(big->status, 413);
}

TEST_P(HttpServer, HeadHasTheLengthButNoBody) {
  start(routes(server_config()));
  auto c = client();
  ASSERT_TRUE(
      c->send("HEAD /plaintext HTTP/1.1\r\nHost: a\r\n\r\n"
              "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n"));
  auto h = c->read(true);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(h->header("Content-Length"), "13");
  auto g = c->read();  // the next response starts right after the head: no body between
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(g->body, "Hello, World!");
}

TEST_P(HttpServer, RouterAnswers404And405WithAllow) {
  start(routes(server_config()));
  auto c = client();
  ASSERT_TRUE(
      c->send("GET /nope HTTP/1.1\r\nHost: a\r\n\r\n"
              "PUT /jobs/7 HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"
              "GET /jobs/7?x=1&y HTTP/1.1\r\nHost: a\r\n\r\n"));
  auto a = c->read();
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->status, 404);
  auto b = c->read();
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->status, 405);
  EXPECT_EQ(b->header("Allow"), "GET, HEAD, DELETE");
  auto d = c->read();  // errors of the router keep the connection
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->body, "job 7 x=1");
}

TEST_P(HttpServer, MalformedRequestsGetTheirStatusAndClose) {
  http::ServerConfig sc = routes(server_config());
  sc.parser.max_request_line = 64;
  sc.parser.max_header_bytes = 256;
  sc.parser.max_headers = 4;
  start(std::move(sc));
  const struct {
    std::string request;
    int status;
  } table[] = {
      {"GET /plaintext HTTP/1.1\r\n\r\n", 400},                                 // no Host
      {"GET /plaintext HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400},           // obs-fold
      {"GET /plaintext HTTP/1.1\r\nHost: a\rX: y\r\n\r\n", 400},                // bare CR
      {"GET /plaintext HTTP/1.1\r\nHo st: a\r\n\r\n", 400},                     // bad name
      {std::string("GET /plaintext HTTP/1.1\r\nHost: a\0b\r\n\r\n", 39), 400},  // NUL
      {"GET /plaintext\r\n\r\n", 400},                                          // HTTP/0.9
      {"GET /plaintext HTTP/2.0\r\nHost: a\r\n\r\n", 505},
      {"BREW /pot HTTP/1.1\r\nHost: a\r\n\r\n", 501},
      {"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc", 400},
      {"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
       400},
      {"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400},
      {"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
      {"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
      {"GET /" + std::string(100, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n", 414},
      {"GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(300, 'v') + "\r\n\r\n", 431},
      {"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\n\r\n", 431},
      {"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999\r\n\r\n", 413},
  };
  for (const auto& t : table) {
    auto c = client();
    // The bad request, then a good one the server must not read.
    ASSERT_TRUE(c->send(t.request + "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n"));
    auto r = c->read();
    ASSERT_TRUE(r.has_value()) << t.request;
    EXPECT_EQ(r->status, t.status) << t.request;
    EXPECT_EQ(r->header("Connection"), "close") << t.request;
    EXPECT_TRUE(c->closed()) << t.request;
    EXPECT_TRUE(c->buffered().empty()) << "answered a request after a bad one: " << t.request;
    // ... and the worker serves a fresh client.
    auto ok = once("GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n");
    ASSERT_TRUE(ok.has_value());
    EXPECT_EQ(ok->status, 200);
  }
}

TEST_P(HttpServer, ChunkedBodyIsCutOffAtTheRouteLimit) {
  start(routes(server_config()));
  auto c = client();
  ASSERT_TRUE(
      c->send("POST /small HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
              "10\r\n0123456789abcdef\r\n1\r\nX\r\n0\r\n\r\n"));
  auto r = c->read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 413);
  EXPECT_TRUE(c->closed());
  EXPECT_EQ(server_->stats().status_413, 1u);
}

TEST_P(HttpServer, SlowlorisGets408AtTheHeaderTimeout) {
  http::ServerConfig sc = routes(server_config());
  sc.header_timeout_ms = 300;
  start(std::move(sc));
  auto c = client();
  ASSERT_TRUE(c->send("GET /plaintext HTTP/1.1\r\nHost: a\r\n"));
  const auto t0 = std::chrono::steady_clock::now();
  auto r = c->read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 408);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(200));
  EXPECT_TRUE(c->closed());
  // A connection that sends nothing is not a slow head: it is idle.
  auto idle = client();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_TRUE(idle->send("GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n"));
  auto ok = idle->read();
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->status, 200);
}

TEST_P(HttpServer, IdleKeepAliveIsClosed) {
  http::ServerConfig sc = routes(server_config());
  sc.idle_timeout_ms = 200;
  start(std::move(sc));
  auto c = client();
  ASSERT_TRUE(c->send("GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n"));
  ASSERT_TRUE(c->read().has_value());
  EXPECT_TRUE(c->closed(3000));
}

TEST_P(HttpServer, ConnectionCloseAndHttp10) {
  start(routes(server_config()));
  {
    auto c = client();
    ASSERT_TRUE(c->send("GET /plaintext HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"));
    auto r = c->read();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->header("Connection"), "close");
    EXPECT_TRUE(c->closed());
  }
  {
    auto c = client();
    ASSERT_TRUE(c->send("GET /plaintext HTTP/1.0\r\n\r\n"));
    auto r = c->read();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 200);
    EXPECT_TRUE(c->closed());
  }
  {
    auto c = client();
    ASSERT_TRUE(c->send("GET /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    auto r = c->read();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->header("Connection"), "keep-alive");
    ASSERT_TRUE(c->send("GET /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    EXPECT_TRUE(c->read().has_value());
  }
}

TEST_P(HttpServer, RequestsPerConnectionAreLimited) {
  http::ServerConfig sc = routes(server_config());
  sc.max_requests_per_connection = 3;
  start(std::move(sc));
  auto c = client();
  std::string batch;
  for (int i = 0; i < 5; ++i) {
    batch += "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n";
  }
  ASSERT_TRUE(c->send(batch));
  for (int i = 0; i < 3; ++i) {
    auto r = c->read();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->header("Connection").has_value(), i == 2);
  }
  EXPECT_TRUE(c->closed());
  EXPECT_TRUE(c->buffered().empty());
}

TEST_P(HttpServer, DeferredResponseKeepsPipelinedOrder) {
  start(routes(server_config()));
  auto c = client();
  ASSERT_TRUE(
      c->send("GET /later/100 HTTP/1.1\r\nHost: a\r\n\r\n"
              "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n"));
  auto a = c->read();
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->body, "later");
  auto b = c->read();
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->body, "Hello, World!");
  EXPECT_EQ(server_->stats().deferred, 1u);
}

TEST_P(HttpServer, DeferredResponseToAClientThatLeftIsDropped) {
  g_later.gone = 0;
  start(routes(server_config()));
  {
    auto c = client();
    ASSERT_TRUE(c->send("GET /later/200 HTTP/1.1\r\nHost: a\r\n\r\n"));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }  // closed before the answer
  EXPECT_TRUE(eventually([&] { return g_later.gone.load() == 1; }));
  EXPECT_EQ(server_->stats().late_responses, 1u);
  EXPECT_TRUE(eventually([&] { return server_->stats().open == 0; }));
  auto ok = once("GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->status, 200);
}

TEST_P(HttpServer, DeferredResponseFromAnotherWorker) {
  start(routes(server_config()), 2);
  for (int i = 0; i < 4; ++i) {  // round-robin accept: both workers own some
    auto c = client();
    ASSERT_TRUE(c->send("GET /far HTTP/1.1\r\nHost: a\r\n\r\n"));
    auto r = c->read();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 201);
    EXPECT_EQ(r->body, "from afar");
    ASSERT_TRUE(c->send("GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n"));
    auto again = c->read();
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(again->status, 200);
  }
}

TEST_P(HttpServer, CorsPreflightAndAllowOrigin) {
  http::ServerConfig sc = routes(server_config());
  sc.cors_origins = {"http://app.local"};
  start(std::move(sc));
  auto pre = once(
      "OPTIONS /echo HTTP/1.1\r\nHost: a\r\nOrigin: http://app.local\r\n"
      "Access-Control-Request-Method: POST\r\n\r\n");
  ASSERT_TRUE(pre.has_value());
  EXPECT_EQ(pre->status, 204);
  EXPECT_EQ(pre->header("Access-Control-Allow-Origin"), "http://app.local");
  EXPECT_EQ(pre->header("Access-Control-Allow-Methods"), "POST");
  auto get = once("GET /plaintext HTTP/1.1\r\nHost: a\r\nOrigin: http://app.local\r\n\r\n");
  ASSERT_TRUE(get.has_value());
  EXPECT_EQ(get->header("Access-Control-Allow-Origin"), "http://app.local");
  auto other = once("GET /plaintext HTTP/1.1\r\nHost: a\r\nOrigin: http://evil\r\n\r\n");
  ASSERT_TRUE(other.has_value());
  EXPECT_FALSE(other->header("Access-Control-Allow-Origin").has_value());
}

TEST_P(HttpServer, OverloadAnswers503WithRetryAfter) {
  http::ServerConfig sc = routes(server_config());
  sc.connections = 2;
  sc.overload_reserve = 2;
  start(std::move(sc));
  auto a = client();
  auto b = client();
  ASSERT_TRUE(a->send("GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n"));
  ASSERT_TRUE(b->send("GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n"));
  ASSERT_TRUE(a->read().has_value());
  ASSERT_TRUE(b->read().has_value());
  HttpClient third(addr_);
  ASSERT_TRUE(third.ok());
  auto r = third.read();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->header("Retry-After"), "1");
  EXPECT_TRUE(third.closed());
  a.reset();  // a slot frees: the next client is served
  EXPECT_TRUE(eventually([&] { return server_->stats().open <= 1; }));
  auto ok = once("GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->status, 200);
}

INSTANTIATE_TEST_SUITE_P(Backends, HttpServer,
                         ::testing::Values(platform::BackendKind::uring,
                                           platform::BackendKind::epoll),
                         BackendName());

}  // namespace
}  // namespace weft::test
