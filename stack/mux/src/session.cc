#include <weft/mux/session.h>

#include <algorithm>
#include <cstring>

#include <weft/base/assert.h>

namespace weft::mux {
namespace {

enum Stage : std::uint8_t {
  kFree = 0,
  kOpenSent,
  kOpenReceived,
  kOpen,
  kDying,  // reset() or refuse() called: only the RESET/REFUSE is left to send; dead to feed()
};

// Slot::flags.
constexpr std::uint8_t kFinQueued = 0x01;
constexpr std::uint8_t kFinSent = 0x02;
constexpr std::uint8_t kFinRecv = 0x04;
constexpr std::uint8_t kWantWritable = 0x08;
// List membership survives free_slot(): the lists drop stale entries lazily when they pop
// them, and a reused slot must not be pushed twice.
constexpr std::uint8_t kInCtl = 0x10;
constexpr std::uint8_t kInAct = 0x20;
constexpr std::uint8_t kInWr = 0x40;
constexpr std::uint8_t kListBits = kInCtl | kInAct | kInWr;
// A freed slot still queued in the control FIFO: it goes back to the free stack only when the
// FIFO pops it. Reusing it earlier would let a new channel's OPEN ride an old, earlier
// position in the FIFO and overtake the OPEN of a lower id (ids must reach the wire in
// increasing order, §7.4).
constexpr std::uint8_t kZombie = 0x80;

// Slot::ctl, in the order emit_ctl() sends them.
constexpr std::uint8_t kCtlOpen = 0x01;
constexpr std::uint8_t kCtlOpenAck = 0x02;
constexpr std::uint8_t kCtlWindow = 0x04;
constexpr std::uint8_t kCtlRefuse = 0x08;
constexpr std::uint8_t kCtlReset = 0x10;

constexpr std::uint32_t clamp_window(std::uint32_t w) noexcept {
  return std::clamp<std::uint32_t>(w, 1, kMaxWindow);
}

void put_be(std::byte* p, std::uint32_t v, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    p[i] = static_cast<std::byte>(v >> (8 * (n - 1 - i)));
  }
}

std::size_t put(const Frame& f, std::span<std::byte> out) noexcept {
  Result<std::size_t> n = encode(f, out);
  // next_frame() checked out.size() >= kMaxControlFrameSize and built the frame itself.
  WEFT_ASSERT(n.ok());
  return n.ok() ? n.value() : 0;
}

// Resets a slot but keeps its list membership (flags and links): a freed slot may still sit
// in a FIFO, which drops or serves the entry when it reaches it.
void clear_slot(detail::Slot& s) noexcept {
  const detail::Slot keep = s;
  s = detail::Slot{};
  s.flags = keep.flags & kListBits;
  s.ctl_next = keep.ctl_next;
  s.act_next = keep.act_next;
  s.wr_next = keep.wr_next;
}

}  // namespace

Session::Session(Role role, const Limits& limits) : role_(role), limits_(limits) {
  limits_.max_channels = std::clamp<std::uint16_t>(limits_.max_channels, 1, 0xfffe);
  limits_.channel_window = clamp_window(limits_.channel_window);
  limits_.conn_window = clamp_window(limits_.conn_window);
  limits_.max_data = std::max<std::uint32_t>(limits_.max_data, 1);
  limits_.queue_per_channel = std::max<std::uint32_t>(limits_.queue_per_channel, 256);
  const std::uint16_t n = limits_.max_channels;
  slots_ = std::make_unique<Slot[]>(n);
  // Load factor <= 1/2 keeps linear probing short; a power of two for the mask.
  std::uint32_t cap = 4;
  while (cap < 2u * n) {
    cap <<= 1;
  }
  map_ = std::make_unique<std::uint16_t[]>(cap);
  std::fill_n(map_.get(), cap, kNil);
  map_mask_ = cap - 1;
  free_ = std::make_unique<std::uint16_t[]>(n);
  refusals_ =
      std::make_unique<std::uint16_t[]>(std::max<std::uint16_t>(limits_.max_pending_refusals, 1));
  // size_t arithmetic: 0xfffe * 2^32 does not fit 32 bits (armhf); the caller sized it.
  arena_ = std::make_unique<std::byte[]>(static_cast<std::size_t>(n) * limits_.queue_per_channel);
  reset(role);
}

