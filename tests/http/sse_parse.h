// A reference parser of text/event-stream for the tests, written from the WHATWG HTML
// algorithm ("Parsing an event stream" and "Interpreting an event stream"), independently of
// the encoder: lines end with CRLF, LF or a lone CR; an empty line dispatches (nothing when
// the data buffer is empty); ':' starts a comment; a field's value loses ONE leading space;
// data appends value + LF, the last LF removed at dispatch; id sets the last event id unless
// it holds NUL; event sets the type (reset after each dispatch); retry takes digits only.
// Fed incrementally (a CR at the end of a chunk may be the first half of a CRLF). Comments
// are collected too, for the tests' handshakes. Allocates freely: tests only.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace weft::test {

struct SseEvent {
  std::string type;  // "message" unless an event field said otherwise
  std::string data;
  std::string last_id;  // the last event ID buffer at dispatch (the MessageEvent's lastEventId)
  bool has_id = false;  // this event itself had an id field
};

class SseParser {
 public:
  void feed(std::string_view in) {
    for (const char ch : in) {
      if (skip_lf_) {
        skip_lf_ = false;
        if (ch == '\n') {
          continue;
        }
      }
      if (ch == '\r' || ch == '\n') {
        line(line_);
        line_.clear();
        skip_lf_ = ch == '\r';
      } else {
        line_ += ch;
      }
    }
  }

  std::vector<SseEvent> events;
  std::vector<std::string> comments;
  std::uint64_t retry = 0;

 private:
  void line(const std::string& l) {
    if (l.empty()) {
      dispatch();
      return;
    }
    if (l[0] == ':') {
      comments.push_back(l.substr(1));
      return;
    }
    std::string name = l;
    std::string value;
    if (const std::size_t colon = l.find(':'); colon != std::string::npos) {
      name = l.substr(0, colon);
      value = l.substr(colon + 1);
      if (!value.empty() && value[0] == ' ') {
        value.erase(0, 1);
      }
    }
    if (name == "event") {
      type_ = value;
    } else if (name == "data") {
      data_ += value;
      data_ += '\n';
    } else if (name == "id") {
      if (value.find('\0') == std::string::npos) {
        last_id_ = value;
        has_id_ = true;
      }
    } else if (name == "retry") {
      if (!value.empty() && value.find_first_not_of("0123456789") == std::string::npos) {
        retry = std::stoull(value);
      }
    }
  }
  void dispatch() {
    if (data_.empty()) {
      type_.clear();
      has_id_ = false;
      return;
    }
    data_.pop_back();
    events.push_back({type_.empty() ? "message" : type_, data_, last_id_, has_id_});
    data_.clear();
    type_.clear();
    has_id_ = false;
  }

  std::string line_;
  bool skip_lf_ = false;
  std::string type_;
  std::string data_;
  std::string last_id_;
  bool has_id_ = false;
};

}  // namespace weft::test
