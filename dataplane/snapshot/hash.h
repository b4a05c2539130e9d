/* dataplane/snapshot/hash.h — the one fixed 64-bit string hash the data path uses.
 *
 * rm_hash64(s) = rm_hash_mix64(FNV-1a-64(s)): FNV-1a 64 (offset basis 0xcbf29ce484222325, prime
 * 0x100000001b3, one byte at a time) followed by MurmurHash3's fmix64 finalizer. FNV-1a alone
 * leaves the low bits weakly mixed for short, similar keys ("user1", "user2"), and both sticky
 * routing (hash % weight sum) and open-addressing tables (hash & mask) use exactly those bits;
 * fmix64 spreads every input bit over the whole word.
 *
 * The function is part of the product contract: sticky routing hashes the user key with it, so
 * every sidecar, of every build, maps one user to the same version. Never change it.
 */
#ifndef REMORA_DATAPLANE_SNAPSHOT_HASH_H
#define REMORA_DATAPLANE_SNAPSHOT_HASH_H

#include <stddef.h>
#include <stdint.h>

#define RM_HASH_FNV64_OFFSET 0xcbf29ce484222325ULL
#define RM_HASH_FNV64_PRIME  0x100000001b3ULL

/* Continues an FNV-1a 64 hash over n bytes (p may be NULL when n is 0). Pure: any thread. */
static inline uint64_t rm_hash_fnv1a64_update(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = (const unsigned char *)p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= RM_HASH_FNV64_PRIME;
    }
    return h;
}

/* MurmurHash3's fmix64: a bijection on 64-bit words with full avalanche. Pure: any thread. */
static inline uint64_t rm_hash_mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/* The contract hash of n bytes (see the top of this file). Pure: any thread. */
static inline uint64_t rm_hash64(const void *p, size_t n)
{
    return rm_hash_mix64(rm_hash_fnv1a64_update(RM_HASH_FNV64_OFFSET, p, n));
}

#endif /* REMORA_DATAPLANE_SNAPSHOT_HASH_H */