void Session::reset(Role role) noexcept {
  role_ = role;
  const std::uint16_t n = limits_.max_channels;
  std::fill_n(slots_.get(), n, Slot{});
  std::fill_n(map_.get(), map_mask_ + 1, kNil);
  for (std::uint16_t i = 0; i < n; ++i) {
    free_[i] = static_cast<std::uint16_t>(n - 1 - i);  // slot 0 is handed out first
  }
  free_top_ = n;
  refusal_head_ = refusal_count_ = 0;
  live_ = local_live_ = blocked_writers_ = 0;
  ctl_q_ = act_q_ = wr_q_ = Fifo{};
  next_local_id_ = role == Role::client ? 1 : 2;
  peer_last_id_ = 0;
  conn_send_window_ = 0;
  conn_recv_window_ = limits_.conn_window;
  conn_to_credit_ = 0;
  conn_queued_ = 0;
  peer_ = Settings{};
  peer_ready_ = settings_sent_ = false;
  rate_second_ = 0;
  opens_this_second_ = resets_this_second_ = 0;
  error_ = {};
}

Session::~Session() = default;

// ---- id table ----------------------------------------------------------------------------

std::uint16_t Session::find(std::uint16_t id) const noexcept {
  for (std::uint32_t i = (id * 40503u) & map_mask_;; i = (i + 1) & map_mask_) {
    const std::uint16_t idx = map_[i];
    if (idx == kNil) {
      return kNil;
    }
    if (slots_[idx].id == id) {
      return idx;
    }
  }
}

void Session::map_insert(std::uint16_t idx) noexcept {
  std::uint32_t i = (slots_[idx].id * 40503u) & map_mask_;
  while (map_[i] != kNil) {
    i = (i + 1) & map_mask_;
  }
  map_[i] = idx;
}

void Session::map_erase(std::uint16_t id) noexcept {
  std::uint32_t i = (id * 40503u) & map_mask_;
  while (slots_[map_[i]].id != id) {
    i = (i + 1) & map_mask_;
  }
  // Backward-shift deletion (no tombstones): move later entries of the probe run into the
  // hole when their home position does not lie cyclically in (hole, their position].
  std::uint32_t hole = i;
  for (std::uint32_t j = (i + 1) & map_mask_; map_[j] != kNil; j = (j + 1) & map_mask_) {
    const std::uint32_t home = (slots_[map_[j]].id * 40503u) & map_mask_;
    const bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
    if (!stays) {
      map_[hole] = map_[j];
      hole = j;
    }
  }
  map_[hole] = kNil;
}

// ---- slots and lists ---------------------------------------------------------------------

std::uint16_t Session::alloc_slot(std::uint16_t id, bool local) noexcept {
  if (free_top_ == 0) {
    return kNil;
  }
  const std::uint16_t idx = free_[--free_top_];
  Slot& s = slots_[idx];
  clear_slot(s);
  s.id = id;
  s.local = local ? 1 : 0;
  map_insert(idx);
  ++live_;
  if (local) {
    ++local_live_;
  }
  return idx;
}

void Session::free_slot(std::uint16_t idx) noexcept {
  Slot& s = slots_[idx];
  WEFT_ASSERT(s.id != 0);
  // Bytes the application never consumed go back to the connection window: the peer paid
  // connection credit for them and the channel that held them is gone.
  if (s.unconsumed != 0) {
    credit_conn(s.unconsumed);
  }
  conn_queued_ -= s.ring_size;
  if ((s.flags & kWantWritable) != 0) {
    --blocked_writers_;
  }
  map_erase(s.id);
  --live_;
  if (s.local != 0) {
    --local_live_;
  }
  clear_slot(s);
  if ((s.flags & kInCtl) != 0) {
    s.flags |= kZombie;
  } else {
    free_[free_top_++] = idx;
  }
}

void Session::push(Fifo& q, std::uint16_t idx, std::uint16_t Slot::*link) noexcept {
  slots_[idx].*link = kNil;
  if (q.tail == kNil) {
    q.head = idx;
  } else {
    slots_[q.tail].*link = idx;
  }
  q.tail = idx;
}

std::uint16_t Session::pop(Fifo& q, std::uint16_t Slot::*link) noexcept {
  const std::uint16_t idx = q.head;
  if (idx != kNil) {
    q.head = slots_[idx].*link;
    if (q.head == kNil) {
      q.tail = kNil;
    }
  }
  return idx;
}

