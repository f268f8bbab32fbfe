// Sample requests shared by the HTTP parser tests and bench/http_bench.cc, so the benchmark
// parses exactly the bytes the tests check field by field.
#pragma once

#include <string_view>

namespace weft::test {

// A Firefox navigation request (13 fields, 586 bytes).
constexpr std::string_view kBrowser =
    "GET /wiki/Special:Search?search=weft&go=Go HTTP/1.1\r\n"
    "Host: en.wikipedia.org\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br, zstd\r\n"
    "Referer: https://en.wikipedia.org/wiki/Main_Page\r\n"
    "Connection: keep-alive\r\n"
    "Cookie: WMF-Last-Access=03-Dec-2026; GeoIP=DE:BE:Berlin:52.52:13.40:v4\r\n"
    "Upgrade-Insecure-Requests: 1\r\n"
    "Sec-Fetch-Dest: document\r\n"
    "Sec-Fetch-Mode: navigate\r\n"
    "Sec-Fetch-Site: same-origin\r\n"
    "Priority: u=0, i\r\n"
    "\r\n";

// The request wrk sends in the TechEmpower plaintext test (3 fields, 164 bytes).
constexpr std::string_view kPlaintext =
    "GET /plaintext HTTP/1.1\r\n"
    "Host: localhost\r\n"
    "Accept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,"
    "*/*;q=0.7\r\n"
    "Connection: keep-alive\r\n"
    "\r\n";

}  // namespace weft::test
