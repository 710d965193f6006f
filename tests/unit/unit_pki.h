/*
 * unit_pki.h: certificate and key files for the unit tests that load a
 * whole configuration (test_gen, test_dump), made with the OpenSSL API.
 */
#ifndef TLSFRONT_UNIT_PKI_H
#define TLSFRONT_UNIT_PKI_H

/*
 * Make a P-256 key and a self-signed certificate for it: subject CN=cn,
 * subjectAltName san (OpenSSL's syntax, "DNS:a.example,DNS:b.example";
 * NULL: none), valid from now for `days` days. Write the certificate as
 * PEM to cert_path and the key as PEM (unencrypted) to key_path, mode
 * 0600. Fails the running cmocka test on any error.
 */
void unit_pki_write(const char *cert_path, const char *key_path, const char *cn,
    const char *san, int days);

#endif