void Session::queue_ctl(std::uint16_t idx, std::uint8_t bit) noexcept {
  Slot& s = slots_[idx];
  s.ctl |= bit;
  if ((s.flags & kInCtl) == 0) {
    s.flags |= kInCtl;
    push(ctl_q_, idx, &Slot::ctl_next);
  }
}

bool Session::sendable(const Slot& s) const noexcept {
  return s.stage == kOpen && s.ctl == 0 &&
         (s.ring_size != 0 || ((s.flags & kFinQueued) != 0 && (s.flags & kFinSent) == 0));
}

void Session::activate(std::uint16_t idx) noexcept {
  Slot& s = slots_[idx];
  if ((s.flags & kInAct) == 0 && s.stage == kOpen) {
    s.flags |= kInAct;
    push(act_q_, idx, &Slot::act_next);
  }
}

void Session::credit_conn(std::uint32_t n) noexcept {
  conn_to_credit_ += n;
}

std::uint32_t Session::room(const Slot& s) const noexcept {
  const std::uint32_t reserved = (s.ctl & kCtlOpen) != 0 ? s.name_len : 0;
  const std::uint32_t ch = limits_.queue_per_channel - reserved - s.ring_size;
  const std::size_t conn =
      conn_queued_ >= limits_.queue_per_conn ? 0 : limits_.queue_per_conn - conn_queued_;
  return static_cast<std::uint32_t>(std::min<std::size_t>(ch, conn));
}

void Session::check_writable(std::uint16_t idx) noexcept {
  Slot& s = slots_[idx];
  if ((s.flags & kWantWritable) == 0 || s.ring_size > limits_.queue_per_channel / 2 ||
      conn_queued_ > limits_.queue_per_conn / 2) {
    return;
  }
  s.flags &= static_cast<std::uint8_t>(~kWantWritable);
  --blocked_writers_;
  if ((s.flags & kInWr) == 0) {
    s.flags |= kInWr;
    push(wr_q_, idx, &Slot::wr_next);
  }
}

void Session::maybe_free(std::uint16_t idx) noexcept {
  const Slot& s = slots_[idx];
  if (s.stage == kOpen && (s.flags & kFinSent) != 0 && (s.flags & kFinRecv) != 0 &&
      s.unconsumed == 0 && s.ctl == 0) {
    free_slot(idx);
  }
}

// An id the peer could name: one of ours already handed out, or one of the peer's at or
// below the highest it opened.
bool Session::known_id(std::uint16_t id) const noexcept {
  const bool ours = (id & 1u) == (role_ == Role::client ? 1u : 0u);
  return ours ? id < next_local_id_ : id <= peer_last_id_;
}

Session::Slot* Session::live(std::uint16_t ch) noexcept {
  const std::uint16_t idx = ch == 0 ? kNil : find(ch);
  return idx == kNil || slots_[idx].stage == kDying ? nullptr : &slots_[idx];
}

const Session::Slot* Session::live(std::uint16_t ch) const noexcept {
  const std::uint16_t idx = ch == 0 ? kNil : find(ch);
  return idx == kNil || slots_[idx].stage == kDying ? nullptr : &slots_[idx];
}

std::byte* Session::ring(std::uint16_t idx) noexcept {
  return arena_.get() + static_cast<std::size_t>(idx) * limits_.queue_per_channel;
}

Failure Session::die(mux_errc e) noexcept {
  error_ = make_error_code(e);
  return fail(error_);
}

// ---- feed --------------------------------------------------------------------------------

