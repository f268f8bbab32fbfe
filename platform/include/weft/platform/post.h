// platform::Post — a message from one worker's loop to another's (or to itself, later).
//
// A Post is four words copied by value through a preallocated ring: fn(target, post) runs on
// the target loop's thread, at the end of one of its iterations. What ptr points to must
// stay valid until fn has run; posting never allocates.
//
// Rings: each ordered pair of workers has one SpscRing of kPostRingSize posts (8 KiB). A full
// ring is reported to the sender (queue_full); Loop::set_post_room_handler tells it when
// that ring has room again. Wake-ups are batched: a loop that posted to a target during an
// iteration writes the target's eventfd once, at the end of it, and not at all while the
// target already has a wake-up pending.
#pragma once

#include <cstddef>
#include <cstdint>

#include <weft/platform/spsc_ring.h>

namespace weft::platform {

class Loop;

struct Post {
  void (*fn)(Loop& target, const Post& msg) = nullptr;
  void* ptr = nullptr;
  std::uint64_t a = 0;
  std::uint64_t b = 0;
};

// Capacity of each worker-to-worker ring: 256 posts of 32 bytes = 8 KiB per ordered pair,
// enough for one iteration's worth of accepted-connection hand-offs or fan-out wake-ups at
// the default 256 receive completions per iteration; a full ring is reported to the sender.
inline constexpr std::size_t kPostRingSize = 256;
using PostRing = SpscRing<Post, kPostRingSize>;

// Capacity of a loop's queue of posts to itself (Loop::defer): work deferred to the end of
// the current iteration, e.g. a handler that answers after its own callback has returned.
inline constexpr std::size_t kDeferCapacity = 256;

}  // namespace weft::platform
