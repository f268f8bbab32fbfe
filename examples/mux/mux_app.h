// The weft-mux example's application (examples/mux): what one appliance connection carries
// at once over weft::mux channels.
//
// Server (make_acceptor, one per worker): three services on every connection —
//   "firmware"                          a bulk upload: FNV-1a 64 over every byte; at the
//                                       caller's FIN it answers "ok <bytes> <fnv hex>"
//   "rpc:weft.example.Appliance/Telemetry"  server-streaming: one TelemetryRequest in, a
//                                       Sample every interval_ms out (from a timer)
//   "rpc:weft.example.Appliance/Control"    bidirectional: one Reply per Command
// Handlers come from fixed per-worker pools; nothing is allocated per channel.
//
// Client (run_demo): on one connection, measures the Control round trip on an idle
// connection, then again while `bulk` channels upload a simulated firmware image each (as
// fast as the windows allow) and telemetry streams; checks every image's checksum.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <weft/mux/endpoint.h>
#include <weft/platform/address.h>
#include <weft/platform/loop.h>

namespace weft::examples::mux_demo {

inline constexpr std::string_view kFirmware = "firmware";

struct ServerOptions {
  std::uint64_t max_image = 1ull << 30;  // a larger upload is reset (internal)
  std::uint32_t pool = 64;               // handlers of each kind per worker
};

// The Acceptor of one worker's connections (pass to weft::mux::make_service).
std::unique_ptr<mux::Acceptor> make_acceptor(platform::Loop& loop, const ServerOptions& opt);

struct DemoOptions {
  std::uint64_t image_bytes = 16ull << 20;  // per bulk channel
  std::uint32_t bulk = 1;                   // firmware channels uploading at once
  std::uint32_t telemetry_ms = 10;          // Sample interval
  std::uint32_t idle_pings = 300;           // Control round trips before the upload
  std::uint32_t limit_ms = 120000;          // the whole run
  mux::EndpointOptions endpoint;
};

struct DemoResult {
  bool ok = false;
  std::string error;            // why not ok
  double upload_s = 0;          // first byte to the last "ok" answer
  double upload_mib_s = 0;      // all channels together
  std::uint32_t images_ok = 0;  // checksums that matched
  std::uint64_t samples = 0;    // telemetry Samples received during the upload
  double max_sample_gap_ms = 0;
  std::uint64_t idle_pings = 0, busy_pings = 0;
  double idle_p50_us = 0, idle_p99_us = 0;
  double busy_p50_us = 0, busy_p99_us = 0;
};

// Runs the client side on `loop` (driven here with run_once until done or limit_ms).
DemoResult run_demo(platform::Loop& loop, const platform::Address& server, const DemoOptions& opt);

}  // namespace weft::examples::mux_demo