Result<Event> Session::feed(const Frame& f) noexcept {
  if (error_) {
    return fail(error_);
  }
  if (!peer_ready_) {
    // §7.5: MUX_SETTINGS is the peer's first channel frame.
    if (f.type != FrameType::settings) {
      return die(mux_errc::bad_state);
    }
    peer_ = f.settings;
    peer_ready_ = true;
    conn_send_window_ = f.settings.conn_window;
    return Event{};
  }
  Event ev;
  ev.channel = f.channel;
  switch (f.type) {
    case FrameType::settings:
      return die(mux_errc::bad_state);
    case FrameType::data:
      return feed_data(f);
    case FrameType::window_update:
      return feed_window(f);
    case FrameType::open: {
      const bool peer_parity = (f.channel & 1u) == (role_ == Role::client ? 0u : 1u);
      if (!peer_parity || f.channel <= peer_last_id_) {
        return die(mux_errc::bad_channel_id);
      }
      if (++opens_this_second_ > limits_.max_opens_per_sec) {
        return die(mux_errc::open_flood);
      }
      peer_last_id_ = f.channel;
      const std::uint16_t idx = alloc_slot(f.channel, false);
      if (idx == kNil) {
        if (refusal_count_ >= std::max<std::uint16_t>(limits_.max_pending_refusals, 1)) {
          return die(mux_errc::open_flood);
        }
        const std::uint16_t cap = std::max<std::uint16_t>(limits_.max_pending_refusals, 1);
        refusals_[(refusal_head_ + refusal_count_) % cap] = f.channel;
        ++refusal_count_;
        return ev;  // EventKind::none: the application never sees it
      }
      Slot& s = slots_[idx];
      s.stage = kOpenReceived;
      s.send_window = f.window;
      ev.kind = EventKind::opened;
      ev.name = f.name;
      return ev;
    }
    case FrameType::open_ack:
    case FrameType::refuse:
    case FrameType::reset: {
      if (!known_id(f.channel)) {
        return die(mux_errc::unknown_channel);
      }
      if (f.type == FrameType::reset && ++resets_this_second_ > limits_.max_resets_per_sec) {
        return die(mux_errc::reset_flood);
      }
      const std::uint16_t idx = find(f.channel);
      if (idx == kNil || slots_[idx].stage == kDying) {
        return ev;  // crossed our RESET on the wire
      }
      Slot& s = slots_[idx];
      if (f.type == FrameType::reset) {
        ev.kind = EventKind::reset;
        ev.code = f.code;
        free_slot(idx);
        return ev;
      }
      if (s.stage != kOpenSent || (s.ctl & kCtlOpen) != 0) {
        return die(mux_errc::bad_state);
      }
      if (f.type == FrameType::refuse) {
        ev.kind = EventKind::refused;
        ev.code = f.code;
        free_slot(idx);
        return ev;
      }
      s.stage = kOpen;
      s.send_window = f.window;
      activate(idx);
      ev.kind = EventKind::accepted;
      ev.window = f.window;
      return ev;
    }
  }
  return ev;
}

Result<Event> Session::feed_data(const Frame& f) noexcept {
  const std::size_t n = f.payload.size();
  if (n > limits_.max_data) {
    return die(mux_errc::data_too_large);
  }
  if (!known_id(f.channel)) {
    return die(mux_errc::unknown_channel);
  }
  if (n > conn_recv_window_) {
    return die(mux_errc::flow_control);
  }
  Event ev;
  ev.channel = f.channel;
  const std::uint16_t idx = find(f.channel);
  if (idx == kNil || slots_[idx].stage == kDying) {
    // A channel we reset: the bytes were sent against the connection window; take them and
    // give the credit straight back.
    conn_recv_window_ -= static_cast<std::uint32_t>(n);
    credit_conn(static_cast<std::uint32_t>(n));
    return ev;
  }
  Slot& s = slots_[idx];
  if (s.stage != kOpen || (s.flags & kFinRecv) != 0) {
    return die(mux_errc::bad_state);
  }
  if (n > s.recv_window) {
    return die(mux_errc::flow_control);
  }
  const auto n32 = static_cast<std::uint32_t>(n);
  s.recv_window -= n32;
  s.unconsumed += n32;
  conn_recv_window_ -= n32;
  if (f.fin()) {
    s.flags |= kFinRecv;
    s.ctl &= static_cast<std::uint8_t>(~kCtlWindow);  // no more credit is needed
  }
  ev.kind = EventKind::data;
  ev.data = f.payload;
  ev.fin = f.fin();
  maybe_free(idx);
  return ev;
}

