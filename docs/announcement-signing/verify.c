/*
 * Reference verifier of the QRIS Soundbox Platform's signed announcements
 * (docs/announcement-signing.md), against libsodium. A firmware vendor copies
 * announcement_bytes() and announcement_verify(); main() is only the test harness.
 *
 *   cc -o verify verify.c -lsodium
 *   ./verify PUBLIC_KEY_B64 SIG_B64 DEVICE_ID MESSAGE_ID KIND AMOUNT CURRENCY TRANSACTION_ID TIME COUNTER
 *
 * Prints "valid" (exit 0) or "invalid" (exit 1); a usage or setup error exits 2.
 * DEVICE_ID is the device's own id (never the message's), KIND the kind it is about
 * to act on (the topic's last segment: "payment"); the others are the message's
 * JSON fields as they appear there (AMOUNT and COUNTER in decimal).
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define DOMAIN "qris-soundbox/announcement/v1"
#define FIELDS 8

/* The signed bytes: DOMAIN and the eight fields, each preceded by one LF (0x0A), no trailing LF.
 * A field holding a control character is refused (returns 0): the platform never signs one.
 * Returns the length written to out, or 0 when it does not fit or a field is refused. */
size_t announcement_bytes(const char *const fields[FIELDS], unsigned char *out, size_t capacity)
{
    size_t used = strlen(DOMAIN);
    if (used > capacity) {
        return 0;
    }
    memcpy(out, DOMAIN, used);
    for (int i = 0; i < FIELDS; i++) {
        size_t length = strlen(fields[i]);
        for (size_t j = 0; j < length; j++) {
            if ((unsigned char)fields[i][j] < 0x20 || fields[i][j] == 0x7f) {
                return 0;
            }
        }
        if (used + 1 + length > capacity) {
            return 0;
        }
        out[used++] = '\n';
        memcpy(out + used, fields[i], length);
        used += length;
    }
    return used;
}

/* 1 when sig_b64 is the platform's signature of these fields under public_key_b64, else 0. */
int announcement_verify(const char *public_key_b64, const char *sig_b64, const char *const fields[FIELDS])
{
    unsigned char public_key[crypto_sign_PUBLICKEYBYTES];
    unsigned char sig[crypto_sign_BYTES];
    unsigned char message[1024];
    size_t key_length = 0, sig_length = 0;
    if (sodium_base642bin(public_key, sizeof public_key, public_key_b64, strlen(public_key_b64), NULL,
                          &key_length, NULL, sodium_base64_VARIANT_ORIGINAL) != 0
        || key_length != sizeof public_key) {
        return 0;
    }
    if (sodium_base642bin(sig, sizeof sig, sig_b64, strlen(sig_b64), NULL, &sig_length, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0
        || sig_length != sizeof sig) {
        return 0;
    }
    size_t length = announcement_bytes(fields, message, sizeof message);
    if (length == 0) {
        return 0;
    }
    return crypto_sign_verify_detached(sig, message, length, public_key) == 0;
}

int main(int argc, char **argv)
{
    if (argc != 3 + FIELDS) {
        fprintf(stderr, "usage: %s PUBLIC_KEY_B64 SIG_B64 DEVICE_ID MESSAGE_ID KIND AMOUNT CURRENCY"
                        " TRANSACTION_ID TIME COUNTER\n", argv[0]);
        return 2;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "libsodium cannot be initialised\n");
        return 2;
    }
    int valid = announcement_verify(argv[1], argv[2], (const char *const *)&argv[3]);
    puts(valid ? "valid" : "invalid");
    return valid ? 0 : 1;
}
