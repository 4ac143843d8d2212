/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Chunk protection with AES-256-GCM (OpenSSL EVP). The key is random per dump
 * and lives only in memory that is locked, excluded from core dumps and wiped
 * when freed. Every chunk is authenticated; with encryption off its bytes are
 * stored in the clear but still authenticated (GMAC over the data), so a
 * change on disk is always detected.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

#define CIPHER_KEY_SIZE 32
#define CIPHER_NONCE_SIZE 12
#define CIPHER_TAG_SIZE 16

typedef enum Protection {
        PROTECTION_ENCRYPT = 1, /* AES-256-GCM */
        PROTECTION_AUTH = 2,    /* clear text + GMAC */
} Protection;

typedef struct CipherKey CipherKey;

int cipher_key_new(CipherKey **ret);
CipherKey *cipher_key_free(CipherKey *k);
DEFINE_TRIVIAL_CLEANUP_FUNC(CipherKey *, cipher_key_free);

/* One context per thread. */
typedef struct CipherCtx CipherCtx;
int cipher_ctx_new(const CipherKey *k, CipherCtx **ret);
CipherCtx *cipher_ctx_free(CipherCtx *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(CipherCtx *, cipher_ctx_free);

/* Seal len bytes from in to out (may be equal for in-place), with nonce and
 * additional authenticated data; writes the tag. */
int cipher_seal(CipherCtx *c, Protection p, const uint8_t nonce[CIPHER_NONCE_SIZE], const void *aad,
                size_t aad_len, const void *in, void *out, size_t len, uint8_t tag[CIPHER_TAG_SIZE]);

/* Verify (and decrypt) in place or into out; -EBADMSG if anything does not match. */
int cipher_open(CipherCtx *c, Protection p, const uint8_t nonce[CIPHER_NONCE_SIZE], const void *aad,
                size_t aad_len, const void *in, void *out, size_t len,
                const uint8_t tag[CIPHER_TAG_SIZE]);