Result<Event> Session::feed_window(const Frame& f) noexcept {
  Event ev;
  ev.channel = f.channel;
  if (f.channel == 0) {
    if (f.window > kMaxWindow - conn_send_window_) {
      return die(mux_errc::window_overflow);
    }
    conn_send_window_ += f.window;
    ev.kind = EventKind::window;
    ev.window = f.window;
    return ev;
  }
  if (!known_id(f.channel)) {
    return die(mux_errc::unknown_channel);
  }
  const std::uint16_t idx = find(f.channel);
  if (idx == kNil || slots_[idx].stage == kDying) {
    return ev;
  }
  Slot& s = slots_[idx];
  if (f.window > kMaxWindow - s.send_window) {
    return die(mux_errc::window_overflow);
  }
  s.send_window += f.window;
  activate(idx);
  ev.kind = EventKind::window;
  ev.window = f.window;
  return ev;
}

// ---- local calls -------------------------------------------------------------------------

Result<std::uint16_t> Session::open(std::span<const std::byte> name,
                                    std::uint32_t window) noexcept {
  if (error_) {
    return fail(error_);
  }
  if (name.empty() || name.size() > kMaxNameSize || window > kMaxWindow) {
    return fail(mux_errc::bad_argument);
  }
  if (!peer_ready_) {
    return fail(mux_errc::not_ready);
  }
  if (next_local_id_ > 0xffff) {
    return fail(mux_errc::ids_exhausted);
  }
  if (local_live_ >= peer_.max_channels || free_top_ == 0) {
    return fail(mux_errc::channel_limit);
  }
  const auto id = static_cast<std::uint16_t>(next_local_id_);
  next_local_id_ += 2;  // §7.4: ids only increase, so a dead id never names a new channel
  const std::uint16_t idx = alloc_slot(id, true);
  Slot& s = slots_[idx];
  s.stage = kOpenSent;
  s.recv_initial = s.recv_window = window == 0 ? limits_.channel_window : window;
  s.name_len = static_cast<std::uint8_t>(name.size());
  std::memcpy(ring(idx), name.data(), name.size());
  s.ring_head = s.name_len;  // queued bytes start after the name (wrapping over it later)
  queue_ctl(idx, kCtlOpen);
  return id;
}

Result<void> Session::accept(std::uint16_t ch, std::uint32_t window) noexcept {
  if (error_) {
    return fail(error_);
  }
  Slot* s = live(ch);
  if (s == nullptr || s->stage != kOpenReceived) {
    return fail(mux_errc::no_channel);
  }
  if (window > kMaxWindow) {
    return fail(mux_errc::bad_argument);
  }
  s->stage = kOpen;
  s->recv_initial = s->recv_window = window == 0 ? limits_.channel_window : window;
  queue_ctl(static_cast<std::uint16_t>(s - slots_.get()), kCtlOpenAck);
  return {};
}

Result<void> Session::refuse(std::uint16_t ch, ChannelError code) noexcept {
  if (error_) {
    return fail(error_);
  }
  Slot* s = live(ch);
  if (s == nullptr || s->stage != kOpenReceived) {
    return fail(mux_errc::no_channel);
  }
  s->stage = kDying;
  s->code = static_cast<std::uint16_t>(code);
  queue_ctl(static_cast<std::uint16_t>(s - slots_.get()), kCtlRefuse);
  return {};
}

Result<Session::Slot*> Session::writer(std::uint16_t ch) noexcept {
  if (error_) {
    return fail(error_);
  }
  Slot* s = live(ch);
  if (s == nullptr || s->stage == kOpenReceived) {
    return fail(mux_errc::no_channel);
  }
  if ((s->flags & kFinQueued) != 0) {
    return fail(mux_errc::closed);
  }
  return s;
}

Failure Session::blocked(Slot& s) noexcept {
  if ((s.flags & kWantWritable) == 0) {
    s.flags |= kWantWritable;
    ++blocked_writers_;
  }
  return fail(mux_errc::would_block);
}

Result<std::size_t> Session::write(std::uint16_t ch, std::span<const std::byte> bytes) noexcept {
  Result<Slot*> w = writer(ch);
  if (!w) {
    return fail(w.error());
  }
  Slot* s = *w;
  if (bytes.empty()) {
    return std::size_t{0};
  }
  const auto idx = static_cast<std::uint16_t>(s - slots_.get());
  const std::uint32_t n = static_cast<std::uint32_t>(std::min<std::size_t>(bytes.size(), room(*s)));
  if (n == 0) {
    return blocked(*s);
  }
  const std::uint32_t cap = limits_.queue_per_channel;
  const std::uint32_t tail = (s->ring_head + s->ring_size) % cap;
  const std::uint32_t first = std::min(n, cap - tail);
  std::byte* r = ring(idx);
  std::memcpy(r + tail, bytes.data(), first);
  std::memcpy(r, bytes.data() + first, n - first);
  s->ring_size += n;
  conn_queued_ += n;
  activate(idx);
  return std::size_t{n};
}

