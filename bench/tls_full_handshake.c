/* LD_PRELOAD shim for wrk (bench/run-tls.sh, scenario `full`): every connection makes a full
 * TLS handshake.
 *
 * wrk reuses one SSL object per connection slot: on reconnect it calls SSL_shutdown and
 * SSL_clear, and SSL_clear keeps the last session, so the next SSL_connect offers it again
 * (a TLS 1.3 PSK from the server's ticket, or a TLS 1.2 ticket). A server that issues tickets
 * then mostly sees resumed handshakes, and sandboxd's edge always issues them. Dropping the
 * session before a handshake starts leaves the client with nothing to offer, whatever the
 * server does.
 *
 * Only SSL_connect is wrapped, and only its first call of a handshake (SSL_in_before) drops
 * the session: wrk calls it again on every WANT_READ/WANT_WRITE while the handshake runs.
 *
 *   cc -shared -fPIC -O2 -o tls_full_handshake.so bench/tls_full_handshake.c -ldl
 *   LD_PRELOAD=$PWD/tls_full_handshake.so wrk ... https://...
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <openssl/ssl.h>
#include <stddef.h>

typedef int (*connect_fn)(SSL *);

int SSL_connect(SSL *ssl) {
  static connect_fn real = NULL;
  if (real == NULL) {
    real = (connect_fn)dlsym(RTLD_NEXT, "SSL_connect");
    if (real == NULL) return -1;
  }
  if (SSL_in_before(ssl)) SSL_set_session(ssl, NULL);
  return real(ssl);
}
