/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cipher.h"
#include "macro.h"

struct CipherKey {
        uint8_t key[CIPHER_KEY_SIZE];
};

/* Two contexts, one per direction, each keyed once: per chunk only the
 * nonce changes (a full initialisation per chunk costs more than sealing a
 * small chunk, with OpenSSL 3's implicit algorithm fetches). */
struct CipherCtx {
        EVP_CIPHER_CTX *enc, *dec;
        bool enc_keyed, dec_keyed;
        const CipherKey *key;
};

static EVP_CIPHER *gcm_cipher = NULL;
static pthread_once_t gcm_once = PTHREAD_ONCE_INIT;

static void fetch_gcm(void) {
        gcm_cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
}

static const EVP_CIPHER *aes_256_gcm(void) {
        pthread_once(&gcm_once, fetch_gcm);
        return gcm_cipher ?: EVP_aes_256_gcm();
}

int cipher_key_new(CipherKey **ret) {
        size_t size = (size_t) getpagesize();
        CipherKey *k;

        /* A page of its own: never swapped, never in a core dump, never
         * inherited by a child. */
        k = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (k == MAP_FAILED)
                return -errno;
        (void) madvise(k, size, MADV_DONTDUMP);
        (void) madvise(k, size, MADV_WIPEONFORK);
        (void) mlock(k, size);

        if (RAND_bytes(k->key, sizeof(k->key)) != 1) {
                munmap(k, size);
                return -EIO;
        }
        *ret = k;
        return 0;
}

CipherKey *cipher_key_free(CipherKey *k) {
        if (!k)
                return NULL;
        explicit_bzero(k->key, sizeof(k->key));
        munmap(k, (size_t) getpagesize());
        return NULL;
}

int cipher_ctx_new(const CipherKey *k, CipherCtx **ret) {
        _cleanup_(cipher_ctx_freep) CipherCtx *c = NULL;

        c = calloc(1, sizeof(CipherCtx));
        if (!c)
                return -ENOMEM;
        c->enc = EVP_CIPHER_CTX_new();
        c->dec = EVP_CIPHER_CTX_new();
        if (!c->enc || !c->dec)
                return -ENOMEM;
        c->key = k;
        *ret = TAKE_PTR(c);
        return 0;
}

CipherCtx *cipher_ctx_free(CipherCtx *c) {
        if (!c)
                return NULL;
        EVP_CIPHER_CTX_free(c->enc);
        EVP_CIPHER_CTX_free(c->dec);
        return mfree(c);
}

static int start(CipherCtx *c, bool enc, const uint8_t nonce[CIPHER_NONCE_SIZE]) {
        EVP_CIPHER_CTX *ctx = enc ? c->enc : c->dec;
        bool *keyed = enc ? &c->enc_keyed : &c->dec_keyed;

        /* Default IV length of GCM is 12 bytes, which is what we use. */
        if (!*keyed) {
                if (EVP_CipherInit_ex(ctx, aes_256_gcm(), NULL, c->key->key, nonce, enc) != 1)
                        return -EIO;
                *keyed = true;
                return 0;
        }
        if (EVP_CipherInit_ex(ctx, NULL, NULL, NULL, nonce, enc) != 1)
                return -EIO;
        return 0;
}

/* Starts the context of one direction with nonce and feeds it aad, then the
 * payload: encrypted or decrypted into out, or (PROTECTION_AUTH) taken as
 * more additional data and copied as it is. */
static int feed(CipherCtx *c, bool enc, Protection p, const uint8_t nonce[CIPHER_NONCE_SIZE], const void *aad,
                size_t aad_len, const void *in, void *out, size_t len) {
        EVP_CIPHER_CTX *ctx = enc ? c->enc : c->dec;
        int n, r;

        assert(len <= INT32_MAX && aad_len <= INT32_MAX);

        r = start(c, enc, nonce);
        if (r < 0)
                return r;
        if (EVP_CipherUpdate(ctx, NULL, &n, aad, (int) aad_len) != 1)
                return -EIO;
        if (p == PROTECTION_ENCRYPT) {
                if (EVP_CipherUpdate(ctx, out, &n, in, (int) len) != 1 || (size_t) n != len)
                        return -EIO;
        } else {
                if (EVP_CipherUpdate(ctx, NULL, &n, in, (int) len) != 1)
                        return -EIO;
                if (out != in)
                        memcpy(out, in, len);
        }
        return 0;
}

int cipher_seal(CipherCtx *c, Protection p, const uint8_t nonce[CIPHER_NONCE_SIZE], const void *aad,
                size_t aad_len, const void *in, void *out, size_t len, uint8_t tag[CIPHER_TAG_SIZE]) {
        int n, r;

        r = feed(c, true, p, nonce, aad, aad_len, in, out, len);
        if (r < 0)
                return r;
        if (EVP_EncryptFinal_ex(c->enc, NULL, &n) != 1)
                return -EIO;
        if (EVP_CIPHER_CTX_ctrl(c->enc, EVP_CTRL_GCM_GET_TAG, CIPHER_TAG_SIZE, tag) != 1)
                return -EIO;
        return 0;
}

int cipher_open(CipherCtx *c, Protection p, const uint8_t nonce[CIPHER_NONCE_SIZE], const void *aad,
                size_t aad_len, const void *in, void *out, size_t len,
                const uint8_t tag[CIPHER_TAG_SIZE]) {
        uint8_t final[16];
        int n, r;

        r = feed(c, false, p, nonce, aad, aad_len, in, out, len);
        if (r < 0)
                return r;
        if (EVP_CIPHER_CTX_ctrl(c->dec, EVP_CTRL_GCM_SET_TAG, CIPHER_TAG_SIZE, (void *) tag) != 1)
                return -EIO;
        if (EVP_DecryptFinal_ex(c->dec, final, &n) != 1)
                return -EBADMSG;
        return 0;
}