Result<void> Session::write_all(std::uint16_t ch, std::span<const std::byte> head,
                                std::span<const std::byte> body) noexcept {
  Result<Slot*> w = writer(ch);
  if (!w) {
    return fail(w.error());
  }
  const std::size_t total = head.size() + body.size();
  if (total > limits_.queue_per_channel - 256u) {  // 256: room an unsent OPEN name may hold
    return fail(mux_errc::bad_argument);
  }
  if (total > room(**w)) {
    return blocked(**w);
  }
  for (std::span<const std::byte> part : {head, body}) {
    if (!part.empty()) {
      Result<std::size_t> n = write(ch, part);
      WEFT_ASSERT(n.ok() && *n == part.size());
      (void)n;
    }
  }
  return {};
}

Result<void> Session::consume(std::uint16_t ch, std::size_t n) noexcept {
  if (error_) {
    return fail(error_);
  }
  Slot* s = live(ch);
  if (s == nullptr) {
    return fail(mux_errc::no_channel);
  }
  if (n > s->unconsumed) {
    return fail(mux_errc::bad_argument);
  }
  const auto n32 = static_cast<std::uint32_t>(n);
  const auto idx = static_cast<std::uint16_t>(s - slots_.get());
  s->unconsumed -= n32;
  credit_conn(n32);
  if ((s->flags & kFinRecv) == 0) {
    s->to_credit += n32;
    // Credit in chunks of half a window: fewer frames, and the peer never runs dry while
    // the application keeps up (it still has half a window in flight).
    if (s->to_credit >= s->recv_initial / 2 || s->recv_window == 0) {
      queue_ctl(idx, kCtlWindow);
    }
  }
  maybe_free(idx);
  return {};
}

Result<void> Session::close(std::uint16_t ch) noexcept {
  if (error_) {
    return fail(error_);
  }
  Slot* s = live(ch);
  if (s == nullptr || s->stage == kOpenReceived) {
    return fail(mux_errc::no_channel);
  }
  if ((s->flags & kFinQueued) != 0) {
    return fail(mux_errc::closed);
  }
  s->flags |= kFinQueued;
  activate(static_cast<std::uint16_t>(s - slots_.get()));
  return {};
}

Result<void> Session::reset(std::uint16_t ch, ChannelError code) noexcept {
  if (error_) {
    return fail(error_);
  }
  Slot* s = live(ch);
  if (s == nullptr) {
    return fail(mux_errc::no_channel);
  }
  const auto idx = static_cast<std::uint16_t>(s - slots_.get());
  if ((s->ctl & kCtlOpen) != 0) {
    free_slot(idx);  // the peer never heard of it
    return {};
  }
  if (s->unconsumed != 0) {
    credit_conn(s->unconsumed);
    s->unconsumed = 0;
  }
  conn_queued_ -= s->ring_size;
  s->ring_size = 0;
  if ((s->flags & kWantWritable) != 0) {
    s->flags &= static_cast<std::uint8_t>(~kWantWritable);
    --blocked_writers_;
  }
  s->stage = kDying;
  s->code = static_cast<std::uint16_t>(code);
  s->ctl = 0;
  queue_ctl(idx, kCtlReset);
  return {};
}

std::uint16_t Session::next_writable() noexcept {
  for (;;) {
    const std::uint16_t idx = pop(wr_q_, &Slot::wr_next);
    if (idx == kNil) {
      return 0;
    }
    Slot& s = slots_[idx];
    s.flags &= static_cast<std::uint8_t>(~kInWr);
    if (s.id != 0 && s.stage != kDying) {
      return s.id;
    }
  }
}

void Session::set_time(std::uint64_t now_ms) noexcept {
  const std::uint64_t second = now_ms / 1000;
  if (second != rate_second_) {
    rate_second_ = second;
    opens_this_second_ = 0;
    resets_this_second_ = 0;
  }
}

// ---- scheduler ---------------------------------------------------------------------------

