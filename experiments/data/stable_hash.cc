#include "experiments/data/stable_hash.h"

namespace attnlab::experiments {

uint64_t StableHash(const std::string& text, uint64_t seed) {
  uint64_t hash = 0xCBF29CE484222325ull ^ seed;  // FNV offset basis, seeded
  for (const char c : text) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001B3ull;  // FNV prime
  }
  hash ^= hash >> 30;
  hash *= 0xBF58476D1CE4E5B9ull;
  hash ^= hash >> 27;
  hash *= 0x94D049BB133111EBull;
  return hash ^ (hash >> 31);
}

}  // namespace attnlab::experiments
