// SPDX-License-Identifier: Apache-2.0
// The parser choice's measurement (docs/http.md, "The parser"): goro::http's parser adapter
// (src/http/parser.hpp) parsing the requests wrk sends to /plaintext, a POST with a chunked
// body, and the service's /json response, one message at a time as the server and client
// do. Built twice, once per implementation of the adapter: http_parse_http_parser and
// http_parse_beast.
#include <benchmark/benchmark.h>

#include <string_view>

#include "http/parser.hpp"

namespace {

using goro::http::detail::message_parser;
using goro::http::detail::parse_state;

constexpr std::string_view wrk_get =
    "GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
    "Accept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,*/*;q=0.8\r\n"
    "Connection: keep-alive\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n\r\n";
constexpr std::string_view chunked_post =
    "POST /echo HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nTransfer-Encoding: chunked\r\n"
    "Content-Type: application/octet-stream\r\n\r\n"
    "10\r\n0123456789abcdef\r\n20\r\n0123456789abcdef0123456789abcdef\r\n0\r\n\r\n";
constexpr std::string_view json_response =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 27\r\n"
    "Date: Mon, 01 Jan 2024 00:00:00 GMT\r\n\r\n{\"message\":\"Hello, World!\"}";

void parse_each(benchmark::State& state, message_parser::kind kind, std::string_view text) {
  message_parser p(kind, {});
  for (auto _ : state) {
    p.reset();
    const std::size_t n = p.parse(text);
    if (n != text.size() || p.state() != parse_state::done) state.SkipWithError("parse failed");
    benchmark::DoNotOptimize(p.message());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * text.size()));
}

void BM_Parse_WrkGet(benchmark::State& s) { parse_each(s, message_parser::kind::request, wrk_get); }
void BM_Parse_ChunkedPost(benchmark::State& s) {
  parse_each(s, message_parser::kind::request, chunked_post);
}
void BM_Parse_JsonResponse(benchmark::State& s) {
  parse_each(s, message_parser::kind::response, json_response);
}
BENCHMARK(BM_Parse_WrkGet);
BENCHMARK(BM_Parse_ChunkedPost);
BENCHMARK(BM_Parse_JsonResponse);

}  // namespace

BENCHMARK_MAIN();