std::size_t Session::emit_ctl(std::uint16_t idx, std::span<std::byte> out) noexcept {
  Slot& s = slots_[idx];
  if ((s.ctl & kCtlOpen) != 0) {
    s.ctl &= static_cast<std::uint8_t>(~kCtlOpen);
    return put(make_open(s.id, s.recv_initial, {ring(idx), s.name_len}), out);
  }
  if ((s.ctl & kCtlOpenAck) != 0) {
    s.ctl &= static_cast<std::uint8_t>(~kCtlOpenAck);
    activate(idx);
    return put(make_open_ack(s.id, s.recv_initial), out);
  }
  if ((s.ctl & kCtlWindow) != 0) {
    s.ctl &= static_cast<std::uint8_t>(~kCtlWindow);
    const std::uint32_t inc = s.to_credit;
    s.to_credit = 0;
    s.recv_window += inc;
    const std::size_t n = inc == 0 ? 0 : put(make_window_update(s.id, inc), out);
    maybe_free(idx);
    return n;
  }
  const bool refuse = (s.ctl & kCtlRefuse) != 0;
  if (refuse || (s.ctl & kCtlReset) != 0) {
    const auto code = static_cast<ChannelError>(s.code);
    const std::uint16_t id = s.id;
    s.ctl = 0;
    free_slot(idx);
    return put(refuse ? make_refuse(id, code) : make_reset(id, code), out);
  }
  return 0;
}

std::size_t Session::emit_data(std::span<std::byte> out) noexcept {
  // Deficit round robin by bytes (Shreedhar & Varghese): a channel at the head of the round
  // gets a quantum of the peer's max_data when its deficit is spent, sends up to its deficit,
  // and goes to the tail when the deficit is used up. Channels without credit leave the
  // round (feed_window() brings them back), so they cost nothing while stalled.
  const std::size_t room_out = out.size() - kPrefixSize - kHeaderSize;
  const std::uint32_t quantum = std::max<std::uint32_t>(
      1, static_cast<std::uint32_t>(std::min<std::size_t>(peer_.max_data, room_out)));
  for (std::uint16_t idx = act_q_.head; idx != kNil; idx = act_q_.head) {
    Slot& s = slots_[idx];
    if (!sendable(s)) {
      pop(act_q_, &Slot::act_next);
      s.flags &= static_cast<std::uint8_t>(~kInAct);
      continue;
    }
    const bool fin_only = s.ring_size == 0;
    if (!fin_only && s.send_window == 0) {
      pop(act_q_, &Slot::act_next);
      s.flags &= static_cast<std::uint8_t>(~kInAct);
      continue;
    }
    if (!fin_only && conn_send_window_ == 0) {
      // Only the connection window holds the head up; a FIN-only frame on another channel
      // could still go, but waiting for the connection credit is simpler and loses nothing.
      return 0;
    }
    if (s.deficit == 0) {
      s.deficit = quantum;
    }
    const std::uint32_t n =
        std::min({s.ring_size, s.deficit, s.send_window, conn_send_window_, quantum});
    const bool fin = (s.flags & kFinQueued) != 0 && n == s.ring_size;
    // Header by hand: the payload may wrap around the ring and is copied in two pieces.
    std::byte* p = out.data();
    put_be(p, static_cast<std::uint32_t>(kHeaderSize + n), 4);
    p[4] = static_cast<std::byte>(FrameType::data);
    p[5] = static_cast<std::byte>(fin ? kFlagFin : 0);
    put_be(p + 6, s.id, 2);
    put_be(p + 8, 0, 4);
    const std::uint32_t cap = limits_.queue_per_channel;
    const std::uint32_t first = std::min(n, cap - s.ring_head);
    std::memcpy(p + 12, ring(idx) + s.ring_head, first);
    std::memcpy(p + 12 + first, ring(idx), n - first);
    s.ring_head = (s.ring_head + n) % cap;
    s.ring_size -= n;
    s.send_window -= n;
    conn_send_window_ -= n;
    conn_queued_ -= n;
    s.deficit = fin_only ? 0 : s.deficit - n;
    if (fin) {
      s.flags |= kFinSent;
    }
    if (!sendable(s) || s.deficit == 0) {
      pop(act_q_, &Slot::act_next);
      s.flags &= static_cast<std::uint8_t>(~kInAct);
      if (!sendable(s)) {
        s.deficit = 0;  // DRR: an emptied queue keeps no deficit
      } else {
        activate(idx);
      }
    }
    check_writable(idx);
    if (blocked_writers_ != 0 && conn_queued_ <= limits_.queue_per_conn / 2) {
      // Writers blocked on the connection's queue, not their own: rare, so a scan.
      for (std::uint16_t i = 0; i < limits_.max_channels && blocked_writers_ != 0; ++i) {
        if (slots_[i].id != 0) {
          check_writable(i);
        }
      }
    }
    if (fin) {
      maybe_free(idx);
    }
    return kPrefixSize + kHeaderSize + n;
  }
  return 0;
}

