// Replay driver for builds without libFuzzer (WEFT_FUZZ=OFF): runs every corpus file given
// on the command line (files or directories) through LLVMFuzzerTestOneInput, then a fixed
// set of deterministic mutations of each (byte flips, truncations, split-pattern changes),
// so the corpus and its neighbourhood run in every ctest run, with any compiler.
// Exit status: 0 when all inputs ran (a failed invariant aborts), 1 when no input was found.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

constexpr int kMutationsPerFile = 200;

std::vector<std::uint8_t> read_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void run(const std::vector<std::uint8_t>& input) {
  // A heap copy of exactly the input's size, as libFuzzer passes it.
  std::vector<std::uint8_t> copy(input);
  LLVMFuzzerTestOneInput(copy.empty() ? nullptr : copy.data(), copy.size());
}

void mutate_and_run(const std::vector<std::uint8_t>& seed, std::uint64_t& rng) {
  auto next = [&rng] {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<std::uint32_t>(rng >> 33);
  };
  for (int m = 0; m < kMutationsPerFile; ++m) {
    std::vector<std::uint8_t> v = seed;
    const int edits = 1 + static_cast<int>(next() % 4);
    for (int e = 0; e < edits && !v.empty(); ++e) {
      const std::size_t at = next() % v.size();
      switch (next() % 4) {
        case 0:
          v[at] = static_cast<std::uint8_t>(next());
          break;
        case 1:
          v[at] ^= static_cast<std::uint8_t>(1u << (next() % 8));
          break;
        case 2:
          v.resize(at);
          break;
        default:
          v.insert(v.begin() + static_cast<std::ptrdiff_t>(at), static_cast<std::uint8_t>(next()));
          break;
      }
    }
    run(v);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::filesystem::path> files;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path arg(argv[i]);
    if (std::filesystem::is_directory(arg)) {
      for (const auto& entry : std::filesystem::directory_iterator(arg)) {
        if (entry.is_regular_file()) {
          files.push_back(entry.path());
        }
      }
    } else if (std::filesystem::is_regular_file(arg)) {
      files.push_back(arg);
    } else {
      std::fprintf(stderr, "replay: no such file or directory: %s\n", argv[i]);
      return 1;
    }
  }
  std::sort(files.begin(), files.end());  // deterministic order
  std::uint64_t rng = 0x5eed;
  for (const auto& f : files) {
    const std::vector<std::uint8_t> seed = read_file(f);
    run(seed);
    mutate_and_run(seed, rng);
  }
  std::printf("replay: %zu corpus inputs, %zu mutations, all invariants held\n", files.size(),
              files.size() * kMutationsPerFile);
  return files.empty() ? 1 : 0;
}