Result<std::size_t> Session::next_frame(std::span<std::byte> out) noexcept {
  if (error_) {
    return fail(error_);
  }
  if (out.size() < kMaxControlFrameSize) {
    return fail(mux_errc::buffer_too_small);
  }
  if (!settings_sent_) {
    settings_sent_ = true;
    Settings mine;
    mine.conn_window = limits_.conn_window;
    mine.max_data = limits_.max_data;
    mine.max_channels = limits_.max_channels;
    return put(make_settings(mine), out);
  }
  // Connection credit: once half the connection window is owed (or the peer is dry).
  if (conn_to_credit_ != 0 &&
      (conn_to_credit_ >= limits_.conn_window / 2 || conn_recv_window_ == 0)) {
    const std::uint32_t inc = conn_to_credit_;
    conn_to_credit_ = 0;
    conn_recv_window_ += inc;
    return put(make_window_update(0, inc), out);
  }
  if (refusal_count_ != 0) {
    const std::uint16_t cap = std::max<std::uint16_t>(limits_.max_pending_refusals, 1);
    const std::uint16_t id = refusals_[refusal_head_];
    refusal_head_ = static_cast<std::uint16_t>((refusal_head_ + 1) % cap);
    --refusal_count_;
    return put(make_refuse(id, ChannelError::overloaded), out);
  }
  while (ctl_q_.head != kNil) {
    const std::uint16_t idx = ctl_q_.head;
    Slot& s = slots_[idx];
    std::size_t n = 0;
    if (s.id != 0 && s.ctl != 0) {
      n = emit_ctl(idx, out);
    }
    // emit_ctl() may free the slot (s.ctl becomes 0): it leaves the FIFO then.
    if (s.ctl == 0 || s.id == 0) {
      pop(ctl_q_, &Slot::ctl_next);
      s.flags &= static_cast<std::uint8_t>(~kInCtl);
      if ((s.flags & kZombie) != 0) {
        s.flags &= static_cast<std::uint8_t>(~kZombie);
        free_[free_top_++] = idx;
      } else if (s.id != 0) {
        activate(idx);  // a channel with data held back by a pending control frame
      }
    }
    if (n != 0) {
      return n;
    }
  }
  return emit_data(out);
}

// ---- introspection -----------------------------------------------------------------------

std::uint16_t Session::slot_of(std::uint16_t ch) const noexcept {
  const Slot* s = live(ch);
  return s == nullptr ? kNil : static_cast<std::uint16_t>(s - slots_.get());
}

ChannelState Session::state(std::uint16_t ch) const noexcept {
  const Slot* s = live(ch);
  if (s == nullptr) {
    return ChannelState::idle;
  }
  switch (s->stage) {
    case kOpenSent:
      return ChannelState::open_sent;
    case kOpenReceived:
      return ChannelState::open_received;
    default:
      break;
  }
  const bool local = (s->flags & kFinQueued) != 0;
  const bool remote = (s->flags & kFinRecv) != 0;
  if (local && remote) {
    return ChannelState::closed;
  }
  if (local) {
    return ChannelState::half_closed_local;
  }
  return remote ? ChannelState::half_closed_remote : ChannelState::open;
}

std::uint32_t Session::send_window(std::uint16_t ch) const noexcept {
  const Slot* s = live(ch);
  return s == nullptr ? 0 : s->send_window;
}

std::uint32_t Session::recv_window(std::uint16_t ch) const noexcept {
  const Slot* s = live(ch);
  return s == nullptr ? 0 : s->recv_window;
}

std::size_t Session::queued(std::uint16_t ch) const noexcept {
  const Slot* s = live(ch);
  return s == nullptr ? 0 : s->ring_size;
}

}  // namespace weft::mux
